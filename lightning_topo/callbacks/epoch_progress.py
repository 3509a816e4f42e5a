"""EpochProgress: a one-line-per-N-epochs progress printer for runs of thousands of one-step epochs."""

from __future__ import annotations

import time
from typing import Any

from lightning.pytorch.callbacks import EarlyStopping
from lightning.pytorch.utilities import rank_zero_info

from lightning_topo.arguments import check_count
from lightning_topo.callbacks.base import TopoCallback

try:
    from pytorch_lightning.callbacks import EarlyStopping as _StandaloneEarlyStopping
except ImportError:  # pragma: no cover - lightning installs it, but it is not ours to require
    _StandaloneEarlyStopping = EarlyStopping

__all__ = ["EpochProgress", "budget_reached"]

_EARLY_STOPPING = (EarlyStopping, _StandaloneEarlyStopping)


def budget_reached(trainer: Any) -> str | None:
    """Which budget ended the fit (``"max_epochs=12000"``, ``"max_steps=500"``), or ``None`` if none did.

    A fit whose ``trainer.should_stop`` was set (by ``EarlyStopping`` or any other callback) counts as stopped
    by its rule, even when that happened on the budget's last epoch; ``fast_dev_run`` has no budget.

    Example:
        >>> import lightning.pytorch as pl
        >>> budget_reached(pl.Trainer(max_epochs=3, logger=False))  # before fitting: nothing reached yet
    """
    if trainer.fast_dev_run or trainer.should_stop:
        return None
    max_steps = trainer.max_steps
    if max_steps is not None and max_steps >= 0 and trainer.global_step >= max_steps:
        return f"max_steps={max_steps}"
    max_epochs = trainer.max_epochs
    if max_epochs is not None and max_epochs >= 0 and trainer.current_epoch >= max_epochs:
        return f"max_epochs={max_epochs}"
    return None


def _why_stopped(stopper: Any) -> str | None:
    """What made an ``EarlyStopping`` stop the fit (``"Stopping threshold reached: train_acc = 1.0 > 0.99999"``)."""
    reason = getattr(stopper, "stopping_reason", None)  # Lightning >= 2.6
    fired = stopper.stopped_epoch > 0 if reason is None else reason.value != 0
    if not fired:
        return None
    message = getattr(stopper, "stopping_reason_message", None) or f"on {stopper.monitor}"
    return message.replace(" Signaling Trainer to stop.", "").rstrip(".")


def _why_not(stopper: Any, trainer: Any) -> str:
    """Where an ``EarlyStopping`` stands when the budget ran out (``"train_acc=0.999911, needs > 0.99999"``)."""
    current = trainer.callback_metrics.get(stopper.monitor)
    value = "not logged" if current is None else f"{float(current):.6g}"
    if stopper.stopping_threshold is None:
        return f"{stopper.monitor}={value}"
    return f"{stopper.monitor}={value}, needs {stopper.order_dict[stopper.mode]} {stopper.stopping_threshold:g}"


class EpochProgress(TopoCallback):
    """Print the epoch number, elapsed time and logged metrics every ``every_n_epochs`` training epochs.

    A tqdm bar redraws once per step, which for full-batch training means thousands of redraws and
    unreadable logs; this prints a plain line now and then, and one when training ends that says how it ended:

    - a stopping rule fired: ``[done]  epoch 1009  29.2s  train_acc=1.0000 ...  | EarlyStopping: Stopping
      threshold reached: train_acc = 1.0 > 0.99999``;
    - ``max_epochs`` or ``max_steps`` ran out first: ``[done]  budget reached at epoch 12000 (max_epochs=12000)
      812.3s  train_acc=0.9999 ...  | EarlyStopping did not fire: train_acc=0.999911, needs > 0.99999``
      (without an ``EarlyStopping`` the line still says that the budget was reached).

    Args:
        every_n_epochs: print every this many epochs.
        metrics: names of logged metrics to show (default: every logged scalar).

    Example:
        >>> import lightning.pytorch as pl
        >>> trainer = pl.Trainer(callbacks=[EpochProgress(every_n_epochs=100)], enable_progress_bar=False)
    """

    def __init__(self, every_n_epochs: int = 100, metrics: list[str] | None = None) -> None:
        check_count("every_n_epochs", every_n_epochs)
        if isinstance(metrics, str):  # one metric name, not a list of its letters
            metrics = [metrics]
        if metrics is not None and (
            not isinstance(metrics, (list, tuple)) or not metrics or not all(isinstance(m, str) for m in metrics)
        ):
            raise ValueError(f"metrics must be None (every logged scalar) or a list of metric names, got {metrics!r}")
        self.every_n_epochs = every_n_epochs
        self.metrics = None if metrics is None else list(metrics)
        self._start = time.perf_counter()

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self._start = time.perf_counter()

    def _line(self, trainer: Any, head: str) -> str:
        values = {k: float(v) for k, v in trainer.callback_metrics.items() if getattr(v, "numel", lambda: 1)() == 1}
        shown = {k: values[k] for k in (self.metrics or sorted(values)) if k in values}
        metrics = "  ".join(f"{k}={v:.4f}" for k, v in shown.items())
        return f"{head}  {time.perf_counter() - self._start:.1f}s  {metrics}"

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            rank_zero_info(self._line(trainer, f"[train] epoch {trainer.current_epoch + 1}"))

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        # the loop has already advanced ``current_epoch`` past the last epoch: it now counts the epochs run
        epochs = trainer.current_epoch
        stoppers = [c for c in trainer.callbacks if isinstance(c, _EARLY_STOPPING)]
        budget = budget_reached(trainer)
        if budget is None:
            notes = [f"EarlyStopping: {why}" for why in map(_why_stopped, stoppers) if why]
            rank_zero_info(self._line(trainer, f"[done]  epoch {epochs}") + "".join(f"  | {n}" for n in notes))
            return
        notes = [f"EarlyStopping did not fire: {_why_not(c, trainer)}" for c in stoppers]
        line = self._line(trainer, f"[done]  budget reached at epoch {epochs} ({budget})")
        rank_zero_info(line + "".join(f"  | {n}" for n in notes))
