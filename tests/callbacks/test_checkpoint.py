"""FitEndCheckpoint and the synthetic recipes' checkpoints: a few saves, one at the end of the fit, resumable."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from helpers.paths import RECIPES
from helpers.trainers import quiet_trainer
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint

from lightning_topo.callbacks import BettiMonitor, FitEndCheckpoint
from lightning_topo.cli import run_cli
from lightning_topo.data import SyntheticDataModule
from lightning_topo.models import MLPClassifier

SYNTHETIC = [p for p in RECIPES if p.stem.startswith("d")]


class _StopAt(Callback):
    """Sets ``trainer.should_stop`` at the end of epoch ``epochs`` (counted from 1), as EarlyStopping would."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch + 1 == self.epochs:
            trainer.should_stop = True


class _Saves(Callback):
    """Records the global step of every checkpoint written."""

    def __init__(self) -> None:
        self.steps: list[int] = []

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        self.steps.append(trainer.global_step)


def _fit(root, max_epochs: int, *callbacks: Callback, **checkpoint_kwargs) -> tuple[pl.Trainer, FitEndCheckpoint]:
    pl.seed_everything(0, verbose=False)
    kwargs = dict(monitor="train_acc", mode="max", save_last=True, every_n_epochs=10, dirpath=root / "ckpt")
    checkpoint = FitEndCheckpoint(**(kwargs | checkpoint_kwargs))
    trainer = quiet_trainer(root, max_epochs=max_epochs, enable_checkpointing=True, callbacks=[checkpoint, *callbacks])
    model = MLPClassifier(in_features=2, num_classes=2, hidden=(8, 8), lr=0.01)
    trainer.fit(model, datamodule=SyntheticDataModule("d1", n_points=400, val_fraction=0.0))
    return trainer, checkpoint


@pytest.mark.parametrize(("stop_at", "max_epochs", "saved"), [(14, 30, [10, 14]), (None, 27, [10, 20, 27])])
def test_saves_every_n_epochs_and_when_the_fit_ends_between_saves(tmp_path, stop_at, max_epochs, saved):
    """Stopped by a rule (as EarlyStopping does) or by max_epochs between two saves: the last epoch is saved too."""
    saves = _Saves()
    extra = [saves] if stop_at is None else [saves, _StopAt(stop_at)]
    trainer, checkpoint = _fit(tmp_path, max_epochs, *extra)
    assert trainer.global_step == saved[-1]
    # each save writes the top-1 checkpoint (when train_acc improved) and last.ckpt, never more than once per step
    assert sorted(set(saves.steps)) == saved and len(saves.steps) <= 2 * len(saved)
    last = torch.load(checkpoint.last_model_path, weights_only=False)
    assert last["global_step"] == saved[-1] and last["epoch"] == saved[-1] - 1
    names = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    assert "last.ckpt" in names and len(names) == 2, names  # the best one and last.ckpt
    assert checkpoint.best_model_path in [str(p) for p in (tmp_path / "ckpt").iterdir()]


def test_plain_model_checkpoint_misses_the_end_which_is_why_the_subclass_exists(tmp_path):
    """Lightning's own ModelCheckpoint(every_n_epochs, save_last) leaves the last epochs unsaved after a stop."""
    pl.seed_everything(0, verbose=False)
    checkpoint = ModelCheckpoint(monitor="train_acc", mode="max", save_last=True, every_n_epochs=10, dirpath=tmp_path)
    trainer = quiet_trainer(tmp_path, max_epochs=30, enable_checkpointing=True, callbacks=[checkpoint, _StopAt(14)])
    model = MLPClassifier(in_features=2, num_classes=2, hidden=(8, 8), lr=0.01)
    trainer.fit(model, datamodule=SyntheticDataModule("d1", n_points=400, val_fraction=0.0))
    assert trainer.global_step == 14
    assert torch.load(checkpoint.last_model_path, weights_only=False)["global_step"] == 10


def test_a_fit_that_ends_mid_epoch_is_saved_at_train_end(tmp_path):
    saves = _Saves()
    pl.seed_everything(0, verbose=False)
    checkpoint = FitEndCheckpoint(save_last=True, every_n_epochs=10, dirpath=tmp_path / "ckpt")
    trainer = quiet_trainer(tmp_path, max_steps=7, enable_checkpointing=True, callbacks=[checkpoint, saves])
    model = MLPClassifier(in_features=2, num_classes=2, hidden=(8, 8), lr=0.01)
    trainer.fit(model, datamodule=SyntheticDataModule("d1", n_points=400, val_fraction=0.0, batch_size=100))
    assert trainer.global_step == 7 and sorted(set(saves.steps)) == [7]  # 4 steps per epoch: stopped in epoch 2


