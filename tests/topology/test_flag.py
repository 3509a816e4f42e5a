"""Exact Betti numbers of small flag complexes on every route (lightning_topo.topology.flag)."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest

from lightning_topo.topology import flag
from lightning_topo.topology.flag import _collapsed_edges, _component_betti, _ripser_betti, flag_complex_betti


def _edges(pairs, offset: int = 0) -> np.ndarray:
    return (np.array(pairs, dtype=np.int64).T + offset).reshape(2, -1)


SQUARE = [(0, 1), (1, 2), (2, 3), (0, 3)]
TRIANGLE = [(0, 1), (1, 2), (0, 2)]
OCTAHEDRON = [(i, j) for i, j in itertools.combinations(range(6), 2) if j - i != 3]  # a 2-sphere
ROUTES = [
    {"collapse": True, "n_jobs": None},
    {"collapse": True, "n_jobs": 1},
    {"collapse": True, "n_jobs": 2},
    {"collapse": True, "n_jobs": -1},
    {"collapse": False, "n_jobs": None},
]


@pytest.mark.parametrize("route", ROUTES)
def test_small_graphs_exact(route):
    assert flag_complex_betti(3, np.empty((2, 0), dtype=np.int64), **route) == (3, 0)
    assert flag_complex_betti(3, _edges(TRIANGLE), **route) == (1, 0)
    assert flag_complex_betti(4, _edges(SQUARE), **route) == (1, 1)
    assert flag_complex_betti(4, _edges(SQUARE), max_dim=0, **route) == (1,)
    assert flag_complex_betti(4, _edges(SQUARE), max_dim=3, **route) == (1, 1, 0, 0)
    assert flag_complex_betti(6, _edges(OCTAHEDRON), max_dim=2, **route) == (1, 0, 1)
    assert flag_complex_betti(6, _edges(OCTAHEDRON), max_dim=1, **route) == (1, 0)


@pytest.mark.parametrize("route", ROUTES)
def test_components_add_up(route):
    # two squares, a triangle, a path (a tree) and an isolated vertex: 5 components, 2 loops
    pairs = SQUARE + [(a + 4, b + 4) for a, b in SQUARE] + [(a + 8, b + 8) for a, b in TRIANGLE] + [(11, 12), (12, 13)]
    assert flag_complex_betti(15, _edges(pairs), **route) == (5, 2)
    assert flag_complex_betti(15, _edges(pairs), max_dim=2, **route) == (5, 2, 0)
    sphere_and_square = OCTAHEDRON + [(a + 6, b + 6) for a, b in SQUARE]
    assert flag_complex_betti(10, _edges(sphere_and_square), max_dim=2, **route) == (2, 1, 1)
    assert all(type(b) is int for b in flag_complex_betti(10, _edges(sphere_and_square), max_dim=2, **route))


def test_edges_as_a_list_of_pairs_rows():
    assert flag_complex_betti(4, [[0, 1, 2, 0], [1, 2, 3, 3]], n_jobs=2) == (1, 1)


def test_ripser_betti_pads_to_max_dim():
    assert _ripser_betti(4, _edges(SQUARE), 1) == [1, 1]
    assert _ripser_betti(4, _edges(SQUARE), 0) == [1]
    assert _ripser_betti(3, np.empty((2, 0), dtype=np.int64), 1) == [3, 0]


@pytest.mark.parametrize("collapse", [True, False])
def test_component_betti_above_dimension_one(collapse):
    assert _component_betti(6, _edges(OCTAHEDRON), 2, collapse) == [1, 0, 1]
    assert _component_betti(4, _edges(SQUARE), 3, collapse) == [1, 1, 0, 0]
    assert _component_betti(1, np.empty((2, 0)), 2, collapse) == [1, 0, 0]
    assert _component_betti(3, _edges(TRIANGLE), 1, collapse) == [1, 0]


def test_collapsed_edges_keep_the_homotopy_type_and_shrink():
    cone = SQUARE + [(i, 4) for i in range(4)]  # a cone over the square: contractible, collapses
    out = _collapsed_edges(_edges(cone))
    assert out.shape[0] == 2 and out.shape[1] < len(cone)
    assert out.shape[1] == 0 or flag_complex_betti(5, out, collapse=False) == (1, 0)
    square = _collapsed_edges(_edges(SQUARE))  # nothing to collapse
    assert sorted(map(tuple, square.T.tolist())) == sorted(SQUARE)


def test_collapse_rounds_constant():
    assert flag._MAX_COLLAPSE_ROUNDS == 16


# ---------------------------------------------------------------- edge lists as users write them


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("bad_vertex", [-1, 4, 40])
def test_a_vertex_outside_the_graph_is_a_clear_error_not_a_crash(route, bad_vertex):
    # gudhi's Ripser reads out of bounds (a segfault, the whole process lost) on such an index
    edges = _edges(SQUARE[:3] + [(0, bad_vertex)])
    message = f"edges name vertex {bad_vertex}, but the vertices are 0..3 (n_vertices=4); renumber the edges from 0"
    with pytest.raises(ValueError, match=re.escape(message)):
        flag_complex_betti(4, edges, **route)
    with pytest.raises(ValueError, match=re.escape(message)):
        flag_complex_betti(4, edges, max_dim=2, **route)


def test_one_row_per_edge_is_named_and_the_fix_given():
    # reshaped, these four rows would read as other edges: a silent (2, 2) instead of (1, 1)
    rows = np.array(SQUARE)
    with pytest.raises(ValueError, match=re.escape("got shape (4, 2); these look like one row per edge: pass edges.T")):
        flag_complex_betti(4, rows)
    assert flag_complex_betti(4, rows.T) == (1, 1)


@pytest.mark.parametrize(
    ("edges", "message"),
    [
        ([0, 1, 2], "edges must have shape (2, m), one column per edge, got shape (3,)"),
        (np.zeros((2, 2, 2), dtype=int), "edges must have shape (2, m), one column per edge, got shape (2, 2, 2)"),
        ([[0.0, 1.0], [1.0, 2.0]], "edges must hold integer vertex indices, got dtype float64; if they are whole"),
        ([[0, np.nan], [1, 2]], "edges must hold integer vertex indices, got dtype float64"),
        ([[True], [False]], "edges must hold integer vertex indices, got dtype bool"),
    ],
)
def test_edges_of_another_shape_or_dtype_are_refused(edges, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        flag_complex_betti(4, edges)


@pytest.mark.parametrize(("n_vertices", "shown"), [(-1, "-1"), (4.0, "4.0"), (True, "True"), ("4", "'4'")])
def test_a_bad_vertex_count_is_refused(n_vertices, shown):
    with pytest.raises(ValueError, match=re.escape(f"n_vertices must be a non-negative integer, got {shown}")):
        flag_complex_betti(n_vertices, _edges(SQUARE))


@pytest.mark.parametrize(("keyword", "value"), [("max_dim", -1), ("max_dim", True), ("n_jobs", 0), ("n_jobs", -2)])
def test_bad_options_are_refused_on_every_route(keyword, value):
    with pytest.raises(ValueError, match=f"^{keyword} must be"):
        flag_complex_betti(4, _edges(SQUARE), **{keyword: value})


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("max_dim", [1, 2])
def test_repeats_reversed_edges_and_self_loops_are_the_same_graph(route, max_dim):
    # Ripser alone counts a phantom loop for each repeated edge or self-loop: (1, 2) for the square below
    messy = _edges(SQUARE + [(1, 0), (3, 0), (2, 2), (0, 1)])
    assert flag_complex_betti(4, messy, max_dim=max_dim, **route) == (1, 1) + (0,) * (max_dim - 1)
    sphere = _edges([(j, i) for i, j in OCTAHEDRON] + OCTAHEDRON + [(5, 5)])
    assert flag_complex_betti(6, sphere, max_dim=max_dim, **route) == ((1, 0) if max_dim == 1 else (1, 0, 1))


def test_empty_graphs():
    assert flag_complex_betti(0, np.empty((2, 0), dtype=np.int64)) == (0, 0)
    assert flag_complex_betti(3, [], max_dim=2) == (3, 0, 0)
    assert flag_complex_betti(1, [[0], [0]]) == (1, 0)  # a self-loop only: one vertex


def test_simple_edges_orients_sorts_and_drops_repeats_and_loops():
    messy = np.array([[3, 1, 0, 2, 2, 1], [0, 0, 1, 2, 1, 2]])
    assert flag.simple_edges(4, messy).tolist() == [[0, 0, 1], [1, 3, 2]]
    simple = np.array([[0, 0, 1], [1, 3, 2]])
    assert flag.simple_edges(4, simple) is simple  # sorted already: one linear check, no copy
    unsorted = np.array([[1, 0], [2, 1]])
    assert flag.simple_edges(4, unsorted).tolist() == [[0, 1], [1, 2]]
    assert flag.simple_edges(2, np.array([[1], [1]])).shape == (2, 0)


@pytest.mark.parametrize("seed", range(4))
def test_the_edges_the_core_builds_need_no_simplifying(seed):
    # simple_flag_betti trusts hop_edges and reduced_hop_graph: pairs i < j, none twice
    from lightning_topo.topology.graph import hop_edges, knn_graph, knn_indices
    from lightning_topo.topology.reduction import reduced_hop_graph

    points = np.random.default_rng(seed).normal(size=(300, 3))
    lists = knn_indices(points, 8)
    for n, edges in [
        (300, hop_edges(knn_graph(points, 8), 2)),
        reduced_hop_graph(lists, 2),
        reduced_hop_graph(lists, 3),
    ]:
        assert edges.dtype == np.int64 and edges.shape[1] > 0
        assert bool(np.all(edges[0] < edges[1])) and edges.max() < n
        assert len(np.unique(edges[0] * n + edges[1])) == edges.shape[1]
        assert flag.simple_flag_betti(n, edges, 1) == flag_complex_betti(n, edges[:, ::-1])
