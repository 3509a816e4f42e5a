"""BettiPruning in a Trainer: pruned models are smaller, run and reload; failures keep the trained model."""

from __future__ import annotations

import sys
import textwrap
import warnings

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
import torchvision
import yaml
from helpers.processes import run_child, run_two_rank_script
from helpers.trainers import quiet_standalone_trainer, quiet_trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_topo.callbacks import BettiPruning
from lightning_topo.models import CNNClassifier
from lightning_topo.pruning import load_pruned, remove_filters
from lightning_topo.topology.filters import cubical_scores


def images(n: int = 256, size: int = 12, seed: int = 0) -> TensorDataset:
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.randn(n, 1, size, size, generator=gen)
    x[:, 0, : size // 2] += 2.0 * y[:, None, None]
    return TensorDataset(x, y)


# ------------------------------------------------------------------------------------------ scores
def test_cubical_criterion_reads_non_square_maps_as_they_are():
    model = CNNClassifier(in_channels=1, num_classes=2, channels=(4,)).eval()
    x = torch.randn(30, 1, 12, 20, generator=torch.Generator().manual_seed(0))  # wide images: 12 x 20 maps
    pruner = BettiPruning(amount=0.5, criterion="cubical", probe_size=30, k=5)
    pruner.set_probe(model, x, torch.arange(30) % 2)
    with torch.no_grad():
        maps = model.features.block1.conv(x)
    assert maps.shape[-2:] == (12, 20)
    np.testing.assert_allclose(pruner.score(model)["features.block1.conv"], cubical_scores(maps))


# ------------------------------------------------------------------------------------------ the callback
def test_pruning_our_cnn_in_place_then_reload_in_a_fresh_process(tmp_path):
    pl.seed_everything(0, verbose=False)
    data = images()
    model = CNNClassifier(in_channels=1, num_classes=2, channels=(8, 16), lr=0.01)
    pruner = BettiPruning(amount=0.5, probe_size=100, k=5, save_path=str(tmp_path / "pruned.pt"))
    trainer = quiet_trainer(tmp_path, max_epochs=2, callbacks=[pruner])
    trainer.fit(model, DataLoader(data, batch_size=64, shuffle=True), DataLoader(data, batch_size=128))
    assert model.features.block1.conv.out_channels == 4 and model.features.block2.conv.out_channels == 8
    assert model.features.block2.bn.num_features == 8 and model.head.in_features == 8
    assert list(model.hparams["channels"]) == [4, 8]
    before, after = pruner.report["parameters"]
    assert after < 0.5 * before
    assert "features.block1.conv" in pruner.report["table"]

    # the hyper-parameters rebuild the pruned shape, and the saved file reloads with one call
    rebuilt = CNNClassifier(**model.hparams)
    rebuilt.load_state_dict(model.state_dict())
    x = data.tensors[0][:16]
    model.eval()
    with torch.no_grad():
        expected = model(x)
        assert torch.equal(rebuilt.eval()(x), expected)
        assert torch.equal(load_pruned(tmp_path / "pruned.pt")(x), expected)
    torch.save(x, tmp_path / "x.pt")
    script = textwrap.dedent(
        f"""
        import torch
        from lightning_topo.pruning import load_pruned
        model = load_pruned({str(tmp_path / "pruned.pt")!r})
        with torch.no_grad():
            torch.save(model(torch.load({str(tmp_path / "x.pt")!r})), {str(tmp_path / "out.pt")!r})
        """
    )
    run_child([sys.executable, "-c", script], check=True)
    assert torch.equal(torch.load(tmp_path / "out.pt"), expected)


class ResNetModule(pl.LightningModule):
    """A user's own LightningModule around torchvision's ResNet-18."""

    def __init__(self) -> None:
        super().__init__()
        self.net = torchvision.models.resnet18(num_classes=2)
        self.net.conv1 = nn.Conv2d(1, 64, 3, padding=1, bias=False)

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        return nn.functional.cross_entropy(self(batch[0]), batch[1])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def test_pruning_a_user_resnet18_lightning_module(tmp_path):
    data = images(64, size=16)
    model = ResNetModule()
    pruner = BettiPruning(
        amount=0.25,
        layers=["net.layer1.*.conv1", "net.layer2.0.conv1"],
        probe_size=40,
        k=5,
        save_path=str(tmp_path / "resnet.pt"),
        latency_batch=4,
    )
    quiet_trainer(tmp_path, max_epochs=1, callbacks=[pruner]).fit(model, DataLoader(data, batch_size=32))
    assert model.net.layer1[0].conv1.out_channels == 48 and model.net.layer2[0].conv1.out_channels == 96
    x = data.tensors[0][:4]
    assert model.eval()(x).shape == (4, 2)
    assert torch.equal(load_pruned(tmp_path / "resnet.pt")(x), model(x))


class LearningRateLog(CNNClassifier):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.seen_lrs: list[float] = []

    def on_train_batch_start(self, batch, batch_idx):
        self.seen_lrs.append(self.trainer.optimizers[0].param_groups[0]["lr"])


def test_fine_tuning_continues_at_the_learning_rate_the_fit_ended_with(tmp_path):
    model = LearningRateLog(in_channels=1, num_classes=2, channels=(8, 16), lr=0.01, lr_halve_every=1)
    pruner = BettiPruning(amount=0.5, probe_size=60, k=5, fine_tune_epochs=1)
    quiet_trainer(tmp_path, max_epochs=2, callbacks=[pruner]).fit(model, DataLoader(images(128), batch_size=64))
    # the fit: 4 steps, halving every step; the fine-tune epoch goes on from 0.01 / 16, not from 0.01 again
    assert model.seen_lrs == pytest.approx([0.01, 0.005, 0.0025, 0.00125, 0.000625, 0.0003125])
    assert model.features.block1.conv.out_channels == 4


def test_fine_tuning_at_a_chosen_learning_rate(tmp_path):
    model = LearningRateLog(in_channels=1, num_classes=2, channels=(8, 16), lr=0.01, lr_halve_every=1)
    pruner = BettiPruning(amount=0.5, probe_size=60, k=5, fine_tune_epochs=1, fine_tune_lr=0.003)
    quiet_trainer(tmp_path, max_epochs=1, callbacks=[pruner]).fit(model, DataLoader(images(128), batch_size=64))
    assert model.seen_lrs == pytest.approx([0.01, 0.005, 0.003, 0.0015])


def test_accuracy_guard_restores_the_unpruned_weights(tmp_path):
    pl.seed_everything(0, verbose=False)
    data = images()
    model = CNNClassifier(in_channels=1, num_classes=2, channels=(8, 16), lr=0.01)
    pruner = BettiPruning(amount=0.9, probe_size=100, k=5, max_accuracy_drop=0.0, criterion="l1", direction="lowest")
    loader = DataLoader(data, batch_size=64)
    with pytest.warns(UserWarning, match="UNPRUNED model was restored"):
        # max_accuracy_drop=0 with 90% of filters gone: any drop at all triggers the guard
        quiet_trainer(tmp_path, max_epochs=3, callbacks=[pruner]).fit(model, loader, loader)
    assert pruner.report["kept_unpruned"]
    assert model.features.block1.conv.out_channels == 8 and list(model.hparams["channels"]) == [8, 16]
    assert pruner.report["after"]["parameters"] < pruner.report["before"]["parameters"]  # it did prune, then undid it


def test_a_failure_half_way_through_pruning_restores_the_trained_model(tmp_path, monkeypatch):
    import lightning_topo.callbacks.betti_pruning as module

    def prune_one_layer_then_fail(model, plan, example, forward_fn=None):
        remove_filters(model, {"features.block1.conv": plan["features.block1.conv"]}, example, forward_fn)
        raise RuntimeError("dependency graph broke on layer 2")

    monkeypatch.setattr(module, "remove_filters", prune_one_layer_then_fail)
    pl.seed_everything(0, verbose=False)
    model = CNNClassifier(in_channels=1, num_classes=2, channels=(8, 16), lr=0.01)
    trainer = quiet_trainer(tmp_path, max_epochs=2, callbacks=[BettiPruning(amount=0.5, probe_size=60, k=5)])
    with pytest.warns(UserWarning, match="BettiPruning failed .*dependency graph broke.* UNPRUNED model was restored"):
        trainer.fit(model, DataLoader(images(96), batch_size=32))
    assert trainer.current_epoch == 2  # the fit itself finished
    assert model.features.block1.conv.out_channels == 8 and model.features.block1.bn.num_features == 8
    assert list(model.hparams["channels"]) == [8, 16]
    assert model.eval()(images(4).tensors[0]).shape == (4, 2)  # the restored model still runs


def test_a_save_that_fails_keeps_the_pruned_model_and_says_so(tmp_path):
    (tmp_path / "taken").mkdir()  # a directory where the file should go
    model = CNNClassifier(in_channels=1, num_classes=2, channels=(8, 16))
    pruner = BettiPruning(amount=0.5, probe_size=60, k=5, save_path=str(tmp_path / "taken"))
    with pytest.warns(UserWarning, match="could not save the pruned model"):
        quiet_trainer(tmp_path, max_epochs=1, callbacks=[pruner]).fit(model, DataLoader(images(96), batch_size=32))
    assert model.features.block1.conv.out_channels == 4 and not pruner.report["kept_unpruned"]


def test_threshold_that_selects_nothing_warns_and_keeps_the_model(tmp_path):
    model = CNNClassifier(in_channels=1, num_classes=2, channels=(4,))
    pruner = BettiPruning(threshold=300, probe_size=40, k=5)  # k-NN hop scores are a handful of loops
    with pytest.warns(UserWarning, match="no filter selected"):
        quiet_trainer(tmp_path, max_epochs=1, callbacks=[pruner]).fit(model, DataLoader(images(64), batch_size=32))
    assert model.features.block1.conv.out_channels == 4


def test_a_resumed_run_that_trains_no_epoch_says_that_nothing_was_pruned(tmp_path):
    """Resuming a finished run with the pruner added, to prune its model: Lightning skips the fit loop, so no probe
    is drawn, and the pruner used to end the fit without a word."""
    model = CNNClassifier(in_channels=1, num_classes=2, channels=(4,))
    loader = DataLoader(images(64), batch_size=32)
    quiet_trainer(tmp_path, max_epochs=1, enable_checkpointing=True).fit(model, loader)
    (checkpoint,) = (tmp_path / "checkpoints").glob("*.ckpt")
    pruner = BettiPruning(amount=0.5, probe_size=40, k=5)
    with pytest.warns(UserWarning, match="the fit trained no epoch, so it drew no probe and pruned nothing"):
        quiet_trainer(tmp_path, max_epochs=1, callbacks=[pruner]).fit(model, loader, ckpt_path=checkpoint)
    assert model.features.block1.conv.out_channels == 4 and pruner.report == {}


def test_testing_after_the_fit_without_a_model_says_why_its_checkpoint_does_not_fit(tmp_path):
    """``trainer.test(dataloaders=...)`` after a fit loads the fit's best checkpoint, the unpruned network, into the
    pruned model: the bare list of size mismatches now comes with the reason and the ways out."""
    pl.seed_everything(0, verbose=False)
    model = CNNClassifier(in_channels=1, num_classes=2, channels=(8,))
    pruner = BettiPruning(amount=0.5, probe_size=60, k=5, fine_tune_epochs=0, recalibrate_batches=0)
    trainer = quiet_trainer(tmp_path, max_epochs=1, enable_checkpointing=True, callbacks=[pruner])
    held_out = DataLoader(images(64, seed=1), batch_size=64)
    trainer.fit(model, DataLoader(images(), batch_size=64), held_out)
    assert model.features.block1.conv.out_channels == 4
    with pytest.raises(RuntimeError, match="size mismatch") as raised:
        trainer.test(dataloaders=held_out)
    (note,) = raised.value.__notes__
    assert "hold the UNPRUNED network" in note and "trainer.test(model, ...)" in note
    (results,) = trainer.test(model, dataloaders=held_out)  # the pruned model, as the note says
    assert model.features.block1.conv.out_channels == 4 and 0.0 <= next(iter(results.values())) <= 10.0


def test_standalone_pytorch_lightning_trainer(tmp_path):
    import pytorch_lightning as ptl

    class PlainConvNet(ptl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(
                nn.Conv2d(1, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2)
            )

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, batch_idx):
            return nn.functional.cross_entropy(self(batch[0]), batch[1])

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=0.01)

    model = PlainConvNet()
    trainer = quiet_standalone_trainer(tmp_path)
    pruner = BettiPruning(amount=0.5, probe_size=40, k=5)
    trainer.callbacks.append(pruner)
    trainer.fit(model, DataLoader(images(64), batch_size=32))
    assert model.net[0].out_channels == 4 and model.net[1].num_features == 4 and model.net[5].in_features == 4


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threshold": None}, "give a threshold"),
        ({"amount": 1.0}, "amount must be a fraction"),
        ({"criterion": "entropy"}, "criterion must be one of"),
        ({"direction": "up"}, "direction"),
        ({"probe_size": 5, "k": 10}, "probe_size"),
        ({"min_filters_per_layer": 0}, "min_filters_per_layer"),
        ({"max_accuracy_drop": 2.0}, "max_accuracy_drop"),
        # each of these used to pass, then fail (or prune nothing, silently) in on_fit_end, after the training
        ({"threshold": float("nan")}, "threshold must be a finite number"),
        ({"threshold": "300"}, "threshold must be a finite number"),
        ({"amount": "0.5"}, "amount must be a fraction"),
        ({"k": 1}, "k must be an integer >= 2"),
        ({"k": "10"}, "k must be an integer >= 2"),
        ({"scale": float("inf")}, "scale must be a positive finite number"),
        ({"scale": -1.0}, "scale must be a positive finite number"),
        ({"latency_batch": 0}, "latency_batch must be an integer >= 1"),
        ({"seed": -1}, "seed must be a non-negative integer"),
        ({"seed": True}, "seed must be a non-negative integer"),
        ({"layers": []}, "non-empty list of conv module names"),
        ({"layers": ["features.block1.conv", 3]}, "non-empty list of conv module names"),
        ({"probe_size": 10, "k": 10}, r"probe_size \(more points than k=10\) must be an integer >= 11, got 10"),
        ({"fine_tune_epochs": True}, "fine_tune_epochs must be an integer >= 0, got True"),
        ({"dim": -1}, r"dim \(None: the criterion's own\) must be an integer >= 0"),
    ],
)
def test_bad_arguments_fail_at_construction(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BettiPruning(**kwargs)


def test_scoring_outside_a_fit_needs_a_probe_and_checks_it():
    model = CNNClassifier(in_channels=1, num_classes=2, channels=(4,)).eval()
    pruner = BettiPruning(amount=0.5, probe_size=30, k=5)
    with pytest.raises(RuntimeError, match=r"score needs a probe: call pruner.set_probe\(model, inputs, labels\)"):
        pruner.score(model)
    x = torch.randn(30, 1, 12, 12)
    with pytest.raises(ValueError, match=r"one class per point, shape \(n,\), got float32 labels of shape \(30, 2\)$"):
        pruner.set_probe(model, x, torch.ones(30, 2))  # multi-hot: no hint of labels=None, which the pruner refuses
    pruner.set_probe(model, x, torch.arange(30) % 2)
    assert pruner.score(model)["features.block1.conv"].shape == (4,)


def test_one_layer_pattern_given_as_a_string_is_one_pattern(tmp_path):
    model = CNNClassifier(in_channels=1, num_classes=2, channels=(8, 16))
    pruner = BettiPruning(amount=0.5, layers="features.block2.conv", probe_size=60, k=5)  # not 20 one-letter names
    assert pruner.layers == ["features.block2.conv"]
    quiet_trainer(tmp_path, max_epochs=1, callbacks=[pruner]).fit(model, DataLoader(images(96), batch_size=32))
    assert model.features.block1.conv.out_channels == 8 and model.features.block2.conv.out_channels == 8


def test_a_model_that_cannot_be_pickled_is_pruned_kept_and_not_half_saved(tmp_path):
    model = CNNClassifier(in_channels=1, num_classes=2, channels=(8, 16))
    model.on_batch_hook = lambda batch: batch  # a lambda: torch.save cannot pickle the whole module
    target = tmp_path / "pruned.pt"
    target.write_bytes(b"an older model")
    pruner = BettiPruning(amount=0.5, probe_size=60, k=5, save_path=str(target))
    trainer = quiet_trainer(tmp_path, max_epochs=1, callbacks=[pruner])
    with pytest.warns(UserWarning, match="could not save the pruned model .*save its state_dict instead"):
        trainer.fit(model, DataLoader(images(96), batch_size=32))
    assert trainer.state.finished and model.features.block1.conv.out_channels == 4
    assert target.read_bytes() == b"an older model"  # neither truncated nor replaced by half a pickle
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no partial file left


def test_an_amount_that_rounds_to_nothing_says_so(tmp_path):
    model = CNNClassifier(in_channels=1, num_classes=2, channels=(4,))
    pruner = BettiPruning(amount=0.0, probe_size=40, k=5)
    with pytest.warns(UserWarning, match=r"no filter selected \(criterion=knn, amount=0.0\); the amount rounds"):
        quiet_trainer(tmp_path, max_epochs=1, callbacks=[pruner]).fit(model, DataLoader(images(64), batch_size=32))
    assert model.features.block1.conv.out_channels == 4


def test_a_depthwise_conv_is_named_as_such_with_the_conv_to_choose():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Conv2d(4, 4, 3, groups=4), nn.Flatten(), nn.LazyLinear(2))
    model(torch.zeros(1, 1, 8, 8))
    pruner = BettiPruning(amount=0.5, layers=["1"], probe_size=20, k=4)
    with pytest.raises(ValueError, match=r"\['1'\] are grouped or depthwise.*choose that one instead.*\['0'\]"):
        pruner.set_probe(model, torch.randn(20, 1, 8, 8), torch.arange(20) % 2)  # said "not Conv2d" before


