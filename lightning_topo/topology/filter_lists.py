"""Neighbour lists of every conv filter's point cloud at once, with torch on the feature maps' device.

Filter ``c`` of maps ``(N, C, H, W)`` is a cloud of ``N`` points in ``H * W`` dimensions.  Instead of ``C``
separate distance computations, each filter's maps are moved so that one image's is the origin (its origin row,
as every route above 16 dimensions) and one batched product gives every
filter's squared distances, ``(N, C, HW) x (N, C, HW) -> (C, N, N)``; each filter's duplicates and k-NN
lists then follow :func:`lightning_topo.topology.neighbour_lists` exactly (same arithmetic as the numpy
route), so :func:`lightning_topo.topology.filter_betti_scores` gives the same scores either way.

Example:
    >>> import numpy as np
    >>> maps = np.random.default_rng(0).integers(0, 3, size=(30, 4, 5, 5))
    >>> lists = filter_neighbour_lists(maps, k=5)
    >>> len(lists), lists[0].indices.shape
    (4, (30, 5))
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from lightning_topo.topology.checks import check_k, check_options, no_filters_error, nonfinite_error, too_few_error
from lightning_topo.topology.graph import DIRECT_MAX_DIM
from lightning_topo.topology.lists import NeighbourLists
from lightning_topo.topology.neighbours import (
    _Distances,
    _first_k,
    _two_nearest,
    duplicate_tolerance,
    lists_from_distances,
    origin_row,
)

__all__ = ["filter_neighbour_lists"]


def _as_maps(feature_maps: Any) -> torch.Tensor:
    maps = (
        feature_maps.detach() if isinstance(feature_maps, torch.Tensor) else torch.as_tensor(np.asarray(feature_maps))
    )
    if maps.dim() != 4:
        raise ValueError(
            f"feature_maps must have shape (n_images, n_filters, height, width), got rank {maps.dim()} "
            f"{tuple(maps.shape)}"
        )
    if maps.dtype == torch.bool or maps.is_complex():
        raise ValueError(f"feature_maps must be real numbers, got dtype {maps.dtype}")
    if len(maps) < 2:
        raise too_few_error(len(maps))
    n, n_filters, height, width = maps.shape
    if n_filters == 0:
        raise no_filters_error(maps.shape)
    if height * width == 0:
        raise ValueError(
            f"feature_maps of shape {tuple(maps.shape)} hold empty maps (height * width = 0), so each filter's points "
            f"have no coordinates; pass maps of height and width >= 1 (check the layer or the slice that produced them)"
        )
    return maps.reshape(n, n_filters, height * width)


def _check_finite(clouds: torch.Tensor) -> None:
    """The numpy route's message, for the first filter with NaN/Inf (its bad images of ``N``)."""
    if not clouds.is_floating_point():
        return
    bad = (~torch.isfinite(clouds)).any(dim=2).sum(dim=0)  # per filter: images with a NaN/Inf
    if bool(bad.any()):
        first = int(torch.nonzero(bad).min())
        raise nonfinite_error(int(bad[first]), clouds.shape[0])


