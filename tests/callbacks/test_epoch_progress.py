"""EpochProgress's closing line says whether a stopping rule ended the fit or the budget ran out first."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import EarlyStopping
from torch.utils.data import DataLoader, TensorDataset

from lightning_topo.callbacks import EpochProgress
from lightning_topo.callbacks.epoch_progress import budget_reached


class EpochCounter(pl.LightningModule):
    """One step per epoch; logs ``count`` = the epoch index, so a threshold on it fires at a known epoch."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(1, 1)

    def training_step(self, batch, batch_idx):
        self.log("count", float(self.current_epoch))
        return self.layer(batch[0]).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        return DataLoader(TensorDataset(torch.ones(4, 1)), batch_size=4)


def _fit(caplog, callbacks: list, **trainer_kwargs) -> tuple[pl.Trainer, str]:
    """Fit the counter and return the trainer and EpochProgress's closing line."""
    trainer = pl.Trainer(
        callbacks=[*callbacks, EpochProgress(every_n_epochs=1, metrics=["count"])],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        **trainer_kwargs,
    )
    with caplog.at_level("INFO"):
        trainer.fit(EpochCounter())
    done = [line for line in caplog.text.splitlines() if "[done]" in line]
    assert len(done) == 1, caplog.text
    return trainer, done[0]


def _threshold(value: float) -> EarlyStopping:
    return EarlyStopping(
        monitor="count", mode="max", stopping_threshold=value, patience=1000, check_on_train_epoch_end=True
    )


def test_a_fit_stopped_by_early_stopping_prints_a_normal_done_line(caplog):
    trainer, line = _fit(caplog, [_threshold(2.5)], max_epochs=10)  # count 3 > 2.5 at the 4th epoch
    assert trainer.current_epoch == 4
    assert "[done]  epoch 4 " in line
    assert "budget" not in line
    assert "EarlyStopping: Stopping threshold reached: count = 3.0 > 2.5" in line


def test_a_fit_that_ends_on_max_epochs_before_early_stopping_fires_prints_the_budget_line(caplog):
    trainer, line = _fit(caplog, [_threshold(100.0)], max_epochs=3)
    assert trainer.current_epoch == 3
    assert "[done]  budget reached at epoch 3 (max_epochs=3)" in line
    assert "EarlyStopping did not fire: count=2, needs > 100" in line
    assert "[done]  epoch" not in line


def test_the_rule_firing_on_the_budgets_last_epoch_counts_as_stopped_by_the_rule(caplog):
    trainer, line = _fit(caplog, [_threshold(1.5)], max_epochs=3)  # count 2 > 1.5 at the 3rd and last epoch
    assert trainer.current_epoch == 3
    assert "[done]  epoch 3 " in line and "budget" not in line
    assert "Stopping threshold reached" in line


@pytest.mark.parametrize(
    ("trainer_kwargs", "expected"),
    [
        ({"max_epochs": 2}, "[done]  budget reached at epoch 2 (max_epochs=2)"),
        ({"max_epochs": 10, "max_steps": 3}, "[done]  budget reached at epoch 3 (max_steps=3)"),
    ],
)
def test_without_early_stopping_the_line_still_says_the_budget_was_reached(caplog, trainer_kwargs, expected):
    _, line = _fit(caplog, [], **trainer_kwargs)
    assert expected in line
    assert "EarlyStopping" not in line


def test_fast_dev_run_is_not_a_budget(caplog):
    trainer, line = _fit(caplog, [_threshold(100.0)], fast_dev_run=True)
    assert "[done]  epoch 1 " in line and "budget" not in line
    assert budget_reached(trainer) is None


def test_the_recipes_rule_on_a_short_budget_names_train_acc_and_its_threshold(caplog):
    """The synthetic recipes' setting (EarlyStopping on train_acc > 0.99999) cut short by a 2-epoch budget."""
    from lightning_topo.data import SyntheticDataModule
    from lightning_topo.models import MLPClassifier

    torch.manual_seed(0)
    stopper = EarlyStopping(
        monitor="train_acc", mode="max", stopping_threshold=0.99999, patience=10**6, check_on_train_epoch_end=True
    )
    trainer = pl.Trainer(
        max_epochs=2,
        callbacks=[stopper, EpochProgress(every_n_epochs=100, metrics=["train_acc"])],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    with caplog.at_level("INFO"):
        trainer.fit(MLPClassifier(2, 2, hidden=(8, 8)), SyntheticDataModule("d1", n_points=400, val_fraction=0.0))
    accuracy = float(trainer.callback_metrics["train_acc"])
    assert accuracy < 1.0  # two steps cannot separate 9 disks from their surroundings
    line = next(line for line in caplog.text.splitlines() if "[done]" in line)
    assert "[done]  budget reached at epoch 2 (max_epochs=2)" in line
    assert f"EarlyStopping did not fire: train_acc={accuracy:.6g}, needs > 0.99999" in line


@pytest.mark.parametrize("metrics", [5, [], ["train_acc", 3], {"train_acc": 1}])
def test_metrics_must_be_a_list_of_names(metrics):
    with pytest.raises(ValueError, match="metrics must be None .*or a list of metric names"):
        EpochProgress(metrics=metrics)


def test_one_metric_name_is_one_name_not_its_letters(caplog):
    progress = EpochProgress(every_n_epochs=1, metrics="count")
    assert progress.metrics == ["count"]
    trainer = pl.Trainer(
        callbacks=[progress], max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, accelerator="cpu",
    )  # fmt: skip
    with caplog.at_level("INFO"):
        trainer.fit(EpochCounter())
    assert "[train] epoch 2" in caplog.text and "count=1.0000" in caplog.text
