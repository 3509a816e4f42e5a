"""A data module without a validation split runs ``fit`` without a validation loop, and without Lightning's warning.

An empty ``val_dataloader`` (``[]``) makes Lightning warn that it got zero validation batches; setting
``trainer.limit_val_batches = 0`` for the duration of the fit switches the loop off quietly, and ``teardown``
restores the trainer's own setting for a later ``validate``/``fit``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["NoValidationWithoutSplit"]


class NoValidationWithoutSplit:
    """Mixin for a ``LightningDataModule`` whose ``val_set`` is ``None`` when it holds no validation split.

    Its ``setup`` calls :meth:`_skip_validation_without_split` with the stage once the splits exist.
    """

    val_set: Any
    trainer: Any
    _limit_val_batches: int | float | None = None  # the trainer's setting while a fit runs without validation

    def _skip_validation_without_split(self, stage: str | None) -> None:
        if stage != "fit" or self.val_set is not None or self.trainer is None or self._limit_val_batches is not None:
            return
        self._limit_val_batches = self.trainer.limit_val_batches
        self.trainer.limit_val_batches = 0

    def teardown(self, stage: str | None = None) -> None:
        if stage == "fit" and self._limit_val_batches is not None and self.trainer is not None:
            self.trainer.limit_val_batches = self._limit_val_batches
            self._limit_val_batches = None
