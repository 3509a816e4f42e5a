"""Dominated vertices dropped from a k-NN hop graph, and from any graph to a fixed point
(lightning_topo.topology.reduction): the same Betti numbers from a smaller complex, on known shapes and on random
clouds against the whole complex."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp

from lightning_topo.topology import (
    betti_from_neighbours,
    betti_numbers,
    flag,
    flag_complex_betti,
    numpy_neighbour_lists,
    reduction,
)
from lightning_topo.topology.graph import hop_edges, knn_from_indices, knn_indices
from lightning_topo.topology.reduction import (
    closed_knn_adjacency,
    collapse_dominated_vertices,
    dominated_vertices,
    reduced_hop_graph,
)


def _circle(n: int, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """``n`` evenly spaced points on the unit circle, moved by Gaussian noise of scale ``noise``."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([np.cos(t), np.sin(t)], 1) + np.random.default_rng(seed).normal(scale=noise, size=(n, 2))


def _edge_set(edges: np.ndarray) -> set[tuple[int, int]]:
    return set(zip(*edges.tolist()))


def test_closed_adjacency_is_symmetric_with_its_diagonal():
    closed = closed_knn_adjacency(np.array([[0, 1], [1, 2], [2, 1], [3, 2]])).toarray()
    assert closed.tolist() == [[1, 1, 0, 0], [1, 1, 1, 0], [0, 1, 1, 1], [0, 0, 1, 1]]


def test_closed_adjacency_adds_the_diagonal_when_a_list_does_not_open_with_its_point():
    closed = closed_knn_adjacency(np.array([[1], [0], [1]])).toarray()  # k=1 lists without the point itself
    assert np.diag(closed).tolist() == [1, 1, 1]
    assert closed.tolist() == [[1, 1, 0], [1, 1, 1], [0, 1, 1]]


@pytest.mark.parametrize("lists", [[[0, 1], [1, 2], [2, 1]], [[1], [0], [1]]], ids=["self-first", "no-self"])
def test_closed_adjacency_is_int32_on_both_routes(lists):
    # the documented dtype: 0/1 counts in 4 bytes, so the sparse squares stay integer and half the size of float64
    closed = closed_knn_adjacency(np.array(lists))
    assert closed.dtype == np.int32 and closed.format == "csr"


def test_a_stars_leaves_are_dominated_by_its_centre():
    star = closed_knn_adjacency(np.array([[0, 1], [1, 0], [2, 0], [3, 0], [4, 0]]))
    assert dominated_vertices(star).tolist() == [False, True, True, True, True]


def test_of_two_vertices_with_the_same_neighbourhood_only_the_higher_index_goes():
    pair = closed_knn_adjacency(np.array([[0, 1], [1, 0]]))  # N[0] = N[1] = {0, 1}
    assert dominated_vertices(pair).tolist() == [False, True]


def test_a_cycle_has_no_dominated_vertex_and_keeps_every_edge():
    indices = knn_indices(_circle(30), k=3)  # each point and its two neighbours on the circle
    closed = closed_knn_adjacency(indices)
    assert not dominated_vertices(closed).any()
    for hops in (1, 2, 3):
        n_kept, edges = reduced_hop_graph(indices, hops)
        whole = hop_edges(knn_from_indices(indices), hops)
        assert n_kept == 30 and _edge_set(edges) == _edge_set(whole)


def test_a_huge_hop_count_stops_once_the_pattern_is_final():
    indices = knn_indices(_circle(30), k=3)  # a 30-cycle: every pair within 15 hops
    n_huge, huge = reduced_hop_graph(indices, 10**9)  # 10**9 sparse products before: a hang
    n_spanning, spanning = reduced_hop_graph(indices, 15)
    assert n_huge == n_spanning and _edge_set(huge) == _edge_set(spanning)
    assert betti_numbers(_circle(30), k=3, scale=1e9) == (1, 0)  # a full simplex: one component, no loop


def test_a_cone_reduces_to_one_vertex():
    assert reduced_hop_graph(np.array([[0, 1], [1, 0], [2, 0], [3, 0]]), hops=2)[0] == 1


def test_no_hops_no_edges():
    n_kept, edges = reduced_hop_graph(np.array([[0, 1], [1, 0], [2, 1]]), hops=0)
    assert n_kept == 3 and edges.shape == (2, 0) and edges.dtype == np.int64


