"""Exact filter scores (lightning_topo.topology.filters): L1 norms, cubical feature counts, filter Betti numbers."""

from __future__ import annotations

import re
import types
import warnings

import numpy as np
import pytest
import torch

from lightning_topo.topology.filters import cubical_scores, filter_betti_scores, l1_scores


def _ring() -> np.ndarray:
    """A 5x5 map: a square ring of ones around a zero hole (sublevel persistence: 3 features, one of them 1.0)."""
    img = np.zeros((5, 5))
    img[1:4, 1:4] = 1.0
    img[2, 2] = 0.0
    return img


def test_l1_scores_exact():
    weight = torch.tensor([[[[1.0, -2.0]]], [[[0.0, 3.5]]], [[[0.0, 0.0]]]])
    out = l1_scores(weight)
    assert out.dtype == np.float64 and out.tolist() == [3.0, 3.5, 0.0]


def test_cubical_scores_counts_features_above_the_threshold_strictly():
    maps = _ring()[None, None]
    assert cubical_scores(maps).tolist() == [3.0]
    assert cubical_scores(maps, min_persistence=1.0).tolist() == [1.0]  # the hole's 1.0 is not above 1.0
    assert cubical_scores(maps * 7.0 + 2.0).tolist() == [3.0]  # normalised to [0, 1] first


def test_cubical_scores_average_over_images_and_skip_constant_maps():
    maps = np.stack([_ring(), np.full((5, 5), 4.0)])[:, None]  # (2 images, 1 filter, 5, 5)
    assert cubical_scores(maps).tolist() == [1.5]
    assert cubical_scores(maps, max_images=1).tolist() == [3.0]
    both = np.concatenate([maps, maps[:, :, ::-1]], axis=1)
    assert cubical_scores(both).tolist() == [1.5, 1.5]


def test_cubical_scores_of_constant_maps_are_zero():
    assert cubical_scores(np.ones((3, 2, 4, 4))).tolist() == [0.0, 0.0]


def _two_filters() -> np.ndarray:
    """Filter 0 is dead (constant over the 6 images); filter 1 moves along a line."""
    maps = np.zeros((6, 2, 3, 3))
    maps[:, 1] = np.arange(6)[:, None, None] * np.eye(3)
    return maps


@pytest.mark.parametrize("route", ["numpy", "torch", "auto"])
def test_filter_betti_scores_dead_filter_and_a_line(route):
    maps = _two_filters()
    beta0 = filter_betti_scores(maps, k=2, dim=0, route=route)
    assert beta0.dtype == np.float64 and beta0.tolist() == [1.0, 1.0]
    assert filter_betti_scores(torch.tensor(maps), k=2, dim=1, route=route).tolist() == [0.0, 0.0]


def test_filter_betti_scores_loops_per_filter():
    angles = np.linspace(0, 2 * np.pi, 30, endpoint=False)
    maps = np.zeros((30, 2, 1, 2))
    maps[:, 0, 0] = np.c_[np.cos(angles), np.sin(angles)]  # a circle: one loop at k=3
    maps[:, 1, 0, 0] = angles  # a line: none
    for route in ("numpy", "torch"):
        assert filter_betti_scores(maps, k=3, route=route).tolist() == [1.0, 0.0]
        assert filter_betti_scores(maps, k=3, route=route, n_jobs=0).tolist() == [1.0, 0.0]
        assert filter_betti_scores(maps, metric="euclidean", scale=0.5, route=route).tolist() == [1.0, 0.0]


def test_filter_betti_scores_messages():
    with pytest.raises(
        ValueError, match=re.escape("unknown route 'gpu'; choose 'torch' (batched, on the maps' device)")
    ):
        filter_betti_scores(_two_filters(), route="gpu")
    with pytest.raises(ValueError, match=re.escape("got rank 3 (6, 2, 9)")):
        filter_betti_scores(_two_filters().reshape(6, 2, 9))
    with pytest.raises(
        ValueError, match=re.escape("feature_maps must have shape (n_images, n_filters, height, width)")
    ):
        cubical_scores(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="k must be an integer >= 2"):
        filter_betti_scores(_two_filters(), k=1, route="torch")


def _circle_maps() -> np.ndarray:
    """(30 images, 1 filter, 1, 2): a circle of 30 points; at k=10 one loop at 2 hops, none at 3 or at k=11."""
    angles = np.linspace(0, 2 * np.pi, 30, endpoint=False)
    return np.c_[np.cos(angles), np.sin(angles)][:, None, None, :]


@pytest.mark.parametrize("route", ["numpy", "torch"])
def test_filter_betti_scores_defaults_scale_and_dim(route):
    maps = _circle_maps()
    assert filter_betti_scores(maps, route=route).tolist() == [1.0]  # k=10, scale 2.5
    assert filter_betti_scores(maps, k=11, route=route).tolist() == [0.0]
    assert filter_betti_scores(maps, scale=3.5, route=route).tolist() == [0.0]
    assert filter_betti_scores(maps, k=3, dim=2, route=route).tolist() == [0.0]


def test_filter_betti_scores_route_choice(monkeypatch):
    from lightning_topo.topology import filter_lists

    class Chosen(Exception):
        pass

    def spy(*args, **kwargs):
        raise Chosen

    monkeypatch.setattr(filter_lists, "filter_neighbour_lists", spy)
    maps = _two_filters()
    with pytest.raises(Chosen):
        filter_betti_scores(maps, k=2, route="torch")
    assert filter_betti_scores(maps, k=2, route="numpy").tolist() == [0.0, 0.0]
    assert filter_betti_scores(torch.tensor(maps), k=2).tolist() == [0.0, 0.0]  # auto, CPU tensor: numpy
    on_gpu = types.SimpleNamespace(device=types.SimpleNamespace(type="cuda"))
    with pytest.raises(Chosen):  # auto on an accelerator: torch
        filter_betti_scores(on_gpu, k=2)
    with pytest.raises(ValueError, match="got rank 0"):  # auto, a device without a type: the host
        filter_betti_scores(types.SimpleNamespace(device=object()), k=2)


def test_cubical_scores_normalise_accumulate_and_warn_not():
    scaled = _ring()[None, None] * 7.0 + 2.0
    assert cubical_scores(scaled, min_persistence=1.0).tolist() == [1.0]  # the hole's persistence is 1 after scaling
    assert cubical_scores(np.stack([np.full((5, 5), 4.0), _ring()])[:, None]).tolist() == [1.5]  # constant first
    assert cubical_scores(np.stack([_ring(), _ring()])[:, None]).tolist() == [3.0]
    basins = np.array([[0.0, 1.0, 0.5]])[None, None]  # a component born at 0.5 dies at 1: persistence 0.5
    assert cubical_scores(basins, min_persistence=0.55).tolist() == [1.0]
    assert cubical_scores(np.stack([_ring()] * 65)[:, None], max_images=64).tolist() == [3.0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a constant map is skipped, never divided by its zero span
        assert cubical_scores(np.ones((2, 1, 3, 3))).tolist() == [0.0]
