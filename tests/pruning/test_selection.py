"""Which filters go: a threshold or a fraction, either direction, never a whole layer, seeded ties."""

from __future__ import annotations

import numpy as np
import pytest

from lightning_topo.pruning import select_filters


def test_threshold_amount_direction_and_clamp():
    scores = np.array([1.0, 400.0, 350.0, 2.0, 301.0])
    assert select_filters(scores, threshold=300).tolist() == [1, 2, 4]
    assert select_filters(scores, amount=0.4).tolist() == [1, 2]
    assert select_filters(scores, amount=0.4, direction="lowest").tolist() == [0, 3]
    with pytest.warns(UserWarning, match="clamped to 3 so that 2 remain"):
        assert len(select_filters(scores, threshold=0.0, min_keep=2)) == 3
    with pytest.warns(UserWarning, match="clamped"):
        assert len(select_filters(np.full(4, 500.0), threshold=300)) == 3  # never removes every filter


def test_ties_are_broken_by_a_seeded_random_order_not_by_position():
    picks = {tuple(select_filters(np.zeros(20), amount=0.25, seed=s)) for s in range(5)}
    assert len(picks) > 1 and all(len(p) == 5 for p in picks)
    assert (
        select_filters(np.zeros(20), amount=0.25, seed=3).tolist()
        == select_filters(np.zeros(20), amount=0.25, seed=3).tolist()
    )