def test_non_conv_layer_fails_before_training(tmp_path):
    model = CNNClassifier(in_channels=1, num_classes=2, channels=(4,))
    with pytest.raises(ValueError, match="prunes Conv2d layers only"):
        quiet_trainer(
            tmp_path, max_epochs=1, callbacks=[BettiPruning(amount=0.5, layers=["head"], probe_size=40, k=5)]
        ).fit(model, DataLoader(images(64), batch_size=32))


def write_idx(path, array: np.ndarray) -> None:
    """An uncompressed IDX file as torchvision's FashionMNIST reads it (big-endian header, uint8 data)."""
    import struct

    magic = 0x800 + array.ndim
    path.write_bytes(
        struct.pack(">I", magic) + struct.pack(">" + "I" * array.ndim, *array.shape) + array.astype(np.uint8).tobytes()
    )


def test_pruning_recipe_prunes_and_saves_after_a_short_fit(tmp_path, monkeypatch):
    from helpers.paths import REPO

    from lightning_topo.cli import run_cli

    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 120), ("t10k", 40)):
        labels = np.arange(n) % 10
        write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 255, (n, 28, 28)) // (1 + labels[:, None, None]))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    # one batch of random images: the recipe's accuracy guard would rightly refuse; here we check the surgery
    # and the save, so the guard is switched off in a copy of the recipe (nothing else changes)
    recipe = yaml.safe_load((REPO / "recipes" / "fashion_mnist_pruning.yaml").read_text())
    pruning_args = next(
        c["init_args"] for c in recipe["trainer"]["callbacks"] if c["class_path"].endswith("BettiPruning")
    )
    assert pruning_args["max_accuracy_drop"] is not None
    pruning_args["max_accuracy_drop"] = None
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    monkeypatch.chdir(tmp_path)
    cli = run_cli(
        [
            "fit",
            "-c",
            str(tmp_path / "recipe.yaml"),
            f"--data.init_args.root={tmp_path}",
            "--data.init_args.download=false",
            "--trainer.max_epochs=1",
            "--trainer.limit_train_batches=1",
            "--trainer.limit_val_batches=1",
            "--trainer.logger=false",
            "--trainer.enable_progress_bar=false",
        ]
    )
    pruner = next(c for c in cli.trainer.callbacks if isinstance(c, BettiPruning))
    assert pruner.max_accuracy_drop is None and pruner.fine_tune_epochs == 1
    assert list(cli.model.hparams["channels"]) == [16, 32, 64]
    assert pruner.report["layers"]["features.block1.conv"] == {
        **pruner.report["layers"]["features.block1.conv"],
        "before": 32,
        "after": 16,
    }
    assert not pruner.report["kept_unpruned"]
    assert pruner.report["after"]["parameters"] < 0.5 * pruner.report["before"]["parameters"]
    saved = load_pruned(tmp_path / "lightning_logs" / "fashion_mnist_pruned.pt")
    assert saved.features.block3.conv.out_channels == 64


