"""ContinueAtLearningRates: a fit starts at the rates given, and a bad list fails when the callback is built."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from lightning_topo.callbacks import ContinueAtLearningRates


class TwoGroups(pl.LightningModule):
    """Two parameter groups at 0.1 and 0.2, which the callback must replace before the first step."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 1)
        self.seen: list[float] = []

    def training_step(self, batch, batch_idx):
        self.seen = [group["lr"] for group in self.trainer.optimizers[0].param_groups]
        return self.b(self.a(batch[0])).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD([{"params": self.a.parameters(), "lr": 0.1}, {"params": self.b.parameters(), "lr": 0.2}])


def _fit(callback: ContinueAtLearningRates) -> TwoGroups:
    model = TwoGroups()
    trainer = pl.Trainer(
        callbacks=[callback], max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, accelerator="cpu",
    )  # fmt: skip
    trainer.fit(model, DataLoader(TensorDataset(torch.ones(4, 2)), batch_size=4))
    return model


def test_the_fit_runs_at_the_rates_given_one_per_group():
    assert _fit(ContinueAtLearningRates([2.5e-4, 0.0])).seen == [2.5e-4, 0.0]  # a schedule may end at zero


def test_a_list_for_another_layout_warns_and_keeps_the_configured_rates():
    with pytest.warns(UserWarning, match="1 learning rates for 2 parameter groups"):
        assert _fit(ContinueAtLearningRates([1e-3])).seen == [0.1, 0.2]


@pytest.mark.parametrize(
    ("rates", "message"),
    [
        (1e-3, "must be a non-empty list"),  # a bare number
        ("1e-3", "must be a non-empty list"),
        ([], "must be a non-empty list"),
        ([1e-3, float("nan")], r"learning_rates\[1\] must be a non-negative finite number"),
        ([-1e-3], r"learning_rates\[0\] must be a non-negative finite number"),
        (["1e-3"], r"learning_rates\[0\] must be a non-negative finite number"),
    ],
)
def test_bad_rates_fail_when_the_callback_is_built(rates, message):
    with pytest.raises(ValueError, match=message):
        ContinueAtLearningRates(rates)
