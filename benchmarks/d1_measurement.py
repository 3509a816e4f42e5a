"""One D-I measurement of the BettiMonitor (its ``betti/seconds``): old code against new, in the same run.

The model and probe are the D-I recipe's (``recipes/d1_circles.yaml``: 9x15 ReLU MLP, probe 2,000 points in 2
classes, 11 watched layers, k=14, dims 0 and 1), trained ``--epochs`` epochs without the monitor's own
measurements, then measured with ``BettiMonitor.compute(model)`` (one synchronous measurement, Betti jobs in
threads of this process, as during a CPU fit). The old code is the package at ``--old`` (a commit), extracted
with ``git archive`` into a temporary folder; every measurement runs in a fresh subprocess, old and new
alternating round by round so that a change in the machine's load hits both. It prints each side's median
``betti/seconds``, their ratio, the load average beside each round, and whether both sides gave the same Betti
numbers.

``--fit`` compares whole D-I recipe fits instead (the monitor every 50 epochs until 100%, as shipped): each side's
median ``betti/seconds`` over all its measurements, the figure TensorBoard shows a user, and whether every
measurement's Betti numbers agree.

``--crossover`` prints the neighbour-list table instead: the CPU k-d tree route (``neighbour_lists``'s default on
the CPU, what the monitor runs) against the torch brute force (``kd_tree=False``, direct differences and
``topk``) across cloud sizes and widths, both exact (the script checks that their lists are identical).

``--tree-workers`` prints where a threaded k-d tree query starts to pay: the query of every point's ``k + 1``
nearest at 1 thread against ``--torch-threads`` threads (default: torch's, the cores), with scipy's ``workers=``
and with the package's ``split_query`` (helper threads kept for the process), across cloud sizes, on the same data
as ``--crossover``; ``knn_indices`` must give identical lists at both counts (printed). The threshold
``PARALLEL_QUERY_MIN_POINTS`` in ``lightning_topo/topology/graph.py`` is read off this table.

``--profile`` prints cProfile's cumulative listing of ``--repeats`` measurements of the code it runs with.

Usage:
    python benchmarks/d1_measurement.py --old 6dac436 --rounds 5 --repeats 5
    python benchmarks/d1_measurement.py --fit --old bbbbe43 --rounds 3   # whole recipe fits, old vs new
    python benchmarks/d1_measurement.py --crossover
    python benchmarks/d1_measurement.py --tree-workers --repeats 31
    python benchmarks/d1_measurement.py --profile --repeats 10
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

import yaml
from common import REPO, Parser, forget_betti, fresh_compute, load_recipe, probe_clouds


def recipe_cli(epochs: int | None, keep: tuple[str, ...] = ("BettiMonitor",)):
    """The D-I recipe built by the package's LightningCLI with only the callbacks named in ``keep`` (the old
    package knows no newer callback), without logger or checkpoints; ``epochs`` overrides ``max_epochs``."""
    import warnings

    warnings.filterwarnings("ignore")
    from lightning_topo.cli import run_cli

    config = load_recipe("d1_circles")
    config["trainer"]["callbacks"] = [c for c in config["trainer"]["callbacks"] if c["class_path"].endswith(keep)]
    overrides = ["--trainer.logger=false", "--trainer.enable_checkpointing=false"]
    if epochs is not None:
        overrides.append(f"--trainer.max_epochs={epochs}")
    with tempfile.TemporaryDirectory() as tmp:
        recipe = Path(tmp) / "d1_monitor_only.yaml"
        recipe.write_text(yaml.safe_dump(config))
        return run_cli(["-c", str(recipe), *overrides], run=False)


def build(epochs: int):
    """The D-I recipe's model after ``epochs`` epochs and its monitor, ready for ``compute`` (probe drawn)."""
    from lightning_topo.callbacks import BettiMonitor

    cli = recipe_cli(epochs)
    monitor = next(c for c in cli.trainer.callbacks if isinstance(c, BettiMonitor))
    monitor.every_n_epochs = 10**9  # it draws its probe and picks its layers at train start, then stays idle
    cli.trainer.callbacks[:] = [monitor]
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    return monitor, cli.model


