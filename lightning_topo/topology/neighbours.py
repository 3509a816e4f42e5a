"""The torch route of the topology core: a point cloud on any device in, small numpy neighbour lists out.

A layer's class cloud (say 50 images x 800,000 activations) stays on the device where it was captured;
only the ``n x k`` neighbour lists come back, ready for :func:`lightning_topo.topology.betti_from_neighbours`
in a worker process.  The arithmetic is the numpy route's (:mod:`lightning_topo.topology.graph`), so on
exactly representable data both routes give identical lists:

- duplicates: candidate pairs have (near-)zero squared distance, and are confirmed by exact equality of the
  original rows; each row is compared with its first candidate, so a dead layer (all rows equal) costs
  ``n - 1`` row comparisons.  The first occurrence is kept, in original order;
- squared distances: ``d <= 16``: direct differences, coordinate by coordinate; above, the cloud is moved
  so that one of its points is the origin (:func:`origin_row`: in float64 the first, as
  :func:`lightning_topo.topology.graph.shifted_to_first`) and ``(|x|^2 + |y|^2) - 2 x.y`` is computed in row
  blocks of at most ``block_bytes``;
- k-NN: the point itself first, then by distance, ties broken by the lower index.

Example:
    >>> import torch
    >>> lists = neighbour_lists(torch.tensor([[0.0], [1.0], [0.0], [3.0]]), k=2)
    >>> lists.n_points, lists.n_unique, lists.indices.tolist()
    (4, 3, [[0, 1], [1, 0], [2, 1]])
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from lightning_topo.topology.checks import (
    check_k,
    check_options,
    dtype_error,
    no_features_error,
    nonfinite_error,
    rank_error,
    too_few_error,
)
from lightning_topo.topology.graph import DIRECT_MAX_DIM
from lightning_topo.topology.lists import NeighbourLists

__all__ = ["NeighbourLists", "batched_neighbour_lists", "neighbour_lists"]

_TIE_SLACK = 4  # extra neighbours taken by topk so that ties at the k-th distance are all seen
_DTYPES = (torch.float32, torch.float64)


def _as_cloud(cloud: Any) -> torch.Tensor:
    """Validate the rank, dtype and size like :func:`lightning_topo.topology.as_point_cloud`, on the device."""
    x = cloud.detach() if isinstance(cloud, torch.Tensor) else torch.as_tensor(np.asarray(cloud))
    if x.dim() != 2:
        raise rank_error(tuple(x.shape))
    if x.dtype == torch.bool or x.is_complex():
        raise dtype_error(x.dtype)
    if len(x) < 2:
        raise too_few_error(len(x))
    if x.shape[1] == 0:
        raise no_features_error(tuple(x.shape))
    return x


def _check_finite(x: torch.Tensor, column_sums: torch.Tensor) -> None:
    """NaN/Inf anywhere makes a column sum non-finite; only then are the bad rows counted."""
    if x.is_floating_point() and not bool(torch.isfinite(column_sums).all()):
        bad = int((~torch.isfinite(x)).any(dim=1).sum())
        if bad:  # else a finite sum overflowed: nothing to report
            raise nonfinite_error(bad, len(x))


def _working_copy(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``x`` in ``dtype``, moved to its origin row above 16 dimensions; never ``x`` itself changed in place."""
    u = x.to(dtype)
    _check_finite(x, u.sum(dim=0))
    return u if x.shape[1] <= DIRECT_MAX_DIM else _shifted(x, u)


