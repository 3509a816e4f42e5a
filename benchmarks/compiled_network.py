"""The monitor on a ``torch.compile``'d network: what its passes cost with and without running the network eagerly.

The monitor runs every pass on the probe under ``torch.compiler.set_stance("force_eager")``
(``lightning_topo.monitoring.hooks.eager``). Without it, the probe's batch went through the compiled network: the
monitor's forward hooks, on modules inside it, were traced into its graph (Dynamo compiled the monitor's own
distance code), and the probe's batch size compiled graphs of its own. This script fits the same network on D-I
(the synthetic circles set, 2 classes) three ways, in one run, with the package's MLP (three hidden ReLU layers of
``--width``; its ``features`` compiled where it is):

(a) the plain network, monitored;
(b) the network compiled (``--backend``, default inductor), monitored as shipped;
(c) the same compiled network, monitored with the eager stance switched off (``hooks.eager`` made a no-op),
    the code before it.

A one-epoch plain fit first warms up the process (lazy imports, allocator pools); Dynamo is reset before each fit.

Printed for each: the layers watched, every measurement's seconds (``betti/seconds``: the monitor's compute, its
first measurement included) and the time the training loop was blocked, Dynamo's counters over the fit (unique
graphs, graph breaks, recompilations), the layers skipped, and whether the Betti numbers (of every layer) equal the
plain network's.

Usage:
    python benchmarks/compiled_network.py [--backend inductor] [--epochs 3] [--width 64]
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Iterator
from typing import Any

import lightning.pytorch as pl
import torch
from common import Parser
from torch.utils.data import DataLoader, TensorDataset

from lightning_topo.callbacks import BettiMonitor
from lightning_topo.data.synthetic import make_d1
from lightning_topo.models import MLPClassifier
from lightning_topo.monitoring import capture, clouds, hooks, trace

PASSES = (hooks, trace, capture, clouds)  # the modules that enter hooks.eager() around a pass on the probe


def network(width: int, compile_backend: str | None = None) -> MLPClassifier:
    """The package's MLP, 2-width-width-width-2 with ReLU; its hidden layers ``torch.compile``'d with the backend."""
    torch.manual_seed(0)
    model = MLPClassifier(in_features=2, num_classes=2, hidden=(width,) * 3, activation="relu", lr=0.01)
    if compile_backend is not None:
        model.features = torch.compile(model.features, backend=compile_backend)
    return model


@contextlib.contextmanager
def eager_stance(on: bool) -> Iterator[None]:
    """``hooks.eager`` as shipped (``on``), or a no-op in every module that calls it: the code before it."""
    saved = {module: module.eager for module in PASSES}
    if not on:
        for module in PASSES:
            module.eager = contextlib.nullcontext
    try:
        yield
    finally:
        for module, original in saved.items():
            module.eager = original


def fit(label: str, model: MLPClassifier, data: DataLoader, epochs: int, eager: bool) -> dict[str, Any]:
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    pl.seed_everything(0, verbose=False)
    monitor = BettiMonitor(probe_size=1000, k=14, log_figure=False, num_workers=0)
    trainer = pl.Trainer(
        accelerator="cpu", max_epochs=epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, callbacks=[monitor],
    )  # fmt: skip
    start = time.perf_counter()
    with eager_stance(eager):
        trainer.fit(model, data)
    wall = time.perf_counter() - start
    stats = dict(counters["stats"])
    seconds = [entry["seconds"] for entry in monitor.history]
    blocked = [entry["blocked_seconds"] for entry in monitor.history]
    skipped = sorted({layer for entry in monitor.history for layer in (entry.get("skipped") or {})})
    print(f"== {label}", flush=True)
    print(f"fit wall time {wall:.1f} s; {len(monitor.history)} measurements of {len(monitor.watched_layers)} layers")
    print(f"  watched: {', '.join(monitor.watched_layers)}")
    print("  seconds per measurement: " + ", ".join(f"{s:.3f}" for s in seconds))
    print("  blocked per measurement: " + ", ".join(f"{s:.3f}" for s in blocked))
    print(
        f"  dynamo: {stats.get('unique_graphs', 0)} unique graphs, {sum(counters['graph_break'].values())} graph "
        f"breaks, {sum(counters['recompiles'].values()) if 'recompiles' in counters else 0} recompilations"
    )
    print(f"  layers skipped in some measurement: {skipped or 'none'}")
    return {"history": monitor.history, "seconds": seconds}


def main() -> None:
    parser = Parser(__doc__)
    parser.add_argument("--backend", default="inductor", help="torch.compile backend (default: inductor)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per fit (one measurement each)")
    parser.add_argument("--width", type=int, default=64, help="hidden width of the 4-layer ReLU network")
    args = parser.parse_args()
    x, y = make_d1(seed=0)
    data = DataLoader(TensorDataset(torch.as_tensor(x).float(), torch.as_tensor(y).long()), batch_size=512)
    print(f"D-I: {len(y)} points; network 2-{args.width}-{args.width}-{args.width}-2 (ReLU); backend {args.backend}")
    fit("warm-up (untimed: lazy imports, allocator pools)", network(args.width), data, 1, eager=True)
    plain = fit("(a) plain network", network(args.width), data, args.epochs, eager=True)
    compiled = {}
    for label, title, eager in (
        ("(b)", "compiled, monitored eagerly (as shipped)", True),
        ("(c)", "compiled, eager stance off (before)", False),
    ):
        compiled[label] = fit(f"{label} {title}", network(args.width, args.backend), data, args.epochs, eager=eager)
    print("== summary")
    for label, run in compiled.items():
        same = [
            {layer.replace("_orig_mod.", ""): numbers for layer, numbers in mine["betti"].items()} == theirs["betti"]
            for mine, theirs in zip(run["history"], plain["history"])
        ]
        print(
            f"{label}: first measurement {run['seconds'][0]:.3f} s, later median "
            f"{statistics.median(run['seconds'][1:] or run['seconds']):.3f} s; Betti numbers equal to (a)'s: {same}"
        )
    print(
        f"(a): first measurement {plain['seconds'][0]:.3f} s, later median "
        f"{statistics.median(plain['seconds'][1:] or plain['seconds']):.3f} s"
    )


if __name__ == "__main__":
    main()
