"""Which layers of a model to watch: activation modules of any library, repeated blocks, names and globs.

Three rules, all in forward order and followed by the pseudo-layer ``"logits"`` (the model's output):

- ``"activations"``: every activation module, recognised by class: ``torch.nn``'s, this package's registry, and
  every class defined in a module listed in :data:`ACTIVATION_MODULES` (timm's and transformers' own activation
  classes, which do not subclass ``nn.GELU`` and friends), matched by module path, so neither library is imported;
- ``"blocks"``: the outputs of a model's repeated blocks (:func:`find_blocks`): a transformer's
  ``encoder.layer.N``, timm's ``blocks.N``, a ResNet's ``layerK.N``, a ConvNeXt's ``stages.K.blocks.N``;
- names and glob patterns (``"features.*.act"``), plus ``"input"`` and ``"logits"``.

The default (``None``) is the activation rule, or the block rule when the activations number more than
:data:`MAX_DEFAULT_LAYERS` (an EfficientNet's 65 SE and BN activations are unreadable in TensorBoard) or none.
"""

from __future__ import annotations

import fnmatch
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence

from torch import nn

from lightning_topo.monitoring.batches import ForwardFn, ModelInputs, call_model
from lightning_topo.monitoring.hooks import split_call
from lightning_topo.monitoring.trace import ForwardTrace, trace_forward

__all__ = [
    "ACTIVATIONS",
    "ACTIVATION_MODULES",
    "BLOCKS",
    "INPUT",
    "LOGITS",
    "MAX_DEFAULT_LAYERS",
    "activation_module_types",
    "find_blocks",
    "is_activation",
    "resolve_layers",
    "select_layers",
]

#: Pseudo-layer names: the probe inputs themselves, and the model's output (the logits).
INPUT, LOGITS = "input", "logits"
#: Rule names accepted as ``layers=``.
ACTIVATIONS, BLOCKS = "activations", "blocks"
#: Above this many activation modules the default watches the blocks instead.
MAX_DEFAULT_LAYERS = 32

#: Modules whose ``nn.Module`` classes are activations, by import path, with the class names to take (``None``:
#: every class defined there). Extend it for another library: ``ACTIVATION_MODULES["mylib.acts"] = None``.
ACTIVATION_MODULES: dict[str, frozenset[str] | None] = {
    "timm.layers.activations": None,
    "timm.layers.activations_me": None,
    "timm.layers.activations_jit": None,
    "transformers.activations": None,
}
#: Class names never taken for activations, wherever they are defined (identities).
NOT_ACTIVATIONS = frozenset({"Identity", "LinearActivation"})

#: a numbered name: its stem, its number and an optional letter (``layer3``, ``7``, inception's ``Mixed_5b``)
_NUMBERED = re.compile(r"^(.*?)(\d+)([a-z]?)$")


def activation_module_types() -> tuple[type, ...]:
    """Every ``torch.nn`` activation class plus every class in this package's activation registry."""
    from torch.nn.modules import activation as torch_activations

    from lightning_topo.activations import _REGISTRY

    types = {obj for obj in vars(torch_activations).values() if isinstance(obj, type) and issubclass(obj, nn.Module)}
    types.discard(nn.Module)
    types.discard(nn.MultiheadAttention)
    types |= {f for f in _REGISTRY.values() if isinstance(f, type) and issubclass(f, nn.Module)}
    types -= {nn.Identity}
    return tuple(types)


def is_activation(module: nn.Module, types: tuple[type, ...] | None = None) -> bool:
    """Whether ``module`` is an activation: a torch or registry class, or a class of :data:`ACTIVATION_MODULES`.

    Example:
        >>> is_activation(nn.GELU()), is_activation(nn.Linear(2, 2))
        (True, False)
    """
    if isinstance(module, types or activation_module_types()):
        return True
    for cls in type(module).__mro__:
        if cls.__name__ in NOT_ACTIVATIONS:
            return False
        names = ACTIVATION_MODULES.get(cls.__module__, frozenset())
        if names is None or cls.__name__ in names:
            return True
    return False