def _shifted(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """``u`` (``x`` in the working dtype) with one of its rows subtracted from every row (:func:`origin_row`), in
    place where ``u`` is a copy of ``x``."""
    origin = u.index_select(0, origin_row(u))  # (1, d), a copy
    return u - origin if u.data_ptr() == x.data_ptr() else u.sub_(origin)  # u is x where no conversion happened


def origin_row(u: torch.Tensor) -> torch.Tensor:
    """The row a wide cloud is moved to before its Gram product, as a 1-element index tensor (no device sync); of
    a ``(..., n, d)`` stack of clouds (a conv layer's filters), one per cloud, ``(..., 1)``.

    float64: the first row, as the numpy route's :func:`~lightning_topo.topology.graph.shifted_to_first`, so both
    routes do the same arithmetic. float32: the row nearest the mean (two passes), since float32's rounding, relative
    to the norms, would lose the distances of a cloud whose first point lies far from the rest (a 300-point circle
    with its first point 100 away: 292 of 300 lists wrong). Either way a data row: the shift stays exact on integer
    data.

    Example:
        >>> x = torch.tensor([[100.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 0.0]])
        >>> origin_row(x.double()).tolist(), origin_row(x).tolist()
        ([0], [2])
    """
    if u.dtype != torch.float32:
        return torch.zeros((*u.shape[:-2], 1), dtype=torch.long, device=u.device)
    mean = u.mean(dim=-2, keepdim=True)
    score = torch.einsum("...ij,...ij->...i", u, u) - 2.0 * (u @ mean.transpose(-1, -2)).squeeze(-1)  # |u_i - mean|^2
    return score.argmin(dim=-1, keepdim=True)  # less a constant, the smallest


def duplicate_tolerance(sq_sum: torch.Tensor, dim: int) -> torch.Tensor:
    """How far from 0 the Gram route's squared distance of two equal rows may come out: a candidate bound.

    ``sq_sum`` is ``|x|^2 + |y|^2``; rounding in the ``dim``-term products is far below ``64 sqrt(dim) eps``.
    Candidates are confirmed by exact comparison, so the bound only has to be generous.
    """
    return 64.0 * torch.finfo(sq_sum.dtype).eps * dim**0.5 * sq_sum


class _Distances:
    """Squared distances of row subsets of ``u`` to all its rows, the numpy route's way."""

    def __init__(self, u: torch.Tensor, block_bytes: int) -> None:
        self.u = u
        self.n, self.dim, self.dtype, self.device = len(u), u.shape[1], u.dtype, u.device
        self.direct = self.dim <= DIRECT_MAX_DIM
        self.columns = u.T.contiguous() if self.direct else None  # one contiguous row per coordinate
        self.sq = None if self.direct else torch.einsum("ij,ij->i", u, u)
        per_row = u.element_size() * len(u) * (3 if self.direct else 2)  # the block and its temporaries
        self.step = max(1, block_bytes // per_row)
        self._whole: torch.Tensor | None = None  # all distances, kept when they fit in one block
        self.sq_max = None if self.sq is None else self.sq.max()  # the duplicate bound's per-row term

    @classmethod
    def given(cls, whole: torch.Tensor, sq: torch.Tensor | None, dim: int) -> _Distances:
        """Distances computed elsewhere (a batch of clouds): the ``(n, n)`` matrix, the squared norms, ``d``."""
        self = cls.__new__(cls)
        self.u, self.columns, self.sq, self._whole = None, None, sq, whole
        self.n, self.dim, self.dtype, self.device = len(whole), dim, whole.dtype, whole.device
        self.direct, self.step = dim <= DIRECT_MAX_DIM, len(whole)
        self.sq_max = None if sq is None else sq.max()
        return self

    def subset(self, keep: torch.Tensor, block_bytes: int) -> _Distances:
        """The distances among the rows ``keep`` (the distinct points)."""
        if self.u is not None:
            return _Distances(self.u[keep], block_bytes)
        sq = None if self.sq is None else self.sq[keep]
        return _Distances.given(self._whole[keep][:, keep], sq, self.dim)

    def rows(self, rows: torch.Tensor) -> torch.Tensor:
        if self._whole is not None:
            return self._whole[rows]
        if self.direct:
            a = self.columns[:, rows]
            diff = a[0, :, None] - self.columns[0, None, :]
            out = diff * diff
            for c in range(1, len(self.columns)):
                diff = a[c, :, None] - self.columns[c, None, :]
                out = out + diff * diff  # not addcmul: a fused multiply-add would round differently
            return out
        return _expand(self.sq[rows], self.sq, self.u[rows] @ self.u.T)

    def tolerance(self, rows: torch.Tensor) -> torch.Tensor | float:
        """How far from zero an exact duplicate's squared distance can come out (0 for direct differences).

        One bound per row, ``|x_i|^2 + max_j |x_j|^2``, not one per pair: looser, so never too tight, and a
        column instead of an ``n x n`` matrix (that matrix cost as much as the distances on a 2-core CPU).
        """
        if self.direct:
            return 0.0
        return duplicate_tolerance(self.sq[rows, None] + self.sq_max, self.dim)

    def blocks(self, rows: torch.Tensor | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """``(row indices, their squared distances to every row)``, at most ``block_bytes`` at a time."""
        if rows is None:
            rows = torch.arange(self.n, device=self.device)
            if self.step >= len(rows):  # one block: compute it once for the duplicate and the k-NN passes
                if self._whole is None:
                    self._whole = self.rows(rows)
                yield rows, self._whole
                return
        for start in range(0, len(rows), self.step):
            chunk = rows[start : start + self.step]
            yield chunk, self.rows(chunk)


def _rows_equal(x: torch.Tensor, i: torch.Tensor, j: torch.Tensor, block_bytes: int) -> torch.Tensor:
    """``x[i[p]] == x[j[p]]`` exactly (every coordinate), pair by pair, in chunks."""
    if len(i) == 0:
        return torch.zeros(0, dtype=torch.bool, device=x.device)
    step = max(1, block_bytes // max(1, 2 * x.shape[1] * x.element_size()))
    if bool((j == j[0]).all()):  # one representative (a dead layer): compare each row with it, no gathered copy
        contiguous = int(i[-1] - i[0]) + 1 == len(i) and bool((i.diff() == 1).all())
        first = int(i[0])
        parts = []
        for s in range(0, len(i), step):
            rows = x[first + s : first + min(s + step, len(i))] if contiguous else x[i[s : s + step]]
            parts.append((rows == x[int(j[0])]).all(dim=1))
        return torch.cat(parts)
    out = [(x[i[s : s + step]] == x[j[s : s + step]]).all(dim=1) for s in range(0, len(i), step)]
    return torch.cat(out)


def _first_occurrences_narrow(x: torch.Tensor) -> torch.Tensor:
    """Sorted first occurrences of the distinct rows of a narrow cloud (``d <= 16``): sorting short rows is cheap."""
    _, inverse = torch.unique(x + 0 if x.is_floating_point() else x, dim=0, return_inverse=True)  # + 0: -0.0 -> 0.0
    first = torch.full((int(inverse.max()) + 1,), len(x), dtype=torch.long, device=x.device)
    first.scatter_reduce_(0, inverse, torch.arange(len(x), device=x.device), reduce="amin")
    return first.sort().values


def _first_occurrences_wide(x: torch.Tensor, dist: _Distances, block_bytes: int) -> torch.Tensor:
    """Sorted first occurrences of the distinct rows of a wide cloud, from zero-distance candidates."""
    return torch.nonzero(_duplicate_of(x, dist, block_bytes) < 0).squeeze(1)


def _duplicate_of(x: torch.Tensor, dist: _Distances, block_bytes: int) -> torch.Tensor:
    """For each row, the lowest earlier row exactly equal to it, or -1 (``dist``: the rows' distances)."""
    n = len(x)
    first = torch.full((n,), -1, dtype=torch.long, device=x.device)
    for rows, d2 in dist.blocks():  # contiguous row blocks: "an earlier row" is the part left of a diagonal
        cand = torch.tril(d2 <= dist.tolerance(rows), diagonal=int(rows[0]) - 1)
        has = cand.any(dim=1)
        first[rows[has]] = cand[has].to(torch.int8).argmax(dim=1)  # argmax: the first True
    have = torch.nonzero(first >= 0).squeeze(1)
    equal = _rows_equal(x, have, first[have], block_bytes)
    duplicate_of = torch.full((n,), -1, dtype=torch.long, device=x.device)
    duplicate_of[have[equal]] = first[have[equal]]
    # a first candidate that is not equal (a near-duplicate): check every earlier candidate of that row
    for rows, d2 in dist.blocks(have[~equal]):
        cand = (d2 <= dist.tolerance(rows)) & (torch.arange(n, device=x.device)[None, :] < rows[:, None])
        r, c = torch.nonzero(cand, as_tuple=True)
        same = _rows_equal(x, rows[r], c, block_bytes)
        if same.any():
            lowest = torch.full((len(rows),), n, dtype=torch.long, device=x.device)
            lowest.scatter_reduce_(0, r[same], c[same], reduce="amin")
            found = lowest < n
            duplicate_of[rows[found]] = lowest[found]
    return duplicate_of


def _first_k(d2: torch.Tensor, k: int) -> torch.Tensor:
    """Each row's ``k`` smallest entries, ordered by (value, column): ties go to the lower column."""
    n = d2.shape[1]
    kk = min(n, k + _TIE_SLACK)
    vals, idx = torch.topk(d2, kk, dim=1, largest=False, sorted=True)
    idx, perm = idx.sort(dim=1)
    order = vals.gather(1, perm).sort(dim=1, stable=True).indices
    out = idx.gather(1, order)[:, :k]
    if kk < n:  # a tie at the k-th value may run past what topk returned: sort those rows fully
        tied = torch.nonzero(vals[:, kk - 1] <= vals[:, k - 1]).squeeze(1)
        if len(tied):
            out[tied] = torch.sort(d2[tied], dim=1, stable=True).indices[:, :k]
    return out


def neighbour_lists(
    cloud: torch.Tensor,
    *,
    metric: str = "knn",
    k: int = 14,
    scale: float = 2.5,
    dtype: torch.dtype = torch.float64,
    block_bytes: int = 2**28,
    kd_tree: bool | None = None,
) -> NeighbourLists:
    """k-NN lists (or radius edges) of a ``(n, d)`` cloud, computed with torch on ``cloud.device``.

    Args:
        cloud: ``(n, d)`` tensor (any device; arrays and nested lists are accepted too).
        metric: ``"knn"`` (lists of the ``k`` nearest distinct points) or ``"euclidean"`` (edges at
            distance ``<= scale``).
        k: neighbours per point, the point itself included (``metric="knn"``).
        scale: the radius of ``metric="euclidean"``.
        dtype: arithmetic of the distances: ``torch.float64`` (default, identical to the numpy route) or
            ``torch.float32`` (the fast option on a GPU; near-ties may then be ordered differently).
        block_bytes: largest distance block held at once.
        kd_tree: hand the cloud to the numpy route's k-d tree (identical lists, by construction); ``None``, the
            default: when that is faster, i.e. the cloud is on the CPU, ``d <= 16`` and ``dtype`` is float64.
            The tree's query uses as many threads as a torch operator would (``torch.get_num_threads()``, which
            Lightning and ``OMP_NUM_THREADS`` set), each thread with 256 points or more (2 threads from 512 points).

    Raises:
        ValueError: the same as :func:`lightning_topo.topology.betti_numbers` for a bad cloud or bad options,
            or a bad ``dtype`` / ``block_bytes``.

    Example:
        >>> import torch
        >>> from lightning_topo.topology import betti_from_neighbours
        >>> t = torch.linspace(0, 6.283, 101)[:-1]
        >>> betti_from_neighbours(neighbour_lists(torch.stack([t.cos(), t.sin()], 1), k=5))
        (1, 1)
    """
    check_options(metric, k, scale)
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
    if not isinstance(block_bytes, (int, np.integer)) or block_bytes < 1:
        raise ValueError(f"block_bytes must be a positive integer, got {block_bytes!r}; the default is 2**28")
    x = _as_cloud(cloud)
    n = len(x)
    if metric == "knn":
        check_k(k, n)
    if kd_tree is None:
        kd_tree = x.device.type == "cpu" and x.shape[1] <= DIRECT_MAX_DIM and dtype == torch.float64
    if kd_tree:
        from lightning_topo.topology.betti import _to_numpy, numpy_neighbour_lists

        workers = torch.get_num_threads()  # the CPU budget torch's own operators take in this process
        points = _to_numpy(x)  # a dtype numpy lacks (bfloat16) comes as float32
        return numpy_neighbour_lists(points, metric=metric, k=k, scale=scale, workers=workers)
    with torch.no_grad():
        if x.shape[1] > DIRECT_MAX_DIM and n * n * torch.finfo(dtype).bits // 8 <= block_bytes:
            dist = _gram_distances(x, dtype)  # wide and few: one Gram product gives every distance
            return lists_from_distances(x, dist, metric=metric, k=k, scale=scale, block_bytes=block_bytes)
        u = _working_copy(x, dtype)  # moved to its origin row above 16 dimensions, as the numpy route
        if x.shape[1] <= DIRECT_MAX_DIM:
            return lists_from_distances(x, None, metric=metric, k=k, scale=scale, block_bytes=block_bytes, u=u)
        return lists_from_distances(
            x, _Distances(u, block_bytes), metric=metric, k=k, scale=scale, block_bytes=block_bytes
        )


def _gram_distances(x: torch.Tensor, dtype: torch.dtype) -> _Distances:
    """All squared distances of a wide cloud with few points, from one Gram product: ``|x|^2 + |y|^2 - 2 x.y``
    of the cloud moved to its origin row (:func:`origin_row`), as every route above 16 dimensions.

    The shift is one pass over the working copy, in place (no column means: no extra pass); without it, float32
    distances of ReLU activations (all positive, far from the origin) came out wrong in most rows.
    """
    u = _shifted(x, x.to(dtype))
    gram = u @ u.T
    del u
    sq = gram.diagonal().clone()
    _check_finite(x, sq)
    return _Distances.given(_expand(sq, sq, gram), sq, x.shape[1])


def _expand(sq_rows: torch.Tensor, sq: torch.Tensor, products: torch.Tensor) -> torch.Tensor:
    """``(|x|^2 + |y|^2) - 2 x.y``, bit for bit the numpy route's, with one temporary; ``products`` is overwritten.

    Doubling is exact in binary floating point, so ``products.mul_(2)`` changes no rounding; the in-place form only
    saves the two extra ``n x n`` temporaries of the expression (and their page faults: 170 -> 55 ms at n = 3,150).
    """
    out = sq_rows[:, None] + sq[None, :]
    return out.sub_(products.mul_(2.0))


def lists_from_distances(
    x: torch.Tensor,
    dist: _Distances | None,
    *,
    metric: str,
    k: int,
    scale: float,
    block_bytes: int,
    u: torch.Tensor | None = None,
) -> NeighbourLists:
    """Drop the duplicates of a validated cloud ``x``, then list neighbours from its distances ``dist``.

    ``dist=None`` (a narrow cloud): duplicates by sorting the short rows, distances of the working copy ``u``.
    """
    n = len(x)
    if dist is None:
        keep = _first_occurrences_narrow(x)
    else:
        keep = _first_occurrences_wide(x, dist, block_bytes)
    n_unique = len(keep)
    if n_unique == 1:
        empty = (np.zeros((1, 1), np.int64), None) if metric == "knn" else (None, np.zeros((2, 0), np.int64))
        return NeighbourLists(n, 1, metric, *empty)
    if dist is None:
        dist = _Distances(u[keep] if n_unique < n else u, block_bytes)
    elif n_unique < n:
        dist = dist.subset(keep, block_bytes)
    # else: no duplicate, the distances are reused (the k-NN pass below overwrites their diagonal)
    nearest = []  # each point's first and second neighbour distances, from the very distances ranked here
    if metric == "knn":
        kk = min(k, n_unique)
        parts = []
        for rows, d2 in dist.blocks():
            d2[torch.arange(len(rows), device=d2.device), rows] = -torch.inf  # the point itself first
            parts.append(_first_k(d2, kk))
            if n_unique >= 3:
                nearest.append(_two_nearest(d2, parts[-1]))
        lists = torch.cat(parts).cpu().numpy().astype(np.int64)
        return NeighbourLists(n, n_unique, metric, lists, None, _joined(nearest))
    limit = float(scale) * float(scale)
    found = []
    for rows, d2 in dist.blocks():
        r, c = torch.nonzero(d2 <= limit, as_tuple=True)
        r = rows[r]
        found.append(torch.stack([r[r < c], c[r < c]]))
        if n_unique >= 3:
            d2[torch.arange(len(rows), device=d2.device), rows] = -torch.inf
            nearest.append(_two_nearest(d2, None))
    edges = torch.cat(found, dim=1).cpu().numpy().astype(np.int64)
    return NeighbourLists(n, n_unique, metric, None, edges, _joined(nearest))


def _two_nearest(d2: torch.Tensor, ranked: torch.Tensor | None) -> torch.Tensor:
    """Each row's first and second neighbour distances: read at ``ranked[:, 1:3]`` (its k-NN list, self first)
    when it has them, else the three smallest entries of the row (its own ``-inf`` first)."""
    if ranked is not None and ranked.shape[1] >= 3:
        squared = d2.gather(1, ranked[:, 1:3])
    else:
        squared = torch.topk(d2, 3, dim=1, largest=False, sorted=True).values[:, 1:3]
    return squared.clamp_min(0).sqrt()


def _joined(nearest: list[torch.Tensor]) -> np.ndarray | None:
    return torch.cat(nearest).to(torch.float64).cpu().numpy() if nearest else None


def _gram(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    u = _shifted(x, x.to(dtype))
    return u @ u.T


def batched_neighbour_lists(
    stack: torch.Tensor,
    *,
    metric: str = "knn",
    k: int = 14,
    scale: float = 2.5,
    dtype: torch.dtype = torch.float64,
    block_bytes: int = 2**28,
    kd_tree: bool | None = None,
) -> list[NeighbourLists]:
    """``[neighbour_lists(stack[c], ...) for c]`` for a ``(C, n, d)`` stack of equal-size clouds, bit for bit, in
    a few batched launches instead of a dozen per cloud.

    Every cloud's squared distances come with the per-cloud route's own arithmetic: ``d <= 16``, direct differences,
    coordinate by coordinate, batched over the clouds (elementwise, so bit for bit); above, ``(|x|^2 + |y|^2) - 2 x.y``
    of the cloud moved to its origin row, as :func:`_gram_distances`, with one Gram product per cloud (the same ``mm`` call:
    ``bmm`` rounds differently, measured on the CPU) and the expansion batched.  One batched ``topk`` ranks them all, and only the rows with a tie at the
    ``k``-th distance are sorted fully (``_first_k``'s repair).  The lists depend only on the distances (value, then
    index), so they equal the per-cloud ones whenever the distances do.  A cloud that needs anything else is
    handed to :func:`neighbour_lists` itself: a duplicate candidate (a zero distance, or one within the duplicate
    bound above 16 dimensions), a non-finite distance, fewer than 3 points, no coordinates or ``k < 3``.  The whole stack goes
    the per-cloud way when that route would not use these distances: ``metric="euclidean"``, ``kd_tree`` (``None``: a CPU
    stack of ``d <= 16`` in float64, as :func:`neighbour_lists`), a wide cloud too large for one Gram block
    (``n * n * itemsize > block_bytes``), or a stack whose distances exceed ``block_bytes`` together.
    """
    per_cloud = [
        dict(metric=metric, k=k, scale=scale, dtype=dtype, block_bytes=block_bytes, kd_tree=kd_tree) for _ in stack
    ]
    if stack.dim() != 3 or len(stack) == 0:
        raise ValueError(f"expected a (clouds, points, dims) stack, got shape {tuple(stack.shape)}")
    c, n, d = stack.shape
    itemsize = torch.finfo(dtype).bits // 8
    narrow = d <= DIRECT_MAX_DIM
    if kd_tree is None:
        kd_tree = stack.device.type == "cpu" and narrow and dtype == torch.float64
    if (
        metric != "knn"
        or n < 3
        or d == 0
        or not isinstance(k, (int, np.integer))
        or k < 3
        or dtype not in _DTYPES
        or not stack.is_floating_point()
        or kd_tree
        or (not narrow and n * n * itemsize > block_bytes)
        or c * n * n * itemsize > block_bytes
    ):
        return [neighbour_lists(stack[i], **options) for i, options in enumerate(per_cloud)]
    check_options(metric, k, scale)
    check_k(k, n)
    with torch.no_grad():
        stack = stack.detach()
        if narrow:
            columns = stack.to(dtype).transpose(1, 2)  # (C, d, n)
            diff = columns[:, 0, :, None] - columns[:, 0, None, :]
            dist = diff * diff
            for j in range(1, d):
                diff = columns[:, j, :, None] - columns[:, j, None, :]
                dist = dist + diff * diff  # not addcmul: as _Distances.rows
            del diff
            suspect = dist <= 0
        else:
            # one product per cloud, the per-cloud route's own call: a batched product (bmm) picks other kernels
            # (on the CPU even by batch count) whose sums round differently in the last bits; one cloud's working
            # copy at a time, as that route holds (a stack of wide float64 copies would multiply its peak memory)
            gram = torch.stack([_gram(part, dtype) for part in stack])
            sq = gram.diagonal(dim1=1, dim2=2).clone()
            dist = (sq[:, :, None] + sq[:, None, :]).sub_(gram.mul_(2.0))  # as _expand
            del gram
            bound = duplicate_tolerance(sq[:, :, None] + sq.max(dim=1).values[:, None, None], d)
            suspect = dist <= bound
        eye = torch.arange(n, device=dist.device)
        suspect[:, eye, eye] = False
        bad = suspect.any(dim=2).any(dim=1) | ~torch.isfinite(dist).all(dim=2).all(dim=1)
        dist[:, eye, eye] = -torch.inf  # the point itself first
        kk = min(k, n)
        slack = min(n, kk + _TIE_SLACK)
        vals, idx = torch.topk(dist, slack, dim=2, largest=False, sorted=True)
        idx, perm = idx.sort(dim=2)
        order = vals.gather(2, perm).sort(dim=2, stable=True).indices
        ranked = idx.gather(2, order)[:, :, :kk]
        if slack < n:
            tied = vals[:, :, slack - 1] <= vals[:, :, kk - 1]
            if bool(tied.any()):
                ranked[tied] = torch.sort(dist[tied], dim=1, stable=True).indices[:, :kk]
        nearest = dist.gather(2, ranked[:, :, 1:3]).clamp_min(0).sqrt()
        lists = ranked.cpu().numpy().astype(np.int64)
        nearest_np = nearest.to(torch.float64).cpu().numpy()
        redo = bad.cpu().numpy()
    return [
        neighbour_lists(stack[i], **per_cloud[i])
        if redo[i]
        else NeighbourLists(n, n, metric, lists[i].copy(), None, nearest_np[i].copy())
        for i in range(c)
    ]
