"""MLPClassifier: the fully connected networks of the topology experiments (9 hidden layers of width 15)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from torch import nn

from lightning_topo.activations import get_activation
from lightning_topo.arguments import check_count
from lightning_topo.models.base import ClassifierModule

__all__ = ["MLPClassifier"]


class MLPClassifier(ClassifierModule):
    """A multilayer perceptron whose every hidden layer and activation has a readable name.

    Module names: ``features.layer{i}.linear`` and ``features.layer{i}.act`` for ``i = 1..len(hidden)``,
    and ``head`` for the logits.

    Args:
        in_features: input dimension.
        num_classes: number of classes.
        hidden: widths of the hidden layers (default: the paper's 9 layers of width 15).
        activation: a name from :func:`lightning_topo.activations.list_activations`.
        activation_kwargs: keyword arguments for the activation's constructor.
        **optim: ``optimizer``, ``lr``, ``weight_decay``, ``lr_halve_every`` (see :class:`ClassifierModule`).

    Example:
        >>> model = MLPClassifier(in_features=2, num_classes=2, hidden=(15, 15), activation="tanh")
        >>> [name for name, _ in model.named_modules() if name.endswith("act")]
        ['features.layer1.act', 'features.layer2.act']
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int = 2,
        hidden: Sequence[int] = (15,) * 9,
        activation: str = "relu",
        activation_kwargs: dict[str, Any] | None = None,
        optimizer: str = "adam",
        lr: float = 0.01,
        weight_decay: float = 0.0,
        lr_halve_every: int | None = None,
    ) -> None:
        super().__init__(num_classes, optimizer, lr, weight_decay, lr_halve_every)
        check_count("in_features", in_features)
        widths = list(hidden)
        bad = [w for w in widths if not isinstance(w, int) or isinstance(w, bool) or w < 1]
        if bad:
            raise ValueError(f"hidden widths must be positive integers, got {bad} in hidden={widths}")
        get_activation(activation, **(activation_kwargs or {}))  # fail now, naming the activation, not mid-build
        self.save_hyperparameters()
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        previous = in_features
        for i, width in enumerate(widths, start=1):
            block = OrderedDict(
                linear=nn.Linear(previous, width), act=get_activation(activation, **(activation_kwargs or {}))
            )
            layers[f"layer{i}"] = nn.Sequential(block)
            previous = width
        self.features = nn.Sequential(layers)
        self.head = nn.Linear(previous, num_classes)