def find_blocks(model: nn.Module, trace: ForwardTrace | None = None) -> list[str]:
    """The model's repeated blocks: the innermost groups of numbered siblings that hold modules themselves.

    A block is a numbered item (``layer.3``, ``blocks.7``, ``features.layer2``, ``Mixed_5b``) of a ``Sequential``
    or ``ModuleList`` that has children of its own (a ``Sequential`` of plain ``Linear`` layers is no block), among
    siblings of one name stem of which at least two share a class (so a stage's odd last block, an EfficientFormer's
    ``MetaBlock1d`` after its ``MetaBlock2d``s, is one too) and whose numbers run without a gap (a DenseNet's
    ``norm0`` and ``norm5`` around its dense blocks are no group); of nested candidates the innermost are kept (a
    ConvNeXt's ``stages.K.blocks.N``, not ``stages.K``). A model's stem (a module named ``stem`` or
    ``patch_embed``) holds no blocks.

    With a ``trace`` of a forward pass (:func:`~lightning_topo.monitoring.trace.trace_forward`), the model's data
    flow is read too:

    - numbered siblings held as plain attributes count when each one feeds the next (timm RegNet's ``s2.b1``,
      ``s2.b2``; torchvision ResNet's ``layer1`` ... ``layer4``; inception's ``Mixed_5b`` ... ``Mixed_7c``), not
      when they are a block's parts (an EfficientNet block's ``bn1`` and ``bn2``);
    - the numbered parts of a residual or multi-branch unit (:attr:`ForwardTrace.branching`, which also sees an
      input concatenated with what was made from it) are left to it, and so are their own numbered parts: a
      Hugging Face ResNet's blocks are ``stages.K.layers.N``, not the convolutions ``layers.N.layer.M`` inside; an
      HGNetV2's are ``stages.K.blocks.N``, not ``blocks.N.layers.M`` nor ``layers.M.conv1`` and ``conv2``;
    - a module that never ran, or whose output is not one row per sample (a MobileViT transformer's patches), is
      no block, so the block around it is watched instead;
    - a block that ran several times in the pass is a block per call (``name-callK``, its plain name the last): a
      Perceiver's self-attention layers, run once per block of its encoder.

    Names in definition order (a block's calls in turn).

    Example:
        >>> net = nn.Sequential(*[nn.Sequential(nn.Linear(4, 4), nn.ReLU()) for _ in range(3)], nn.Linear(4, 2))
        >>> find_blocks(net)
        ['0', '1', '2']
    """
    modules = dict(model.named_modules())
    groups = _numbered_groups(model, trace)
    candidates = [name for group in groups for name in group]
    if trace is not None:
        parts: set[str] = set()
        for group in groups:  # outer groups first: the parts of a part are parts too
            if _are_parts(group, groups, trace, modules, parts):
                parts.update(group)
        ran = [member for name in candidates if name not in parts for member in _ran_as(name, modules, trace)]
        candidates = [name for name in dict.fromkeys(ran) if trace.one_row_per_sample(name)]
    rank = {name: i for i, name in enumerate(modules)}
    innermost = [c for c in candidates if not any(other.startswith(c + ".") for other in candidates)]
    blocks = sorted(innermost, key=rank.__getitem__)
    if trace is not None:  # a block that runs once per depth (ALBERT's shared layer): a block per call
        related = lambda name: any(_nested(name, other) for other in blocks)  # noqa: E731
        blocks = [call for name in blocks for call in _calls(name, trace)]
        blocks += [
            call for name in _reused_blocks(modules, trace) if not related(name) for call in trace.call_names(name)
        ]
    return blocks


def _calls(block: str, trace: ForwardTrace) -> list[str]:
    """A block's calls as blocks (a Perceiver's self-attention layers, run once per block of the encoder), where
    each holds one row per sample; else the block (its last call)."""
    calls = trace.call_names(block)
    return calls if all(trace.one_row_per_sample(call) for call in calls) else [block]


