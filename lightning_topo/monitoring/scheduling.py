"""How a measurement's Betti work is scheduled: its neighbour lists sent to the job runner in a few chunks, and
the runner shut down so that neither a failure nor a Ctrl-C during the shutdown replaces the fit's own outcome."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from lightning_topo.monitoring.measurement import Measurement
from lightning_topo.monitoring.runner import JobRunner

__all__ = ["close_runner", "submit_betti_jobs"]


def submit_betti_jobs(runner: JobRunner, job: Callable, measurement: Measurement, options: Mapping[str, Any]) -> None:
    """Send a measurement's neighbour lists to ``job`` (``betti_job``) in the runner, in about two chunks a worker."""
    items = measurement.items
    chunks = max(1, min(len(items), 2 * max(1, runner.num_workers)))
    measurement.futures = [
        runner.submit(job, items[part::chunks], **options) for part in range(chunks) if items[part::chunks]
    ]


def close_runner(runner: JobRunner | None, cancel: bool, warn: Callable[[str], Any]) -> None:
    """Stop the runner's workers (``cancel``: without waiting for their jobs). A failure is warned about; a
    Ctrl-C during a waiting close cancels the workers at once and goes on."""
    if runner is None:
        return
    try:
        runner.close(cancel=cancel)
    except BaseException as error:  # a Ctrl-C during a waiting close, or a failure: the workers go at once
        try:
            runner.close(cancel=True)
        except Exception:  # pragma: no cover - the first failure is the one worth reporting
            pass
        if not isinstance(error, Exception):
            raise
        # shutting the monitor down must not replace the fit's own outcome
        warn(f"BettiMonitor: could not stop its workers cleanly: {type(error).__name__}: {error}")