def test_early_stopping_with_min_epochs_does_not_save_every_epoch(tmp_path):
    """should_stop before min_epochs does not end the fit, so it does not trigger an end-of-fit save either."""
    saves = _Saves()
    stop = EarlyStopping("train_acc", mode="max", stopping_threshold=0.0, check_on_train_epoch_end=True)
    pl.seed_everything(0, verbose=False)
    checkpoint = FitEndCheckpoint(save_last=True, every_n_epochs=10, dirpath=tmp_path / "ckpt")
    trainer = quiet_trainer(
        tmp_path, max_epochs=50, min_epochs=25, enable_checkpointing=True, callbacks=[checkpoint, stop, saves]
    )
    model = MLPClassifier(in_features=2, num_classes=2, hidden=(8, 8), lr=0.01)
    trainer.fit(model, datamodule=SyntheticDataModule("d1", n_points=400, val_fraction=0.0))
    assert trainer.global_step == 25 and sorted(set(saves.steps)) == [10, 20, 25]


@pytest.mark.parametrize("recipe", SYNTHETIC, ids=lambda p: p.stem)
def test_synthetic_recipes_checkpoint_every_few_hundred_epochs_and_at_the_end(recipe):
    cli = run_cli(["-c", str(recipe), "--trainer.logger=false"], run=False)
    (checkpoint,) = [c for c in cli.trainer.callbacks if isinstance(c, ModelCheckpoint)]
    assert isinstance(checkpoint, FitEndCheckpoint) and checkpoint.every_n_epochs >= 200
    assert checkpoint.save_last and checkpoint.monitor == "train_acc" and checkpoint.mode == "max"


def test_the_d1_recipe_resumes_from_its_checkpoint_where_it_stopped(tmp_path, monkeypatch):
    """The D-I recipe cut to 30 epochs, resumed with --ckpt_path to 45: the same weights as 45 epochs in one go."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.chdir(tmp_path)
    torch.set_num_threads(1)  # bitwise-reproducible full-batch steps
    logs = f"--trainer.logger.init_args.save_dir={tmp_path / 'tb'}"
    first = run_cli(["fit", "-c", "recipes/d1_circles.yaml", "--trainer.max_epochs=30", logs])
    checkpoints = tmp_path / "tb" / "d1_circles" / "version_0" / "checkpoints"
    names = sorted(p.name for p in checkpoints.iterdir())
    # the best checkpoint, last.ckpt, and the monitor's probe, saved once beside them (not inside each checkpoint)
    assert len(names) == 3 and names[0].startswith("betti_probe-") and names[1].startswith("epoch=29-step=30-"), names
    assert names[2] == "last.ckpt", names
    resumed = run_cli(
        [
            "fit",
            "-c",
            "recipes/d1_circles.yaml",
            "--trainer.max_epochs=45",
            logs,
            f"--ckpt_path={checkpoints}/last.ckpt",
        ]
    )
    assert first.trainer.global_step == 30 and resumed.trainer.global_step == 45 and resumed.trainer.current_epoch == 45
    events = next((tmp_path / "tb" / "d1_circles" / "version_1").glob("events.out.tfevents.*"))
    steps = [event.step for event in EventAccumulator(str(events)).Reload().Scalars("train_acc")]
    assert len(steps) == 15 and min(steps) >= 29  # the resumed fit ran epochs 31..45 only
    resumed_last = torch.load(
        tmp_path / "tb" / "d1_circles" / "version_1" / "checkpoints" / "last.ckpt", weights_only=False
    )
    assert resumed_last["epoch"] == 44 and resumed_last["global_step"] == 45
    # the resumed monitor measures the very points the first one drew (read back from the probe file)
    monitors = [next(c for c in cli.trainer.callbacks if isinstance(c, BettiMonitor)) for cli in (first, resumed)]
    assert all(torch.equal(a, b) for a, b in zip(monitors[0].probe, monitors[1].probe))
    straight = run_cli(["fit", "-c", "recipes/d1_circles.yaml", "--trainer.max_epochs=45", "--trainer.logger=false"])
    for name, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name