def _nested(name: str, other: str) -> bool:
    """Whether modules ``name`` and ``other`` are one, or one holds the other."""
    return name == other or name.startswith(other + ".") or other.startswith(name + ".")


def _reused_blocks(modules: dict[str, nn.Module], trace: ForwardTrace) -> list[str]:
    """Modules that are blocks by their calls: a module with modules of its own (not in a stem) that runs several
    times in a pass, each call on the output of its previous call (or of a module around or inside it, whose call
    it was): ALBERT's one shared layer, run once per depth. Of nested ones, the outermost: the module that is
    repeated (ALBERT's layer group), not the parts that each repetition runs (its attention)."""
    found = []
    for name, count in trace.calls.items():
        if count < 2 or name not in modules or not _holds_modules(modules[name]) or _in_stem(name):
            continue
        calls = trace.call_names(name)
        feeders = [split_call(trace.fed_by.get(call) or "") for call in calls[1:-1]]
        feeders.append(split_call(trace.last_fed_by.get(name) or ""))
        chained = all(call == k and _nested(fed, name) for k, (fed, call) in enumerate(feeders, start=1))  # k + 1 on k
        if chained and all(trace.one_row_per_sample(call) for call in calls):
            found.append(name)
    return [name for name in found if not any(name.startswith(other + ".") for other in found)]


def _numbered_groups(model: nn.Module, trace: ForwardTrace | None) -> list[list[str]]:
    """Groups of numbered siblings of one name stem that hold modules, two of them at least of one class: every
    such group of a ``Sequential`` or ``ModuleList``, and, given a ``trace``, of any other module when each member
    fed the next."""
    found: list[list[str]] = []
    for name, module in model.named_modules():
        container = isinstance(module, (nn.Sequential, nn.ModuleList))
        if not container and trace is None:
            continue  # numbered attributes of a block (an EfficientNet's bn1, bn2) are its parts, not blocks
        if _in_stem(name):
            continue  # a stem's numbered convolutions (LeViT's stem.conv1 ... conv4) are its parts, not blocks
        stems: dict[str, list[tuple[tuple[int, str], str, type]]] = defaultdict(list)
        numbers: dict[str, set[int]] = defaultdict(set)  # every number a stem name carries here, leaves included
        for child_name, child in module.named_children():
            match = _NUMBERED.match(child_name)
            if match:
                numbers[match.group(1)].add(int(match.group(2)))
            if match and _holds_modules(child):
                full = f"{name}.{child_name}" if name else child_name
                stems[match.group(1)].append(((int(match.group(2)), match.group(3)), full, type(child)))
        for stem, members in stems.items():
            if max(Counter(cls for _, _, cls in members).values()) < 2:
                continue  # no two of one class: differently built parts (a stem's conv1, conv2), not repeats
            taken = [number for (number, _), _, _ in members]
            if not numbers[stem] >= set(range(min(taken), max(taken) + 1)):
                continue  # numbers with a gap: parts that bracket the blocks (a DenseNet's norm0 and norm5)
            names = [full for _, full, _ in (members if container else sorted(members, key=lambda m: m[0]))]
            if container or _chained(names, trace):
                found.append(names)
    return found


def _ran_as(name: str, modules: dict[str, nn.Module], trace: ForwardTrace) -> list[str]:
    """What stands for candidate ``name`` in a traced pass: itself if it ran; a ``ModuleList``, never called
    itself, that holds a single module with modules of its own, that member if it ran (a Hugging Face PVT's
    one-layer stage ``block.K`` is ``block.K.0``); otherwise nothing (an HRNet's fuse lists, several branches
    each, are no block)."""
    if name in trace.called:
        return [name]
    members = list(modules[name].named_children()) if isinstance(modules[name], nn.ModuleList) else []
    if len(members) != 1:
        return []
    child_name, child = members[0]
    member = f"{name}.{child_name}"
    return [member] if member in trace.called and _holds_modules(child) else []


