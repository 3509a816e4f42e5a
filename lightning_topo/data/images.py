"""Image data modules: Fashion-MNIST, CIFAR-10 and cats-vs-dogs, on torchvision, online or from local files.

Every module takes the same options (``root``, ``classes``, ``val_fraction``, ``seed``, ``image_size``,
``augment``, ``normalize``, ``batch_size``, ``num_workers``) and exposes ``num_classes``, ``in_channels``,
``image_size`` and ``class_names`` from ``__init__`` on, so a recipe can set the model's ``in_channels`` /
``num_classes`` from them. Data are only read in :meth:`setup`; missing files raise a
``FileNotFoundError`` that names every path looked at, the expected layout and how to get the files.

Layouts (``root`` is the folder that *contains* these):

* Fashion-MNIST: ``<root>/FashionMNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`` (torchvision's raw
  layout; ``download=True`` fetches it).
* CIFAR-10: ``<root>/cifar10/{train,test}/<class>/*.png`` (PNG class folders), or torchvision's
  ``<root>/cifar-10-batches-py`` (``download=True`` fetches it).
* Cats vs dogs: ``<root>/cats_vs_dogs/{train,val}/{cat,dog}/*.jpg`` (class folders; ``test/`` instead of
  ``val/`` also works), or Kaggle's flat folder ``<root>/cats_vs_dogs/train/{cat,dog}.N.jpg`` (the unzipped
  ``train.zip``; ``<root>/cats_vs_dogs/{cat,dog}.N.jpg`` also works), split into train/test with ``test_fraction``.

Unreadable image files (empty, not an image, truncated: Kaggle's cats-vs-dogs holds some) are found at
:meth:`~ImageDataModule.setup` by a cheap check (:func:`check_image_file`: size, magic bytes and the format's
end marker; only files that fail it are fully decoded to confirm) and skipped with one
:class:`BadImageFileWarning` that counts them and names the first few; ``on_bad_file="raise"`` stops there
with a :class:`BadImageFilesError` (a ``ValueError``) that lists them instead. A file that passes the check
but fails to decode when a batch is loaded is replaced by the next sample, warned about once (naming it) and
counted; ``datamodule.bad_files`` maps every skipped file to the reason.

Class subsets: ``classes=["cat", "dog"]`` (names) or ``classes=[3, 5]`` (original label indices) keeps those
classes only and relabels them ``0..n-1`` **in the order given** (here cat -> 0, dog -> 1).

Example:
    >>> dm = FashionMNISTDataModule(root="./data", classes=["T-shirt/top", "Shirt"])
    >>> dm.num_classes, dm.in_channels, dm.image_size
    (2, 1, 28)
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_warn
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import datasets
from torchvision.transforms import v2

from lightning_topo.arguments import check_flag, check_seed, is_real
from lightning_topo.data.image_datasets import FileImages, TensorImages
from lightning_topo.data.image_files import (
    BadImageFilesError,
    BadImageFileWarning,
    check_image_file,
    describe_bad_files,
)
from lightning_topo.data.image_layouts import kaggle_files, missing_files, split_flat
from lightning_topo.data.image_transforms import file_transform, tensor_transform
from lightning_topo.data.validation import NoValidationWithoutSplit

__all__ = [
    "CIFAR10DataModule",
    "CatsVsDogsDataModule",
    "FashionMNISTDataModule",
    "ImageDataModule",
]

#: Files named in a warning or error before "... and N more".


class ImageDataModule(NoValidationWithoutSplit, pl.LightningDataModule):
    """Shared logic of the image data modules: class subsets, the seeded split, transforms and loaders.

    Subclasses set ``CLASS_NAMES``, ``IN_CHANNELS``, ``NATIVE_SIZE``, ``MEAN``/``STD`` and implement
    :meth:`_read` (returning the train or test split as uint8 tensors or as image files).

    Args:
        root: folder that contains the data set's folder (see the module docstring for each layout).
        classes: keep only these classes (names or original label indices, at least two), relabelled
            ``0..n-1`` in the order given; ``None`` keeps every class.
        val_fraction: fraction of the training split held out (seeded, random) as the validation set;
            0 trains on all of it and switches the validation loop off during ``fit`` (``trainer.limit_val_batches``
            is 0 for that fit and restored after it), as :class:`~lightning_topo.data.SyntheticDataModule` does.
        seed: seed of the train/validation split.
        image_size: side of the square images fed to the model (``None``: the data set's native size).
        augment: random crops and horizontal flips on the training set.
        normalize: subtract the data set's channel means and divide by its standard deviations.
        batch_size: samples per batch.
        num_workers: DataLoader worker processes.
        on_bad_file: what to do with unreadable image files found at set-up (empty, not an image,
            truncated): ``"skip"`` them with one warning, or ``"raise"`` a :class:`BadImageFilesError` listing
            them. Files that fail to decode later are always skipped, warned about and counted in
            :attr:`bad_files`. Only data sets read from image files (cats vs dogs, CIFAR-10 PNG folders) have any.
    """

    CLASS_NAMES: tuple[str, ...] = ()
    IN_CHANNELS: int = 3
    NATIVE_SIZE: int = 32
    MEAN: tuple[float, ...] = (0.5,)
    STD: tuple[float, ...] = (0.5,)
    #: Zero padding of the random crop for in-memory sets (pixels at the native size).
    CROP_PADDING: int = 4

    def __init__(
        self,
        root: str = "./data",
        classes: Sequence[str | int] | None = None,
        val_fraction: float = 0.1,
        seed: int = 0,
        image_size: int | None = None,
        augment: bool = False,
        normalize: bool = True,
        batch_size: int = 128,
        num_workers: int = 0,
        on_bad_file: str = "skip",
    ) -> None:
        super().__init__()
        if on_bad_file not in ("skip", "raise"):
            raise ValueError(
                f"on_bad_file must be 'skip' (train without unreadable image files) or 'raise' (stop at set-up), "
                f"got {on_bad_file!r}"
            )
        if not (is_real(val_fraction) and 0.0 <= val_fraction < 1.0):
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
        check_seed(seed)
        check_flag("augment", augment)
        check_flag("normalize", normalize)
        if image_size is not None and (not isinstance(image_size, int) or image_size < 8):
            raise ValueError(f"image_size must be an integer >= 8 or None (native size), got {image_size!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"num_workers must be a non-negative integer, got {num_workers!r}")
        self.root = Path(root).expanduser()
        self.class_ids = self._resolve_classes(classes)
        self.class_names = [self.CLASS_NAMES[i] for i in self.class_ids]
        self.num_classes = len(self.class_ids)
        self.in_channels = self.IN_CHANNELS
        self.image_size = image_size or self.NATIVE_SIZE
        self.val_fraction, self.seed, self.augment, self.normalize = val_fraction, seed, augment, normalize
        self.batch_size, self.num_workers, self.on_bad_file = batch_size, num_workers, on_bad_file
        self.save_hyperparameters()
        self._bad_at_setup: dict[Path, str] = {}
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None

    # ----------------------------------------------------------------- classes and labels
    def _resolve_classes(self, classes: Sequence[str | int] | None) -> list[int]:
        names = self.CLASS_NAMES
        if classes is None:
            return list(range(len(names)))
        if isinstance(classes, (str, int)):
            raise ValueError(f"classes must be a list of class names or indices, got {classes!r}")
        ids: list[int] = []
        for item in classes:
            if isinstance(item, int) and not isinstance(item, bool) and 0 <= item < len(names):
                ids.append(item)
            elif isinstance(item, str) and item in names:
                ids.append(names.index(item))
            else:
                raise ValueError(
                    f"unknown class {item!r} in classes; use names from {list(names)} or indices 0..{len(names) - 1}"
                )
        if len(set(ids)) != len(ids) or len(ids) < 2:
            raise ValueError(f"classes must name at least two distinct classes, got {list(classes)!r}")
        return ids

    def _keep(self, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Indices of the samples of the selected classes and their labels remapped to ``0..n-1``."""
        mapping = torch.full((len(self.CLASS_NAMES),), -1, dtype=torch.long)
        mapping[torch.tensor(self.class_ids)] = torch.arange(len(self.class_ids))
        new = mapping[labels.long()]
        index = torch.nonzero(new >= 0).flatten()
        return index, new[index]

    def _check_every_class_present(self, labels: torch.Tensor) -> None:
        """A class without a training image trains a model that can never predict it: say so at set-up."""
        counts = torch.bincount(labels, minlength=self.num_classes)
        missing = [name for name, count in zip(self.class_names, counts.tolist()) if count == 0]
        if missing:
            raise ValueError(
                f"{type(self).__name__} found no training image of class{'es' * (len(missing) > 1)} {missing} under "
                f"{self.root}; check the folder (a partial download or unzip?), or choose the classes present with "
                "classes=[...]"
            )

    # ----------------------------------------------------------------- data reading (subclasses)
    def _read(self, train: bool) -> tuple[torch.Tensor | list[Path], torch.Tensor]:
        """The train or test split: uint8 ``(N, C, H, W)`` images (or image paths) and original labels."""
        raise NotImplementedError

    # ----------------------------------------------------------------- transforms
    def _normalisation(self) -> tuple[Sequence[float], Sequence[float]]:
        return (self.MEAN, self.STD) if self.normalize else ((0.0,) * self.IN_CHANNELS, (1.0,) * self.IN_CHANNELS)

    def _tensor_transform(self, train: bool) -> Callable:
        padding = max(1, round(self.CROP_PADDING * self.image_size / self.NATIVE_SIZE))
        return tensor_transform(self.image_size, padding, train and self.augment, *self._normalisation())

    def _file_transform(self, train: bool) -> Callable:
        return file_transform(self.image_size, train and self.augment, *self._normalisation())

    def _dataset(self, images: torch.Tensor | list[Path], labels: torch.Tensor, train: bool) -> Dataset:
        if isinstance(images, torch.Tensor):
            if images.shape[-1] != self.image_size:
                images = v2.functional.resize(images, [self.image_size, self.image_size], antialias=True)
            return TensorImages(images, labels, self._tensor_transform(train))
        return FileImages(images, labels, self._file_transform(train))

    # ----------------------------------------------------------------- unreadable files
    @property
    def bad_files(self) -> dict[Path, str]:
        """Every skipped image file -> why: found at set-up, or failed to decode while loading (workers too).

        Example:
            Not run as a test: it needs the cats-vs-dogs images on disk.

            >>> dm = CatsVsDogsDataModule(root="./data")  # doctest: +SKIP
            >>> dm.setup("fit")  # one BadImageFileWarning if it skips files  # doctest: +SKIP
            >>> for path, why in dm.bad_files.items():  # after training, also those that failed to decode
            ...     print(path, why)  # doctest: +SKIP
        """
        found = dict(self._bad_at_setup)
        for data in (self.train_set, self.val_set, self.test_set):
            if isinstance(data, FileImages):
                for path, reason in data.collect_failed().items():
                    found.setdefault(path, reason)
        return found

    def _screen(self, paths: Sequence[Path], split: str) -> list[int]:
        """Indices of the readable files among ``paths``; the others are skipped or raised per ``on_bad_file``."""
        bad = {}
        for path in paths:
            reason = check_image_file(path)
            if reason is not None:
                bad[path] = reason
        self._handle_bad(bad, split)
        return [i for i, path in enumerate(paths) if path not in bad] if bad else list(range(len(paths)))

    def _handle_bad(self, bad: dict[Path, str], split: str) -> None:
        """Raise (``on_bad_file="raise"``) or record and warn once about the unreadable files of ``split``."""
        if not bad:
            return
        what = f"{len(bad)} unreadable image file{'s' * (len(bad) > 1)} in the {split} split of {type(self).__name__}"
        if self.on_bad_file == "raise":
            raise BadImageFilesError(
                f"{what}: {describe_bad_files(bad, limit=20)}. Delete or replace them, or set on_bad_file='skip' "
                "(--data.on_bad_file skip) to train without them.",
                bad,
            )
        self._bad_at_setup.update(bad)
        rank_zero_warn(
            f"skipped {what}: {describe_bad_files(bad)}. datamodule.bad_files lists them all; set on_bad_file='raise' to "
            "stop instead.",
            category=BadImageFileWarning,
        )

    def _readable(
        self, images: torch.Tensor | list[Path], labels: torch.Tensor, split: str
    ) -> tuple[torch.Tensor | list[Path], torch.Tensor]:
        if isinstance(images, torch.Tensor):
            return images, labels
        keep = self._screen(images, split)
        if images and not keep:
            raise ValueError(
                f"none of the {len(images)} image files of the {split} split of {type(self).__name__} is readable "
                f"(see the warning above; e.g. {images[0]}); check that root points at the right folder."
            )
        return [images[i] for i in keep], labels[torch.tensor(keep, dtype=torch.long)]

    # ----------------------------------------------------------------- LightningDataModule hooks
    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit", "validate") and self.train_set is None:
            images, labels = self._readable(*self._read(train=True), split="train")
            index, labels = self._keep(labels)
            self._check_every_class_present(labels)
            order = torch.randperm(len(index), generator=torch.Generator().manual_seed(self.seed))
            n_val = int(round(self.val_fraction * len(order)))
            if n_val >= len(order) and stage in (None, "fit"):
                raise ValueError(
                    f"val_fraction={self.val_fraction} of the {len(order)} training images of {type(self).__name__} "
                    "leaves no image to train on; lower val_fraction, or choose more classes or images"
                )
            for name, part, train in (("val_set", order[:n_val], False), ("train_set", order[n_val:], True)):
                subset = _take(images, index[part])
                setattr(self, name, self._dataset(subset, labels[part], train) if len(part) else None)
        self._skip_validation_without_split(stage)
        if stage in (None, "test", "predict") and self.test_set is None:
            images, labels = self._readable(*self._read(train=False), split="test")
            index, labels = self._keep(labels)
            self.test_set = self._dataset(_take(images, index), labels, train=False)

    def _loader(self, data: Dataset | None, shuffle: bool) -> DataLoader | list:
        if data is None:
            return []
        if isinstance(data, FileImages) and self.num_workers > 0 and data.reports is None:
            data.reports = multiprocessing.Queue()  # workers report files that fail to decode through it
        return DataLoader(
            data,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        if self.train_set is None:
            self.setup("fit")
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader | list:
        if self.train_set is None:
            self.setup("fit")
        return self._loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> DataLoader | list:
        if self.test_set is None:
            self.setup("test")
        return self._loader(self.test_set, shuffle=False)

    def predict_dataloader(self) -> DataLoader | list:
        return self.test_dataloader()


def _take(images: torch.Tensor | list[Path], index: torch.Tensor) -> torch.Tensor | list[Path]:
    return images[index] if isinstance(images, torch.Tensor) else [images[int(i)] for i in index]


class FashionMNISTDataModule(ImageDataModule):
    """Fashion-MNIST (60,000 train / 10,000 test, 28x28 grey) through ``torchvision.datasets.FashionMNIST``.

    Reads ``<root>/FashionMNIST/raw/*-ubyte`` (torchvision's raw layout, uncompressed IDX files); with
    ``download=True`` torchvision fetches them first. Options: see :class:`ImageDataModule`
    (``augment`` defaults to off: crops and flips do not pay off in a few epochs here).

    Example:
        >>> dm = FashionMNISTDataModule(root="./data", download=True, classes=[0, 6])  # T-shirt vs shirt
        >>> dm.num_classes, dm.class_names
        (2, ['T-shirt/top', 'Shirt'])
    """

    CLASS_NAMES = tuple(datasets.FashionMNIST.classes)
    IN_CHANNELS = 1
    NATIVE_SIZE = 28
    MEAN = (0.2860,)
    STD = (0.3530,)
    CROP_PADDING = 2
    FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

    def __init__(self, root: str = "./data", *, download: bool = False, augment: bool = False, **options: Any) -> None:
        super().__init__(root, augment=augment, **options)
        self.download = download

    def prepare_data(self) -> None:
        if self.download:
            try:
                for train in (True, False):
                    datasets.FashionMNIST(str(self.root), train=train, download=True)
            except Exception as error:  # offline, or a mirror down: say where the files go instead
                raise self._not_found(f"the download failed ({type(error).__name__}: {error}). ") from error

    def _not_found(self, why: str = "") -> FileNotFoundError:
        raw = self.root / "FashionMNIST" / "raw"
        return missing_files(
            "Fashion-MNIST",
            [raw / f for f in self.FILES],
            f"  {self.root}/FashionMNIST/raw/{{{', '.join(self.FILES)}}} (uncompressed IDX files)",
            f"{why}Pass download=True (--data.download=true) when online, or gunzip the four files of "
            "https://github.com/zalandoresearch/fashion-mnist (data/fashion/*.gz) into that folder.",
        )

    def _read(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        raw = self.root / "FashionMNIST" / "raw"
        if self.download:
            self.prepare_data()
        if not all((raw / f).is_file() for f in self.FILES):
            raise self._not_found()
        data = datasets.FashionMNIST(str(self.root), train=train, download=False)
        return data.data.unsqueeze(1).contiguous(), data.targets.long()


class CIFAR10DataModule(ImageDataModule):
    """CIFAR-10 (32x32 colour, 10 classes) from PNG class folders or torchvision's ``cifar-10-batches-py``.

    Looks first for ``<root>/cifar10/{train,test}/<class>/*.png`` (read with ``torchvision.datasets.ImageFolder``,
    class folders named as in :attr:`CLASS_NAMES`; missing class folders are allowed when ``classes``
    leaves them out), then for torchvision's ``<root>/cifar-10-batches-py``; ``download=True`` fetches the
    latter when neither is present. ``augment`` (on by default): 4-pixel padded random crops and flips.

    Example:
        >>> dm = CIFAR10DataModule(root="./data", download=True, classes=["cat", "dog"])
        >>> dm.num_classes, dm.in_channels, dm.image_size
        (2, 3, 32)
    """

    CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    IN_CHANNELS = 3
    NATIVE_SIZE = 32
    MEAN = (0.4914, 0.4822, 0.4465)
    STD = (0.2470, 0.2435, 0.2616)

    def __init__(self, root: str = "./data", *, download: bool = False, augment: bool = True, **options: Any) -> None:
        super().__init__(root, augment=augment, **options)
        self.download = download

    @property
    def _png_dir(self) -> Path:
        return self.root / "cifar10"

    @property
    def _batches_dir(self) -> Path:
        return self.root / datasets.CIFAR10.base_folder

    def prepare_data(self) -> None:
        if self.download and not (self._png_dir / "train").is_dir():
            try:
                datasets.CIFAR10(str(self.root), train=True, download=True)
            except Exception as error:  # offline, or a mirror down: say where the files go instead
                raise self._not_found("train", f"the download failed ({type(error).__name__}: {error}). ") from error

    def _not_found(self, split: str, why: str = "") -> FileNotFoundError:
        return missing_files(
            "CIFAR-10",
            [self._png_dir / split, self._batches_dir],
            f"  {self._png_dir}/{{train,test}}/<class>/*.png with <class> in {list(self.CLASS_NAMES)}\n"
            f"  or torchvision's {self._batches_dir}/{{data_batch_1..5,test_batch,batches.meta}}",
            f"{why}Pass download=True (--data.download=true) when online to fetch cifar-10-batches-py, or point "
            "root at the folder that holds cifar10/ or cifar-10-batches-py/.",
        )

    def _read(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        split = "train" if train else "test"
        if (self._png_dir / split).is_dir():
            return self._read_folders(self._png_dir / split)
        if self.download:
            self.prepare_data()
        if self._batches_dir.is_dir():
            data = datasets.CIFAR10(str(self.root), train=train, download=False)
            return torch.from_numpy(data.data).permute(0, 3, 1, 2).contiguous(), torch.tensor(data.targets)
        raise self._not_found(split)

    def _read_folders(self, folder: Path) -> tuple[torch.Tensor, torch.Tensor]:
        wanted = [self.CLASS_NAMES[i] for i in self.class_ids]
        missing = [c for c in wanted if not (folder / c).is_dir()]
        if missing:
            raise missing_files(
                "CIFAR-10 class folders",
                [folder / c for c in missing],
                f"  {folder}/<class>/*.png with <class> in {list(self.CLASS_NAMES)}",
                "export every class (or choose a subset with classes=[...]).",
            )
        present = [c for c in self.CLASS_NAMES if (folder / c).is_dir()]
        names = {c: self.CLASS_NAMES.index(c) for c in present}

        class _Folders(datasets.ImageFolder):
            def find_classes(self, directory: str) -> tuple[list[str], dict[str, int]]:
                return [c for c in present if c in wanted], {c: names[c] for c in wanted}

        data = _Folders(str(folder))
        samples = [data.samples[i] for i in self._screen([Path(p) for p, _ in data.samples], folder.name)]
        decoded, targets, failed = [], [], {}
        for path, target in samples:
            try:
                with Image.open(path) as image:
                    pixels = v2.functional.pil_to_tensor(image.convert("RGB"))
            except Exception as error:  # passed the cheap check, fails to decode: same policy
                failed[Path(path)] = f"cannot be decoded ({type(error).__name__}: {error})"
                continue
            if tuple(pixels.shape[-2:]) != (self.NATIVE_SIZE, self.NATIVE_SIZE):  # not one of the set's images
                height, width = pixels.shape[-2:]
                failed[Path(path)] = f"is {width}x{height} pixels, not CIFAR-10's {self.NATIVE_SIZE}x{self.NATIVE_SIZE}"
                continue
            decoded.append(pixels)
            targets.append(target)
        self._handle_bad(failed, folder.name)
        images = torch.stack(decoded) if decoded else None
        if images is None:
            raise missing_files(
                "CIFAR-10 images", [folder / c for c in wanted], f"  {folder}/<class>/*.png", "export the images."
            )
        return images, torch.tensor(targets)


class CatsVsDogsDataModule(ImageDataModule):
    """Kaggle's Dogs vs. Cats photos (cat -> 0, dog -> 1), resized to ``image_size`` (default 64).

    Looks in ``<root>/cats_vs_dogs`` and then ``<root>`` itself for either layout:

    * class folders ``train/{cat,dog}/*.jpg`` with the held-out test set in ``val/{cat,dog}`` (or ``test/``);
    * Kaggle's flat folder ``train/{cat,dog}.N.jpg`` (the unzipped competition ``train.zip``) or the same files
      directly in the folder; a seeded ``test_fraction`` of it becomes the test set.

    Images are read from disk on each access (resized so the short side is ``8/7 * image_size``, then cropped:
    randomly with flips when ``augment`` is on, centrally otherwise), so the full 25,000-image set works too;
    raise ``num_workers`` when decoding becomes the bottleneck. Kaggle's data need a login, so there is
    no ``download``: get ``train.zip`` from https://www.kaggle.com/c/dogs-vs-cats/data and unzip it into
    ``<root>/cats_vs_dogs/``.

    Example:
        >>> dm = CatsVsDogsDataModule(root="./data", image_size=64)
        >>> dm.num_classes, dm.in_channels, dm.class_names
        (2, 3, ['cat', 'dog'])
    """

    CLASS_NAMES = ("cat", "dog")
    IN_CHANNELS = 3
    NATIVE_SIZE = 64
    MEAN = (0.485, 0.456, 0.406)  # ImageNet statistics, the usual choice for photos
    STD = (0.229, 0.224, 0.225)

    def __init__(
        self, root: str = "./data", *, test_fraction: float = 0.2, augment: bool = True, **options: Any
    ) -> None:
        super().__init__(root, augment=augment, **options)
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
        self.test_fraction = test_fraction

    def _candidates(self) -> list[Path]:
        return [self.root / "cats_vs_dogs", self.root]

    def _read(self, train: bool) -> tuple[list[Path], torch.Tensor]:
        for base in self._candidates():
            if all((base / "train" / c).is_dir() for c in self.CLASS_NAMES):
                return self._read_folders(base, train)
            for flat in (base / "train", base):
                files = kaggle_files(flat)
                if files:
                    return split_flat(files, self.CLASS_NAMES, train, self.test_fraction, self.seed + 1)
        layout = (
            "  <root>/cats_vs_dogs/train/{cat,dog}/*.jpg and <root>/cats_vs_dogs/val/{cat,dog}/*.jpg (class folders)\n"
            "  or Kaggle's flat <root>/cats_vs_dogs/train/{cat,dog}.N.jpg (unzipped train.zip)"
        )
        looked = [p for base in self._candidates() for p in (base / "train" / "cat", base / "train", base)]
        raise missing_files(
            "Cats vs dogs images",
            list(dict.fromkeys(looked)),
            layout,
            "download train.zip from https://www.kaggle.com/c/dogs-vs-cats/data (a Kaggle login is needed) and "
            f"unzip it into {(self.root / 'cats_vs_dogs').resolve()}, or point root at a folder with class folders.",
        )

    def _read_folders(self, base: Path, train: bool) -> tuple[list[Path], torch.Tensor]:
        if train:
            folder = base / "train"
        else:
            folder = next((base / s for s in ("val", "test") if (base / s).is_dir()), None)
            if folder is None:
                raise missing_files(
                    "Cats vs dogs held-out images",
                    [base / "val", base / "test"],
                    f"  {base}/val/{{cat,dog}}/*.jpg (or test/)",
                    "put the held-out images in val/cat and val/dog.",
                )
        data = datasets.ImageFolder(str(folder), allow_empty=True)
        if sorted(data.classes) != sorted(self.CLASS_NAMES) and not set(self.CLASS_NAMES) <= set(data.classes):
            raise ValueError(f"{folder} must hold class folders {list(self.CLASS_NAMES)}, found {data.classes}")
        paths = [Path(p) for p, t in data.samples if data.classes[t] in self.CLASS_NAMES]
        labels = [
            self.CLASS_NAMES.index(data.classes[t]) for _, t in data.samples if data.classes[t] in self.CLASS_NAMES
        ]
        if not paths:
            raise missing_files(
                "Cats vs dogs images",
                [folder / c for c in self.CLASS_NAMES],
                f"  {folder}/{{cat,dog}}/*.jpg",
                "add the images.",
            )
        return paths, torch.tensor(labels)
