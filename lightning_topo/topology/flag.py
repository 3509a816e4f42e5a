"""Homology of the flag (clique) complex of a graph, with gudhi, over Z/2.

The fast route, per connected component: up to ``beta_1`` (``max_dim=1``), gudhi's Ripser on the graph as a
sparse filtration with every edge at 0, which never builds the complex (it enumerates triangles only where
a coboundary needs them); above, or where this gudhi has no Ripser, Boissonnat & Pritam's strong edge
collapse (which keeps the homotopy type of the flag complex) on the edge arrays, repeated to a fixed point,
then the much smaller graph expanded in a simplex tree.  The straightforward route expands the full graph.
All give the same numbers: Betti numbers over Z/2 of the same complex (or of a homotopy-equivalent one).

Example:
    >>> import numpy as np
    >>> square = np.array([[0, 1, 2, 0], [1, 2, 3, 3]])  # a 4-cycle: one component, one loop
    >>> flag_complex_betti(4, square, max_dim=1)
    (1, 1)
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import gudhi
import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from lightning_topo.topology.checks import check_graph, check_jobs, check_max_dim
from lightning_topo.topology.reduction import collapse_dominated_vertices

__all__ = ["flag_complex_betti"]

try:  # gudhi >= 3.10: Ripser on a sparse graph (what gudhi.sklearn's RipsPersistence calls)
    from gudhi._ripser_ext import _sparse as _ripser_sparse
except ImportError:  # pragma: no cover - older gudhi: the edge-collapse route serves every max_dim
    _ripser_sparse = None
try:  # the edge collapse on edge arrays, without a simplex tree's insertion and extraction
    from gudhi._edge_collapse_ext import _collapse_edges
except ImportError:  # pragma: no cover - older gudhi: SimplexTree.collapse_edges
    _collapse_edges = None

_MAX_COLLAPSE_ROUNDS = 16


def _ripser_betti(n_vertices: int, edges: np.ndarray, max_dim: int) -> list[int]:
    """``beta_0..beta_max_dim`` of the flag complex from Ripser's essential classes (every simplex at 0)."""
    zeros = np.zeros(edges.shape[1])
    diagrams = _ripser_sparse(
        edges[0], edges[1], zeros, n_vertices, max_dimension=max_dim, max_edge_length=1.0, homology_coeff_field=2
    )
    betti = [int(np.isinf(np.asarray(d, dtype=np.float64).reshape(-1, 2)[:, 1]).sum()) for d in diagrams]
    return (betti + [0] * (max_dim + 1))[: max_dim + 1]


def _collapsed_edges(edges: np.ndarray) -> np.ndarray:
    """The edges left when strong edge collapses are repeated until one round removes none."""
    rows, cols = edges[0], edges[1]
    for _ in range(_MAX_COLLAPSE_ROUNDS):
        (rows, cols), _ = _collapse_edges(rows, cols, np.zeros(len(rows)), 1)
        rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
        if len(rows) == edges.shape[1]:
            break
        edges = np.vstack([rows, cols])
    return edges


def _component_betti(n_vertices: int, edges: np.ndarray, max_dim: int, collapse: bool) -> list[int]:
    """Betti numbers of the flag complex of one graph, with gudhi (``beta_0`` included)."""
    edges = np.ascontiguousarray(edges, dtype=np.int64).reshape(2, -1)
    if collapse and max_dim <= 1 and _ripser_sparse is not None:
        return _ripser_betti(n_vertices, edges, max_dim)
    if collapse:  # dominated vertices first: cheap, and they leave the edge collapses a much smaller graph
        n_vertices, edges = collapse_dominated_vertices(n_vertices, edges)
    if collapse and _collapse_edges is not None and edges.shape[1]:
        edges = _collapsed_edges(edges)
    tree = gudhi.SimplexTree()
    tree.insert_batch(np.arange(n_vertices, dtype=np.int64)[None, :], np.zeros(n_vertices))
    if edges.shape[1]:
        tree.insert_batch(np.ascontiguousarray(edges, dtype=np.int64), np.zeros(edges.shape[1]))
    if collapse and _collapse_edges is None:
        size = tree.num_simplices()
        for _ in range(_MAX_COLLAPSE_ROUNDS):
            tree.collapse_edges(nb_iterations=1)
            if tree.num_simplices() == size:
                break
            size = tree.num_simplices()
    tree.expansion(max_dim + 1)
    # persistence_dim_max: a collapsed complex may have no simplex above max_dim, and gudhi skips
    # the top dimension unless asked.
    tree.compute_persistence(homology_coeff_field=2, persistence_dim_max=True)
    betti = list(tree.betti_numbers())[: max_dim + 1]
    return betti + [0] * (max_dim + 1 - len(betti))


