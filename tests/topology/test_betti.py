"""The topology core: known shapes give known Betti numbers, an independent route agrees, bad input fails clearly."""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest
import torch
from helpers.processes import run_child
from ripser import ripser
from scipy.sparse.csgraph import shortest_path

from lightning_topo.topology import (
    betti_numbers,
    betti_numbers_per_class,
    calibrate_k,
    flag_complex_betti,
    hop_edges,
    knn_graph,
    knn_indices,
)


# ---------------------------------------------------------------- evenly sampled shapes (as the protocol needs)
def circle(rng: np.random.Generator, n: int, centre=(0.0, 0.0), radius: float = 1.0, noise: float = 0.02) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False) + rng.uniform(0, 0.6 * np.pi / n, n)
    pts = np.stack([centre[0] + radius * np.cos(t), centre[1] + radius * np.sin(t)], axis=1)
    return pts + noise * rng.normal(size=pts.shape)


def figure_eight(rng: np.random.Generator, n: int, noise: float = 0.01) -> np.ndarray:
    """The lemniscate of Gerono (sin t, sin t cos t), resampled evenly by arc length."""
    t = np.linspace(0, 2 * np.pi, 20000, endpoint=False)
    curve = np.stack([np.sin(t), np.sin(t) * np.cos(t)], axis=1)
    seg = np.linalg.norm(np.diff(np.vstack([curve, curve[:1]]), axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)[:-1]])
    target = np.linspace(0, seg.sum(), n, endpoint=False) + rng.uniform(0, 0.3 * seg.sum() / n, n)
    return curve[np.searchsorted(arc, target) % len(curve)] + noise * rng.normal(size=(n, 2))


def torus(rng: np.random.Generator, nu: int = 60, nv: int = 20, ring: float = 2.0, tube: float = 0.7) -> np.ndarray:
    u, v = np.meshgrid(np.arange(nu) * 2 * np.pi / nu, np.arange(nv) * 2 * np.pi / nv, indexing="ij")
    u = u.ravel() + rng.uniform(-0.2, 0.2, u.size) * 2 * np.pi / nu
    v = v.ravel() + rng.uniform(-0.2, 0.2, v.size) * 2 * np.pi / nv
    return np.stack([(ring + tube * np.cos(v)) * np.cos(u), (ring + tube * np.cos(v)) * np.sin(u), tube * np.sin(v)], 1)


def sphere(rng: np.random.Generator, n: int = 600, noise: float = 0.01) -> np.ndarray:
    """A Fibonacci lattice on the unit sphere."""
    i = np.arange(n) + 0.5
    phi, theta = np.arccos(1 - 2 * i / n), np.pi * (1 + 5**0.5) * i
    pts = np.stack([np.cos(theta) * np.sin(phi), np.sin(theta) * np.sin(phi), np.cos(phi)], axis=1)
    return pts + noise * rng.normal(size=pts.shape)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


# ---------------------------------------------------------------- known shapes
def test_noisy_circle_has_one_component_and_one_loop(rng):
    assert betti_numbers(circle(rng, 200), k=6) == (1, 1)


def test_two_disjoint_circles(rng):
    pts = np.vstack([circle(rng, 200), circle(rng, 200, centre=(3.0, 0.0))])
    assert betti_numbers(pts, k=6) == (2, 2)


def test_figure_eight(rng):
    assert betti_numbers(figure_eight(rng, 400), k=6) == (1, 2)


def test_torus_up_to_dimension_two(rng):
    assert betti_numbers(torus(rng), k=10, max_dim=2) == (1, 2, 1)


def test_sphere_encloses_a_void(rng):
    assert betti_numbers(sphere(rng), k=8, max_dim=2) == (1, 0, 1)


def test_euclidean_metric_is_the_rips_complex_at_that_radius(rng):
    pts = circle(rng, 200, noise=0.0)
    assert betti_numbers(pts, metric="euclidean", scale=0.1) == (1, 1)  # neighbours are ~0.03 apart
    assert betti_numbers(pts, metric="euclidean", scale=0.01) == (200, 0)  # no edge at all
    assert betti_numbers(pts, metric="euclidean", scale=2.5) == (1, 0)  # the disk is filled in


