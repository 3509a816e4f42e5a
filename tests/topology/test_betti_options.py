"""Exact values of the per-class helpers and calibrate_k (lightning_topo.topology.betti)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from lightning_topo.topology import betti_numbers, betti_numbers_per_class, calibrate_k, subsample_per_class

ANGLES = np.linspace(0, 2 * np.pi, 30, endpoint=False)
CIRCLE = np.c_[np.cos(ANGLES), np.sin(ANGLES)]  # k=2: (10, 0); k >= 3: (1, 1)
LABELS = np.array([0, 0, 1, 1, 1, 2])


def test_subsample_without_a_limit_gives_every_index():
    groups = subsample_per_class(LABELS, None)
    assert list(groups) == [0, 1, 2] and all(type(c) is int for c in groups)
    assert {c: v.tolist() for c, v in groups.items()} == {0: [0, 1], 1: [2, 3, 4], 2: [5]}


def test_subsample_draws_a_seeded_sorted_subset_only_above_the_limit():
    groups = subsample_per_class(LABELS, 2, seed=7)
    assert groups[0].tolist() == [0, 1] and groups[2].tolist() == [5]  # at or below the limit: untouched
    expected = np.sort(np.random.default_rng(7).choice(np.array([2, 3, 4]), size=2, replace=False))
    assert groups[1].tolist() == expected.tolist()
    default = subsample_per_class(LABELS, 2)
    seed0 = np.sort(np.random.default_rng(0).choice(np.array([2, 3, 4]), size=2, replace=False))
    assert default[1].tolist() == seed0.tolist()


def test_subsample_draws_the_same_rng_stream_across_classes():
    labels = np.repeat([0, 1], 5)
    rng = np.random.default_rng(3)
    first = np.sort(rng.choice(np.arange(5), size=2, replace=False))
    second = np.sort(rng.choice(np.arange(5, 10), size=2, replace=False))
    got = subsample_per_class(torch.tensor(labels).reshape(2, 5), 2, seed=3)
    assert got[0].tolist() == first.tolist() and got[1].tolist() == second.tolist()


def test_per_class_exact_values_and_class_choice():
    points = np.vstack([CIRCLE, CIRCLE + [5.0, 0.0], CIRCLE[::3] + [10.0, 0.0]])
    labels = np.repeat([0, 1, 2], [30, 30, 10])
    assert betti_numbers_per_class(points, labels, k=3) == {0: (1, 1), 1: (1, 1), 2: betti_numbers(CIRCLE[::3], k=3)}
    assert betti_numbers_per_class(points, labels, k=2, classes=[0]) == {0: (10, 0)}
    assert betti_numbers_per_class(points, labels, k=3, max_dim=0, classes=np.array([0])) == {0: (1,)}


def test_per_class_subsample_is_the_betti_numbers_of_that_subset():
    labels = np.zeros(30, dtype=int)
    idx = subsample_per_class(labels, 12, seed=5)[0]
    assert betti_numbers_per_class(CIRCLE, labels, k=2, max_points=12, seed=5) == {0: betti_numbers(CIRCLE[idx], k=2)}


def test_per_class_error_messages():
    with pytest.raises(ValueError, match=re.escape("classes [4, 5] have no points; present classes are [0, 1, 2]")):
        betti_numbers_per_class(np.zeros((6, 2)), LABELS, classes=[0, 4, 5])
    with pytest.raises(ValueError, match=re.escape("got 30 points but 6 labels; they must match one to one")):
        betti_numbers_per_class(CIRCLE, LABELS)


def test_calibrate_k_returns_the_smallest_match_as_int():
    k = calibrate_k(CIRCLE, (1, 1), k_range=range(2, 10))
    assert k == 3 and type(k) is int
    assert calibrate_k(CIRCLE, [1], k_range=np.arange(2, 10)) == 3  # max_dim defaults to len(expected) - 1
    assert calibrate_k(CIRCLE, (10, 0), k_range=range(2, 10)) == 2


def test_calibrate_k_messages():
    with pytest.raises(ValueError) as info:
        calibrate_k(CIRCLE, (5, 5), k_range=range(2, 4))
    assert str(info.value) == (
        "no k in the range reproduces the expected Betti numbers (5, 5) (k=2: (10, 0); k=3: (1, 1)); widen k_range, "
        "sample the data more densely or check the expected values"
    )
    with pytest.raises(ValueError, match=re.escape("(1, 1) (no k tried); widen k_range")):
        calibrate_k(CIRCLE, (1, 1), k_range=range(30, 40))
    with pytest.raises(ValueError, match=re.escape("(k=29: ")):  # k = n - 1 is tried, k = n is not
        calibrate_k(CIRCLE, (7, 7), k_range=range(29, 40))