def _holds_modules(module: nn.Module) -> bool:
    """Whether ``module`` has children (a block), unlike a leaf layer."""
    return next(module.children(), None) is not None


_STEMS = frozenset({"stem", "patch_embed"})  # timm's names for the layers before the first block
_HELD_NETWORK = "backbone"  # a whole network inside a stem (timm's HybridEmbed), with blocks of its own


def _in_stem(name: str) -> bool:
    """Whether ``name`` is or lies inside a model's stem (a module named ``stem`` or ``patch_embed``, timm's
    conventions), and not in a whole network that a stem holds (a hybrid ViT's ``patch_embed.backbone``, a ResNet
    with blocks of its own, whose own ``stem`` is a stem again).

    Example:
        >>> _in_stem("patch_embed.proj.0"), _in_stem("patch_embed.backbone.stages.1"), _in_stem("patch_embed.backbone.stem")
        (True, False, True)
    """
    parts = name.split(".")
    last = max((index for index, part in enumerate(parts) if part in _STEMS), default=None)
    return last is not None and _HELD_NETWORK not in parts[last + 1 :]


def _are_parts(
    group: list[str], groups: list[list[str]], trace: ForwardTrace, modules: dict[str, nn.Module], parts: set[str]
) -> bool:
    """Whether a group holds the numbered parts of a residual or multi-branch unit: none of its repeated members
    branches, and it lies inside one of the ``parts`` found so far (an HGNetV2 block's light convolution
    ``layers.N`` around ``layers.N.conv1``, ``conv2``), or a module around it branches: the module that owns it
    (inception's ``Mixed_5b`` around ``branch5x5_1``, ``branch5x5_2``), the numbered module around it (``layers.N``
    around ``layers.N.layer.M``), or a module between them or between the group and either (an EfficientViT
    block's residual ``mixer`` around the per-head ``mixer.m.attn.qkvs.H``; a VoVNet block's ``conv_mid``, a
    ``Sequential`` whose own forward concatenates its input with its layers' outputs), or the numbered one has a
    repeated sibling in its group that does; or its members do not feed each other and one operation joined their
    outputs (:attr:`ForwardTrace.joined`: a selective-kernel convolution's paths, run on splits of its input and
    stacked). (A repeated member: one of a class that the group holds twice or more; a lone SE gate among
    convolutions branches without making them blocks.)"""

    def branches(members: list[str]) -> bool:
        classes = Counter(type(modules[m]) for m in members)
        return bool(trace.branching.intersection(m for m in members if classes[type(modules[m])] >= 2))

    if branches(group):
        return False
    if any(group[0].startswith(part + ".") for part in parts):
        return True
    if not _chained(group, trace) and any(joined.issuperset(group) for joined in trace.joined):
        return True
    around = _around(group[0], modules)
    return any(
        module in trace.branching or any(module in other and branches(other) for other in groups) for module in around
    )


def _around(name: str, modules: dict[str, nn.Module]) -> set[str]:
    """The modules around ``name`` up to its owner or its numbered ancestor, whichever is further out: those whose
    code runs ``name``'s group.

    Example:
        >>> block = nn.ModuleDict({"mid": nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))})  # a VoVNet block's conv_mid
        >>> sorted(_around("0.mid.1", dict(nn.Sequential(block).named_modules())))
        ['0', '0.mid']
    """
    owner, numbered = _owner(name, modules), _numbered_ancestor(name)
    top = min((m for m in (owner, numbered) if m), key=lambda m: m.count("."), default=None)
    around, parent = set(), name.rpartition(".")[0]
    while top is not None and parent and (parent == top or parent.startswith(top + ".")):
        around.add(parent)
        parent = parent.rpartition(".")[0]
    return around


def _owner(name: str, modules: dict[str, nn.Module]) -> str | None:
    """The module whose code runs ``name``'s group: its parent, or above a ``Sequential``/``ModuleList`` the first
    module that is not one."""
    parent = name.rpartition(".")[0]
    while parent and isinstance(modules[parent], (nn.Sequential, nn.ModuleList)):
        parent = parent.rpartition(".")[0]
    return parent or None


