"""BettiPruning's fine-tuning: as long as the fit's epochs (its batch limits, fast_dev_run, an endless stream's
max_steps), and a Ctrl-C during pruning or fine-tuning gives back the trained, unpruned model and stops the run."""

from __future__ import annotations

import logging
import signal
import warnings

import lightning.pytorch as pl
import pytest
import torch
from helpers.image_streams import Stream, images
from helpers.trainers import quiet_trainer
from torch.utils.data import DataLoader

from lightning_topo.callbacks import BettiPruning
from lightning_topo.models import CNNClassifier
from lightning_topo.pruning import remove_filters


class StepCounter(CNNClassifier):
    """Counts its optimizer steps in the fit and after it (the fine-tuning); can raise Ctrl-C in the fine-tuning."""

    def __init__(self, interrupt_fine_tuning: bool = False) -> None:
        super().__init__(in_channels=1, num_classes=2, channels=(8, 16), lr=0.01)
        self.interrupt_fine_tuning = interrupt_fine_tuning
        self.fit_ended = False
        self.steps = {"fit": 0, "fine-tune": 0}

    def training_step(self, batch, batch_idx):
        if self.fit_ended and self.interrupt_fine_tuning and batch_idx == 1:
            raise KeyboardInterrupt  # the user presses Ctrl-C half-way through the fine-tuning
        return super().training_step(batch, batch_idx)

    def on_before_optimizer_step(self, optimizer) -> None:
        self.steps["fine-tune" if self.fit_ended else "fit"] += 1


class AtFitEnd(pl.Callback):
    """Listed before the pruner: marks the end of the fit and keeps a copy of the trained weights."""

    def __init__(self) -> None:
        self.trained: dict[str, torch.Tensor] = {}

    def on_fit_end(self, trainer: pl.Trainer, pl_module: StepCounter) -> None:
        pl_module.fit_ended = True
        self.trained = {name: tensor.clone() for name, tensor in pl_module.state_dict().items()}


def pruner(**kwargs) -> BettiPruning:
    options = dict(amount=0.5, probe_size=60, k=5, recalibrate_batches=2, latency_batch=8, fine_tune_epochs=2)
    return BettiPruning(**(options | kwargs))


def pruner_failed(trainer: pl.Trainer) -> bool:
    found = next(c for c in trainer.callbacks if isinstance(c, BettiPruning))
    return not found.report or found.report["kept_unpruned"]


# ------------------------------------------------------------------------------------------ how long it fine-tunes
@pytest.mark.parametrize("limit", [2, 0.25])  # 2 of the loader's 8 batches, as a count and as a fraction
def test_fine_tuning_epochs_take_the_fits_limit_train_batches(tmp_path, limit):
    model = StepCounter()
    trainer = quiet_trainer(tmp_path, max_epochs=1, limit_train_batches=limit, callbacks=[AtFitEnd(), pruner()])
    trainer.fit(model, DataLoader(images(), batch_size=32))
    assert model.steps == {"fit": 2, "fine-tune": 2 * 2}  # two fine-tune epochs of the fit's 2 batches, not of 8
    assert model.features.block1.conv.out_channels == 4


def test_fine_tuning_validates_on_the_loaders_given_to_fit_and_keeps_its_trainers_lines_quiet(tmp_path, caplog):
    """``trainer.fit(model, train, val)``: the fine-tuning Trainer got the training loader alone, so it did not
    validate ("You defined a validation_step but have no val_dataloader"), and it announced itself (accelerators,
    tips, ``limit_train_batches=1.0``) as if it were the user's."""
    validated = {"fit": 0, "fine-tune": 0}

    class Counted(StepCounter):
        def validation_step(self, batch, batch_idx):
            validated["fine-tune" if self.fit_ended else "fit"] += 1
            return super().validation_step(batch, batch_idx)

    trainer = quiet_trainer(tmp_path, max_epochs=1, callbacks=[AtFitEnd(), pruner()])
    with caplog.at_level(logging.INFO), warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*val_dataloader.*")
        trainer.fit(Counted(), DataLoader(images(), batch_size=32), DataLoader(images(64, seed=1), batch_size=32))
    assert validated == {"fit": 2, "fine-tune": 2 * 2}  # two fine-tuning epochs, each validated as the fit was
    assert caplog.text.count("GPU available") == 1  # the fit's own start-up line, not the fine-tuning Trainer's
    assert "was configured so 100%" not in caplog.text


