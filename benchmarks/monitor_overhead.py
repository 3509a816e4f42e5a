"""What the BettiMonitor costs: the same fit with and without it, as a ratio measured in one run.

For each recipe it builds the trainer, model and data from the recipe (as `lightning-topo fit` would),
trains a fixed number of epochs without early stopping, once without the monitor and once with it
(the recipe's own monitor settings), alternating baseline / monitored / baseline so that a change in
machine load hits both, and prints: wall time of each, the ratio monitored / mean baseline, the monitor's own compute time per
monitored epoch (its `betti/seconds`, in worker processes for the most part) and the time the training loop
was blocked by it (`betti/blocked_seconds`).

Targets: on D-I the monitor's own cost under 2 s per epoch (11 layers x 2 classes); on the Fashion-MNIST recipe watched
every epoch, the whole fit at most 1.03x slower on a CPU (1.05x on a GPU).

Usage:
    python benchmarks/monitor_overhead.py                                   # D-I and Fashion-MNIST
    python benchmarks/monitor_overhead.py --recipes d1_circles --d1-epochs 500 --every-epoch
    python benchmarks/monitor_overhead.py --data-root ../shared/data       # where FashionMNIST/raw is
    python benchmarks/monitor_overhead.py --recipes fashion_mnist --accelerator gpu --cnn-epochs 3
    python benchmarks/monitor_overhead.py --num-workers 0 1 --data-root ../shared/data   # synchronous vs a worker
"""

from __future__ import annotations

import statistics
import time

import lightning.pytorch as pl
from common import Parser, build_recipe
from lightning.pytorch.callbacks import EarlyStopping

from lightning_topo.callbacks import BettiMonitor, EpochProgress


def build(recipe: str, overrides: list[str]) -> tuple[pl.Trainer, pl.LightningModule, pl.LightningDataModule]:
    cli = build_recipe(
        recipe, "--trainer.enable_checkpointing=false", "--trainer.enable_progress_bar=false", *overrides
    )
    return cli.trainer, cli.model, cli.datamodule


def timed_fit(
    recipe: str, overrides: list[str], monitored: bool, every_epoch: bool, num_workers: int | None = None
) -> tuple[float, BettiMonitor | None]:
    pl.seed_everything(0, verbose=False)
    trainer, model, data = build(recipe, overrides)
    monitor = next((c for c in trainer.callbacks if isinstance(c, BettiMonitor)), None)
    drop = (EarlyStopping, EpochProgress) if monitored else (EarlyStopping, EpochProgress, BettiMonitor)
    trainer.callbacks[:] = [c for c in trainer.callbacks if not isinstance(c, drop)]
    if monitored and every_epoch:
        monitor.every_n_epochs = 1
    if monitored and num_workers is not None:  # as BettiMonitor(num_workers=...) would set it
        monitor._num_workers_given = monitor.num_workers = num_workers
    start = time.perf_counter()
    trainer.fit(model, datamodule=data)
    return time.perf_counter() - start, (monitor if monitored else None)


def measure(recipe: str, overrides: list[str], every_epoch: bool, workers: list[int | None]) -> None:
    """Baseline, one monitored fit per ``workers`` setting, baseline again: every ratio against the mean baseline."""
    base_1, _ = timed_fit(recipe, overrides, monitored=False, every_epoch=every_epoch)
    monitored = [timed_fit(recipe, overrides, True, every_epoch, num_workers) for num_workers in workers]
    base_2, _ = timed_fit(recipe, overrides, monitored=False, every_epoch=every_epoch)
    baseline = statistics.mean([base_1, base_2])
    print(f"\n== {recipe} {' '.join(overrides)}")
    print(f"baseline fits: {base_1:.1f} s, {base_2:.1f} s (mean {baseline:.1f} s)")
    for num_workers, (watched, monitor) in zip(workers, monitored):
        mode = "the default num_workers" if num_workers is None else f"num_workers={num_workers}"
        costs = [entry["seconds"] for entry in monitor.history]
        blocked = [entry.get("blocked_seconds", entry["seconds"]) for entry in monitor.history]
        n_jobs = len(monitor.watched_layers) * len(
            {c for e in monitor.history for per in e["betti"].values() for c in per}
        )
        print(
            f"monitor ({mode}, {monitor.num_workers} worker processes): every {monitor.every_n_epochs} epoch(s), "
            f"{len(monitor.watched_layers)} layers, {n_jobs} Betti computations per monitored epoch"
        )
        print(f"monitored fit: {watched:.1f} s  ->  ratio {watched / baseline:.3f}x")
        if not costs:
            print(
                "monitor's own cost: no monitored epoch in this fit; raise --d1-epochs/--cnn-epochs or pass "
                "--every-epoch"
            )
            continue
        print(
            f"monitor's own cost: {statistics.mean(costs):.2f} s per monitored epoch (max {max(costs):.2f} s, "
            f"{len(costs)} epochs); training loop blocked {statistics.mean(blocked):.2f} s per monitored epoch "
            f"(max {max(blocked):.2f} s)"
        )


def main() -> None:
    parser = Parser(__doc__)
    parser.add_argument("--recipes", nargs="+", default=["d1_circles", "fashion_mnist"])
    parser.add_argument(
        "--d1-epochs", type=int, default=1000, help="epochs of the D-I fits (about what the recipe needs)"
    )
    parser.add_argument("--cnn-epochs", type=int, default=1, help="epochs of the CNN fits")
    parser.add_argument(
        "--every-epoch", action="store_true", help="monitor every epoch instead of the recipe's every_n_epochs"
    )
    parser.add_argument("--accelerator", default=None, help="override the recipes' trainer.accelerator (e.g. gpu)")
    parser.add_argument(
        "--num-workers",
        nargs="+",
        type=int,
        default=None,
        help="monitored fits with these num_workers, one each, between the two baselines (default: one fit with "
        "the monitor's own default, synchronous on a CPU)",
    )
    parser.with_data_root()
    args = parser.parse_args()
    for recipe in args.recipes:
        if recipe.startswith("d"):
            overrides = [f"--trainer.max_epochs={args.d1_epochs}"]
        else:
            overrides = [
                f"--trainer.max_epochs={args.cnn_epochs}",
                f"--data.root={args.data_root}",
                "--data.download=false",
            ]
        if args.accelerator:
            overrides.append(f"--trainer.accelerator={args.accelerator}")
        measure(recipe, overrides, args.every_epoch, args.num_workers or [None])


if __name__ == "__main__":
    main()
