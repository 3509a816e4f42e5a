"""Shared fixtures: no command line for the CLI, and a ReLU MLP trained to 100% on D-I (built once per session).

The layout: a test of ``lightning_topo/<package>/<module>.py`` goes in ``tests/<package>/``; the callbacks in a
Trainer in ``tests/callbacks/``; whole runs (recipes, console, examples, real timm and transformers models, the
wheel) in ``tests/integration/``; the benchmark scripts' helpers in ``tests/benchmarks/``; the import rules in
``tests/test_architecture.py``. Helpers that are not fixtures (paths, child processes, trainers, small models) live
in ``tests/helpers/``; no test imports another test file.
"""

from __future__ import annotations

import os
import sys
import warnings

import lightning.pytorch as pl
import pytest
import torch
from helpers.trainers import quiet_trainer

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
warnings.filterwarnings("ignore", message=".*does not have many workers.*")
warnings.filterwarnings("ignore", message=".*LeafSpec.*")


@pytest.fixture(autouse=True)
def _no_command_line_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests hand the CLI its arguments (``run_cli(argv)``); pytest's own arguments are not a command line for it.

    Without this, LightningCLI sees both ``args`` and ``sys.argv[1:]`` and warns that it got two command lines.
    """
    monkeypatch.setattr(sys, "argv", sys.argv[:1])


@pytest.fixture(autouse=True)
def _fresh_betti_memo() -> None:
    """Every test computes its Betti numbers itself: no answer from another test's identical clouds."""
    from lightning_topo.monitoring.memo import BETTI_MEMO

    BETTI_MEMO.clear()


@pytest.fixture(scope="session")
def trained_d1_mlp(tmp_path_factory: pytest.TempPathFactory) -> tuple[pl.LightningModule, pl.LightningDataModule]:
    """The paper's 9x15 ReLU MLP trained on D-I until the training set is classified perfectly."""
    from lightning.pytorch.callbacks import EarlyStopping

    from lightning_topo.data import SyntheticDataModule
    from lightning_topo.models import MLPClassifier

    pl.seed_everything(0, verbose=False)
    data = SyntheticDataModule("d1", val_fraction=0.0)
    model = MLPClassifier(in_features=2, num_classes=2, activation="relu", lr=0.01)
    stop = EarlyStopping(
        "train_acc", mode="max", stopping_threshold=0.99999, patience=10**6, check_on_train_epoch_end=True
    )
    trainer = quiet_trainer(tmp_path_factory.mktemp("d1"), max_epochs=4000, callbacks=[stop])
    trainer.fit(model, datamodule=data)
    assert trainer.callback_metrics["train_acc"] == 1.0, "the D-I fixture did not reach 100% training accuracy"
    return model.eval(), data
