"""A clean console: the README's main job prints progress and Lightning's start-up lines only; the causes stay fixed."""

from __future__ import annotations

import os
import re
import sys
import warnings
from pathlib import Path

import pytest
from helpers.processes import run_child
from helpers.trainers import quiet_trainer

from lightning_topo.data import SyntheticDataModule
from lightning_topo.models import MLPClassifier

#: What the main job's console may hold besides EpochProgress's lines: Lightning's one-time start-up notices (the seed,
#: the accelerators, its tips) and its note that max_epochs ended the fit. Anything else (a warning of ours or of a
#: third party, matplotlib's findfont lines, a stray print) fails the test.
LIGHTNING_LINES = (
    re.compile(r"Seed set to \d+"),
    re.compile(r"GPU available: .+, used: (True|False)"),
    re.compile(r"TPU available: (True|False), using: \d+ TPU cores"),
    re.compile(r"HPU available: (True|False), using: \d+ HPUs"),
    re.compile(r"LOCAL_RANK: \d+ - CUDA_VISIBLE_DEVICES: \[.*\]"),
    re.compile(r"💡 Tip: .+"),
    re.compile(r"`Trainer\.fit` stopped: `max_(epochs|steps)=\d+` reached\."),
)
#: EpochProgress: a line every every_n_epochs, and the closing line.
PROGRESS_LINES = (re.compile(r"\[train\] epoch \d+  \d+\.\ds  .+"), re.compile(r"\[done\]  .+"))


def _unexpected(output: str) -> list[str]:
    allowed = LIGHTNING_LINES + PROGRESS_LINES
    return [line for line in output.splitlines() if line.strip() and not any(p.fullmatch(line) for p in allowed)]


def test_the_allow_list_rejects_warnings_and_other_lines():
    lines = [
        "/x/lightning/pytorch/utilities/_pytree.py:21: `isinstance(treespec, LeafSpec)` is deprecated, use ...",
        "findfont: Font family ['sans-serif'] not found. Falling back to DejaVu Sans.",
        "/x/lightning_topo/data/images.py:3: UserWarning: something",
        "[train] epoch 100  1.6s  train_acc=0.8664",
        "Seed set to 0",
    ]
    assert _unexpected("\n".join(lines)) == lines[:3]


def test_the_main_job_prints_only_progress_and_lightnings_start_up_lines(tmp_path):
    """``lightning-topo fit -c recipes/d1_circles.yaml`` as a user runs it, from another directory, 100 epochs.

    Every line of its output (stdout and stderr) is EpochProgress's or one of Lightning's :data:`LIGHTNING_LINES`:
    no warning, ours or a third party's (Lightning's LeafSpec deprecation is silenced by the CLI).
    """
    script = Path(sys.executable).with_name("lightning-topo")
    assert script.is_file(), f"no console script at {script}: install the package (pip install -e .)"
    env = {key: value for key, value in os.environ.items() if key != "PYTHONWARNINGS"}  # the console's defaults
    run = run_child(
        [
            str(script),
            "fit",
            "-c",
            "recipes/d1_circles.yaml",
            "--trainer.max_epochs=100",  # Betti measurements at epochs 50 and 100, a progress line, a checkpoint
            f"--trainer.logger.init_args.save_dir={tmp_path / 'tb'}",
        ],
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    assert "[train] epoch 100 " in output and "[done]  budget reached at epoch 100 " in output
    assert list((tmp_path / "tb" / "d1_circles").glob("version_0/events.out.tfevents.*"))
    assert list((tmp_path / "tb" / "d1_circles").glob("version_0/checkpoints/last.ckpt"))
    unexpected = _unexpected(output)
    assert not unexpected, "lines on the main job's console that are neither progress nor start-up:\n" + "\n".join(
        unexpected
    )


def _fit_recording_warnings(root: Path, data: SyntheticDataModule, **trainer_kwargs) -> tuple[list[str], object]:
    model = MLPClassifier(in_features=2, num_classes=2, hidden=(8, 8), lr=0.01)
    trainer = quiet_trainer(root, max_epochs=2, **trainer_kwargs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(model, datamodule=data)
    return [str(w.message) for w in caught if "LeafSpec" not in str(w.message)], trainer


def test_a_full_batch_fit_without_a_validation_split_raises_no_warning(tmp_path):
    """The two warnings the data module used to cause: an iterable dataset's ``__len__`` and an empty val list."""
    data = SyntheticDataModule("d1", n_points=400, val_fraction=0.0)
    caught, trainer = _fit_recording_warnings(tmp_path, data, limit_val_batches=0.5)
    assert not caught, caught
    assert trainer.global_step == 2 and "val_acc" not in trainer.callback_metrics  # one full batch per epoch, no val
    assert trainer.limit_val_batches == 0.5  # the fit switched validation off only while it ran
    x, y = next(iter(data.train_dataloader()))  # still the whole training set in one batch
    assert len(x) == len(y) == len(data.train_set)


@pytest.mark.parametrize("batch_size", [None, 64])
def test_a_validation_split_is_still_validated(tmp_path, batch_size):
    data = SyntheticDataModule("d1", n_points=400, val_fraction=0.25, batch_size=batch_size)
    caught, trainer = _fit_recording_warnings(tmp_path, data)
    assert not [message for message in caught if "does not have many workers" not in message], caught
    assert "val_acc" in trainer.callback_metrics and trainer.limit_val_batches == 1.0
