"""The Fashion-MNIST recipe's fit with and without its BettiMonitor, and where the monitor's time goes (issue 20, 6c).

In one invocation, interleaved over ``--repeats`` rounds (the order rotates each round), fits of ``--epochs`` epochs
of ``recipes/fashion_mnist.yaml`` as shipped (its model, data split, batch size, TensorBoard logger and monitor
options: layers, probe 300, k=14, dims 0 and 1, every epoch, figures on), without checkpoints or progress bar:

(a) without the monitor;
(m) with the recipe's monitor;
(f) with the recipe's monitor, figures off (``log_figure=False``), to separate the figures' share.

Each monitored fit's main-thread time inside each of the monitor's hooks is timed (``on_train_start``: the probe
draw and the workers' start; ``on_train_epoch_end``: the capture, the submission and the logging of finished
results; ``on_train_end``: the wait for the last measurement and the last figures), so the fit's extra seconds
split into the hooks and the rest (work in other threads and processes competing for the host).

Usage (the raw IDX files under <root>/FashionMNIST/raw):
    python benchmarks/monitor_gpu_fit.py --device cuda --data-root /path/to/data
    python benchmarks/monitor_gpu_fit.py --device cpu --data-root /path/to/data --quick   # smoke run
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from typing import Any

import lightning.pytorch as pl
import torch
from common import Parser, forget_betti, load_recipe
from lightning.pytorch.loggers import TensorBoardLogger

from lightning_topo.callbacks import BettiMonitor
from lightning_topo.data import FashionMNISTDataModule
from lightning_topo.models import CNNClassifier

RECIPE = "fashion_mnist"
HOOKS = ("setup", "on_train_start", "on_train_batch_end", "on_train_epoch_end", "on_train_end", "teardown")
VARIANTS = {"a": "no monitor", "m": "recipe's monitor", "f": "monitor, no figures"}


def say(*parts: Any) -> None:
    print(*parts, flush=True)


def recipe() -> dict:
    return load_recipe(RECIPE)


def monitor_options(config: dict) -> dict:
    for callback in config["trainer"]["callbacks"]:
        if callback["class_path"].endswith("BettiMonitor"):
            return dict(callback["init_args"])
    raise SystemExit(f"recipes/{RECIPE}.yaml has no BettiMonitor")


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def timed_hooks(monitor: BettiMonitor) -> dict[str, float]:
    """Wrap ``monitor``'s hooks on the instance; the returned dict accumulates each hook's wall seconds."""
    spent: dict[str, float] = defaultdict(float)
    for name in HOOKS:
        original = getattr(monitor, name)

        def wrapper(*args: Any, _original: Any = original, _name: str = name, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                spent[_name] += time.perf_counter() - start

        setattr(monitor, name, wrapper)
    return spent


def fit(args: argparse.Namespace, variant: str, logs: str) -> tuple[float, BettiMonitor | None, dict[str, float]]:
    config = recipe()
    data_args = config["data"]["init_args"]
    pl.seed_everything(0, verbose=False)
    data = FashionMNISTDataModule(
        root=args.data_root,
        download=False,
        val_fraction=data_args["val_fraction"],
        seed=data_args["seed"],
        batch_size=data_args["batch_size"],
        num_workers=0,
    )
    model = CNNClassifier(**config["model"]["init_args"])
    monitor, spent = None, {}
    if variant != "a":
        options = monitor_options(config)
        if variant == "f":
            options["log_figure"] = False
        monitor = BettiMonitor(**options)
        spent = timed_hooks(monitor)
    limits = {"limit_train_batches": args.limit_batches, "limit_val_batches": args.limit_batches} if args.quick else {}
    trainer = pl.Trainer(
        max_epochs=args.epochs,
        accelerator="gpu" if args.device == "cuda" else "cpu",
        devices=1,
        logger=TensorBoardLogger(logs, name=variant),
        log_every_n_steps=config["trainer"]["log_every_n_steps"],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[monitor] if monitor else [],
        **limits,
    )
    forget_betti()  # a fresh process's memo: the rounds fit the same weights, and a later fit would only look them up
    sync(args.device)
    start = time.perf_counter()
    trainer.fit(model, datamodule=data)
    sync(args.device)
    return time.perf_counter() - start, monitor, dict(spent)


def main() -> int:
    parser = Parser(__doc__)
    parser.with_device("cuda", choices=["cuda", "cpu"])
    parser.add_argument("--data-root", required=True, help="folder holding FashionMNIST/raw/*-ubyte")
    parser.add_argument("--epochs", type=int, default=recipe()["trainer"]["max_epochs"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--variants", default="amf", help="which fits to run, in order: a, m, f")
    parser.with_quick("smoke run: 2 epochs of --limit-batches, 1 repeat")
    parser.add_argument("--limit-batches", type=int, default=10)
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.repeats = 2, 1
    if args.device == "cuda" and not torch.cuda.is_available():
        say("no CUDA device")
        return 2
    begin = time.perf_counter()
    name = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    options = monitor_options(recipe())
    say(f"# device: {name}")
    say(f"# {args.epochs} epochs per fit, {args.repeats} interleaved rounds; the recipe's monitor: {options}")
    variants = list(args.variants)
    times: dict[str, list[float]] = {v: [] for v in variants}
    hooks: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
    blocked: dict[str, list[float]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory() as logs:
        warm = args.__class__(**{**vars(args), "epochs": 1, "quick": True, "limit_batches": 5})
        say(f"warm-up fit (untimed): {fit(warm, variants[-1], logs)[0]:.1f} s")
        for round_ in range(args.repeats):
            shift = round_ % len(variants)
            for variant in variants[shift:] + variants[:shift]:
                seconds, monitor, spent = fit(args, variant, logs)
                times[variant].append(seconds)
                hooks[variant].append(spent)
                line = f"round {round_ + 1} ({variant}): fit {seconds:6.2f} s"
                if monitor is not None:
                    blocked[variant] += [entry["blocked_seconds"] for entry in monitor.history]
                    line += "; hooks " + ", ".join(f"{k} {v:.3f}" for k, v in spent.items() if v >= 0.0005) + " s"
                say(line)
    say("== summary")
    for variant in variants:
        say(f"({variant}) {VARIANTS[variant]:20s} fit: " + ", ".join(f"{t:.2f}" for t in times[variant]) + " s")
    if "a" in variants:
        for variant in [v for v in variants if v != "a"]:
            ratios = [t / a for a, t in zip(times["a"], times[variant])]
            extra = [t - a for a, t in zip(times["a"], times[variant])]
            in_hooks = [sum(h.values()) for h in hooks[variant]]
            say(
                f"({variant})/(a): {', '.join(f'{r:.3f}' for r in ratios)}; median {statistics.median(ratios):.3f}; "
                f"extra seconds median {statistics.median(extra):.2f}, of which in the monitor's hooks "
                f"{statistics.median(in_hooks):.2f}"
            )
            for hook in HOOKS:
                values = [h.get(hook, 0.0) for h in hooks[variant]]
                if max(values) >= 0.0005:
                    say(f"    {hook:20s} median {statistics.median(values):.3f} s per fit")
            if blocked[variant]:
                say(f"    blocked per measurement (history): median {statistics.median(blocked[variant]):.3f} s")
    say(f"total {time.perf_counter() - begin:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
