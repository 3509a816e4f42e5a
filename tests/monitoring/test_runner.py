"""The monitor's shutdown is bounded: workers that will not leave are killed, and nothing it holds blocks close."""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import CancelledError

import pytest
from helpers.monitor_jobs import stubborn_job

from lightning_topo.callbacks import BettiMonitor
from lightning_topo.monitoring import runner as runner_module
from lightning_topo.monitoring.runner import JobRunner, WorkerDied

GRACE = 1.0


def _wait_for(condition, seconds: float = 90.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the worker did not start its job in time"
        time.sleep(0.05)


def test_a_cancelling_close_kills_a_worker_that_ignores_sigterm_within_its_bound(tmp_path, monkeypatch):
    monkeypatch.setattr(runner_module, "STOP_GRACE", GRACE)
    runner = JobRunner(num_workers=1)
    marker = tmp_path / "started"
    running = runner.submit(stubborn_job, str(marker))
    queued = runner.submit(sum, [1, 2])
    _wait_for(marker.exists)
    (process,) = runner._processes
    start = time.monotonic()
    runner.close(cancel=True)
    took = time.monotonic() - start
    assert took < 2 * GRACE + 2, f"close took {took:.1f} s"
    assert took >= GRACE * 0.9, "the worker was killed without its SIGTERM grace"
    assert process.returncode == -signal.SIGKILL  # SIGTERM was ignored: the kill that followed ended it
    assert queued.cancelled()
    with pytest.raises((CancelledError, WorkerDied)):
        running.result(timeout=5)


def test_close_returns_while_a_job_is_stuck_on_its_way_to_a_worker(monkeypatch):
    """A worker that reads nothing (stopped here) blocks the thread writing a job to it; close must not wait."""
    monkeypatch.setattr(runner_module, "STOP_GRACE", GRACE)
    runner = JobRunner(num_workers=1)
    assert runner.submit(sum, [1, 2]).result(timeout=90) == 3  # the worker is up, idle, reading
    (pid,) = runner.pids
    os.kill(pid, signal.SIGSTOP)
    try:
        futures = []
        sender = threading.Thread(target=lambda: futures.append(runner.submit(len, b"x" * 2**22)), daemon=True)
        sender.start()  # 4 MB: far more than a pipe holds, so the write blocks
        time.sleep(1.0)
        assert sender.is_alive(), "the job fit in the pipe: the check is not sensitive"
        closer = threading.Thread(target=runner.close, daemon=True)
        closer.start()
        closer.join(timeout=2 * GRACE + 10)
        assert not closer.is_alive(), "close() waited for a job stuck on its way to a stopped worker"
        sender.join(timeout=10)
        assert not sender.is_alive() and futures, "the stuck submit did not end with its worker"
        with pytest.raises((WorkerDied, CancelledError)):
            futures[0].result(timeout=10)
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


class _Runner:
    """A runner whose waiting close fails with ``error``; its cancelling close works."""

    def __init__(self, error: BaseException) -> None:
        self.error, self.calls = error, []

    def close(self, cancel: bool) -> None:
        self.calls.append(cancel)
        if not cancel:
            raise self.error


def test_a_failing_shutdown_is_a_warning_and_still_cancels_the_workers():
    monitor = BettiMonitor(num_workers=1)
    monitor._runner = runner = _Runner(RuntimeError("pipe trouble"))
    with pytest.warns(UserWarning, match="could not stop its workers cleanly: RuntimeError: pipe trouble"):
        monitor._close(cancel=False)
    assert runner.calls == [False, True] and monitor._runner is None


def test_a_ctrl_c_during_a_waiting_shutdown_cancels_the_workers_and_goes_on():
    monitor = BettiMonitor(num_workers=1)
    monitor._runner = runner = _Runner(KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        monitor._close(cancel=False)
    assert runner.calls == [False, True] and monitor._runner is None


def test_a_closed_runner_leaves_no_pipe_to_the_garbage_collector():
    runner = JobRunner(num_workers=1)
    assert runner.submit(sum, [1, 2]).result(timeout=120) == 3
    answers = runner._processes[0].stdout
    runner.close(cancel=False)
    # the reader thread closes the worker's answer pipe once the worker is gone; left open, the garbage collector
    # closed it later with "ResourceWarning: unclosed file" in the middle of whatever the user ran next
    _wait_for(lambda: answers.closed, seconds=30)