DDP_PRUNING_SCRIPT = """
import json, os, sys, torch, lightning.pytorch as pl
from torch.utils.data import DataLoader, TensorDataset
from lightning_topo.callbacks import BettiPruning
from lightning_topo.models import CNNClassifier

if __name__ == "__main__":
    out = sys.argv[1]
    pl.seed_everything(0, verbose=False)
    y = torch.arange(192) % 2
    x = torch.randn(192, 1, 12, 12)
    x[:, 0, :6] += 2.0 * y[:, None, None]
    data = TensorDataset(x, y)
    model = CNNClassifier(in_channels=1, num_classes=2, channels=(8, 16), lr=0.01)
    pruner = BettiPruning(amount=0.5, probe_size=60, k=5, max_accuracy_drop=0.5)
    trainer = pl.Trainer(accelerator="cpu", devices=2, strategy="ddp", max_epochs=2, enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=False, logger=False, callbacks=[pruner])
    trainer.fit(model, DataLoader(data, batch_size=32), DataLoader(data, batch_size=64))
    state = {k: v.tolist() for k, v in model.state_dict().items() if v.is_floating_point()}
    with open(os.path.join(out, f"rank{trainer.global_rank}.json"), "w") as f:
        json.dump({"channels": list(model.hparams["channels"]), "kept_unpruned": pruner.report["kept_unpruned"],
                   "state": state}, f)
    # leave together: a rank that exits while the other still works tears gloo down under it
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()
"""


