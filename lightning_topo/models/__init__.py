"""LightningModules: the MLPs of the topology experiments and CNNs for images."""

from lightning_topo.models.base import ClassifierModule
from lightning_topo.models.cnn import CNNClassifier
from lightning_topo.models.mlp import MLPClassifier

__all__ = ["CNNClassifier", "ClassifierModule", "MLPClassifier"]
