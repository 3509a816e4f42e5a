"""The monitor in the training set-ups users have: a ``torch.compile``'d network and several training loaders.

Each fit is compared with the same fit in the plain set-up: the same layers watched, the same Betti numbers.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from helpers.trainers import quiet_trainer
from helpers.user_models import NetClassifier, blobs
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.utilities import CombinedLoader
from torch import nn
from torch.utils.data import DataLoader

from lightning_topo.callbacks import BettiMonitor
from lightning_topo.monitoring.layers import select_layers
from lightning_topo.monitoring.probe import draw_probe, first_loader, group_by_class


class Layers(nn.Module):
    """A network as users write one: named layers called in its own ``forward`` (``len()`` undefined)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.act1 = nn.Linear(4, 16), nn.ReLU()
        self.fc2, self.act2 = nn.Linear(16, 16), nn.Tanh()
        self.head = nn.Linear(16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.act2(self.fc2(self.act1(self.fc1(x)))))


def _fit(tmp_path: Path, net: nn.Module, loaders, **monitor_options) -> BettiMonitor:
    monitor = BettiMonitor(probe_size=200, k=6, log_figure=False, **monitor_options)
    quiet_trainer(tmp_path, max_epochs=2, callbacks=[monitor]).fit(NetClassifier(net), loaders)
    return monitor


def _plain_names(betti: dict) -> dict:
    return {layer.replace("_orig_mod.", ""): numbers for layer, numbers in betti.items()}


def _sequential() -> nn.Sequential:
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 2))


@pytest.mark.parametrize(
    ("build", "fullgraph", "acts"),
    [(Layers, False, ("act1", "act2")), (Layers, True, ("act1", "act2")), (_sequential, False, ("1", "3"))],
)
def test_a_compiled_network_is_measured_as_the_network_itself(
    tmp_path: Path, build, fullgraph: bool, acts: tuple[str, str]
) -> None:
    """The trace used to fail on a compiled module (its ``len()`` raises) and end the fit, and the monitor's hooks,
    traced into the compiled graph, skipped a layer every epoch (or broke a ``fullgraph`` compile). The monitor's
    passes now run the network's own code."""
    torch.manual_seed(0)
    plain = build()
    compiled = build()
    compiled.load_state_dict(plain.state_dict())
    loader = DataLoader(blobs(), batch_size=64)
    pl.seed_everything(0)
    expected = _fit(tmp_path / "plain", plain, loader)
    pl.seed_everything(0)
    found = _fit(tmp_path / "compiled", torch.compile(compiled, backend="eager", fullgraph=fullgraph), loader)
    assert found.watched_layers == ["input", *(f"net._orig_mod.{act}" for act in acts), "logits"]
    assert [entry["epoch"] for entry in found.history] == [0, 1]
    for mine, theirs in zip(found.history, expected.history):
        assert not mine.get("skipped")
        assert _plain_names(mine["betti"]) == theirs["betti"]


def test_a_layer_of_a_compiled_network_is_named_with_or_without_orig_mod(tmp_path: Path) -> None:
    net = torch.compile(Layers(), backend="eager")
    monitor = _fit(tmp_path, net, DataLoader(blobs(), batch_size=64), layers=["net.act2", "net._orig_mod.fc1"])
    assert monitor.watched_layers == ["input", "net._orig_mod.fc1", "net._orig_mod.act2"]
    # a pattern picks what it picks uncompiled: not the original module too, whose output is its wrapper's
    example = torch.zeros(2, 4)
    assert select_layers(NetClassifier(_sequential()), ["net.*"], example) == [
        "net.0",
        "net.1",
        "net.2",
        "net.3",
        "net.4",
    ]
    compiled = NetClassifier(torch.compile(_sequential(), backend="eager"))
    assert select_layers(compiled, ["net.*"], example) == [f"net._orig_mod.{n}" for n in range(5)]