def flag_complex_betti(
    n_vertices: int, edges: np.ndarray, max_dim: int = 1, *, collapse: bool = True, n_jobs: int | None = None
) -> tuple[int, ...]:
    """Betti numbers ``beta_0..beta_max_dim`` of the flag complex of a graph.

    Connected components are computed separately (isolated vertices and trees cost nothing), on
    ``n_jobs`` threads: gudhi releases the GIL, so components run truly in parallel.

    Args:
        n_vertices: vertices are ``0..n_vertices-1``; isolated vertices count as components.
        edges: integer array of shape ``(2, m)``, one column per edge, in any order and orientation; repeated
            edges and self-loops are ignored (the complex is built on the set of undirected edges).
        max_dim: highest homology dimension wanted (simplices up to ``max_dim + 1`` are built).
        collapse: the fast route (Ripser up to ``max_dim=1``, else edge collapse before the expansion);
            ``False`` is the straightforward route.
        n_jobs: threads for the components (``None`` or ``1``: serial; ``-1``: one per CPU core).

    Raises:
        ValueError: edges of another shape or dtype, a vertex outside ``0..n_vertices-1``, a bad ``max_dim``
            or ``n_jobs`` (gudhi's Ripser would crash the process on an out-of-range vertex).
    """
    check_max_dim(max_dim)
    check_jobs(n_jobs)
    edges = simple_edges(n_vertices, check_graph(n_vertices, edges))
    return simple_flag_betti(int(n_vertices), edges, max_dim, collapse=collapse, n_jobs=n_jobs)


def simple_edges(n_vertices: int, edges: np.ndarray) -> np.ndarray:
    """The set of undirected edges ``i < j`` in ``edges`` (``(2, m)`` ``int64``), self-loops and repeats dropped.

    Ripser counts phantom loops for a repeated edge or a self-loop, so every edge list is reduced to this form
    first.  Edges already in it, sorted (what :func:`~lightning_topo.topology.graph.radius_edges` returns), pass
    in one linear check; others are sorted once.

    Example:
        >>> simple_edges(3, np.array([[1, 0, 2, 2], [0, 1, 1, 2]])).tolist()  # 1-0 twice, 2-1, a loop at 2
        [[0, 1], [1, 2]]
    """
    low, high = np.minimum(edges[0], edges[1]), np.maximum(edges[0], edges[1])
    keys = low * max(int(n_vertices), 1) + high
    if bool(np.all(edges[0] < edges[1])) and bool(np.all(keys[1:] > keys[:-1])):
        return edges
    keys = np.unique(keys[low < high])
    return np.vstack([keys // n_vertices, keys % n_vertices]) if keys.size else np.empty((2, 0), dtype=np.int64)


def simple_flag_betti(
    n_vertices: int, edges: np.ndarray, max_dim: int, *, collapse: bool = True, n_jobs: int | None = None
) -> tuple[int, ...]:
    """:func:`flag_complex_betti` without its checks, for callers that built the edges themselves: ``edges``
    must be ``(2, m)`` ``int64`` pairs ``i < j`` in ``0..n_vertices-1``, no pair twice (what
    :func:`~lightning_topo.topology.graph.hop_edges` and
    :func:`~lightning_topo.topology.reduction.reduced_hop_graph` return), in any order.

    Example:
        >>> simple_flag_betti(4, np.array([[0, 1, 2, 0], [1, 2, 3, 3]]), max_dim=1)
        (1, 1)
    """
    workers = (os.cpu_count() or 1) if n_jobs == -1 else max(1, n_jobs or 1)
    if collapse and max_dim == 1 and workers == 1 and _ripser_sparse is not None:
        # serial anyway: one Ripser call for the whole graph (components and trees cost it nothing)
        return tuple(_ripser_betti(n_vertices, edges, max_dim))
    graph = sp.coo_matrix((np.ones(edges.shape[1], dtype=bool), (edges[0], edges[1])), shape=(n_vertices,) * 2)
    n_components, component = connected_components(graph, directed=False)
    if max_dim == 0:
        return (int(n_components),)
    if not collapse:  # the straightforward route: one simplex tree for the whole graph
        return tuple(int(b) for b in _component_betti(n_vertices, edges, max_dim, collapse=False))
    sizes = np.bincount(component, minlength=n_components)
    edge_component = component[edges[0]]
    # A component with fewer edges than vertices is a tree (|E| = |V| - 1): contractible.
    edge_counts = np.bincount(edge_component, minlength=n_components)
    cyclic = np.flatnonzero(edge_counts >= sizes)
    local_index = np.empty(n_vertices, dtype=np.int64)
    for c in cyclic:
        local_index[component == c] = np.arange(sizes[c])

    def one(c: int) -> list[int]:
        sub = edges[:, edge_component == c]
        return _component_betti(int(sizes[c]), local_index[sub], max_dim, collapse=True)

    if workers > 1 and len(cyclic) > 1:
        with ThreadPoolExecutor(max_workers=min(workers, len(cyclic))) as pool:
            parts = list(pool.map(one, cyclic))
    else:
        parts = [one(c) for c in cyclic]
    higher = np.sum([p[1:] for p in parts], axis=0) if parts else np.zeros(max_dim, dtype=int)
    return (int(n_components), *(int(b) for b in higher))
