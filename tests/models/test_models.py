"""MLPClassifier and CNNClassifier: readable layer names, validation, training, checkpoints."""

from __future__ import annotations

import sys
import textwrap

import lightning.pytorch as pl
import pytest
import torch
from helpers.processes import run_child
from helpers.trainers import quiet_trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader, TensorDataset

from lightning_topo.models import CNNClassifier, MLPClassifier


def test_mlp_layer_names_follow_the_contract():
    model = MLPClassifier(in_features=2, num_classes=2)
    names = [n for n, _ in model.named_modules()]
    for i in range(1, 10):
        assert f"features.layer{i}.linear" in names and f"features.layer{i}.act" in names
    assert "features.layer10.linear" not in names
    assert model.head.out_features == 2 and model.features.layer1.linear.out_features == 15


def test_cnn_layer_names_and_any_input_size():
    model = CNNClassifier(in_channels=3, num_classes=5, channels=(4, 8, 16))
    names = {n for n, _ in model.named_modules()}
    assert {
        "features.block1.conv",
        "features.block3.bn",
        "features.block2.act",
        "features.block1.pool",
        "head",
    } <= names
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 5)
    assert model(torch.zeros(2, 3, 64, 48)).shape == (2, 5)


def test_cnn_is_rebuilt_from_hparams_with_other_widths():
    model = CNNClassifier(in_channels=1, num_classes=10, channels=(8, 16))
    smaller = CNNClassifier(**{**model.hparams, "channels": (3, 5)})
    assert smaller.features.block2.conv.weight.shape == (5, 3, 3, 3)
    assert smaller.head.in_features == 5


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: MLPClassifier(2, hidden=(15, -3)), "hidden widths must be positive"),
        (lambda: MLPClassifier(2, activation="swish2"), "unknown activation 'swish2'"),
        (lambda: MLPClassifier(0), "in_features"),
        (lambda: MLPClassifier(2, num_classes=1), "num_classes"),
        (lambda: MLPClassifier(2, lr=-1.0), "lr must be"),
        (lambda: MLPClassifier(2, lr=float("inf")), "lr must be a positive finite number"),  # passed: NaN weights
        (lambda: MLPClassifier(2, lr="0.01"), "lr must be a positive finite number"),
        (lambda: MLPClassifier(2, weight_decay=float("nan")), "weight_decay must be a non-negative finite number"),
        (lambda: MLPClassifier(2, optimizer="lbfgs"), "optimizer must be one of"),
        (lambda: CNNClassifier(channels=(8, 0)), "channels must be"),
        (lambda: CNNClassifier(kernel_size=4), "kernel_size"),
        (lambda: CNNClassifier(dropout=1.5), "dropout"),
    ],
)
def test_bad_hyperparameters_fail_at_construction(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()


def test_step_schedule_halves_the_learning_rate():
    model = MLPClassifier(2, hidden=(4,), lr=0.02, lr_halve_every=3)
    config = model.configure_optimizers()
    optimizer, schedule = config["optimizer"], config["lr_scheduler"]["scheduler"]
    for _ in range(3):
        optimizer.step()
        schedule.step()
    assert config["lr_scheduler"]["interval"] == "step"
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.01)


def test_cnn_learns_a_trivially_separable_image_task(tmp_path):
    pl.seed_everything(0, verbose=False)
    x = torch.randn(128, 1, 12, 12)
    y = (x[:, 0, :6].mean(dim=(1, 2)) > x[:, 0, 6:].mean(dim=(1, 2))).long()
    x[:, 0, :6] += y[:, None, None] * 2.0
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)
    model = CNNClassifier(in_channels=1, num_classes=2, channels=(4, 8), lr=0.01)
    trainer = quiet_trainer(tmp_path, max_epochs=8)
    trainer.fit(model, loader, loader)
    assert trainer.callback_metrics["val_acc"] > 0.9


def test_checkpoint_round_trip_in_a_fresh_process(tmp_path):
    pl.seed_everything(0, verbose=False)
    x = torch.randn(64, 2)
    y = (x[:, 0] > 0).long()
    loader = DataLoader(TensorDataset(x, y), batch_size=64)
    model = MLPClassifier(2, hidden=(8, 8), activation="parametric_split", lr=0.05)
    checkpoint = ModelCheckpoint(dirpath=tmp_path, filename="mlp")
    quiet_trainer(tmp_path, max_epochs=5, enable_checkpointing=True, callbacks=[checkpoint]).fit(model, loader)
    model.eval()
    torch.save(x, tmp_path / "x.pt")
    expected = model(x)
    script = textwrap.dedent(
        f"""
        import torch
        from lightning_topo.models import MLPClassifier
        model = MLPClassifier.load_from_checkpoint({str(tmp_path / "mlp.ckpt")!r}, map_location="cpu").eval()
        with torch.no_grad():
            torch.save(model(torch.load({str(tmp_path / "x.pt")!r})), {str(tmp_path / "out.pt")!r})
        """
    )
    run_child([sys.executable, "-c", script], check=True)
    with torch.no_grad():
        assert torch.equal(torch.load(tmp_path / "out.pt"), model(x))
    assert torch.equal(expected.detach(), model(x).detach())


class _DictBatches(torch.utils.data.Dataset):
    """Samples as many datasets give them: ``{"image": x, "label": y}``."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"image": self.x[i], "label": self.y[i]}


def test_mapping_batches_train_and_predict(tmp_path):
    pl.seed_everything(0, verbose=False)
    gen = torch.Generator().manual_seed(0)
    y = torch.arange(64) % 2
    x = torch.randn(64, 2, generator=gen) + 8.0 * y[:, None]
    model = MLPClassifier(2, hidden=(8,), lr=0.05)
    trainer = pl.Trainer(
        max_epochs=20, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, default_root_dir=tmp_path,
    )  # fmt: skip
    loader = torch.utils.data.DataLoader(_DictBatches(x, y), batch_size=64)
    trainer.fit(model, loader)  # raised KeyError: 0 in _step
    assert trainer.callback_metrics["train_acc"] > 0.9  # it learnt from them (an epoch's running accuracy)
    assert torch.equal(torch.cat(trainer.predict(model, loader)), y)
    assert torch.equal(model.predict_step({"image": x}, 0), y)  # no labels needed to predict


def test_a_mapping_without_known_keys_names_the_keys_it_reads():
    model = MLPClassifier(2, hidden=(8,))
    with pytest.raises(ValueError, match=r"got a dict with keys \['features', 'target'\]"):
        model._step({"features": torch.zeros(2, 2), "target": torch.zeros(2, dtype=torch.long)}, "train")