def test_with_several_training_loaders_the_probe_is_drawn_from_the_first(tmp_path: Path, caplog) -> None:
    """A dict of loaders used to end the fit at its start: the monitor read the dict's keys as batches."""
    first, other = DataLoader(blobs(seed=0), batch_size=64), DataLoader(blobs(seed=1), batch_size=32)
    with caplog.at_level(logging.INFO):
        monitor = _fit(tmp_path, Layers(), {"a": first, "b": other})
    assert "several training loaders; its probe is drawn from the first ('a')" in caplog.text
    assert [entry["epoch"] for entry in monitor.history] == [0, 1] and not monitor.history[-1].get("skipped")
    alone = group_by_class(*draw_probe(first, 200, Layers()))  # the monitor keeps its probe grouped by class
    assert torch.equal(monitor.probe[0], alone[0]) and torch.equal(monitor.probe[1], alone[1])
    nested = draw_probe({"x": [other, first]}, 200, Layers())  # a list inside a dict: its first loader
    assert torch.equal(nested[0], draw_probe(other, 200, Layers())[0])
    for combined in (CombinedLoader(first), CombinedLoader({"a": first, "b": other})):  # one loader, or several
        assert first_loader(combined)[0] is first
    assert torch.equal(draw_probe(CombinedLoader(first), 200, Layers())[0], draw_probe(first, 200, Layers())[0])


def test_without_a_logger_the_monitor_says_where_its_numbers_are(tmp_path: Path, caplog) -> None:
    notice = "the trainer has no logger (logger=False, barebones or fast_dev_run)"
    for options, said in (({}, True), ({"fast_dev_run": 2}, True), ({"logger": CSVLogger(tmp_path)}, False)):
        caplog.clear()
        monitor = BettiMonitor(probe_size=64, k=6, log_figure=False)
        trainer = quiet_trainer(tmp_path, **{"max_epochs": 1, **options}, callbacks=[monitor])
        with caplog.at_level(logging.INFO):
            trainer.fit(NetClassifier(Layers()), DataLoader(blobs(), batch_size=64))
        assert (notice in caplog.text) is said, options
        assert monitor.history and "betti/logits/class_0/b0" in trainer.callback_metrics


class _CountedSteps(NetClassifier):
    def __init__(self, net: nn.Module) -> None:
        super().__init__(net)
        self.steps_per_epoch: dict[int, int] = {}

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        epoch = self.current_epoch
        self.steps_per_epoch[epoch] = self.steps_per_epoch.get(epoch, 0) + 1
        return super().training_step(batch, batch_idx)


def test_a_loader_with_persistent_workers_keeps_every_batch_of_the_first_epoch(tmp_path: Path) -> None:
    """Lightning starts the epoch's iterator before ``on_train_start``, and a loader with persistent workers hands
    every ``iter()`` that one iterator: the probe was drawn from it, so epoch 0 trained on 2 of its 6 batches (1 when
    shuffled), silently, and the run's weights differed from the same run without the monitor."""
    weights = []
    for callbacks in ([], [BettiMonitor(probe_size=64, k=6, log_figure=False)]):
        torch.manual_seed(0)
        model = _CountedSteps(Layers())
        loader = DataLoader(blobs(192), batch_size=32, shuffle=True, num_workers=2, persistent_workers=True)
        quiet_trainer(tmp_path, max_epochs=2, callbacks=callbacks).fit(model, loader)
        assert model.steps_per_epoch == {0: 6, 1: 6}
        weights.append(model.state_dict())
    assert all(torch.equal(weights[0][name], weights[1][name]) for name in weights[0])
    assert len(callbacks[0].history) == 2 and [e["step"] for e in callbacks[0].history] == [6, 12]


def test_one_monitor_in_a_sweep_of_trainers_starts_a_run_per_trainer(tmp_path: Path, caplog) -> None:
    """The same callback object in every Trainer of a sweep used to keep the first fit's probe (a second data set
    was measured on the first one's points; another input width stopped the fit) and to append its epochs again
    (history epochs 0, 0); a second fit of the same Trainer still continues the first."""
    monitor = BettiMonitor(probe_size=64, k=6, log_figure=False)
    first = quiet_trainer(tmp_path, max_epochs=1, callbacks=[monitor])
    first.fit(NetClassifier(Layers()), DataLoader(blobs(seed=0), batch_size=64))
    first_history, first_probe = monitor.history, monitor.probe
    first.fit_loop.max_epochs = 2
    first.fit(NetClassifier(Layers()), DataLoader(blobs(seed=0), batch_size=64))  # the same Trainer: continued
    assert [entry["epoch"] for entry in monitor.history] == [0, 1] and monitor.probe is first_probe
    with caplog.at_level(logging.INFO):
        quiet_trainer(tmp_path, max_epochs=1, callbacks=[monitor]).fit(
            NetClassifier(Layers()), DataLoader(blobs(seed=1), batch_size=64)
        )
    assert "a new Trainer fits with this monitor, so its history starts anew" in caplog.text
    assert [entry["epoch"] for entry in monitor.history] == [0] and len(first_history) == 2
    assert torch.equal(monitor.probe[0], group_by_class(*draw_probe(DataLoader(blobs(seed=1)), 64, Layers()))[0])
    wide = NetClassifier(nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 2)))  # another input width
    data = torch.utils.data.TensorDataset(torch.randn(128, 6), torch.arange(128) % 2)
    quiet_trainer(tmp_path, max_epochs=1, callbacks=[monitor]).fit(wide, DataLoader(data, batch_size=64))
    assert monitor.probe[0].shape[1] == 6 and len(monitor.history) == 1


