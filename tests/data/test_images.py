"""Image data modules on tiny files written in the real formats (IDX, PNG folders, CIFAR pickles, Kaggle JPEGs)."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.trainers import quiet_trainer
from PIL import Image

from lightning_topo.data.images import CatsVsDogsDataModule, CIFAR10DataModule, FashionMNISTDataModule

CIFAR_CLASSES = CIFAR10DataModule.CLASS_NAMES


# ----------------------------------------------------------------------------------------- builders
def write_idx(raw: Path, prefix: str, images: np.ndarray, labels: np.ndarray) -> None:
    """IDX files as published: big-endian magic 0x803 / 0x801, then the dimensions, then uint8 data."""
    raw.mkdir(parents=True, exist_ok=True)
    n, h, w = images.shape
    (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 0x803, n, h, w) + images.tobytes())
    (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x801, n) + labels.tobytes())


def fashion_root(tmp_path: Path, n_train: int = 40, n_test: int = 20) -> tuple[Path, dict[str, np.ndarray]]:
    """Image i is filled with the value i (train) or 200 + i (test), so every sample can be traced."""
    raw = tmp_path / "FashionMNIST" / "raw"
    arrays = {}
    for prefix, n, offset in (("train", n_train, 0), ("t10k", n_test, 200)):
        images = np.repeat(np.arange(offset, offset + n, dtype=np.uint8)[:, None, None], 28, 1).repeat(28, 2)
        labels = (np.arange(n) % 10).astype(np.uint8)
        write_idx(raw, prefix, images, labels)
        arrays[prefix] = labels
    return tmp_path, arrays


def write_png_cifar(root: Path, per_class: int = 2) -> Path:
    """PNG class folders; image j of class c has red = class index * 20 and green = j."""
    for split in ("train", "test"):
        for c, name in enumerate(CIFAR_CLASSES):
            folder = root / "cifar10" / split / name
            folder.mkdir(parents=True)
            for j in range(per_class):
                pixels = np.zeros((32, 32, 3), np.uint8)
                pixels[..., 0], pixels[..., 1] = c * 20, j
                Image.fromarray(pixels).save(folder / f"{j:05d}.png")
    return root


def write_cifar_batches(root: Path, per_batch: int = 4) -> Path:
    """torchvision's cifar-10-batches-py: pickled dicts with a (N, 3072) uint8 'data' row-major in C, H, W."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for b, name in enumerate(names):
        labels = [(b + k) % 10 for k in range(per_batch)]
        data = np.zeros((per_batch, 3, 32, 32), np.uint8)
        data[:, 0] = np.array(labels, np.uint8)[:, None, None] * 20  # red channel encodes the label
        data[:, 2, 0, 5] = 255  # one blue pixel at row 0, column 5: checks the HWC/CHW handling
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data.reshape(per_batch, -1), "labels": labels}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": list(CIFAR_CLASSES)}, f)
    return root


def jpeg(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (80, 60)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, quality=95)


CAT, DOG = (230, 30, 30), (30, 30, 230)


# ----------------------------------------------------------------------------------------- Fashion-MNIST
def test_fashion_mnist_reads_the_torchvision_raw_idx_layout(tmp_path):
    root, labels = fashion_root(tmp_path)
    dm = FashionMNISTDataModule(root=str(root), val_fraction=0.25, batch_size=8, normalize=False)
    assert (dm.num_classes, dm.in_channels, dm.image_size) == (10, 1, 28)
    dm.setup("fit")
    dm.setup("test")
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (30, 10, 20)
    x, y = dm.test_set[3]
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32
    assert torch.allclose(x, torch.full_like(x, 203 / 255)) and int(y) == labels["t10k"][3]
    for i in range(len(dm.train_set)):  # every training sample keeps its own label
        x, y = dm.train_set[i]
        original = round(float(x[0, 0, 0]) * 255)
        assert int(y) == labels["train"][original]
    batch_x, batch_y = next(iter(dm.train_dataloader()))
    assert batch_x.shape == (8, 1, 28, 28) and batch_y.dtype == torch.long


