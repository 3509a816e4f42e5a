"""A k-NN hop graph made smaller before homology: every vertex whose closed k-NN neighbourhood lies inside a
neighbour's is dropped, which keeps the flag complex's homotopy type, so its Betti numbers, exactly.

Why it is exact. Write ``N[v]`` for ``v`` and its neighbours in the symmetrised k-NN graph ``G``.  If
``N[v] ⊆ N[u]``, then every ball of ``h`` hops satisfies ``B_h(v) ⊆ B_h(u)`` (induction on ``h``: ``B_h(v)`` is
the union of ``B_{h-1}(w)`` over ``w`` in ``N[v]``), so in the flag complex of ``G^h`` the link of ``v`` is a cone
with apex ``u``: removing ``v`` is a strong collapse (Barmak & Minian 2012), a homotopy equivalence.  The relation
"``N[v] ⊊ N[u]``, or ``N[v] = N[u]`` and ``u < v``" is a strict partial order; every vertex below another is
removed, and each is dominated by a maximal vertex above it, which stays, so the removals can be done one after
another, in any order, each a strong collapse.  The hop graph's edges are those of the whole ``G``, restricted
to the vertices kept (not the hop graph of the smaller k-NN graph).

On the D-I recipe's clouds a large share of the vertices go and Ripser's work shrinks with them; what it costs is
the ``N[v] ∩ N[u]`` counts, a by-product of the sparse product that finds the 2-hop pairs anyway (figures:
``benchmarks/results/d1_measurement_fit.txt``).

Example:
    >>> import numpy as np
    >>> t = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    >>> from lightning_topo.topology.graph import knn_indices
    >>> indices = knn_indices(np.stack([np.cos(t), np.sin(t)], 1), k=3)   # a 40-cycle
    >>> n_kept, edges = reduced_hop_graph(indices, hops=1)
    >>> n_kept, edges.shape                                             # a cycle has no dominated vertex
    (40, (2, 40))
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["closed_knn_adjacency", "dominated_vertices", "reduced_hop_graph"]


def closed_knn_adjacency(indices: np.ndarray) -> sp.csr_matrix:
    """``int32`` 0/1 CSR matrix of ``i ~ j`` (either lists the other) or ``i == j``: closed neighbourhoods as rows.

    Example:
        >>> closed_knn_adjacency(np.array([[0, 1], [1, 0], [2, 1]])).toarray().tolist()
        [[1, 1, 0], [1, 1, 1], [0, 1, 1]]
    """
    indices = np.asarray(indices, dtype=np.int64)
    n, k = indices.shape
    listed = sp.csr_matrix((np.ones(n * k, dtype=np.int32), indices.ravel(), np.arange(0, n * k + 1, k)), shape=(n, n))
    closed = (listed + listed.T).tocsr()
    if n and not np.array_equal(indices[:, 0], np.arange(n)):  # lists that do not open with their own point
        closed = (closed + sp.identity(n, dtype=np.int32, format="csr")).tocsr()
    closed.data[:] = 1
    return closed


def dominated_vertices(closed: sp.csr_matrix, common: sp.csr_matrix | None = None) -> np.ndarray:
    """Boolean mask of the vertices below another in "``N[v] ⊊ N[u]``, or ``N[v] = N[u]`` and ``u < v``".

    ``closed`` is a 0/1 closed adjacency (:func:`closed_knn_adjacency`); ``common``, its square (the counts
    ``|N[v] ∩ N[u]|``), when the caller already has it.

    Example:
        >>> star = closed_knn_adjacency(np.array([[0, 1], [1, 0], [2, 0], [3, 0]]))  # centre 0, leaves 1-3
        >>> dominated_vertices(star).tolist()
        [False, True, True, True]
    """
    if common is None:
        common = closed @ closed
    degree = np.diff(closed.indptr)  # |N[v]|
    shared = common.multiply(closed).tocoo()  # |N[v] ∩ N[u]| for every neighbour u of v (and v itself)
    v, u = shared.row, shared.col
    below = (v != u) & (shared.data == degree[v]) & ((degree[u] > degree[v]) | (u < v))
    mask = np.zeros(closed.shape[0], dtype=bool)
    mask[v[below]] = True
    return mask


def reduced_hop_graph(indices: np.ndarray, hops: int) -> tuple[int, np.ndarray]:
    """``(vertices kept, edges)`` of the ``hops``-hop graph of the k-NN lists ``indices`` after the dominated
    vertices are removed (renumbered ``0..kept-1`` in their order): its flag complex has the same Betti numbers as
    the whole hop graph's.  Edges: ``(2, m)`` ``int64``, ``i < j``, in no particular order.

    Example:
        >>> lists = np.array([[0, 1], [1, 0], [2, 0], [3, 0]])  # a star: a cone, contractible
        >>> reduced_hop_graph(lists, hops=2)
        (1, array([], shape=(2, 0), dtype=int64))
    """
    closed = closed_knn_adjacency(indices)
    n = closed.shape[0]
    if hops < 1:
        return n, np.empty((2, 0), dtype=np.int64)
    common = closed @ closed
    keep = ~dominated_vertices(closed, common)
    reach = closed if hops == 1 else common
    for _ in range(hops - 2):
        reach = reach @ closed
        reach.data[:] = 1  # only the pattern matters; counts would grow with every hop
    reach = reach.tocsr()
    rows = np.repeat(np.arange(n), np.diff(reach.indptr))
    cols = reach.indices
    chosen = (rows < cols) & keep[rows] & keep[cols]
    renumber = np.cumsum(keep) - 1
    edges = np.vstack([renumber[rows[chosen]], renumber[cols[chosen]]]).astype(np.int64, copy=False)
    return int(keep.sum()), edges