def test_torch_tensors_are_accepted(rng):
    assert betti_numbers(torch.from_numpy(circle(rng, 200)).float(), k=6) == (1, 1)


def test_duplicate_points_are_dropped_first(rng):
    pts = circle(rng, 200)
    assert betti_numbers(np.vstack([pts, pts, pts]), k=6) == betti_numbers(pts, k=6) == (1, 1)


def test_fewer_unique_points_than_k_gives_the_complete_graph():
    pts = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]] * 10)  # 30 points, 3 unique, k=14
    assert betti_numbers(pts, k=14) == (1, 0)


def test_all_identical_points_give_a_single_component():
    assert betti_numbers(np.ones((50, 4)), k=5, max_dim=2) == (1, 0, 0)


# ---------------------------------------------------------------- an independent computation agrees
@pytest.mark.parametrize("seed", range(6))
def test_ripser_on_the_hop_distance_matrix_agrees(seed):
    gen = np.random.default_rng(seed)
    n, k = int(gen.integers(60, 160)), int(gen.integers(4, 9))
    pts = gen.normal(size=(n, 2)) if seed % 2 else circle(gen, n, noise=0.08)
    hops = shortest_path(knn_graph(pts, k).astype(float), unweighted=True, directed=False)
    hops[np.isinf(hops)] = 1e9
    diagrams = ripser(hops, distance_matrix=True, maxdim=1, thresh=2.5)["dgms"]
    expected = tuple(int(np.sum(np.isinf(d[:, 1]))) for d in diagrams)
    assert betti_numbers(pts, k=k, max_dim=1) == expected


def test_edge_collapse_and_the_straightforward_route_agree():
    gen = np.random.default_rng(1)
    for _ in range(10):
        n, k = int(gen.integers(50, 200)), int(gen.integers(3, 9))
        pts = gen.normal(size=(n, 3))
        edges = hop_edges(knn_graph(pts, k), hops=2)
        fast = flag_complex_betti(n, edges, max_dim=2, collapse=True, n_jobs=2)
        assert fast == flag_complex_betti(n, edges, max_dim=2, collapse=False)


# ---------------------------------------------------------------- the protocol's conventions
def test_k_counts_the_point_itself_and_graph_is_symmetrised():
    pts = np.array([[0.0], [1.0], [3.0], [7.0]])
    idx = knn_indices(pts, 2)
    assert idx[:, 0].tolist() == [0, 1, 2, 3]  # each point is its own first neighbour
    adj = knn_graph(pts, 2).toarray()
    assert (adj == adj.T).all() and not adj.diagonal().any()
    assert adj[2, 3] and adj[3, 2]  # 7 lists 3, so 3 ~ 7 although 3 lists 1


def test_high_dimensional_knn_matches_the_kd_tree():
    gen = np.random.default_rng(2)
    pts = gen.normal(size=(300, 40))
    from scipy.spatial import cKDTree

    _, expected = cKDTree(pts).query(pts, k=7)
    assert (knn_indices(pts, 7) == expected).all()


def test_hop_edges_reach_exactly_two_hops():
    path = np.array([[float(i)] for i in range(6)])  # a path graph 0-1-2-3-4-5 at k=2
    edges = hop_edges(knn_graph(path, 2), hops=2)
    pairs = {tuple(e) for e in edges.T.tolist()}
    assert (0, 2) in pairs and (0, 1) in pairs and (0, 3) not in pairs


# ---------------------------------------------------------------- helpers
def test_per_class_helper_subsamples_with_a_seed(rng):
    pts = np.vstack([circle(rng, 300), circle(rng, 300, centre=(5.0, 0.0))])
    labels = np.repeat([0, 1], 300)
    full = betti_numbers_per_class(pts, labels, k=6)
    assert full == {0: (1, 1), 1: (1, 1)}
    a = betti_numbers_per_class(pts, labels, k=6, max_points=250, seed=3)
    b = betti_numbers_per_class(pts, labels, k=6, max_points=250, seed=3)
    assert a == b
    with pytest.raises(ValueError, match="no points"):
        betti_numbers_per_class(pts, labels, k=6, classes=[2])
    with pytest.raises(ValueError, match="labels"):
        betti_numbers_per_class(pts, labels[:-1], k=6)


