"""Taking a pruning attempt back: the model's children, its own parameters and buffers and its hyper-parameters,
copied before the surgery and put back when the surgery, fine-tuning or a measurement fails, or when accuracy falls
too far."""

from __future__ import annotations

import copy
from typing import Any, NamedTuple

import torch
from torch import nn

__all__ = ["Snapshot", "restore", "snapshot"]


class Snapshot(NamedTuple):
    """What :func:`restore` puts back: copies of the children, and of the tensors the module holds itself."""

    children: dict[str, nn.Module]
    hparams: dict[str, Any]
    # a parameter or buffer registered on the module itself (not in a child): the object, and a copy of its value
    tensors: dict[str, tuple[torch.Tensor, torch.Tensor]]


def snapshot(module: nn.Module) -> Snapshot:
    """Copies of the module's children, own parameters and buffers, and hyper-parameters, taken before pruning."""
    # recurse=False: a child's tensors travel with the child's copy
    own = {**dict(module.named_parameters(recurse=False)), **dict(module.named_buffers(recurse=False))}
    return Snapshot(
        {name: copy.deepcopy(child) for name, child in module.named_children()},
        copy.deepcopy(dict(getattr(module, "hparams", {}))),
        {name: (tensor, tensor.detach().clone()) for name, tensor in own.items()},
    )


def restore(module: nn.Module, taken: Snapshot) -> None:
    """Put back the children, own parameters and buffers, and hyper-parameters that a pruning attempt changed.

    The module's own parameters and buffers get their trained values back in the very objects they were (those
    the fit's optimizer holds), even if the surgery reshaped or replaced them; their gradients are cleared, as
    the children's copies have none.
    """
    for name, child in taken.children.items():
        setattr(module, name, child)
    for name, (tensor, value) in taken.tensors.items():
        tensor.data = value.clone()  # .data: the surgery may have reshaped it; a clone keeps the snapshot reusable
        tensor.grad = None
        setattr(module, name, tensor)
    if hasattr(module, "hparams"):
        module.hparams.update(taken.hparams)
