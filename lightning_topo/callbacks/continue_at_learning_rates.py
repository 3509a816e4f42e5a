"""ContinueAtLearningRates: start a fit at given learning rates, e.g. to fine-tune where a fit left off."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lightning.pytorch.utilities import rank_zero_warn

from lightning_topo.arguments import check_positive
from lightning_topo.callbacks.base import TopoCallback

__all__ = ["ContinueAtLearningRates"]


class ContinueAtLearningRates(TopoCallback):
    """Start a new fit at given learning rates (one per parameter group, in optimiser order).

    Example (the fit itself is not run here: it needs a model and data):
        >>> import lightning.pytorch as pl
        >>> callback = ContinueAtLearningRates([2.5e-4])
        >>> callback.learning_rates
        [0.00025]
        >>> tuner = pl.Trainer(max_epochs=1, callbacks=[callback])  # doctest: +SKIP
    """

    def __init__(self, learning_rates: Sequence[float]) -> None:
        if isinstance(learning_rates, (str, bytes)) or not isinstance(learning_rates, Sequence) or not learning_rates:
            raise ValueError(
                f"learning_rates must be a non-empty list, one rate per parameter group, got {learning_rates!r}"
            )
        for i, lr in enumerate(learning_rates):
            check_positive(f"learning_rates[{i}]", lr, allow_zero=True)  # a schedule may end at 0
        self.learning_rates = [float(lr) for lr in learning_rates]

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        groups = [group for optimizer in trainer.optimizers for group in optimizer.param_groups]
        if len(groups) != len(self.learning_rates):  # a different optimiser layout: leave it as configured
            rank_zero_warn(
                f"ContinueAtLearningRates: {len(self.learning_rates)} learning rates for {len(groups)} parameter groups; "
                "keeping configure_optimizers' learning rates"
            )
            return
        for group, lr in zip(groups, self.learning_rates):
            group["lr"] = lr
