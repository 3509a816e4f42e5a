"""Betti numbers of every layer at EQUAL epochs: ReLU, the fold (``proposed``) and tanh, measured by BettiMonitor.

``convergence.py`` measures each run's Betti numbers when it stops, and fold runs stop much earlier than ReLU
runs, so its end-of-run comparison sets the two activations at different points of training (issue 11). This
sibling script reuses its sets, data and training protocol (``SETS``, ``load_data``, the plain full-batch loop
over ``MLPClassifier``'s network) but trains every activation of a set for the SAME number of epochs
(``TRAJECTORY_EPOCHS``, fixed per set before any run: at least ReLU's median epochs to 100% in convergence.md,
or the budget where ReLU does not converge), never stops at 100% (the epoch where 100% is first reached is
recorded, so the later curve is marked), and every ``--every`` epochs measures every layer with
``BettiMonitor.compute`` (the monitor's own route, synchronous) at the set's protocol k, on the same per-class
points convergence.py uses for its Betti numbers.

Every run's history goes to ``benchmarks/results/trajectories/<set>/<activation>_s<seed>.json`` as soon as it
ends (finished runs are skipped on rerun), and ``--report-only`` rebuilds ``benchmarks/results/trajectories.md``,
``trajectories.png`` (the collapse against the epoch) and ``trajectories_<set>_<activation>.png`` (the monitor's
per-layer heat maps for one seed) from those files alone.

Example:
    Train D-I (3 activations x 5 seeds, 1,000 epochs each, a measurement every 50), then rebuild the report::

        nice -n 19 python benchmarks/trajectories.py --sets d1 --every 50 --workers 1
        python benchmarks/trajectories.py --report-only
"""

from __future__ import annotations

import json
import math
import os
import re
import statistics
import sys
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # common.py, convergence.py and candidates.py, when run as a script

from common import Parser, training_steps, write_json  # noqa: E402
from convergence import (  # noqa: E402
    LARGE_SET,
    RESULTS,
    SETS,
    SetConfig,
    layer_outputs,
    load_data,
    load_runs,
    summarise,
)

TRAJECTORIES = RESULTS / "trajectories"
#: Epochs every activation of a set trains for, chosen before the runs from convergence.md's ReLU medians (of the
#: first runs, build unrecorded): D-I 583 -> 1,000; D-II 1,657 -> 2,000; D-III (ReLU 0/5 within 6,000) -> the budget;
#: 169 disks -> the budget.
TRAJECTORY_EPOCHS: dict[str, int] = {"d1": 1000, "d2": 2000, "d3": 6000, LARGE_SET: 12000}
ACTIVATIONS = ("relu", "proposed", "tanh")
CANDIDATE, BASELINE = "proposed", "relu"
#: What convergence.py's runs call each activation (its search registered the fold as ``fold``).
END_OF_RUN_NAME = {"proposed": "fold"}
LABELS = {"proposed": "fold (proposed)", "relu": "ReLU", "tanh": "tanh"}
CLASS_A = "0"
SKIPPED_LAYERS = ("input", "logits")


# ------------------------------------------------------------------------------------------- training
def probe_indices(labels: Any, cfg: SetConfig) -> Any:
    """The points convergence.py measures: per class, all of them or its seeded subsample (``betti_points``)."""
    import numpy as np

    from lightning_topo.topology.betti import subsample_per_class

    groups = subsample_per_class(labels, cfg.betti_points, seed=0)
    return np.concatenate([groups[c] for c in sorted(groups)])


def make_monitor(model: Any, x: Any, y: Any, cfg: SetConfig) -> Any:
    """A BettiMonitor set up outside a Trainer: probe ``(x, y)``, every activation and the logits, plus the input.

    Example:
        >>> import torch
        >>> from lightning_topo.models import MLPClassifier
        >>> model = MLPClassifier(2, 2, hidden=(4, 4))
        >>> x, y = torch.randn(40, 2), torch.arange(40) % 2
        >>> make_monitor(model, x, y, SETS["d1"]).watched_layers
        ['input', 'features.layer1.act', 'features.layer2.act', 'logits']
    """
    from lightning_topo.callbacks import BettiMonitor

    monitor = BettiMonitor(
        layers=None, dims=tuple(range(cfg.max_dim + 1)), k=cfg.k, num_workers=0, log_figure=False, probe_size=len(y)
    )
    monitor.set_probe(x, y, model=model)
    return monitor


def _network(set_name: str, activation: str, seed: int, device: str) -> tuple[SetConfig, Any, Any, Any]:
    """The set's data and a freshly initialised network (seeded, built on the CPU, then moved to ``device``)."""
    import torch
    from convergence import _register_candidates

    from lightning_topo.models import MLPClassifier

    torch.set_num_threads(1)
    _register_candidates()
    cfg = SETS[set_name]
    x, y = load_data(cfg)
    torch.manual_seed(seed)
    model = MLPClassifier(x.shape[1], 2, hidden=cfg.hidden, activation=activation, lr=cfg.lr)
    return cfg, x.to(device), y.to(device), model.to(device)  # initialised on the CPU: same weights everywhere


