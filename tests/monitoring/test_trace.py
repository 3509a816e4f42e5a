"""The traced forward pass: forward order, rows per output, which module fed which, and which modules branch."""

from __future__ import annotations

import pytest
import torch
from helpers.user_models import AppendList
from torch import nn

from lightning_topo.monitoring.trace import forward_order, trace_forward


class AddResidual(nn.Module):
    """``x + body(x)``: the input used again by the module's own code."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(3, 3), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ShortcutBeside(nn.Module):
    """Hugging Face ResNet's layout: the main branch first, then an identity shortcut on the same input."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Sequential(nn.Linear(3, 3), nn.Tanh())
        self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x
        x = self.layer(x)
        return x + self.shortcut(residual)


class InPlaceResidual(nn.Module):
    """torchvision's BasicBlock: ``out += identity`` in place, then an in-place ReLU."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 3)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.fc(x)
        out += x
        return self.relu(out)


class ReadsItsInput(nn.Module):
    """Reads its input's shape, size and dtype and builds a zeros_like from it: no branch."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, width = x.shape
        bias = torch.zeros_like(x)
        y = self.fc(x.contiguous())
        return y + bias * x.size(0) * batch * width


def test_the_order_is_the_leaves_first_calls_and_rows_are_each_outputs_first_dimension() -> None:
    net = nn.Sequential(nn.Linear(2, 6), nn.ReLU(), nn.Unflatten(1, (3, 2)), nn.Flatten(0, 1))
    trace = trace_forward(net, torch.zeros(4, 2))
    assert trace.order == ["0", "1", "2", "3"] == forward_order(net, torch.zeros(4, 2))
    assert trace.rows == {"0": 4, "1": 4, "2": 4, "3": 12}
    assert trace.called == {"0", "1", "2", "3"}
    assert trace.saw_operations


def test_each_module_is_fed_by_the_outermost_module_that_made_its_input() -> None:
    net = nn.Sequential(nn.Sequential(nn.Linear(2, 2), nn.ReLU()), nn.Identity(), nn.Linear(2, 2))
    trace = trace_forward(net, torch.zeros(3, 2))
    assert trace.fed_by["0.1"] == "0.0"
    assert trace.fed_by["1"] == "0"  # the container returned its ReLU's output: the container is its maker
    assert trace.fed_by["2"] == "0"  # an Identity passes its input through; it makes nothing
    assert "0" not in trace.fed_by  # fed by the probe, not by a module


@pytest.mark.parametrize("block", [AddResidual, ShortcutBeside, InPlaceResidual])
def test_a_residual_unit_branches_in_each_convention(block: type[nn.Module]) -> None:
    trace = trace_forward(nn.Sequential(block(), nn.Linear(3, 2)), torch.randn(5, 3))
    assert trace.branching == {"0"}


class ConcatenatesItsInput(nn.Module):
    """``cat([x, body(x)])``: the input used again inside a list (an HGNetV2 block's aggregation)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(3, 3), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.body(x)], dim=1)


class ConcatenatedInsideAChild(nn.Module):
    """A VoVNet block: its input is reduced, and a child concatenates the input itself with its own outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.reduction = nn.Linear(3, 3)
        self.mid = AppendList(nn.Linear(3, 3), nn.Linear(3, 3))
        self.concat = nn.Linear(9, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.concat(self.mid(self.reduction(x), [x]))


@pytest.mark.parametrize("block", [ConcatenatesItsInput, ConcatenatedInsideAChild], ids=["its own", "a child's"])
def test_a_unit_whose_input_is_concatenated_branches_and_the_container_around_it_does_not(block) -> None:
    """The outer ``Sequential`` takes the same input, but its first layer is the one that uses it twice."""
    trace = trace_forward(nn.Sequential(nn.Sequential(block(), nn.Linear(6, 2))), torch.randn(5, 3))
    assert trace.branching == {"0.0"}


@pytest.mark.parametrize(
    "chain",
    [
        lambda: nn.Sequential(nn.Sequential(nn.Identity(), nn.Linear(3, 3), nn.ReLU(inplace=True), nn.Linear(3, 2))),
        lambda: nn.Sequential(ReadsItsInput(), nn.Linear(3, 2)),
    ],
    ids=["pass-throughs", "metadata reads"],
)
def test_a_chain_never_branches(chain) -> None:
    assert trace_forward(chain(), torch.randn(5, 3)).branching == set()


def test_a_model_that_cannot_run_under_a_function_mode_is_traced_through_its_modules() -> None:
    class RefusesModes(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.block = ShortcutBeside()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if torch._C._is_torch_function_mode_enabled():
                raise RuntimeError("no function modes here")
            return self.block(x)

    trace = trace_forward(RefusesModes(), torch.randn(4, 3))
    assert not trace.saw_operations
    assert trace.order == ["block.layer.0", "block.layer.1", "block.shortcut"]
    assert trace.branching == {"block"}  # two children on one input: seen without the operations


def test_a_model_that_cannot_run_on_the_example_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match=r"could not be run on the probe's inputs .*check probe=\(inputs, labels\)"):
        trace_forward(nn.Linear(3, 2), torch.zeros(2, 5))


def test_the_traced_pass_changes_nothing_and_leaves_no_hook() -> None:
    net = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3), nn.Dropout(0.5))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    trace_forward(net, torch.randn(6, 3))
    assert net.training and all(m.training for m in net.modules())
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in net.modules())
