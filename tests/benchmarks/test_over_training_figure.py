"""benchmarks/over_training_figure.py: the docs' ID images are the monitor's own, and the caption numbers are read
from the history (the printout that each docs figure's caption quotes)."""

from __future__ import annotations

import sys

import torch
from helpers.paths import REPO
from PIL import Image
from torch import nn

sys.path.insert(0, str(REPO / "benchmarks"))

import over_training_figure  # noqa: E402

from lightning_topo.callbacks import BettiMonitor  # noqa: E402


def _history() -> list[dict]:
    """Two real measurements of a small network on two circles, with the intrinsic dimension. The radii jitter by 1%:
    evenly spaced points alone are a regular grid to TwoNN (every ratio 1, up to rounding), which it refuses."""
    torch.manual_seed(0)
    angles = torch.linspace(0, 6.28, 60)
    ring = torch.stack([angles.cos(), angles.sin()], 1)
    jitter = 1 + 0.01 * torch.randn(120, 1)
    x = torch.cat([ring, 3 * ring]) * jitter
    y = torch.arange(120) // 60
    net = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 2))
    monitor = BettiMonitor(k=4, log_figure=False, intrinsic_dimension=True)
    monitor.set_probe(x, y, model=net)
    return [monitor.compute(net, epoch=epoch) for epoch in (0, 1)]


def test_caption_numbers_are_the_history_ranges(capsys):
    history = _history()
    history[1]["betti"]["input"]["0"][0] = 5  # class 0's beta_0 at the input: 1 then 5
    over_training_figure.print_caption_numbers(history)
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("input")}
    last_id = history[-1]["id"]["input"]["0"]
    assert rows["input"][1] == "1-5" and rows["input"][2] == "1"  # two circles: beta_1 of class 1 is 1 throughout
    assert rows["input"][4] == f"({last_id:.2f})"


def test_the_id_images_are_the_pngs_the_monitor_logs(tmp_path):
    over_training_figure.write_id_images(_history(), tmp_path)
    for name in ("id_depth_profile_d1.png", "id_over_training_d1.png"):
        with Image.open(tmp_path / name) as image:
            assert image.format == "PNG" and image.width > 300 and image.height > 200
