"""Running a model on probe inputs with forward hooks: eval mode, no gradients, every hook removed afterwards.

The one place the monitor calls a model; how it is called (``module(x)``, ``module(**inputs)``, a user's
``forward_fn``) is the batch reader's rule (:mod:`lightning_topo.monitoring.batches`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from lightning_topo.monitoring.batches import ForwardFn, ModelInputs, as_model_input, call_model, describe_inputs
from lightning_topo.monitoring.outputs import select_tensor

__all__ = ["eval_mode", "forward_order", "forward_with_hooks", "output_rows", "output_shapes"]


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put every submodule in eval mode and restore each one's own mode afterwards.

    A model already wholly in eval mode (the monitor's passes inside its own ``eval_mode``) is left alone: no
    ``train()`` calls, which on a ResNet-18 cost as much as a tenth of a measurement on a GPU.

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 2), nn.Dropout())
        >>> with eval_mode(net):
        ...     net[1].training
        False
        >>> net[1].training
        True
    """
    modes = {m: m.training for m in model.modules()}
    if not any(modes.values()):
        yield model
        return
    model.eval()
    try:
        yield model
    finally:
        for module, mode in modes.items():
            module.train(mode)


def forward_with_hooks(
    model: nn.Module,
    example: ModelInputs,
    hooks: dict[str, Callable[..., None]],
    result: dict[str, Any] | None = None,
    prepared: bool = False,
    forward: ForwardFn = call_model,
) -> None:
    """One forward pass on ``example`` in eval mode without gradients, with forward hooks on the named modules.

    ``result["output"]`` receives the model's output when ``result`` is given; ``prepared=True`` means
    ``example`` is already on the model's device and dtype (see :func:`as_model_input`); ``forward(model,
    inputs)`` makes the call (default: :func:`~lightning_topo.monitoring.batches.call_model`).
    """
    modules = dict(model.named_modules())
    handles = [modules[name].register_forward_hook(hook) for name, hook in hooks.items()]
    try:
        with eval_mode(model), torch.no_grad():
            output = forward(model, example if prepared else as_model_input(model, example))
        if result is not None:
            result["output"] = output
    finally:
        for handle in handles:
            handle.remove()


def forward_order(model: nn.Module, example: ModelInputs, forward: ForwardFn = call_model) -> list[str]:
    """Names of the leaf modules in the order a forward pass on ``example`` calls them (first call).

    The pass runs in eval mode without gradients, so it changes nothing a later fit depends on: no
    BatchNorm running statistic is updated and no Dropout draws from the random generator.

    Example:
        >>> forward_order(nn.Sequential(nn.Linear(2, 3), nn.ReLU()), torch.zeros(1, 2))
        ['0', '1']
    """
    order: list[str] = []
    seen: set[str] = set()

    def record(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            if name not in seen:
                seen.add(name)
                order.append(name)

        return hook

    leaves = [name for name, module in model.named_modules() if name and not list(module.children())]
    try:
        forward_with_hooks(model, example, {name: record(name) for name in leaves}, forward=forward)
    except Exception as error:  # the first call on the probe: a mismatch here is a configuration error
        raise ValueError(
            f"{type(model).__name__} could not be run on the probe's inputs ({describe_inputs(example)}, two samples): "
            f"{type(error).__name__}: {error}. The probe must hold what the model takes: check probe=(inputs, labels), "
            "input_keys and forward_fn"
        ) from error
    return order


def output_shapes(
    model: nn.Module, example: ModelInputs, names: Sequence[str], forward: ForwardFn = call_model
) -> dict[str, tuple[int, ...]]:
    """Each named module's output shape per sample (e.g. ``(channels, height, width)``), from one forward pass.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU())
        >>> output_shapes(net, torch.zeros(1, 1, 8, 12), ["0"])
        {'0': (3, 6, 10)}
    """
    shapes: dict[str, tuple[int, ...]] = {}
    forward_with_hooks(
        model,
        example,
        {name: (lambda m, i, o, name=name: shapes.__setitem__(name, tuple(o.shape[1:]))) for name in names},
        forward=forward,
    )
    return shapes


def output_rows(
    model: nn.Module, example: ModelInputs, names: Sequence[str], forward: ForwardFn = call_model
) -> dict[str, int]:
    """Each named module's output's first dimension (at its last call) from one forward pass: the number of
    samples for a layer that holds one point per sample, something else for attention windows or heads.

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 6), nn.Unflatten(1, (3, 2)), nn.Flatten(0, 1))
        >>> output_rows(net, torch.zeros(4, 2), ["0", "2"])
        {'0': 4, '2': 12}
    """
    rows: dict[str, int] = {}

    def record(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            try:
                tensor = select_tensor(output)
            except TypeError:  # no tensor at all: the measurement says so, layer by layer
                return
            if tensor.dim() > 0:
                rows[name] = int(tensor.shape[0])

        return hook

    forward_with_hooks(model, example, {name: record(name) for name in names}, forward=forward)
    return rows
