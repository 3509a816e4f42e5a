"""Layer outputs on the probe, reduced to neighbour lists on the model's device, one point cloud at a time.

This is the monitor's capture route at real-model scale.  A cloud is a set of probe samples (one class, or the
whole probe); for each cloud the model runs in eval mode without gradients and a forward hook on each watched
layer turns that layer's output straight into the cloud's k-nearest-neighbour lists (or radius edges), with torch
on the device the activations live on.  Only those small lists leave the device; the topology core computes
Betti numbers from them later, anywhere (a background process, another rank).

Memory: a cloud that fits in one forward batch is reduced inside the hooks while the batch's activations exist
anyway, so nothing is kept across layers and peak memory does not grow with the number of watched layers.  A
larger cloud stores its layers' outputs for all its samples, in groups of layers that fit ``memory_budget``
bytes, one forward pass per group.

Example:
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> x, y = torch.randn(40, 2), torch.arange(40) % 2
    >>> found = reduce_clouds(net, x, {"0": y == 0, "1": y == 1}, {"0": ["1", "logits"], "1": ["1"]}, k=5)
    >>> sorted(found), found[("1", "0")].n_points
    ([('1', '0'), ('1', '1'), ('logits', '0')], 20)
"""

from __future__ import annotations

import ctypes
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from lightning_topo.monitoring.batches import (
    ForwardFn,
    ModelInputs,
    as_model_input,
    call_model,
    n_samples,
    positions,
    primary_tensor,
    take,
)
from lightning_topo.monitoring.hooks import eager, eval_mode, forward_with_hooks
from lightning_topo.monitoring.layers import INPUT, LOGITS
from lightning_topo.monitoring.outputs import (
    CHOICE_LAYOUTS,
    OutputKey,
    TokenMask,
    per_sample,
    select_tensor,
    with_channels_first,
)
from lightning_topo.topology.neighbours import NeighbourLists, batched_neighbour_lists, neighbour_lists

__all__ = ["CloudKey", "layer_profile", "reduce_clouds"]

#: ``(layer, cloud)``: a layer name (or ``"input"``/``"logits"``) and a cloud name (a class, or ``"all"``).
CloudKey = tuple[str, str]

#: The batched class route of :func:`reduce_clouds`: ``None`` (default) or ``True``: on, ``False``: every cloud in
#: its own forward pass (benchmarks and tests compare the two routes).  On by default on every device: on the CPU it
#: measured no slower (FMNIST CNN, random weights, probe 1,000 in 10 classes, 2 cores: median 0.62 s against 0.75 s
#: per capture at batch_size=256, 0.69 s against 0.73 s at 1,000; 20-35% faster on the same cores under heavy load).
BATCH_CLASSES: bool | None = None

_NOT_FINITE = "NaN or Inf activations (is the layer diverging?)"
_CONSTANT = "constant activations (dead units?); Betti numbers would only describe a single point"


def layer_profile(
    model: nn.Module,
    example: ModelInputs,
    layers: Sequence[str],
    output_key: OutputKey = None,
    token_pooling: str | None = None,
    forward: ForwardFn = call_model,
    layouts: Mapping[str, str] | None = None,
    *,
    channels_first: Collection[str] | None = None,
) -> dict[str, tuple[int, int, int]]:
    """``{layer: (calls per forward pass, values per sample, bytes per value)}`` from one forward pass.

    A module called several times per pass (a ResNet block's ReLU) is measured at its last call, as the monitor is.
    ``layouts``: the layers whose output is not ``(batch, tokens, features)``, and their layout (see
    :func:`.per_sample`).
    """
    profile: dict[str, tuple[int, int, int]] = {}
    layouts = with_channels_first(layouts, channels_first, "layer_profile")
    samples = n_samples(example)

    def sized(output: Any, key: OutputKey, layout: str | None) -> tuple[int, int]:
        """(values per sample, bytes per value) of an output as the monitor reads it; ``(0, 0)`` where it holds no
        point to size (a detector's empty boxes): its measurement says why."""
        rows = samples if layout in CHOICE_LAYOUTS else None  # a row per choice: joined per sample
        try:
            flat = per_sample(select_tensor(output, key), token_pooling, rows, layout=layout)
        except torch.OutOfMemoryError:
            raise
        except (TypeError, ValueError, RuntimeError):
            return 0, 0
        return flat.shape[1], flat.element_size()

    def hook(name: str):
        def record(module: nn.Module, args: Any, output: Any) -> None:
            calls = profile.get(name, (0, 0, 0))[0] + 1
            profile[name] = (calls, *sized(output, None, layouts.get(name)))

        return record

    modules = [name for name in layers if name not in (INPUT, LOGITS)]
    logits: dict[str, Any] = {}
    forward_with_hooks(model, example, {name: hook(name) for name in modules}, result=logits, forward=forward)
    try:
        batch = primary_tensor(as_model_input(model, example))
        profile[INPUT] = (1, batch[0].numel(), batch.element_size())
    except ValueError:  # images of different sizes: no input layer (:func:`.watched_layers` leaves it out)
        profile[INPUT] = (1, 0, 0)
    profile[LOGITS] = (1, 0, 0)  # sized only when watched: a detector's output (no box in the example) cannot be
    if LOGITS in layers:
        profile[LOGITS] = (1, *sized(logits["output"], output_key, layouts.get(LOGITS)))
    return profile


