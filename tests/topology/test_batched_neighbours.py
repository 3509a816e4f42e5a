"""The batched class route (one forward pass and one distance launch per layer for equal classes) gives the
per-class route's neighbour lists and nearest distances bit for bit."""

from __future__ import annotations

import pytest
import torch
from helpers.neighbour_lists import assert_identical

from lightning_topo.topology import neighbour_lists
from lightning_topo.topology.neighbours import batched_neighbour_lists

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def both_routes(stack: torch.Tensor, **options) -> None:
    batched = batched_neighbour_lists(stack, **options)
    assert len(batched) == len(stack)
    for cloud, lists in zip(stack, batched):
        assert_identical(lists, neighbour_lists(cloud, **options))


def lattice_stack(clouds: int, dim: int) -> torch.Tensor:
    """Integer grids linearly embedded with integer matrices: exact distances, ties at every rank."""
    grid = torch.stack(torch.meshgrid(torch.arange(6), torch.arange(6), indexing="ij"), -1).reshape(-1, 2).double()
    g = torch.Generator().manual_seed(dim)
    return torch.stack([grid @ torch.randint(-3, 4, (2, dim), generator=g).double() for _ in range(clouds)])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dim", [1, 3, 16, 17, 40, 300])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_random_clouds_give_identical_lists_and_distances(device, dim, dtype):
    stack = torch.randn(6, 50, dim, generator=torch.Generator().manual_seed(dim), dtype=dtype).to(device)
    both_routes(stack, k=8, kd_tree=False)
    both_routes(stack, k=8, dtype=torch.float32, kd_tree=False)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dim", [2, 16, 17, 64])
def test_ties_at_the_kth_distance_are_repaired_identically(device, dim):
    stack = lattice_stack(4, dim).to(device)
    both_routes(stack, k=5, kd_tree=False)
    both_routes(stack, k=14, kd_tree=False)
    rounded = torch.round(torch.randn(5, 80, dim, generator=torch.Generator().manual_seed(1)), decimals=0)
    both_routes(rounded.to(device), k=9, kd_tree=False)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dim", [3, 16, 17, 50])
def test_clouds_with_duplicates_take_the_per_cloud_route(device, dim):
    stack = torch.randn(5, 40, dim, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    stack[1, 7] = stack[1, 3]  # one duplicate
    stack[3, 10:] = stack[3, 0]  # mostly one point
    stack[4] = stack[4, 0]  # a dead layer: one point
    both_routes(stack.to(device), k=6, kd_tree=False)


def test_cpu_narrow_float64_keeps_the_kd_tree_and_other_options_fall_back():
    stack = torch.randn(3, 30, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    both_routes(stack, k=6)  # kd_tree=None: the per-cloud k-d tree, as neighbour_lists
    both_routes(stack, metric="euclidean", scale=1.0, kd_tree=False)
    both_routes(stack, k=2, kd_tree=False)
    both_routes(torch.randn(3, 40, 20, dtype=torch.float64), k=5, block_bytes=40 * 40 * 8 - 1)  # no one Gram block


def test_a_non_finite_cloud_raises_as_the_per_cloud_route():
    stack = torch.randn(3, 30, 20)
    stack[2, 4, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN or Inf") as batched:
        batched_neighbour_lists(stack, k=5)
    with pytest.raises(ValueError, match="NaN or Inf") as single:
        neighbour_lists(stack[2], k=5)
    assert str(batched.value) == str(single.value)
