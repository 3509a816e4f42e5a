"""Small two-class images for the pruner's tests, as a data set and as an endless stream (no length)."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import IterableDataset, TensorDataset


def _brighten_class_one(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Class 1's images have a brighter top half: a task a small CNN learns in a few steps."""
    x[..., :6, :] += 2.0 * y.reshape(-1, *([1] * (x.dim() - 1)))
    return x


def images(n: int = 256, seed: int = 0) -> TensorDataset:
    """``n`` single-channel 12x12 images, classes 0 and 1 alternating."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    return TensorDataset(_brighten_class_one(torch.randn(n, 1, 12, 12, generator=gen), y), y)


class Stream(IterableDataset):
    """An endless stream of the same kind of images: no length, so an epoch on it never ends by itself;
    ``passes`` counts the samples each pass over it drew."""

    def __init__(self) -> None:
        self.passes: list[int] = []

    def __iter__(self) -> Iterator[tuple[torch.Tensor, int]]:
        self.passes.append(0)
        gen = torch.Generator().manual_seed(0)
        i = 0
        while True:
            y, i = i % 2, i + 1
            x = _brighten_class_one(torch.randn(1, 12, 12, generator=gen), torch.tensor(y))
            self.passes[-1] += 1
            yield x, y
