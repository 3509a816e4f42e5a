"""Exact TwoNN values, distances and messages on the numpy and torch routes (lightning_topo.topology.intrinsic)."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

from lightning_topo.topology import NeighbourLists, numpy_neighbour_lists
from lightning_topo.topology.intrinsic import (
    METHODS,
    intrinsic_dimension,
    lists_intrinsic_dimension,
    two_nearest_distances,
    twonn_from_distances,
)
from lightning_topo.topology.neighbours import neighbour_lists

LINE = np.array([[0.0], [1.0], [3.0], [6.0], [10.0], [1.0]])  # row 5 repeats row 1
R1, R2 = [1.0, 1.0, 2.0, 3.0, 4.0], [3.0, 2.0, 3.0, 4.0, 7.0]
AS = [np.asarray, torch.tensor]


def test_methods():
    assert METHODS == ("linear", "mle")


@pytest.mark.parametrize("to", AS)
def test_closed_forms(to):
    e = math.e
    # mle, nothing discarded: (N - 1) / sum log mu = 3 / 4
    assert twonn_from_distances(to([1.0] * 4), to([e] * 4), discard_fraction=0, method="mle") == pytest.approx(0.75)
    # mle, the largest censored: (n - 1) / (1 + 2 + 3 + 3) with log mu = 1, 2, 3, 4
    r2 = to([e**4, e, e**3, e**2])
    assert twonn_from_distances(to([1.0] * 4), r2, discard_fraction=0.25, method="mle") == pytest.approx(2 / 9)
    # linear through the origin, every kept log mu = 1: mean of -log(1 - i/4), i = 1..3 = log(32 / 3) / 3
    got = twonn_from_distances(to([1.0] * 4), to([e] * 4), discard_fraction=0.25)
    assert got == pytest.approx(math.log(32 / 3) / 3)
    # the default discard_fraction is 0.1: of 10 ratios 9 are kept
    ten = twonn_from_distances(to([1.0] * 10), to([e] * 10))
    assert ten == pytest.approx(sum(-math.log(1 - i / 10) for i in range(1, 10)) / 9)
    assert twonn_from_distances(to([2.0] * 4), to([2 * e] * 4), 0.25, "linear") == pytest.approx(got)


def test_torch_and_numpy_mix_and_integer_distances():
    got = twonn_from_distances(torch.tensor(R1), np.array(R2), 0.2)
    assert got == pytest.approx(twonn_from_distances(np.array(R1), np.array(R2), 0.2))
    assert twonn_from_distances([1, 1, 1, 1], [2, 3, 4, 5], 0.25) == pytest.approx(
        twonn_from_distances(np.array([1.0] * 4), np.log([2.0, 3, 4, 5]) * 0 + [2.0, 3, 4, 5], 0.25)
    )
    assert isinstance(twonn_from_distances(torch.tensor(R1), torch.tensor(R2)), float)


@pytest.mark.parametrize("to", AS)
def test_distance_messages(to):
    def err(r1, r2, text, **kw):
        with pytest.raises(ValueError, match=re.escape(text)):
            twonn_from_distances(to(r1), to(r2), **kw)

    err([1.0, np.nan, 1.0, np.inf], [2.0] * 4, "r1/r2 contain NaN or Inf (2 of 4 points); check the distances")
    err([1.0, -1.0, 1.0, 1.0], [2.0, 2.0, -2.0, 2.0], "r1/r2 contain negative distances (2 of 4 points); pass Eucl")
    err([0.0, 1.0, 0.0, 1.0], [2.0] * 4, "r1 = 0 for 2 of 4 points: they have an exact duplicate, and mu = r2 / r1")
    err([1.0, 3.0, 1.0, 1.0], [2.0] * 4, "r2 < r1 for 1 of 4 points; r1 must be the first and r2 the second")
    err([1.0] * 4, [2.0] * 3, "r1 and r2 must be 1-D with one entry per point, got shapes (4,) and (3,)")
    err([[1.0] * 4], [[2.0] * 4], "r1 and r2 must be 1-D with one entry per point, got shapes (1, 4) and (1, 4)")
    err([1.0] * 2, [2.0] * 2, "TwoNN needs at least 3 points, got 2; pass more points", method="mle")
    err([1.0] * 3, [2.0] * 3, "discard_fraction=0.5 leaves 1 of 3 neighbour ratios, fewer than 2", discard_fraction=0.5)
    err([1.0] * 4, [2.0] * 4, "discard_fraction=0 discards no ratio, so the largest has F = 1", discard_fraction=0)
    err([1.0] * 4, [1.0] * 4, "every ratio mu = r2 / r1 the linear estimate uses is 1 (first and second neighbours")
    err([1.0] * 4, [1.0] * 4, "every ratio mu = r2 / r1 the mle estimate uses is 1", method="mle")
    err([1.0] * 4, [1.0, 1.0, 1.0, 9.0], "the mle estimate uses is 1", method="mle", discard_fraction=0.25)


def test_dtype_and_option_messages():
    with pytest.raises(ValueError, match="r1 and r2 must be real numbers, got dtype complex128"):
        twonn_from_distances(np.ones(4, dtype=complex), np.ones(4))
    with pytest.raises(ValueError, match="r1 and r2 must be real numbers, got dtype torch.bool"):
        twonn_from_distances(torch.ones(4), torch.ones(4, dtype=torch.bool))
    with pytest.raises(ValueError, match=re.escape("unknown method 'ml'; choose one of ('linear', 'mle')")):
        twonn_from_distances(R1, R2, method="ml")
    for bad in (1, 1.0, -0.1, True, "0.1"):
        with pytest.raises(ValueError, match=re.escape(f"must be a number in [0, 1), got {bad!r}; the default is 0.1")):
            intrinsic_dimension(LINE, discard_fraction=bad)
    assert twonn_from_distances(R1, R2, np.float32(0.2)) == twonn_from_distances(R1, R2, 0.2)
    assert twonn_from_distances(R1, R2, 0, "mle") > 0


@pytest.mark.parametrize("to", [np.asarray, torch.tensor])
@pytest.mark.parametrize("wide", [False, True])
def test_two_nearest_distances_exact(to, wide):
    pts = np.hstack([LINE, np.zeros((6, 17))]) + 3.0 if wide else LINE
    for block in (2**28, 1):
        r1, r2 = two_nearest_distances(to(pts), block_bytes=block)
        np.testing.assert_allclose(np.asarray(r1), R1, atol=1e-12)
        np.testing.assert_allclose(np.asarray(r2), R2, atol=1e-12)


def test_two_nearest_distances_types_and_messages():
    r1, r2 = two_nearest_distances([[0], [1], [3]])
    assert r1.dtype == np.float64 and r1.tolist() == [1.0, 1.0, 2.0] and r2.tolist() == [3.0, 2.0, 3.0]
    t1, _ = two_nearest_distances(torch.tensor([[0], [1], [3], [1]]))
    assert t1.dtype == torch.float64 and t1.tolist() == [1.0, 1.0, 2.0]
    for to in AS:
        with pytest.raises(ValueError, match=re.escape("got 1 distinct of 4 (a constant cloud: every point is a copy")):
            two_nearest_distances(to(np.ones((4, 2))))
        with pytest.raises(ValueError, match=re.escape("needs at least 3 distinct points, got 2 distinct of 3; pass")):
            two_nearest_distances(to(np.array([[0.0], [1.0], [0.0]])))
        with pytest.raises(ValueError, match="got rank 1 with shape"):
            two_nearest_distances(to(np.zeros(3)))
        bad = np.zeros((4, 2))
        bad[2, 1] = np.nan
        with pytest.raises(ValueError, match=re.escape("points contain NaN or Inf values (1 of 4 points)")):
            two_nearest_distances(to(bad))
    with pytest.raises(ValueError, match="got 0 distinct of 0"):
        two_nearest_distances(torch.zeros(0, 2))
    with pytest.raises(ValueError, match="points must be real numbers, got dtype complex128"):
        two_nearest_distances(np.zeros((4, 2), dtype=complex))
    with pytest.raises(ValueError, match="points must be real numbers, got dtype torch.bool"):
        two_nearest_distances(torch.zeros(4, 2, dtype=torch.bool))
    for bad in (0, -1, 2.0):
        with pytest.raises(ValueError, match=re.escape(f"block_bytes must be a positive integer, got {bad!r}")):
            two_nearest_distances(LINE, block_bytes=bad)


@pytest.mark.parametrize("to", AS)
def test_intrinsic_dimension_is_twonn_of_the_distinct_points(to):
    expected = twonn_from_distances(np.array(R1), np.array(R2), 0.2)
    assert intrinsic_dimension(to(LINE), discard_fraction=0.2) == pytest.approx(expected)
    assert intrinsic_dimension(to(LINE), 0.0, "mle") == pytest.approx(4 / sum(math.log(b / a) for a, b in zip(R1, R2)))
    grid = np.arange(10.0)[:, None]  # eight ratios 1, two of 2: every kept ratio is 1 at discard 0.2
    with pytest.raises(ValueError, match="the linear estimate uses is 1"):
        intrinsic_dimension(to(grid), discard_fraction=0.2)


def test_lists_intrinsic_dimension():
    lists = numpy_neighbour_lists(LINE, k=3)
    assert lists_intrinsic_dimension(lists, 0.2) == pytest.approx(twonn_from_distances(R1, R2, 0.2))
    assert lists_intrinsic_dimension(lists, 0.0, "mle") == pytest.approx(twonn_from_distances(R1, R2, 0.0, "mle"))
    assert lists_intrinsic_dimension(lists) == pytest.approx(twonn_from_distances(R1, R2))
    empty = NeighbourLists(2, 2, "euclidean", None, np.zeros((2, 0), dtype=np.int64))
    with pytest.raises(
        ValueError, match=re.escape("kept no nearest distances (metric='euclidean', n_unique=2); build")
    ):
        lists_intrinsic_dimension(empty)
    short = NeighbourLists(2, 2, "knn", np.zeros((2, 2), dtype=np.int64), None, np.ones((2, 2)))
    with pytest.raises(ValueError, match=re.escape("TwoNN needs at least 3 distinct points, got 2; measure a larger")):
        lists_intrinsic_dimension(short)


@pytest.mark.parametrize("to", AS)
@pytest.mark.parametrize("method", METHODS)
def test_a_regular_grid_of_any_spacing_is_named_not_measured_as_a_huge_dimension(to, method):
    # at spacing 0.1 equal distances come out a few ulps apart: mu = 1 + 4e-15, not 1, and 1 / log mu ~ 1e14
    ticks = np.arange(30) * 0.1
    grid = np.stack(np.meshgrid(ticks, ticks), axis=-1).reshape(-1, 2)
    with pytest.raises(ValueError, match="every ratio mu = r2 / r1 the .* estimate uses is 1 .*e.g. a regular grid"):
        intrinsic_dimension(to(grid), method=method)
    t = np.linspace(0, 2 * np.pi, 100, endpoint=False)
    with pytest.raises(ValueError, match="every ratio mu"):
        intrinsic_dimension(to(np.stack([np.cos(t), np.sin(t)], axis=1)), method=method)
    # in float32, and above 16 dimensions (Gram distances), equal distances round further apart; r2 a hair below r1
    wide = np.concatenate([grid, np.zeros((len(grid), 20))], axis=1) + 3.0
    for dtype in (torch.float32, torch.float64):
        with pytest.raises(ValueError, match="every ratio mu"):
            intrinsic_dimension(torch.tensor(wide, dtype=dtype), method=method)
        lists = neighbour_lists(torch.from_numpy(wide), k=5, dtype=dtype)  # the monitor's distance_dtype
        with pytest.raises(ValueError, match="every ratio mu"):
            lists_intrinsic_dimension(lists, method=method)
    r1 = np.ones(10)
    with pytest.raises(ValueError, match="every ratio mu"):
        twonn_from_distances(to(r1), to(r1 - 1e-7 * (np.arange(10) % 2)), method=method)
    assert twonn_from_distances(to(r1), to(r1 + 1e-3), method=method) > 100  # a ratio 1e-3 from 1 is measured
