"""TwoNN intrinsic dimension (issue #22): known dimensions, the reference implementation, routes and bad input.

Accuracy at N = 2,000 points.  TwoNN's statistical error is about that of its maximum-likelihood form, whose
relative standard deviation is ``1 / sqrt(N)`` (2.2 %); over 10 seeds of each cloud below the linear fit's spread was
2.5-3 %, so 12 % (four of those) is the two-sided allowance for sampling noise.  On top of it come the known
biases, all downward (Facco et al. 2017, Fig. 2 and the hypercube discussion; Ansuini et al. 2019 use it the same
way): a cube's faces cut its boundary points' neighbourhoods, which grows with ``d`` (observed means: -6 % at d=5,
-16 % at d=10, worst of 10 seeds -12.5 % and -21 %), and at d=10 curvature and the thin 2,000-point sample bias the
sphere too (mean -6.5 %, worst -11 %).  So the lower bounds are loosened by those biases plus margin, the upper
bound stays at +12 %.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from lightning_topo.topology import intrinsic_dimension, two_nearest_distances, twonn_from_distances

N_POINTS = 2000
SEEDS = (0, 1, 2)

#: (manifold, d) -> (lowest, highest) relative error ``estimate / d - 1`` allowed; see the module docstring
TOLERANCE = {
    ("cube", 2): (-0.12, 0.12),
    ("cube", 5): (-0.20, 0.12),  # boundary bias: worst of 10 seeds -12.5 %
    ("cube", 10): (-0.30, 0.12),  # boundary bias: mean -16 %, worst of 10 seeds -21 %
    ("sphere", 2): (-0.12, 0.12),
    ("sphere", 5): (-0.12, 0.12),
    ("sphere", 10): (-0.20, 0.12),  # curvature and sparse sampling: mean -6.5 %, worst of 10 seeds -11 %
}
AMBIENT = {2: 50, 5: 100, 10: 200}


def sample(manifold: str, d: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` uniform points of the unit cube ``[0, 1]^d`` or of the sphere ``S^d`` in ``R^(d+1)``."""
    if manifold == "cube":
        return rng.random((n, d))
    g = rng.standard_normal((n, d + 1))
    return g / np.linalg.norm(g, axis=1, keepdims=True)


def embed(y: np.ndarray, ambient: int, how: str, rng: np.random.Generator) -> np.ndarray:
    """``y`` in ``R^ambient``: a random orthonormal map, or a random linear map followed by ``tanh``.

    ``tanh`` of a full-rank linear map is a smooth embedding (``tanh`` is strictly increasing, so the map stays
    injective and its differential full-rank); its curvature is modest since the arguments are of order one.
    """
    m = y.shape[1]
    if how == "linear":
        q, _ = np.linalg.qr(rng.standard_normal((ambient, m)))
        return y @ q.T
    a = rng.standard_normal((m, ambient)) / np.sqrt(m)
    return np.tanh((y - y.mean(axis=0)) @ a)


def cloud(manifold: str, d: int, how: str, seed: int, n: int = N_POINTS) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return embed(sample(manifold, d, n, rng), AMBIENT[d], how, rng)


@pytest.mark.parametrize("how", ["linear", "tanh"])
@pytest.mark.parametrize("manifold,d", list(TOLERANCE))
def test_known_dimension_within_twonn_accuracy(manifold, d, how):
    low, high = TOLERANCE[manifold, d]
    for seed in SEEDS:
        r1, r2 = two_nearest_distances(cloud(manifold, d, how, seed))
        for method in ("linear", "mle"):
            error = twonn_from_distances(r1, r2, method=method) / d - 1
            assert low <= error <= high, (manifold, d, how, seed, method, error)


# -- the reference: scikit-dimension's TwoNN -----------------------------------------------------------------------
# Same conventions as ours, and as DADApy's compute_id_2NN: the smallest int(N (1 - discard_fraction)) ratios,
# F_i = i / N, a least-squares line through the origin; "mle": the censored maximum likelihood, which at
# discard_fraction=0 is DADApy's (N - 1) / sum log mu.  It finds neighbours its own way (a scikit-learn k-NN search,
# or sorted rows of scikit-learn's pairwise distances above 25 dimensions), so the distances differ from ours by
# rounding (~1e-15 relative) only; 1e-6 leaves room for a near-tie of two ratios to swap, nothing more.

