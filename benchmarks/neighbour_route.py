"""The neighbour-list step of one class cloud: the old numpy route against the torch route.

A ResNet-18 first-ReLU class cloud is 50 images x 800,000 activations (64 x 112 x 112 at 224 px);
random non-negative values with about half of them zero stand in for it, plus a 200,000-wide cloud,
a cloud with duplicated rows and a dead layer (all rows zero).  Routes, each in a fresh process so
that the peak memory (the peak resident set above the resident set before the call, host only) is its own:

- old:   ``np.unique(cloud, axis=0)`` + float64 brute-force k-NN (the code before the torch route);
- numpy: ``numpy_neighbour_lists`` (rows hashed, first occurrences kept, Gram blocks of the cloud moved to its first point);
- torch64 / torch32: ``neighbour_lists`` on the cloud's device (float64 / float32 arithmetic).

Each prints its wall time (median of ``--repeats``) and whether its lists equal the old route's (the same
neighbours of the same original points: the old route numbers points in sorted order, the new ones in
original order).

With ``--filters``: conv filter scores (``filter_betti_scores``) on ``(500, 64, 28, 28)`` maps, the outputs of
a seeded random ``Conv2d(1, 64, 3, padding=1)`` + ReLU on 500 Fashion-MNIST test images (so dead pixels, zero maps
and ties are real): the neighbour lists of all 64 filters per route (old per-filter ``np.unique`` + brute force,
the numpy route filter by filter, the batched torch route), then the whole score (lists + gudhi) of
``route="numpy"`` and ``route="torch"``, and whether the scores agree.

Usage:
    python benchmarks/neighbour_route.py                     # CPU; add --device cuda on a GPU machine
    python benchmarks/neighbour_route.py --repeats 5 --k 14
    python benchmarks/neighbour_route.py --filters --data /work/shared/data
"""

from __future__ import annotations

import multiprocessing as mp
import statistics
import time
from typing import Any

import numpy as np
from common import Parser

CASES = {
    "50 x 800,000": dict(n=50, d=800_000, duplicates=0),
    "50 x 200,000": dict(n=50, d=200_000, duplicates=0),
    "50 x 200,000, 10 duplicates": dict(n=50, d=200_000, duplicates=10),
    "dead layer 50 x 800,000": dict(n=50, d=800_000, duplicates=-1),
}


def make_cloud(n: int, d: int, duplicates: int, seed: int = 0) -> np.ndarray:
    """float32 activations: half zeros, half |normal|; ``duplicates`` rows copied; ``-1``: all zero."""
    if duplicates < 0:
        return np.zeros((n, d), dtype=np.float32)
    rng = np.random.default_rng(seed)
    cloud = np.empty((n, d), dtype=np.float32)
    for row in cloud:  # row by row, so that making the cloud adds nothing to the peak memory measured
        row[:] = np.abs(rng.standard_normal(d, dtype=np.float32))
        row[rng.random(d, dtype=np.float32) < 0.5] = 0.0
    if duplicates:
        cloud[rng.choice(n, duplicates, replace=False)] = cloud[rng.choice(n, duplicates, replace=False)]
    return cloud


