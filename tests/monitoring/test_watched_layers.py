"""What the default rule watches when a model's activations hold no row per sample (PatchTST's per-channel
feed-forward), and what it says when it finds nothing."""

from __future__ import annotations

import torch
from torch import nn

from lightning_topo.monitoring.batches import call_model
from lightning_topo.monitoring.watched_layers import watched_layers


class PerChannel(nn.Module):
    """Each of a sample's channels through the same MLP, as (sample x channel) rows (a channel-independent model)."""

    def __init__(self, steps: int) -> None:
        super().__init__()
        self.fc, self.act = nn.Linear(steps, steps), nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, steps = x.shape
        return self.act(self.fc(x.reshape(batch * channels, steps))).reshape(batch, channels, steps)


class Encoder(nn.Module):
    def __init__(self, depth: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList([PerChannel(5) for _ in range(depth)])
        self.head = nn.Linear(3 * 5, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return self.head(x.flatten(1))


def _watch(model: nn.Module) -> tuple[list[str], list[str], list[str]]:
    said, warned = [], []
    found = watched_layers(model, None, torch.randn(2, 3, 5), call_model, False, said.append, warned.append)
    return found, said, warned


def test_the_default_watches_the_blocks_when_no_activation_holds_a_row_per_sample() -> None:
    found, said, warned = _watch(Encoder(depth=2))
    assert found == ["layers.0", "layers.1", "logits"]  # it watched nothing but the logits before
    assert not warned
    assert any("or none with a row per sample), so it watches the outputs of its 2 blocks" in line for line in said)


def test_the_warning_says_why_nothing_is_watched() -> None:
    found, _, warned = _watch(Encoder(depth=1))  # one layer: no repeated blocks either
    assert found == ["logits"]
    assert "(its 1 chosen layers hold no row per sample, and no repeated block holds one)" in warned[0]
    found, _, warned = _watch(nn.Sequential(nn.Flatten(), nn.Linear(15, 2)))
    assert found == ["logits"] and "(no activation module and no repeated blocks)" in warned[0]


def test_the_default_warns_when_it_watches_every_one_of_many_activations() -> None:
    """No repeated blocks to fall back on (a NASNet's cells, each of another class, do not feed each other in
    turn): every activation is watched, and the warning says so and how to watch fewer."""
    model = nn.Sequential(*[m for _ in range(40) for m in (nn.Linear(15, 15), nn.ReLU())], nn.Linear(15, 2))
    found, _, warned = _watch(nn.Sequential(nn.Flatten(), model))
    assert len(found) == 41
    assert (
        "has 40 activation modules with a row per sample and no repeated blocks, so the default watches all 40"
        in (warned[0])
    )
    assert warned[0].endswith("its top-level modules: 1")
    found, _, warned = _watch(nn.Sequential(nn.Flatten(), *list(model)[:40], nn.Linear(15, 2)))
    assert len(found) == 21 and not warned  # 20 activations: the default rule as it is


class PerChannelResidual(nn.Module):
    """A residual block run on (sample x channel) rows: a block that holds no row per sample either."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.ff = nn.Sequential(nn.Linear(features, features), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.ff(x)


class ChannelIndependent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(5, 8)
        self.layers = nn.ModuleList([PerChannelResidual(8) for _ in range(2)])
        self.head = nn.Linear(3 * 8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = self.embed(x.reshape(-1, 5))
        for layer in self.layers:
            rows = layer(rows)
        return self.head(rows.reshape(len(x), -1))


def test_layers_blocks_is_suggested_only_where_the_blocks_hold_a_row_per_sample() -> None:
    found, said, warned = _watch(ChannelIndependent())
    assert found == ["logits"]
    assert "2 of the chosen layers give no row per sample" in said[0] and "layers='blocks'" not in said[0]
    assert "(its 2 chosen layers hold no row per sample, and no repeated block holds one)" in warned[0]


class _SkipsItsDropout(nn.Module):
    """Attention as fused kernels run it: ``self.dropout`` exists but the forward pass never calls it."""

    def __init__(self) -> None:
        super().__init__()
        self.query, self.key, self.dropout = nn.Linear(4, 4), nn.Linear(4, 4), nn.Dropout(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.query(x) * self.key(x)


def test_a_glob_passes_over_the_modules_it_matches_that_never_run() -> None:
    """A glob that matched a never-called dropout used to skip every measurement of the fit (the uncalled layer had
    no output to size the passes by); a pattern whose every match never runs still raises."""
    import pytest

    from lightning_topo.callbacks import BettiMonitor

    net = nn.Sequential(_SkipsItsDropout(), nn.ReLU(), nn.Linear(4, 2))
    x = torch.randn(60, 4, generator=torch.Generator().manual_seed(0))
    assert watched_layers(net, ["0.*"], x, call_model, include_input=False) == ["0.query", "0.key"]
    monitor = BettiMonitor(layers=["0.*"], k=4, log_figure=False)
    monitor.set_probe(x, torch.arange(60) % 2, model=net)
    result = monitor.compute(net)["betti"]
    assert set(result) == {"input", "0.query", "0.key"} and all(
        isinstance(v, list) for c in result.values() for v in c.values()
    )
    with pytest.raises(ValueError, match=r"layer '0.dropout' is never called in the forward pass"):
        watched_layers(net, ["0.dropout"], x, call_model, include_input=False)


def test_the_logits_alone_asked_for_by_name_draw_no_warning_of_a_model_without_hidden_layers() -> None:
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    said: list[str] = []
    x = torch.randn(8, 4)
    assert watched_layers(net, ["logits"], x, call_model, False, said.append, said.append) == ["logits"]
    assert not any("found no hidden layer" in line for line in said)  # it said so, though net has a ReLU
    bare = nn.Sequential(nn.Linear(4, 2))  # a rule that finds nothing still says so
    watched_layers(bare, None, x, call_model, False, said.append, said.append)
    assert any("found no hidden layer to watch in Sequential" in line for line in said)
