"""Building blocks of the BettiMonitor callback: reading batches of any convention, layer selection, forward
hooks, the traced forward pass (:mod:`.trace`), reading outputs, the probe, the device-side reduction of layer outputs to neighbour lists, the background
job runner, TensorBoard tags and layout (:mod:`.tags`), and the figures (:mod:`.figures`, :mod:`.id_figures`).

Plain PyTorch (no Lightning import), so they can be used and tested on any ``nn.Module``.  Names are imported
on first use (PEP 562), so the monitor's worker processes, which need only :mod:`.jobs`, load no torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "BatchReader": "batches",
    "ForwardFn": "batches",
    "ModelInputs": "batches",
    "NO_CLASS": "batches",
    "SampleList": "batches",
    "as_model_input": "batches",
    "call_model": "batches",
    "capture_activations": "capture",
    "CloudKey": "clouds",
    "layer_profile": "clouds",
    "reduce_clouds": "clouds",
    "eval_mode": "hooks",
    "forward_order": "trace",
    "forward_with_hooks": "hooks",
    "output_shapes": "hooks",
    "ForwardTrace": "trace",
    "trace_forward": "trace",
    "ACTIVATION_MODULES": "layers",
    "INPUT": "layers",
    "LOGITS": "layers",
    "find_blocks": "layers",
    "is_activation": "layers",
    "resolve_layers": "layers",
    "select_layers": "layers",
    "channels_first_layers": "layouts",
    "layer_layouts": "layouts",
    "steps_first_layers": "layouts",
    "decoder_pad_id": "outputs",
    "CHANNELS_FIRST": "outputs",
    "STEPS_FIRST": "outputs",
    "OutputKey": "outputs",
    "TOKEN_POOLING": "outputs",
    "per_sample": "outputs",
    "select_tensor": "outputs",
    "balanced_indices": "probe",
    "choose_classes": "probe",
    "group_by_class": "probe",
    "probe_from_batches": "probe",
    "betti_matrix": "figures",
    "custom_scalars_layout": "tags",
    "depth_figure": "figures",
    "flatten_scalars": "tags",
    "history_layers": "figures",
    "over_training_figure": "figures",
    "plot_history": "figures",
    "scalar_tag": "tags",
    "JobRunner": "runner",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from lightning_topo.monitoring.batches import (
        NO_CLASS,
        BatchReader,
        ForwardFn,
        ModelInputs,
        SampleList,
        as_model_input,
        call_model,
    )
    from lightning_topo.monitoring.capture import capture_activations
    from lightning_topo.monitoring.clouds import CloudKey, layer_profile, reduce_clouds
    from lightning_topo.monitoring.figures import (
        betti_matrix,
        depth_figure,
        history_layers,
        over_training_figure,
        plot_history,
    )
    from lightning_topo.monitoring.hooks import eval_mode, forward_with_hooks, output_shapes
    from lightning_topo.monitoring.layers import (
        ACTIVATION_MODULES,
        INPUT,
        LOGITS,
        find_blocks,
        is_activation,
        resolve_layers,
        select_layers,
    )
    from lightning_topo.monitoring.layouts import channels_first_layers, layer_layouts, steps_first_layers
    from lightning_topo.monitoring.outputs import (
        CHANNELS_FIRST,
        STEPS_FIRST,
        TOKEN_POOLING,
        OutputKey,
        decoder_pad_id,
        per_sample,
        select_tensor,
    )
    from lightning_topo.monitoring.probe import balanced_indices, choose_classes, group_by_class, probe_from_batches
    from lightning_topo.monitoring.runner import JobRunner
    from lightning_topo.monitoring.tags import custom_scalars_layout, flatten_scalars, scalar_tag
    from lightning_topo.monitoring.trace import ForwardTrace, forward_order, trace_forward


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'lightning_topo.monitoring' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"lightning_topo.monitoring.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
