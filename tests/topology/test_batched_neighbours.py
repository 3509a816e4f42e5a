"""The batched class route (one forward pass and one distance launch per layer for equal classes) gives the
per-class route's neighbour lists and nearest distances bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from lightning_topo.callbacks import BettiMonitor
from lightning_topo.monitoring import clouds as clouds_module
from lightning_topo.monitoring.clouds import _cloud_batches, reduce_clouds
from lightning_topo.topology import NeighbourLists, neighbour_lists
from lightning_topo.topology.neighbours import batched_neighbour_lists

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def assert_identical(a: NeighbourLists | str, b: NeighbourLists | str) -> None:
    if isinstance(a, str) or isinstance(b, str):
        assert a == b
        return
    assert (a.n_points, a.n_unique, a.metric) == (b.n_points, b.n_unique, b.metric)
    for x, y in ((a.indices, b.indices), (a.edges, b.edges)):
        assert (x is None) == (y is None)
        if x is not None:
            assert x.dtype == y.dtype == np.int64
            np.testing.assert_array_equal(x, y)
    assert (a.nearest is None) == (b.nearest is None)
    if a.nearest is not None:
        assert a.nearest.dtype == b.nearest.dtype == np.float64
        assert np.array_equal(a.nearest, b.nearest)  # bit for bit, not approximately


def both_routes(stack: torch.Tensor, **options) -> None:
    batched = batched_neighbour_lists(stack, **options)
    assert len(batched) == len(stack)
    for cloud, lists in zip(stack, batched):
        assert_identical(lists, neighbour_lists(cloud, **options))


def lattice_stack(clouds: int, dim: int) -> torch.Tensor:
    """Integer grids linearly embedded with integer matrices: exact distances, ties at every rank."""
    grid = torch.stack(torch.meshgrid(torch.arange(6), torch.arange(6), indexing="ij"), -1).reshape(-1, 2).double()
    g = torch.Generator().manual_seed(dim)
    return torch.stack([grid @ torch.randint(-3, 4, (2, dim), generator=g).double() for _ in range(clouds)])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dim", [1, 3, 16, 17, 40, 300])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_random_clouds_give_identical_lists_and_distances(device, dim, dtype):
    stack = torch.randn(6, 50, dim, generator=torch.Generator().manual_seed(dim), dtype=dtype).to(device)
    both_routes(stack, k=8, kd_tree=False)
    both_routes(stack, k=8, dtype=torch.float32, kd_tree=False)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dim", [2, 16, 17, 64])
def test_ties_at_the_kth_distance_are_repaired_identically(device, dim):
    stack = lattice_stack(4, dim).to(device)
    both_routes(stack, k=5, kd_tree=False)
    both_routes(stack, k=14, kd_tree=False)
    rounded = torch.round(torch.randn(5, 80, dim, generator=torch.Generator().manual_seed(1)), decimals=0)
    both_routes(rounded.to(device), k=9, kd_tree=False)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dim", [3, 16, 17, 50])
def test_clouds_with_duplicates_take_the_per_cloud_route(device, dim):
    stack = torch.randn(5, 40, dim, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    stack[1, 7] = stack[1, 3]  # one duplicate
    stack[3, 10:] = stack[3, 0]  # mostly one point
    stack[4] = stack[4, 0]  # a dead layer: one point
    both_routes(stack.to(device), k=6, kd_tree=False)


def test_cpu_narrow_float64_keeps_the_kd_tree_and_other_options_fall_back():
    stack = torch.randn(3, 30, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    both_routes(stack, k=6)  # kd_tree=None: the per-cloud k-d tree, as neighbour_lists
    both_routes(stack, metric="euclidean", scale=1.0, kd_tree=False)
    both_routes(stack, k=2, kd_tree=False)
    both_routes(torch.randn(3, 40, 20, dtype=torch.float64), k=5, block_bytes=40 * 40 * 8 - 1)  # no one Gram block


def test_a_non_finite_cloud_raises_as_the_per_cloud_route():
    stack = torch.randn(3, 30, 20)
    stack[2, 4, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN or Inf") as batched:
        batched_neighbour_lists(stack, k=5)
    with pytest.raises(ValueError, match="NaN or Inf") as single:
        neighbour_lists(stack[2], k=5)
    assert str(batched.value) == str(single.value)


# ------------------------------------------------------------------------------ through reduce_clouds and the monitor
class Small(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 4, 3)
        self.act = nn.ReLU()
        self.flat = nn.Flatten()
        self.hidden = nn.Linear(4 * 6 * 6, 12)
        self.act2 = nn.ReLU()
        self.head = nn.Linear(12, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.act2(self.hidden(self.flat(self.act(self.conv(x))))))


def probe(per_class: int = 30, classes: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(per_class * classes, 1, 8, 8, generator=torch.Generator().manual_seed(4))
    x[5] = x[2]  # a duplicate input image in class 0
    return x, torch.arange(classes).repeat_interleave(per_class)


def routes(monkeypatch, run):
    out = {}
    for batched in (False, True):
        monkeypatch.setattr(clouds_module, "BATCH_CLASSES", batched)
        out[batched] = run()
    return out[False], out[True]


def test_reduce_clouds_batched_equals_per_class(monkeypatch):
    model, (x, y) = Small(), probe()
    clouds = {str(c): torch.nonzero(y == c).flatten() for c in range(3)}
    layers = ["input", "act", "hidden", "act2", "logits"]
    passes = []
    model.register_forward_hook(lambda m, a, o: passes.append(len(a[0])))

    def run():
        return reduce_clouds(model, x, clouds, dict.fromkeys(clouds, layers), k=6, batch_size=90)

    passes.clear()
    single, batched = routes(monkeypatch, run)
    assert passes == [1, 30, 30, 30, 1, 90]  # profile + 3 class passes, then profile + one pass of 3 classes
    assert single.keys() == batched.keys()
    for key in single:
        assert_identical(single[key], batched[key])


def test_betti_monitor_compute_is_identical_on_both_routes(monkeypatch):
    model, (x, y) = Small(), probe()

    def run():
        monitor = BettiMonitor(k=6, dims=[0, 1], log_figure=False, intrinsic_dimension=True, batch_size=90)
        monitor.set_probe(x, y, model=model)
        entry = monitor.compute(model)
        return entry["betti"], entry.get("intrinsic_dimension", entry.get("id"))

    single, batched = routes(monkeypatch, run)
    assert single == batched


def test_the_rule_for_the_batched_route(monkeypatch):
    idx = {c: torch.arange(10 * c, 10 * c + 10) for c in range(4)}
    layers = dict.fromkeys(map(str, range(4)), ["act"])
    equal = {str(c): idx[c] for c in range(4)}
    monkeypatch.setattr(clouds_module, "BATCH_CLASSES", None)
    assert _cloud_batches(equal, layers, 256, "knn") == [["0", "1", "2", "3"]]  # on by default
    monkeypatch.setattr(clouds_module, "BATCH_CLASSES", False)
    assert _cloud_batches(equal, layers, 256, "knn") == [["0"], ["1"], ["2"], ["3"]]
    monkeypatch.setattr(clouds_module, "BATCH_CLASSES", True)
    assert _cloud_batches(equal, layers, 256, "knn") == [["0", "1", "2", "3"]]
    assert _cloud_batches(equal, layers, 25, "knn") == [["0", "1"], ["2", "3"]]  # batch_size // n per pass
    assert _cloud_batches(equal, layers, 19, "knn") == [["0"], ["1"], ["2"], ["3"]]
    assert _cloud_batches(equal, layers, 256, "euclidean") == [["0"], ["1"], ["2"], ["3"]]
    unequal = {**equal, "2": torch.arange(5)}
    assert _cloud_batches(unequal, layers, 256, "knn") == [["0", "1"], ["2"], ["3"]]
    assert _cloud_batches({"all": None}, {"all": ["act"]}, 256, "knn") == [["all"]]
    mixed = {**layers, "1": ["act", "logits"]}
    assert _cloud_batches(equal, mixed, 256, "knn") == [["0"], ["1"], ["2", "3"]]
