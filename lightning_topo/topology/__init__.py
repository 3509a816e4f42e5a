"""The topology core: point clouds in, Betti numbers out.

Pure numpy/scipy/gudhi; nothing in this package imports Lightning.  Torch is imported only by the torch
routes, :func:`neighbour_lists` (module ``neighbours``) and :func:`filter_neighbour_lists` (``filter_lists``),
which are loaded on first use (PEP 562), so ``import lightning_topo.topology`` stays torch-free.  Tensors given to the numpy route go through their
``.detach().cpu().numpy()`` interface.

Two steps, which can run in different places: a cloud becomes small neighbour lists
(:func:`numpy_neighbour_lists` on the host, :func:`neighbour_lists` on the cloud's device), and the
lists become Betti numbers (:func:`betti_from_neighbours`, gudhi).  :func:`betti_numbers` does both.
:func:`intrinsic_dimension` (module ``intrinsic``) estimates a cloud's intrinsic dimension (TwoNN); given a tensor,
it works on the tensor's device.

Example:
    >>> from lightning_topo.topology import betti_numbers
    >>> betti_numbers([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], k=2)
    (1, 0)
"""

from typing import Any

from lightning_topo.topology.betti import (
    METRICS,
    as_point_cloud,
    betti_from_neighbours,
    betti_numbers,
    betti_numbers_per_class,
    calibrate_k,
    numpy_neighbour_lists,
    subsample_per_class,
)
from lightning_topo.topology.flag import flag_complex_betti
from lightning_topo.topology.graph import first_occurrences, hop_edges, knn_graph, knn_indices, radius_edges
from lightning_topo.topology.intrinsic import (
    intrinsic_dimension,
    lists_intrinsic_dimension,
    two_nearest_distances,
    twonn_from_distances,
)
from lightning_topo.topology.lists import NeighbourLists

__all__ = [
    "METRICS",
    "NeighbourLists",
    "as_point_cloud",
    "betti_from_neighbours",
    "betti_numbers",
    "betti_numbers_per_class",
    "calibrate_k",
    "first_occurrences",
    "filter_neighbour_lists",
    "flag_complex_betti",
    "hop_edges",
    "intrinsic_dimension",
    "lists_intrinsic_dimension",
    "knn_graph",
    "knn_indices",
    "neighbour_lists",
    "numpy_neighbour_lists",
    "radius_edges",
    "subsample_per_class",
    "two_nearest_distances",
    "twonn_from_distances",
]

_LAZY = {  # these import torch
    "neighbour_lists": "lightning_topo.topology.neighbours",
    "filter_neighbour_lists": "lightning_topo.topology.filter_lists",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
