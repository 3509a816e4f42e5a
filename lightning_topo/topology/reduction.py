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

:func:`collapse_dominated_vertices` applies the same rule to any graph, the hop graph itself included, and repeats
it while the graph shrinks (a vertex dominated by a neighbour in the hop graph is a strong collapse of its flag
complex too): the route above ``beta_1`` runs it before gudhi's edge collapses, which it leaves a much smaller graph
(figures: ``benchmarks/results/vertex_collapse.txt``).

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

__all__ = ["closed_knn_adjacency", "collapse_dominated_vertices", "dominated_vertices", "reduced_hop_graph"]

#: graphs of more vertices are left to the edge collapses: the adjacency takes ``n * n`` bytes (16 MB at 4,096)
MAX_BITSET_VERTICES = 4096
_POPCOUNT_8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.int64)


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
    return _below(closed.shape[0], v, u, shared.data, degree, v != u)


def _below(
    n: int, v: np.ndarray, u: np.ndarray, shared: np.ndarray, degree: np.ndarray, pair: np.ndarray
) -> np.ndarray:
    """Mask of the ``v`` below a neighbour ``u``: ``N[v] ⊆ N[u]`` (``shared == |N[v]|``), strictly or ``u < v``."""
    below = pair & (shared == degree[v]) & ((degree[u] > degree[v]) | (u < v))
    mask = np.zeros(n, dtype=bool)
    mask[v[below]] = True
    return mask


def _shared_counts(words: np.ndarray, v: np.ndarray, u: np.ndarray, block_bytes: int = 1 << 24) -> np.ndarray:
    """``|N[v] ∩ N[u]|`` per pair, from closed neighbourhoods as rows of bits (``uint64`` words), ``block_bytes``
    of ANDed rows at a time."""
    count = getattr(np, "bitwise_count", None)  # numpy >= 2.0
    shared = np.empty(len(v), dtype=np.int64)
    step = max(1, block_bytes // (8 * words.shape[1]))
    for start in range(0, len(v), step):
        both = words[v[start : start + step]] & words[u[start : start + step]]
        shared[start : start + step] = (count(both) if count is not None else _POPCOUNT_8[both.view(np.uint8)]).sum(1)
    return shared


def _graph_dominated_vertices(n: int, edges: np.ndarray) -> np.ndarray:
    """:func:`dominated_vertices` of the graph ``(n, edges)`` itself, its counts from bitsets of the closed
    neighbourhoods (one AND and popcount per edge, where the sparse square of a dense hop graph is slow)."""
    adjacency = np.zeros((n, n), dtype=bool)
    adjacency[edges[0], edges[1]] = True
    adjacency[edges[1], edges[0]] = True
    adjacency[np.arange(n), np.arange(n)] = True
    degree = np.count_nonzero(adjacency, axis=1)
    bits = np.packbits(adjacency, axis=1)
    words = np.pad(bits, ((0, 0), (0, -bits.shape[1] % 8))).view(np.uint64)  # whole 64-bit words: 8x fewer counts
    shared = _shared_counts(words, edges[0], edges[1])  # symmetric: one count serves both directions of an edge
    v = np.concatenate([edges[0], edges[1]])
    u = np.concatenate([edges[1], edges[0]])
    return _below(n, v, u, np.concatenate([shared, shared]), degree, v != u)


def collapse_dominated_vertices(
    n_vertices: int, edges: np.ndarray, max_vertices: int = MAX_BITSET_VERTICES, min_share: float = 0.05
) -> tuple[int, np.ndarray]:
    """``(vertices kept, edges)`` of a graph after its dominated vertices are removed, round after round: the flag
    complex keeps its homotopy type, so its Betti numbers, at every round (the argument of the module's docstring,
    with the graph's own neighbourhoods).  Kept vertices are renumbered ``0..kept-1`` in their order;
    edges come back as a ``(2, m)`` ``int64`` array, and a graph of more than ``max_vertices`` vertices as it is.
    The rounds stop when none is left to remove, or once a round removes less than ``min_share`` of the vertices:
    a graph that has stopped shrinking costs more rounds than it spares the edge collapses after them.

    Example:
        >>> import itertools
        >>> clique = np.array(list(itertools.combinations(range(5), 2))).T   # a cone over any of its vertices
        >>> collapse_dominated_vertices(5, clique)
        (1, array([], shape=(2, 0), dtype=int64))
    """
    edges = np.asarray(edges, dtype=np.int64).reshape(2, -1)
    if n_vertices > max_vertices:
        return n_vertices, edges
    while n_vertices > 1 and edges.shape[1]:
        keep = ~_graph_dominated_vertices(n_vertices, edges)
        kept = int(keep.sum())
        if kept == n_vertices:
            break
        renumber = np.cumsum(keep) - 1
        edges = renumber[edges[:, keep[edges[0]] & keep[edges[1]]]]
        shrinking = n_vertices - kept >= min_share * n_vertices
        n_vertices = kept
        if not shrinking:
            break
    return n_vertices, edges


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
        grown = reach @ closed
        grown.data[:] = 1  # only the pattern matters; counts would grow with every hop
        if grown.nnz == reach.nnz:  # no new pair within one more hop: the pattern is final (a huge scale)
            break
        reach = grown
    reach = reach.tocsr()
    rows = np.repeat(np.arange(n), np.diff(reach.indptr))
    cols = reach.indices
    chosen = (rows < cols) & keep[rows] & keep[cols]
    renumber = np.cumsum(keep) - 1
    edges = np.vstack([renumber[rows[chosen]], renumber[cols[chosen]]]).astype(np.int64, copy=False)
    return int(keep.sum()), edges