def _batched_distances(block: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(C, N, N)`` squared distances and ``(C, N)`` squared norms (``None`` for direct differences)."""
    if block.shape[2] <= DIRECT_MAX_DIM:
        columns = block.permute(1, 2, 0).contiguous()  # (C, HW, N)
        diff = columns[:, 0, :, None] - columns[:, 0, None, :]
        out = diff * diff
        for p in range(1, columns.shape[1]):
            diff = columns[:, p, :, None] - columns[:, p, None, :]
            out = out + diff * diff  # as neighbour_lists: no fused multiply-add
        return out, None
    sq = torch.einsum("ncp,ncp->cn", block, block)
    return (sq[:, :, None] + sq[:, None, :]) - 2.0 * torch.einsum("ncp,mcp->cnm", block, block), sq


def filter_neighbour_lists(
    feature_maps: Any,
    *,
    metric: str = "knn",
    k: int = 10,
    scale: float = 2.5,
    dtype: torch.dtype = torch.float64,
    block_bytes: int = 2**28,
) -> list[NeighbourLists]:
    """One :class:`NeighbourLists` per filter of ``(N, C, H, W)`` maps (array or tensor, any device).

    Raises:
        ValueError: the messages of :func:`lightning_topo.topology.betti_numbers` (bad options, ``k >= N``,
            NaN/Inf in a filter's maps), or maps that are not 4-D, or have no filters or empty maps (``H * W = 0``).
    """
    check_options(metric, k, scale)
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
    clouds = _as_maps(feature_maps)
    n, n_filters, hw = clouds.shape
    if metric == "knn":
        check_k(k, n)
    _check_finite(clouds)
    # filters per batch: the float copy, the product, the distances and their masks stay within block_bytes
    per_filter = torch.finfo(dtype).bits // 8 * (n * hw + 5 * n * n)
    step = max(1, block_bytes // per_filter)
    out: list[NeighbourLists] = []
    with torch.no_grad():
        for start in range(0, n_filters, step):
            block = clouds[:, start : start + step].to(dtype)
            if hw > DIRECT_MAX_DIM:
                rows = origin_row(block.transpose(0, 1))[:, 0]  # each filter's, as neighbour_lists picks it
                block = block - block[rows, torch.arange(block.shape[1], device=block.device)]
            d2, sq = _batched_distances(block)
            out.extend(_batch_lists(clouds[:, start : start + step], d2, sq, metric, k, scale, block_bytes))
    return out


def _batch_lists(
    clouds: torch.Tensor,
    d2: torch.Tensor,
    sq: torch.Tensor | None,
    metric: str,
    k: int,
    scale: float,
    block_bytes: int,
) -> list[NeighbourLists]:
    """The lists of a batch of filters: those without a duplicate candidate all at once, the others one by one."""
    n_filters, n = d2.shape[:2]
    hw = clouds.shape[2]
    earlier = torch.ones(n, n, dtype=torch.bool, device=d2.device).tril(-1)
    if sq is None:  # direct differences: an exact duplicate is at exactly 0
        candidates = ((d2 <= 0) & earlier).any(dim=2).any(dim=1)
    else:
        tol = duplicate_tolerance(sq[:, :, None] + sq[:, None, :], hw)
        candidates = ((d2 <= tol) & earlier).any(dim=2).any(dim=1)
    clean = torch.nonzero(~candidates).squeeze(1)
    lists: dict[int, NeighbourLists] = {}
    if len(clean):
        sub = d2[clean]
        if metric == "knn":
            sub.diagonal(dim1=1, dim2=2).fill_(-torch.inf)  # the point itself first
            ranked = _first_k(sub.reshape(-1, n), min(k, n))
            nearest = _clean_nearest(sub, ranked)
            found = ranked.reshape(len(clean), n, -1).cpu().numpy()
            lists.update(
                (int(c), NeighbourLists(n, n, metric, found[j], None, nearest[j])) for j, c in enumerate(clean)
            )
        else:
            f, i, j = torch.nonzero((sub <= float(scale) * float(scale)) & earlier.T, as_tuple=True)
            edges = torch.stack([i, j]).cpu().numpy()
            counts = torch.bincount(f, minlength=len(clean)).cpu().numpy()
            sub.diagonal(dim1=1, dim2=2).fill_(-torch.inf)  # the point itself first, for its nearest distances
            nearest = _clean_nearest(sub, None)
            for j, (c, part) in enumerate(zip(clean.tolist(), np.split(edges, np.cumsum(counts)[:-1], axis=1))):
                part = np.ascontiguousarray(part, dtype=np.int64)
                lists[c] = NeighbourLists(n, n, metric, None, part, nearest[j])
    for c in torch.nonzero(candidates).squeeze(1).tolist():
        dist = _Distances.given(d2[c], None if sq is None else sq[c], hw)
        lists[c] = lists_from_distances(clouds[:, c], dist, metric=metric, k=k, scale=scale, block_bytes=block_bytes)
    return [lists[c] for c in range(n_filters)]


def _clean_nearest(sub: torch.Tensor, ranked: torch.Tensor | None) -> list[np.ndarray | None]:
    """Each filter's ``(N, 2)`` first and second neighbour distances (``None`` below 3 points), for filters without
    duplicates, read as :func:`~lightning_topo.topology.neighbour_lists` reads them: ``sub`` holds their squared
    distances with ``-inf`` on the diagonal, ``ranked`` their k-NN lists (one row per point, filters stacked)."""
    n_filters, n = sub.shape[:2]
    if n < 3:
        return [None] * n_filters
    nearest = _two_nearest(sub.reshape(-1, n), ranked).reshape(n_filters, n, 2).to(torch.float64).cpu().numpy()
    return [part.copy() for part in nearest]
