"""Convergence benchmark: epochs to 100% training accuracy per activation, and Betti numbers per layer.

Trains the same MLP (``lightning_topo.models.MLPClassifier``'s own network, driven by a plain
full-batch PyTorch loop because Lightning's per-step overhead dominates one-step epochs) with every
activation of a list, over several seeds, on the synthetic sets. Everything but the activation is
fixed per set: architecture, PyTorch's default initialisation (seeded), full-batch Adam with one
learning rate and one step schedule, input scaling, data sample and epoch budget.

For each run it records the number of full-batch Adam steps after which the whole training set is
classified correctly (a run that never gets there within the budget counts as the budget) and, at
the end of training, the Betti numbers of class a and class b after every layer (input, each hidden
activation, logits) with the topology core's k-NN hop protocol at the set's calibrated k.

Every run is stored as JSON under ``benchmarks/results/runs/<set>/<activation>_s<seed>.json`` as soon
as it ends (finished runs are skipped when the command is run again), with a ``provenance`` record (date,
commit, command, machine, package versions; runs stored before 2026-12-04 lack it and are reported as
"build unrecorded"); ``--tag TAG`` stores a batch under ``runs/<set>@TAG/`` instead (a rerun on another
build), reported as a set of its own and never pooled with the set's other runs. Every printout starts
with the provenance header. The Markdown table (with a provenance line per set) and PNG plot are rebuilt
from those files, so ``--report-only`` regenerates them without training.

Example:
    Train (long: spread over 2 processes, niced), then rebuild the table and plot::

        nice -n 19 python benchmarks/convergence.py --sets d1 d2 d3 d1_large \\
            --activations relu leaky_relu tanh sigmoid proposed --seeds 0 1 2 3 4 --workers 2
        python benchmarks/convergence.py --report-only
"""

from __future__ import annotations

import json
import multiprocessing
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))  # for ``candidates`` and ``common`` when run as a script

from common import Parser, training_steps, write_json  # noqa: E402


@dataclass(frozen=True)
class SetConfig:
    """One benchmark cell's fixed conditions (identical for every activation)."""

    dataset: str
    units: int
    n_points: int
    hidden: tuple[int, ...]
    budget: int
    scaling: str  # "none" or "maxabs" (divide every coordinate by the largest absolute value)
    k: int
    betti_points: int | None  # per-class subsample for the Betti numbers (None: every point)
    max_dim: int
    lr: float = 0.01
    lr_halve_every: int = 2500
    data_seed: int = 0


def _disks_169(width: int, scaling: str, lr: float, lr_halve_every: int) -> SetConfig:
    """The 169-disk set (8,000 points, 9 hidden layers, 12,000 epochs, Betti k=8) at one width and optimiser setting."""
    return SetConfig("d1", 169, 8000, (width,) * 9, 12000, scaling, 8, None, 1, lr=lr, lr_halve_every=lr_halve_every)