def test_two_process_cpu_ddp_prunes_every_rank_alike(tmp_path):
    rank0, rank1 = run_two_rank_script(tmp_path, DDP_PRUNING_SCRIPT)
    assert (
        rank0["channels"] == rank1["channels"] == [4, 8] and rank0["kept_unpruned"] is rank1["kept_unpruned"] is False
    )
    assert rank0["state"] == rank1["state"]  # the same filters removed on both ranks: identical models


def test_pruning_recalibrates_batchnorm_on_training_batches_and_reports_accuracy_before_fine_tuning(tmp_path):
    pl.seed_everything(0, verbose=False)
    data = images()
    loader = DataLoader(data, batch_size=64, shuffle=True)  # 4 batches
    stale = CNNClassifier(in_channels=1, num_classes=2, channels=(8, 16), lr=0.01)
    fresh = CNNClassifier(in_channels=1, num_classes=2, channels=(8, 16), lr=0.01)
    fresh.load_state_dict(stale.state_dict())
    for model, batches in ((stale, 0), (fresh, 3)):
        pl.seed_everything(0, verbose=False)
        pruner = BettiPruning(amount=0.5, probe_size=100, k=5, recalibrate_batches=batches, fine_tune_epochs=1)
        trainer = quiet_trainer(tmp_path, max_epochs=1, callbacks=[pruner])
        trainer.fit(model, loader, DataLoader(data, batch_size=128))
        accuracy = pruner.report["val_acc_before_fine_tune"]
        # a share of the validation samples (not a loss or a percentage), shown on the table's own row
        assert abs(accuracy * len(data) - round(accuracy * len(data))) < 1e-4
        (row,) = [line for line in pruner.report["table"].splitlines() if "of which before fine-tuning" in line]
        assert float(row.split()[-2]) == pytest.approx(accuracy, abs=5e-4), row  # columns: before, after, ratio
    # the fit counted 4 batches, the fine-tune epoch 4 more; recalibration restarts the count at its 3 batches
    assert int(stale.features.block2.bn.num_batches_tracked) == 8
    assert int(fresh.features.block2.bn.num_batches_tracked) == 3 + 4


