"""BettiMonitor: each watched layer's Betti numbers, per class, logged while training goes on.

The callback holds the Lightning hooks, the arguments and the state; the work is done by ``monitoring/``:
the probe (:mod:`~lightning_topo.monitoring.probe_preparation`), the watched layers
(:mod:`~lightning_topo.monitoring.watched_layers`), a measurement's capture and its checkpoint form
(:mod:`~lightning_topo.monitoring.measurement`), the Betti jobs (:mod:`~lightning_topo.monitoring.scheduling`),
DDP shares (:mod:`~lightning_topo.monitoring.sharing`), history entries
(:mod:`~lightning_topo.monitoring.history_entry`) and what reaches the loggers
(:mod:`~lightning_topo.monitoring.logger_output`).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
import weakref
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from lightning_topo.arguments import check_count, check_flag, check_positive, check_seed
from lightning_topo.callbacks.base import TopoCallback, runs_in_spawned_processes
from lightning_topo.callbacks.batch_preparation import fit_batch_preparation
from lightning_topo.monitoring.batches import BatchReader, ForwardFn, ModelInputs, classes_present, has_class, take
from lightning_topo.monitoring.clouds import CloudKey
from lightning_topo.monitoring.history_entry import history_entry
from lightning_topo.monitoring.jobs import betti_job
from lightning_topo.monitoring.layers import ACTIVATIONS, BLOCKS
from lightning_topo.monitoring.layouts import layer_layouts
from lightning_topo.monitoring.logger_output import (
    FigureSchedule,
    entry_scalars,
    has_images,
    log_scalars,
    monitor_layout,
    writes_anywhere,
)
from lightning_topo.monitoring.measurement import DISTANCE_DTYPES, Measurement, capture
from lightning_topo.monitoring.outputs import TOKEN_POOLING, OutputKey, TokenMask
from lightning_topo.monitoring.probe import check_classes, checked_probe, probe_of_classes
from lightning_topo.monitoring.probe_preparation import (
    ProbeStore,
    checkpoint_directory,
    device_of,
    draw_monitor_probe,
    prepared_probe,
)
from lightning_topo.monitoring.runner import JobRunner
from lightning_topo.monitoring.scheduling import close_runner, submit_betti_jobs
from lightning_topo.monitoring.sharing import class_clouds, gather, share
from lightning_topo.monitoring.trace import trace_forward
from lightning_topo.monitoring.watched_layers import watched_layers
from lightning_topo.topology import METRICS

__all__ = ["BettiMonitor"]


def _default_workers() -> int:
    return max(1, min(4, (os.cpu_count() or 2) // 4))


class BettiMonitor(TopoCallback):
    """Log the Betti numbers of the data as each layer of the model sees it, every ``every_n_epochs`` epochs.

    At the end of a monitored training epoch the model runs in eval mode without gradients on a fixed probe (a
    seeded, class-balanced subsample of the training data, drawn once), one class at a time; a forward hook on
    each watched layer reduces that class's outputs to k-nearest-neighbour lists with torch, on the model's
    device (distances in float64 by default).  That is all the training loop waits for.  The Betti numbers are
    computed from the lists in background worker processes (gudhi, on the CPU) while training goes on, and
    logged from the main thread at a later hook at the global step of the epoch they measured, in order, to
    every attached logger: scalars ``betti/<layer>/class_<c>/b<d>``, ``betti/seconds`` (the monitor's compute
    time) and ``betti/blocked_seconds`` (the time the training loop waited); a TensorBoard logger also gets a
    custom-scalars layout and the images ``betti/over_training`` (a heat map per dimension: each class's layers by
    monitored epochs) and ``betti/depth_profile``, drawn in the workers too.  ``monitor.history`` keeps every
    measurement and is saved in checkpoints.  Under DDP every rank measures a share of the classes (or of the
    layers) on its own device and rank zero logs the gathered numbers.

    A failure never stops training: NaN or constant activations, too few probe points for ``k``, an output the
    monitor cannot read or a crashed worker skip that layer (or that measurement) with a warning.
    Configuration errors (a layer name that matches nothing) are raised when training starts.

    Works in ``lightning.pytorch`` and standalone ``pytorch_lightning`` Trainers alike.

    Models of any convention are read by one rule (:mod:`lightning_topo.monitoring.batches`): ``(x, y)`` tuples,
    dicts, Hugging Face batches (``input_ids``, ``attention_mask``, ``pixel_values``, ``labels``) and dataclasses;
    the model is called ``module(x)``, ``module(**inputs)`` (labels left out) or ``module(*inputs)``.

    Args:
        layers: what to watch, in forward order, followed by the logits: ``"activations"`` (every activation
            module: torch's, timm's, transformers', this package's), ``"blocks"`` (the outputs of the model's
            repeated blocks: ``encoder.layer.N``, ``blocks.N``, ``layerK.N``, ``stages.K.blocks.N``), or module
            names and glob patterns (``"features.*.act"``; ``"input"``/``"logits"`` are pseudo-layers). A module
            that runs more than once (one ``self.act`` after every layer) is a layer per call: ``"act-call1"``,
            ``"act-call2"``, ..., and ``"act"`` for its last; the activation rule watches each.
            ``None``: the activations, or the blocks when there are more than 32 activations (or none).
        probe_size: number of probe points (split evenly over the classes).
        classes: watch only these classes: a list of labels, or a number ``N`` of classes spread evenly over the
            label range (seeded by ``seed``). The probe is split over them alone, so a 100-class problem can be
            watched with ``classes=10``; ``None``: every class, unless the probe would give each fewer than
            ``k + 1`` points: then ``probe_size // 100`` of them (10 of CIFAR-100's in 1,000 points), said in an
            info line. A probe given by hand is kept to them (``N``: of its own labels); naming a class it does not
            hold is an error.
        input_keys: where the model inputs are in a batch (mapping keys or tuple indices), when the rule cannot
            tell; one key gives one tensor (``module(x)``), several a dict (``module(**inputs)``).
        label_key: where the labels are in a batch (a key, attribute or tuple index).
        forward_fn: ``forward_fn(module, inputs) -> output``: how to call the model on the probe's inputs.
        intrinsic_dimension: also log each watched layer's intrinsic dimension per class (TwoNN, Facco et al.
            2017, as Ansuini et al. 2019 track it through a network), ``id/<layer>/class_<c>``, from the very
            nearest-neighbour distances the Betti numbers' lists are built from: no extra forward or distance
            pass. A cloud the estimator cannot read (fewer than 3 distinct points) is skipped with a warning.
        dims: homology dimensions to log (``(0, 1)``: components and loops).
        per_class: one cloud per class (the protocol) or one cloud for the whole probe (``class_all``). Training
            batches with no class per sample (multi-label, soft or regression targets, a language model's token
            labels, or no labels) give one cloud whatever this says, and an info line at train start says why.
        every_n_epochs: measure every this many training epochs.
        include_input: also log the Betti numbers of the inputs themselves (layer ``"input"``).
        k, scale, metric: topology options, as in :func:`lightning_topo.topology.betti_numbers`.
        probe: ``(inputs, labels)`` tensors to use instead of sampling the training data (``labels=None``: one
            cloud), used as they are (no copy is made): grouped by class, and pinned (``inputs.pin_memory()``) for a
            GPU, they are read fastest. The probe the monitor draws itself is prepared that way.
        seed: seed of the probe's subsampling.
        num_workers: background processes for the Betti numbers (and figures); ``0`` computes them in the
            training loop (the synchronous mode). Default (``None``): a quarter of the CPU cores, 1 to 4, when the
            model trains on an accelerator; ``0`` when it trains on the CPU, where a background process only competes
            with training's own threads.
        max_pending: measurements in flight at most; a slower monitor makes training wait, never piles up.
        batch_size: probe batch size of the capture; a class up to this size is reduced in one forward pass
            without keeping any layer's output.
        memory_budget_mb: for a cloud larger than ``batch_size`` (``per_class=False``), the layer outputs kept
            at once; layers are measured in groups that fit it, one forward pass per group. Classes that share a
            forward pass share it only as far as their widest layer's outputs (and its float64 copy) fit it.
        output_key: how to find the logits in the model's output: a dict key or attribute (default: ``logits``
            if present, else the first tensor), a tuple index, or a function of the output.
        token_pooling: for ``(batch, tokens, features)`` outputs: ``None`` flattens tokens, ``"mean"``
            averages them, ``"first"`` keeps the first (CLS) token, ``"last"`` the last (a causal model's). With an
            ``attention_mask`` in the batch, ``"mean"`` and ``"last"`` read only the tokens it keeps (padding never
            moves a point); an encoder-decoder's decoder layers and logits read its ``decoder_attention_mask``
            (none: every position). A 1-d convolution's ``(batch, channels, steps)`` output is pooled over its steps
            (:mod:`~lightning_topo.monitoring.layouts`).
        distance_dtype: ``"float64"`` (the exact route's numbers) or ``"float32"`` (faster on consumer GPUs).
        log_figure: add the figures to TensorBoard loggers. They are redrawn at a measurement only while drawing
            them has taken at most a twentieth of the fit's time so far, and always after the last measurement
            (drawn at every measurement, they can cost a small full-batch fit as much as its training).
        tag_prefix: put every tag this monitor writes under ``<tag_prefix>/`` (scalars, images, the custom-scalars
            charts and ``trainer.callback_metrics``: ``full/betti/<layer>/class_<c>/b<d>``). Two monitors in one
            Trainer with a logger need different ones (a cheap one on the logits every epoch and a full one every
            50), or their numbers would interleave under the same tags; two under the same tags fail at setup,
            saying so.

    Example:
        >>> from lightning_topo.callbacks import BettiMonitor
        >>> monitor = BettiMonitor(layers=["features.*.act", "logits"], every_n_epochs=50, k=14)
        >>> hf_monitor = BettiMonitor(layers="blocks", classes=10, token_pooling="first")
        >>> import lightning.pytorch as pl
        >>> trainer = pl.Trainer(callbacks=[monitor], max_epochs=1)  # a fit needs a model and data  # doctest: +SKIP
        >>> monitor.plot("betti.png")  # after a fit; writes a file  # doctest: +SKIP
    """

    def __init__(
        self,
        layers: str | Sequence[str] | None = None,
        probe_size: int = 1000,
        dims: Sequence[int] = (0, 1),
        per_class: bool = True,
        every_n_epochs: int = 1,
        include_input: bool = True,
        k: int = 14,
        scale: float = 2.5,
        metric: str = "knn",
        probe: tuple[ModelInputs, torch.Tensor | None] | None = None,
        seed: int = 0,
        num_workers: int | None = None,
        max_pending: int = 2,
        batch_size: int = 256,
        memory_budget_mb: float = 512,
        output_key: OutputKey = None,
        token_pooling: str | None = None,
        distance_dtype: str = "float64",
        log_figure: bool = True,
        classes: int | Sequence[int] | None = None,
        input_keys: Sequence[str | int] | None = None,
        label_key: str | int | None = None,
        forward_fn: ForwardFn | None = None,
        intrinsic_dimension: bool = False,
        tag_prefix: str | None = None,
    ) -> None:
        if isinstance(layers, str):
            if layers not in (ACTIVATIONS, BLOCKS):
                raise ValueError(
                    f"layers must be None, 'activations', 'blocks' or a list of module names/glob patterns, got "
                    f"{layers!r}"
                )
        elif layers is not None and (not layers or not all(isinstance(x, str) for x in layers)):
            raise ValueError(f"layers must be None or a non-empty list of module names/glob patterns, got {layers!r}")
        self.classes = check_classes(classes)
        if tag_prefix is not None and (not isinstance(tag_prefix, str) or not tag_prefix.strip("/")):
            raise ValueError(f"tag_prefix must be None or a non-empty name such as 'full', got {tag_prefix!r}")
        self.tag_prefix = None if tag_prefix is None else tag_prefix.strip("/")
        check_flag("intrinsic_dimension", intrinsic_dimension)
        self.intrinsic_dimension = intrinsic_dimension
        self._reader = BatchReader(input_keys, label_key, forward_fn)
        check_count("probe_size", probe_size, minimum=4)
        dims = tuple(dims)
        if not dims or any(not isinstance(d, int) or isinstance(d, bool) or d < 0 for d in dims):
            raise ValueError(f"dims must be a non-empty list of non-negative integers, got {dims!r}")
        check_count("every_n_epochs", every_n_epochs)
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
        check_count("k", k, minimum=2)
        check_positive("scale", scale)  # infinity would skip every layer at every epoch
        check_seed(seed)
        for name, flag in (("per_class", per_class), ("include_input", include_input), ("log_figure", log_figure)):
            check_flag(name, flag)
        if probe is not None:
            if not isinstance(probe, (tuple, list)) or len(probe) != 2:
                raise ValueError("probe must be a pair (inputs, labels)")
            probe = probe_of_classes(checked_probe(*probe), self.classes, seed)
        if num_workers is not None:
            check_count("num_workers (None: chosen by the device, 0: synchronous)", num_workers, minimum=0)
        check_count("max_pending", max_pending)
        check_count("batch_size", batch_size)
        check_positive("memory_budget_mb", memory_budget_mb)
        if token_pooling not in TOKEN_POOLING:
            raise ValueError(f"token_pooling must be one of {TOKEN_POOLING}, got {token_pooling!r}")
        if distance_dtype not in DISTANCE_DTYPES:
            raise ValueError(f"distance_dtype must be one of {tuple(DISTANCE_DTYPES)}, got {distance_dtype!r}")
        self.layers = layers if layers is None or isinstance(layers, str) else list(layers)
        self.probe_size, self.dims, self.per_class = probe_size, dims, per_class
        self.every_n_epochs, self.include_input = every_n_epochs, include_input
        self.topology = {"k": k, "scale": scale, "metric": metric, "max_dim": max(dims)}
        self.seed, self.batch_size, self.log_figure = seed, batch_size, log_figure
        self._num_workers_given = num_workers
        self.num_workers = 0 if num_workers is None else num_workers  # None: decided at fit start (device)
        self.max_pending, self.memory_budget_mb = max_pending, memory_budget_mb
        self.output_key, self.token_pooling, self.distance_dtype = output_key, token_pooling, distance_dtype
        self._given_probe = probe
        self._probe: tuple[ModelInputs, torch.Tensor] | None = None
        self._probe_restored = False
        self._probe_store = ProbeStore(rank_zero_warn)
        self._is_global_zero = True
        self._watched: list[str] = []
        self._layouts: dict[str, str] = {}  # watched (batch, channels, steps) and (steps, batch, ...) outputs
        self._layout_written: set[int] = set()
        self._pending: deque[Measurement] = deque()
        self._figures = FigureSchedule(self.tag_prefix)
        self._runner: JobRunner | None = None
        self._betti_job = betti_job  # module-level, so spawned workers can unpickle it (tests swap it)
        self._distributed = False
        self._restored: list[dict[str, Any]] = []
        self.history: list[dict[str, Any]] = []
        self._trainer: weakref.ref[Any] | None = None  # the Trainer of the run the state above belongs to
        self._measured_in_fit = 0  # epochs this fit has measured (none by its end: said)
        self._unsaved_epochs: list[int] = []  # in flight, unsaved, when a DDP checkpoint was written (said on resume)
        self._trained_in_fit = False  # whether this fit reached on_train_start (not where it trains no epoch)

    # ------------------------------------------------------------------------------ public state
    @property
    def watched_layers(self) -> list[str]:
        """The layers measured, in forward order (resolved at train start, or by :meth:`set_probe` with a model)."""
        return list(self._watched)

    @property
    def probe(self) -> tuple[ModelInputs, torch.Tensor] | None:
        """The probe ``(inputs, labels)`` measured at every monitored epoch (``None`` before train start)."""
        return self._probe

    def set_probe(self, inputs: ModelInputs, labels: torch.Tensor | None, model: torch.nn.Module | None = None) -> None:
        """Measure these points, used as they are (as ``probe=``); with ``model``, also resolve the watched layers,
        so that :meth:`compute` works outside a fit.

        Example:
            >>> from torch import nn
            >>> monitor = BettiMonitor(k=3, log_figure=False)
            >>> net = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 2))
            >>> monitor.set_probe(torch.randn(40, 2), torch.arange(40) % 2, model=net)
            >>> monitor.watched_layers
            ['input', '1', 'logits']
            >>> sorted(monitor.compute(net)["betti"]["1"])
            ['0', '1']
        """
        inputs, labels = probe_of_classes(checked_probe(inputs, labels), self.classes, self.seed)
        self._given_probe = (inputs, labels)
        self._probe = (inputs, labels)
        if model is not None:
            self._watched = self._resolve_watched(model)

    # ------------------------------------------------------------------------------ set-up (every rank)
    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        # one monitor in the callbacks of several Trainers (a sweep): each Trainer's fit is a run of its own, with its
        # own probe and history; a second fit of the same Trainer continues the first (epochs 2, 3 ...)
        if stage != "fit":
            return
        self._check_tags_apart(trainer)
        if runs_in_spawned_processes(trainer):
            rank_zero_warn(
                "BettiMonitor: this fit runs in processes Lightning starts for it (strategy='ddp_spawn' or "
                "'ddp_notebook'), so the monitor you hold keeps no history, probe or watched layers after it: read "
                "the numbers in the logger (or trainer.callback_metrics), or use strategy='ddp' to keep "
                "monitor.history"
            )
        previous = self._trainer() if self._trainer is not None else None
        if self._trainer is not None and previous is not trainer:
            self._start_new_run()
        self._trainer = weakref.ref(trainer)
        self._measured_in_fit, self._trained_in_fit = 0, False  # said at the fit's end when it measured nothing

    def _check_tags_apart(self, trainer: Any) -> None:
        """Two monitors of one Trainer under the same tags would interleave their numbers in every chart (with no
        logger that writes, each keeps its own history: nothing to mix up but ``callback_metrics``' last values)."""
        twins = [c for c in trainer.callbacks if isinstance(c, BettiMonitor) and c.tag_prefix == self.tag_prefix]
        if len(twins) > 1 and writes_anywhere(trainer.loggers):
            shared = "no tag_prefix" if self.tag_prefix is None else f"tag_prefix={self.tag_prefix!r}"
            raise ValueError(
                f"{len(twins)} BettiMonitors in this Trainer have {shared}, so they would write the same TensorBoard "
                "tags (betti/<layer>/class_<c>/b<d>, betti/seconds, the figures) and interleave their numbers; give "
                "each its own, e.g. BettiMonitor(..., tag_prefix='full')"
            )

    def _start_new_run(self) -> None:
        """Forget the previous Trainer's run: its history (the list a caller holds keeps it), the probe drawn from its
        data (a ``probe=`` given stays) and its probe file; a checkpoint this fit resumes from restores its own."""
        if self.history:
            rank_zero_info(
                "BettiMonitor: a new Trainer fits with this monitor, so its history starts anew (the previous run's "
                f"{len(self.history)} measurement{'s' if len(self.history) > 1 else ''} stay in the list you hold) "
                "and its probe is drawn from this fit's data"
            )
        self.history = []
        self._probe, self._probe_restored, self._restored = None, False, []
        self._probe_store = ProbeStore(rank_zero_warn)
        self._watched, self._layouts, self._layout_written = [], {}, set()

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self._is_global_zero = trainer.is_global_zero
        self._figures.reset()
        self._probe_store.directory = checkpoint_directory(trainer)
        if self._probe is None:
            resumed = getattr(trainer, "ckpt_path", None)  # a run folder moved whole: its probe file beside it
            probe = self._probe_store.restore(Path(resumed).parent if resumed else None, self._probe_store.directory)
            restored = probe is not None
            if probe is None:
                probe = draw_monitor_probe(
                    trainer,
                    pl_module,
                    self._given_probe,
                    self.probe_size,
                    self.seed,
                    dataclasses.replace(self._reader, prepare=fit_batch_preparation(trainer, pl_module)),
                    self.classes,
                    self.output_key,
                    info=rank_zero_info,
                    least=self.topology["k"] + 1 if self.per_class and self.classes is None else None,
                )
            if trainer.world_size > 1:  # every rank measures its share of the very same points
                probe = trainer.strategy.broadcast(probe, src=0)
            given = self._given_probe is not None and not restored
            self._probe = probe if given else prepared_probe(probe, self.per_class, pl_module)
        elif self._probe_restored:  # a probe from an older checkpoint: prepared like a fresh one
            self._probe = prepared_probe(self._probe, self.per_class, pl_module)
        self._probe_restored = False
        self._watched = self._resolve_watched(pl_module, announce=True)
        self._distributed = trainer.world_size > 1
        if self._num_workers_given is None:
            self.num_workers = 0 if device_of(pl_module).type == "cpu" else _default_workers()
        self._resubmit_restored()
        self._trained_in_fit = True
        if not writes_anywhere(trainer.loggers):
            spawned = runs_in_spawned_processes(trainer)  # the history stays in the spawned processes
            kept = "trainer.callback_metrics" if spawned else "monitor.history and trainer.callback_metrics"
            rank_zero_info(
                "BettiMonitor: the trainer has no logger (logger=False, barebones or fast_dev_run), so its numbers "
                f"are kept in {kept} only"
            )
        labelled = self._probe[1][has_class(self._probe[1])]  # a negative label is no class (unlabelled, ignored)
        n_classes = len(classes_present(labelled))
        if self.per_class and n_classes * (self.topology["k"] + 1) > len(labelled):
            rank_zero_warn(
                f"BettiMonitor: the probe has {len(labelled)} points for {n_classes} "
                f"classes, fewer than k+1={self.topology['k'] + 1} per class, so no class can be measured; watch "
                f"fewer classes (classes=N or classes=[...]), raise probe_size or lower k"
            )

    def _resolve_watched(self, model: torch.nn.Module, announce: bool = False) -> list[str]:
        """The watched layers, from one traced pass that also tells which of them ``token_pooling`` must pool over
        their steps, and which are laid out sequence first (``self._layouts``)."""
        example = take(self._probe[0], slice(0, 2))
        info, warn = (rank_zero_info, rank_zero_warn) if announce else (None, None)
        trace = trace_forward(model, example, self._reader.forward)
        watched = watched_layers(
            model,
            self.layers,
            example,
            self._reader.forward,
            self.include_input,
            info,
            warn,
            trace,
            self.output_key,
            probe=self._probe[0],
        )
        masks = TokenMask.of_model_inputs(model, example)
        self._layouts = layer_layouts(model, trace, watched, self.token_pooling, info, masks, self.output_key)
        return watched

    def _resubmit_restored(self) -> None:
        """Measurements a checkpoint caught in flight: their Betti numbers are computed now, from the saved lists."""
        restored, self._restored = self._still_restored(), []
        measured = {entry["epoch"] for entry in self.history}
        unsaved, self._unsaved_epochs = [e for e in self._unsaved_epochs if e not in measured], []
        if unsaved:
            rank_zero_warn(
                f"BettiMonitor: the measurements of epochs {unsaved} were in flight when the checkpoint was saved under "
                "DDP, where each rank holds only its share until the next epoch gathers them, so this run cannot "
                "complete them and they are missing from the history"
            )
        if restored and self._distributed:  # each rank saved only its share; rank zero's checkpoint lacks the rest
            rank_zero_warn(
                f"BettiMonitor: the measurements of epochs {[m['epoch'] for m in restored]} were in flight when the "
                "checkpoint was saved and cannot be completed under DDP; they are dropped"
            )
            return
        for state in restored:
            measurement = Measurement.from_state(state)
            self._submit(measurement)
            self._pending.append(measurement)

    def _still_restored(self) -> list[dict[str, Any]]:
        """The restored in-flight measurements that are neither in the history nor being computed here. A checkpoint
        restored in the middle of a fit (the learning-rate finder's, at an epoch's start) names the measurement this
        process is still computing; kept, it was measured again, out of order, after a resume."""
        done = {(entry.get("epoch"), entry.get("step")) for entry in self.history}
        done |= {(measurement.epoch, measurement.step) for measurement in self._pending}
        return [state for state in self._restored if (state["epoch"], state["step"]) not in done]

    # ------------------------------------------------------------------------------ the work
    def _clouds(self) -> list[str]:
        return list(class_clouds(self._probe[1], self.per_class))

    def _start(self, model: torch.nn.Module, epoch: int, step: int, rank: int = 0, world: int = 1) -> Measurement:
        """Capture this rank's share and submit its Betti jobs: all the training loop waits for."""
        clouds = class_clouds(self._probe[1], self.per_class)
        measurement = capture(
            model,
            self._probe[0],
            clouds,
            share(list(clouds), self._watched, rank, world),
            epoch=epoch,
            step=step,
            topology=self.topology,
            batch_size=self.batch_size,
            memory_budget_mb=self.memory_budget_mb,
            output_key=self.output_key,
            token_pooling=self.token_pooling,
            layouts=self._layouts,
            distance_dtype=self.distance_dtype,
            forward=self._reader.forward,
            intrinsic_dimension=self.intrinsic_dimension,
        )
        self._submit(measurement)
        return measurement

    def _submit(self, measurement: Measurement) -> None:
        options = {"max_dim": self.topology["max_dim"], "scale": self.topology["scale"]}
        submit_betti_jobs(self._job_runner(), self._betti_job, measurement, options)

    def _job_runner(self) -> JobRunner:
        if self._runner is None:
            self._runner = JobRunner(self.num_workers)
        return self._runner

    def _entry(self, measurement: Measurement, found: dict[CloudKey, list[int] | str], seconds: float) -> dict:
        return history_entry(
            measurement, found, seconds, self._watched, self._clouds(), rank_zero_warn, self.intrinsic_dimension
        )

    def compute(self, model: torch.nn.Module, epoch: int = 0, step: int = 0) -> dict[str, Any]:
        """Betti numbers of every watched layer on the probe, synchronously: a history entry (usable on its own)."""
        if self._probe is None:
            raise RuntimeError(
                "BettiMonitor.compute needs a probe: call monitor.set_probe(inputs, labels) first (outside a fit), "
                "or pass probe=(inputs, labels) when building the monitor and call compute after train start"
            )
        if not self._watched:  # set_probe without a model: the layers are resolved on this one
            self._watched = self._resolve_watched(model)
        start = time.perf_counter()
        runner, self._runner = self._runner, JobRunner(0)
        try:
            measurement = self._start(model, epoch, step)
            found, seconds = measurement.results()
        finally:  # an exception (a Ctrl-C) on the way out cancels the jobs rather than waiting for them
            self._runner.close(cancel=sys.exc_info()[0] is not None)
            self._runner = runner
        measurement.blocked_seconds = time.perf_counter() - start
        return self._entry(measurement, found, seconds)

    # ------------------------------------------------------------------------------ the training loop's side
    def _monitored(self, trainer: Any) -> bool:
        return (trainer.current_epoch + 1) % self.every_n_epochs == 0 and self._probe is not None

    def on_train_batch_end(self, trainer: Any, pl_module: Any, *args: Any) -> None:
        if trainer.world_size == 1:
            self._drain(trainer, block=False)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        distributed = trainer.world_size > 1
        if not distributed:
            self._drain(trainer, block=False)
        if not self._monitored(trainer):
            return
        self._measured_in_fit += 1
        start = time.perf_counter()
        if not distributed:
            while len(self._pending) >= self.max_pending:  # a slow monitor makes training wait
                self._drain(trainer, block=True, limit=1)
        older = list(self._pending) if distributed else []
        try:
            measurement = self._start(
                pl_module, trainer.current_epoch, trainer.global_step, trainer.global_rank, trainer.world_size
            )
        except Exception as error:  # monitoring must never cost the user their training run
            measurement = Measurement(epoch=trainer.current_epoch, step=trainer.global_step)
            measurement.skipped = {("*", "*"): f"{type(error).__name__}: {error}"}
        self._pending.append(measurement)  # before any wait: a Ctrl-C in it names this epoch as dropped
        if not distributed and self._job_runner().synchronous:
            for future in measurement.futures:  # the synchronous mode: the loop waits for the Betti numbers too
                future.exception()
        measurement.blocked_seconds = time.perf_counter() - start
        if distributed:  # collective: every rank gathers the older measurements, in order, at the same epochs
            for previous in older:
                self._gather_and_log(trainer, previous)
        elif self._job_runner().synchronous:
            self._drain(trainer, block=True)

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.world_size > 1:
            for measurement in list(self._pending):
                self._gather_and_log(trainer, measurement)
        else:
            self._drain(trainer, block=True)
        if self._figures.due_step is not None and trainer.is_global_zero:  # the last figures are always drawn
            self._figures.draw(self._job_runner(), self.history, self._watched, list(self.dims))
        self._figures.flush(trainer.loggers, block=True, warn=rank_zero_warn)
        self._close(cancel=False)

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        """Say so when the fit measured nothing: Lightning skips ``on_train_start/end`` where it trains no epoch."""
        if self._measured_in_fit or getattr(trainer, "fast_dev_run", False):  # a smoke test: no notice
            return
        if not self._trained_in_fit:
            rank_zero_warn(
                "BettiMonitor measured nothing: the fit trained no epoch (a run resumed from a checkpoint of its last "
                "epoch, max_epochs already reached, or limit_train_batches=0); raise max_epochs to train and measure on"
            )
            return
        n = self.every_n_epochs
        when = "every epoch" if n == 1 else f"once every {n} epochs (the ends of epochs {n - 1}, {2 * n - 1}, ...)"
        rank_zero_warn(
            f"BettiMonitor measured no epoch of this fit: it measures {when} and the fit ended before one of them "
            "did (max_epochs, max_steps or an early stop); lower every_n_epochs to see this run's topology"
        )

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        if trainer.world_size == 1:
            self._drain(trainer, block=False)
        self._figures.flush(trainer.loggers, block=False, warn=rank_zero_warn)
        dropped = [m.epoch for m in self._pending]
        if dropped:
            running = any(f.running() for m in self._pending for f in m.futures)
            waits = (
                "; the synchronous mode (num_workers=0) lets its running Betti computations finish first, since "
                "gudhi cannot be interrupted (num_workers >= 1 stops at once)"
                if running and self._runner is not None and self._runner.synchronous
                else ""
            )
            rank_zero_warn(
                f"BettiMonitor: training stopped ({type(exception).__name__}); the measurements of epochs "
                f"{dropped} were still being computed and are dropped{waits}"
            )
        self._pending.clear()
        self._figures.renders.clear()
        self._close(cancel=True)

    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        self._close(cancel=True)

    def _close(self, cancel: bool) -> None:
        runner, self._runner = self._runner, None
        close_runner(runner, cancel, rank_zero_warn)

    # ------------------------------------------------------------------------------ results, in order
    def _drain(self, trainer: Any, block: bool, limit: int | None = None) -> None:
        """Log finished measurements, oldest first; an unfinished one holds back the later ones (steps stay in order)."""
        logged = 0
        while self._pending and (limit is None or logged < limit):
            if not block and not self._pending[0].done():
                break
            measurement = self._pending[0]
            found = measurement.results()  # waits; a Ctrl-C here leaves the measurement pending (and reported)
            self._pending.popleft()
            self._record(trainer, measurement, *found)
            logged += 1
        self._figures.flush(trainer.loggers, block=False, warn=rank_zero_warn)

    def _gather_and_log(self, trainer: Any, measurement: Measurement) -> None:
        """DDP: every rank's share of one measurement, gathered on every rank; rank zero logs."""
        found, seconds = gather(measurement, trainer.world_size)
        self._pending.remove(measurement)
        self._record(trainer, measurement, found, seconds)

    def _record(
        self, trainer: Any, measurement: Measurement, found: dict[CloudKey, list[int] | str], seconds: float
    ) -> None:
        entry = self._entry(measurement, found, seconds)
        if not entry:
            return
        self.history.append(entry)
        if trainer.is_global_zero:
            try:
                self._log(trainer, entry)
            except Exception as error:
                rank_zero_warn(f"BettiMonitor: could not log epoch {entry['epoch']}: {type(error).__name__}: {error}")

    def _log(self, trainer: Any, entry: dict[str, Any]) -> None:
        scalars = entry_scalars(entry, self.dims, self.tag_prefix)
        trainer.callback_metrics.update({tag: torch.tensor(value) for tag, value in scalars.items()})
        log_scalars(trainer.loggers, scalars, entry["step"], self._layout, self._layout_written)
        if self.log_figure and has_images(trainer.loggers):
            self._figures.flush(trainer.loggers, block=False, warn=rank_zero_warn)
            self._figures.due(entry["step"], self._job_runner(), self.history, self._watched, list(self.dims))

    def _layout(self) -> dict:
        """The custom-scalars charts (built only for a logger that has not had them yet)."""
        return monitor_layout(self._watched, self._clouds(), self.dims, self.intrinsic_dimension, self.tag_prefix)

    # ------------------------------------------------------------------------------ figures for papers
    def plot(self, path: str | Path, **options: Any) -> Path:
        """Write the Betti-over-training heat maps and the last depth profile of ``history`` to a PNG."""
        from lightning_topo.monitoring.figures import plot_history

        return plot_history(self.history, path, layers=self._watched or None, dims=self.dims, **options)

    # ------------------------------------------------------------------------------ checkpoints
    @property
    def state_key(self) -> str:
        """Distinct per configuration, so two monitors (say, two layer sets) can share one Trainer."""
        return self._state_key(self.tag_prefix)

    def _state_key(self, tag_prefix: str | None) -> str:
        return self._generate_state_key(
            layers=self.layers,
            **({"classes": self.classes} if self.classes is not None else {}),
            every_n_epochs=self.every_n_epochs,
            probe_size=self.probe_size,
            seed=self.seed,
            dims=self.dims,
            per_class=self.per_class,
            include_input=self.include_input,
            **({"intrinsic_dimension": True} if self.intrinsic_dimension else {}),
            **({"tag_prefix": tag_prefix} if tag_prefix is not None else {}),
            **self.topology,
        )

    def state_dict(self) -> dict[str, Any]:
        # every completed measurement; those still in flight as their neighbour lists, so a resumed run completes
        # them; and where the probe is (saved once per run beside the checkpoints), so a resumed run measures the
        # very same points without every checkpoint carrying its tensors
        pending = [] if self._distributed else [m.to_state() for m in self._pending]
        state: dict[str, Any] = {"history": self.history, "pending": pending + self._still_restored()}
        if self._distributed and self._pending:  # each rank holds its share alone: named, so a resume can say so
            state["unsaved_epochs"] = [m.epoch for m in self._pending]
        reference = self._probe_store.reference(self._probe, self._is_global_zero)
        if reference is not None:
            state["probe_file"], state["probe_fingerprint"] = str(reference[0]), reference[1]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict.get("history", []))
        self._restored = list(state_dict.get("pending", []))
        self._unsaved_epochs = list(state_dict.get("unsaved_epochs", []))
        if state_dict.get("probe") is not None:  # checkpoints that carried the probe's tensors themselves
            self._probe = tuple(state_dict["probe"])
            self._probe_restored = True
        elif state_dict.get("probe_file") is not None:
            self._probe_store.saved = (Path(state_dict["probe_file"]), state_dict["probe_fingerprint"])

    def on_load_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: dict[str, Any]) -> None:
        # checkpoints written before the per-configuration state_key keyed the state by the class name, and those
        # written before this monitor was given its tag_prefix keyed it without one
        states = checkpoint.get("callbacks", {})
        if self.state_key in states or self.history:
            return
        for older in (self._state_key(None), type(self).__qualname__):
            if states.get(older) is not None:
                self.load_state_dict(states[older])
                return

    def __getstate__(self) -> dict[str, Any]:
        # deep copies and pickling (checkpointing callbacks, spawn launchers) leave the live workers behind
        state = dict(self.__dict__)
        state.update(_runner=None, _pending=deque(), _figures=FigureSchedule(self.tag_prefix), _trainer=None)
        return state
