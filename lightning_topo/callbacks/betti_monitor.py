"""BettiMonitor: each watched layer's Betti numbers, per class, logged at the end of training epochs."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch
from lightning.pytorch.utilities import rank_zero_warn

from lightning_topo.callbacks.base import TopoCallback
from lightning_topo.monitoring import (
    INPUT,
    capture_activations,
    custom_scalars_layout,
    depth_figure,
    flatten_scalars,
    probe_from_batches,
    select_layers,
)
from lightning_topo.monitoring.report import SECONDS_TAG
from lightning_topo.topology import METRICS, betti_numbers

__all__ = ["BettiMonitor"]


class BettiMonitor(TopoCallback):
    """Log the Betti numbers of the data as each layer of the model sees it, every ``every_n_epochs`` epochs.

    At the end of a training epoch, on global rank zero only, the model runs in eval mode without
    gradients on a fixed probe (a seeded, class-balanced subsample of the training data, drawn once);
    forward hooks capture each watched layer's output, flattened per sample; the topology core
    computes the Betti numbers of each class's point cloud, layers in parallel threads.  Results go
    to every attached logger as scalars ``betti/<layer>/class_<c>/b<d>`` (step: the global step),
    plus ``betti/seconds`` (the monitor's own cost); a TensorBoard logger also gets a custom-scalars
    layout (one chart per class and dimension, a line per layer) and a Betti-against-depth figure.
    ``monitor.history`` keeps every epoch's numbers and is saved in checkpoints.

    A failure never stops training: NaN or constant activations, too few probe points for ``k`` or
    a computation error skip that layer (or class) with a warning; the other layers are logged.
    Configuration errors (a layer name that matches nothing) are raised when training starts.

    Works in ``lightning.pytorch`` and standalone ``pytorch_lightning`` Trainers alike.

    Args:
        layers: module names or glob patterns (``"features.*.act"``) to watch, or ``None`` for every
            activation module and the logits, in forward order. ``"input"``/``"logits"`` are pseudo-layers.
        probe_size: number of probe points (split evenly over the classes).
        dims: homology dimensions to log (``(0, 1)``: components and loops).
        per_class: one cloud per class (the protocol) or one cloud for the whole probe (``class_all``).
        every_n_epochs: compute every this many training epochs.
        include_input: also log the Betti numbers of the inputs themselves (layer ``"input"``).
        k, scale, metric: topology options passed to :func:`lightning_topo.topology.betti_numbers`.
        probe: ``(inputs, labels)`` tensors to use instead of sampling the training data.
        seed: seed of the probe's subsampling.
        n_jobs: threads for the (layer, class) computations (``-1``: one per CPU core).
        batch_size: probe batch size of the capture forward pass.
        log_figure: add the Betti-against-depth figure to TensorBoard loggers.

    Example:
        >>> from lightning_topo.callbacks import BettiMonitor
        >>> monitor = BettiMonitor(layers=["features.*.act", "logits"], every_n_epochs=50, k=14)
        >>> import lightning.pytorch as pl
        >>> trainer = pl.Trainer(callbacks=[monitor], max_epochs=1)  # doctest: +SKIP
    """

    def __init__(
        self,
        layers: Sequence[str] | None = None,
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
        n_jobs: int = -1,
        batch_size: int = 256,
        log_figure: bool = True,
    ) -> None:
        if layers is not None and (
            isinstance(layers, str) or not all(isinstance(x, str) for x in layers) or not layers
        ):
            raise ValueError(f"layers must be None or a non-empty list of module names/glob patterns, got {layers!r}")
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
        if probe is not None and (len(probe) != 2 or len(probe[0]) != len(probe[1])):
            raise ValueError("probe must be a pair (inputs, labels) of the same length")
        self.layers = None if layers is None else list(layers)
        self.probe_size, self.dims, self.per_class = probe_size, dims, per_class
        self.every_n_epochs, self.include_input = every_n_epochs, include_input
        self.topology = {"k": k, "scale": scale, "metric": metric, "max_dim": max(dims)}
        self.seed, self.n_jobs, self.batch_size, self.log_figure = seed, n_jobs, batch_size, log_figure
        self._given_probe = probe
        self._probe: tuple[torch.Tensor, torch.Tensor] | None = None
        self._watched: list[str] = []
        self._layout_written: set[int] = set()
        self.history: list[dict[str, Any]] = []

    # ------------------------------------------------------------------------------ set-up (every rank)
    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        if self._probe is None:
            self._probe = self._draw_probe(trainer)
        example = self._probe[0][:2]
        watched = select_layers(pl_module, self.layers, example)
        if self.include_input and INPUT not in watched:
            watched.insert(0, INPUT)
        self._watched = watched
        if self.per_class and len(torch.unique(self._probe[1])) * (self.topology["k"] + 1) > len(self._probe[1]):
            rank_zero_warn(
                f"BettiMonitor: the probe has {len(self._probe[1])} points for {len(torch.unique(self._probe[1]))} "
                f"classes, fewer than k+1={self.topology['k'] + 1} per class; raise probe_size or lower k"
            )

    def _draw_probe(self, trainer: Any) -> tuple[torch.Tensor, torch.Tensor]:
        if self._given_probe is not None:
            x, y = self._given_probe
            return x.detach().cpu(), torch.as_tensor(y).detach().cpu().reshape(-1)
        loader = getattr(trainer, "train_dataloader", None)
        if loader is None and getattr(trainer, "datamodule", None) is not None:
            loader = trainer.datamodule.train_dataloader()
        if loader is None:
            raise ValueError("BettiMonitor found no training data to draw its probe from; pass probe=(inputs, labels)")
        return probe_from_batches(loader, self.probe_size, self.seed)

    # ------------------------------------------------------------------------------ each epoch (rank zero)
    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if (trainer.current_epoch + 1) % self.every_n_epochs or not trainer.is_global_zero or self._probe is None:
            return
        try:
            entry = self.compute(pl_module, epoch=trainer.current_epoch, step=trainer.global_step)
            self.history.append(entry)
            self._log(trainer, entry)
        except Exception as error:  # monitoring must never cost the user their training run
            rank_zero_warn(f"BettiMonitor: epoch {trainer.current_epoch} skipped: {type(error).__name__}: {error}")

    def compute(self, model: torch.nn.Module, epoch: int = 0, step: int = 0) -> dict[str, Any]:
        """Betti numbers of every watched layer on the probe: a history entry (also usable on its own)."""
        start = time.perf_counter()
        x, y = self._probe
        outputs = capture_activations(model, x, self._watched, self.batch_size)
        groups = (
            {str(int(c)): torch.nonzero(y == c).flatten() for c in torch.unique(y)} if self.per_class else {"all": None}
        )
        jobs = [(layer, cls) for layer in self._watched for cls in groups]

        def run(job: tuple[str, str]) -> tuple[int, ...] | str:
            layer, cls = job
            cloud = outputs[layer] if groups[cls] is None else outputs[layer][groups[cls]]
            try:
                if not torch.isfinite(cloud).all():
                    return "NaN or Inf activations (is the layer diverging?)"
                if len(cloud) > 1 and bool((cloud == cloud[0]).all()):
                    return "constant activations (dead units?); Betti numbers would only describe a single point"
                return betti_numbers(cloud.numpy(), n_jobs=1, **self.topology)
            except Exception as error:
                return f"{type(error).__name__}: {error}"

        workers = (os.cpu_count() or 1) if self.n_jobs == -1 else max(1, self.n_jobs)
        with ThreadPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
            results = list(pool.map(run, jobs))
        betti: dict[str, dict[str, list[int]]] = {}
        for (layer, cls), result in zip(jobs, results):
            if isinstance(result, str):
                rank_zero_warn(f"BettiMonitor: skipped layer {layer!r}, class {cls} at epoch {epoch}: {result}")
                continue
            betti.setdefault(layer, {})[cls] = list(result)
        return {"epoch": epoch, "step": step, "seconds": time.perf_counter() - start, "betti": betti}

    def _log(self, trainer: Any, entry: dict[str, Any]) -> None:
        scalars = flatten_scalars(entry["betti"], self.dims)
        scalars[SECONDS_TAG] = entry["seconds"]
        trainer.callback_metrics.update({tag: torch.tensor(value) for tag, value in scalars.items()})
        classes = sorted({cls for per_class in entry["betti"].values() for cls in per_class})
        for logger in trainer.loggers:
            logger.log_metrics(scalars, step=entry["step"])
            experiment = getattr(logger, "experiment", None)
            if id(logger) not in self._layout_written and hasattr(experiment, "add_custom_scalars"):
                experiment.add_custom_scalars(custom_scalars_layout(self._watched, classes, self.dims))
                self._layout_written.add(id(logger))
            if self.log_figure and hasattr(experiment, "add_figure"):
                title = f"Betti numbers by layer, epoch {entry['epoch']}"
                experiment.add_figure(
                    "betti/depth_profile", depth_figure(entry["betti"], self._watched, self.dims, title), entry["step"]
                )

    # ------------------------------------------------------------------------------ checkpoints
    @property
    def state_key(self) -> str:
        """Distinct per configuration, so two monitors (say, two layer sets) can share one Trainer."""
        return self._generate_state_key(
            layers=self.layers,
            every_n_epochs=self.every_n_epochs,
            probe_size=self.probe_size,
            seed=self.seed,
            dims=self.dims,
            per_class=self.per_class,
            include_input=self.include_input,
            **self.topology,
        )

    def state_dict(self) -> dict[str, Any]:
        # the probe travels with the history: a resumed run measures the very same points
        return {"history": self.history, "probe": self._probe}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict.get("history", []))
        if state_dict.get("probe") is not None:
            self._probe = tuple(state_dict["probe"])

    def on_load_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: dict[str, Any]) -> None:
        # checkpoints written before the per-configuration state_key keyed the state by the class name
        legacy = checkpoint.get("callbacks", {}).get(type(self).__qualname__)
        if legacy is not None and not self.history:
            self.load_state_dict(legacy)
