"""BettiMonitor: real Betti numbers in real event files, for our models and users' own, never killing training."""

from __future__ import annotations

import warnings
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
import torchvision
from helpers.trainers import quiet_standalone_trainer, quiet_trainer
from helpers.user_models import TinyNet, blobs
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.custom_scalar import layout_pb2
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_topo.callbacks import BettiMonitor
from lightning_topo.models import MLPClassifier


def event_tags(log_dir: Path) -> dict[str, list]:
    accumulator = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "images": 0})
    accumulator.Reload()
    return accumulator.Tags() | {"_acc": accumulator}


# ------------------------------------------------------------------------------------------ the science
def test_trained_relu_mlp_collapses_d1_class_a_from_nine_components_to_one(trained_d1_mlp, tmp_path):
    model, data = trained_d1_mlp
    monitor = BettiMonitor(probe_size=2000, k=14)
    logger = TensorBoardLogger(tmp_path, name="d1", version=0)
    trainer = quiet_trainer(tmp_path, max_epochs=1, logger=logger, callbacks=[monitor])
    # one more epoch at a tiny learning rate: the monitor sees the trained network
    model.hparams.lr = 1e-6
    trainer.fit(model, datamodule=data)
    betti = monitor.history[-1]["betti"]
    assert betti["input"]["0"][0] == 9 and betti["input"]["1"] == [1, 9]
    assert betti["logits"]["0"][0] == 1
    layers = list(betti)
    assert layers[0] == "input" and layers[-1] == "logits" and "features.layer5.act" in layers

    tags = event_tags(tmp_path / "d1" / "version_0")
    assert {"betti/input/class_0/b0", "betti/logits/class_0/b0", "betti/features.layer1.act/class_1/b1"} <= set(
        tags["scalars"]
    )
    assert "betti/seconds" in tags["scalars"]
    assert "betti/depth_profile" in tags["images"]
    value = tags["_acc"].Scalars("betti/input/class_0/b0")[0].value
    assert value == 9.0


# ------------------------------------------------------------------------------------------ any model, any loader
def test_user_resnet18_with_named_layers_and_a_plain_dataloader(tmp_path):
    class ResNetModule(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = torchvision.models.resnet18(num_classes=2)

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, batch_idx):
            return nn.functional.cross_entropy(self(batch[0]), batch[1])

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    x, y = torch.randn(48, 3, 32, 32), torch.arange(48) % 2
    loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True)
    monitor = BettiMonitor(
        layers=["net.layer1", "net.layer4.*.conv2", "net.fc"], probe_size=40, k=5, include_input=False
    )
    quiet_trainer(tmp_path, max_epochs=1, callbacks=[monitor]).fit(ResNetModule(), loader)
    betti = monitor.history[0]["betti"]
    assert list(betti) == ["net.layer1", "net.layer4.0.conv2", "net.layer4.1.conv2", "net.fc"]
    assert all(len(per_class) == 2 and all(v[0] >= 1 for v in per_class.values()) for per_class in betti.values())


def test_default_layers_are_activations_and_logits_in_forward_order(tmp_path):
    monitor = BettiMonitor(probe_size=64, k=5)
    quiet_trainer(tmp_path, max_epochs=1, callbacks=[monitor]).fit(TinyNet(), DataLoader(blobs(), batch_size=64))
    assert list(monitor.history[0]["betti"]) == ["input", "body.1", "body.3", "logits"]


