"""save_pruned / load_pruned: whole models in, whole models out, and a clear error for anything else."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_topo.models import CNNClassifier
from lightning_topo.pruning import load_pruned, save_pruned


def test_a_saved_model_reloads_and_predicts_identically(tmp_path):
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)).eval()
    path = save_pruned(model, tmp_path / "deep" / "pruned.pt")  # missing folders are made
    x = torch.randn(5, 3)
    assert torch.equal(load_pruned(path)(x), model(x))
    assert [p.name for p in path.parent.iterdir()] == ["pruned.pt"]  # the partial file was renamed, not left


def test_a_state_dict_is_refused_by_both_with_the_way_to_do_it(tmp_path):
    model = nn.Linear(3, 2)
    with pytest.raises(TypeError, match="saves a torch.nn.Module .*got OrderedDict"):
        save_pruned(model.state_dict(), tmp_path / "weights.pt")
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    with pytest.raises(TypeError, match=r"holds a OrderedDict, not a model .*model.load_state_dict"):
        load_pruned(tmp_path / "weights.pt")


def test_a_lightning_checkpoint_is_pointed_to_load_from_checkpoint(tmp_path):
    model = CNNClassifier(in_channels=1, num_classes=2, channels=(4,))
    torch.save({"state_dict": model.state_dict(), "epoch": 3}, tmp_path / "last.ckpt")
    with pytest.raises(TypeError, match="a Lightning checkpoint: load it with YourModule.load_from_checkpoint"):
        load_pruned(tmp_path / "last.ckpt")


def test_a_failed_save_leaves_the_older_file_whole(tmp_path):
    model = nn.Linear(3, 2)
    model.hook = lambda x: x  # cannot be pickled
    target = tmp_path / "pruned.pt"
    save_pruned(nn.Linear(3, 2), target)
    before = target.read_bytes()
    with pytest.raises(Exception, match="lambda|pickle"):
        save_pruned(model, target)
    assert target.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["pruned.pt"]