def test_a_sampled_circle_loses_vertices_and_keeps_its_loop():
    indices = numpy_neighbour_lists(_circle(400, noise=0.01), k=10).indices
    n_kept, edges = reduced_hop_graph(indices, hops=2)
    assert n_kept < 300  # a thick sampling: many neighbourhoods lie inside a neighbour's (240 of 400 stay)
    assert edges.dtype == np.int64 and (edges[0] < edges[1]).all() and edges.max() < n_kept
    assert flag_complex_betti(n_kept, edges, max_dim=1) == (1, 1)


@pytest.mark.parametrize("seed", range(12))
def test_the_reduced_graph_has_the_whole_hop_graphs_betti_numbers(seed):
    rng = np.random.default_rng(seed)
    n, d, k = int(rng.integers(20, 120)), int(rng.integers(1, 5)), int(rng.integers(2, 9))
    points = rng.normal(size=(n, d)) if seed % 3 else np.round(rng.normal(size=(n, d)), 1)  # ties and duplicates
    lists = numpy_neighbour_lists(points, k=min(k, n - 1))
    for hops in (1, 2, 3):
        for max_dim in (0, 1, 2):
            whole = flag_complex_betti(
                lists.n_unique, hop_edges(knn_from_indices(lists.indices), hops), max_dim, collapse=False
            )
            reduced = flag_complex_betti(*reduced_hop_graph(lists.indices, hops), max_dim)
            assert reduced == whole, (hops, max_dim)
            fast = betti_from_neighbours(lists, max_dim=max_dim, scale=hops + 0.5)
            assert fast == whole


# ---------------------------------------------------------------------------- vertex collapses of any graph
OCTAHEDRON = np.array([(i, j) for i, j in itertools.combinations(range(6), 2) if j - i != 3]).T  # a 2-sphere


def _fibonacci_sphere(n: int) -> np.ndarray:
    """``n`` nearly evenly spaced points on the unit sphere."""
    i = np.arange(n) + 0.5
    polar, azimuth = np.arccos(1 - 2 * i / n), np.pi * (1 + 5**0.5) * i
    return np.stack([np.cos(azimuth) * np.sin(polar), np.sin(azimuth) * np.sin(polar), np.cos(polar)], 1)


def _hop_graph(points: np.ndarray, k: int, hops: int = 2) -> tuple[int, np.ndarray]:
    lists = numpy_neighbour_lists(points, k=k)
    return lists.n_unique, hop_edges(knn_from_indices(lists.indices), hops)


def _clumped_sphere(clumps: int, per_clump: int, noise: float, seed: int = 0) -> np.ndarray:
    """Tight clumps of points around a sphere, as a trained layer's activations gather: many dominated vertices."""
    centres = np.repeat(_fibonacci_sphere(clumps), per_clump, axis=0)
    return centres + np.random.default_rng(seed).normal(scale=noise, size=centres.shape)


def _random_graph(seed: int) -> tuple[int, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 40))
    pairs = np.array([(i, j) for i, j in itertools.combinations(range(n), 2) if rng.random() < rng.uniform(0.05, 0.6)])
    return n, pairs.T.reshape(2, -1).astype(np.int64)


def test_a_clique_collapses_to_one_vertex():
    clique = np.array(list(itertools.combinations(range(7), 2))).T
    n, edges = collapse_dominated_vertices(7, clique)
    assert n == 1 and edges.shape == (2, 0) and edges.dtype == np.int64


def test_graphs_without_a_dominated_vertex_come_back_whole():
    for n, edges in ((6, OCTAHEDRON), (5, np.array([[0, 1, 2, 3, 4], [1, 2, 3, 4, 0]]))):  # a 2-sphere, a 5-cycle
        kept, left = collapse_dominated_vertices(n, edges)
        assert kept == n and _edge_set(left) == _edge_set(edges)


def test_edges_come_back_as_int64_whatever_came_in():
    cycle = np.array([[0, 1, 2, 3, 4], [1, 2, 3, 4, 0]], dtype=np.int32)  # nothing to collapse: returned at once
    kept, left = collapse_dominated_vertices(5, cycle)
    assert kept == 5 and left.dtype == np.int64 and left.shape == (2, 5)
    kept, left = collapse_dominated_vertices(3, [[0, 1, 0], [1, 2, 2]])  # a triangle as nested lists: one vertex
    assert kept == 1 and left.dtype == np.int64 and left.shape == (2, 0)


def test_a_path_and_a_tree_collapse_round_after_round_to_a_point():
    # each round removes only the current leaves' dominated ends: the fixed point needs several rounds
    path = np.array([[0, 1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6, 7]])
    assert collapse_dominated_vertices(8, path)[0] == 1
    assert collapse_dominated_vertices(8, path[:, :6])[0] == 2  # vertex 7 left alone: two components stay


