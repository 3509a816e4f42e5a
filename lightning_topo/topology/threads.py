"""A k-d tree query split over a few threads that live as long as the process (no thread started per query).

scipy's own ``cKDTree.query(..., workers=n)`` starts ``n`` threads on every call, which at the monitor's cloud sizes
(hundreds to a few thousand points, a few milliseconds a query) costs a good share of what they save.  Here a pool
kept for the process takes the shares and the calling thread the first one: on this project's 2-core machine the
query is 1.27-1.66x faster than on one thread at 1,000-2,000 points, at least as fast as scipy's ``workers=`` in 18
of the table's 20 rows, and not worth sharing below about 400 points (``python benchmarks/d1_measurement.py --tree-workers``;
``benchmarks/results/tree_workers.txt``).  The query releases the GIL, so the shares run side by side; each row's
answer is the one the whole query gives.

Example:
    >>> import numpy as np
    >>> from scipy.spatial import cKDTree
    >>> points = np.random.default_rng(0).normal(size=(1000, 3))
    >>> tree = cKDTree(points)
    >>> dist, idx = split_query(tree, points, k=4, threads=2)
    >>> bool((idx == tree.query(points, k=4)[1]).all())
    True
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy.spatial import cKDTree

__all__ = ["helper_threads", "split_query"]

_POOLS: dict[tuple[int, int], ThreadPoolExecutor] = {}


def helper_threads(count: int) -> ThreadPoolExecutor:
    """This process's pool of ``count`` helper threads, made on first use and kept.

    Keyed by the process id as well: a forked child inherits the pool object but not its threads, so it gets a
    pool of its own.  Idle helper threads do not hold up the interpreter's exit (a Ctrl-C still returns).
    """
    key = (os.getpid(), count)
    pool = _POOLS.get(key)
    if pool is None:  # a race makes two pools at worst; the one not kept never started a thread
        pool = _POOLS.setdefault(key, ThreadPoolExecutor(count, thread_name_prefix="lightning-topo-query"))
    return pool


def split_query(tree: cKDTree, points: np.ndarray, k: int, threads: int) -> tuple[np.ndarray, np.ndarray]:
    """``tree.query(points, k=k)``, its rows shared out over ``threads`` threads (this one and ``threads - 1``
    helpers), in equal runs of consecutive rows.  The same arrays as the one-thread query."""
    threads = max(1, min(int(threads), len(points)))
    if threads == 1:
        return tree.query(points, k=k)
    bounds = np.linspace(0, len(points), threads + 1).astype(int)
    pool = helper_threads(threads - 1)
    shares = [pool.submit(tree.query, points[a:b], k) for a, b in zip(bounds[1:-1], bounds[2:], strict=True)]
    first = tree.query(points[: bounds[1]], k=k)
    parts = [first] + [share.result() for share in shares]
    return np.concatenate([d for d, _ in parts]), np.concatenate([i for _, i in parts])