#: The sets of the comparison. Widths, budgets and point counts were chosen (for all activations alike)
#: so that ReLU converges on most seeds, making the factor measurable; see the README section.
SETS: dict[str, SetConfig] = {
    "d1": SetConfig("d1", 9, 2600, (15,) * 9, 6000, "none", 14, None, 1),
    "d2": SetConfig("d2", 9, 4500, (25,) * 9, 6000, "none", 35, None, 2),
    "d3": SetConfig("d3", 9, 6300, (25,) * 9, 6000, "none", 20, None, 2),
    "d1_large": SetConfig("d1", 169, 8000, (25,) * 9, 12000, "none", 8, None, 1),
    "d1_large_w50": SetConfig("d1", 169, 8000, (50,) * 9, 12000, "none", 8, None, 1),
    # probes of the input scaling (one seed): max-abs scaling stalls ReLU on D-II and D-III
    "d2_maxabs": SetConfig("d2", 9, 4500, (25,) * 9, 6000, "maxabs", 35, None, 2),
    "d3_maxabs": SetConfig("d3", 9, 6300, (25,) * 9, 6000, "maxabs", 20, None, 2),
    # probes for a > 150 configuration where ReLU converges (chosen by ReLU's result alone, 2 seeds each):
    # other input scaling, learning rate, width and step schedule on the 169-disk set
    **{
        name: _disks_169(width, scaling, lr, halve_every)
        for name, (width, scaling, lr, halve_every) in {
            "d1_169_w50_maxabs": (50, "maxabs", 0.01, 2500),
            "d1_169_w50_maxabs_lr3e-3": (50, "maxabs", 0.003, 2500),
            "d1_169_w50_lr3e-3": (50, "none", 0.003, 2500),
            "d1_169_w100": (100, "none", 0.01, 2500),
            "d1_169_w100_maxabs_lr3e-3": (100, "maxabs", 0.003, 2500),
            "d1_169_w50_maxabs_lr1e-3": (50, "maxabs", 0.001, 2500),
            "d1_169_w100_lr3e-3": (100, "none", 0.003, 2500),
            "d1_169_w25_maxabs": (25, "maxabs", 0.01, 2500),
            "d1_169_w50_lr3e-3_h5000": (50, "none", 0.003, 5000),
            "d1_169_w100_lr3e-3_h5000": (100, "none", 0.003, 5000),
            "d1_169_w50_lr1e-3": (50, "none", 0.001, 2500),
            "d1_169_w100_lr1e-3": (100, "none", 0.001, 2500),
            "d1_169_w50_lr3e-3_const": (50, "none", 0.003, 12000),
            "d1_169_w100_lr3e-3_const": (100, "none", 0.003, 12000),
            "d1_169_w100_lr2e-3_h5000": (100, "none", 0.002, 5000),
            "d1_169_w50_lr5e-3_h5000": (50, "none", 0.005, 5000),
        }.items()
    },
}


def best_baseline_probe(prefix: str, results: Path = RESULTS, baseline: str = "relu") -> str:
    """The set named ``prefix*`` on which ``baseline`` did best: most seeds converged, then fewest median
    epochs, then highest median final accuracy. Chosen by the baseline's runs alone, before any other
    activation is trained on it, so the choice cannot favour the candidate."""
    cells: dict[str, list[dict[str, Any]]] = {}
    for r in load_runs(results):
        if r["cell"].startswith(prefix) and r["activation"] == baseline:
            cells.setdefault(r["cell"], []).append(r)
    if not cells:
        raise SystemExit(f"no {baseline} runs on sets named {prefix}*")
    return max(
        cells,
        key=lambda s: (
            sum(r["converged"] for r in cells[s]),
            -statistics.median(r["epochs"] for r in cells[s]),
            statistics.median(r["final_acc"] for r in cells[s]),
        ),
    )


#: The search's winner (the registry's ``"proposed"`` once integrated) and the activations drawn in the Betti panels.
WINNER = "fold"
BETTI_PLOT = ("relu", WINNER, "leaky_relu", "tanh", "sigmoid")
#: The set with Betti numbers > 150 of the comparison: the probe on which ReLU did best
#: (``--pick-probe d1_169``, chosen from ReLU's runs alone before any other activation ran on it).
LARGE_SET = "d1_169_w100_lr2e-3_h5000"
PLOT_SETS = ("d1", "d2", "d3", "d1_large_w50", LARGE_SET)  # scaling and ReLU-only probes stay in the tables only


def _register_candidates() -> None:
    """Make the search's extra activations (``benchmarks/candidates.py``) known to the registry."""
    import candidates  # noqa: F401  (registers on import)


