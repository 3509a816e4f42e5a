"""Choosing which layers of a model to watch: default selection and name/glob matching."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

__all__ = [
    "INPUT",
    "LOGITS",
    "activation_module_types",
    "as_model_input",
    "eval_mode",
    "forward_order",
    "output_shapes",
    "select_layers",
]

#: Pseudo-layer names: the probe inputs themselves, and the model's output (the logits).
INPUT, LOGITS = "input", "logits"


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put every submodule in eval mode and restore each one's own mode afterwards.

    A model already wholly in eval mode (the monitor's passes inside its own ``eval_mode``) is left alone: no
    ``train()`` calls, which on a ResNet-18 cost as much as a tenth of a measurement on a GPU.
    """
    modes = {m: m.training for m in model.modules()}
    if not any(modes.values()):
        yield model
        return
    model.eval()
    try:
        yield model
    finally:
        for module, mode in modes.items():
            module.train(mode)


def as_model_input(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """``inputs`` on the model's device, and in its dtype when both are floating point (a bf16 model gets bf16).

    Example:
        >>> as_model_input(nn.Linear(2, 1).to(torch.bfloat16), torch.zeros(1, 2)).dtype
        torch.bfloat16
    """
    parameter = next(model.parameters(), None)
    if parameter is None:
        return inputs
    pinned = inputs.device.type == "cpu" and parameter.device.type == "cuda" and inputs.is_pinned()
    if parameter.is_floating_point() and inputs.is_floating_point():
        return inputs.to(parameter.device, parameter.dtype, non_blocking=pinned)
    return inputs.to(parameter.device, non_blocking=pinned)


def activation_module_types() -> tuple[type, ...]:
    """Every ``torch.nn`` activation class plus every class in this package's activation registry."""
    from lightning_topo.activations import _REGISTRY

    types = {
        obj for obj in vars(nn.modules.activation).values() if isinstance(obj, type) and issubclass(obj, nn.Module)
    }
    types.discard(nn.Module)
    types.discard(nn.MultiheadAttention)
    types |= {f for f in _REGISTRY.values() if isinstance(f, type) and issubclass(f, nn.Module)}
    types -= {nn.Identity}
    return tuple(types)


def _forward_with_hooks(
    model: nn.Module,
    example: torch.Tensor,
    hooks: dict[str, Callable[..., None]],
    result: dict[str, Any] | None = None,
    prepared: bool = False,
) -> None:
    """One forward pass on ``example`` in eval mode without gradients, with forward hooks on the named modules.

    ``result["output"]`` receives the model's output when ``result`` is given; ``prepared=True`` means
    ``example`` is already on the model's device and dtype (see :func:`as_model_input`).
    """
    modules = dict(model.named_modules())
    handles = [modules[name].register_forward_hook(hook) for name, hook in hooks.items()]
    try:
        with eval_mode(model), torch.no_grad():
            output = model(example if prepared else as_model_input(model, example))
        if result is not None:
            result["output"] = output
    finally:
        for handle in handles:
            handle.remove()


def forward_order(model: nn.Module, example: torch.Tensor) -> list[str]:
    """Names of the leaf modules in the order a forward pass on ``example`` calls them (first call).

    The pass runs in eval mode without gradients, so it changes nothing a later fit depends on: no
    BatchNorm running statistic is updated and no Dropout draws from the random generator.
    """
    order: list[str] = []
    leaves = [name for name, module in model.named_modules() if name and not list(module.children())]
    _forward_with_hooks(
        model,
        example,
        {name: (lambda m, i, o, name=name: order.append(name) if name not in order else None) for name in leaves},
    )
    return order


def output_shapes(model: nn.Module, example: torch.Tensor, names: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """Each named module's output shape per sample (e.g. ``(channels, height, width)``), from one forward pass.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU())
        >>> output_shapes(net, torch.zeros(1, 1, 8, 12), ["0"])
        {'0': (3, 6, 10)}
    """
    shapes: dict[str, tuple[int, ...]] = {}
    _forward_with_hooks(
        model,
        example,
        {name: (lambda m, i, o, name=name: shapes.__setitem__(name, tuple(o.shape[1:]))) for name in names},
    )
    return shapes


def select_layers(model: nn.Module, patterns: Sequence[str] | None, example: torch.Tensor) -> list[str]:
    """The module names to watch, in forward order.

    ``patterns=None`` selects every activation module and the logits (the model's output).  Otherwise
    each entry is a module name or a glob pattern (``"features.*.act"``); ``"input"`` and ``"logits"``
    are pseudo-layers.  A pattern that matches nothing raises a ``ValueError`` listing the names.
    """
    modules = dict(model.named_modules())
    order = forward_order(model, example)
    if patterns is None:
        acts = activation_module_types()
        return [n for n in order if isinstance(modules[n], acts)] + [LOGITS]
    called = set(order)

    # Forward order for leaves; containers follow their first called leaf.
    def position(name: str) -> int:
        for i, leaf in enumerate(order):
            if leaf == name or leaf.startswith(name + "."):
                return i
        return len(order)

    chosen: list[str] = []
    available = [n for n in modules if n]
    for pattern in patterns:
        if pattern in (INPUT, LOGITS):
            matches = [pattern]
        else:
            matches = [n for n in available if fnmatch.fnmatchcase(n, pattern)]
        if not matches:
            raise ValueError(
                f"layer {pattern!r} matches no module of {type(model).__name__}; available names: "
                f"{', '.join(available)} (and the pseudo-layers 'input' and 'logits')"
            )
        uncalled = [m for m in matches if m not in (INPUT, LOGITS) and m not in called and position(m) == len(order)]
        if uncalled and len(uncalled) == len(matches):
            raise ValueError(f"layer {pattern!r} is never called in the forward pass ({', '.join(uncalled)})")
        chosen += [m for m in matches if m not in chosen]
    ranked = sorted((m for m in chosen if m not in (INPUT, LOGITS)), key=position)
    return ([INPUT] if INPUT in chosen else []) + ranked + ([LOGITS] if LOGITS in chosen else [])
