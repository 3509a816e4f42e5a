"""Which clouds the monitor measures and how the work is shared under DDP: every rank measures whole classes when
there are enough of them, else a share of the layers, and every rank gathers the shares of each measurement.

Example:
    >>> clouds = class_clouds(torch.tensor([0, 1, 0, 2]), per_class=True)
    >>> {cloud: rows.tolist() for cloud, rows in clouds.items()}
    {'0': [0, 2], '1': [1], '2': [3]}
    >>> share(list(clouds), ["a", "b"], rank=1, world=2)
    {'1': ['a', 'b']}
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from lightning_topo.monitoring.batches import classes_present
from lightning_topo.monitoring.clouds import CloudKey
from lightning_topo.monitoring.measurement import Measurement

__all__ = ["class_clouds", "gather", "share"]


def class_clouds(labels: torch.Tensor, per_class: bool) -> dict[str, torch.Tensor | None]:
    """``{cloud: probe rows}``: one cloud per class (``"0"``, ``"1"``, ...), or ``{"all": None}`` for the whole probe
    (also a probe whose points have no class, :data:`~lightning_topo.monitoring.batches.NO_CLASS`). Points of a
    negative label (no class: unlabelled, or ignored by the loss) belong to no class's cloud.

    Example:
        >>> {cloud: rows.tolist() for cloud, rows in class_clouds(torch.tensor([0, -1, 1, 0]), True).items()}
        {'0': [0, 3], '1': [2]}
    """
    present = classes_present(labels)
    if not per_class or not present:
        return {"all": None}
    return {str(c): torch.nonzero(labels == c).flatten() for c in present}


def share(clouds: Sequence[str], watched: Sequence[str], rank: int, world: int) -> dict[str, list[str]]:
    """The (cloud -> layers) one rank measures: whole clouds when there are enough, else layers."""
    if world <= 1:
        return {cloud: list(watched) for cloud in clouds}
    if len(clouds) >= world:
        return {cloud: list(watched) for cloud in clouds[rank::world]}
    return {cloud: list(watched[rank::world]) for cloud in clouds}


def gather(measurement: Measurement, world_size: int) -> tuple[dict[CloudKey, list[int] | str], float]:
    """Every rank's share of one measurement, gathered on every rank (a collective: all ranks call it, in the same
    order). Returns the merged results and compute seconds; the measurement takes the slowest rank's blocked time
    and every rank's intrinsic dimensions."""
    found, seconds = measurement.results()
    shares: list = [None] * world_size
    torch.distributed.all_gather_object(shares, (found, seconds, measurement.blocked_seconds, measurement.ids))
    merged: dict[CloudKey, list[int] | str] = {}
    ids: dict[CloudKey, float | str] = {}
    for part, _, _, part_ids in shares:
        merged.update(part)
        ids.update(part_ids)
    measurement.blocked_seconds = max(blocked for _, _, blocked, _ in shares)
    measurement.ids = ids
    return merged, sum(spent for _, spent, _, _ in shares)
