"""Lightning callbacks: Betti-number monitoring and pruning, and a progress printer for long full-batch runs."""

from lightning_topo.callbacks.epoch_progress import EpochProgress

__all__ = ["EpochProgress"]
