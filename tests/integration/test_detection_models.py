"""torchvision's detection models in their own batch convention (built here without weights, no download): a
list of images of any size and a target dict per image, batched by ``collate_fn=lambda b: tuple(zip(*b))``, the
model called on the list. The monitor used to stop the fit at train start, taking the list of images for
positional arguments."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from helpers.trainers import quiet_trainer
from torch.utils.data import DataLoader

from lightning_topo.callbacks import BettiMonitor, BettiPruning
from lightning_topo.monitoring.batches import SampleList
from lightning_topo.monitoring.layers import INPUT, LOGITS
from lightning_topo.monitoring.probe_file import fingerprint, load_probe, save_probe

torchvision = pytest.importorskip("torchvision")


class Detector(pl.LightningModule):
    """A user's detection module: the losses in training, the detections (a dict per image) in eval."""

    def __init__(self, **options: Any) -> None:
        super().__init__()
        self.net = torchvision.models.detection.fasterrcnn_mobilenet_v3_large_320_fpn(
            num_classes=3, weights=None, weights_backbone=None, min_size=64, max_size=96, **options
        )  # resized to 64-96 pixels, not 320: a test's CPU budget

    def forward(self, images: list[torch.Tensor]) -> Any:
        return self.net(images)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        images, targets = zip(*batch) if isinstance(batch, list) else batch  # a list of samples, or its columns
        return sum(self.net(list(images), list(targets)).values())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=1e-3)


def _detection_data(sizes: list[tuple[int, int]], n: int = 16) -> list[tuple[torch.Tensor, dict[str, torch.Tensor]]]:
    generator = torch.Generator().manual_seed(0)
    data = []
    for i in range(n):
        image = torch.rand(3, *sizes[i % len(sizes)], generator=generator)
        target = {"boxes": torch.tensor([[4.0, 4.0, 30.0, 30.0]]), "labels": torch.tensor([1 + i % 2])}
        data.append((image, target))
    return data


def _loader(data: list, columns: bool = True) -> DataLoader:
    """torchvision's reference collate, ``tuple(zip(*b))``, or the samples left as a list (``lambda b: b``)."""
    return DataLoader(data, batch_size=8, collate_fn=(lambda items: tuple(zip(*items))) if columns else list)


def test_a_detector_fed_lists_of_images_is_measured_at_its_backbone(tmp_path: Path, caplog: Any) -> None:
    data = _detection_data([(64, 64)])
    monitor = BettiMonitor(probe_size=16, k=3, log_figure=False)
    with caplog.at_level(logging.INFO):
        quiet_trainer(tmp_path, max_epochs=1, limit_train_batches=2, callbacks=[monitor]).fit(Detector(), _loader(data))
    inputs, labels = monitor.probe
    assert isinstance(inputs, SampleList) and len(inputs) == 16 and labels.tolist() == [-1] * 16
    training_images = {image.sum().item() for image, _ in data}
    assert {image.sum().item() for image in inputs} == training_images  # the probe holds the images themselves
    assert "a target dict per sample (a detector's boxes and their classes)" in caplog.text
    assert LOGITS not in monitor.watched_layers  # its detections hold no point per image
    assert "has no dimension of one row per sample (a detector's detections" in caplog.text
    hidden = [name for name in monitor.watched_layers if name != INPUT]
    assert monitor.watched_layers[0] == INPUT and hidden and all(name.startswith("net.backbone.") for name in hidden)
    (entry,) = monitor.history
    assert set(entry["betti"]) == set(monitor.watched_layers)
    assert all(set(per_class) == {"all"} for per_class in entry["betti"].values())


def test_images_of_different_sizes_are_measured_without_the_input_layer(tmp_path: Path, caplog: Any) -> None:
    """Points of different sizes share no space, so 'input' is left out; the detector resizes and pads them to one
    size inside, so its layers hold one point per image. The probe is read in one pass (batch_size), so that the
    padding is the same for every image."""
    data = _detection_data([(40, 90), (90, 40), (64, 64)], n=12)
    monitor = BettiMonitor(probe_size=12, k=3, log_figure=False, batch_size=12)
    with caplog.at_level(logging.INFO):
        quiet_trainer(tmp_path, max_epochs=2, limit_train_batches=1, callbacks=[monitor]).fit(Detector(), _loader(data))
    assert "the probe's images have different sizes" in caplog.text and INPUT not in monitor.watched_layers
    assert len(monitor.history) == 2 and "skipped" not in caplog.text
    assert all(set(monitor.history[-1]["betti"][name]) == {"all"} for name in monitor.watched_layers)
    shapes = {tuple(image.shape) for image in monitor.probe[0]}
    assert shapes == {(3, 40, 90), (3, 90, 40), (3, 64, 64)}


def test_a_probe_of_images_of_different_sizes_is_saved_and_read_back_as_one_per_sample(tmp_path: Path) -> None:
    probe = (SampleList([torch.rand(3, 5, 7), torch.rand(3, 6, 4)]), torch.tensor([-1, -1]))
    path, digest = save_probe(probe, tmp_path)
    inputs, labels = load_probe(path, digest)
    assert isinstance(inputs, SampleList) and [tuple(image.shape) for image in inputs] == [(3, 5, 7), (3, 6, 4)]
    assert fingerprint((inputs, labels)) == digest and all(torch.equal(a, b) for a, b in zip(inputs, probe[0]))


@pytest.mark.parametrize("columns", [True, False], ids=["tuple(zip(*b))", "a list of samples"])
def test_a_detector_that_finds_nothing_is_still_measured(tmp_path: Path, columns: bool) -> None:
    """Untrained FCOS and RetinaNet find no box in an image: sizing the logits on it raised a RuntimeError (a
    reshape of 0 elements) that skipped every measurement, though the logits were not watched."""
    monitor = BettiMonitor(probe_size=16, k=3, log_figure=False)
    quiet_trainer(tmp_path, max_epochs=1, limit_train_batches=1, callbacks=[monitor]).fit(
        Detector(box_score_thresh=1.01), _loader(_detection_data([(64, 64)]), columns)
    )
    (entry,) = monitor.history
    assert monitor.watched_layers and LOGITS not in monitor.watched_layers
    assert set(entry["betti"]) == set(monitor.watched_layers)


def test_pruning_a_detector_says_it_needs_a_class_per_image_and_how_to_give_one(tmp_path: Path) -> None:
    model = Detector()
    trainer = quiet_trainer(tmp_path, max_epochs=1, limit_train_batches=1, callbacks=[BettiPruning(probe_size=8, k=3)])
    with pytest.raises(ValueError, match=r"a target dict per sample") as raised:
        trainer.fit(model, _loader(_detection_data([(64, 64)])))
    assert "set_probe(model, inputs, labels)" in str(raised.value) and "probe=(" not in str(raised.value)
