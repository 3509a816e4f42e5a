"""Clouds above 16 dimensions on every route: exact ties of integer data, clouds far from the origin, float32.

The references are exact: squared distances of integer clouds in int64 arithmetic, ranked by (self first, distance,
lower index), and edges at a distance of at most the radius; gudhi builds the Betti numbers' own reference.
"""

from __future__ import annotations

import gudhi
import numpy as np
import pytest
import torch

from lightning_topo.topology import betti_from_neighbours, betti_numbers, numpy_neighbour_lists
from lightning_topo.topology.filter_lists import filter_neighbour_lists
from lightning_topo.topology.filters import filter_betti_scores
from lightning_topo.topology.graph import knn_indices, radius_edges
from lightning_topo.topology.neighbours import batched_neighbour_lists, neighbour_lists


def _binary_cloud(n: int, dims: int, seed: int) -> np.ndarray:
    """``n`` distinct 0/1 vectors: every squared distance is a whole number, so ties abound."""
    rng = np.random.default_rng(seed)
    rows = np.unique(rng.integers(0, 2, size=(4 * n, dims)), axis=0)
    return rows[rng.permutation(len(rows))[:n]].astype(np.float64)


def _exact_squares(cloud: np.ndarray) -> np.ndarray:
    whole = cloud.astype(np.int64)
    return ((whole[:, None, :] - whole[None, :, :]) ** 2).sum(axis=2)


def _exact_knn(cloud: np.ndarray, k: int) -> list[list[int]]:
    squares = _exact_squares(cloud)
    n = len(cloud)
    return [sorted(range(n), key=lambda j: (j != i, squares[i, j], j))[:k] for i in range(n)]


def _wide_routes(cloud: np.ndarray, k: int) -> dict[str, list[list[int]]]:
    x = torch.from_numpy(cloud)
    return {
        "numpy": numpy_neighbour_lists(cloud, k=k).indices.tolist(),
        "knn_indices in small blocks": knn_indices(cloud, k, block_bytes=4096).tolist(),
        "torch, one Gram product": neighbour_lists(x, k=k).indices.tolist(),
        "torch, small blocks": neighbour_lists(x, k=k, block_bytes=4096).indices.tolist(),
        "torch, batched": batched_neighbour_lists(x[None], k=k)[0].indices.tolist(),
    }


@pytest.mark.parametrize("dims", [17, 20, 64])
def test_exact_ties_of_binary_vectors_go_to_the_lower_index_on_every_route(dims):
    cloud = _binary_cloud(100, dims, seed=dims)
    expected = _exact_knn(cloud, 5)
    for route, lists in _wide_routes(cloud, 5).items():
        wrong = sum(a != b for a, b in zip(lists, expected))
        assert wrong == 0, f"{route}: {wrong} of 100 rows out of the exact order"


def test_the_betti_numbers_of_tied_binary_vectors_are_the_same_on_every_route():
    cloud = _binary_cloud(100, 20, seed=0)
    squares = _exact_squares(cloud)
    graph = np.zeros_like(squares, dtype=bool)
    for i, row in enumerate(_exact_knn(cloud, 5)):
        graph[i, row[1:]] = True
    graph |= graph.T
    hops = np.where(graph, 1.0, np.inf)  # pairs at most 2 hops apart: the protocol's scale 2.5
    np.fill_diagonal(hops, 0.0)
    for middle in range(len(cloud)):
        hops = np.minimum(hops, hops[:, middle, None] + hops[None, middle, :])
    tree = gudhi.SimplexTree()
    for i in range(len(cloud)):
        tree.insert([i])
    for i, j in zip(*np.nonzero(np.triu(hops <= 2, 1))):
        tree.insert([int(i), int(j)])
    tree.expansion(3)
    tree.compute_persistence(homology_coeff_field=2, persistence_dim_max=True)
    expected = tuple(tree.betti_numbers()[:3])
    x = torch.from_numpy(cloud)
    assert betti_numbers(cloud, k=5, max_dim=2) == expected
    assert betti_from_neighbours(neighbour_lists(x, k=5), max_dim=2) == expected
    assert betti_from_neighbours(neighbour_lists(x, k=5, block_bytes=4096), max_dim=2) == expected