def test_normalisation_uses_the_data_set_statistics(tmp_path):
    root, _ = fashion_root(tmp_path)
    dm = FashionMNISTDataModule(root=str(root), val_fraction=0.0)
    dm.setup("test")
    x, _ = dm.test_set[0]
    expected = (200 / 255 - FashionMNISTDataModule.MEAN[0]) / FashionMNISTDataModule.STD[0]
    assert torch.allclose(x, torch.full_like(x, expected), atol=1e-5)


def test_class_subset_keeps_those_classes_relabelled_in_the_order_given(tmp_path):
    root, labels = fashion_root(tmp_path)
    dm = FashionMNISTDataModule(root=str(root), classes=["Shirt", 0], val_fraction=0.0, normalize=False)
    assert dm.num_classes == 2 and dm.class_names == ["Shirt", "T-shirt/top"]
    dm.setup("fit")
    dm.setup("test")
    assert len(dm.train_set) == int(np.isin(labels["train"], [6, 0]).sum())
    for data, offset, split in ((dm.train_set, 0, "train"), (dm.test_set, 200, "t10k")):
        for i in range(len(data)):
            x, y = data[i]
            original = labels[split][round(float(x[0, 0, 0]) * 255) - offset]
            assert int(y) == {6: 0, 0: 1}[int(original)]


def test_train_validation_split_is_seeded_and_disjoint(tmp_path):
    root, _ = fashion_root(tmp_path)

    def ids(seed: int) -> tuple[set[int], set[int]]:
        dm = FashionMNISTDataModule(root=str(root), val_fraction=0.25, seed=seed, normalize=False)
        dm.setup("fit")
        pick = lambda data: {round(float(data[i][0][0, 0, 0]) * 255) for i in range(len(data))}  # noqa: E731
        return pick(dm.train_set), pick(dm.val_set)

    train, val = ids(0)
    assert len(val) == 10 and not train & val and train | val == set(range(40))
    assert ids(0) == (train, val)
    assert ids(1)[1] != val


def test_image_size_resizes_and_augment_crops_only_the_training_set(tmp_path):
    root, _ = fashion_root(tmp_path)
    dm = FashionMNISTDataModule(root=str(root), image_size=32, augment=True, val_fraction=0.5, normalize=False)
    dm.setup("fit")
    assert dm.train_set[0][0].shape == dm.val_set[0][0].shape == (1, 32, 32)
    # constant non-zero images: zero-padded random crops show zero borders in some draws, validation never
    torch.manual_seed(0)
    train = next(i for i in range(len(dm.train_set)) if float(dm.train_set.images[i].max()) > 0)
    assert any((dm.train_set[train][0] == 0).any() for _ in range(20))
    val = next(i for i in range(len(dm.val_set)) if float(dm.val_set.images[i].max()) > 0)
    assert all(not (dm.val_set[val][0] == 0).any() for _ in range(5))


def test_a_cnn_trains_on_the_data_module(tmp_path):
    from lightning_topo.models import CNNClassifier

    root, _ = fashion_root(tmp_path)
    dm = FashionMNISTDataModule(root=str(root), classes=[0, 1], batch_size=4, val_fraction=0.25)
    model = CNNClassifier(in_channels=dm.in_channels, num_classes=dm.num_classes, channels=(4, 8))
    trainer = quiet_trainer(tmp_path, max_epochs=1)
    trainer.fit(model, datamodule=dm)
    result = trainer.test(model, datamodule=dm, verbose=False)[0]
    assert trainer.global_step == 2  # 6 training images, batch 4
    # the logged test accuracy is the model's accuracy on the test split
    model.eval()
    with torch.no_grad():
        pairs = [(model(x).argmax(1) == y) for x, y in dm.test_dataloader()]
    assert result["test_acc"] == pytest.approx(float(torch.cat(pairs).float().mean()))


