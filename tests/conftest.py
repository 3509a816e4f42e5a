"""Shared fixtures: quiet trainers and a ReLU MLP trained to 100% on D-I (built once per session)."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
warnings.filterwarnings("ignore", message=".*does not have many workers.*")
warnings.filterwarnings("ignore", message=".*LeafSpec.*")

REPO = Path(__file__).resolve().parents[1]
RECIPES = sorted((REPO / "recipes").glob("*.yaml"))


@pytest.fixture(autouse=True)
def _no_command_line_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests hand the CLI its arguments (``run_cli(argv)``); pytest's own arguments are not a command line for it.

    Without this, LightningCLI sees both ``args`` and ``sys.argv[1:]`` and warns that it got two command lines.
    """
    monkeypatch.setattr(sys, "argv", sys.argv[:1])


#: Seconds a test's child process may run: well under pytest-timeout's 600 s for the whole test, so a hang fails
#: fast and with the child's output instead of as a bare timeout.
CHILD_TIMEOUT = 120


def _text(output: str | bytes | None) -> str:
    if isinstance(output, bytes):  # TimeoutExpired carries bytes even for text=True
        return output.decode(errors="replace")
    return output or ""


def run_child(
    args: list[str], *, timeout: float = CHILD_TIMEOUT, check: bool = False, **kwargs: Any
) -> subprocess.CompletedProcess:
    """``subprocess.run(args, capture_output=True, text=True)`` that fails the test with the child's output when
    it runs past ``timeout`` seconds (and, with ``check``, when it exits non-zero)."""
    try:
        result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kwargs)
    except subprocess.TimeoutExpired as error:
        pytest.fail(
            f"{args[:3]}... ran past {timeout:g} s; its output so far:\n"
            f"--- stdout\n{_text(error.stdout)[-3000:]}\n--- stderr\n{_text(error.stderr)[-5000:]}",
            pytrace=False,
        )
    if check and result.returncode != 0:
        pytest.fail(
            f"{args[:3]}... exited with {result.returncode}:\n--- stdout\n{result.stdout[-3000:]}\n"
            f"--- stderr\n{result.stderr[-5000:]}",
            pytrace=False,
        )
    return result


def run_two_rank_script(directory: Path, source: str) -> tuple[dict, dict]:
    """Run ``source`` (a 2-process DDP script that writes ``rank<r>.json`` into ``argv[1]``); both ranks' JSON."""
    import json
    import textwrap

    script = directory / "two_ranks.py"
    script.write_text(textwrap.dedent(source))
    result = run_child([sys.executable, str(script), str(directory)], timeout=300, cwd=directory)
    assert result.returncode == 0, result.stderr[-3000:]
    rank0, rank1 = (json.loads((directory / f"rank{r}.json").read_text()) for r in (0, 1))
    return rank0, rank1


def quiet_trainer(root: Path, **kwargs: Any) -> pl.Trainer:
    """A CPU trainer without progress bar, summary or checkpoints unless asked."""
    options: dict[str, Any] = dict(
        accelerator="cpu",
        devices=1,
        default_root_dir=str(root),
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        logger=False,
        num_sanity_val_steps=0,
        log_every_n_steps=1,
    )
    options.update(kwargs)
    return pl.Trainer(**options)


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