def test_the_rounds_stop_once_one_removes_less_than_min_share():
    path = np.array([[0, 1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6, 7]])  # each round removes both ends
    assert collapse_dominated_vertices(8, path, min_share=0.25)[0] == 1  # 2 of 8 is a quarter: on to the end
    n, edges = collapse_dominated_vertices(8, path, min_share=0.26)  # 2 of 8 is too few: one round only
    assert n == 6 and _edge_set(edges) == {(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)}
    assert flag_complex_betti(n, edges, max_dim=1) == (1, 0)


@pytest.mark.parametrize("seed", range(16))
def test_the_graph_mask_is_dominated_vertices_of_its_closed_adjacency(seed, monkeypatch):
    n, edges = _random_graph(seed)
    closed = np.eye(n, dtype=np.int32)
    closed[edges[0], edges[1]] = closed[edges[1], edges[0]] = 1
    expected = dominated_vertices(sp.csr_matrix(closed))
    assert np.array_equal(reduction._graph_dominated_vertices(n, edges), expected)
    monkeypatch.delattr(np, "bitwise_count", raising=False)  # numpy < 2: the byte table counts the bits
    assert np.array_equal(reduction._graph_dominated_vertices(n, edges), expected)


def test_shared_counts_in_small_blocks_equal_the_whole():
    n, edges = _hop_graph(_clumped_sphere(30, 4, 0.02), k=8)
    adjacency = np.eye(n, dtype=bool)
    adjacency[edges[0], edges[1]] = adjacency[edges[1], edges[0]] = True
    bits = np.packbits(adjacency, axis=1)
    words = np.pad(bits, ((0, 0), (0, -bits.shape[1] % 8))).view(np.uint64)
    expected = (adjacency[edges[0]] & adjacency[edges[1]]).sum(axis=1)
    assert np.array_equal(reduction._shared_counts(words, edges[0], edges[1]), expected)
    assert np.array_equal(reduction._shared_counts(words, edges[0], edges[1], block_bytes=8), expected)


@pytest.mark.parametrize("seed", range(16))
def test_collapsed_graphs_keep_their_betti_numbers(seed):
    if seed % 2:
        n, edges = _random_graph(seed)
    else:
        n, edges = _hop_graph(_clumped_sphere(20 + 2 * seed, 2 + seed % 5, 0.01 * (1 + seed % 3), seed), 6 + seed % 7)
    kept, left = collapse_dominated_vertices(n, edges)
    assert kept <= n and (left.size == 0 or left.max() < kept)
    expected = flag_complex_betti(n, edges, max_dim=3, collapse=False)
    assert flag_complex_betti(kept, left, max_dim=3, collapse=False) == expected


def test_a_clumped_clouds_hop_graph_shrinks_to_a_fraction_with_its_betti_numbers():
    n, edges = _hop_graph(_clumped_sphere(30, 10, 0.02), k=14)
    kept, left = collapse_dominated_vertices(n, edges)
    assert kept < n // 3 and left.shape[1] < edges.shape[1] // 5  # 300 -> 80 vertices, 5,893 -> 567 edges
    whole = flag_complex_betti(n, edges, max_dim=2, collapse=False)
    assert flag_complex_betti(kept, left, max_dim=2, collapse=False) == whole


def test_graphs_above_the_vertex_limit_come_back_as_they_are():
    clique = np.array(list(itertools.combinations(range(7), 2))).T
    n, edges = collapse_dominated_vertices(7, clique, max_vertices=6)
    assert n == 7 and np.array_equal(edges, clique)
    assert collapse_dominated_vertices(7, clique, max_vertices=7)[0] == 1  # at the limit: collapsed


def test_the_route_above_beta_1_collapses_vertices_and_the_ripser_route_does_not(monkeypatch):
    calls = []

    def spy(n, edges):
        calls.append(n)
        return collapse_dominated_vertices(n, edges)

    monkeypatch.setattr(flag, "collapse_dominated_vertices", spy)
    n, edges = _hop_graph(_fibonacci_sphere(200), k=10)  # evenly spaced: a sphere at 2 hops
    assert flag_complex_betti(n, edges, max_dim=2) == (1, 0, 1) and calls == [n]
    assert flag_complex_betti(n, edges, max_dim=1) == (1, 0) and calls == [n]  # Ripser: no call
    assert flag_complex_betti(n, edges, max_dim=2, collapse=False) == (1, 0, 1) and calls == [n]
