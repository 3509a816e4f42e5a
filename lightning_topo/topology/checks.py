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
    "check_graph",
    "check_jobs",
    "check_k",
    "check_knn_indices",
    "check_max_dim",
    "check_options",
    "check_workers",
    "dtype_error",
    "no_features_error",
    "no_filters_error",
    "nonfinite_error",
    "rank_error",
    "too_few_error",
]

METRICS = ("knn", "euclidean")


def check_options(metric: str, k: int, scale: float, max_dim: int | None = None) -> None:
    """Raise a ``ValueError`` for an unknown metric, a bad ``k`` (knn only), ``scale`` or ``max_dim``."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {METRICS}")
    if max_dim is not None:
        check_max_dim(max_dim)
    number = isinstance(scale, (int, float, np.number)) and not isinstance(scale, bool)
    if not (number and math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive finite number, got {scale!r}")
    if metric == "knn" and (not isinstance(k, (int, np.integer)) or k < 2):
        raise ValueError(f"k must be an integer >= 2 (it counts the point itself), got {k!r}")


def check_max_dim(max_dim: int) -> None:
    """``max_dim`` (the highest homology dimension wanted) must be a non-negative integer."""
    if isinstance(max_dim, bool) or not isinstance(max_dim, (int, np.integer)) or max_dim < 0:
        raise ValueError(f"max_dim must be a non-negative integer, got {max_dim!r}")


def check_jobs(n_jobs: int | None) -> None:
    """``n_jobs`` (threads for a graph's components) must be ``None``, ``-1`` or a positive integer."""
    whole = not isinstance(n_jobs, bool) and isinstance(n_jobs, (int, np.integer))
    if n_jobs is None or (whole and (n_jobs == -1 or n_jobs >= 1)):
        return
    raise ValueError(
        f"n_jobs must be None or 1 (serial), a larger integer (threads) or -1 (one thread per CPU core), got {n_jobs!r}"
    )


def check_graph(n_vertices: int, edges: object) -> np.ndarray:
    """``edges`` as a ``(2, m)`` ``int64`` array of vertex indices in ``0..n_vertices-1``, else a ``ValueError``.

    Example:
        >>> check_graph(3, [[0, 1], [1, 2]]).tolist()
        [[0, 1], [1, 2]]
        >>> check_graph(3, [[0, 1], [1, 3]])
        Traceback (most recent call last):
        ...
        ValueError: edges name vertex 3, but the vertices are 0..2 (n_vertices=3); renumber the edges from 0 or raise n_vertices
    """
    if isinstance(n_vertices, bool) or not isinstance(n_vertices, (int, np.integer)) or n_vertices < 0:
        raise ValueError(f"n_vertices must be a non-negative integer, got {n_vertices!r}")
    array = np.asarray(edges)
    if array.size == 0:
        return np.empty((2, 0), dtype=np.int64)
    if array.ndim != 2 or array.shape[0] != 2:
        transposed = array.ndim == 2 and array.shape[1] == 2
        hint = "; these look like one row per edge: pass edges.T" if transposed else ""
        raise ValueError(f"edges must have shape (2, m), one column per edge, got shape {array.shape}{hint}")
    if array.dtype.kind not in "iu":
        raise ValueError(
            f"edges must hold integer vertex indices, got dtype {array.dtype}; "
            f"if they are whole numbers, pass edges.astype(int)"
        )
    low, high = int(array.min()), int(array.max())
    if low < 0 or high >= n_vertices:
        raise ValueError(
            f"edges name vertex {low if low < 0 else high}, but the vertices are 0..{n_vertices - 1} "
            f"(n_vertices={n_vertices}); renumber the edges from 0 or raise n_vertices"
        )
    return array.astype(np.int64, copy=False)


def check_knn_indices(indices: object, n_unique: int) -> np.ndarray:
    """k-NN lists as made by ``neighbour_lists``: ``(n_unique, k)`` integers in ``0..n_unique-1``, else a ``ValueError``.

    An index out of range would reach scipy's sparse constructors unchecked and corrupt memory.

    Example:
        >>> check_knn_indices([[0, 1], [1, 2]], 2)
        Traceback (most recent call last):
        ...
        ValueError: knn lists name point 2, but they hold n_unique=2 points (0..1); make the lists with neighbour_lists(cloud) or numpy_neighbour_lists(points)
    """
    array = None if indices is None else np.asarray(indices)
    if array is None or array.ndim != 2 or len(array) != n_unique or array.shape[1] < 1:
        raise ValueError(f"knn lists need indices of shape (n_unique={n_unique}, k), got {indices!r}")
    if array.dtype.kind not in "iu":
        raise ValueError(f"knn lists need integer indices, got dtype {array.dtype}")
    low, high = int(array.min()), int(array.max())
    if low < 0 or high >= n_unique:
        raise ValueError(
            f"knn lists name point {low if low < 0 else high}, but they hold n_unique={n_unique} points "
            f"(0..{n_unique - 1}); make the lists with neighbour_lists(cloud) or numpy_neighbour_lists(points)"
        )
    return array


def check_k(k: int, n_points: int) -> None:
    """``k`` neighbours (the point itself included) need more than ``k`` points.

    Example:
        >>> check_k(2, 2)
        Traceback (most recent call last):
        ...
        ValueError: k=2 neighbours needs more points than that, got 2 points; 2 points allow no k (k counts the point itself, so k >= 2, and k must stay below the number of points); pass at least 3 points
    """
    if k < n_points:
        return
    if n_points <= 2:  # k >= 2 and k < n_points: nothing to lower k to
        advice = (
            f"{n_points} points allow no k (k counts the point itself, so k >= 2, and k must stay below the number "
            f"of points); pass at least 3 points"
        )
    else:
        advice = f"lower k below {n_points} or pass more points"
    raise ValueError(f"k={k} neighbours needs more points than that, got {n_points} points; {advice}")


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


def no_features_error(shape: tuple[int, ...]) -> ValueError:
    return ValueError(
        f"points have no coordinates: shape {tuple(shape)} gives each point 0 features; pass a cloud with at "
        f"least one feature per point (check the layer or the slice that produced it)"
    )


def no_filters_error(shape: tuple[int, ...]) -> ValueError:
    """Feature maps of no filter (``(N, 0, H, W)``), on both filter routes."""
    return ValueError(
        f"feature_maps of shape {tuple(shape)} hold no filters; pass the maps of a layer with at least one "
        f"filter (check the slice that produced them)"
    )


def too_few_error(n_points: int) -> ValueError:
    return ValueError(f"need at least 2 points to compute Betti numbers, got {n_points}")


def nonfinite_error(bad_rows: int, n_points: int) -> ValueError:
    return ValueError(
        f"points contain NaN or Inf values ({bad_rows} of {n_points} points); check the layer that produced "
        f"them (exploding activations, a division by zero) or drop those rows before calling"
    )
