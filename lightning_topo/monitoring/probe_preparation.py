"""The monitor's probe over a run: drawn from the training data (or taken as given), prepared for fast reads
(grouped by class, pinned for a GPU), saved once per run beside the checkpoints and found again on resume
(:class:`ProbeStore`): a missing or changed file is reported, never silently replaced."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from lightning_topo.monitoring.batches import BatchReader, ModelInputs, pin, to_host
from lightning_topo.monitoring.outputs import OutputKey
from lightning_topo.monitoring.probe import draw_probe, group_by_class
from lightning_topo.monitoring.probe_file import ProbeFileError, fingerprint, load_probe, save_probe

__all__ = ["ProbeStore", "checkpoint_directory", "device_of", "draw_monitor_probe", "fit_batch_limit", "prepared_probe"]

Probe = tuple[ModelInputs, torch.Tensor]


def device_of(module: torch.nn.Module) -> torch.device:
    """Where a module's parameters live (the CPU for a module without any)."""
    return next(iter(module.parameters()), torch.empty(0)).device


def checkpoint_directory(trainer: Any) -> str:
    """Where the probe file goes: the first checkpoint callback's folder, else the Trainer's root folder."""
    callback = getattr(trainer, "checkpoint_callback", None)
    directory = getattr(callback, "dirpath", None) if callback is not None else None
    return str(directory or getattr(trainer, "default_root_dir", None) or ".")


def prepared_probe(probe: Probe, per_class: bool, model: torch.nn.Module) -> Probe:
    """The probe grouped by class (each class's cloud a view, not a copy per measurement) and, for a model on a
    GPU, in page-locked memory (faster copies to the device that do not stall the host)."""
    x, y = group_by_class(*probe) if per_class else probe
    if device_of(model).type == "cuda":
        try:
            x = pin(x)
        except RuntimeError:  # no page-locked memory to be had (a ulimit, say): pageable copies still work
            pass
    return x, y


def draw_monitor_probe(
    trainer: Any,
    model: torch.nn.Module,
    given: Probe | None,
    size: int,
    seed: int,
    reader: BatchReader,
    classes: int | Sequence[int] | None,
    output_key: OutputKey,
    info: Callable[[str], Any] | None = None,
    least: int | None = None,
) -> Probe:
    """The points to measure: the ``given`` probe (on the host; kept to ``classes`` when it was given, by
    :func:`~lightning_topo.monitoring.probe.probe_of_classes`), else a seeded, class-balanced draw of ``size``
    points from the Trainer's training data (its first loader of several, which ``info`` is told; ``least``: the
    fewest points a class needs, see :func:`~lightning_topo.monitoring.probe.draw_probe`). Training batches with no
    class per sample (multi-label, soft, regression or token labels, or none) give one cloud, and ``info`` says why."""
    if given is not None:
        x, y = given  # y: checked_probe's flat labels on the host
        return to_host(x), y  # to_host: a no-op view for a CPU tensor
    loader = getattr(trainer, "train_dataloader", None)
    if loader is None and getattr(trainer, "datamodule", None) is not None:
        loader = trainer.datamodule.train_dataloader()
    if loader is None:
        raise ValueError("BettiMonitor found no training data to draw its probe from; pass probe=(inputs, labels)")
    return draw_probe(
        loader,
        size,
        model,
        seed,
        reader,
        classes,
        output_key=output_key,
        info=info,
        least=least,
        one_cloud=True,
        batch_limit=fit_batch_limit(trainer),
    )


def fit_batch_limit(trainer: Any, dev_run: bool = False) -> int | None:
    """How many training batches a fit under ``overfit_batches`` reads each epoch (the same first ones, unshuffled),
    so that a probe drawn from them holds what the model sees; with ``dev_run``, under ``fast_dev_run`` too (its
    batches); ``None`` for any other fit. (A dev run's probe is drawn as a fit's: a probe of its one batch would hold
    too few points a class to measure, and the dev run would check nothing of the measurement.)

    Example:
        >>> from types import SimpleNamespace
        >>> fit_batch_limit(SimpleNamespace(overfit_batches=2, fast_dev_run=False, num_training_batches=2))
        2
        >>> dev_run = SimpleNamespace(overfit_batches=0.0, fast_dev_run=True, num_training_batches=1)
        >>> fit_batch_limit(dev_run), fit_batch_limit(dev_run, dev_run=True)
        (None, 1)
        >>> fit_batch_limit(SimpleNamespace(overfit_batches=0.0, fast_dev_run=False, num_training_batches=50)) is None
        True
    """
    if not getattr(trainer, "overfit_batches", 0) and not (dev_run and getattr(trainer, "fast_dev_run", False)):
        return None
    batches = getattr(trainer, "num_training_batches", None)
    if isinstance(batches, (int, float)) and math.isfinite(batches) and batches >= 1:
        return int(batches)
    return None


class ProbeStore:
    """The probe's file of this run (or of the checkpoint it resumes): written once, beside the checkpoints, by
    global rank zero; checkpoints carry only its path and fingerprint."""

    def __init__(self, warn: Callable[[str], Any]) -> None:
        self.warn = warn
        self.saved: tuple[Path, str] | None = None  # (file, fingerprint)
        self.directory: str | None = None

    def reference(self, probe: Probe | None, is_global_zero: bool) -> tuple[Path, str] | None:
        """The probe's file and fingerprint, writing the file the first time."""
        if self.saved is None and probe is not None and self.directory is not None:
            if is_global_zero:
                try:
                    self.saved = save_probe(probe, self.directory)
                except (OSError, RuntimeError) as error:  # no checkpoint is lost for want of the probe file
                    self.warn(
                        f"BettiMonitor: could not save the probe to {self.directory} ({error}); a run resumed "
                        "from these checkpoints will draw a new probe"
                    )
                    self.directory = None
            else:
                self.saved = (Path(self.directory) / f"betti_probe-{fingerprint(probe)}.pt", "")
        return self.saved

    def restore(self, *elsewhere: str | Path | None) -> Probe | None:
        """The probe a checkpoint named, or ``None`` (with a warning) when its file is missing or changed. Where the
        named path is gone, a file of its name in one of the folders ``elsewhere`` (the resumed checkpoint's own, the
        checkpoint folder of this fit) is read instead: a run folder moved or copied whole keeps its probe."""
        if self.saved is None:
            return None
        path, expected = self.saved
        if not path.is_file():
            moved = [Path(folder) / path.name for folder in elsewhere if folder is not None]
            path = next((candidate for candidate in moved if candidate.is_file()), path)
            self.saved = (path, expected)
        try:
            return load_probe(path, expected)
        except ProbeFileError as error:
            self.warn(
                f"BettiMonitor: {error}. The monitor draws a new probe, so the measurements from here on are of "
                "other points than the history's; restore the file to continue on the same points"
            )
            self.saved = None
            return None
