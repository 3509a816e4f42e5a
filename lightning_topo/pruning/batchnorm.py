"""Re-estimate BatchNorm statistics after pruning ("adaptive BatchNorm", Li et al., EagleEye, 2020).

Removing filters changes what every later layer receives, so the running means and variances that each
BatchNorm learnt during training no longer match its inputs: a pruned network evaluated with stale
statistics can lose most of its accuracy although its weights are fine (on our Fashion-MNIST CNN, half
of every conv's filters removed at random: 0.10-0.52 test accuracy with the old statistics, 0.41-0.80
after re-estimating them). Re-estimating them takes a few forward passes and no gradient
step, which also makes "accuracy before fine-tuning" a fair measure of which filters a rule kept.

Example:
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    >>> recalibrate_batchnorm(net, [(torch.randn(16, 3), None)] * 4)
    4
    >>> bool(net[1].num_batches_tracked == 4), net.training
    (True, True)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from lightning_topo.arguments import check_count
from lightning_topo.monitoring.batches import as_model_input, call_model
from lightning_topo.monitoring.hooks import eval_mode

__all__ = ["batchnorm_layers", "recalibrate_batchnorm"]


def batchnorm_layers(model: nn.Module) -> list[nn.Module]:
    """The model's BatchNorm layers that keep running statistics."""
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


@torch.no_grad()
def recalibrate_batchnorm(
    model: nn.Module,
    batches: Iterable[Any],
    max_batches: int = 100,
    inputs_of: Callable[[Any], Any] | None = None,
    forward: Callable[[nn.Module, Any], Any] = call_model,
) -> int:
    """Replace every BatchNorm's running statistics by their average over ``batches``; the number of batches used.

    Each batch is an input tensor or a sequence whose first item is the input (an ``(inputs, labels)``
    pair), or whatever ``inputs_of(batch)`` returns (a :class:`~lightning_topo.monitoring.batches.BatchReader`'s
    inputs: a dict is called ``forward(model, inputs)``, by default ``model(**inputs)``). Only the BatchNorm layers
    run in training mode (dropout and the like stay off), no weight
    changes, and every module's mode is restored afterwards. A model without BatchNorm is left alone (0).
    """
    check_count("max_batches", max_batches)
    layers = batchnorm_layers(model)
    if not layers:
        return 0
    momenta = {layer: layer.momentum for layer in layers}
    saved = {layer: {k: v.clone() for k, v in layer.state_dict().items()} for layer in layers}
    used = 0
    with eval_mode(model):
        for layer in layers:
            layer.reset_running_stats()
            layer.momentum = None  # a cumulative average over the batches, not an exponential one
            layer.train()
        try:
            for batch in batches:
                if used >= max_batches:
                    break
                if inputs_of is not None:
                    inputs = inputs_of(batch)
                else:
                    inputs = batch if isinstance(batch, torch.Tensor) else batch[0]
                forward(model, as_model_input(model, inputs))
                used += 1
            if used == 0:
                raise ValueError(
                    "recalibrate_batchnorm got no batch: pass the training data loader (or a list of batches)"
                )
        except BaseException:  # the old statistics are better than half-estimated ones
            for layer, state in saved.items():
                layer.load_state_dict(state)
            raise
        finally:
            for layer, momentum in momenta.items():
                layer.momentum = momentum
    return used
