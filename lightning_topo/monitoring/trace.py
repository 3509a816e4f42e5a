"""One traced forward pass on a small example: the order the modules run in, the shape of each one's output,
and how data flows between them (which module fed which, which modules use their input twice).

The layer rules read it (:mod:`.layers`): the forward order ranks the watched layers, the rows tell a layer with
one point per sample from one of attention windows, and the data flow tells a repeated block from a repeated
part of a block. A module *branches* when it uses its input again after something already computed from it, as a
residual block does (``x + f(x)``, or a shortcut called beside the main branch) and a plain chain of layers
never does. Torch operations are seen through a :class:`~torch.overrides.TorchFunctionMode`; a model that cannot
run under one is traced through its modules alone.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from lightning_topo.monitoring.batches import (
    ForwardFn,
    ModelInputs,
    SampleList,
    as_model_input,
    call_model,
    describe_inputs,
    is_image,
    n_samples,
    primary_tensor,
    take,
)
from lightning_topo.monitoring.hooks import CALL_SEPARATOR, eager, eval_mode, randomness_kept
from lightning_topo.monitoring.outputs import select_tensor

__all__ = ["ForwardTrace", "forward_order", "trace_forward", "unrunnable"]


@dataclass
class ForwardTrace:
    """What one forward pass showed of a model's modules, by name (see :func:`trace_forward`).

    A module that runs more than once (an activation a model's ``forward`` calls after every layer) has entries of
    its own for each earlier call, named ``name-callK`` (:func:`~lightning_topo.monitoring.hooks.split_call`) in
    ``rows``, ``shapes``, ``fed_by``, ``ended`` and ``called``; its plain name holds its last call there, but its
    first in ``order`` and ``fed_by`` (``last_fed_by`` holds what fed its last; :meth:`feeder` reads either).
    """

    #: the leaf modules in the order of their first call
    order: list[str] = field(default_factory=list)
    #: each called module's output's first dimension, at its last call (a module with no tensor output: absent)
    rows: dict[str, int] = field(default_factory=dict)
    #: each called module's measured output's shape, at its last call (absent like ``rows``)
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    #: module -> the module whose output was its input at its first call (the outermost one that returned it)
    fed_by: dict[str, str] = field(default_factory=dict)
    #: the modules that used their input again after computing something from it (residual and multi-branch units,
    #: and units that concatenate their input with what their layers made, in a child of theirs too)
    branching: set[str] = field(default_factory=set)
    #: the modules whose outputs one operation took together in a list (``torch.cat``, ``torch.stack``): branches
    #: side by side, or the outputs of a pipeline collected (see :func:`~lightning_topo.monitoring.layers.find_blocks`)
    joined: list[frozenset[str]] = field(default_factory=list)
    #: every module that ran
    called: set[str] = field(default_factory=set)
    #: module -> when its last call ended (0, 1, 2, ... over the pass), leaves and containers alike
    ended: dict[str, int] = field(default_factory=dict)
    #: whether torch operations were seen too (``False``: the model could not run under the function mode)
    saw_operations: bool = True
    #: the number of samples in the example (a module whose output has another number of rows holds no point each)
    samples: int = 0
    #: module -> how many times it ran (modules that ran once are absent)
    calls: dict[str, int] = field(default_factory=dict)
    #: each call of a module that ran more than once (``name-callK``, and its plain name for the last) -> how many leaves
    #: had run by the end of that call: where the call falls in ``order``
    slots: dict[str, int] = field(default_factory=dict)
    #: module that ran more than once -> what fed its last call (``fed_by`` holds its first)
    last_fed_by: dict[str, str] = field(default_factory=dict)
    #: each output's dimensions that grew in a second pass with one sample more (:func:`trace_forward`); empty when
    #: that pass could not run, and then the first dimension is taken for the samples'
    grown: dict[str, tuple[int, ...]] = field(default_factory=dict)
    #: the shape of the model's own output (the tensor the logits are read from, :func:`.select_tensor`), and its
    #: dimensions that grew in the second pass (``None``: that pass could not run)
    output_shape: tuple[int, ...] | None = None
    output_grown: tuple[int, ...] | None = None
    #: the choices of each sample where the inputs are token ids laid out ``(batch, choices, tokens)``, as a
    #: multiple-choice model's are (0: none): its layers give ``batch * choices`` rows (:meth:`choice_rows`)
    choices: int = 0

    def feeder(self, layer: str) -> str | None:
        """What fed ``layer``'s call: a call's own feeder, a module's plain name its last call's."""
        return self.last_fed_by.get(layer, self.fed_by.get(layer))

    def call_names(self, name: str) -> list[str]:
        """Module ``name``'s calls as layers, in order: ``[name-call1, ..., name-call{n-1}, name]`` (``[name]``: one call)."""
        return [f"{name}{CALL_SEPARATOR}{k}" for k in range(1, self.calls.get(name, 1))] + [name]

    def one_row_per_sample(self, name: str) -> bool:
        """Whether module ``name``'s output holds one row per sample, in its first dimension or, laid out
        sequence first, its second (:meth:`sample_dim`), or a row per choice of each sample (:meth:`choice_rows`),
        read as one point a sample; a module without a tensor output counts as one: its measurement says what it
        lacks."""
        return name not in self.shapes or self.sample_dim(name) is not None or self.choice_rows(name)

    def choice_rows(self, name: str) -> bool:
        """Whether module ``name``'s output holds a row per choice of each sample, ``(batch * choices, ...)``, as a
        multiple-choice model flattens its ``(batch, choices, tokens)`` inputs (:attr:`choices`), or, laid out
        sequence first, ``(steps, batch * choices, ...)`` (XLNet's): rows that grew, alone, with one sample more
        (:meth:`choice_dim`).

        Example:
            >>> class MultipleChoice(nn.Module):
            ...     def __init__(self):
            ...         super().__init__()
            ...         self.embed, self.score = nn.Embedding(10, 4), nn.Linear(4, 1)
            ...     def forward(self, input_ids):  # (batch, choices, tokens)
            ...         return self.score(self.embed(input_ids.flatten(0, 1)).mean(1)).view(len(input_ids), -1)
            >>> trace = trace_forward(MultipleChoice(), {"input_ids": torch.zeros(2, 3, 5, dtype=torch.long)})
            >>> trace.shapes["embed"], trace.choice_rows("embed"), trace.one_row_per_sample("embed")
            ((6, 5, 4), True, True)
        """
        return self.choice_dim(name) is not None

    def choice_dim(self, name: str) -> int | None:
        """The dimension of module ``name``'s output that holds a row per choice of each sample (:meth:`choice_rows`):
        0, or 1 for an output laid out sequence first (known only where the second pass ran); else ``None``."""
        shape = self.shapes.get(name)
        if self.choices < 2 or shape is None:
            return None
        rows = self.samples * self.choices
        if shape[0] == rows and (not self.grown or self.grown.get(name) == (0,)):
            return 0
        if len(shape) > 1 and shape[1] == rows and self.grown.get(name) == (1,):
            return 1
        return None

    def output_depends_on_the_batch(self) -> bool:
        """Whether the model's own output grew in two dimensions with one sample more: a batch's similarity
        matrix, as CLIP's and SigLIP's ``logits_per_image`` (each image against the batch's texts), no point per
        sample."""
        return self.output_grown is not None and len(self.output_grown) > 1

    def output_sample_dim(self) -> int | None:
        """:meth:`sample_dim` of the model's own output (the tensor its logits are read from)."""
        return _sample_dim(self.output_shape, self.output_grown, self.samples)

    def sample_dim(self, name: str) -> int | None:
        """The dimension of module ``name``'s output that holds its samples: 0 for ``(batch, ...)``; 1 for an
        output laid out sequence first, ``(steps, batch, ...)`` (PyTorch's ``nn.Transformer*``, ``nn.LSTM`` and
        ``nn.GRU`` without ``batch_first``, XLNet), known by the dimension that grew with one sample more; ``None``
        when no dimension holds one row per sample (attention windows, heads, a multiple-choice model's choices) or
        when several grew (a batch's similarity matrix, CLIP's ``logits_per_image``).

        Example:
            >>> class SequenceFirst(nn.Module):
            ...     def __init__(self):
            ...         super().__init__()
            ...         self.lstm = nn.LSTM(3, 4)  # batch_first=False: (steps, batch, features)
            ...     def forward(self, x):
            ...         return self.lstm(x.transpose(0, 1))[0][-1]
            >>> trace = trace_forward(SequenceFirst(), torch.zeros(2, 7, 3))
            >>> trace.shapes["lstm"], trace.sample_dim("lstm")
            ((7, 2, 4), 1)
        """
        return _sample_dim(self.shapes.get(name), self.grown.get(name), self.samples)


def _sample_dim(shape: tuple[int, ...] | None, grown: tuple[int, ...] | None, samples: int) -> int | None:
    """The dimension of an output of ``shape`` that holds the ``samples``, given the dimensions that ``grown`` with
    one sample more (``None``: unknown, so the first when it counts them)."""
    if shape is None:
        return None
    if grown is None:
        return 0 if shape[0] == samples else None
    if len(grown) != 1 or shape[grown[0]] != samples or grown[0] > 1:
        return None
    return grown[0]


@dataclass
class _Call:
    """One module call in progress: its input, and whether something new was already computed from it."""

    name: str
    input: torch.Tensor | None
    used: bool = False


def _flat(values: Iterable[Any]) -> Iterator[Any]:
    """The values, a list's or tuple's items in its place (the tensors ``torch.cat`` takes)."""
    for value in values:
        if isinstance(value, (list, tuple)):
            yield from value
        else:
            yield value


def _first_tensor(args: Iterable[Any], kwargs: Mapping[str, Any]) -> torch.Tensor | None:
    for value in (*args, *kwargs.values()):
        if isinstance(value, torch.Tensor):
            return value
    return None


def _output_tensor(output: Any) -> torch.Tensor | None:
    if isinstance(output, torch.Tensor):
        return output
    values = output.values() if isinstance(output, Mapping) else output if isinstance(output, (tuple, list)) else ()
    return next((value for value in values if isinstance(value, torch.Tensor)), None)


def _measured_tensor(output: Any) -> torch.Tensor | None:
    """The tensor a measurement of this output would read (:func:`~lightning_topo.monitoring.outputs.select_tensor`:
    a ``ModelOutput``'s logits, else its first tensor)."""
    try:
        return select_tensor(output)
    except TypeError:  # no tensor at all: the measurement says so, layer by layer
        return None


class _Tracer:
    """The hooks and the function mode of one traced pass, writing into a :class:`ForwardTrace`."""

    def __init__(self, model: nn.Module) -> None:
        self.trace = ForwardTrace()
        self.stack: list[_Call] = []
        # id(tensor) -> (the tensor, the module that made it, at which of its calls)
        self.producers: dict[int, tuple[weakref.ref, str, int]] = {}
        self.leaves = {name for name, module in model.named_modules() if next(module.children(), None) is None}
        self.ends = itertools.count()
        self.fed_at: dict[str, list[tuple[str, int] | None]] = {}  # module -> what fed it (and its call), each call
        self.done: dict[str, list[tuple[int, int, tuple[int, ...] | None]]] = {}  # its (end, slot, shape) per call

    def use(self, tensors: Iterable[Any], result: Any) -> None:
        """Running modules' inputs were used: a second use after a computing one is a branch. An input is the
        innermost running module's that took it (a ``Sequential`` passes its input on to its first layer, whose use
        it is), and a use may come from deeper in the pass (a VoVNet block's input, concatenated inside its
        ``conv_mid``)."""
        values = list(_flat(tensors))
        taken: list[torch.Tensor] = []
        for call in reversed(self.stack):
            if call.input is None or any(call.input is other for other in taken):
                continue
            taken.append(call.input)
            if not any(value is call.input for value in values):
                continue
            if call.used:
                self.trace.branching.add(call.name)
            elif result is not None and result is not call.input:  # an Identity or in-place op computes nothing
                call.used = True

    def join(self, lists: Iterable[Sequence[Any]]) -> None:
        """An operation took these lists of tensors: the modules that made two or more of them were joined."""
        for values in lists:
            makers = set()
            for value in values:
                producer = self.producers.get(id(value)) if isinstance(value, torch.Tensor) else None
                if producer is not None and producer[0]() is value:
                    makers.add(producer[1])
            if len(makers) > 1 and frozenset(makers) not in self.trace.joined:
                self.trace.joined.append(frozenset(makers))

    def before(self, name: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: tuple, kwargs: dict) -> None:
            x = _first_tensor(args, kwargs)
            feeder = None
            if x is not None:
                self.use([x], None)  # a second use is seen now; whether this one computes, after the call
                producer = self.producers.get(id(x))
                if producer is not None and producer[0]() is x:
                    feeder = producer[1:]
            self.fed_at.setdefault(name, []).append(feeder)
            self.stack.append(_Call(name, x))

        return hook

    def after(self, name: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
            call = self.stack.pop() if self.stack and self.stack[-1].name == name else _Call(name, None)
            trace = self.trace
            out = _output_tensor(output)
            if name in self.leaves and name not in trace.called:
                trace.order.append(name)
            trace.called.add(name)
            trace.ended[name] = next(self.ends)
            # the model's own output ("") is read as its logits are, deep in a list of dicts (a detector's) too
            measured = _measured_tensor(output) if out is not None or not name else None
            shape = tuple(measured.shape) if measured is not None and measured.dim() > 0 else None
            self.done.setdefault(name, []).append((trace.ended[name], len(trace.order), shape))
            if shape is not None:
                trace.rows[name] = shape[0]
                trace.shapes[name] = shape
            if out is None:
                return
            if self.stack and call.input is not None and self.stack[-1].input is call.input:
                parent = self.stack[-1]  # this child took its parent's input: did it compute something from it?
                if out is not call.input:
                    parent.used = True
            if out is not call.input:  # a pass-through's output keeps its producer
                self.producers[id(out)] = (weakref.ref(out), name, len(self.done[name]))

        return hook

    def layer(self, name: str, call: int) -> str:
        """The layer that stands for a module's ``call``: its plain name for its last (or only) call, else
        ``name-callK``."""
        return name if call >= len(self.done.get(name, ())) else f"{name}{CALL_SEPARATOR}{call}"

    def name_the_calls(self) -> None:
        """What fed each module (at its first call), and entries of their own for the earlier calls of the modules
        that ran more than once (``name-callK``)."""
        trace = self.trace
        for name, feeders in self.fed_at.items():
            if feeders and feeders[0] is not None and name:
                trace.fed_by[name] = self.layer(*feeders[0])
        for name, calls in self.done.items():
            if len(calls) < 2 or not name:
                continue
            trace.calls[name] = len(calls)
            feeders = self.fed_at.get(name, [])
            if feeders and feeders[-1] is not None:
                trace.last_fed_by[name] = self.layer(*feeders[-1])
            for k, (end, slot, shape) in enumerate(calls, start=1):
                layer = self.layer(name, k)
                trace.slots[layer] = slot
                if layer == name:
                    continue
                trace.called.add(layer)
                trace.ended[layer] = end
                if shape is not None:
                    trace.rows[layer], trace.shapes[layer] = shape[0], shape
                if k <= len(feeders) and feeders[k - 1] is not None:
                    trace.fed_by[layer] = self.layer(*feeders[k - 1])


class _Operations(TorchFunctionMode):
    """Sees every torch operation of the pass, to notice a module's input used by its own code (``x + f(x)``)."""

    def __init__(self, tracer: _Tracer) -> None:
        super().__init__()
        self.tracer = tracer

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        name = getattr(func, "__name__", "")
        reads_metadata_only = name.endswith("_like") or name.startswith("new_")  # zeros_like(x): x's shape only
        if isinstance(result, torch.Tensor) and not reads_metadata_only:  # x.shape, x.size(0): no new data either
            # mask.type_as(x), y.view_as(x): the data is the first argument's, the other's dtype or shape alone
            read = args[:1] if name in _READS_THE_OTHERS_METADATA else (*args, *kwargs.values())
            self.tracer.use(read, result)
            self.tracer.join(value for value in args if isinstance(value, (list, tuple)))
        return result


#: Tensor methods that read only the dtype, device or shape of their other tensor argument (a Funnel encoder's
#: ``attention_mask.type_as(inputs_embeds)`` is no use of its input).
_READS_THE_OTHERS_METADATA = frozenset({"type_as", "to", "view_as", "reshape_as", "expand_as"})


def trace_forward(model: nn.Module, example: ModelInputs, forward: ForwardFn = call_model) -> ForwardTrace:
    """One forward pass on ``example`` (eval mode, no gradients, nothing changed) with every module traced.

    Raises:
        ValueError: the model cannot run on ``example``; the message names the inputs and the options to check.

    Example:
        >>> class Residual(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.body = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
        ...     def forward(self, x):
        ...         return x + self.body(x)
        >>> trace = trace_forward(nn.Sequential(Residual(), nn.Linear(3, 2)), torch.zeros(4, 3))
        >>> trace.order, sorted(trace.branching), trace.fed_by["1"], trace.rows["1"]
        (['0.body.0', '0.body.1', '1'], ['0'], '0', 4)
    """
    inputs = as_model_input(model, example)
    try:
        try:
            trace = _traced_pass(model, inputs, forward, operations=True)
        except Exception:  # a model that cannot run under a function mode: its modules alone are traced
            trace = _traced_pass(model, inputs, forward, operations=False)
            trace.saw_operations = False
    except Exception as error:  # the first call on the probe: a mismatch here is a configuration error
        raise unrunnable(model, example, error, forward) from error
    trace.samples = n_samples(example)
    trace.choices = _choices(example, trace.output_shape)
    trace.grown, trace.output_grown = _grown_dimensions(model, example, forward, trace)
    return trace


def _choices(example: ModelInputs, output_shape: tuple[int, ...] | None) -> int:
    """The choices of each sample where the token ids (a mapping's ``input_ids``, else the first tensor of
    ``int64`` or ``int32`` ids, not ``uint8`` pixels) are laid out ``(batch, choices, tokens)`` and the model scores
    each choice, ``(batch, choices)`` logits, as a multiple-choice model does; else 0 (a character-level model's
    ``(batch, words, characters)`` ids)."""
    if isinstance(example, Mapping):
        ids = example.get("input_ids")
    elif isinstance(example, SampleList):
        ids = None
    else:
        first = primary_tensor(example)
        ids = first if first.dtype in (torch.int64, torch.int32) else None
    if not isinstance(ids, torch.Tensor) or ids.dim() != 3:
        return 0
    return ids.shape[1] if output_shape == (ids.shape[0], ids.shape[1]) else 0


def _grown_dimensions(
    model: nn.Module, example: ModelInputs, forward: ForwardFn, trace: ForwardTrace
) -> tuple[dict[str, tuple[int, ...]], tuple[int, ...] | None]:
    """Each output's dimensions that grow with the samples, and the model's own output's, from a second pass on
    ``example`` and its first sample again (its modules alone traced); none where that pass cannot run (a model
    built for one batch size)."""
    try:
        wider = take(example, torch.arange(n_samples(example) + 1) % n_samples(example))
        second = _traced_pass(model, as_model_input(model, wider), forward, operations=False)
    except Exception:  # also inputs that cannot be indexed by sample (a 0-d tensor beside them)
        return {}, None
    grown = {}
    for name, shape in trace.shapes.items():
        found = _grown(shape, second.shapes.get(name))
        if found is not None:
            grown[name] = found
    return grown, _grown(trace.output_shape, second.output_shape)


def _grown(shape: tuple[int, ...] | None, wider: tuple[int, ...] | None) -> tuple[int, ...] | None:
    """The dimensions in which ``wider`` (the second pass's shape) differs from ``shape``; ``None`` when either is
    missing or their ranks differ."""
    if shape is None or wider is None or len(shape) != len(wider):
        return None
    return tuple(dim for dim, (size, more) in enumerate(zip(shape, wider)) if size != more)


def unrunnable(
    model: nn.Module, example: ModelInputs, error: Exception, forward: ForwardFn | None = None
) -> ValueError:
    """The error for a model that cannot run on the probe's first samples ``example``: the inputs, the model's own
    error, and the options that say what the model takes; given the ``forward`` it was called with, whether the model
    runs on one sample alone (then it takes one sample per call, and none of those options helps)."""
    if forward is not None and n_samples(example) > 1 and _runs_on_one_sample(model, example, forward):
        return ValueError(
            f"{type(model).__name__} runs on one sample of the probe but not on {n_samples(example)} together "
            f"({type(error).__name__}: {error}): it takes one sample per call, and the monitor runs its probe in "
            "passes of several samples. A Hugging Face model with no pad token refuses batches of more than one: "
            "give it one (model.config.pad_token_id = tokenizer.eos_token_id, as its error advises), and its batches "
            "then can hold several samples too"
        )
    return ValueError(
        f"{type(model).__name__} could not be run on the probe's inputs ({describe_inputs(example)}, "
        f"{n_samples(example)} samples): {type(error).__name__}: {error}. The probe must hold what the model takes: "
        "check probe=(inputs, labels), input_keys, label_key (a batch's labels are left out of the inputs) and "
        "forward_fn (a forward that takes keyword arguments only: forward_fn=lambda module, x: module(x=x)). (If the "
        "model cannot run on its training batches either, they do not fit the model, e.g. an image size other than "
        "the one it was built for, and no monitor option will help.)" + _sample_list_hint(example)
    )


def _runs_on_one_sample(model: nn.Module, example: ModelInputs, forward: ForwardFn) -> bool:
    """Whether ``model`` runs on the first sample of ``example`` alone, called as the failed pass called it."""
    try:
        with eval_mode(model), torch.no_grad(), eager(), randomness_kept(model):
            forward(model, as_model_input(model, take(example, slice(0, 1))))
    except Exception:  # any failure: it does not run on one sample either
        return False
    return True


def _sample_list_hint(example: ModelInputs) -> str:
    """A hint for a plain tuple of images, read as positional arguments, that may be one image per sample."""
    images = type(example) is tuple and len(example) > 1
    if not images or not all(is_image(t) for t in example):
        return ""
    return (
        f" The {len(example)} (channels, height, width) tensors were passed as {len(example)} positional arguments; "
        "if they are one image per sample, as a detector takes them, give probe=(SampleList([...]), labels) "
        "(SampleList from lightning_topo.monitoring)"
    )


def _traced_pass(model: nn.Module, inputs: ModelInputs, forward: ForwardFn, operations: bool) -> ForwardTrace:
    tracer = _Tracer(model)
    handles = []
    try:
        for name, module in model.named_modules():
            handles.append(module.register_forward_pre_hook(tracer.before(name), with_kwargs=True))
            handles.append(module.register_forward_hook(tracer.after(name), with_kwargs=True))
        with eval_mode(model), torch.no_grad(), eager(), randomness_kept(model):
            if operations:
                with _Operations(tracer):
                    forward(model, inputs)
            else:
                forward(model, inputs)
    finally:
        for handle in handles:
            handle.remove()
    tracer.name_the_calls()
    trace = tracer.trace
    trace.called.discard("")
    trace.rows.pop("", None)
    trace.output_shape = trace.shapes.pop("", None)
    trace.ended.pop("", None)
    trace.branching.discard("")
    return trace


def forward_order(model: nn.Module, example: ModelInputs, forward: ForwardFn = call_model) -> list[str]:
    """Names of the leaf modules in the order a forward pass on ``example`` calls them (first call).

    The pass runs in eval mode without gradients, so it changes nothing a later fit depends on: no
    BatchNorm running statistic is updated and no Dropout draws from the random generator.

    Example:
        >>> forward_order(nn.Sequential(nn.Linear(2, 3), nn.ReLU()), torch.zeros(1, 2))
        ['0', '1']
    """
    return trace_forward(model, example, forward).order