def _numbered_ancestor(name: str) -> str | None:
    """The nearest module above ``name`` whose own name ends in a number (``stages.0.layers.1`` above
    ``stages.0.layers.1.layer.2``), or ``None``."""
    parts = name.split(".")
    for depth in range(len(parts) - 1, 0, -1):
        if _NUMBERED.match(parts[depth - 1]):
            return ".".join(parts[:depth])
    return None


def _chained(names: Sequence[str], trace: ForwardTrace | None) -> bool:
    """Whether each named module ran on the previous one's output (a pipeline of blocks, not scattered parts)."""
    return trace is not None and all(
        split_call(trace.fed_by.get(after, ""))[0] == before for before, after in zip(names, names[1:])
    )


def _positions(trace: ForwardTrace) -> Callable[[str], tuple[int, ...]]:
    """Forward position of any layer name: a leaf's own, a container's first called leaf's (uncalled: last); a call
    of a module that ran more than once (``act-call2``, or ``act`` for its last) where that call ended among them."""
    first: dict[str, int] = {}
    for i, leaf in enumerate(trace.order):
        parts = leaf.split(".")
        for depth in range(1, len(parts) + 1):
            first.setdefault(".".join(parts[:depth]), i)

    def position(name: str) -> tuple[int, ...]:
        if name in trace.slots:  # after the leaves that had run by the end of that call, before the next
            return (trace.slots[name] - 1, 1, trace.ended[name])
        return (first.get(name, len(trace.order)),)

    return position


