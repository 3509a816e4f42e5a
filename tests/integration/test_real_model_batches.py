"""Batch conventions of real models that the probe must respect (tiny configurations built here, no download):
per-batch padding with a model's own pad id (GPT-2), float audio padded beside an attention mask (Wav2Vec2), float
BCE labels and a one-logit binary head (timm)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from helpers.trainers import quiet_trainer
from helpers.user_models import HFClassifier
from torch import nn
from torch.utils.data import DataLoader

from lightning_topo.callbacks import BettiMonitor, BettiPruning

timm = pytest.importorskip("timm")
transformers = pytest.importorskip("transformers")


def _padded(items: list[tuple[torch.Tensor, int]], key: str, pad: float) -> dict[str, torch.Tensor]:
    """A collator's batch: sequences right-padded to the batch's longest with ``pad``, and their attention mask."""
    longest = max(len(seq) for seq, _ in items)
    values = torch.full((len(items), longest), pad, dtype=items[0][0].dtype)
    mask = torch.zeros(len(items), longest, dtype=torch.long)
    for row, (seq, _) in enumerate(items):
        values[row, : len(seq)], mask[row, : len(seq)] = seq, 1
    return {key: values, "attention_mask": mask, "labels": torch.tensor([label for _, label in items])}


def test_gpt2_probe_is_padded_with_its_own_pad_id_so_each_row_keeps_its_logits(tmp_path: Path) -> None:
    torch.manual_seed(0)
    pad = 99
    config = transformers.GPT2Config(
        vocab_size=100, n_positions=64, n_embd=32, n_layer=2, n_head=2, num_labels=2, pad_token_id=pad
    )
    net = transformers.GPT2ForSequenceClassification(config)
    generator = torch.Generator().manual_seed(0)
    lengths = torch.randint(3, 20, (32,), generator=generator)
    data = [(torch.randint(1, 90, (int(n),), generator=generator), i % 2) for i, n in enumerate(lengths)]
    loader = DataLoader(data, batch_size=8, collate_fn=lambda items: _padded(items, "input_ids", pad))
    monitor = BettiMonitor(probe_size=32, k=4, log_figure=False, layers="blocks")
    quiet_trainer(tmp_path, max_epochs=1, callbacks=[monitor]).fit(HFClassifier(net), loader)
    inputs, _ = monitor.probe
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    assert bool((ids[mask == 0] == pad).all())  # padded with 0 before: GPT-2 read its logits at a padding token
    net.eval()
    with torch.no_grad():
        probe_logits = net(**inputs).logits
        own = torch.cat([net(input_ids=ids[row : row + 1, : int(mask[row].sum())]).logits for row in range(len(ids))])
    torch.testing.assert_close(probe_logits, own, atol=1e-4, rtol=1e-4)
    assert monitor.history and all(monitor.history[-1]["betti"][layer] for layer in monitor.watched_layers)


def test_wav2vec2_float_audio_padded_per_batch_beside_its_mask_is_joined_and_measured(tmp_path: Path) -> None:
    torch.manual_seed(0)
    config = transformers.Wav2Vec2Config(
        vocab_size=10, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=20,
        conv_dim=(8, 8), conv_stride=(5, 4), conv_kernel=(10, 4), num_feat_extract_layers=2,
        num_conv_pos_embeddings=4, num_conv_pos_embedding_groups=2, num_labels=2, classifier_proj_size=8,
        feat_extract_norm="layer", do_stable_layer_norm=True, mask_time_prob=0.0,
    )  # fmt: skip
    generator = torch.Generator().manual_seed(0)
    lengths = torch.randint(800, 1600, (40,), generator=generator)
    data = [(torch.randn(int(n), generator=generator), i % 2) for i, n in enumerate(lengths)]
    loader = DataLoader(data, batch_size=8, collate_fn=lambda items: _padded(items, "input_values", 0.0))
    monitor = BettiMonitor(probe_size=24, k=4, log_figure=False, layers="blocks", token_pooling="mean")
    model = HFClassifier(transformers.Wav2Vec2ForSequenceClassification(config))
    quiet_trainer(tmp_path, max_epochs=1, callbacks=[monitor]).fit(model, loader)  # raised 'different shapes'
    values, mask = monitor.probe[0]["input_values"], monitor.probe[0]["attention_mask"]
    assert values.shape == mask.shape and values.shape[1] == int(mask.sum(1).max())
    assert bool((values[mask == 0] == 0).all())
    assert set(monitor.history[-1]["betti"]["logits"]) == {"0", "1"}


class OneLogit(pl.LightningModule):
    """A binary timm classifier as BCE users write it: one output, float 0/1 labels."""

    def __init__(self) -> None:
        super().__init__()
        self.model = timm.create_model("resnet18", pretrained=False, num_classes=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return nn.functional.binary_cross_entropy_with_logits(self(x).squeeze(1), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=1e-3)


def test_float_bce_labels_are_classes_to_the_monitor(tmp_path: Path) -> None:
    torch.manual_seed(0)
    x, y = torch.randn(48, 3, 32, 32), (torch.arange(48) % 2).float()
    monitor = BettiMonitor(probe_size=40, k=4, log_figure=False, layers="blocks")
    quiet_trainer(tmp_path, max_epochs=1, callbacks=[monitor]).fit(OneLogit(), DataLoader(list(zip(x, y)), 16))
    assert monitor.probe[1].dtype == torch.long  # bincount raised NotImplementedError on the float labels
    assert set(monitor.history[-1]["betti"]["logits"]) == {"0", "1"}


def test_soft_labels_are_one_cloud_and_the_reason_is_told(tmp_path: Path, caplog: Any) -> None:
    x, y = torch.randn(32, 3, 32, 32), torch.rand(32)  # soft targets: not classes
    monitor = BettiMonitor(probe_size=20, k=4, log_figure=False, layers="blocks")
    with caplog.at_level(logging.INFO):
        quiet_trainer(tmp_path, max_epochs=1, callbacks=[monitor]).fit(OneLogit(), DataLoader(list(zip(x, y)), 16))
    assert "fractional floats (soft targets" in caplog.text  # the fit used to stop here at train start
    assert set(monitor.history[-1]["betti"]["logits"]) == {"all"}


def test_pruning_measures_a_one_logit_model_by_the_sign_of_its_logit() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 1), nn.Flatten(), nn.Linear(8, 1)).eval()
    x = torch.randn(64, 1, 2, 2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = (model(x).squeeze(1) > 0).long()  # the model is right on every sample
    pruner = BettiPruning(amount=0.5, probe_size=20, k=4)
    pruner.set_probe(model, x, y)
    trainer = type("FitWithoutDataModule", (), {"datamodule": None, "val_dataloaders": DataLoader(list(zip(x, y)), 16)})
    assert pruner._accuracy(trainer, model) == 1.0  # argmax over one column said class 0: the share of zeros


class WholeBatch(HFClassifier):
    """A LightningModule whose ``forward`` takes the batch dict whole and unpacks it itself, a common Lightning
    pattern: ``self(batch).loss``."""

    def forward(self, batch: dict[str, torch.Tensor]) -> Any:  # type: ignore[override]
        return self.model(**batch)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self(batch).loss


def test_a_forward_that_takes_the_batch_dict_whole_is_called_with_it(tmp_path: Path) -> None:
    """It stopped the fit at train start: "forward() got an unexpected keyword argument 'input_ids'"."""
    config = transformers.BertConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=24, num_labels=3
    )
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(3, 50, (60, 10), generator=generator)
    batches = [
        {"input_ids": ids[i : i + 15], "attention_mask": torch.ones(15, 10, dtype=torch.long),
         "labels": torch.arange(i, i + 15) % 3}
        for i in range(0, 60, 15)
    ]  # fmt: skip
    monitor = BettiMonitor(layers="blocks", probe_size=60, k=4, log_figure=False)
    model = WholeBatch(transformers.BertForSequenceClassification(config))
    quiet_trainer(tmp_path, max_epochs=1, callbacks=[monitor]).fit(model, DataLoader(batches, batch_size=None))
    assert monitor.watched_layers == ["model.bert.encoder.layer.0", "model.bert.encoder.layer.1", "logits"]
    assert all(set(clouds) == {"0", "1", "2"} for clouds in monitor.history[-1]["betti"].values())


def test_a_forward_that_names_some_of_the_keys_is_called_with_keywords() -> None:
    from lightning_topo.monitoring.batches import call_model

    class Named(nn.Module):
        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
            return input_ids

    batch = {"input_ids": torch.ones(1, 2), "token_type_ids": torch.zeros(1, 2)}
    with pytest.raises(TypeError, match="unexpected keyword argument 'token_type_ids'"):  # the friendly error's cause
        call_model(Named(), batch)
    assert torch.equal(call_model(Named(), {"input_ids": torch.ones(1, 2)}), torch.ones(1, 2))

    class Whole(nn.Module):
        def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
            return batch["x"] * 2

    whole = torch.compile(Whole(), backend="eager")  # a compiled module's own forward is (*args, **kwargs)
    assert torch.equal(call_model(whole, {"x": torch.ones(1)}), torch.full((1,), 2.0))


def test_a_model_that_runs_one_sample_per_call_is_told_so_at_train_start(tmp_path: Path) -> None:
    """A Llama classifier with no pad token trains at batch size 1 (Hugging Face refuses more); the monitor's passes
    of several samples failed with an error that pointed at input_keys, label_key and forward_fn, none of which helps."""
    config = transformers.LlamaConfig(
        vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=2, num_labels=2, pad_token_id=None,
    )  # fmt: skip
    torch.manual_seed(0)
    model = transformers.LlamaForSequenceClassification(config)
    batches = [{"input_ids": torch.randint(1, 50, (1, 6)), "labels": torch.tensor([i % 2])} for i in range(40)]
    monitor = BettiMonitor(probe_size=20, k=4, log_figure=False)
    with pytest.raises(ValueError, match=r"runs on one sample of the probe but not on 2 together") as raised:
        quiet_trainer(tmp_path, max_epochs=1, callbacks=[monitor]).fit(
            HFClassifier(model), DataLoader(batches, batch_size=None)
        )
    assert "Cannot handle batch sizes > 1" in str(raised.value) and "pad_token_id" in str(raised.value)
    assert "input_keys" not in str(raised.value)
