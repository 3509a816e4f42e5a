"""How a monitored fit ends when it measures nothing or is stopped mid-measurement: the monitor says what it lost."""

from __future__ import annotations

import signal
import warnings
from concurrent.futures import Future

import pytest
from helpers.trainers import quiet_trainer
from helpers.user_models import TinyNet, blobs
from torch.utils.data import DataLoader

from lightning_topo.callbacks import BettiMonitor


def _messages(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if "BettiMonitor" in str(w.message)]


@pytest.mark.parametrize("how", ["limit_train_batches=0", "resumed after its last epoch"])
def test_a_fit_that_trains_no_epoch_says_that_it_measured_nothing(tmp_path, how):
    """Lightning skips on_train_start and on_train_end where the fit loop has nothing to run: the notice lived there."""
    loader = DataLoader(blobs(), batch_size=64)
    model, options = TinyNet(), {"max_epochs": 1}
    if how == "limit_train_batches=0":
        options["limit_train_batches"] = 0
    else:
        quiet_trainer(tmp_path, max_epochs=1, enable_checkpointing=True).fit(model, loader)
        (checkpoint,) = (tmp_path / "checkpoints").glob("*.ckpt")
        options["ckpt_path"] = checkpoint
    monitor = BettiMonitor(probe_size=40, k=5)
    ckpt_path = options.pop("ckpt_path", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_trainer(tmp_path, callbacks=[monitor], **options).fit(model, loader, ckpt_path=ckpt_path)
    assert monitor.history == []
    assert any("BettiMonitor measured nothing: the fit trained no epoch" in m for m in _messages(caught))


def test_a_fit_that_measures_says_nothing_of_the_kind(tmp_path):
    monitor = BettiMonitor(probe_size=40, k=5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_trainer(tmp_path, max_epochs=1, callbacks=[monitor]).fit(TinyNet(), DataLoader(blobs(), batch_size=64))
    assert len(monitor.history) == 1
    assert not any("measured nothing" in m or "measured no epoch" in m for m in _messages(caught))


def test_a_ctrl_c_while_the_synchronous_mode_waits_loses_no_measurement_silently(tmp_path, monkeypatch):
    """The synchronous mode (num_workers=0, the CPU default) waits for its Betti numbers inside the epoch's end. A
    Ctrl-C in that wait lost the measurement without a word: it was queued only after the wait, so the exception
    handler neither logged it (finished) nor named it as dropped (still running). Which of the two it is now depends
    on whether the measurement's other jobs finished by then: either is a measurement accounted for."""
    waited = Future.exception

    def ctrl_c_in_the_wait(self, timeout=None):
        waited(self, timeout)  # one job finishes; the key press lands as the loop returns from its wait
        raise KeyboardInterrupt

    monkeypatch.setattr(Future, "exception", ctrl_c_in_the_wait)
    monitor = BettiMonitor(probe_size=40, k=5, num_workers=0)
    handler = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises((KeyboardInterrupt, SystemExit)), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            trainer = quiet_trainer(tmp_path, max_epochs=2, callbacks=[monitor])
            trainer.fit(TinyNet(), DataLoader(blobs(), batch_size=64))
    finally:
        signal.signal(signal.SIGINT, handler)  # Lightning ignores Ctrl-C once it has had one: keep pytest's
    dropped = [m for m in _messages(caught) if "the measurements of epochs [0] were still being computed" in m]
    logged = [entry["epoch"] for entry in monitor.history]
    assert (logged, len(dropped)) in (([0], 0), ([], 1)), (logged, dropped)
    if logged:
        assert set(monitor.history[0]["betti"]) == {"input", "body.1", "body.3", "logits"}
