"""SyntheticDataModule: full batch by default, splits, scaling, validation of arguments."""

from __future__ import annotations

import pytest
import torch

from lightning_topo.data import SyntheticDataModule, make_dataset


def test_full_batch_is_one_step_with_every_training_point():
    dm = SyntheticDataModule("d1", n_points=2000, val_fraction=0.25)
    dm.setup("fit")
    batches = list(dm.train_dataloader())
    assert len(batches) == 1 and len(dm.train_dataloader()) == 1
    x, y = batches[0]
    assert x.shape == (len(dm.train_set), 2) and x.dtype == torch.float32 and y.dtype == torch.int64
    # the split is a partition of the generated points: no point lost, none in both halves
    generated, _ = make_dataset("d1", units=9, n_points=2000, seed=0)
    everything = torch.cat([dm.train_set.tensors[0], dm.val_set.tensors[0]])
    assert torch.equal(torch.unique(everything, dim=0), torch.unique(torch.from_numpy(generated).float(), dim=0))
    assert len(everything) == len(generated)
    assert abs(len(dm.val_set) - 0.25 * (len(dm.train_set) + len(dm.val_set))) <= 1


def test_mini_batches_and_no_validation_split():
    dm = SyntheticDataModule("d2", units=4, n_points=800, batch_size=100, val_fraction=0.0)
    dm.setup("fit")
    assert len(dm.train_dataloader()) == 8 and dm.val_dataloader() == []
    # with no held-out split, `test` and `predict` evaluate on the training points (as the protocol does)
    assert sum(len(y) for _, y in dm.test_dataloader()) == 800 and len(dm.predict_dataloader()) == 8
    assert dm.in_features == 3 and dm.num_classes == 2


@pytest.mark.parametrize("scaling", ["maxabs", "standard"])
def test_scaling_is_fitted_on_the_training_split(scaling):
    dm = SyntheticDataModule("d3", units=4, n_points=2000, scaling=scaling)
    dm.setup("fit")
    x = dm.train_set.tensors[0]
    if scaling == "maxabs":
        assert x.abs().max().item() == pytest.approx(1.0)
    else:
        assert torch.allclose(x.mean(0), torch.zeros(3), atol=1e-4) and torch.allclose(
            x.std(0), torch.ones(3), atol=1e-3
        )


def test_same_seed_same_data():
    a, b = SyntheticDataModule("d1", seed=3, n_points=500), SyntheticDataModule("d1", seed=3, n_points=500)
    a.setup(), b.setup()
    assert torch.equal(a.train_set.tensors[0], b.train_set.tensors[0])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dataset": "d9"}, "dataset must be one of"),
        ({"units": 10}, "perfect square"),
        ({"n_points": 5}, "n_points must be"),
        ({"scaling": "minmax"}, "scaling must be one of"),
        ({"batch_size": 0}, "batch_size"),
        ({"val_fraction": 1.0}, "val_fraction"),
        ({"val_fraction": "0.1"}, "val_fraction"),
        ({"seed": -1}, "seed must be a non-negative integer"),  # numpy's error came at set-up
        ({"seed": 0.5}, "seed must be a non-negative integer"),
    ],
)
def test_bad_arguments_fail_at_construction(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SyntheticDataModule(**kwargs)


def test_a_validation_split_that_takes_every_point_is_refused_at_set_up():
    dm = SyntheticDataModule("d2", units=1, n_points=20, val_fraction=0.99)  # 20 of 20 points held out
    with pytest.raises(ValueError, match="val_fraction=0.99 of 20 points leaves no training point"):
        dm.setup("fit")
