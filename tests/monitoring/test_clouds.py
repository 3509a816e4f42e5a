"""The monitor's capture (reduce_clouds): a class that is one run of the probe is read as a view; the batched
class route (one forward pass for equal classes) gives the per-class route's lists, and the rule that chooses it."""

from __future__ import annotations

import torch
from helpers.neighbour_lists import assert_identical
from torch import nn

from lightning_topo.callbacks import BettiMonitor
from lightning_topo.monitoring import clouds as clouds_module
from lightning_topo.monitoring.clouds import _cloud_batches, reduce_clouds


def test_a_class_that_is_one_run_of_the_probe_is_read_as_a_view_not_a_copy():
    from lightning_topo.monitoring.clouds import _members

    x = torch.randn(10, 3)
    run, scattered = _members(x, torch.arange(3, 7)), _members(x, torch.tensor([1, 4, 5]))
    assert run.data_ptr() == x[3].data_ptr() and torch.equal(run, x[3:7])
    assert scattered.data_ptr() != x.data_ptr() and torch.equal(scattered, x[[1, 4, 5]])
    assert torch.equal(_members(x, torch.arange(10) >= 8), x[8:]) and _members(x, None) is x


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
    # the memory budget bounds a batched pass: 1 kB per sample, 10 samples a cloud
    assert _cloud_batches(equal, layers, 256, "knn", 1000, 25_000) == [["0", "1"], ["2", "3"]]
    assert _cloud_batches(equal, layers, 256, "knn", 1000, 19_000) == [["0"], ["1"], ["2"], ["3"]]


def test_a_batched_pass_keeps_the_widest_layer_and_its_float64_copy_within_the_memory_budget(monkeypatch):
    """ResNet-18 at 224 px on the CPU took five classes a pass and 1.5 GB at probe 500; the budget bounds it now."""
    monkeypatch.setattr(clouds_module, "BATCH_CLASSES", None)
    net = nn.Sequential(nn.Linear(4, 1000), nn.ReLU(), nn.Linear(1000, 2))
    x, y = torch.randn(40, 4), torch.arange(4).repeat_interleave(10)
    passes: list[int] = []
    net[0].register_forward_pre_hook(lambda module, args: passes.append(len(args[0])))
    clouds = {str(c): torch.nonzero(y == c).flatten() for c in range(4)}
    layers = dict.fromkeys(clouds, ["1"])
    per_sample = 1000 * 8  # the ReLU's 1000 values per sample, in float64 for the distances
    found = reduce_clouds(net, x, clouds, layers, k=3, memory_budget=20 * per_sample)
    assert passes[1:] == [20, 20]  # after the one-sample profile pass: two classes a pass, as the budget allows
    passes.clear()
    assert reduce_clouds(net, x, clouds, layers, k=3, memory_budget=19 * per_sample).keys() == found.keys()
    assert passes[1:] == [10, 10, 10, 10]


def test_the_heap_is_trimmed_after_large_layers_only(monkeypatch):
    from lightning_topo.monitoring.clouds import _TRIM_MIN_BYTES, _reduce

    trims = []
    monkeypatch.setattr(clouds_module, "_release_host_memory", lambda: trims.append(1))
    topology = {"metric": "knn", "k": 3, "scale": 1.0, "dtype": torch.float64}
    small = torch.randn(20, 4)  # 640 bytes in float64: the heap's free lists take it back at no cost
    assert _reduce(small, None, None, topology).n_points == 20 and trims == []
    large = torch.randn(20, _TRIM_MIN_BYTES // 8 // 20 + 1)  # just over 1 MiB as a float64 working copy
    assert _reduce(large, None, None, topology).n_points == 20 and trims == [1]
    assert isinstance(_reduce(torch.full((20, 2), float("nan")), None, None, topology), str) and trims == [1]


class Similarity(nn.Module):
    """Logits that score each sample against its batch, as CLIP's ``logits_per_image``: (n, n), no point each."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(3, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        embedded = self.embed(x)
        return embedded @ embedded.T


def test_an_output_whose_width_changes_with_the_pass_is_skipped_alone_with_the_reason():
    """The safety net under the monitor's check at train start (which an ``output_key`` by hand passes by)."""
    found = reduce_clouds(
        Similarity(), torch.randn(50, 3), {"all": None}, {"all": ["embed", "logits"]}, k=4, batch_size=20
    )
    assert "its width changes with the probe batch (10, 20 values per sample)" in found[("logits", "all")]
    assert not isinstance(found[("embed", "all")], str)