@pytest.mark.parametrize("fast_dev_run", [True, 2])
def test_fast_dev_run_fine_tunes_its_batches_only_and_saves_nothing(tmp_path, caplog, fast_dev_run):
    model = StepCounter()
    target = tmp_path / "pruned.pt"
    trainer = quiet_trainer(tmp_path, fast_dev_run=fast_dev_run, callbacks=[AtFitEnd(), pruner(save_path=str(target))])
    with caplog.at_level(logging.INFO):
        trainer.fit(model, DataLoader(images(), batch_size=32))
    batches = int(fast_dev_run)
    assert model.steps == {"fit": batches, "fine-tune": batches}  # one epoch of its batches, as Lightning runs it
    assert model.features.block1.conv.out_channels == 4  # the pruning itself runs, so a dev run exercises it
    assert not target.exists()  # like a checkpoint under fast_dev_run
    assert f"`fast_dev_run` mode: the pruned model is not saved to {str(target)!r}" in caplog.text


@pytest.mark.timeout(60)  # the bug was a fine-tuning epoch that never ended
@pytest.mark.parametrize("accumulate", [1, 2])
def test_fine_tuning_after_an_endless_stream_cut_at_max_steps_is_as_long_as_the_fit(tmp_path, accumulate):
    model = StepCounter()
    trainer = quiet_trainer(tmp_path, max_steps=3, accumulate_grad_batches=accumulate, callbacks=[AtFitEnd(), pruner()])
    trainer.fit(model, DataLoader(Stream(), batch_size=32))
    # the fit was one epoch of 3 optimizer steps; each of the 2 fine-tuning epochs is as long
    assert model.steps == {"fit": 3, "fine-tune": 2 * 3}
    assert model.features.block1.conv.out_channels == 4 and not pruner_failed(trainer)


class StopAfterThreeSteps(pl.Callback):
    def on_train_batch_end(self, trainer: pl.Trainer, *args) -> None:
        trainer.should_stop = trainer.global_step >= 3


@pytest.mark.timeout(60)
def test_fine_tuning_after_an_endless_stream_with_no_bound_is_skipped_with_a_warning(tmp_path):
    model = StepCounter()
    callbacks = [AtFitEnd(), StopAfterThreeSteps(), pruner()]  # only the user's callback ended the fit
    trainer = quiet_trainer(tmp_path, max_epochs=-1, callbacks=callbacks)
    with pytest.warns(
        UserWarning, match=r"fine-tuning skipped: the training loader has no length .*limit_train_batches"
    ):
        trainer.fit(model, DataLoader(Stream(), batch_size=32))
    assert model.steps == {"fit": 3, "fine-tune": 0}
    assert model.features.block1.conv.out_channels == 4  # pruned, not fine-tuned


# ------------------------------------------------------------------------------------------ Ctrl-C
def prune_one_layer_then_ctrl_c(model, plan, example, forward_fn=None):
    remove_filters(model, {"features.block1.conv": plan["features.block1.conv"]}, example, forward_fn)
    raise KeyboardInterrupt  # the user presses Ctrl-C half-way through the surgery


@pytest.mark.parametrize("during", ["fine-tuning", "surgery"])
def test_ctrl_c_during_pruning_restores_the_trained_weights_and_stops_the_run(tmp_path, monkeypatch, during):
    import lightning_topo.callbacks.betti_pruning as module

    if during == "surgery":
        monkeypatch.setattr(module, "remove_filters", prune_one_layer_then_ctrl_c)
    handler = signal.getsignal(signal.SIGINT)
    model = StepCounter(interrupt_fine_tuning=during == "fine-tuning")
    at_fit_end = AtFitEnd()
    target = tmp_path / "pruned.pt"
    trainer = quiet_trainer(tmp_path, max_epochs=1, callbacks=[at_fit_end, pruner(save_path=str(target))])
    try:
        with pytest.raises((KeyboardInterrupt, SystemExit)), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            trainer.fit(model, DataLoader(images(), batch_size=32))
        handler_after = signal.getsignal(signal.SIGINT)
    finally:
        signal.signal(signal.SIGINT, handler)  # Lightning ignores Ctrl-C once it has had one: keep pytest's
    assert model.steps["fine-tune"] == (1 if during == "fine-tuning" else 0)  # the interrupt came part-way through
    trained = at_fit_end.trained
    assert list(model.hparams["channels"]) == [8, 16]
    assert model.state_dict().keys() == trained.keys()
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, trained[name]), name  # unpruned, untouched by the fine-tuning
    assert any("interrupted" in str(w.message) and "UNPRUNED model was restored" in str(w.message) for w in caught)
    assert not target.exists()
    if during == "fine-tuning":  # the fine-tuning Trainer gives Ctrl-C back (the fit's own, after its teardown, cannot)
        assert handler_after is handler
