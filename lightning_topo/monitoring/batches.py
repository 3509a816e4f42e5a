"""Training batches of any convention: where the model inputs and the labels are, and how the model is called.

Real training loops feed ``(x, y)`` tuples, dicts (``{"image": x, "label": y}``), Hugging Face batches
(``input_ids``, ``attention_mask``, ``labels``; a ``BatchEncoding`` is a ``Mapping``) and dataclasses.  The rule,
used by the monitor's probe, its forward passes and :class:`~lightning_topo.callbacks.BettiPruning` alike:

A dataclass, or an object of the user's own with tensor attributes (``batch.x``, ``batch.y``), is read as the
mapping of its fields or public attributes.

1. **labels**: ``label_key`` if given (a key, attribute or tuple index); else a mapping's first of
   ``labels``, ``label``, ``y``, ``target``, ``targets``; else a tuple's second item. One-hot labels are read as
   their class indices; labels that are no class per sample (multi-label, soft, regression or token labels, or
   none) are an error, or :data:`NO_CLASS` for the monitor, which then measures its probe as one cloud.
2. **model inputs**: ``input_keys`` if given (one key: that tensor; several: a dict, or a tuple for indices);
   else a mapping's first of ``x``, ``image``, ``images``, ``input``, ``inputs`` (today's convention, one tensor),
   or all its other tensors (a Hugging Face batch, labels and other targets such as a question-answering head's
   ``start_positions`` left out); else a tuple's first item, or the batch
   itself when it is one tensor. A list of tensors is one per sample, a :class:`SampleList` (images of any size,
   as torchvision's detection models take them, batched by ``collate_fn=lambda b: tuple(zip(*b))``), where the
   labels are one per tensor and not one per row, or the tensors share no first dimension (:func:`_one_per_sample`);
   else positional arguments. An
   encoder-decoder model's batch without ``decoder_input_ids`` gets them from its token labels, as Hugging Face's
   ``DataCollatorForSeq2Seq`` makes them (``decoder_inputs``, found by :func:`decoder_inputs_of`): the decoder
   sees what it sees in training.
3. **the call**: ``forward_fn(module, inputs)`` if given; else ``module(x)`` for a tensor, ``module(**inputs)``
   for a mapping (so an HF model computes no loss), ``module(*inputs)`` for a tuple, ``module([...])`` for a
   :class:`SampleList`.

Model inputs are kept in their structure (a BERT probe holds ``input_ids`` and ``attention_mask`` together); the
helpers below index, join, move and pin such structures as one.

Example:
    >>> import torch
    >>> reader = BatchReader()
    >>> batch = {"input_ids": torch.ones(4, 6, dtype=torch.long), "attention_mask": torch.ones(4, 6), "labels": torch.arange(4)}
    >>> inputs, labels = reader.split(batch)
    >>> sorted(inputs), labels.tolist()
    (['attention_mask', 'input_ids'], [0, 1, 2, 3])
    >>> n_samples(take(inputs, slice(0, 2)))
    2
"""

from __future__ import annotations

import dataclasses
import inspect
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "LABEL_KEYS",
    "TARGET_KEYS",
    "NO_CLASS",
    "TOKEN_ID_KEYS",
    "SampleList",
    "POSITIONAL_KEYS",
    "BatchReader",
    "ForwardFn",
    "ModelInputs",
    "as_model_input",
    "attention_mask",
    "call_model",
    "classes_present",
    "concat",
    "config_pad_id",
    "decoder_inputs_of",
    "describe_inputs",
    "has_class",
    "n_samples",
    "one_hot_classes",
    "pin",
    "positions",
    "is_image",
    "primary_tensor",
    "same_shapes",
    "shift_right",
    "take",
    "to_host",
    "whole_number_classes",
]


