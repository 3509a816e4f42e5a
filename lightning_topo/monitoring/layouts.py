"""Which layer outputs are laid out otherwise than ``(batch, tokens, features)``, as a transformer lays them out:
``(batch, channels, steps)``, as a 1-d convolution does, whose steps token pooling must average, and ``(steps,
batch, ...)``, as PyTorch's sequence-first ``nn.Transformer*``, ``nn.LSTM`` and ``nn.GRU`` do, whose samples are
their second dimension (:func:`layer_layouts` tells both).

A sequence-first output is known by the traced pass's second look (:meth:`.ForwardTrace.sample_dim`): its second
dimension, not its first, grew with one sample more.

A speech model's feature extractor (Wav2Vec2's ``conv_layers``) returns ``(batch, channels, steps)``; pooling its
"tokens" would average its channels and leave one value per time step.  The rule reads one traced pass
(:func:`~lightning_topo.monitoring.trace.trace_forward`): among the modules that ran inside the layer, the last to
finish that fixes a layout and can have made the layer's output decides: a 1-d convolution, pooling or batch norm
that returned the output's channels (its steps may be trimmed after it) for channels first, a linear layer, layer
norm, embedding or attention that returned its features for features last.  A layer with none inside it (an
activation, a trim) takes the layout of the module that fed it, or, fed by an operation (``relu(x + shortcut)``),
of what ran before it in the module that called it.  A square output, or one no such module explains,
keeps the ``(batch, tokens, features)`` reading.

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

import torch
from torch import nn

from lightning_topo.monitoring.hooks import split_call
from lightning_topo.monitoring.layers import INPUT, LOGITS
from lightning_topo.monitoring.outputs import (
    CHANNELS_FIRST,
    CHANNELS_FIRST_CHOICE_ROWS,
    CHOICE_ROWS,
    STEPS_FIRST,
    STEPS_FIRST_CHOICE_ROWS,
    TokenMask,
    feature_lengths,
)
from lightning_topo.monitoring.trace import ForwardTrace

__all__ = ["channels_first_layers", "layer_layouts", "steps_first_layers", "unmasked_layers"]

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


_CHANNELS_FIRST_LAYOUT, _FEATURES_LAST_LAYOUT = CHANNELS_FIRST, "features_last"


def _layout(module: nn.Module) -> str | None:
    """``"channels_first"``, ``"features_last"``, or ``None`` for a module that keeps its input's layout."""
    if isinstance(module, nn.modules.conv._ConvNd) and len(module.kernel_size) == 1:
        return _CHANNELS_FIRST_LAYOUT
    if isinstance(module, _CHANNELS_FIRST):
        return _CHANNELS_FIRST_LAYOUT
    if isinstance(module, _FEATURES_LAST):
        return _FEATURES_LAST_LAYOUT
    return None


def _explains(layout: str, made: tuple[int, ...] | None, shape: tuple[int, ...]) -> bool:
    """Whether a module of ``layout`` that returned ``made`` can have made the layer's ``shape``: the same samples
    and the same channels (or features), the steps free, since a trim (``x[..., :-1]``, a TCN's chomp, Hugging
    Face's same-padding layer) may follow the convolution."""
    if made is None or len(made) != 3 or made[0] != shape[0]:
        return False
    return made[1] == shape[1] if layout == _CHANNELS_FIRST_LAYOUT else made[2] == shape[2]


def _decided_inside(
    name: str, shape: tuple[int, ...], trace: ForwardTrace, modules: dict[str, nn.Module], before: int | None = None
) -> str | None:
    """The layout of the module inside ``name`` (or ``name`` itself; ``""``: the whole model) that ended last among those that fix one and
    can have made ``shape``; a container counts too (a ``Conv1d`` under ``weight_norm`` holds its parametrization).
    ``before``: only modules that ended before that point of the pass."""
    module = split_call(name)[0]  # a call (``block-call1``): the modules inside that module
    inside = [m for m in trace.ended if (not module or m == module or m.startswith(module + ".")) and m in modules]
    if before is not None:
        inside = [m for m in inside if trace.ended[m] < before]
    for module in sorted(inside, key=trace.ended.__getitem__, reverse=True):
        layout = _layout(modules[module])
        if layout is not None and _explains(layout, trace.shapes.get(module), shape):
            return layout
    return None


