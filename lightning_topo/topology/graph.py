"""Neighbourhood graphs of point clouds: the metric side of the Betti protocol.

Everything here works on sparse edge lists; no ``n x n`` dense matrix is ever built.  Low-dimensional
clouds use a k-d tree; high-dimensional ones (layer activations, feature maps) use blocked brute
force, which is faster there and bounded in memory.

Example:
    >>> import numpy as np
    >>> pts = np.random.default_rng(0).normal(size=(100, 2))
    >>> adj = knn_graph(pts, k=5)          # symmetric, no self loops
    >>> edges = hop_edges(adj, hops=2)     # pairs at most 2 hops apart, i < j, one column each
    >>> edges.shape
    (2, 624)
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp
from scipy.spatial import cKDTree

__all__ = ["knn_indices", "knn_graph", "hop_edges", "radius_edges"]

_KDTREE_MAX_DIM = 16  # above this, k-d trees degrade to brute force with extra overhead
_BLOCK_ELEMENTS = 2**24  # distance-block size for brute force (128 MiB of float64)


def _distance_blocks(points: np.ndarray) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield ``(start, stop, squared distances of rows start:stop to all points)``, block by block."""
    pts = points.astype(np.float64, copy=False)
    sq = np.einsum("ij,ij->i", pts, pts)
    step = max(1, _BLOCK_ELEMENTS // max(len(pts), 1))
    for start in range(0, len(pts), step):
        stop = min(start + step, len(pts))
        dist = sq[start:stop, None] - 2.0 * pts[start:stop] @ pts.T + sq[None, :]
        yield start, stop, dist


def knn_indices(points: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` nearest points of every point, the point itself included (shape ``(n, k)``).

    ``k`` follows the original protocol's convention: it counts the point itself.  ``k`` is capped
    at the number of points.  Ties are broken by index order, deterministically.
    """
    n = len(points)
    k = min(k, n)
    if points.shape[1] <= _KDTREE_MAX_DIM:
        _, idx = cKDTree(points).query(points, k=k)
        return np.asarray(idx, dtype=np.int64).reshape(n, k)
    out = np.empty((n, k), dtype=np.int64)
    for start, stop, dist in _distance_blocks(points):
        dist[np.arange(stop - start), np.arange(start, stop)] = -np.inf  # self first, as the k-d tree does
        part = np.argpartition(dist, k - 1, axis=1)[:, :k] if k < n else np.tile(np.arange(n), (stop - start, 1))
        order = np.argsort(np.take_along_axis(dist, part, axis=1), axis=1, kind="stable")
        out[start:stop] = np.take_along_axis(part, order, axis=1)
    return out


def knn_graph(points: np.ndarray, k: int) -> sp.csr_matrix:
    """Unweighted symmetrised k-NN graph: ``i ~ j`` if either lists the other among its ``k`` nearest.

    Returns a boolean CSR adjacency matrix without self loops.
    """
    n = len(points)
    idx = knn_indices(points, k)
    rows = np.repeat(np.arange(n), idx.shape[1])
    cols = idx.ravel()
    keep = rows != cols
    adj = sp.csr_matrix((np.ones(keep.sum(), dtype=bool), (rows[keep], cols[keep])), shape=(n, n))
    return (adj + adj.T).astype(bool).tocsr()


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
        reach = reach @ step
        reach.data[:] = 1
    upper = sp.triu(reach, k=1).tocoo()
    return np.vstack([upper.row, upper.col]).astype(np.int64)


def radius_edges(points: np.ndarray, radius: float) -> np.ndarray:
    """Pairs ``(i, j)``, ``i < j``, at Euclidean distance ``<= radius``: shape ``(2, m)``, ``int64``."""
    if points.shape[1] <= _KDTREE_MAX_DIM:
        pairs = cKDTree(points).query_pairs(radius, output_type="ndarray")
        return np.ascontiguousarray(pairs.T, dtype=np.int64).reshape(2, -1)
    found: list[np.ndarray] = []
    for start, _, dist in _distance_blocks(points):
        r, c = np.nonzero(dist <= radius * radius)
        r = r + start
        keep = r < c
        found.append(np.vstack([r[keep], c[keep]]))
    return np.hstack(found).astype(np.int64) if found else np.empty((2, 0), dtype=np.int64)
