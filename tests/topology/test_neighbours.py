"""The torch neighbour-list route equals the numpy route exactly, and its lists give the known Betti numbers."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from lightning_topo.data.synthetic import make_d1
from lightning_topo.topology import (
    NeighbourLists,
    betti_from_neighbours,
    betti_numbers,
    first_occurrences,
    knn_indices,
    neighbour_lists,
    numpy_neighbour_lists,
)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def lattice_with_duplicates() -> np.ndarray:
    """An 8 x 8 grid centred on 0 (exact ties everywhere), plus duplicates placed so the mean stays exactly 0."""
    grid = np.stack(np.meshgrid(np.arange(8), np.arange(8)), axis=-1).reshape(-1, 2) - 3.5
    return np.vstack([grid, grid[[3, 60, 3]], -grid[[3, 60, 3]]])


def embedded_lattice(dim: int = 40) -> np.ndarray:
    """The lattice mapped linearly into ``dim`` dimensions by an integer matrix: exact arithmetic, exact ties."""
    matrix = np.random.default_rng(0).integers(-3, 4, size=(2, dim)).astype(np.float64)
    return lattice_with_duplicates() @ matrix


def rounded_cloud(dim: int, n: int = 300) -> np.ndarray:
    """Random points rounded to one decimal (many ties, inexact in binary), with duplicated rows."""
    pts = np.round(np.random.default_rng(dim).normal(size=(n, dim)), 1)
    return np.vstack([pts, pts[::7]])


def torch_route(cloud, device: str = "cpu", **options) -> NeighbourLists:
    """The torch arithmetic itself: ``kd_tree=False`` keeps a CPU cloud off the numpy route's k-d tree."""
    return neighbour_lists(torch.as_tensor(cloud).to(device), kd_tree=False, **options)


def assert_same(a: NeighbourLists, b: NeighbourLists) -> None:
    assert (a.n_points, a.n_unique, a.metric) == (b.n_points, b.n_unique, b.metric)
    for x, y in ((a.indices, b.indices), (a.edges, b.edges)):
        assert (x is None) == (y is None)
        if x is not None:
            assert x.dtype == y.dtype == np.int64
            np.testing.assert_array_equal(x, y)


# ---------------------------------------------------------------- the two routes agree exactly
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    "cloud",
    [lattice_with_duplicates(), embedded_lattice(), embedded_lattice()[:64], rounded_cloud(3), rounded_cloud(16)],
    ids=["grid", "grid-40d", "grid-40d-distinct", "rounded-3d", "rounded-16d"],
)
@pytest.mark.parametrize("k", [4, 5, 9, 30])
def test_knn_lists_are_identical(cloud, k, device):
    expected = numpy_neighbour_lists(cloud, k=k)
    assert expected.n_unique == min(len(cloud), 64 if len(cloud) < 100 else 300)  # the duplicates were found
    assert_same(torch_route(cloud, device, k=k), expected)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    ("cloud", "scales"),
    [
        (lattice_with_duplicates(), (1.0, 1.5, 2.0, 3.0)),  # 1, 2 and 3: ties exactly at the radius
        (embedded_lattice(), (13.0, 20.0, 28.0)),  # 28: ties exactly at the radius
        (rounded_cloud(3), (0.3, 0.5)),
    ],
    ids=["grid", "grid-40d", "rounded-3d"],
)
def test_radius_edges_are_identical(cloud, scales, device):
    for scale in scales:
        expected = numpy_neighbour_lists(cloud, metric="euclidean", scale=scale)
        assert expected.edges.shape[1] > 0
        assert_same(torch_route(cloud, device, metric="euclidean", scale=scale), expected)