def _token_mask(model: nn.Module, batch: ModelInputs) -> TokenMask | None:
    """The batch's attention masks, readable at every layer's token count (an audio model's frames too, an
    encoder-decoder's decoder layers at the decoder's mask: :meth:`.TokenMask.for_layer`)."""
    return TokenMask.of_model_inputs(model, batch)


def _at(mask: TokenMask | None, layer: str) -> TokenMask | None:
    """The batch's mask as layer ``layer`` reads it (:meth:`.TokenMask.for_layer`), or ``None`` without a mask."""
    return None if mask is None else mask.for_layer(layer)


def _malloc_trim() -> Callable[[], Any]:
    """glibc's ``malloc_trim(0)``, or a no-op elsewhere.

    The float64 working copies of wide clouds are large, short-lived host allocations; glibc raises its mmap
    threshold after freeing such blocks and then serves the next ones from a heap that fragments, so without a
    trim the peak resident memory creeps up with every layer measured (seen: +150 MB from 4 to 16 layers).
    """
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return lambda: None
    trim.argtypes = [ctypes.c_size_t]
    return lambda: trim(0)


_release_host_memory = _malloc_trim()
_TRIM_MIN_BYTES = 2**20  # smaller outputs and float64 copies come and go in the heap's free lists: no trim


def _release_host_memory_after(*tensors: torch.Tensor) -> None:
    """Trim after a layer whose output or float64 working copy was large (1 MiB or more).  A trim costs about
    0.15 ms: 3 ms of a D-I measurement's 90 ms capture if every one of its 22 small clouds were trimmed."""
    if max((t.numel() for t in tensors), default=0) * 8 >= _TRIM_MIN_BYTES:
        _release_host_memory()


def _reduce(
    output: Any,
    key: OutputKey,
    pooling: str | None,
    topology: Mapping[str, Any],
    rows: int | None = None,
    mask: TokenMask | None = None,
    layout: str | None = None,
) -> NeighbourLists | str:
    """One layer's output for one cloud of ``rows`` samples (``mask``: their attention mask, for the pooling) ->
    its neighbour lists, or the reason it cannot be measured."""
    try:
        tensor = select_tensor(output, key)
        cloud = _as_float(per_sample(tensor, pooling, rows, mask, layout))
    except Exception as error:  # one unreadable layer must not cost the others
        return f"{type(error).__name__}: {error}"
    try:
        return _lists_or_reason(cloud, topology)
    finally:
        _release_host_memory_after(tensor, cloud)


def _as_float(cloud: torch.Tensor) -> torch.Tensor:
    if cloud.dtype in (torch.bfloat16, torch.float16) or not cloud.is_floating_point():
        return cloud.float()  # half-precision models: distances need at least float32 anyway
    return cloud


def _lists_or_reason(cloud: torch.Tensor, topology: Mapping[str, Any]) -> NeighbourLists | str:
    """One cloud's ``(n, d)`` per-sample tensor -> its neighbour lists, or the reason it cannot be measured."""
    try:
        try:
            lists = neighbour_lists(cloud, **topology)  # it checks finiteness on the way, at no extra pass
        except ValueError as error:
            if "NaN or Inf" in str(error):
                return _NOT_FINITE
            raise
        if lists.n_unique == 1 and lists.n_points > 1:
            return _CONSTANT
        return lists
    except Exception as error:  # one unreadable layer must not cost the others
        return f"{type(error).__name__}: {error}"