# ----------------------------------------------------------------------------------------- CIFAR-10
def test_cifar10_png_class_folders_map_to_the_cifar_label_indices(tmp_path):
    dm = CIFAR10DataModule(root=str(write_png_cifar(tmp_path)), val_fraction=0.0, normalize=False, augment=False)
    assert (dm.num_classes, dm.in_channels, dm.image_size) == (10, 3, 32)
    dm.setup("fit")
    dm.setup("test")
    assert len(dm.train_set) == len(dm.test_set) == 20
    for i in range(20):
        x, y = dm.test_set[i]
        assert x.shape == (3, 32, 32)
        assert round(float(x[0, 0, 0]) * 255) == 20 * int(y)  # red encodes the class folder's CIFAR index


def test_cifar10_png_subset_needs_only_the_chosen_class_folders(tmp_path):
    root = write_png_cifar(tmp_path)
    for split in ("train", "test"):
        for name in ("airplane", "truck"):
            for f in (root / "cifar10" / split / name).iterdir():
                f.unlink()
            (root / "cifar10" / split / name).rmdir()
    dm = CIFAR10DataModule(root=str(root), classes=["dog", "cat"], val_fraction=0.0, normalize=False)
    dm.setup("test")
    seen = {(int(y), round(float(x[0, 0, 0]) * 255)) for x, y in (dm.test_set[i] for i in range(len(dm.test_set)))}
    assert seen == {(0, 100), (1, 60)}  # dog (CIFAR 5) -> 0, cat (CIFAR 3) -> 1
    with pytest.raises(FileNotFoundError, match="airplane"):
        CIFAR10DataModule(root=str(root), classes=["airplane", "cat"]).setup("test")


def test_cifar10_reads_torchvision_pickled_batches(tmp_path, monkeypatch):
    # torchvision checks the MD5s of the real batches; tiny stand-ins cannot match them
    monkeypatch.setattr("torchvision.datasets.cifar.check_integrity", lambda path, md5=None: Path(path).is_file())
    root = write_cifar_batches(tmp_path)
    dm = CIFAR10DataModule(root=str(root), val_fraction=0.0, normalize=False, augment=False, classes=[1, 2, 3])
    dm.setup("fit")
    dm.setup("test")
    assert len(dm.train_set) == sum((b + k) % 10 in (1, 2, 3) for b in range(5) for k in range(4))
    for data in (dm.train_set, dm.test_set):
        for i in range(len(data)):
            x, y = data[i]
            assert round(float(x[0, 10, 10]) * 255) == 20 * (int(y) + 1)
            assert float(x[2, 0, 5]) == 1.0 and float(x[2, 5, 0]) == 0.0


def test_cifar10_augmentation_flips_or_crops_training_images_only(tmp_path):
    root = write_png_cifar(tmp_path, per_class=1)
    for f in (root / "cifar10" / "train" / "airplane").iterdir():
        pixels = np.zeros((32, 32, 3), np.uint8)
        pixels[:, :16] = 255  # left half white
        Image.fromarray(pixels).save(f)
    dm = CIFAR10DataModule(root=str(root), classes=["airplane", "cat"], val_fraction=0.0, normalize=False)
    dm.setup("fit")
    index = next(i for i in range(len(dm.train_set)) if int(dm.train_set[i][1]) == 0)
    torch.manual_seed(0)
    views = [dm.train_set[index][0] for _ in range(20)]
    assert any(float(v[0, 16, 2]) == 0.0 for v in views)  # flipped: the left edge turned black
    assert len({v.sum().item() for v in views}) > 1


# ----------------------------------------------------------------------------------------- cats vs dogs
def test_cats_vs_dogs_class_folders_with_val_as_test(tmp_path):
    base = tmp_path / "cats_vs_dogs"
    for split, n in (("train", 6), ("val", 3)):
        for k in range(n):
            jpeg(base / split / "cat" / f"cat.{k}.jpg", CAT, (70 + k, 64))
            jpeg(base / split / "dog" / f"dog.{k}.jpg", DOG, (64, 90))
    dm = CatsVsDogsDataModule(root=str(tmp_path), image_size=32, val_fraction=0.25, normalize=False)
    assert (dm.num_classes, dm.in_channels, dm.class_names) == (2, 3, ["cat", "dog"])
    dm.setup("fit")
    dm.setup("test")
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (9, 3, 6)
    for data in (dm.train_set, dm.val_set, dm.test_set):
        for i in range(len(data)):
            x, y = data[i]
            assert x.shape == (3, 32, 32)
            red_is_strong = float(x[0].mean()) > float(x[2].mean())
            assert int(y) == (0 if red_is_strong else 1)  # cat images are red, dog images blue


