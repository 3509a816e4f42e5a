"""Over-training heat maps and plot_history: the pictures show exactly the history's numbers, in the right cells."""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.colors
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from PIL import Image

from lightning_topo.monitoring import betti_matrix, history_layers, over_training_figure, plot_history
from lightning_topo.monitoring.figures import CellNumbers, RowNames, depth_figure

LAYERS = ["input", "features.layer1.act", "logits"]
EPOCHS = [0, 50, 100, 150]
MISSING = ("features.layer1.act", "1", 2)  # (layer, class, entry index) that was skipped


def value(layer: int, cls: int, dim: int, col: int) -> int:
    """A distinct number for every cell, so a value in the wrong row or column cannot go unnoticed."""
    return 100 * dim + 30 * cls + 10 * layer + col if dim else 9 - 2 * layer - col + 5 * cls


def tiny_history() -> list[dict]:
    history = []
    for col, epoch in enumerate(EPOCHS):
        betti = {
            layer: {str(c): [value(i, c, 0, col), value(i, c, 1, col)] for c in (0, 1)}
            for i, layer in enumerate(LAYERS)
        }
        history.append({"epoch": epoch, "step": 2 * epoch, "seconds": 0.1, "betti": betti})
    layer, cls, col = MISSING
    del history[col]["betti"][layer][cls]
    return history


@dataclass
class Block:
    """One class's rows of one dimension's heat map."""

    ax: object
    first_row: int

    @property
    def image(self):
        return self.ax.images[0]

    @property
    def data(self) -> np.ma.MaskedArray:
        return self.image.get_array()[self.first_row : self.first_row + len(LAYERS)]


def heat_blocks(figure, n_layers: int = len(LAYERS)) -> dict[tuple[str, int], Block]:
    """{(class, dim): block} read back from the axes titles ("$\\beta_1$") and the class names beside the blocks."""
    found = {}
    for ax in figure.axes:
        if ax.images:
            title = ax.get_title()  # "$\\beta_0$", or "$\\beta_0$ of class 1" when there is one class
            dim = int(title.split("beta_")[1][0])
            names = [t.get_gid().split(":", 1)[1] for t in ax.texts if (t.get_gid() or "").startswith("class_label:")]
            if not names:
                names = ["all" if title.endswith("all classes") else title.split()[-1]]
            for b, cls in enumerate(names):
                found[cls, dim] = Block(ax, b * n_layers)
    return found


def test_one_heat_map_per_dimension_with_a_block_of_rows_per_class_and_one_colorbar():
    figure = over_training_figure(tiny_history(), LAYERS, dims=(0, 1))
    blocks = heat_blocks(figure)
    assert sorted(blocks) == [("0", 0), ("0", 1), ("1", 0), ("1", 1)]
    assert len(figure.axes) == 4  # 2 heat maps + 2 colorbars
    for ax in {id(block.ax): block.ax for block in blocks.values()}.values():
        # rows: each class's layers top to bottom in forward order; columns: the epochs
        assert row_names(ax).labels == list(enumerate(["input", "layer1.act", "logits"] * 2))
        assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "50", "100", "150"]
        assert ax.get_xlabel() == "epoch"
        bottom, top = ax.get_ylim()
        assert top < bottom  # row 0 (the first layer) is drawn at the top
        # a white line between the two classes' blocks, and each class named beside its block's middle row
        assert [line.get_ydata()[0] for line in ax.get_lines()] == [2.5]
        assert [(t.get_text(), t.get_position()[1]) for t in ax.texts] == [("class 0", 1.0), ("class 1", 4.0)]


def test_image_cells_hold_the_history_values_and_the_skipped_one_is_masked_not_zero():
    figure = over_training_figure(tiny_history(), LAYERS, dims=(0, 1))
    for (cls, dim), block in heat_blocks(figure).items():
        data = block.data
        assert data.shape == (len(LAYERS), len(EPOCHS))
        for row, layer in enumerate(LAYERS):
            for col in range(len(EPOCHS)):
                if (layer, cls, col) == MISSING:
                    assert data.mask[row, col]
                else:
                    assert not np.ma.getmaskarray(data)[row, col]
                    assert data[row, col] == value(row, int(cls), dim, col)
        # missing cells are drawn grey, a colour viridis itself never uses
        assert matplotlib.colors.to_hex(block.image.cmap.get_bad()) == matplotlib.colors.to_hex("lightgrey")
        assert block.image.cmap.name.startswith("viridis")


