"""lightning-topo: watch and use the topology of your data as a network transforms it.

Example:
    >>> from lightning_topo import BettiMonitor, MLPClassifier, betti_numbers
    >>> betti_numbers([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], k=2)
    (1, 0)
"""

__version__ = "0.1.0"

from lightning_topo.activations import PROPOSED_ACTIVATION, get_activation, list_activations, register_activation
from lightning_topo.callbacks import BettiMonitor, BettiPruning, EpochProgress
from lightning_topo.data import SyntheticDataModule
from lightning_topo.models import CNNClassifier, MLPClassifier
from lightning_topo.pruning import load_pruned, save_pruned
from lightning_topo.topology import betti_numbers, betti_numbers_per_class, calibrate_k

__all__ = [
    "PROPOSED_ACTIVATION",
    "BettiMonitor",
    "BettiPruning",
    "CNNClassifier",
    "EpochProgress",
    "MLPClassifier",
    "SyntheticDataModule",
    "__version__",
    "betti_numbers",
    "betti_numbers_per_class",
    "calibrate_k",
    "get_activation",
    "list_activations",
    "load_pruned",
    "register_activation",
    "save_pruned",
]