def test_unknown_layer_name_fails_before_training_listing_the_names(tmp_path):
    model = TinyNet()
    before = [p.clone() for p in model.parameters()]
    monitor = BettiMonitor(layers=["body.7"], probe_size=64, k=5)
    with pytest.raises(ValueError, match=r"'body.7' matches no module of TinyNet; available names: body, body.0"):
        quiet_trainer(tmp_path, max_epochs=1, callbacks=[monitor]).fit(model, DataLoader(blobs(), batch_size=64))
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_probe_is_fixed_balanced_and_leaves_training_randomness_alone(tmp_path):
    def train(with_monitor: bool) -> tuple[list[torch.Tensor], BettiMonitor]:
        pl.seed_everything(3, verbose=False)
        model = TinyNet(norm=True)
        monitor = BettiMonitor(probe_size=40, k=5)
        callbacks = [monitor] if with_monitor else []
        loader = DataLoader(blobs(), batch_size=32, shuffle=True)
        quiet_trainer(tmp_path, max_epochs=2, callbacks=callbacks).fit(model, loader)
        return [t.detach().clone() for t in model.state_dict().values()], monitor  # parameters and BN buffers

    plain, _ = train(False)
    watched, monitor = train(True)
    assert all(torch.equal(a, b) for a, b in zip(plain, watched))
    x, y = monitor._probe
    assert torch.bincount(y).tolist() == [20, 20]
    assert len(monitor.history) == 2


# ------------------------------------------------------------------------------------------ never kills training
def test_nan_layer_is_skipped_with_a_warning_and_training_finishes(tmp_path):
    monitor = BettiMonitor(probe_size=64, k=5)
    trainer = quiet_trainer(tmp_path, max_epochs=2, callbacks=[monitor])
    with pytest.warns(UserWarning, match=r"skipped layer 'body.3', classes 0, 1 at epoch 0: NaN or Inf"):
        trainer.fit(TinyNet(poison=True), DataLoader(blobs(), batch_size=64))
    assert trainer.current_epoch == 2 and len(monitor.history) == 2
    betti = monitor.history[-1]["betti"]
    assert "body.3" not in betti and betti["body.1"]["0"][0] >= 1 and "logits" in betti


def test_too_small_probe_warns_and_skips_instead_of_crashing(tmp_path):
    monitor = BettiMonitor(probe_size=8, k=14)  # 4 points per class, k=14
    trainer = quiet_trainer(tmp_path, max_epochs=1, callbacks=[monitor])
    with pytest.warns(UserWarning, match="fewer than k\\+1"):
        trainer.fit(TinyNet(), DataLoader(blobs(), batch_size=64))
    assert trainer.current_epoch == 1 and monitor.history[0]["betti"] == {}


# ------------------------------------------------------------------------------------------ checkpoints
def test_resuming_from_a_checkpoint_keeps_the_history(tmp_path):
    loader = DataLoader(blobs(), batch_size=64)
    checkpoint = ModelCheckpoint(dirpath=tmp_path, filename="last")
    first = BettiMonitor(probe_size=40, k=5)
    quiet_trainer(tmp_path, max_epochs=2, enable_checkpointing=True, callbacks=[first, checkpoint]).fit(
        TinyNet(), loader
    )
    resumed = BettiMonitor(probe_size=40, k=5)
    other_data = DataLoader(blobs(seed=1), batch_size=64)  # a probe drawn afresh would now differ
    quiet_trainer(tmp_path, max_epochs=4, callbacks=[resumed]).fit(
        TinyNet(), other_data, ckpt_path=str(tmp_path / "last.ckpt")
    )
    # the checkpoint caught the last measurements in flight: the resumed run completes them from the saved lists
    assert [e["epoch"] for e in resumed.history] == [0, 1, 2, 3]
    numbers = [(e["epoch"], e["step"], e["betti"]) for e in first.history]
    assert [(e["epoch"], e["step"], e["betti"]) for e in resumed.history[:2]] == numbers
    # the probe is restored, not redrawn, so the resumed curves continue on the same points
    assert all(torch.equal(a, b) for a, b in zip(resumed.probe, first.probe))
    # ... from one file beside the checkpoints, not from tensors inside every checkpoint
    state = torch.load(tmp_path / "last.ckpt", weights_only=True)["callbacks"][first.state_key]
    assert "probe" not in state and Path(state["probe_file"]).parent == tmp_path
    assert state["probe_file"].endswith(f"betti_probe-{state['probe_fingerprint']}.pt")