def test_cats_vs_dogs_kaggle_flat_folder_is_split_by_name(tmp_path):
    folder = tmp_path / "cats_vs_dogs" / "train"
    for k in range(10):
        jpeg(folder / f"cat.{k}.jpg", CAT)
        jpeg(folder / f"dog.{k}.jpg", DOG)
    (folder / "notes.txt").write_text("not an image")
    dm = CatsVsDogsDataModule(root=str(tmp_path), image_size=24, test_fraction=0.25, val_fraction=0.0, normalize=False)
    dm.setup("fit")
    dm.setup("test")
    assert len(dm.train_set) == 15 and len(dm.test_set) == 5
    assert not set(dm.train_set.paths) & set(dm.test_set.paths)
    for data in (dm.train_set, dm.test_set):
        for i in range(len(data)):
            x, y = data[i]
            assert x.shape == (3, 24, 24)
            assert data.paths[i].name.startswith(("cat", "dog")[int(y)])
            assert (float(x[0].mean()) > float(x[2].mean())) == (int(y) == 0)


def test_cats_vs_dogs_flat_files_directly_under_root(tmp_path):
    for k in range(4):
        jpeg(tmp_path / f"cat.{k}.jpg", CAT)
        jpeg(tmp_path / f"dog.{k}.jpg", DOG)
    dm = CatsVsDogsDataModule(root=str(tmp_path), classes=["dog", "cat"], val_fraction=0.0, test_fraction=0.25)
    dm.setup("test")
    assert len(dm.test_set) == 2
    assert all(dm.test_set.paths[i].name.startswith(("dog", "cat")[int(dm.test_set[i][1])]) for i in range(2))


# ----------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("module", "expected"),
    [
        (FashionMNISTDataModule, ["FashionMNIST/raw/train-images-idx3-ubyte", "download=True"]),
        (CIFAR10DataModule, ["cifar10/train", "cifar-10-batches-py", "download=True"]),
        (CatsVsDogsDataModule, ["cats_vs_dogs/train/cat", "kaggle.com", "cat,dog}.N.jpg"]),
    ],
)
def test_missing_data_names_the_paths_the_layout_and_how_to_get_it(tmp_path, module, expected):
    dm = module(root=str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError) as error:
        dm.setup("fit")
    message = str(error.value)
    assert str((tmp_path / "empty").resolve()) in message and "Expected layout" in message
    for text in expected:
        assert text in message


@pytest.mark.parametrize("module", [FashionMNISTDataModule, CIFAR10DataModule], ids=lambda m: m.__name__)
def test_a_failed_download_says_where_to_put_the_files(tmp_path, module, monkeypatch):
    import urllib.error

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    dm = module(root=str(tmp_path / "offline"), download=True)
    with pytest.raises(
        FileNotFoundError, match=r"(?s)Expected layout.*To get it: the download failed.*no network"
    ) as error:
        dm.prepare_data()
    assert str((tmp_path / "offline").resolve()) in str(error.value)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"classes": ["Shirt", "Sneakers"]}, "unknown class 'Sneakers'"),
        ({"classes": [3]}, "at least two distinct classes"),
        ({"classes": [3, 3]}, "at least two distinct classes"),
        ({"val_fraction": 1.0}, "val_fraction"),
        ({"image_size": 4}, "image_size"),
        ({"batch_size": 0}, "batch_size"),
        ({"seed": -1}, "seed must be a non-negative integer"),  # torch's error came at set-up
        ({"seed": "0"}, "seed must be a non-negative integer"),
        ({"augment": "false"}, "augment must be True or False"),  # a truthy string meant augmentation
    ],
)
def test_bad_options_fail_in_init_naming_the_field(options, message):
    with pytest.raises(ValueError, match=message):
        FashionMNISTDataModule(**options)