def fit_worker() -> None:
    """``--fit``'s subprocess: the D-I recipe's fit with its BettiMonitor and EarlyStopping as shipped (every 50
    epochs until 100% training accuracy); JSON of every measurement's ``betti/seconds`` on the last line."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    from lightning_topo.callbacks import BettiMonitor

    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        cli = recipe_cli(None, keep=("BettiMonitor", "EarlyStopping"))
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    history = next(c for c in cli.trainer.callbacks if isinstance(c, BettiMonitor)).history
    print(
        json.dumps(
            {
                "seconds": [entry["seconds"] for entry in history],
                "blocked": [entry["blocked_seconds"] for entry in history],
                "epochs": cli.trainer.current_epoch,
                "betti": [entry["betti"] for entry in history],
            }
        )
    )


def worker(args: argparse.Namespace) -> None:
    """Runs in a subprocess with the code under test on PYTHONPATH: JSON of the measurements on the last line.

    One epoch sets the monitor up (its probe, drawn with a fixed seed, and its layers); then the weights trained
    once by the parent (``--weights``) are loaded, so that both sides measure the very same model.
    """
    import io
    from contextlib import redirect_stderr, redirect_stdout

    import torch

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        monitor, model = build(1)
        model.load_state_dict(torch.load(args.weights, weights_only=True))
        try:
            from lightning_topo.monitoring.measurement import Measurement
        except ImportError:  # an --old package, from before the monitor's measurement had a module of its own
            from lightning_topo.callbacks.betti_monitor import _Measurement as Measurement

        capture: list[float] = []  # the capture's share of each betti/seconds (forward passes and neighbour lists)
        results = Measurement.results

        def recorded(self):
            capture.append(self.capture_seconds)
            return results(self)

        Measurement.results = recorded
        fresh_compute(monitor, model)  # warm-up: imports, thread pool
        entries = [fresh_compute(monitor, model) for _ in range(args.repeats)]
    seconds = [e["seconds"] for e in entries]
    print(json.dumps({"seconds": seconds, "capture": capture[1:], "betti": entries[-1]["betti"]}))


def old_tree(commit: str, into: str) -> str:
    """The package as it was at ``commit``, extracted into ``into``; its path, for PYTHONPATH."""
    data = subprocess.run(
        ["git", "archive", commit, "lightning_topo"], cwd=REPO, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into


def alternating(rounds: int):
    """``(round, side)`` for ``rounds`` old/new pairs, the order swapped every round so that load hits both sides."""
    for round_ in range(rounds):
        for side in ("old", "new") if round_ % 2 == 0 else ("new", "old"):
            yield round_, side


def load_average() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def run_worker(path: str, args: argparse.Namespace) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([path, str(REPO / "benchmarks")]))
    if args.fit:
        command = [sys.executable, __file__, "--worker", "--fit"]
    else:
        command = [sys.executable, __file__, "--worker", "--repeats", str(args.repeats), "--weights", args.weights]
        command += ["--torch-threads", str(args.torch_threads)]
    out = subprocess.run(command, env=env, capture_output=True, text=True, cwd=tempfile.gettempdir())
    if out.returncode:
        raise RuntimeError(f"worker exited with {out.returncode}:\n{out.stderr[-3000:]}\n{out.stdout[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def compare(args: argparse.Namespace) -> None:
    seconds: dict[str, list[float]] = {"old": [], "new": []}
    capture: dict[str, list[float]] = {"old": [], "new": []}
    betti: dict[str, dict] = {}
    import io
    from contextlib import redirect_stderr, redirect_stdout

    import torch

    with tempfile.TemporaryDirectory() as tmp:
        with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
            _, model = build(args.epochs)
        args.weights = str(Path(tmp) / "d1.pt")
        torch.save(model.state_dict(), args.weights)
        paths = {"old": old_tree(args.old, str(Path(tmp) / "old")), "new": str(REPO)}
        threads = args.torch_threads or "torch's default"
        print(
            f"old: commit {args.old} (git archive); new: this tree; {args.epochs} training epochs; torch threads {threads}; "
            f"{args.rounds} rounds x {args.repeats} measurements per side, alternating"
        )
        for round_, side in alternating(args.rounds):
            got = run_worker(paths[side], args)
            seconds[side] += got["seconds"]
            capture[side] += got["capture"]
            betti.setdefault(side, got["betti"])
            print(
                f"round {round_ + 1} {side}: betti/seconds median {statistics.median(got['seconds']):.3f} s "
                f"(min {min(got['seconds']):.3f}, max {max(got['seconds']):.3f}; of which capture median "
                f"{statistics.median(got['capture']):.3f} s); load average {load_average()}",
                flush=True,
            )
    old, new = statistics.median(seconds["old"]), statistics.median(seconds["new"])
    print(
        f"\nD-I measurement, betti/seconds median of {len(seconds['old'])}: old {old:.3f} s, new {new:.3f} s, "
        f"ratio old/new {old / new:.2f}x; load average at the end {load_average()}"
    )
    for side in ("old", "new"):
        part = statistics.median(capture[side])
        print(
            f"  {side}: capture (forward passes + neighbour lists, main thread) median {part:.3f} s, "
            f"the rest (Betti jobs, summed over their threads) {statistics.median(seconds[side]) - part:.3f} s"
        )
    same = betti["old"] == betti["new"]
    n_values = sum(len(per) for per in betti["new"].values())
    print(
        f"Betti numbers of the last measurement: {n_values} (layer, class) values, "
        f"{'identical' if same else 'DIFFERENT'} old vs new"
    )


def compare_fits(args: argparse.Namespace) -> None:
    """``--fit``: whole D-I recipe fits, old and new code alternating, each in a fresh subprocess."""
    seconds: dict[str, list[float]] = {"old": [], "new": []}
    blocked: dict[str, list[float]] = {"old": [], "new": []}
    betti: dict[str, list] = {}
    with tempfile.TemporaryDirectory() as tmp:
        paths = {"old": old_tree(args.old, str(Path(tmp) / "old")), "new": str(REPO)}
        print(
            f"old: commit {args.old} (git archive); new: this tree; {args.rounds} rounds of one D-I recipe fit per "
            "side (BettiMonitor and EarlyStopping as shipped, no logger or checkpoints), alternating"
        )
        for round_, side in alternating(args.rounds):
            start = time.perf_counter()
            got = run_worker(paths[side], args)
            seconds[side] += got["seconds"]
            blocked[side] += got["blocked"]
            betti.setdefault(side, got["betti"])
            print(
                f"round {round_ + 1} {side}: {len(got['seconds'])} measurements to epoch {got['epochs']}, "
                f"betti/seconds median {statistics.median(got['seconds']):.3f} s (min {min(got['seconds']):.3f}, "
                f"max {max(got['seconds']):.3f}), blocked median {statistics.median(got['blocked']):.3f} s; "
                f"{time.perf_counter() - start:.1f} s; load average {load_average()}",
                flush=True,
            )
    old, new = statistics.median(seconds["old"]), statistics.median(seconds["new"])
    print(
        f"\nD-I recipe fits, betti/seconds median of {len(seconds['new'])} measurements: old {old:.3f} s, new "
        f"{new:.3f} s, ratio old/new {old / new:.2f}x; training loop blocked: old "
        f"{statistics.median(blocked['old']):.3f} s, new {statistics.median(blocked['new']):.3f} s"
    )
    same = betti["old"] == betti["new"]
    values = sum(len(per) for entry in betti["new"] for per in entry.values())
    print(
        f"Betti numbers of every measurement of the first fit: {values} values, {'identical' if same else 'DIFFERENT'} old vs new"
    )


def crossover(args: argparse.Namespace) -> None:
    """k-d tree route against torch brute force on seeded 2-D data pushed through a random ReLU layer."""
    import numpy as np
    import torch

    from lightning_topo.topology import neighbour_lists

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)

    def median_time(fn, repeats: int) -> float:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    print(
        f"neighbour lists, k={args.k}, float64, torch threads {torch.get_num_threads()}; "
        f"median of {args.repeats}; data: 2-D uniform points, through a random ReLU layer of width d when d > 2"
    )
    print("| n | d | k-d tree (default) | torch brute force | faster | lists identical | load average |")
    print("|---|---|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for n in args.sizes:
        for d in args.widths:
            base = rng.uniform(-1, 1, size=(n, 2))
            x = base if d == 2 else np.maximum(base @ rng.normal(size=(2, d)) + rng.normal(size=d), 0.0)
            cloud = torch.from_numpy(x)
            tree = median_time(lambda c=cloud: neighbour_lists(c, k=args.k), args.repeats)
            brute = median_time(lambda c=cloud: neighbour_lists(c, k=args.k, kd_tree=False), args.repeats)
            a, b = neighbour_lists(cloud, k=args.k), neighbour_lists(cloud, k=args.k, kd_tree=False)
            same = a.n_unique == b.n_unique and np.array_equal(a.indices, b.indices)
            load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
            faster = "k-d tree" if tree <= brute else "brute force"
            print(
                f"| {n:,} | {d} | {tree * 1e3:.1f} ms | {brute * 1e3:.1f} ms | {faster} | {same} | {load} |", flush=True
            )


def tree_workers(args: argparse.Namespace) -> None:
    """The k-d tree query at 1 thread, with scipy's ``workers=`` and shared out over the package's kept helper
    threads (``split_query``), per cloud size, on the ``--crossover`` data."""
    import numpy as np
    import torch
    from scipy.spatial import cKDTree

    from lightning_topo.topology.graph import PARALLEL_QUERY_MIN_POINTS, knn_indices
    from lightning_topo.topology.threads import split_query

    threads = args.torch_threads or torch.get_num_threads()
    print(
        f"k-d tree query of every point's {args.k + 1} nearest (k={args.k} and one for ties), float64, 1 thread "
        f"against {threads}: scipy's workers={threads} (threads started per query) and the package's split_query "
        f"(kept helper threads); median of {args.repeats}, the three interleaved; the package shares the query out "
        f"from {PARALLEL_QUERY_MIN_POINTS} points on"
    )
    print(f"| n | d | 1 thread | scipy workers={threads} | split_query | speed-up (scipy, split) | lists identical |")
    print("|---|---|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for n in args.sizes:
        for d in args.widths:
            base = rng.uniform(-1, 1, size=(n, 2))
            x = base if d == 2 else np.maximum(base @ rng.normal(size=(2, d)) + rng.normal(size=d), 0.0)
            tree = cKDTree(x, balanced_tree=False)
            ways = {
                "one": lambda t=tree, x=x: t.query(x, k=args.k + 1),
                "scipy": lambda t=tree, x=x: t.query(x, k=args.k + 1, workers=threads),
                "split": lambda t=tree, x=x: split_query(t, x, args.k + 1, threads),
            }
            times: dict[str, list[float]] = {name: [] for name in ways}
            for _ in range(args.repeats):  # interleaved, so that a change of load hits all three
                for name, way in ways.items():
                    start = time.perf_counter()
                    way()
                    times[name].append(time.perf_counter() - start)
            one, scipy_, split = (statistics.median(times[name]) for name in ways)
            same = np.array_equal(knn_indices(x, args.k), knn_indices(x, args.k, workers=threads))
            print(
                f"| {n:,} | {d} | {one * 1e3:.2f} ms | {scipy_ * 1e3:.2f} ms | {split * 1e3:.2f} ms "
                f"| {one / scipy_:.2f}x, {one / split:.2f}x | {same} |",
                flush=True,
            )
    print(f"load average (1, 5, 15 min) at the end: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")


def profile(args: argparse.Namespace) -> None:
    import cProfile
    import io
    import pstats
    from contextlib import redirect_stderr, redirect_stdout

    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        monitor, model = build(args.epochs)
        fresh_compute(monitor, model)
    seconds = []
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(args.repeats):
        seconds.append(fresh_compute(monitor, model)["seconds"])
    profiler.disable()
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(
        f"{args.repeats} D-I measurements under cProfile (main thread only; the Betti jobs run in threads and "
        f"appear as the wait in results()): betti/seconds median {statistics.median(seconds):.3f} s "
        f"(cProfile inflates it); load average {load}\n"
    )
    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("cumulative").print_stats(args.top)
    print(stream.getvalue())
    # the threads' side: the Betti jobs profiled serially, one (layer, class) at a time
    from lightning_topo.monitoring.clouds import reduce_clouds
    from lightning_topo.monitoring.jobs import betti_job

    found = reduce_clouds(model, *probe_clouds(monitor), k=14, scale=2.5)
    items = [(key, lists) for key, lists in found.items() if not isinstance(lists, str)]
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(args.repeats):
        forget_betti()  # every repeat computes, as a fit's measurement of new weights does
        betti_job(items, max_dim=1, scale=2.5)
    profiler.disable()
    print(f"\nThe Betti jobs of {args.repeats} measurements ({len(items)} clouds each) run serially under cProfile:")
    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("cumulative").print_stats(args.top)
    print(stream.getvalue())


def main() -> None:
    parser = Parser(__doc__, silent_when=["worker"])
    parser.add_argument("--old", default="6dac436", help="commit of the old code (default: before this issue)")
    parser.add_argument("--rounds", type=int, default=4, help="old/new subprocess pairs")
    parser.add_argument("--repeats", type=int, default=5, help="measurements per subprocess")
    parser.add_argument("--epochs", type=int, default=300, help="training epochs before measuring")
    parser.add_argument("--fit", action="store_true", help="compare whole recipe fits (their measurements' median)")
    parser.add_argument("--crossover", action="store_true", help="print the neighbour-route table instead")
    parser.add_argument("--sizes", type=int, nargs="+", default=[125, 250, 500, 1000, 2000, 4000])
    parser.add_argument("--widths", type=int, nargs="+", default=[2, 5, 10, 15])
    parser.add_argument("--k", type=int, default=14)
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=0,
        help="torch threads of the measuring process (0: torch's default, the cores)",
    )
    parser.add_argument("--tree-workers", action="store_true", help="print the threaded k-d tree query table")
    parser.add_argument("--profile", action="store_true", help="print a cProfile listing of this tree's code")
    parser.add_argument("--top", type=int, default=35, help="rows of the profile listing")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--weights", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        fit_worker() if args.fit else worker(args)
        return
    if args.crossover:
        crossover(args)
    elif args.tree_workers:
        tree_workers(args)
    elif args.profile:
        profile(args)
    elif args.fit:
        compare_fits(args)
    else:
        compare(args)


if __name__ == "__main__":
    main()