def _checkpointed_run(tmp_path):
    checkpoint = ModelCheckpoint(dirpath=tmp_path, filename="last")
    first = BettiMonitor(probe_size=40, k=5)
    trainer = quiet_trainer(tmp_path, max_epochs=1, enable_checkpointing=True, callbacks=[first, checkpoint])
    trainer.fit(TinyNet(), DataLoader(blobs(), batch_size=64))
    state = torch.load(tmp_path / "last.ckpt", weights_only=True)["callbacks"][first.state_key]
    return first, Path(state["probe_file"])


def _resume(tmp_path):
    resumed = BettiMonitor(probe_size=40, k=5)
    trainer = quiet_trainer(tmp_path, max_epochs=2, callbacks=[resumed])
    trainer.fit(TinyNet(), DataLoader(blobs(seed=1), batch_size=64), ckpt_path=str(tmp_path / "last.ckpt"))
    return resumed


def test_a_missing_probe_file_is_reported_and_a_new_probe_drawn(tmp_path):
    first, probe_file = _checkpointed_run(tmp_path)
    probe_file.unlink()
    with pytest.warns(UserWarning, match=r"probe file .* is missing .* draws a new probe"):
        resumed = _resume(tmp_path)
    assert not torch.equal(resumed.probe[0], first.probe[0])  # other data: visibly another probe, as warned
    assert [e["epoch"] for e in resumed.history] == [0, 1]


def test_a_run_folder_moved_whole_resumes_on_its_probe(tmp_path):
    """The checkpoint names the probe file by its absolute path; after the run's folder was moved (or copied to
    another machine), the file beside the resumed checkpoint used to be passed over: a new probe, with a warning
    that asked for what had been done, copying the file along with the checkpoints."""
    first, probe_file = _checkpointed_run(tmp_path / "run")
    (tmp_path / "run").rename(tmp_path / "moved")
    assert not probe_file.exists()
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*probe file.*")
        resumed = _resume(tmp_path / "moved")
    assert all(torch.equal(a, b) for a, b in zip(resumed.probe, first.probe))
    assert Path(resumed.state_dict()["probe_file"]) == tmp_path / "moved" / probe_file.name  # its checkpoints: here


def test_a_changed_probe_file_is_reported(tmp_path):
    first, probe_file = _checkpointed_run(tmp_path)
    saved = torch.load(probe_file, weights_only=True)
    saved["inputs"] = saved["inputs"] + 1.0
    torch.save(saved, probe_file)
    with pytest.warns(UserWarning, match=r"holds other points than the checkpoint was saved with"):
        _resume(tmp_path)


def test_a_checkpoint_keyed_by_the_old_class_name_still_restores_the_history():
    monitor = BettiMonitor(probe_size=40, k=5)
    probe = (torch.zeros(4, 2), torch.tensor([0, 1, 0, 1]))
    monitor.on_load_checkpoint(None, None, {"callbacks": {"BettiMonitor": {"history": [{"epoch": 0}], "probe": probe}}})
    assert monitor.history == [{"epoch": 0}] and monitor.probe[0].shape == (4, 2)


def test_two_monitors_in_one_trainer_keep_their_own_state(tmp_path):
    loader = DataLoader(blobs(), batch_size=64)
    checkpoint = ModelCheckpoint(dirpath=tmp_path, filename="last")
    # the same layers, but another k: two configurations, two states
    hidden, logits = (
        BettiMonitor(layers=["body.*"], probe_size=40, k=5),
        BettiMonitor(layers=["body.*"], probe_size=40, k=6, tag_prefix="k6"),
    )
    quiet_trainer(tmp_path, max_epochs=1, enable_checkpointing=True, callbacks=[hidden, logits, checkpoint]).fit(
        TinyNet(), loader
    )
    assert set(hidden.history[0]["betti"]) == {"input", "body.0", "body.1", "body.2", "body.3"}
    assert set(logits.history[0]["betti"]) == {"input", "body.0", "body.1", "body.2", "body.3"}
    states = torch.load(tmp_path / "last.ckpt", weights_only=False)["callbacks"]
    assert {hidden.state_key, logits.state_key} <= set(states) and hidden.state_key != logits.state_key


