"""Does the monitor's device route give the very numbers of the old exact route? Checked during real fits.

Runs the D-I recipe (to 100% training accuracy, measured every 50 epochs) and the Fashion-MNIST recipe (2 epochs,
measured every epoch) as shipped, with a second callback that, at every monitored epoch, recomputes every watched
layer's Betti numbers on the same probe with the route as it stood before (every layer captured on the host,
``np.unique`` on whole rows, float64 brute-force k-NN, hop edges, gudhi; ``monitor_scale.old_route``), and prints
for each recipe how many (epoch, layer, class) Betti numbers were compared and how many differ.

Usage:
    python benchmarks/monitor_equality.py --data-root ../shared/data
"""

from __future__ import annotations

import sys
from pathlib import Path

import lightning.pytorch as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for ``common`` and ``monitor_scale`` when imported

from common import Parser, recipe_in_temp_logs  # noqa: E402
from monitor_scale import old_route  # noqa: E402

from lightning_topo.callbacks import BettiMonitor  # noqa: E402


class OldRoute(pl.Callback):
    """At each of the monitor's measurements, the old route's numbers on the same probe and weights."""

    def __init__(self, monitor: BettiMonitor) -> None:
        self.monitor, self.found = monitor, {}

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        monitor = self.monitor
        if (trainer.current_epoch + 1) % monitor.every_n_epochs:
            return
        x, y = monitor.probe
        topology = monitor.topology
        self.found[trainer.current_epoch] = old_route(
            pl_module, x, y, monitor.watched_layers, topology["k"], topology["scale"], topology["max_dim"], 256
        )


def compare(recipe: str, overrides: list[str]) -> None:
    with recipe_in_temp_logs(recipe, *overrides) as cli:
        monitor = next(c for c in cli.trainer.callbacks if isinstance(c, BettiMonitor))
        if recipe == "fashion_mnist":
            monitor.every_n_epochs = 1
        old = OldRoute(monitor)
        cli.trainer.callbacks.append(old)
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    compared = differ = 0
    examples = []
    for entry in monitor.history:
        reference = old.found[entry["epoch"]]
        for layer, per_class in reference.items():
            for cls, values in per_class.items():
                compared += 1
                new = entry["betti"].get(layer, {}).get(cls)
                if new != values:
                    differ += 1
                    examples.append((entry["epoch"], layer, cls, values, new))
    print(
        f"\n== {recipe}: {len(monitor.history)} measurements, {len(monitor.watched_layers)} layers; "
        f"{compared} (epoch, layer, class) Betti numbers compared with the old route: {differ} differ"
        + (f" {examples[:5]}" if examples else " (identical)"),
        flush=True,
    )


def main() -> None:
    parser = Parser(__doc__)
    parser.with_data_root()
    parser.add_argument("--recipes", nargs="+", default=["d1_circles", "fashion_mnist"])
    args = parser.parse_args()
    for recipe in args.recipes:
        if recipe == "fashion_mnist":
            overrides = [
                "--trainer.max_epochs=2",
                f"--data.root={args.data_root}",
                "--data.download=false",
            ]
        else:
            overrides = []
        compare(recipe, overrides)


if __name__ == "__main__":
    main()