REFERENCE_CLOUDS = [("cube", 2, "tanh"), ("sphere", 5, "linear"), ("cube", 10, "tanh")]


@pytest.mark.filterwarnings("ignore:divide by zero encountered in log")  # skdim's unused fit values at discard 0
@pytest.mark.parametrize("manifold,d,how", REFERENCE_CLOUDS)
def test_agrees_with_scikit_dimension(manifold, d, how):
    skdim = pytest.importorskip("skdim")
    x = cloud(manifold, d, how, seed=7, n=1000)
    for discard in (0.1, 0.25):
        ours = intrinsic_dimension(x, discard_fraction=discard)
        theirs = skdim.id.TwoNN(discard_fraction=discard).fit(x).dimension_
        assert ours == pytest.approx(theirs, rel=1e-6)
    r1, r2 = two_nearest_distances(x)
    distances = np.stack([r1, r2], axis=1)
    for discard in (0.0, 0.1, 0.3):  # the estimator alone, on the same distances: rounding only
        for method in ("linear", "mle") if discard else ("mle",):
            ours = twonn_from_distances(r1, r2, discard_fraction=discard, method=method)
            theirs = skdim.id.TwoNN(discard_fraction=discard, dist=True, method=method).fit(distances).dimension_
            assert ours == pytest.approx(theirs, rel=1e-12), (discard, method)


def test_mle_without_discarding_is_dadapys_normalisation():
    """DADApy's ``compute_id_2NN(algorithm="ml")``: ``(N - 1) / sum log mu`` over every ratio."""
    r1, r2 = two_nearest_distances(cloud("sphere", 2, "linear", seed=3, n=500))
    expected = (len(r1) - 1) / np.log(r2 / r1).sum()
    assert twonn_from_distances(r1, r2, discard_fraction=0, method="mle") == pytest.approx(expected, rel=1e-13)


def test_linear_fit_is_the_least_squares_slope_through_the_origin():
    r1 = np.ones(10)
    r2 = np.exp(np.arange(10.0, 0.0, -1.0) / 7)  # unsorted on purpose
    x = np.sort(np.log(r2))[:9]
    y = -np.log(1 - np.arange(1, 10) / 10)  # F_i = i / N, i = 1..9 of N = 10
    assert twonn_from_distances(r1, r2) == pytest.approx(x @ y / (x @ x), rel=1e-14)


# -- routes and duplicates --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ambient_dim", [8, 60])  # a k-d tree on the numpy side, then centred Gram blocks on both
def test_numpy_and_torch_give_the_same_dimension(ambient_dim):
    rng = np.random.default_rng(5)
    x = sample("sphere", 4, 1000, rng) @ np.linalg.qr(rng.standard_normal((ambient_dim, 5)))[0].T
    expected = intrinsic_dimension(x)
    for tensor in (torch.from_numpy(x), torch.from_numpy(x).float()):
        assert intrinsic_dimension(tensor) == pytest.approx(
            expected, rel=1e-5 if tensor.dtype == torch.float32 else 1e-9
        )
    r1, r2 = two_nearest_distances(x)
    for method in ("linear", "mle"):
        on_numpy = twonn_from_distances(r1, r2, method=method)
        on_torch = twonn_from_distances(torch.from_numpy(r1), torch.from_numpy(r2), method=method)
        assert on_torch == pytest.approx(on_numpy, rel=1e-12)  # the same float64 arithmetic, summed in another order
        assert twonn_from_distances(r1, torch.from_numpy(r2), method=method) == on_torch  # one tensor: the torch route
    # small blocks change nothing but the matrix products' rounding
    small = two_nearest_distances(torch.from_numpy(x), block_bytes=8 * len(x) * 100)
    whole = two_nearest_distances(torch.from_numpy(x))
    for a, b in zip(small, whole):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=0)


def test_two_nearest_distances_types_and_values():
    r1, r2 = two_nearest_distances(np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 1.0], [0.0, 1.0]]))
    assert isinstance(r1, np.ndarray) and r1.dtype == np.float64
    np.testing.assert_allclose(r1, [1.0, 3.0, 1.0])  # one entry per distinct point, in order of first occurrence
    np.testing.assert_allclose(r2, [3.0, math.sqrt(10), math.sqrt(10)])
    t1, t2 = two_nearest_distances(torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 1.0], [0.0, 1.0]]))
    assert isinstance(t1, torch.Tensor) and t1.dtype == torch.float64
    np.testing.assert_allclose(t1.numpy(), r1, rtol=1e-15)
    np.testing.assert_allclose(t2.numpy(), r2, rtol=1e-15)