class Batch:
    """A batch class of the user's own, as a custom collate_fn returns it: attributes and a ``to`` for Lightning."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def to(self, *args, **kwargs) -> Batch:
        return Batch(self.x.to(*args, **kwargs), self.y.to(*args, **kwargs))


class OnBatchObjects(NetClassifier):
    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        return nn.functional.cross_entropy(self(batch.x), batch.y)


def _batch_objects(items: list) -> Batch:
    return Batch(torch.stack([x for x, _ in items]), torch.stack([y for _, y in items]))


def test_a_batch_object_of_the_users_own_is_read_by_its_attributes(tmp_path: Path) -> None:
    """An object with tensor attributes was no batch the rule could read ("found no model inputs", with a hint to
    forward_fn that could not help): its public attributes are now read as a mapping's keys, by the same rule."""
    loader = DataLoader(blobs(), batch_size=64, collate_fn=_batch_objects)
    monitor = BettiMonitor(probe_size=64, k=6, log_figure=False)
    quiet_trainer(tmp_path, max_epochs=1, callbacks=[monitor]).fit(OnBatchObjects(Layers()), loader)
    assert monitor.history and set(monitor.history[-1]["betti"]["logits"]) == {"0", "1"}
    x, y = next(iter(DataLoader(blobs(), batch_size=256)))
    points = {tuple(row.tolist()): int(label) for row, label in zip(x, y)}
    assert all(points[tuple(row.tolist())] == int(label) for row, label in zip(*monitor.probe))  # x with its own y


def test_under_overfit_batches_the_probe_holds_the_batches_the_model_trains_on(tmp_path: Path) -> None:
    """``overfit_batches=2`` trains on the loader's first two batches, unshuffled: the probe was drawn from the whole
    loader, so it described data the model never saw."""
    x, y = torch.arange(400.0)[:, None].repeat(1, 4), torch.arange(400) % 2  # each sample's values: its index
    loader = DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=20, shuffle=True)
    monitor = BettiMonitor(probe_size=40, k=4, log_figure=False)
    trainer = quiet_trainer(tmp_path, max_epochs=1, overfit_batches=2, callbacks=[monitor])
    trainer.fit(NetClassifier(_sequential()), loader)
    indices = monitor.probe[0][:, 0]
    assert len(indices) == 40 and int(indices.max()) < 40  # the first two batches of 20 samples, all of them


@pytest.mark.parametrize(
    "options",
    [{}, {"classes": [0, 1]}, {"num_workers": 1}],
    ids=["default", "classes (a first-batch look-ahead)", "worker processes"],
)
def test_a_loader_with_its_own_generator_trains_on_the_same_order_with_the_monitor(
    tmp_path: Path, options: dict
) -> None:
    """``DataLoader(..., shuffle=True, generator=g)``, PyTorch's recipe for a reproducible order: drawing the probe
    advanced ``g``, so the fit with the monitor trained on other batches than the fit without it."""
    options = dict(options)
    workers = options.pop("num_workers", 0)

    seen: list[list[float]] = []

    class Recorded(NetClassifier):
        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            seen.append(batch[0][:, 0].tolist())
            return super().training_step(batch, batch_idx)

    def fit(callbacks: list) -> tuple[list[list[float]], dict[str, torch.Tensor]]:
        torch.manual_seed(0)
        module = Recorded(Layers())
        seen.clear()
        loader = DataLoader(blobs(), batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(42))
        pl.seed_everything(0)
        quiet_trainer(tmp_path, max_epochs=2, callbacks=callbacks).fit(module, loader)
        return list(seen), module.state_dict()

    plain_batches, plain_weights = fit([])
    monitor = BettiMonitor(probe_size=100, k=6, log_figure=False, num_workers=workers, **options)
    batches, weights = fit([monitor])
    assert [entry["epoch"] for entry in monitor.history] == [0, 1]
    assert batches == plain_batches
    assert all(torch.equal(weights[name], plain_weights[name]) for name in plain_weights)


