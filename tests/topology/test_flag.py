"""Exact Betti numbers of small flag complexes on every route (lightning_topo.topology.flag)."""

from __future__ import annotations

import itertools

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