def test_duplicates_are_dropped():
    x = cloud("sphere", 2, "tanh", seed=4, n=800)
    doubled = np.repeat(x, 2, axis=0)  # every point twice: r1 would be 0 for all of them
    assert intrinsic_dimension(doubled) == intrinsic_dimension(x)
    assert intrinsic_dimension(torch.from_numpy(doubled)) == intrinsic_dimension(torch.from_numpy(x))
    assert intrinsic_dimension(x[:, :10]) == intrinsic_dimension(np.concatenate([x[:, :10], x[:5, :10]]))  # k-d tree


def test_equidistant_neighbours_are_fine():
    """``r1 == r2`` gives ``mu = 1`` (log 0), a legal ratio: the result is finite."""
    grid = np.stack(np.meshgrid(np.arange(8.0), np.arange(8.0)), axis=-1).reshape(-1, 2)
    jitter = np.random.default_rng(0).random((64, 2)) * 0.3
    value = intrinsic_dimension(np.concatenate([grid, grid + 20 + jitter]))
    assert math.isfinite(value) and value > 0


# -- bad input --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("as_tensor", [False, True])
def test_bad_clouds_raise_clear_errors(as_tensor):
    def check(points, *words):
        points = torch.tensor(points, dtype=torch.float64) if as_tensor else np.array(points, dtype=np.float64)
        with pytest.raises(ValueError) as info:
            intrinsic_dimension(points)
        for word in words:
            assert word in str(info.value), str(info.value)

    check([[0.0, 1.0], [1.0, 0.0]], "at least 3 distinct points", "got 2 distinct of 2")
    check([[0.0], [1.0], [1.0], [0.0]], "at least 3 distinct points", "got 2 distinct of 4")
    check([[0.5, 0.5]] * 10, "constant cloud", "got 1 distinct of 10")
    check([[0.0, 0.0], [1.0, float("nan")], [2.0, 0.0], [3.0, 0.0]], "NaN or Inf", "1 of 4 points")
    check([[0.0, 0.0], [1.0, float("inf")], [2.0, 0.0], [3.0, 0.0]], "NaN or Inf")
    check([0.0, 1.0, 2.0], "2-D array")


@pytest.mark.parametrize("wrap", [np.asarray, torch.tensor])
def test_bad_distances_raise_clear_errors(wrap):
    def check(r1, r2, *words, **options):
        with pytest.raises(ValueError) as info:
            twonn_from_distances(wrap(r1), wrap(r2), **options)
        for word in words:
            assert word in str(info.value), str(info.value)

    ok = [1.0, 1.0, 1.0, 1.0]
    check([0.0, 1.0, 1.0, 1.0], [1.0, 2.0, 2.0, 2.0], "r1 = 0 for 1 of 4 points", "duplicate")
    check(ok, [2.0, float("nan"), 2.0, 2.0], "NaN or Inf")
    check(ok, [2.0, 0.5, 2.0, 2.0], "r2 < r1")
    check([1.0, -1.0, 1.0, 1.0], [2.0, 2.0, 2.0, 2.0], "negative")
    check(ok, [2.0, 3.0], "shapes (4,) and (2,)")
    check([1.0, 1.0], [2.0, 3.0], "at least 3 points")
    check(ok, ok, "infinite", "regular grid")  # every mu = 1
    check(ok, ok, "infinite", method="mle", discard_fraction=0)
    check(ok, [2.0, 3.0, 4.0, 5.0], "F = 1", "method='mle'", discard_fraction=0)
    check(ok, [2.0, 3.0, 4.0, 5.0], "unknown method", method="ols")
    check(ok, [2.0, 3.0, 4.0, 5.0], "discard_fraction must be", discard_fraction=1.0)
    check(ok, [2.0, 3.0, 4.0, 5.0], "discard_fraction must be", discard_fraction=True)
    check(ok, [2.0, 3.0, 4.0, 5.0], "fewer than 2", discard_fraction=0.6)


def test_topology_import_stays_torch_free():
    code = (
        "import sys; from lightning_topo.topology import intrinsic_dimension;"
        "import numpy as np; intrinsic_dimension(np.random.default_rng(0).random((50, 3)));"
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