# ----------------------------------------------------------------------------------------- recipes
@pytest.mark.filterwarnings("ignore:BettiMonitor. the probe has")  # the tiny files give a small probe, as expected
@pytest.mark.parametrize("recipe", ["fashion_mnist", "cifar10", "cats_vs_dogs"])
def test_image_recipe_runs_a_fast_dev_run_on_local_files(recipe, tmp_path, monkeypatch):
    from helpers.paths import REPO

    from lightning_topo.cli import run_cli

    if recipe == "fashion_mnist":
        fashion_root(tmp_path)
    elif recipe == "cifar10":
        write_png_cifar(tmp_path)
    else:
        for split in ("train", "val"):
            for k in range(4):
                jpeg(tmp_path / "cats_vs_dogs" / split / "cat" / f"cat.{k}.jpg", CAT)
                jpeg(tmp_path / "cats_vs_dogs" / split / "dog" / f"dog.{k}.jpg", DOG)
    monkeypatch.chdir(tmp_path)
    args = ["fit", "-c", str(REPO / "recipes" / f"{recipe}.yaml"), f"--data.init_args.root={tmp_path}"]
    args += ["--trainer.fast_dev_run=true", "--trainer.logger=false", "--trainer.enable_progress_bar=false"]
    if recipe != "cats_vs_dogs":
        args.append("--data.init_args.download=false")
    cli = run_cli(args)
    assert cli.trainer.state.finished and cli.trainer.global_step == 1
    assert cli.model.hparams.num_classes == cli.datamodule.num_classes
    assert cli.model.hparams.in_channels == cli.datamodule.in_channels


@pytest.mark.parametrize("val_fraction", [0.0, 0.25])
def test_without_a_validation_split_the_fit_runs_no_validation_loop_and_raises_no_warning(tmp_path, val_fraction):
    """As SyntheticDataModule: val_fraction=0 switches validation off for the fit (no empty-loader warning)."""
    import warnings

    from lightning_topo.models import CNNClassifier

    root, _ = fashion_root(tmp_path)
    dm = FashionMNISTDataModule(root=str(root), classes=[0, 1], batch_size=4, val_fraction=val_fraction)
    model = CNNClassifier(in_channels=dm.in_channels, num_classes=dm.num_classes, channels=(4, 8))
    trainer = quiet_trainer(tmp_path, max_epochs=1, limit_val_batches=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(model, datamodule=dm)
    caught = [str(w.message) for w in caught if not any(s in str(w.message) for s in ("LeafSpec", "many workers"))]
    assert not caught, caught
    assert ("val_acc" in trainer.callback_metrics) == (val_fraction > 0)
    assert trainer.global_step == 2  # 6 (val_fraction 0.25) or 8 training images, batch 4
    assert trainer.limit_val_batches == 3  # the trainer's own setting is back after the fit


def test_a_split_that_leaves_no_training_image_is_a_clear_error_before_the_fit(tmp_path):
    """One image of each chosen class and val_fraction=0.75: rounding holds out both, which Lightning would only
    report as an empty training loader."""
    from lightning_topo.models import CNNClassifier

    root, _ = fashion_root(tmp_path, n_train=10)
    dm = FashionMNISTDataModule(root=str(root), classes=[0, 1], val_fraction=0.75)
    model = CNNClassifier(in_channels=1, num_classes=2, channels=(4,))
    with pytest.raises(ValueError, match=r"val_fraction=0.75 of the 2 training images .* leaves no image to train on"):
        quiet_trainer(tmp_path, max_epochs=1).fit(model, datamodule=dm)
    assert dm.train_set is None
    FashionMNISTDataModule(root=str(root), classes=[0, 1], val_fraction=0.25).setup("fit")  # one held out: fine
