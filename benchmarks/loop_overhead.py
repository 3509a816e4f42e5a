"""Where the time of a one-step epoch goes in the D-I recipe, with the monitor and checkpoints off.

The D-I recipe is full batch: one optimiser step per epoch, about 1,000 epochs. Its arithmetic (forward, backward,
Adam on 7,884 points through a 9x15 MLP) takes a few milliseconds per epoch; everything else runs once per epoch
too. This script measures, on the same machine in one invocation, the milliseconds per epoch of:

1. the recipe as ``lightning-topo fit`` builds it (TensorBoard logger, EarlyStopping, EpochProgress), BettiMonitor
   and checkpoints removed (they have their own figures: benchmarks/monitor_overhead.py, train_synthetic.py);
2. the same without the TensorBoard logger, without EpochProgress, without EarlyStopping, then with none of them;
3. the same LightningModule whose ``training_step`` logs the accuracy as a tensor instead of a torchmetrics
   ``Metric``, or computes the loss only (no ``self.log``, no torchmetrics);
4. an empty LightningModule (one scalar parameter, no arithmetic) on the same data: Lightning's own floor;
5. the bare PyTorch loop of the same model, data and optimiser: the arithmetic.

Each variant runs ``--epochs`` epochs; the time per epoch is the process's CPU time (``time.process_time``, all its
threads: with ``--threads 1`` the CPU time of one epoch does not grow when other jobs share the machine, as its wall
time does) between the end of epoch 10 and the end of the last (data generation, set-up and the first epochs
excluded), median over ``--rounds`` interleaved rounds. Then one fit of
variant 1 runs under cProfile and its time is grouped by where it is spent (our model's code, torchmetrics,
Lightning's ``self.log``, the TensorBoard logger, the callbacks, the arithmetic, the rest of Lightning's loop).

Usage:
    python benchmarks/loop_overhead.py --threads 1 | tee benchmarks/results/loop_overhead_profile.txt
"""

from __future__ import annotations

import cProfile
import os
import pstats
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from common import Parser, build_recipe, recipe_path
from lightning.pytorch.callbacks import EarlyStopping

from lightning_topo.callbacks import BettiMonitor, EpochProgress

RECIPE = recipe_path("d1_circles")
SKIP = 10  # epochs left out of the timing: the first ones build caches, lazy imports, the logger's file


class _EpochClock(pl.Callback):
    """Records ``time.process_time()`` at the end of every training epoch (CPU time: see the module docstring)."""

    def __init__(self) -> None:
        self.ends: list[float] = []

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.ends.append(time.process_time())

    def ms_per_epoch(self) -> float:
        return _ms_per_epoch(self.ends)


def _ms_per_epoch(ends: list[float]) -> float:
    return 1000 * (ends[-1] - ends[SKIP - 1]) / (len(ends) - SKIP)


def _build(epochs: int, logs: str, logger: bool = True) -> Any:
    cli = build_recipe(
        RECIPE, f"--trainer.max_epochs={epochs}", "--trainer.enable_checkpointing=false", logs=logs if logger else None
    )
    cli.trainer.callbacks[:] = [c for c in cli.trainer.callbacks if not isinstance(c, BettiMonitor)]
    return cli


def _fit(epochs: int, drop: tuple[type, ...] = (), logger: bool = True, module: str = "recipe") -> float:
    """ms per epoch of the D-I recipe without BettiMonitor, checkpoints and ``drop``; ``module`` changes the model."""
    with tempfile.TemporaryDirectory() as logs:
        cli = _build(epochs, logs, logger)
        trainer, model = cli.trainer, cli.model
        trainer.callbacks[:] = [c for c in trainer.callbacks if not isinstance(c, drop)]
        clock = _EpochClock()
        trainer.callbacks.append(clock)
        if module == "loss only":
            model.training_step = lambda batch, batch_idx: F.cross_entropy(model(batch[0]), batch[1])
        elif module == "tensor accuracy":
            model.training_step = lambda batch, batch_idx: _tensor_accuracy_step(model, batch)
        elif module == "empty":
            model = _Empty()
        trainer.fit(model, datamodule=cli.datamodule)
    return clock.ms_per_epoch()


def _tensor_accuracy_step(model: pl.LightningModule, batch: Any) -> torch.Tensor:
    """The recipe's training_step logging the accuracy as a tensor (Lightning's batch-weighted epoch mean)."""
    x, y = batch
    logits = model(x)
    loss = F.cross_entropy(logits, y)
    accuracy = (logits.argmax(1) == y).float().mean()
    model.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=len(y))
    model.log("train_acc", accuracy, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y))
    return loss


class _Empty(pl.LightningModule):
    """One scalar parameter and a loss that ignores the batch: Lightning's loop with no arithmetic to speak of."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(()))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self.weight**2

    def validation_step(self, batch: Any, batch_idx: int) -> None:  # never runs (no split); keeps Lightning quiet
        pass

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=0.01)


def _bare(epochs: int) -> float:
    """ms per epoch of the recipe's model, data and optimizer/scheduler in a bare full-batch PyTorch loop."""
    cli = build_recipe(RECIPE)
    model, data = cli.model, cli.datamodule
    data.setup("fit")
    x, y = data.train_set.tensors
    configured = model.configure_optimizers()
    optimizer, schedule = configured["optimizer"], configured["lr_scheduler"]["scheduler"]
    ends = []
    for _ in range(epochs):
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        ends.append(time.process_time())
    return _ms_per_epoch(ends)


