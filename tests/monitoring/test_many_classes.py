"""Many classes on the default ``classes=None``: when the probe cannot give every class ``k + 1`` points (100 classes
in 1,000 points), the monitor watches ``probe_size // 100`` of them instead of measuring none."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from helpers.trainers import quiet_trainer
from helpers.user_models import NetClassifier
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_topo.callbacks import BettiMonitor


def _network(classes: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, classes))


def _data(classes: int, n: int = 12000) -> DataLoader:
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, 8, generator=generator), torch.arange(n) % classes
    return DataLoader(TensorDataset(x + y[:, None].float() / classes, y), batch_size=250, shuffle=True)


def _fit(tmp_path: Path, classes: int, **options) -> BettiMonitor:
    torch.manual_seed(0)
    monitor = BettiMonitor(log_figure=False, **options)
    quiet_trainer(tmp_path, max_epochs=1, callbacks=[monitor]).fit(NetClassifier(_network(classes)), _data(classes))
    return monitor


def test_a_hundred_classes_in_a_thousand_points_are_watched_ten_at_a_time(tmp_path: Path, caplog) -> None:
    with caplog.at_level(logging.INFO):
        monitor = _fit(tmp_path, 100)  # the defaults: probe_size=1000, k=14
    assert "would give each of the 100 classes 10, fewer than the 15 a class needs (k + 1), so it " in (caplog.text)
    labels = monitor.probe[1]
    assert len(labels) == 1000 and torch.bincount(labels).max() == 100 and len(torch.unique(labels)) == 10
    (entry,) = monitor.history
    assert not entry.get("skipped")  # every class was measured (none could be before)
    assert all(len(per_class) == 10 for per_class in entry["betti"].values())


def test_every_class_is_watched_where_the_probe_serves_them_all(tmp_path: Path, caplog) -> None:
    with caplog.at_level(logging.INFO):
        monitor = _fit(tmp_path, 20, probe_size=400, k=9)  # 20 points a class, k + 1 = 10
    assert len(torch.unique(monitor.probe[1])) == 20 and "a class needs" not in caplog.text


def test_a_probe_given_by_hand_keeps_its_classes_and_the_warning_says_why(tmp_path: Path) -> None:
    probe = (torch.randn(500, 8), torch.arange(500) % 100)
    with pytest.warns(UserWarning, match="fewer than k\\+1=15 per class, so no class can be measured"):
        monitor = _fit(tmp_path, 100, probe=probe)
    assert len(torch.unique(monitor.probe[1])) == 100


class Backbone(NetClassifier):
    """A backbone whose forward returns its 64 features (as a headless ``Dinov2Model`` or ``timm`` model with
    ``num_classes=0`` does), its head used in the training step alone."""

    def __init__(self, classes: int) -> None:
        super().__init__(nn.Sequential(nn.Linear(8, 64), nn.ReLU()))
        self.head = nn.Linear(64, classes)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return nn.functional.cross_entropy(self.head(self(x)), y)


@pytest.mark.parametrize(
    "model", [Backbone(3), NetClassifier(_network(100))], ids=["headless backbone", "head wider than the labels"]
)
def test_a_models_output_width_is_no_count_of_the_datas_classes(model: NetClassifier, tmp_path: Path, caplog) -> None:
    """64 features (or 100 logits) for 3 classes: it read 64 (100) classes and watched 1 of the 3, 30 points."""
    monitor = BettiMonitor(log_figure=False, probe_size=60, k=4)
    with caplog.at_level(logging.INFO):
        quiet_trainer(tmp_path, max_epochs=1, callbacks=[monitor]).fit(model, _data(3, n=600))
    assert torch.bincount(monitor.probe[1]).tolist() == [20, 20, 20] and "a class needs" not in caplog.text
