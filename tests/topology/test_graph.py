"""Exact neighbour lists, edges and distances of the numpy graph route (lightning_topo.topology.graph)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.sparse as sp

from lightning_topo.topology.graph import (
    DIRECT_MAX_DIM,
    _direct_sq,
    _distance_blocks,
    first_occurrences,
    hop_edges,
    knn_from_indices,
    knn_graph,
    knn_indices,
    radius_edges,
)

LINE = np.array([[0.0], [1.0], [3.0], [6.0], [10.0]])  # gaps 1, 2, 3, 4: no ties


def _wide(points: np.ndarray) -> np.ndarray:
    """The same cloud padded with zero columns past DIRECT_MAX_DIM (the Gram-block route, same distances)."""
    return np.hstack([points, np.zeros((len(points), DIRECT_MAX_DIM + 1 - points.shape[1]))])


def test_direct_max_dim_is_sixteen():
    assert DIRECT_MAX_DIM == 16


def test_knn_on_a_line_exact_low_and_wide():
    expected = np.array([[0, 1, 2], [1, 0, 2], [2, 1, 0], [3, 2, 4], [4, 3, 2]])
    np.testing.assert_array_equal(knn_indices(LINE, 3), expected)
    np.testing.assert_array_equal(knn_indices(_wide(LINE), 3), expected)
    np.testing.assert_array_equal(knn_indices(_wide(LINE), 3, block_bytes=8), expected)


def test_knn_ties_go_to_the_lower_index_low_and_wide():
    pts = np.array([[0.0], [1.0], [-1.0], [2.0], [-2.0]])  # 1 and 2 tie around 0; so do 3 and 4
    expected = np.array([[0, 1, 2], [1, 0, 3], [2, 0, 4], [3, 1, 0], [4, 2, 0]])
    np.testing.assert_array_equal(knn_indices(pts, 3), expected)
    np.testing.assert_array_equal(knn_indices(_wide(pts), 3), expected)


def test_knn_square_ties_every_row():
    square = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    np.testing.assert_array_equal(knn_indices(square, 3), [[0, 1, 2], [1, 0, 3], [2, 0, 3], [3, 1, 2]])
    np.testing.assert_array_equal(knn_indices(square, 2), [[0, 1], [1, 0], [2, 0], [3, 1]])


def test_knn_k_capped_at_n_and_k_one_is_the_point_itself():
    assert knn_indices(LINE[:3], 10).tolist() == [[0, 1, 2], [1, 0, 2], [2, 1, 0]]
    assert knn_indices(LINE, 1).ravel().tolist() == [0, 1, 2, 3, 4]
    assert knn_indices(_wide(LINE), 1).ravel().tolist() == [0, 1, 2, 3, 4]


def test_knn_with_duplicate_points_keeps_self_first():
    pts = np.array([[0.0], [0.0], [5.0]])
    np.testing.assert_array_equal(knn_indices(pts, 2), [[0, 1], [1, 0], [2, 0]])
    np.testing.assert_array_equal(knn_indices(_wide(pts), 2), [[0, 1], [1, 0], [2, 0]])


def test_knn_tiny_coordinates_are_still_ordered():
    pts = LINE * 1e-160  # squares underflow to zero: the tree's order cannot be trusted
    assert knn_indices(pts, 2)[:, 0].tolist() == [0, 1, 2, 3, 4]


def test_knn_from_indices_symmetrises_and_drops_self():
    adj = knn_from_indices(np.array([[0, 1], [1, 0], [2, 1]]))
    assert adj.dtype == bool and adj.shape == (3, 3)
    assert adj.toarray().tolist() == [[False, True, False], [True, False, True], [False, True, False]]


def test_knn_graph_on_a_line():
    adj = knn_graph(LINE, 2).toarray().astype(int)
    assert adj.tolist() == [
        [0, 1, 0, 0, 0],
        [1, 0, 1, 0, 0],
        [0, 1, 0, 1, 0],
        [0, 0, 1, 0, 1],
        [0, 0, 0, 1, 0],
    ]


def _path(n: int) -> sp.csr_matrix:
    i = np.arange(n - 1)
    a = sp.csr_matrix((np.ones(n - 1), (i, i + 1)), shape=(n, n))
    return (a + a.T).tocsr()


def test_hop_edges_on_a_path_exact():
    assert hop_edges(_path(5), 0).shape == (2, 0)
    assert hop_edges(_path(5), 1).tolist() == [[0, 1, 2, 3], [1, 2, 3, 4]]
    assert sorted(zip(*hop_edges(_path(5), 2).tolist())) == [(0, 1), (0, 2), (1, 2), (1, 3), (2, 3), (2, 4), (3, 4)]
    three = hop_edges(_path(5), 3)
    assert three.dtype == np.int64
    assert sorted(zip(*three.tolist())) == [(i, j) for i in range(5) for j in range(i + 1, 5) if j - i <= 3]


def test_hop_edges_stop_growing_once_every_pair_is_reached():
    # a path of 5 is spanned within 4 hops; 10**9 hops used to mean 10**9 sparse products (a hang)
    two_paths = sp.block_diag([_path(5), _path(3)]).tocsr()
    pairs = sorted(zip(*hop_edges(two_paths, 10**9).tolist()))
    within = [(i, j) for i in range(5) for j in range(i + 1, 5)] + [(5, 6), (5, 7), (6, 7)]
    assert pairs == within  # the complete graph of each component, never an edge between them
    assert pairs == sorted(zip(*hop_edges(two_paths, 4).tolist()))


def test_hop_edges_ignore_self_loops():
    adj = _path(3) + sp.identity(3, format="csr")
    assert hop_edges(adj, 1).tolist() == [[0, 1], [1, 2]]


def test_radius_edges_exact_and_inclusive_low_and_wide():
    expected = [[0, 0, 1, 2], [1, 2, 2, 3]]  # distances 1, 3, 2, 3 are <= 3; 4 is not
    assert radius_edges(LINE, 3.0).tolist() == expected
    wide = radius_edges(_wide(LINE), 3.0)
    assert sorted(zip(*wide.tolist())) == sorted(zip(*expected))
    assert wide.dtype == np.int64
    assert radius_edges(LINE, 0.5).shape == (2, 0)
    assert radius_edges(_wide(LINE), 0.5).shape == (2, 0)
    blocked = radius_edges(_wide(LINE), 3.0, block_bytes=8)
    assert sorted(zip(*blocked.tolist())) == sorted(zip(*expected))


def test_direct_sq_and_distance_blocks_exact():
    a = np.array([[1.0, 2.0, 3.0]])
    b = np.array([[4.0, 6.0, 3.0]])
    assert _direct_sq(a, b).tolist() == [25.0]
    blocks = list(_distance_blocks(LINE, block_bytes=8 * 5 * 2))
    assert [(s, e) for s, e, _ in blocks] == [(0, 2), (2, 4), (4, 5)]
    full = np.vstack([d for _, _, d in blocks])
    np.testing.assert_allclose(full, (LINE - LINE.T) ** 2, atol=1e-9)
    raw = np.vstack([d for _, _, d in _distance_blocks(LINE, centre=False)])
    np.testing.assert_allclose(raw, (LINE - LINE.T) ** 2, atol=1e-9)


def test_first_occurrences_narrow_and_wide():
    narrow = np.array([[1.0, 2.0], [0.0, 0.0], [1.0, 2.0], [-0.0, 0.0], [3.0, 3.0]])
    assert first_occurrences(narrow).tolist() == [0, 1, 4]
    wide = _wide(narrow)
    out = first_occurrences(wide)
    assert out.tolist() == [0, 1, 4] and out.dtype == np.int64
    assert first_occurrences(np.empty((0, 2))).tolist() == []


def test_distinct_knn_indices_equal_knn_indices_on_distinct_rows():
    from lightning_topo.topology.graph import distinct_knn_indices

    rng = np.random.default_rng(3)
    for d in (1, 2, 5, 16):
        points = rng.normal(size=(200, d))
        np.testing.assert_array_equal(distinct_knn_indices(points, 7), knn_indices(points, 7))
    tied = np.array([[0.0], [1.0], [-1.0], [2.0], [-2.0]])  # distinct rows, tied distances: the same exact rule
    np.testing.assert_array_equal(distinct_knn_indices(tied, 3), knn_indices(tied, 3))


def test_distinct_knn_indices_decline_duplicates_wide_clouds_and_single_neighbours():
    from lightning_topo.topology.graph import distinct_knn_indices

    assert distinct_knn_indices(np.array([[1.0, 2.0], [0.0, 0.0], [1.0, 2.0]]), 2) is None
    assert distinct_knn_indices(np.array([[0.0], [-0.0], [1.0]]), 2) is None  # -0.0 == 0.0
    assert distinct_knn_indices(_wide(LINE), 3) is None  # above 16 dimensions: the Gram route decides
    assert distinct_knn_indices(LINE, 1) is None  # one neighbour (the point itself) proves nothing
    assert distinct_knn_indices(LINE, 9).shape == (5, 5)  # k capped at the number of points


def test_tree_queries_give_each_thread_a_share_of_at_least_256_points():
    from lightning_topo.topology.graph import PARALLEL_QUERY_MIN_POINTS, QUERY_SHARE_MIN_POINTS, _query_workers

    assert PARALLEL_QUERY_MIN_POINTS == 2 * QUERY_SHARE_MIN_POINTS
    assert _query_workers(PARALLEL_QUERY_MIN_POINTS - 1, 4) == 1  # handing shares over costs more than it saves
    assert _query_workers(PARALLEL_QUERY_MIN_POINTS, 4) == 2  # each share at least QUERY_SHARE_MIN_POINTS
    assert _query_workers(4 * QUERY_SHARE_MIN_POINTS - 1, 64) == 3  # a many-core machine: no tiny shares
    assert _query_workers(10_000, 4) == 4 and _query_workers(10_000, 1) == 1


def test_threaded_tree_queries_give_the_same_lists_ties_included():
    from lightning_topo.topology.graph import PARALLEL_QUERY_MIN_POINTS, distinct_knn_indices

    lattice = np.stack(np.meshgrid(np.arange(24.0), np.arange(24.0)), -1).reshape(-1, 2)  # every row full of ties
    rng = np.random.default_rng(5)
    for points in (lattice, rng.normal(size=(1500, 15)), np.repeat(rng.normal(size=(400, 3)), 2, axis=0)):
        assert len(points) >= PARALLEL_QUERY_MIN_POINTS
        one = knn_indices(points, 14)
        for workers in (2, 3):
            np.testing.assert_array_equal(knn_indices(points, 14, workers=workers), one)
        distinct = distinct_knn_indices(points, 14, workers=2)
        assert distinct is None if len(first_occurrences(points)) < len(points) else (distinct == one).all()


def test_workers_reach_the_query_on_every_narrow_path(monkeypatch):
    from lightning_topo.topology import betti, graph

    asked = []
    real = graph._query_workers
    monkeypatch.setattr(graph, "_query_workers", lambda n, workers: asked.append(workers) or real(n, workers))
    points = np.random.default_rng(6).normal(size=(600, 3))
    knn_indices(points, 5, workers=2)
    assert asked == [2]
    asked.clear()
    betti.numpy_neighbour_lists(np.vstack([points, points[:3]]), k=5, workers=2)  # duplicates: a second query
    assert asked == [2, 2]


def test_a_wide_clouds_lists_do_not_move_with_it():
    # distances are taken about the cloud's mean: far from the origin, |x|^2 + |y|^2 - 2 x.y would lose them
    cloud = np.random.default_rng(7).normal(size=(60, 20))
    np.testing.assert_array_equal(knn_indices(cloud + 1e8, 5), knn_indices(cloud, 5))


def test_float32_points_are_ranked_in_float64():
    # two tight clusters far apart in 20 dims: in float32 the expansion's rounding is as large as the distances
    rng = np.random.default_rng(8)
    centres = np.zeros((2, 20))
    centres[:, 0] = [10.0, -10.0]
    points = (np.repeat(centres, 30, axis=0) + rng.normal(scale=1e-3, size=(60, 20))).astype(np.float32)
    np.testing.assert_array_equal(knn_indices(points, 6), knn_indices(points.astype(np.float64), 6))


def test_float32_points_of_a_narrow_cloud_are_ranked_in_float64_too():
    from lightning_topo.topology.graph import distinct_knn_indices

    # |p1|^2 is 1 + 4.1e-11 exactly (float32 coordinates square exactly in float64) but 1 in float32 arithmetic,
    # a tie that would put p1 before p2 = (1, 0) by index; in float64 p2 is nearer to the origin
    points = np.array([[0, 0], [0.7988303, 0.6015565], [1, 0], [5, 5], [-5, 5], [5, -5]], dtype=np.float32)
    a, b = points[1, 0], points[1, 1]
    assert float(a) ** 2 + float(b) ** 2 > 1 and a * a + b * b == np.float32(1)
    assert knn_indices(points, 3)[0].tolist() == [0, 2, 1]
    assert distinct_knn_indices(points, 3)[0].tolist() == [0, 2, 1]


@pytest.mark.parametrize("k", [0, -3, 2.0, True])
def test_knn_refuses_a_k_that_is_not_a_positive_count(k):
    with pytest.raises(
        ValueError, match=re.escape(f"k must be a positive integer (it counts the point itself), got {k!r}")
    ):
        knn_indices(np.eye(3), k)


@pytest.mark.parametrize("radius", [0, -1.0, float("nan"), float("inf"), "1", True])
def test_radius_edges_refuse_a_radius_that_is_not_positive_and_finite(radius):
    # -1.0 used to be squared into a radius of 1.0: every pair of this cloud, silently
    with pytest.raises(ValueError, match=re.escape(f"radius must be a positive finite number, got {radius!r}")):
        radius_edges(np.eye(3), radius)


@pytest.mark.parametrize(
    "builder", [lambda p: knn_indices(p, 2), lambda p: radius_edges(p, 1.0), lambda p: knn_graph(p, 2)]
)
def test_a_one_dimensional_array_is_not_a_cloud(builder):
    with pytest.raises(
        ValueError, match=re.escape("points must be a 2-D array of shape (n_points, n_features), got rank 1")
    ):
        builder(np.arange(5.0))