def old_route(cloud: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The code before this change: float64 copy, np.unique(axis=0), brute-force k-NN. Returns (kept, lists)."""
    pts = cloud.astype(np.float64)
    unique, kept = np.unique(pts, axis=0, return_index=True)
    n = len(unique)
    k = min(k, n)
    sq = np.einsum("ij,ij->i", unique, unique)
    dist = sq[:, None] - 2.0 * unique @ unique.T + sq[None, :]
    dist[np.arange(n), np.arange(n)] = -np.inf
    part = np.argpartition(dist, k - 1, axis=1)[:, :k] if k < n else np.tile(np.arange(n), (n, 1))
    order = np.argsort(np.take_along_axis(dist, part, axis=1), axis=1, kind="stable")
    return kept, np.take_along_axis(part, order, axis=1)


def new_route(cloud: np.ndarray, route: str, k: int, device: str) -> tuple[np.ndarray, np.ndarray]:
    """The new routes. Returns (kept, lists); the kept rows come from the exact first occurrences."""
    from lightning_topo.topology import first_occurrences, neighbour_lists, numpy_neighbour_lists

    if route == "numpy":
        lists = numpy_neighbour_lists(cloud, k=k)
    else:
        import torch

        tensor = torch.from_numpy(cloud).to(device)
        if device != "cpu":
            torch.cuda.synchronize()
        dtype = torch.float64 if route == "torch64" else torch.float32
        lists = neighbour_lists(tensor, k=k, dtype=dtype)
    return first_occurrences(cloud) if lists.n_unique < lists.n_points else np.arange(len(cloud)), lists.indices


def _status_mb(field: str) -> float:
    """``VmRSS`` / ``VmHWM`` (peak since the last reset) of this process, from /proc/self/status, in MB."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith(field + ":"))
    return int(line.split()[1]) / 1024


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as clear:  # "5": reset the peak resident set size (Linux)
        clear.write("5")


def _worker(case: str, route: str, k: int, device: str, repeats: int, threads: int, queue: Any) -> None:
    cloud = make_cloud(**CASES[case])
    if route.startswith("torch"):
        import torch

        if threads:
            torch.set_num_threads(threads)
        if device != "cpu":  # warm the device up (context, kernels) outside the timing
            torch.zeros(1, device=device).sum().item()
    seconds, peaks = [], []
    for _ in range(repeats):
        base_mb = _status_mb("VmRSS")
        _reset_peak()
        start = time.perf_counter()
        kept, lists = old_route(cloud, k) if route == "old" else new_route(cloud, route, k, device)
        seconds.append(time.perf_counter() - start)
        peaks.append(_status_mb("VmHWM") - base_mb)
    rows = np.argsort(kept)  # one row per kept point, in original order, naming neighbours by original number
    queue.put((statistics.median(seconds), max(peaks), kept[lists][rows]))


def run(case: str, route: str, k: int, device: str, repeats: int, threads: int) -> tuple[float, float, np.ndarray]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_worker, args=(case, route, k, device, repeats, threads, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def _compare(lists: np.ndarray, old: np.ndarray) -> str:
    if np.array_equal(lists, old):
        return "yes"
    if lists.shape != old.shape:
        return f"NO (shape {lists.shape} vs {old.shape})"
    rows = int((lists != old).any(axis=1).sum())
    sets = int(sum(set(a) != set(b) for a, b in zip(lists.tolist(), old.tolist())))
    return f"no: {rows} of {len(lists)} rows differ in order, {sets} in membership"


def conv_maps(data: str, n_images: int = 500, channels: int = 64) -> np.ndarray:
    """``(n_images, channels, 28, 28)`` float32 ReLU maps of a seeded random 3x3 conv on Fashion-MNIST test images."""
    import torch

    raw = np.fromfile(f"{data}/FashionMNIST/raw/t10k-images-idx3-ubyte", dtype=np.uint8, offset=16)
    images = torch.from_numpy(raw.reshape(-1, 1, 28, 28)[:n_images].astype(np.float32) / 255.0)
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(1, channels, 3, padding=1)
    with torch.no_grad():
        return torch.relu(conv(images)).numpy()


def _timed(fn: Any, repeats: int) -> tuple[float, Any]:
    seconds, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), result


def filters_benchmark(data: str, k: int, device: str, repeats: int) -> None:
    import torch

    from lightning_topo.topology import numpy_neighbour_lists
    from lightning_topo.topology.filter_lists import filter_neighbour_lists
    from lightning_topo.topology.filters import filter_betti_scores

    maps = conv_maps(data)
    n, c = maps.shape[:2]
    clouds = maps.reshape(n, c, -1)
    on_device = torch.from_numpy(maps).to(device)
    dead = sum(int((clouds[:, f] == clouds[0, f]).all()) for f in range(c))
    print(f"\nfilter scores: maps {maps.shape} float32, k={k}, {dead} dead filters, median of {repeats}")
    header = f"{'step':44} {'seconds':>8} {'speed-up':>9}  check"
    print(header)
    print("-" * len(header))
    old_s, _ = _timed(lambda: [old_route(clouds[:, f], k) for f in range(c)], repeats)
    print(f"{'lists, old (np.unique + brute force) x 64':44} {old_s:>8.3f} {'1.0x':>9}", flush=True)
    np_s, np_lists = _timed(lambda: [numpy_neighbour_lists(clouds[:, f], k=k) for f in range(c)], repeats)
    print(f"{'lists, numpy route x 64':44} {np_s:>8.3f} {old_s / np_s:>8.1f}x", flush=True)
    t_s, t_lists = _timed(lambda: filter_neighbour_lists(on_device, k=k), repeats)
    same = all(np.array_equal(a.indices, b.indices) for a, b in zip(np_lists, t_lists))
    print(f"{'lists, batched torch (' + device + ')':44} {t_s:>8.3f} {old_s / t_s:>8.1f}x  same as numpy: {same}")
    slow_s, slow = _timed(lambda: filter_betti_scores(maps, k=k, route="numpy"), repeats)
    print(f"{'scores, route=numpy (lists + gudhi)':44} {slow_s:>8.3f} {'1.0x':>9}", flush=True)
    fast_s, fast = _timed(lambda: filter_betti_scores(on_device, k=k, route="torch"), repeats)
    agree = "yes" if np.array_equal(fast, slow) else f"NO: {int((fast != slow).sum())} filters differ"
    print(f"{'scores, route=torch':44} {fast_s:>8.3f} {slow_s / fast_s:>8.1f}x  same scores: {agree}")
    print(f"beta_1 scores: {fast.astype(int).tolist()}")


def main() -> None:
    parser = Parser(__doc__)
    parser.add_argument("--k", type=int, default=14)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--old-repeats", type=int, default=1, help="repeats of the old route (about a minute each)")
    parser.with_device("cpu", help="device of the torch routes (cpu, cuda)")
    parser.add_argument("--routes", default="old,numpy,torch64,torch32")
    parser.add_argument("--filters", action="store_true", help="only the conv filter scores (see above)")
    parser.add_argument("--data", default="/work/shared/data", help="folder holding FashionMNIST/raw")
    parser.with_threads(0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    routes = args.routes.split(",")

    if args.filters:
        filters_benchmark(args.data, 10, args.device, args.repeats)
        return

    print(f"k={args.k}, median of {args.repeats} (old route: {args.old_repeats}), on {args.device}")
    header = f"{'cloud':30} {'route':8} {'seconds':>8} {'peak MB':>8} {'speed-up':>9}  same lists as old"
    print(header)
    print("-" * len(header))
    for case in CASES:
        old = None
        for route in routes:
            seconds, peak_mb, lists = run(
                case, route, args.k, args.device, args.old_repeats if route == "old" else args.repeats, args.threads
            )
            if route == "old":
                old = (seconds, lists)
            speed = f"{old[0] / seconds:.1f}x" if old else ""
            same = "" if route == "old" or old is None else _compare(lists, old[1])
            print(f"{case:30} {route:8} {seconds:>8.3f} {peak_mb:>8.0f} {speed:>9}  {same}", flush=True)


if __name__ == "__main__":
    main()
