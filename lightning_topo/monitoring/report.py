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
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import Normalize
from matplotlib.figure import Figure, FigureBase
from matplotlib.ticker import MaxNLocator

__all__ = [
    "SECONDS_TAG",
    "betti_matrix",
    "custom_scalars_layout",
    "depth_figure",
    "flatten_scalars",
    "history_layers",
    "over_training_figure",
    "plot_history",
    "scalar_tag",
]

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
    figure = Figure(figsize=_depth_size(dims), layout="constrained")
    _draw_depth(figure, betti, layers, dims, title)
    return figure


def betti_matrix(history: Sequence[Mapping], layers: Sequence[str], cls: str, dim: int) -> np.ma.MaskedArray:
    """Betti numbers of one (class, dimension) as rows = layers, columns = history entries; missing ones masked.

    Example:
        >>> history = [
        ...     {"epoch": 0, "betti": {"a": {"0": [3, 0]}}},
        ...     {"epoch": 50, "betti": {"a": {"0": [1, 0]}, "b": {"0": [1, 2]}}},
        ... ]
        >>> betti_matrix(history, ["a", "b"], "0", 0).tolist()
        [[3.0, 1.0], [None, 1.0]]
    """
    values = np.zeros((len(layers), len(history)))
    missing = np.ones(values.shape, dtype=bool)
    for col, entry in enumerate(history):
        betti = entry["betti"]
        for row, layer in enumerate(layers):
            numbers = betti.get(layer, {}).get(str(cls))
            if numbers is not None and dim < len(numbers):
                values[row, col], missing[row, col] = numbers[dim], False
    return np.ma.masked_array(values, mask=missing)


def history_layers(history: Sequence[Mapping]) -> list[str]:
    """The layers of the first entry that has the most of them, in its (forward) order.

    Example:
        >>> history_layers([{"betti": {"a": {}}}, {"betti": {"a": {}, "b": {}}}, {"betti": {"b": {}, "a": {}}}])
        ['a', 'b']
    """
    _check_history(history)
    return list(max(history, key=lambda entry: len(entry["betti"]))["betti"])


def over_training_figure(
    history: Sequence[Mapping],
    layers: Sequence[str],
    dims: Sequence[int],
    classes: Sequence[str] | None = None,
    title: str = "Betti numbers over training",
) -> Figure:
    """Heat maps of every layer's Betti numbers across the monitored epochs, one per (class, dimension).

    Rows are the layers in forward order (top: first layer), columns the history's entries labelled with
    their epoch, colour (one scale per dimension, from 0) and cell text the Betti number; grey cells were not
    measured. ``classes`` defaults to every class in the history. Pure (no pyplot), cheap enough to call
    from a callback at every measurement.

    Example:
        >>> history = [
        ...     {"epoch": e, "step": e, "seconds": 0.1, "betti": {"a": {"0": [9 - e, 0]}, "b": {"0": [9 - 2 * e, 1]}}}
        ...     for e in range(4)
        ... ]
        >>> figure = over_training_figure(history, ["a", "b"], dims=(0, 1))
        >>> [ax.images[0].get_array().tolist() for ax in figure.axes if ax.images][0]  # class 0, beta_0
        [[9.0, 8.0, 7.0, 6.0], [9.0, 7.0, 5.0, 3.0]]
    """
    layers, dims = _check_layers_dims(layers, dims)
    _check_history(history)
    classes = _classes(history, classes)
    width, height, heat = _over_training_size(history, layers, dims, classes)
    figure = Figure(figsize=(width, height), layout="constrained")
    _draw_over_training(figure, history, layers, dims, classes, title, heat)
    return figure


