"""benchmarks/common.py's recipe builders: the shipped YAML, its logger moved or off, nothing fitted."""

from __future__ import annotations

import sys
from pathlib import Path

from helpers.paths import REPO
from lightning.pytorch.loggers import TensorBoardLogger

sys.path.insert(0, str(REPO / "benchmarks"))

import common  # noqa: E402

from lightning_topo.callbacks import BettiMonitor  # noqa: E402


def test_build_recipe_moves_the_logger_and_applies_overrides(tmp_path):
    cli = common.build_recipe("d1_circles", "--trainer.max_epochs=7", logs=tmp_path)
    logger = cli.trainer.logger
    assert isinstance(logger, TensorBoardLogger) and Path(logger.save_dir) == tmp_path
    assert cli.trainer.max_epochs == 7 and cli.trainer.current_epoch == 0  # built, not fitted
    assert any(isinstance(c, BettiMonitor) for c in cli.trainer.callbacks)  # the recipe's callbacks as shipped
    assert cli.datamodule is not None and cli.model is not None


def test_build_recipe_without_logs_turns_the_logger_off():
    cli = common.build_recipe(common.recipe_path("d1_circles"))  # a path works as well as a name
    assert cli.trainer.logger is None


def test_recipe_in_temp_logs_removes_its_folder_after_the_block():
    with common.recipe_in_temp_logs("d1_circles", "--trainer.max_epochs=1") as cli:
        folder = Path(cli.trainer.logger.save_dir)
        assert folder.is_dir() and cli.trainer.max_epochs == 1
    assert not folder.exists()