def test_a_half_precision_model_is_monitored(tmp_path):
    monitor = BettiMonitor(probe_size=40, k=5, layers=["body.1", "logits"])
    trainer = quiet_trainer(tmp_path, max_epochs=1, precision="bf16-true", callbacks=[monitor])
    trainer.fit(TinyNet(), DataLoader(blobs(), batch_size=64))  # the layer order and the capture both see bf16
    assert next(trainer.lightning_module.parameters()).dtype == torch.bfloat16
    entry = monitor.history[-1]
    assert set(entry["betti"]) == {"input", "body.1", "logits"} and all(len(v) == 2 for v in entry["betti"].values())


# ------------------------------------------------------------------------------------------ the standalone namespace
def plain_pl_module():
    """A user's module written against the standalone ``pytorch_lightning`` package (imported only here)."""
    import pytorch_lightning as ptl

    class PlainPL(ptl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, batch_idx):
            return nn.functional.cross_entropy(self(batch[0]), batch[1])

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=0.01)

        def train_dataloader(self):
            return DataLoader(blobs(), batch_size=64)

    return PlainPL


def test_standalone_pytorch_lightning_trainer_and_module(tmp_path):
    import pytorch_lightning as ptl

    monitor = BettiMonitor(probe_size=40, k=5)
    trainer = ptl.Trainer(
        max_epochs=2,
        logger=ptl.loggers.TensorBoardLogger(tmp_path, name="ptl", version=0),
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        callbacks=[monitor],
    )
    trainer.fit(plain_pl_module()(), DataLoader(blobs(), batch_size=64))
    assert len(monitor.history) == 2
    assert {"betti/net.1/class_1/b0", "betti/logits/class_0/b1"} <= set(
        event_tags(tmp_path / "ptl" / "version_0")["scalars"]
    )
    saved = torch.load(next(tmp_path.glob("ptl/version_0/checkpoints/*.ckpt")), weights_only=False)
    state = saved["callbacks"][monitor.state_key]  # completed measurements, and those in flight as neighbour lists
    assert [e["epoch"] for e in state["history"]] + [p["epoch"] for p in state["pending"]] == [0, 1]
    assert state["history"] == monitor.history[: len(state["history"])]


def test_the_monitors_info_lines_reach_the_logger_of_lightnings_own_lines(tmp_path):
    """Both Lightning namespaces loaded: the monitor's notice and Lightning's start-up line are records of one
    logger (whichever namespace was imported last owns it), so a user's handler gets both or neither."""
    import logging

    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler, loggers = Keep(), [logging.getLogger(name) for name in ("lightning.pytorch", "pytorch_lightning")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    try:
        module = plain_pl_module()()
        module.net = nn.Sequential(
            *[nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4)) for _ in range(2)], nn.Linear(4, 2)
        )
        monitor = BettiMonitor(probe_size=40, k=5)  # no activation module: the blocks, with a notice
        quiet_standalone_trainer(tmp_path, callbacks=[monitor]).fit(module, DataLoader(blobs(), batch_size=64))
    finally:
        for logger, level in zip(loggers, levels):
            logger.removeHandler(handler)
            logger.setLevel(level)
    ours = [r.name for r in records if r.getMessage().startswith("BettiMonitor: ")]
    lightnings = [r.name for r in records if r.getMessage().startswith("GPU available")]
    assert ours and lightnings and set(ours) == set(lightnings)
    assert ours[0].endswith(".utilities.rank_zero")


