"""One monitored epoch on its way (:class:`Measurement`): its clouds captured as neighbour lists on the model's device
(:func:`capture`), its Betti jobs running, not yet logged; and how it survives a checkpoint (``to_state``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import torch

from lightning_topo.monitoring.batches import ModelInputs
from lightning_topo.monitoring.clouds import CloudKey, reduce_clouds
from lightning_topo.monitoring.hooks import randomness_kept
from lightning_topo.monitoring.outputs import OutputKey
from lightning_topo.topology.intrinsic import lists_intrinsic_dimension
from lightning_topo.topology.lists import NeighbourLists

__all__ = ["DISTANCE_DTYPES", "Measurement", "capture", "lists_from_state", "lists_to_state"]

#: ``distance_dtype`` names and their torch dtypes
DISTANCE_DTYPES = {"float64": torch.float64, "float32": torch.float32}


@dataclass
class Measurement:
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
            "items": [[list(key), lists_to_state(lists)] for key, lists in self.items],
            "ids": [[list(key), value] for key, value in self.ids.items()],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Measurement:
        return cls(
            epoch=state["epoch"],
            step=state["step"],
            capture_seconds=state["capture_seconds"],
            blocked_seconds=state["blocked_seconds"],
            skipped={tuple(key): reason for key, reason in state["skipped"]},
            items=[(tuple(key), lists_from_state(lists)) for key, lists in state["items"]],
            ids={tuple(key): value for key, value in state.get("ids", [])},
        )


def lists_to_state(lists: NeighbourLists) -> dict[str, Any]:
    """A cloud's neighbour lists as plain types and tensors (a checkpoint's form)."""
    arrays = {name: getattr(lists, name) for name in ("indices", "edges", "nearest")}
    return {
        "n_points": lists.n_points,
        "n_unique": lists.n_unique,
        "metric": lists.metric,
        **{name: None if a is None else torch.from_numpy(a) for name, a in arrays.items()},
    }


def lists_from_state(state: dict[str, Any]) -> NeighbourLists:
    """The inverse of :func:`lists_to_state`."""
    names = ("indices", "edges", "nearest")
    arrays = {name: None if state.get(name) is None else state[name].numpy() for name in names}
    return NeighbourLists(state["n_points"], state["n_unique"], state["metric"], **arrays)


def estimate_id(lists: NeighbourLists) -> float | str:
    """TwoNN of one cloud from the distances its neighbour lists kept, or the reason it cannot be estimated."""
    try:
        return lists_intrinsic_dimension(lists)
    except ValueError as error:
        return str(error)


def capture(
    model: torch.nn.Module,
    inputs: ModelInputs,
    clouds: Mapping[str, torch.Tensor | None],
    share: Mapping[str, Sequence[str]],
    *,
    epoch: int,
    step: int,
    topology: Mapping[str, Any],
    batch_size: int,
    memory_budget_mb: float,
    output_key: OutputKey,
    token_pooling: str | None,
    distance_dtype: str,
    forward: Callable,
    intrinsic_dimension: bool,
    layouts: Mapping[str, str] | None = None,
) -> Measurement:
    """Reduce this rank's ``share`` of (cloud -> layers) to neighbour lists in the forward hooks: all the training
    loop waits for. Clouds that cannot be measured are kept as the reason, and, with ``intrinsic_dimension``, each
    cloud's TwoNN is read from the distances the lists kept."""
    measurement = Measurement(epoch=epoch, step=step)
    timings: dict[str, float] = {}
    with randomness_kept(model, seed=0):  # a model that samples in eval mode: the same draws at every measurement
        found = reduce_clouds(
            model,
            inputs,
            clouds,
            share,
            metric=topology["metric"],
            k=topology["k"],
            scale=topology["scale"],
            batch_size=batch_size,
            memory_budget=int(memory_budget_mb * 2**20),
            output_key=output_key,
            token_pooling=token_pooling,
            layouts=layouts,
            distance_dtype=DISTANCE_DTYPES[distance_dtype],
            timings=timings,
            forward=forward,
        )
    measurement.capture_seconds = timings.get("capture", 0.0)
    measurement.items = [(key, lists) for key, lists in found.items() if not isinstance(lists, str)]
    measurement.skipped = {key: reason for key, reason in found.items() if isinstance(reason, str)}
    if intrinsic_dimension:
        measurement.ids = {key: estimate_id(lists) for key, lists in measurement.items}
    return measurement
