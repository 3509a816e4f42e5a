"""Dominated vertices dropped from a k-NN hop graph (lightning_topo.topology.reduction): the same Betti numbers from a
smaller complex, on known shapes and on random clouds against the whole complex."""

from __future__ import annotations

import numpy as np
import pytest

from lightning_topo.topology import betti_from_neighbours, flag_complex_betti, numpy_neighbour_lists
from lightning_topo.topology.graph import hop_edges, knn_from_indices, knn_indices
from lightning_topo.topology.reduction import closed_knn_adjacency, dominated_vertices, reduced_hop_graph


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
