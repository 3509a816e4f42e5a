"""Extra activation candidates for the convergence search, registered at import time.

Each candidate has a one-line reason (its topological effect). The registry's built-ins (relu,
leaky_relu, tanh, sigmoid, gelu, silu, elu, clipped_relu, fold, smooth_split, parametric_split) are
compared as they are; this module only adds the search's own ideas.

Example:
    >>> import candidates  # doctest: +SKIP
    >>> from lightning_topo.activations import get_activation
    >>> get_activation("leaky_fold")(torch.tensor([-2.0, 2.0]))  # doctest: +SKIP
    tensor([1., 2.])
"""

from __future__ import annotations

import torch
from torch import nn

from lightning_topo.activations import list_activations, register_activation

#: name -> one-line reason, shown in the README's table of candidates.
REASONS: dict[str, str] = {
    "relu": "baseline: glues the whole negative half-line to 0 (not injective)",
    "leaky_relu": "homeomorphism (slope 0.2): glues nothing; the literature's slow-collapse reference",
    "leaky_relu_001": "PyTorch's slope 0.01: almost ReLU's gluing, gradients never die",
    "tanh": "homeomorphism onto (-1, 1): glues nothing, saturates",
    "sigmoid": "homeomorphism onto (0, 1): glues nothing, saturates (brief: collapses then stalls)",
    "elu": "homeomorphism, ReLU-like, negative tail saturates",
    "gelu": "not injective (dip below 0): folds a small negative interval, smooth",
    "silu": "not injective (dip below 0): folds a small negative interval, smooth",
    "clipped_relu": "glues both tails: min(max(x,0),1) (Naitzat's unused candidate; brief warns it stalls)",
    "fold": "|x|: glues x with -x, gradient magnitude 1 everywhere",
    "smooth_split": "x + tanh(4x): stretches the line apart at 0 (a smoothed cut), glues nothing",
    "parametric_split": "x + c tanh(a x) with c, a learned per layer (Snopov & Musin)",
    "leaky_fold": "ours: x for x>=0, -0.5x for x<0: glues each t>0 with -2t (a fold) yet keeps every gradient alive",
    "leaky_fold_02": "ours: x for x>=0, -0.2x for x<0: a flatter fold, closer to ReLU's gluing",
    "split_relu": "ours: relu(x) + tanh(4 relu(x)): ReLU's gluing plus a split's stretch at the fold",
    "fold_split": "ours: |x + tanh(4x)|: a split then a fold (stretch at 0, glue x with its mirror)",
    "sine": "ours: sin(x): periodic, glues infinitely many points (the most aggressive fold)",
}


def _register(name: str):
    if name in list_activations():  # already registered (module imported twice under two names)
        return lambda cls: cls
    return register_activation(name)


@_register("leaky_fold")
class LeakyFold(nn.Module):
    """``x`` for ``x >= 0`` and ``-s x`` for ``x < 0`` (0 < s): a fold that keeps a gradient on both sides."""

    def __init__(self, s: float = 0.5) -> None:
        super().__init__()
        if s <= 0:
            raise ValueError(f"LeakyFold needs s > 0 (the slope of the folded side), got {s}")
        self.s = float(s)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.where(x >= 0, x, -self.s * x)


@_register("leaky_fold_02")
def _leaky_fold_02() -> nn.Module:
    return LeakyFold(0.2)


@_register("leaky_relu_001")
def _leaky_relu_001() -> nn.Module:
    return nn.LeakyReLU(0.01)


@_register("split_relu")
class SplitReLU(nn.Module):
    """``relu(x) + tanh(4 relu(x))``: ReLU's gluing of the negative half-line, steeper just above 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = torch.relu(x)
        return r + torch.tanh(4.0 * r)


@_register("fold_split")
class FoldSplit(nn.Module):
    """``|x + tanh(4x)|``: a split followed by a fold."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x + torch.tanh(4.0 * x)).abs()


@_register("sine")
class Sine(nn.Module):
    """``sin(x)``: periodic, so infinitely many points of the line are glued together."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(x)
