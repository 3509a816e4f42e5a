"""Capturing layer outputs with forward hooks, in eval mode and without gradients."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from lightning_topo.monitoring.batches import (
    ForwardFn,
    ModelInputs,
    as_model_input,
    call_model,
    n_samples,
    primary_tensor,
    take,
)
from lightning_topo.monitoring.hooks import eager, eval_mode, layer_hooks, randomness_kept
from lightning_topo.monitoring.layers import INPUT, LOGITS
from lightning_topo.monitoring.outputs import per_sample, select_tensor

__all__ = ["capture_activations"]


def _flat(output: object, device: torch.device | str | None) -> torch.Tensor:
    flat = per_sample(select_tensor(output)).float()  # the monitor's rule for tuples, dicts, model outputs
    return flat if device is None else flat.to(device)


def capture_activations(
    model: nn.Module,
    inputs: ModelInputs,
    layers: Sequence[str],
    batch_size: int = 256,
    device: torch.device | str | None = "cpu",
    forward: ForwardFn = call_model,
) -> dict[str, torch.Tensor]:
    """Each layer's output on ``inputs``, flattened per sample: ``{name: (n_samples, n_features)}`` on ``device``.

    ``device=None`` keeps the outputs where the model computed them (a GPU), for the torch routes of the topology
    core.  This holds every layer's outputs for every input at once: the monitor itself reduces them class by
    class instead (:func:`lightning_topo.monitoring.clouds.reduce_clouds`).

    Runs in eval mode under ``torch.no_grad()``; hooks are removed and every module's training mode is
    restored even if the forward pass fails.  A module called several times per forward pass keeps
    its last output, and ``name-callK`` names its ``K``-th call.  ``"input"`` and ``"logits"`` are the inputs and the model's output.  ``inputs`` may be a
    dict or tuple of tensors, and ``forward(model, inputs)`` the call (see :mod:`lightning_topo.monitoring.batches`).

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> out = capture_activations(net, torch.zeros(5, 2), ["1", "logits"])
        >>> out["1"].shape, out["logits"].shape
        (torch.Size([5, 4]), torch.Size([5, 2]))
    """
    chunks: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    current: dict[str, torch.Tensor] = {}
    hooks = {
        name: (lambda m, i, o, name=name: current.__setitem__(name, _flat(o, device)))
        for name in layers
        if name not in (INPUT, LOGITS)
    }
    with eval_mode(model), torch.no_grad(), eager(), randomness_kept(model, seed=0):
        for start in range(0, n_samples(inputs), batch_size):
            batch = as_model_input(model, take(inputs, slice(start, start + batch_size)))
            current.clear()
            handles = layer_hooks(model, hooks)  # a call's hook (``act-call2``) counts the calls of this pass
            try:
                logits = forward(model, batch)
            finally:
                for handle in handles:
                    handle.remove()
            for name in layers:
                if name == INPUT:
                    chunks[name].append(_flat(primary_tensor(batch), device))
                elif name == LOGITS:
                    chunks[name].append(_flat(logits, device))
                else:
                    chunks[name].append(current[name])
    return {name: torch.cat(parts) for name, parts in chunks.items()}
