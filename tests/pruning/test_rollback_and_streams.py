"""BettiPruning after a fit on an endless validation stream measures accuracy on as many batches as the fit's
validation read (it used to read the stream forever), and a rollback gives back the LightningModule's own
parameters and buffers too (they used to keep their fine-tuned values)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import lightning.pytorch as pl
import pytest
import torch
from helpers.image_streams import Stream, images
from helpers.trainers import quiet_trainer
from torch import nn
from torch.utils.data import DataLoader, IterableDataset

from lightning_topo.callbacks import BettiPruning
from lightning_topo.models import CNNClassifier

BATCH = 16


class Streams(pl.LightningDataModule):
    """Endless training and validation streams."""

    def __init__(self) -> None:
        super().__init__()
        self.train, self.val = Stream(), Stream()

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train, batch_size=BATCH)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val, batch_size=BATCH)


def pruner(**kwargs) -> BettiPruning:
    options = dict(amount=0.5, probe_size=60, k=5, recalibrate_batches=2, latency_batch=8, fine_tune_epochs=1)
    return BettiPruning(**(options | kwargs))


def small_cnn() -> CNNClassifier:
    torch.manual_seed(0)
    return CNNClassifier(in_channels=1, num_classes=2, channels=(8, 16), lr=0.01)


# ------------------------------------------------------------------------------------------ an endless validation stream
@pytest.mark.timeout(60)  # the bug: the accuracy guard read the endless validation stream forever after the fit
@pytest.mark.parametrize("validated", [True, False])  # the fit validated (Lightning's count), or never got to it
def test_an_endless_validation_stream_is_read_as_far_as_limit_val_batches(tmp_path, validated):
    data, guard = Streams(), pruner(max_accuracy_drop=1.0)
    every = 2 if validated else 1000  # optimizer steps between validations; the fit takes 4
    trainer = quiet_trainer(tmp_path, max_steps=4, limit_val_batches=2, val_check_interval=every, callbacks=[guard])
    trainer.fit(small_cnn(), datamodule=data)
    report = guard.report
    assert not report["kept_unpruned"] and report["layers"]["features.block1.conv"]["after"] == 4
    for measured in (report["before"]["val_acc"], report["val_acc_before_fine_tune"], report["after"]["val_acc"]):
        assert 0.0 <= measured <= 1.0
    # the fit's validations, the pruner's three accuracies and the fine-tuning's validation: 2 batches each
    assert data.val.passes == [2 * BATCH] * ((2 if validated else 0) + 3 + 1)


@pytest.mark.timeout(60)
def test_an_endless_validation_stream_with_no_bound_leaves_accuracy_to_the_probe_with_a_warning(tmp_path):
    data, guard = Streams(), pruner()
    trainer = quiet_trainer(tmp_path, max_steps=3, val_check_interval=1000, callbacks=[guard])  # never validated
    with pytest.warns(UserWarning, match=r"validation loader has no length .* limit_val_batches=N"):
        trainer.fit(small_cnn(), datamodule=data)
    report = guard.report
    assert not report["kept_unpruned"] and 0.0 <= report["after"]["val_acc"] <= 1.0
    assert data.val.passes == []  # neither the accuracy nor the fine-tuning opened the stream


class Finite(IterableDataset):
    """A stream that ends but has no length (Hugging Face streaming data, webdataset shards); counts its passes."""

    def __init__(self, n: int, seed: int) -> None:
        self.data, self.passes = images(n, seed), 0

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        self.passes += 1
        yield from (self.data[i] for i in range(len(self.data)))


class CountsFineTuning(CNNClassifier):
    def __init__(self) -> None:
        torch.manual_seed(0)
        super().__init__(in_channels=1, num_classes=2, channels=(8, 16), lr=0.01)
        self.fit_ended, self.fine_tune_steps = False, 0

    def on_before_optimizer_step(self, optimizer) -> None:
        self.fine_tune_steps += self.fit_ended


class FitEnds(pl.Callback):
    """Listed before the pruner: marks the end of the fit, so the steps after it are the fine-tuning's."""

    def on_fit_end(self, trainer: pl.Trainer, pl_module: CountsFineTuning) -> None:
        pl_module.fit_ended = True