def test_standalone_pytorch_lightning_cli_accepts_the_callbacks_in_yaml(tmp_path):
    # the standalone LightningCLI type-checks trainer.callbacks against pytorch_lightning.Callback
    import pytorch_lightning as ptl
    from pytorch_lightning.cli import LightningCLI

    from lightning_topo.callbacks import BettiPruning, ContinueAtLearningRates, EpochProgress

    assert all(
        issubclass(c, ptl.Callback) for c in (BettiMonitor, BettiPruning, EpochProgress, ContinueAtLearningRates)
    )

    callbacks = '[{"class_path": "lightning_topo.callbacks.BettiMonitor", "init_args": {"probe_size": 40, "k": 5}}]'
    cli = LightningCLI(
        plain_pl_module(),
        args=[
            "fit",
            "--trainer.max_epochs=2",
            "--trainer.logger=false",
            "--trainer.enable_progress_bar=false",
            "--trainer.enable_checkpointing=false",
            f"--trainer.default_root_dir={tmp_path}",
            f"--trainer.callbacks={callbacks}",
        ],
    )
    monitor = next(c for c in cli.trainer.callbacks if isinstance(c, BettiMonitor))
    assert len(monitor.history) == 2 and "net.1" in monitor.history[-1]["betti"]


# (2-process DDP: tests/callbacks/test_betti_monitor_route.py shares the work over ranks and checks the numbers)


# ------------------------------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"layers": "features.*"}, "layers must be None, 'activations', 'blocks' or a list"),
        ({"probe_size": 2}, "probe_size"),
        ({"dims": (0, -1)}, "dims"),
        ({"every_n_epochs": 0}, "every_n_epochs"),
        ({"metric": "cosine"}, "metric must be one of"),
        ({"k": 1}, "k must be"),
        ({"probe": (torch.zeros(3, 2), torch.zeros(2, dtype=torch.long))}, "3 inputs but 2 labels"),
        # each of these used to pass and fail at every epoch (or skip every layer, silently)
        ({"probe": (torch.zeros(4, 2), torch.ones(4, 2))}, "multi-label.*pass labels=None"),
        ({"probe": (torch.zeros(4, 2), torch.tensor([0.0, 0.7, 0.0, 1.0]))}, "fractional floats .*not classes"),
        ({"probe": (torch.zeros(4, 2), torch.tensor([0.0, float("nan"), 0.0, 1.0]))}, "fractional floats"),
        ({"probe": (torch.zeros(0, 2), torch.zeros(0, dtype=torch.long))}, "the probe is empty"),
        ({"probe": (torch.zeros(2, 2), torch.tensor([0, -1]))}, "class indices >= 0"),
        ({"probe": ([[0.0, 1.0]], [0])}, "probe inputs must be a tensor"),
        ({"probe": torch.zeros(4, 2)}, "probe must be a pair"),
        # classes= on a probe given by hand: used to measure nothing (or fewer classes), silently
        ({"probe": (torch.zeros(4, 2), torch.tensor([0, 1, 2, 1])), "classes": [5, 6]}, r"classes \[5, 6\] are not in"),
        ({"probe": (torch.zeros(4, 2), torch.tensor([0, 1, 2, 1])), "classes": [1, 6]}, r"labels: 0, 1, 2\)"),
        ({"probe": (torch.zeros(4, 2), torch.tensor([0, 1, 2, 1])), "classes": 4}, "more classes than the probe"),
        ({"scale": float("inf")}, "scale must be a positive finite number"),
        ({"k": "14"}, "k must be an integer >= 2"),
        ({"seed": -3}, "seed must be a non-negative integer"),
        ({"seed": 1.5}, "seed must be a non-negative integer"),
        ({"per_class": "false"}, "per_class must be True or False"),
        ({"log_figure": 0}, "log_figure must be True or False"),
        # True is an int to Python; each of these passed as 1 before the count checks were shared
        ({"batch_size": True}, r"batch_size must be an integer >= 1, got True"),
        ({"every_n_epochs": True}, r"every_n_epochs must be an integer >= 1, got True"),
        ({"dims": (0, True)}, "dims must be a non-empty list of non-negative integers"),
        ({"num_workers": -1}, r"num_workers \(None: chosen by the device, 0: synchronous\) must be an integer >= 0"),
        ({"memory_budget_mb": float("inf")}, "memory_budget_mb must be a positive finite number"),
        ({"memory_budget_mb": "512"}, "memory_budget_mb must be a positive finite number"),  # a TypeError before
        ({"intrinsic_dimension": "yes"}, "intrinsic_dimension must be True or False"),
    ],
)
def test_bad_arguments_fail_at_construction(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BettiMonitor(**kwargs)


def test_compute_outside_a_fit_says_what_it_needs_and_resolves_layers_on_the_model_given():
    net = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 2))
    monitor = BettiMonitor(k=3, log_figure=False)
    with pytest.raises(RuntimeError, match=r"compute needs a probe: call monitor.set_probe\(inputs, labels\)"):
        monitor.compute(net)
    angles = torch.linspace(0, 6.28, 40)
    monitor.set_probe(torch.stack([angles.cos(), angles.sin()], 1), torch.arange(40) % 2)  # no model here
    entry = monitor.compute(net)  # used to be {'betti': {}}: nothing watched, nothing said
    assert monitor.watched_layers == ["input", "1", "logits"]
    assert sorted(entry["betti"]) == ["1", "input", "logits"] and entry["betti"]["input"]["0"][0] >= 1