def plot_history(
    history: Sequence[Mapping],
    path: str | Path,
    layers: Sequence[str] | None = None,
    dims: Sequence[int] = (0, 1),
    dpi: int = 150,
    classes: Sequence[str] | None = None,
    title: str = "Betti numbers over training",
) -> Path:
    """Write one image of a ``BettiMonitor`` history: the over-training heat maps and the last depth profile.

    ``layers=None`` takes the layer order of the first entry with the most layers. The format follows the
    suffix (``.png`` when there is none, or ``.pdf``/``.svg`` for papers); missing folders are created.

    Example:
        >>> import tempfile
        >>> history = [{"epoch": e, "step": e, "seconds": 0.1, "betti": {"a": {"0": [3 - e, 0]}}} for e in range(3)]
        >>> plot_history(history, Path(tempfile.mkdtemp()) / "topology").name
        'topology.png'
    """
    _check_history(history)
    layers = history_layers(history) if layers is None else layers
    layers, dims = _check_layers_dims(layers, dims)
    classes = _classes(history, classes)
    path = Path(path)
    if not path.suffix:
        path = path.with_suffix(".png")
    width, height, heat = _over_training_size(history, layers, dims, classes)
    depth_width, depth_height = _depth_size(dims)
    figure = Figure(figsize=(max(width, depth_width), height + depth_height), layout="constrained")
    top, bottom = figure.subfigures(2, 1, height_ratios=[height, depth_height])
    _draw_over_training(top, history, layers, dims, classes, title, heat)
    last = history[-1]
    _draw_depth(bottom, last["betti"], layers, dims, f"Betti numbers by layer at epoch {last['epoch']} (last entry)")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi)
    return path


# ------------------------------------------------------------------------------------------ drawing
_LABEL_PT = 7  # font size of tick labels
_MAX_WIDTH, _MAX_HEIGHT = 20.0, 16.0  # inches: a figure never grows beyond this


def _short(layer: str) -> str:
    return layer.replace("features.", "")


def _class_title(cls: str) -> str:
    return "all classes" if cls == "all" else f"class {cls}"


def _depth_size(dims: Sequence[int]) -> tuple[float, float]:
    return 4.2 * len(dims), 3.4


def _draw_depth(figure: FigureBase, betti: EpochBetti, layers: Sequence[str], dims: Sequence[int], title: str) -> None:
    axes = figure.subplots(1, len(dims), squeeze=False)[0]
    classes = sorted({cls for per_class in betti.values() for cls in per_class}, key=_class_key)
    for ax, d in zip(axes, dims):
        for cls in classes:
            xs = [i for i, layer in enumerate(layers) if cls in betti.get(layer, {}) and d < len(betti[layer][cls])]
            ys = [betti[layers[i]][cls][d] for i in xs]
            ax.plot(xs, ys, marker="o", label=_class_title(cls))
        ax.set_xticks(range(len(layers)))
        ax.set_xticklabels([_short(layer) for layer in layers], rotation=60, ha="right", fontsize=_LABEL_PT)
        ax.set_ylabel(rf"$\beta_{d}$")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=_LABEL_PT)
    figure.suptitle(title, fontsize=9)


def _over_training_size(
    history: Sequence[Mapping], layers: Sequence[str], dims: Sequence[int], classes: Sequence[str]
) -> tuple[float, float, tuple[float, float]]:
    """Figure width and height, and the size of one heat map, in inches: grows with epochs and layers, capped."""
    label = 0.45 + 0.6 * _LABEL_PT / 72 * max(len(_short(layer)) for layer in layers)  # layer names + ylabel
    extra_width = label + 1.0  # + colorbar and its ticks
    heat_width = min(max(0.34 * len(history), 2.0), 9.0, _MAX_WIDTH / len(dims) - extra_width)
    extra_height = 0.85  # title, epoch ticks and "epoch"
    heat_height = min(max(0.24 * len(layers), 1.2), 5.0, (_MAX_HEIGHT - 0.5) / len(classes) - extra_height)
    width = len(dims) * (heat_width + extra_width)
    height = len(classes) * (heat_height + extra_height) + 0.5
    return width, height, (heat_width, heat_height)


def _draw_over_training(
    figure: FigureBase,
    history: Sequence[Mapping],
    layers: Sequence[str],
    dims: Sequence[int],
    classes: Sequence[str],
    title: str,
    heat: tuple[float, float],
) -> None:
    axes = figure.subplots(len(classes), len(dims), squeeze=False)
    epochs = [str(entry.get("epoch", i)) for i, entry in enumerate(history)]
    epoch_ticks = _thinned(len(epochs), heat[0], max(len(e) for e in epochs))
    matrices = {(cls, d): betti_matrix(history, layers, cls, d) for cls in classes for d in dims}
    any_missing = any(values.mask.any() for values in matrices.values())
    # one colour scale per dimension, from 0: the same colour means the same number in every class's panel
    highest = {d: max([1.0, *(float(v) for cls in classes for v in matrices[cls, d].compressed())]) for d in dims}
    for cls, row in zip(classes, axes):
        for d, ax in zip(dims, row):
            _heat_map(figure, ax, matrices[cls, d], Normalize(vmin=0, vmax=highest[d]), heat)
            ax.set_title(rf"{_class_title(cls)}: $\beta_{d}$", fontsize=9)
            ax.set_yticks(range(len(layers)))
            ax.set_yticklabels([_short(layer) for layer in layers], fontsize=_LABEL_PT)
            ax.set_xticks(epoch_ticks)
            ax.set_xticklabels([epochs[i] for i in epoch_ticks], fontsize=_LABEL_PT)
            ax.set_xlabel("epoch", fontsize=8)
            ax.set_ylabel("layer", fontsize=8)
    figure.suptitle(title + (" (grey: not measured)" if any_missing else ""), fontsize=10)