@pytest.mark.timeout(60)
def test_a_stream_that_ends_without_a_length_is_fine_tuned_and_validated_like_any_loader(tmp_path) -> None:
    """The endless-stream rules took every loader without a length for endless: after full epochs of a finite
    stream the pruner skipped fine-tuning and measured accuracy on the probe, each with a wrong warning."""
    train, val = Finite(128, seed=0), Finite(64, seed=1)
    model, guard = CountsFineTuning(), pruner(max_accuracy_drop=1.0, fine_tune_epochs=2)
    trainer = quiet_trainer(tmp_path, max_epochs=2, callbacks=[FitEnds(), guard])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(model, DataLoader(train, batch_size=32), DataLoader(val, batch_size=32))
    assert not [str(w.message) for w in caught if "no length" in str(w.message)]
    assert model.fine_tune_steps == 2 * 128 // 32  # two whole epochs of the stream
    assert not guard.report["kept_unpruned"]
    # the fit's two validations, the two fine-tuning epochs' (the loaders given to fit() were once left out of the
    # fine-tuning, which then never validated), and the pruner's three accuracies: each reads the stream whole
    assert val.passes == 2 + 2 + 3


def test_of_several_validation_loaders_the_accuracy_reads_the_first() -> None:
    """A dict of validation loaders was iterated as the loader itself: its keys were read as batches."""
    from types import SimpleNamespace

    first, other = DataLoader(images(32), batch_size=BATCH), DataLoader(images(16, seed=1), batch_size=BATCH)
    for loaders in ({"a": first, "b": other}, [first, other], first):
        fit = SimpleNamespace(datamodule=None, val_dataloaders=loaders, num_val_batches=[2, 1])
        assert pruner()._validation(fit) == (first, 2)
    assert pruner()._validation(SimpleNamespace(datamodule=None, val_dataloaders={})) == (None, 0)


# ------------------------------------------------------------------------------------------ rollback
class Tempered(CNNClassifier):
    """A CNN with a parameter and a buffer of its own, in no child: a temperature and a count of training batches.

    In the fine-tuning (after ``fit_ended``) its loss drives the temperature below zero, which flips every
    prediction; with ``fail_fine_tuning`` its second fine-tuning batch raises instead.
    """

    def __init__(self, fail_fine_tuning: bool = False) -> None:
        torch.manual_seed(0)
        super().__init__(in_channels=1, num_classes=2, channels=(8, 16), optimizer="sgd", lr=0.1)
        self.temperature = nn.Parameter(torch.ones(()))
        self.register_buffer("batches_seen", torch.zeros((), dtype=torch.long))
        self.fail_fine_tuning = fail_fine_tuning
        self.fit_ended = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) / self.temperature

    def training_step(self, batch, batch_idx):
        if self.fit_ended and self.fail_fine_tuning and batch_idx == 1:
            raise RuntimeError("out of memory in fine-tuning")
        self.batches_seen += 1
        loss = super().training_step(batch, batch_idx)
        return loss + 100.0 * self.temperature if self.fit_ended else loss


class AtFitEnd(pl.Callback):
    """Listed before the pruner: marks the end of the fit and keeps the trained state and own parameter."""

    def on_fit_end(self, trainer: pl.Trainer, pl_module: Tempered) -> None:
        pl_module.fit_ended = True
        self.trained = {name: tensor.clone() for name, tensor in pl_module.state_dict().items()}
        self.temperature = pl_module.temperature


@pytest.mark.parametrize("how", ["accuracy guard", "failing fine-tuning"])
def test_a_rollback_gives_back_the_modules_own_parameter_and_buffer(tmp_path, how):
    model = Tempered(fail_fine_tuning=how == "failing fine-tuning")
    at_fit_end, guard = AtFitEnd(), pruner(max_accuracy_drop=0.3)
    trainer = quiet_trainer(tmp_path, max_epochs=3, callbacks=[at_fit_end, guard])
    loader = DataLoader(images(128), batch_size=32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(model, loader, loader)
    restored = [str(w.message) for w in caught if "UNPRUNED model was restored" in str(w.message)]
    assert len(restored) == 1 and ("fell by" if how == "accuracy guard" else "out of memory") in restored[0]
    trained = at_fit_end.trained
    assert model.state_dict().keys() == trained.keys()
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, trained[name]), name  # temperature and batches_seen included
    # the very Parameter the fit's optimizer holds, with its trained value
    assert model.temperature is at_fit_end.temperature and model.temperature.grad is None
    assert any(p is model.temperature for group in trainer.optimizers[0].param_groups for p in group["params"])
    if how == "accuracy guard":  # the restored model predicts as the trained one did, not flipped
        report = guard.report
        assert report["before"]["val_acc"] >= 0.9 and report["after"]["val_acc"] <= 0.1
        x, y = images(128).tensors
        with torch.no_grad():
            assert (model.eval()(x).argmax(1) == y).float().mean() >= 0.9
