"""Which layers a monitor measures on a model: the ``layers`` rule resolved on it (:mod:`.layers`), the inputs
first when they are measurable (not token ids), and what the default chose, said once when it is not plain."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from lightning_topo.monitoring.batches import ModelInputs, primary_tensor, same_shapes
from lightning_topo.monitoring.hooks import split_call
from lightning_topo.monitoring.layers import BLOCKS, INPUT, LOGITS, MAX_DEFAULT_LAYERS, find_blocks, resolve_layers
from lightning_topo.monitoring.trace import ForwardTrace, trace_forward

__all__ = ["watched_layers"]


def watched_layers(
    model: torch.nn.Module,
    layers: str | Sequence[str] | None,
    example: ModelInputs,
    forward: Callable,
    include_input: bool,
    info: Callable[[str], Any] | None = None,
    warn: Callable[[str], Any] | None = None,
    trace: ForwardTrace | None = None,
    output_key: Any = None,
    probe: ModelInputs | None = None,
) -> list[str]:
    """The layers to measure, in forward order; with ``info`` and ``warn``, the choice is announced.  One forward
    pass on ``example`` (:func:`~lightning_topo.monitoring.trace.trace_forward`, or ``trace`` if given) serves every
    rule. The logits are left out where the model's own output (read with no ``output_key``) holds no point per
    sample (:func:`_leave_out_logits_without_points`), and the inputs where the ``probe``'s (default: the example's)
    are images of different sizes, whose points would share no space."""
    trace = trace if trace is not None else trace_forward(model, example, forward)
    watched, rule = resolve_layers(model, layers, example, forward, trace)
    chosen = len(watched)
    if layers is None or isinstance(layers, str):  # a rule chose them: leave out what holds no point per sample
        hint = lambda: rule != BLOCKS and _blocks_hold_points(model, trace)  # noqa: E731  (only if one is left out)
        watched = _one_row_per_sample(watched, trace, info, hint)
    if info is not None and warn is not None:
        _announce(model, layers, watched, rule, info, warn, dropped=chosen - len(watched))
        _announce_calls(watched, trace, info)
    sizes_differ = not same_shapes(example if probe is None else probe)
    if INPUT in watched and sizes_differ:  # named by hand
        watched.remove(INPUT)
        if warn is not None:
            warn(_SIZES_DIFFER.format(warned=" (named in layers)"))
    elif include_input and INPUT not in watched:
        if sizes_differ:
            if info is not None:
                info(_SIZES_DIFFER.format(warned=""))
        elif primary_tensor(example).is_floating_point():
            watched.insert(0, INPUT)
        elif info is not None:  # token ids: their differences mean nothing, so neither would their Betti numbers
            info("BettiMonitor: the model inputs are integer ids (tokens), so layer 'input' is not measured")
    if LOGITS in watched and output_key is None:
        _leave_out_logits_without_points(model, layers, watched, trace, info, warn)
    return watched


_SIZES_DIFFER = (
    "BettiMonitor: the probe's images have different sizes (a list of one tensor per sample), so layer 'input'"
    "{warned} is not measured: its points would share no space"
)


def _leave_out_logits_without_points(
    model: torch.nn.Module,
    layers: str | Sequence[str] | None,
    watched: list[str],
    trace: ForwardTrace,
    info: Callable[[str], Any] | None,
    warn: Callable[[str], Any] | None,
) -> None:
    """Remove the logits from ``watched`` where the model's own output holds no point per sample: a similarity
    matrix of the batch (:meth:`~lightning_topo.monitoring.trace.ForwardTrace.output_depends_on_the_batch`) or an
    output whose rows are not the samples (a detector's list of detections). Said as a warning when they were
    named, and only where the traced second pass told how the output grows."""
    if trace.output_grown is None:
        return
    if trace.output_depends_on_the_batch():
        why = (
            "grows with the batch in two dimensions, a similarity matrix of the batch (CLIP's and SigLIP's "
            "logits_per_image: each image against the batch's texts)"
        )
        fix = "output_key='image_embeds' (or another per-sample output) measures it"
    elif trace.output_sample_dim() is None:
        why = (
            "has no dimension of one row per sample (a detector's detections per image, or logits flattened over "
            "tokens?)"
        )
        fix = "output_key=... names a per-sample output, if the model has one"
    else:
        return
    watched.remove(LOGITS)
    named = layers is not None and not isinstance(layers, str) and LOGITS in layers
    say = warn if named else info  # asked for by name, it is a warning: the user expects it measured
    if say is not None:
        say(
            f"BettiMonitor: {type(model).__name__}'s output (shape {trace.output_shape} for {trace.samples} "
            f"samples) {why}, so it holds no point per sample and 'logits' is not watched; {fix}"
        )


def _blocks_hold_points(model: torch.nn.Module, trace: ForwardTrace) -> bool:
    """Whether a block of the model holds a row per sample, so that ``layers='blocks'`` can watch what holds none."""
    return any(trace.one_row_per_sample(block) for block in find_blocks(model, trace))


def _one_row_per_sample(
    watched: list[str], trace: ForwardTrace, info: Callable[[str], Any] | None, hint: Callable[[], bool]
) -> list[str]:
    """``watched`` without the modules whose output has another first dimension than the samples (a Swin block's
    softmax over attention windows): their rows are windows or heads, so their Betti numbers would describe those.
    ``hint()``: whether the notice suggests the blocks (asked only when a layer is left out and ``info`` is given)."""
    hidden = [name for name in watched if name not in (INPUT, LOGITS)]
    other = [name for name in hidden if not trace.one_row_per_sample(name)]
    if other and info is not None:
        shown = ", ".join(f"{name} ({_rows(trace, name)})" for name in other[:3]) + (" ..." if len(other) > 3 else "")
        info(
            f"BettiMonitor: {len(other)} of the chosen layers give no row per sample ({shown} for {trace.samples} samples: "
            "attention windows, heads, patches, a table of positions or a batch's "
            "similarity matrix), so they are not watched"
            + ("; layers='blocks' watches the blocks that hold them" if hint() else "")
        )
    return [name for name in watched if name not in other]


def _rows(trace: ForwardTrace, name: str) -> str:
    """A layer's rows as a notice names them, saying so where they are as many as the samples but not theirs."""
    rows = trace.rows[name]
    return f"{rows} rows, not one per sample" if rows == trace.samples else f"{rows} rows"


def _announce_calls(watched: list[str], trace: ForwardTrace, info: Callable[[str], Any]) -> None:
    """Say which watched layers are calls of a module that runs more than once (a ``self.act`` called after every
    layer), and how their calls are named."""
    calls = [n for n in watched if split_call(n)[0] in trace.calls]
    reused = list(dict.fromkeys(split_call(n)[0] for n in calls))
    if not reused:
        return
    shown = "; ".join(f"{name}, {trace.calls[name]} calls" for name in reused[:3]) + (
        "; ..." if len(reused) > 3 else ""
    )
    info(
        f"BettiMonitor: {len(reused)} watched modules run more than once in a forward pass ({shown}); each call is a "
        f"layer of its own, name-callK its K-th and the plain name its last (watched: {', '.join(calls[:4])}"
        + (" ..." if len(calls) > 4 else "")
        + ")"
    )


def _announce(
    model: torch.nn.Module,
    layers: str | Sequence[str] | None,
    watched: list[str],
    rule: str,
    info: Callable[[str], Any],
    warn: Callable[[str], Any],
    dropped: int = 0,
) -> None:
    """Say which layers the default chose when it was not the plain activation rule, or that it found none
    (``dropped``: how many the rule chose that hold no row per sample)."""
    hidden = [name for name in watched if name not in (INPUT, "logits")]
    if layers is None and rule == BLOCKS:
        info(
            f"BettiMonitor: {type(model).__name__} has more than {MAX_DEFAULT_LAYERS} activation modules (or "
            f"none with a row per sample), so it watches the outputs of its {len(hidden)} blocks ({hidden[0]} ... "
            f"{hidden[-1]}); pass layers='activations' for every activation, or names/glob patterns"
        )
    elif layers is None and len(hidden) > MAX_DEFAULT_LAYERS:  # no blocks to fall back on: every activation
        tops = list(dict.fromkeys(name.split(".")[0] for name in hidden))
        warn(
            f"BettiMonitor: {type(model).__name__} has {len(hidden)} activation modules with a row per sample and no "
            f"repeated blocks, so the default watches all {len(hidden)} (every measurement's cost grows with them); "
            "pass layers=[...] with the names or glob patterns of the modules to watch (layers=['name', 'prefix*', "
            f"'logits']); its top-level modules: {', '.join(tops[:8])}{' ...' if len(tops) > 8 else ''}"
        )
    elif not hidden and (layers is None or isinstance(layers, str)):  # layers=["logits"]: the user's own choice
        found = (
            f"its {dropped} chosen layers hold no row per sample, and no repeated block holds one"
            if dropped
            else "no activation module and no repeated blocks"
        )
        warn(
            f"BettiMonitor: found no hidden layer to watch in {type(model).__name__} ({found}), so only the logits "
            "are measured; pass layers=[...] with module names or glob patterns "
            "(e.g. layers=['encoder.*']) to watch its layers"
        )
