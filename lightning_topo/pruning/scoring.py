"""Each conv filter's score on a probe, by the criteria BettiPruning offers, and the plan of filters to remove.

A filter's outputs over the probe images form a point cloud (one point per image, its flattened feature map):
``"knn"`` and ``"euclidean"`` score it by a Betti number of that cloud, ``"cubical"`` by the persistent features of
each 2-D map, ``"l1"`` by the filter's weight norm (a baseline that needs no probe).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from torch import nn

from lightning_topo.monitoring.batches import ModelInputs, take
from lightning_topo.monitoring.capture import capture_activations
from lightning_topo.monitoring.hooks import output_shapes
from lightning_topo.pruning.selection import select_filters
from lightning_topo.topology.filters import cubical_scores, filter_betti_scores, l1_scores

__all__ = ["CRITERIA", "filter_scores", "pruning_plan"]

CRITERIA = ("knn", "euclidean", "cubical", "l1")


def filter_scores(
    model: nn.Module,
    convs: Sequence[str],
    inputs: ModelInputs,
    criterion: str,
    forward: Callable[[nn.Module, Any], Any],
    dim: int,
    k: int,
    scale: float,
) -> dict[str, np.ndarray]:
    """Each conv layer's filter scores on the probe ``inputs``: ``{name: (n_filters,)}``."""
    modules = dict(model.named_modules())
    if criterion == "l1":
        return {name: l1_scores(modules[name].weight) for name in convs}
    # maps stay on the model's device: on a GPU the filters' distances are computed there, in one batch
    outputs = capture_activations(model, inputs, convs, device=None, forward=forward)
    shapes = output_shapes(model, take(inputs, slice(0, 1)), convs, forward) if criterion == "cubical" else {}
    scores = {}
    for name in convs:
        maps = outputs[name].reshape(len(outputs[name]), modules[name].out_channels, -1)
        if criterion == "cubical":  # each map as the 2-D image it is (height x width, square or not)
            scores[name] = cubical_scores(maps.reshape(maps.shape[0], *shapes[name]).cpu())
        else:
            scores[name] = filter_betti_scores(maps[..., None], dim=dim, metric=criterion, k=k, scale=scale)
    return scores


def pruning_plan(
    scores: Mapping[str, np.ndarray],
    threshold: float | None,
    amount: float | None,
    direction: str,
    min_keep: int,
    seed: int,
) -> dict[str, list[int]]:
    """``{layer: filter indices to remove}``: the ``amount`` fraction of each layer (else those past ``threshold``),
    by ``direction``, never leaving fewer than ``min_keep`` filters."""
    return {
        name: select_filters(
            s,
            threshold=None if amount is not None else threshold,
            amount=amount,
            direction=direction,
            min_keep=min_keep,
            seed=seed,
            layer=name,
        ).tolist()
        for name, s in scores.items()
    }
