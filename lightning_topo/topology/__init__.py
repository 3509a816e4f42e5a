"""The topology core: point clouds in, Betti numbers out.

Pure numpy/scipy/gudhi; nothing in this package imports Lightning (or torch: tensors are accepted
through their ``.detach().cpu().numpy()`` interface).

Example:
    >>> from lightning_topo.topology import betti_numbers
    >>> betti_numbers([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], k=2)
    (1, 0)
"""

from lightning_topo.topology.betti import (
    METRICS,
    as_point_cloud,
    betti_numbers,
    betti_numbers_per_class,
    calibrate_k,
    subsample_per_class,
)
from lightning_topo.topology.flag import flag_complex_betti
from lightning_topo.topology.graph import hop_edges, knn_graph, knn_indices, radius_edges

__all__ = [
    "METRICS",
    "as_point_cloud",
    "betti_numbers",
    "betti_numbers_per_class",
    "calibrate_k",
    "flag_complex_betti",
    "hop_edges",
    "knn_graph",
    "knn_indices",
    "radius_edges",
    "subsample_per_class",
]
