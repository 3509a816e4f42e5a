"""Exact per-filter neighbour lists of the batched torch route (lightning_topo.topology.filter_lists)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from lightning_topo.topology.filter_lists import filter_neighbour_lists


def _maps(wide: bool = False) -> np.ndarray:
    """(5 images, 3 filters, 1, 1 or 17): a line, a line with duplicates (a candidate filter), the line reversed."""
    maps = np.zeros((5, 3, 1, 1))
    maps[:, 0, 0, 0] = [0, 1, 3, 6, 10]
    maps[:, 1, 0, 0] = [0, 0, 5, 5, 9]
    maps[:, 2, 0, 0] = [10, 6, 3, 1, 0]
    return np.concatenate([maps, np.zeros((5, 3, 1, 16))], axis=3) + 2.0 if wide else maps


KNN3 = [
    (5, [[0, 1, 2], [1, 0, 2], [2, 1, 0], [3, 2, 4], [4, 3, 2]]),
    (3, [[0, 1, 2], [1, 2, 0], [2, 1, 0]]),
    (5, [[0, 1, 2], [1, 2, 0], [2, 3, 1], [3, 4, 2], [4, 3, 2]]),
]
EDGES3 = [(5, [[0, 0, 1, 2], [1, 2, 2, 3]]), (3, [[], []]), (5, [[1, 2, 2, 3], [2, 3, 4, 4]])]


@pytest.mark.parametrize("wide", [False, True])
@pytest.mark.parametrize("block_bytes", [2**28, 1])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_knn_lists_exact(wide, block_bytes, dtype):
    lists = filter_neighbour_lists(_maps(wide), k=3, block_bytes=block_bytes, dtype=dtype)
    assert [(x.n_points, x.n_unique, x.metric, x.indices.tolist(), x.edges) for x in lists] == [
        (5, u, "knn", idx, None) for u, idx in KNN3
    ]


@pytest.mark.parametrize("wide", [False, True])
def test_euclidean_lists_exact(wide):
    lists = filter_neighbour_lists(torch.tensor(_maps(wide)), metric="euclidean", scale=3.0)
    assert [(x.n_unique, x.metric, x.indices, x.edges.tolist()) for x in lists] == [
        (u, "euclidean", None, e) for u, e in EDGES3
    ]
    assert all(x.edges.dtype == np.int64 for x in lists)


def test_k_is_capped_and_the_default_is_ten():
    maps = np.arange(24, dtype=float).reshape(12, 2, 1, 1) ** 2
    lists = filter_neighbour_lists(maps)
    assert [x.indices.shape for x in lists] == [(12, 10), (12, 10)]
    assert filter_neighbour_lists(_maps(), k=4)[1].indices.tolist() == [[0, 1, 2], [1, 2, 0], [2, 1, 0]]


def test_integer_maps_are_accepted():
    lists = filter_neighbour_lists(_maps().astype(np.int64), k=3)
    assert [x.indices.tolist() for x in lists] == [idx for _, idx in KNN3]


def test_messages():
    with pytest.raises(ValueError, match=re.escape("dtype must be torch.float32 or torch.float64, got torch.float16")):
        filter_neighbour_lists(_maps(), k=3, dtype=torch.float16)
    with pytest.raises(ValueError, match=re.escape("got rank 3 (5, 3, 1)")):
        filter_neighbour_lists(_maps()[..., 0], k=3)
    with pytest.raises(ValueError, match="feature_maps must be real numbers, got dtype torch.bool"):
        filter_neighbour_lists(torch.zeros(5, 3, 1, 1, dtype=torch.bool), k=3)
    with pytest.raises(ValueError, match="feature_maps must be real numbers, got dtype torch.complex64"):
        filter_neighbour_lists(torch.zeros(5, 3, 1, 1, dtype=torch.complex64), k=3)
    with pytest.raises(ValueError, match="need at least 2 points to compute Betti numbers, got 1"):
        filter_neighbour_lists(np.zeros((1, 3, 1, 1)), metric="euclidean")
    assert len(filter_neighbour_lists(np.zeros((2, 3, 1, 1)), metric="euclidean")) == 3
    with pytest.raises(ValueError, match="k=5 neighbours needs more points than that, got 5 points"):
        filter_neighbour_lists(_maps(), k=5)
    with pytest.raises(ValueError, match="unknown metric"):
        filter_neighbour_lists(_maps(), metric="cosine")
    bad = _maps()
    bad[1, 2, 0, 0] = np.nan
    bad[3, 2, 0, 0] = np.inf
    bad[4, 1, 0, 0] = np.inf
    with pytest.raises(ValueError, match=re.escape("points contain NaN or Inf values (1 of 5 points)")):
        filter_neighbour_lists(bad, k=3)  # the first filter with a bad image is filter 1
    bad[4, 1, 0, 0] = 0.0
    with pytest.raises(ValueError, match=re.escape("points contain NaN or Inf values (2 of 5 points)")):
        filter_neighbour_lists(bad, k=3)
