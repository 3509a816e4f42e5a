"""A tiny registry of activation functions, addressed by plain string names (YAML- and hparams-friendly).

Built in: the usual activations, the non-homeomorphic candidates that glue or cut the line (ReLU clipped at 1,
folds such as ``|x|``, splits; docs/activations.md) and
``"proposed"``, an alias of the activation this package proposes (see :data:`PROPOSED_ACTIVATION`).

Example:
    >>> act = get_activation("leaky_relu")          # negative slope 0.2, as in the topology literature
    >>> act.negative_slope
    0.2
    >>> "proposed" in list_activations()
    True
    >>> @register_activation("my_act")
    ... class MyAct(torch.nn.Module):
    ...     def forward(self, x):
    ...         return x.clamp(min=-1)
    >>> type(get_activation("my_act")).__name__
    'MyAct'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch import nn

from lightning_topo.arguments import check_finite, check_positive

__all__ = [
    "PROPOSED_ACTIVATION",
    "Fold",
    "ParametricSplit",
    "SmoothSplit",
    "get_activation",
    "list_activations",
    "register_activation",
]

Factory = Callable[..., nn.Module]
F = TypeVar("F", bound=Factory)

_REGISTRY: dict[str, Factory] = {}

#: The registry entry that ``get_activation("proposed")`` returns. The formula is our reconstruction
#: (the seed paper's is not published); change this one line when the evidence favours another entry.
PROPOSED_ACTIVATION = "fold"


def register_activation(name: str) -> Callable[[F], F]:
    """Register an ``nn.Module`` class or factory under ``name`` (a decorator).

    Raises:
        ValueError: the name is not a string, is empty, reserved (``"proposed"``) or already taken.
        TypeError: what is decorated is not callable.
    """
    if not isinstance(name, str):
        raise ValueError(
            f"register_activation takes a name (a string), got {type(name).__name__}: "
            "write @register_activation('my_act') above the class, with the parentheses"
        )
    key = name.strip().lower()
    if not key or key == "proposed":
        raise ValueError(f"cannot register an activation under {name!r}: the name is empty or reserved")

    def decorator(factory: F) -> F:
        if not callable(factory):
            raise TypeError(f"register_activation({name!r}) needs an nn.Module class or factory, got {factory!r}")
        if key in _REGISTRY:
            raise ValueError(f"an activation named {key!r} is already registered ({_REGISTRY[key]!r})")
        _REGISTRY[key] = factory
        return factory

    return decorator


def list_activations() -> list[str]:
    """Every name :func:`get_activation` accepts, ``"proposed"`` included, sorted."""
    return sorted([*_REGISTRY, "proposed"])


def get_activation(name: str, **kwargs: Any) -> nn.Module:
    """A new activation module for ``name``; keyword arguments go to its constructor.

    Raises:
        ValueError: unknown name; the message lists the known ones.
    """
    if not isinstance(name, str):
        raise ValueError(f"activation must be given by name (a string), got {type(name).__name__}")
    key = name.strip().lower()
    if key == "proposed":
        key = PROPOSED_ACTIVATION
    if key not in _REGISTRY:
        raise ValueError(f"unknown activation {name!r}; known activations: {', '.join(list_activations())}")
    module = _REGISTRY[key](**kwargs)
    if not isinstance(module, nn.Module):
        raise TypeError(
            f"the factory registered as {key!r} ({_REGISTRY[key]!r}) returned a {type(module).__name__}, not an "
            "nn.Module: a model cannot hold it as a layer (register a module class, or a function returning one)"
        )
    return module


# ------------------------------------------------------------------------------------------ standard
register_activation("relu")(nn.ReLU)
register_activation("tanh")(nn.Tanh)
register_activation("sigmoid")(nn.Sigmoid)
register_activation("gelu")(nn.GELU)
register_activation("silu")(nn.SiLU)
register_activation("elu")(nn.ELU)
register_activation("identity")(nn.Identity)


@register_activation("leaky_relu")
def _leaky_relu(negative_slope: float = 0.2) -> nn.Module:
    """Leaky ReLU with the topology literature's slope 0.2 (PyTorch's default is 0.01)."""
    return nn.LeakyReLU(negative_slope)


# ------------------------------------------------------------------------- topology candidates (brief, section 4)
@register_activation("clipped_relu")
def _clipped_relu(ceiling: float = 1.0) -> nn.Module:
    """``min(max(x, 0), ceiling)``: glues both tails of the line to a point (Naitzat et al.'s unused candidate)."""
    check_positive("clipped_relu's ceiling", ceiling)
    return nn.Hardtanh(0.0, ceiling)


@register_activation("fold")
class Fold(nn.Module):
    """``f(x) = |x|``, derivative ``sign(x)`` (0 at 0): the package's proposed activation (``"proposed"``).

    Motivation: an activation that is not a homeomorphism glues regions of space together, which is how a
    network lowers the Betti numbers of its data (Naitzat et al. 2020). ReLU glues the whole negative
    half-line to one point, and with it kills the gradient there. The fold glues each ``x`` with ``-x``
    instead: every unit folds its half-spaces onto each other, so far-apart pieces of one class can be laid
    on top of one another in a single layer, while the gradient keeps magnitude 1 everywhere (no dead units).

    Evidence (``benchmarks/convergence.py``, results in ``benchmarks/results/``; 5 seeds per cell, the same
    MLP, initialisation, full-batch Adam and budget for every activation): the fold reaches 100% training
    accuracy in fewer epochs than ReLU on D-I, D-II, D-III and the 169-disk set. The measured factors move
    with the build (torch version, machine), so they are quoted once, each with the build that produced it,
    on the documentation site's page "Results > Convergence" (``docs/results/convergence.md``, its table
    included from ``benchmarks/results/convergence.md``). Whether its Betti numbers fall faster across
    layers, at the end of training and at equal epochs, is on "Results > Mechanism at equal epochs". The
    seed paper's own formula is not published; this is our reconstruction.

    Example:
        >>> Fold()(torch.tensor([-2.0, 3.0]))
        tensor([2., 3.])
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.abs()


@register_activation("smooth_split")
class SmoothSplit(nn.Module):
    """``x + c * tanh(a * x)``: a smooth "split" that pushes points away from 0, cutting the line in two.

    Example:
        >>> SmoothSplit(c=1.0, a=4.0)(torch.tensor([0.0]))
        tensor([0.])
    """

    def __init__(self, c: float = 1.0, a: float = 4.0) -> None:
        super().__init__()
        check_positive("SmoothSplit's a (the steepness of the split)", a)
        check_finite("SmoothSplit's c (the width of the split)", c)
        self.c, self.a = float(c), float(a)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.c * torch.tanh(self.a * x)

    def extra_repr(self) -> str:
        return f"c={self.c}, a={self.a}"


@register_activation("parametric_split")
class ParametricSplit(nn.Module):
    """``x + c * tanh(a * x)`` with ``c`` and ``a`` learned per layer (Snopov & Musin's parametric split).

    Example:
        >>> sorted(name for name, _ in ParametricSplit().named_parameters())
        ['a', 'c']
    """

    def __init__(self, c: float = 1.0, a: float = 4.0) -> None:
        super().__init__()
        check_finite("ParametricSplit's starting c", c)
        check_finite("ParametricSplit's starting a", a)
        self.c = nn.Parameter(torch.tensor(float(c)))
        self.a = nn.Parameter(torch.tensor(float(a)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.c * torch.tanh(self.a * x)