def channels_first_layers(model: nn.Module, trace: ForwardTrace, layers: Sequence[str]) -> list[str]:
    """The ``layers`` (module names or their calls, ``act-call2``; others are ignored) whose output is
    ``(batch, channels, steps)`` in ``trace``."""
    modules = dict(model.named_modules())
    found = []
    for name in layers:
        shape = trace.shapes.get(name)
        if split_call(name)[0] not in modules or shape is None or len(shape) != 3 or shape[1] == shape[2]:
            continue
        if _steps_first(trace, name):  # (steps, batch, features): sequence first, not channels first
            continue
        current, layout = name, None
        for _ in range(_MAX_FEEDERS):  # through activations, dropouts and trims back to the module that decides
            layout = _decided_inside(current, shape, trace, modules)
            feeder = trace.feeder(current)
            made = trace.shapes.get(feeder) if feeder is not None else None
            if layout is not None or made is None or len(made) != 3 or made[0] != shape[0]:
                break
            current = feeder
        if layout is None and current in trace.ended:  # fed by an operation (``relu(x + res)``): what ran before
            parent = current.rsplit(".", 1)[0] if "." in current else ""  # it in the module that called it (the
            layout = _decided_inside(parent, shape, trace, modules, before=trace.ended[current])  # model's own: "")
        if layout == _CHANNELS_FIRST_LAYOUT:
            found.append(name)
    return found


def _steps_first(trace: ForwardTrace, name: str) -> bool:
    """Whether ``name``'s output is laid out sequence first: its samples, or their choices' rows, its second
    dimension."""
    return trace.sample_dim(name) == 1 or trace.choice_dim(name) == 1


def _shown(names: Sequence[str]) -> str:
    return ", ".join(names[:3]) + (" ..." if len(names) > 3 else "")


def unmasked_layers(
    model: nn.Module,
    trace: ForwardTrace,
    layers: Sequence[str],
    mask: torch.Tensor | TokenMask,
    channels_first: Sequence[str],
) -> list[str]:
    """The three-dimensional ``layers`` whose tokens the batch's attention ``mask`` (of the traced example; a
    :class:`~lightning_topo.monitoring.outputs.TokenMask` for an encoder-decoder's two) cannot be read at
    (:meth:`~lightning_topo.monitoring.outputs.TokenMask.of`): pooling averages their padding too."""
    reader = mask if isinstance(mask, TokenMask) else TokenMask(mask, feature_lengths(model))
    found = []
    for name in layers:
        shape = trace.shapes.get(name)
        if name not in (INPUT, LOGITS) and shape is not None and len(shape) == 3:
            layer_mask = reader.for_layer(name)  # None: no mask is the layer's (an image tower's patches)
            tokens = shape[2] if name in channels_first else shape[0] if _steps_first(trace, name) else shape[1]
            if layer_mask is not None and layer_mask.of(tokens) is None:
                found.append(name)
    return found


def _say_how_pooling_reads(
    model: nn.Module,
    trace: ForwardTrace,
    layers: Sequence[str],
    token_pooling: str,
    found: list[str],
    info: Callable[[str], Any],
    mask: torch.Tensor | TokenMask | None,
) -> None:
    """Tell which ``layers`` ``token_pooling`` pools over their steps (``found``: the channels-first ones), and, given
    the traced example's attention ``mask`` (or masks), which pooled layers the mask cannot reach
    (:func:`unmasked_layers`) and how an encoder-decoder's decoder is read."""
    if found:
        info(
            f"BettiMonitor: {len(found)} watched layers return (batch, channels, steps), as 1-d convolutions do "
            f"({_shown(found)}), so token_pooling={token_pooling!r} pools their steps: one value per channel"
        )
    unmasked = (
        unmasked_layers(model, trace, layers, mask, found) if mask is not None and token_pooling != "first" else []
    )
    # a seq2seq model's logits, a row of each decoder position, are pooled as its decoder layers are
    token_logits = [LOGITS] if LOGITS in layers and len(trace.output_shape or ()) == 3 else []
    read_from_pad = isinstance(mask, TokenMask) and mask.encoder_decoder and mask.decoder_pad is not None
    if read_from_pad and token_pooling != "first":
        decoder_layers = [
            name for name in layers if "encoder" not in name.split(".") and len(trace.shapes.get(name, ())) == 3
        ] + token_logits
        if decoder_layers:
            info(
                f"BettiMonitor: the batches hold no decoder_attention_mask, so token_pooling={token_pooling!r} reads "
                f"the decoder's {len(decoder_layers)} watched layers ({_shown(decoder_layers)}) at the decoder "
                f"inputs that are not the pad token (id {mask.decoder_pad}), which padded labels (-100) become"
            )
    decoder_side = isinstance(mask, TokenMask) and mask.encoder_decoder and mask.decoder is None
    if decoder_side and token_pooling != "first":
        unmasked = unmasked + token_logits  # no decoder mask: its logits read every position too
    if unmasked and decoder_side and all("encoder" not in name.split(".") for name in unmasked):
        info(
            f"BettiMonitor: the batches hold no decoder_attention_mask, so token_pooling={token_pooling!r} reads "
            f"every decoder position of {len(unmasked)} watched decoder layers ({_shown(unmasked)}), the padding "
            "of padded targets too (the encoder's mask is not theirs); a decoder_attention_mask in the batches, or "
            "targets of one length, avoids it"
        )
    elif unmasked:
        info(
            f"BettiMonitor: the attention mask cannot be read at the tokens of {len(unmasked)} watched layers "
            f"({_shown(unmasked)}), so token_pooling={token_pooling!r} reads their padding too; a probe of equal "
            "lengths (no padding) avoids it"
        )


