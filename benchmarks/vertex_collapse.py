"""The Betti jobs above beta_1 with and without the vertex collapses, on the neighbour lists of a real fit.

``flag_complex_betti`` answers ``max_dim >= 2`` (the D-III recipe's dims 0, 1 and 2) by gudhi's strong edge
collapses, then a simplex tree.  Since commit 85aef6d it first removes the dominated vertices of each
component's graph until none is left (``lightning_topo.topology.reduction.collapse_dominated_vertices``: strong
collapses, exact).  This script fits a recipe as shipped (default D-III, to 100% training accuracy, its monitor every
200 epochs) and keeps the neighbour lists of every Betti job of its measurements; then, over ``--rounds``
interleaved rounds, it computes every job's Betti numbers with the vertex collapses (``with``) and without them
(``without``: the function replaced by one that returns the graph as it is, the route as it stood before), on one
thread, one job after another.  Printed: each round's seconds, the medians and their ratio, how many jobs gave
identical Betti numbers on both routes (all must), and the graphs' sizes (vertices and edges of the dominated-vertex
-reduced hop graph, before and after the vertex collapses, medians over the jobs).  Exit status 1 if any differ.

``--profile`` adds cProfile's listing (by own time) of one pass over the jobs on each route: where their time goes.

In a fit the jobs of one measurement run in threads side by side (one per core), so a measurement's wall time is
about the sum printed here divided by the measurements and the cores; ``train_synthetic.py`` gives the fit's own.

Usage:
    python benchmarks/vertex_collapse.py --rounds 3 --profile | tee benchmarks/results/vertex_collapse.txt
    python benchmarks/vertex_collapse.py --recipe d3_spheres --trainer.max_epochs=400 --rounds 1   # quick
"""

from __future__ import annotations

import cProfile
import io
import math
import pstats
import statistics
import time
from typing import Any

import numpy as np
from common import REPO, Parser, forget_betti, recipe_in_temp_logs

import lightning_topo.topology as topology
from lightning_topo.callbacks import BettiMonitor
from lightning_topo.topology import flag
from lightning_topo.topology.reduction import collapse_dominated_vertices, reduced_hop_graph


def fitted_jobs(recipe: str, extra: list[str]) -> tuple[list[tuple[Any, dict[str, Any]]], int, str]:
    """``(jobs, measurements, how the fit ended)``: the (lists, options) of every Betti job of a fit as shipped."""
    jobs: list[tuple[Any, dict[str, Any]]] = []
    original = topology.betti_from_neighbours  # what the monitor's jobs import when they run

    def keep(lists: Any, **options: Any) -> Any:
        jobs.append((lists, options))
        return original(lists, **options)

    topology.betti_from_neighbours = keep
    forget_betti()  # every job computes, none is looked up
    try:
        with recipe_in_temp_logs(recipe, *extra) as cli:
            cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    finally:
        topology.betti_from_neighbours = original
    monitor = next(c for c in cli.trainer.callbacks if isinstance(c, BettiMonitor))
    ended = f"epoch {cli.trainer.current_epoch}, train_acc {float(cli.trainer.callback_metrics['train_acc']):.5f}"
    return jobs, len(monitor.history), ended


def timed_betti(jobs: list[tuple[Any, dict[str, Any]]], vertex_collapses: bool) -> tuple[float, list[tuple[int, ...]]]:
    """Seconds for every job's Betti numbers, one after another, and the numbers."""
    original = flag.collapse_dominated_vertices
    if not vertex_collapses:
        flag.collapse_dominated_vertices = lambda n, edges: (n, edges)
    try:
        start = time.perf_counter()
        found = [topology.betti_from_neighbours(lists, **options) for lists, options in jobs]
        return time.perf_counter() - start, found
    finally:
        flag.collapse_dominated_vertices = original


def sizes(jobs: list[tuple[Any, dict[str, Any]]]) -> str:
    """Median vertices and edges of each job's reduced hop graph, before and after the vertex collapses."""
    rows = []
    for lists, options in jobs:
        n, edges = reduced_hop_graph(lists.indices, int(math.floor(options.get("scale", 2.5))))
        kept, left = collapse_dominated_vertices(n, edges)
        rows.append((n, edges.shape[1], kept, left.shape[1]))
    n, m, kept, left = np.median(np.array(rows), axis=0)
    return f"vertices {n:.0f} -> {kept:.0f}, edges {m:.0f} -> {left:.0f} (medians over the jobs' whole graphs)"


def main() -> int:
    parser = Parser(__doc__)
    parser.add_argument("--recipe", default="d3_spheres", help="recipes/<name>.yaml, fitted as shipped")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of both routes")
    parser.add_argument("--profile", action="store_true", help="cProfile one pass of each route (see above)")
    args, extra = parser.parse_known_args()  # anything else is a LightningCLI override
    jobs, measurements, ended = fitted_jobs(args.recipe, extra)
    jobs = [(lists, options) for lists, options in jobs if options.get("max_dim", 1) >= 2 and lists.metric == "knn"]
    print(
        f"\n# {args.recipe}: fit ended at {ended}; {measurements} measurements, {len(jobs)} Betti jobs of max_dim >= 2"
    )
    if not jobs:
        print("no job above beta_1: nothing to compare (the recipe's dims stop at 1)")
        return 1
    print(f"# {sizes(jobs)}")
    seconds: dict[bool, list[float]] = {True: [], False: []}
    answers: dict[bool, list[tuple[int, ...]]] = {}
    for round_ in range(args.rounds):
        order = (False, True) if round_ % 2 == 0 else (True, False)
        for route in order:
            spent, answers[route] = timed_betti(jobs, route)
            seconds[route].append(spent)
        print(
            f"round {round_ + 1}: without {seconds[False][-1]:.2f} s, with {seconds[True][-1]:.2f} s "
            f"({seconds[False][-1] / seconds[True][-1]:.2f}x)",
            flush=True,
        )
    same = sum(a == b for a, b in zip(answers[True], answers[False]))
    without, with_ = statistics.median(seconds[False]), statistics.median(seconds[True])
    print(
        f"== {args.recipe}: {len(jobs)} jobs on 1 thread, median of {args.rounds} rounds: without the vertex "
        f"collapses {without:.2f} s ({without / measurements:.2f} s a measurement), with {with_:.2f} s "
        f"({with_ / measurements:.2f} s a measurement): {without / with_:.2f}x; identical Betti numbers in "
        f"{same} of {len(jobs)} jobs"
    )
    if args.profile:
        for route in (False, True):
            profile = cProfile.Profile()
            profile.runcall(timed_betti, jobs, route)
            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(12)
            listing = out.getvalue().split("   ncalls", 1)[1].rstrip().replace(f"{REPO}/", "")
            print(
                f"\ncProfile, {'with' if route else 'without'} the vertex collapses, by own time:\n   ncalls{listing}"
            )
    return 0 if same == len(jobs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
