"""What the monitor's background workers run: Betti numbers from neighbour lists, and its figures.

Both functions are torch-free and module-level, so a spawned worker process imports little (numpy, scipy,
gudhi, matplotlib) and can unpickle them.  Every item's failure is returned as a message, never raised, so one
bad cloud costs only itself.

Example:
    >>> import numpy as np
    >>> from lightning_topo.topology import numpy_neighbour_lists
    >>> t = np.linspace(0, 2 * np.pi, 60, endpoint=False)
    >>> lists = numpy_neighbour_lists(np.stack([np.cos(t), np.sin(t)], 1), k=4)
    >>> [(key, value) for key, value, _ in betti_job([(("layer", "0"), lists)], max_dim=1, scale=2.5)]
    [(('layer', '0'), [1, 1])]
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from lightning_topo.monitoring.memo import BETTI_MEMO
from lightning_topo.monitoring.pictures import Picture, encode_png

__all__ = ["betti_job", "figure_tags", "render_job"]


def betti_job(
    items: Sequence[tuple[Any, Any]], *, max_dim: int, scale: float
) -> list[tuple[Any, list[int] | str, float]]:
    """``[(key, Betti numbers or the reason it failed, seconds)]`` for ``[(key, NeighbourLists)]``; lists this process
    measured before are answered from its :data:`~lightning_topo.monitoring.memo.BETTI_MEMO`."""
    from lightning_topo.topology import betti_from_neighbours

    out: list[tuple[Any, list[int] | str, float]] = []
    for key, lists in items:
        start = time.perf_counter()
        try:
            digest = BETTI_MEMO.key(lists, max_dim=max_dim, scale=scale)
            value: list[int] | str | None = BETTI_MEMO.get(digest)
            if value is None:  # lists not seen before (an unchanged cloud, e.g. the input layer, is found again)
                value = [int(b) for b in betti_from_neighbours(lists, max_dim=max_dim, scale=scale)]
                BETTI_MEMO.put(digest, value)
        except Exception as error:
            value = f"{type(error).__name__}: {error}"
        out.append((key, value, time.perf_counter() - start))
    return out


def figure_tags(history: Sequence[dict[str, Any]]) -> list[str]:
    """The TensorBoard images the monitor draws of ``history``: the Betti figures, and the intrinsic-dimension
    ones when its entries have IDs (the monitor's ``intrinsic_dimension=True``).

    Example:
        >>> figure_tags([{"epoch": 0, "betti": {"a": {"0": [1, 0]}}}])
        ['betti/over_training', 'betti/depth_profile']
    """
    tags = ["betti/over_training", "betti/depth_profile"]
    if any(entry.get("id") for entry in history):
        tags += ["id/depth_profile", "id/over_training"]
    return tags


def render_job(
    history: Sequence[dict[str, Any]], layers: Sequence[str], dims: Sequence[int], tags: Sequence[str] | None = None
) -> dict[str, Picture]:
    """The monitor's TensorBoard images as ``{tag: Picture}`` (PNG): Betti over training, depth profile, and, when
    the history has intrinsic dimensions, their depth profile (one line per epoch) and heat map (see
    :func:`figure_tags`). ``tags``: only those images (default: all)."""
    from lightning_topo.monitoring.figures import depth_figure, over_training_figure
    from lightning_topo.monitoring.id_figures import id_depth_figure, id_over_training_figure

    last = history[-1]
    draw = {
        "betti/over_training": lambda: over_training_figure(history, layers, dims),
        "betti/depth_profile": lambda: depth_figure(
            last["betti"], layers, dims, f"Betti numbers by layer, epoch {last['epoch']}"
        ),
        "id/depth_profile": lambda: id_depth_figure(history, layers),
        "id/over_training": lambda: id_over_training_figure(history, layers),
    }
    return {tag: encode_png(draw[tag]()) for tag in figure_tags(history) if tags is None or tag in tags}