def test_blocked_computation_equals_the_unblocked_one():
    for cloud in (lattice_with_duplicates(), embedded_lattice(), rounded_cloud(3)):
        assert_same(torch_route(cloud, k=9, block_bytes=1), torch_route(cloud, k=9))
        assert_same(torch_route(cloud, k=9, block_bytes=3000), torch_route(cloud, k=9))
        one = torch_route(cloud, metric="euclidean", scale=3.0, block_bytes=1)
        assert_same(one, torch_route(cloud, metric="euclidean", scale=3.0))


def test_knn_order_is_self_then_distance_then_index():
    cloud = lattice_with_duplicates()[:64]  # the grid: up to 4 points at the same distance
    got = knn_indices(cloud, 9)
    for i, row in enumerate(got):
        d2 = ((cloud - cloud[i]) ** 2).sum(axis=1)
        expected = sorted(range(len(cloud)), key=lambda j: (j != i, d2[j], j))[:9]
        assert row.tolist() == expected


def test_high_dimensional_numpy_knn_breaks_ties_the_same_way():
    low = numpy_neighbour_lists(lattice_with_duplicates(), k=9)
    high = numpy_neighbour_lists(embedded_lattice(), k=9)  # a linear image of the grid, not an isometry
    assert high.indices[:, 0].tolist() == list(range(high.n_unique))
    assert low.n_unique == high.n_unique == 64


# ---------------------------------------------------------------- duplicates
def test_duplicates_keep_the_first_occurrence_in_original_order():
    cloud = np.array([[3.0, 1.0], [1.0, 0.0], [3.0, 1.0], [0.0, -0.0], [1.0, 0.0], [-0.0, 0.0]])
    assert first_occurrences(cloud).tolist() == [0, 1, 3]  # -0.0 == 0.0
    lists = torch_route(cloud, k=2)
    assert (lists.n_points, lists.n_unique) == (6, 3)
    assert lists.indices.tolist() == [[0, 1], [1, 2], [2, 1]]  # (3, 1), (1, 0), (0, 0)
    assert_same(lists, numpy_neighbour_lists(cloud, k=2))


def test_near_duplicates_are_checked_exactly():
    base = np.random.default_rng(0).random((1, 5000))
    near = base.copy()
    near[0, 17] += 1e-12  # squared distance far below the duplicate tolerance of the wide Gram route
    cloud = np.vstack([base, near, near, base, near + 1.0, base, near, near + 1.0])
    lists = torch_route(cloud, k=2)
    assert (lists.n_points, lists.n_unique) == (8, 3)  # base, near and near + 1 are distinct
    assert_same(lists, numpy_neighbour_lists(cloud, k=2))


def test_leading_duplicates_of_one_row_in_a_wide_cloud():
    rows = np.random.default_rng(0).random((4, 5000))
    cloud = rows[[0, 0, 0, 1, 2, 3]]  # rows 1-2 repeat row 0 (a contiguous run), the others are new
    lists = torch_route(cloud, k=2)
    assert (lists.n_points, lists.n_unique) == (6, 4)
    assert_same(lists, numpy_neighbour_lists(cloud, k=2))


@pytest.mark.parametrize("shape", [(50, 3), (50, 800_000)])
def test_an_all_identical_cloud_is_one_point(shape):
    lists = torch_route(torch.zeros(shape), k=14)
    assert (lists.n_points, lists.n_unique) == (50, 1)
    assert betti_from_neighbours(lists, max_dim=2) == (1, 0, 0)
    euclidean = torch_route(torch.full(shape, 0.5), metric="euclidean")
    assert betti_from_neighbours(euclidean, max_dim=1) == (1, 0)


# ---------------------------------------------------------------- Betti numbers from the torch lists
def test_circle_and_d1_classes_from_torch_lists():
    t = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    circle = np.stack([np.cos(t), np.sin(t)], axis=1) + 0.02 * np.random.default_rng(0).normal(size=(200, 2))
    assert betti_from_neighbours(torch_route(circle, k=6)) == betti_numbers(circle, k=6) == (1, 1)
    x, y = make_d1(seed=0)
    for label, expected in ((0, (9, 0)), (1, (1, 9))):
        cloud = torch.from_numpy(x[y == label]).float()  # float32 in, float64 arithmetic
        assert betti_from_neighbours(torch_route(cloud, k=14)) == betti_numbers(x[y == label], k=14) == expected


