"""BettiMonitor(intrinsic_dimension=True): the TwoNN dimension of every watched layer and class, live, from the
neighbour step's own distances: the same number as the pure estimator on the captured activations."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from helpers.trainers import quiet_trainer
from helpers.user_models import TinyNet, blobs
from torch import nn
from torch.utils.data import DataLoader

from lightning_topo.callbacks import BettiMonitor
from lightning_topo.monitoring import capture_activations
from lightning_topo.topology import intrinsic_dimension


def _fit(tmp_path: Path, model: nn.Module, monitor: BettiMonitor, epochs: int = 2, **trainer: object) -> None:
    torch.manual_seed(0)
    quiet_trainer(tmp_path, max_epochs=epochs, callbacks=[monitor], **trainer).fit(
        model, DataLoader(blobs(400), batch_size=64)
    )


def test_each_layer_and_class_gets_the_estimators_number_on_its_activations(tmp_path: Path) -> None:
    model = TinyNet()
    monitor = BettiMonitor(probe_size=200, k=6, intrinsic_dimension=True, log_figure=False)
    _fit(tmp_path, model, monitor)
    assert [entry["epoch"] for entry in monitor.history] == [0, 1]
    ids = monitor.history[-1]["id"]
    assert set(ids) == set(monitor.watched_layers) == {"input", "body.1", "body.3", "logits"}
    x, y = monitor.probe
    captured = capture_activations(model, x, [layer for layer in monitor.watched_layers])
    for layer, per_class in ids.items():
        assert sorted(per_class) == ["0", "1"]
        for cls, value in per_class.items():
            expected = intrinsic_dimension(captured[layer][y == int(cls)].double())
            assert value == pytest.approx(expected, rel=1e-6), (layer, cls)
    # the blobs are 4-D Gaussians (TwoNN overestimates a Gaussian somewhat at 100 points); the logits are 2-D
    assert 3.0 < ids["input"]["0"] < 6.5 and ids["logits"]["0"] < 2.6


def test_the_dimensions_are_logged_and_drawn_in_tensorboard(tmp_path: Path) -> None:
    from lightning.pytorch.loggers import TensorBoardLogger
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monitor = BettiMonitor(probe_size=120, k=6, intrinsic_dimension=True)
    _fit(tmp_path, TinyNet(), monitor, logger=TensorBoardLogger(tmp_path, name="tb"))
    events = EventAccumulator(str(tmp_path / "tb" / "version_0"), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    tags = events.Tags()
    assert {f"id/{layer}/class_{c}" for layer in monitor.watched_layers for c in (0, 1)} <= set(tags["scalars"])
    assert {"id/depth_profile", "id/over_training", "betti/over_training"} <= set(tags["images"])
    logged = [e.value for e in events.Scalars("id/body.1/class_0")]
    assert logged == pytest.approx([entry["id"]["body.1"]["0"] for entry in monitor.history])


def test_unmeasurable_clouds_are_skipped_with_a_warning_never_a_nan(tmp_path: Path) -> None:
    class WithDeadLayer(TinyNet):
        def __init__(self) -> None:
            super().__init__()
            self.dead = nn.Linear(4, 3)  # a dead layer: weights and bias zero, every sample the same point
            nn.init.zeros_(self.dead.weight)
            nn.init.zeros_(self.dead.bias)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return super().forward(x) + 0 * self.dead(x).sum()

    model = WithDeadLayer()
    monitor = BettiMonitor(probe_size=80, k=4, layers=["dead", "body.1"], intrinsic_dimension=True, log_figure=False)
    with pytest.warns(UserWarning, match=r"skipped layer 'dead'.*constant activations"):
        _fit(tmp_path, model, monitor, epochs=1)
    ids = monitor.history[-1]["id"]
    assert "dead" not in ids and set(ids["body.1"]) == {"0", "1"}
    assert all(math.isfinite(v) for per_class in ids.values() for v in per_class.values())


def test_classes_and_blocks_and_the_whole_probe(tmp_path: Path) -> None:
    monitor = BettiMonitor(
        probe_size=120, k=5, per_class=False, layers=["body.*"], intrinsic_dimension=True, log_figure=False
    )
    _fit(tmp_path, TinyNet(), monitor, epochs=1)
    ids = monitor.history[-1]["id"]
    assert set(ids["body.1"]) == {"all"} and ids["body.1"]["all"] > 1.0


def test_the_intrinsic_dimension_survives_a_checkpoint(tmp_path: Path) -> None:
    from lightning.pytorch.callbacks import ModelCheckpoint

    checkpoint = ModelCheckpoint(dirpath=tmp_path, filename="last")
    first = BettiMonitor(probe_size=80, k=5, intrinsic_dimension=True, log_figure=False)
    torch.manual_seed(0)
    quiet_trainer(tmp_path, max_epochs=2, enable_checkpointing=True, callbacks=[first, checkpoint]).fit(
        TinyNet(), DataLoader(blobs(400), batch_size=64)
    )
    resumed = BettiMonitor(probe_size=80, k=5, intrinsic_dimension=True, log_figure=False)
    quiet_trainer(tmp_path, max_epochs=3, callbacks=[resumed]).fit(
        TinyNet(), DataLoader(blobs(400), batch_size=64), ckpt_path=str(tmp_path / "last.ckpt")
    )
    assert [entry["id"] for entry in resumed.history[:2]] == [entry["id"] for entry in first.history]
    assert len(resumed.history) == 3 and "id" in resumed.history[2]
