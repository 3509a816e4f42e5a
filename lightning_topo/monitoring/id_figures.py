"""How the monitor draws intrinsic dimensions: Ansuini et al.'s curve (ID against layer depth, one line per
monitored epoch) and a heat map of every layer over training, beside the Betti heat maps. A history entry keeps the
values as ``entry["id"]``: ``{layer: {cloud: float}}``. Pure Matplotlib: the worker processes import it to draw.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
from matplotlib import colormaps, rc_context
from matplotlib.figure import Figure

from lightning_topo.monitoring.figures import _FONTS  # one font choice for every figure the monitor draws

if TYPE_CHECKING:  # annotations only: the worker process that draws the figures imports no tags module
    from lightning_topo.monitoring.tags import EpochIDs

__all__ = ["depth_curve", "id_depth_figure", "id_over_training_figure"]


def depth_curve(ids: EpochIDs, layers: Sequence[str]) -> np.ndarray:
    """One value per layer: the mean over the clouds measured at that layer (NaN where none was).

    Example:
        >>> depth_curve({"a": {"0": 2.0, "1": 4.0}}, ["a", "b"]).tolist()
        [3.0, nan]
    """
    out = np.full(len(layers), np.nan)
    for i, layer in enumerate(layers):
        values = [v for v in ids.get(layer, {}).values() if math.isfinite(v)]
        if values:
            out[i] = float(np.mean(values))
    return out


def _short(layer: str, limit: int = 22) -> str:
    return layer if len(layer) <= limit else "..." + layer[-(limit - 3) :]


def id_depth_figure(history: Sequence[Mapping], layers: Sequence[str]) -> Figure:
    """Intrinsic dimension against layer depth, one line per monitored epoch (later epochs darker).

    The value at a layer is the mean over the classes measured there (or the whole probe's).

    Example:
        >>> history = [{"epoch": e, "id": {"a": {"0": 5.0 - e}, "b": {"0": 3.0}}} for e in range(3)]
        >>> figure = id_depth_figure(history, ["a", "b"])
        >>> [line.get_ydata().tolist() for line in figure.axes[0].lines][-1]
        [3.0, 3.0]
    """
    with rc_context(_FONTS):  # fonts are chosen when the texts are made: DejaVu Sans ships with matplotlib
        return _id_depth_figure(history, layers)


def _id_depth_figure(history: Sequence[Mapping], layers: Sequence[str]) -> Figure:
    entries = [entry for entry in history if entry.get("id")]
    figure = Figure(figsize=(max(4.0, 0.45 * len(layers) + 1.5), 3.4), layout="constrained")
    ax = figure.add_subplot()
    cmap = colormaps["viridis"]
    for i, entry in enumerate(entries):
        shade = cmap(0.15 + 0.75 * i / max(1, len(entries) - 1))
        ax.plot(
            range(len(layers)),
            depth_curve(entry["id"], layers),
            marker="o",
            ms=3,
            color=shade,
            label=f"epoch {entry['epoch']}",
        )
    ax.set_xticks(range(len(layers)), [_short(layer) for layer in layers], rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("intrinsic dimension (TwoNN)")
    last = entries[-1]["epoch"] if entries else "-"
    ax.set_title(f"Intrinsic dimension by layer, epochs {entries[0]['epoch'] if entries else '-'}-{last}", fontsize=9)
    if 0 < len(entries) <= 8:
        ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return figure


def id_over_training_figure(history: Sequence[Mapping], layers: Sequence[str]) -> Figure:
    """Heat map of the intrinsic dimension: rows the layers (top: first), columns the monitored epochs.

    Example:
        >>> history = [{"epoch": e, "id": {"a": {"0": 5.0 - e}, "b": {"0": 3.0}}} for e in range(3)]
        >>> id_over_training_figure(history, ["a", "b"]).axes[0].images[0].get_array().tolist()
        [[5.0, 4.0, 3.0], [3.0, 3.0, 3.0]]
    """
    with rc_context(_FONTS):
        return _id_over_training_figure(history, layers)


def _id_over_training_figure(history: Sequence[Mapping], layers: Sequence[str]) -> Figure:
    entries = [entry for entry in history if entry.get("id")]
    values = np.ma.masked_invalid(np.array([depth_curve(e["id"], layers) for e in entries]).T.reshape(len(layers), -1))
    figure = Figure(
        figsize=(max(4.0, 0.35 * len(entries) + 3.0), max(2.5, 0.3 * len(layers) + 1.2)), layout="constrained"
    )
    ax = figure.add_subplot()
    image = ax.imshow(values, aspect="auto", cmap="magma", interpolation="nearest")
    ax.set_yticks(range(len(layers)), [_short(layer) for layer in layers], fontsize=7)
    step = max(1, len(entries) // 12)
    ax.set_xticks(range(0, len(entries), step), [str(e["epoch"]) for e in entries][::step], fontsize=7)
    ax.set_xlabel("epoch")
    ax.set_title("Intrinsic dimension over training (mean over classes)", fontsize=9)
    figure.colorbar(image, ax=ax, label="ID")
    return figure
