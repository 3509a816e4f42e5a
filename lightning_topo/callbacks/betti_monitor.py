"""BettiMonitor: each watched layer's Betti numbers, per class, logged while training goes on."""

from __future__ import annotations

import os
import sys
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from lightning_topo.callbacks.base import TopoCallback
from lightning_topo.monitoring import INPUT, custom_scalars_layout, flatten_scalars, group_by_class
from lightning_topo.monitoring.batches import (
    BatchReader,
    ForwardFn,
    ModelInputs,
    n_samples,
    pin,
    primary_tensor,
    take,
    to_host,
)
from lightning_topo.monitoring.clouds import CloudKey, reduce_clouds
from lightning_topo.monitoring.jobs import betti_job, render_job
from lightning_topo.monitoring.layers import ACTIVATIONS, BLOCKS, MAX_DEFAULT_LAYERS, resolve_layers
from lightning_topo.monitoring.outputs import TOKEN_POOLING, OutputKey
from lightning_topo.monitoring.pictures import write_picture
from lightning_topo.monitoring.probe import check_classes, draw_probe, resolve_classes
from lightning_topo.monitoring.probe_file import ProbeFileError, fingerprint, load_probe, save_probe
from lightning_topo.monitoring.runner import JobRunner
from lightning_topo.monitoring.tags import SECONDS_TAG, flatten_id_scalars, id_scalars_layout
from lightning_topo.topology import METRICS
from lightning_topo.topology.intrinsic import lists_intrinsic_dimension
from lightning_topo.topology.lists import NeighbourLists

__all__ = ["BettiMonitor"]

BLOCKED_TAG = "betti/blocked_seconds"
#: The figures are redrawn while their drawing has taken at most this share of the fit's time so far.
FIGURE_SHARE = 0.05
_DTYPES = {"float64": torch.float64, "float32": torch.float32}


