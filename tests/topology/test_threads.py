"""The k-d tree query shared out over kept helper threads (lightning_topo.topology.threads)."""

from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np
import pytest
from scipy.spatial import cKDTree

from lightning_topo.topology import threads
from lightning_topo.topology.threads import helper_threads, split_query


@pytest.mark.parametrize("k", [1, 2, 15])
@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_split_query_returns_the_whole_querys_arrays(k, count):
    points = np.repeat(np.random.default_rng(1).normal(size=(250, 3)), 2, axis=0)  # duplicates: tied distances
    tree = cKDTree(points, balanced_tree=False)
    dist, idx = split_query(tree, points, k, count)
    whole_dist, whole_idx = tree.query(points, k=k)
    assert dist.shape == whole_dist.shape and idx.shape == whole_idx.shape
    np.testing.assert_array_equal(idx, whole_idx)
    np.testing.assert_array_equal(dist, whole_dist)


def test_more_threads_than_points_and_a_single_point():
    points = np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0]])
    tree = cKDTree(points)
    np.testing.assert_array_equal(split_query(tree, points, 2, 8)[1], [[0, 1], [1, 0], [2, 1]])
    np.testing.assert_array_equal(split_query(tree, points[:1], 1, 4)[1], [0])


def test_one_pool_per_process_and_size(monkeypatch):
    parent = helper_threads(2)
    assert helper_threads(2) is parent and helper_threads(3) is not parent
    monkeypatch.setattr(threads.os, "getpid", lambda: -1)  # as in a forked child: the parent's threads are gone
    child = helper_threads(2)
    assert child is not parent and helper_threads(2) is child
    threads._POOLS.pop((-1, 2))  # the pretend child's pool never started a thread


def test_idle_helper_threads_let_the_interpreter_exit():
    code = (
        "import numpy as np; from scipy.spatial import cKDTree; from lightning_topo.topology.threads import split_query;"
        "p = np.random.default_rng(0).normal(size=(2000, 3)); split_query(cKDTree(p), p, 5, 2); print('done')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "done", done.stderr


class _SpyPool:
    """A stand-in pool that records the rows of every share it is given and runs it at once."""

    def __init__(self, count: int) -> None:
        self.count, self.shares = count, []

    def submit(self, query, points, k):
        from concurrent.futures import Future

        self.shares.append(len(points))
        done = Future()
        done.set_result(query(points, k))
        return done


@pytest.mark.parametrize("n, count", [(1000, 2), (1000, 3), (7, 4), (10, 7)])
def test_rows_are_shared_in_equal_runs_over_count_threads(monkeypatch, n, count):
    pools: list[_SpyPool] = []
    monkeypatch.setattr(threads, "helper_threads", lambda size: pools.append(_SpyPool(size)) or pools[-1])
    points = np.random.default_rng(2).normal(size=(n, 2))
    tree = cKDTree(points)
    idx = split_query(tree, points, 3, count)[1]
    np.testing.assert_array_equal(idx, tree.query(points, k=3)[1])
    bounds = np.linspace(0, n, count + 1).astype(int)  # this thread takes the first run, a helper each other one
    assert [p.count for p in pools] == [count - 1]
    assert pools[0].shares == np.diff(bounds)[1:].tolist()


def test_one_thread_asked_for_runs_the_query_here(monkeypatch):
    monkeypatch.setattr(threads, "helper_threads", lambda size: pytest.fail("a helper pool for a one-thread query"))
    points = np.random.default_rng(3).normal(size=(600, 2))
    tree = cKDTree(points)
    np.testing.assert_array_equal(split_query(tree, points, 4, 1)[1], tree.query(points, k=4)[1])


def test_a_pool_never_holds_more_helper_threads_than_asked(monkeypatch):
    monkeypatch.setattr(threads, "_POOLS", {})
    before = set(threading.enumerate())
    release = threading.Event()
    pool = helper_threads(2)
    waiting = [pool.submit(release.wait, 30) for _ in range(6)]  # more work than threads, all at once
    try:
        started = [t for t in set(threading.enumerate()) - before if t.name.startswith("lightning-topo-query")]
        assert len(started) == 2, [t.name for t in started]  # named, so that a stack dump says whose they are
    finally:
        release.set()
        assert all(w.result(timeout=30) for w in waiting)
        pool.shutdown(wait=True)  # this test's own pool (the kept ones are untouched)
