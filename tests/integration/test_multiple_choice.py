"""Hugging Face multiple-choice models (tiny configurations built here, no download): ``(batch, choices, tokens)``
inputs, flattened inside to a row per choice, ``(batch * choices, tokens, features)``. A sample's point is its
choices' side by side, each pooled over its own tokens. The default used to watch the logits alone (with a warning
that it found no hidden layer), and ``layers='blocks'`` stopped the fit at train start."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from helpers.trainers import quiet_trainer
from helpers.user_models import HFClassifier
from torch.utils.data import DataLoader, TensorDataset

from lightning_topo.callbacks import BettiMonitor
from lightning_topo.monitoring import select_layers
from lightning_topo.monitoring.clouds import reduce_clouds
from lightning_topo.monitoring.layers import LOGITS
from lightning_topo.monitoring.layouts import layer_layouts
from lightning_topo.monitoring.outputs import (
    CHANNELS_FIRST_CHOICE_ROWS,
    CHOICE_ROWS,
    STEPS_FIRST_CHOICE_ROWS,
    select_tensor,
)
from lightning_topo.monitoring.trace import trace_forward
from lightning_topo.topology import numpy_neighbour_lists

transformers = pytest.importorskip("transformers")

CHOICES = 4


def _bert() -> Any:
    config = transformers.BertConfig(
        vocab_size=100, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32
    )
    return transformers.BertForMultipleChoice(config)


def _choices(n: int, seed: int = 0) -> list[tuple[list[torch.Tensor], int]]:
    """``n`` questions of ``CHOICES`` answers of 3 to 8 tokens each, and the right one's index."""
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(3, 9, (n, CHOICES), generator=generator).tolist()
    return [
        ([torch.randint(1, 100, (t,), generator=generator) for t in row], i % CHOICES) for i, row in enumerate(lengths)
    ]


