"""The probe: a fixed, seeded, class-balanced subsample of the training data."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader

from lightning_topo.monitoring.batches import (
    NO_CLASS,
    BatchReader,
    ForwardFn,
    ModelInputs,
    call_model,
    classes_present,
    concat,
    config_pad_id,
    decoder_inputs_of,
    has_class,
    n_samples,
    one_hot_classes,
    take,
    to_host,
    whole_number_classes,
)

__all__ = [
    "AUTOMATIC_CLASS_POINTS",
    "balanced_indices",
    "check_classes",
    "checked_probe",
    "choose_classes",
    "draw_probe",
    "first_loader",
    "own_iteration",
    "group_by_class",
    "loader_randomness_kept",
    "output_width",
    "probe_from_batches",
    "resolve_classes",
    "token_pad_id",
]


def balanced_indices(labels: torch.Tensor, size: int, seed: int = 0) -> torch.Tensor:
    """Indices of at most ``size`` samples, as evenly spread over the classes as they allow, seeded and sorted."""
    generator = torch.Generator().manual_seed(seed)
    classes = torch.unique(labels)
    per_class = max(1, size // len(classes))
    chosen = []
    for cls in classes:
        idx = torch.nonzero(labels == cls).flatten()
        chosen.append(idx[torch.randperm(len(idx), generator=generator)[:per_class]])
    return torch.sort(torch.cat(chosen)).values


def group_by_class(inputs: ModelInputs, labels: torch.Tensor) -> tuple[ModelInputs, torch.Tensor]:
    """The probe reordered so that each class is one contiguous run, in label order, each class's own order kept.

    A class's cloud is then a view of the probe rather than a gathered copy (about 60 MB per class of a
    1,000-image probe at 224 px), and since the order within a class is kept, so are its neighbour lists. A probe
    already grouped is returned as it is.

    Example:
        >>> x, y = torch.arange(5.0)[:, None], torch.tensor([1, 0, 1, 0, 2])
        >>> gx, gy = group_by_class(x, y)
        >>> gx.flatten().tolist(), gy.tolist()
        ([1.0, 3.0, 0.0, 2.0, 4.0], [0, 0, 1, 1, 2])
    """
    order = torch.sort(labels, stable=True).indices
    if bool((order == torch.arange(len(order))).all()):
        return inputs, labels
    return take(inputs, order), labels[order]


def checked_probe(inputs: Any, labels: Any, allow_classless: bool = True) -> tuple[ModelInputs, torch.Tensor]:
    """A probe given by hand, checked: tensors of inputs, one class label per point, as many of each.

    Labels of shape ``(n, 1)`` are read flat, one-hot labels as their class indices, and whole-number float or bool
    labels (``BCEWithLogitsLoss``'s 0./1. targets) as classes, as in a training batch; ``labels=None``: points of no
    class, measured as one cloud (:data:`~lightning_topo.monitoring.batches.NO_CLASS`). The inputs are returned as
    they are (no copy). ``allow_classless=False`` (the pruner's probe) refuses them.

    Example:
        >>> x, y = checked_probe(torch.zeros(4, 2), torch.tensor([[0.0], [1.0], [0.0], [1.0]]))
        >>> y.tolist(), y.dtype
        ([0, 1, 0, 1], torch.int64)
        >>> checked_probe(torch.zeros(4, 2), torch.eye(2)[[0, 1, 0, 1]])[1].tolist()
        [0, 1, 0, 1]
        >>> checked_probe(torch.zeros(4, 2), None)[1].tolist()
        [-1, -1, -1, -1]
        >>> checked_probe(torch.zeros(4, 2), torch.ones(4, 3))
        Traceback (most recent call last):
        ...
        ValueError: probe labels must be one class per point, shape (n,), got float32 labels of shape (4, 3); labels that are no class per point (multi-label): pass labels=None to measure the probe as one cloud
    """
    valid_inputs = isinstance(inputs, torch.Tensor) or (
        isinstance(inputs, (dict, tuple, list))
        and len(inputs) > 0
        and all(isinstance(value, torch.Tensor) for value in (inputs.values() if isinstance(inputs, dict) else inputs))
    )
    if not valid_inputs:
        raise ValueError(f"probe inputs must be a tensor, or a dict or tuple of tensors, got {type(inputs).__name__}")
    if labels is None and allow_classless:
        return inputs, torch.full((n_samples(inputs),), NO_CLASS, dtype=torch.long)
    if labels is None:
        raise ValueError("the probe's labels are None: pass one class label per point")
    labels = one_hot_classes(torch.as_tensor(labels))
    flat = labels.ndim == 1 or (labels.ndim == 2 and labels.shape[1] == 1)
    if not flat or labels.is_complex():
        hint = (
            "; labels that are no class per point (multi-label): pass labels=None to measure the probe as one cloud"
            if labels.ndim == 2 and allow_classless
            else ""
        )
        raise ValueError(
            f"probe labels must be one class per point, shape (n,), got "
            f"{str(labels.dtype).removeprefix('torch.')} labels of shape {tuple(labels.shape)}{hint}"
        )
    classes = whole_number_classes(labels)
    if classes is None:
        raise ValueError(
            "probe labels are fractional floats (soft or regression targets), not classes: pass one class index per "
            "point (e.g. labels.round().long() for 0/1 targets)"
            + (", or labels=None to measure the probe as one cloud" if allow_classless else "")
        )
    labels = classes.detach().cpu().reshape(-1)
    if len(labels) == 0:
        raise ValueError("the probe is empty: pass at least k + 1 points of each class to measure")
    if int(labels.min()) < 0:
        raise ValueError(f"probe labels must be class indices >= 0, got {int(labels.min())}")
    if n_samples(inputs) != len(labels):
        raise ValueError(f"the probe has {n_samples(inputs)} inputs but {len(labels)} labels: give one label per input")
    return inputs, labels


def check_classes(classes: Any) -> int | list[int] | None:
    """``classes=`` validated: ``None``, a positive integer, or a non-empty list of integer labels (sorted, unique).

    Example:
        >>> check_classes([3, 1, 3]), check_classes(10)
        ([1, 3], 10)
    """
    if classes is None:
        return None
    if isinstance(classes, int) and not isinstance(classes, bool):
        if classes < 1:
            raise ValueError(f"classes must be a positive number of classes or a list of labels, got {classes!r}")
        return classes
    if (
        isinstance(classes, str)
        or not classes
        or not all(isinstance(c, int) and not isinstance(c, bool) for c in classes)
    ):
        raise ValueError(f"classes must be a positive number of classes or a list of integer labels, got {classes!r}")
    return sorted(set(classes))


def choose_classes(n_classes: int, count: int, seed: int = 0) -> list[int]:
    """``count`` of the labels ``0..n_classes-1``, evenly spread over the range from a seeded offset.

    Example:
        >>> choose_classes(100, 10, seed=0)
        [4, 14, 24, 34, 44, 54, 64, 74, 84, 94]
        >>> choose_classes(3, 3)
        [0, 1, 2]
    """
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ValueError(f"classes must be a positive number of classes or a list of labels, got {count!r}")
    if count > n_classes:
        raise ValueError(f"classes={count} asks for more classes than the model's {n_classes} outputs")
    stride = n_classes / count
    offset = float(torch.rand((), generator=torch.Generator().manual_seed(seed))) * stride
    return sorted({min(n_classes - 1, int(offset + i * stride)) for i in range(count)})


def probe_from_batches(
    batches: Iterable[Any],
    size: int,
    seed: int = 0,
    max_batches: int = 200,
    reader: BatchReader | None = None,
    classes: Sequence[int] | None = None,
    pad_id: int = 0,
    on_classless: Callable[[str], Any] | None = None,
    on_unlabelled: Callable[[int, int], Any] | None = None,
    no_class: str | None = None,
) -> tuple[ModelInputs, torch.Tensor]:
    """Collect batches until every class has ``2 * size // n_classes`` samples (or the data end), then subsample.

    ``reader`` finds the model inputs and labels in each batch (:class:`BatchReader`: tensors, tuples, dicts,
    Hugging Face batches, dataclasses); the inputs keep their structure.  ``classes`` keeps only those labels:
    the probe's ``size`` is split over them alone; token ids padded per batch are joined with ``pad_id``.  The global RNG state is saved and restored, so drawing the
    probe from a shuffling DataLoader does not change the training run's randomness.

    ``on_classless``: where a batch has no class per sample (multi-label, soft, regression or token labels, or
    none), the probe becomes one cloud, every label :data:`~lightning_topo.monitoring.batches.NO_CLASS`, and
    ``on_classless(why)`` is told once; without it, such a batch raises ``ValueError``. ``no_class``: every batch
    holds no class, for this reason (whole-number regression targets, which read as classes), told the same way.

    A negative label is no class: a semi-supervised loader's unlabelled sample (-1) or a sample a loss ignores
    (``ignore_index=-100``). Such samples are left out, and ``on_unlabelled(left_out, read)`` is told how many of
    the samples read they were; where no sample of the batches read has a class, the probe is one cloud of them, as
    for batches with no class per sample (``on_classless``, else ``ValueError``).

    Example:
        >>> batches = [{"x": torch.randn(8, 2), "label": torch.arange(8) % 4} for _ in range(3)]
        >>> x, y = probe_from_batches(batches, size=4, classes=[1, 3])
        >>> x.shape, sorted(y.tolist())
        (torch.Size([4, 2]), [1, 1, 3, 3])
        >>> x, y = probe_from_batches([torch.randn(8, 2)] * 3, size=5, on_classless=print)
        found no labels (looked for labels, label, y, target, targets, or a tuple's second item)
        >>> x.shape, y.tolist()
        (torch.Size([5, 2]), [-1, -1, -1, -1, -1])
        >>> semi_supervised = [(torch.randn(8, 2), torch.tensor([0, -1, 1, -1, 0, -1, 1, -1])) for _ in range(3)]
        >>> x, y = probe_from_batches(semi_supervised, size=4, on_unlabelled=lambda out, read: print(out, read))
        8 16
        >>> sorted(y.tolist())
        [0, 0, 1, 1]
    """
    reader = reader or BatchReader()
    wanted = None if classes is None else torch.tensor(sorted({int(c) for c in classes}))
    xs: list[ModelInputs] = []
    ys: list[torch.Tensor] = []
    one_cloud = False
    unlabelled: list[ModelInputs] = []  # while no sample has a class: the probe of one cloud, if none ever does
    left_out = read = 0
    with torch.random.fork_rng(devices=[]):
        for i, batch in enumerate(batches):
            if on_classless is None:
                x, y = reader.split(batch)
            else:
                x, y, why = reader.read(batch)
                if no_class is not None:  # labels that read as classes but are none (a regression's counts)
                    y, why = None, no_class
                if y is None and not one_cloud:
                    one_cloud, wanted = True, None
                    on_classless(why or "")
            if one_cloud:  # every point one cloud: label 0 while counting
                y = torch.zeros(n_samples(x), dtype=torch.long)
                ys = [torch.zeros_like(part) for part in ys]
            y = y.detach().cpu().reshape(-1)
            read += len(y)
            if not one_cloud and not bool(has_class(y).all()):  # unlabelled (-1) or ignored (-100) samples
                labelled = torch.nonzero(has_class(y)).flatten()
                left_out += len(y) - len(labelled)
                if not ys and len(labelled) == 0 and sum(map(n_samples, unlabelled)) < 2 * size:
                    unlabelled.append(to_host(x))
                x, y = take(x, labelled), y[labelled]
            if wanted is not None:
                keep = torch.nonzero(torch.isin(y, wanted)).flatten()
                x, y = take(x, keep), y[keep]
            if len(y) == 0:  # every sample of the batch without a class
                if i + 1 >= max_batches:
                    break
                continue
            xs.append(to_host(x))
            ys.append(y)
            labels = torch.cat(ys)
            counts = torch.bincount(labels) if len(labels) else torch.zeros(1, dtype=torch.long)
            present = counts[wanted[wanted < len(counts)]] if wanted is not None else counts[counts > 0]
            complete = wanted is None or len(present) == len(wanted)
            if i + 1 >= max_batches or (complete and len(present) and present.min() * len(present) >= 2 * size):
                break
    if not xs and wanted is not None and read:  # the batches held samples, none of the classes asked for
        raise ValueError(
            f"classes {wanted.tolist()} do not appear in the first training batches; choose classes among the "
            "data's labels (classes=[...]) or let the monitor choose (classes=N)"
        )
    if not xs and unlabelled:  # every label read is negative: no sample has a class
        why = f"every label of the {read} samples read is negative, no class (-1 marks unlabelled samples)"
        if on_classless is None:
            raise ValueError(f"the training batches hold no class to draw the probe from: {why}")
        on_classless(why)
        x = concat(unlabelled, pad_id)
        idx = balanced_indices(torch.zeros(n_samples(x), dtype=torch.long), size, seed)
        return take(x, idx), torch.full((len(idx),), NO_CLASS, dtype=torch.long)
    if not xs:
        raise ValueError("the training data yielded no batch to draw the probe from")
    if left_out and on_unlabelled is not None:
        on_unlabelled(left_out, read)
    x, y = concat(xs, pad_id), torch.cat(ys)
    if wanted is not None:
        missing = [int(c) for c in wanted if not bool((y == c).any())]
        if missing:
            raise ValueError(
                f"classes {missing} do not appear in the first {len(xs)} training batches; choose classes among "
                "the data's labels (classes=[...]) or let the monitor choose (classes=N)"
            )
    idx = balanced_indices(y, size, seed)
    return take(x, idx), (torch.full_like(y[idx], NO_CLASS) if one_cloud else y[idx])


def output_width(
    model: torch.nn.Module, inputs: ModelInputs, forward: ForwardFn = call_model, output_key: Any = None
) -> int:
    """The number of the model's outputs per sample (its classes, for a classifier), from a pass on two samples."""
    from lightning_topo.monitoring.hooks import forward_with_hooks, randomness_kept
    from lightning_topo.monitoring.outputs import per_sample, select_tensor
    from lightning_topo.monitoring.trace import unrunnable

    result: dict[str, Any] = {}
    example = take(inputs, slice(0, 2))
    try:
        with randomness_kept(model):
            forward_with_hooks(model, example, {}, result=result, forward=forward)
    except Exception as error:  # the first call on the probe when classes are chosen: a configuration error
        raise unrunnable(model, example, error, forward) from error
    return int(per_sample(select_tensor(result["output"], output_key)).shape[1])


def resolve_classes(
    classes: int | Sequence[int] | None,
    model: torch.nn.Module,
    example: ModelInputs,
    seed: int = 0,
    forward: ForwardFn = call_model,
    output_key: Any = None,
) -> list[int] | None:
    """``classes=`` as a list of labels: a list as given (sorted, unique), an integer ``N`` as :func:`choose_classes`
    over the model's outputs (its label range), ``None`` for every class."""
    if classes is None:
        return None
    if isinstance(classes, int):
        return choose_classes(output_width(model, example, forward, output_key), classes, seed)
    return sorted({int(c) for c in classes})


def probe_of_classes(
    probe: tuple[ModelInputs, torch.Tensor], classes: int | Sequence[int] | None, seed: int = 0
) -> tuple[ModelInputs, torch.Tensor]:
    """A given probe kept to the classes ``classes=`` names: a list must name labels the probe holds, and ``N``
    takes ``N`` of its labels, evenly spread from a seeded offset (:func:`choose_classes` over its sorted labels).
    ``None`` keeps every class.

    Example:
        >>> x, y = torch.zeros(6, 2), torch.tensor([0, 1, 2, 0, 1, 2])
        >>> probe_of_classes((x, y), [0, 2])[1].tolist()
        [0, 2, 0, 2]
        >>> probe_of_classes((x, y), [5, 2])
        Traceback (most recent call last):
        ...
        ValueError: classes [5] are not in the probe given (its labels: 0, 1, 2): choose classes among them, or pass a probe that holds them
    """
    if classes is None:
        return probe
    x, y = probe
    present = classes_present(y)
    if not present:  # NO_CLASS, or every point unlabelled
        raise ValueError(f"classes={classes!r} needs class labels, and the probe given has none (labels=None)")
    shown = ", ".join(map(str, present[:20])) + (f", ... ({len(present)} labels)" if len(present) > 20 else "")
    if isinstance(classes, int):
        if classes > len(present):
            raise ValueError(f"classes={classes} asks for more classes than the probe given holds ({shown})")
        chosen = [present[i] for i in choose_classes(len(present), classes, seed)]
    else:
        chosen = sorted({int(c) for c in classes})
        missing = [c for c in chosen if c not in present]
        if missing:
            raise ValueError(
                f"classes {missing} are not in the probe given (its labels: {shown}): choose classes among them, "
                "or pass a probe that holds them"
            )
    keep = torch.nonzero(torch.isin(y, torch.tensor(chosen, dtype=y.dtype))).flatten()
    return (x, y) if len(keep) == len(y) else (take(x, keep), y[keep])


def _holds_loaders(value: Any) -> bool:
    """Whether ``value`` is a collection of data loaders (a dict or list of them), not a batch or a loader."""
    items = value.values() if isinstance(value, Mapping) else value if isinstance(value, (list, tuple)) else ()
    return bool(items) and all(_is_loader(item) or _holds_loaders(item) for item in items)


def _is_loader(value: Any) -> bool:
    return isinstance(value, torch.utils.data.DataLoader) or hasattr(value, "iterables")  # Lightning's CombinedLoader


def first_loader(loaders: Any) -> tuple[Any, str | None]:
    """The loader to draw a probe from, and where it sits among several: a loader as it is (``None``); of several,
    a dict or list of them as Lightning trains on (or a ``CombinedLoader`` around them), the first (``"a"``,
    ``"[0]"``): its batches are one loader's, which the batch rule reads.

    Example:
        >>> from torch.utils.data import DataLoader
        >>> a, b = DataLoader([1, 2]), DataLoader([3])
        >>> first_loader({"a": a, "b": b}) == (a, "'a'"), first_loader([b, a]) == (b, "[0]"), first_loader(a) == (a, None)
        (True, True, True)
    """
    where: list[str] = []
    while True:
        iterables = getattr(loaders, "iterables", None)  # a CombinedLoader: what it combines, one loader or several
        if iterables is not None and (_is_loader(iterables) or _holds_loaders(iterables)):
            loaders = iterables
            continue
        if not _holds_loaders(loaders):
            return loaders, ("".join(where) or None)
        if isinstance(loaders, Mapping):
            key = next(iter(loaders))
            where.append(repr(key) if not where else f"[{key!r}]")
            loaders = loaders[key]
        else:
            where.append("[0]")
            loaders = loaders[0]


def own_iteration(loader: Any) -> Any:
    """``loader`` to iterate without touching the training loop's iterator: a ``DataLoader`` with persistent workers
    hands every ``iter()`` its one cached iterator, which Lightning has started for the epoch before the callbacks'
    ``on_train_start``, so a probe drawn from it would take (and reset) that epoch's batches. Such a loader is
    copied with workers of its own, started and stopped for the draw as a loader without persistent workers starts
    them; any other loader is returned as it is.

    Example:
        >>> from torch.utils.data import DataLoader
        >>> loader = DataLoader(list(range(8)), batch_size=4, num_workers=1, persistent_workers=True)
        >>> copy = own_iteration(loader)
        >>> copy is not loader, copy.persistent_workers, copy.dataset is loader.dataset
        (True, False, True)
    """
    if not isinstance(loader, DataLoader) or not loader.persistent_workers or loader.num_workers == 0:
        return loader
    copied = copy.copy(loader)  # the same dataset, sampler and collate_fn
    copied.__dict__.update(persistent_workers=False, _iterator=None)  # DataLoader forbids setting these after init
    return copied


@contextlib.contextmanager
def loader_randomness_kept(loader: Any) -> Iterator[None]:
    """Read ``loader`` inside without changing the batches of the fit's epochs: the global RNG and the generators
    that its sampler and batch sampler shuffle with (``DataLoader(..., generator=g)``, PyTorch's recipe for a
    reproducible order, or ``RandomSampler(generator=g)``) are put back as they were. A probe drawn from such a
    loader used to advance its generator, so the fit trained on another order with the monitor than without it.

    Example:
        >>> def loader():
        ...     return DataLoader(list(range(8)), batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(1))
        >>> watched, plain = loader(), loader()
        >>> with loader_randomness_kept(watched):
        ...     probe = next(iter(watched))
        >>> [b.tolist() for b in watched] == [b.tolist() for b in plain]
        True
    """
    generators = _sampler_generators(loader)
    states = [generator.get_state() for generator in generators]
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        for generator, state in zip(generators, states):
            generator.set_state(state)


def _sampler_generators(loader: Any) -> list[torch.Generator]:
    """The ``torch.Generator``s of ``loader`` and of its samplers, nested as wrappers nest them (a batch sampler's
    sampler, Lightning's distributed wrappers), each once."""
    found: dict[int, torch.Generator] = {}

    def visit(part: Any, depth: int) -> None:
        if part is None or depth > 4:
            return
        generator = getattr(part, "generator", None)
        if isinstance(generator, torch.Generator):
            found[id(generator)] = generator
        for name in ("sampler", "batch_sampler"):
            inner = getattr(part, name, None)
            if inner is not part:
                visit(inner, depth + 1)

    visit(loader, 0)
    return list(found.values())


#: The fewest points of a class cloud when the monitor chooses the classes itself (:func:`draw_probe`'s ``least``).
AUTOMATIC_CLASS_POINTS = 100


def _class_count(width: int, present: Sequence[int]) -> int:
    """How many classes the data holds, from the model's output ``width`` and the labels ``present`` in its first
    batch: the width (a classifier's logits), unless the label range (the largest label and one) is at most half of
    it: then the model returns features (a headless backbone) or a head wider than the data's labels, and the range
    counts. A first batch that misses the top labels of a classifier's many classes keeps the width. Never fewer
    than the labels seen.

    Example:
        >>> _class_count(1000, [3, 41, 990]), _class_count(70, [0, 5, 63]), _class_count(544, [0, 1, 2])
        (1000, 70, 3)
    """
    if not present:
        return width
    label_range = max(present) + 1
    return max(len(present), label_range if label_range <= width // 2 else width)


def _automatic_count(width: int, size: int, least: int) -> int | None:
    """How many of a model's ``width`` classes a probe of ``size`` points watches when each needs ``least``:
    ``None`` (every class) when they all get that many (or the model has one output), else enough for clouds of
    :data:`AUTOMATIC_CLASS_POINTS` (at least ``least``) each.

    Example:
        >>> _automatic_count(100, 1000, 15), _automatic_count(10, 1000, 15), _automatic_count(100, 50, 15)
        (10, None, 1)
    """
    if width < 2 or size // width >= least:
        return None
    return max(1, min(width - 1, size // max(least, AUTOMATIC_CLASS_POINTS)))


def draw_probe(
    batches: Iterable[Any],
    size: int,
    model: torch.nn.Module,
    seed: int = 0,
    reader: BatchReader | None = None,
    classes: int | Sequence[int] | None = None,
    output_key: Any = None,
    info: Callable[[str], Any] | None = None,
    least: int | None = None,
    one_cloud: bool = False,
    batch_limit: int | None = None,
) -> tuple[ModelInputs, torch.Tensor]:
    """The probe of a fit: :func:`probe_from_batches` over the classes that ``classes`` names (every class: ``None``).

    ``batches``: a loader, or several (a dict or list of them: the first is read, :func:`first_loader`, and
    ``info`` is told which). An integer ``classes`` is resolved on the first batch (the model's output width is its
    label range); when only some classes are kept, up to 2,000 batches are read to find enough of them (200
    otherwise). ``least``: with ``classes=None``, the fewest points a class needs (the monitor's ``k + 1``); when
    the model's classes would get fewer each (100 classes in 1,000 points), the probe holds
    ``size // max(least, 100)`` of them instead, spread evenly (seeded) over the labels of the first batch, and
    ``info`` is told. ``one_cloud``: batches with no class per sample (multi-label, soft, regression or token
    labels, or none) give a probe of one cloud (labels :data:`~lightning_topo.monitoring.batches.NO_CLASS`), and
    ``info`` says why, instead of a ``ValueError``. ``batch_limit``: read no more batches than that
    (:func:`~lightning_topo.monitoring.probe_preparation.fit_batch_limit`, the batches the fit itself reads).
    """
    batches, where = first_loader(batches)
    batches = own_iteration(batches)  # never the training loop's own iterator (persistent workers)
    reader = reader or BatchReader()
    if reader.decoder_inputs is None:  # an encoder-decoder model's decoder inputs, from its batches' token labels
        reader = dataclasses.replace(reader, decoder_inputs=decoder_inputs_of(model))
    if where is not None and info is not None:
        info(f"{reader.owner}: the fit has several training loaders; its probe is drawn from the first ({where})")
    chosen, automatic, no_class = None, False, None
    if classes is not None or least is not None:
        with loader_randomness_kept(batches):
            first = next(iter(batches), None)
        if first is None:
            raise ValueError("the training data yielded no batch to draw the probe from")
        example, labels = reader.split(first, classless=one_cloud)
        if bool((labels == NO_CLASS).all()):
            pass  # no classes to choose among: probe_from_batches makes it one cloud and says why
        elif classes is not None:
            chosen = resolve_classes(classes, model, example, seed, reader.forward, output_key)
        else:  # the monitor's own choice where every class cannot be measured: labels the data surely holds
            width = output_width(model, take(example, slice(0, 2)), reader.forward, output_key)
            present = classes_present(torch.as_tensor(labels).reshape(-1))
            if one_cloud and width == 1 and present and max(present) > 1:
                no_class = (
                    f"its labels, whole numbers from {min(present)} to {max(present)} in the first "
                    "batch, are no classes of a model with one output: regression targets"
                )
            width = _class_count(width, present)
            count = None if no_class else _automatic_count(width, size, least or 1)
            if count is not None and count < len(present):
                chosen = [int(present[i]) for i in choose_classes(len(present), count, seed)]
                automatic = True
    why: list[str] = []
    unlabelled: list[tuple[int, int]] = []
    max_batches = 200 if chosen is None else 2000  # the loop ends as soon as every kept class has enough
    if batch_limit is not None:  # the fit reads these alone (overfit_batches, fast_dev_run): so does the probe
        max_batches = min(max_batches, batch_limit)
    with loader_randomness_kept(batches):
        probe = probe_from_batches(
            batches,
            size,
            seed,
            max_batches=max_batches,
            reader=reader,
            classes=chosen,
            pad_id=token_pad_id(model),
            on_classless=why.append if one_cloud else None,
            on_unlabelled=lambda left_out, read: unlabelled.append((left_out, read)),
            no_class=no_class,
        )
    if unlabelled and info is not None:
        left_out, read = unlabelled[0]
        info(
            f"{reader.owner}: {left_out} of the {read} training samples read have a negative label, no class (-1 "
            "marks unlabelled samples, -100 a loss's ignore_index), so the probe is drawn from the labelled ones"
        )
    if why and info is not None:
        ignored = f"; classes={classes!r} is not used" if classes is not None else ""
        info(
            f"{reader.owner} reads no class per sample in a training batch ({why[0]}), so it measures the probe's "
            f"{len(probe[1])} points as one cloud, class 'all'{ignored}. For a cloud per class, pass label_key=... "
            "(where class labels are) or probe=(inputs, labels), e.g. clean samples with their classes"
        )
    elif automatic and info is not None:
        shown = ", ".join(map(str, chosen[:6])) + (" ..." if len(chosen) > 6 else "")
        info(
            f"{reader.owner}: {size} probe points would give each of the {width} classes "
            f"{size // width}, fewer than the {least} a class needs (k + 1), so it watches {len(chosen)} of them, "
            f"spread evenly over the labels of the first batch ({shown}); pass classes=N or [...] to choose, or "
            "raise probe_size"
        )
    return probe


def token_pad_id(model: torch.nn.Module) -> int:
    """The pad token id of the (first) Hugging Face model inside ``model`` (``config.pad_token_id``), else 0.

    A probe joined from batches padded to different lengths must be padded with it: GPT-style classifiers read
    their logits at the last token that is not the pad id, so padding with another id moves that token.

    Example:
        >>> token_pad_id(torch.nn.Linear(2, 2))
        0
    """
    pad = config_pad_id(model)
    return 0 if pad is None else pad
