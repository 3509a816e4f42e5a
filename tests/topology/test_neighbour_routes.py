"""Exact lists of the torch neighbour routes, per cloud and batched (lightning_topo.topology.neighbours)."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

from lightning_topo.topology import numpy_neighbour_lists
from lightning_topo.topology.neighbours import batched_neighbour_lists, duplicate_tolerance, neighbour_lists

LINE = torch.tensor([[0.0], [1.0], [3.0], [6.0], [10.0], [1.0]])  # row 5 repeats row 1
KNN3 = [[0, 1, 2], [1, 0, 2], [2, 1, 0], [3, 2, 4], [4, 3, 2]]
NEAREST = [[1.0, 3.0], [1.0, 2.0], [2.0, 3.0], [3.0, 4.0], [4.0, 7.0]]
EDGES3 = [[0, 0, 1, 2], [1, 2, 2, 3]]


def _wide(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x, torch.zeros(*x.shape[:-1], 17, dtype=x.dtype)], dim=-1) + 5.0


def _star() -> torch.Tensor:
    """The origin, 8 points on the unit circle (8 ties at the origin's k-th distance) and 2 far points."""
    a = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    ring = torch.stack([a.cos(), a.sin()], dim=1)
    return torch.cat([torch.zeros(1, 2, dtype=torch.float64), ring, torch.tensor([[9.0, 9.0], [-9.0, 9.0]])])


@pytest.mark.parametrize("wide", [False, True])
@pytest.mark.parametrize("block_bytes", [2**28, 64, 1])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_torch_route_exact(wide, block_bytes, dtype):
    x = _wide(LINE) if wide else LINE
    knn = neighbour_lists(x, k=3, kd_tree=False, block_bytes=block_bytes, dtype=dtype)
    assert (knn.n_points, knn.n_unique, knn.metric, knn.edges) == (6, 5, "knn", None)
    assert knn.indices.tolist() == KNN3 and knn.indices.dtype == np.int64
    np.testing.assert_allclose(knn.nearest, NEAREST, rtol=1e-6)
    ball = neighbour_lists(x, metric="euclidean", scale=3.0, kd_tree=False, block_bytes=block_bytes, dtype=dtype)
    assert (ball.n_points, ball.n_unique, ball.metric, ball.indices) == (6, 5, "euclidean", None)
    assert ball.edges.tolist() == EDGES3
    np.testing.assert_allclose(ball.nearest, NEAREST, rtol=1e-6)


def test_kd_tree_default_and_ties_on_every_route():
    star = _star()
    expected = numpy_neighbour_lists(star.numpy(), k=3)
    assert expected.indices[0].tolist() == [0, 1, 2]  # 8 ties: the lower indices
    for kd in (None, True, False):
        got = neighbour_lists(star, k=3, kd_tree=kd)
        assert got.indices.tolist() == expected.indices.tolist()
        np.testing.assert_allclose(got.nearest, expected.nearest)
    (lists,) = batched_neighbour_lists(star[None], k=3, kd_tree=False)
    assert lists.indices.tolist() == expected.indices.tolist()
    np.testing.assert_allclose(lists.nearest, expected.nearest, atol=1e-12)
    # above 16-D the ring's inexact coordinates (cos 45 deg) round its ties apart: the same way on every route
    wide = _wide(star)
    (batched,) = batched_neighbour_lists(wide[None], k=3)
    for route in (neighbour_lists(wide, k=3), neighbour_lists(wide, k=3, block_bytes=64)):
        assert route.indices.tolist() == batched.indices.tolist()
    assert numpy_neighbour_lists(wide.numpy(), k=3).indices.tolist() == batched.indices.tolist()


@pytest.mark.parametrize("wide", [False, True])
def test_batched_route_exact(wide):
    stack = torch.stack(
        [
            LINE[:5, :],
            torch.tensor([[0.0], [0.0], [5.0], [5.0], [9.0]]),  # duplicates: handed to the per-cloud route
            torch.tensor([[0.0], [1.0], [-1.0], [2.0], [-2.0]]),  # ties
        ]
    ).double()
    stack = _wide(stack) if wide else stack
    out = batched_neighbour_lists(stack, k=3, kd_tree=False)
    assert [(x.n_points, x.n_unique, x.metric, x.indices.tolist()) for x in out] == [
        (5, 5, "knn", KNN3),
        (5, 3, "knn", [[0, 1, 2], [1, 2, 0], [2, 1, 0]]),
        (5, 5, "knn", [[0, 1, 2], [1, 0, 3], [2, 0, 4], [3, 1, 0], [4, 2, 0]]),
    ]
    np.testing.assert_allclose(out[0].nearest, NEAREST, atol=1e-12)
    np.testing.assert_allclose(out[1].nearest, [[5.0, 9.0], [4.0, 5.0], [4.0, 9.0]], atol=1e-12)
    np.testing.assert_allclose(out[2].nearest, [[1.0, 1.0]] * 3 + [[1.0, 2.0]] * 2, atol=1e-12)
    for route in ({"metric": "euclidean", "scale": 3.0}, {"k": 2}, {"kd_tree": None}, {"dtype": torch.float32}):
        options = {"k": 3, "kd_tree": False} | route
        for got, stack_c in zip(batched_neighbour_lists(stack, **options), stack):
            want = neighbour_lists(stack_c, **options)
            assert (got.n_unique, got.metric) == (want.n_unique, want.metric)
            for a, b in ((got.indices, want.indices), (got.edges, want.edges)):
                assert (a is None and b is None) or a.tolist() == b.tolist()


def test_batched_small_blocks_and_nan_go_per_cloud():
    stack = torch.stack([LINE[:5], LINE[:5] * 2]).double()
    out = batched_neighbour_lists(stack, k=3, kd_tree=False, block_bytes=100)
    assert [x.indices.tolist() for x in out] == [KNN3, KNN3]
    with pytest.raises(ValueError, match=re.escape("points contain NaN or Inf values (1 of 5 points)")):
        batched_neighbour_lists(torch.tensor([[[0.0], [1.0], [float("nan")], [3.0], [4.0]]]), k=3, kd_tree=False)
    with pytest.raises(ValueError, match=re.escape("expected a (clouds, points, dims) stack, got shape (5, 1)")):
        batched_neighbour_lists(LINE[:5], k=3)
    with pytest.raises(ValueError, match=re.escape("expected a (clouds, points, dims) stack, got shape (0, 5, 1)")):
        batched_neighbour_lists(torch.zeros(0, 5, 1), k=3)
    with pytest.raises(ValueError, match="k=5 neighbours needs more points than that, got 5 points"):
        batched_neighbour_lists(stack, k=5, kd_tree=False)


def test_messages():
    with pytest.raises(ValueError, match=re.escape("dtype must be torch.float32 or torch.float64, got torch.float16")):
        neighbour_lists(LINE, k=3, dtype=torch.float16)
    for bad in (0, 2.0):
        with pytest.raises(ValueError, match=re.escape(f"block_bytes must be a positive integer, got {bad!r}; the")):
            neighbour_lists(LINE, k=3, block_bytes=bad)
    with pytest.raises(ValueError, match="got rank 1 with shape"):
        neighbour_lists(torch.zeros(4), k=3)
    with pytest.raises(ValueError, match="points must be real numbers, got dtype torch.bool"):
        neighbour_lists(torch.zeros(4, 2, dtype=torch.bool), k=3)
    with pytest.raises(ValueError, match="need at least 2 points to compute Betti numbers, got 1"):
        neighbour_lists(torch.zeros(1, 2), metric="euclidean")
    with pytest.raises(ValueError, match="k=6 neighbours needs more points than that, got 6 points"):
        neighbour_lists(LINE, k=6)
    bad = _wide(LINE).clone()
    bad[2, 3] = float("inf")
    with pytest.raises(ValueError, match=re.escape("points contain NaN or Inf values (1 of 6 points)")):
        neighbour_lists(bad, k=3, kd_tree=False, block_bytes=1)
    big = torch.tensor([[1e308, 1e308], [0.0, 0.0], [1.0, 0.0]], dtype=torch.float64)  # the sum overflows only
    assert neighbour_lists(big, k=2, kd_tree=False).indices[:, 0].tolist() == [0, 1, 2]
    assert neighbour_lists([[0.0], [1.0], [3.0]], k=2).indices.tolist() == [[0, 1], [1, 0], [2, 1]]


def test_duplicate_tolerance_value():
    got = duplicate_tolerance(torch.tensor([2.0], dtype=torch.float64), 16)
    assert got.item() == pytest.approx(64.0 * torch.finfo(torch.float64).eps * 4.0 * 2.0)


def test_kd_tree_route_queries_with_torchs_thread_count(monkeypatch):
    from lightning_topo.topology import graph

    asked = []
    real = graph._query_workers
    monkeypatch.setattr(graph, "_query_workers", lambda n, workers: asked.append(workers) or real(n, workers))
    cloud = torch.randn(600, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        threaded = neighbour_lists(cloud, k=5)
    finally:
        torch.set_num_threads(threads)
    assert asked == [2]
    np.testing.assert_array_equal(threaded.indices, numpy_neighbour_lists(cloud.numpy(), k=5).indices)


@pytest.mark.parametrize(
    "dims, dtype, tree",
    [(2, torch.float64, True), (16, torch.float64, True), (17, torch.float64, False), (2, torch.float32, False)],
)
def test_the_k_d_tree_takes_cpu_clouds_of_at_most_16_dims_in_float64_only(monkeypatch, dims, dtype, tree):
    from lightning_topo.topology import betti

    handed = []
    real = betti.numpy_neighbour_lists
    monkeypatch.setattr(betti, "numpy_neighbour_lists", lambda *a, **kw: handed.append(kw) or real(*a, **kw))
    cloud = torch.randn(40, dims, dtype=torch.float64, generator=torch.Generator().manual_seed(dims))
    lists = neighbour_lists(cloud, k=4, dtype=dtype)
    assert bool(handed) is tree
    assert lists.indices.tolist() == numpy_neighbour_lists(cloud.numpy(), k=4).indices.tolist()


def test_the_k_d_tree_route_keeps_the_metric_and_its_scale():
    ball = neighbour_lists(LINE, metric="euclidean", scale=3.0)  # a CPU cloud of 1 dim: the k-d tree's
    assert (ball.metric, ball.indices, ball.edges.tolist()) == ("euclidean", None, EDGES3)


def test_the_default_k_and_scale_are_the_protocols():
    cloud = torch.randn(30, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    for kd in (True, False):
        assert (
            neighbour_lists(cloud, kd_tree=kd).indices.tolist()
            == neighbour_lists(cloud, k=14, kd_tree=kd).indices.tolist()
        )
        line = torch.arange(8, dtype=torch.float64)[:, None]
        default = neighbour_lists(line, metric="euclidean", kd_tree=kd).edges.tolist()
        assert default == neighbour_lists(line, metric="euclidean", scale=2.5, kd_tree=kd).edges.tolist()
        assert default != neighbour_lists(line, metric="euclidean", scale=3.5, kd_tree=kd).edges.tolist()


def test_one_gram_product_only_for_a_wide_cloud_whose_distances_fit_in_block_bytes(monkeypatch):
    from lightning_topo.topology import neighbours

    products = []
    real = neighbours._gram_distances
    monkeypatch.setattr(neighbours, "_gram_distances", lambda x, dtype: products.append(len(x)) or real(x, dtype))
    x = _wide(LINE)  # 6 points: 6 * 6 float64 distances are 288 bytes
    for block_bytes, whole in [(288, True), (287, False)]:
        products.clear()
        lists = neighbour_lists(x, k=3, kd_tree=False, block_bytes=block_bytes)
        assert bool(products) is whole and lists.indices.tolist() == KNN3
