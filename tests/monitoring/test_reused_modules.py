"""A module that runs more than once in a forward pass (``self.act`` called after every layer, a ResNet block's
``relu``): each call is a layer of its own, ``name@k`` its ``k``-th and the plain name its last, so the activation
rule watches every depth (it used to watch the last call alone, without a word)."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from helpers.trainers import quiet_trainer
from helpers.user_models import blobs
from torch import nn
from torch.utils.data import DataLoader

from lightning_topo.callbacks import BettiMonitor
from lightning_topo.monitoring.capture import capture_activations
from lightning_topo.monitoring.clouds import reduce_clouds
from lightning_topo.monitoring.layers import select_layers
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
    assert trace.calls == {"act": 3} and trace.call_names("act") == ["act@1", "act@2", "act"]
    assert [trace.shapes[name] for name in trace.call_names("act")] == [(2, 12), (2, 8), (2, 6)]
    # what fed each call; the plain name keeps its first call's feeder, as every module does
    feeders = [trace.fed_by[name] for name in ("act@1", "act@2", "act", "fc2", "head")]
    assert feeders == ["fc1", "fc2", "fc1", "act@1", "act"]
    example = torch.zeros(2, 4)
    assert select_layers(model, None, example) == ["act@1", "act@2", "act", "logits"]
    assert select_layers(model, ["head", "act*", "fc*"], example) == [
        "fc1",
        "act@1",
        "fc2",
        "act@2",
        "fc3",
        "act",
        "head",
    ]
    assert select_layers(model, ["act@2"], example) == ["act@2"]  # a call named by hand
    assert select_layers(model, ["act"], example) == ["act"]  # the module's name: its last call, as before
    with pytest.raises(ValueError, match="'act@4' matches no module"):
        select_layers(model, ["act@4"], example)


@pytest.mark.parametrize("batch_size", [64, 16])  # one pass per cloud, and a cloud larger than a batch
def test_every_call_is_measured_at_its_own_depth(batch_size: int) -> None:
    torch.manual_seed(0)
    model = SharedActivation().eval()
    x = torch.randn(64, 4)
    layers = ["act@1", "act@2", "act"]
    found = reduce_clouds(model, x, {"all": None}, {"all": layers}, k=4, batch_size=batch_size)
    captured = capture_activations(model, x, layers, batch_size=batch_size)
    for name, output in zip(layers, _each_call(model, x)):
        assert torch.equal(captured[name], output)
        expected = numpy_neighbour_lists(output.double().numpy(), k=4)
        assert found[(name, "all")].indices.tolist() == expected.indices.tolist()


class Classifier(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = SharedActivation()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        return nn.functional.cross_entropy(self(batch[0]), batch[1])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=0.01)


def test_the_monitor_watches_each_call_and_says_how_they_are_named(tmp_path: Path, caplog) -> None:
    torch.manual_seed(0)
    model = Classifier()
    monitor = BettiMonitor(probe_size=128, k=6, log_figure=False, intrinsic_dimension=True)
    with caplog.at_level(logging.INFO):
        quiet_trainer(tmp_path, max_epochs=2, callbacks=[monitor]).fit(model, DataLoader(blobs(), batch_size=64))
    calls = ["net.act@1", "net.act@2", "net.act"]
    assert monitor.watched_layers == ["input", *calls, "logits"]
    assert "1 watched modules run more than once in a forward pass (net.act, 3 calls)" in caplog.text
    entry = monitor.compute(model)
    inputs, labels = monitor.probe
    for name, output in zip(calls, _each_call(model.net.eval(), inputs)):
        for cloud in ("0", "1"):
            lists = numpy_neighbour_lists(output[labels == int(cloud)].double().numpy(), k=6)
            assert entry["id"][name][cloud] == pytest.approx(lists_intrinsic_dimension(lists), rel=1e-9)