def steps_first_layers(trace: ForwardTrace, layers: Sequence[str], output_key: Any = None) -> list[str]:
    """The ``layers`` whose output is laid out sequence first, ``(steps, batch, ...)`` (:meth:`.ForwardTrace.sample_dim`);
    the logits among them where the model's own output is (:meth:`.ForwardTrace.output_sample_dim`, read with no
    ``output_key``).

    Example:
        >>> from lightning_topo.monitoring.trace import trace_forward
        >>> class SequenceFirst(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.encoder = nn.TransformerEncoderLayer(4, 1, 8)  # batch_first=False
        ...     def forward(self, x):
        ...         return self.encoder(x.transpose(0, 1)).mean(0)
        >>> steps_first_layers(trace_forward(SequenceFirst(), torch.zeros(2, 5, 4)), ["encoder", "encoder.linear1"])
        ['encoder', 'encoder.linear1']
    """
    logits = output_key is None and trace.output_sample_dim() == 1
    return [
        name
        for name in layers
        if (name == LOGITS and logits) or (name not in (INPUT, LOGITS) and trace.sample_dim(name) == 1)
    ]


def layer_layouts(
    model: nn.Module,
    trace: ForwardTrace,
    layers: Sequence[str],
    token_pooling: str | None,
    info: Callable[[str], Any] | None = None,
    mask: torch.Tensor | TokenMask | None = None,
    output_key: Any = None,
) -> dict[str, str]:
    """``{layer: layout}`` for the ``layers`` that are not read as ``(batch, tokens, features)``: the
    :func:`steps_first_layers` (:data:`.STEPS_FIRST`; the logits read with ``output_key``) and the layers of a row
    per choice of each sample (:data:`.CHOICE_ROWS`, :meth:`.ForwardTrace.choice_rows`), whatever the pooling, and
    the :func:`channels_first_layers`
    (:data:`.CHANNELS_FIRST`) that ``token_pooling`` must pool over their steps (none without pooling: flattening
    reads every layout alike). With ``info``, the monitor says which they are, which pooled layers the traced
    example's attention ``mask`` (or masks) cannot reach, and how an encoder-decoder's decoder is read.

    Example:
        >>> from lightning_topo.monitoring.trace import trace_forward
        >>> net = nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(32, 2))
        >>> layer_layouts(net, trace_forward(net, torch.zeros(2, 1, 10)), ["0", "3"], "mean")
        {'0': 'channels_first'}
    """
    steps_first = steps_first_layers(trace, layers, output_key)
    if steps_first and info is not None:
        info(
            f"BettiMonitor: {len(steps_first)} watched layers are laid out sequence first, (steps, batch, ...), as "
            f"nn.Transformer, nn.LSTM and nn.GRU without batch_first return them ({_shown(steps_first)}), so each "
            "sample's point is read along their second dimension"
        )
    choices = [name for name in layers if name not in (INPUT, LOGITS) and trace.choice_rows(name)]
    if choices and info is not None:
        info(
            f"BettiMonitor: {len(choices)} watched layers give a row per choice of each sample, as a multiple-choice "
            f"model reads its (batch, {trace.choices} choices, tokens) inputs ({_shown(choices)}), so each sample's "
            "point is its choices' side by side"
        )
    pooled = channels_first_layers(model, trace, layers) if token_pooling is not None else []
    if info is not None and token_pooling is not None:
        _say_how_pooling_reads(model, trace, layers, token_pooling, pooled, info, mask)
    return {
        **dict.fromkeys(pooled, CHANNELS_FIRST),
        **dict.fromkeys(steps_first, STEPS_FIRST),
        **{name: _choice_layout(trace, name, pooled) for name in choices},
    }


def _choice_layout(trace: ForwardTrace, name: str, channels_first: Sequence[str]) -> str:
    """The layout of a layer with a row per choice of each sample: its rows first, second (sequence first), or
    first before its channels (a 1-d convolution's, that pooling runs over its steps)."""
    if trace.choice_dim(name) == 1:
        return STEPS_FIRST_CHOICE_ROWS
    return CHANNELS_FIRST_CHOICE_ROWS if name in channels_first else CHOICE_ROWS