def row_names(ax) -> RowNames:
    (found,) = [c for c in ax.collections if isinstance(c, RowNames)]
    return found


def drawn_names(figure) -> tuple[FigureCanvasAgg, list[tuple[object, int | float, str, object]]]:
    """The figure drawn, and every row name as ``(axes, row, name, its box in pixels)``."""
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    found = []
    for ax in [ax for ax in figure.axes if ax.images]:
        names = row_names(ax)
        for (row, name), path, offset in zip(names.labels, names.get_paths(), names.get_offsets()):
            x, y = names.get_offset_transform().transform(offset)
            box = path.get_extents(names.get_transform()).translated(x, y)
            found.append((ax, row, name, box))
    return canvas, found


@pytest.mark.parametrize("n_classes", [1, 2, 200])
def test_row_names_sit_beside_their_rows_inside_the_page_and_clear_of_the_other_labels(n_classes):
    layers, classes = ["input", "features.layer1.act", "logits"], [str(c) for c in range(n_classes)]
    history = [{"epoch": e, "betti": {la: {c: [1, e] for c in classes} for la in layers}} for e in range(3)]
    figure = over_training_figure(history, layers, dims=(0, 1))
    canvas, names = drawn_names(figure)
    renderer, page = canvas.get_renderer(), figure.bbox
    assert names
    for ax, row, name, box in names:
        heat = ax.get_window_extent(renderer)
        _, row_y = ax.transData.transform((0, row))
        assert page.x0 <= box.x0 and box.x1 < heat.x0, name  # left of the heat map, on the page
        assert abs((box.y0 + box.y1) / 2 - row_y) < 0.3 * box.height + 2, name  # centred on its row
        beside = [ax.yaxis.label, *ax.texts]  # "layer" or "class (...)", and the class names
        for text in [t for t in beside if t.get_text()]:
            assert text.get_window_extent(renderer).x1 < box.x0, (text.get_text(), name)
    canvas_pixels = np.asarray(canvas.buffer_rgba())[..., :3]
    _, _, _, box = max(names, key=lambda found: len(found[2]))  # the longest name
    ink = canvas_pixels[int(page.y1 - box.y1) : int(page.y1 - box.y0) + 1, int(box.x0) : int(box.x1) + 1]
    assert (ink.sum(axis=2) < 200).sum() >= 10  # the name is really drawn: dark pixels where it sits


def cell_numbers(ax) -> CellNumbers | None:
    found = [c for c in ax.collections if isinstance(c, CellNumbers)]
    assert len(found) <= 1
    return found[0] if found else None


def test_cells_show_their_values_with_contrasting_text():
    figure, colours = over_training_figure(tiny_history(), LAYERS, dims=(0, 1)), set()
    for (cls, dim), block in heat_blocks(figure).items():
        numbers = cell_numbers(block.ax)
        in_block = {
            (row - block.first_row, col): text
            for (row, col), text in numbers.numbers.items()
            if block.first_row <= row < block.first_row + len(LAYERS)
        }
        expected = {
            (row, col): str(value(row, int(cls), dim, col))
            for row, layer in enumerate(LAYERS)
            for col in range(len(EPOCHS))
            if (layer, cls, col) != MISSING
        }
        assert in_block == expected
        # each glyph sits on its cell: offsets are (column, row) in data coordinates
        assert [tuple(xy) for xy in numbers.get_offsets()] == [(col, row) for row, col in numbers.numbers]
        image = block.image
        for cell, text in numbers.numbers.items():  # white on dark cells, black on light ones
            red, green, blue, _ = image.cmap(image.norm(int(text)))
            luminance = 0.2126 * red + 0.7152 * green + 0.0722 * blue
            if luminance < 0.4 or luminance > 0.6:
                assert numbers.colours[cell] == ("white" if luminance < 0.4 else "black")
                colours.add(numbers.colours[cell])
    assert colours == {"white", "black"}


