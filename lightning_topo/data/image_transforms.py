"""The image data modules' transforms: uint8 images to normalised float tensors, with crops and flips when
augmenting, for images in memory (padded random crops) and for files (resized, then cropped).

Example:
    >>> import torch
    >>> to_float = tensor_transform(4, padding=1, augment=False, mean=(0.5,), std=(0.25,))
    >>> out = to_float(torch.tensor([[[0, 255]]], dtype=torch.uint8))  # (x / 255 - 0.5) / 0.25, in float32
    >>> out.dtype, [round(v, 4) for v in out.flatten().tolist()]
    (torch.float32, [-2.0, 2.0])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torchvision.transforms import v2

__all__ = ["ToFloat", "file_transform", "tensor_transform"]


class ToFloat:
    """uint8 image -> float32 ``(x / 255 - mean) / std`` per channel, in one fused multiply-add."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.scale = (1.0 / (255.0 * torch.tensor(std))).view(-1, 1, 1)
        self.shift = (-torch.tensor(mean) / torch.tensor(std)).view(-1, 1, 1)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.shift, image.as_subclass(torch.Tensor).float(), self.scale)


def tensor_transform(
    image_size: int, padding: int, augment: bool, mean: Sequence[float], std: Sequence[float]
) -> Callable:
    """For uint8 images held in memory: padded random crops and flips when ``augment``, then :class:`ToFloat`."""
    steps: list[Callable] = []
    if augment:
        steps += [v2.RandomCrop(image_size, padding=padding), v2.RandomHorizontalFlip()]
    return v2.Compose([*steps, ToFloat(mean, std)])


def file_transform(image_size: int, augment: bool, mean: Sequence[float], std: Sequence[float]) -> Callable:
    """For PIL images read from files: resized a little larger, cropped (randomly, with flips, when ``augment``)."""
    load = round(image_size * 8 / 7)
    steps: list[Callable] = [v2.PILToTensor(), v2.Resize(load, antialias=True)]
    if augment:
        steps += [v2.RandomCrop(image_size), v2.RandomHorizontalFlip()]
    else:
        steps.append(v2.CenterCrop(image_size))
    return v2.Compose([*steps, ToFloat(mean, std)])
