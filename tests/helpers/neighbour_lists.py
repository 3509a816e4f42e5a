"""Comparing neighbour lists: the routes must agree bit for bit, not approximately."""

from __future__ import annotations

import numpy as np

from lightning_topo.topology import NeighbourLists


def assert_identical(a: NeighbourLists | str, b: NeighbourLists | str) -> None:
    if isinstance(a, str) or isinstance(b, str):
        assert a == b
        return
    assert (a.n_points, a.n_unique, a.metric) == (b.n_points, b.n_unique, b.metric)
    for x, y in ((a.indices, b.indices), (a.edges, b.edges)):
        assert (x is None) == (y is None)
        if x is not None:
            assert x.dtype == y.dtype == np.int64
            np.testing.assert_array_equal(x, y)
    assert (a.nearest is None) == (b.nearest is None)
    if a.nearest is not None:
        assert a.nearest.dtype == b.nearest.dtype == np.float64
        assert np.array_equal(a.nearest, b.nearest)  # bit for bit, not approximately
