"""Conv-filter scores: a tangled filter's outputs score above a clean one's; cubical and L1 scores; bad shapes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lightning_topo.topology.filters import cubical_scores, filter_betti_scores, l1_scores


def test_a_tangled_filter_scores_above_a_clean_one():
    rng = np.random.default_rng(0)
    t = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    maps = np.zeros((200, 2, 2, 2))
    # filter 0: its outputs over the images trace three separate circles (tangled); filter 1: a line (clean)
    for i, (cx, cy) in enumerate([(0, 0), (5, 0), (10, 0)]):
        part = slice(i * 67, (i + 1) * 67 if i < 2 else 200)
        maps[part, 0, 0, 0] = cx + np.cos(t[part] * 3)
        maps[part, 0, 0, 1] = cy + np.sin(t[part] * 3)
    maps[:, 1, 0, 0] = np.linspace(0, 1, 200)
    maps += 0.001 * rng.normal(size=maps.shape)
    loops = filter_betti_scores(maps, dim=1, k=6)
    components = filter_betti_scores(maps, dim=0, k=6)
    assert loops[0] == 3 and loops[1] == 0
    assert components[0] == 3 and components[1] == 1


def test_cubical_scores_count_blobs_in_each_map():
    maps = np.zeros((3, 2, 16, 16))
    maps[:, 0, 3, 3] = maps[:, 0, 3, 12] = maps[:, 0, 12, 7] = 1.0  # three separate peaks
    maps[:, 1, 8, 8] = 1.0  # one peak
    scores = cubical_scores(maps, min_persistence=0.5)
    assert scores[0] > scores[1] >= 1


def test_l1_scores_and_bad_shapes():
    weight = torch.zeros(3, 2, 3, 3)
    weight[1] = 1.0
    assert l1_scores(weight).tolist() == [0.0, 18.0, 0.0]
    with pytest.raises(ValueError, match="n_images, n_filters, height, width"):
        filter_betti_scores(np.zeros((4, 3)))
