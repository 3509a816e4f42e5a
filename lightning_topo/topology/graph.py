"""Neighbourhood graphs of point clouds: the metric side of the Betti protocol (numpy route).

Everything here works on sparse edge lists; no ``n x n`` dense matrix is ever built.  The arithmetic is
pinned down so that the torch route (:mod:`lightning_topo.topology.neighbours`) gives the same lists:

- squared distances: for ``d <= 16`` direct differences summed coordinate by coordinate
  (``(x_0 - y_0)^2 + (x_1 - y_1)^2 + ...``, left to right); above, the cloud is moved so that its first
  point is the origin and ``(|x|^2 + |y|^2) - 2 x.y`` is computed in row blocks.  The shift keeps the norms near
  the distances (a cloud far from the origin would drown them in rounding), and it is exact on integer and other
  coarse binary fractions (quantised or binary data), where a mean's would round: exact ties stay ties;
- k-NN: the point itself first, then by squared distance, ties broken by the lower index.  Low-dimensional
  clouds find candidates with a k-d tree and rank them with the formula above;
- duplicates: exact (``==``) duplicate rows are dropped, the first occurrence kept, in original order.

Example:
    >>> import numpy as np
    >>> pts = np.random.default_rng(0).normal(size=(100, 2))
    >>> adj = knn_graph(pts, k=5)          # symmetric, no self loops
    >>> edges = hop_edges(adj, hops=2)     # pairs at most 2 hops apart, i < j, one column each
    >>> edges.shape
    (2, 624)
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp
from scipy.spatial import cKDTree

from lightning_topo.topology.checks import rank_error
from lightning_topo.topology.threads import split_query

__all__ = [
    "DIRECT_MAX_DIM",
    "PARALLEL_QUERY_MIN_POINTS",
    "QUERY_SHARE_MIN_POINTS",
    "distinct_knn_indices",
    "first_occurrences",
    "hop_edges",
    "knn_from_indices",
    "knn_graph",
    "knn_indices",
    "radius_edges",
    "shifted_to_first",
]

DIRECT_MAX_DIM = 16  # up to here: k-d tree candidates and direct differences; above: Gram blocks, first point at 0
_BLOCK_BYTES = 2**27  # distance-block size for brute force (128 MiB of float64)
_TIE_SLACK = 1  # one k-d tree neighbour past the k-th: a row whose (k+1)-th is not tied with its k-th is settled
_KD_MARGIN = 1e-9  # relative margin between the k-d tree's distances and ours
_KD_TINY = 1e-100  # tree distances below this (squares near underflow) are always re-ranked with ours
# every thread of a k-d tree query gets at least this many points (topology/threads.py): below, handing a share
# over costs about what it saves (benchmarks/results/tree_workers.txt, at 2 threads); so 2 threads from 512 points,
# 4 from 1,024, and a many-core machine does not cut a small cloud into tiny shares
QUERY_SHARE_MIN_POINTS = 256
PARALLEL_QUERY_MIN_POINTS = 2 * QUERY_SHARE_MIN_POINTS  # the smallest query shared out at all


def _as_rows(points: np.ndarray) -> np.ndarray:
    """``points`` as ``float64 (n, d)`` rows, or the core's rank error (a 1-D array is not a cloud)."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2:
        raise rank_error(points.shape)
    return points


def first_occurrences(points: np.ndarray) -> np.ndarray:
    """Sorted indices of the first occurrence of every distinct row (exact equality, ``-0.0 == 0.0``).

    Narrow rows (``d <= 16``) are compared as raw bytes by ``np.unique`` (after ``+ 0.0``, which turns -0.0
    into 0.0; NaN never gets here); wide rows (a layer's activations) are hashed, never sorted, so they cost
    one pass over the data.

    Example:
        >>> first_occurrences(np.array([[1.0, 2.0], [0.0, 0.0], [1.0, 2.0], [-0.0, 0.0]]))
        array([0, 1])
    """
    rows = np.asarray(points, dtype=np.float64)
    if rows.ndim == 2 and rows.shape[1] <= DIRECT_MAX_DIM and len(rows):
        normal = np.ascontiguousarray(rows + 0.0)
        as_bytes = normal.view(np.dtype((np.void, normal.itemsize * normal.shape[1]))).reshape(-1)
        _, first = np.unique(as_bytes, return_index=True)  # the index of each value's first occurrence
        return np.sort(first).astype(np.int64, copy=False)
    seen: dict[bytes, int] = {}
    for i, row in enumerate(rows):
        seen.setdefault((row + 0.0).tobytes(), i)  # + 0.0 turns -0.0 into 0.0; one row copied at a time
    return np.fromiter(seen.values(), dtype=np.int64, count=len(seen))


