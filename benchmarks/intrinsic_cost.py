"""What the intrinsic dimension adds to a monitor measurement: before (Betti numbers only) and after (with
``intrinsic_dimension=True``), interleaved in one run, on the same model and probe.

Two cases (issue 22, item 5; target: at most 5% more of either figure):
- the D-I recipe's 9x15 ReLU MLP and its probe (2,000 points, 2 classes, k=14, 11 watched layers);
- a torchvision ResNet-18 at 224 px, probe 500 random images (10 classes of 50), its ReLUs and logits, k=14.

Each repeat runs ``BettiMonitor.compute`` (synchronously: capture, distances, lists, Betti numbers) once without
and once with the dimension, alternating which goes first. Printed per case: the medians of the measurement's
wall time (``blocked_seconds``: what a synchronous training loop waits for) and of the monitor's compute seconds
(``betti/seconds``), and their ratios. Weights are random: the cost does not depend on training.

Usage:
    python benchmarks/intrinsic_cost.py | tee benchmarks/results/intrinsic_cost.txt
    python benchmarks/intrinsic_cost.py --cases d1 --repeats 5
"""

from __future__ import annotations

import os
import statistics

import torch
from common import Parser, fresh_compute

from lightning_topo.callbacks import BettiMonitor


def d1_case() -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor, dict]:
    from lightning_topo.data.synthetic import make_d1
    from lightning_topo.models import MLPClassifier
    from lightning_topo.monitoring import balanced_indices

    x, y = make_d1(seed=0)
    x, y = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y)
    idx = balanced_indices(y, 2000, seed=0)
    model = MLPClassifier(in_features=2, num_classes=2, activation="relu")
    return model, x[idx], y[idx], {"k": 14}


def resnet_case() -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor, dict]:
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10)
    x = torch.randn(500, 3, 224, 224)
    y = torch.arange(10).repeat_interleave(50)
    return model, x, y, {"k": 14}  # the default layers: the stem's and each block's ReLU, and the logits


CASES = {"d1": ("D-I recipe MLP, probe 2,000", d1_case), "resnet18": ("ResNet-18 224 px, probe 500", resnet_case)}


def measure(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, options: dict, with_id: bool) -> dict:
    monitor = BettiMonitor(num_workers=0, log_figure=False, intrinsic_dimension=with_id, **options)
    monitor.set_probe(x, y, model=model)
    entry = fresh_compute(monitor, model)
    return {"blocked": entry["blocked_seconds"], "compute": entry["seconds"], "entry": entry}


def main() -> None:
    parser = Parser(__doc__)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    for case in args.cases:
        title, build = CASES[case]
        model, x, y, options = build()
        model.eval()
        runs: dict[bool, list[dict]] = {False: [], True: []}
        measure(model, x, y, options, False)  # warm-up: first-call costs belong to neither side
        for repeat in range(args.repeats):
            for with_id in (False, True) if repeat % 2 == 0 else (True, False):
                runs[with_id].append(measure(model, x, y, options, with_id))
        before, after = runs[False], runs[True]
        assert all(r["entry"]["betti"] == before[0]["entry"]["betti"] for r in before + after), "Betti numbers moved"
        ids = after[-1]["entry"]["id"]
        layers = list(ids)
        print(
            f"== {title}: {len(layers)} layers, {args.repeats} repeats each, interleaved, load {os.getloadavg()[0]:.1f}"
        )
        for key, label in (
            ("blocked", "measurement wall time (blocked)"),
            ("compute", "monitor compute (betti/seconds)"),
        ):
            b = statistics.median(r[key] for r in before)
            a = statistics.median(r[key] for r in after)
            print(
                f"{label:34s} without ID {b:7.3f} s  with ID {a:7.3f} s  ratio {a / b:.3f}  "
                f"(runs: {', '.join(f'{r[key]:.3f}' for r in before)} | {', '.join(f'{r[key]:.3f}' for r in after)})"
            )
        print("Betti numbers identical with and without the dimension: yes")
        first, last = layers[0], layers[-1]
        print(f"ID by class at {first}: {ids[first]}; at {last}: {ids[last]}")


if __name__ == "__main__":
    main()
