"""Sequence-first outputs, ``(steps, batch, ...)``, as PyTorch's ``nn.TransformerEncoder``, ``nn.LSTM`` and ``nn.GRU``
return them without ``batch_first``: the trace's second pass, with one sample more, tells their samples' dimension,
the layer rules find them, and each sample's point is its own column, even where the steps number the samples."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from helpers.trainers import quiet_trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_topo.callbacks import BettiMonitor
from lightning_topo.monitoring.clouds import reduce_clouds
from lightning_topo.monitoring.layouts import layer_layouts, steps_first_layers
from lightning_topo.monitoring.outputs import STEPS_FIRST, per_sample
from lightning_topo.monitoring.trace import forward_order, trace_forward
from lightning_topo.topology import numpy_neighbour_lists


class SequenceFirstEncoder(pl.LightningModule):
    """A classifier over ``(batch, steps, 4)`` sequences with PyTorch's own encoder, sequence first (its default)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(4, 16)
        layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0)  # batch_first=False
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(self.embed(x).transpose(0, 1)).mean(0))

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


class SequenceFirstLSTM(SequenceFirstEncoder):
    """The same classifier with an LSTM, sequence first, read at its last step."""

    def __init__(self) -> None:
        super().__init__()
        del self.encoder
        self.lstm = nn.LSTM(16, 8)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.lstm(self.embed(x).transpose(0, 1))[0][-1])


