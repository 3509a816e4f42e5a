"""Saving and loading pruned models: the whole module is pickled, because its shapes are no longer the
ones its constructor would build (for our CNNClassifier, ``load_from_checkpoint`` also works, since the
pruner updates ``hparams["channels"]``).

Example:
    >>> import tempfile
    >>> model = nn.Linear(3, 2)
    >>> path = save_pruned(model, Path(tempfile.mkdtemp()) / "pruned.pt")
    >>> loaded = load_pruned(path)  # in any process; predicts identically
    >>> x = torch.randn(4, 3)
    >>> torch.equal(loaded(x), model(x))
    True
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

__all__ = ["load_pruned", "save_pruned"]


def save_pruned(model: nn.Module, path: str | Path) -> Path:
    """Save the whole (pruned) model, detached from any Trainer, to ``path``.

    The file appears whole or not at all: it is written beside ``path`` and renamed, so a failed save (a full
    disk, a module holding something that cannot be pickled) never leaves a truncated file or spoils an older one.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"save_pruned saves a torch.nn.Module (the pruned model itself), got {type(model).__name__}; "
            "a state_dict is saved with torch.save"
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    trainer = getattr(model, "_trainer", None)
    if trainer is not None:
        model._trainer = None
    try:
        torch.save(model, partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
        if trainer is not None:
            model._trainer = trainer
    return path


def load_pruned(path: str | Path, map_location: str | torch.device = "cpu") -> nn.Module:
    """Load a model saved by :func:`save_pruned`, in eval mode. Only load files you trust (it unpickles)."""
    model = torch.load(Path(path), map_location=map_location, weights_only=False)
    if not isinstance(model, nn.Module):
        hint = (
            "a Lightning checkpoint: load it with YourModule.load_from_checkpoint(path)"
            if isinstance(model, dict) and "state_dict" in model
            else "a state_dict or other object: build the model and call model.load_state_dict(torch.load(path))"
        )
        raise TypeError(
            f"{path} holds a {type(model).__name__}, not a model saved by save_pruned; it looks like {hint}"
        )
    return model.eval()
