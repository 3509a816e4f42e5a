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

from pathlib import Path

import torch
from torch import nn

__all__ = ["load_pruned", "save_pruned"]


def save_pruned(model: nn.Module, path: str | Path) -> Path:
    """Save the whole (pruned) model, detached from any Trainer, to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    trainer = getattr(model, "_trainer", None)
    if trainer is not None:
        model._trainer = None
    try:
        torch.save(model, path)
    finally:
        if trainer is not None:
            model._trainer = trainer
    return path


def load_pruned(path: str | Path, map_location: str | torch.device = "cpu") -> nn.Module:
    """Load a model saved by :func:`save_pruned`, in eval mode. Only load files you trust (it unpickles)."""
    model = torch.load(Path(path), map_location=map_location, weights_only=False)
    return model.eval()
