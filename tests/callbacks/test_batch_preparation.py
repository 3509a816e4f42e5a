"""The callbacks read their own batches as ``training_step`` gets them: through the module's and the data module's
batch hooks (``on_before_batch_transfer``, ``on_after_batch_transfer``), where device-side preprocessing lives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from helpers.trainers import quiet_trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_topo.callbacks import BettiMonitor, BettiPruning

N, CLASSES = 60, 3


def _images(dtype: torch.dtype) -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    return TensorDataset(torch.randint(0, 256, (N, 3, 8, 8), generator=g).to(dtype), torch.arange(N) % CLASSES)


class NormalisedOnTheDevice(pl.LightningModule):
    """A CNN that gets 0-255 images and normalises them in ``on_after_batch_transfer``."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(8, CLASSES),
        )  # fmt: skip
        self.seen: list[torch.Tensor] = []  # the inputs of the training steps

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        x, y = batch
        return (x.float() / 255 - 0.5) / 0.25, y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        self.seen.append(x)
        return nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


def test_the_monitor_measures_the_inputs_that_training_step_gets(tmp_path: Path) -> None:
    """uint8 images stopped the fit at train start ("could not be run on the probe's inputs"); 0-255 floats were
    measured raw, a space the network never sees."""
    monitor = BettiMonitor(probe_size=30, k=4, log_figure=False)
    model = NormalisedOnTheDevice()
    quiet_trainer(tmp_path, max_epochs=1, callbacks=[monitor]).fit(model, DataLoader(_images(torch.uint8), 20))
    inputs, labels = monitor.probe
    trained = torch.cat(model.seen)
    assert inputs.dtype == torch.float32 and inputs.abs().max() <= trained.abs().max() <= 2.0  # normalised: |x| <= 2
    assert set(monitor.history[-1]["betti"]["input"]) == {"0", "1", "2"}


class ScalingData(pl.LightningDataModule):
    """A data module whose ``on_before_batch_transfer`` scales the images: the data module's hook counts too."""

    def train_dataloader(self) -> DataLoader:
        return DataLoader(_images(torch.float32), 20)

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        x, y = batch
        return x / 255, y


def test_a_data_modules_batch_hook_is_applied_too(tmp_path: Path) -> None:
    class Plain(NormalisedOnTheDevice):
        def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
            return batch

    monitor = BettiMonitor(probe_size=30, k=4, log_figure=False)
    quiet_trainer(tmp_path, max_epochs=1, callbacks=[monitor]).fit(Plain(), datamodule=ScalingData())
    assert 0.9 < float(monitor.probe[0].max()) <= 1.0  # scaled to [0, 1], as the steps got them


def test_pruning_re_estimates_batchnorm_on_the_batches_training_step_gets(tmp_path: Path) -> None:
    """Re-estimated on raw 0-255 batches, the pruned network's BatchNorm held statistics tens of times off the
    normalised inputs it is then used on; nothing warned."""
    pruner = BettiPruning(amount=0.5, probe_size=30, k=4, recalibrate_batches=3)
    model = NormalisedOnTheDevice()
    data = _images(torch.float32)
    quiet_trainer(tmp_path, max_epochs=1, callbacks=[pruner]).fit(model, DataLoader(data, 20))
    assert model.net[0].out_channels == 4
    x = (data.tensors[0] / 255 - 0.5) / 0.25
    with torch.no_grad():
        means = model.net[0](x).mean(dim=(0, 2, 3))
    torch.testing.assert_close(model.net[1].running_mean, means, atol=0.05, rtol=0.05)


def _soft_labels(batch: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """MixUp-like collation: each sample's label a mix of classes, no class per sample."""
    x = torch.stack([sample[0] for sample in batch])
    y = nn.functional.one_hot(torch.stack([sample[1] for sample in batch]), CLASSES).float()
    return x, 0.8 * y + 0.2 * y.roll(1, dims=0)


def test_a_probe_set_before_the_fit_is_kept_where_the_batches_hold_no_class(tmp_path: Path) -> None:
    """The refusal of soft-label batches suggests set_probe(model, inputs, labels); on_train_start drew again and
    failed all the same, and re-estimating BatchNorm, which needs the inputs alone, refused their labels too."""

    class SoftTargets(NormalisedOnTheDevice):
        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            x, y = batch
            return torch.sum(-y * torch.log_softmax(self(x), -1), -1).mean()

    data = _images(torch.float32)
    model = SoftTargets()
    pruner = BettiPruning(amount=0.5, probe_size=30, k=4, recalibrate_batches=2)
    x = (data.tensors[0][:30] / 255 - 0.5) / 0.25
    pruner.set_probe(model, x, data.tensors[1][:30])
    quiet_trainer(tmp_path, max_epochs=1, callbacks=[pruner]).fit(model, DataLoader(data, 20, collate_fn=_soft_labels))
    assert torch.equal(pruner._probe[0], x)  # the given probe, not one drawn from the soft-label batches
    assert model.net[0].out_channels == 4 and pruner.report["refused"] == {}  # pruned, and kept so
