"""Building blocks of the BettiMonitor callback: layer selection, activation capture, the probe, reporting
(scalar tags, depth profile, over-training heat maps, ``plot_history``).

Plain PyTorch (no Lightning import), so they can be used and tested on any ``nn.Module``.
"""

from lightning_topo.monitoring.capture import capture_activations
from lightning_topo.monitoring.layers import INPUT, LOGITS, as_model_input, eval_mode, forward_order, select_layers
from lightning_topo.monitoring.probe import balanced_indices, probe_from_batches
from lightning_topo.monitoring.report import (
    betti_matrix,
    custom_scalars_layout,
    depth_figure,
    flatten_scalars,
    history_layers,
    over_training_figure,
    plot_history,
    scalar_tag,
)

__all__ = [
    "INPUT",
    "LOGITS",
    "as_model_input",
    "balanced_indices",
    "betti_matrix",
    "capture_activations",
    "custom_scalars_layout",
    "depth_figure",
    "eval_mode",
    "flatten_scalars",
    "forward_order",
    "history_layers",
    "over_training_figure",
    "plot_history",
    "probe_from_batches",
    "scalar_tag",
    "select_layers",
]
