"""CNNClassifier: conv + BatchNorm + activation blocks with pooling, a global pool and a linear head."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from lightning_topo.activations import get_activation
from lightning_topo.arguments import check_positive
from lightning_topo.models.base import ClassifierModule

__all__ = ["CNNClassifier"]


class CNNClassifier(ClassifierModule):
    """A plain CNN for image classification, rebuildable from its hyper-parameters with any channel widths.

    Each block is ``conv -> bn -> act -> pool`` (named ``features.block{i}.conv`` / ``.bn`` / ``.act`` /
    ``.pool``); an adaptive average pool to ``pool_output x pool_output``, dropout and the linear ``head``
    follow, so any input size works. ``BettiPruning`` shrinks the convolutions and updates
    ``hparams["channels"]``, so ``load_from_checkpoint`` rebuilds the smaller network.

    Args:
        in_channels: image channels (1 for Fashion-MNIST, 3 for colour images).
        num_classes: number of classes.
        channels: output channels of each block.
        activation: a name from :func:`lightning_topo.activations.list_activations`.
        kernel_size: convolution kernel size (odd; padding keeps the spatial size).
        pool_every: max-pool (2x2) after every block whose 1-based index is a multiple of this.
        pool_output: side of the final adaptive average pool (1: global average pooling).
        dropout: dropout probability before the head.
        **optim: ``optimizer``, ``lr``, ``weight_decay``, ``lr_halve_every`` (see :class:`ClassifierModule`).

    Example:
        >>> model = CNNClassifier(in_channels=1, num_classes=10, channels=(8, 16))
        >>> model(torch.zeros(4, 1, 28, 28)).shape
        torch.Size([4, 10])
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        channels: Sequence[int] = (32, 64, 128),
        activation: str = "relu",
        activation_kwargs: dict[str, Any] | None = None,
        kernel_size: int = 3,
        pool_every: int = 1,
        pool_output: int = 1,
        dropout: float = 0.0,
        optimizer: str = "adam",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        lr_halve_every: int | None = None,
    ) -> None:
        super().__init__(num_classes, optimizer, lr, weight_decay, lr_halve_every)
        if not isinstance(in_channels, int) or in_channels < 1:
            raise ValueError(f"in_channels must be a positive integer, got {in_channels!r}")
        widths = list(channels)
        bad = [c for c in widths if not isinstance(c, int) or c < 1]
        if not widths or bad:
            raise ValueError(f"channels must be a non-empty list of positive integers, got {widths}")
        if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd integer, got {kernel_size!r}")
        for name, value in (("pool_every", pool_every), ("pool_output", pool_output)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        check_positive("dropout", dropout, allow_zero=True)
        if dropout >= 1:
            raise ValueError(f"dropout must be below 1, got {dropout}")
        get_activation(activation, **(activation_kwargs or {}))
        self.save_hyperparameters()
        blocks: OrderedDict[str, nn.Module] = OrderedDict()
        previous = in_channels
        for i, width in enumerate(widths, start=1):
            parts: OrderedDict[str, nn.Module] = OrderedDict(
                conv=nn.Conv2d(previous, width, kernel_size, padding=kernel_size // 2, bias=False),
                bn=nn.BatchNorm2d(width),
                act=get_activation(activation, **(activation_kwargs or {})),
            )
            if i % pool_every == 0:
                parts["pool"] = nn.MaxPool2d(2)
            blocks[f"block{i}"] = nn.Sequential(parts)
            previous = width
        self.features = nn.Sequential(blocks)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(pool_output), nn.Flatten(), nn.Dropout(dropout))
        self.head = nn.Linear(previous * pool_output * pool_output, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.features(x)))
