"""lightning-topo: watch and use the topology of your data as a network transforms it."""

from lightning_topo.topology import betti_numbers, betti_numbers_per_class, calibrate_k

__version__ = "0.1.0"

__all__ = ["__version__", "betti_numbers", "betti_numbers_per_class", "calibrate_k"]
