"""What the monitor's numbers are called in TensorBoard: scalar tags and the custom-scalars layout.

Betti numbers: ``betti/<layer>/class_<c>/b<d>`` (``class_all`` when not per class) and ``betti/seconds`` for the
monitor's own compute time. Intrinsic dimensions: ``id/<layer>/class_<c>``, and ``id/<layer>/all`` for the whole
probe's cloud. Pure Python: no torch, no matplotlib.

Example:
    >>> scalar_tag("features.layer1.act", 0, 1)
    'betti/features.layer1.act/class_0/b1'
    >>> id_tag("blocks.3", "7"), id_tag("blocks.3", "all")
    ('id/blocks.3/class_7', 'id/blocks.3/all')
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

__all__ = [
    "SECONDS_TAG",
    "custom_scalars_layout",
    "flatten_id_scalars",
    "flatten_scalars",
    "id_scalars_layout",
    "id_tag",
    "prefixed",
    "scalar_tag",
]

SECONDS_TAG = "betti/seconds"

# {layer: {class: (b0, b1, ...)}}, classes as strings ("0", "1", ... or "all") so they survive serialisation
EpochBetti = Mapping[str, Mapping[str, Sequence[int]]]

# {layer: {cloud: intrinsic dimension}}
EpochIDs = Mapping[str, Mapping[str, float]]


def scalar_tag(layer: str, cls: int | str, dim: int) -> str:
    return f"betti/{layer}/class_{cls}/b{dim}"


def flatten_scalars(betti: EpochBetti, dims: Sequence[int]) -> dict[str, float]:
    """``{tag: value}`` for every computed (layer, class, dimension)."""
    return {
        scalar_tag(layer, cls, d): float(values[d])
        for layer, per_class in betti.items()
        for cls, values in per_class.items()
        for d in dims
        if d < len(values)
    }


def prefixed(tag: str, prefix: str | None) -> str:
    """``tag`` under a monitor's ``tag_prefix`` (``None``: the tag itself), so two monitors of one run write apart.

    Example:
        >>> prefixed("betti/seconds", "full"), prefixed("betti/seconds", None)
        ('full/betti/seconds', 'betti/seconds')
    """
    return f"{prefix}/{tag}" if prefix else tag


def _group(title: str, prefix: str | None) -> str:
    return f"{title} ({prefix})" if prefix else title


def custom_scalars_layout(
    layers: Sequence[str], classes: Sequence[str], dims: Sequence[int], prefix: str | None = None
) -> dict:
    """One chart per (class, dimension) with a line per layer, plus the compute-time chart (under ``prefix``)."""
    head = re.escape(prefixed("betti", prefix))
    charts = {
        f"class {cls}, beta_{d}": ["Multiline", [rf"^{head}/.*/class_{re.escape(str(cls))}/b{d}$"]]
        for cls in classes
        for d in dims
    }
    charts["monitor compute time (s)"] = ["Multiline", [f"^{re.escape(prefixed(SECONDS_TAG, prefix))}$"]]
    return {_group("Betti numbers by layer", prefix): charts}


def id_tag(layer: str, cloud: str) -> str:
    """The scalar tag of one (layer, cloud): ``id/<layer>/class_<c>``, or ``id/<layer>/all`` for the whole probe."""
    return f"id/{layer}/all" if cloud == "all" else f"id/{layer}/class_{cloud}"


def flatten_id_scalars(ids: EpochIDs) -> dict[str, float]:
    """``{tag: value}`` for every (layer, cloud) whose dimension was estimated.

    Example:
        >>> flatten_id_scalars({"a": {"0": 2.5, "1": 3.0}})
        {'id/a/class_0': 2.5, 'id/a/class_1': 3.0}
    """
    return {
        id_tag(layer, cloud): float(value) for layer, per_cloud in ids.items() for cloud, value in per_cloud.items()
    }


def id_scalars_layout(classes: Sequence[str], prefix: str | None = None) -> dict:
    """TensorBoard custom-scalars charts: one per class (or the whole probe), a line per layer (under ``prefix``).

    Example:
        >>> list(id_scalars_layout(["0", "1"])["Intrinsic dimension by layer"])
        ['class 0', 'class 1']
    """
    head = re.escape(prefixed("id", prefix))
    charts = {
        ("whole probe" if cls == "all" else f"class {cls}"): [
            "Multiline",
            [rf"^{head}/.*/all$" if cls == "all" else rf"^{head}/.*/class_{re.escape(str(cls))}$"],
        ]
        for cls in classes
    }
    return {_group("Intrinsic dimension by layer", prefix): charts}