def test_calibrate_k_finds_the_smallest_matching_k(rng):
    pts = circle(rng, 200, noise=0.05)
    k = calibrate_k(pts, (1, 1), k_range=range(2, 30))
    assert betti_numbers(pts, k=k) == (1, 1)
    assert all(betti_numbers(pts, k=j) != (1, 1) for j in range(2, k))
    with pytest.raises(ValueError, match="no k in the range"):
        calibrate_k(pts, (7, 7), k_range=range(3, 6))


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("points", "options", "message"),
    [
        (np.array([[0.0, np.nan], [1.0, 1.0], [2.0, 2.0]]), {"k": 2}, "NaN or Inf"),
        (np.array([[0.0, np.inf], [1.0, 1.0], [2.0, 2.0]]), {"k": 2}, "NaN or Inf"),
        (np.zeros((1, 3)), {"k": 2}, "at least 2 points"),
        (np.zeros((10, 2)), {"k": 10}, "k=10 neighbours needs more points"),
        (np.zeros(10), {"k": 2}, "2-D array"),
        (np.zeros((4, 3, 2)), {"k": 2}, "reshape"),
        (np.zeros((10, 2)), {"k": 1}, "k must be an integer >= 2"),
        (np.zeros((10, 2)), {"k": 3, "metric": "cosine"}, "unknown metric"),
        (np.zeros((10, 2)), {"k": 3, "scale": -1.0}, "scale must be a positive"),
        (np.zeros((10, 2)), {"k": 3, "max_dim": -1}, "max_dim"),
    ],
)
def test_bad_input_raises_a_clear_value_error(points, options, message):
    with pytest.raises(ValueError, match=message):
        betti_numbers(points, **options)


def test_the_core_packages_import_no_lightning():
    import ast
    from pathlib import Path

    import lightning_topo

    root = Path(lightning_topo.__file__).parent
    for package in ("topology", "monitoring", "pruning"):
        for source in (root / package).glob("*.py"):
            for node in ast.walk(ast.parse(source.read_text())):
                names = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                    if isinstance(node, ast.ImportFrom)
                    else []
                )
                assert not any(n == "lightning" or n.startswith(("lightning.", "pytorch_lightning")) for n in names), (
                    f"{source} imports {names}"
                )


def test_importing_the_topology_core_loads_no_lightning():
    # a fresh interpreter: the package __init__ must not drag Lightning in behind the pure core
    script = (
        "import sys, lightning_topo.topology, lightning_topo.monitoring, lightning_topo.pruning, lightning_topo.data;"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('lightning', 'pytorch_lightning'));"
        "assert not loaded, loaded;"
        "from lightning_topo import BettiMonitor, betti_numbers;"  # the public API still resolves, lazily
        "assert 'lightning' in sys.modules and BettiMonitor.__name__ == 'BettiMonitor'"
    )
    run_child([sys.executable, "-c", script], check=True)


