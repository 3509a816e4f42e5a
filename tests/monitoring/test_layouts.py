"""Which 3-D outputs are (batch, channels, steps): the traced pass's leaf modules decide, and token pooling then
averages those outputs' steps, not their channels."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from helpers.trainers import quiet_trainer
from torch import nn
from torch.nn.utils.parametrizations import weight_norm
from torch.utils.data import DataLoader

from lightning_topo.callbacks import BettiMonitor
from lightning_topo.monitoring.clouds import reduce_clouds
from lightning_topo.monitoring.layouts import channels_first_layers, layer_layouts
from lightning_topo.monitoring.outputs import CHANNELS_FIRST, per_sample
from lightning_topo.monitoring.trace import trace_forward
from lightning_topo.topology import numpy_neighbour_lists


class Transposed(nn.Module):
    """``(batch, channels, steps)`` -> ``(batch, steps, channels)``, as a speech model hands its features on."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(1, 2)


class ConvThenNorm(nn.Module):
    """Wav2Vec2's layer-norm conv unit: conv, a LayerNorm over the channels of the transposed steps, back."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, channels, 5, stride=2)
        self.norm = nn.LayerNorm(channels)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x).transpose(1, 2)).transpose(1, 2))


class ConvModule(nn.Module):
    """A Conformer's convolution module: (batch, steps, features) in and out, a 1-d convolution inside."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(features, features, 3, padding=1)
        self.out = nn.Linear(features, features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.conv(x.transpose(1, 2)).transpose(1, 2))


def _channels_first(net: nn.Module, example: torch.Tensor) -> list[str]:
    names = [name for name, _ in net.named_modules() if name]
    return channels_first_layers(net, trace_forward(net, example), names)


def test_a_1d_convolution_its_activation_and_a_unit_ending_in_one_are_channels_first() -> None:
    net = nn.Sequential(ConvThenNorm(6), nn.Conv1d(6, 4, 3), nn.ReLU(), nn.MaxPool1d(2), Transposed(), nn.Linear(4, 3))
    found = _channels_first(net, torch.zeros(2, 1, 41))
    # the unit (its LayerNorm saw the transposed steps), the conv, the GELU on the steps transposed back (the conv
    # ran before it in the unit), the next conv, its ReLU (fed by it), the pool; after the transpose the steps come
    # first and a Linear reads the features
    assert found == ["0", "0.conv", "0.act", "1", "2", "3"]


class Chomp(nn.Module):
    """A TCN's trim of the causal padding: the steps change, the channels stay."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, :-2]


class TemporalBlock(nn.Module):
    """A TCN block as users write it: ``relu(net(x) + x)``, the convs under ``weight_norm``, padding chomped."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        conv = lambda: weight_norm(nn.Conv1d(channels, channels, 3, padding=2))  # noqa: E731
        self.net = nn.Sequential(conv(), Chomp(), nn.ReLU(), conv(), Chomp(), nn.ReLU())
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.net(x) + x)


def test_convolutions_under_weight_norm_trims_and_activations_of_a_sum_are_read_through() -> None:
    net = nn.Sequential(TemporalBlock(6), TemporalBlock(6))
    found = _channels_first(net, torch.zeros(2, 6, 20))
    for block in ("0", "1"):  # the block, its ReLUs, its chomps, its convs (which hold their parametrization)
        assert {block, f"{block}.relu", f"{block}.net.2", f"{block}.net.5", f"{block}.net.1", f"{block}.net.0"} <= set(
            found
        )

    # the same block as the whole model: the sum in the model's own forward is read through what ran before it there
    alone = TemporalBlock(6)
    assert {"relu", "net.2", "net.5"} <= set(_channels_first(alone, torch.zeros(2, 6, 20)))


def test_token_outputs_and_units_that_hand_back_tokens_are_not_channels_first() -> None:
    net = nn.Sequential(nn.Linear(5, 6), ConvModule(6), nn.GELU(), nn.LayerNorm(6))
    assert _channels_first(net, torch.zeros(2, 9, 5)) == ["1.conv"]  # only the conv inside sees channels first


def test_a_square_output_or_a_layer_nothing_explains_keeps_the_token_reading() -> None:
    square = nn.Sequential(nn.Conv1d(4, 4, 1), nn.ReLU())
    assert _channels_first(square, torch.zeros(2, 4, 4)) == []  # steps == channels: either reading
    unexplained = nn.Sequential(Transposed(), nn.ReLU())  # no module fixes a layout
    assert _channels_first(unexplained, torch.zeros(2, 3, 5)) == []


def test_only_pooling_needs_the_layout_and_the_monitor_says_which_layers_it_pools_over_steps() -> None:
    net = nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8, 2))
    trace = trace_forward(net, torch.zeros(2, 1, 10))
    said: list[str] = []
    assert layer_layouts(net, trace, ["0", "1", "3"], None, said.append) == {} and not said
    assert layer_layouts(net, trace, ["0", "1", "3"], "mean", said.append) == dict.fromkeys(["0", "1"], CHANNELS_FIRST)
    assert said == [
        "BettiMonitor: 2 watched layers return (batch, channels, steps), as 1-d convolutions do (0, 1), so "
        "token_pooling='mean' pools their steps: one value per channel"
    ]