def shifted_to_first(points: np.ndarray) -> np.ndarray:
    """``points`` moved so that the first is the origin: the wide clouds' working copy (``d > 16``).

    Distances do not depend on the origin, but the Gram expansion's rounding grows with the norms: a cloud far from
    the origin (ReLU activations, all positive) loses its distances in it.  Moving to the first point keeps the norms
    within the cloud's diameter, and unlike subtracting the mean it is exact on integer and other coarse binary
    fractions, so such data keep their exact ties (the lower index then wins on every route).

    Example:
        >>> shifted_to_first(np.array([[3.0, 1.0], [4.0, 3.0]])).tolist()
        [[0.0, 0.0], [1.0, 2.0]]
    """
    return points - points[0]


def _direct_sq(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared distances of matching rows (broadcasting), summed coordinate by coordinate, left to right."""
    diff = a[..., 0] - b[..., 0]
    out = diff * diff
    for c in range(1, a.shape[-1]):
        diff = a[..., c] - b[..., c]
        out = out + diff * diff
    return out


def _distance_blocks(
    points: np.ndarray, block_bytes: int = _BLOCK_BYTES, centre: bool = True
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield ``(start, stop, squared distances of rows start:stop to all points)``, block by block (``d > 16``).

    ``centre``: move the cloud so that its first point is the origin (:func:`shifted_to_first`) first.
    """
    n = len(points)
    step = max(1, block_bytes // (8 * max(n, 1)))
    pts = shifted_to_first(points) if centre else points
    sq = np.einsum("ij,ij->i", pts, pts)
    for start in range(0, n, step):
        stop = min(start + step, n)
        yield start, stop, (sq[start:stop, None] + sq[None, :]) - 2.0 * (pts[start:stop] @ pts.T)


def _first_k(rows: np.ndarray, cols: np.ndarray, sq: np.ndarray, n: int, k: int) -> np.ndarray:
    """From candidate pairs (every row has at least ``k``), each row's ``k`` best by (distance, index)."""
    order = np.lexsort((cols, sq, rows))
    counts = np.bincount(rows, minlength=n)
    starts = np.cumsum(counts) - counts
    return cols[order[starts[:, None] + np.arange(k)]].astype(np.int64, copy=False)


def _query_workers(n_points: int, workers: int) -> int:
    """Threads for a query of ``n_points``: at most ``workers``, each with ``QUERY_SHARE_MIN_POINTS`` or more."""
    return max(1, min(workers, n_points // QUERY_SHARE_MIN_POINTS))


def _tree_query(points: np.ndarray, k: int, workers: int = 1) -> tuple[cKDTree, np.ndarray, np.ndarray]:
    """A k-d tree of the points and every point's ``k + 1`` nearest by it (one past the k-th, for ties)."""
    n = len(points)
    kk = min(n, k + _TIE_SLACK)
    tree = cKDTree(points, balanced_tree=False)  # sliding-midpoint splits: built and queried a little faster here
    dist, idx = split_query(tree, points, kk, _query_workers(n, workers))
    return tree, dist.reshape(n, kk), idx.reshape(n, kk)


def distinct_knn_indices(points: np.ndarray, k: int, *, workers: int = 1) -> np.ndarray | None:
    """:func:`knn_indices` of a narrow cloud (``d <= 16``) whose rows are all distinct, else ``None``.

    One k-d tree query finds the neighbours and proves the rows distinct: every point's nearest other point lies at
    a distance above 0 (exact duplicates, and points within an underflowing distance, give 0).  On ``None`` the
    caller drops the duplicates (:func:`first_occurrences`) and asks again; most clouds need no second query.
    ``workers``: threads the query may use (from :data:`PARALLEL_QUERY_MIN_POINTS` points on); the lists are the
    same for any number.

    Example:
        >>> distinct_knn_indices(np.array([[0.0], [1.0], [3.0]]), k=2).tolist()
        [[0, 1], [1, 0], [2, 1]]
        >>> distinct_knn_indices(np.array([[0.0], [1.0], [0.0]]), k=2) is None
        True
    """
    points = np.asarray(points, dtype=np.float64)
    k = min(k, len(points))
    if points.ndim != 2 or points.shape[1] > DIRECT_MAX_DIM or k < 2:
        return None
    query = _tree_query(points, k, workers)
    if not (query[1][:, 1] > 0).all():
        return None
    return _knn_low_dim(points, k, query)


def _knn_low_dim(
    points: np.ndarray, k: int, query: tuple[cKDTree, np.ndarray, np.ndarray] | None = None, workers: int = 1
) -> np.ndarray:
    n = len(points)
    tree, dist, idx = _tree_query(points, k, workers) if query is None else query
    kk = dist.shape[1]
    # a row is settled when the tree's last candidate is clearly farther than its k-th: no tie is cut off
    settled = np.ones(n, bool) if kk == n else dist[:, kk - 1] > dist[:, k - 1] * (1 + _KD_MARGIN)
    out = np.empty((n, k), dtype=np.int64)
    # A settled row whose first k + 1 tree distances are strictly apart (by the margin, and far from underflow)
    # is in the exact order already: the point itself (distance 0) first, then by distance, no tie to break
    # (the (k+1)-th apart too, so that no tie at the k-th place is cut off either).
    last = min(k + 1, kk)
    steps = dist[:, 1:last] > dist[:, : last - 1] * (1 + _KD_MARGIN)
    clean = settled & steps.all(axis=1) & (dist[:, min(1, k - 1)] > _KD_TINY)
    out[clean] = idx[clean, :k]
    rerank = settled & ~clean
    cols = np.sort(idx[rerank], axis=1)  # index order first, then a stable sort by distance
    rows = np.flatnonzero(rerank)
    sq = _direct_sq(points[rows, None, :], points[cols])
    sq[cols == rows[:, None]] = -np.inf  # the point itself first
    order = np.argsort(sq, axis=1, kind="stable")[:, :k]
    out[rerank] = np.take_along_axis(cols, order, axis=1)
    tied = np.flatnonzero(~settled)
    if len(tied):  # every point within the k-th distance (and a hair)
        balls = tree.query_ball_point(points[tied], dist[tied, k - 1] * (1 + _KD_MARGIN) + 1e-300)
        lengths = np.fromiter((len(b) for b in balls), dtype=np.int64, count=len(balls))
        rows = np.repeat(np.arange(len(tied)), lengths)
        cols = np.concatenate([np.asarray(b, dtype=np.int64) for b in balls])
        sq = _direct_sq(points[tied[rows]], points[cols])
        sq[tied[rows] == cols] = -np.inf
        out[tied] = _first_k(rows, cols, sq, len(tied), k)
    return out


def knn_indices(
    points: np.ndarray, k: int, *, block_bytes: int = _BLOCK_BYTES, centre: bool = True, workers: int = 1
) -> np.ndarray:
    """Indices of the ``k`` nearest points of every point, the point itself included (shape ``(n, k)``).

    ``k`` follows the original protocol's convention: it counts the point itself.  ``k`` is capped
    at the number of points.  Order: the point itself, then by distance, ties broken by the lower index.
    ``centre=False``: the caller already moved the cloud (:func:`shifted_to_first`, above 16 dimensions only).
    ``workers``: threads
    the k-d tree query of a narrow cloud may use (see :func:`distinct_knn_indices`).
    """
    points = _as_rows(points)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer (it counts the point itself), got {k!r}")
    n = len(points)
    k = min(k, n)
    if points.shape[1] <= DIRECT_MAX_DIM:
        return _knn_low_dim(points, k, workers=workers)
    out = np.empty((n, k), dtype=np.int64)
    for start, stop, dist in _distance_blocks(points, block_bytes, centre):
        local = np.arange(stop - start)
        dist[local, local + start] = -np.inf
        kth = np.partition(dist, k - 1, axis=1)[:, k - 1 : k]
        rows, cols = np.nonzero(dist <= kth)
        out[start:stop] = _first_k(rows, cols, dist[rows, cols], stop - start, k)
    return out


def knn_from_indices(indices: np.ndarray) -> sp.csr_matrix:
    """Unweighted symmetrised k-NN graph from k-NN lists (row ``i`` lists ``i``'s neighbours)."""
    n, k = indices.shape
    rows = np.repeat(np.arange(n), k)
    cols = np.asarray(indices, dtype=np.int64).ravel()
    keep = rows != cols
    adj = sp.csr_matrix((np.ones(keep.sum(), dtype=bool), (rows[keep], cols[keep])), shape=(n, n))
    return (adj + adj.T).astype(bool).tocsr()


def knn_graph(points: np.ndarray, k: int) -> sp.csr_matrix:
    """Unweighted symmetrised k-NN graph: ``i ~ j`` if either lists the other among its ``k`` nearest.

    Returns a boolean CSR adjacency matrix without self loops.
    """
    return knn_from_indices(knn_indices(points, k))


def hop_edges(adjacency: sp.spmatrix, hops: int) -> np.ndarray:
    """Pairs ``(i, j)``, ``i < j``, at graph distance ``1..hops``: shape ``(2, m)``, ``int64``.

    These are the edges of the Vietoris-Rips complex of the hop (graph-geodesic) metric at any scale
    in ``[hops, hops + 1)``.
    """
    if hops < 1:
        return np.empty((2, 0), dtype=np.int64)
    adj = sp.csr_matrix(adjacency, dtype=np.int32)
    adj.setdiag(0)
    adj.eliminate_zeros()
    reach = adj.copy()
    step = adj + sp.identity(adj.shape[0], dtype=np.int32, format="csr")
    for _ in range(hops - 1):
        grown = reach @ step
        grown.data[:] = 1
        if grown.nnz == reach.nnz:  # one more hop reached no new pair: every later hop is the same (a huge scale)
            break
        reach = grown
    upper = sp.triu(reach, k=1).tocoo()
    return np.vstack([upper.row, upper.col]).astype(np.int64)


def radius_edges(
    points: np.ndarray, radius: float, *, block_bytes: int = _BLOCK_BYTES, centre: bool = True
) -> np.ndarray:
    """Pairs ``(i, j)``, ``i < j``, at Euclidean distance ``<= radius``: shape ``(2, m)``, ``int64``, sorted.

    ``centre=False``: the caller already moved the cloud (:func:`shifted_to_first`, above 16 dimensions only).
    """
    points = _as_rows(points)
    real = not isinstance(radius, bool) and isinstance(radius, (int, float, np.integer, np.floating))
    if not (real and math.isfinite(radius) and radius > 0):
        raise ValueError(f"radius must be a positive finite number, got {radius!r}")
    limit = float(radius) * float(radius)
    if points.shape[1] <= DIRECT_MAX_DIM:
        pairs = cKDTree(points).query_pairs(radius * (1 + _KD_MARGIN), output_type="ndarray").reshape(-1, 2)
        pairs = np.sort(pairs, axis=1)
        pairs = pairs[_direct_sq(points[pairs[:, 0]], points[pairs[:, 1]]) <= limit]
        pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]
        return np.ascontiguousarray(pairs.T, dtype=np.int64).reshape(2, -1)
    found: list[np.ndarray] = []
    for start, _, dist in _distance_blocks(points, block_bytes, centre):
        r, c = np.nonzero(dist <= limit)
        r = r + start
        keep = r < c
        found.append(np.vstack([r[keep], c[keep]]))
    return np.hstack(found).astype(np.int64) if found else np.empty((2, 0), dtype=np.int64)