VARIANTS: dict[str, Callable[[int], float]] = {
    "recipe: TensorBoard + EarlyStopping + EpochProgress": lambda n: _fit(n),
    "  without the TensorBoard logger": lambda n: _fit(n, logger=False),
    "  without EpochProgress": lambda n: _fit(n, drop=(EpochProgress,)),
    "  without EarlyStopping": lambda n: _fit(n, drop=(EarlyStopping,)),
    "  without logger and callbacks": lambda n: _fit(n, drop=(EarlyStopping, EpochProgress), logger=False),
    "  ... and train_acc logged as a tensor, not a torchmetrics Metric": lambda n: _fit(
        n, drop=(EarlyStopping, EpochProgress), logger=False, module="tensor accuracy"
    ),
    "  ... and training_step = the loss only (no self.log, no torchmetrics)": lambda n: _fit(
        n, drop=(EarlyStopping, EpochProgress), logger=False, module="loss only"
    ),
    "empty LightningModule, no logger, no callbacks (Lightning's floor)": lambda n: _fit(
        n, drop=(EarlyStopping, EpochProgress), logger=False, module="empty"
    ),
    "bare PyTorch loop, same model/data/optimizer (the arithmetic)": _bare,
}

#: cProfile groups: label -> [(file fragment, function name or None for any, caller or None), ...]; a group's time is
#: the cumulative time of those functions (only of their calls from ``caller`` when one is given). The groups are
#: disjoint in the D-I fit (none calls another), so "the rest" is trainer.fit minus them.
Key = tuple[str, str | None, tuple[str, str] | None]
STEP = ("models/base.py", "_step")
GROUPS: list[tuple[str, list[Key]]] = [
    ("forward (MLP)", [("models/base.py", "forward", None)]),
    ("cross-entropy", [("torch/nn/functional.py", "cross_entropy", None)]),
    ("backward", [("torch/_tensor.py", "backward", None)]),
    (
        "Adam update + zero_grad",
        [("torch/optim/adam.py", "adam", None), ("torch/optim/optimizer.py", "zero_grad", None)],
    ),
    ("LR scheduler step", [("torch/optim/lr_scheduler.py", "step", None)]),
    ("training_step: torchmetrics Accuracy (forward/update)", [("torchmetrics/", None, STEP)]),
    ("training_step: self.log calls", [("lightning/pytorch/core/module.py", "log", STEP)]),
    ("epoch end: metrics compute/reset + TensorBoard", [("logger_connector.py", "update_train_epoch_metrics", None)]),
    ("EarlyStopping hooks", [("callbacks/early_stopping.py", "on_train_epoch_end", None)]),
    ("EpochProgress hooks", [("callbacks/epoch_progress.py", "on_train_epoch_end", None)]),
]
#: Parts of a group above, printed indented and not counted again.
PARTS: list[tuple[str, list[Key]]] = [
    ("  of which TensorBoard (log_metrics + flush)", [("logger_connector/logger_connector.py", "log_metrics", None)])
]


def _seconds(stats: pstats.Stats, keys: list[Key]) -> float:
    total = 0.0
    for (file, _, name), (_, _, _, cumulative, callers) in stats.stats.items():  # type: ignore[attr-defined]
        for fragment, function, caller in keys:
            if fragment not in file or (function is not None and name != function):
                continue
            if caller is None:
                total += cumulative
            else:
                total += sum(v[3] for (cf, _, cn), v in callers.items() if cn == caller[1] and caller[0] in cf)
    return total


def profile(epochs: int) -> None:
    with tempfile.TemporaryDirectory() as logs:
        cli = _build(epochs, logs)
        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
        profiler.disable()
    stats = pstats.Stats(profiler)
    fit = _seconds(stats, [("trainer/trainer.py", "fit", None)])
    print(
        f"\ncProfile (CPU time) of variant 1, {epochs} epochs: trainer.fit {fit:.2f} s under the profiler", flush=True
    )
    print(f"{'':<55}{'ms/epoch':>9}{'share':>8}")
    accounted = 0.0
    for label, keys in GROUPS + PARTS:
        total = _seconds(stats, keys)
        accounted += total if (label, keys) in GROUPS else 0.0
        print(f"{label:<55}{1000 * total / epochs:>9.2f}{100 * total / fit:>7.0f}%")
    rest = fit - accounted
    print(
        f"{'the rest: Lightning loop, hooks, data fetch, set-up':<55}{1000 * rest / epochs:>9.2f}{100 * rest / fit:>7.0f}%"
    )
    print("\nTop 25 functions by own time:")
    stats.sort_stats("tottime").print_stats(25)


def main() -> None:
    parser = Parser(__doc__)
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.with_threads()
    parser.add_argument("--no-profile", action="store_true")
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(args.rounds):
        for name, run in VARIANTS.items():
            times[name].append(run(args.epochs))
    bare = statistics.median(times[list(VARIANTS)[-1]])
    print(
        f"\nms per one-step epoch, D-I (7,884 points, 9x15 ReLU MLP, Adam), epochs {SKIP + 1}-{args.epochs}, ", end=""
    )
    print(
        f"median of {args.rounds} interleaved rounds (all rounds in brackets); load {os.getloadavg()[0]:.1f} at the end"
    )
    print(f"{'variant':<72}{'ms/epoch':>9}{'x bare':>8}  rounds")
    for name, values in times.items():
        median = statistics.median(values)
        rounds = ", ".join(f"{v:.2f}" for v in values)
        print(f"{name:<72}{median:>9.2f}{median / bare:>8.2f}  [{rounds}]", flush=True)
    if not args.no_profile:
        profile(args.epochs)


if __name__ == "__main__":
    main()
