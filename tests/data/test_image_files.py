"""Unreadable image files (empty, not an image, truncated, undecodable) are skipped or reported, never fatal."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.trainers import quiet_trainer
from PIL import Image

from lightning_topo.data.image_files import BadImageFilesError, BadImageFileWarning, check_image_file
from lightning_topo.data.images import CatsVsDogsDataModule, CIFAR10DataModule

#: A JPEG start (SOI + APP0 marker) and end (EOI) around zeros: passes the cheap check, PIL cannot open it.
UNDECODABLE_JPEG = b"\xff\xd8\xff\xe0" + bytes(100) + b"\xff\xd9"


# ----------------------------------------------------------------------------------------- builders
def noisy_image(path: Path, red: bool, size: tuple[int, int] = (40, 32), seed: int = 0) -> None:
    """A JPEG or PNG (by suffix) of noise, red- or blue-tinted, so most of the file is compressed pixel data."""
    pixels = np.random.default_rng(seed).integers(0, 120, (size[1], size[0], 3), dtype=np.uint8)
    pixels[..., 0 if red else 2] += 120
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def truncated(path: Path, red: bool = True) -> None:
    """A real image cut in half, as an interrupted download leaves it."""
    noisy_image(path, red)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def cats_vs_dogs(root: Path, per_class: int = 6, held_out: int = 2) -> Path:
    """Class folders ``cats_vs_dogs/{train,val}/{cat,dog}/*.jpg`` of good images (cats red, dogs blue)."""
    for split, n in (("train", per_class), ("val", held_out)):
        for label in ("cat", "dog"):
            for k in range(n):
                noisy_image(root / "cats_vs_dogs" / split / label / f"{label}.{k}.jpg", label == "cat", seed=k)
    return root


def add_bad_files(root: Path, kinds: tuple[str, ...] = ("truncated", "text", "empty")) -> dict[str, Path]:
    """The kinds found in Kaggle's set: a truncated JPEG, a text file named .jpg and an empty .jpg."""
    folder = root / "cats_vs_dogs" / "train"
    bad = {}
    if "truncated" in kinds:
        bad["truncated"] = folder / "cat" / "cat.truncated.jpg"
        truncated(bad["truncated"])
    if "text" in kinds:
        bad["text"] = folder / "dog" / "dog.notes.jpg"
        bad["text"].write_text("this is not an image\n")
    if "empty" in kinds:
        bad["empty"] = folder / "cat" / "cat.empty.jpg"
        bad["empty"].write_bytes(b"")
    return bad


def bad_image_warnings(record: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, BadImageFileWarning)]


# ----------------------------------------------------------------------------------------- the cheap check
def test_check_image_file_passes_good_images_and_names_the_problem_of_bad_ones(tmp_path):
    noisy_image(tmp_path / "good.jpg", True)
    noisy_image(tmp_path / "good.png", True)
    noisy_image(tmp_path / "good.bmp", True)
    (tmp_path / "padded.jpg").write_bytes((tmp_path / "good.jpg").read_bytes() + bytes(10))  # bytes after EOI
    truncated(tmp_path / "cut.jpg")
    truncated(tmp_path / "cut.png")
    (tmp_path / "text.jpg").write_text("hello")
    (tmp_path / "empty.jpg").write_bytes(b"")
    for name in ("good.jpg", "good.png", "good.bmp", "padded.jpg"):
        assert check_image_file(tmp_path / name) is None, name
    assert check_image_file(tmp_path / "cut.jpg").startswith("truncated or damaged JPEG: its end marker is missing")
    assert check_image_file(tmp_path / "cut.png").startswith("truncated or damaged PNG")
    assert check_image_file(tmp_path / "text.jpg") == "not an image PIL can read"
    assert check_image_file(tmp_path / "empty.jpg") == "empty file"
    assert check_image_file(tmp_path / "missing.jpg").startswith("cannot be read (FileNotFoundError")
    (tmp_path / "undecodable.jpg").write_bytes(UNDECODABLE_JPEG)
    assert check_image_file(tmp_path / "undecodable.jpg") is None  # the check's blind spot: see the load-time tests


# ----------------------------------------------------------------------------------------- at set-up
@pytest.mark.parametrize(
    ("kind", "reason"),
    [("truncated", "truncated or damaged JPEG"), ("text", "not an image"), ("empty", "empty file")],
)
def test_each_kind_of_unreadable_file_is_skipped_with_a_warning_naming_it(tmp_path, kind, reason):
    root = cats_vs_dogs(tmp_path)
    bad = add_bad_files(root, (kind,))[kind]
    dm = CatsVsDogsDataModule(root=str(root), image_size=16, val_fraction=0.0)
    with pytest.warns(BadImageFileWarning) as record:
        dm.setup("fit")
    messages = bad_image_warnings(record)
    assert len(messages) == 1
    assert str(bad) in messages[0] and reason in messages[0] and "1 unreadable image file " in messages[0]
    assert list(dm.bad_files) == [bad] and reason in dm.bad_files[bad]
    assert len(dm.train_set) == 12 and bad not in dm.train_set.paths
    for i in range(len(dm.train_set)):  # every remaining sample loads
        assert dm.train_set[i][0].shape == (3, 16, 16)
    assert not dm.train_set.failed


def test_all_unreadable_files_of_a_split_come_in_one_warning_with_the_count(tmp_path):
    root = cats_vs_dogs(tmp_path)
    bad = add_bad_files(root)
    dm = CatsVsDogsDataModule(root=str(root), image_size=16, val_fraction=0.25)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        dm.setup("fit")
        dm.setup("test")  # the held-out split is clean: no second warning
    messages = bad_image_warnings(record)
    assert len(messages) == 1 and "3 unreadable image files in the train split" in messages[0]
    assert all(str(path) in messages[0] for path in bad.values())
    assert set(dm.bad_files) == set(bad.values())
    assert len(dm.train_set) + len(dm.val_set) == 12 and len(dm.test_set) == 4


def test_the_warning_names_the_first_few_and_counts_the_rest(tmp_path):
    root = cats_vs_dogs(tmp_path)
    empties = [root / "cats_vs_dogs" / "train" / "dog" / f"dog.empty{k}.jpg" for k in range(8)]
    for path in empties:
        path.write_bytes(b"")
    dm = CatsVsDogsDataModule(root=str(root), image_size=16)
    with pytest.warns(BadImageFileWarning, match="8 unreadable image files") as record:
        dm.setup("fit")
    message = bad_image_warnings(record)[0]
    assert sum(str(path) in message for path in empties) == 5 and "and 3 more" in message
    assert set(dm.bad_files) == set(empties)


def test_on_bad_file_raise_stops_at_setup_naming_every_file(tmp_path):
    root = cats_vs_dogs(tmp_path)
    bad = add_bad_files(root)
    dm = CatsVsDogsDataModule(root=str(root), image_size=16, on_bad_file="raise")
    with pytest.raises(BadImageFilesError, match="3 unreadable image files in the train split") as error:
        dm.setup("fit")
    assert isinstance(error.value, ValueError)
    for path in bad.values():
        assert str(path) in str(error.value)
    assert set(error.value.bad_files) == set(bad.values())
    assert "on_bad_file='skip'" in str(error.value)
    assert dm.train_set is None


def test_a_kaggle_flat_folder_skips_the_bad_files_of_whichever_split_they_fall_in(tmp_path):
    folder = tmp_path / "cats_vs_dogs" / "train"
    for k in range(5):
        noisy_image(folder / f"cat.{k}.jpg", True, seed=k)
        noisy_image(folder / f"dog.{k}.jpg", False, seed=k)
    bad = {folder / "cat.5.jpg", folder / "dog.5.jpg"}
    (folder / "cat.5.jpg").write_bytes(b"")
    truncated(folder / "dog.5.jpg", red=False)
    dm = CatsVsDogsDataModule(root=str(tmp_path), image_size=16, val_fraction=0.0, test_fraction=0.25)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        dm.setup("fit")
        dm.setup("test")
    assert set(dm.bad_files) == bad
    assert len(dm.train_set) + len(dm.test_set) == 10
    assert not bad & (set(dm.train_set.paths) | set(dm.test_set.paths))
    named = [path for message in bad_image_warnings(record) for path in bad if str(path) in message]
    assert sorted(named) == sorted(bad)  # each named once, in the warning of its own split


def test_a_kaggle_folder_holding_only_cats_is_refused_at_set_up(tmp_path):
    folder = tmp_path / "cats_vs_dogs" / "train"
    for k in range(6):
        noisy_image(folder / f"cat.{k}.jpg", True, seed=k)  # the dogs never unzipped: a one-class 'classifier'
    dm = CatsVsDogsDataModule(root=str(tmp_path), image_size=16, val_fraction=0.0)
    with pytest.raises(ValueError, match=r"found no training image of class \['dog'\] under .*classes=\[\.\.\.\]"):
        dm.setup("fit")


def test_a_split_with_no_readable_file_says_so(tmp_path):
    for label in ("cat", "dog"):
        (tmp_path / "cats_vs_dogs" / "train" / label).mkdir(parents=True)
        (tmp_path / "cats_vs_dogs" / "train" / label / f"{label}.0.jpg").write_text("not an image")
    dm = CatsVsDogsDataModule(root=str(tmp_path))
    with pytest.warns(BadImageFileWarning), pytest.raises(ValueError, match="none of the 2 image files"):
        dm.setup("fit")


@pytest.mark.parametrize("value", ["ignore", "Skip", None])
def test_an_unknown_on_bad_file_fails_in_init_naming_the_choices(value):
    with pytest.raises(ValueError, match=r"on_bad_file must be 'skip' .* or 'raise'"):
        CatsVsDogsDataModule(on_bad_file=value)


def test_cifar10_png_folders_skip_unreadable_files_too(tmp_path):
    for split in ("train", "test"):
        for c, name in enumerate(("cat", "dog")):
            for j in range(3):
                noisy_image(tmp_path / "cifar10" / split / name / f"{j:05d}.png", c == 0, (32, 32), seed=j)
    bad = [tmp_path / "cifar10" / "train" / "cat" / "00003.png", tmp_path / "cifar10" / "train" / "dog" / "00003.png"]
    truncated(bad[0])
    bad[1].write_bytes(b"")
    dm = CIFAR10DataModule(root=str(tmp_path), classes=["cat", "dog"], val_fraction=0.0)
    with pytest.warns(BadImageFileWarning, match="2 unreadable image files in the train split") as record:
        dm.setup("fit")
    assert all(str(path) in bad_image_warnings(record)[0] for path in bad)
    assert len(dm.train_set) == 6 and set(dm.bad_files) == set(bad)
    with pytest.raises(BadImageFilesError, match="00003.png"):
        CIFAR10DataModule(root=str(tmp_path), classes=["cat", "dog"], on_bad_file="raise").setup("fit")


def test_a_cifar10_png_of_another_size_is_a_bad_file_named_not_a_stack_error(tmp_path):
    for c, name in enumerate(("cat", "dog")):
        for j in range(3):
            noisy_image(tmp_path / "cifar10" / "train" / name / f"{j:05d}.png", c == 0, (32, 32), seed=j)
    odd = tmp_path / "cifar10" / "train" / "dog" / "00003.png"
    noisy_image(odd, False, (40, 36))  # torch.stack raised 'stack expects each tensor to be equal size'
    dm = CIFAR10DataModule(root=str(tmp_path), classes=["cat", "dog"], val_fraction=0.0)
    with pytest.warns(BadImageFileWarning, match=r"00003.png \(is 40x36 pixels, not CIFAR-10.s 32x32\)"):
        dm.setup("fit")
    assert len(dm.train_set) == 6 and set(dm.bad_files) == {odd}


# ----------------------------------------------------------------------------------------- at load time
def test_a_file_that_fails_to_decode_later_is_replaced_by_the_next_sample(tmp_path):
    root = cats_vs_dogs(tmp_path)
    late = root / "cats_vs_dogs" / "train" / "dog" / "dog.late.jpg"
    late.write_bytes(UNDECODABLE_JPEG)
    dm = CatsVsDogsDataModule(root=str(root), image_size=16, val_fraction=0.0, augment=False)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        dm.setup("fit")
    assert not bad_image_warnings(record) and not dm.bad_files and late in dm.train_set.paths
    index = dm.train_set.paths.index(late)
    following = (index + 1) % len(dm.train_set)
    with pytest.warns(BadImageFileWarning, match="dog.late.jpg") as record:
        x, y = dm.train_set[index]
    expected_x, expected_y = dm.train_set[following]
    assert torch.equal(x, expected_x) and int(y) == int(expected_y)
    assert len(bad_image_warnings(record)) == 1
    assert list(dm.bad_files) == [late] and "UnidentifiedImageError" in dm.bad_files[late]


def test_a_tiny_fit_completes_and_warns_once_per_undecodable_file(tmp_path):
    from lightning_topo.models import CNNClassifier

    root = cats_vs_dogs(tmp_path)
    bad = add_bad_files(root)
    late = [root / "cats_vs_dogs" / "train" / label / f"{label}.late.jpg" for label in ("cat", "dog")]
    for path in late:
        path.write_bytes(UNDECODABLE_JPEG)
    dm = CatsVsDogsDataModule(root=str(root), image_size=16, batch_size=4, val_fraction=0.25)
    model = CNNClassifier(in_channels=dm.in_channels, num_classes=dm.num_classes, channels=(4, 8))
    trainer = quiet_trainer(tmp_path, max_epochs=2)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        trainer.fit(model, datamodule=dm)
    assert trainer.state.finished and trainer.current_epoch == 2
    assert trainer.global_step == 2 * -(-len(dm.train_set) // 4)  # 14 readable files: 10 train, 4 val
    assert len(dm.train_set) + len(dm.val_set) == 14
    messages = bad_image_warnings(record)
    assert sum("3 unreadable image files" in m for m in messages) == 1
    for path in late:  # each undecodable file warned about exactly once over both epochs
        assert sum(f"skipped image file {path}:" in m for m in messages) == 1
    assert set(dm.bad_files) == set(bad.values()) | set(late)


def test_files_failing_in_worker_processes_are_counted(tmp_path):
    root = cats_vs_dogs(tmp_path, per_class=4)
    late = root / "cats_vs_dogs" / "train" / "cat" / "cat.late.jpg"
    late.write_bytes(UNDECODABLE_JPEG)
    dm = CatsVsDogsDataModule(root=str(root), image_size=16, batch_size=3, val_fraction=0.0, num_workers=2)
    dm.setup("fit")
    loader = dm.train_dataloader()
    for _ in range(2):
        labels = torch.cat([y for _, y in loader])
        assert len(labels) == 9  # the undecodable file is replaced, not dropped
    assert list(dm.bad_files) == [late]
    assert "UnidentifiedImageError" in dm.bad_files[late]


# ----------------------------------------------------------------------------------------- through the CLI
FAST = ["--trainer.fast_dev_run=true", "--trainer.logger=false", "--trainer.enable_progress_bar=false"]


@pytest.mark.filterwarnings("ignore:BettiMonitor. the probe has")  # the tiny folder gives a small probe
def test_the_cli_trains_without_the_unreadable_files_and_names_them(tmp_path, monkeypatch):
    from lightning_topo.cli import run_cli

    root = cats_vs_dogs(tmp_path, per_class=4)
    bad = add_bad_files(root)
    monkeypatch.chdir(tmp_path)
    with pytest.warns(BadImageFileWarning) as record:
        cli = run_cli(["fit", "-c", "recipes/cats_vs_dogs.yaml", "--data.root", str(root), *FAST])
    assert cli.trainer.state.finished and cli.trainer.global_step == 1
    message = bad_image_warnings(record)[0]
    assert all(str(path) in message for path in bad.values())
    assert set(cli.datamodule.bad_files) == set(bad.values())


@pytest.mark.parametrize("flag", ["--data.on_bad_file", "--data.init_args.on_bad_file"])
def test_the_cli_with_on_bad_file_raise_stops_before_training_naming_them(tmp_path, monkeypatch, capsys, flag):
    from lightning_topo.cli import run_cli
    from lightning_topo.models import CNNClassifier

    root = cats_vs_dogs(tmp_path, per_class=4)
    bad = add_bad_files(root)
    steps: list[int] = []
    original = CNNClassifier.training_step
    monkeypatch.setattr(
        CNNClassifier, "training_step", lambda self, *a, **k: steps.append(1) or original(self, *a, **k)
    )
    monkeypatch.chdir(tmp_path)
    argv = ["fit", "-c", "recipes/cats_vs_dogs.yaml", "--data.root", str(root), flag, "raise", *FAST]
    with pytest.raises((BadImageFilesError, SystemExit)) as caught:  # SystemExit if the CLI turns it into one line
        run_cli(argv)
    shown = str(caught.value) + capsys.readouterr().err
    assert "3 unreadable image files in the train split" in shown
    assert all(str(path) in shown for path in bad.values())
    assert steps == []  # not a single training step ran


def test_the_console_script_reports_unreadable_files_in_one_line_before_training(tmp_path, monkeypatch, capsys):
    from lightning_topo.cli import main

    root = cats_vs_dogs(tmp_path, per_class=4)
    bad = add_bad_files(root)
    monkeypatch.chdir(tmp_path)
    argv = ["fit", "-c", "recipes/cats_vs_dogs.yaml", "--data.root", str(root), "--data.on_bad_file", "raise", *FAST]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("lightning-topo: error:")]
    assert len(lines) == 1 and "3 unreadable image files in the train split" in lines[0]
    assert all(str(path) in err for path in bad.values())
