"""What the monitor's figures cost, before and after the heat maps were stacked and PNG-encoded in the background.

Issue 20: on the H200 the Fashion-MNIST recipe's monitored fit was 1.129x the bare fit with the figures and 1.018x
without (``monitor_gpu_fit_h200_before.txt``): the excess was the figures, drawn in the background but waited for
at the end of the fit, and re-encoded by ``add_image`` in the training thread at every drawing. This script measures
both parts on this machine, old and new in the same run, for two histories shaped like the recipes':
Fashion-MNIST (10 classes, 7 watched layers, 5 measurements) and D-I (2 classes, 11 layers, 20 measurements).

1. The background drawing of ``betti/over_training``: the old layout (one heat map and colour bar per class and
   dimension; ``report.py`` of commit d52f289, read with ``git show``) rendered to pixels, against the stacked
   layout rendered and PNG-encoded (what ``render_job`` now does).
2. The training thread's part of writing the figures to TensorBoard: ``add_image`` of the pixels (before), against
   ``write_picture`` of the PNG (after), for both images of a drawing. The writer's queue is made long enough
   never to fill, so that the disk (written by the writer's own thread) is not timed.
3. The background drawing of ``betti/depth_profile``: Matplotlib's constrained layout (``figures.py`` of commit
   034c3f0) against the layout by hand that followed, both PNG-encoded. The last drawing of a fit is waited for in
   ``on_train_end``, so this is time the main job waits.
4. The background drawing of ``betti/over_training`` again, both PNG-encoded: a tick label per row (``figures.py``
   of commit 8fb1e54) against the row names drawn as one artist of glyph outlines (``RowNames``) that followed.
5. The last drawing's wall time on ``--workers`` worker processes (started and warmed up first), which is what the
   end of a fit waits for: the monitor's figures as one job (before) against one job per image, drawn side by side
   (``FigureSchedule.draw`` with several workers), interleaved.

Usage:
    python benchmarks/figure_logging.py [--repeats 5]
"""

from __future__ import annotations

import importlib.util
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from common import REPO, Parser
from torch.utils.tensorboard import SummaryWriter

from lightning_topo.monitoring.figures import depth_figure, over_training_figure
from lightning_topo.monitoring.jobs import figure_tags, render_job
from lightning_topo.monitoring.pictures import encode_png, render_rgb, write_picture
from lightning_topo.monitoring.runner import JobRunner

OLD_COMMIT = "d52f289"
OLD_DEPTH_COMMIT = "034c3f0"  # the depth figure's last commit with Matplotlib's constrained layout
OLD_ROWS_COMMIT = "8fb1e54"  # the heat maps' last commit with a tick label per row


def module_at(commit: str, path: str, name: str):
    """The module ``path`` as it was at ``commit`` (read with ``git show``), imported under ``name``."""
    source = subprocess.run(["git", "show", f"{commit}:{path}"], cwd=REPO, capture_output=True, text=True).stdout
    file = Path(tempfile.mkdtemp()) / f"{name}.py"
    file.write_text(source)
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def old_figures():
    """The over-training figure as it was drawn before the stacking (report.py at ``OLD_COMMIT``)."""
    return module_at(OLD_COMMIT, "lightning_topo/monitoring/report.py", "report_before")