def _reduce_stacked(
    output: Any,
    key: OutputKey,
    pooling: str | None,
    topology: Mapping[str, Any],
    n_clouds: int,
    rows: int,
    mask: TokenMask | None = None,
    layout: str | None = None,
) -> list[NeighbourLists | str]:
    """One layer's output for ``n_clouds`` equal clouds in a row (``rows`` samples in all) -> each cloud's lists (or
    reason), batched."""
    try:
        tensor = select_tensor(output, key)
        cloud = _as_float(per_sample(tensor, pooling, rows, mask, layout))
        stack = cloud.reshape(n_clouds, len(cloud) // n_clouds, -1)
    except Exception as error:  # one unreadable layer must not cost the others
        return [f"{type(error).__name__}: {error}"] * n_clouds
    try:
        found: list[NeighbourLists | str] = list(batched_neighbour_lists(stack, **topology))
    except Exception:  # a cloud that fails (NaN, say) fails alone, with the per-cloud route's reason
        return [_lists_or_reason(part, topology) for part in stack]
    finally:
        _release_host_memory_after(tensor, cloud)
    return [_CONSTANT if f.n_unique == 1 and f.n_points > 1 else f for f in found]


def _layer_groups(
    layers: Sequence[str], profile: Mapping[str, tuple[int, int, int]], n_samples: int, budget: int
) -> list[list[str]]:
    """Consecutive layers packed so that each group's stored outputs for ``n_samples`` fit ``budget`` bytes."""
    groups: list[list[str]] = []
    used = budget + 1
    for name in layers:
        _, values, itemsize = profile.get(name, (1, 0, 4))
        size = n_samples * values * itemsize
        if used + size > budget or not groups:
            groups.append([])
            used = 0
        groups[-1].append(name)
        used += size
    return groups


def _hooked_pass(
    model: nn.Module,
    batch: ModelInputs,
    layers: Sequence[str],
    calls: Mapping[str, int],
    output_key: OutputKey,
    token_pooling: str | None,
    layouts: Mapping[str, str],
    forward: ForwardFn,
    reduce: Callable[[Any, OutputKey, str | None, int, TokenMask | None, str | None], Any],
) -> dict[str, Any]:
    """One forward pass over ``batch``: each layer's output ``reduce``d inside its hook, at its last call; the
    inputs and the logits reduced around the pass (``reduce(output, key, pooling, rows, mask, layout)``:
    ``rows`` the samples, ``mask`` the batch's attention mask (a :class:`.TokenMask`) or ``None``,
    ``layout`` the layer's in ``layouts``, if any)."""
    found: dict[str, Any] = {}
    seen: dict[str, int] = {}
    rows, mask = n_samples(batch), _token_mask(model, batch)

    def hook(name: str):
        def reduce_here(module: nn.Module, args: Any, output: Any) -> None:
            seen[name] = seen.get(name, 0) + 1
            if seen[name] == calls.get(name, 1):
                found[name] = reduce(output, None, token_pooling, rows, _at(mask, name), layouts.get(name))

        return reduce_here

    if INPUT in layers:
        found[INPUT] = reduce(primary_tensor(batch), None, None, rows, None, None)
    result: dict[str, Any] = {}
    forward_with_hooks(
        model,
        batch,
        {n: hook(n) for n in layers if n not in (INPUT, LOGITS)},
        result=result,
        prepared=True,
        forward=forward,
    )
    if LOGITS in layers:
        found[LOGITS] = reduce(
            result["output"], output_key, token_pooling, rows, _at(mask, LOGITS), layouts.get(LOGITS)
        )
    return found


def _one_pass(
    model: nn.Module,
    batch: ModelInputs,
    layers: Sequence[str],
    calls: Mapping[str, int],
    output_key: OutputKey,
    token_pooling: str | None,
    layouts: Mapping[str, str],
    topology: Mapping[str, Any],
    forward: ForwardFn,
) -> dict[str, NeighbourLists | str]:
    """The whole cloud in one forward pass: every layer reduced inside its hook, at its last call."""

    def reduce(output: Any, key: OutputKey, pooling: str | None, rows: int, mask: Any, layout: str | None) -> Any:
        return _reduce(output, key, pooling, topology, rows, mask, layout)

    return _hooked_pass(model, batch, layers, calls, output_key, token_pooling, layouts, forward, reduce)


def _stacked_pass(
    model: nn.Module,
    batch: ModelInputs,
    layers: Sequence[str],
    calls: Mapping[str, int],
    output_key: OutputKey,
    token_pooling: str | None,
    layouts: Mapping[str, str],
    topology: Mapping[str, Any],
    forward: ForwardFn,
    n_clouds: int,
) -> list[dict[str, NeighbourLists | str]]:
    """``n_clouds`` equal clouds, one after the other in ``batch``, in one forward pass: each layer's hook reduces
    all of them with one batched distance computation (:func:`batched_neighbour_lists`)."""

    def reduce(output: Any, key: OutputKey, pooling: str | None, rows: int, mask: Any, layout: str | None) -> Any:
        return _reduce_stacked(output, key, pooling, topology, n_clouds, rows, mask, layout)

    found = _hooked_pass(model, batch, layers, calls, output_key, token_pooling, layouts, forward, reduce)
    return [{name: per_cloud[i] for name, per_cloud in found.items()} for i in range(n_clouds)]


def _stored_passes(
    model: nn.Module,
    inputs: ModelInputs,
    layers: Sequence[str],
    profile: Mapping[str, tuple[int, int, int]],
    batch_size: int,
    memory_budget: int,
    output_key: OutputKey,
    token_pooling: str | None,
    layouts: Mapping[str, str],
    topology: Mapping[str, Any],
    forward: ForwardFn,
) -> dict[str, NeighbourLists | str]:
    """A cloud larger than a batch: layer groups under ``memory_budget``, one forward pass over the cloud each."""
    found: dict[str, NeighbourLists | str] = {}
    for group in _layer_groups(layers, profile, n_samples(inputs), memory_budget):
        chunks: dict[str, list[torch.Tensor]] = {name: [] for name in group}
        failed: dict[str, str] = {}
        current: dict[str, Any] = {}
        hooks = {
            n: (lambda m, a, o, n=n, current=current: current.__setitem__(n, o))
            for n in group
            if n not in (INPUT, LOGITS)
        }
        for start in range(0, n_samples(inputs), batch_size):
            batch = as_model_input(model, take(inputs, slice(start, start + batch_size)))
            current.clear()
            result: dict[str, Any] = {}
            forward_with_hooks(model, batch, hooks, result=result, prepared=True, forward=forward)
            current[LOGITS] = result["output"]
            if INPUT in group:
                current[INPUT] = primary_tensor(batch)
            rows, mask = n_samples(batch), _token_mask(model, batch)
            for name in group:
                if name in failed:
                    continue
                try:
                    key = output_key if name == LOGITS else None
                    pooling = None if name == INPUT else token_pooling
                    tensor = select_tensor(current[name], key)
                    flat = per_sample(tensor, pooling, rows, _at(mask, name), layouts.get(name))
                    chunks[name].append(flat)
                except Exception as error:
                    failed[name] = f"{type(error).__name__}: {error}"
                    chunks[name].clear()
            current.clear()
        for name in group:
            found[name] = failed.get(name) or _joined_reduce(chunks.pop(name), name, topology)
    return found


def _joined_reduce(chunks: list[torch.Tensor], name: str, topology: Mapping[str, Any]) -> NeighbourLists | str:
    """One layer's outputs of a cloud's probe batches joined and reduced, or the reason they cannot be joined: a
    width that changes with the batch is no point per sample (CLIP's ``logits_per_image``: each image's similarity
    to the batch's texts)."""
    widths = sorted({chunk.shape[1] for chunk in chunks})
    if len(widths) > 1:
        return (
            f"its width changes with the probe batch ({', '.join(map(str, widths))} values per sample), so a "
            f"sample's output depends on the others in its batch (a similarity matrix, as CLIP's logits_per_image, "
            "or feature maps padded to the batch's largest image, as a detector pads images of different sizes): "
            "no point per sample; "
            + (
                "output_key=... picks another output (image_embeds, say)"
                if name == LOGITS
                else "watch another layer, or, for images of different sizes, give batch_size=... as large as a "
                "class's share of the probe, so that each class is read in one pass"
            )
        )
    return _reduce(torch.cat(chunks), None, None, topology)


def _members(inputs: ModelInputs, selector: torch.Tensor | None) -> ModelInputs:
    """A cloud's rows of the probe: a view when they are one ascending run (a probe grouped by class), else a copy."""
    if selector is None:
        return inputs
    selector = positions(selector)
    if len(selector) and bool((selector.diff() == 1).all()):
        return take(inputs, slice(int(selector[0]), int(selector[-1]) + 1))
    return take(inputs, selector)


def _size(selector: torch.Tensor | None) -> int | None:
    if selector is None:
        return None
    return int(selector.sum()) if selector.dtype == torch.bool else len(selector)


def _cloud_batches(
    clouds: Mapping[str, torch.Tensor | None],
    layers_per_cloud: Mapping[str, Sequence[str]],
    batch_size: int,
    metric: str,
    bytes_per_sample: int = 0,
    memory_budget: int = 0,
) -> list[list[str]]:
    """The clouds in forward passes: consecutive equal clouds together (the batched route), else one per pass.

    The rule: when the batched route is on (:data:`BATCH_CLASSES`, on by default), the
    metric is ``"knn"`` and consecutive clouds are class subsets (not the whole probe) of the same size ``n`` with
    the same layers, they share a forward pass, up to ``batch_size // n`` clouds per pass (so a pass never exceeds
    ``batch_size`` samples; at least 2 clouds to be worth it) and as many as keep the pass's widest layer, at
    ``bytes_per_sample``, within ``memory_budget`` (0: no bound).  Everything else (``per_class=False``, unequal
    classes, a class larger than ``batch_size // 2`` or than the budget's half) runs one cloud per pass, as before.
    """
    names = list(layers_per_cloud)
    enabled = BATCH_CLASSES is None or BATCH_CLASSES
    if not enabled or metric != "knn":
        return [[name] for name in names]
    groups: list[list[str]] = []
    for name in names:
        size = _size(clouds[name])
        last = groups[-1] if groups else None
        if (
            last is not None
            and size
            and size == _size(clouds[last[0]])
            and list(layers_per_cloud[name]) == list(layers_per_cloud[last[0]])
            and (len(last) + 1) * size <= batch_size
            and (not memory_budget or (len(last) + 1) * size * bytes_per_sample <= memory_budget)
        ):
            last.append(name)
        else:
            groups.append([name])
    return groups


def reduce_clouds(
    model: nn.Module,
    inputs: ModelInputs,
    clouds: Mapping[str, torch.Tensor | None],
    layers_per_cloud: Mapping[str, Sequence[str]],
    *,
    metric: str = "knn",
    k: int = 14,
    scale: float = 2.5,
    batch_size: int = 256,
    memory_budget: int = 512 * 2**20,
    output_key: OutputKey = None,
    token_pooling: str | None = None,
    layouts: Mapping[str, str] | None = None,
    distance_dtype: torch.dtype = torch.float64,
    timings: dict[str, float] | None = None,
    forward: ForwardFn = call_model,
    channels_first: Collection[str] | None = None,
) -> dict[CloudKey, NeighbourLists | str]:
    """Neighbour lists of each (layer, cloud): ``{(layer, cloud): NeighbourLists or the reason it was skipped}``.

    Args:
        model: any ``nn.Module``; it runs in eval mode under ``no_grad`` and every module's mode is restored.
        inputs: the probe's model inputs (a tensor, or a dict or tuple of tensors: see
            :mod:`lightning_topo.monitoring.batches`), on any device (moved to the model's device batch by batch).
        clouds: ``{cloud name: boolean mask or index tensor into inputs}``, ``None`` for the whole probe.
        layers_per_cloud: which layers to reduce for each cloud (module names, ``"input"``, ``"logits"``).
        metric, k, scale: the topology protocol (see :func:`lightning_topo.topology.betti_numbers`).
        batch_size: forward batch size; a cloud up to this size is reduced without storing any layer output, and
            equal class clouds share forward passes of up to this size on the batched route (see below).
        memory_budget: bytes of stored layer outputs for a cloud larger than ``batch_size``, and of the widest
            layer's outputs (with their distance-dtype copy) in a batched pass.
        output_key, token_pooling: how to read outputs (see :mod:`lightning_topo.monitoring.outputs`).
        layouts: the layers whose outputs are not ``(batch, tokens, features)``, and their layout: ``(batch,
            channels, steps)`` ones pooled over their steps, ``(steps, batch, ...)`` ones read along their second
            dimension (:func:`lightning_topo.monitoring.layouts.layer_layouts` finds them).
        distance_dtype: dtype of the distance computation (float64: the exact route's numbers).
        timings: if given, receives ``{"capture": seconds}``.
        forward: ``forward(model, inputs) -> output``, how the model is called (default: the batch rule).

    The batched route (on unless :data:`BATCH_CLASSES` is ``False``): consecutive class clouds of
    equal size ``n`` with the same layers run ``batch_size // n`` at a time in one forward pass, and each watched
    layer reduces them all with one batched distance product and one ``topk``
    (:func:`lightning_topo.topology.neighbours.batched_neighbour_lists`, the per-cloud lists bit for bit for the same
    activations).  The activations themselves are each class's own only for a model whose eval-mode outputs do not
    depend on the rest of the batch, and bit for bit only where its kernels do not change with the batch size: true of
    the models tested on the CPU; on CUDA a kernel picked by batch size may round differently in the last bits
    (benchmarks/monitor_gpu_batched.py compares the routes there).  A cloud with
    duplicate points or a non-finite layer takes the per-cloud route inside it.  Unequal classes, classes larger than ``batch_size // 2``, ``metric="euclidean"`` and the
    whole-probe cloud always run one cloud per pass.
    """
    start = time.perf_counter()
    layouts = with_channels_first(layouts, channels_first, "reduce_clouds")
    topology = {"metric": metric, "k": k, "scale": scale, "dtype": distance_dtype}
    wanted = sorted({name for names in layers_per_cloud.values() for name in names})
    found: dict[CloudKey, NeighbourLists | str] = {}
    if not wanted:
        return found
    with eval_mode(model), torch.no_grad(), eager():
        example = take(inputs, slice(0, 1))
        profile = layer_profile(model, example, wanted, output_key, token_pooling, forward, layouts)
        calls = {name: entry[0] for name, entry in profile.items()}
        # a batched pass holds its widest layer's outputs for every sample, and their copy in the distance dtype
        itemsize = torch.empty((), dtype=distance_dtype).element_size()
        shapes = (profile.get(name, (1, 0, itemsize)) for name in wanted)  # a layer that did not run: nothing held
        widest = max((values * max(size, itemsize) for _, values, size in shapes), default=0)
        for group in _cloud_batches(clouds, layers_per_cloud, batch_size, metric, widest, memory_budget):
            if len(group) > 1:
                members = _members(inputs, torch.cat([positions(clouds[cloud]) for cloud in group]))
                batch = as_model_input(model, members)
                layers = layers_per_cloud[group[0]]
                per_cloud = _stacked_pass(
                    model,
                    batch,
                    layers,
                    calls,
                    output_key,
                    token_pooling,
                    layouts,
                    topology,
                    forward,
                    len(group),
                )
                del batch
                for cloud, per_layer in zip(group, per_cloud):
                    for name in layers:
                        found[(name, cloud)] = per_layer.get(name, f"layer {name!r} was not called in the forward pass")
                continue
            cloud = group[0]
            layers = layers_per_cloud[cloud]
            selector = clouds[cloud]
            members = _members(inputs, selector)
            if n_samples(members) <= batch_size:
                batch = as_model_input(model, members)
                per_layer = _one_pass(
                    model, batch, layers, calls, output_key, token_pooling, layouts, topology, forward
                )
                del batch
            else:
                per_layer = _stored_passes(
                    model,
                    members,
                    layers,
                    profile,
                    batch_size,
                    memory_budget,
                    output_key,
                    token_pooling,
                    layouts,
                    topology,
                    forward,
                )
            for name in layers:
                found[(name, cloud)] = per_layer.get(name, f"layer {name!r} was not called in the forward pass")
    if timings is not None:
        timings["capture"] = time.perf_counter() - start
    return found