def test_numbers_are_drawn_inside_their_cells_and_none_on_the_missing_one():
    figure = over_training_figure(tiny_history(), LAYERS, dims=(0, 1))
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    pixels = np.asarray(canvas.buffer_rgba())[..., :3].astype(int)
    block = heat_blocks(figure)["1", 0]
    ax, numbers = block.ax, cell_numbers(block.ax)

    def cell_pixels(row: int, col: int) -> np.ndarray:
        (x0, y0), (x1, y1) = ax.transData.transform([(col - 0.5, row + 0.5), (col + 0.5, row - 0.5)])
        height = pixels.shape[0]
        return pixels[int(height - y1) + 2 : int(height - y0) - 2, int(x0) + 2 : int(x1) - 2].reshape(-1, 3)

    for (row, col), colour in numbers.colours.items():
        target = np.array([255, 255, 255] if colour == "white" else [0, 0, 0])
        cell = cell_pixels(row, col)
        colours, counts = np.unique(cell, axis=0, return_counts=True)
        background = colours[counts.argmax()]
        # the glyphs' ink: pixels much nearer the text colour than the cell's own colour is
        near = np.abs(cell - target).sum(axis=1) < 0.5 * np.abs(background - target).sum()
        assert near.sum() >= 5, (row, col, numbers.numbers[row, col])
    layer, _, col = MISSING
    grey = cell_pixels(block.first_row + LAYERS.index(layer), col)
    assert (np.abs(grey - 211).max(axis=1) <= 2).all()  # lightgrey (211, 211, 211) and nothing else
    assert (block.first_row + LAYERS.index(layer), col) not in numbers.numbers


def test_colour_scale_starts_at_zero_and_is_shared_by_the_classes_of_one_dimension():
    figure = over_training_figure(tiny_history(), LAYERS, dims=(0, 1))
    blocks = heat_blocks(figure)
    for dim in (0, 1):
        highest = max(value(row, c, dim, col) for row in range(len(LAYERS)) for c in (0, 1) for col in range(4))
        for cls in ("0", "1"):
            norm = blocks[cls, dim].image.norm
            assert (norm.vmin, norm.vmax) == (0, highest)


def test_many_epochs_thin_the_labels_drop_the_cell_numbers_and_cap_the_size():
    history = [
        {
            "epoch": 50 * e,
            "step": 50 * e,
            "seconds": 0.1,
            "betti": {f"l{i}": {"0": [e, i], "1": [i, e]} for i in range(11)},
        }
        for e in range(100)
    ]
    small = over_training_figure(history[:4], [f"l{i}" for i in range(11)], dims=(0, 1))
    medium = over_training_figure(history[:20], [f"l{i}" for i in range(11)], dims=(0, 1))
    large = over_training_figure(history, [f"l{i}" for i in range(11)], dims=(0, 1))
    assert small.get_figwidth() < medium.get_figwidth() < large.get_figwidth() <= 20
    assert large.get_figheight() <= 16
    for ax in [ax for ax in large.axes if ax.images]:
        labels = [t.get_text() for t in ax.get_xticklabels()]
        assert 2 <= len(labels) < 30 and labels[0] == "0"
        assert cell_numbers(ax) is None  # 100 columns: no room for numbers
    assert all(len(cell_numbers(ax).numbers) == 2 * 11 * 20 for ax in medium.axes if ax.images)


def test_two_hundred_classes_fit_the_page_and_name_their_blocks():
    # one block per class; too short to name 11 layers each, so the rows name the classes, thinned
    layers, classes = [f"l{i}" for i in range(11)], [str(c) for c in range(200)]
    history = [{"epoch": e, "betti": {la: {c: [int(c), e] for c in classes} for la in layers}} for e in range(3)]
    figure = over_training_figure(history, layers, dims=(0, 1))
    assert figure.get_figheight() <= 16 and figure.get_figwidth() <= 20
    (ax, _) = [ax for ax in figure.axes if ax.images]
    assert ax.images[0].get_array().shape == (200 * 11, 3)
    names = [name for _, name in row_names(ax).labels]
    assert names[0] == "0" and 10 <= len(names) < 200 and set(names) <= set(classes)
    for row, name in row_names(ax).labels:  # each name at its block's middle row
        assert row == int(name) * 11 + 5
    assert ax.images[0].get_array()[11 * 42 + 3, 1] == 42  # class 42's beta_0, layer l3, epoch 1
    assert ax.get_ylabel() == "class (each a block of 11 layers)"