def test_bad_recalibration_and_fine_tune_settings_fail_at_construction():
    with pytest.raises(ValueError, match="recalibrate_batches"):
        BettiPruning(amount=0.5, recalibrate_batches=-1)
    with pytest.raises(ValueError, match="fine_tune_lr"):
        BettiPruning(amount=0.5, fine_tune_lr=0.0)


def test_a_layer_whose_filters_all_scored_alike_is_named_as_chosen_by_chance(tmp_path):
    """30 probe images, k=4: every filter's Betti score is 0, so the seeded tie-break chose what was removed, and the
    report's "highest score first" said nothing of it. The weights' l1 norms tell every filter apart: no warning."""
    pl.seed_everything(0, verbose=False)
    options = dict(amount=0.5, probe_size=30, k=4, recalibrate_batches=2, latency_batch=8, fine_tune_epochs=0)
    loader = DataLoader(images(128), batch_size=64)
    said = {}
    for criterion in ("knn", "l1"):
        pruner = BettiPruning(criterion=criterion, **options)
        model = CNNClassifier(in_channels=1, num_classes=2, channels=(8, 16), lr=0.01)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            quiet_trainer(tmp_path, max_epochs=1, callbacks=[pruner]).fit(model, loader)
        said[criterion] = [str(w.message) for w in caught if "every filter scored alike" in str(w.message)]
        assert model.features.block1.conv.out_channels == 4  # pruned either way
    assert said["l1"] == [] and len(said["knn"]) == 1
    assert (
        "in 2 of 2 layers every filter scored alike, so a seeded random order chose the filters to remove"
        in (said["knn"][0])
    )
    assert "features.block1.conv (4 of 8 chosen, all 0), features.block2.conv (8 of 16 chosen, all 0)" in said["knn"][0]