def history(classes: int, layers: int, entries: int, seed: int = 0) -> tuple[list[str], list[dict]]:
    rng = np.random.default_rng(seed)
    names = [f"features.layer{i}.act" for i in range(1, layers)] + ["logits"]
    clouds = [str(c) for c in range(classes)]
    return names, [
        {
            "epoch": e,
            "step": 100 * e,
            "seconds": 0.1,
            "betti": {n: {c: [int(rng.integers(1, 12)), int(rng.integers(0, 9))] for c in clouds} for n in names},
        }
        for e in range(entries)
    ]


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    run()  # warm-up: fonts, colour maps
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(
    name: str, shape: tuple[int, int, int], before, depth_before, rows_before, writer: SummaryWriter, repeats: int
) -> None:
    """Print one history's four comparisons."""
    classes, layers, entries = shape
    watched, hist = history(classes, layers, entries)
    old_draw = median_seconds(lambda: render_rgb(before.over_training_figure(hist, watched, (0, 1))), repeats)
    new_draw = median_seconds(lambda: encode_png(over_training_figure(hist, watched, (0, 1))), repeats)
    last = hist[-1]["betti"]
    old_depth = median_seconds(lambda: encode_png(depth_before.depth_figure(last, watched, (0, 1), "depth")), repeats)
    new_depth = median_seconds(lambda: encode_png(depth_figure(last, watched, (0, 1), "depth")), repeats)
    old_rows = median_seconds(lambda: encode_png(rows_before.over_training_figure(hist, watched, (0, 1))), repeats)
    figures = [over_training_figure(hist, watched, (0, 1)), depth_figure(last, watched, (0, 1), "depth")]
    raw, encoded = [render_rgb(f) for f in figures], [encode_png(f) for f in figures]

    def add_images() -> None:
        for tag, image in zip("ab", raw):
            writer.add_image(tag, image, 0, dataformats="HWC")

    def write_pictures() -> None:
        for tag, picture in zip("ab", encoded):
            write_picture(writer, tag, picture, 0)

    old_main, new_main = median_seconds(add_images, repeats), median_seconds(write_pictures, repeats)
    print(
        f"{name} history ({classes} classes, {layers} layers, {entries} measurements), median of {repeats}:\n"
        f"  background, betti/over_training drawn: before (a heat map per class and dimension, pixels) "
        f"{old_draw:.3f} s, after (stacked, PNG-encoded) {new_draw:.3f} s: {old_draw / new_draw:.2f}x faster\n"
        f"  background, betti/depth_profile drawn and PNG-encoded: before (constrained layout, {OLD_DEPTH_COMMIT}) "
        f"{old_depth:.3f} s, after (laid out by hand) {new_depth:.3f} s: {old_depth / new_depth:.2f}x faster\n"
        f"  training thread, both images written to TensorBoard: before (add_image) {old_main * 1000:.1f} ms, "
        f"after (write_picture) {new_main * 1000:.1f} ms: {old_main / new_main:.0f}x less\n"
        f"  background, betti/over_training drawn and PNG-encoded: before (a tick label per row, {OLD_ROWS_COMMIT}) "
        f"{old_rows:.3f} s, after (row names as one artist) {new_draw:.3f} s: {old_rows / new_draw:.2f}x faster",
        flush=True,
    )


def last_drawing(name: str, shape: tuple[int, int, int], workers: int, repeats: int) -> None:
    """Print the wall time of one drawing on worker processes: one job, against one job per image."""
    watched, hist = history(*shape)
    runner = JobRunner(workers)
    try:
        jobs = {"one job": [None], "a job per image": [[tag] for tag in figure_tags(hist)]}

        def drawing(split: list) -> float:
            start = time.perf_counter()
            for future in [runner.submit(render_job, hist, watched, (0, 1), tags) for tags in split]:
                future.result()
            return time.perf_counter() - start

        for split in [[[tag] for tag in figure_tags(hist)]] * workers:  # start and warm up every worker
            drawing(split)
        times: dict[str, list[float]] = {label: [] for label in jobs}
        for _ in range(repeats):
            for label, split in jobs.items():
                times[label].append(drawing(split))
    finally:
        runner.close()
    one, split = (statistics.median(times[label]) for label in jobs)
    print(
        f"{name}, the last drawing on {workers} worker processes (both images), median of {repeats}: "
        f"one job {one:.3f} s, a job per image {split:.3f} s: {one / split:.2f}x faster",
        flush=True,
    )


def main() -> None:
    parser = Parser(__doc__)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each case (after one warm-up)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes for the last drawing's timing")
    args = parser.parse_args()
    before = old_figures()
    depth_before = module_at(OLD_DEPTH_COMMIT, "lightning_topo/monitoring/figures.py", "figures_before")
    rows_before = module_at(OLD_ROWS_COMMIT, "lightning_topo/monitoring/figures.py", "figures_rows_before")
    writer = SummaryWriter(tempfile.mkdtemp(), max_queue=10_000)  # the encoding is timed, not the disk: no full queue
    for name, shape in {"Fashion-MNIST": (10, 7, 5), "D-I": (2, 11, 20)}.items():
        measure(name, shape, before, depth_before, rows_before, writer, args.repeats)
    writer.close()
    for name, shape in {"Fashion-MNIST": (10, 7, 5), "D-I": (2, 11, 20)}.items():
        last_drawing(name, shape, args.workers, args.repeats)


if __name__ == "__main__":
    main()