def recheck(path: Path) -> str:
    """Retrain a stored run to its end without measuring (the loop is deterministic and the monitor only reads the
    model), confirm that the monitor measures the stored last numbers again, and store both route checks."""
    import torch

    record = json.loads(path.read_text())
    if record["diverged_at"] is not None:
        return f"{path}: diverged, nothing to check"
    cfg, x, y, model = _network(record["set"], record["activation"], record["seed"], "cpu")
    _, _, acc = deque(training_steps(model, x, y, cfg, record["epochs"]), maxlen=1)[0]  # run to the end
    idx = torch.as_tensor(probe_indices(y, cfg))
    monitor = make_monitor(model, x[idx], y[idx], cfg)
    last = record["history"][-1]["betti"]
    again = monitor.compute(model, epoch=record["epochs"], step=record["epochs"])["betti"]
    if again != last or abs(acc - record["final_acc"]) > 1e-6:
        return (
            f"{path}: NOT reproduced on this machine (final acc {acc:.5f} vs {record['final_acc']:.5f}); left as it is"
        )
    record.update(route_checks(model, x, y, idx, cfg, monitor, last))
    path.write_text(json.dumps(record, indent=None, separators=(",", ":")))
    return f"{path}: route check {record['route_check']}, full-batch check {record['full_batch_check']}"


def run_trajectory(
    set_name: str, activation: str, seed: int, epochs: int, every: int, device: str = "cpu"
) -> dict[str, Any]:
    """Train one network for exactly ``epochs`` full-batch steps, measuring every layer every ``every`` steps."""
    import torch

    from lightning_topo.activations import get_activation

    cfg, x, y, model = _network(set_name, activation, seed, device)
    idx = torch.as_tensor(probe_indices(y.cpu(), cfg), device=device)
    monitor = make_monitor(model, x[idx], y[idx], cfg)
    history, accuracy, first_100, diverged, measure_s = [], [], None, None, 0.0
    start = time.perf_counter()
    for step, logits, acc in training_steps(model, x, y, cfg, epochs):
        if first_100 is None and acc == 1.0:
            first_100 = step
        if not torch.isfinite(logits).all():
            diverged = step
            break
        if step % every == 0 or step == epochs:  # the end is always measured
            tick = time.perf_counter()
            history.append(monitor.compute(model, epoch=step, step=step))
            measure_s += time.perf_counter() - tick
            accuracy.append(round(acc, 5))
    total_s = time.perf_counter() - start

    checks = route_checks(model, x, y, idx, cfg, monitor, history[-1]["betti"]) if diverged is None else {}
    return {
        "set": set_name,
        "activation": activation,
        "activation_class": type(get_activation(activation)).__name__,
        "seed": seed,
        "config": asdict(cfg),
        "epochs": epochs,
        "every": every,
        "first_100": first_100,
        "diverged_at": diverged,
        "final_acc": acc,
        "acc": accuracy,
        "layers": monitor.watched_layers,
        "dims": list(monitor.dims),
        "probe_points": {str(int(c)): int((y[idx] == c).sum()) for c in torch.unique(y[idx])},
        "history": history,
        "route_check": checks.get("route_check", False),
        "full_batch_check": checks.get("full_batch_check", False),
        "seconds": round(total_s, 2),
        "monitor_seconds": round(measure_s, 2),
        "torch_threads": 1,
        "device": torch.cuda.get_device_name(0) if device.startswith("cuda") else "cpu",
    }


def route_checks(
    model: Any, x: Any, y: Any, idx: Any, cfg: SetConfig, monitor: Any, last: dict[str, Any]
) -> dict[str, bool]:
    """Does the monitor's last measurement equal convergence.py's route (numpy k-d tree, ``betti_numbers``)?

    ``route_check``: on the very outputs the monitor measured (each class's probe points forwarded in chunks of
    the monitor's ``batch_size``), so it compares the topology routes alone. ``full_batch_check``: on
    convergence.py's one full-batch forward pass. float32 outputs depend in the last bit on the batch's make-up
    (on D-II, tanh seed 0, 957 of 2,250 class-b logits moved by up to 1e-6), and that can reorder near-tied
    neighbours and move beta_1 and beta_2 (there (1, 1, 3) against (1, 2, 2)), so only the first is a route test.
    """
    import torch

    from lightning_topo.topology import betti_numbers, betti_numbers_per_class

    def same(layer: str, cls: Any, numbers: Any) -> bool:
        return last.get(layer, {}).get(str(int(cls))) == list(numbers)

    px, py = x[idx], y[idx]
    per_class = True
    for c in torch.unique(py):
        members = px[py == c]
        chunks = [
            layer_outputs(model, members[s : s + monitor.batch_size])
            for s in range(0, len(members), monitor.batch_size)
        ]
        for layer, parts in zip(monitor.watched_layers, zip(*chunks)):
            cloud = torch.cat(parts).cpu()
            per_class &= same(layer, c, betti_numbers(cloud, k=cfg.k, max_dim=cfg.max_dim))
    full = True
    for layer, o in zip(monitor.watched_layers, layer_outputs(model, x)):
        ref = betti_numbers_per_class(o.cpu(), y.cpu(), k=cfg.k, max_points=cfg.betti_points, max_dim=cfg.max_dim)
        full &= all(same(layer, c, ref[c]) for c in ref)
    return {"route_check": bool(per_class), "full_batch_check": bool(full)}


