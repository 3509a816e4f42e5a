"""How Betti numbers are named and drawn: scalar tags, the TensorBoard custom-scalars layout, a depth figure.

Tags: ``betti/<layer>/class_<c>/b<d>`` (``class_all`` when not per class) and ``betti/seconds`` for
the monitor's own compute time.

Example:
    >>> scalar_tag("features.layer1.act", 0, 1)
    'betti/features.layer1.act/class_0/b1'
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from matplotlib.figure import Figure

__all__ = ["SECONDS_TAG", "custom_scalars_layout", "depth_figure", "flatten_scalars", "scalar_tag"]

SECONDS_TAG = "betti/seconds"

# {layer: {class: (b0, b1, ...)}}, classes as strings ("0", "1", ... or "all") so they survive serialisation
EpochBetti = Mapping[str, Mapping[str, Sequence[int]]]


def scalar_tag(layer: str, cls: int | str, dim: int) -> str:
    return f"betti/{layer}/class_{cls}/b{dim}"


def flatten_scalars(betti: EpochBetti, dims: Sequence[int]) -> dict[str, float]:
    """``{tag: value}`` for every computed (layer, class, dimension)."""
    return {
        scalar_tag(layer, cls, d): float(values[d])
        for layer, per_class in betti.items()
        for cls, values in per_class.items()
        for d in dims
        if d < len(values)
    }


def custom_scalars_layout(layers: Sequence[str], classes: Sequence[str], dims: Sequence[int]) -> dict:
    """One chart per (class, dimension) with a line per layer, plus the compute-time chart."""
    charts = {
        f"class {cls}, beta_{d}": ["Multiline", [rf"^betti/.*/class_{re.escape(str(cls))}/b{d}$"]]
        for cls in classes
        for d in dims
    }
    charts["monitor compute time (s)"] = ["Multiline", [f"^{SECONDS_TAG}$"]]
    return {"Betti numbers by layer": charts}


def depth_figure(betti: EpochBetti, layers: Sequence[str], dims: Sequence[int], title: str) -> Figure:
    """Betti number against layer depth, one panel per dimension, one line per class."""
    figure = Figure(figsize=(4.2 * len(dims), 3.4), layout="constrained")
    axes = figure.subplots(1, len(dims), squeeze=False)[0]
    classes = sorted({cls for per_class in betti.values() for cls in per_class})
    for ax, d in zip(axes, dims):
        for cls in classes:
            xs = [i for i, layer in enumerate(layers) if cls in betti.get(layer, {})]
            ys = [betti[layers[i]][cls][d] for i in xs]
            ax.plot(xs, ys, marker="o", label=f"class {cls}")
        ax.set_xticks(range(len(layers)))
        ax.set_xticklabels([layer.replace("features.", "") for layer in layers], rotation=60, ha="right", fontsize=7)
        ax.set_ylabel(f"beta_{d}")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    figure.suptitle(title, fontsize=9)
    return figure