def test_float32_arithmetic_gives_the_same_lists_on_well_separated_points():
    for cloud in (lattice_with_duplicates(), embedded_lattice()):
        assert_same(torch_route(cloud, k=9, dtype=torch.float32), torch_route(cloud, k=9))


def test_a_narrow_cpu_cloud_goes_to_the_kd_tree_with_the_same_lists():
    cloud = rounded_cloud(3)
    assert_same(neighbour_lists(torch.from_numpy(cloud), k=9), torch_route(cloud, k=9))


def test_betti_numbers_is_the_numpy_route_then_betti_from_neighbours():
    cloud = rounded_cloud(3)
    lists = numpy_neighbour_lists(cloud, k=8)
    assert betti_from_neighbours(lists, max_dim=2) == betti_numbers(cloud, k=8, max_dim=2)


# ---------------------------------------------------------------- the lists themselves
def test_lists_pickle_small_and_device_free():
    cloud = torch.from_numpy(np.random.default_rng(0).random((200, 5000)))
    lists = neighbour_lists(cloud, k=14)
    assert isinstance(lists.indices, np.ndarray) and lists.indices.shape == (200, 14)
    blob = pickle.dumps(lists)
    # the indices, the two nearest distances per point and a small header, never the cloud (8 MB)
    assert len(blob) < 200 * 14 * 8 + 200 * 2 * 8 + 1000
    again = pickle.loads(blob)
    assert_same(again, lists)
    assert np.array_equal(again.nearest, lists.nearest) and lists.nearest.shape == (200, 2)
    assert lists.nbytes == 200 * 14 * 8 + 200 * 2 * 8


def test_lists_are_capped_at_the_unique_points():
    cloud = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]] * 10)  # 30 points, 3 distinct
    lists = torch_route(cloud, k=14)
    assert lists.indices.shape == (3, 3)
    assert betti_from_neighbours(lists) == (1, 0)


# ---------------------------------------------------------------- bad input: the same errors as betti_numbers
@pytest.mark.parametrize(
    ("points", "options"),
    [
        (np.array([[0.0, np.nan], [1.0, 1.0], [2.0, 2.0]]), {"k": 2}),
        (np.array([[0.0, np.inf], [1.0, 1.0], [2.0, 2.0]]), {"k": 2}),
        (np.zeros((1, 3)), {"k": 2}),
        (np.zeros((10, 2)), {"k": 10}),
        (np.zeros(10), {"k": 2}),
        (np.zeros((4, 3, 2)), {"k": 2}),
        (np.zeros((10, 2)), {"k": 1}),
        (np.zeros((10, 2)), {"k": 3, "metric": "cosine"}),
        (np.zeros((10, 2)), {"k": 3, "scale": -1.0}),
    ],
)
def test_validation_errors_match_the_numpy_route(points, options):
    with pytest.raises(ValueError) as numpy_error:
        betti_numbers(points, **options)
    with pytest.raises(ValueError) as numpy_lists_error:
        numpy_neighbour_lists(points, **options)
    with pytest.raises(ValueError) as torch_error:
        torch_route(points, **options)
    with pytest.raises(ValueError) as default_error:  # a narrow CPU cloud may go to the k-d tree
        neighbour_lists(torch.from_numpy(points), **options)
    assert str(torch_error.value) == str(default_error.value) == str(numpy_error.value) == str(numpy_lists_error.value)


