"""Reading a tensor out of whatever a model or a layer returns: tensors, dicts, (named) tuples, ``ModelOutput``s.

Real models return more than a tensor: ``{"logits": ..., "features": ...}``, named tuples, Hugging Face
``ModelOutput`` objects (an ordered dict that is also a dataclass), ``(output, (h, c))`` from an LSTM or
``(attn_output, weights)`` from attention.  The rule, for the model's output and every watched layer alike:

1. a tensor is taken as it is;
2. with ``key`` given: a string is a dict key or an attribute name (``"logits"``, ``"last_hidden_state"``), an
   integer an index into a tuple or list, a callable is called on the output;
3. otherwise: a mapping's or object's ``logits`` entry if it has one, else its first tensor with a dimension (a
   0-d ``loss`` is passed over), looking into nested tuples, lists, mappings and dataclasses in order.

Example:
    >>> import torch
    >>> select_tensor({"features": torch.zeros(2, 3), "logits": torch.ones(2, 2)}).shape
    torch.Size([2, 2])
    >>> select_tensor((torch.zeros(2, 5), (torch.zeros(1), torch.zeros(1)))).shape
    torch.Size([2, 5])
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Collection, Mapping
from typing import Any

import torch

from lightning_topo.monitoring.batches import DECODER_KEYS, config_pad_id

__all__ = [
    "CHANNELS_FIRST",
    "CHANNELS_FIRST_CHOICE_ROWS",
    "CHOICE_LAYOUTS",
    "CHOICE_ROWS",
    "LengthMap",
    "OutputKey",
    "STEPS_FIRST",
    "STEPS_FIRST_CHOICE_ROWS",
    "TOKEN_POOLING",
    "TokenMask",
    "decoder_pad_id",
    "feature_lengths",
    "per_sample",
    "predicted_classes",
    "select_tensor",
]

#: How to pick the tensor: a dict key or attribute name, a tuple index, or a function of the output.
OutputKey = str | int | Callable[[Any], torch.Tensor] | None

#: Ways to turn a ``(batch, tokens, features)`` output into one point per sample.
TOKEN_POOLING = (None, "mean", "first", "last")

#: A layer output laid out ``(batch, channels, steps)``, as a 1-d convolution returns it (not ``(batch, tokens,
#: features)``): token pooling averages its steps (:func:`per_sample`'s ``layout``).
CHANNELS_FIRST = "channels_first"
#: A layer output laid out sequence first, ``(steps, batch, ...)``, as PyTorch's ``nn.Transformer*``, ``nn.LSTM``
#: and ``nn.GRU`` return it without ``batch_first`` (and XLNet's layers): its samples are its second dimension.
STEPS_FIRST = "steps_first"
#: A layer output with a row per choice of each sample, ``(batch * choices, ...)``, sample by sample, as a
#: multiple-choice model flattens its ``(batch, choices, tokens)`` inputs: a sample's point is its choices side by
#: side.
CHOICE_ROWS = "choice_rows"
#: :data:`CHOICE_ROWS` laid out sequence first, ``(steps, batch * choices, ...)``, as XLNet's multiple-choice layers.
STEPS_FIRST_CHOICE_ROWS = "steps_first_choice_rows"
#: :data:`CHOICE_ROWS` laid out channels first, ``(batch * choices, channels, steps)``, as SqueezeBERT's 1-d
#: convolutions on a multiple-choice batch.
CHANNELS_FIRST_CHOICE_ROWS = "channels_first_choice_rows"
_STEPS_FIRST_LAYOUTS = (STEPS_FIRST, STEPS_FIRST_CHOICE_ROWS)
_CHANNELS_FIRST_LAYOUTS = (CHANNELS_FIRST, CHANNELS_FIRST_CHOICE_ROWS)
#: the layouts of a row per choice of each sample, joined per sample by :func:`per_sample` (``rows`` given)
CHOICE_LAYOUTS = (CHOICE_ROWS, STEPS_FIRST_CHOICE_ROWS, CHANNELS_FIRST_CHOICE_ROWS)

_LOGITS = "logits"


def _first_tensor(value: Any, depth: int = 0, scalars: bool = False) -> torch.Tensor | None:
    """The first tensor in ``value``, nested; 0-d tensors (a loss) only with ``scalars``."""
    if isinstance(value, torch.Tensor):
        return value if scalars or value.dim() > 0 else None
    if depth > 4:
        return None
    if isinstance(value, Mapping):
        children = list(value.values())
    elif isinstance(value, (tuple, list)):
        children = list(value)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        children = [getattr(value, field.name) for field in dataclasses.fields(value)]
    else:
        return None
    for child in children:
        found = _first_tensor(child, depth + 1, scalars)
        if found is not None:
            return found
    return None


def _by_key(output: Any, key: str | int) -> Any:
    if isinstance(key, int):
        if isinstance(output, (tuple, list)):
            return output[key]
        raise TypeError(f"output_key={key} indexes a tuple or list, but the output is a {type(output).__name__}")
    if isinstance(output, Mapping):
        if key in output:
            return output[key]
        raise TypeError(f"the output has no key {key!r}; its keys are {list(output)}")
    if hasattr(output, key):
        return getattr(output, key)
    raise TypeError(f"the output (a {type(output).__name__}) has no key or attribute {key!r}")


def select_tensor(output: Any, key: OutputKey = None) -> torch.Tensor:
    """The tensor to measure in ``output`` (see the module docstring for the rule).

    Raises:
        TypeError: nothing in ``output`` is a tensor, or ``key`` does not fit it; the message says what was found.
    """
    if isinstance(output, torch.Tensor) and key is None:
        return output
    if callable(key):
        chosen = key(output)
    elif key is not None:
        chosen = _by_key(output, key)
    elif isinstance(output, Mapping) and isinstance(output.get(_LOGITS), torch.Tensor):
        chosen = output[_LOGITS]
    elif not isinstance(output, Mapping) and isinstance(getattr(output, _LOGITS, None), torch.Tensor):
        chosen = output.logits
    else:  # a 0-d loss first (a question-answering output's) is no point per sample: the next tensor is
        chosen = _first_tensor(output)
        chosen = chosen if chosen is not None else _first_tensor(output, scalars=True)
    if not isinstance(chosen, torch.Tensor):
        raise TypeError(
            f"found no tensor in an output of type {type(output).__name__}"
            + (f" under output_key={key!r}" if key is not None else "")
            + "; pass output_key (a dict key, attribute name, tuple index or a function of the output) to choose one"
        )
    return chosen


def predicted_classes(logits: torch.Tensor) -> torch.Tensor:
    """The class each row of ``logits`` predicts: the argmax over classes, or ``logit > 0`` for a binary model
    with one output (``BCEWithLogitsLoss``'s convention), whose argmax would always be class 0.

    Example:
        >>> predicted_classes(torch.tensor([[2.0], [-1.0]])).tolist(), predicted_classes(torch.eye(2)).tolist()
        ([1, 0], [0, 1])
    """
    if logits.dim() == 1 or (logits.dim() == 2 and logits.shape[1] == 1):
        return (logits.reshape(-1) > 0).long()
    return logits.argmax(dim=1)


_FEATURE_LENGTHS = "_get_feat_extract_output_lengths"  # Hugging Face audio models: samples -> frames

#: A map from a batch's input lengths (samples) to a layer's lengths (frames), elementwise on a 1-d tensor.
LengthMap = Callable[[torch.Tensor], torch.Tensor]


def _convolution_lengths(kernel: int, stride: int, previous: LengthMap | None) -> LengthMap:
    """One more unpadded convolution after ``previous``: ``floor((length - kernel) / stride) + 1`` frames."""

    def lengths(samples: torch.Tensor) -> torch.Tensor:
        frames = samples if previous is None else previous(samples)
        return torch.div(frames - kernel, stride, rounding_mode="floor") + 1

    return lengths


def _stage_lengths(config: Any) -> list[LengthMap]:
    """The frames after each convolution a Hugging Face audio config lists (``conv_kernel``, ``conv_stride``)."""
    kernels, strides = getattr(config, "conv_kernel", None), getattr(config, "conv_stride", None)
    if not isinstance(kernels, (tuple, list)) or not isinstance(strides, (tuple, list)) or len(kernels) != len(strides):
        return []
    stages: list[LengthMap] = []
    for kernel, stride in zip(kernels, strides):
        if not isinstance(kernel, int) or not isinstance(stride, int) or stride < 1:
            return []
        stages.append(_convolution_lengths(kernel, stride, stages[-1] if stages else None))
    return stages


def feature_lengths(model: torch.nn.Module) -> tuple[LengthMap, ...]:
    """A Hugging Face audio model's maps from input lengths (samples) to frames, found anywhere in ``model`` (a
    LightningModule that holds one, say): its own ``_get_feat_extract_output_lengths`` (Wav2Vec2, HuBERT, WavLM,
    Data2VecAudio ...: the feature extractor's last frames), then, where its config lists the convolutions
    (``conv_kernel``, ``conv_stride``), the frames after each one (its ``conv_layers.N``); ``()`` for any other model.

    Example:
        >>> class Audio(torch.nn.Module):
        ...     config = type("Config", (), {"conv_kernel": (10, 3), "conv_stride": (5, 2)})()
        ...     def _get_feat_extract_output_lengths(self, lengths):
        ...         return ((lengths - 10) // 5 + 1 - 3) // 2 + 1
        >>> [int(frames(torch.tensor([400]))[0]) for frames in feature_lengths(Audio())]
        [39, 79, 39]
    """
    for module in model.modules():
        lengths = getattr(module, _FEATURE_LENGTHS, None)
        if callable(lengths):
            return (lengths, *_stage_lengths(getattr(module, "config", None)))
    return ()


def decoder_pad_id(model: torch.nn.Module) -> int | None:
    """The pad token id of the (first) Hugging Face encoder-decoder inside ``model`` (``config.is_encoder_decoder``
    and an integer ``config.pad_token_id``), else ``None``.

    Example:
        >>> class Seq2Seq(torch.nn.Module):
        ...     config = type("Config", (), {"is_encoder_decoder": True, "pad_token_id": 1})()
        >>> decoder_pad_id(torch.nn.Sequential(Seq2Seq())), decoder_pad_id(torch.nn.Linear(2, 2))
        (1, None)
    """
    return config_pad_id(model, encoder_decoder=True)


#: Where Hugging Face's vision-language models (CLIP, SigLIP, BLIP, LLaVA ...) keep their image tower: its tokens
#: are patches, which the batch's (text) attention mask does not describe.
_IMAGE_TOWERS = ("vision_model", "vision_tower", "vision_encoder", "visual", "image_encoder", "image_model")


@dataclasses.dataclass(frozen=True, eq=False)  # it holds a tensor: identity, not elementwise ==
class TokenMask:
    """A batch's ``(batch, length)`` attention mask, read at any layer's own token count (:meth:`of`), and, for an
    encoder-decoder batch, its decoder's mask, read at the decoder's layers (:meth:`for_layer`).

    Example:
        >>> frames = TokenMask(torch.tensor([[1, 1, 1, 1, 0, 0]]), (lambda n: n // 2,))  # two samples a frame
        >>> frames.of(6).tolist(), frames.of(3).tolist(), frames.of(4)
        ([[1, 1, 1, 1, 0, 0]], [[1, 1, 0]], None)
    """

    mask: torch.Tensor | None
    #: maps from input lengths to the lengths of layers with fewer tokens (:func:`feature_lengths`), tried in order
    lengths: tuple[LengthMap, ...] = ()
    #: an encoder-decoder batch's ``decoder_attention_mask`` (``None``: it has none, or the batch has no decoder)
    decoder: torch.Tensor | None = None
    #: whether the batch feeds a decoder (it holds ``decoder_input_ids`` or ``decoder_inputs_embeds``)
    encoder_decoder: bool = False
    #: whether the batch holds images (``pixel_values``) beside the text the mask belongs to
    with_images: bool = False
    #: the pad token id that :attr:`decoder` was read from, where the batch held no ``decoder_attention_mask``
    decoder_pad: int | None = None

    @classmethod
    def of_model_inputs(cls, model: torch.nn.Module, inputs: Any) -> TokenMask | None:
        """:meth:`of_inputs` with what ``model`` tells: its audio frames' lengths (:func:`feature_lengths`) and, for
        an encoder-decoder, its pad token (:func:`decoder_pad_id`).

        Example:
            >>> class Seq2Seq(torch.nn.Module):
            ...     config = type("Config", (), {"is_encoder_decoder": True, "pad_token_id": 1})()
            >>> batch = {"input_ids": torch.ones(1, 3), "decoder_input_ids": torch.tensor([[2, 7, 1, 1]])}
            >>> TokenMask.of_model_inputs(Seq2Seq(), batch).for_layer("decoder.block.0").of(4).tolist()
            [[1, 1, 0, 0]]
        """
        if not isinstance(inputs, Mapping):  # no mask to read: the model's modules are not walked, at every pass
            return None
        return cls.of_inputs(inputs, feature_lengths(model), decoder_pad_id(model))

    @classmethod
    def of_inputs(
        cls, inputs: Any, lengths: tuple[LengthMap, ...] = (), decoder_pad: int | None = None
    ) -> TokenMask | None:
        """The masks of a batch's model inputs (a mapping's ``attention_mask`` and ``decoder_attention_mask``), or
        ``None`` where it has neither.  An encoder-decoder batch with ``decoder_input_ids`` but no
        ``decoder_attention_mask`` (as ``DataCollatorForSeq2Seq`` makes them, or the probe from the labels) gets
        one from the model's pad token ``decoder_pad``, which the labels' padding (-100) becomes: every position
        whose input is not the pad token, and the first (the start token, T5's pad id too). A multiple-choice
        batch's ``(batch, choices, tokens)`` mask is read as the model reads its ids, a row per choice.

        Example:
            >>> seq2seq = {"input_ids": torch.ones(1, 3), "attention_mask": torch.ones(1, 3), "decoder_input_ids": torch.ones(1, 3)}
            >>> reader = TokenMask.of_inputs(seq2seq)
            >>> reader.for_layer("model.encoder.block.0").of(3).tolist(), reader.for_layer("model.decoder.block.0").of(3)
            ([[1.0, 1.0, 1.0]], None)
        """
        if not isinstance(inputs, Mapping):
            return None
        mask, decoder = inputs.get("attention_mask"), inputs.get("decoder_attention_mask")
        mask = mask if isinstance(mask, torch.Tensor) else None
        ids = inputs.get("input_ids")
        if mask is not None and mask.dim() == 3 and isinstance(ids, torch.Tensor) and ids.shape == mask.shape:
            mask = mask.reshape(-1, mask.shape[-1])  # (batch, choices, tokens): a row per choice, as the model reads it
        decoder = decoder if isinstance(decoder, torch.Tensor) else None
        decoder_ids = inputs.get("decoder_input_ids")
        read_from = None
        if (
            decoder is None
            and decoder_pad is not None
            and isinstance(decoder_ids, torch.Tensor)
            and decoder_ids.dim() == 2
        ):
            decoder, read_from = (decoder_ids != decoder_pad).long(), decoder_pad
            decoder[:, 0] = 1
        if mask is None and decoder is None:
            return None
        encoder_decoder = any(key in inputs for key in DECODER_KEYS)  # then the layers outside the encoder: decoder's
        images = isinstance(inputs.get("pixel_values"), torch.Tensor)
        return cls(mask, lengths, decoder, encoder_decoder, images, read_from)

    def for_layer(self, name: str) -> TokenMask | None:
        """The mask that a layer's tokens are read with: an encoder-decoder batch's decoder-side layers (every
        layer outside an ``encoder`` module, the logits too) read the decoder's mask (none given: every position
        counts), never the encoder's, whose tokens are not theirs; the image tower of a batch with images and text
        (a ``vision_model``, ``vision_tower`` ...) reads none (``None``): its patches have no padding.

        Example:
            >>> clip = TokenMask.of_inputs({"input_ids": torch.ones(1, 5), "attention_mask": torch.ones(1, 5), "pixel_values": torch.ones(1, 3, 4, 4)})
            >>> clip.for_layer("vision_model.encoder.layers.0"), clip.for_layer("text_model.encoder.layers.0") is clip
            (None, True)
        """
        parts = name.split(".")
        if self.with_images and any(part in _IMAGE_TOWERS for part in parts):
            return None
        if not self.encoder_decoder or "encoder" in parts:
            return self if self.mask is not None else None  # an encoder with no mask (an image's): no padding
        return TokenMask(self.decoder)

    def of(self, tokens: int) -> torch.Tensor | None:
        """The mask of a layer with ``tokens`` tokens: the mask itself when its length is theirs; the first
        ``frames(kept)`` tokens of each sample for the first map ``frames`` in :attr:`lengths` that takes the mask's
        length to ``tokens`` (the frames of an audio model's feature extractor, padding on the right; a clip too
        short for a frame of its own keeps the first); else ``None`` (no mask fits). A map that raises or does not
        return one length per sample (a model's own, of another signature) is passed over."""
        if self.mask is None:
            return None
        length = self.mask.shape[1]
        if length == tokens:
            return self.mask
        for frames in self.lengths:
            full = _mapped(frames, torch.tensor([length]))
            if full is None or int(full[0]) != tokens:
                continue
            kept = _mapped(frames, (self.mask != 0).sum(dim=1).cpu())
            if kept is not None:
                kept = kept.clamp(min=1).to(self.mask.device)
                return (torch.arange(tokens, device=self.mask.device) < kept[:, None]).long()
        return None


def _mapped(frames: LengthMap, lengths: torch.Tensor) -> torch.Tensor | None:
    """``frames(lengths)``, or ``None`` when it raises or returns anything but one whole number per length."""
    try:
        mapped = frames(lengths)
    except Exception:  # a model's own map of another signature (extra arguments, a single int): not ours to read
        return None
    if not isinstance(mapped, torch.Tensor) or mapped.shape != lengths.shape or mapped.is_floating_point():
        return None
    return mapped


def per_sample(
    tensor: torch.Tensor,
    token_pooling: str | None = None,
    rows: int | None = None,
    mask: torch.Tensor | TokenMask | None = None,
    layout: str | None = None,
    *,
    channels_first: bool | None = None,
) -> torch.Tensor:
    """``(batch, ...)`` to one flat point per sample, ``(batch, features)``, detached, on the same device.

    ``token_pooling`` applies to ``(batch, tokens, features)`` outputs: ``None`` flattens the tokens into
    one long vector (the default), ``"mean"`` averages over tokens, ``"first"`` keeps the first (a CLS) token,
    ``"last"`` the last (a causal model's summary token).  ``mask``: the batch's ``(batch, tokens)`` attention
    mask; when its tokens are the output's, ``"mean"`` averages the kept tokens only and ``"last"`` takes each
    sample's last kept token, so padding never moves a point; a :class:`TokenMask` also reaches the frames of an
    audio model's feature extractor.
    ``layout``: :data:`CHANNELS_FIRST` for an output laid out ``(batch, channels, steps)``, as a 1-d convolution
    lays it out, so the pooling runs over its steps, the last axis; :data:`STEPS_FIRST` for ``(steps, batch, ...)``,
    whose samples are its second dimension; :data:`CHOICE_ROWS` for ``(batch * choices, ...)``, each row pooled
    with its own mask row and each sample's choices then side by side (``rows`` required), and
    :data:`STEPS_FIRST_CHOICE_ROWS` and :data:`CHANNELS_FIRST_CHOICE_ROWS` for those rows laid out
    ``(steps, batch * choices, ...)`` and ``(batch * choices, channels, steps)``
    (:mod:`~lightning_topo.monitoring.layouts` tells which are which).
    ``rows``: the number of samples that went in; an output with another first dimension (a Swin block's attention
    windows, a head-split attention map) holds no point per sample and raises a ``ValueError`` saying so.

    Example:
        >>> per_sample(torch.ones(4, 7, 3), "mean").shape
        torch.Size([4, 3])
        >>> per_sample(torch.ones(4, 3, 7), "mean", layout=CHANNELS_FIRST).shape
        torch.Size([4, 3])
        >>> per_sample(torch.ones(7, 4, 3), "mean", rows=4, layout=STEPS_FIRST).shape  # (steps, batch, features)
        torch.Size([4, 3])
        >>> per_sample(torch.ones(2 * 5, 7, 3), "mean", rows=2, layout=CHOICE_ROWS).shape  # 5 choices a sample
        torch.Size([2, 15])
    """
    if channels_first is not None:
        warnings.warn(
            "per_sample(channels_first=True) is deprecated and will be removed: pass layout=CHANNELS_FIRST",
            DeprecationWarning,
            stacklevel=2,
        )
        layout = CHANNELS_FIRST if channels_first else layout
    tensor = tensor.detach()
    if tensor.dim() == 0:
        raise TypeError("a 0-dimensional output (a scalar, e.g. a loss) has no per-sample points")
    if layout in _STEPS_FIRST_LAYOUTS and tensor.dim() > 1:
        tensor = tensor.movedim(1, 0)  # (batch, steps, ...): the samples first, their steps their tokens
    choices = layout in CHOICE_LAYOUTS
    samples = rows
    if choices and rows and tensor.shape[0] % rows == 0:
        rows = tensor.shape[0]  # each choice's row is pooled as a sample's, then the choices joined
    if rows is not None and tensor.shape[0] != rows:
        raise ValueError(
            f"its output has {tensor.shape[0]} rows for {rows} samples (shape {tuple(tensor.shape)}), not one per "
            "sample (attention windows or heads?); watch the block that holds it instead"
        )
    if tensor.dim() == 3 and token_pooling is not None:
        if layout in _CHANNELS_FIRST_LAYOUTS:
            tensor = tensor.transpose(1, 2)  # (batch, steps, channels): the steps are its tokens
        if isinstance(mask, TokenMask):
            mask = mask.of(tensor.shape[1])
        tensor = _pool_tokens(tensor, token_pooling, mask)
    return tensor.reshape(samples if choices and samples else tensor.shape[0], -1)


def _pool_tokens(tensor: torch.Tensor, pooling: str, mask: torch.Tensor | None) -> torch.Tensor:
    """``(batch, tokens, features)`` -> ``(batch, features)``; ``mask`` counts only where it matches the tokens."""
    if pooling == "first":
        return tensor[:, 0]
    usable = mask is not None and tuple(mask.shape) == tuple(tensor.shape[:2])
    if pooling == "last":
        if not usable:
            return tensor[:, -1]
        last = (mask.to(tensor.device) != 0).long().cumsum(dim=1).argmax(dim=1)  # the last kept position
        return tensor[torch.arange(len(tensor), device=tensor.device), last]
    if not usable:
        return tensor.mean(dim=1)
    weights = (mask.to(tensor.device) != 0).to(tensor.dtype).unsqueeze(-1)
    return (tensor * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)


def with_channels_first(
    layouts: Mapping[str, str] | None, channels_first: Collection[str] | None, caller: str
) -> dict[str, str]:
    """``layouts`` with the layers of the deprecated ``channels_first=`` list of ``caller`` (said with a
    ``DeprecationWarning``) as :data:`CHANNELS_FIRST`.

    Example:
        >>> import warnings
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     with_channels_first({"b": STEPS_FIRST}, ["a"], "reduce_clouds")
        {'a': 'channels_first', 'b': 'steps_first'}
    """
    if channels_first is None:
        return dict(layouts or {})
    warnings.warn(
        f"{caller}(channels_first=[...]) is deprecated and will be removed: pass layouts={{name: CHANNELS_FIRST}}",
        DeprecationWarning,
        stacklevel=3,
    )
    return {**dict.fromkeys(channels_first, CHANNELS_FIRST), **(layouts or {})}
