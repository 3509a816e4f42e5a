"""A clean console: the README's main job prints no warning of our making, and the causes stay fixed."""

from __future__ import annotations

import os
import re
import sys
import warnings
from pathlib import Path

import pytest
from conftest import quiet_trainer, run_child

from lightning_topo.data import SyntheticDataModule
from lightning_topo.models import MLPClassifier

#: A warning as the console shows it: Python's "file.py:12: UserWarning: ..." and Lightning's "file.py:12: ...".
WARNING_LINE = re.compile(r"^\S+\.py:\d+: ")

#: Third-party notices we cannot influence, each with why.
THIRD_PARTY = {
    # Lightning 2.6's own pytree helper calls torch's deprecated `LeafSpec` on the torch we pin (2.14); nothing
    # of ours is involved and only a Lightning release can change it.
    "lightning/pytorch/utilities/_pytree.py": "`isinstance(treespec, LeafSpec)` is deprecated",
}


def _ours(line: str) -> bool:
    return not any(where in line and what in line for where, what in THIRD_PARTY.items())


def test_the_main_job_prints_no_warning_of_ours(tmp_path):
    """``lightning-topo fit -c recipes/d1_circles.yaml`` as a user runs it, from another directory, 60 epochs."""
    script = Path(sys.executable).with_name("lightning-topo")
    assert script.is_file(), f"no console script at {script}: install the package (pip install -e .)"
    env = {key: value for key, value in os.environ.items() if key != "PYTHONWARNINGS"}  # the console's defaults
    run = run_child(
        [
            str(script),
            "fit",
            "-c",
            "recipes/d1_circles.yaml",
            "--trainer.max_epochs=60",  # one Betti measurement at epoch 50 (every_n_epochs: 50), then the end
            f"--trainer.logger.init_args.save_dir={tmp_path / 'tb'}",
        ],
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    assert "[done]" in output and list((tmp_path / "tb" / "d1_circles").glob("version_0/events.out.tfevents.*"))
    ours = [line for line in output.splitlines() if WARNING_LINE.match(line) and _ours(line)]
    assert not ours, "warnings on the main job's console:\n" + "\n".join(ours)


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
