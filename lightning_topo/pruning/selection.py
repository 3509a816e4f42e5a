"""Which filters to remove, given their scores: an absolute threshold or a fraction per layer, never all."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["alike_layers", "select_filters"]


def select_filters(
    scores: np.ndarray,
    *,
    threshold: float | None = None,
    amount: float | None = None,
    direction: str = "highest",
    min_keep: int = 1,
    seed: int = 0,
    layer: str = "layer",
) -> np.ndarray:
    """Sorted indices of the filters to remove.

    ``threshold``: remove filters scoring above it (``direction="highest"``) or below it (``"lowest"``).
    ``amount``: remove this fraction of the layer's filters, the highest (or lowest) scores first; ties
    are broken by a seeded random order, never by filter position.  At least ``min_keep`` filters stay:
    a selection that would leave fewer is clamped to the ``min_keep`` best-kept ones, with a warning.

    Example:
        >>> select_filters(np.array([5.0, 400.0, 320.0, 10.0]), threshold=300)
        array([1, 2])
    """
    if (threshold is None) == (amount is None):
        raise ValueError("give exactly one of threshold (an absolute score) or amount (a fraction per layer)")
    if direction not in ("highest", "lowest"):
        raise ValueError(f"direction must be 'highest' or 'lowest', got {direction!r}")
    scores = np.asarray(scores, dtype=np.float64)
    n = len(scores)
    signed = scores if direction == "highest" else -scores
    jitter = np.random.default_rng(seed).permutation(n)
    order = np.lexsort((jitter, -signed))  # most removable first; ties in seeded random order
    if threshold is not None:
        count = int(np.sum(scores > threshold)) if direction == "highest" else int(np.sum(scores < threshold))
    else:
        if not 0.0 <= amount < 1.0:
            raise ValueError(f"amount must be a fraction in [0, 1), got {amount!r}")
        count = int(round(amount * n))
    allowed = max(0, n - max(1, min_keep))
    if count > allowed:
        warnings.warn(
            f"BettiPruning: {layer}: the rule would remove {count} of {n} filters; clamped to {allowed} so that "
            f"{n - allowed} remain (min_filters_per_layer); raise the threshold or lower amount to silence this",
            UserWarning,
            stacklevel=2,
        )
        count = allowed
    return np.sort(order[:count])


def alike_layers(scores: Mapping[str, np.ndarray], plan: Mapping[str, Sequence[int]]) -> dict[str, float]:
    """``{layer: its one score}`` for the layers of ``plan`` that lose filters though every filter scored alike: there
    the seeded random order of :func:`select_filters` chose them, not their scores (a probe too small for the
    topology to tell the filters apart scores them all 0).

    Example:
        >>> alike_layers({"a": np.zeros(4), "b": np.array([0.0, 2.0])}, {"a": [1], "b": [1]})
        {'a': 0.0}
    """
    return {
        name: float(scores[name][0])
        for name, removed in plan.items()
        if len(removed) and len(scores[name]) and float(np.ptp(scores[name])) == 0.0
    }
