"""The README's over-training picture from a real D-I run, and what the heat-map figure costs to draw.

1. Trains the D-I recipe exactly as shipped (``lightning_topo.cli.run_cli``; only the TensorBoard folder moves
   to a temporary one): the 9x15 ReLU MLP reaches 100% training accuracy in about 1,000 epochs, the
   BettiMonitor measuring every 50. Its history goes through ``plot_history`` into ``--out``. With ``--id-dir``
   the monitor also measures the intrinsic dimension (``intrinsic_dimension=True``: the same lists, so the same
   training and Betti numbers), and the two ID images TensorBoard shows are written there as PNG files
   (``id_depth_profile_d1.png``, ``id_over_training_d1.png``: the bytes the monitor logs). The run's numbers that
   the docs' captions read from the figures are printed, so that every figure has a printout of its build.
2. Times ``over_training_figure`` built and rendered to pixels (what a TensorBoard image log does) for
   11 layers x 2 classes x 2 dimensions and 20, 50 and 100 monitored epochs (synthetic numbers), median
   of ``--repeats`` runs, so that the cost of drawing it at every measurement is known.

Usage:
    python benchmarks/over_training_figure.py                     # train, write docs/d1_over_training.png, time
    python benchmarks/over_training_figure.py --id-dir docs       # ... and the two ID images of the docs
    python benchmarks/over_training_figure.py --skip-training      # timing only
    python benchmarks/over_training_figure.py --save-history h.json   # keep the run's history ...
    python benchmarks/over_training_figure.py --history h.json        # ... and redraw it without training
"""

from __future__ import annotations

import json
import os
import random
import statistics
import time
from pathlib import Path

from common import Parser, recipe_in_temp_logs, write_json
from matplotlib.backends.backend_agg import FigureCanvasAgg

from lightning_topo.callbacks import BettiMonitor
from lightning_topo.monitoring import over_training_figure, plot_history
from lightning_topo.monitoring.figures import CellNumbers, history_layers
from lightning_topo.monitoring.id_figures import id_depth_figure, id_over_training_figure
from lightning_topo.monitoring.pictures import encode_png

LAYERS = ["input", *(f"features.layer{i}.act" for i in range(1, 10)), "logits"]


TITLE = "D-I recipe (9x15 ReLU MLP, 2,000-point probe, k=14): Betti numbers over training"


def train(save_history: Path | None, intrinsic_dimension: bool = False) -> list[dict]:
    """The D-I recipe as shipped; returns the monitor's history (and saves it as JSON when asked)."""
    with recipe_in_temp_logs("d1_circles") as cli:
        monitor = next(c for c in cli.trainer.callbacks if isinstance(c, BettiMonitor))
        monitor.intrinsic_dimension = intrinsic_dimension
        start = time.perf_counter()
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
        wall = time.perf_counter() - start
    print(
        f"\n== d1_circles: {cli.trainer.current_epoch} epochs in {wall:.1f} s, train_acc "
        f"{float(cli.trainer.callback_metrics['train_acc']):.4f}, {len(monitor.history)} measurements",
        flush=True,
    )
    if save_history is not None:
        write_json(save_history, {"history": monitor.history}, indent=None)
    return monitor.history


def plot(history: list[dict], out: Path, dpi: int) -> None:
    start = time.perf_counter()
    path = plot_history(history, out, dpi=dpi, title=TITLE)
    seconds = time.perf_counter() - start
    print(f"plot_history wrote {path} ({path.stat().st_size / 1024:.0f} KB, dpi {dpi}) in {seconds:.2f} s", flush=True)


def write_id_images(history: list[dict], folder: Path) -> None:
    """The monitor's two ID images, drawn from the run's history as its background job draws them for TensorBoard."""
    layers = history_layers(history)
    for name, figure in (
        ("id_depth_profile_d1.png", id_depth_figure(history, layers)),
        ("id_over_training_d1.png", id_over_training_figure(history, layers)),
    ):
        picture = encode_png(figure)
        (folder / name).write_bytes(picture.png)
        print(f"wrote {folder / name} ({picture.width}x{picture.height} px, {len(picture.png) / 1024:.0f} KB)")


