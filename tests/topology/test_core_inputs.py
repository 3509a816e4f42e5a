"""Inputs at the edges of the topology core: dtypes numpy lacks, clouds without coordinates, calibrate_k's order,
the nearest distances of filter lists, and the k / scale options (checks, betti, neighbours, filter_lists)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from lightning_topo.topology import (
    as_point_cloud,
    betti_numbers,
    calibrate_k,
    filter_neighbour_lists,
    intrinsic_dimension,
    lists_intrinsic_dimension,
    neighbour_lists,
    numpy_neighbour_lists,
)
from lightning_topo.topology.betti import _to_numpy
from lightning_topo.topology.checks import check_k, check_options
from lightning_topo.topology.filters import filter_betti_scores
from lightning_topo.topology.neighbours import batched_neighbour_lists

_T = np.linspace(0, 2 * np.pi, 100, endpoint=False)
CIRCLE = np.stack([np.cos(_T), np.sin(_T)], axis=1) * 10  # (1, 1) at k=6, in bfloat16 too
NO_NUMPY_DTYPES = [torch.bfloat16] + [
    getattr(torch, name) for name in ("float8_e4m3fn", "float8_e5m2") if hasattr(torch, name)
]


# ---------------------------------------------------------------- dtypes numpy lacks (bfloat16, float8)
@pytest.mark.parametrize("dtype", NO_NUMPY_DTYPES, ids=str)
def test_to_numpy_widens_a_dtype_numpy_lacks_to_float32_exactly(dtype):
    x = torch.tensor(CIRCLE).to(dtype)
    array = _to_numpy(x)
    assert array.dtype == np.float32
    np.testing.assert_array_equal(array, x.float().numpy())
    np.testing.assert_array_equal(as_point_cloud(x), x.double().numpy())


def test_to_numpy_keeps_the_dtypes_numpy_has():
    assert _to_numpy(torch.zeros(2, 2, dtype=torch.float16)).dtype == np.float16
    assert _to_numpy(torch.zeros(2, 2, dtype=torch.int8)).dtype == np.int8


@pytest.mark.parametrize("kd_tree", [None, True, False])
@pytest.mark.parametrize("metric", ["knn", "euclidean"])
def test_bfloat16_cloud_takes_every_route_like_its_float32_copy(kd_tree, metric):
    x = torch.tensor(CIRCLE).to(torch.bfloat16)
    options = {"metric": metric, "k": 6, "scale": 1.0}
    got = neighbour_lists(x, kd_tree=kd_tree, **options)
    want = neighbour_lists(x.float(), kd_tree=kd_tree, **options)
    for name in ("indices", "edges", "nearest"):
        a, b = getattr(got, name), getattr(want, name)
        assert (a is None and b is None) or np.array_equal(a, b), name
    assert betti_numbers(x, **options) == betti_numbers(x.float(), **options)
    assert betti_numbers(x, k=6) == (1, 1)


def test_bfloat16_stack_and_maps_take_every_route():
    x = torch.tensor(CIRCLE).to(torch.bfloat16)
    batched = batched_neighbour_lists(torch.stack([x, x.flip(0)]), k=6)  # CPU, d <= 16: the k-d tree route
    assert np.array_equal(batched[0].indices, neighbour_lists(x.float(), k=6).indices)
    maps = torch.randn(30, 2, 3, 3, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
    for route in ("numpy", "torch"):
        scores = filter_betti_scores(maps, k=5, route=route)
        assert scores.tolist() == filter_betti_scores(maps.float(), k=5, route=route).tolist()


# ---------------------------------------------------------------- clouds without coordinates, shape (n, 0)
NO_FEATURES = re.escape(
    "points have no coordinates: shape (5, 0) gives each point 0 features; pass a cloud with at least one feature "
    "per point (check the layer or the slice that produced it)"
)


NO_FEATURE_CALLS = {
    "as_point_cloud": lambda: as_point_cloud(np.zeros((5, 0))),
    "betti_numbers": lambda: betti_numbers(np.zeros((5, 0)), k=2),
    "betti_numbers euclidean": lambda: betti_numbers(np.zeros((5, 0)), metric="euclidean"),
    "numpy_neighbour_lists": lambda: numpy_neighbour_lists(np.zeros((5, 0)), k=2),
    "betti_numbers tensor": lambda: betti_numbers(torch.zeros(5, 0), k=2),
    "neighbour_lists": lambda: neighbour_lists(torch.zeros(5, 0), k=2),
    "neighbour_lists torch": lambda: neighbour_lists(torch.zeros(5, 0), k=2, kd_tree=False),
    "neighbour_lists torch euclidean": lambda: neighbour_lists(torch.zeros(5, 0), metric="euclidean", kd_tree=False),
    "neighbour_lists float32": lambda: neighbour_lists(torch.zeros(5, 0), k=2, kd_tree=False, dtype=torch.float32),
    "batched_neighbour_lists": lambda: batched_neighbour_lists(torch.zeros(2, 5, 0), k=3, kd_tree=False),
    "filter_betti_scores numpy": lambda: filter_betti_scores(np.zeros((5, 3, 0, 4)), k=2, route="numpy"),
    "intrinsic_dimension": lambda: intrinsic_dimension(np.zeros((5, 0))),
    "intrinsic_dimension tensor": lambda: intrinsic_dimension(torch.zeros(5, 0)),
}


@pytest.mark.parametrize("name", NO_FEATURE_CALLS)
def test_a_cloud_without_coordinates_is_named(name):
    with pytest.raises(ValueError, match=NO_FEATURES):
        NO_FEATURE_CALLS[name]()


@pytest.mark.parametrize("route", ["torch", "direct"])
def test_maps_without_values_or_filters_are_named(route):
    def call(maps):
        if route == "torch":
            return filter_betti_scores(maps, k=2, route="torch")
        return filter_neighbour_lists(maps, k=2)

    empty = re.escape(
        "feature_maps of shape (5, 3, 0, 4) hold empty maps (height * width = 0), so each filter's points have no "
        "coordinates; pass maps of height and width >= 1"
    )
    with pytest.raises(ValueError, match=empty):
        call(np.zeros((5, 3, 0, 4)))
    with pytest.raises(ValueError, match=re.escape("feature_maps of shape (5, 0, 3, 3) hold no filters; pass")):
        call(torch.zeros(5, 0, 3, 3))


def test_maps_without_filters_are_named_on_the_numpy_route_too():
    with pytest.raises(ValueError, match=re.escape("feature_maps of shape (5, 0, 3, 3) hold no filters; pass")):
        filter_betti_scores(np.zeros((5, 0, 3, 3)), k=2, route="numpy")


# ---------------------------------------------------------------- calibrate_k: the smallest k, whatever the order
RAND_T = np.random.default_rng(0).random(300) * 2 * np.pi
RAND_CIRCLE = np.stack([np.cos(RAND_T), np.sin(RAND_T)], axis=1)  # (1, 1) at k=10 and k=11


def test_calibrate_k_returns_the_smallest_k_of_an_unsorted_range():
    assert betti_numbers(RAND_CIRCLE, k=10) == betti_numbers(RAND_CIRCLE, k=11) == (1, 1)
    assert calibrate_k(RAND_CIRCLE, (1, 1), k_range=range(11, 2, -1)) == 10
    assert calibrate_k(RAND_CIRCLE, (1, 1), k_range=[11, 10, 12]) == 10


def test_calibrate_k_skips_a_k_too_large_for_the_cloud_and_goes_on():
    assert calibrate_k(RAND_CIRCLE, (1, 1), k_range=[400, 10]) == 10
    with pytest.raises(ValueError) as info:
        calibrate_k(RAND_CIRCLE[:30], (7, 7), k_range=[40, 28, 30, 29])
    message = str(info.value)
    assert message.startswith("no k in the range reproduces the expected Betti numbers (7, 7) (k=28: ")
    assert "; k=29: " in message
    assert message.endswith(
        "widen k_range, sample the data more densely or check the expected values; "
        "k_range's 2 values from k=30 on were skipped: k must stay below the 30 points"
    )


# ---------------------------------------------------------------- filter lists keep their nearest distances
@pytest.mark.parametrize("width", [3, 5])  # 9 coordinates: direct differences; 25: the Gram route
@pytest.mark.parametrize("metric", ["knn", "euclidean"])
def test_filter_lists_without_duplicates_keep_the_nearest_distances_of_neighbour_lists(width, metric):
    maps = np.random.default_rng(0).normal(size=(30, 3, width, width))
    maps[1, 2] = maps[0, 2]  # filter 2 has a duplicate image: the one-by-one route
    lists = filter_neighbour_lists(maps, metric=metric, k=5, scale=4.0)
    for c, got in enumerate(lists):
        cloud = torch.tensor(maps[:, c].reshape(30, -1))
        want = neighbour_lists(cloud, metric=metric, k=5, scale=4.0, kd_tree=False)
        assert got.n_unique == want.n_unique == (29 if c == 2 else 30)
        assert got.nearest is not None and got.nearest.shape == (got.n_unique, 2) and got.nearest.dtype == np.float64
        if width == 3:  # the same direct differences, bit for bit
            np.testing.assert_array_equal(got.nearest, want.nearest)
        else:  # a batched product against one product per cloud: the last bits may differ
            np.testing.assert_allclose(got.nearest, want.nearest, rtol=1e-12)
        assert lists_intrinsic_dimension(got) == pytest.approx(lists_intrinsic_dimension(want), rel=1e-9)


def test_filter_lists_of_two_images_have_no_nearest_distances():
    lists = filter_neighbour_lists(np.random.default_rng(0).normal(size=(2, 2, 3, 3)), metric="euclidean")
    assert [item.nearest for item in lists] == [None, None]


# ---------------------------------------------------------------- k and scale options
def test_two_points_allow_no_k_and_the_message_says_so():
    message = re.escape(
        "k=2 neighbours needs more points than that, got 2 points; 2 points allow no k (k counts the point itself, "
        "so k >= 2, and k must stay below the number of points); pass at least 3 points"
    )
    with pytest.raises(ValueError, match=message):
        betti_numbers(np.array([[0.0, 0.0], [1.0, 0.0]]), k=2)
    with pytest.raises(ValueError, match=message):
        neighbour_lists(torch.tensor([[0.0, 0.0], [1.0, 0.0]]), k=2, kd_tree=False)
    with pytest.raises(ValueError, match=re.escape("got 3 points; lower k below 3 or pass more points")):
        check_k(3, 3)


@pytest.mark.parametrize("metric", ["knn", "euclidean"])
def test_scale_true_is_refused_like_k_true(metric):
    with pytest.raises(ValueError, match=re.escape("scale must be a positive finite number, got True")):
        check_options(metric, k=3, scale=True)
    with pytest.raises(ValueError, match=re.escape("scale must be a positive finite number, got True")):
        betti_numbers(CIRCLE, metric=metric, k=3, scale=True)
    check_options(metric, k=3, scale=1)  # a plain integer scale stays fine
