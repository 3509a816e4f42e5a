"""Data: synthetic sets of known topology and Lightning data modules."""

from lightning_topo.data.datamodules import SyntheticDataModule
from lightning_topo.data.synthetic import DATASETS, known_betti, make_d1, make_d2, make_d3, make_dataset

__all__ = ["DATASETS", "SyntheticDataModule", "known_betti", "make_d1", "make_d2", "make_d3", "make_dataset"]
