"""Where the image data sets lie on disk: the error that names every path looked at, the expected layout and how
to get the files, and Kaggle's flat cats-vs-dogs folder (``cat.N.jpg``, ``dog.N.jpg``) and its seeded split.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import torch

__all__ = ["KAGGLE_NAME", "kaggle_files", "missing_files", "split_flat"]

#: A file of Kaggle's Dogs vs. Cats ``train.zip``: ``cat.123.jpg``
KAGGLE_NAME = re.compile(r"^(cat|dog)\.\d+\.(jpe?g|png)$", re.IGNORECASE)


def missing_files(name: str, looked: Sequence[Path], layout: str, how: str) -> FileNotFoundError:
    """A ``FileNotFoundError`` naming every path looked at, the expected layout and how to get the files."""
    where = "\n".join(f"  - {p.resolve()}" for p in looked)
    return FileNotFoundError(f"{name} not found. Looked for:\n{where}\nExpected layout:\n{layout}\nTo get it: {how}")


def kaggle_files(folder: Path) -> list[Path]:
    """The Kaggle-named images (``cat.N.jpg``, ``dog.N.jpg``) directly in ``folder``, sorted; none if it is absent."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if KAGGLE_NAME.match(p.name))


def split_flat(
    files: list[Path], class_names: Sequence[str], train: bool, test_fraction: float, seed: int
) -> tuple[list[Path], torch.Tensor]:
    """The train or test part of a flat Kaggle folder (a seeded ``test_fraction`` is the test part), and labels
    read from the file names as indices into ``class_names``."""
    labels = torch.tensor([class_names.index(p.name.split(".")[0].lower()) for p in files])
    order = torch.randperm(len(files), generator=torch.Generator().manual_seed(seed))
    n_test = max(1, int(round(test_fraction * len(files))))
    part = order[n_test:] if train else order[:n_test]
    return [files[int(i)] for i in part], labels[part]