def _default_workers() -> int:
    return max(1, min(4, (os.cpu_count() or 2) // 4))


def _checkpoint_directory(trainer: Any) -> str | None:
    """Where the probe file goes: the first checkpoint callback's folder, else the Trainer's root folder."""
    callback = getattr(trainer, "checkpoint_callback", None)
    directory = getattr(callback, "dirpath", None) if callback is not None else None
    return str(directory or getattr(trainer, "default_root_dir", None) or ".")


def _estimate_id(lists: NeighbourLists) -> float | str:
    """TwoNN of one cloud from the distances its neighbour lists kept, or the reason it cannot be estimated."""
    try:
        return lists_intrinsic_dimension(lists)
    except ValueError as error:
        return str(error)


def _class_list(classes: list[str]) -> str:
    """Classes for a warning: all of a few, the ends of many (a 100-class warning stays one readable line)."""
    if len(classes) <= 8:
        return ", ".join(classes)
    return f"{', '.join(classes[:3])}, ..., {classes[-1]} ({len(classes)} classes)"


def _device_of(module: torch.nn.Module) -> torch.device:
    """Where a module's parameters live (the CPU for a module without any)."""
    return next(iter(module.parameters()), torch.empty(0)).device


@dataclass
class _Measurement:
    """One monitored epoch on its way: captured, its Betti jobs running, not yet logged."""

    epoch: int
    step: int
    futures: list[Future] = field(default_factory=list)
    items: list[tuple[CloudKey, NeighbourLists]] = field(default_factory=list)
    skipped: dict[CloudKey, str] = field(default_factory=dict)
    ids: dict[CloudKey, float | str] = field(default_factory=dict)
    capture_seconds: float = 0.0
    blocked_seconds: float = 0.0

    def done(self) -> bool:
        return all(f.done() for f in self.futures)

    def results(self) -> tuple[dict[CloudKey, list[int] | str], float]:
        """Every (layer, cloud) result, with failures as messages, and the compute seconds spent."""
        found: dict[CloudKey, list[int] | str] = dict(self.skipped)
        seconds = self.capture_seconds
        for future in self.futures:
            try:
                for key, value, spent in future.result():
                    found[tuple(key)] = value
                    seconds += spent
            except Exception as error:  # a crashed worker loses its jobs, nothing else
                reason = f"the Betti worker failed ({type(error).__name__}: {error})"
                return {key: reason for key in found} | {("*", "*"): reason}, seconds
        return found, seconds

    def to_state(self) -> dict[str, Any]:
        """Plain types and tensors only, so that ``torch.load(weights_only=True)`` reads the checkpoint."""
        return {
            "epoch": self.epoch,
            "step": self.step,
            "capture_seconds": self.capture_seconds,
            "blocked_seconds": self.blocked_seconds,
            "skipped": [[list(key), reason] for key, reason in self.skipped.items()],
            "items": [[list(key), _lists_to_state(lists)] for key, lists in self.items],
            "ids": [[list(key), value] for key, value in self.ids.items()],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> _Measurement:
        return cls(
            epoch=state["epoch"],
            step=state["step"],
            capture_seconds=state["capture_seconds"],
            blocked_seconds=state["blocked_seconds"],
            skipped={tuple(key): reason for key, reason in state["skipped"]},
            items=[(tuple(key), _lists_from_state(lists)) for key, lists in state["items"]],
            ids={tuple(key): value for key, value in state.get("ids", [])},
        )


def _lists_to_state(lists: NeighbourLists) -> dict[str, Any]:
    arrays = {name: getattr(lists, name) for name in ("indices", "edges", "nearest")}
    return {
        "n_points": lists.n_points,
        "n_unique": lists.n_unique,
        "metric": lists.metric,
        **{name: None if a is None else torch.from_numpy(a) for name, a in arrays.items()},
    }


def _lists_from_state(state: dict[str, Any]) -> NeighbourLists:
    names = ("indices", "edges", "nearest")
    arrays = {name: None if state.get(name) is None else state[name].numpy() for name in names}
    return NeighbourLists(state["n_points"], state["n_unique"], state["metric"], **arrays)


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
    custom-scalars layout and the images ``betti/over_training`` (a heat map per class and dimension: layers by
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
            names and glob patterns (``"features.*.act"``; ``"input"``/``"logits"`` are pseudo-layers).
            ``None``: the activations, or the blocks when there are more than 32 activations (or none).
        probe_size: number of probe points (split evenly over the classes).
        classes: watch only these classes: a list of labels, or a number ``N`` of classes spread evenly over the
            label range (seeded by ``seed``). The probe is split over them alone, so a 100-class problem can be
            watched with ``classes=10``; ``None``: every class.
        input_keys: where the model inputs are in a batch (mapping keys or tuple indices), when the rule cannot
            tell; one key gives one tensor (``module(x)``), several a dict (``module(**inputs)``).
        label_key: where the labels are in a batch (a key, attribute or tuple index).
        forward_fn: ``forward_fn(module, inputs) -> output``: how to call the model on the probe's inputs.
        intrinsic_dimension: also log each watched layer's intrinsic dimension per class (TwoNN, Facco et al.
            2017, as Ansuini et al. 2019 track it through a network), ``id/<layer>/class_<c>``, from the very
            nearest-neighbour distances the Betti numbers' lists are built from: no extra forward or distance
            pass. A cloud the estimator cannot read (fewer than 3 distinct points) is skipped with a warning.
        dims: homology dimensions to log (``(0, 1)``: components and loops).
        per_class: one cloud per class (the protocol) or one cloud for the whole probe (``class_all``).
        every_n_epochs: measure every this many training epochs.
        include_input: also log the Betti numbers of the inputs themselves (layer ``"input"``).
        k, scale, metric: topology options, as in :func:`lightning_topo.topology.betti_numbers`.
        probe: ``(inputs, labels)`` tensors to use instead of sampling the training data, used as they are (no
            copy is made): grouped by class, and pinned (``inputs.pin_memory()``) for a GPU, they are read fastest.
            The probe the monitor draws itself is prepared that way.
        seed: seed of the probe's subsampling.
        num_workers: background processes for the Betti numbers (and figures); ``0`` computes them in the
            training loop (the synchronous mode). Default (``None``): a quarter of the CPU cores, 1 to 4, when the
            model trains on an accelerator; ``0`` when it trains on the CPU, where a background process only competes
            with training's own threads (measured on the D-I recipe, 2 cores: 2.6x slower fits with a worker, 1.2x
            without).
        max_pending: measurements in flight at most; a slower monitor makes training wait, never piles up.
        batch_size: probe batch size of the capture; a class up to this size is reduced in one forward pass
            without keeping any layer's output.
        memory_budget_mb: for a cloud larger than ``batch_size`` (``per_class=False``), the layer outputs kept
            at once; layers are measured in groups that fit it, one forward pass per group.
        output_key: how to find the logits in the model's output: a dict key or attribute (default: ``logits``
            if present, else the first tensor), a tuple index, or a function of the output.
        token_pooling: for ``(batch, tokens, features)`` outputs: ``None`` flattens tokens, ``"mean"``
            averages them, ``"first"`` keeps the first (CLS) token.
        distance_dtype: ``"float64"`` (the exact route's numbers) or ``"float32"`` (faster on consumer GPUs).
        log_figure: add the figures to TensorBoard loggers. They are redrawn at a measurement only while drawing
            them has taken at most a twentieth of the fit's time so far, and always after the last measurement: on
            the D-I recipe, drawing them at each of its 20 measurements doubled the fit's time on a 2-core CPU.

    Example:
        >>> from lightning_topo.callbacks import BettiMonitor
        >>> monitor = BettiMonitor(layers=["features.*.act", "logits"], every_n_epochs=50, k=14)
        >>> hf_monitor = BettiMonitor(layers="blocks", classes=10, token_pooling="first")
        >>> import lightning.pytorch as pl
        >>> trainer = pl.Trainer(callbacks=[monitor], max_epochs=1)  # doctest: +SKIP
        >>> monitor.plot("betti.png")  # doctest: +SKIP
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
        probe: tuple[torch.Tensor, torch.Tensor] | None = None,
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
        if not isinstance(intrinsic_dimension, bool):
            raise ValueError(f"intrinsic_dimension must be True or False, got {intrinsic_dimension!r}")
        self.intrinsic_dimension = intrinsic_dimension
        self._reader = BatchReader(input_keys, label_key, forward_fn)
        if not isinstance(probe_size, int) or probe_size < 4:
            raise ValueError(f"probe_size must be an integer >= 4, got {probe_size!r}")
        dims = tuple(dims)
        if not dims or any(not isinstance(d, int) or d < 0 for d in dims):
            raise ValueError(f"dims must be a non-empty list of non-negative integers, got {dims!r}")
        if not isinstance(every_n_epochs, int) or every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be a positive integer, got {every_n_epochs!r}")
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
        if not isinstance(k, int) or k < 2:
            raise ValueError(f"k must be an integer >= 2, got {k!r}")
        if not scale > 0:
            raise ValueError(f"scale must be positive, got {scale!r}")
        if probe is not None and (len(probe) != 2 or n_samples(probe[0]) != len(probe[1])):
            raise ValueError("probe must be a pair (inputs, labels) of the same length")
        if num_workers is not None and (not isinstance(num_workers, int) or num_workers < 0):
            raise ValueError(f"num_workers must be None or an integer >= 0 (0: synchronous), got {num_workers!r}")
        if not isinstance(max_pending, int) or max_pending < 1:
            raise ValueError(f"max_pending must be a positive integer, got {max_pending!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if not memory_budget_mb > 0:
            raise ValueError(f"memory_budget_mb must be positive, got {memory_budget_mb!r}")
        if token_pooling not in TOKEN_POOLING:
            raise ValueError(f"token_pooling must be one of {TOKEN_POOLING}, got {token_pooling!r}")
        if distance_dtype not in _DTYPES:
            raise ValueError(f"distance_dtype must be one of {tuple(_DTYPES)}, got {distance_dtype!r}")
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
        self._saved_probe: tuple[Path, str] | None = None  # the probe file of this run (or of the checkpoint)
        self._probe_directory: str | None = None
        self._is_global_zero = True
        self._watched: list[str] = []
        self._layout_written: set[int] = set()
        self._pending: deque[_Measurement] = deque()
        self._renders: deque[tuple[int, Future, float]] = deque()
        self._render_seconds, self._fit_start, self._figure_step = 0.0, time.perf_counter(), None
        self._runner: JobRunner | None = None
        self._betti_job = betti_job  # module-level, so spawned workers can unpickle it (tests swap it)
        self._distributed = False
        self._restored: list[dict[str, Any]] = []
        self.history: list[dict[str, Any]] = []

    # ------------------------------------------------------------------------------ public state
    @property
    def watched_layers(self) -> list[str]:
        """The layers measured, in forward order (resolved at train start, or by :meth:`set_probe` with a model)."""
        return list(self._watched)

    @property
    def probe(self) -> tuple[ModelInputs, torch.Tensor] | None:
        """The probe ``(inputs, labels)`` measured at every monitored epoch (``None`` before train start)."""
        return self._probe

    def set_probe(self, inputs: ModelInputs, labels: torch.Tensor, model: torch.nn.Module | None = None) -> None:
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
        labels = torch.as_tensor(labels).detach().cpu().reshape(-1)
        if n_samples(inputs) != len(labels):
            raise ValueError(f"the probe has {n_samples(inputs)} inputs but {len(labels)} labels")
        self._given_probe = (inputs, labels)
        self._probe = (inputs, labels)
        if model is not None:
            self._watched = self._resolve_watched(model)

    # ------------------------------------------------------------------------------ set-up (every rank)
    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self._is_global_zero = trainer.is_global_zero
        self._render_seconds, self._fit_start, self._figure_step = 0.0, time.perf_counter(), None
        self._probe_directory = _checkpoint_directory(trainer)
        if self._probe is None:
            probe = self._restore_probe()
            restored = probe is not None
            if probe is None:
                probe = self._draw_probe(trainer, pl_module)
            if trainer.world_size > 1:  # every rank measures its share of the very same points
                probe = trainer.strategy.broadcast(probe, src=0)
            given = self._given_probe is not None and not restored
            self._probe = probe if given else self._prepared_probe(probe, pl_module)
        elif self._probe_restored:  # a probe from an older checkpoint: prepared like a fresh one
            self._probe = self._prepared_probe(self._probe, pl_module)
        self._probe_restored = False
        self._watched = self._resolve_watched(pl_module, announce=True)
        self._distributed = trainer.world_size > 1
        if self._num_workers_given is None:
            self.num_workers = 0 if _device_of(pl_module).type == "cpu" else _default_workers()
        self._resubmit_restored()
        n_classes = len(torch.unique(self._probe[1]))
        if self.per_class and n_classes * (self.topology["k"] + 1) > len(self._probe[1]):
            rank_zero_warn(
                f"BettiMonitor: the probe has {len(self._probe[1])} points for {n_classes} "
                f"classes, fewer than k+1={self.topology['k'] + 1} per class, so no class can be measured; watch "
                f"fewer classes (classes=N or classes=[...]), raise probe_size or lower k"
            )

    def _resolve_watched(self, model: torch.nn.Module, announce: bool = False) -> list[str]:
        """The layers to measure on ``model``: the ``layers`` rule, with the inputs first when they are measurable."""
        example = take(self._probe[0], slice(0, 2))
        watched, rule = resolve_layers(model, self.layers, example, self._reader.forward)
        if announce:
            self._announce(model, watched, rule)
        if self.include_input and INPUT not in watched:
            if primary_tensor(example).is_floating_point():
                watched.insert(0, INPUT)
            elif announce:  # token ids: their differences mean nothing, so neither would their Betti numbers
                rank_zero_info(
                    "BettiMonitor: the model inputs are integer ids (tokens), so layer 'input' is not measured"
                )
        return watched

    def _announce(self, pl_module: Any, watched: list[str], rule: str) -> None:
        """Say which layers the default chose when it was not the plain activation rule, or that it found none."""
        hidden = [name for name in watched if name not in (INPUT, "logits")]
        if self.layers is None and rule == BLOCKS:
            rank_zero_info(
                f"BettiMonitor: {type(pl_module).__name__} has more than {MAX_DEFAULT_LAYERS} activation modules (or "
                f"none), so it watches the outputs of its {len(hidden)} blocks ({hidden[0]} ... {hidden[-1]}); "
                "pass layers='activations' for every activation, or names/glob patterns"
            )
        elif not hidden:
            rank_zero_warn(
                f"BettiMonitor: found no hidden layer to watch in {type(pl_module).__name__} (no activation module "
                "and no repeated blocks), so only the logits are measured; pass layers=[...] with module names or "
                "glob patterns (e.g. layers=['encoder.*']) to watch its layers"
            )

    def _prepared_probe(
        self, probe: tuple[ModelInputs, torch.Tensor], pl_module: Any
    ) -> tuple[ModelInputs, torch.Tensor]:
        """The monitor's own probe grouped by class (each class's cloud a view, not a copy per measurement) and,
        for a model on a GPU, in page-locked memory (faster copies to the device that do not stall the host)."""
        x, y = group_by_class(*probe) if self.per_class else probe
        if _device_of(pl_module).type == "cuda":
            try:
                x = pin(x)
            except RuntimeError:  # no page-locked memory to be had (a ulimit, say): pageable copies still work
                pass
        return x, y

    def _draw_probe(self, trainer: Any, pl_module: Any) -> tuple[ModelInputs, torch.Tensor]:
        if self._given_probe is not None:
            x, y = self._given_probe
            y = torch.as_tensor(y).detach().cpu().reshape(-1)
            x = to_host(x)  # as before: detached and on the host (a no-op view for a CPU tensor)
            chosen = resolve_classes(self.classes, pl_module, x, self.seed, self._reader.forward, self.output_key)
            if chosen is not None:
                keep = torch.nonzero(torch.isin(y, torch.tensor(chosen))).flatten()
                x, y = take(x, keep), y[keep]
            return x, y
        loader = getattr(trainer, "train_dataloader", None)
        if loader is None and getattr(trainer, "datamodule", None) is not None:
            loader = trainer.datamodule.train_dataloader()
        if loader is None:
            raise ValueError("BettiMonitor found no training data to draw its probe from; pass probe=(inputs, labels)")
        return draw_probe(
            loader, self.probe_size, pl_module, self.seed, self._reader, self.classes, output_key=self.output_key
        )

    def _resubmit_restored(self) -> None:
        """Measurements a checkpoint caught in flight: their Betti numbers are computed now, from the saved lists."""
        restored, self._restored = self._restored, []
        if restored and self._distributed:  # each rank saved only its share; rank zero's checkpoint lacks the rest
            rank_zero_warn(
                f"BettiMonitor: the measurements of epochs {[m['epoch'] for m in restored]} were in flight when the "
                "checkpoint was saved and cannot be completed under DDP; they are dropped"
            )
            return
        for state in restored:
            measurement = _Measurement.from_state(state)
            self._submit(measurement)
            self._pending.append(measurement)

    # ------------------------------------------------------------------------------ the work
    def _clouds(self) -> dict[str, torch.Tensor | None]:
        labels = self._probe[1]
        if not self.per_class:
            return {"all": None}
        return {str(int(c)): torch.nonzero(labels == c).flatten() for c in torch.unique(labels)}

    def _share(self, rank: int, world: int) -> dict[str, list[str]]:
        """The (cloud -> layers) this rank measures: whole clouds when there are enough, else layers."""
        clouds = list(self._clouds())
        if world <= 1:
            return {cloud: list(self._watched) for cloud in clouds}
        if len(clouds) >= world:
            return {cloud: list(self._watched) for cloud in clouds[rank::world]}
        return {cloud: self._watched[rank::world] for cloud in clouds}

    def _start(self, model: torch.nn.Module, epoch: int, step: int, rank: int = 0, world: int = 1) -> _Measurement:
        """Capture this rank's share and submit its Betti jobs: all the training loop waits for."""
        measurement = _Measurement(epoch=epoch, step=step)
        x, _ = self._probe
        timings: dict[str, float] = {}
        found = reduce_clouds(
            model,
            x,
            self._clouds(),
            self._share(rank, world),
            metric=self.topology["metric"],
            k=self.topology["k"],
            scale=self.topology["scale"],
            batch_size=self.batch_size,
            memory_budget=int(self.memory_budget_mb * 2**20),
            output_key=self.output_key,
            token_pooling=self.token_pooling,
            distance_dtype=_DTYPES[self.distance_dtype],
            timings=timings,
            forward=self._reader.forward,
        )
        measurement.capture_seconds = timings.get("capture", 0.0)
        measurement.items = [(key, lists) for key, lists in found.items() if not isinstance(lists, str)]
        measurement.skipped = {key: reason for key, reason in found.items() if isinstance(reason, str)}
        if self.intrinsic_dimension:
            measurement.ids = {key: _estimate_id(lists) for key, lists in measurement.items}
        self._submit(measurement)
        return measurement

    def _submit(self, measurement: _Measurement) -> None:
        """Send a measurement's neighbour lists to the Betti workers, in a few chunks."""
        runner, items = self._job_runner(), measurement.items
        chunks = max(1, min(len(items), 2 * max(1, runner.num_workers)))
        options = {"max_dim": self.topology["max_dim"], "scale": self.topology["scale"]}
        measurement.futures = [
            runner.submit(self._betti_job, items[part::chunks], **options)
            for part in range(chunks)
            if items[part::chunks]
        ]

    def _job_runner(self) -> JobRunner:
        if self._runner is None:
            self._runner = JobRunner(self.num_workers)
        return self._runner

    def _entry(
        self,
        measurement: _Measurement,
        found: dict[CloudKey, list[int] | str],
        seconds: float,
        ids: dict[CloudKey, float | str] | None = None,
    ) -> dict:
        """A history entry (and the warnings for what was skipped), in forward order of the layers."""
        epoch = measurement.epoch
        if ("*", "*") in found:
            rank_zero_warn(f"BettiMonitor: epoch {epoch} skipped: {found[('*', '*')]}")
            return {}
        betti = self._table(found, epoch, "skipped", lambda value: list(value))
        entry = {
            "epoch": epoch,
            "step": measurement.step,
            "seconds": seconds,
            "blocked_seconds": measurement.blocked_seconds,
            "betti": betti,
        }
        if self.intrinsic_dimension:
            entry["id"] = self._table(
                measurement.ids if ids is None else ids, epoch, "no intrinsic dimension for", float
            )
        return entry

    def _table(self, found: dict[CloudKey, Any], epoch: int, verb: str, convert: Any) -> dict[str, dict[str, Any]]:
        """``{layer: {cloud: value}}`` in forward order; each reason something failed is warned about once."""
        table: dict[str, dict[str, Any]] = {}
        skipped: dict[str, dict[str, list[str]]] = {}  # reason -> layer -> classes: one warning per reason
        clouds = list(self._clouds())
        for layer in self._watched:
            for cloud in clouds:
                value = found.get((layer, cloud))
                if value is None:
                    continue
                if isinstance(value, str):
                    skipped.setdefault(value, {}).setdefault(layer, []).append(cloud)
                    continue
                table.setdefault(layer, {})[cloud] = convert(value)
        for reason, layers in skipped.items():
            where = "; ".join(
                f"layer {layer!r}, class{'es' if len(classes) > 1 else ''} {_class_list(classes)}"
                for layer, classes in layers.items()
            )
            rank_zero_warn(f"BettiMonitor: {verb} {where} at epoch {epoch}: {reason}")
        return table

    def compute(self, model: torch.nn.Module, epoch: int = 0, step: int = 0) -> dict[str, Any]:
        """Betti numbers of every watched layer on the probe, synchronously: a history entry (usable on its own)."""
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
            measurement = _Measurement(epoch=trainer.current_epoch, step=trainer.global_step)
            measurement.skipped = {("*", "*"): f"{type(error).__name__}: {error}"}
        if not distributed and self._job_runner().synchronous:
            for future in measurement.futures:  # the synchronous mode: the loop waits for the Betti numbers too
                future.exception()
        measurement.blocked_seconds = time.perf_counter() - start
        self._pending.append(measurement)
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
        if self._figure_step is not None and trainer.is_global_zero:  # the last figures are always drawn
            self._render()
        self._flush_renders(trainer, block=True)
        self._close(cancel=False)

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        if trainer.world_size == 1:
            self._drain(trainer, block=False)
        self._flush_renders(trainer, block=False)
        dropped = [m.epoch for m in self._pending]
        if dropped:
            rank_zero_warn(
                f"BettiMonitor: training stopped ({type(exception).__name__}); the measurements of epochs "
                f"{dropped} were still being computed and are dropped"
            )
        self._pending.clear()
        self._renders.clear()
        self._close(cancel=True)

    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        self._close(cancel=True)

    def _close(self, cancel: bool) -> None:
        runner, self._runner = self._runner, None
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
            rank_zero_warn(f"BettiMonitor: could not stop its workers cleanly: {type(error).__name__}: {error}")

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
        self._flush_renders(trainer, block=False)

    def _gather_and_log(self, trainer: Any, measurement: _Measurement) -> None:
        """DDP: every rank's share of one measurement, gathered on every rank; rank zero logs."""
        found, seconds = measurement.results()
        shares: list[Any] = [None] * trainer.world_size
        torch.distributed.all_gather_object(shares, (found, seconds, measurement.blocked_seconds, measurement.ids))
        merged: dict[CloudKey, list[int] | str] = {}
        ids: dict[CloudKey, float | str] = {}
        for part, _, _, part_ids in shares:
            merged.update(part)
            ids.update(part_ids)
        measurement.blocked_seconds = max(blocked for _, _, blocked, _ in shares)
        measurement.ids = ids
        self._pending.remove(measurement)
        self._record(trainer, measurement, merged, sum(spent for _, spent, _, _ in shares))

    def _record(
        self, trainer: Any, measurement: _Measurement, found: dict[CloudKey, list[int] | str], seconds: float
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
        scalars = flatten_scalars(entry["betti"], self.dims)
        if "id" in entry:
            scalars.update(flatten_id_scalars(entry["id"]))
        scalars[SECONDS_TAG] = entry["seconds"]
        scalars[BLOCKED_TAG] = entry["blocked_seconds"]
        trainer.callback_metrics.update({tag: torch.tensor(value) for tag, value in scalars.items()})
        classes = list(self._clouds())
        for logger in trainer.loggers:
            logger.log_metrics(scalars, step=entry["step"])
            experiment = getattr(logger, "experiment", None)
            if id(logger) not in self._layout_written and hasattr(experiment, "add_custom_scalars"):
                layout = custom_scalars_layout(self._watched, classes, self.dims)
                if self.intrinsic_dimension:
                    layout.update(id_scalars_layout(classes))
                experiment.add_custom_scalars(layout)
                self._layout_written.add(id(logger))
        if self.log_figure and any(hasattr(getattr(lg, "experiment", None), "add_image") for lg in trainer.loggers):
            self._figure_step = entry["step"]  # the figures are due; drawn now if the budget allows, else later
            self._flush_renders(trainer, block=False)
            now = time.perf_counter()
            spent = self._render_seconds + sum(now - submitted for _, _, submitted in self._renders)  # in flight too
            if spent <= FIGURE_SHARE * (now - self._fit_start):
                self._render()

    def _render(self) -> None:
        """Draw the figures of the whole history so far, in the background (a worker, or a thread)."""
        snapshot = [dict(e) for e in self.history]
        future = self._job_runner().submit(render_job, snapshot, list(self._watched), list(self.dims))
        self._renders.append((self._figure_step, future, time.perf_counter()))
        self._figure_step = None

    def _flush_renders(self, trainer: Any, block: bool) -> None:
        while self._renders and (block or self._renders[0][1].done()):
            step, future, submitted = self._renders.popleft()
            try:
                images = future.result()
                self._render_seconds += time.perf_counter() - submitted
            except Exception as error:
                rank_zero_warn(f"BettiMonitor: could not draw the figures of step {step}: {type(error).__name__}")
                continue
            for logger in trainer.loggers:
                experiment = getattr(logger, "experiment", None)
                if hasattr(experiment, "add_image"):
                    for tag, picture in images.items():
                        write_picture(experiment, tag, picture, step)

    # ------------------------------------------------------------------------------ figures for papers
    def plot(self, path: str | Path, **options: Any) -> Path:
        """Write the Betti-over-training heat maps and the last depth profile of ``history`` to a PNG."""
        from lightning_topo.monitoring.figures import plot_history

        return plot_history(self.history, path, layers=self._watched or None, dims=self.dims, **options)

    # ------------------------------------------------------------------------------ checkpoints
    @property
    def state_key(self) -> str:
        """Distinct per configuration, so two monitors (say, two layer sets) can share one Trainer."""
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
            **self.topology,
        )

    def state_dict(self) -> dict[str, Any]:
        # every completed measurement; those still in flight as their neighbour lists, so a resumed run completes
        # them; and where the probe is (saved once per run beside the checkpoints), so a resumed run measures the
        # very same points without every checkpoint carrying its tensors
        pending = [] if self._distributed else [m.to_state() for m in self._pending]
        state: dict[str, Any] = {"history": self.history, "pending": pending + self._restored}
        reference = self._probe_reference()
        if reference is not None:
            state["probe_file"], state["probe_fingerprint"] = str(reference[0]), reference[1]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict.get("history", []))
        self._restored = list(state_dict.get("pending", []))
        if state_dict.get("probe") is not None:  # checkpoints that carried the probe's tensors themselves
            self._probe = tuple(state_dict["probe"])
            self._probe_restored = True
        elif state_dict.get("probe_file") is not None:
            self._saved_probe = (Path(state_dict["probe_file"]), state_dict["probe_fingerprint"])

    def _probe_reference(self) -> tuple[Path, str] | None:
        """The probe's file and fingerprint, writing the file the first time (global rank zero writes it)."""
        if self._saved_probe is None and self._probe is not None and self._probe_directory is not None:
            if self._is_global_zero:
                try:
                    self._saved_probe = save_probe(self._probe, self._probe_directory)
                except (OSError, RuntimeError) as error:  # no checkpoint is lost for want of the probe file
                    rank_zero_warn(
                        f"BettiMonitor: could not save the probe to {self._probe_directory} ({error}); a run resumed "
                        "from these checkpoints will draw a new probe"
                    )
                    self._probe_directory = None
            else:
                self._saved_probe = (Path(self._probe_directory) / f"betti_probe-{fingerprint(self._probe)}.pt", "")
        return self._saved_probe

    def _restore_probe(self) -> tuple[ModelInputs, torch.Tensor] | None:
        """The probe a checkpoint named, or ``None`` (with a warning) when its file is missing or changed."""
        if self._saved_probe is None:
            return None
        path, expected = self._saved_probe
        try:
            return load_probe(path, expected)
        except ProbeFileError as error:
            rank_zero_warn(
                f"BettiMonitor: {error}. The monitor draws a new probe, so the measurements from here on are of "
                "other points than the history's; restore the file to continue on the same points"
            )
            self._saved_probe = None
            return None

    def on_load_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: dict[str, Any]) -> None:
        # checkpoints written before the per-configuration state_key keyed the state by the class name
        legacy = checkpoint.get("callbacks", {}).get(type(self).__qualname__)
        if legacy is not None and not self.history:
            self.load_state_dict(legacy)

    def __getstate__(self) -> dict[str, Any]:
        # deep copies and pickling (checkpointing callbacks, spawn launchers) leave the live workers behind
        state = dict(self.__dict__)
        state.update(_runner=None, _pending=deque(), _renders=deque())
        return state
