"""Speed and memory of the Betti-number engine against the straightforward gudhi route.

For each case it prints: points, dimension, k, Betti numbers, seconds, peak memory, and the ratio
against the straightforward route (flag complex of the same hop graph, expanded without edge
collapse) measured in the same run.  Every computation runs in a fresh subprocess, so peak memory
(max RSS, the interpreter and libraries included) belongs to that computation alone; the
straightforward route runs under a time and memory cap (it can need many GB), and a capped run is
reported as a bound ("> N s").

Targets on a 2-core machine: D-I class b and one D-II class at homology size under 0.5 s each,
the 15-D case under 1 s, the full-size D-II class under 6 s, peak memory under 2 GB, and at least
10x faster than the straightforward route on the D-I case.

Usage:
    python benchmarks/betti_speed.py                  # all cases
    python benchmarks/betti_speed.py --baseline-timeout 300 --baseline-memory-gb 8
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from common import Parser


@dataclass(frozen=True)
class Case:
    name: str
    dataset: str
    label: int
    fraction: float  # of the class's points (homology size = 1/4 of the training set)
    k: int
    max_dim: int
    relu_width: int = 0  # > 0: push the points through a random Linear(d, width) + ReLU layer first


CASES = [
    Case("D-I class b, full size", "d1", 1, 1.0, 14, 2),
    Case("D-II class a, homology size", "d2", 0, 0.25, 35, 2),
    Case("D-II class a, full size", "d2", 0, 1.0, 35, 2),
    Case("D-II homology set -> ReLU(15)", "d2", -1, 0.25, 35, 1, relu_width=15),
]


def case_points(case: Case) -> np.ndarray:
    from lightning_topo.data.synthetic import make_dataset

    x, y = make_dataset(case.dataset, seed=0)
    pts = x if case.label < 0 else x[y == case.label]
    rng = np.random.default_rng(0)
    if case.fraction < 1.0:
        pts = pts[rng.choice(len(pts), int(len(pts) * case.fraction), replace=False)]
    if case.relu_width:
        weight = rng.normal(size=(pts.shape[1], case.relu_width)) / np.sqrt(pts.shape[1])
        bias = rng.normal(size=case.relu_width)
        pts = np.maximum(pts @ weight + bias, 0.0)
    return pts


def _worker(case: Case, collapse: bool, memory_cap: int, queue: Any) -> None:
    if memory_cap:
        resource.setrlimit(resource.RLIMIT_AS, (memory_cap, memory_cap))
    try:
        from lightning_topo.topology import betti_numbers

        pts = case_points(case)
        start = time.perf_counter()
        betti = betti_numbers(pts, k=case.k, max_dim=case.max_dim, collapse=collapse)
        seconds = time.perf_counter() - start
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        queue.put(("ok", pts.shape, betti, seconds, peak_mb))
    except MemoryError:
        queue.put(("memory", None, None, None, None))
    except Exception as error:  # report it, never as "out of memory"
        queue.put((f"error: {type(error).__name__}: {error}", None, None, None, None))


def run(case: Case, collapse: bool, timeout: float, memory_cap: int = 0) -> tuple:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_worker, args=(case, collapse, memory_cap, queue))
    start = time.perf_counter()
    proc.start()
    proc.join(timeout)
    if proc.is_alive():
        proc.kill()
        proc.join()
        return ("timeout", None, None, time.perf_counter() - start, None)
    if queue.empty():  # killed without a word: under the address-space cap, a failed C++ allocation aborts
        return (
            f"memory (exit code {proc.exitcode})"
            if memory_cap and proc.exitcode
            else f"failed (exit code {proc.exitcode})",
            None,
            None,
            None,
            None,
        )
    return queue.get()


def main() -> None:
    parser = Parser(__doc__)
    parser.add_argument(
        "--baseline-timeout", type=float, default=120.0, help="seconds allowed to the straightforward route"
    )
    parser.add_argument(
        "--baseline-memory-gb", type=float, default=6.0, help="address-space cap of the straightforward route"
    )
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()
    cap = int(args.baseline_memory_gb * 2**30)

    header = f"{'case':32} {'points':>7} {'dim':>3} {'k':>3}  {'betti':14} {'seconds':>8} {'peak MB':>8}  {'straightforward':>17}  {'ratio':>8}"
    print(header)
    print("-" * len(header))
    for case in CASES:
        status, shape, betti, seconds, peak = run(case, collapse=True, timeout=600)
        if status != "ok":
            print(f"{case.name:32} fast route failed: {status}")
            continue
        base_txt, ratio_txt = "skipped", ""
        if not args.skip_baseline:
            b_status, _, b_betti, b_seconds, _ = run(
                case, collapse=False, timeout=args.baseline_timeout, memory_cap=cap
            )
            if b_status == "ok":
                assert b_betti == betti, f"routes disagree on {case.name}: {betti} vs {b_betti}"
                base_txt, ratio_txt = f"{b_seconds:.2f} s", f"{b_seconds / seconds:.1f}x"
            elif b_status == "timeout":
                base_txt, ratio_txt = f"> {args.baseline_timeout:.0f} s", f"> {args.baseline_timeout / seconds:.0f}x"
            elif b_status.startswith("memory"):
                base_txt, ratio_txt = f"> {args.baseline_memory_gb:.0f} GB", "(out of memory)"
            else:
                base_txt, ratio_txt = b_status, ""
        print(
            f"{case.name:32} {shape[0]:>7} {shape[1]:>3} {case.k:>3}  {str(betti):14} {seconds:>8.2f} {peak:>8.0f}  "
            f"{base_txt:>17}  {ratio_txt:>8}",
            flush=True,
        )


if __name__ == "__main__":
    main()
