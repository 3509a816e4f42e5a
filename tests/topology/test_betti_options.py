"""Exact values of the per-class helpers and calibrate_k (lightning_topo.topology.betti)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from lightning_topo.topology import (
    NeighbourLists,
    as_point_cloud,
    betti_from_neighbours,
    betti_numbers,
    betti_numbers_per_class,
    calibrate_k,
    numpy_neighbour_lists,
    subsample_per_class,
)

ANGLES = np.linspace(0, 2 * np.pi, 30, endpoint=False)
CIRCLE = np.c_[np.cos(ANGLES), np.sin(ANGLES)]  # k=2: (10, 0); k >= 3: (1, 1)
LABELS = np.array([0, 0, 1, 1, 1, 2])


def test_subsample_without_a_limit_gives_every_index():
    groups = subsample_per_class(LABELS, None)
    assert list(groups) == [0, 1, 2] and all(type(c) is int for c in groups)
    assert {c: v.tolist() for c, v in groups.items()} == {0: [0, 1], 1: [2, 3, 4], 2: [5]}


def test_subsample_draws_a_seeded_sorted_subset_only_above_the_limit():
    groups = subsample_per_class(LABELS, 2, seed=7)
    assert groups[0].tolist() == [0, 1] and groups[2].tolist() == [5]  # at or below the limit: untouched
    expected = np.sort(np.random.default_rng(7).choice(np.array([2, 3, 4]), size=2, replace=False))
    assert groups[1].tolist() == expected.tolist()
    default = subsample_per_class(LABELS, 2)
    seed0 = np.sort(np.random.default_rng(0).choice(np.array([2, 3, 4]), size=2, replace=False))
    assert default[1].tolist() == seed0.tolist()


def test_subsample_draws_the_same_rng_stream_across_classes():
    labels = np.repeat([0, 1], 5)
    rng = np.random.default_rng(3)
    first = np.sort(rng.choice(np.arange(5), size=2, replace=False))
    second = np.sort(rng.choice(np.arange(5, 10), size=2, replace=False))
    got = subsample_per_class(torch.tensor(labels).reshape(2, 5), 2, seed=3)
    assert got[0].tolist() == first.tolist() and got[1].tolist() == second.tolist()


def test_per_class_exact_values_and_class_choice():
    points = np.vstack([CIRCLE, CIRCLE + [5.0, 0.0], CIRCLE[::3] + [10.0, 0.0]])
    labels = np.repeat([0, 1, 2], [30, 30, 10])
    assert betti_numbers_per_class(points, labels, k=3) == {0: (1, 1), 1: (1, 1), 2: betti_numbers(CIRCLE[::3], k=3)}
    assert betti_numbers_per_class(points, labels, k=2, classes=[0]) == {0: (10, 0)}
    assert betti_numbers_per_class(points, labels, k=3, max_dim=0, classes=np.array([0])) == {0: (1,)}


def test_per_class_subsample_is_the_betti_numbers_of_that_subset():
    labels = np.zeros(30, dtype=int)
    idx = subsample_per_class(labels, 12, seed=5)[0]
    assert betti_numbers_per_class(CIRCLE, labels, k=2, max_points=12, seed=5) == {0: betti_numbers(CIRCLE[idx], k=2)}


def test_per_class_error_messages():
    with pytest.raises(ValueError, match=re.escape("classes [4, 5] have no points; present classes are [0, 1, 2]")):
        betti_numbers_per_class(np.zeros((6, 2)), LABELS, classes=[0, 4, 5])
    with pytest.raises(ValueError, match=re.escape("got 30 points but 6 labels; they must match one to one")):
        betti_numbers_per_class(CIRCLE, LABELS)


def test_calibrate_k_returns_the_smallest_match_as_int():
    k = calibrate_k(CIRCLE, (1, 1), k_range=range(2, 10))
    assert k == 3 and type(k) is int
    assert calibrate_k(CIRCLE, [1], k_range=np.arange(2, 10)) == 3  # max_dim defaults to len(expected) - 1
    assert calibrate_k(CIRCLE, (10, 0), k_range=range(2, 10)) == 2


def test_calibrate_k_messages():
    with pytest.raises(ValueError) as info:
        calibrate_k(CIRCLE, (5, 5), k_range=range(2, 4))
    assert str(info.value) == (
        "no k in the range reproduces the expected Betti numbers (5, 5) (k=2: (10, 0); k=3: (1, 1)); widen k_range, "
        "sample the data more densely or check the expected values"
    )
    with pytest.raises(ValueError, match=re.escape("(1, 1) (no k tried); widen k_range")):
        calibrate_k(CIRCLE, (1, 1), k_range=range(30, 40))
    with pytest.raises(ValueError, match=re.escape("(k=29: ")):  # k = n - 1 is tried, k = n is not
        calibrate_k(CIRCLE, (7, 7), k_range=range(29, 40))


LINE = np.array([[0.0], [1.0], [3.0], [6.0], [10.0], [1.0]])  # gaps 1, 2, 3, 4; row 5 repeats row 1
LINE_KNN3 = [[0, 1, 2], [1, 0, 2], [2, 1, 0], [3, 2, 4], [4, 3, 2]]
LINE_NEAREST = [[1.0, 3.0], [1.0, 2.0], [2.0, 3.0], [3.0, 4.0], [4.0, 7.0]]


def test_numpy_neighbour_lists_knn_exact():
    lists = numpy_neighbour_lists(LINE, k=3)
    assert (lists.n_points, lists.n_unique, lists.metric, lists.edges) == (6, 5, "knn", None)
    assert lists.indices.tolist() == LINE_KNN3
    assert lists.nearest.tolist() == LINE_NEAREST
    assert numpy_neighbour_lists(LINE, k=2).nearest.tolist() == LINE_NEAREST  # k < 3: a separate search


def test_numpy_neighbour_lists_wide_cloud_is_centred_and_exact():
    wide = np.hstack([LINE, np.zeros((6, 17))]) + 5.0
    lists = numpy_neighbour_lists(wide, k=3)
    assert lists.indices.tolist() == LINE_KNN3
    np.testing.assert_allclose(lists.nearest, LINE_NEAREST)


def test_numpy_neighbour_lists_wide_cloud_far_from_the_origin_keeps_its_lists():
    cloud = np.random.default_rng(9).normal(size=(60, 20))
    far = numpy_neighbour_lists(np.vstack([cloud, cloud[:2]]) + 1e8, k=5)  # duplicates too: the same route
    assert far.indices.tolist() == numpy_neighbour_lists(cloud, k=5).indices.tolist()


def test_numpy_neighbour_lists_default_k_and_scale_are_the_protocols():
    cloud = np.random.default_rng(10).normal(size=(30, 3))
    assert numpy_neighbour_lists(cloud).indices.tolist() == numpy_neighbour_lists(cloud, k=14).indices.tolist()
    line = np.arange(8.0)[:, None]
    default = numpy_neighbour_lists(line, metric="euclidean").edges.tolist()
    assert default == numpy_neighbour_lists(line, metric="euclidean", scale=2.5).edges.tolist()
    assert default != numpy_neighbour_lists(line, metric="euclidean", scale=3.5).edges.tolist()


def test_numpy_neighbour_lists_euclidean_exact():
    lists = numpy_neighbour_lists(LINE, metric="euclidean", scale=3.0)
    assert (lists.n_points, lists.n_unique, lists.metric, lists.indices) == (6, 5, "euclidean", None)
    assert lists.edges.tolist() == [[0, 0, 1, 2], [1, 2, 2, 3]]
    assert lists.nearest.tolist() == LINE_NEAREST
    assert numpy_neighbour_lists(np.array([[0.0], [1.0]]), metric="euclidean").nearest is None


def test_numpy_neighbour_lists_checks_k_only_for_knn():
    with pytest.raises(ValueError, match=re.escape("k=6 neighbours needs more points than that, got 6 points")):
        numpy_neighbour_lists(LINE, k=6)
    assert numpy_neighbour_lists(LINE, metric="euclidean", k=50).n_unique == 5


def test_betti_from_neighbours_scale_floors_to_hops():
    lists = numpy_neighbour_lists(LINE, k=2)  # the path 0-1-2-3-4
    assert betti_from_neighbours(lists, scale=1.5) == (1, 0)
    assert betti_from_neighbours(lists, scale=2.0, max_dim=2) == (1, 0, 0)
    assert betti_from_neighbours(numpy_neighbour_lists(LINE, metric="euclidean", scale=3.0)) == (2, 0)
    assert betti_from_neighbours(numpy_neighbour_lists(CIRCLE, k=3), collapse=False, n_jobs=1) == (1, 1)


def test_betti_from_neighbours_single_point_and_messages():
    one = NeighbourLists(4, 1, "knn", np.zeros((1, 1), dtype=np.int64), None)
    assert betti_from_neighbours(one, max_dim=2) == (1, 0, 0)
    two_apart = numpy_neighbour_lists(np.array([[0.0], [10.0]]), metric="euclidean", scale=1.0)
    assert betti_from_neighbours(two_apart, max_dim=1) == (2, 0)  # two points: not the one-point answer
    with pytest.raises(ValueError, match=re.escape("lists must be a NeighbourLists, got dict; make one with")):
        betti_from_neighbours({})
    bad = NeighbourLists(3, 3, "knn", None, None)
    with pytest.raises(ValueError, match=re.escape("knn lists need indices of shape (n_unique=3, k), got None")):
        betti_from_neighbours(bad)
    with pytest.raises(ValueError, match="knn lists need indices"):
        betti_from_neighbours(NeighbourLists(3, 3, "knn", np.zeros((2, 2), dtype=np.int64), None))
    with pytest.raises(ValueError, match="knn lists need indices"):
        betti_from_neighbours(NeighbourLists(3, 3, "knn", np.zeros(3, dtype=np.int64), None))
    with pytest.raises(ValueError, match=re.escape("euclidean lists need edges of shape (2, m), got None")):
        betti_from_neighbours(NeighbourLists(3, 3, "euclidean", None, None))
    with pytest.raises(ValueError, match="euclidean lists need edges"):
        betti_from_neighbours(NeighbourLists(3, 3, "euclidean", None, np.zeros((3, 1), dtype=np.int64)))
    with pytest.raises(ValueError, match="euclidean lists need edges"):
        betti_from_neighbours(NeighbourLists(3, 3, "euclidean", None, np.zeros(2, dtype=np.int64)))
    with pytest.raises(ValueError, match="max_dim must be a non-negative integer, got -1"):
        betti_from_neighbours(numpy_neighbour_lists(LINE, k=2), max_dim=-1)


def test_as_point_cloud_conversions_and_messages():
    out = as_point_cloud([[1, 2], [3, 4]])
    assert out.dtype == np.float64 and out.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert as_point_cloud(torch.ones(2, 3, requires_grad=True)).shape == (2, 3)
    with pytest.raises(ValueError, match=re.escape("got rank 1 with shape (3,)")):
        as_point_cloud(np.zeros(3))
    with pytest.raises(ValueError, match="points must be real numbers, got dtype complex128"):
        as_point_cloud(np.zeros((3, 2), dtype=complex))
    with pytest.raises(ValueError, match="points must be real numbers, got dtype <U1"):
        as_point_cloud(np.array([["a"], ["b"]]))
    with pytest.raises(ValueError, match="need at least 2 points to compute Betti numbers, got 1"):
        as_point_cloud(np.zeros((1, 2)))
    assert as_point_cloud(np.zeros((2, 2))).shape == (2, 2)
    bad = np.zeros((5, 2))
    bad[1, 0], bad[1, 1], bad[3, 1] = np.nan, np.inf, -np.inf
    with pytest.raises(ValueError, match=re.escape("points contain NaN or Inf values (2 of 5 points)")):
        as_point_cloud(bad)


def test_betti_numbers_defaults_and_options():
    assert betti_numbers(CIRCLE) == (1, 0)  # k=14, 2 hops: 30 points on a circle fill the loop
    assert betti_numbers(CIRCLE, k=5) == (1, 1)
    assert betti_numbers(CIRCLE, k=2) == (10, 0)
    assert betti_numbers(CIRCLE, k=2, scale=3.0) == betti_numbers(CIRCLE, k=2, scale=3.9)
    assert betti_numbers(CIRCLE, metric="euclidean", scale=0.25) == (1, 1)
    assert betti_numbers(CIRCLE, metric="euclidean", scale=0.1) == (30, 0)
    assert betti_numbers(CIRCLE, k=3, collapse=False, n_jobs=None, max_dim=2) == (1, 1, 0)
    with pytest.raises(ValueError, match="max_dim must be a non-negative integer"):
        betti_numbers(CIRCLE, max_dim=-1)


def test_per_class_passes_its_seed_and_defaults_to_zero(monkeypatch):
    from lightning_topo.topology import betti

    seen = []

    def spy(labels, max_points, seed=-1):
        seen.append(seed)
        return subsample_per_class(labels, max_points, seed)

    monkeypatch.setattr(betti, "subsample_per_class", spy)
    betti_numbers_per_class(CIRCLE, np.zeros(30, dtype=int), k=3, max_points=12, seed=5)
    betti_numbers_per_class(CIRCLE, np.zeros(30, dtype=int), k=3, max_points=12)
    assert seen == [5, 0]


def test_per_class_flattens_two_dimensional_labels():
    labels = np.zeros((3, 10), dtype=int)
    assert betti_numbers_per_class(CIRCLE, labels, k=3) == {0: (1, 1)}
    assert betti_numbers_per_class(CIRCLE, torch.zeros(30, 1, dtype=torch.long), k=3) == {0: (1, 1)}


@pytest.mark.parametrize("max_points", [0, -1, 2.5, True])
def test_subsample_refuses_a_limit_that_is_not_a_positive_count(max_points):
    message = f"max_points must be a positive integer or None (every point), got {max_points!r}"
    with pytest.raises(ValueError, match=re.escape(message)):
        subsample_per_class(LABELS, max_points)


def test_labels_must_be_whole_class_numbers():
    # int() would have put 0.2 and 0.7 into one class 0, the second overwriting the first's indices
    with pytest.raises(ValueError, match=re.escape("labels must be whole class numbers, got dtype float64")):
        subsample_per_class([0.2, 0.7, 1.0], None)
    with pytest.raises(ValueError, match="labels must be whole class numbers"):
        betti_numbers_per_class(CIRCLE, np.r_[np.zeros(29), np.nan], k=3)
    whole = subsample_per_class(np.array([1.0, 0.0, 1.0]), None)
    assert {c: v.tolist() for c, v in whole.items()} == {0: [1], 1: [0, 2]}
    assert list(subsample_per_class(np.array([True, False]), None)) == [0, 1]
