"""The neighbour lists of one point cloud: what the topology core needs, and nothing else.

Both routes produce them: :func:`lightning_topo.topology.numpy_neighbour_lists` (numpy/scipy, on the host)
and :func:`lightning_topo.topology.neighbour_lists` (torch, on the cloud's device).  They are small (``n x k``
integers), picklable and device-free, so they can be sent to worker processes that run gudhi.

Example:
    >>> import pickle
    >>> import numpy as np
    >>> lists = NeighbourLists(3, 3, "knn", np.array([[0, 1], [1, 0], [2, 1]]), None)
    >>> pickle.loads(pickle.dumps(lists)).n_unique
    3
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["NeighbourLists"]


@dataclass(frozen=True)
class NeighbourLists:
    """What the topology core needs of one point cloud: small, picklable (numpy arrays only), device-free.

    Attributes:
        n_points: points before duplicates were dropped.
        n_unique: distinct points (exact duplicates dropped, the first occurrence kept, original order).
        metric: ``"knn"`` or ``"euclidean"``.
        indices: ``metric="knn"``: ``(n_unique, min(k, n_unique))`` ``int64``; row ``i`` lists ``i``'s nearest
            distinct points, ``i`` itself first, then by distance, ties broken by the lower index.
        edges: ``metric="euclidean"``: ``(2, m)`` ``int64`` pairs ``i < j`` at distance ``<= scale``, sorted.
        nearest: ``(n_unique, 2)`` ``float64``: each distinct point's first and second nearest-neighbour distances,
            kept from the distance step that built the lists (the intrinsic dimension's input:
            :func:`lightning_topo.topology.lists_intrinsic_dimension`); ``None`` below 3 distinct points.
    """

    n_points: int
    n_unique: int
    metric: str
    indices: np.ndarray | None
    edges: np.ndarray | None
    nearest: np.ndarray | None = None

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays (what pickling sends, up to a small header)."""
        return sum(a.nbytes for a in (self.indices, self.edges, self.nearest) if a is not None)
