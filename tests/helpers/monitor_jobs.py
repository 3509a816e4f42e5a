"""Stand-in Betti jobs for the monitor's tests: module-level, so spawned worker processes can import them."""

from __future__ import annotations

import os
import time
from pathlib import Path

from lightning_topo.monitoring.jobs import betti_job


def crash_once_job(items, **options):
    """Kill the worker process the first time (a segfault in gudhi, say), then compute normally."""
    marker = Path(os.environ["LIGHTNING_TOPO_TEST_MARKER"])
    if not marker.exists():
        marker.write_text("crashed")
        os._exit(3)
    return betti_job(items, **options)


def slow_job(items, **options):
    """Take a long time: the fit is interrupted while this runs."""
    time.sleep(float(os.environ.get("LIGHTNING_TOPO_TEST_SLEEP", "60")))
    return betti_job(items, **options)


def stubborn_job(marker: str) -> None:
    """Ignore SIGTERM and run for two minutes: a worker that only SIGKILL stops (say, stuck in native code)."""
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    Path(marker).write_text(str(os.getpid()))
    time.sleep(120)