def test_a_probe_the_model_cannot_take_is_named_at_train_start(tmp_path):
    monitor = BettiMonitor(probe=(torch.zeros(20, 3), torch.arange(20) % 2), k=3, log_figure=False)
    trainer = quiet_trainer(tmp_path, max_epochs=1, callbacks=[monitor])
    with pytest.raises(ValueError, match=r"could not be run on the probe's inputs \(float32 \(2, 3\), 2 samples\)"):
        trainer.fit(TinyNet(), DataLoader(blobs(), batch_size=32))


class KeywordOnly(TinyNet):
    def forward(self, *, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x)

    def training_step(self, batch, batch_idx):
        return nn.functional.cross_entropy(self(x=batch[0]), batch[1])


def test_a_forward_of_keyword_arguments_only_gets_the_way_to_call_it_at_train_start(tmp_path):
    """Where classes are chosen, the model was first called outside the friendly error: a bare TypeError ended the
    fit. Both first calls now name the inputs and the way out, which then works."""
    data = DataLoader(blobs(), batch_size=32)
    for options in ({}, {"classes": 2}):
        monitor = BettiMonitor(probe_size=64, k=4, log_figure=False, **options)
        with pytest.raises(ValueError, match=r"could not be run.*forward_fn=lambda module, x: module\(x=x\)"):
            quiet_trainer(tmp_path, max_epochs=1, callbacks=[monitor]).fit(KeywordOnly(), data)
        monitor = BettiMonitor(probe_size=64, k=4, log_figure=False, forward_fn=lambda m, x: m(x=x), **options)
        quiet_trainer(tmp_path, max_epochs=1, callbacks=[monitor]).fit(KeywordOnly(), data)
        assert monitor.history and "logits" in monitor.history[-1]["betti"]


def test_a_fit_that_ends_before_its_first_measured_epoch_says_so(tmp_path):
    """every_n_epochs=5 with max_epochs=2 (or an early stop) left the history empty, silently."""
    notices = {}
    for every in (5, 2):
        monitor = BettiMonitor(probe_size=64, k=4, every_n_epochs=every, log_figure=False)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            quiet_trainer(tmp_path, max_epochs=2, callbacks=[monitor]).fit(
                TinyNet(), DataLoader(blobs(), batch_size=32)
            )
        notices[every] = [str(w.message) for w in caught if "measured no epoch of this fit" in str(w.message)]
        assert len(monitor.history) == (0 if every == 5 else 1)
    assert len(notices[5]) == 1 and "once every 5 epochs (the ends of epochs 4, 9, ...)" in notices[5][0]
    assert notices[2] == []