def print_caption_numbers(history: list[dict]) -> None:
    """Per layer, the range over the measurements of what the captions read: class 0's beta_0, class 1's beta_1,
    and (when measured) each class's intrinsic dimension, with its value at the last measurement."""
    layers = history_layers(history)
    epochs = [entry["epoch"] for entry in history]
    print(f"\n== caption numbers: {len(history)} measurements, epochs {epochs[0]} to {epochs[-1]} (min-max over them)")
    has_id = any(entry.get("id") for entry in history)
    print(
        f"{'layer':24s} {'class 0 b0':>10s} {'class 1 b1':>10s}"
        + ("   ID class 0 (last)   ID class 1 (last)" if has_id else "")
    )

    def span(values: list[float], digits: int = 0) -> str:
        low, high = min(values), max(values)
        return f"{low:.{digits}f}" if low == high else f"{low:.{digits}f}-{high:.{digits}f}"

    for layer in layers:
        b0 = [e["betti"][layer]["0"][0] for e in history if layer in e.get("betti", {}) and "0" in e["betti"][layer]]
        b1 = [e["betti"][layer]["1"][1] for e in history if layer in e.get("betti", {}) and "1" in e["betti"][layer]]
        row = f"{layer:24s} {span(b0) if b0 else '-':>10s} {span(b1) if b1 else '-':>10s}"
        if has_id:
            for cls in ("0", "1"):
                ids = [e["id"][layer][cls] for e in history if cls in e.get("id", {}).get(layer, {})]
                row += f"   {span(ids, 2) + ' (' + format(ids[-1], '.2f') + ')' if ids else '-':>17s}"
        print(row)


def synthetic_history(n_epochs: int, seed: int = 0) -> list[dict]:
    """Betti numbers that shrink with depth and with training, like the D-I run's, for 11 layers x 2 classes."""
    rng = random.Random(seed)
    history = []
    for e in range(n_epochs):
        betti = {
            layer: {
                "0": [max(1, 9 - depth * e // n_epochs - rng.randint(0, 2)), rng.randint(0, 4)],
                "1": [1, max(0, 9 - depth * e // n_epochs - rng.randint(0, 2))],
            }
            for depth, layer in enumerate(LAYERS)
        }
        history.append({"epoch": 50 * e + 49, "step": 50 * e + 49, "seconds": 0.3, "betti": betti})
    return history


def time_figure(repeats: int) -> None:
    """Wall and CPU seconds to build the figure and render it to pixels (TensorBoard's add_figure does the same)."""
    print(f"load average before timing: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
    for n_epochs in (20, 50, 100):
        history = synthetic_history(n_epochs)
        over_training_figure(history, LAYERS, dims=(0, 1))  # warm-up: font and colormap caches
        wall, cpu = [], []
        for _ in range(repeats):
            start, start_cpu = time.perf_counter(), time.process_time()
            figure = over_training_figure(history, LAYERS, dims=(0, 1))
            canvas = FigureCanvasAgg(figure)
            canvas.draw()
            canvas.buffer_rgba()
            wall.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        numbers = sum(len(c.numbers) for ax in figure.axes for c in ax.collections if isinstance(c, CellNumbers))
        width, height = canvas.get_width_height()
        print(
            f"over_training_figure + render, 11 layers x 2 classes x 2 dims x {n_epochs:3d} epochs: "
            f"{statistics.median(wall):.3f} s wall, {statistics.median(cpu):.3f} s CPU (median of {repeats}); "
            f"{width}x{height} px at dpi {figure.dpi:.0f}, {numbers} cell numbers",
            flush=True,
        )


def main() -> None:
    parser = Parser(__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs/d1_over_training.png"))
    parser.add_argument("--dpi", type=int, default=110)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-training", action="store_true", help="only time the figure")
    parser.add_argument(
        "--save-history", type=Path, help="also write the run's history (with provenance) to this JSON file"
    )
    parser.add_argument("--history", type=Path, help="plot this saved history (--save-history) instead of training")
    parser.add_argument(
        "--id-dir", type=Path, help="also measure the intrinsic dimension and write its two images into this folder"
    )
    args = parser.parse_args()
    history = None
    if args.history is not None:
        stored = json.loads(args.history.read_text())
        history = stored["history"] if isinstance(stored, dict) else stored  # old files: a list
    elif not args.skip_training:
        history = train(args.save_history, intrinsic_dimension=args.id_dir is not None)
    if history is not None:
        plot(history, args.out, args.dpi)
        if args.id_dir is not None:
            write_id_images(history, args.id_dir)
        print_caption_numbers(history)
    time_figure(args.repeats)


if __name__ == "__main__":
    main()