def test_pooling_a_channels_first_output_averages_its_steps_and_the_clouds_follow() -> None:
    out = torch.arange(2 * 3 * 5, dtype=torch.float32).reshape(2, 3, 5)
    torch.testing.assert_close(per_sample(out, "mean", layout=CHANNELS_FIRST), out.mean(2))
    torch.testing.assert_close(per_sample(out, "first", layout=CHANNELS_FIRST), out[:, :, 0])
    torch.testing.assert_close(per_sample(out, "last", layout=CHANNELS_FIRST), out[:, :, -1])
    assert per_sample(out, "mean").shape == (2, 5)  # the (batch, tokens, features) reading: a mean over channels

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv1d(1, 6, 5, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 18, 2)).eval()
    x = torch.randn(40, 1, 40)
    with torch.no_grad():
        expected = net[1](net[0](x)).mean(2)
    found = reduce_clouds(
        net, x, {"all": None}, {"all": ["1"]}, k=4, token_pooling="mean", layouts={"1": CHANNELS_FIRST}
    )
    assert (
        found[("1", "all")].indices.tolist() == numpy_neighbour_lists(expected.double().numpy(), k=4).indices.tolist()
    )
    stored = reduce_clouds(  # a cloud larger than a batch: its outputs stored, then pooled the same way
        net, x, {"all": None}, {"all": ["1"]}, k=4, token_pooling="mean", layouts={"1": CHANNELS_FIRST}, batch_size=16
    )
    assert stored[("1", "all")].indices.tolist() == found[("1", "all")].indices.tolist()
    labels = torch.arange(40) % 2  # the batched class route pools the same way
    clouds = {"0": labels == 0, "1": labels == 1}
    by_class = reduce_clouds(
        net, x, clouds, dict.fromkeys(clouds, ["1"]), k=4, token_pooling="mean", layouts={"1": CHANNELS_FIRST}
    )
    for name, members in clouds.items():
        own = numpy_neighbour_lists(expected[members].double().numpy(), k=4)
        assert by_class[("1", name)].indices.tolist() == own.indices.tolist()


class StridedTokens(nn.Module):
    """Token ids -> embeddings -> a strided convolution over the tokens: half as many tokens as the mask has."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(20, 4)
        self.down = nn.Conv1d(4, 6, 2, stride=2)
        self.mix = nn.Linear(6, 6)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.mix(self.down(self.embed(input_ids).transpose(1, 2)).transpose(1, 2))


def test_the_monitor_says_which_pooled_layers_the_attention_mask_cannot_reach() -> None:
    net = StridedTokens()
    example = {"input_ids": torch.ones(2, 8, dtype=torch.long), "attention_mask": torch.ones(2, 8)}
    trace = trace_forward(net, example)
    said: list[str] = []
    layers = ["embed", "down", "mix"]
    assert layer_layouts(net, trace, layers, "mean", said.append, example["attention_mask"]) == {"down": CHANNELS_FIRST}
    assert said[-1] == (
        "BettiMonitor: the attention mask cannot be read at the tokens of 2 watched layers (down, mix), so "
        "token_pooling='mean' reads their padding too; a probe of equal lengths (no padding) avoids it"
    )
    said.clear()  # the first token needs no mask
    layer_layouts(net, trace, layers, "first", said.append, example["attention_mask"])
    assert not any("attention mask" in line for line in said)


class TupleFramesAudio(pl.LightningModule):
    """An audio model whose own frame map returns ``(feature frames, output frames)``, as Qwen2-Audio's does."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 8, 4, stride=4)  # 4 samples a frame
        self.encoder = nn.Sequential(nn.Linear(8, 8), nn.GELU())
        self.head = nn.Linear(8, 2)

    def _get_feat_extract_output_lengths(self, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        frames = (lengths - 4) // 4 + 1
        return frames, frames

    def forward(self, input_values: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(self.conv(input_values[:, None]).transpose(1, 2)).mean(1))

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        labels = batch.pop("labels")
        return nn.functional.cross_entropy(self(**batch), labels)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=1e-3)


def test_a_frame_map_the_monitor_cannot_read_costs_the_mask_not_the_fit(tmp_path: Path) -> None:
    torch.manual_seed(0)
    data = []
    for row in range(32):
        length = 400 - 40 * (row % 3)
        values, mask = torch.zeros(400), torch.zeros(400, dtype=torch.long)
        values[:length], mask[:length] = torch.randn(length), 1
        data.append({"input_values": values, "attention_mask": mask, "labels": torch.tensor(row % 2)})
    monitor = BettiMonitor(probe_size=32, k=4, layers=["encoder.1"], token_pooling="mean", log_figure=False)
    quiet_trainer(tmp_path, max_epochs=1, callbacks=[monitor]).fit(TupleFramesAudio(), DataLoader(data, batch_size=8))
    assert set(monitor.history[-1]["betti"]["encoder.1"]) == {"0", "1"}  # measured, its padding read too


def test_the_channels_first_keyword_of_earlier_releases_still_works_with_a_deprecation_warning() -> None:
    out = torch.arange(2 * 3 * 5, dtype=torch.float32).reshape(2, 3, 5)
    with pytest.warns(DeprecationWarning, match="pass layout=CHANNELS_FIRST"):
        torch.testing.assert_close(per_sample(out, "mean", channels_first=True), out.mean(2))
    net = nn.Sequential(nn.Conv1d(1, 6, 5, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 18, 2)).eval()
    x = torch.randn(30, 1, 40, generator=torch.Generator().manual_seed(0))
    with pytest.warns(DeprecationWarning, match=r"reduce_clouds\(channels_first=\[...\]\) is deprecated"):
        old = reduce_clouds(net, x, {"all": None}, {"all": ["1"]}, k=4, token_pooling="mean", channels_first=["1"])
    new = reduce_clouds(net, x, {"all": None}, {"all": ["1"]}, k=4, token_pooling="mean", layouts={"1": CHANNELS_FIRST})
    assert old[("1", "all")].indices.tolist() == new[("1", "all")].indices.tolist()