class SampleList(tuple[torch.Tensor, ...]):
    """Model inputs given as one tensor per sample, passed to the model as a list: torchvision's detection
    models take ``model([image, ...])``, images of any size, batched by ``collate_fn=lambda b: tuple(zip(*b))``.
    A plain tuple of tensors is positional arguments instead.

    Example:
        >>> images = SampleList([torch.zeros(3, 4, 5), torch.zeros(3, 6, 5), torch.zeros(3, 4, 4)])
        >>> n_samples(images), [tuple(t.shape) for t in take(images, torch.tensor([2, 0]))]
        (3, [(3, 4, 4), (3, 4, 5)])
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"SampleList({list(self)!r})"


#: A probe's model inputs: one tensor, a dict of tensors (keyword arguments), a tuple (positional arguments) or a
#: :class:`SampleList` (a tuple too: one tensor per sample, passed as a list).
ModelInputs = torch.Tensor | dict[str, torch.Tensor] | tuple[torch.Tensor, ...]
#: ``forward_fn(module, inputs) -> output``: how to call the model on a probe batch, for what the rule cannot guess.
ForwardFn = Callable[[nn.Module, Any], Any]

#: The label of every point of a probe drawn from batches with no class per sample: it is measured as one cloud.
NO_CLASS = -1

LABEL_KEYS = ("labels", "label", "y", "target", "targets")
#: Targets of Hugging Face heads that are not ``labels``: never model inputs (given, the model computes a loss).
TARGET_KEYS = ("start_positions", "end_positions", "next_sentence_label", "sentence_order_label", "mc_labels")
POSITIONAL_KEYS = ("x", "image", "images", "input", "inputs")
_PRIMARY_KEYS = ("pixel_values", "input_ids", "input_values", "inputs_embeds", *POSITIONAL_KEYS)


def has_class(labels: torch.Tensor) -> torch.Tensor:
    """Which samples have a class: a negative label is none (:data:`NO_CLASS`, a semi-supervised loader's unlabelled
    -1, a loss's ``ignore_index=-100``).

    Example:
        >>> has_class(torch.tensor([0, -1, 2, -100])).tolist()
        [True, False, True, False]
    """
    return labels >= 0


def classes_present(labels: torch.Tensor) -> list[int]:
    """The classes among ``labels``, sorted; negative labels are none (:func:`has_class`).

    Example:
        >>> classes_present(torch.tensor([2, -1, 0, 2]))
        [0, 2]
    """
    return [int(c) for c in torch.unique(labels[has_class(labels)])]


# ---------------------------------------------------------------------------------------------- structures
def _map(fn: Callable[[torch.Tensor], torch.Tensor], inputs: ModelInputs) -> ModelInputs:
    if isinstance(inputs, torch.Tensor):
        return fn(inputs)
    if isinstance(inputs, Mapping):
        return {key: fn(value) for key, value in inputs.items()}
    values = (fn(value) for value in inputs)
    return SampleList(values) if isinstance(inputs, SampleList) else tuple(values)


def _tensors(inputs: ModelInputs) -> list[torch.Tensor]:
    if isinstance(inputs, torch.Tensor):
        return [inputs]
    return list(inputs.values()) if isinstance(inputs, Mapping) else list(inputs)


def n_samples(inputs: ModelInputs) -> int:
    """The number of samples (the first dimension) of a tensor, dict or tuple of tensors; a :class:`SampleList`'s
    length."""
    return len(inputs) if isinstance(inputs, SampleList) else len(_tensors(inputs)[0])


def positions(index: torch.Tensor) -> torch.Tensor:
    """The row positions a boolean mask or an index tensor picks, as a 1-d index tensor.

    Example:
        >>> positions(torch.tensor([True, False, True])), positions(torch.tensor([[2], [0]]))
        (tensor([0, 2]), tensor([2, 0]))
    """
    return torch.nonzero(index).flatten() if index.dtype == torch.bool else index.reshape(-1)


def take(inputs: ModelInputs, index: slice | torch.Tensor) -> ModelInputs:
    """The same rows of every tensor of the structure (a view for a slice).

    Example:
        >>> take((torch.arange(4), torch.arange(4) * 2), torch.tensor([3, 1]))
        (tensor([3, 1]), tensor([6, 2]))
    """
    if isinstance(inputs, SampleList):
        if isinstance(index, slice):
            picked: Sequence[int] = range(len(inputs))[index]
        else:
            picked = positions(index).tolist()
        return SampleList(inputs[i] for i in picked)
    return _map(lambda tensor: tensor[index], inputs)


def to_host(inputs: ModelInputs) -> ModelInputs:
    """Every tensor detached and on the CPU (where a probe is kept)."""
    return _map(lambda tensor: tensor.detach().cpu(), inputs)


def attention_mask(inputs: ModelInputs) -> torch.Tensor | None:
    """The ``attention_mask`` of mapping inputs (a Hugging Face batch), else ``None``.

    Example:
        >>> attention_mask({"input_ids": torch.zeros(1, 3), "attention_mask": torch.ones(1, 3)}).shape
        torch.Size([1, 3])
    """
    mask = inputs.get("attention_mask") if isinstance(inputs, Mapping) else None
    return mask if isinstance(mask, torch.Tensor) else None


def whole_number_classes(labels: torch.Tensor) -> torch.Tensor | None:
    """Labels as class indices: whole-number float or bool labels (``BCEWithLogitsLoss``'s 0./1. targets) as
    ``long``, integer labels as they are; ``None`` for fractional (or NaN) floats, which are no classes.

    Example:
        >>> whole_number_classes(torch.tensor([0.0, 1.0])).tolist(), whole_number_classes(torch.tensor([0.3]))
        ([0, 1], None)
    """
    if labels.is_floating_point():
        return labels.long() if bool((labels == labels.round()).all()) else None
    return labels.long() if labels.dtype == torch.bool else labels


def one_hot_classes(labels: torch.Tensor) -> torch.Tensor:
    """One-hot labels ``(n, classes)`` (each row one 1, else 0) as their class indices; other labels as they are.

    Example:
        >>> one_hot_classes(torch.tensor([[0.0, 1.0], [1.0, 0.0]])).tolist(), one_hot_classes(torch.ones(2, 2)).shape
        ([1, 0], torch.Size([2, 2]))
    """
    if labels.dim() != 2 or labels.shape[1] < 2 or labels.is_complex():
        return labels
    hot = labels == 1
    if not bool((hot | (labels == 0)).all()) or not bool((hot.sum(1) == 1).all()):
        return labels
    return hot.long().argmax(1)


def describe_inputs(inputs: ModelInputs) -> str:
    """Each tensor's dtype and shape, for an error message.

    Example:
        >>> describe_inputs({"input_ids": torch.zeros(2, 5, dtype=torch.long)})
        '{input_ids: int64 (2, 5)}'
    """

    def one(tensor: torch.Tensor) -> str:
        return f"{str(tensor.dtype).removeprefix('torch.')} {tuple(tensor.shape)}"

    if isinstance(inputs, torch.Tensor):
        return one(inputs)
    if isinstance(inputs, SampleList):
        shapes = list(dict.fromkeys(one(value) for value in inputs))
        return f"[{len(inputs)} samples: " + ", ".join(shapes[:3]) + (", ..." if len(shapes) > 3 else "") + "]"
    if isinstance(inputs, Mapping):
        return "{" + ", ".join(f"{key}: {one(value)}" for key, value in inputs.items()) + "}"
    return "(" + ", ".join(one(value) for value in inputs) + ")"


def pin(inputs: ModelInputs) -> ModelInputs:
    """Every tensor in page-locked memory (faster, non-blocking copies to a GPU); raises ``RuntimeError`` if none."""
    return _map(lambda tensor: tensor if tensor.is_pinned() else tensor.pin_memory(), inputs)


def primary_tensor(inputs: ModelInputs) -> torch.Tensor:
    """The tensor that *is* the input, for the ``"input"`` pseudo-layer: ``pixel_values``/``input_ids``/..., or the
    first; a :class:`SampleList`'s samples stacked, ``ValueError`` where their shapes differ (:func:`same_shapes`).

    Example:
        >>> primary_tensor({"attention_mask": torch.ones(2, 3), "input_ids": torch.zeros(2, 3)}).sum().item()
        0.0
    """
    if isinstance(inputs, SampleList):
        if not same_shapes(inputs):
            raise ValueError(f"the samples have different shapes ({describe_inputs(inputs)}): no one tensor holds them")
        return torch.stack(tuple(inputs))
    if isinstance(inputs, Mapping):
        for key in _PRIMARY_KEYS:
            if key in inputs:
                return inputs[key]
    return _tensors(inputs)[0]


def is_image(tensor: torch.Tensor) -> bool:
    """Whether ``tensor`` reads as one image, a float ``(channels, height, width)``: what a :class:`SampleList`
    holds, where a plain tuple's positional arguments each hold a batch.

    Example:
        >>> is_image(torch.zeros(3, 8, 8)), is_image(torch.zeros(2, 3, 8, 8)), is_image(torch.zeros(3, 8, 8).long())
        (True, False, False)
    """
    return tensor.dim() == 3 and tensor.is_floating_point()


def same_shapes(inputs: ModelInputs) -> bool:
    """Whether the samples of ``inputs`` share one shape (always, except a :class:`SampleList` of images of
    different sizes)."""
    return not isinstance(inputs, SampleList) or len({tuple(t.shape) for t in inputs}) <= 1


#: Keys whose padding value is the model's pad token id; every other padded tensor is padded with 0.
TOKEN_ID_KEYS = ("input_ids", "decoder_input_ids")
#: Keys of an encoder-decoder batch's decoder inputs.
DECODER_KEYS = ("decoder_input_ids", "decoder_inputs_embeds")


def decoder_inputs_of(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """How an encoder-decoder model makes its decoder's inputs from token labels: the
    ``prepare_decoder_input_ids_from_labels`` of the model or a submodule (T5, BART, Marian, ...; a LightningModule
    that wraps one), as ``DataCollatorForSeq2Seq`` uses it; else, for a Hugging Face encoder-decoder whose forward
    shifts its labels itself (Whisper, Speech2Text, Blenderbot), :func:`shift_right` with its config's
    ``decoder_start_token_id`` and ``pad_token_id``; else ``None``.

    Example:
        >>> class Seq2Seq(nn.Module):
        ...     def prepare_decoder_input_ids_from_labels(self, labels):
        ...         return torch.cat([torch.zeros_like(labels[:, :1]), labels[:, :-1].clamp(min=0)], 1)
        >>> decoder_inputs_of(nn.Sequential(Seq2Seq()))(torch.tensor([[5, 6, -100]])).tolist()
        [[0, 5, 6]]
    """
    for module in model.modules():
        prepare = getattr(module, "prepare_decoder_input_ids_from_labels", None)
        if callable(prepare):
            return lambda labels: prepare(labels=labels)
    for module in model.modules():  # Whisper, Speech2Text, Blenderbot ...: the shift is inside their forward
        config = getattr(module, "config", None)
        start, pad = getattr(config, "decoder_start_token_id", None), getattr(config, "pad_token_id", None)
        if getattr(config, "is_encoder_decoder", False) is True and isinstance(start, int) and isinstance(pad, int):
            return lambda labels: shift_right(labels, start, pad)
    return None


def config_pad_id(model: nn.Module, encoder_decoder: bool = False) -> int | None:
    """The pad token id (``config.pad_token_id``, a non-negative integer) of the first Hugging Face model inside
    ``model`` that has one; with ``encoder_decoder``, of the first encoder-decoder (``config.is_encoder_decoder``);
    else ``None``.

    Example:
        >>> class Seq2Seq(nn.Module):
        ...     config = type("Config", (), {"is_encoder_decoder": True, "pad_token_id": 1})()
        >>> config_pad_id(nn.Sequential(Seq2Seq())), config_pad_id(nn.Linear(2, 2), encoder_decoder=True)
        (1, None)
    """
    for module in model.modules():
        config = getattr(module, "config", None)
        if encoder_decoder and getattr(config, "is_encoder_decoder", False) is not True:
            continue
        pad = getattr(config, "pad_token_id", None)
        if isinstance(pad, int) and not isinstance(pad, bool) and pad >= 0:
            return pad
    return None


def shift_right(labels: torch.Tensor, start: int, pad: int) -> torch.Tensor:
    """Token labels as a decoder's inputs: shifted one place right behind ``start``, ``-100`` (ignored) as ``pad``,
    as Hugging Face's ``shift_tokens_right`` makes them.

    Example:
        >>> shift_right(torch.tensor([[7, 8, -100]]), start=2, pad=0).tolist()
        [[2, 7, 8]]
    """
    shifted = torch.cat([torch.full_like(labels[:, :1], start), labels[:, :-1]], dim=1)
    return shifted.masked_fill(shifted == -100, pad)


def _pad_to(tensor: torch.Tensor, shape: Sequence[int], value: float = 0) -> torch.Tensor:
    pads: list[int] = []
    for have, want in zip(reversed(tensor.shape[1:]), reversed(shape[1:])):
        pads += [0, want - have]
    return F.pad(tensor, pads, value=value) if any(pads) else tensor


def _concat_tensors(parts: list[torch.Tensor], name: str, value: float = 0, masked: bool = False) -> torch.Tensor:
    shapes = {tuple(p.shape[1:]) for p in parts}
    if len(shapes) == 1:
        return torch.cat(parts)
    ranks = {len(s) for s in shapes}
    if len(ranks) == 1 and (masked or not parts[0].is_floating_point()):
        # sequences padded per batch (dynamic padding): right-padded, token ids with the pad id, the rest with 0 (a
        # masked position; float inputs only beside an attention mask, as Hugging Face's audio collators pad them)
        longest = [max(dims) for dims in zip(*shapes)]
        return torch.cat([_pad_to(p, [len(p), *longest], value) for p in parts])
    raise ValueError(
        f"the batches' {name} tensors have different shapes {sorted(shapes)}; only integer sequences (token ids, "
        "masks), and float sequences beside an attention_mask, are padded to a common length: pass "
        "probe=(inputs, labels) of one shape instead"
    )


def concat(parts: Sequence[ModelInputs], pad_id: int = 0) -> ModelInputs:
    """Batches of inputs joined into one structure; sequences of different lengths are right-padded: token ids
    (a bare tensor, or ``input_ids``) with ``pad_id`` (the model's pad token), masks and the rest with 0.

    Example:
        >>> joined = concat([{"input_ids": torch.ones(1, 2, dtype=torch.long)}, {"input_ids": torch.ones(1, 3, dtype=torch.long)}])
        >>> joined["input_ids"].tolist()
        [[1, 1, 0], [1, 1, 1]]
        >>> concat([torch.ones(1, 1, dtype=torch.long), torch.ones(1, 2, dtype=torch.long)], pad_id=9).tolist()
        [[1, 9], [1, 1]]
    """
    first = parts[0]
    if isinstance(first, SampleList):
        return SampleList(value for part in parts for value in part)
    if isinstance(first, torch.Tensor):
        return _concat_tensors(list(parts), "input", pad_id)
    if isinstance(first, Mapping):
        masked = "attention_mask" in first
        return {
            key: _concat_tensors([p[key] for p in parts], repr(key), pad_id if key in TOKEN_ID_KEYS else 0, masked)
            for key in first
        }
    return tuple(_concat_tensors([p[i] for p in parts], f"input {i}") for i in range(len(first)))


def as_model_input(model: nn.Module, inputs: ModelInputs) -> ModelInputs:
    """``inputs`` on the model's device, floating tensors in its dtype (a bf16 model gets bf16; token ids stay ints).

    Example:
        >>> as_model_input(nn.Linear(2, 1).to(torch.bfloat16), torch.zeros(1, 2)).dtype
        torch.bfloat16
    """
    parameter = next(model.parameters(), None)
    if parameter is None:
        return inputs

    def move(tensor: torch.Tensor) -> torch.Tensor:
        pinned = tensor.device.type == "cpu" and parameter.device.type == "cuda" and tensor.is_pinned()
        if parameter.is_floating_point() and tensor.is_floating_point():
            return tensor.to(parameter.device, parameter.dtype, non_blocking=pinned)
        return tensor.to(parameter.device, non_blocking=pinned)

    return _map(move, inputs)


def call_model(module: nn.Module, inputs: ModelInputs) -> Any:
    """The default call: ``module(x)``, ``module(**inputs)`` for a dict, ``module(*inputs)`` for a tuple,
    ``module([...])`` for a :class:`SampleList`; a dict goes whole to a ``forward(self, batch)`` that takes one
    argument and not the dict's keys (a LightningModule whose ``forward`` unpacks the batch itself:
    ``return self.model(**batch)``).

    Example:
        >>> class Whole(nn.Module):
        ...     def forward(self, batch):
        ...         return batch["input_ids"] * 2
        >>> call_model(Whole(), {"input_ids": torch.ones(1, 2)}).tolist()
        [[2.0, 2.0]]
    """
    if isinstance(inputs, torch.Tensor):
        return module(inputs)
    if isinstance(inputs, Mapping):
        return module(inputs) if _takes_a_batch_whole(module, inputs.keys()) else module(**inputs)
    if isinstance(inputs, SampleList):
        return module(list(inputs))
    return module(*inputs)


def _takes_a_batch_whole(module: nn.Module, keys: Iterable[str]) -> bool:
    """Whether ``module.forward`` (a compiled module's original's) takes one argument, a batch to unpack itself,
    rather than the batch's keys: it accepts no ``**kwargs``, names none of the keys, and needs one positional
    argument at most."""
    try:
        forward = getattr(module, "_orig_mod", module).forward
        parameters = list(inspect.signature(forward).parameters.values())
    except (TypeError, ValueError):  # a builtin or C-level forward: the keyword call, as before
        return False
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return False
    named = {p.name for p in parameters if p.kind is not inspect.Parameter.VAR_POSITIONAL}
    if not named.isdisjoint(keys):  # forward(input_ids, attention_mask=None): keywords, even if one is missing
        return False
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is inspect.Parameter.empty]
    return bool(positional) and len(required) <= 1


# ---------------------------------------------------------------------------------------------- reading batches
def _describe(batch: Any) -> str:
    if isinstance(batch, _Columns):
        kinds = ", ".join(type(column[0]).__name__ for column in batch)
        last = len(batch) - 1
        return (
            f"list of {len(batch[0])} samples, each a tuple ({kinds}), read as its columns batch[0] ... batch[{last}]"
        )
    if isinstance(batch, Mapping):
        return f"{type(batch).__name__} with keys {list(batch)}"
    if dataclasses.is_dataclass(batch) and not isinstance(batch, type):
        return f"dataclass {type(batch).__name__} with fields {[f.name for f in dataclasses.fields(batch)]}"
    attributes = _public_attributes(batch)
    if attributes is not None:
        return f"{type(batch).__name__} with attributes {list(attributes)}"
    if isinstance(batch, (tuple, list)):
        return f"{type(batch).__name__} of {len(batch)} items ({', '.join(type(b).__name__ for b in batch)})"
    if isinstance(batch, torch.Tensor):
        return f"Tensor of shape {tuple(batch.shape)}"
    return type(batch).__name__


def _as_mapping(batch: Any) -> Mapping[str, Any] | None:
    if isinstance(batch, Mapping):
        return batch
    if dataclasses.is_dataclass(batch) and not isinstance(batch, type):
        return {field.name: getattr(batch, field.name) for field in dataclasses.fields(batch)}
    return _public_attributes(batch)


def _public_attributes(batch: Any) -> dict[str, Any] | None:
    """A plain batch object's public attributes (a user's ``Batch`` class with ``.x`` and ``.y``), read as a
    mapping when one of them is a tensor; ``None`` for anything else (tensors, tuples, objects of no tensors)."""
    if isinstance(batch, (torch.Tensor, tuple, list, str, bytes, type)):
        return None
    attributes = {key: value for key, value in getattr(batch, "__dict__", {}).items() if not key.startswith("_")}
    return attributes if any(isinstance(value, torch.Tensor) for value in attributes.values()) else None


def _as_labels(value: Any) -> torch.Tensor | None:
    """Labels as a tensor: a tensor, a list of ints (NumPy's too) or of 0-d tensors, or a NumPy array of numbers;
    else ``None``.

    Example:
        >>> import numpy as np
        >>> _as_labels(np.array([0, 2])).tolist(), _as_labels([np.int64(1), 0]).tolist(), _as_labels(["cat"])
        ([0, 2], [1, 0], None)
    """
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, numbers.Integral) for v in value):
        return torch.tensor([int(v) for v in value])
    if type(value).__module__ == "numpy" and getattr(value, "dtype", None) is not None and value.dtype.kind in "biuf":
        return torch.as_tensor(value)
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, torch.Tensor) and v.dim() == 0 for v in value):
        return torch.stack(list(value))  # a class per sample, each a 0-d tensor (a list of samples' columns)
    return None


@dataclasses.dataclass(frozen=True)
class BatchReader:
    """Finds the model inputs and the labels in a training batch and calls a model on inputs (module docstring).

    Args:
        input_keys: the batch's model inputs: mapping keys or tuple indices (``None``: the rule).
        label_key: the batch's labels: a mapping key, attribute or tuple index (``None``: the rule).
        forward_fn: ``forward_fn(module, inputs) -> output``, instead of the default call.
        owner: the callback's name, for error messages.
        decoder_inputs: ``decoder_inputs(token_labels) -> decoder_input_ids`` (:func:`decoder_inputs_of` the
            model), for mapping batches that hold no decoder inputs of their own (``input_keys=None`` only).
        probe_hint: how the owner takes points given by hand, named in its error messages.
        prepare: applied to every batch before it is read: the fit's own batch hooks
            (:func:`lightning_topo.callbacks.batch_preparation.fit_batch_preparation`), so the batch is the one
            ``training_step`` receives.

    Example:
        >>> reader = BatchReader(input_keys=(0, 1), label_key=2)
        >>> inputs, labels = reader.split((torch.zeros(3, 2), torch.ones(3, 4), torch.tensor([0, 1, 0])))
        >>> [tuple(t.shape) for t in inputs], labels.tolist()
        ([(3, 2), (3, 4)], [0, 1, 0])
    """

    input_keys: tuple[str | int, ...] | None = None
    label_key: str | int | None = None
    forward_fn: ForwardFn | None = None
    owner: str = "BettiMonitor"
    decoder_inputs: Callable[[torch.Tensor], torch.Tensor] | None = None
    probe_hint: str = "probe=(inputs, labels)"
    prepare: Callable[[Any], Any] | None = None

    def __post_init__(self) -> None:
        keys = self.input_keys
        if keys is not None:
            if isinstance(keys, (str, int)):
                keys = (keys,)
            keys = tuple(keys)
            if not keys or not all(isinstance(k, (str, int)) and not isinstance(k, bool) for k in keys):
                raise ValueError(f"input_keys must be a non-empty list of batch keys or indices, got {keys!r}")
            object.__setattr__(self, "input_keys", keys)
        if self.label_key is not None and (
            not isinstance(self.label_key, (str, int)) or isinstance(self.label_key, bool)
        ):
            raise ValueError(f"label_key must be a batch key or index, got {self.label_key!r}")
        if self.forward_fn is not None and not callable(self.forward_fn):
            raise ValueError(f"forward_fn must be a callable forward_fn(module, inputs), got {self.forward_fn!r}")

    def forward(self, module: nn.Module, inputs: ModelInputs) -> Any:
        """The model's output on ``inputs``: ``forward_fn`` if given, else :func:`call_model`."""
        return (self.forward_fn or call_model)(module, inputs)

    def _fail(self, batch: Any, problem: str) -> ValueError:
        return ValueError(
            f"{self.owner} cannot read a training batch of type {_describe(_samples_as_columns(batch))}: {problem}. Pass "
            f"{self.owner}(label_key=..., input_keys=...) to say where the labels and the model inputs are, "
            f"forward_fn=... to say how the model is called, or {self.probe_hint}"
        )

    def _pick(self, batch: Any, key: str | int) -> Any:
        mapping = _as_mapping(batch)
        if isinstance(key, int):
            if isinstance(batch, (tuple, list)) and -len(batch) <= key < len(batch):
                return batch[key]
            raise self._fail(batch, f"index {key} is not an item of it")
        if mapping is not None and key in mapping:
            return mapping[key]
        if mapping is None and hasattr(batch, key):
            return getattr(batch, key)
        raise self._fail(batch, f"it has no key {key!r}")

    def split(self, batch: Any, classless: bool = False) -> tuple[ModelInputs, torch.Tensor]:
        """``(model inputs, labels)`` of one batch, labels flat; a batch it cannot read raises ``ValueError``.

        ``classless``: a batch whose labels are no class per sample (multi-label, soft or regression targets,
        a language model's token labels, or none at all) gives its inputs and :data:`NO_CLASS` labels instead
        of an error (:meth:`read` says why).
        """
        inputs, labels, problem = self.read(batch)
        if labels is None:
            if not classless:
                raise self._fail(batch, problem or "")
            labels = torch.full((n_samples(inputs),), NO_CLASS, dtype=torch.long)
        return inputs, labels

    def read(self, batch: Any) -> tuple[ModelInputs, torch.Tensor | None, str | None]:
        """``(model inputs, labels, None)`` of one batch, or ``(model inputs, None, why)`` where its labels are no
        class per sample; a batch whose inputs it cannot find raises ``ValueError``.

        Example:
            >>> inputs, labels, why = BatchReader().read((torch.zeros(3, 2), torch.tensor([[1, 1], [0, 1], [1, 0]])))
            >>> labels, why
            (None, 'its labels (batch[1], shape (3, 2)) are not one class per sample of the 3 inputs')
        """
        if self.prepare is not None:
            batch = self.prepare(batch)
        batch = _samples_as_columns(batch)
        mapping = _as_mapping(batch)
        label_key = self.label_key
        if label_key is None:
            if mapping is not None:
                label_key = next((key for key in LABEL_KEYS if key in mapping), None)
            elif isinstance(batch, (tuple, list)) and len(batch) >= 2:
                label_key = 1
        raw = None if label_key is None else self._pick(batch, label_key)
        labels = _as_labels(raw)
        inputs = self._with_decoder_inputs(self._inputs(batch, mapping, label_key, raw), labels)
        if label_key is None:
            return inputs, None, f"found no labels (looked for {', '.join(LABEL_KEYS)}, or a tuple's second item)"
        where = f"batch[{label_key}]" if isinstance(label_key, int) else repr(label_key)
        if labels is None and _per_sample_targets(raw):
            return (
                inputs,
                None,
                f"its labels ({where}) are a target dict per sample (a detector's boxes and their classes), not one "
                "class per sample",
            )
        if labels is None and isinstance(raw, (list, tuple)) and raw and all(isinstance(v, str) for v in raw):
            return (
                inputs,
                None,
                f"its labels ({where}) are strings ({raw[0]!r}, ...): class names, not class indices; map them to "
                "indices (in the dataset or the collate_fn)",
            )
        if labels is None:
            return inputs, None, f"its labels ({where}) are not a tensor of class indices"
        classes = whole_number_classes(one_hot_classes(labels))  # BCE's float targets: 0.0 / 1.0 are classes
        if classes is None:
            return (
                inputs,
                None,
                f"its labels ({where}) are fractional floats (soft targets, as CutMix/MixUp make, or "
                "regression targets), not classes",
            )
        labels = classes.reshape(-1) if classes.dim() > 1 and classes.shape[-1] == 1 else classes
        if labels.dim() != 1 or len(labels) != n_samples(inputs):
            return (
                inputs,
                None,
                f"its labels ({where}, shape {tuple(labels.shape)}) are not one class per sample of the "
                f"{n_samples(inputs)} inputs",
            )
        return inputs, labels, None

    def _with_decoder_inputs(self, inputs: ModelInputs, labels: torch.Tensor | None) -> ModelInputs:
        """``inputs`` and, for an encoder-decoder model whose batch holds token labels but no decoder inputs, the
        ``decoder_input_ids`` made from those labels (``-100`` positions become the pad token)."""
        if (
            self.decoder_inputs is None
            or self.input_keys is not None
            or not isinstance(inputs, dict)
            or any(key in inputs for key in DECODER_KEYS)
            or labels is None
            or labels.dim() != 2
            or labels.is_floating_point()
            or len(labels) != n_samples(inputs)
        ):
            return inputs
        return {**inputs, "decoder_input_ids": self.decoder_inputs(labels)}

    def _inputs(
        self, batch: Any, mapping: Mapping[str, Any] | None, label_key: str | int | None, labels: Any = None
    ) -> ModelInputs:
        if self.input_keys is not None:
            values = [self._pick(batch, key) for key in self.input_keys]
            if len(values) == 1:
                inputs: Any = values[0]
            elif all(isinstance(key, str) for key in self.input_keys):
                inputs = dict(zip(self.input_keys, values))
            else:
                inputs = tuple(values)
        elif mapping is not None:
            positional = next((key for key in POSITIONAL_KEYS if key in mapping), None)
            if positional is not None:
                inputs = mapping[positional]
            else:
                inputs = {
                    key: value
                    for key, value in mapping.items()
                    if key != label_key
                    and key not in LABEL_KEYS
                    and key not in TARGET_KEYS
                    and isinstance(value, torch.Tensor)
                }
        elif isinstance(batch, (tuple, list)) and batch:  # (x, y, ...), or (x,) of unlabelled data
            inputs = batch[0]
            nested = _as_mapping(inputs)
            if nested is not None and not isinstance(inputs, torch.Tensor):  # (BatchEncoding, labels)
                inputs = {key: value for key, value in nested.items() if isinstance(value, torch.Tensor)}
        elif isinstance(batch, torch.Tensor):  # unlabelled data: the batch is the input
            inputs = batch
        else:
            raise self._fail(batch, "found no model inputs")
        if isinstance(inputs, Mapping) and not isinstance(inputs, dict):
            inputs = dict(inputs)
        if isinstance(inputs, (list, tuple)) and _one_per_sample(inputs, labels, self.input_keys):
            inputs = SampleList(inputs)
        if isinstance(inputs, list):
            inputs = tuple(inputs)
        if not _tensors(inputs):
            raise self._fail(batch, "found no tensor among its model inputs")
        if not all(isinstance(t, torch.Tensor) for t in _tensors(inputs)):
            raise self._fail(batch, "its model inputs are not all tensors")
        sizes = {len(t) if t.dim() else -1 for t in _tensors(inputs)}
        if not isinstance(inputs, SampleList) and (len(sizes) != 1 or -1 in sizes):
            raise self._fail(batch, "its model inputs do not share one batch dimension")
        return inputs


class _Columns(tuple):
    """The columns of a batch given as a list of samples (:func:`_samples_as_columns`), so that a message about the
    batch describes the list the user's loader gave."""


def _samples_as_columns(batch: Any) -> Any:
    """A batch left as a list of samples (``collate_fn=lambda b: b``), each an ``(image, target, ...)`` tuple
    with a tensor first, as its columns ``((image, ...), (target, ...), ...)``, as ``tuple(zip(*b))`` makes them;
    any other batch as it is.

    Example:
        >>> images, targets = _samples_as_columns([(torch.zeros(3, 2, 2), {"labels": 1}), (torch.ones(3, 4, 4), {"labels": 2})])
        >>> len(images), targets[1]
        (2, {'labels': 2})
    """
    if not isinstance(batch, list) or not batch:
        return batch
    width = len(batch[0]) if isinstance(batch[0], tuple) else 0
    if width < 2 or not all(isinstance(s, tuple) and len(s) == width and isinstance(s[0], torch.Tensor) for s in batch):
        return batch
    return _Columns(zip(*batch))


def _per_sample_targets(labels: Any) -> bool:
    """Whether ``labels`` are a list of target dicts, one per sample (torchvision's and DETR's detection targets)."""
    return isinstance(labels, (list, tuple)) and bool(labels) and all(isinstance(t, Mapping) for t in labels)


def _one_per_sample(values: Sequence[Any], labels: Any, input_keys: tuple[str | int, ...] | None) -> bool:
    """Whether a list of model inputs holds one tensor per sample (a :class:`SampleList`) rather than positional
    arguments. Several ``input_keys`` name positional arguments. Else, tensors of one rank that share no first
    dimension (images of different sizes and channels) are one per sample; tensors of one first dimension are when
    the ``labels`` (a class or a target dict per image) are one per tensor and not one per row, and, where they are
    both (3 images of 3 channels), when every tensor is a float ``(channels, height, width)`` image."""
    if (input_keys is not None and len(input_keys) > 1) or not values:
        return False
    if not all(isinstance(value, torch.Tensor) and value.dim() > 0 for value in values):
        return False
    rows = {len(value) for value in values}
    if len(rows) > 1:  # positional arguments share their batch dimension; a graph's (x, edge_index, batch) is none
        return len({value.dim() for value in values}) == 1
    counted = isinstance(labels, (list, tuple)) or (isinstance(labels, torch.Tensor) and labels.dim() > 0)
    if not counted or len(labels) != len(values):
        return False
    if len(labels) not in rows:
        return True
    return all(is_image(value) for value in values)