def test_mlp_classifier_in_a_yaml_recipe_gets_the_monitor(tmp_path, monkeypatch):
    from lightning_topo.cli import run_cli

    monkeypatch.chdir(tmp_path)
    cli = run_cli(["fit", "-c", "recipes/d1_circles.yaml", "--trainer.max_epochs=2", "--trainer.logger=false"])
    monitors = [c for c in cli.trainer.callbacks if isinstance(c, BettiMonitor)]
    assert len(monitors) == 1 and isinstance(cli.model, MLPClassifier)


@pytest.mark.parametrize(("share", "drawn"), [(0.0, [1, 4]), (1e9, [1, 2, 3, 4])])
def test_figures_are_drawn_within_their_time_budget_and_always_at_the_end(tmp_path, monkeypatch, share, drawn):
    """Drawing the figures at every measurement doubled a small full-batch fit: they are redrawn only while their
    drawing stays within FIGURE_SHARE of the fit's time, the first and the last measurement's always."""
    from lightning.pytorch.loggers import TensorBoardLogger
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    import lightning_topo.monitoring.logger_output as module

    monkeypatch.setattr(module, "FIGURE_SHARE", share)
    monitor = BettiMonitor(probe_size=40, k=5, num_workers=0)
    logger = TensorBoardLogger(tmp_path, name="tb")
    quiet_trainer(tmp_path, max_epochs=4, callbacks=[monitor], logger=logger).fit(
        TinyNet(), DataLoader(blobs(), batch_size=256)
    )
    events = EventAccumulator(str(tmp_path / "tb" / "version_0"), size_guidance={"images": 0})
    events.Reload()
    assert [image.step for image in events.Images("betti/over_training")] == drawn
    assert [e["step"] for e in monitor.history] == [1, 2, 3, 4]


def test_a_hand_made_probe_with_float_0_1_labels_is_read_as_classes_like_a_batch():
    """BatchReader reads BCE's 0./1. targets as classes; a probe given by hand with the same labels is read alike."""
    net = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1))
    angles = torch.linspace(0, 6.28, 40)
    x, y = torch.stack([angles.cos(), angles.sin()], 1), torch.arange(40) % 2
    as_long, as_float = BettiMonitor(k=3, log_figure=False), BettiMonitor(k=3, log_figure=False)
    as_long.set_probe(x, y, model=net)
    as_float.set_probe(x, y.float().unsqueeze(1), model=net)
    assert as_float.probe[1].dtype == torch.long and torch.equal(as_float.probe[1], y)
    assert as_float.compute(net)["betti"] == as_long.compute(net)["betti"]


def test_classes_keep_a_hand_made_probe_to_its_own_labels_at_construction_and_in_set_probe():
    """classes=N picks N of the probe's labels (not of the model's output range); a list keeps those labels."""
    x, y = torch.randn(60, 2), torch.tensor([3, 5, 9]).repeat(20)
    net = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 10))
    two = BettiMonitor(probe=(x, y), classes=2, k=3, log_figure=False)
    assert len(set(two._given_probe[1].tolist())) == 2 and set(two._given_probe[1].tolist()) < {3, 5, 9}
    listed = BettiMonitor(classes=[5, 9], k=3, log_figure=False)
    listed.set_probe(x, y, model=net)
    assert sorted(set(listed.probe[1].tolist())) == [5, 9] and len(listed.probe[1]) == 40
    assert sorted(next(iter(listed.compute(net)["betti"].values()))) == ["5", "9"]
    with pytest.raises(ValueError, match=r"classes \[4\] are not in the probe given \(its labels: 3, 5, 9\)"):
        BettiMonitor(classes=[4, 5], k=3).set_probe(x, y)


