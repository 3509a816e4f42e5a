"""Outputs of real models that hold no point per sample (a tiny timm Swin, built here, no download): a rule never
watches them, and a layer named by hand is skipped with the reason instead of measuring attention windows."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from helpers.trainers import quiet_trainer
from torch import nn
from torch.utils.data import DataLoader

from lightning_topo.callbacks import BettiMonitor

timm = pytest.importorskip("timm")


class SwinClassifier(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.model = timm.create_model(
            "swin_tiny_patch4_window7_224", pretrained=False, num_classes=2, img_size=32, patch_size=4,
            window_size=4, embed_dim=16, depths=(1, 1), num_heads=(1, 2),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return nn.functional.cross_entropy(self(batch[0]), batch[1])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=1e-3)


def _data() -> DataLoader:
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(40, 3, 32, 32, generator=generator), torch.arange(40) % 2
    return DataLoader(list(zip(x, y)), batch_size=20)


def test_the_default_rule_leaves_out_softmaxes_over_attention_windows(tmp_path: Path, caplog) -> None:
    torch.manual_seed(0)
    monitor = BettiMonitor(probe_size=40, k=4, log_figure=False, layers="activations")
    with caplog.at_level(logging.INFO):
        quiet_trainer(tmp_path, max_epochs=1, callbacks=[monitor]).fit(SwinClassifier(), _data())
    # stage 0 has 4 windows per image, so its softmax has 4 rows per sample; stage 1 has one window per image
    assert "model.layers.0.blocks.0.attn.softmax" not in monitor.watched_layers
    assert "model.layers.1.blocks.0.attn.softmax" in monitor.watched_layers
    assert any(name.endswith("act") for name in monitor.watched_layers)  # the MLPs' GELUs are one row per image
    assert "1 of the chosen layers give no row per sample (model.layers.0.blocks.0.attn.softmax (8 rows)" in caplog.text
    assert "so they are not watched; layers='blocks' watches the blocks that hold them" in caplog.text
    entry = monitor.history[-1]
    assert not entry.get("skipped") and set(entry["betti"]) == set(monitor.watched_layers)


def test_a_window_layer_named_by_hand_is_skipped_with_the_reason(tmp_path: Path) -> None:
    torch.manual_seed(0)
    monitor = BettiMonitor(probe_size=40, k=4, log_figure=False, layers=["model.layers.0.blocks.0.attn.softmax"])
    with pytest.warns(
        UserWarning, match=r"skipped layer 'model.layers.0.blocks.0.attn.softmax'.*160 rows for 40 samples"
    ):
        quiet_trainer(tmp_path, max_epochs=1, callbacks=[monitor]).fit(SwinClassifier(), _data())
    assert "model.layers.0.blocks.0.attn.softmax" not in monitor.history[-1]["betti"]