def test_classes_argument_selects_panels_and_all_class_is_named():
    figure = over_training_figure(tiny_history(), LAYERS, dims=(1,), classes=["1"])
    assert sorted(heat_blocks(figure)) == [("1", 1)]
    (ax,) = [ax for ax in figure.axes if ax.images]
    assert ax.get_title() == r"$\beta_1$ of class 1" and ax.get_ylabel() == "layer" and not ax.get_lines()
    pooled = [{"epoch": 0, "step": 0, "seconds": 0.0, "betti": {"a": {"all": [2, 1]}}}]
    (ax,) = [ax for ax in over_training_figure(pooled, ["a"], dims=(0,)).axes if ax.images]
    assert ax.get_title().endswith("of all classes")


def test_pure_figures_leave_pyplot_alone():
    before = plt.get_fignums()
    over_training_figure(tiny_history(), LAYERS, dims=(0, 1))
    assert plt.get_fignums() == before


def test_betti_matrix_and_history_layers():
    history = tiny_history()
    matrix = betti_matrix(history, LAYERS, "1", 0)
    assert matrix.tolist()[1] == [value(1, 1, 0, 0), value(1, 1, 0, 1), None, value(1, 1, 0, 3)]
    history[0]["betti"].pop("logits")
    assert history_layers(history) == LAYERS  # entry 1 is the first with every layer


def test_plot_history_writes_a_readable_png(tmp_path):
    path = plot_history(tiny_history(), tmp_path / "figures" / "over_training.png", dpi=60)
    assert path == tmp_path / "figures" / "over_training.png"
    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = image.size
        assert width > 0 and height > 0
        pixels = np.asarray(image.convert("RGB"))
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20  # a picture, not a blank canvas
    assert plot_history(tiny_history(), tmp_path / "no_suffix").suffix == ".png"


HF_LAYERS = [f"model.encoder.layer.{i}.output.dense.activation" for i in range(6)]  # a transformers model's names


@pytest.mark.parametrize(
    ("layers", "highest"),
    [(LAYERS, 9), (HF_LAYERS, 9), (LAYERS, 1500), (HF_LAYERS, 23_000)],
    ids=["short", "long", "1500", "long-23000"],
)
def test_the_depth_figure_keeps_its_labels_inside_and_apart(layers, highest):
    betti = {layer: {str(c): [highest - 3 * i - c, 2 + c] for c in (0, 1)} for i, layer in enumerate(layers)}
    figure = depth_figure(betti, layers, (0, 1), "Betti numbers by layer, epoch 9")
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    renderer, page = canvas.get_renderer(), figure.bbox
    left, right = figure.axes
    texts = [t for ax in figure.axes for t in [*ax.get_xticklabels(), *ax.get_yticklabels(), ax.yaxis.label]]
    for text in [*texts, figure._suptitle]:
        box = text.get_window_extent(renderer)
        assert page.x0 - 1 <= box.x0 and box.x1 <= page.x1 + 1 and page.y0 - 1 <= box.y0, text.get_text()
    ax_box = left.get_window_extent(renderer)
    beside = [right.yaxis.label, *right.get_yticklabels()]
    assert all(t.get_window_extent(renderer).x0 > ax_box.x1 for t in beside)  # the second panel's labels in the gap
    assert min(ax.get_window_extent(renderer).height for ax in figure.axes) >= 1.9 * figure.dpi  # panels stay tall


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: plot_history([], "x.png"), "history is empty"),
        (lambda: over_training_figure([], LAYERS, (0,)), "history is empty"),
        (lambda: over_training_figure(tiny_history(), LAYERS, dims=()), "dims must be"),
        (lambda: over_training_figure(tiny_history(), "input", dims=(0,)), "layers must be"),
        (lambda: over_training_figure(tiny_history(), LAYERS, (0,), classes=["7"]), r"classes \['7'\] are not"),
        (lambda: over_training_figure([{"epoch": 0}], LAYERS, (0,)), r"history\[0\] has no 'betti'"),
        (lambda: over_training_figure(tiny_history(), ["conv1"], (0,)), r"none of the layers \['conv1'\]"),
        (lambda: plot_history(tiny_history(), "x.png", dims=(0, 2)), r"dims \[2\] were not computed"),
    ],
)
def test_bad_input_raises_a_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
