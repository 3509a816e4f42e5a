"""Betti numbers of point clouds under the Naitzat-Zhitnikov-Lim protocol.

The default protocol (``metric="knn"``): drop duplicate points, build the unweighted symmetrised
k-nearest-neighbour graph (``k`` counts the point itself), take the graph-geodesic (hop) distance
and compute the homology of the Vietoris-Rips complex at ``scale`` hops, i.e. the flag complex of
"at most ``floor(scale)`` hops apart".  Hop counts are scale-free, so one ``k`` serves every layer
of a network.  ``metric="euclidean"`` gives the Vietoris-Rips complex at Euclidean radius ``scale``
(an edge joins points at distance ``<= scale``).

Example:
    >>> import numpy as np
    >>> t = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    >>> circle = np.stack([np.cos(t), np.sin(t)], axis=1)
    >>> betti_numbers(circle, k=5)
    (1, 1)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from lightning_topo.topology.checks import (
    METRICS,
    check_jobs,
    check_k,
    check_knn_indices,
    check_options,
    check_workers,
    dtype_error,
    no_features_error,
    nonfinite_error,
    rank_error,
    too_few_error,
)
from lightning_topo.topology.flag import flag_complex_betti, simple_flag_betti
from lightning_topo.topology.graph import (
    DIRECT_MAX_DIM,
    distinct_knn_indices,
    first_occurrences,
    hop_edges,
    knn_from_indices,
    knn_indices,
    radius_edges,
    shifted_to_first,
)
from lightning_topo.topology.lists import NeighbourLists
from lightning_topo.topology.reduction import reduced_hop_graph

__all__ = [
    "METRICS",
    "as_point_cloud",
    "betti_from_neighbours",
    "betti_numbers",
    "betti_numbers_per_class",
    "calibrate_k",
    "numpy_neighbour_lists",
    "subsample_per_class",
]


def _to_numpy(array: Any) -> np.ndarray:
    """``array`` as a numpy array; a tensor of a dtype numpy lacks (bfloat16, float8) comes as float32, exactly.

    Example:
        >>> import torch
        >>> _to_numpy(torch.tensor([0.5, 3.0], dtype=torch.bfloat16))
        array([0.5, 3. ], dtype=float32)
    """
    if hasattr(array, "detach"):  # torch.Tensor, without importing torch here
        array = array.detach().cpu()
        try:
            array = array.numpy()
        except TypeError:  # "Got unsupported ScalarType": widen to the nearest dtype numpy has (exact for floats)
            array = (array.cfloat() if array.is_complex() else array.float()).numpy()
    return np.asarray(array)


def as_point_cloud(points: Any) -> np.ndarray:
    """Validate and convert ``points`` (numpy array, torch tensor or nested list) to ``float64 (n, d)``.

    Raises:
        ValueError: wrong rank, fewer than 2 points, no coordinates (shape ``(n, 0)``), or NaN/Inf values; the
            message says which.
    """
    array = _to_numpy(points)
    if array.ndim != 2:
        raise rank_error(array.shape)
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise dtype_error(array.dtype)
    if len(array) < 2:
        raise too_few_error(len(array))
    if array.shape[1] == 0:
        raise no_features_error(array.shape)
    array = array.astype(np.float64, copy=False)
    if not np.isfinite(array).all():
        raise nonfinite_error(int((~np.isfinite(array)).any(axis=1).sum()), len(array))
    return array


def numpy_neighbour_lists(
    points: Any, *, metric: str = "knn", k: int = 14, scale: float = 2.5, workers: int = 1
) -> NeighbourLists:
    """The neighbour lists of one point cloud, with numpy/scipy on the host (the torch route's twin).

    Exact duplicate rows are dropped first (the first occurrence kept, in original order); the lists
    index the remaining rows.  Above 16 dimensions the cloud is moved so that its first point is the origin
    (:func:`~lightning_topo.topology.graph.shifted_to_first`).  See :mod:`lightning_topo.topology.graph` for the arithmetic.
    ``workers``: threads the k-d tree query of a narrow cloud (``d <= 16``, ``metric="knn"``) may use, from
    :data:`~lightning_topo.topology.graph.PARALLEL_QUERY_MIN_POINTS` points on; the lists do not depend on it.

    Raises:
        ValueError: bad array (see :func:`as_point_cloud`), bad options, or ``k >= n_points``.

    Example:
        >>> lists = numpy_neighbour_lists([[0.0], [1.0], [0.0], [3.0]], k=2)
        >>> lists.n_unique, lists.indices.tolist()
        (3, [[0, 1], [1, 0], [2, 1]])
    """
    check_options(metric, k, scale)
    check_workers(workers)
    cloud = as_point_cloud(points)
    if metric == "knn":
        check_k(k, len(cloud))
        # a narrow cloud without duplicates: one k-d tree query does both
        indices = distinct_knn_indices(cloud, k, workers=workers)
        if indices is not None:
            return NeighbourLists(len(cloud), len(cloud), metric, indices, None, _two_nearest(cloud, indices))
    keep = first_occurrences(cloud)
    high = cloud.shape[1] > DIRECT_MAX_DIM
    unique = shifted_to_first(cloud) if high else cloud  # the first point, always kept, at the origin
    unique = unique[keep] if len(keep) < len(cloud) else unique
    if metric == "knn":
        indices = knn_indices(unique, k, centre=False, workers=workers)
        return NeighbourLists(len(cloud), len(unique), metric, indices, None, _two_nearest(unique, indices))
    edges = radius_edges(unique, float(scale), centre=False)
    return NeighbourLists(len(cloud), len(unique), metric, None, edges, _two_nearest(unique, None))


def _two_nearest(unique: np.ndarray, indices: np.ndarray | None) -> np.ndarray | None:
    """Each distinct point's first and second neighbour distances (``None`` below 3 points): the lengths to the
    second and third entries of its k-NN list (itself first, then by distance), or a k-d tree / block search."""
    if len(unique) < 3:
        return None
    if indices is not None and indices.shape[1] >= 3:
        return np.linalg.norm(unique[indices[:, 1:3]] - unique[:, None, :], axis=2)
    from lightning_topo.topology.intrinsic import two_nearest_distances

    return np.stack(two_nearest_distances(unique), axis=1)


def betti_from_neighbours(
    lists: NeighbourLists,
    *,
    max_dim: int = 1,
    scale: float = 2.5,
    collapse: bool = True,
    n_jobs: int | None = None,
) -> tuple[int, ...]:
    """Betti numbers ``(beta_0, ..., beta_max_dim)`` of a cloud from its neighbour lists.

    Args:
        lists: from :func:`numpy_neighbour_lists` or :func:`lightning_topo.topology.neighbour_lists`.
        max_dim: highest homology dimension.
        scale: the complex's scale in hops for ``metric="knn"`` (2.5: "at most 2 hops apart"); ignored for
            ``"euclidean"``, whose edges were cut at their scale when the lists were made.
        collapse: the fast route (same result, much faster): for ``"knn"``, the vertices whose k-NN neighbourhood
            lies inside a neighbour's are dropped first (:mod:`lightning_topo.topology.reduction`), then Ripser or
            edge collapses (:func:`flag_complex_betti`); ``False``: the whole complex, expanded and reduced.
        n_jobs: threads for the connected components (``None``/``1``: serial; ``-1``: every core).

    Example:
        >>> betti_from_neighbours(numpy_neighbour_lists([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], k=2))
        (1, 0)
    """
    if not isinstance(lists, NeighbourLists):
        raise ValueError(
            f"lists must be a NeighbourLists, got {type(lists).__name__}; make one with neighbour_lists(cloud) "
            f"or numpy_neighbour_lists(points)"
        )
    check_options(lists.metric, 2, scale, max_dim)
    check_jobs(n_jobs)
    if lists.n_unique == 1:
        return (1,) + (0,) * max_dim
    if lists.metric == "knn":
        indices = check_knn_indices(lists.indices, lists.n_unique)
        hops = int(math.floor(scale))
        if collapse:  # dominated vertices dropped first: the same homotopy type, a smaller complex
            n_vertices, edges = reduced_hop_graph(indices, hops)
        else:  # the straightforward route: the whole hop graph
            n_vertices, edges = lists.n_unique, hop_edges(knn_from_indices(indices), hops)
    else:
        if lists.edges is None or lists.edges.ndim != 2 or lists.edges.shape[0] != 2:
            raise ValueError(f"euclidean lists need edges of shape (2, m), got {lists.edges!r}")
        # lists a caller may have made: flag_complex_betti checks the edges' range and drops repeats
        return flag_complex_betti(lists.n_unique, lists.edges, max_dim, collapse=collapse, n_jobs=n_jobs)
    # edges this module built, pairs i < j without repeats: no need to check or sort them again
    return simple_flag_betti(n_vertices, edges, max_dim, collapse=collapse, n_jobs=n_jobs)


def betti_numbers(
    points: Any,
    *,
    max_dim: int = 1,
    metric: str = "knn",
    k: int = 14,
    scale: float = 2.5,
    collapse: bool = True,
    n_jobs: int | None = -1,
) -> tuple[int, ...]:
    """Betti numbers ``(beta_0, ..., beta_max_dim)`` of one point cloud.

    One pipeline: :func:`numpy_neighbour_lists` then :func:`betti_from_neighbours`.

    Args:
        points: ``(n, d)`` array or tensor; duplicates are dropped before the graph is built.
        max_dim: highest homology dimension (``2`` for holes enclosed in 3-D data).
        metric: ``"knn"`` (hop distance in the k-NN graph, the default protocol) or ``"euclidean"``.
        k: neighbours per point in the k-NN graph, the point itself included (``metric="knn"``).
        scale: complex scale, in hops for ``"knn"`` (2.5: "at most 2 hops apart") or in the data's
            units for ``"euclidean"``.
        collapse: collapse edges before building higher simplices (same result, much faster).
        n_jobs: threads for the connected components (``-1``, the default: every core; ``None``/``1``:
            serial, e.g. when the caller already runs several clouds in parallel).

    Raises:
        ValueError: bad array (see :func:`as_point_cloud`), bad options, or ``k >= n_points``.

    Example:
        >>> betti_numbers([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]], k=2)
        (1, 0)
    """
    check_options(metric, k, scale, max_dim)
    lists = numpy_neighbour_lists(points, metric=metric, k=k, scale=scale)
    return betti_from_neighbours(lists, max_dim=max_dim, scale=scale, collapse=collapse, n_jobs=n_jobs)


def class_labels(labels: Any) -> np.ndarray:
    """``labels`` (array, tensor or list; one per point, any shape, read flat) as a 1-D integer array.

    Whole-number floats (``1.0``) are accepted; other floats raise a ``ValueError``, since ``int()`` would put
    two of them (``0.2``, ``0.7``) into one class.

    Example:
        >>> class_labels([[1.0], [0.0]]).tolist()
        [1, 0]
    """
    array = _to_numpy(labels).reshape(-1)
    if array.dtype.kind in "iub":
        return array.astype(np.int64, copy=False)
    whole = array.dtype.kind == "f" and bool(np.all(np.isfinite(array) & (array == np.round(array))))
    if not whole:
        raise ValueError(f"labels must be whole class numbers, got dtype {array.dtype} with values like {array[:3]}")
    return array.astype(np.int64)


def subsample_per_class(labels: Any, max_points: int | None, seed: int = 0) -> dict[int, np.ndarray]:
    """Indices of each class, a seeded random subset of at most ``max_points`` per class (sorted).

    Example:
        >>> subsample_per_class([0, 1, 1, 0, 1], max_points=2)
        {0: array([0, 3]), 1: array([2, 4])}
    """
    labels_arr = class_labels(labels)
    if max_points is not None and (
        isinstance(max_points, bool) or not isinstance(max_points, (int, np.integer)) or max_points < 1
    ):
        raise ValueError(f"max_points must be a positive integer or None (every point), got {max_points!r}")
    rng = np.random.default_rng(seed)
    out: dict[int, np.ndarray] = {}
    for cls in np.unique(labels_arr):
        idx = np.flatnonzero(labels_arr == cls)
        if max_points is not None and len(idx) > max_points:
            idx = np.sort(rng.choice(idx, size=max_points, replace=False))
        out[int(cls)] = idx
    return out


def betti_numbers_per_class(
    points: Any,
    labels: Any,
    *,
    max_points: int | None = None,
    seed: int = 0,
    classes: Iterable[int] | None = None,
    **options: Any,
) -> dict[int, tuple[int, ...]]:
    """Betti numbers of each class's point cloud: ``{class: (beta_0, ...)}``.

    Args:
        points: ``(n, d)`` array or tensor.
        labels: ``(n,)`` integer class labels.
        max_points: keep at most this many points per class (a seeded random subset).
        seed: seed of the subsampling.
        classes: only these classes (default: every class present).
        **options: passed to :func:`betti_numbers` (``k``, ``scale``, ``metric``, ``max_dim``...).

    Example:
        >>> from lightning_topo.data.synthetic import make_d1
        >>> x, y = make_d1(n_points=7800, seed=0)
        >>> betti_numbers_per_class(x, y, k=14)
        {0: (9, 0), 1: (1, 9)}
    """
    cloud = as_point_cloud(points)
    labels_arr = class_labels(labels)
    if len(labels_arr) != len(cloud):
        raise ValueError(f"got {len(cloud)} points but {len(labels_arr)} labels; they must match one to one")
    groups = subsample_per_class(labels_arr, max_points, seed)
    wanted = groups.keys() if classes is None else [int(c) for c in classes]
    missing = [c for c in wanted if c not in groups]
    if missing:
        raise ValueError(f"classes {missing} have no points; present classes are {sorted(groups)}")
    return {c: betti_numbers(cloud[groups[c]], **options) for c in wanted}


def calibrate_k(
    points: Any,
    expected: Sequence[int],
    *,
    k_range: Iterable[int] = range(5, 46),
    **options: Any,
) -> int:
    """The smallest ``k`` in ``k_range`` whose Betti numbers on ``points`` equal ``expected``.

    This is how the protocol's ``k`` is chosen: once, on input data of known topology, then kept for
    every layer.  ``max_dim`` defaults to ``len(expected) - 1``.  ``k_range`` is tried in increasing order,
    whatever its own order; a ``k`` too large for the cloud (``k >= n_points``) is skipped.

    Raises:
        ValueError: no ``k`` in the range reproduces ``expected``; the message lists what each gave.

    Example:
        >>> from lightning_topo.data.synthetic import make_d1
        >>> x, y = make_d1(seed=0)
        >>> calibrate_k(x[y == 0], (9, 0), k_range=range(10, 20))
        10
    """
    expected_t = tuple(int(b) for b in expected)
    options.setdefault("max_dim", len(expected_t) - 1)
    cloud = as_point_cloud(points)
    seen: list[str] = []
    tried = sorted(k_range)  # the smallest match, whatever order k_range comes in
    usable = [k for k in tried if k < len(cloud)]  # a larger k is check_k's error: skipped, not the end of the search
    for k in usable:
        got = betti_numbers(cloud, k=k, **options)
        if got == expected_t:
            return int(k)
        seen.append(f"k={k}: {got}")
    skipped = len(tried) - len(usable)
    too_large = (
        f"; k_range's {skipped} values from k={tried[len(usable)]} on were skipped: k must stay below the "
        f"{len(cloud)} points"
        if skipped
        else ""
    )
    raise ValueError(
        f"no k in the range reproduces the expected Betti numbers {expected_t} ({'; '.join(seen) or 'no k tried'}); "
        f"widen k_range, sample the data more densely or check the expected values{too_large}"
    )