def run_path(set_name: str, activation: str, seed: int, root: Path = TRAJECTORIES) -> Path:
    return root / set_name / f"{activation}_s{seed}.json"


def _job(args: tuple[str, str, int, int, int, str]) -> str:
    set_name, activation, seed, epochs, every, device = args
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    record = run_trajectory(set_name, activation, seed, epochs, every, device)
    path = run_path(set_name, activation, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    write_json(tmp, record, indent=None, separators=(",", ":"))  # with this run's provenance
    tmp.replace(path)
    curve = run_curve(record)
    return (
        f"{set_name} {activation:9s} seed {seed}: 100% at {record['first_100']}, final acc {record['final_acc']:.4f}, "
        f"collapse beta_0 {curve['beta0'][0]:.2f} -> {curve['beta0'][-1]:.2f}, {record['seconds']:.0f} s "
        f"({record['monitor_seconds']:.0f} s measuring), route check {'ok' if record['route_check'] else 'FAILED'}"
    )


# ------------------------------------------------------------------------------------------- numbers
def load_trajectories(root: Path = TRAJECTORIES) -> list[dict[str, Any]]:
    """Every stored run under ``root/<set>/*.json``."""
    return [json.loads(p.read_text()) for p in sorted(root.glob("*/*.json"))]


def hidden_layers(record: dict[str, Any]) -> list[str]:
    return [name for name in record["layers"] if name not in SKIPPED_LAYERS]


def collapse(entry: dict[str, Any], layers: list[str], total: bool = False, cls: str = CLASS_A) -> float:
    """Mean over ``layers`` of class ``cls``'s beta_0 (or sum of all Betti numbers) relative to the input's.

    1 means nothing glued; 1/beta_0(input) means every layer made the class one component. Layers the monitor
    skipped (NaN activations) are left out of the mean; NaN if none is left.

    Example:
        >>> entry = {"betti": {"input": {"0": [9, 0]}, "h1": {"0": [9, 0]}, "h2": {"0": [3, 1]}}}
        >>> collapse(entry, ["h1", "h2"]), collapse(entry, ["h1", "h2"], total=True)
        (0.6666666666666666, 0.7222222222222222)
    """
    betti = entry["betti"]

    def value(layer: str) -> float:
        numbers = betti[layer][cls]
        return float(sum(numbers) if total else numbers[0])

    base = value("input")
    ratios = [value(layer) / base for layer in layers if cls in betti.get(layer, {})]
    return statistics.fmean(ratios) if ratios else math.nan


def run_curve(record: dict[str, Any]) -> dict[str, list[float]]:
    """A run's measured epochs with its beta_0 and all-Betti collapse at each."""
    layers = hidden_layers(record)
    history = record["history"]
    return {
        "epoch": [e["epoch"] for e in history],
        "beta0": [collapse(e, layers) for e in history],
        "total": [collapse(e, layers, total=True) for e in history],
    }


def median_first_100(records: list[dict[str, Any]]) -> float:
    """Median epoch of first 100% training accuracy over seeds; a seed that never got there counts as infinite."""
    return statistics.median(math.inf if r["first_100"] is None else r["first_100"] for r in records)


def fixed_epochs(by_activation: dict[str, list[dict[str, Any]]]) -> list[tuple[str, int]]:
    """The epochs the table compares at: 100, the fold's and ReLU's median epoch to 100% (the next measured
    epoch at or after it; left out when the median run never gets there), and the end. Sorted, one label each."""
    any_run = next(iter(by_activation.values()))[0]
    end, every = any_run["epochs"], any_run["every"]
    points: dict[int, list[str]] = {}

    def add(epoch: float, label: str) -> None:
        if math.isfinite(epoch):
            snapped = min(end, every * math.ceil(epoch / every))
            points.setdefault(snapped, []).append(label)

    add(100, "epoch 100")
    for activation in (CANDIDATE, BASELINE):
        if activation in by_activation:
            m = median_first_100(by_activation[activation])
            add(m, f"{LABELS[activation]} median to 100% ({m:g})")
    add(end, "end")
    return [(", ".join(labels), epoch) for epoch, labels in sorted(points.items())]


def spread(values: list[float]) -> dict[str, float]:
    """Median, min and max of the finite values (NaN if none)."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return {"median": math.nan, "min": math.nan, "max": math.nan, "n": 0}
    return {"median": statistics.median(finite), "min": min(finite), "max": max(finite), "n": len(finite)}


def at_epoch(records: list[dict[str, Any]], epoch: int, total: bool = False) -> dict[str, float]:
    """Median and min-max over seeds of the collapse at a measured ``epoch`` (runs without it are left out)."""
    values = []
    for r in records:
        curve = run_curve(r)
        if epoch in curve["epoch"]:
            values.append(curve["total" if total else "beta0"][curve["epoch"].index(epoch)])
    return spread(values)


def verdict(
    by_activation: dict[str, list[dict[str, Any]]], epochs: list[tuple[str, int]], total: bool = False
) -> tuple[str, list[bool]]:
    """The rule: the fold's Betti numbers fall faster AT EQUAL EPOCHS when its median collapse is strictly below
    ReLU's at every fixed epoch; slower when strictly above at every one; otherwise mixed (ties included).

    Returns the word ("faster", "slower", "mixed" or "n/a") and, per fixed epoch, whether the fold was lower.
    """
    if CANDIDATE not in by_activation or BASELINE not in by_activation:
        return "n/a", []
    fold = [at_epoch(by_activation[CANDIDATE], e, total)["median"] for _, e in epochs]
    relu = [at_epoch(by_activation[BASELINE], e, total)["median"] for _, e in epochs]
    lower = [f < r for f, r in zip(fold, relu)]
    higher = [f > r for f, r in zip(fold, relu)]
    if any(math.isnan(v) for v in fold + relu):
        return "n/a", lower
    if all(lower):
        return "faster", lower
    if all(higher):
        return "slower", lower
    return "mixed", lower


def collapse_epochs(records: list[dict[str, Any]]) -> dict[str, float]:
    """Per hidden layer, the median over seeds of the first measured epoch at which class a's beta_0 is 1 there
    (infinite for a seed where it never is)."""
    layers = hidden_layers(records[0])
    out = {}
    for layer in layers:
        firsts = []
        for r in records:
            hit = [e["epoch"] for e in r["history"] if e["betti"].get(layer, {}).get(CLASS_A, [None])[0] == 1]
            firsts.append(hit[0] if hit else math.inf)
        out[layer] = statistics.median(firsts)
    return out


def short(layer: str) -> str:
    """``features.layer3.act`` -> ``layer3``."""
    found = re.search(r"layer\d+", layer)
    return found.group(0) if found else layer


def _num(v: float, digits: int = 2) -> str:
    return "n/a" if not math.isfinite(v) else f"{v:.{digits}f}"


def _cell(s: dict[str, float]) -> str:
    return "n/a" if s["n"] == 0 else f"{_num(s['median'])} ({_num(s['min'])}-{_num(s['max'])})"


def order_sentence(records: list[dict[str, Any]]) -> str:
    """Which hidden layers reach beta_0(a) = 1 first, by median epoch, and how many never do."""
    firsts = collapse_epochs(records)
    reached = sorted(((e, layer) for layer, e in firsts.items() if math.isfinite(e)), key=lambda t: t[0])
    never = [short(layer) for layer, e in firsts.items() if not math.isfinite(e)]
    if not reached:
        return "no hidden layer reaches beta_0(a) = 1 on the median seed"
    first = ", ".join(f"{short(layer)} (epoch {e:g})" for e, layer in reached[:3])
    rest = f"; never on the median seed: {', '.join(never)}" if never else ""
    return f"first {first}{rest}"


def spread_overlap(
    fold: list[dict[str, Any]], relu: list[dict[str, Any]], epochs: list[tuple[str, int]]
) -> tuple[float, int]:
    """The largest gap between the two medians of the beta_0 collapse over the fixed epochs, and at how many of
    them the two min-max ranges over seeds overlap (a gap inside the seeds' spread is weak evidence)."""
    gaps, overlaps = [], 0
    for _, e in epochs:
        f, r = at_epoch(fold, e), at_epoch(relu, e)
        gaps.append(abs(f["median"] - r["median"]))
        overlaps += f["min"] <= r["max"] and r["min"] <= f["max"]
    return max(gaps, default=math.nan), overlaps


def set_paragraph(set_name: str, by_activation: dict[str, list[dict[str, Any]]], epochs: list[tuple[str, int]]) -> str:
    """One paragraph from the numbers: the verdict at equal epochs and which layers collapse first."""
    if CANDIDATE not in by_activation or BASELINE not in by_activation:
        return f"**{set_name}**: no verdict (needs runs of both {BASELINE} and {CANDIDATE})."
    v0, lower0 = verdict(by_activation, epochs)
    vt, lower_t = verdict(by_activation, epochs, total=True)
    fold, relu = by_activation[CANDIDATE], by_activation[BASELINE]
    pairs = "; ".join(
        f"epoch {e}: {_num(at_epoch(fold, e)['median'])} vs {_num(at_epoch(relu, e)['median'])}" for _, e in epochs
    )
    words = {
        "faster": "falls faster than ReLU's at every one of the fixed epochs",
        "slower": "falls slower than ReLU's at every one of the fixed epochs",
        "mixed": f"is below ReLU's at {sum(lower0)} of {len(lower0)} fixed epochs only, so neither falls faster "
        "throughout",
        "n/a": "cannot be compared (a fixed epoch is missing from some runs)",
    }
    words_total = {
        "faster": "the fold lower at every fixed epoch",
        "slower": "the fold higher at every fixed epoch",
        "mixed": f"the fold lower at {sum(lower_t)} of {len(lower_t)} fixed epochs",
        "n/a": "no comparison",
    }
    gap, overlap = spread_overlap(fold, relu, epochs)
    orders = "; ".join(f"{LABELS.get(a, a)}: {order_sentence(rs)}" for a, rs in by_activation.items())
    counts = sorted({len(rs) for rs in by_activation.values()})
    seeds = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
    return (
        f"**{set_name}** ({seeds} seeds per activation). At equal epochs, the fold's hidden-layer beta_0 of class a "
        f"(relative to the input's, median over seeds) {words[v0]} (verdict: **{v0}**; fold vs ReLU, {pairs}). "
        f"The largest gap between the two medians is {gap:.2f} of the input's beta_0, and the fold's and ReLU's "
        f"min-max ranges over seeds overlap at {overlap} of {len(epochs)} fixed epochs. "
        f"Counting all Betti numbers of class a: **{vt}** ({words_total[vt]}). Layers reaching beta_0(a) = 1 "
        f"(median epoch over seeds): {orders}."
    )


# ------------------------------------------------------------------------------------------- report
def group(records: list[dict[str, Any]]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """``{set: {activation: [runs by seed]}}``, sets in ``TRAJECTORY_EPOCHS`` order, activations in ACTIVATIONS'."""
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for r in sorted(records, key=lambda r: r["seed"]):
        out.setdefault(r["set"], {}).setdefault(r["activation"], []).append(r)
    order = list(TRAJECTORY_EPOCHS)
    rank = {a: i for i, a in enumerate(ACTIVATIONS)}
    return {
        s: dict(sorted(out[s].items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0])))
        for s in sorted(out, key=lambda s: (order.index(s) if s in order else len(order), s))
    }


def newest_batch(set_name: str, name: str, end_runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """convergence.py's runs of ``set_name`` and activation ``name`` (its name there) in the newest batch that has
    them: the cell (``<set>``, or a tagged rerun ``<set>@<tag>``) whose runs carry the latest provenance date, runs
    without provenance counting as the oldest. Batches are never pooled: their builds may differ.

    Example:
        >>> old = {"set": "d1", "activation": "fold", "seed": 0, "epochs": 102}
        >>> new = dict(old, cell="d1@t", epochs=114, provenance={"date": "2026-12-04T15:50:53Z"})
        >>> [r["epochs"] for r in newest_batch("d1", "fold", [old, new])]
        [114]
    """
    cells: dict[str, list[dict[str, Any]]] = {}
    for r in end_runs:
        if r["set"] == set_name and r["activation"] == name:
            cells.setdefault(r.get("cell", r["set"]), []).append(r)
    if not cells:
        return []
    return cells[max(cells, key=lambda c: max(r.get("provenance", {}).get("date", "") for r in cells[c]))]


def _batch_label(runs: list[dict[str, Any]]) -> str:
    """The batch's cell name and build: torch version and date of its runs, or "build unrecorded"."""
    cell = runs[0].get("cell", runs[0]["set"])
    recorded = [r["provenance"] for r in runs if "provenance" in r]
    if len(recorded) < len(runs):
        return f"{cell} (build unrecorded)" if not recorded else f"{cell} (build partly unrecorded)"
    torch = sorted({p["versions"].get("torch", "?") for p in recorded})
    dates = sorted(p["date"][:10] for p in recorded)
    return f"{cell} (torch {'/'.join(torch)}, {dates[0]}{'' if dates[0] == dates[-1] else ' to ' + dates[-1]})"


def end_of_run_rows(set_name: str, activations: list[str], end_runs: list[dict[str, Any]]) -> list[str]:
    """convergence.md's end-of-run comparison for this set (Betti numbers where each run stopped), each activation
    from its newest batch of runs (:func:`newest_batch`), named in the last column."""
    names = {END_OF_RUN_NAME.get(a, a): a for a in activations}
    batches = {name: runs for name in names if (runs := newest_batch(set_name, name, end_runs))}
    if not batches:
        return ["(no end-of-run runs of this set under benchmarks/results/runs/)"]
    rows = [
        "| activation | seeds | at 100% | epochs median (where it stopped) | collapse beta_0 | collapse all | "
        "batch of runs (build) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, activation in names.items():
        if name in batches:
            c = next(iter(summarise(batches[name]).values()))
            rows.append(
                f"| {LABELS.get(activation, activation)} | {c['n']} | {c['converged']}/{c['n']} | {c['median']:g} | "
                f"{c['collapse']:.2f} | {c['collapse_total']:.2f} | {_batch_label(batches[name])} |"
            )
    return rows


def same_first_100(record: dict[str, Any], end_runs: list[dict[str, Any]]) -> bool | None:
    """Whether convergence.py's run of the same set, activation and seed (in the newest batch of such runs,
    :func:`newest_batch`) reached 100% at the same epoch (both trainings are the same deterministic loop; the
    monitor only reads the model). ``None`` without such a run.

    Example:
        >>> run = {"set": "d1", "activation": "fold", "seed": 0, "epochs": 102, "converged": True}
        >>> same_first_100({"set": "d1", "activation": "proposed", "seed": 0, "first_100": 102, "epochs": 1000}, [run])
        True
    """
    name = END_OF_RUN_NAME.get(record["activation"], record["activation"])
    match = [r for r in newest_batch(record["set"], name, end_runs) if r["seed"] == record["seed"]]
    if not match:
        return None
    other = match[0]
    if other["converged"] and other["epochs"] <= record["epochs"]:
        return record["first_100"] == other["epochs"]
    return record["first_100"] is None  # the other run got there later than this one's end, or never


def route_cell(records: list[dict[str, Any]]) -> str:
    """``same outputs; full batch`` pass counts. Runs made before the two checks were told apart (no
    ``full_batch_check`` field) ran the full-batch one under the name ``route_check``; they count there only."""
    split = [r for r in records if "full_batch_check" in r]
    same = f"{sum(r['route_check'] for r in split)}/{len(split)}" if split else "n/a"
    full = sum(r["full_batch_check"] if "full_batch_check" in r else r["route_check"] for r in records)
    return f"{same}; {full}/{len(records)}"


def set_section(set_name: str, by_activation: dict[str, list[dict[str, Any]]], end_runs: list[dict[str, Any]]) -> str:
    """The Markdown of one set: conditions, the table at fixed epochs, collapse order, verdict, end-of-run table."""
    epochs = fixed_epochs(by_activation)
    first = next(iter(by_activation.values()))[0]
    cfg = first["config"]
    points = " and ".join(f"{n} (class {'ab'[int(c)] if c in '01' else c})" for c, n in first["probe_points"].items())
    lines = [
        f"## {set_name}",
        "",
        f"{cfg['dataset']} with {cfg['units']} units, {cfg['n_points']} points, hidden {len(cfg['hidden'])}x"
        f"{cfg['hidden'][0]}, scaling {cfg['scaling']}, Adam lr {cfg['lr']} halved every {cfg['lr_halve_every']} "
        f"steps; every activation trained {first['epochs']} epochs, measured every {first['every']} epochs by "
        f"BettiMonitor.compute at k={cfg['k']} on {points} points (all of each class, or convergence.py's per-class "
        f"subsample), homology dimensions {', '.join(map(str, first['dims']))}; trained and measured on "
        f"{', '.join(sorted({r.get('device', 'cpu') for rs in by_activation.values() for r in rs}))}.",
        "",
        "| activation | seeds | at 100%: seeds, first epoch (median, a seed that never got there counting as "
        "infinite; min-max of those that did) | same epoch to 100% as convergence.py's "
        "stored run of the seed (*) | final acc (median) | monitor == convergence.py's route at the end: same outputs; "
        "full-batch outputs (**) | seconds per run (median; "
        "measuring) |",
        "|---|---|---|---|---|---|---|",
    ]
    for a, rs in by_activation.items():
        firsts = [r["first_100"] for r in rs if r["first_100"] is not None]
        reached = f"{len(firsts)}/{len(rs)}"
        when = f"{median_first_100(rs):g}; {min(firsts)}-{max(firsts)}" if firsts else "never"
        same = [same_first_100(r, end_runs) for r in rs]
        compared = [v for v in same if v is not None]
        same_cell = f"{sum(compared)}/{len(compared)}" if compared else "no run to compare"
        lines.append(
            f"| {LABELS.get(a, a)} | {len(rs)} | {reached}, {when} | {same_cell} | "
            f"{statistics.median(r['final_acc'] for r in rs):.4f} | {route_cell(rs)} | "
            f"{statistics.median(r['seconds'] for r in rs):.0f}; {statistics.median(r['monitor_seconds'] for r in rs):.0f} |"
        )
    lines += [
        "",
        "(*) Both are the same deterministic loop (the monitor only reads the model), so a mismatch means the stored "
        "run followed another training path: full-batch training amplifies float rounding differences, and a "
        "stored run may come from another machine or build. Each activation is compared with the newest batch of "
        "convergence.py's runs that has it, named with its build in the END-OF-RUN table below. The epochs to 100% "
        "that go with the numbers below are this table's.",
        "",
        "(**) Same outputs: the monitor's numbers against the numpy route on the very outputs it measured (each "
        "class forwarded in the monitor's batches): a test of the topology route. Full-batch: against convergence.py's "
        "one forward pass of the whole set, whose float32 outputs differ in the last bit with the batch's make-up; "
        "near-tied neighbours can then swap and beta_1 or beta_2 move (seen on D-II's tanh logits), so a mismatch "
        "there measures that sensitivity, not the route.",
        "",
        "Hidden-layer mean of class a's Betti numbers relative to the input's (1 = nothing glued; lower = fallen "
        "further), median (min-max) over seeds, at the same epochs for every activation:",
        "",
        "| epoch | why this epoch | "
        + " | ".join(f"{LABELS.get(a, a)}: beta_0 | {LABELS.get(a, a)}: all" for a in by_activation)
        + " |",
        "|---|---|" + "---|---|" * len(by_activation),
    ]
    reference = [("initialisation (a reference row, not in the verdict)", 0)] if 0 not in [e for _, e in epochs] else []
    for label, e in reference + epochs:
        cells = " | ".join(
            f"{_cell(at_epoch(rs, e))} | {_cell(at_epoch(rs, e, total=True))}" for rs in by_activation.values()
        )
        lines.append(f"| {e} | {label} | {cells} |")
    layers = hidden_layers(first)
    lines += [
        "",
        "First measured epoch at which each hidden layer has beta_0(a) = 1 (median over seeds; `-`: not on the "
        "median seed):",
        "",
        "| activation | " + " | ".join(short(layer) for layer in layers) + " |",
        "|---|" + "---|" * len(layers),
    ]
    for a, rs in by_activation.items():
        firsts = collapse_epochs(rs)
        lines.append(
            f"| {LABELS.get(a, a)} | "
            + " | ".join(f"{firsts[layer]:g}" if math.isfinite(firsts[layer]) else "-" for layer in layers)
            + " |"
        )
    lines += [
        "",
        set_paragraph(set_name, by_activation, epochs),
        "",
        "Earlier END-OF-RUN comparison (convergence.md: Betti numbers measured where each run stopped, at 100% or "
        "the budget, so at different epochs per activation; kept for comparison, not at equal epochs):",
        "",
        *end_of_run_rows(set_name, list(by_activation), end_runs),
        "",
    ]
    return "\n".join(lines)


SET_NAMES = {"d1": "D-I", "d2": "D-II", "d3": "D-III", LARGE_SET: "169 disks"}


def summary_rows(grouped: dict[str, dict[str, list[dict[str, Any]]]]) -> list[str]:
    """One Markdown row per (set, fixed epoch): each activation's median beta_0 collapse, the verdicts on the
    set's first row (the README quotes these rows). Columns: set, epoch (why), one per activation, verdicts."""
    rows = []
    for set_name, by in grouped.items():
        epochs = fixed_epochs(by)
        verdicts = f"**{verdict(by, epochs)[0]}**; {verdict(by, epochs, total=True)[0]}"
        for i, (label, e) in enumerate([("initialisation", 0), *epochs]):
            cells = " | ".join(_num(at_epoch(by[a], e)["median"]) if a in by else "-" for a in ACTIVATIONS)
            name = SET_NAMES.get(set_name, set_name) if i == 0 else ""
            last = "(reference, not in the verdict)" if i == 0 else (verdicts if i == 1 else "")
            rows.append(f"| {name} | {e} ({label}) | {cells} | {last} |")
    return rows


def write_report(
    root: Path = TRAJECTORIES, out: Path = RESULTS, end_runs: list[dict[str, Any]] | None = None, figures: bool = True
) -> str:
    """Rebuild ``out/trajectories.md``, ``out/trajectories.png`` and the heat maps from the JSON under ``root``."""
    records = load_trajectories(root)
    if not records:
        raise SystemExit(f"no trajectory runs under {root}; train first (python benchmarks/trajectories.py --sets d1)")
    grouped = group(records)
    end_runs = load_runs(RESULTS) if end_runs is None else end_runs
    text = "\n".join(
        [
            "# Betti numbers at equal epochs (generated by `python benchmarks/trajectories.py --report-only`)",
            "",
            "Every activation of a set trains for the same number of epochs (fixed per set before the runs), never "
            "stopping at 100% training accuracy; BettiMonitor measures every layer every few epochs. `beta_0` = mean "
            "over the hidden layers of class a's beta_0 relative to the input's; `all` = the same with the sum of "
            "all Betti numbers of class a; per run, then median (min-max) over seeds. Verdict rule (in code, "
            "`verdict`): the fold falls faster at equal epochs when its median is strictly below ReLU's at every "
            "fixed epoch, slower when strictly above at every one, otherwise mixed. Plot: `trajectories.png` (median "
            "line, min-max band; dashed after the activation's median epoch to 100%); heat maps of one seed: "
            "`trajectories_<set>_<activation>.png`.",
            "",
            "## Summary",
            "",
            "Hidden-layer mean of class a's beta_0 relative to the input's, median over seeds; verdicts for beta_0 "
            "and for all Betti numbers (the Mechanism page quotes this table):",
            "",
            "| set | epoch (why) | " + " | ".join(LABELS[a] for a in ACTIVATIONS) + " | fold vs ReLU at equal "
            "epochs: beta_0; all Betti numbers |",
            "|---|---|" + "---|" * len(ACTIVATIONS) + "---|",
            *summary_rows(grouped),
            "",
            *[set_section(s, by, end_runs) for s, by in grouped.items()],
        ]
    )
    (out / "trajectories.md").write_text(text)
    if figures:
        plot_collapse(grouped, out / "trajectories.png")
        for s, by in grouped.items():
            for a, rs in by.items():
                heat_map(rs[0], out / f"trajectories_{s}_{a}.png")
    return text


def plot_collapse(grouped: dict[str, dict[str, list[dict[str, Any]]]], path: Path) -> None:
    """Collapse against the epoch, one line per activation (median over seeds, min-max band), per set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(grouped), 2, figsize=(10, 3.4 * len(grouped)), squeeze=False)
    colours = {"relu": "tab:gray", "proposed": "tab:blue", "tanh": "tab:orange"}
    for i, (s, by) in enumerate(grouped.items()):
        epochs = fixed_epochs(by)
        for j, (key, name) in enumerate((("beta0", "beta_0"), ("total", "all Betti numbers"))):
            ax = axes[i, j]
            for a, rs in by.items():
                curves = [run_curve(r) for r in rs]
                grid = sorted(set.intersection(*(set(c["epoch"]) for c in curves)))
                values = [[c[key][c["epoch"].index(e)] for c in curves] for e in grid]
                stats = [spread(v) for v in values]
                med = [st["median"] for st in stats]
                colour = colours.get(a)
                stop = median_first_100(rs)
                joint = min((e for e in grid if e >= stop), default=math.inf)  # first measured epoch at 100%
                solid = [k for k, e in enumerate(grid) if e <= joint]
                after = [k for k, e in enumerate(grid) if e >= joint]
                line = ax.plot([grid[k] for k in solid], [med[k] for k in solid], lw=1.4, color=colour)[0]
                colour = line.get_color()
                ax.plot([grid[k] for k in after], [med[k] for k in after], lw=1.4, ls="--", color=colour)
                ax.fill_between(
                    grid, [st["min"] for st in stats], [st["max"] for st in stats], color=colour, alpha=0.15, lw=0
                )
                ax.plot([], [], color=colour, label=f"{LABELS.get(a, a)} ({len(rs)} seeds)")
            for _, e in epochs:
                ax.axvline(e, color="k", lw=0.5, ls=":")
            ax.set_title(f"{SET_NAMES.get(s, s)}: hidden-layer mean of {name} of class a / input's", fontsize=8)
            ax.set_xlabel("epoch (dashed: after the median epoch to 100%; dotted: the table's epochs)", fontsize=7)
            ax.set_ylim(bottom=0)
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def heat_map(record: dict[str, Any], path: Path, max_columns: int = 26) -> Path:
    """The monitor's own per-layer heat map of one run (columns thinned to at most ``max_columns`` epochs)."""
    from lightning_topo.monitoring.figures import plot_history

    history = record["history"]
    stride = max(1, math.ceil(len(history) / max_columns))
    shown = history[::stride] + ([history[-1]] if (len(history) - 1) % stride else [])
    title = (
        f"{record['set']}, {LABELS.get(record['activation'], record['activation'])}, seed {record['seed']}: "
        f"100% at epoch {record['first_100']}"
    )
    return plot_history(shown, path, layers=record["layers"], dims=record["dims"], dpi=80, title=title)


def main(argv: list[str] | None = None) -> None:
    parser = Parser(__doc__)
    parser.add_argument("--sets", nargs="+", default=["d1"], choices=list(TRAJECTORY_EPOCHS))
    parser.add_argument("--activations", nargs="+", default=list(ACTIVATIONS))
    parser.with_seeds([0, 1, 2, 3, 4])
    parser.add_argument("--every", type=int, default=50, help="measure every this many epochs (50 or 100)")
    parser.add_argument("--workers", type=int, default=1, help="parallel training processes (each single-threaded)")
    parser.with_device(help="where to train: cpu, or cuda")
    parser.add_argument("--report-only", action="store_true", help="rebuild the report from stored JSON, no training")
    parser.add_argument("--force", action="store_true", help="retrain runs that already have a JSON file")
    parser.add_argument(
        "--recheck", action="store_true", help="retrain stored runs without measuring and refresh their route checks"
    )
    args = parser.parse_args(argv)
    if args.every < 1:
        parser.error(f"--every must be a positive number of epochs, got {args.every}")
    if args.recheck:
        for path in sorted(
            p for s in args.sets for a in args.activations for p in (TRAJECTORIES / s).glob(f"{a}_s*.json")
        ):
            print(recheck(path), flush=True)
    elif not args.report_only:
        from convergence import _register_candidates

        from lightning_topo.activations import get_activation

        _register_candidates()
        for a in args.activations:
            get_activation(a)  # fail before training on an unknown name
        jobs = [
            (s, a, seed, TRAJECTORY_EPOCHS[s], args.every, args.device)
            for s in args.sets
            for seed in args.seeds
            for a in args.activations
            if args.force or not run_path(s, a, seed).exists()
        ]
        print(f"{len(jobs)} runs to train", flush=True)
        if args.workers <= 1:
            for j in jobs:
                print(_job(j), flush=True)
        else:
            import multiprocessing

            context = multiprocessing.get_context("spawn" if args.device.startswith("cuda") else None)
            with ProcessPoolExecutor(max_workers=args.workers, mp_context=context) as pool:
                for fut in as_completed([pool.submit(_job, j) for j in jobs]):
                    print(fut.result(), flush=True)
    print(write_report())


if __name__ == "__main__":
    main()
