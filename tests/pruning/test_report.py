"""The pruning report's measurements: the CPU latency of the models before and after, timed together."""

from __future__ import annotations

import torch
from torch import nn

from lightning_topo.pruning import paired_cpu_latency

CALLS: list[str] = []


class Named(nn.Module):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.fc = nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        CALLS.append(self.name)
        return self.fc(x)


def test_paired_latency_times_the_models_in_turn_on_copies_and_leaves_the_originals_alone() -> None:
    """Before and after are timed round by round, the order turning, so drift in the machine weighs on both."""
    CALLS.clear()
    before, after = Named("before").train(), Named("after").train()
    seconds = paired_cpu_latency([before, after], torch.zeros(3, 2), repeats=4)
    assert CALLS == ["before", "after"] + ["before", "after", "after", "before"] * 2  # warm-ups, then 4 rounds
    assert len(seconds) == 2 and all(s > 0 for s in seconds)
    assert before.training and after.training  # timed on eval-mode copies