def _collate(items: list[tuple[list[torch.Tensor], int]]) -> dict[str, torch.Tensor]:
    """As ``DataCollatorForMultipleChoice`` pads: every choice to the batch's longest, 0 and a 0 mask."""
    longest = max(len(choice) for choices, _ in items for choice in choices)
    ids = torch.zeros(len(items), CHOICES, longest, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, (choices, _) in enumerate(items):
        for column, choice in enumerate(choices):
            ids[row, column, : len(choice)], mask[row, column, : len(choice)] = choice, 1
    return {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([label for _, label in items])}


@pytest.mark.parametrize("layers", [None, "blocks"], ids=["default", "blocks"])
def test_a_multiple_choice_model_is_watched_at_its_layers(tmp_path: Path, caplog: Any, layers: str | None) -> None:
    torch.manual_seed(0)
    monitor = BettiMonitor(probe_size=64, k=3, log_figure=False, layers=layers, token_pooling="mean")
    with caplog.at_level(logging.INFO):
        quiet_trainer(tmp_path, max_epochs=1, limit_train_batches=2, callbacks=[monitor]).fit(
            HFClassifier(_bert()), DataLoader(_choices(64), batch_size=16, collate_fn=_collate)
        )
    hidden = [name for name in monitor.watched_layers if name != LOGITS]
    expected = ["model.bert.encoder.layer.0", "model.bert.encoder.layer.1"] if layers else 3
    assert hidden == expected if layers else len(hidden) == expected
    assert "give a row per choice of each sample" in caplog.text and "found no hidden layer" not in caplog.text
    (entry,) = monitor.history
    assert all(sorted(entry["betti"][name]) == ["0", "1", "2", "3"] for name in monitor.watched_layers)


def _xlnet() -> Any:
    config = transformers.XLNetConfig(vocab_size=100, d_model=16, n_layer=2, n_head=2, d_inner=32)
    return transformers.XLNetForMultipleChoice(config)


def _squeezebert() -> Any:
    config = transformers.SqueezeBertConfig(
        vocab_size=100, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
        embedding_size=16, q_groups=1, k_groups=1, v_groups=1, post_attention_groups=1, intermediate_groups=1,
        output_groups=1,
    )  # fmt: skip
    return transformers.SqueezeBertForMultipleChoice(config)


@pytest.mark.parametrize(
    ("make", "layer", "layout"),
    [
        (_bert, "bert.encoder.layer.1", CHOICE_ROWS),
        (_xlnet, "transformer.layer.1", STEPS_FIRST_CHOICE_ROWS),
        (_squeezebert, "transformer.encoder.layers.1.output.conv1d", CHANNELS_FIRST_CHOICE_ROWS),
    ],
    ids=["bert", "xlnet, sequence first", "squeezebert, channels first"],
)
def test_a_samples_point_is_its_choices_each_pooled_over_its_own_tokens(make: Any, layer: str, layout: str) -> None:
    """Against each choice run alone and unpadded, its tokens averaged, the choices joined in order. XLNet's layers
    are (tokens, batch * choices, features): they were left out, and stopped layers='blocks'. SqueezeBERT's 1-d
    convolutions give (batch * choices, channels, tokens): they were averaged over their channels."""
    torch.manual_seed(0)
    model = make().eval()
    batch = _collate(_choices(24, seed=1))
    inputs = {key: batch[key] for key in ("input_ids", "attention_mask")}
    trace = trace_forward(model, {key: value[:2] for key, value in inputs.items()}, lambda m, x: m(**x))
    assert trace.choices == CHOICES and trace.choice_rows(layer)
    assert trace.output_sample_dim() == 0  # the model's own (batch, choices) logits
    layouts = layer_layouts(model, trace, [layer, LOGITS], "mean")
    assert layouts == {layer: layout}
    found = reduce_clouds(model, inputs, {"all": None}, {"all": [layer]}, k=4, token_pooling="mean", layouts=layouts)
    module = dict(model.named_modules())[layer]
    outputs: list[torch.Tensor] = []
    handle = module.register_forward_hook(lambda m, a, out: outputs.append(select_tensor(out)))
    own = []
    for row in range(len(batch["labels"])):
        pooled = []
        for column in range(CHOICES):  # each choice alone, a question of one choice, unpadded
            length = int(batch["attention_mask"][row, column].sum())
            with torch.no_grad():
                model(input_ids=batch["input_ids"][row : row + 1, column : column + 1, :length])
            out = outputs.pop()[:, 0] if layout == STEPS_FIRST_CHOICE_ROWS else outputs.pop()[0]
            pooled.append(out.mean(1 if layout == CHANNELS_FIRST_CHOICE_ROWS else 0))
        own.append(torch.cat(pooled)[None])  # the choices side by side
    handle.remove()
    expected = numpy_neighbour_lists(torch.cat(own).double().numpy(), k=4)
    assert found[(layer, "all")].indices.tolist() == expected.indices.tolist()


@pytest.mark.parametrize(("make", "stack"), [(_bert, "bert.encoder.layer"), (_xlnet, "transformer.layer")])
def test_blocks_of_a_multiple_choice_model_are_found(make: Any, stack: str) -> None:
    example = {"input_ids": torch.randint(0, 100, (2, CHOICES, 6)), "attention_mask": torch.ones(2, CHOICES, 6)}
    assert select_layers(make(), "blocks", example) == [f"{stack}.0", f"{stack}.1", LOGITS]


class _IdsOnly(pl.LightningModule):
    """A user's module over ``(ids, labels)`` tuples: ``forward(input_ids)``, no dict anywhere."""

    def __init__(self) -> None:
        super().__init__()
        self.model = _bert()

    def forward(self, input_ids: torch.Tensor) -> Any:
        return self.model(input_ids=input_ids).logits

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(self(batch[0]), batch[1])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=1e-3)


def test_choices_of_a_tuple_batch_of_token_ids_are_read_as_a_dicts(tmp_path: Path, caplog: Any) -> None:
    generator = torch.Generator().manual_seed(0)
    ids, labels = torch.randint(1, 100, (64, CHOICES, 6), generator=generator), torch.arange(64) % CHOICES
    monitor = BettiMonitor(probe_size=64, k=3, log_figure=False, token_pooling="mean")
    with caplog.at_level(logging.INFO):
        quiet_trainer(tmp_path, max_epochs=1, limit_train_batches=1, callbacks=[monitor]).fit(
            _IdsOnly(), DataLoader(TensorDataset(ids, labels), batch_size=16)
        )
    assert len(monitor.watched_layers) == 4 and "give a row per choice of each sample" in caplog.text
    (entry,) = monitor.history
    assert all(sorted(entry["betti"][name]) == ["0", "1", "2", "3"] for name in monitor.watched_layers)


class _CharacterTagger(torch.nn.Module):
    """A character-level model: (batch, words, characters) ids, a row per word inside, three classes out."""

    def __init__(self) -> None:
        super().__init__()
        self.embed, self.mix, self.head = torch.nn.Embedding(50, 8), torch.nn.Linear(8, 8), torch.nn.Linear(32, 3)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        words = self.mix(self.embed(ids.flatten(0, 1))).amax(1)  # (batch * words, features)
        return self.head(words.reshape(len(ids), -1))


def test_words_of_characters_are_no_choices() -> None:
    """Its (batch, 4 words, characters) ids are laid out as a multiple-choice batch, but its logits score no word."""
    trace = trace_forward(_CharacterTagger(), torch.randint(0, 50, (2, 4, 6)), lambda m, x: m(x))
    assert trace.choices == 0 and not trace.one_row_per_sample("mix")
