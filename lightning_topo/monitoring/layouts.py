"""Which three-dimensional layer outputs are ``(batch, channels, steps)``, as a 1-d convolution lays them out, and
not ``(batch, tokens, features)``, as a transformer does; token pooling must average the steps of the first.

A speech model's feature extractor (Wav2Vec2's ``conv_layers``) returns ``(batch, channels, steps)``; pooling its
"tokens" would average its channels and leave one value per time step.  The rule reads one traced pass
(:func:`~lightning_topo.monitoring.trace.trace_forward`): among the leaf modules that ran inside the layer, the last
one that fixes a layout and returned a tensor of the layer's output shape decides, a 1-d convolution, pooling or
batch norm for channels first, a linear layer, layer norm, embedding or attention for features last.  A layer with
none inside it (an activation module) takes the layout of the module that fed it.  A square output, or one no such
module explains, keeps the ``(batch, tokens, features)`` reading.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from lightning_topo.monitoring.trace import trace_forward
    >>> net = nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(32, 2))
    >>> example = torch.zeros(2, 1, 10)
    >>> channels_first_layers(net, trace_forward(net, example), ["0", "1", "3"])
    ['0', '1']
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from lightning_topo.monitoring.trace import ForwardTrace

__all__ = ["channels_first_layers", "steps_pooled_layers"]

_CHANNELS_FIRST = (
    nn.MaxPool1d,
    nn.AvgPool1d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveMaxPool1d,
    nn.LPPool1d,
    nn.BatchNorm1d,
    nn.InstanceNorm1d,
)
_FEATURES_LAST = (nn.Linear, nn.Bilinear, nn.LayerNorm, nn.Embedding, nn.MultiheadAttention) + (
    (nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()  # torch 2.4 and later
)
_MAX_FEEDERS = 8  # how far back through activation modules a layer's layout is looked for


def _layout(module: nn.Module) -> str | None:
    """``"channels_first"``, ``"features_last"``, or ``None`` for a module that keeps its input's layout."""
    if isinstance(module, nn.modules.conv._ConvNd) and len(module.kernel_size) == 1:
        return "channels_first"
    if isinstance(module, _CHANNELS_FIRST):
        return "channels_first"
    if isinstance(module, _FEATURES_LAST):
        return "features_last"
    return None


def _decided_inside(
    name: str, shape: tuple[int, ...], trace: ForwardTrace, modules: dict[str, nn.Module]
) -> str | None:
    """The layout of the last leaf inside ``name`` (or ``name`` itself) that fixes one and returned ``shape``."""
    inside = [leaf for leaf in trace.order if leaf == name or leaf.startswith(name + ".")]
    for leaf in reversed(inside):
        layout = _layout(modules[leaf]) if leaf in modules else None
        if layout is not None and trace.shapes.get(leaf) == shape:
            return layout
    return None


def channels_first_layers(model: nn.Module, trace: ForwardTrace, layers: Sequence[str]) -> list[str]:
    """The ``layers`` (module names; others are ignored) whose output is ``(batch, channels, steps)`` in ``trace``."""
    modules = dict(model.named_modules())
    found = []
    for name in layers:
        shape = trace.shapes.get(name)
        if name not in modules or shape is None or len(shape) != 3 or shape[1] == shape[2]:
            continue
        current, layout = name, None
        for _ in range(_MAX_FEEDERS):
            layout = _decided_inside(current, shape, trace, modules)
            feeder = trace.fed_by.get(current)
            if layout is not None or feeder is None or trace.shapes.get(feeder) != shape:
                break
            current = feeder
        if layout == "channels_first":
            found.append(name)
    return found


def steps_pooled_layers(
    model: nn.Module,
    trace: ForwardTrace,
    layers: Sequence[str],
    token_pooling: str | None,
    info: Callable[[str], Any] | None = None,
) -> list[str]:
    """The :func:`channels_first_layers` that ``token_pooling`` must pool over their steps (none without pooling:
    flattening reads every layout alike); with ``info``, the monitor says which they are."""
    if token_pooling is None:
        return []
    found = channels_first_layers(model, trace, layers)
    if found and info is not None:
        shown = ", ".join(found[:3]) + (" ..." if len(found) > 3 else "")
        info(
            f"BettiMonitor: {len(found)} watched layers return (batch, channels, steps), as 1-d convolutions do "
            f"({shown}), so token_pooling={token_pooling!r} pools their steps: one value per channel"
        )
    return found
