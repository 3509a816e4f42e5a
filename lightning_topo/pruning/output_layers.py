"""The convolutions whose filters are the model's own output channels: a segmentation head's classes, which
pruning must leave whole (removing a filter there removes a class from the output map).

Example:
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 5, 1), nn.Upsample(scale_factor=2))
    >>> output_map_convolutions(net, ["0", "2"], torch.zeros(2, 3, 8, 8))
    ['2']
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from lightning_topo.monitoring.batches import ModelInputs, as_model_input, call_model
from lightning_topo.monitoring.hooks import eval_mode
from lightning_topo.monitoring.outputs import select_tensor

__all__ = ["output_map_convolutions"]


def output_map_convolutions(
    model: nn.Module, convs: Sequence[str], example: ModelInputs, forward: Callable[..., Any] = call_model
) -> list[str]:
    """Of ``convs``, the one whose filters are the model's output channels, as a list (empty where there is none):
    where the model's output (its logits tensor) is a map, ``(batch, channels, height, width)``, the last of them
    to run whose output has as many channels (before any upsampling or cropping after it)."""
    modules = dict(model.named_modules())
    ran: list[tuple[str, int]] = []
    handles = [
        modules[name].register_forward_hook(lambda m, a, out, name=name: ran.append((name, out.shape[1])))
        for name in convs
    ]
    try:
        with eval_mode(model), torch.no_grad():
            output = select_tensor(forward(model, as_model_input(model, example)))
    finally:
        for handle in handles:
            handle.remove()
    if output.dim() != 4 or not ran:
        return []
    name, channels = ran[-1]
    return [name] if channels == output.shape[1] else []
