"""The two datasets behind the image data modules: images held in memory as one uint8 tensor, and images read
from their files on every access, where a file that fails to decode is replaced by the next sample and reported.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch.utils.data import Dataset, get_worker_info

from lightning_topo.data.image_files import BadImageFileWarning, describe_bad_files

__all__ = ["FileImages", "TensorImages"]


class TensorImages(Dataset):
    """Images held in memory as a uint8 ``(N, C, H, W)`` tensor; ``transform`` maps one uint8 image to float."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: Callable[[torch.Tensor], torch.Tensor]):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transform(self.images[index]), self.labels[index]


class FileImages(Dataset):
    """Images read from files on every access (for sets too large to hold decoded in memory).

    A file that fails to decode is replaced by the next decodable sample, warned about once (naming it) and
    recorded in :attr:`failed`; files failing in DataLoader worker processes are sent back through
    :attr:`reports` (set by the data module) and gathered by :meth:`collect_failed`.
    """

    def __init__(self, paths: Sequence[Path], labels: torch.Tensor, transform: Callable[[Any], torch.Tensor]):
        self.paths, self.labels, self.transform = list(paths), labels, transform
        self.failed: dict[Path, str] = {}
        self.reports: Any = None  # a multiprocessing.Queue when loaded by worker processes

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        for step in range(len(self)):
            at = (index + step) % len(self)
            path = self.paths[at]
            if path in self.failed:
                continue
            try:
                with Image.open(path) as image:
                    rgb = image.convert("RGB")
            except Exception as error:  # PIL raises OSError, SyntaxError, ValueError... for broken files
                self._fail(path, f"{type(error).__name__}: {error}")
                continue
            return self.transform(rgb), self.labels[at]
        raise RuntimeError(f"none of the {len(self)} image files could be decoded: {describe_bad_files(self.failed)}")

    def _fail(self, path: Path, reason: str) -> None:
        self.failed[path] = reason
        if self.reports is not None and get_worker_info() is not None:
            self.reports.cancel_join_thread()  # a worker must be able to exit before the main process reads
            self.reports.put((str(path), reason))
        warnings.warn(
            f"skipped image file {path}: it passed the set-up check but failed to decode ({reason}); the next "
            "sample was used instead. Delete or replace the file; datamodule.bad_files lists every skipped file.",
            BadImageFileWarning,
            stacklevel=2,
        )

    def collect_failed(self) -> dict[Path, str]:
        """Every file that failed to decode so far, in this process or in DataLoader workers."""
        while self.reports is not None and not self.reports.empty():
            path, reason = self.reports.get()
            self.failed.setdefault(Path(path), reason)
        return self.failed
