"""Taking a pruning attempt back: the model's children and hyper-parameters copied before the surgery, and put back
when the surgery, fine-tuning or a measurement fails, or when accuracy falls too far."""

from __future__ import annotations

import copy
from typing import Any

from torch import nn

__all__ = ["Snapshot", "restore", "snapshot"]

Snapshot = tuple[dict[str, nn.Module], dict[str, Any]]  # a module's children and hyper-parameters


def snapshot(module: nn.Module) -> Snapshot:
    """Copies of the module's children and hyper-parameters, taken before pruning touches them."""
    return (
        {name: copy.deepcopy(child) for name, child in module.named_children()},
        copy.deepcopy(dict(getattr(module, "hparams", {}))),
    )


def restore(module: nn.Module, taken: Snapshot) -> None:
    """Put back the children and hyper-parameters that a pruning attempt replaced."""
    children, hparams = taken
    for name, child in children.items():
        setattr(module, name, child)
    if hasattr(module, "hparams"):
        module.hparams.update(hparams)
