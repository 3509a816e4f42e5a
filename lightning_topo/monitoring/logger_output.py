"""What the monitor writes to the Trainer's loggers: an entry's scalars (and, once per TensorBoard logger, the
custom-scalars layout), and its figures, drawn in the background within a time budget (:class:`FigureSchedule`).
"""

from __future__ import annotations

import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

from lightning_topo.monitoring.jobs import figure_tags, render_job
from lightning_topo.monitoring.pictures import write_picture
from lightning_topo.monitoring.runner import JobRunner
from lightning_topo.monitoring.tags import (
    SECONDS_TAG,
    custom_scalars_layout,
    flatten_id_scalars,
    flatten_scalars,
    id_scalars_layout,
    prefixed,
)

__all__ = [
    "BLOCKED_TAG",
    "FIGURE_SHARE",
    "FigureSchedule",
    "entry_scalars",
    "has_images",
    "log_scalars",
    "monitor_layout",
    "writes_anywhere",
]

BLOCKED_TAG = "betti/blocked_seconds"
#: The figures are redrawn while their drawing has taken at most this share of the fit's time so far.
FIGURE_SHARE = 0.05


def entry_scalars(entry: dict[str, Any], dims: Sequence[int], prefix: str | None = None) -> dict[str, float]:
    """``{tag: value}`` of a history entry: its Betti numbers, intrinsic dimensions and the monitor's own times,
    each tag under ``prefix`` (the monitor's ``tag_prefix``)."""
    scalars = flatten_scalars(entry["betti"], dims)
    if "id" in entry:
        scalars.update(flatten_id_scalars(entry["id"]))
    scalars[SECONDS_TAG] = entry["seconds"]
    scalars[BLOCKED_TAG] = entry["blocked_seconds"]
    return {prefixed(tag, prefix): value for tag, value in scalars.items()}


# every monitor's custom-scalars charts per TensorBoard writer: the plugin shows the layout written last alone, so
# each monitor (tag_prefix) writes the charts of all of them
_LAYOUTS: weakref.WeakKeyDictionary[Any, dict] = weakref.WeakKeyDictionary()


def log_scalars(
    loggers: Sequence[Any],
    scalars: dict[str, float],
    step: int,
    layout: Callable[[], dict],
    layout_written: set[int],
) -> None:
    """Log ``scalars`` at ``step`` to every logger; a TensorBoard one also gets ``layout()`` the first time, joined
    with the charts other monitors wrote to the same writer."""
    for logger in loggers:
        logger.log_metrics(scalars, step=step)
        experiment = getattr(logger, "experiment", None)
        if id(logger) not in layout_written and hasattr(experiment, "add_custom_scalars"):
            charts = _LAYOUTS.setdefault(experiment, {})
            charts.update(layout())
            experiment.add_custom_scalars(charts)
            layout_written.add(id(logger))


def monitor_layout(
    watched: Sequence[str], classes: Sequence[str], dims: Sequence[int], ids: bool, prefix: str | None = None
) -> dict:
    """The custom-scalars charts of the Betti numbers (and, with ``ids``, of the intrinsic dimensions)."""
    layout = custom_scalars_layout(watched, classes, dims, prefix)
    if ids:
        layout.update(id_scalars_layout(classes, prefix))
    return layout


def writes_anywhere(loggers: Sequence[Any]) -> bool:
    """Whether any logger writes what it is given (``logger=False`` leaves none, ``fast_dev_run`` a ``DummyLogger``).

    Example:
        >>> from lightning.pytorch.loggers.logger import DummyLogger
        >>> writes_anywhere([]), writes_anywhere([DummyLogger()])
        (False, False)
    """
    return any(type(logger).__name__ != "DummyLogger" for logger in loggers)


def has_images(loggers: Sequence[Any]) -> bool:
    """Whether any logger takes images (a TensorBoard one)."""
    return any(hasattr(getattr(logger, "experiment", None), "add_image") for logger in loggers)


class FigureSchedule:
    """When the figures are drawn and how they reach the loggers.

    The figures are due at every logged measurement. They are drawn (in the background: a worker, or a thread)
    while drawing has taken at most :data:`FIGURE_SHARE` of the fit's time so far, counting drawings in flight,
    and always after the last measurement; finished drawings are written at the step they show.

    ``renders`` holds the drawings in flight, oldest first, as ``(step, future, submitted, weight)``: a drawing split
    into ``n`` jobs (one per image, on several worker processes) is ``n`` entries of weight ``1/n``, so its jobs'
    seconds count as one drawing's.
    """

    def __init__(self, prefix: str | None = None) -> None:
        self.renders: deque[tuple[int, Future, float, float]] = deque()
        self.prefix = prefix  # the monitor's tag_prefix, before every image tag
        self.reset()

    def reset(self) -> None:
        """A new fit: nothing due, no drawing time spent."""
        self.seconds, self.fit_start, self.due_step = 0.0, time.perf_counter(), None
        self.renders.clear()

    def due(self, step: int, runner: JobRunner, history: list[dict], watched: list[str], dims: list[int]) -> None:
        """A measurement was logged at ``step``: draw its figures now if the budget allows, else later."""
        self.due_step = step
        now = time.perf_counter()
        spent = self.seconds + sum(weight * (now - submitted) for _, _, submitted, weight in self.renders)  # in flight
        if spent <= FIGURE_SHARE * (now - self.fit_start):
            self.draw(runner, history, watched, dims)

    def draw(self, runner: JobRunner, history: list[dict], watched: list[str], dims: list[int]) -> None:
        """Draw the figures of the whole history so far, in the background: with several worker processes one job
        per image, drawn side by side, so the end of a fit waits for the slowest image rather than for all of them
        in turn; else one job (threads of this process would share Matplotlib's global state)."""
        snapshot = [dict(entry) for entry in history]
        jobs = [[tag] for tag in figure_tags(snapshot)] if runner.num_workers > 1 else [None]
        submitted = time.perf_counter()
        for tags in jobs:
            future = runner.submit(render_job, snapshot, list(watched), list(dims), tags)
            self.renders.append((self.due_step, future, submitted, 1 / len(jobs)))
        self.due_step = None

    def flush(self, loggers: Sequence[Any], block: bool, warn: Callable[[str], Any]) -> None:
        """Write the finished drawings (all of them, waiting, with ``block``), oldest first."""
        while self.renders and (block or self.renders[0][1].done()):
            step, future, submitted, weight = self.renders.popleft()
            try:
                pictures = future.result()
                self.seconds += weight * (time.perf_counter() - submitted)
            except Exception as error:
                warn(f"BettiMonitor: could not draw the figures of step {step}: {type(error).__name__}")
                continue
            for logger in loggers:
                experiment = getattr(logger, "experiment", None)
                if hasattr(experiment, "add_image"):
                    for tag, picture in pictures.items():
                        write_picture(experiment, prefixed(tag, self.prefix), picture, step)
