"""Running a model on probe inputs with forward hooks: eval mode, no gradients, every hook removed afterwards.

The one place the monitor calls a model; how it is called (``module(x)``, ``module(**inputs)``, a user's
``forward_fn``) is the batch reader's rule (:mod:`lightning_topo.monitoring.batches`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from lightning_topo.monitoring.batches import ForwardFn, ModelInputs, as_model_input, call_model

__all__ = [
    "CALL_SEPARATOR",
    "eager",
    "eval_mode",
    "forward_with_hooks",
    "layer_hooks",
    "output_shapes",
    "randomness_kept",
    "split_call",
]

#: ``name-callK``: the ``K``-th call (1, 2, ...) of a module that runs more than once; its plain name is its last
#: call. Letters, digits, ``-`` and ``.`` only, so every logger keeps the tag as it is (MLflow drops ``@`` and ``:``).
CALL_SEPARATOR = "-call"


def split_call(layer: str) -> tuple[str, int | None]:
    """A watched layer's module name and call: ``"net.act-call2"`` is the second call of ``net.act``; a plain name is
    the module's last call (``None``).

    Example:
        >>> split_call("net.act-call2"), split_call("net.act")
        (('net.act', 2), ('net.act', None))
    """
    name, separator, call = layer.rpartition(CALL_SEPARATOR)
    if separator and name and call.isdigit() and int(call) > 0:
        return name, int(call)
    return layer, None


def eager() -> AbstractContextManager:
    """Run ``torch.compile``'d modules as their original Python code (``torch.compiler.set_stance("force_eager")``)
    for one of the monitor's passes: its hooks, on modules inside a compiled one, then run as plain Python, not
    traced into the compiled graph (where they broke the trace or were skipped), and the probe's pass compiles nothing.
    A no-op on a torch without compiler stances (before 2.6).

    Example:
        >>> net = torch.compile(nn.Linear(2, 2), backend="eager")
        >>> with eager():
        ...     net(torch.zeros(1, 2)).shape
        torch.Size([1, 2])
    """
    set_stance = getattr(getattr(torch, "compiler", None), "set_stance", None)
    return nullcontext() if set_stance is None else set_stance("force_eager")


@contextmanager
def randomness_kept(model: nn.Module, seed: int | None = None) -> Iterator[None]:
    """The random generators of the CPU and of the model's GPUs as they were, after the passes inside: a model that
    samples in eval mode (a VAE's reparameterisation, a masked autoencoder's random masks) takes no draw from the
    training run's. With ``seed``, the passes inside draw from generators seeded so, the same at every measurement.

    Example:
        >>> net = nn.Linear(1, 1)
        >>> _ = torch.manual_seed(1)
        >>> after = torch.randn(2)
        >>> _ = torch.manual_seed(1)
        >>> with randomness_kept(net, seed=0):
        ...     first = torch.randn(2)
        >>> torch.equal(torch.randn(2), after)  # the outer stream goes on as if nothing had drawn from it
        True
        >>> with randomness_kept(net, seed=0):
        ...     torch.equal(torch.randn(2), first)  # seeded alike: the same draws
        True
    """
    devices = sorted({p.device.index or 0 for p in model.parameters() if p.device.type == "cuda"})
    with torch.random.fork_rng(devices=devices):
        if seed is not None:
            torch.manual_seed(seed)
        yield


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put every submodule in eval mode and restore each one's own mode afterwards.

    A model already wholly in eval mode (the monitor's passes inside its own ``eval_mode``) is left alone: no
    ``train()`` calls, which on a ResNet-18 cost as much as a tenth of a measurement on a GPU.

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 2), nn.Dropout())
        >>> with eval_mode(net):
        ...     net[1].training
        False
        >>> net[1].training
        True
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


def layer_hooks(model: nn.Module, hooks: Mapping[str, Callable[..., None]]) -> list[RemovableHandle]:
    """Forward hooks on the modules that ``hooks``' layer names stand for, registered now: a module name's hook runs
    at every call of that module, a call's (``name-callK``, :func:`split_call`) at the
    ``k``-th call from now on only. Remove the handles (and register again) before the next pass.

    Example:
        >>> act, seen = nn.ReLU(), []
        >>> net = nn.Sequential(nn.Linear(2, 2), act, nn.Linear(2, 2), act)  # one module, called twice
        >>> handles = layer_hooks(net, {"1-call1": lambda m, a, out: seen.append("first"), "1": lambda m, a, out: seen.append("each")})
        >>> _ = net(torch.zeros(1, 2)); [handle.remove() for handle in handles] and seen
        ['first', 'each', 'each']
    """
    modules = dict(model.named_modules())
    wanted: dict[str, list[tuple[int | None, Callable[..., None]]]] = {}
    for layer, hook in hooks.items():
        name, call = split_call(layer)
        if name not in modules and layer in modules:  # a module whose own name ends in "-callK"
            name, call = layer, None
        wanted.setdefault(name, []).append((call, hook))
    handles = []
    for name, entries in wanted.items():
        if all(call is None for call, _ in entries):
            handles += [modules[name].register_forward_hook(hook) for _, hook in entries]
            continue
        calls = itertools.count(1)

        def dispatch(module: nn.Module, args: Any, output: Any, entries=entries, calls=calls) -> None:
            call = next(calls)
            for wanted_call, hook in entries:
                if wanted_call is None or wanted_call == call:
                    hook(module, args, output)

        handles.append(modules[name].register_forward_hook(dispatch))
    return handles


def forward_with_hooks(
    model: nn.Module,
    example: ModelInputs,
    hooks: dict[str, Callable[..., None]],
    result: dict[str, Any] | None = None,
    prepared: bool = False,
    forward: ForwardFn = call_model,
) -> None:
    """One forward pass on ``example`` in eval mode without gradients, with forward hooks on the named modules.

    ``result["output"]`` receives the model's output when ``result`` is given; ``prepared=True`` means
    ``example`` is already on the model's device and dtype (see :func:`as_model_input`); ``forward(model,
    inputs)`` makes the call (default: :func:`~lightning_topo.monitoring.batches.call_model`).
    """
    handles = layer_hooks(model, hooks)
    try:
        with eval_mode(model), torch.no_grad(), eager():
            output = forward(model, example if prepared else as_model_input(model, example))
        if result is not None:
            result["output"] = output
    finally:
        for handle in handles:
            handle.remove()


def output_shapes(
    model: nn.Module, example: ModelInputs, names: Sequence[str], forward: ForwardFn = call_model
) -> dict[str, tuple[int, ...]]:
    """Each named module's output shape per sample (e.g. ``(channels, height, width)``), from one forward pass.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU())
        >>> output_shapes(net, torch.zeros(1, 1, 8, 12), ["0"])
        {'0': (3, 6, 10)}
    """
    shapes: dict[str, tuple[int, ...]] = {}
    with randomness_kept(model):
        forward_with_hooks(
            model,
            example,
            {name: (lambda m, i, o, name=name: shapes.__setitem__(name, tuple(o.shape[1:]))) for name in names},
            forward=forward,
        )
    return shapes
