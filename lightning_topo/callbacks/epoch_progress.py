"""EpochProgress: a one-line-per-N-epochs progress printer for runs of thousands of one-step epochs."""

from __future__ import annotations

import time
from typing import Any

from lightning.pytorch.utilities import rank_zero_info

from lightning_topo.callbacks.base import TopoCallback

__all__ = ["EpochProgress"]


class EpochProgress(TopoCallback):
    """Print the epoch number, elapsed time and logged metrics every ``every_n_epochs`` training epochs.

    A tqdm bar redraws once per step, which for full-batch training means thousands of redraws and
    unreadable logs; this prints a plain line now and then, and one when training ends.

    Args:
        every_n_epochs: print every this many epochs.
        metrics: names of logged metrics to show (default: every logged scalar).

    Example:
        >>> import lightning.pytorch as pl
        >>> trainer = pl.Trainer(callbacks=[EpochProgress(every_n_epochs=100)], enable_progress_bar=False)
    """

    def __init__(self, every_n_epochs: int = 100, metrics: list[str] | None = None) -> None:
        if not isinstance(every_n_epochs, int) or every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be a positive integer, got {every_n_epochs!r}")
        self.every_n_epochs = every_n_epochs
        self.metrics = metrics
        self._start = time.perf_counter()

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self._start = time.perf_counter()

    def _line(self, trainer: Any, prefix: str, epochs_done: int) -> str:
        values = {k: float(v) for k, v in trainer.callback_metrics.items() if getattr(v, "numel", lambda: 1)() == 1}
        shown = {k: values[k] for k in (self.metrics or sorted(values)) if k in values}
        metrics = "  ".join(f"{k}={v:.4f}" for k, v in shown.items())
        return f"{prefix} epoch {epochs_done}  {time.perf_counter() - self._start:.1f}s  {metrics}"

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            rank_zero_info(self._line(trainer, "[train]", trainer.current_epoch + 1))

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        # the loop has already advanced ``current_epoch`` past the last epoch: it now counts the epochs run
        rank_zero_info(self._line(trainer, "[done] ", trainer.current_epoch))
