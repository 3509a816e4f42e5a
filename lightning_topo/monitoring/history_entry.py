"""A finished measurement as an entry of ``BettiMonitor.history``: ``{layer: {cloud: numbers}}`` in the layers'
forward order, and one warning per reason something was skipped (naming its layers and classes).

Example:
    >>> from lightning_topo.monitoring.measurement import Measurement
    >>> found = {("a", "0"): [1, 0], ("a", "1"): "too few points", ("b", "0"): [2, 1]}
    >>> warned = []
    >>> history_entry(Measurement(epoch=3, step=30), found, 0.5, ["a", "b"], ["0", "1"], warned.append)["betti"]
    {'a': {'0': [1, 0]}, 'b': {'0': [2, 1]}}
    >>> warned
    ["BettiMonitor: skipped layer 'a', class 1 at epoch 3: too few points"]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from lightning_topo.monitoring.clouds import CloudKey
from lightning_topo.monitoring.measurement import Measurement

__all__ = ["history_entry"]


def history_entry(
    measurement: Measurement,
    found: dict[CloudKey, list[int] | str],
    seconds: float,
    watched: Sequence[str],
    clouds: Sequence[str],
    warn: Callable[[str], Any],
    intrinsic_dimension: bool = False,
) -> dict[str, Any]:
    """The history entry of a measurement (``{}`` when the whole measurement failed, with a warning)."""
    epoch = measurement.epoch
    if ("*", "*") in found:
        warn(f"BettiMonitor: epoch {epoch} skipped: {found[('*', '*')]}")
        return {}
    entry: dict[str, Any] = {
        "epoch": epoch,
        "step": measurement.step,
        "seconds": seconds,
        "blocked_seconds": measurement.blocked_seconds,
        "betti": _table(found, watched, clouds, epoch, "skipped", list, warn),
    }
    if intrinsic_dimension:
        entry["id"] = _table(measurement.ids, watched, clouds, epoch, "no intrinsic dimension for", float, warn)
    return entry


def _table(
    found: dict[CloudKey, Any],
    watched: Sequence[str],
    clouds: Sequence[str],
    epoch: int,
    verb: str,
    convert: Callable[[Any], Any],
    warn: Callable[[str], Any],
) -> dict[str, dict[str, Any]]:
    """``{layer: {cloud: value}}`` in forward order; each reason something failed is warned about once."""
    table: dict[str, dict[str, Any]] = {}
    skipped: dict[str, dict[str, list[str]]] = {}  # reason -> layer -> classes: one warning per reason
    for layer in watched:
        for cloud in clouds:
            value = found.get((layer, cloud))
            if value is None:
                continue
            if isinstance(value, str):
                skipped.setdefault(value, {}).setdefault(layer, []).append(cloud)
                continue
            table.setdefault(layer, {})[cloud] = convert(value)
    for reason, layers in skipped.items():
        where = "; ".join(
            f"layer {layer!r}, class{'es' if len(classes) > 1 else ''} {_class_list(classes)}"
            for layer, classes in layers.items()
        )
        warn(f"BettiMonitor: {verb} {where} at epoch {epoch}: {reason}")
    return table


def _class_list(classes: list[str]) -> str:
    """Classes for a warning: all of a few, the ends of many (a 100-class warning stays one readable line)."""
    if len(classes) <= 8:
        return ", ".join(classes)
    return f"{', '.join(classes[:3])}, ..., {classes[-1]} ({len(classes)} classes)"