def test_a_wide_radius_keeps_every_pair_at_exactly_the_radius():
    cloud = _binary_cloud(80, 17, seed=1)
    squares = _exact_squares(cloud)
    expected = [[int(i), int(j)] for i, j in zip(*np.nonzero(np.triu(squares <= 4, 1)))]
    x = torch.from_numpy(cloud)
    routes = {
        "radius_edges": radius_edges(cloud, 2.0),
        "numpy": numpy_neighbour_lists(cloud, metric="euclidean", scale=2.0).edges,
        "torch": neighbour_lists(x, metric="euclidean", scale=2.0).edges,
        "torch, small blocks": neighbour_lists(x, metric="euclidean", scale=2.0, block_bytes=5000).edges,
    }
    for route, edges in routes.items():
        assert sorted(map(list, edges.T.tolist())) == expected, route


def _circle_in(dims: int, n: int = 200, offset: float = 0.0, even: bool = True) -> np.ndarray:
    """``n`` points on a unit circle in a random plane of ``dims`` dimensions, moved by ``offset``: evenly spaced,
    or drawn at random (near neighbours at many distances: the ones rounding reorders)."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False) if even else np.random.default_rng(0).uniform(0, 2 * np.pi, n)
    rotation, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(dims, dims)))
    return np.stack([np.cos(t), np.sin(t)] + [np.zeros(n)] * (dims - 2), axis=1) @ rotation.T + offset


@pytest.mark.parametrize("offset", [3.0, 30.0])
def test_float32_distances_of_a_cloud_away_from_the_origin_keep_its_betti_numbers(offset):
    # ReLU activations are all positive: a cloud a few units from the origin is the usual case
    cloud = torch.from_numpy(_circle_in(64, n=300, offset=offset, even=False))
    expected = betti_from_neighbours(neighbour_lists(cloud, k=5))
    assert expected == betti_numbers(cloud.numpy() - offset, k=5)
    assert betti_from_neighbours(neighbour_lists(cloud, k=5, dtype=torch.float32)) == expected
    (batched,) = batched_neighbour_lists(cloud[None], k=5, dtype=torch.float32)
    assert betti_from_neighbours(batched) == expected


def test_a_float64_cloud_far_from_the_origin_has_the_same_lists_on_every_route():
    cloud = _circle_in(20, offset=1e8)
    x = torch.from_numpy(cloud)
    expected = numpy_neighbour_lists(cloud, k=6).indices.tolist()
    assert neighbour_lists(x, k=6).indices.tolist() == expected
    assert batched_neighbour_lists(x[None], k=6)[0].indices.tolist() == expected
    assert betti_numbers(cloud, k=6) == (1, 1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_filter_scores_of_integer_maps_are_the_same_on_both_routes_and_exact(seed):
    maps = np.random.default_rng(seed).integers(0, 3, size=(80, 4, 5, 5))
    for c in range(4):  # the numpy route's lists are the exact ones, so its Betti numbers are the reference
        cloud = maps[:, c].reshape(80, -1).astype(np.float64)
        unique = cloud[np.sort(np.unique(cloud, axis=0, return_index=True)[1])]
        assert numpy_neighbour_lists(cloud, k=4).indices.tolist() == _exact_knn(unique, 4)
    exact = [betti_numbers(maps[:, c].reshape(80, -1), k=4)[1] for c in range(4)]
    numpy_scores = filter_betti_scores(maps, k=4, route="numpy")
    torch_scores = filter_betti_scores(torch.from_numpy(maps), k=4, route="torch")
    assert list(numpy_scores) == list(torch_scores) == exact


def test_float32_distances_of_a_cloud_whose_first_point_lies_far_from_the_rest_keep_its_betti_numbers():
    """float32 moves the cloud to the point nearest its mean, not the first: moved to an outlier 100 away, the
    norms' rounding lost the distances (292 of 300 lists wrong, (2, 0) for (5, 0))."""
    cloud = _circle_in(64, n=300, even=False)
    cloud[0] += 100 / np.sqrt(64)
    x = torch.from_numpy(cloud)
    expected = neighbour_lists(x, k=5)
    assert betti_from_neighbours(expected) == betti_numbers(cloud, k=5)
    fast = neighbour_lists(x, k=5, dtype=torch.float32)
    assert (fast.indices != expected.indices).any(axis=1).sum() <= 3
    assert betti_from_neighbours(fast) == betti_from_neighbours(expected)
    (batched,) = batched_neighbour_lists(x[None], k=5, dtype=torch.float32)
    assert betti_from_neighbours(batched) == betti_from_neighbours(expected)
    (as_maps,) = filter_neighbour_lists(x.reshape(300, 1, 8, 8), k=5, dtype=torch.float32)
    assert betti_from_neighbours(as_maps) == betti_from_neighbours(expected)