def load_data(cfg: SetConfig) -> tuple[Any, Any]:
    """The set's training points (float32 tensor, scaled) and labels (int64 tensor)."""
    import torch

    from lightning_topo.data.synthetic import make_dataset

    x, y = make_dataset(cfg.dataset, units=cfg.units, n_points=cfg.n_points, seed=cfg.data_seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    if cfg.scaling == "maxabs":
        xt = xt / xt.abs().max()
    elif cfg.scaling != "none":
        raise ValueError(f"scaling must be 'none' or 'maxabs', got {cfg.scaling!r}")
    return xt, yt


def layer_outputs(model: Any, x: Any) -> list[Any]:
    """The input, every hidden block's output and the logits of an MLPClassifier, in eval mode without gradients."""
    import torch

    model.eval()
    outputs, h = [x], x
    with torch.no_grad():
        for block in model.features:
            h = block(h)
            outputs.append(h)
        outputs.append(model.head(h))
    return outputs


def run_one(
    set_name: str, activation: str, seed: int, cfg: SetConfig, device: str = "cpu", tag: str = ""
) -> dict[str, Any]:
    """Train one network to 100% training accuracy (or the budget) on ``device``; return the run's record.

    The record's ``provenance`` (:func:`common.provenance`: date, commit, command, machine, versions) says
    which build made it; ``tag`` (``--tag``), when given, names the batch of runs it belongs to."""
    import torch

    from lightning_topo.models import MLPClassifier
    from lightning_topo.topology import betti_numbers_per_class

    torch.set_num_threads(1)
    _register_candidates()
    x, y = load_data(cfg)
    torch.manual_seed(seed)
    model = MLPClassifier(x.shape[1], 2, hidden=cfg.hidden, activation=activation, lr=cfg.lr)
    x, y, model = x.to(device), y.to(device), model.to(device)  # initialised on the CPU: same weights everywhere
    start = time.perf_counter()
    epochs, best_acc, acc, curve = None, 0.0, 0.0, []
    for step, logits, acc in training_steps(model, x, y, cfg, cfg.budget):  # acc: after `step` updates
        best_acc = max(best_acc, acc)
        if step % 100 == 0:
            curve.append(round(acc, 5))
        if acc == 1.0:
            epochs = step
            break
        if not torch.isfinite(logits).all():
            break
    train_s = time.perf_counter() - start

    # Betti numbers after every layer, per class, at the end of training.
    outputs = layer_outputs(model, x)
    betti: dict[str, list[list[int]]] = {"a": [], "b": []}
    for out in outputs:
        if not torch.isfinite(out).all():
            betti["a"].append([]), betti["b"].append([])
            continue
        per_class = betti_numbers_per_class(
            out.cpu(), y.cpu(), k=cfg.k, max_points=cfg.betti_points, max_dim=cfg.max_dim
        )
        betti["a"].append(list(per_class[0]))
        betti["b"].append(list(per_class[1]))
    return {
        "set": set_name,
        "activation": activation,
        "seed": seed,
        "config": asdict(cfg),
        "converged": epochs is not None,
        "epochs": epochs if epochs is not None else cfg.budget,
        "final_acc": acc,
        "best_acc": best_acc,
        "acc_every_100": curve,
        "train_seconds": round(train_s, 2),
        "betti": betti,
        "layers": ["input", *[f"layer{i}" for i in range(1, len(cfg.hidden) + 1)], "head"],
        "torch_threads": 1,
        "device": torch.cuda.get_device_name(0) if device.startswith("cuda") else "cpu",
        **({"tag": tag} if tag else {}),
    }


def cell_name(set_name: str, tag: str = "") -> str:
    """A set's run directory and report row: ``<set>`` for untagged runs, ``<set>@<tag>`` for a tagged batch (a
    rerun on another build), so that runs of different batches never share a directory or a median."""
    return f"{set_name}@{tag}" if tag else set_name


def run_path(set_name: str, activation: str, seed: int, results: Path = RESULTS, tag: str = "") -> Path:
    return results / "runs" / cell_name(set_name, tag) / f"{activation}_s{seed}.json"


def _job(args: tuple[str, str, int, str, str]) -> str:
    set_name, activation, seed, device, tag = args
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    record = run_one(set_name, activation, seed, SETS[set_name], device, tag)
    path = run_path(set_name, activation, seed, tag=tag)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    write_json(tmp, record)  # with this run's provenance
    tmp.replace(path)
    return (
        f"{cell_name(set_name, tag):9s} {activation:16s} seed {seed}: epochs {record['epochs']:6d} "
        f"{'ok' if record['converged'] else 'NOT converged'} (acc {record['final_acc']:.4f}, "
        f"{record['train_seconds']:.0f}s) betti a {record['betti']['a'][0]}->{record['betti']['a'][-2]}"
    )


# ------------------------------------------------------------------------------------------- report
def load_runs(results: Path = RESULTS) -> list[dict[str, Any]]:
    """Every stored run, each with ``cell`` (:func:`cell_name`: its set, plus ``@tag`` for a tagged batch) and
    ``file`` (its path under ``results``) added. Runs stored before provenance was recorded load as they are."""
    runs = []
    for p in sorted((results / "runs").glob("*/*.json")):
        r = json.loads(p.read_text())
        r["cell"] = cell_name(r["set"], r.get("tag", ""))
        r["file"] = p.relative_to(results).as_posix()
        runs.append(r)
    return runs


def summarise(runs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (cell, activation): median/min/max epochs (budget for non-converged), converged count, mean Betti. A
    cell is a set, or a tagged batch of it (``d1@torch2.14.1``): runs of different batches are never pooled."""
    cells: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in runs:
        cells.setdefault((r.get("cell", r["set"]), r["activation"]), []).append(r)
    out = {}
    for key, rs in cells.items():
        epochs = [r["epochs"] for r in rs]
        mean_betti = {}
        for cls in ("a", "b"):
            layers = [list(col) for col in zip(*[r["betti"][cls] for r in rs])]
            mean_betti[cls] = [
                statistics.fmean(v[0] for v in col if v) if any(col) else float("nan") for col in layers
            ]  # beta_0 per layer, mean over seeds
        out[key] = {
            "n": len(rs),
            "median": statistics.median(epochs),
            "min": min(epochs),
            "max": max(epochs),
            "converged": sum(r["converged"] for r in rs),
            "budget": rs[0]["config"]["budget"],
            "beta0": mean_betti,
            "beta_sum_a": [
                statistics.fmean(sum(r["betti"]["a"][i]) for r in rs if r["betti"]["a"][i])
                for i in range(len(rs[0]["betti"]["a"]))
            ],
            "beta_sum_b": [
                statistics.fmean(sum(r["betti"]["b"][i]) for r in rs if r["betti"]["b"][i])
                for i in range(len(rs[0]["betti"]["b"]))
            ],
            "final_acc_median": statistics.median(r["final_acc"] for r in rs),
        }
        # collapse: mean over hidden layers of beta_0(a) / beta_0(a) of the input (1 = nothing glued, 1/b0 = all glued)
        b0a = mean_betti["a"]
        out[key]["collapse"] = statistics.fmean(v / b0a[0] for v in b0a[1:-1])
        # the same with all Betti numbers of class a (beta_0 + beta_1 [+ beta_2]) instead of beta_0 alone
        total = out[key]["beta_sum_a"]
        out[key]["collapse_total"] = statistics.fmean(v / total[0] for v in total[1:-1])
    return out


def _committed(results: Path) -> dict[str, tuple[str, str]]:
    """``{file under results: (commit, date)}`` of the last commit that touched each stored run (git's record, for
    runs that do not record their own provenance); empty outside a git checkout."""
    import subprocess

    try:
        out = subprocess.run(
            ["git", "log", "--format=%x00%h %cs", "--name-only", "--", "runs"],
            cwd=results,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
        prefix = subprocess.run(
            ["git", "rev-parse", "--show-prefix"], cwd=results, capture_output=True, text=True, timeout=60
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {}
    found: dict[str, tuple[str, str]] = {}
    for block in out.split("\0")[1:]:
        head, *names = block.strip().splitlines()
        commit, date = head.split()
        for name in names:
            if name.strip():
                found.setdefault(name.strip().removeprefix(prefix), (commit, date))
    return found


def _build(record: dict[str, Any]) -> str:
    """A run's build in words, from its ``provenance``."""
    prov = record["provenance"]
    v = prov["versions"]
    packages = ", ".join(
        f"{name} {v[name]}" for name in ("torch", "lightning", "gudhi", "numpy", "python") if name in v
    )
    return f"{packages}; commit {prov['commit']}"


def provenance_text(runs: list[dict[str, Any]], committed: dict[str, tuple[str, str]]) -> str:
    """How ``runs`` were made (build, date range, device), and which of them lack a provenance record."""
    recorded = [r for r in runs if "provenance" in r]
    missing = [r for r in runs if "provenance" not in r]
    parts = []
    if recorded:
        builds = sorted({_build(r) for r in recorded})
        dates = sorted(r["provenance"]["date"] for r in recorded)
        machines = sorted(
            {
                f"{r.get('device', 'cpu')} ({r['provenance']['cpu_count']}-core {r['provenance']['cpu']})"
                for r in recorded
            }
        )
        parts.append(
            f"{len(recorded)} run(s) recorded: build {' / '.join(builds)}; made {dates[0]} to {dates[-1]}; "
            f"device {', '.join(machines)}"
        )
    if missing:
        devices = sorted({r.get("device", "unrecorded (CPU: predates --device)") for r in missing})
        stored = sorted({committed[r["file"]] for r in missing if r["file"] in committed})
        when = (
            "made on or before "
            + max(date for _, date in stored)
            + f" (stored by commit {', '.join(commit for commit, _ in stored)})"
            if stored
            else "date unrecorded"
        )
        which = ", ".join(sorted(f"{r['activation']} s{r['seed']}" for r in missing)) if recorded else "all"
        threads = ", ".join(sorted({str(r.get("torch_threads", "?")) for r in missing}))
        parts.append(
            f"{len(missing)} run(s) without provenance ({which}): **build unrecorded** (versions and commit "
            f"unknown; torch threads {threads}); {when}; device {', '.join(devices)}"
        )
    return "; ".join(parts)


def _factor(base: dict[str, Any] | None, cell: dict[str, Any]) -> str:
    """ReLU median / activation median; a censored median (= the budget) makes it a bound."""
    if base is None:
        return "n/a"
    f = base["median"] / max(cell["median"], 1)
    base_censored = base["median"] >= base["budget"]
    cell_censored = cell["median"] >= cell["budget"]
    if base_censored and cell_censored:
        return "n/a (both at budget)"
    if base_censored:
        return f">= {f:.2f} (ReLU at budget)"
    if cell_censored:
        return f"<= {f:.2f} (at budget)"
    return f"{f:.2f}"


def _fmt(values: list[float]) -> str:
    return " ".join(f"{v:.1f}".rstrip("0").rstrip(".") for v in values)


def write_report(results: Path = RESULTS, baseline: str = "relu") -> str:
    """Rebuild ``results/convergence.md`` and ``results/convergence.png`` from the stored runs."""
    runs = load_runs(results)
    if not runs:
        raise SystemExit(f"no runs under {results / 'runs'}; train first")
    summary = summarise(runs)
    set_of = {r["cell"]: r["set"] for r in runs if r["set"] in SETS}
    order = list(SETS)
    cells = sorted(set_of, key=lambda c: (order.index(set_of[c]), c))
    activations_of = {s: {a for (ss, a) in summary if ss == s} for s in cells}
    probes = [s for s in cells if activations_of[s] == {baseline}]  # baseline-only probes of a configuration
    sets = [s for s in cells if s not in probes]
    committed = _committed(results)
    texts = {s: provenance_text([r for r in runs if r["cell"] == s], committed) for s in [*sets, *probes]}
    provenance_lines = [f"- **{s}**: {texts[s]}" for s in sets]
    for text in dict.fromkeys(texts[s] for s in probes):  # the probes, grouped by identical provenance
        provenance_lines.append(f"- **{', '.join(s for s in probes if texts[s] == text)}** (probes): {text}")
    lines = [
        "| set | activation | seeds | converged | epochs median | min-max | factor vs ReLU (median) | final acc (median) | "
        "collapse beta_0 | collapse all | mean beta_0(a) per layer | mean beta_0(b) per layer |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in sets:
        base = summary.get((s, baseline))
        acts = sorted((a for (ss, a) in summary if ss == s), key=lambda a: (a != baseline, summary[(s, a)]["median"]))
        for a in acts:
            c = summary[(s, a)]
            factor = "1 (baseline)" if a == baseline else _factor(base, c)
            lines.append(
                f"| {s} | {a} | {c['n']} | {c['converged']}/{c['n']} | {c['median']:g} | {c['min']}-{c['max']} | {factor} | "
                f"{c['final_acc_median']:.4f} | {c['collapse']:.2f} | {c['collapse_total']:.2f} | {_fmt(c['beta0']['a'])} | {_fmt(c['beta0']['b'])} |"
            )
    conditions = [
        f"- **{s}**: {c.dataset} with {c.units} units, {c.n_points} points, hidden {len(c.hidden)}x"
        f"{c.hidden[0]}, scaling {c.scaling}, budget {c.budget} epochs, Adam lr {c.lr} halved every "
        f"{c.lr_halve_every} steps, Betti k={c.k} on {c.betti_points or 'all'} points per class"
        + (f" (the conditions of {set_of[s]}, rerun as the batch {s.split('@', 1)[1]!r})" if "@" in s else "")
        for s in sets
        for c in [SETS[set_of[s]]]
    ]
    probe_lines = [
        "| probe set | conditions | ReLU seeds at 100% | final acc (median, min-max) |",
        "|---|---|---|---|",
    ] + [
        f"| {s} | {c.units} units, {c.n_points} points, 9x{c.hidden[0]}, scaling {c.scaling}, lr "
        f"{c.lr} halved every {c.lr_halve_every}, budget {c.budget} | "
        f"{summary[(s, baseline)]['converged']}/{summary[(s, baseline)]['n']} | {summary[(s, baseline)]['final_acc_median']:.4f} "
        f"({min(r['final_acc'] for r in runs if r['cell'] == s):.4f}-{max(r['final_acc'] for r in runs if r['cell'] == s):.4f}) |"
        for s in probes
        for c in [SETS[set_of[s]]]
    ]
    _register_candidates()
    from candidates import REASONS

    tried = sorted({a for (_, a) in summary})
    reasons = ["| activation | why it is a candidate |", "|---|---|"] + [
        f"| {a}{' (winner)' if a == WINNER else ''} | {REASONS.get(a, '').replace('|', chr(92) + '|')} |" for a in tried
    ]
    text = "\n".join(
        [
            "# Epochs to 100% training accuracy, per activation (generated by benchmarks/convergence.py)",
            "",
            "A seed that never reaches 100% within the budget counts as the budget. `factor` = ReLU median / activation median;"
            " A median equal to the budget is censored, so the factor is then only a bound."
            " Betti numbers are measured at the end of training (input, 9 hidden activations, logits), mean over seeds;"
            " `collapse beta_0` = mean over the hidden layers of beta_0(a) relative to the input's (lower = Betti numbers fall"
            " faster across layers); `collapse all` = the same with the sum of all Betti numbers of class a.",
            "",
            *conditions,
            "",
            *lines,
            "",
            "## How the runs were made (provenance)",
            "",
            "Per set (a row name with `@tag` is a tagged batch, e.g. a rerun on another build: its runs are never pooled"
            " with the set's other runs). Build, dates and machine come from each run's `provenance` record; runs stored"
            " before runs recorded it say so, with the git commit that stored them (their date is then only an upper"
            " bound) and their `device` field where they have one (runs without it were written before the script had"
            " `--device`, when it trained on the CPU only).",
            "",
            *provenance_lines,
            "",
            "## Probes for the set with Betti numbers > 150 (ReLU only, 2 seeds each)",
            "",
            f"The comparison's > 150 set ({LARGE_SET}) is the probe on which ReLU did best (most seeds at 100%, then"
            " fewest epochs, then highest final accuracy: `--pick-probe d1_169`), picked before any other activation was"
            " trained on it.",
            "",
            *probe_lines,
            "",
            "## Candidates (one-line reasons)",
            "",
            *reasons,
            "",
        ]
    )
    (results / "convergence.md").write_text(text)
    _plot(summary, [s for s in sets if set_of[s] in PLOT_SETS], results / "convergence.png", baseline)
    return text


def _plot(summary: dict, sets: list[str], path: Path, baseline: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(sets), figsize=(3.6 * len(sets), 6.4), squeeze=False)
    for j, s in enumerate(sets):
        acts = sorted((a for (ss, a) in summary if ss == s), key=lambda a: (a != baseline, summary[(s, a)]["median"]))
        ax = axes[0, j]
        med = [summary[(s, a)]["median"] for a in acts]
        lo = [m - summary[(s, a)]["min"] for m, a in zip(med, acts)]
        hi = [summary[(s, a)]["max"] - m for m, a in zip(med, acts)]
        ax.bar(
            range(len(acts)),
            med,
            yerr=[lo, hi],
            capsize=2,
            color=["tab:gray" if a == baseline else "tab:blue" for a in acts],
        )
        ax.axhline(summary[(s, acts[0])]["budget"], color="red", lw=0.8, ls="--")
        ax.set_xticks(range(len(acts)))
        ax.set_xticklabels(acts, rotation=60, ha="right", fontsize=7)
        ax.set_title(f"{s}: epochs to 100% (median, min-max)", fontsize=8)
        ax = axes[1, j]
        for a in [a for a in BETTI_PLOT if a in acts]:
            ax.plot(summary[(s, a)]["beta0"]["a"], marker=".", lw=1, label=a)
        ax.set_xlabel("layer (0 = input, last = logits)", fontsize=7)
        ax.set_ylabel("mean beta_0 of class a", fontsize=7)
        ax.set_ylim(bottom=0)
        if j == 0:
            ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = Parser(__doc__, silent_when=["pick_probe"])  # a bare set name for the shell's $(...): no header
    parser.add_argument("--sets", nargs="+", default=["d1"], choices=sorted(SETS))
    parser.add_argument("--activations", nargs="+", default=["relu", "leaky_relu", "tanh", "sigmoid", "proposed"])
    parser.with_seeds([0, 1, 2, 3, 4])
    parser.add_argument("--workers", type=int, default=2, help="parallel training processes (each single-threaded)")
    parser.with_device(help="where to train: cpu, or cuda (worker processes share the GPU)")
    parser.add_argument(
        "--pick-probe", metavar="PREFIX", help="print the set named PREFIX* where ReLU did best, and exit"
    )
    parser.add_argument(
        "--report-only", action="store_true", help="rebuild table and plot from stored JSON, no training"
    )
    parser.add_argument("--force", action="store_true", help="retrain runs that already have a JSON file")
    parser.add_argument(
        "--tag",
        default="",
        help="store the runs under runs/<set>@TAG/ (a batch of its own in the report, e.g. a rerun on another build) "
        "instead of runs/<set>/",
    )
    args = parser.parse_args(argv)
    if args.pick_probe:
        print(best_baseline_probe(args.pick_probe))
        return
    if not args.report_only:
        _register_candidates()
        from lightning_topo.activations import get_activation

        for a in args.activations:
            get_activation(a)  # fail before training on an unknown name
        jobs = [
            (s, a, seed, args.device, args.tag)
            for s in args.sets
            for seed in args.seeds
            for a in args.activations
            if args.force or not run_path(s, a, seed, tag=args.tag).exists()
        ]
        print(f"{len(jobs)} runs to train", flush=True)
        context = multiprocessing.get_context("spawn" if args.device.startswith("cuda") else None)  # CUDA cannot fork
        with ProcessPoolExecutor(max_workers=args.workers, mp_context=context) as pool:
            for fut in as_completed([pool.submit(_job, j) for j in jobs]):
                print(fut.result(), flush=True)
    print(write_report())


if __name__ == "__main__":
    main()
