"""BatchNorm re-estimation after the surgery: statistics of the batches, no weight moved, modes restored."""

from __future__ import annotations

import pytest
import torch
from torch import nn


def test_recalibration_sets_batchnorm_statistics_to_those_of_the_batches_without_training():
    from lightning_topo.pruning import recalibrate_batchnorm

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5), nn.BatchNorm1d(4))
    net[2].running_mean.fill_(7.0)  # stale statistics, as after a surgery
    batches = [(torch.randn(32, 3) * 3 + 1, None) for _ in range(5)]
    weights = [p.detach().clone() for p in net.parameters()]
    net.train()
    assert recalibrate_batchnorm(net, batches, max_batches=4) == 4
    with torch.no_grad():
        seen = torch.cat([net[0](x) for x, _ in batches[:4]])  # BatchNorm's inputs, dropout off
    # a cumulative average of the per-batch means (equal batches: the mean of all rows) and unbiased variances
    assert torch.allclose(net[2].running_mean, seen.mean(0), atol=1e-5)
    per_batch_var = torch.stack([chunk.var(0, unbiased=True) for chunk in seen.split(32)]).mean(0)
    assert torch.allclose(net[2].running_var, per_batch_var, atol=1e-4)
    assert all(torch.equal(a, b) for a, b in zip(weights, net.parameters()))  # no weight moved
    assert net.training and net[1].training and net[2].momentum == 0.1  # modes and momentum restored


def test_recalibration_without_batches_fails_and_keeps_the_old_statistics():
    from lightning_topo.pruning import recalibrate_batchnorm

    bn = nn.BatchNorm1d(2)
    bn.running_mean.fill_(3.0)
    with pytest.raises(ValueError, match="no batch"):
        recalibrate_batchnorm(nn.Sequential(bn), [])
    assert torch.equal(bn.running_mean, torch.full((2,), 3.0))
    assert recalibrate_batchnorm(nn.Linear(2, 2), [torch.zeros(1, 2)]) == 0  # no BatchNorm: nothing to do
