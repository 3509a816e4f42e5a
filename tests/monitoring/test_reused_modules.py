"""A module that runs more than once in a forward pass (``self.act`` called after every layer, a ResNet block's
``relu``): each call is a layer of its own, ``name-callK`` its ``K``-th and the plain name its last, so the activation
rule watches every depth (it used to watch the last call alone, without a word)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from helpers.trainers import quiet_trainer
from helpers.user_models import NetClassifier, blobs
from torch import nn
from torch.utils.data import DataLoader

from lightning_topo.callbacks import BettiMonitor, BettiPruning
from lightning_topo.monitoring.capture import capture_activations
from lightning_topo.monitoring.clouds import reduce_clouds
from lightning_topo.monitoring.layers import select_layers
from lightning_topo.monitoring.layouts import channels_first_layers
from lightning_topo.monitoring.trace import trace_forward
from lightning_topo.topology import numpy_neighbour_lists
from lightning_topo.topology.intrinsic import lists_intrinsic_dimension


class SharedActivation(nn.Module):
    """Three layers of different widths, one ReLU module called after each."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(4, 12), nn.Linear(12, 8), nn.Linear(8, 6)
        self.act = nn.ReLU()
        self.head = nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.act(self.fc3(self.act(self.fc2(self.act(self.fc1(x)))))))


def _each_call(model: SharedActivation, x: torch.Tensor) -> list[torch.Tensor]:
    outputs: list[torch.Tensor] = []
    handle = model.act.register_forward_hook(lambda m, a, out: outputs.append(out.detach()))
    with torch.no_grad():
        model(x)
    handle.remove()
    return outputs


def test_each_call_has_a_name_a_shape_and_a_place_in_the_forward_order() -> None:
    model = SharedActivation()
    trace = trace_forward(model, torch.zeros(2, 4))
    assert trace.calls == {"act": 3} and trace.call_names("act") == ["act-call1", "act-call2", "act"]
    assert [trace.shapes[name] for name in trace.call_names("act")] == [(2, 12), (2, 8), (2, 6)]
    # what fed each call; the plain name keeps its first call's feeder, as every module does
    feeders = [trace.fed_by[name] for name in ("act-call1", "act-call2", "act", "fc2", "head")]
    assert feeders == ["fc1", "fc2", "fc1", "act-call1", "act"]
    example = torch.zeros(2, 4)
    assert select_layers(model, None, example) == ["act-call1", "act-call2", "act", "logits"]
    assert select_layers(model, ["head", "act*", "fc*"], example) == [
        "fc1",
        "act-call1",
        "fc2",
        "act-call2",
        "fc3",
        "act",
        "head",
    ]
    assert select_layers(model, ["act-call2"], example) == ["act-call2"]  # a call named by hand
    assert select_layers(model, ["act"], example) == ["act"]  # the module's name: its last call, as before
    with pytest.raises(ValueError, match="'act-call4' matches no module"):
        select_layers(model, ["act-call4"], example)


@pytest.mark.parametrize("batch_size", [64, 16])  # one pass per cloud, and a cloud larger than a batch
def test_every_call_is_measured_at_its_own_depth(batch_size: int) -> None:
    torch.manual_seed(0)
    model = SharedActivation().eval()
    x = torch.randn(64, 4)
    layers = ["act-call1", "act-call2", "act"]
    found = reduce_clouds(model, x, {"all": None}, {"all": layers}, k=4, batch_size=batch_size)
    captured = capture_activations(model, x, layers, batch_size=batch_size)
    for name, output in zip(layers, _each_call(model, x)):
        assert torch.equal(captured[name], output)
        expected = numpy_neighbour_lists(output.double().numpy(), k=4)
        assert found[(name, "all")].indices.tolist() == expected.indices.tolist()


def test_the_monitor_watches_each_call_and_says_how_they_are_named(tmp_path: Path, caplog) -> None:
    torch.manual_seed(0)
    model = NetClassifier(SharedActivation())
    monitor = BettiMonitor(probe_size=128, k=6, log_figure=False, intrinsic_dimension=True)
    with caplog.at_level(logging.INFO):
        quiet_trainer(tmp_path, max_epochs=2, callbacks=[monitor]).fit(model, DataLoader(blobs(), batch_size=64))
    calls = ["net.act-call1", "net.act-call2", "net.act"]
    assert monitor.watched_layers == ["input", *calls, "logits"]
    assert "1 watched modules run more than once in a forward pass (net.act, 3 calls)" in caplog.text
    entry = monitor.compute(model)
    inputs, labels = monitor.probe
    for name, output in zip(calls, _each_call(model.net.eval(), inputs)):
        for cloud in ("0", "1"):
            lists = numpy_neighbour_lists(output[labels == int(cloud)].double().numpy(), k=6)
            assert entry["id"][name][cloud] == pytest.approx(lists_intrinsic_dimension(lists), rel=1e-9)


def _block() -> nn.Sequential:
    return nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8))


class Looped(nn.Module):
    """Numbered attribute blocks run twice over (a weight-shared recurrence)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem, self.head = nn.Linear(4, 8), nn.Linear(8, 2)
        self.layer1, self.layer2, self.layer3 = _block(), _block(), _block()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for _ in range(2):
            x = self.layer3(self.layer2(self.layer1(x)))
        return self.head(x)


def test_blocks_that_run_twice_still_feed_each_other() -> None:
    """``layer2`` is fed by a call of ``layer1`` (``layer1-call1``): still the block after it; and each call of each
    block is a block, at its depth."""
    calls = ["layer1-call1", "layer2-call1", "layer3-call1", "layer1", "layer2", "layer3"]
    assert select_layers(Looped(), "blocks", torch.zeros(2, 4)) == [*calls, "logits"]


class SharedConvolutions(nn.Module):
    """One ReLU after two 1-d convolutions of different widths, and one convolution block applied twice."""

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.c2, self.act = nn.Conv1d(1, 6, 3), nn.Conv1d(6, 10, 3), nn.ReLU()
        self.block = nn.Sequential(nn.Conv1d(10, 10, 3, padding=1))
        self.after1, self.after2 = nn.ReLU(), nn.ReLU()
        self.head = nn.Linear(10, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.c2(self.act(self.c1(x))))
        h = self.after2(self.block(self.after1(self.block(h))))
        return self.head(h.mean(-1))


def test_each_call_is_read_as_channels_first_through_what_fed_that_call() -> None:
    net = SharedConvolutions()
    trace = trace_forward(net, torch.zeros(2, 1, 32))
    assert trace.fed_by["act"] == "c1" and trace.last_fed_by["act"] == "c2"  # the plain name is its last call
    layers = ["act-call1", "act", "after1", "after2"]
    assert channels_first_layers(net, trace, layers) == layers


class ConvolutionTwice(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1)
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv2(self.conv2(self.conv1(x))).mean((2, 3)))


def test_the_pruner_takes_a_convolution_that_runs_twice_once() -> None:
    pruner = BettiPruning(layers=["conv*"])
    pruner.set_probe(ConvolutionTwice(), torch.randn(40, 1, 8, 8), torch.arange(40) % 2)
    assert pruner._convs == ["conv1", "conv2"]  # not conv2-call1: a call has no filters of its own