class Segmenter(pl.LightningModule):
    """A fully convolutional network whose last convolution's filters are the classes of its output map."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
        self.head = nn.Conv2d(8, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.interpolate(self.head(self.body(x)), scale_factor=2)

    def training_step(self, batch, batch_idx):
        x, masks = batch
        return nn.functional.cross_entropy(self(x), masks)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def test_a_segmentation_heads_classes_are_left_whole_and_its_accuracy_is_not_measured(tmp_path, caplog) -> None:
    """Every Conv2d was pruned, the head too: the output map lost classes (3 -> 2), silently; and the accuracy
    check compared a map with per-image labels and failed the whole pruning."""
    g = torch.Generator().manual_seed(0)
    x, masks = torch.randn(40, 1, 8, 8, generator=g), torch.randint(0, 3, (40, 16, 16), generator=g)
    model, pruner = Segmenter(), BettiPruning(amount=0.5, probe_size=40, k=4)
    pruner.set_probe(model, x, masks[:, 0, 0])  # a class per image for the filters' clouds
    with caplog.at_level("INFO"), pytest.warns(UserWarning, match=r"accuracy is not measured: the model's output"):
        quiet_trainer(tmp_path, max_epochs=1, callbacks=[pruner]).fit(model, DataLoader(TensorDataset(x, masks), 20))
    assert "leaves head whole: its filters are the model's output channels" in caplog.text
    assert model.head.out_channels == 3 and model.body[2].out_channels == 4 and model(x).shape == (40, 3, 16, 16)


class TrainingOnlyData(pl.LightningDataModule):
    """A data module with a training loader alone: the usual LightningCLI data module of a first project."""

    def train_dataloader(self) -> DataLoader:
        return DataLoader(images(64), batch_size=32)


def test_a_data_module_without_a_validation_loader_is_pruned_and_measured_on_the_probe(tmp_path):
    """Lightning's default ``val_dataloader`` raises: the pruner called it, and the fit ended unpruned."""
    model = CNNClassifier(in_channels=1, num_classes=2, channels=(4,))
    pruner = BettiPruning(amount=0.5, probe_size=40, k=5)
    quiet_trainer(tmp_path, max_epochs=1, callbacks=[pruner]).fit(model, datamodule=TrainingOnlyData())
    assert model.features.block1.conv.out_channels == 2
    assert pruner.report["parameters"][1] < pruner.report["parameters"][0]
    assert "probe accuracy (training images)" in pruner.report["table"]


def test_a_data_module_from_datasets_is_validated_on_its_own_validation_set(tmp_path):
    """``LightningDataModule.from_datasets`` sets ``val_dataloader`` on the instance, not the class: a check of the
    class alone took it for the default and measured accuracy on the probe instead."""
    data = pl.LightningDataModule.from_datasets(images(64), images(32, seed=1), batch_size=32)
    model = CNNClassifier(in_channels=1, num_classes=2, channels=(4,))
    pruner = BettiPruning(amount=0.5, probe_size=40, k=5)
    quiet_trainer(tmp_path, max_epochs=1, callbacks=[pruner]).fit(model, datamodule=data)
    assert model.features.block1.conv.out_channels == 2
    assert "validation accuracy" in pruner.report["table"]
    assert "probe accuracy" not in pruner.report["table"]
