"""Exact messages and boundaries of the shared validation (lightning_topo.topology.checks)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from lightning_topo.topology.checks import (
    METRICS,
    check_graph,
    check_jobs,
    check_k,
    check_max_dim,
    check_options,
    check_workers,
    dtype_error,
    nonfinite_error,
    rank_error,
    too_few_error,
)


def test_metrics_are_knn_and_euclidean():
    assert METRICS == ("knn", "euclidean")


def test_unknown_metric_message():
    with pytest.raises(ValueError, match=re.escape("unknown metric 'cosine'; choose one of ('knn', 'euclidean')")):
        check_options("cosine", k=5, scale=1.0)


@pytest.mark.parametrize("max_dim", [-1, 1.5, "1"])
def test_bad_max_dim_message(max_dim):
    with pytest.raises(ValueError, match=re.escape(f"max_dim must be a non-negative integer, got {max_dim!r}")):
        check_options("knn", k=5, scale=1.0, max_dim=max_dim)


@pytest.mark.parametrize("max_dim", [None, 0, np.int64(2)])
def test_good_max_dim_passes(max_dim):
    assert check_options("knn", k=5, scale=1.0, max_dim=max_dim) is None


@pytest.mark.parametrize("scale", [0, -1.0, float("inf"), float("nan"), "2"])
def test_bad_scale_message(scale):
    with pytest.raises(ValueError, match=re.escape(f"scale must be a positive finite number, got {scale!r}")):
        check_options("euclidean", k=5, scale=scale)


@pytest.mark.parametrize("scale", [1, 1e-9, np.float32(2.5)])
def test_good_scale_passes(scale):
    check_options("euclidean", k=5, scale=scale)


@pytest.mark.parametrize("k", [1, 0, 2.0, "3"])
def test_bad_k_message(k):
    with pytest.raises(
        ValueError, match=re.escape(f"k must be an integer >= 2 (it counts the point itself), got {k!r}")
    ):
        check_options("knn", k=k, scale=1.0)


def test_k_is_not_checked_for_euclidean_and_two_is_enough():
    check_options("euclidean", k=1, scale=1.0)
    check_options("knn", k=2, scale=1.0)
    check_options("knn", k=np.int32(2), scale=1.0)


def test_check_k_boundary_and_message():
    check_k(9, 10)
    with pytest.raises(ValueError) as info:
        check_k(10, 10)
    assert str(info.value) == (
        "k=10 neighbours needs more points than that, got 10 points; lower k below 10 or pass more points"
    )


def test_error_builders_exact_text():
    assert str(rank_error((2, 3, 4))) == (
        "points must be a 2-D array of shape (n_points, n_features), got rank 3 with shape (2, 3, 4); "
        "flatten each sample first, e.g. points.reshape(len(points), -1)"
    )
    assert str(dtype_error(np.dtype(complex))) == "points must be real numbers, got dtype complex128"
    assert str(too_few_error(1)) == "need at least 2 points to compute Betti numbers, got 1"
    assert str(nonfinite_error(3, 10)) == (
        "points contain NaN or Inf values (3 of 10 points); check the layer that produced them (exploding "
        "activations, a division by zero) or drop those rows before calling"
    )


@pytest.mark.parametrize("workers", [0, -1, True, 1.5, "2", None])
def test_bad_workers_message(workers):
    with pytest.raises(
        ValueError,
        match=re.escape(
            f"workers must be a positive integer (threads for the k-d tree query), got {workers!r}; 1 keeps"
        ),
    ):
        check_workers(workers)


@pytest.mark.parametrize("workers", [1, 2, np.int64(8)])
def test_good_workers_pass(workers):
    check_workers(workers)


def test_numpy_lists_check_workers_before_any_work():
    from lightning_topo.topology.betti import numpy_neighbour_lists

    with pytest.raises(ValueError, match="workers must be a positive integer"):
        numpy_neighbour_lists(np.zeros((3, 2)), k=2, workers=0)


@pytest.mark.parametrize("n_jobs", [None, 1, 2, -1, np.int64(3)])
def test_good_jobs_pass(n_jobs):
    assert check_jobs(n_jobs) is None


@pytest.mark.parametrize("n_jobs", [0, -2, 1.0, True, "2"])
def test_bad_jobs_message(n_jobs):
    message = (
        f"n_jobs must be None or 1 (serial), a larger integer (threads) or -1 (one thread per CPU core), got {n_jobs!r}"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        check_jobs(n_jobs)


@pytest.mark.parametrize("max_dim", [0, 3, np.int32(1)])
def test_check_max_dim_passes(max_dim):
    assert check_max_dim(max_dim) is None


def test_check_max_dim_refuses_a_bool():
    with pytest.raises(ValueError, match=re.escape("max_dim must be a non-negative integer, got True")):
        check_max_dim(True)


def test_check_graph_returns_int64_columns():
    out = check_graph(3, np.array([[0, 1], [1, 2]], dtype=np.uint8))
    assert out.dtype == np.int64 and out.tolist() == [[0, 1], [1, 2]]
    assert check_graph(0, []).shape == (2, 0) and check_graph(2, np.empty((0, 2))).shape == (2, 0)


@pytest.mark.parametrize(
    ("n_vertices", "edges", "vertex"), [(3, [[0], [3]], 3), (3, [[-2], [1]], -2), (0, [[0], [0]], 0)]
)
def test_check_graph_names_the_vertex_out_of_range(n_vertices, edges, vertex):
    message = (
        f"edges name vertex {vertex}, but the vertices are 0..{n_vertices - 1} (n_vertices={n_vertices}); "
        "renumber the edges from 0 or raise n_vertices"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        check_graph(n_vertices, edges)