def test_a_learning_rate_finder_in_mid_fit_leaves_no_measurement_to_repeat_after_a_resume(tmp_path: Path) -> None:
    """Lightning's documented ``lr_find`` at a milestone epoch restores its own checkpoint in the middle of the fit.
    With worker processes, that checkpoint named the measurement then in flight, which stayed 'restored' after it
    was done: every later checkpoint carried it as pending, and a resumed run measured that epoch again."""
    from lightning.pytorch.callbacks import LearningRateFinder, ModelCheckpoint

    class FinderAtEpoch(LearningRateFinder):  # as in LearningRateFinder's docs
        def on_fit_start(self, *args: Any, **kwargs: Any) -> None:
            return

        def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            if trainer.current_epoch == 2:
                self.lr_find(trainer, pl_module)

    class Tunable(NetClassifier):
        def __init__(self) -> None:
            super().__init__(Layers())
            self.lr = 0.01

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.Adam(self.parameters(), lr=self.lr)

    loader = DataLoader(blobs(), batch_size=32, shuffle=True)

    def fit(epochs: int, monitor: BettiMonitor, *callbacks: Any, **options: Any) -> None:
        last = ModelCheckpoint(dirpath=tmp_path, save_last=True)
        trainer = quiet_trainer(
            tmp_path, max_epochs=epochs, enable_checkpointing=True, callbacks=[monitor, *callbacks, last]
        )
        trainer.fit(Tunable(), loader, **options)

    first = BettiMonitor(probe_size=100, k=6, log_figure=False, num_workers=1)
    fit(3, first, FinderAtEpoch(num_training_steps=8))
    assert [entry["epoch"] for entry in first.history] == [0, 1, 2]
    saved = torch.load(tmp_path / "last.ckpt", weights_only=True)["callbacks"][first.state_key]
    assert [entry["epoch"] for entry in saved["history"] + saved["pending"]] == [0, 1, 2]
    resumed = BettiMonitor(probe_size=100, k=6, log_figure=False, num_workers=1)
    fit(4, resumed, ckpt_path=str(tmp_path / "last.ckpt"))
    assert [entry["epoch"] for entry in resumed.history] == [0, 1, 2, 3]


class SamplesInEval(pl.LightningModule):
    """A model that samples in eval mode too (a VAE's reparameterisation; a masked autoencoder's random masks)."""

    def __init__(self, lr: float) -> None:
        super().__init__()
        self.lr = lr
        self.enc, self.dec = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 8)), nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean, log_var = self.enc(x).chunk(2, dim=1)
        return self.dec(mean + torch.randn_like(mean) * (0.5 * log_var).exp())

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.lr)


def _sampling_fit(tmp_path: Path, lr: float, monitor: BettiMonitor | None) -> SamplesInEval:
    g = torch.Generator().manual_seed(0)
    data = list(zip(torch.randn(60, 8, generator=g), torch.arange(60) % 3))
    pl.seed_everything(0, verbose=False)
    model = SamplesInEval(lr)
    quiet_trainer(tmp_path, max_epochs=3, callbacks=[monitor] if monitor else []).fit(model, DataLoader(data, 20))
    return model


def test_a_model_that_samples_in_eval_mode_is_measured_alike_and_trains_alike(tmp_path: Path) -> None:
    """The measurement passes drew from the training run's generator: the same weights measured differently at
    every epoch, and the fit trained to other weights with the monitor than without it."""
    monitor = BettiMonitor(probe_size=60, k=4, log_figure=False, intrinsic_dimension=True)
    _sampling_fit(tmp_path / "frozen", 0.0, monitor)  # lr 0: the weights never change
    ids = [entry["id"]["logits"]["0"] for entry in monitor.history]
    assert len(ids) == 3 and ids[0] == ids[1] == ids[2]
    with_monitor = _sampling_fit(tmp_path / "a", 0.1, BettiMonitor(probe_size=60, k=4, log_figure=False))
    without = _sampling_fit(tmp_path / "b", 0.1, None)
    assert all(torch.equal(p, q) for p, q in zip(with_monitor.parameters(), without.parameters()))
