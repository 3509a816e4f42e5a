"""Train the image recipes on real data and print test accuracy and wall time per data set.

Runs each recipe exactly as a user would (``lightning-topo fit -c recipes/<name>.yaml --data.root ...``,
through the same LightningCLI), then evaluates the final model once on the test split. Wall time covers
the whole fit (data loading, training, validation, any callbacks of the recipe) and the test pass.

Usage:
    python benchmarks/train_images.py                      # all three, data from ../shared/data
    python benchmarks/train_images.py --data-root /path/to/data --only fashion_mnist
    python benchmarks/train_images.py --only cifar10 --threads 1 -- --trainer.max_epochs=2   # extra CLI overrides

Targets (issue 5, this 2-core CPU): Fashion-MNIST >= 91% test accuracy within 10 minutes;
CIFAR-10 subset >= 60%; cats-vs-dogs subset >= 70%.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import torch  # noqa: F401  (imported before the header, so that the header names the GPU)
from common import Parser, recipe_path

TARGETS = {"fashion_mnist": 0.91, "cifar10": 0.60, "cats_vs_dogs": 0.70}
TIME_LIMIT_S = {"fashion_mnist": 600.0}


def run_one(name: str, data_root: Path, extra: list[str]) -> dict[str, float | int | str]:
    """Fit one recipe through the CLI, test the final model, return accuracy, wall time and epochs."""
    from lightning_topo.cli import run_cli

    args = [
        "fit",
        "-c",
        str(recipe_path(name)),
        f"--data.init_args.root={data_root}",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        "--trainer.enable_checkpointing=false",
    ]
    if name != "cats_vs_dogs":
        args.append("--data.init_args.download=false")
    sys.argv = sys.argv[:1]  # LightningCLI warns when it gets both args= and command-line arguments
    start = time.perf_counter()
    cli = run_cli(args + extra)
    fit_s = time.perf_counter() - start
    result = cli.trainer.test(cli.model, datamodule=cli.datamodule, verbose=False)[0]
    wall_s = time.perf_counter() - start
    return {
        "dataset": name,
        "test_acc": float(result["test_acc"]),
        "fit_s": fit_s,
        "wall_s": wall_s,
        "epochs": int(cli.trainer.current_epoch),
        "command": " ".join(["lightning-topo", *args[:3], f"--data.root {data_root}", *extra]),
    }


def main() -> int:
    parser = Parser(__doc__)
    parser.with_data_root(type=Path)
    parser.add_argument("--only", nargs="+", choices=sorted(TARGETS), default=list(TARGETS))
    parser.with_threads()
    parser.add_argument("extra", nargs="*", help="extra LightningCLI overrides, after --")
    options = parser.parse_args()

    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    print(f"data: {options.data_root.resolve()}")
    rows = []
    for name in options.only:
        row = run_one(name, options.data_root, options.extra)
        rows.append(row)
        print(f"[{name}] test_acc={row['test_acc']:.4f} wall={row['wall_s']:.1f}s epochs={row['epochs']}", flush=True)
    print("\n| data set | test accuracy | target | wall time (s) | epochs | target met |")
    print("|---|---|---|---|---|---|")
    all_met = True
    for row in rows:
        name = str(row["dataset"])
        met = row["test_acc"] >= TARGETS[name] and row["wall_s"] <= TIME_LIMIT_S.get(name, float("inf"))
        all_met &= met
        limit = f" in {TIME_LIMIT_S[name]:.0f} s" if name in TIME_LIMIT_S else ""
        print(
            f"| {name} | {row['test_acc']:.4f} | >= {TARGETS[name]:.2f}{limit} | {row['wall_s']:.1f} "
            f"| {row['epochs']} | {'yes' if met else 'NO'} |"
        )
    for row in rows:
        print(f"command ({row['dataset']}): {row['command']}")
    return 0 if all_met else 1


if __name__ == "__main__":
    sys.exit(main())
