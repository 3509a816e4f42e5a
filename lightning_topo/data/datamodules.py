"""SyntheticDataModule: the D-I / D-II / D-III sets as a LightningDataModule (full batch by default)."""

from __future__ import annotations

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from lightning_topo.arguments import check_seed, is_real
from lightning_topo.data.synthetic import DATASETS, check_arguments, make_dataset
from lightning_topo.data.validation import NoValidationWithoutSplit

__all__ = ["SCALINGS", "SyntheticDataModule"]

SCALINGS = ("none", "maxabs", "standard")


class _FullBatch(Dataset):
    """One item, the whole tensor pair: with ``batch_size=None`` one step per epoch and no per-sample collation.

    Map-style rather than an ``IterableDataset``, so its length of 1 is exact on every rank and Lightning has
    nothing to warn about (it cannot trust ``__len__`` of an iterable dataset under several workers).
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if index != 0:
            raise IndexError(f"a full batch has one item, index 0; got {index}")
        return self.x, self.y

    def __len__(self) -> int:
        return 1


class SyntheticDataModule(NoValidationWithoutSplit, pl.LightningDataModule):
    """A synthetic topology set, split into train/validation, scaled, served full batch or in mini-batches.

    Args:
        dataset: ``"d1"`` (disks in R^2), ``"d2"`` (linked solid tori in R^3) or ``"d3"`` (nested spheres in R^3).
        units: number of disks/tori/shells (9, or a perfect square such as 169 for a 13x13 grid).
        n_points: total number of points (``None``: the generator's default size).
        seed: seed of the generator and of the split.
        batch_size: ``None`` trains full batch (the protocol of the topology literature).
        val_fraction: fraction of the points held out for validation. 0 trains on everything and switches
            the validation loop off during ``fit`` (``trainer.limit_val_batches`` is 0 for that fit and restored
            after it); ``test`` and ``predict`` then run on the training points.
        scaling: input scaling fitted on the training split: ``"none"``, ``"maxabs"`` (divide by the largest
            absolute coordinate) or ``"standard"`` (zero mean, unit variance per feature).

    Example:
        >>> dm = SyntheticDataModule("d1", n_points=2000, val_fraction=0.2)
        >>> dm.setup("fit")
        >>> x, y = next(iter(dm.train_dataloader()))
        >>> x.shape[1], dm.in_features, dm.num_classes
        (2, 2, 2)
    """

    def __init__(
        self,
        dataset: str = "d1",
        units: int = 9,
        n_points: int | None = None,
        seed: int = 0,
        batch_size: int | None = None,
        val_fraction: float = 0.1,
        scaling: str = "none",
    ) -> None:
        super().__init__()
        if dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {sorted(DATASETS)}, got {dataset!r}")
        if scaling not in SCALINGS:
            raise ValueError(f"scaling must be one of {SCALINGS}, got {scaling!r}")
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
            raise ValueError(f"batch_size must be a positive integer or None (full batch), got {batch_size!r}")
        if not (is_real(val_fraction) and 0.0 <= val_fraction < 1.0):
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
        check_seed(seed)
        self.save_hyperparameters()
        check_arguments(units, n_points)
        self._kwargs = {"units": units, "seed": seed} | ({} if n_points is None else {"n_points": n_points})
        self.in_features = 2 if dataset == "d1" else 3
        self.num_classes = 2
        self.train_set: TensorDataset | None = None
        self.val_set: TensorDataset | None = None

    def setup(self, stage: str | None = None) -> None:
        self._make_splits()
        # No held-out split: validating on the training points every epoch would repeat the training metrics
        # at extra cost, and an empty loader makes Lightning warn, so the fit runs no validation loop.
        self._skip_validation_without_split(stage)

    def _make_splits(self) -> None:
        if self.train_set is not None:
            return
        x, y = make_dataset(self.hparams.dataset, **self._kwargs)
        order = np.random.default_rng(self.hparams.seed + 1).permutation(len(x))
        n_val = int(round(self.hparams.val_fraction * len(x)))
        if n_val >= len(x):
            raise ValueError(
                f"val_fraction={self.hparams.val_fraction} of {len(x)} points leaves no training point; lower "
                "val_fraction or raise n_points"
            )
        val_idx, train_idx = order[:n_val], order[n_val:]
        x_train, x_val = self._scale(x[train_idx], x[val_idx])
        self.train_set = TensorDataset(torch.from_numpy(x_train), torch.from_numpy(y[train_idx]))
        self.val_set = TensorDataset(torch.from_numpy(x_val), torch.from_numpy(y[val_idx])) if n_val else None

    def _scale(self, train: np.ndarray, val: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.hparams.scaling == "maxabs":
            factor = np.abs(train).max()
            return train / factor, val / factor
        if self.hparams.scaling == "standard":
            mean, std = train.mean(axis=0), train.std(axis=0) + 1e-12
            return (train - mean) / std, (val - mean) / std
        return train, val

    def _loader(self, data: TensorDataset, shuffle: bool) -> DataLoader:
        if self.hparams.batch_size is None:
            return DataLoader(_FullBatch(*data.tensors), batch_size=None)
        return DataLoader(data, batch_size=self.hparams.batch_size, shuffle=shuffle)

    def train_dataloader(self) -> DataLoader:
        self._make_splits()
        assert self.train_set is not None
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader | list:
        """The held-out split; with ``val_fraction=0`` an empty list (``fit`` then runs no validation loop)."""
        self._make_splits()
        return [] if self.val_set is None else self._loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        """The held-out split; with ``val_fraction=0`` (the protocol's setting) the training set itself."""
        self._make_splits()
        held_out = self.val_set if self.val_set is not None else self.train_set
        assert held_out is not None
        return self._loader(held_out, shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self.test_dataloader()