def test_bad_torch_options_say_what_to_pass():
    cloud = torch.zeros(10, 2)
    with pytest.raises(ValueError, match="dtype must be torch.float32 or torch.float64"):
        neighbour_lists(cloud, dtype=torch.float16)
    with pytest.raises(ValueError, match="block_bytes must be a positive integer"):
        neighbour_lists(cloud, block_bytes=0)
    with pytest.raises(ValueError, match="make one with neighbour_lists"):
        betti_from_neighbours(np.zeros((10, 3), dtype=np.int64))


def test_the_topology_package_imports_torch_only_on_demand():
    import sys

    from helpers.processes import run_child

    script = (
        "import sys, lightning_topo.topology as t;"
        "assert 'torch' not in sys.modules, 'torch imported by lightning_topo.topology';"
        "t.neighbour_lists; assert 'torch' in sys.modules"
    )
    run_child([sys.executable, "-c", script], check=True)


# ---------------------------------------------------------------- conv filters: every filter's lists at once
def integer_maps(n_images: int = 32, side: int = 5, seed: int = 0) -> np.ndarray:
    """Small-integer maps (exact arithmetic, many ties) with a dead filter and repeated images."""
    rng = np.random.default_rng(seed)
    maps = rng.integers(0, 3, size=(n_images, 6, side, side)).astype(np.float32)
    maps[:, 2] = 1.0  # a dead filter: one point
    maps[5, :4] = maps[1, :4]  # image 5 repeats image 1 on filters 0-3
    maps[9, 4] = maps[2, 4]
    return maps


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("side", [5, 4], ids=["25-d", "16-d"])
def test_filter_lists_equal_each_filters_numpy_lists(side, device):
    from lightning_topo.topology.filter_lists import filter_neighbour_lists

    maps = integer_maps(side=side)
    for options in ({"k": 5}, {"metric": "euclidean", "scale": 3.0}):
        got = filter_neighbour_lists(torch.from_numpy(maps).to(device), **options)
        assert len(got) == 6 and got[2].n_unique == 1 and got[0].n_unique == 31
        for c, lists in enumerate(got):
            assert_same(lists, numpy_neighbour_lists(maps[:, c].reshape(32, -1), **options))
        assert_same(got[3], filter_neighbour_lists(maps, block_bytes=1, **options)[3])  # one filter per batch


@pytest.mark.parametrize("dim", [0, 1])
def test_filter_scores_are_the_same_on_both_routes(dim):
    from lightning_topo.topology import filters

    for maps in (integer_maps(), np.random.default_rng(1).normal(size=(60, 5, 6, 6))):
        for options in ({"k": 6}, {"metric": "euclidean", "scale": 6.0}):
            fast = filters.filter_betti_scores(torch.from_numpy(maps), dim=dim, route="torch", **options)
            slow = filters.filter_betti_scores(maps, dim=dim, route="numpy", **options)
            np.testing.assert_array_equal(fast, slow)
    dead = filters.filter_betti_scores(integer_maps(), dim=dim, k=6)[2]
    assert dead == (1.0 if dim == 0 else 0.0)


def test_filter_routes_raise_the_same_errors():
    from lightning_topo.topology import filters

    maps = integer_maps()
    maps[3, 4, 0, 0] = np.nan
    maps[7, 4, 1, 1] = np.inf
    bad = [(maps, {"k": 5}), (integer_maps(), {"k": 32}), (integer_maps(), {"k": 5, "metric": "cosine"})]
    for array, options in bad:
        with pytest.raises(ValueError) as slow:
            filters.filter_betti_scores(array, route="numpy", **options)
        with pytest.raises(ValueError) as fast:
            filters.filter_betti_scores(array, route="torch", **options)
        assert str(fast.value) == str(slow.value)
    with pytest.raises(ValueError, match="n_images, n_filters, height, width"):
        filters.filter_betti_scores(np.zeros((4, 3, 2)))
    with pytest.raises(ValueError, match="choose 'torch'"):
        filters.filter_betti_scores(integer_maps(), route="cuda")


