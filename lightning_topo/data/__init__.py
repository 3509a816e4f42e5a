"""Data: synthetic sets of known topology (pure numpy) and Lightning data modules.

The data modules are imported on first use (PEP 562), so ``from lightning_topo.data import make_d1`` stays
a numpy import and loads no Lightning.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from lightning_topo.data.synthetic import DATASETS, known_betti, make_d1, make_d2, make_d3, make_dataset

_LAZY = {
    "SyntheticDataModule": "lightning_topo.data.datamodules",
    "CIFAR10DataModule": "lightning_topo.data.images",
    "CatsVsDogsDataModule": "lightning_topo.data.images",
    "FashionMNISTDataModule": "lightning_topo.data.images",
}

__all__ = sorted(["DATASETS", "known_betti", "make_d1", "make_d2", "make_d3", "make_dataset", *_LAZY])

if TYPE_CHECKING:
    from lightning_topo.data.datamodules import SyntheticDataModule
    from lightning_topo.data.images import CatsVsDogsDataModule, CIFAR10DataModule, FashionMNISTDataModule


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'lightning_topo.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
