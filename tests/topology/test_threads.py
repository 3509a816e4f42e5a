"""The k-d tree query shared out over kept helper threads (lightning_topo.topology.threads)."""

from __future__ import annotations

import subprocess
import sys

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
