"""The probe: a fixed, seeded, class-balanced subsample of the training data."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

__all__ = ["balanced_indices", "group_by_class", "probe_from_batches"]


def balanced_indices(labels: torch.Tensor, size: int, seed: int = 0) -> torch.Tensor:
    """Indices of at most ``size`` samples, as evenly spread over the classes as they allow, seeded and sorted."""
    generator = torch.Generator().manual_seed(seed)
    classes = torch.unique(labels)
    per_class = max(1, size // len(classes))
    chosen = []
    for cls in classes:
        idx = torch.nonzero(labels == cls).flatten()
        chosen.append(idx[torch.randperm(len(idx), generator=generator)[:per_class]])
    return torch.sort(torch.cat(chosen)).values


def group_by_class(inputs: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The probe reordered so that each class is one contiguous run, in label order, each class's own order kept.

    A class's cloud is then a view of the probe rather than a gathered copy (about 60 MB per class of a
    1,000-image probe at 224 px), and since the order within a class is kept, so are its neighbour lists. A probe
    already grouped is returned as it is.

    Example:
        >>> x, y = torch.arange(5.0)[:, None], torch.tensor([1, 0, 1, 0, 2])
        >>> gx, gy = group_by_class(x, y)
        >>> gx.flatten().tolist(), gy.tolist()
        ([1.0, 3.0, 0.0, 2.0, 4.0], [0, 0, 1, 1, 2])
    """
    order = torch.sort(labels, stable=True).indices
    if bool((order == torch.arange(len(order))).all()):
        return inputs, labels
    return inputs[order], labels[order]


def _split(batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(batch, dict):
        return batch.get("x", batch.get("image", batch.get("input"))), batch.get(
            "y", batch.get("label", batch.get("target"))
        )
    if isinstance(batch, (tuple, list)) and len(batch) >= 2:
        return batch[0], batch[1]
    raise ValueError(
        "BettiMonitor cannot find (inputs, labels) in a training batch of type "
        f"{type(batch).__name__}; pass probe=(inputs, labels) to BettiMonitor instead"
    )


def probe_from_batches(
    batches: Iterable[Any], size: int, seed: int = 0, max_batches: int = 200
) -> tuple[torch.Tensor, torch.Tensor]:
    """Collect batches until every class seen has ``size // n_classes`` samples (or the data end), then subsample.

    The global RNG state is saved and restored, so drawing the probe from a shuffling DataLoader does
    not change the training run's randomness.
    """
    xs, ys = [], []
    with torch.random.fork_rng(devices=[]):
        for i, batch in enumerate(batches):
            x, y = _split(batch)
            xs.append(x.detach().cpu())
            ys.append(y.detach().cpu().reshape(-1))
            counts = torch.bincount(torch.cat(ys))
            present = counts[counts > 0]
            if i + 1 >= max_batches or present.min() * len(present) >= 2 * size:
                break
    if not xs:
        raise ValueError("the training data yielded no batch to draw the BettiMonitor probe from")
    x, y = torch.cat(xs), torch.cat(ys)
    idx = balanced_indices(y, size, seed)
    return x[idx], y[idx]
