"""FitEndCheckpoint: Lightning's ModelCheckpoint, saving every few hundred epochs and always when the fit ends.

A full-batch recipe runs one optimiser step per epoch, thousands of epochs. Lightning's default checkpoint writes
after every epoch (D-I's 1,009 epochs: 1,009 writes; the 169-disk recipe's 1 MB checkpoint 5,363 times), several
seconds to tens of seconds of a run whose arithmetic takes a few. ``ModelCheckpoint(every_n_epochs=500)`` writes
less often but misses the end: when ``EarlyStopping`` stops the fit, or ``max_epochs`` runs out, between two saves,
the last checkpoint on disk is up to 499 epochs old (``save_last`` only writes at the end when nothing was saved
before). This subclass adds that one save.

Example:
    >>> callback = FitEndCheckpoint(monitor="train_acc", mode="max", save_last=True, every_n_epochs=500)
    >>> callback.every_n_epochs
    500
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import ModelCheckpoint

__all__ = ["FitEndCheckpoint", "fit_ends_after_this_epoch"]


def fit_ends_after_this_epoch(trainer: Any) -> bool:
    """Whether the fit loop stops after the epoch whose ``on_train_epoch_end`` is running.

    The conditions of Lightning's ``FitLoop.done`` (``max_steps``, ``max_epochs``, ``should_stop`` once
    ``min_epochs``/``min_steps`` are met), read without its side effect (it prints why the fit stopped).
    """
    loop = trainer.fit_loop
    processed = loop.epoch_progress.current.processed  # already counts this epoch in on_train_epoch_end
    max_steps, max_epochs = trainer.max_steps, trainer.max_epochs
    if max_steps is not None and max_steps >= 0 and trainer.global_step >= max_steps:
        return True
    if max_epochs is not None and max_epochs >= 0 and processed >= max_epochs:
        return True
    if not trainer.should_stop:
        return False
    met_epochs = not loop.min_epochs or processed >= loop.min_epochs
    met_steps = not loop.min_steps or trainer.global_step >= loop.min_steps
    return met_epochs and met_steps


class FitEndCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` (same arguments) that also saves at the end of the fit's last epoch.

    Every ``every_n_epochs`` epochs, and after the last epoch whatever ended the fit (``EarlyStopping``,
    ``max_epochs``, ``max_steps``), it updates the best checkpoints by ``monitor`` (``save_top_k`` of them) and
    ``last.ckpt`` (with ``save_last=True``; unlike ``ModelCheckpoint``, which rewrites ``last.ckpt`` at the end of
    an epoch only when a top-k checkpoint was written then, so that ``last.ckpt`` is always the latest save);
    a fit that ends in the middle of an epoch (``max_steps``, ``max_time``) saves at ``on_train_end``. A fit
    resumed from any of them (``--ckpt_path``) continues at the epoch after the saved one. Nothing is saved
    twice for the same step.
    """

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if self._should_skip_saving_checkpoint(trainer) or not self._should_save_on_train_epoch_end(trainer):
            return
        every = self._every_n_epochs
        if (every >= 1 and (trainer.current_epoch + 1) % every == 0) or fit_ends_after_this_epoch(trainer):
            self._save_now(trainer)

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer) and not trainer.sanity_checking:
            self._save_if_the_fit_ends(trainer)

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        if not self._should_skip_saving_checkpoint(trainer):  # the fit stopped mid-epoch, after the last save
            self._save_now(trainer)
        super().on_train_end(trainer, pl_module)

    def _save_if_the_fit_ends(self, trainer: Any) -> None:
        if fit_ends_after_this_epoch(trainer) and not self._should_skip_saving_checkpoint(trainer):
            self._save_now(trainer)

    def _save_now(self, trainer: Any) -> None:
        candidates = self._monitor_candidates(trainer)
        self._save_topk_checkpoint(trainer, candidates)
        self._save_last_checkpoint(trainer, candidates)
