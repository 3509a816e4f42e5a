"""Training batches with no class per sample, as real set-ups make them: CutMix/MixUp in the loader (torchvision),
multi-label targets, regression targets, unlabelled data and a causal language model's token labels (a tiny
GPT-2 built here). The monitor measures such a probe as one cloud and says why; it used to stop the fit at train
start. One-hot labels are their classes."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from helpers.trainers import quiet_trainer
from helpers.user_models import HFClassifier
from torch import nn
from torch.utils.data import DataLoader, TensorDataset, default_collate

from lightning_topo.callbacks import BettiMonitor, BettiPruning
from lightning_topo.monitoring import NO_CLASS

ONE_CLOUD = "reads no class per sample in a training batch"


def _circle(n: int, seed: int = 0) -> torch.Tensor:
    """``n`` points spread around the unit circle (shuffled) with a little noise: one component, one loop."""
    generator = torch.Generator().manual_seed(seed)
    angle = torch.arange(n) * (2 * math.pi / n) + torch.rand(n, generator=generator) * (0.6 * math.pi / n)
    points = torch.stack([angle.cos(), angle.sin()], 1) + 0.02 * torch.randn(n, 2, generator=generator)
    return points[torch.randperm(n, generator=generator)]


class LossOf(pl.LightningModule):
    """A small network trained with the loss a set-up uses on whatever its batches hold."""

    def __init__(self, net: nn.Module, loss: Any) -> None:
        super().__init__()
        self.net, self.loss = net, loss

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        if isinstance(batch, torch.Tensor) or len(batch) == 1:  # unlabelled: an autoencoder's reconstruction
            x = batch if isinstance(batch, torch.Tensor) else batch[0]
            return self.loss(self(x), x)
        return self.loss(self(batch[0]), batch[1])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=1e-2)


def _mlp(width_out: int) -> nn.Module:
    return nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, width_out))


def _fit(tmp_path: Path, caplog: Any, model: pl.LightningModule, loader: DataLoader, **options: Any) -> BettiMonitor:
    monitor = BettiMonitor(log_figure=False, **options)
    with caplog.at_level(logging.INFO):
        quiet_trainer(tmp_path, max_epochs=2, callbacks=[monitor]).fit(model, train_dataloaders=loader)
    return monitor


def _assert_one_cloud(monitor: BettiMonitor) -> None:
    assert bool((monitor.probe[1] == NO_CLASS).all())
    assert len(monitor.history) == 2
    for entry in monitor.history:
        assert set(entry["betti"]) == set(monitor.watched_layers)
        assert all(set(per_cloud) == {"all"} for per_cloud in entry["betti"].values())


x_circle = _circle(200)  # the probe is all of it
SET_UPS = {
    "multi-label (multi-hot BCE targets)": (
        TensorDataset(x_circle, (torch.rand(200, 3, generator=torch.Generator().manual_seed(1)) > 0.5).float()),
        3,
        nn.functional.binary_cross_entropy_with_logits,
        "are not one class per sample",
    ),
    "regression targets": (
        TensorDataset(x_circle, x_circle.norm(dim=1, keepdim=True)),
        1,
        nn.functional.mse_loss,
        "regression",
    ),
    "regression targets that are whole numbers (counts 0-29), one output": (
        TensorDataset(x_circle, (torch.arange(200) % 30).float()[:, None]),
        1,
        nn.functional.mse_loss,
        "are no classes of a model with one output: regression targets",
    ),  # read as 30 classes, of which it watched 1 with a handful of points
    "unlabelled data, (x,) batches": (TensorDataset(x_circle), 2, nn.functional.mse_loss, "found no labels"),
    "unlabelled data, tensor batches": (x_circle, 2, nn.functional.mse_loss, "found no labels"),
}


@pytest.mark.parametrize("set_up", list(SET_UPS))
def test_batches_without_classes_are_one_cloud_and_a_circle_keeps_its_loop(
    set_up: str, tmp_path: Path, caplog: Any
) -> None:
    data, width_out, loss, reason = SET_UPS[set_up]
    model = LossOf(_mlp(width_out), loss)
    monitor = _fit(tmp_path, caplog, model, DataLoader(data, batch_size=64), probe_size=200, k=6)
    _assert_one_cloud(monitor)
    assert ONE_CLOUD in caplog.text and reason in caplog.text and "label_key=" in caplog.text
    assert len(monitor.probe[1]) == 200
    for entry in monitor.history:  # the probe's inputs are the circle, whatever the labels were
        assert entry["betti"]["input"]["all"] == [1, 1]


def test_cutmix_and_mixup_in_the_loader_are_measured_as_one_cloud(tmp_path: Path, caplog: Any) -> None:
    v2 = pytest.importorskip("torchvision.transforms.v2")
    torch.manual_seed(0)
    images = TensorDataset(torch.rand(256, 3, 16, 16), torch.arange(256) % 4)
    mix = v2.RandomChoice([v2.CutMix(num_classes=4), v2.MixUp(num_classes=4)])
    loader = DataLoader(images, batch_size=64, collate_fn=lambda items: mix(*default_collate(items)))
    assert not bool((next(iter(loader))[1] == next(iter(loader))[1].round()).all())  # soft targets indeed
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))
    monitor = _fit(tmp_path, caplog, LossOf(net, nn.functional.cross_entropy), loader, probe_size=100, k=6)
    _assert_one_cloud(monitor)  # the fit stopped at train start with "fractional floats"
    assert "CutMix/MixUp" in caplog.text and monitor.watched_layers == ["input", "net.1", "logits"]


def test_one_hot_labels_are_read_as_their_classes(tmp_path: Path, caplog: Any) -> None:
    generator = torch.Generator().manual_seed(0)
    x, classes = torch.randn(240, 2, generator=generator), torch.arange(240) % 3
    one_hot = nn.functional.one_hot(classes, 3).float()  # cross_entropy takes class probabilities too
    model = LossOf(_mlp(3), nn.functional.cross_entropy)
    monitor = _fit(tmp_path, caplog, model, DataLoader(TensorDataset(x, one_hot), batch_size=60), probe_size=90, k=6)
    assert ONE_CLOUD not in caplog.text
    assert sorted(set(monitor.probe[1].tolist())) == [0, 1, 2]
    points, labels = monitor.probe
    for point, label in zip(points, labels):  # each point keeps its own class
        assert int(classes[int(torch.nonzero((x == point).all(1))[0])]) == int(label)
    assert set(monitor.history[-1]["betti"]["logits"]) == {"0", "1", "2"}


def test_a_causal_language_model_with_token_labels_is_measured(tmp_path: Path, caplog: Any) -> None:
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=50, n_positions=32, n_embd=16, n_layer=2, n_head=2)
    ids = torch.randint(0, 50, (64, 12), generator=torch.Generator().manual_seed(0))
    batches = [{"input_ids": ids[i : i + 16], "attention_mask": torch.ones(16, 12), "labels": ids[i : i + 16]}
               for i in range(0, 64, 16)]  # fmt: skip
    model = HFClassifier(transformers.GPT2LMHeadModel(config))  # training_step: self(**batch).loss
    loader = DataLoader(batches, batch_size=None)
    monitor = _fit(tmp_path, caplog, model, loader, probe_size=48, k=4, layers="blocks", token_pooling="mean")
    _assert_one_cloud(monitor)  # labels (16, 12): the fit stopped at train start
    assert "shape (16, 12)" in caplog.text and set(monitor.probe[0]) == {"input_ids", "attention_mask"}
    assert monitor.watched_layers == ["model.transformer.h.0", "model.transformer.h.1", "logits"]
    assert all(b0 >= 1 for b0, *_ in (cloud["all"] for cloud in monitor.history[-1]["betti"].values()))


def test_a_probe_given_without_labels_is_one_cloud_and_the_pruner_refuses_it() -> None:
    net = _mlp(2)
    monitor = BettiMonitor(k=6, log_figure=False)
    monitor.set_probe(_circle(200), None, model=net)
    assert monitor.compute(net)["betti"]["input"] == {"all": [1, 1]}
    with pytest.raises(ValueError, match=r"classes=2 needs class labels.*labels=None"):
        BettiMonitor(probe=(_circle(50), None), classes=2)
    with pytest.raises(ValueError, match="labels=None to measure the probe as one cloud"):
        BettiMonitor(probe=(_circle(4), torch.ones(4, 3)))  # multi-hot by hand: the hint names the way out
    pruner = BettiPruning(amount=0.5, probe_size=20, k=4)
    with pytest.raises(ValueError, match="labels are None: pass one class label per point"):
        pruner.set_probe(net, _circle(20), None)


def test_the_pruner_still_needs_classes_and_says_so_at_train_start(tmp_path: Path) -> None:
    data = TensorDataset(_circle(64), (torch.rand(64, 3) > 0.5).float())
    model = LossOf(_mlp(3), nn.functional.binary_cross_entropy_with_logits)
    pruner = BettiPruning(amount=0.5, probe_size=20, k=4)
    with pytest.raises(ValueError, match=r"BettiPruning cannot read a training batch.*not one class per sample"):
        quiet_trainer(tmp_path, max_epochs=1, callbacks=[pruner]).fit(model, DataLoader(data, batch_size=16))


def test_a_one_cloud_run_resumes_on_the_same_points(tmp_path: Path) -> None:
    from lightning.pytorch.callbacks import ModelCheckpoint

    data, width_out, loss, _ = SET_UPS["unlabelled data, (x,) batches"]
    first = BettiMonitor(probe_size=100, k=6, log_figure=False)
    checkpoint = ModelCheckpoint(dirpath=tmp_path, filename="last")
    quiet_trainer(tmp_path, max_epochs=1, enable_checkpointing=True, callbacks=[first, checkpoint]).fit(
        LossOf(_mlp(width_out), loss), DataLoader(data, batch_size=64, shuffle=True)
    )
    resumed = BettiMonitor(probe_size=100, k=6, log_figure=False)
    quiet_trainer(tmp_path, max_epochs=2, callbacks=[resumed]).fit(
        LossOf(_mlp(width_out), loss), DataLoader(_circle(200, seed=1)), ckpt_path=str(tmp_path / "last.ckpt")
    )
    assert all(torch.equal(a, b) for a, b in zip(resumed.probe, first.probe))  # restored, not redrawn
    assert [e["epoch"] for e in resumed.history] == [0, 1]
    assert set(resumed.history[-1]["betti"]["input"]) == {"all"}


def test_a_question_answering_head_is_measured_on_its_logits_not_its_loss(tmp_path: Path, caplog: Any) -> None:
    """SQuAD-style batches hold start_positions and end_positions, no labels: they are the head's targets, not model
    inputs (given, the model returned a 0-d loss first, and the logits layer was skipped at every measurement)."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32
    )
    generator = torch.Generator().manual_seed(0)
    ids, starts = torch.randint(3, 50, (64, 12), generator=generator), torch.randint(0, 6, (64,), generator=generator)
    batches = [
        {"input_ids": ids[i : i + 16], "attention_mask": torch.ones(16, 12, dtype=torch.long),
         "start_positions": starts[i : i + 16], "end_positions": starts[i : i + 16] + 3}
        for i in range(0, 64, 16)
    ]  # fmt: skip
    model = HFClassifier(transformers.BertForQuestionAnswering(config))  # training_step: self(**batch).loss
    monitor = _fit(tmp_path, caplog, model, DataLoader(batches, batch_size=None), probe_size=48, k=4, layers="blocks")
    _assert_one_cloud(monitor)
    assert set(monitor.probe[0]) == {"input_ids", "attention_mask"}
    assert monitor.watched_layers[-1] == "logits" and all("logits" in e["betti"] for e in monitor.history)