def _own_points(model: nn.Module, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Each sample's own output of ``module``: its column of the ``(steps, batch, features)`` output, flattened."""
    seen: list[torch.Tensor] = []
    handle = module.register_forward_hook(lambda m, a, out: seen.append(out[0] if isinstance(out, tuple) else out))
    with torch.no_grad():
        model.eval()(x)
    handle.remove()
    return seen[0].transpose(0, 1).reshape(len(x), -1)


@pytest.mark.parametrize("steps", [7, 2])  # 2: as many steps as the traced samples, which the first dimension hid
def test_the_trace_finds_the_samples_in_the_second_dimension_of_a_sequence_first_output(steps: int) -> None:
    model = SequenceFirstEncoder()
    trace = trace_forward(model, torch.zeros(2, steps, 4))
    assert trace.shapes["encoder.layers.0"] == (steps, 2, 16)
    assert trace.sample_dim("encoder.layers.0") == 1 and trace.sample_dim("encoder.layers.0.linear1") == 1
    assert trace.sample_dim("embed") == 0 and trace.sample_dim("head") == 0
    assert steps_first_layers(trace, ["embed", "encoder.layers.0", "encoder.layers.1", "head"]) == [
        "encoder.layers.0",
        "encoder.layers.1",
    ]


class Windows(nn.Module):
    """Outputs that hold no row per sample: attention windows (two per sample), a table of the steps alone and a
    batch's similarity matrix, beside one that does."""

    def __init__(self) -> None:
        super().__init__()
        self.windows, self.table, self.similarity, self.rows = (
            nn.Identity(),
            nn.Identity(),
            nn.Identity(),
            nn.Linear(4, 4),
        )
        self.steps = nn.Parameter(torch.ones(2, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.windows(x.reshape(len(x) * 2, -1))
        table = self.table(self.steps * 1.0)  # (2, 4): as many rows as the traced samples, none of them a sample
        self.similarity(x @ x.T)
        return self.rows(x) + table.sum()


def test_outputs_with_no_row_per_sample_are_not_taken_for_samples_even_when_their_rows_count_them() -> None:
    trace = trace_forward(Windows(), torch.zeros(2, 4))
    assert trace.shapes["table"] == (2, 4) and trace.shapes["similarity"] == (2, 2)
    assert [trace.sample_dim(name) for name in ("windows", "table", "similarity", "rows")] == [None, None, None, 0]
    assert not trace.one_row_per_sample("table") and trace.one_row_per_sample("rows")


class OneBatchSize(nn.Module):
    """A model built for one batch size (a hard-coded reshape): the second look cannot run, and the first dimension
    is taken for the samples where it counts them, as before."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).reshape(2, 4)


def test_a_model_that_runs_on_one_batch_size_only_is_traced_as_before() -> None:
    trace = trace_forward(OneBatchSize(), torch.zeros(2, 4))
    assert trace.grown == {} and trace.sample_dim("linear") == 0


def test_a_sequence_first_output_gives_each_sample_its_column() -> None:
    out = torch.arange(3 * 2 * 4, dtype=torch.float32).reshape(3, 2, 4)  # (steps, batch, features)
    torch.testing.assert_close(per_sample(out, None, rows=2, layout=STEPS_FIRST), out.transpose(0, 1).reshape(2, 12))
    torch.testing.assert_close(per_sample(out, "mean", rows=2, layout=STEPS_FIRST), out.mean(0))
    torch.testing.assert_close(per_sample(out, "last", rows=2, layout=STEPS_FIRST), out[-1])
    with pytest.raises(ValueError, match="3 rows for 2 samples"):  # read as (batch, ...): no point per sample
        per_sample(out, None, rows=2)


@pytest.mark.parametrize("module", ["encoder.layers.1", "lstm"])
@pytest.mark.parametrize("batch_size", [12, 5])  # 12: one pass over each class's 12 samples, as long as the sequences
def test_each_point_of_a_sequence_first_layer_is_one_samples_own(module: str, batch_size: int) -> None:
    torch.manual_seed(0)
    model = SequenceFirstEncoder() if module.startswith("encoder") else SequenceFirstLSTM()
    x, labels = torch.randn(24, 12, 4), torch.arange(24) % 2
    layouts = layer_layouts(model, trace_forward(model, x[:2]), [module], token_pooling=None)
    assert layouts == {module: STEPS_FIRST}
    clouds = {"0": labels == 0, "1": labels == 1}
    found = reduce_clouds(
        model, x, clouds, dict.fromkeys(clouds, [module]), k=4, layouts=layouts, batch_size=batch_size
    )
    own = _own_points(model, model.get_submodule(module), x)
    for name, members in clouds.items():
        expected = numpy_neighbour_lists(own[members].double().numpy(), k=4)
        assert found[(module, name)].indices.tolist() == expected.indices.tolist()


def _fit(model: pl.LightningModule, monitor: BettiMonitor, tmp_path: Path) -> None:
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(60, 12, 4), torch.arange(60) % 3)
    quiet_trainer(tmp_path, max_epochs=1, callbacks=[monitor]).fit(model, DataLoader(data, batch_size=20))


def test_the_blocks_of_a_sequence_first_transformer_are_watched_and_the_monitor_says_how_it_reads_them(
    tmp_path: Path, caplog
) -> None:
    monitor = BettiMonitor(layers="blocks", probe_size=60, k=4, log_figure=False)
    with caplog.at_level(logging.INFO):
        _fit(SequenceFirstEncoder(), monitor, tmp_path)  # it stopped at train start: "no repeated block"
    assert monitor.watched_layers == ["input", "encoder.layers.0", "encoder.layers.1", "logits"]
    betti = monitor.history[-1]["betti"]
    assert all(betti[layer].keys() == {"0", "1", "2"} for layer in monitor.watched_layers)
    assert "2 watched layers are laid out sequence first, (steps, batch, ...)" in caplog.text


def test_by_default_the_monitor_watches_the_blocks_of_a_sequence_first_model_with_no_activation_module(
    tmp_path: Path,
) -> None:
    monitor = BettiMonitor(probe_size=60, k=4, log_figure=False)  # it used to watch the logits alone
    _fit(SequenceFirstEncoder(), monitor, tmp_path)
    assert monitor.watched_layers == ["input", "encoder.layers.0", "encoder.layers.1", "logits"]


def test_the_trace_of_inputs_that_cannot_be_indexed_by_sample_is_taken_as_before() -> None:
    """A 0-d tensor beside the inputs (a temperature): the second look cannot index it, and is passed over."""

    class Scaled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(2, 2)

        def forward(self, x: torch.Tensor, temperature: torch.Tensor) -> torch.Tensor:
            return self.linear(x) / temperature

    assert forward_order(Scaled(), (torch.zeros(2, 2), torch.tensor(2.0))) == ["linear"]


def test_a_traced_pass_takes_no_draw_from_the_training_runs_random_numbers() -> None:
    """A model that samples in eval mode (a VAE's reparameterisation) drew twice at train start once the trace took
    a second look; the trace now leaves the generator as it found it."""

    class Sampling(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(2, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.linear(x) + torch.randn_like(x)

    torch.manual_seed(0)
    trace_forward(Sampling(), torch.zeros(2, 2))
    after = torch.rand(1)
    torch.manual_seed(0)
    Sampling()
    assert torch.equal(torch.rand(1), after)


class SequenceFirstTagger(SequenceFirstEncoder):
    """A sequence-first model whose own output is ``(steps, batch, classes)`` too, its loss on the last step."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(self.embed(x).transpose(0, 1)))

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self(x)[-1], y)


def test_a_sequence_first_models_logits_give_each_sample_its_column(tmp_path: Path) -> None:
    """They were skipped at every measurement (12 rows for 20 samples), or read over the steps when the sequence was
    as long as a pass."""
    monitor = BettiMonitor(probe_size=60, k=4, log_figure=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no layer skipped
        _fit(SequenceFirstTagger(), monitor, tmp_path)
    assert monitor.history[-1]["betti"]["logits"].keys() == {"0", "1", "2"}
    model, x = SequenceFirstTagger(), monitor.probe[0]
    found = reduce_clouds(model, x, {"all": None}, {"all": ["logits"]}, k=4, layouts={"logits": STEPS_FIRST})
    with torch.no_grad():
        own = model.eval()(x).transpose(0, 1).reshape(len(x), -1)
    expected = numpy_neighbour_lists(own.double().numpy(), k=4)
    assert found[("logits", "all")].indices.tolist() == expected.indices.tolist()
