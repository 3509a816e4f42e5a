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

import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import torch
import torch_pruning as tp
import torch_pruning.dependency.graph as tp_graph
from torch import nn

from lightning_topo.monitoring.batches import call_model, to_host
from lightning_topo.monitoring.hooks import eval_mode
from lightning_topo.pruning.report import cpu_copy

__all__ = ["MAX_GROUP_DEPENDENCIES", "removable_filters", "remove_filters"]

#: The most dependencies torch-pruning may gather for one pruning group. Real groups hold tens to a few hundred (a
#: ConvNeXt-T stage 121, a DenseNet-121 block 101); on some of timm's RexNet layers its search never ends (index maps
#: through channel slices give ever new index sets), so it is cut off here with an error instead of hanging.
MAX_GROUP_DEPENDENCIES = 5000


def remove_filters(
    model: nn.Module,
    plan: Mapping[str, Sequence[int]],
    example_inputs: torch.Tensor | Mapping[str, torch.Tensor] | tuple[torch.Tensor, ...],
    forward_fn: Callable[[nn.Module, Any], torch.Tensor] | None = None,
) -> dict[str, tuple[int, int]]:
    """Remove output filters ``plan[name]`` from each named ``Conv2d``, in place; ``{name: (before, after)}``.

    Layers coupled to an earlier one (e.g. convs whose outputs meet in a residual sum) are pruned
    together with it; such a layer's own entry is then skipped, and its sizes are still reported.
    ``forward_fn(model, example_inputs)`` is how the graph's tracing pass calls the model (default: the monitor's
    rule, :func:`~lightning_topo.monitoring.batches.call_model`: ``model(**inputs)`` for a dict).
    """
    forward_fn = forward_fn or call_model
    modules = dict(model.named_modules())
    before = {name: modules[name].out_channels for name in plan}
    with eval_mode(model):
        graph = tp.DependencyGraph().build_dependency(model, example_inputs=example_inputs, forward_fn=forward_fn)
    for name, indices in plan.items():
        conv = modules[name]
        if not indices or conv.out_channels != before[name]:
            continue  # nothing to remove, or already shrunk through a coupled layer
        with _bounded_dependency_search(name):
            group = graph.get_pruning_group(conv, tp.prune_conv_out_channels, idxs=[int(i) for i in indices])
        if not graph.check_pruning_group(group):
            raise ValueError(f"removing {len(indices)} filters from {name!r} would leave a layer without channels")
        group.prune()
    return {name: (before[name], modules[name].out_channels) for name in plan}


def removable_filters(
    model: nn.Module,
    plan: Mapping[str, Sequence[int]],
    example_inputs: torch.Tensor | Mapping[str, torch.Tensor] | tuple[torch.Tensor, ...],
    forward_fn: Callable[[nn.Module, Any], torch.Tensor] | None = None,
) -> tuple[dict[str, list[int]], dict[str, str]]:
    """``(plan, refused)``: the part of ``plan`` whose removal leaves a model that runs, and for each layer left out,
    why. ``model`` is not changed.

    A copy of ``model`` (on the CPU) loses all of ``plan``'s filters, as :func:`remove_filters` removes them, and
    is run on ``example_inputs``. Where the surgery fails or the copy no longer runs, each layer is tried alone on a
    fresh copy, and those that fail alone are refused. This is what torch-pruning's dependency graph cannot follow:
    a residual added to a slice of the channels (timm's RexNet), grouped convolutions it splits unevenly (timm's
    FastViT). Such a layer used to fail the whole pruning.

    Example:
        >>> class SlicedResidual(nn.Module):  # as RexNet's blocks: the graph does not see a's channels meet b's
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.a, self.b, self.c = nn.Conv2d(1, 4, 1), nn.Conv2d(4, 6, 1), nn.Conv2d(6, 2, 1)
        ...     def forward(self, x):
        ...         x = self.a(x)
        ...         y = self.b(x)
        ...         y[:, :4] += x
        ...         return self.c(y)
        >>> plan, refused = removable_filters(SlicedResidual(), {"a": [0], "b": [5]}, torch.zeros(1, 1, 4, 4))
        >>> plan, list(refused)
        ({'b': [5]}, ['a'])
    """
    inputs = to_host(example_inputs)
    wanted = {name: [int(i) for i in indices] for name, indices in plan.items() if len(indices)}
    if _why_it_fails(model, wanted, inputs, forward_fn) is None:
        return wanted, {}
    refused = {}
    for name, indices in wanted.items():  # alone, each from the model as it is: no earlier trial's state
        why = _why_it_fails(model, {name: indices}, inputs, forward_fn)
        if why is not None:
            refused[name] = why
    return {name: indices for name, indices in wanted.items() if name not in refused}, refused


def _why_it_fails(
    model: nn.Module, plan: Mapping[str, Sequence[int]], inputs: Any, forward_fn: Callable[..., Any] | None
) -> str | None:
    """``None`` where a CPU copy of ``model`` without ``plan``'s filters runs on ``inputs``; else what failed."""
    try:
        with warnings.catch_warnings():  # torch-pruning's notices (unwrapped parameters) come with the real surgery
            warnings.simplefilter("ignore")
            trial = cpu_copy(model)
            remove_filters(trial, plan, inputs, forward_fn)
            with eval_mode(trial), torch.no_grad():  # as the graph's tracing pass called it
                (forward_fn or call_model)(trial, inputs)
    except Exception as error:  # the surgery's own errors, or the pass's: the layer cannot be removed this way
        return f"{type(error).__name__}: {error}"
    return None


@contextmanager
def _bounded_dependency_search(name: str) -> Iterator[None]:
    """torch-pruning's group search, stopped with a ``RuntimeError`` past :data:`MAX_GROUP_DEPENDENCIES`: its groups
    are built by ``torch_pruning.dependency.graph.Group``, which this swaps for a bounded subclass meanwhile."""
    unbounded = tp_graph.Group

    class Bounded(unbounded):  # type: ignore[misc, valid-type]
        def add_dep(self, dep: Any, idxs: Any) -> None:
            if len(self._group) >= MAX_GROUP_DEPENDENCIES:
                raise RuntimeError(
                    f"torch-pruning's dependency search for {name!r} did not end within {MAX_GROUP_DEPENDENCIES} "
                    "dependencies (its channels pass through slices it cannot map)"
                )
            super().add_dep(dep, idxs)

    tp_graph.Group = Bounded
    try:
        yield
    finally:
        tp_graph.Group = unbounded
