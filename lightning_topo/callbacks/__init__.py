"""Lightning callbacks: Betti-number monitoring and pruning, and a progress printer for long full-batch runs.

They subclass both ``lightning.pytorch.Callback`` and ``pytorch_lightning.Callback`` (see ``base.py``), so they run,
and parse in YAML, under either namespace.
"""

from lightning_topo.callbacks.betti_monitor import BettiMonitor
from lightning_topo.callbacks.betti_pruning import BettiPruning
from lightning_topo.callbacks.continue_at_learning_rates import ContinueAtLearningRates
from lightning_topo.callbacks.epoch_progress import EpochProgress

__all__ = ["BettiMonitor", "BettiPruning", "ContinueAtLearningRates", "EpochProgress"]
