"""How the monitor draws Betti numbers: a depth figure, heat maps of every layer over training
(``over_training_figure``) and an image file of both (``plot_history``). Pure Matplotlib (no pyplot, no torch):
the monitor's worker processes import this module to draw.

Example:
    >>> history = [{"epoch": e, "betti": {"a": {"0": [3 - e, 0]}}} for e in range(3)]
    >>> betti_matrix(history, ["a"], "0", 0).tolist()
    [[3.0, 2.0, 1.0]]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib
import numpy as np
from matplotlib import colormaps
from matplotlib.collections import PathCollection
from matplotlib.colors import Normalize
from matplotlib.figure import Figure, FigureBase
from matplotlib.path import Path as GlyphPath
from matplotlib.textpath import TextPath
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import Affine2D, Bbox

if TYPE_CHECKING:  # annotations only: the worker process that draws the figures imports no tags module
    from lightning_topo.monitoring.tags import EpochBetti

__all__ = [
    "CellNumbers",
    "RowNames",
    "betti_matrix",
    "depth_figure",
    "history_layers",
    "over_training_figure",
    "plot_history",
]


#: Matplotlib ships DejaVu Sans: figures built with it named (not the generic "sans-serif", which a matplotlibrc or
#: style may map to fonts the machine lacks) look the same everywhere and never print findfont's "Falling back to
#: DejaVu Sans" lines (960 of them for one D-I heat map under a matplotlibrc naming Arial, Helvetica).
_FONTS = {"font.family": "DejaVu Sans", "mathtext.fontset": "dejavusans"}


def depth_figure(betti: EpochBetti, layers: Sequence[str], dims: Sequence[int], title: str) -> Figure:
    """Betti number against layer depth, one panel per dimension, one line per class."""
    margins = _depth_margins(betti, layers, dims)
    width, height = _depth_size(margins, len(dims))
    with matplotlib.rc_context(_FONTS):  # fonts are chosen when the texts are made: a later draw needs no context
        figure = Figure(figsize=(width, height))  # laid out by hand: constrained layout took most of its drawing
        _draw_depth(figure, betti, layers, dims, title, _depth_axes(figure, width, height, margins, len(dims)))
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
    """Heat maps of every layer's Betti numbers across the monitored epochs, one per dimension.

    Each heat map stacks the classes as blocks of rows, separated by white lines and named on the left; within a
    block the rows are the layers in forward order (top: first layer). Columns are the history's entries labelled
    with their epoch, colour (one scale per dimension, from 0) and cell text the Betti number; grey cells were not
    measured. ``classes`` defaults to every class in the history. Pure (no pyplot), cheap enough to call
    from a callback at every measurement.

    Example:
        >>> history = [
        ...     {"epoch": e, "step": e, "seconds": 0.1, "betti": {"a": {"0": [9 - e, 0]}, "b": {"0": [9 - 2 * e, 1]}}}
        ...     for e in range(4)
        ... ]
        >>> figure = over_training_figure(history, ["a", "b"], dims=(0, 1))
        >>> [ax.images[0].get_array().tolist() for ax in figure.axes if ax.images][0]  # beta_0 of the one class
        [[9.0, 8.0, 7.0, 6.0], [9.0, 7.0, 5.0, 3.0]]
    """
    _check_history(history)
    layers, dims = _check_layers_dims(layers, dims, history)
    classes = _classes(history, classes)
    width, height, heat = _over_training_size(history, layers, dims, classes)
    with matplotlib.rc_context(_FONTS):
        figure = Figure(figsize=(width, height))
        _draw_over_training(figure, history, layers, dims, classes, title, heat, (width, height))
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
    layers, dims = _check_layers_dims(layers, dims, history)
    classes = _classes(history, classes)
    path = Path(path)
    if not path.suffix:
        path = path.with_suffix(".png")
    width, height, heat = _over_training_size(history, layers, dims, classes)
    last = history[-1]
    depth_margins = _depth_margins(last["betti"], layers, dims)
    depth_width, depth_height = _depth_size(depth_margins, len(dims))
    width = max(width, depth_width)
    with matplotlib.rc_context(_FONTS):
        figure = Figure(figsize=(width, height + depth_height))
        top, bottom = figure.subfigures(2, 1, height_ratios=[height, depth_height])
        _draw_over_training(top, history, layers, dims, classes, title, heat, (width, height))
        _draw_depth(
            bottom,
            last["betti"],
            layers,
            dims,
            f"Betti numbers by layer at epoch {last.get('epoch', len(history) - 1)} (last entry)",
            _depth_axes(bottom, width, depth_height, depth_margins, len(dims)),
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi)
    return path


# ------------------------------------------------------------------------------------------ drawing
# Heat maps are laid out by hand, in inches: Matplotlib's constrained layout would measure every cell's text
# at each draw, which made the figure several times slower to render.
_LABEL_PT = 7  # font size of tick labels
_MAX_WIDTH, _MAX_HEIGHT = 20.0, 16.0  # inches: a figure never grows beyond this
_CHAR = 0.6 * _LABEL_PT / 72  # inches per character of a tick label (DejaVu Sans, generous)
_HEADER = 0.4  # figure title
_PANEL_TOP, _PANEL_BOTTOM = 0.3, 0.5  # panel title; epoch labels and "epoch"
_COLORBAR = 0.75  # gap, colour bar and its labels
_CLASS_LABEL = 0.25  # the rotated class names left of the layer names
_MIN_BLOCK = 0.5  # a class's block of rows shorter than this names its class only, not its layers
_DEPTH_TOP = 0.45  # the depth figure's title


def _short(layer: str) -> str:
    return layer.replace("features.", "")


def _class_title(cls: str) -> str:
    return "all classes" if cls == "all" else f"class {cls}"


def _depth_size(margins: tuple[float, float, float], n_panels: int) -> tuple[float, float]:
    """Inches of the depth figure: 4.2 x 3.4 a panel, wider and taller where its ``margins``
    (:func:`_depth_margins`) need the room."""
    left, gap, bottom = margins
    width = 4.2 * n_panels + (left - 0.6) + (gap - 0.5) * (n_panels - 1)
    return width, max(3.4, _DEPTH_TOP + bottom + 2.0)


def _depth_margins(betti: EpochBetti, layers: Sequence[str], dims: Sequence[int]) -> tuple[float, float, float]:
    """Inches left of the first panel, between panels and below them: room for each panel's y tick labels (the
    widest Betti number) and label, and for the layer names rotated 60 degrees (0.87 of their length down, and
    the first one's half to the left)."""
    numbers = [v[d] for per_class in betti.values() for v in per_class.values() for d in dims if d < len(v)]
    digits = len(str(int(1.2 * max([1, *(n for n in numbers if np.isfinite(n))]))))  # the top tick may be above
    y_labels = 0.32 + 0.09 * digits  # beta_d and 10-point digits
    left = max(0.6, y_labels, 0.5 * _CHAR * len(_short(layers[0])) + 0.1)
    bottom = 0.2 + 0.87 * _CHAR * max(len(_short(layer)) for layer in layers)
    return left, max(0.5, y_labels + 0.1), bottom


def _draw_depth(
    figure: FigureBase, betti: EpochBetti, layers: Sequence[str], dims: Sequence[int], title: str, axes=None
) -> None:
    axes = figure.subplots(1, len(dims), squeeze=False)[0] if axes is None else axes
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


def _depth_axes(
    figure: FigureBase, width: float, height: float, margins: tuple[float, float, float], n_panels: int
) -> list:
    """``n_panels`` axes side by side in a ``width`` x ``height`` inch figure, ``margins`` from
    :func:`_depth_margins`."""
    (left, gap, bottom), right = margins, 0.2
    panel = (width - left - right - gap * (n_panels - 1)) / n_panels
    return [
        figure.add_axes(
            [
                (left + i * (panel + gap)) / width,
                bottom / height,
                panel / width,
                (height - _DEPTH_TOP - bottom) / height,
            ]
        )
        for i in range(n_panels)
    ]


def _over_training_size(
    history: Sequence[Mapping], layers: Sequence[str], dims: Sequence[int], classes: Sequence[str]
) -> tuple[float, float, tuple[float, float]]:
    """Figure width and height, and the size of one dimension's heat map, in inches: grows with epochs, layers and
    classes, capped."""
    heat_height = _heat_height(layers, classes)
    panel_width = _label_width(layers, classes, heat_height) + _COLORBAR
    heat_width = min(max(0.34 * len(history), 2.0), 9.0, (_MAX_WIDTH - 0.2) / len(dims) - panel_width)
    width = len(dims) * (heat_width + panel_width) + 0.2
    return width, heat_height + _HEADER + _PANEL_TOP + _PANEL_BOTTOM, (heat_width, heat_height)


def _heat_height(layers: Sequence[str], classes: Sequence[str]) -> float:
    """Inches of one heat map: a block of rows per class, each block a row per layer."""
    block = max(0.24 * len(layers), 1.2 if len(classes) == 1 else _MIN_BLOCK)
    return min(block * len(classes), _MAX_HEIGHT - _HEADER - _PANEL_TOP - _PANEL_BOTTOM)


def _names_layers(classes: Sequence[str], heat_height: float) -> bool:
    """Whether each class's block is tall enough to name its layers (else only the classes are named)."""
    return len(classes) == 1 or heat_height / len(classes) >= _MIN_BLOCK


def _label_width(layers: Sequence[str], classes: Sequence[str], heat_height: float) -> float:
    """Inches left of a heat map: the layer names and, with several classes, the class names beside them."""
    if not _names_layers(classes, heat_height):
        return 0.42 + _CHAR * max(len(cls) for cls in classes)  # class names and "class"
    names = 0.42 + _CHAR * max(len(_short(layer)) for layer in layers)  # layer names and "layer"
    return names + (_CLASS_LABEL if len(classes) > 1 else 0.0)


def _draw_over_training(
    figure: FigureBase,
    history: Sequence[Mapping],
    layers: Sequence[str],
    dims: Sequence[int],
    classes: Sequence[str],
    title: str,
    heat: tuple[float, float],
    size: tuple[float, float],
) -> None:
    """One heat map per dimension on ``figure`` (a Figure or SubFigure of ``size`` inches), centred horizontally.

    Each heat map stacks the classes as blocks of rows (one row per layer, forward order) separated by white lines,
    so a dimension has one colour scale and one colour bar, and ten classes draw as fast as one.
    """
    width, height = size
    label = _label_width(layers, classes, heat[1])
    panel_width = label + heat[0] + _COLORBAR
    margin = (width - len(dims) * panel_width) / 2
    epochs = [str(entry.get("epoch", i)) for i, entry in enumerate(history)]
    epoch_ticks = _thinned(len(epochs), heat[0], 0.62 * _LABEL_PT * max(len(e) for e in epochs))
    n_layers, block = len(layers), heat[1] / len(classes)
    names_layers = _names_layers(classes, heat[1])
    if names_layers:
        rows = [b * n_layers + i for b in range(len(classes)) for i in _thinned(n_layers, block, 1.2 * _LABEL_PT - 6)]
        row_names = [_short(layers[row % n_layers]) for row in rows]
    else:  # too many classes for their layers' names: one name per class block, thinned
        shown = _thinned(len(classes), heat[1], 1.2 * _LABEL_PT - 6)
        rows, row_names = [b * n_layers + (n_layers - 1) / 2 for b in shown], [classes[b] for b in shown]
    stacked = {d: np.ma.concatenate([betti_matrix(history, layers, cls, d) for cls in classes]) for d in dims}
    any_missing = any(np.ma.getmaskarray(values).any() for values in stacked.values())
    # one colour scale per dimension, from 0: the same colour means the same number in every class's block
    highest = {d: max([1.0, *(float(v) for v in stacked[d].compressed())]) for d in dims}
    y = height - _HEADER - _PANEL_TOP - heat[1]
    for col, d in enumerate(dims):
        x = margin + col * panel_width + label
        ax = figure.add_axes([x / width, y / height, heat[0] / width, heat[1] / height])
        cax = figure.add_axes([(x + heat[0] + 0.1) / width, y / height, 0.13 / width, heat[1] / height])
        _heat_map(figure, ax, cax, stacked[d], Normalize(vmin=0, vmax=highest[d]), heat)
        single = f" of {_class_title(classes[0])}" if len(classes) == 1 else ""
        ax.set_title(rf"$\beta_{d}${single}", fontsize=9)
        ax.set_yticks([])  # a tick per row cost most of the figure's time: the names are one artist instead
        names = ax.add_collection(RowNames(figure, ax, rows, row_names, _LABEL_PT), autolim=False)
        ax.yaxis.set_label_coords(-(names.extent + 3) / 72 / heat[0], 0.5)  # "layer" left of the names
        ax.set_xticks(epoch_ticks, [epochs[i] for i in epoch_ticks], fontsize=_LABEL_PT)
        ax.set_xlabel("epoch", fontsize=8, labelpad=2)
        separator = min(2.0, 0.1 * block * 72)  # points: thinner between short blocks
        for b in range(1, len(classes)):
            ax.axhline(b * n_layers - 0.5, color="white", linewidth=separator)
        if len(classes) == 1:
            ax.set_ylabel("layer", fontsize=8, labelpad=2)
        elif names_layers:
            beside = -(label - 0.12) / heat[0]  # in axes widths: left of the layer names
            for b, cls in enumerate(classes):
                ax.text(
                    *(beside, (b + 0.5) * n_layers - 0.5),
                    _class_title(cls),
                    transform=ax.get_yaxis_transform(),  # x in axes widths, y in rows
                    rotation=90,
                    ha="left",
                    va="center",
                    fontsize=8,
                    gid=f"class_label:{cls}",
                )
        else:
            ax.set_ylabel(f"class (each a block of {n_layers} layers)", fontsize=8, labelpad=2)
    figure.suptitle(
        title + (" (grey: not measured)" if any_missing else ""), fontsize=10, y=1 - 0.08 / height, va="top"
    )


def _heat_map(
    figure: FigureBase, ax, cax, values: np.ma.MaskedArray, norm: Normalize, heat: tuple[float, float]
) -> None:
    """One heat map with its colorbar and, while they fit, the numbers in the cells."""
    cmap = colormaps["viridis"].with_extremes(bad="lightgrey")
    image = ax.imshow(values, cmap=cmap, norm=norm, aspect="auto", interpolation="nearest")
    colorbar = figure.colorbar(image, cax=cax, ticks=MaxNLocator(nbins=5, integer=True))
    colorbar.ax.tick_params(labelsize=_LABEL_PT)
    present = values.compressed()
    n_rows, n_cols = values.shape
    digits = len(str(int(present.max()))) if present.size else 1
    cell_width, cell_height = heat[0] * 72 / n_cols, heat[1] * 72 / n_rows  # points
    fontsize = min(8.0, 0.6 * cell_height, cell_width / (0.62 * digits + 1.0))
    if fontsize >= 6.5 and present.size:  # smaller numbers are hard to read
        ax.add_collection(CellNumbers(figure, ax, values, cmap(norm(values.filled(0))), fontsize), autolim=False)


def _glyphs(text: str, fontsize: float) -> GlyphPath:
    """``text`` as glyph outlines in points, with its baseline at 0 (the current font)."""
    return TextPath((0, 0), text, size=fontsize)


def _ink_box(path: GlyphPath) -> Bbox:
    """The box of a glyph path's points: the outline's own box to within a hair (a font puts points at its curves'
    extremes). ``Path.get_extents`` solves every curve segment for its extremes instead, milliseconds per name:
    most of a heat map's drawing time when it measured each row name."""
    drawn = path.vertices[~np.isin(path.codes, (GlyphPath.CLOSEPOLY, GlyphPath.STOP))]
    return Bbox([drawn.min(axis=0), drawn.max(axis=0)]) if len(drawn) else Bbox.null()


class RowNames(PathCollection):
    """Names beside a heat map's rows, right-aligned left of its axes, as one artist of glyph outlines.

    A tick label per row costs a ``Tick`` each, built and laid out at every drawing: the 140 row names of a
    ten-class, seven-layer figure took two thirds of its time. ``labels`` holds ``(row, name)`` pairs;
    ``extent`` is the points from the axes' left edge to the far end of the longest name.

    Example:
        >>> from matplotlib.figure import Figure
        >>> figure = Figure()
        >>> ax = figure.add_axes([0.3, 0.1, 0.6, 0.8])
        >>> names = RowNames(figure, ax, [0, 1], ["conv1", "logits"], fontsize=7)
        >>> names.labels, names.extent > 20
        ([(0, 'conv1'), (1, 'logits')], True)
    """

    def __init__(
        self, figure: FigureBase, ax, rows: Sequence[float], names: Sequence[str], fontsize: float, pad: float = 4.0
    ):
        self.labels = list(zip(rows, names))
        middle = _ink_box(_glyphs("Ag", fontsize))  # one baseline for every name, centred on its row
        shifted: dict[str, GlyphPath] = {}
        for name in names:
            if name not in shifted:
                path = _glyphs(name, fontsize)
                shifted[name] = path.transformed(
                    Affine2D().translate(-_ink_box(path).x1 - pad, -(middle.y0 + middle.y1) / 2)
                )
        self.extent = float(max((-_ink_box(path).x0 for path in shifted.values()), default=pad))
        super().__init__(
            [shifted[name] for name in names],
            offsets=[(0, row) for row in rows] or None,
            offset_transform=ax.get_yaxis_transform(),  # x in axes widths (0: the left edge), y in rows
            facecolors="black",
            edgecolors="none",
        )
        self.set_transform(Affine2D().scale(1 / 72) + figure.dpi_scale_trans)  # points -> pixels at any dpi
        self.set_clip_on(False)  # drawn beside the axes, not in them


class CellNumbers(PathCollection):
    """The integers of a heat map's cells as one artist of glyph outlines: white on dark cells, black on light.

    Several times faster to draw than one ``Text`` per cell. ``numbers`` maps ``(row, column)`` to the text
    drawn there, ``colours`` to its colour; masked cells get none.
    """

    def __init__(self, figure: FigureBase, ax, values: np.ma.MaskedArray, background: np.ndarray, fontsize: float):
        luminance = background[..., :3] @ np.array([0.2126, 0.7152, 0.0722])
        self.numbers: dict[tuple[int, int], str] = {}
        self.colours: dict[tuple[int, int], str] = {}
        glyphs: dict[str, TextPath] = {}
        for (row, col), value in np.ndenumerate(values.filled(np.nan)):
            if np.isfinite(value):
                text = f"{value:.0f}"
                if text not in glyphs:
                    path = _glyphs(text, fontsize)  # in points, centred on the cell below
                    box = _ink_box(path)
                    glyphs[text] = path.transformed(
                        Affine2D().translate(-box.x0 - box.width / 2, -box.y0 - box.height / 2)
                    )
                self.numbers[row, col] = text
                self.colours[row, col] = "white" if luminance[row, col] < 0.5 else "black"
        super().__init__(
            [glyphs[text] for text in self.numbers.values()],
            offsets=[(col, row) for row, col in self.numbers] or None,
            offset_transform=ax.transData,
            facecolors=list(self.colours.values()),
            edgecolors="none",
        )
        self.set_transform(Affine2D().scale(1 / 72) + figure.dpi_scale_trans)  # points -> pixels at any dpi


def _thinned(n: int, length_inches: float, label_points: float) -> list[int]:
    """Every k-th index, k such that labels ``label_points`` long (along the axis) do not overlap."""
    fit = max(1, int(length_inches * 72 / (label_points + 6)))
    return list(range(0, n, -(-n // fit)))


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


def _check_layers_dims(
    layers: Sequence[str], dims: Sequence[int], history: Sequence[Mapping]
) -> tuple[list[str], list[int]]:
    if isinstance(layers, str) or not layers:
        raise ValueError(f"layers must be a non-empty list of layer names (monitor._watched), got {layers!r}")
    if isinstance(dims, int) or not dims or any(not isinstance(d, int) or d < 0 for d in dims):
        raise ValueError(f"dims must be a non-empty list of non-negative integers such as (0, 1), got {dims!r}")
    known = history_layers(history)
    if not set(layers) & {layer for entry in history for layer in entry["betti"]}:
        raise ValueError(f"none of the layers {list(layers)} is in the history; its layers are {known}")
    computed = max(
        (len(numbers) for entry in history for per_class in entry["betti"].values() for numbers in per_class.values()),
        default=0,
    )
    missing = [d for d in dims if d >= computed]
    if missing:
        raise ValueError(
            f"dims {missing} were not computed: the history has beta_0..beta_{computed - 1}; "
            f"pick dims below {computed} or monitor with a higher BettiMonitor(dims=...)"
        )
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
