"""Validation shared by the numpy and the torch routes, so that both raise the same ``ValueError`` messages.

Example:
    >>> check_options("knn", k=14, scale=2.5, max_dim=1)
    >>> check_k(14, 10)
    Traceback (most recent call last):
    ...
    ValueError: k=14 neighbours needs more points than that, got 10 points; lower k below 10 or pass more points
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "METRICS",
    "check_k",
    "check_options",
    "check_workers",
    "dtype_error",
    "nonfinite_error",
    "rank_error",
    "too_few_error",
]

METRICS = ("knn", "euclidean")


def check_options(metric: str, k: int, scale: float, max_dim: int | None = None) -> None:
    """Raise a ``ValueError`` for an unknown metric, a bad ``k`` (knn only), ``scale`` or ``max_dim``."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {METRICS}")
    if max_dim is not None and (not isinstance(max_dim, (int, np.integer)) or max_dim < 0):
        raise ValueError(f"max_dim must be a non-negative integer, got {max_dim!r}")
    if not (isinstance(scale, (int, float, np.number)) and math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive finite number, got {scale!r}")
    if metric == "knn" and (not isinstance(k, (int, np.integer)) or k < 2):
        raise ValueError(f"k must be an integer >= 2 (it counts the point itself), got {k!r}")


def check_k(k: int, n_points: int) -> None:
    """``k`` neighbours (the point itself included) need more than ``k`` points."""
    if k >= n_points:
        raise ValueError(
            f"k={k} neighbours needs more points than that, got {n_points} points; "
            f"lower k below {n_points} or pass more points"
        )


def check_workers(workers: int) -> None:
    """``workers`` (threads a k-d tree query may use) must be a positive integer."""
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ValueError(
            f"workers must be a positive integer (threads for the k-d tree query), got {workers!r}; "
            "1 keeps the query in the calling thread"
        )


def rank_error(shape: tuple[int, ...]) -> ValueError:
    return ValueError(
        f"points must be a 2-D array of shape (n_points, n_features), got rank {len(shape)} with shape "
        f"{tuple(shape)}; flatten each sample first, e.g. points.reshape(len(points), -1)"
    )


def dtype_error(dtype: object) -> ValueError:
    return ValueError(f"points must be real numbers, got dtype {dtype}")


def too_few_error(n_points: int) -> ValueError:
    return ValueError(f"need at least 2 points to compute Betti numbers, got {n_points}")


def nonfinite_error(bad_rows: int, n_points: int) -> ValueError:
    return ValueError(
        f"points contain NaN or Inf values ({bad_rows} of {n_points} points); check the layer that produced "
        f"them (exploding activations, a division by zero) or drop those rows before calling"
    )
