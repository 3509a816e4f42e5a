"""The pruning report's measurements: the CPU latency of the models before and after, timed together."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from lightning_topo.pruning import cpu_copy, paired_cpu_latency

CALLS: list[str] = []
SEEN: list[tuple[str, int, bool]] = []


class Named(nn.Module):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.fc = nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        CALLS.append(self.name)
        SEEN.append((self.name, id(self), self.training))
        return self.fc(x)


def test_paired_latency_times_the_models_in_turn_and_leaves_their_modes_as_they_were() -> None:
    """Before and after are timed round by round, the order turning, so drift in the machine weighs on both."""
    CALLS.clear()
    before, after = Named("before").train(), Named("after").train()
    seconds = paired_cpu_latency([before, after], torch.zeros(3, 2), repeats=4)
    assert CALLS == ["before", "after"] + ["before", "after", "after", "before"] * 2  # warm-ups, then 4 rounds
    assert len(seconds) == 2 and all(s > 0 for s in seconds)
    assert before.training and after.training  # timed in eval mode, the modes put back


def test_cpu_models_are_timed_in_place_in_eval_mode_and_every_submodule_mode_is_restored() -> None:
    """A model on the CPU is not copied (the pruning callback already holds a CPU copy of the unpruned model)."""
    SEEN.clear()
    model = nn.Sequential(Named("inner"), nn.Dropout(0.5)).train()
    model[1].eval()  # a mixed state, as a user's frozen part would leave it
    paired_cpu_latency([model], torch.zeros(3, 2), repeats=2)
    assert {name_id for name, name_id, _ in SEEN} == {id(model[0])}  # the very module, no copy
    assert not any(training for _, _, training in SEEN)  # eval mode while timed
    assert model.training and model[0].training and not model[1].training  # each submodule's own mode back


def test_modes_are_restored_when_the_forward_fails() -> None:
    model = nn.Sequential(nn.Linear(2, 2)).train()
    with pytest.raises(RuntimeError):
        paired_cpu_latency([model], torch.zeros(3, 5))  # wrong width: the forward raises
    assert model.training and model[0].training


def test_the_cpu_copy_copies_each_tensor_straight_to_the_host_and_keeps_ties_and_flags(monkeypatch) -> None:
    """No parameter or buffer goes through ``Tensor.__deepcopy__``, which would first copy it on its own device (a
    GPU model's whole weights a second time there); each is copied to the host once, so ties stay ties."""
    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3), nn.Linear(3, 3))
    model[2].weight = model[0].weight  # tied, as an embedding and a head are
    model[1].weight.requires_grad_(False)  # a frozen part
    model(torch.randn(5, 3)).sum().backward()
    deep_copied: list[torch.Tensor] = []
    for kind in (torch.Tensor, nn.Parameter):  # a parameter has a deep copy of its own

        def spy(tensor: torch.Tensor, memo: dict, original=kind.__deepcopy__) -> torch.Tensor:
            deep_copied.append(tensor)
            return original(tensor, memo)

        monkeypatch.setattr(kind, "__deepcopy__", spy)
    copied = cpu_copy(model)
    own = {id(t) for t in (*model.parameters(), *model.buffers())}
    assert not [t for t in deep_copied if id(t) in own]
    assert copied[0].weight is copied[2].weight  # still tied
    assert not copied[1].weight.requires_grad and copied[0].bias.requires_grad
    assert all(p.grad is None for p in copied.parameters())  # gradients stay behind
    for mine, theirs in zip((*copied.parameters(), *copied.buffers()), (*model.parameters(), *model.buffers())):
        assert mine is not theirs and torch.equal(mine, theirs) and mine.device.type == "cpu"
    with torch.no_grad():
        copied[0].bias.add_(1.0)
    assert not torch.equal(copied[0].bias, model[0].bias)  # independent


class Recorded(pl.LightningModule):
    """A LightningModule with a torchmetrics metric, whose forward makes a tensor on ``self.device``."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)
        self.accuracy = MulticlassAccuracy(num_classes=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) + torch.zeros(2, device=self.device)


def test_the_cpu_copy_says_it_is_on_the_cpu_wherever_the_model_was() -> None:
    """Lightning and torchmetrics record a module's device outside its tensors; the copy must record the host, or a
    forward that makes tensors on ``self.device`` fails beside the pruned model (and the pruning is rolled back)."""
    model = Recorded()
    model._device = torch.device("cuda", 0)  # what .cuda() records (there is no GPU to move it to here; a metric's
    copied = cpu_copy(model)  # .cpu() would make a tensor on its recorded device, so only the module's is set)
    assert copied.device.type == "cpu" and copied.accuracy.device.type == "cpu"
    assert copied(torch.randn(3, 4)).shape == (3, 2)
    assert model.device.type == "cuda"  # the model itself is left as it was