def test_two_monitors_write_their_numbers_under_their_own_tags(tmp_path):
    """The docs' pair: a cheap monitor every epoch and a full one every 2. Without a prefix both wrote
    ``betti/input/class_0/b1`` at the same steps, and the chart zig-zagged between their numbers."""
    cheap = BettiMonitor(layers=["logits"], probe_size=40, k=3, num_workers=0)
    full = BettiMonitor(probe_size=40, k=10, every_n_epochs=2, num_workers=0, tag_prefix="full")
    logger = TensorBoardLogger(tmp_path, name="tb")
    trainer = quiet_trainer(tmp_path, max_epochs=4, callbacks=[cheap, full], logger=logger)
    trainer.fit(TinyNet(), DataLoader(blobs(), batch_size=64))
    tags = event_tags(tmp_path / "tb" / "version_0")
    events = tags["_acc"]
    cheap_steps = [e["step"] for e in cheap.history]
    full_steps = [e["step"] for e in full.history]
    assert len(cheap_steps) == 4 and len(full_steps) == 2
    for monitor, prefix, steps in ((cheap, "", cheap_steps), (full, "full/", full_steps)):
        tag = f"{prefix}betti/input/class_0/b1"
        assert [(e.step, e.value) for e in events.Scalars(tag)] == [
            (entry["step"], float(entry["betti"]["input"]["0"][1])) for entry in monitor.history
        ]
        assert [e.step for e in events.Scalars(f"{prefix}betti/seconds")] == steps
        assert f"{prefix}betti/over_training" in tags["images"]
    assert "full/betti/logits/class_1/b0" in trainer.callback_metrics
    assert not any(tag.startswith("betti/body") for tag in tags["scalars"])  # the cheap one watches the logits only
    # TensorBoard shows the charts layout written last alone: it holds both monitors' charts
    layouts = EventAccumulator(str(tmp_path / "tb" / "version_0"), size_guidance={"tensors": 0})
    layouts.Reload()
    last = layout_pb2.Layout.FromString(layouts.Tensors("custom_scalars__config__")[-1].tensor_proto.string_val[0])
    charts = {category.title: [c.multiline.tag[0] for c in category.chart] for category in last.category}
    assert set(charts) == {"Betti numbers by layer", "Betti numbers by layer (full)"}
    assert r"^full/betti/.*/class_0/b1$" in charts["Betti numbers by layer (full)"]


def test_two_monitors_without_a_logger_keep_their_own_histories_without_a_prefix(tmp_path):
    monitors = [BettiMonitor(probe_size=40, k=5), BettiMonitor(layers=["logits"], probe_size=40, k=6)]
    quiet_trainer(tmp_path, max_epochs=1, callbacks=monitors).fit(TinyNet(), DataLoader(blobs(), batch_size=64))
    assert [set(m.history[0]["betti"]) for m in monitors] == [
        {"input", "body.1", "body.3", "logits"},
        {"input", "logits"},
    ]


def test_a_monitor_given_a_tag_prefix_resumes_the_state_its_checkpoint_saved_without_one(tmp_path):
    _checkpointed_run(tmp_path)  # a monitor with no tag_prefix
    after = BettiMonitor(probe_size=40, k=5, tag_prefix="full")
    quiet_trainer(tmp_path, max_epochs=2, callbacks=[after]).fit(
        TinyNet(), DataLoader(blobs(), batch_size=64), ckpt_path=tmp_path / "last.ckpt"
    )
    assert [entry["epoch"] for entry in after.history] == [0, 1]


def test_two_monitors_under_the_same_tags_fail_before_training_naming_the_fix(tmp_path):
    model = TinyNet()
    before = {name: value.clone() for name, value in model.state_dict().items()}
    monitors = [BettiMonitor(probe_size=40, k=5), BettiMonitor(probe_size=40, k=6)]
    trainer = quiet_trainer(tmp_path, max_epochs=1, callbacks=monitors, logger=TensorBoardLogger(tmp_path, name="tb"))
    with pytest.raises(ValueError, match=r"2 BettiMonitors in this Trainer have no tag_prefix, .* tag_prefix='full'"):
        trainer.fit(model, DataLoader(blobs(), batch_size=64))
    assert all(torch.equal(value, before[name]) for name, value in model.state_dict().items())  # nothing trained
    with pytest.raises(ValueError, match="tag_prefix must be None or a non-empty name such as 'full', got '/'"):
        BettiMonitor(tag_prefix="/")
