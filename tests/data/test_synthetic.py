"""The synthetic sets have the topology they document, under the protocol's k."""

from __future__ import annotations

import numpy as np
import pytest

from lightning_topo.data.synthetic import DEFAULT_K, known_betti, make_d1, make_d2, make_d3, make_dataset
from lightning_topo.topology import betti_numbers, betti_numbers_per_class, calibrate_k, subsample_per_class


def homology_subset(x: np.ndarray, y: np.ndarray, fraction: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The protocol's homology sample: a seeded 1/fraction of each class."""
    groups = subsample_per_class(y, max_points=None, seed=seed)
    keep = np.concatenate([g[::fraction] for g in groups.values()])
    return x[keep], y[keep]


def test_d1_classes_have_the_documented_betti_numbers_at_k14():
    x, y = make_d1(seed=0)
    assert x.shape[1] == 2 and abs(len(x) - 7800) < 0.02 * 7800
    assert betti_numbers_per_class(x, y, k=DEFAULT_K["d1"]) == known_betti("d1") == {0: (9, 0), 1: (1, 9)}


@pytest.mark.parametrize("seed", [1, 2])
def test_d1_topology_holds_for_other_seeds(seed):
    x, y = make_d1(seed=seed)
    assert betti_numbers_per_class(x, y, k=14) == known_betti("d1")


def test_d2_tori_at_the_calibrated_k():
    x, y = homology_subset(*make_d2(seed=0))
    assert len(x) == 11250
    k = calibrate_k(x[y == 0], (9, 9))
    # the smallest such k: one neighbour fewer does not give the known numbers
    assert k == 5 or betti_numbers(x[y == 0], k=k - 1, max_dim=1) != (9, 9)
    assert betti_numbers_per_class(x, y, k=k, max_dim=1) == {0: (9, 9), 1: (9, 9)}
    assert betti_numbers_per_class(x, y, k=DEFAULT_K["d2"], max_dim=2) == known_betti("d2")


def test_d3_nested_spheres_as_documented():
    x, y = homology_subset(*make_d3(seed=0))
    assert (
        betti_numbers_per_class(x, y, k=DEFAULT_K["d3"], max_dim=2)
        == known_betti("d3")
        == {
            0: (9, 0, 9),
            1: (18, 0, 9),
        }
    )


def test_thirteen_by_thirteen_d1_has_169_components():
    x, y = make_d1(units=169, n_points=40000, seed=0)
    assert betti_numbers(x[y == 0], k=14, max_dim=0) == (169,)
    assert betti_numbers(x[y == 1], k=14) == (1, 169) == known_betti("d1", units=169)[1]


def test_generators_are_seeded_and_shaped():
    a, la = make_d2(units=4, n_points=800, seed=5)
    b, lb = make_d2(units=4, n_points=800, seed=5)
    assert a.dtype == np.float32 and la.dtype == np.int64 and a.shape == (800, 3)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)
    assert not np.array_equal(a, make_d2(units=4, n_points=800, seed=6)[0])
    assert make_d3(units=4, n_points=1000, seed=0)[0].shape == (1000, 3)


@pytest.mark.parametrize("units", [1, 4, 9])
def test_d3_has_exactly_the_size_asked_from_its_smallest(units):
    sizes = range(9 * units, 40 * units, max(1, units // 2))
    assert [len(make_d3(units=units, n_points=n)[0]) for n in sizes] == list(sizes)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: make_d1(units=10), "perfect square"),
        (lambda: make_d1(units=0), "units must be a positive integer"),
        (lambda: make_d2(n_points=3), "n_points must be"),
        (lambda: make_d3(units=9, n_points=18), r"n_points must be an integer >= 9 \* units \(81\)"),  # gave 27
        (lambda: make_dataset("d4"), "unknown synthetic dataset"),
        (lambda: known_betti("circles"), "unknown synthetic dataset"),
    ],
)
def test_bad_generator_arguments_fail_clearly(call, message):
    with pytest.raises(ValueError, match=message):
        call()
