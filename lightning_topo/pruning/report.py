"""Size, speed and a printable table for a pruning report."""

from __future__ import annotations

import contextlib
import copy
import io
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    "count_parameters",
    "cpu_copy",
    "cpu_latency",
    "format_report",
    "layer_rows",
    "paired_cpu_latency",
    "saved_size_bytes",
]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def saved_size_bytes(model: nn.Module) -> int:
    """Bytes of ``torch.save(model.state_dict())``."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


def cpu_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` on the CPU, made without a second copy on the model's device: each parameter and
    buffer is copied straight to the host (gradients are left behind), everything else is deep-copied as usual, and
    the copy is then ``.cpu()``'d, which moves nothing but resets the device that a ``LightningModule`` or a
    torchmetrics metric records outside its tensors (``self.device``).

    Example:
        >>> net = nn.Linear(2, 2)
        >>> copied = cpu_copy(net)
        >>> copied.weight is not net.weight and torch.equal(copied.weight, net.weight), copied.weight.device.type
        (True, 'cpu')
    """
    memo: dict[int, Any] = {}
    for tensor in (*model.parameters(), *model.buffers()):
        host = tensor.detach().to("cpu", copy=True)
        memo[id(tensor)] = nn.Parameter(host, tensor.requires_grad) if isinstance(tensor, nn.Parameter) else host
    return copy.deepcopy(model, memo).cpu()  # moves nothing now; resets the device Lightning and torchmetrics record


@torch.no_grad()
def cpu_latency(model: nn.Module, example: Any, repeats: int = 5, forward: Callable[..., Any] | None = None) -> float:
    """Median seconds of one eval-mode forward pass of ``example`` on the CPU (see :func:`paired_cpu_latency`).

    ``example`` is a tensor, or a dict or tuple of tensors called by ``forward(model, example)`` (default: the
    monitor's rule, :func:`lightning_topo.monitoring.batches.call_model`).
    """
    return paired_cpu_latency([model], example, repeats, forward)[0]


@torch.no_grad()
def paired_cpu_latency(
    models: Sequence[nn.Module], example: Any, repeats: int = 5, forward: Callable[..., Any] | None = None
) -> list[float]:
    """Median seconds of one eval-mode forward pass of ``example`` on the CPU for each model, timed in interleaved
    rounds (the order turns each round), so that a machine that slows down or speeds up during the measurement
    weighs on every model alike and their ratio stays fair.

    A model already on the CPU is timed in place, in eval mode, and every submodule's train/eval mode is put back
    afterwards; only a model with parameters or buffers on another device is copied to the CPU, so a caller that
    holds a CPU copy of its own does not pay for a second one.

    Example:
        >>> small, large = nn.Linear(8, 2), nn.Sequential(*[nn.Linear(8, 8) for _ in range(20)])
        >>> fast, slow = paired_cpu_latency([small, large], torch.zeros(64, 8))
        >>> fast < slow
        True
    """
    from lightning_topo.monitoring.batches import as_model_input, call_model
    from lightning_topo.monitoring.hooks import eval_mode

    forward = forward or call_model
    timed = [model if _on_cpu(model) else cpu_copy(model) for model in models]
    with contextlib.ExitStack() as modes:  # eval mode while timed, each submodule's own mode back afterwards
        for model in timed:
            modes.enter_context(eval_mode(model))
        inputs = [as_model_input(model, example) for model in timed]
        for model, x in zip(timed, inputs):
            forward(model, x)  # warm-up
        times: list[list[float]] = [[] for _ in timed]
        for round_ in range(repeats):
            for i in (*range(round_ % len(timed), len(timed)), *range(round_ % len(timed))):
                start = time.perf_counter()
                forward(timed[i], inputs[i])
                times[i].append(time.perf_counter() - start)
    return [sorted(t)[len(t) // 2] for t in times]


def _on_cpu(model: nn.Module) -> bool:
    tensors = [*model.parameters(), *model.buffers()]
    return all(tensor.device.type == "cpu" for tensor in tensors)


def format_report(layers: Mapping[str, Mapping[str, Any]], totals: Mapping[str, tuple[float, float]]) -> str:
    """A plain-text table: per layer filters before/after and score statistics, then before/after totals."""
    lines = [f"{'layer':32} {'filters':>13} {'score min':>10} {'median':>8} {'max':>8}"]
    for name, row in layers.items():
        lines.append(
            f"{name:32} {row['before']:>5} -> {row['after']:<5} {row['score_min']:>10.2f} "
            f"{row['score_median']:>8.2f} {row['score_max']:>8.2f}"
        )
    lines.append("")
    lines.append(f"{'':32} {'before':>13} {'after':>10} {'ratio':>8}")
    for key, (a, b) in totals.items():
        ratio = f"{b / a:.3f}" if a else "-"
        lines.append(f"{key:32} {a:>13.4g} {b:>10.4g} {ratio:>8}")
    return "\n".join(lines)


def layer_rows(sizes: Mapping[str, tuple[int, int]], scores: Mapping[str, np.ndarray] | None) -> dict[str, dict]:
    """The report's row per pruned layer: filters before, after and removed, and the scores' spread."""
    rows = {}
    for name, (n_before, n_after) in sizes.items():
        s = scores[name] if scores and name in scores else np.array([np.nan])
        rows[name] = {
            "before": n_before,
            "after": n_after,
            "removed": n_before - n_after,
            "score_min": float(np.min(s)),
            "score_median": float(np.median(s)),
            "score_max": float(np.max(s)),
        }
    return rows
