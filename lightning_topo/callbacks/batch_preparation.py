"""The fit's own batch hooks, applied to the training batches a callback reads itself (its probe, BatchNorm
re-estimation, accuracy checks), so that it sees what ``training_step`` sees.

Lightning runs ``on_before_batch_transfer``, ``transfer_batch_to_device`` and ``on_after_batch_transfer`` (of the
LightningModule, or of the data module that overrides them) on every batch between the loader and the step:
device-side normalisation and augmentation live there. A callback that iterates the loader itself gets the raw
batches. Where the module or the data module overrides one of these hooks, :func:`fit_batch_preparation` gives the
step that applies them as the training loop does, on the fit's device, and brings the batch back to the host, where
a probe is kept.

Example:
    >>> import lightning.pytorch as pl
    >>> class Scaled(pl.LightningModule):
    ...     def on_after_batch_transfer(self, batch, dataloader_idx):
    ...         x, y = batch
    ...         return x.float() / 255, y
    >>> trainer = pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    >>> prepare = fit_batch_preparation(trainer, Scaled())
    >>> prepare((torch.full((2, 3), 255, dtype=torch.uint8), torch.tensor([0, 1])))[0]
    tensor([[1., 1., 1.],
            [1., 1., 1.]])
    >>> fit_batch_preparation(trainer, pl.LightningModule()) is None  # no hook overridden: the batch as it is
    True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from lightning.fabric.utilities.apply_func import move_data_to_device

__all__ = ["fit_batch_preparation", "overrides_batch_hooks", "overrides_hook"]

_BATCH_HOOKS = ("on_before_batch_transfer", "transfer_batch_to_device", "on_after_batch_transfer")
_DEFAULTS = "DataHooks."  # where Lightning (either namespace) defines the data hooks' defaults


def overrides_hook(owner: Any, hook: str) -> bool:
    """Whether a LightningModule or LightningDataModule (of either namespace) defines its own data hook ``hook``,
    e.g. ``val_dataloader``, whose default raises.

    The hook is looked up on the object itself: ``LightningDataModule.from_datasets`` sets its loaders there.

    Example:
        >>> import lightning.pytorch as pl
        >>> overrides_hook(pl.LightningDataModule(), "val_dataloader"), overrides_hook(None, "val_dataloader")
        (False, False)
        >>> overrides_hook(pl.LightningDataModule.from_datasets(val_dataset=[0.0]), "val_dataloader")
        True
    """
    method = getattr(owner, hook, None) if owner is not None else None
    function = getattr(method, "__func__", method)  # a bound method's function; an instance's own, as it is
    return function is not None and not getattr(function, "__qualname__", "").startswith(_DEFAULTS)


def overrides_batch_hooks(owner: Any) -> bool:
    """Whether a LightningModule or LightningDataModule (of either namespace) overrides one of the batch hooks."""
    return any(overrides_hook(owner, hook) for hook in _BATCH_HOOKS)


def fit_batch_preparation(trainer: Any, pl_module: Any) -> Callable[[Any], Any] | None:
    """The step that turns a raw training batch into the one ``training_step`` receives (see the module docstring),
    returned on the host; ``None`` where neither the module nor the data module overrides a batch hook."""
    if not (overrides_batch_hooks(pl_module) or overrides_batch_hooks(getattr(trainer, "datamodule", None))):
        return None

    def prepare(batch: Any) -> Any:
        device = trainer.strategy.root_device
        with torch.no_grad(), torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            batch = pl_module._on_before_batch_transfer(batch, dataloader_idx=0)
            batch = pl_module._apply_batch_transfer_handler(batch, device=device, dataloader_idx=0)
        return move_data_to_device(batch, torch.device("cpu"))

    return prepare
