"""Intrinsic dimension of point clouds: the TwoNN estimator of Facco et al. (2017), as Ansuini et al. (2019) use it.

Owns the estimator on first and second neighbour distances (numpy or torch, any device), those distances for a
cloud's distinct points, and both together; torch is imported only when a tensor is given.

References:
    E. Facco, M. d'Errico, A. Rodriguez, A. Laio, "Estimating the intrinsic dimension of datasets by a minimal
    neighborhood information", Scientific Reports 7, 12140 (2017).
    A. Ansuini, A. Laio, J. H. Macke, D. Zoccolan, "Intrinsic dimension of data representations in deep neural
    networks", NeurIPS 2019.

Example:
    >>> import numpy as np
    >>> square = np.random.default_rng(0).random((2000, 2))
    >>> round(intrinsic_dimension(square @ np.random.default_rng(1).normal(size=(2, 30))))
    2
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lightning_topo.topology.checks import dtype_error, no_features_error, nonfinite_error, rank_error
from lightning_topo.topology.graph import DIRECT_MAX_DIM, first_occurrences, shifted_to_first

__all__ = [
    "METHODS",
    "intrinsic_dimension",
    "lists_intrinsic_dimension",
    "two_nearest_distances",
    "twonn_from_distances",
]

METHODS = ("linear", "mle")
_BLOCK_BYTES = 2**28  # largest block of squared distances held at once (the Gram routes)


def _is_tensor(x: Any) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")  # no torch import for numpy input


def _check_method(discard_fraction: float, method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    number = isinstance(discard_fraction, (int, float, np.integer, np.floating)) and not isinstance(
        discard_fraction, bool
    )
    if not (number and 0 <= discard_fraction < 1):
        raise ValueError(f"discard_fraction must be a number in [0, 1), got {discard_fraction!r}; the default is 0.1")


def _kept(n: int, discard_fraction: float, method: str) -> int:
    """How many of the ``n`` sorted ratios the fit uses: ``int(n * (1 - discard_fraction))``, as DADApy and skdim."""
    n_keep = int(n * (1 - discard_fraction))
    if n_keep < 2:
        raise ValueError(
            f"discard_fraction={discard_fraction} leaves {n_keep} of {n} neighbour ratios, fewer than 2; "
            f"lower discard_fraction or pass more points"
        )
    if method == "linear" and n_keep == n:
        raise ValueError(
            f"discard_fraction={discard_fraction} discards no ratio, so the largest has F = 1 and -log(1 - F) is "
            f"infinite; use discard_fraction > 0 (default 0.1) or method='mle'"
        )
    return n_keep


def _distance_problems(n_nonfinite: int, n_negative: int, n_zero: int, n_swapped: int, n: int) -> None:
    """Raise for distances TwoNN cannot use; the counts come from one pass (one device sync for tensors)."""
    if n_nonfinite:
        raise ValueError(f"r1/r2 contain NaN or Inf ({n_nonfinite} of {n} points); check the distances or the cloud")
    if n_negative:
        raise ValueError(f"r1/r2 contain negative distances ({n_negative} of {n} points); pass Euclidean distances")
    if n_zero:
        raise ValueError(
            f"r1 = 0 for {n_zero} of {n} points: they have an exact duplicate, and mu = r2 / r1 is undefined; "
            f"drop duplicate rows first (intrinsic_dimension and two_nearest_distances do)"
        )
    if n_swapped:
        raise ValueError(
            f"r2 < r1 for {n_swapped} of {n} points; r1 must be the first and r2 the second neighbour distance"
        )


# ratios within this of 1 (|log mu|) are ties that rounding split: equal distances computed along different sums,
# also float32 Gram distances (a 0.1-spaced grid 3 wide: 5e-5); all ratios that close would mean a dimension of ten
# thousand or more, beyond what any probe could show
_RATIO_TIE = 1e-4


def _degenerate(method: str) -> ValueError:
    return ValueError(
        f"every ratio mu = r2 / r1 the {method} estimate uses is 1 (first and second neighbours equally far, e.g. "
        f"a regular grid), so TwoNN's dimension is infinite; add more points or raise discard_fraction"
    )


def twonn_from_distances(r1: Any, r2: Any, discard_fraction: float = 0.1, method: str = "linear") -> float:
    """The TwoNN intrinsic dimension from each point's first and second neighbour distances ``r1``, ``r2``.

    With ``mu = r2 / r1`` sorted and ``F_i = i / N`` (``i = 1..N``), ``method="linear"`` fits a line through the
    origin of ``-log(1 - F_i)`` against ``log(mu_i)`` over the smallest ``int(N (1 - discard_fraction))`` ratios
    (Facco et al. 2017, as DADApy's ``compute_id_2NN(mu_fraction=1 - discard_fraction)`` and scikit-dimension's
    ``TwoNN``).  ``method="mle"`` is the unbiased maximum-likelihood estimate of the Pareto law of ``mu`` with the
    discarded largest ratios censored, ``(n - 1) / (sum_kept log mu + (N - n) log mu_n)``; with
    ``discard_fraction=0`` that is DADApy's ``(N - 1) / sum log mu`` (``algorithm="ml"``, which uses every ratio).

    Args:
        r1, r2: 1-D numpy arrays or torch tensors (any device; tensors stay there, in float64, until the result).
        discard_fraction: the fraction of largest ratios left out of the fit, in ``[0, 1)``; ``0`` only for ``"mle"``.
        method: ``"linear"`` (Facco et al.'s fit, the default) or ``"mle"``.

    Raises:
        ValueError: fewer than 3 points, mismatched shapes, NaN/Inf, negative or zero ``r1`` (duplicates),
            ``r2 < r1`` (beyond a relative 1e-4: closer is a tie rounding split), all ratios 1 (within 1e-4), or a bad
            option; the message names the problem and the fix.

    Example:
        >>> twonn_from_distances([1.0, 1.0, 1.0, 1.0], [2.0, 4.0, 1.0, 8.0], discard_fraction=0.25)
        1.0
    """
    _check_method(discard_fraction, method)
    if _is_tensor(r1) or _is_tensor(r2):
        return _twonn_torch(r1, r2, discard_fraction, method)
    a, b = np.asarray(r1), np.asarray(r2)
    for x in (a, b):
        if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
            raise ValueError(f"r1 and r2 must be real numbers, got dtype {x.dtype}")
    a, b = _same_shape(a.astype(np.float64, copy=False), b.astype(np.float64, copy=False))
    n = len(a)
    finite = np.isfinite(a) & np.isfinite(b)
    swapped = int((b < a * (1 - _RATIO_TIE)).sum())  # r2 a hair below r1: a tie that rounding split, not a swap
    _distance_problems(int((~finite).sum()), int(((a < 0) | (b < 0)).sum()), int((a == 0).sum()), swapped, n)
    b = np.maximum(a, b)
    n_keep = _kept(n, discard_fraction, method)
    log_mu = np.sort(np.log(b / a))[:n_keep]
    if log_mu[-1] <= _RATIO_TIE:  # every kept ratio 1, up to rounding: the estimate would be 1/0 or 1/eps
        raise _degenerate(method)
    if method == "mle":
        return float((n_keep - 1) / (log_mu.sum() + (n - n_keep) * log_mu[-1]))
    y = -np.log(1 - np.arange(1, n_keep + 1) / n)
    return float((log_mu @ y) / (log_mu @ log_mu))


def _same_shape(a: Any, b: Any) -> tuple[Any, Any]:
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(
            f"r1 and r2 must be 1-D with one entry per point, got shapes {tuple(a.shape)} and {tuple(b.shape)}"
        )
    if len(a) < 3:
        raise ValueError(f"TwoNN needs at least 3 points, got {len(a)}; pass more points")
    return a, b


def _twonn_torch(r1: Any, r2: Any, discard_fraction: float, method: str) -> float:
    """:func:`twonn_from_distances` on tensors: float64 on their device (the CPU for MPS, which has no float64)."""
    import torch

    on = r1.device if isinstance(r1, torch.Tensor) else r2.device  # one of them is a tensor
    a, b = (r.detach() if isinstance(r, torch.Tensor) else torch.as_tensor(np.asarray(r), device=on) for r in (r1, r2))
    for x in (a, b):
        if x.dtype == torch.bool or x.is_complex():
            raise ValueError(f"r1 and r2 must be real numbers, got dtype {x.dtype}")
    device = on if on.type != "mps" else torch.device("cpu")
    a, b = _same_shape(a.to(device, torch.float64), b.to(device, torch.float64))
    n = len(a)
    finite = torch.isfinite(a) & torch.isfinite(b)
    swapped = (b < a * (1 - _RATIO_TIE)).sum()  # as the numpy route
    counts = torch.stack([(~finite).sum(), ((a < 0) | (b < 0)).sum(), (a == 0).sum(), swapped])
    _distance_problems(*counts.tolist(), n)  # the one sync before the result
    n_keep = _kept(n, discard_fraction, method)
    log_mu = torch.log(torch.maximum(a, b) / a).sort().values[:n_keep]
    if float(log_mu[-1]) <= _RATIO_TIE:  # as the numpy route
        raise _degenerate(method)
    if method == "mle":
        total = log_mu.sum() + (n - n_keep) * log_mu[-1]
        estimate = (n_keep - 1) / total
    else:
        y = -torch.log(1 - torch.arange(1, n_keep + 1, device=device, dtype=torch.float64) / n)
        estimate = (log_mu @ y) / (log_mu @ log_mu)
    return float(estimate)


def two_nearest_distances(points: Any, *, block_bytes: int = _BLOCK_BYTES) -> tuple[Any, Any]:
    """First and second neighbour distances ``(r1, r2)`` of each distinct row of a ``(n, d)`` cloud.

    Exact duplicate rows are dropped first (the first occurrence kept), so ``r1 > 0`` and there is one entry per
    distinct point.  A numpy array (or nested list) gives float64 numpy arrays, from scipy's ``cKDTree`` up to 16
    dimensions; above, and for a torch tensor (which stays on its device), the rows are moved so that the first is the
    origin and
    the float64 squared distances ``|x|^2 + |y|^2 - 2 x.y`` are computed in row blocks of at most ``block_bytes``
    (the two smallest per row: ``np.partition``, ``torch.topk``).

    Raises:
        ValueError: wrong rank or dtype, NaN/Inf, or fewer than 3 distinct points (a constant cloud).

    Example:
        >>> r1, r2 = two_nearest_distances([[0.0], [1.0], [1.0], [3.0]])
        >>> r1.tolist(), r2.tolist()
        ([1.0, 1.0, 2.0], [3.0, 2.0, 3.0])
    """
    if not isinstance(block_bytes, (int, np.integer)) or block_bytes < 1:
        raise ValueError(f"block_bytes must be a positive integer, got {block_bytes!r}; the default is 2**28")
    if _is_tensor(points):
        return _two_nearest_torch(points, block_bytes)
    from scipy.spatial import cKDTree

    x = np.asarray(points)
    if x.ndim != 2:
        raise rank_error(x.shape)
    if x.shape[1] == 0:
        raise no_features_error(x.shape)
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise dtype_error(x.dtype)
    x = x.astype(np.float64, copy=False)
    bad = int((~np.isfinite(x)).any(axis=1).sum())
    if bad:
        raise nonfinite_error(bad, len(x))
    keep = first_occurrences(x)
    _check_distinct(len(keep), len(x))
    if len(keep) < len(x):
        x = x[keep]
    if x.shape[1] <= DIRECT_MAX_DIM:
        distances, _ = cKDTree(x).query(x, k=3)
        return distances[:, 1].copy(), distances[:, 2].copy()
    u = shifted_to_first(x)  # wide: a k-d tree degenerates (7x slower at 2,000 points in 200-D); Gram blocks
    sq = np.einsum("ij,ij->i", u, u)
    n = len(u)
    step = max(1, block_bytes // (8 * n))
    r1, r2 = np.empty(n), np.empty(n)
    for start in range(0, n, step):
        rows = np.arange(start, min(start + step, n))
        d2 = sq[rows, None] + sq[None, :] - 2.0 * (u[rows] @ u.T)
        d2[np.arange(len(rows)), rows] = np.inf  # not the point itself
        two = np.partition(d2, 1, axis=1)[:, :2]
        r1[rows], r2[rows] = two.min(axis=1), two.max(axis=1)
    np.sqrt(np.maximum(r1, 0, out=r1), out=r1)
    np.sqrt(np.maximum(r2, 0, out=r2), out=r2)
    return r1, r2


def _check_distinct(n_distinct: int, n: int) -> None:
    if n_distinct < 3:
        constant = " (a constant cloud: every point is a copy of one, e.g. a dead layer)" if n_distinct == 1 else ""
        raise ValueError(
            f"intrinsic dimension needs at least 3 distinct points, got {n_distinct} distinct of {n}{constant}; "
            f"pass more (distinct) points, or skip this cloud"
        )


def _two_nearest_torch(points: Any, block_bytes: int) -> tuple[Any, Any]:
    import torch

    from lightning_topo.topology.neighbours import _shifted

    x = points.detach()
    if x.dim() != 2:
        raise rank_error(tuple(x.shape))
    if x.shape[1] == 0:
        raise no_features_error(tuple(x.shape))
    if x.dtype == torch.bool or x.is_complex():
        raise dtype_error(x.dtype)
    if x.is_floating_point() and len(x):
        bad = int((~torch.isfinite(x)).any(dim=1).sum())
        if bad:
            raise nonfinite_error(bad, len(x))
    if len(x) == 0:
        _check_distinct(0, 0)
    with torch.no_grad():
        _, inverse = torch.unique(x + 0 if x.is_floating_point() else x, dim=0, return_inverse=True)  # -0.0 -> 0.0
        first = torch.full((int(inverse.max()) + 1,), len(x), dtype=torch.long, device=x.device)
        first.scatter_reduce_(0, inverse, torch.arange(len(x), device=x.device), reduce="amin")
        _check_distinct(len(first), len(x))
        distinct = x[first.sort().values] if len(first) < len(x) else x  # first occurrences, in order, as numpy's
        u = distinct.to(torch.float64) if distinct.device.type != "mps" else distinct.cpu().to(torch.float64)
        u = _shifted(distinct, u)  # the neighbour routes' working copy, in place where u is a copy
        sq = torch.einsum("ij,ij->i", u, u)
        n = len(u)
        step = max(1, block_bytes // (8 * n))
        parts = []
        for start in range(0, n, step):
            rows = torch.arange(start, min(start + step, n), device=u.device)
            d2 = sq[rows, None] + sq[None, :] - 2.0 * (u[rows] @ u.T)
            d2[torch.arange(len(rows), device=u.device), rows] = torch.inf  # not the point itself
            parts.append(torch.topk(d2, 2, dim=1, largest=False, sorted=True).values)
        r = torch.cat(parts).clamp_min_(0).sqrt_()
    return r[:, 0], r[:, 1]


def intrinsic_dimension(points: Any, discard_fraction: float = 0.1, method: str = "linear") -> float:
    """The TwoNN intrinsic dimension of a ``(n, d)`` cloud (numpy array, nested list, or torch tensor on any device).

    Exact duplicate rows are dropped, then :func:`two_nearest_distances` feeds :func:`twonn_from_distances` (see
    there for ``discard_fraction`` and ``method``).  Bad input raises a ``ValueError``, so a caller that watches
    many clouds can catch it and skip that cloud with a warning.

    Raises:
        ValueError: wrong rank or dtype, NaN/Inf, fewer than 3 distinct points (e.g. a constant cloud), all ratios
            ``r2 / r1`` equal to 1, or a bad option; the message names the problem and the fix.

    Example:
        >>> import numpy as np
        >>> t = np.random.default_rng(0).random(1000) * 2 * np.pi
        >>> round(intrinsic_dimension(np.stack([np.cos(t), np.sin(t), np.cos(2 * t)], axis=1)), 1)
        1.0
    """
    _check_method(discard_fraction, method)
    r1, r2 = two_nearest_distances(points)
    return twonn_from_distances(r1, r2, discard_fraction=discard_fraction, method=method)


def lists_intrinsic_dimension(lists: Any, discard_fraction: float = 0.1, method: str = "linear") -> float:
    """The TwoNN dimension of the cloud behind ``lists``, from the nearest distances its distance step kept.

    :func:`lightning_topo.topology.neighbour_lists` and :func:`~lightning_topo.topology.numpy_neighbour_lists`
    keep each distinct point's first and second neighbour distances (``lists.nearest``), so the monitor gets the
    dimension of every cloud it measures without another distance pass.

    Example:
        >>> import numpy as np
        >>> from lightning_topo.topology import numpy_neighbour_lists
        >>> square = np.random.default_rng(0).random((2000, 2)) @ np.random.default_rng(1).normal(size=(2, 30))
        >>> round(lists_intrinsic_dimension(numpy_neighbour_lists(square, k=5)))
        2
    """
    nearest = getattr(lists, "nearest", None)
    if nearest is None:
        raise ValueError(
            f"these neighbour lists kept no nearest distances (metric={lists.metric!r}, n_unique={lists.n_unique}); "
            "build them with neighbour_lists or numpy_neighbour_lists on 3 or more distinct points"
        )
    if len(nearest) < 3:
        raise ValueError(
            f"TwoNN needs at least 3 distinct points, got {len(nearest)}; measure a larger cloud (a larger probe)"
        )
    return twonn_from_distances(nearest[:, 0], nearest[:, 1], discard_fraction, method)
