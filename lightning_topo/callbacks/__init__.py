"""Lightning callbacks: Betti-number monitoring and pruning, and a progress printer for long full-batch runs.

They subclass ``lightning.pytorch.Callback`` and also run in standalone ``pytorch_lightning`` Trainers.
"""

from lightning_topo.callbacks.betti_monitor import BettiMonitor
from lightning_topo.callbacks.betti_pruning import BettiPruning
from lightning_topo.callbacks.continue_at_learning_rates import ContinueAtLearningRates
from lightning_topo.callbacks.epoch_progress import EpochProgress

__all__ = ["BettiMonitor", "BettiPruning", "ContinueAtLearningRates", "EpochProgress"]
