"""Shared training logic of the package's classifiers: loss, torchmetrics accuracy, optimiser and schedule.

Subclasses build ``self.features`` (the hidden layers) and ``self.head`` (the logits layer); this base
class does the rest, so every model logs the same metrics (``train_loss``, ``train_acc``, ``val_loss``,
``val_acc``, ``test_loss``, ``test_acc``) and is configured the same way from YAML.

Example:
    >>> from lightning_topo.models import MLPClassifier
    >>> model = MLPClassifier(in_features=2, num_classes=2, optimizer="sgd", lr=0.1, lr_halve_every=100)
    >>> type(model.configure_optimizers()["optimizer"]).__name__
    'SGD'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from lightning_topo.arguments import check_count, check_positive
from lightning_topo.monitoring.batches import LABEL_KEYS, POSITIONAL_KEYS

__all__ = ["ClassifierModule", "OPTIMIZERS"]

OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}


class ClassifierModule(pl.LightningModule):
    """Cross-entropy classifier over ``self.features`` and ``self.head``, with accuracy metrics.

    Args:
        num_classes: number of classes (>= 2).
        optimizer: ``"adam"``, ``"adamw"`` or ``"sgd"``.
        lr: learning rate.
        weight_decay: L2 penalty passed to the optimiser.
        lr_halve_every: halve the learning rate every this many optimiser steps (``None``: constant);
            the topology literature halves Adam's 0.02 every 2,500 full-batch steps.
    """

    features: nn.Module
    head: nn.Module

    def __init__(
        self,
        num_classes: int,
        optimizer: str = "adam",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        lr_halve_every: int | None = None,
    ) -> None:
        super().__init__()
        check_count("num_classes", num_classes, minimum=2)
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, got {optimizer!r}")
        check_positive("lr", lr)
        check_positive("weight_decay", weight_decay, allow_zero=True)
        if lr_halve_every is not None:
            check_count("lr_halve_every (steps, or None: a constant rate)", lr_halve_every)
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def setup(self, stage: str) -> None:
        """Fail before the first step if the data module serves a different number of classes."""
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        served = getattr(datamodule, "num_classes", None)
        if isinstance(served, int) and served != self.hparams.num_classes:
            raise ValueError(
                f"model.num_classes={self.hparams.num_classes} but {type(datamodule).__name__} serves {served} classes; "
                f"set --model.init_args.num_classes={served} (a class subset changes the count)"
            )

    def _inputs_and_labels(self, batch: Any, labels_needed: bool = True) -> tuple[torch.Tensor, Any]:
        """``(x, y)`` of a batch: a tuple ``(x, y, ...)``, or a mapping such as ``{"image": x, "label": y}``."""
        if isinstance(batch, torch.Tensor) and not labels_needed:
            return batch, None
        if isinstance(batch, (tuple, list)) and len(batch) >= (2 if labels_needed else 1):
            return batch[0], batch[1] if len(batch) > 1 else None
        if isinstance(batch, Mapping):
            x_key = next((key for key in POSITIONAL_KEYS if key in batch), None)
            y_key = next((key for key in LABEL_KEYS if key in batch), None)
            if x_key is not None and (y_key is not None or not labels_needed):
                return batch[x_key], None if y_key is None else batch[y_key]
        keys = f" with keys {list(batch)}" if isinstance(batch, Mapping) else ""
        raise ValueError(
            f"{type(self).__name__} reads batches (inputs, labels) or mappings with an input under one of "
            f"{POSITIONAL_KEYS} and labels under one of {LABEL_KEYS}; got a {type(batch).__name__}{keys}"
        )

    def _step(self, batch: Any, stage: str) -> torch.Tensor:
        x, y = self._inputs_and_labels(batch)
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        metric = getattr(self, f"{stage}_acc")
        # update, not forward: the accuracy is logged per epoch only, so the batch's own value (which forward
        # computes, juggling the metric's state to do so) would be thrown away
        metric.update(logits, y)
        on_step = stage == "train" and self.trainer.num_training_batches > 1
        batch_size = len(y)  # given, so Lightning does not search the batch for it at every call
        self.log(
            f"{stage}_loss", loss, on_step=on_step, on_epoch=True, prog_bar=stage != "train", batch_size=batch_size
        )
        self.log(f"{stage}_acc", metric, on_step=False, on_epoch=True, prog_bar=True, batch_size=batch_size)
        return loss

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._step(batch, "test")

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:
        x = self._inputs_and_labels(batch, labels_needed=False)[0]
        return self(x).argmax(dim=1)

    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        kwargs: dict[str, Any] = {"lr": hp.lr, "weight_decay": hp.weight_decay}
        if hp.optimizer == "sgd":
            kwargs["momentum"] = 0.9
        optimizer = OPTIMIZERS[hp.optimizer](self.parameters(), **kwargs)
        if hp.lr_halve_every is None:
            return {"optimizer": optimizer}
        schedule = torch.optim.lr_scheduler.StepLR(optimizer, step_size=hp.lr_halve_every, gamma=0.5)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
