"""Physical removal of conv filters with torch-pruning's dependency graph.

The graph follows every layer that consumes a conv's output channels (its BatchNorm, the next conv,
a linear head behind a flatten or a pooling, residual additions), so the model really shrinks and
still runs: no masks.

Example:
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 3))
    >>> remove_filters(net, {"0": [0, 1]}, torch.zeros(1, 1, 8, 8))
    {'0': (4, 2)}
    >>> net[1].num_features, net[3].in_channels
    (2, 2)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch_pruning as tp
from torch import nn

__all__ = ["remove_filters"]


def remove_filters(
    model: nn.Module,
    plan: Mapping[str, Sequence[int]],
    example_inputs: torch.Tensor | Mapping[str, torch.Tensor] | tuple[torch.Tensor, ...],
    forward_fn: Callable[[nn.Module, Any], torch.Tensor] | None = None,
) -> dict[str, tuple[int, int]]:
    """Remove output filters ``plan[name]`` from each named ``Conv2d``, in place; ``{name: (before, after)}``.

    Layers coupled to an earlier one (e.g. convs whose outputs meet in a residual sum) are pruned
    together with it; such a layer's own entry is then skipped, and its sizes are still reported.
    ``forward_fn(model, example_inputs)`` is how the graph's tracing pass calls the model (default: torch-pruning's
    own rule, ``model(**inputs)`` for a dict).
    """
    modules = dict(model.named_modules())
    before = {name: modules[name].out_channels for name in plan}
    was_training = model.training
    model.eval()
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=example_inputs, forward_fn=forward_fn)
    for name, indices in plan.items():
        conv = modules[name]
        if not indices or conv.out_channels != before[name]:
            continue  # nothing to remove, or already shrunk through a coupled layer
        group = graph.get_pruning_group(conv, tp.prune_conv_out_channels, idxs=[int(i) for i in indices])
        if not graph.check_pruning_group(group):
            raise ValueError(f"removing {len(indices)} filters from {name!r} would leave a layer without channels")
        group.prune()
    model.train(was_training)
    return {name: (before[name], modules[name].out_channels) for name in plan}
