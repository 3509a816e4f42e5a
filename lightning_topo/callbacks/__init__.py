"""Lightning callbacks: Betti-number monitoring and pruning, a progress printer for long full-batch runs, and a
checkpoint that saves every few hundred epochs and at the end of the fit.

They subclass both ``lightning.pytorch.Callback`` and ``pytorch_lightning.Callback`` (see ``base.py``), so they run,
and parse in YAML, under either namespace; ``FitEndCheckpoint`` subclasses ``lightning.pytorch``'s ``ModelCheckpoint``.
"""

from lightning_topo.callbacks.betti_monitor import BettiMonitor
from lightning_topo.callbacks.betti_pruning import BettiPruning
from lightning_topo.callbacks.checkpoint import FitEndCheckpoint
from lightning_topo.callbacks.continue_at_learning_rates import ContinueAtLearningRates
from lightning_topo.callbacks.epoch_progress import EpochProgress

__all__ = ["BettiMonitor", "BettiPruning", "ContinueAtLearningRates", "EpochProgress", "FitEndCheckpoint"]
