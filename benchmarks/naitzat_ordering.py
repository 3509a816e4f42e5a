"""Does the monitor reproduce Naitzat et al.'s ordering? ReLU collapses topology faster than tanh.

Trains the D-I recipe's 9x15 MLP with each activation over several seeds until 100% training accuracy
(Lightning's EarlyStopping, as the recipe), then measures beta_0 of class a (the 9 disks) at every
layer with the BettiMonitor's own computation (probe of 2,000 training points, k=14). Prints the
per-layer table of means over seeds and, averaged over the hidden layers, the check ReLU < tanh.

Paper (mean of ~30 networks, input -> output): ReLU 9, 8.4, 6.4, 3.5, 2.2, 1.6, 1.2, 1.1, 1.1, 1.1, 1;
leaky ReLU 9, 8.9, 7.7, 6.3, 4.2, 3.2, 2.1, 1.9, 1.5, 1.3, 1; tanh 9, 8.8, 7.6, 7.1, 6.0, 4.9, 3.8, 2.9, 2.2, 1.4, 1.

Usage:
    python benchmarks/naitzat_ordering.py --seeds 0 1 2 --activations relu leaky_relu tanh
"""

from __future__ import annotations

import time

import lightning.pytorch as pl
import numpy as np
from common import Parser
from lightning.pytorch.callbacks import EarlyStopping

from lightning_topo.callbacks import BettiMonitor
from lightning_topo.data import SyntheticDataModule
from lightning_topo.models import MLPClassifier


def train_and_measure(activation: str, seed: int, max_epochs: int) -> tuple[list[int], int, float]:
    pl.seed_everything(seed, verbose=False)
    data = SyntheticDataModule("d1", seed=0, val_fraction=0.0)
    model = MLPClassifier(in_features=2, num_classes=2, activation=activation, lr=0.01, lr_halve_every=2500)
    stop = EarlyStopping(
        "train_acc", mode="max", stopping_threshold=0.99999, patience=10**9, check_on_train_epoch_end=True
    )
    monitor = BettiMonitor(probe_size=2000, k=14, dims=(0,), every_n_epochs=10**9)  # used once, after training
    trainer = pl.Trainer(
        max_epochs=max_epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[stop, monitor],
    )
    trainer.fit(model, datamodule=data)
    accuracy = float(trainer.callback_metrics["train_acc"])
    entry = monitor.compute(model)
    # a layer the monitor had to skip (it warns) is a NaN, so the columns stay aligned across runs
    return (
        [entry["betti"].get(layer, {}).get("0", [float("nan")])[0] for layer in monitor.watched_layers],
        trainer.current_epoch,
        accuracy,
    )


def main() -> None:
    parser = Parser(__doc__)
    parser.add_argument("--activations", nargs="+", default=["relu", "leaky_relu", "tanh"])
    parser.with_seeds([0, 1, 2])
    parser.add_argument("--max-epochs", type=int, default=12000)
    parser.with_threads(1, help="torch CPU threads (default 1)")
    args = parser.parse_args()

    table: dict[str, np.ndarray] = {}
    for activation in args.activations:
        rows = []
        for seed in args.seeds:
            start = time.perf_counter()
            betti0, epochs, accuracy = train_and_measure(activation, seed, args.max_epochs)
            print(
                f"{activation:10} seed {seed}: {epochs} epochs, train accuracy {accuracy:.4f}, "
                f"{time.perf_counter() - start:.0f} s, beta_0(a) per layer {betti0}",
                flush=True,
            )
            if accuracy < 1.0:
                print(f"  (seed {seed} did not reach 100% within {args.max_epochs} epochs; kept, marked)")
            rows.append(betti0)
        table[activation] = np.nanmean(np.array(rows, dtype=float), axis=0)

    n_layers = len(next(iter(table.values())))
    header = ["input"] + [f"h{i}" for i in range(1, n_layers - 1)] + ["logits"]
    print("\nbeta_0 of class a (9 disks), mean over seeds, input -> logits")
    print(f"{'activation':12}" + "".join(f"{h:>7}" for h in header) + f"{'hidden mean':>13}")
    for activation, values in table.items():
        print(f"{activation:12}" + "".join(f"{v:>7.2f}" for v in values) + f"{values[1:-1].mean():>13.2f}")
    if "relu" in table and "tanh" in table:
        relu, tanh = table["relu"][1:-1].mean(), table["tanh"][1:-1].mean()
        verdict = "holds" if relu < tanh else "does NOT hold"
        print(
            f"\nNaitzat ordering (hidden-layer mean of beta_0(a), ReLU < tanh): {relu:.2f} vs {tanh:.2f} -> {verdict}"
        )


if __name__ == "__main__":
    main()