# ---------------------------------------------------------------- the fast routes of flag_complex_betti (issue 20)
def hop_graphs(seed: int):
    """Seeded 2-hop graphs of k-NN graphs: circles, noise in 2-D and 3-D, a ReLU cloud; several components."""
    gen = np.random.default_rng(seed)
    for _ in range(6):
        n, k = int(gen.integers(40, 220)), int(gen.integers(3, 10))
        kind = int(gen.integers(0, 4))
        if kind == 0:
            pts = np.vstack([circle(gen, n // 2, (0, 0)), circle(gen, n - n // 2, (4, 0), 1.5)])
        elif kind == 3:
            pts = np.maximum(gen.uniform(-1, 1, size=(n, 2)) @ gen.normal(size=(2, 15)) + gen.normal(size=15), 0)
        else:
            pts = gen.normal(size=(n, kind + 1))
        yield n, hop_edges(knn_graph(pts, k), hops=int(gen.integers(1, 3)))


@pytest.mark.parametrize("seed", range(4))
def test_every_fast_route_agrees_with_the_straightforward_one(seed, monkeypatch):
    from lightning_topo.topology import flag

    assert flag._ripser_sparse is not None and flag._collapse_edges is not None  # this gudhi has both
    for n, edges in hop_graphs(seed):
        for max_dim in (1, 2):
            expected = flag_complex_betti(n, edges, max_dim=max_dim, collapse=False)
            assert flag_complex_betti(n, edges, max_dim=max_dim) == expected  # Ripser (1) / array collapse (2)
            assert flag_complex_betti(n, edges, max_dim=max_dim, n_jobs=2) == expected
            with monkeypatch.context() as patch:
                patch.setattr(flag, "_ripser_sparse", None)  # array collapse at max_dim 1 too
                assert flag_complex_betti(n, edges, max_dim=max_dim) == expected
                patch.setattr(flag, "_collapse_edges", None)  # the simplex tree's own collapse (older gudhi)
                assert flag_complex_betti(n, edges, max_dim=max_dim) == expected


def test_fast_routes_on_small_and_edge_free_graphs():
    square = np.array([[0, 1, 2, 0], [1, 2, 3, 3]])
    assert flag_complex_betti(4, square, max_dim=1) == (1, 1)
    filled = np.array([[0, 1, 2, 0, 0, 1], [1, 2, 3, 3, 2, 3]])  # K4: a solid tetrahedron
    assert flag_complex_betti(4, filled, max_dim=2) == (1, 0, 0)
    assert flag_complex_betti(5, np.zeros((2, 0), dtype=np.int64), max_dim=1) == (5, 0)
    octahedron = np.array([(i, j) for i in range(6) for j in range(i + 1, 6) if j != i + 3 or i >= 3]).T
    assert flag_complex_betti(6, octahedron, max_dim=2) == (1, 0, 1)
    assert flag_complex_betti(6, octahedron, max_dim=1) == (1, 0)


def test_euclidean_lists_made_by_hand_are_checked_and_simplified():
    from lightning_topo.topology import NeighbourLists, betti_from_neighbours

    square = np.array([[0, 1, 2, 0, 1], [1, 2, 3, 3, 0]])  # 0-1 twice, once each way
    assert betti_from_neighbours(NeighbourLists(4, 4, "euclidean", None, square)) == (1, 1)
    beyond = NeighbourLists(4, 3, "euclidean", None, square)  # vertex 3 is not among the 3 distinct points
    with pytest.raises(ValueError, match=r"edges name vertex 3, but the vertices are 0\.\.2 \(n_vertices=3\)"):
        betti_from_neighbours(beyond)
    with pytest.raises(ValueError, match="^n_jobs must be"):
        betti_from_neighbours(NeighbourLists(4, 4, "euclidean", None, square), n_jobs=0)


@pytest.mark.parametrize("bad", [-1, 4])
def test_knn_lists_made_by_hand_that_name_a_missing_point_are_refused(bad):
    # scipy's sparse constructor takes such an index unchecked: -1 corrupted the heap (the process aborted)
    from lightning_topo.topology import NeighbourLists, betti_from_neighbours

    indices = np.array([[0, 1, 3], [1, 0, 2], [2, 1, 3], [3, 0, bad]])
    message = f"knn lists name point {bad}, but they hold n_unique=4 points (0..3); make the lists with neighbour_lists"
    for collapse in (True, False):
        with pytest.raises(ValueError, match=re.escape(message)):
            betti_from_neighbours(NeighbourLists(4, 4, "knn", indices, None), collapse=collapse)
    with pytest.raises(ValueError, match=re.escape("knn lists need integer indices, got dtype float64")):
        betti_from_neighbours(NeighbourLists(4, 4, "knn", indices.astype(float), None))
    square = np.array([[0, 1, 3], [1, 0, 2], [2, 1, 3], [3, 0, 2]])
    assert betti_from_neighbours(NeighbourLists(4, 4, "knn", square, None), scale=1.5) == (1, 1)
