"""Fits that run in processes Lightning starts for them (``strategy="ddp_spawn"``): what stays there is said."""

from __future__ import annotations

import sys
import textwrap

from helpers.processes import run_child

SCRIPT = """
import torch, lightning.pytorch as pl
from torch.utils.data import DataLoader, TensorDataset
from lightning_topo.callbacks import BettiMonitor, BettiPruning
from lightning_topo.models import CNNClassifier

def images():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(64) % 2
    return TensorDataset(torch.randn(64, 1, 12, 12, generator=g) + y[:, None, None, None].float(), y)

if __name__ == "__main__":
    for callback in (BettiPruning(amount=0.5, probe_size=40, k=5), BettiMonitor(probe_size=40, k=5)):
        trainer = pl.Trainer(
            accelerator="cpu", devices=1, strategy="ddp_spawn", max_epochs=1, logger=False, enable_progress_bar=False,
            enable_model_summary=False, enable_checkpointing=False, callbacks=[callback],
        )
        model = CNNClassifier(in_channels=1, num_classes=2, channels=(4,))
        try:
            trainer.fit(model, DataLoader(images(), batch_size=32))
            print("FIT RETURNED")
        except Exception as error:
            print("FIT RAISED", type(error).__name__, " ".join(str(error).split()))
        print("CHANNELS", model.features.block1.conv.out_channels)
"""


def test_a_spawned_fit_refuses_pruning_before_training_and_says_where_the_monitor_history_stays(tmp_path):
    """Under ddp_spawn the ranks pruned their copies, then Lightning loaded rank 0's pruned weights into the caller's
    unpruned model: a size-mismatch crash after training. The monitor's history stayed in the spawned process, and
    the caller's ``monitor.history[-1]`` raised IndexError with no word of why."""
    script = tmp_path / "spawned.py"
    script.write_text(textwrap.dedent(SCRIPT))
    result = run_child([sys.executable, str(script)], timeout=180, cwd=tmp_path)
    out = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 0, out[-3000:]
    pruning, monitoring = result.stdout.split("CHANNELS", 2)[:2]
    assert "FIT RAISED ProcessRaisedException" in pruning and "size mismatch" not in out
    assert "BettiPruning cannot prune in processes Lightning starts for the fit" in out
    assert "Use strategy='ddp'" in out
    assert "FIT RETURNED" in monitoring
    assert "the monitor you hold keeps no history, probe or watched layers after it" in out
    assert "its numbers are kept in trainer.callback_metrics only" in out  # not "in monitor.history"
    assert result.stdout.count("CHANNELS 4") == 2  # neither fit changed the caller's model
