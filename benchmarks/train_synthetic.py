"""The synthetic recipes as `lightning-topo fit` runs them: wall time and the epoch of 100% training accuracy.

Each recipe is run through the package's LightningCLI exactly as shipped (its BettiMonitor, EarlyStopping
and EpochProgress included; only the TensorBoard directory moves to a temporary folder), and the script
prints the wall time of the whole fit, the number of epochs run, whether the training set was classified
perfectly (which is what stops the recipe) and the monitor's own share of the time.

Target (issue 3): the D-I recipe reaches 100% in under 3 minutes on a 2-core CPU.

Usage:
    python benchmarks/train_synthetic.py                       # D-I
    python benchmarks/train_synthetic.py --recipes d1_circles d2_tori
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from lightning_topo.callbacks import BettiMonitor
from lightning_topo.cli import run_cli


def run_recipe(recipe: str, extra: list[str]) -> None:
    with tempfile.TemporaryDirectory() as logs:
        start = time.perf_counter()
        cli = run_cli(["fit", "-c", f"recipes/{recipe}.yaml", f"--trainer.logger.init_args.save_dir={logs}", *extra])
        wall = time.perf_counter() - start
    trainer = cli.trainer
    accuracy = float(trainer.callback_metrics["train_acc"])
    monitor = next((c for c in trainer.callbacks if isinstance(c, BettiMonitor)), None)
    monitor_s = sum(e["seconds"] for e in monitor.history) if monitor else 0.0
    reached = (
        f"reached 100% training accuracy at epoch {trainer.current_epoch}"
        if accuracy >= 1.0
        else (f"did NOT reach 100% in {trainer.current_epoch} epochs (train_acc {accuracy:.4f})")
    )
    print(
        f"\n== {recipe}: {reached}; wall time {wall:.1f} s (target for d1_circles: < 180 s); "
        f"BettiMonitor {monitor_s:.1f} s over {len(monitor.history) if monitor else 0} monitored epochs",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", nargs="+", default=["d1_circles"])
    args, extra = parser.parse_known_args()  # anything else is a LightningCLI override, e.g. --trainer.max_epochs=3000
    print(f"torch threads: {torch.get_num_threads()}")
    for recipe in args.recipes:
        run_recipe(recipe, extra)


if __name__ == "__main__":
    main()
