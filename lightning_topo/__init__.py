"""lightning-topo: watch and use the topology of your data as a network transforms it.

The public names below are imported on first use (PEP 562), so ``import lightning_topo.topology`` stays
a pure numpy/torch import that loads no Lightning.

Example:
    >>> from lightning_topo import BettiMonitor, MLPClassifier, betti_numbers
    >>> betti_numbers([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], k=2)
    (1, 0)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name -> the module that defines it
_EXPORTS = {
    "PROPOSED_ACTIVATION": "lightning_topo.activations",
    "get_activation": "lightning_topo.activations",
    "list_activations": "lightning_topo.activations",
    "register_activation": "lightning_topo.activations",
    "BettiMonitor": "lightning_topo.callbacks",
    "BettiPruning": "lightning_topo.callbacks",
    "EpochProgress": "lightning_topo.callbacks",
    "ContinueAtLearningRates": "lightning_topo.callbacks",
    "SyntheticDataModule": "lightning_topo.data",
    "CNNClassifier": "lightning_topo.models",
    "MLPClassifier": "lightning_topo.models",
    "load_pruned": "lightning_topo.pruning",
    "save_pruned": "lightning_topo.pruning",
    "betti_numbers": "lightning_topo.topology",
    "betti_numbers_per_class": "lightning_topo.topology",
    "calibrate_k": "lightning_topo.topology",
    "intrinsic_dimension": "lightning_topo.topology",
}

__all__ = sorted([*_EXPORTS, "__version__"])

if TYPE_CHECKING:  # static analysers and IDEs see the real imports
    from lightning_topo.activations import PROPOSED_ACTIVATION, get_activation, list_activations, register_activation
    from lightning_topo.callbacks import BettiMonitor, BettiPruning, ContinueAtLearningRates, EpochProgress
    from lightning_topo.data import SyntheticDataModule
    from lightning_topo.models import CNNClassifier, MLPClassifier
    from lightning_topo.pruning import load_pruned, save_pruned
    from lightning_topo.topology import betti_numbers, betti_numbers_per_class, calibrate_k, intrinsic_dimension


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'lightning_topo' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
