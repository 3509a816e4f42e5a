"""Which tensor of a model's output the monitor measures: tensors, dicts, (named) tuples, ModelOutput-like objects."""

from __future__ import annotations

import pytest
import torch
from helpers.user_models import ModelOutputLike, Output

from lightning_topo.monitoring.outputs import per_sample, select_tensor


def test_select_tensor_rule():
    t = torch.ones(3, 2)
    assert select_tensor({"features": torch.zeros(3, 5), "logits": t}) is t
    assert select_tensor({"a": "text", "b": t}) is t  # no logits: the first tensor
    assert select_tensor(Output(torch.zeros(3, 5), t)) is t
    assert select_tensor((torch.zeros(3, 5), t), key=1) is t
    assert select_tensor({"x": t}, key=lambda out: out["x"] * 2).sum() == 12
    assert select_tensor(ModelOutputLike(logits=t)) is t
    with pytest.raises(TypeError, match="no key 'scores'; its keys are"):
        select_tensor({"logits": t}, key="scores")
    with pytest.raises(TypeError, match="found no tensor .* pass output_key"):
        select_tensor({"a": "text"})
    assert per_sample(torch.ones(4, 7, 3)).shape == (4, 21)
    assert per_sample(torch.arange(24.0).reshape(2, 4, 3), "first").tolist() == [[0, 1, 2], [12, 13, 14]]