def test_filter_scores_auto_route_matches_both():
    from lightning_topo.topology import filters

    maps = integer_maps()
    expected = filters.filter_betti_scores(maps, k=6, route="numpy")
    np.testing.assert_array_equal(filters.filter_betti_scores(torch.from_numpy(maps), k=6), expected)  # auto
    for device in DEVICES:
        np.testing.assert_array_equal(filters.filter_betti_scores(torch.from_numpy(maps).to(device), k=6), expected)


# ---------------------------------------------------------------- the k-d tree's fast paths (issue 20)
def reference_knn(cloud: np.ndarray, k: int) -> np.ndarray:
    """The protocol by its definition: direct differences left to right, self first, (distance, index) order."""
    out = []
    for i in range(len(cloud)):
        diff = cloud[:, 0] - cloud[i, 0]
        d2 = diff * diff
        for c in range(1, cloud.shape[1]):
            diff = cloud[:, c] - cloud[i, c]
            d2 = d2 + diff * diff
        d2[i] = -np.inf
        out.append(np.lexsort((np.arange(len(cloud)), d2))[:k])
    return np.asarray(out, dtype=np.int64)


def relu_cloud(n: int, d: int, seed: int) -> np.ndarray:
    """2-D points through a random ReLU layer of width ``d``: the monitor's D-I hidden clouds in miniature."""
    gen = np.random.default_rng(seed)
    base = gen.uniform(-1, 1, size=(n, 2))
    return np.maximum(base @ gen.normal(size=(2, d)) + gen.normal(size=d), 0.0)


@pytest.mark.parametrize(
    "cloud",
    [
        lattice_with_duplicates()[:64],  # ties everywhere: every row is re-ranked
        relu_cloud(400, 15, 0),  # continuous, distinct: the rows kept in the tree's order
        relu_cloud(400, 5, 1)[np.r_[0:400, 7:40]],  # and with duplicates (dropped first)
        np.round(relu_cloud(300, 3, 2), 1),  # many ties at one decimal
        np.vstack([relu_cloud(200, 2, 3) * 1e-160, relu_cloud(50, 2, 4) * 1e-170]),  # squares near underflow
        rounded_cloud(16),
    ],
    ids=["grid", "relu-15d", "relu-5d-duplicates", "rounded-relu-3d", "tiny", "rounded-16d"],
)
@pytest.mark.parametrize("k", [2, 5, 14])
def test_kd_tree_lists_equal_the_definition_and_the_torch_route(cloud, k):
    unique = cloud[first_occurrences(cloud)]
    got = numpy_neighbour_lists(cloud, k=k)
    np.testing.assert_array_equal(got.indices, reference_knn(unique, k))
    assert_same(torch_route(cloud, k=k), got)  # torch brute force: direct differences and topk
    assert_same(neighbour_lists(torch.as_tensor(cloud), k=k), got)  # the CPU default: the k-d tree


def hashed_first_occurrences(cloud: np.ndarray) -> list[int]:
    seen: dict[bytes, int] = {}
    for i, row in enumerate(np.asarray(cloud, dtype=np.float64)):
        seen.setdefault((row + 0.0).tobytes(), i)
    return list(seen.values())


@pytest.mark.parametrize("d", [1, 2, 15, 16])
def test_narrow_first_occurrences_equal_hashing_rows(d):
    gen = np.random.default_rng(d)
    rows = np.round(gen.normal(size=(500, d)), 0)  # few distinct values: many duplicates, in any order
    rows[::9] = 0.0
    rows[1::9] = -0.0  # the same point as 0.0
    rows[2::9, 0] = 5e-324  # the smallest subnormal is not 0
    assert first_occurrences(rows).tolist() == hashed_first_occurrences(rows)
    assert first_occurrences(rows.astype(np.float32)).tolist() == hashed_first_occurrences(rows.astype(np.float32))
    assert first_occurrences(np.zeros((7, d))).tolist() == [0]
