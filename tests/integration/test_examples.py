"""The examples a user copies run offline, as shipped, each in a fresh interpreter (as `python examples/x.py`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.paths import REPO

DATA = REPO.parent / "shared" / "data"


def run_example(name: str, *args: str, cwd: Path) -> str:
    """Run ``examples/<name>`` and return its output; a failure or a hang shows the example's own output."""
    command = [sys.executable, str(REPO / "examples" / name), "--logdir", str(cwd / "logs"), *args]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=cwd, env=env)
    except subprocess.TimeoutExpired as error:
        out = (error.stdout or b"").decode() if isinstance(error.stdout, bytes) else (error.stdout or "")
        pytest.fail(f"{name} did not finish in 300 s; its output:\n{out[-3000:]}")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result.stdout


@pytest.mark.skipif(not (DATA / "cifar10").is_dir(), reason="the CIFAR-10 images of ../shared/data are not here")
def test_timm_cifar10_example_watches_the_eight_residual_blocks(tmp_path: Path) -> None:
    out = run_example("timm_cifar10.py", "--data", str(DATA), cwd=tmp_path)
    blocks = [f"model.layer{k}.{n}" for k in range(1, 5) for n in range(2)]
    assert f"watched: input, {', '.join(blocks)}, logits" in out
    rows = [line for line in out.splitlines() if line.startswith("epoch 1 ")]
    assert len(rows) == 10 and all(row.count(": (") == 10 for row in rows), out  # 10 layers x 10 classes
    assert list((tmp_path / "logs" / "timm_cifar10").glob("version_0/events.out.tfevents.*"))


def test_hf_text_classifier_example_watches_each_encoder_layer(tmp_path: Path) -> None:
    out = run_example("hf_text_classifier.py", cwd=tmp_path)
    layers = [f"model.bert.encoder.layer.{n}" for n in range(4)]
    assert f"watched: {', '.join(layers)}, logits" in out  # token ids are not measured as an input layer
    rows = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert len(rows) == 4 and all(row.count(":") == 6 for row in rows), out  # "layer:", 4 blocks and the logits
    accuracy = float(next(line for line in out.splitlines() if line.startswith("train_acc")).split()[1])
    assert accuracy > 0.8, out  # the three topics are learnt: the monitor watched a real fit
