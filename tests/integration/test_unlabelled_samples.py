"""Samples with a negative label, no class: a semi-supervised loader's unlabelled ones (-1) and those a loss ignores
(``ignore_index=-100``). The probe is drawn from the labelled samples and says so, no class cloud holds the
others, and the pruner's accuracy counts the labelled ones alone. Such a batch used to stop the fit at train start
(``RuntimeError: bincount only supports ... non-negative``)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from helpers.image_streams import images
from helpers.trainers import quiet_trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_topo.callbacks import BettiMonitor, BettiPruning
from lightning_topo.models import CNNClassifier
from lightning_topo.monitoring.probe import probe_from_batches
from lightning_topo.monitoring.sharing import class_clouds


class IgnoringLoss(pl.LightningModule):
    """A small network whose cross-entropy ignores the samples labelled ``ignored``."""

    def __init__(self, ignored: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
        self.ignored = ignored

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return nn.functional.cross_entropy(self(x), y, ignore_index=self.ignored)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=1e-2)


def _partly_labelled(ignored: int, n: int = 240, every: int = 2) -> TensorDataset:
    """Classes 0, 1, 2 in turn, every ``every``-th sample's label ``ignored``."""
    labels = torch.arange(n) % 3
    labels[::every] = ignored
    return TensorDataset(torch.randn(n, 4, generator=torch.Generator().manual_seed(0)), labels)


@pytest.mark.parametrize("ignored", [-1, -100], ids=["unlabelled -1", "ignore_index -100"])
def test_the_probe_is_drawn_from_the_labelled_samples_and_the_monitor_says_so(
    ignored: int, tmp_path: Path, caplog: Any
) -> None:
    monitor = BettiMonitor(probe_size=60, k=4, log_figure=False)
    loader = DataLoader(_partly_labelled(ignored), batch_size=20, shuffle=True)
    with caplog.at_level(logging.INFO):
        quiet_trainer(tmp_path, max_epochs=1, callbacks=[monitor]).fit(IgnoringLoss(ignored), loader)
    labels = monitor.probe[1]
    assert sorted(torch.bincount(labels).tolist()) == [20, 20, 20]  # balanced over the classes, none negative
    assert "have a negative label, no class (-1 marks unlabelled samples, -100 a loss's ignore_index)" in caplog.text
    assert all(set(clouds) == {"0", "1", "2"} for clouds in monitor.history[-1]["betti"].values())


def test_batches_with_no_labelled_sample_at_all_are_measured_as_one_cloud(tmp_path: Path, caplog: Any) -> None:
    monitor = BettiMonitor(probe_size=60, k=4, log_figure=False)
    loader = DataLoader(_partly_labelled(-1, every=1), batch_size=20)
    with caplog.at_level(logging.INFO):
        quiet_trainer(tmp_path, max_epochs=1, callbacks=[monitor]).fit(IgnoringLoss(-1), loader)
    assert len(monitor.probe[1]) == 60
    assert "every label of the 240 samples read is negative, no class" in caplog.text  # the whole loader
    assert all(set(clouds) == {"all"} for clouds in monitor.history[-1]["betti"].values())


def test_a_probe_that_holds_unlabelled_points_puts_them_in_no_class_cloud() -> None:
    clouds = class_clouds(torch.tensor([0, -1, 1, -100, 0, 1]), per_class=True)
    assert {name: rows.tolist() for name, rows in clouds.items()} == {"0": [0, 4], "1": [2, 5]}
    with pytest.raises(ValueError, match="every label of the 16 samples read is negative"):  # the pruner needs classes
        probe_from_batches([(torch.zeros(8, 2), torch.full((8,), -1))] * 2, size=4)


class SemiSupervisedCNN(CNNClassifier):
    """The package's CNN trained on partly labelled images: unlabelled samples (-1) count in no loss or metric."""

    def _step(self, batch: Any, stage: str) -> torch.Tensor:
        x, y = batch
        labelled = y >= 0
        return nn.functional.cross_entropy(self(x[labelled]), y[labelled])


class LabelledAccuracyAtFitEnd(pl.Callback):
    """Listed before the pruner: the trained model's accuracy on the labelled validation samples, by hand."""

    def __init__(self, loader: DataLoader) -> None:
        self.loader, self.accuracy = loader, 0.0

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        correct = total = 0
        with torch.no_grad():
            for x, y in self.loader:
                labelled = y >= 0
                correct += int((pl_module.eval()(x[labelled]).argmax(1) == y[labelled]).sum())
                total += int(labelled.sum())
        self.accuracy = correct / total


def test_the_pruners_accuracy_counts_the_labelled_validation_samples_alone(tmp_path: Path) -> None:
    pl.seed_everything(0, verbose=False)
    x, y = images(256).tensors
    y = y.clone()
    y[::4] = -1  # a quarter of the images unlabelled, in training and in validation
    loader = DataLoader(TensorDataset(x, y), batch_size=64)
    by_hand = LabelledAccuracyAtFitEnd(loader)
    pruner = BettiPruning(amount=0.5, probe_size=60, k=5, recalibrate_batches=2, latency_batch=8, fine_tune_epochs=0)
    model = SemiSupervisedCNN(in_channels=1, num_classes=2, channels=(8, 16), lr=0.01)
    quiet_trainer(tmp_path, max_epochs=2, callbacks=[by_hand, pruner]).fit(model, loader, loader)
    assert pruner.report["before"]["val_acc"] == pytest.approx(by_hand.accuracy)
    assert pruner.report["after"]["parameters"] < pruner.report["before"]["parameters"]


def test_classes_that_never_appear_are_named_as_such_not_as_an_empty_loader() -> None:
    batches = [(torch.zeros(8, 2), torch.tensor([0, 1] * 4))] * 3
    with pytest.raises(ValueError, match=r"classes \[7\] do not appear in the first training batches"):
        probe_from_batches(batches, size=4, classes=[7])


def test_a_probe_given_by_hand_never_has_its_unlabelled_points_chosen_as_a_class() -> None:
    from lightning_topo.monitoring.probe import probe_of_classes

    x, y = torch.zeros(8, 2), torch.tensor([-1, 0, 1, 2, -1, 0, 1, 2])
    for seed in range(5):
        assert set(probe_of_classes((x, y), 2, seed)[1].tolist()) <= {0, 1, 2}
    with pytest.raises(ValueError, match="needs class labels"):
        probe_of_classes((x, torch.full((8,), -100)), [0])