def _heat_map(figure: FigureBase, ax, values: np.ma.MaskedArray, norm: Normalize, heat: tuple[float, float]) -> None:
    """One heat map with its colorbar and, while they fit, the numbers in the cells."""
    cmap = colormaps["viridis"].with_extremes(bad="lightgrey")
    image = ax.imshow(values, cmap=cmap, norm=norm, aspect="auto", interpolation="nearest")
    colorbar = figure.colorbar(image, ax=ax, fraction=0.08, pad=0.02)
    colorbar.locator = MaxNLocator(integer=True)
    colorbar.update_ticks()
    colorbar.ax.tick_params(labelsize=_LABEL_PT)
    present = values.compressed()
    n_rows, n_cols = values.shape
    digits = len(str(int(present.max()))) if present.size else 1
    cell_width, cell_height = heat[0] * 72 / n_cols, heat[1] * 72 / n_rows  # points
    fontsize = min(8.0, 0.6 * cell_height, cell_width / (0.62 * digits + 0.6))
    if fontsize < 5.5 or not present.size:
        return
    for (row, col), value in np.ndenumerate(values.filled(np.nan)):
        if np.isfinite(value):
            red, green, blue, _ = cmap(norm(value))
            dark = 0.2126 * red + 0.7152 * green + 0.0722 * blue < 0.5
            ax.text(
                col,
                row,
                f"{value:.0f}",
                ha="center",
                va="center",
                fontsize=fontsize,
                color="white" if dark else "black",
            )


def _thinned(n: int, width_inches: float, digits: int) -> list[int]:
    """Every k-th column index, k such that the epoch labels do not overlap."""
    fit = max(1, int(width_inches * 72 / (0.62 * _LABEL_PT * digits + 6)))
    step = -(-n // fit)
    return list(range(0, n, step))


# ------------------------------------------------------------------------------------------ checks
def _class_key(cls: str) -> tuple[int, int, str]:
    return (0, int(cls), "") if cls.isdigit() else (1, 0, cls)


def _check_history(history: Sequence[Mapping]) -> None:
    if not history:
        raise ValueError(
            "history is empty: nothing to plot; let the BettiMonitor measure at least once "
            "(it measures every `every_n_epochs` epochs) before plotting"
        )
    for i, entry in enumerate(history):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("betti"), Mapping):
            raise ValueError(
                f"history[{i}] has no 'betti' mapping: pass BettiMonitor.history, a list of "
                "{'epoch': int, 'step': int, 'seconds': float, 'betti': {layer: {class: [b0, b1, ...]}}}"
            )


def _check_layers_dims(layers: Sequence[str], dims: Sequence[int]) -> tuple[list[str], list[int]]:
    if isinstance(layers, str) or not layers:
        raise ValueError(f"layers must be a non-empty list of layer names (monitor._watched), got {layers!r}")
    if isinstance(dims, int) or not dims or any(not isinstance(d, int) or d < 0 for d in dims):
        raise ValueError(f"dims must be a non-empty list of non-negative integers such as (0, 1), got {dims!r}")
    return list(layers), list(dims)


def _classes(history: Sequence[Mapping], classes: Sequence[str] | None) -> list[str]:
    found = sorted(
        {str(c) for entry in history for per_class in entry["betti"].values() for c in per_class}, key=_class_key
    )
    if classes is None:
        if not found:
            raise ValueError("history has no Betti numbers in any entry: every layer was skipped; nothing to plot")
        return found
    if isinstance(classes, str) or not classes:
        raise ValueError(f"classes must be a non-empty list such as ['0', '1'] or ['all'], got {classes!r}")
    unknown = [c for c in classes if str(c) not in found]
    if unknown:
        raise ValueError(f"classes {unknown} are not in the history; it has {found}")
    return [str(c) for c in classes]