def resolve_layers(
    model: nn.Module,
    layers: str | Sequence[str] | None,
    example: ModelInputs,
    forward: ForwardFn = call_model,
    trace: ForwardTrace | None = None,
) -> tuple[list[str], str]:
    """The module names to watch, in forward order, and the rule that chose them (``"activations"``, ``"blocks"``,
    ``"names"``, or ``"none"`` when the default found no hidden layer).

    ``layers`` is ``None`` (the default rule), ``"activations"``, ``"blocks"``, or a list of module names, glob
    patterns, ``"input"``, ``"logits"`` and the two rule names; a name inside a ``torch.compile``'d module matches
    with or without torch's ``_orig_mod`` (``"net.fc1"`` finds ``net._orig_mod.fc1``). A pattern that matches
    nothing raises a ``ValueError`` listing the names; so does ``"blocks"`` on a model without repeated blocks, and
    a pattern whose every match never runs in the forward pass (a glob's matches that never run are passed over).
    ``trace`` is the model's :func:`~lightning_topo.monitoring.trace.trace_forward` on ``example`` when one was
    made already.
    """
    modules = dict(model.named_modules())
    trace = trace if trace is not None else trace_forward(model, example, forward)
    order = trace.order
    position = _positions(trace)
    uncalled_position = (len(order),)

    def by_rule(rule: str) -> list[str]:
        if rule == ACTIVATIONS:  # an activation module called after several layers: each call, at its depth
            types = activation_module_types()
            calls = [call for n in order if is_activation(modules[n], types) for call in trace.call_names(n)]
            return sorted(calls, key=position)
        return sorted(find_blocks(model, trace), key=position)  # every one ran: the trace saw it

    if layers is None:
        activations = by_rule(ACTIVATIONS)
        usable = [name for name in activations if trace.one_row_per_sample(name)]  # not a PatchTST's (sample, channel)
        if 0 < len(usable) <= MAX_DEFAULT_LAYERS:
            return activations + [LOGITS], ACTIVATIONS  # the others are dropped, and said, by the caller
        blocks = by_rule(BLOCKS)
        if blocks:
            return blocks + [LOGITS], BLOCKS
        return activations + [LOGITS], ACTIVATIONS if activations else "none"
    patterns = [layers, LOGITS] if isinstance(layers, str) else list(layers)
    if isinstance(layers, str) and layers not in (ACTIVATIONS, BLOCKS):
        raise ValueError(f"layers must be None, 'activations', 'blocks' or a list of module names, got {layers!r}")
    chosen: list[str] = []
    available = [n for n in modules if n] + sorted(n for n in trace.called if split_call(n)[1] is not None)
    for pattern in patterns:
        if pattern in (INPUT, LOGITS):
            matches = [pattern]
        elif pattern in (ACTIVATIONS, BLOCKS):
            matches = by_rule(pattern)
            if not matches:
                hint = (
                    "activation module" if pattern == ACTIVATIONS else "repeated block (numbered siblings of one class)"
                )
                rows = [n for n in find_blocks(model) if n in trace.rows and not trace.one_row_per_sample(n)]
                if pattern == BLOCKS and rows:  # blocks there are, but of other rows than samples
                    hint = (
                        f"repeated block that holds one row per sample: its blocks ({rows[0]} ...) give "
                        f"{trace.rows[rows[0]]} rows for {trace.samples} samples (attention windows or heads, "
                        "say)"
                    )
                raise ValueError(
                    f"layers={pattern!r}: {type(model).__name__} has no {hint}; leave layers=None (the default "
                    "chooses the activations) or name the modules to watch instead (glob patterns work: "
                    f"'encoder.*'), e.g. among: {', '.join(available[:40])}"
                )
        else:
            matches = [n for n in available if _name_matches(n, pattern)]
        if not matches:
            raise ValueError(
                f"layer {pattern!r} matches no module of {type(model).__name__}; available names: "
                f"{', '.join(available)} (and the pseudo-layers 'input' and 'logits')"
            )
        uncalled = [m for m in matches if m not in (INPUT, LOGITS) and position(m) == uncalled_position]
        if uncalled and len(uncalled) == len(matches):
            raise ValueError(f"layer {pattern!r} is never called in the forward pass ({', '.join(uncalled)})")
        # a glob's matches that never run (a dropout the fused attention skips) hold no output: passed over
        chosen += [m for m in matches if m not in chosen and m not in uncalled]
    ranked = sorted((m for m in chosen if m not in (INPUT, LOGITS)), key=position)
    rule = layers if isinstance(layers, str) else "names"
    return ([INPUT] if INPUT in chosen else []) + ranked + ([LOGITS] if LOGITS in chosen else []), rule


_COMPILED = "_orig_mod"  # where torch.compile keeps the module it wraps: "net._orig_mod.fc1" for "net.fc1"


def _name_matches(name: str, pattern: str) -> bool:
    """Whether module ``name`` matches ``pattern``; under a ``torch.compile``'d module (``net._orig_mod.fc1``) as the
    name would read uncompiled (``net.fc1``), unless the pattern names ``_orig_mod`` itself, so a pattern picks the
    same layers whether the network is compiled or not (the original module itself, ``net._orig_mod``, returns what
    its wrapper ``net`` returns: it is never picked twice).

    Example:
        >>> _name_matches("net._orig_mod.fc1", "net.fc1"), _name_matches("_orig_mod.blocks.0", "blocks.*")
        (True, True)
        >>> _name_matches("net._orig_mod", "net.*"), _name_matches("net._orig_mod", "net._orig_mod")
        (False, True)
    """
    parts = name.split(".")
    if _COMPILED not in parts or _COMPILED in pattern:
        return fnmatch.fnmatchcase(name, pattern)
    return parts[-1] != _COMPILED and fnmatch.fnmatchcase(".".join(p for p in parts if p != _COMPILED), pattern)


def select_layers(
    model: nn.Module,
    patterns: str | Sequence[str] | None,
    example: ModelInputs,
    forward: ForwardFn = call_model,
) -> list[str]:
    """The module names to watch, in forward order (see :func:`resolve_layers`).

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> import torch
        >>> select_layers(net, None, torch.zeros(2, 2))
        ['1', 'logits']
    """
    return resolve_layers(model, patterns, example, forward)[0]
