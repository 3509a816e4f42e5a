"""The monitor's batched class route against the per-class route, on the Fashion-MNIST recipe's model (issue 20, 6c).

In one invocation, interleaved over ``--repeats`` rounds (the order rotates each round), three fits of ``--epochs``
epochs of the recipe's CNN (``recipes/fashion_mnist.yaml``: model, data split and batch size; no logger, no
checkpoints, no progress bar):

(a) without the monitor;
(b) with ``BettiMonitor`` every epoch (probe ``--probe`` images, class balanced, its default watched layers, k=14)
    on the per-class route: one forward pass and one set of distance kernels per class
    (``lightning_topo.monitoring.clouds.BATCH_CLASSES = False``);
(c) the same on the batched route (``BATCH_CLASSES = True``): equal classes share forward passes of up to
    ``--batch-size`` probe images and each layer's distances are ranked for all of them at once.

Printed: each fit's wall time, the seconds the training loop was blocked per measurement (the history's
``blocked_seconds``), the ratios (b)/(a) and (c)/(a) per round and their medians; then, on the last (c) fit's weights,
one synchronous measurement on each route: identical Betti numbers, and the neighbour lists and nearest distances
compared bit for bit.  Exit status 1 if the Betti numbers differ.

Usage (GPU; the raw IDX files under <root>/FashionMNIST/raw):
    python benchmarks/monitor_gpu_batched.py --device cuda --data-root /path/to/data
    python benchmarks/monitor_gpu_batched.py --device cpu --data-root /path/to/data --quick   # smoke run
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from common import Parser, forget_betti, load_recipe, probe_clouds

from lightning_topo.callbacks import BettiMonitor
from lightning_topo.data import FashionMNISTDataModule
from lightning_topo.models import CNNClassifier
from lightning_topo.monitoring import clouds as clouds_module

RECIPE = "fashion_mnist"


def say(*parts: Any) -> None:
    print(*parts, flush=True)


def recipe() -> tuple[dict, dict]:
    config = load_recipe(RECIPE)
    return config["model"]["init_args"], config["data"]["init_args"]


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def make_monitor(args: argparse.Namespace) -> BettiMonitor:
    return BettiMonitor(
        probe_size=args.probe, k=14, dims=[0, 1], every_n_epochs=1, batch_size=args.batch_size, log_figure=False
    )


def fit(args: argparse.Namespace, variant: str) -> tuple[float, BettiMonitor | None, pl.LightningModule]:
    """One fit of ``variant`` ('a' bare, 'b' per-class route, 'c' batched route); its wall time in seconds."""
    model_args, data_args = recipe()
    pl.seed_everything(0, verbose=False)
    data = FashionMNISTDataModule(
        root=args.data_root,
        download=False,
        val_fraction=data_args["val_fraction"],
        seed=data_args["seed"],
        batch_size=data_args["batch_size"],
        num_workers=0,
    )
    model = CNNClassifier(**model_args)
    monitor = None if variant == "a" else make_monitor(args)
    clouds_module.BATCH_CLASSES = {"a": None, "b": False, "c": True}[variant]
    limits = {"limit_train_batches": args.limit_batches, "limit_val_batches": args.limit_batches} if args.quick else {}
    trainer = pl.Trainer(
        max_epochs=args.epochs,
        accelerator="gpu" if args.device == "cuda" else "cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[monitor] if monitor else [],
        **limits,
    )
    forget_betti()  # a fresh process's memo: (b) and (c) fit the same weights, and the second would only look them up
    sync(args.device)
    start = time.perf_counter()
    trainer.fit(model, datamodule=data)
    sync(args.device)
    seconds = time.perf_counter() - start
    clouds_module.BATCH_CLASSES = None
    return seconds, monitor, model


def same_lists(a: dict, b: dict) -> tuple[int, int]:
    """(pairs compared, pairs bit-identical) of two reduce_clouds results."""
    equal = 0
    for key in a:
        x, y = a[key], b.get(key)
        if isinstance(x, str) or isinstance(y, str):
            equal += x == y
            continue
        equal += (
            (x.n_points, x.n_unique) == (y.n_points, y.n_unique)
            and np.array_equal(x.indices, y.indices)
            and (x.nearest is None) == (y.nearest is None)
            and (x.nearest is None or np.array_equal(x.nearest, y.nearest))
        )
    return len(a), equal


def compare_routes(args: argparse.Namespace, model: pl.LightningModule, probe: tuple) -> bool:
    """One synchronous measurement per route on the same weights: Betti numbers equal? lists bit for bit?"""
    from lightning_topo.monitoring.clouds import reduce_clouds

    entries, lists, seconds = {}, {}, {}
    for name, batched in (("per-class", False), ("batched", True)):
        clouds_module.BATCH_CLASSES = batched
        monitor = make_monitor(args)
        monitor.set_probe(*probe, model=model)
        entries[name] = monitor.compute(model)
        sync(args.device)
        start = time.perf_counter()
        lists[name] = reduce_clouds(model, *probe_clouds(monitor), k=14, batch_size=args.batch_size)
        sync(args.device)
        seconds[name] = time.perf_counter() - start
    clouds_module.BATCH_CLASSES = None
    same = entries["per-class"]["betti"] == entries["batched"]["betti"]
    compared, equal = same_lists(lists["per-class"], lists["batched"])
    say(f"same weights, one measurement each: Betti numbers identical: {same}")
    say(f"  neighbour lists and nearest distances bit-identical: {equal} of {compared} (layer, class) pairs")
    say(f"  capture alone (reduce_clouds): per-class {seconds['per-class']:.3f} s, batched {seconds['batched']:.3f} s")
    return same


def main() -> int:
    parser = Parser(__doc__)
    parser.with_device("cuda", choices=["cuda", "cpu"])
    parser.add_argument("--data-root", required=True, help="folder holding FashionMNIST/raw/*-ubyte")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--probe", type=int, default=1000, help="probe images (class balanced)")
    parser.add_argument("--batch-size", type=int, default=1000, help="the monitor's probe batch size")
    parser.with_quick("smoke run: 1 epoch of --limit-batches, 1 repeat")
    parser.add_argument("--limit-batches", type=int, default=10)
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.repeats, args.probe, args.batch_size = 1, 1, 200, 200
    if args.device == "cuda" and not torch.cuda.is_available():
        say("no CUDA device")
        return 2
    begin = time.perf_counter()
    name = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    say(f"# device: {name}")
    say(
        f"# {args.epochs} epochs per fit, {args.repeats} interleaved rounds, probe {args.probe}, "
        f"monitor batch_size {args.batch_size}{', QUICK smoke run' if args.quick else ''}"
    )
    warm, _, _ = fit(argparse.Namespace(**{**vars(args), "epochs": 1, "quick": True, "limit_batches": 5}), "c")
    say(f"warm-up fit (untimed): {warm:.1f} s")
    times: dict[str, list[float]] = {"a": [], "b": [], "c": []}
    blocked: dict[str, list[list[float]]] = {"b": [], "c": []}
    betti: dict[str, list] = {"b": [], "c": []}
    last = None
    for round_ in range(args.repeats):
        order = ["a", "b", "c"][round_ % 3 :] + ["a", "b", "c"][: round_ % 3]
        for variant in order:
            seconds, monitor, model = fit(args, variant)
            times[variant].append(seconds)
            line = f"round {round_ + 1} ({variant}): fit {seconds:6.2f} s"
            if monitor is not None:
                blocked[variant].append([entry["blocked_seconds"] for entry in monitor.history])
                betti[variant].append([entry["betti"] for entry in monitor.history])
                line += "; blocked per measurement: " + ", ".join(f"{s:.3f}" for s in blocked[variant][-1]) + " s"
                if variant == "c":
                    last = (model, monitor.probe)
            say(line)
        say(
            f"round {round_ + 1}: (b)/(a) = {times['b'][-1] / times['a'][-1]:.3f}, "
            f"(c)/(a) = {times['c'][-1] / times['a'][-1]:.3f}"
        )
    ratio_b = [b / a for a, b in zip(times["a"], times["b"])]
    ratio_c = [c / a for a, c in zip(times["a"], times["c"])]
    say("== summary")
    for variant, label in (("a", "no monitor"), ("b", "per-class route"), ("c", "batched route")):
        say(
            f"({variant}) {label:16s} fit: " + ", ".join(f"{t:.2f}" for t in times[variant]) + f" s; median "
            f"{statistics.median(times[variant]):.2f} s"
        )
    for variant in ("b", "c"):
        flat = [s for run in blocked[variant] for s in run]
        say(f"({variant}) blocked per measurement: median {statistics.median(flat):.3f} s over {len(flat)}")
    say(f"(b)/(a): {', '.join(f'{r:.3f}' for r in ratio_b)}; median {statistics.median(ratio_b):.3f}")
    say(f"(c)/(a): {', '.join(f'{r:.3f}' for r in ratio_c)}; median {statistics.median(ratio_c):.3f}")
    fits_equal = betti["b"] == betti["c"]
    say(
        f"fits (b) and (c) logged identical Betti numbers: {fits_equal}"
        + ("" if fits_equal else " (separate fits: training itself need not be bit-reproducible on a GPU)")
    )
    same = compare_routes(args, last[0], last[1])
    say(f"total {time.perf_counter() - begin:.1f} s")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
