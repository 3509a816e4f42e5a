"""Intrinsic dimension (TwoNN) of layer representations: the "hunchback" profile, its link to accuracy, the MLPs.

Issue 22, item 4. Three parts, each wrapped so that a failing part prints its traceback and the others still run:

1. **Profile across layers at the end of training** (Ansuini et al. 2019: the ID rises over the first layers, then
   falls towards the output). ``fmnist`` and ``cifar`` train the recipes' ``CNNClassifier``
   (``recipes/fashion_mnist.yaml``, ``recipes/cifar10.yaml``: model and data init_args read from the YAML, a plain
   Lightning Trainer for the recipe's ``max_epochs``, seed 0); ``resnet`` trains a timm ``resnet18`` (random init,
   10 classes) on the 32x32 CIFAR-10 images with the CIFAR recipe's data settings. Watched: the input, the blocks
   (``select_layers(model, "blocks", ...)``), the layer before the head (the pooled features: the last hidden
   layer) and the logits. The ID of each layer on a fixed class-balanced probe of test images: of the whole probe
   (all classes together, as Ansuini et al.) and the mean over classes of each class's ID.
2. **Last hidden layer's ID over training against test accuracy** (``fmnist``, ``cifar``): after every epoch, on
   the same probe, with the test accuracy; Spearman and Pearson correlations across epochs (n = epochs).
3. **D-I, D-II, D-III at equal epochs** (``mlp``): the MLPs of ``convergence.py`` / ``trajectories.py`` (same sets,
   configs, data and full-batch loop ``training_steps``), ReLU, the fold (``proposed``) and tanh, seeds 0-2; at fixed
   epochs, each layer's ID per class (class clouds, as the monitor measures), averaged over the classes.

Numbers go to ``<out>/intrinsic_profile.json`` (with the provenance record) and ``<out>/intrinsic_profile.png``.

Example:
    On one GPU (about 5 minutes), data carried to ``../shared/data``::

        PYTHONUNBUFFERED=1 python benchmarks/intrinsic_profile.py --device cuda --out benchmarks/results/intrinsic

    A CPU smoke run (a few minutes; not results)::

        python benchmarks/intrinsic_profile.py --quick --device cpu --out /tmp/intrinsic_quick
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
import traceback
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))  # common.py and convergence.py, when run as a script
if str(REPO) not in sys.path:
    sys.path.insert(1, str(REPO))  # lightning_topo from this checkout where it is not installed

from common import Parser, provenance, training_steps, write_json  # noqa: E402

PARTS = ("fmnist", "cifar", "resnet", "mlp")
#: Epochs at which part 3 measures, per set: from trajectories.py's TRAJECTORY_EPOCHS (D-I 1,000, D-II 2,000;
#: D-III capped at 3,000 of its 6,000 so that the part fits in about 4 minutes on one GPU).
MLP_EPOCHS = {"d1": (0, 100, 500, 1000), "d2": (0, 200, 1000, 2000), "d3": (0, 500, 1500, 3000)}
MLP_EPOCHS_QUICK = {"d1": (0, 50, 100), "d2": (0, 50, 100), "d3": (0, 50, 100)}
MLP_ACTIVATIONS = ("relu", "proposed", "tanh")
MLP_SEEDS = (0, 1, 2)


def log(message: str = "") -> None:
    print(message, flush=True)


# ------------------------------------------------------------------------------------------- the estimates
def safe_id(points: Any) -> float:
    """TwoNN of a cloud (any device), NaN when it cannot be estimated (fewer than 3 distinct points)."""
    from lightning_topo.topology.intrinsic import intrinsic_dimension

    try:
        return float(intrinsic_dimension(points))
    except ValueError:
        return math.nan


def _nanmean(values: list[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return statistics.fmean(kept) if kept else math.nan


def _nanmedian(values: list[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return statistics.median(kept) if kept else math.nan


def id_profile(
    outputs: dict[str, Any], labels: Any, whole: bool = True, max_per_class: int | None = None
) -> dict[str, dict[str, Any]]:
    """Per layer: ``all`` (the ID of the whole cloud; NaN unless ``whole``), ``per_class`` ({class: ID}) and
    ``class_mean`` (their mean); ``max_per_class`` keeps that many seeded random points of each class.

    Example:
        >>> import torch
        >>> x, y = torch.randn(60, 3), torch.arange(60) % 2
        >>> profile = id_profile({"a": x, "b": x @ torch.randn(3, 8)}, y)
        >>> list(profile), sorted(profile["a"])
        (['a', 'b'], ['all', 'class_mean', 'per_class'])
    """
    import torch

    labels = torch.as_tensor(labels).cpu()
    groups = {}
    for c in torch.unique(labels).tolist():
        idx = torch.nonzero(labels == c).flatten()
        if max_per_class is not None and len(idx) > max_per_class:
            g = torch.Generator().manual_seed(0)
            idx = idx[torch.randperm(len(idx), generator=g)[:max_per_class]]
        groups[str(c)] = idx
    result = {}
    for name, cloud in outputs.items():
        per_class = {c: safe_id(cloud[idx.to(cloud.device)]) for c, idx in groups.items()}
        result[name] = {
            "all": safe_id(cloud) if whole else math.nan,
            "per_class": per_class,
            "class_mean": _nanmean(list(per_class.values())),
        }
    return result


def rises_then_falls(ids: list[float], last_hidden: int) -> tuple[bool, str]:
    """Ansuini et al.'s hunchback: the maximum is neither the first nor the last layer, and the last hidden layer
    (index ``last_hidden``) is below it.

    Example:
        >>> rises_then_falls([5.0, 20.0, 12.0, 8.0, 3.0], last_hidden=3)[0]
        True
        >>> rises_then_falls([25.0, 20.0, 12.0, 8.0, 3.0], last_hidden=3)[0]
        False
    """
    values = [(-math.inf if math.isnan(v) else v) for v in ids]
    top = max(range(len(values)), key=values.__getitem__)
    inner = 0 < top < len(values) - 1
    below = values[last_hidden] < values[top]
    verdict = inner and below
    why = (
        f"max ID {values[top]:.1f} at layer index {top} of 0..{len(values) - 1} "
        f"({'inner' if inner else 'an end'}), last hidden layer {values[last_hidden]:.1f} "
        f"({'below' if below else 'not below'} the max)"
    )
    return verdict, why


# ------------------------------------------------------------------------------------------- image models
def recipe(name: str) -> dict[str, Any]:
    import yaml

    return yaml.safe_load((REPO / "recipes" / f"{name}.yaml").read_text())


def _class(path: str) -> Any:
    import importlib

    module, _, attr = path.rpartition(".")
    return getattr(importlib.import_module(module), attr)


def make_timm_resnet(num_classes: int, **optim: Any) -> Any:
    """timm's resnet18 (random init, no download) as a ClassifierModule (the package's metrics and optimiser)."""
    import timm

    from lightning_topo.models.base import ClassifierModule

    class TimmResNet18(ClassifierModule):
        def __init__(
            self,
            num_classes: int = 10,
            optimizer: str = "adam",
            lr: float = 1e-3,
            weight_decay: float = 0.0,
            lr_halve_every: int | None = None,
        ) -> None:
            super().__init__(num_classes, optimizer, lr, weight_decay, lr_halve_every)
            self.save_hyperparameters()
            self.net = timm.create_model("resnet18", pretrained=False, num_classes=num_classes)

        def forward(self, x: Any) -> Any:
            return self.net(x)

    return TimmResNet18(num_classes, **optim)


def balanced_probe(labels: Any, per_class: int, seed: int = 0) -> Any:
    """Indices of ``per_class`` seeded random samples of every class (sorted by class)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    picks = []
    for c in torch.unique(labels).tolist():
        idx = torch.nonzero(labels == c).flatten()
        picks.append(idx[torch.randperm(len(idx), generator=g)[:per_class]])
    return torch.cat(picks)


def _materialise(dataset: Any) -> tuple[Any, Any]:
    """A data set's (already transformed, unaugmented) images and labels as two tensors."""
    import torch

    loader = torch.utils.data.DataLoader(dataset, batch_size=1000, shuffle=False)
    xs, ys = zip(*[(b[0], b[1]) for b in loader])
    return torch.cat(xs), torch.cat(ys)


def watched_layers(model: Any, example: Any) -> tuple[list[str], str]:
    """Input, the blocks, the layer feeding the head (the last hidden layer) and the logits."""
    from lightning_topo.monitoring import INPUT, LOGITS, select_layers

    blocks = [n for n in select_layers(model, "blocks", example) if n != LOGITS]
    modules = dict(model.named_modules())
    last = "pool" if "pool" in modules else "net.global_pool"
    return [INPUT, *blocks, last, LOGITS], last


def image_part(which: str, args: argparse.Namespace, shared: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    """Train one image model; profile after every epoch (last hidden layer) and at the end (every layer)."""
    import lightning.pytorch as pl
    import torch

    from lightning_topo.monitoring import capture_activations

    quick, device = args.quick, args.device
    cfg = recipe("fashion_mnist" if which == "fmnist" else "cifar10")
    data_args = dict(cfg["data"]["init_args"], root=str(args.data_root), download=False)
    data_args["num_workers"] = 0 if quick or device == "cpu" else min(8, max(1, (os.cpu_count() or 2) - 2))
    epochs = int(cfg["trainer"]["max_epochs"])
    model_args = dict(cfg["model"]["init_args"])
    if which == "resnet":  # the CIFAR recipe's data, optimiser, schedule and epochs; timm's resnet18
        model_args = {k: model_args[k] for k in ("optimizer", "lr", "lr_halve_every") if k in model_args}
        epochs = args.resnet_epochs or epochs
    if quick:
        epochs = min(epochs, 3)  # three points, so that the correlation code runs too
    pl.seed_everything(int(cfg.get("seed_everything", 0)), verbose=False)
    key = "fmnist" if which == "fmnist" else "cifar"
    if key not in shared:
        tick = time.perf_counter()
        dm = _class(cfg["data"]["class_path"])(**data_args)
        dm.setup("fit")
        dm.setup("test")
        x_test, y_test = _materialise(dm.test_set)
        shared[key] = (dm, x_test, y_test)
        log(
            f"  data: {type(dm).__name__} from {args.data_root}: {len(dm.train_set)} train, {len(y_test)} test "
            f"images ({time.perf_counter() - tick:.1f} s to read)"
        )
    dm, x_test, y_test = shared[key]
    per_class = 30 if quick else args.probe_per_class
    probe = balanced_probe(y_test, per_class)
    x_probe, y_probe = x_test[probe], y_test[probe]
    if quick:  # accuracy on a subset of the test set
        keep = balanced_probe(y_test, 100, seed=1)
        x_acc, y_acc = x_test[keep], y_test[keep]
    else:
        x_acc, y_acc = x_test, y_test
    if which == "resnet":
        model = make_timm_resnet(dm.num_classes, **model_args)
    else:
        model = _class(cfg["model"]["class_path"])(**model_args)
    layers, last_hidden = watched_layers(model, x_probe[:2])
    run_device = "cuda" if device == "cuda" else "cpu"

    def test_accuracy(net: Any) -> float:
        was = net.training
        net.eval()
        correct = 0
        with torch.no_grad():
            for start in range(0, len(y_acc), 1000):
                xb = x_acc[start : start + 1000].to(net.device)
                correct += int((net(xb).argmax(1).cpu() == y_acc[start : start + 1000]).sum())
        net.train(was)
        return correct / len(y_acc)

    history: list[dict[str, Any]] = []

    class EpochID(pl.Callback):
        def on_train_epoch_end(self, trainer: Any, module: Any) -> None:
            out = capture_activations(module, x_probe, [last_hidden], batch_size=500, device=None)
            prof = id_profile(out, y_probe)[last_hidden]
            row = {
                "epoch": trainer.current_epoch + 1,
                "id_all": prof["all"],
                "id_class_mean": prof["class_mean"],
                "test_acc": test_accuracy(module),
                "train_acc": float(trainer.callback_metrics.get("train_acc", math.nan)),
                "seconds": round(time.perf_counter() - start, 1),
            }
            history.append(row)
            log(
                f"  epoch {row['epoch']:>2}: last hidden ({last_hidden}) ID all {row['id_all']:6.2f}, per-class "
                f"mean {row['id_class_mean']:6.2f}; test acc {row['test_acc']:.4f} ({row['seconds']} s)"
            )

    if run_device == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.set_float32_matmul_precision("high")
    trainer = pl.Trainer(
        max_epochs=epochs,
        accelerator="gpu" if run_device == "cuda" else "cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,  # the test accuracy is measured by the callback on the test set instead
        num_sanity_val_steps=0,
        limit_train_batches=args.quick_batches if quick else 1.0,
        callbacks=[EpochID()],
    )
    start = time.perf_counter()
    acc0 = test_accuracy(model)
    trainer.fit(model, train_dataloaders=dm.train_dataloader())
    model = model.to(run_device)
    outputs = capture_activations(model, x_probe, layers, batch_size=500, device=None)
    profile = id_profile(outputs, y_probe)
    return {
        "model": type(model).__name__,
        "model_args": model_args,
        "data": type(dm).__name__,
        "data_args": {k: v for k, v in data_args.items() if k != "root"},
        "epochs": epochs,
        "limit_train_batches": args.quick_batches if quick else 1.0,
        "probe": {"images": len(y_probe), "per_class": per_class, "from": "test set, seed 0"},
        "test_images_for_accuracy": len(y_acc),
        "test_acc_before": acc0,
        "layers": layers,
        "last_hidden": last_hidden,
        "dims": {name: int(outputs[name].shape[1]) for name in layers},
        "profile": profile,
        "history": history,
        "seconds": round(time.perf_counter() - start, 1),
    }


def report_profile(name: str, r: dict[str, Any]) -> None:
    log(
        f"\n[{name}] ID profile after {r['epochs']} epochs ({r['model']}, probe {r['probe']['images']} test images, "
        f"{r['probe']['per_class']} per class); final test acc {r['history'][-1]['test_acc']:.4f}"
    )
    log(f"  {'layer':<22} {'features':>8} {'ID all':>8} {'ID class-mean':>14}")
    for layer in r["layers"]:
        p = r["profile"][layer]
        tag = "  <- last hidden" if layer == r["last_hidden"] else ""
        log(f"  {layer:<22} {r['dims'][layer]:>8} {p['all']:>8.2f} {p['class_mean']:>14.2f}{tag}")
    index = r["layers"].index(r["last_hidden"])
    for what in ("all", "class_mean"):
        ok, why = rises_then_falls([r["profile"][la][what] for la in r["layers"]], index)
        r.setdefault("hunchback", {})[what] = {"rises_then_falls": ok, "why": why}
        log(f"  VERDICT {name} ID {what}: {'rises then falls' if ok else 'does NOT rise then fall'} ({why})")


def exact_spearman_p(a: list[float], b: list[float]) -> float:
    """Two-sided p of Spearman's rho over all orderings of ``b`` (small n only).

    Example:
        >>> exact_spearman_p([1, 2, 3], [1, 2, 3])  # 2 of the 6 orderings reach |rho| = 1
        0.3333333333333333
    """
    import itertools

    from scipy import stats

    rho = abs(stats.spearmanr(a, b)[0])
    perms = list(itertools.permutations(b))
    hits = sum(bool(abs(stats.spearmanr(a, list(q))[0]) >= rho - 1e-12) for q in perms)
    return hits / len(perms)


def report_history(name: str, r: dict[str, Any]) -> None:
    from scipy import stats

    h = r["history"]
    log(
        f"\n[{name}] last hidden layer ({r['last_hidden']}) ID over training vs test accuracy "
        f"(before training: test acc {r['test_acc_before']:.4f})"
    )
    log(f"  {'epoch':>5} {'ID all':>8} {'ID class-mean':>14} {'test acc':>9} {'train acc':>9}")
    for row in h:
        log(
            f"  {row['epoch']:>5} {row['id_all']:>8.2f} {row['id_class_mean']:>14.2f} {row['test_acc']:>9.4f} "
            f"{row['train_acc']:>9.4f}"
        )
    acc = [row["test_acc"] for row in h]
    r["correlation"] = {}
    for what in ("id_all", "id_class_mean"):
        ids = [row[what] for row in h]
        if len(h) < 3 or len(set(ids)) < 2 or len(set(acc)) < 2:
            log(f"  CORRELATION {name} {what} vs test acc: n = {len(h)} epochs, too few or constant; not computed")
            continue
        rho, p_rho = stats.spearmanr(ids, acc)
        pr, p_pr = stats.pearsonr(ids, acc)
        how = "t approximation"
        if len(h) <= 8:  # the t approximation means nothing at a handful of epochs: exact permutation p instead
            p_rho, how = exact_spearman_p(ids, acc), "exact permutation"
        r["correlation"][what] = {
            "n": len(h),
            "spearman": rho,
            "spearman_p": p_rho,
            "spearman_p_method": how,
            "pearson": pr,
            "pearson_p": p_pr,
        }
        log(
            f"  CORRELATION {name} {what} vs test acc across epochs (n = {len(h)}): Spearman {rho:+.3f} "
            f"(two-sided p = {p_rho:.3g}, {how}), Pearson {pr:+.3f} (p = {p_pr:.3g}); epochs are successive "
            f"states of one run, not independent samples"
        )


# ------------------------------------------------------------------------------------------- the MLPs
def mlp_run(
    set_name: str, activation: str, seed: int, epochs: tuple[int, ...], device: str, max_per_class: int | None = None
) -> dict[str, Any]:
    """One equal-epoch run: train to ``max(epochs)`` with convergence.py's loop, profile every layer at ``epochs``."""
    import torch
    from convergence import SETS, _register_candidates, layer_outputs, load_data

    from lightning_topo.models import MLPClassifier

    _register_candidates()
    cfg = SETS[set_name]
    x, y = load_data(cfg)
    torch.manual_seed(seed)
    model = MLPClassifier(x.shape[1], 2, hidden=cfg.hidden, activation=activation, lr=cfg.lr)
    x, y, model = x.to(device), y.to(device), model.to(device)  # initialised on the CPU: same weights everywhere
    at: dict[str, Any] = {}
    for step, logits, acc in training_steps(model, x, y, cfg, max(epochs)):
        if not torch.isfinite(logits).all():
            at["diverged_at"] = step
            break
        if step in epochs:
            outs = layer_outputs(model, x)
            names = ["input", *(f"hidden{i}" for i in range(1, len(outs) - 1)), "logits"]
            prof = id_profile(dict(zip(names, outs)), y, whole=False, max_per_class=max_per_class)
            model.train()
            hidden = [prof[n]["class_mean"] for n in names[1:-1]]
            at[str(step)] = {
                "acc": acc,
                "class_mean": [prof[n]["class_mean"] for n in names],
                "mean_hidden": _nanmean(hidden),
                "last_hidden": hidden[-1],
            }
    return at


def mlp_part(args: argparse.Namespace) -> dict[str, Any]:
    table = MLP_EPOCHS_QUICK if args.quick else MLP_EPOCHS
    sets = args.mlp_sets
    seeds = MLP_SEEDS[:1] if args.quick else MLP_SEEDS
    device = "cuda" if args.device == "cuda" else "cpu"
    per_class = 150 if args.quick else None  # every point of each class (as the monitor's class clouds) unless quick
    runs: dict[str, Any] = {s: {a: {} for a in MLP_ACTIVATIONS} for s in sets}
    start = time.perf_counter()
    skipped = []
    for seed in seeds:  # seed-major: a time cut loses whole seeds, never one activation
        for set_name in sets:
            for act in MLP_ACTIVATIONS:
                if time.perf_counter() - start > args.mlp_budget_s:
                    skipped.append(f"{set_name}/{act}/s{seed}")
                    continue
                tick = time.perf_counter()
                runs[set_name][act][str(seed)] = mlp_run(set_name, act, seed, table[set_name], device, per_class)
                last = runs[set_name][act][str(seed)]
                end = str(max(table[set_name]))
                acc = last[end]["acc"] if end in last else math.nan
                log(
                    f"  {set_name} {act:<8} seed {seed}: {time.perf_counter() - tick:5.1f} s, acc at epoch {end} "
                    f"{acc:.4f}"
                )
    if skipped:
        log(f"  TIME BUDGET ({args.mlp_budget_s} s) reached: skipped {', '.join(skipped)}")
    return {
        "epochs": {s: list(table[s]) for s in sets},
        "seeds": list(seeds),
        "runs": runs,
        "skipped": skipped,
        "seconds": round(time.perf_counter() - start, 1),
    }


def report_mlp(r: dict[str, Any]) -> None:
    from convergence import SETS

    r["summary"] = {}
    for set_name, by_act in r["runs"].items():
        cfg = SETS[set_name]
        n_seeds = {a: len(v) for a, v in by_act.items()}
        log(
            f"\n[mlp {set_name}] {cfg.dataset.upper()}, {cfg.n_points} points, hidden {list(cfg.hidden)}; per-class "
            f"ID averaged over the classes; median over seeds (seeds per activation: {n_seeds})"
        )
        log(f"  {'epoch':>6} {'activation':<10} {'mean hidden ID':>15} {'last hidden ID':>15} {'train acc':>10}")
        for epoch in r["epochs"][set_name]:
            for act, seeds in by_act.items():
                rows = [s[str(epoch)] for s in seeds.values() if str(epoch) in s]
                if not rows:
                    continue
                mean_h = _nanmedian([x["mean_hidden"] for x in rows])
                last_h = _nanmedian([x["last_hidden"] for x in rows])
                acc = _nanmedian([x["acc"] for x in rows])
                r["summary"].setdefault(set_name, {}).setdefault(str(epoch), {})[act] = {
                    "median_mean_hidden": mean_h,
                    "median_last_hidden": last_h,
                    "median_acc": acc,
                    "n": len(rows),
                }
                log(f"  {epoch:>6} {act:<10} {mean_h:>15.2f} {last_h:>15.2f} {acc:>10.4f}")


# ------------------------------------------------------------------------------------------- figure
def figure(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images = [k for k in ("fmnist", "cifar", "resnet") if isinstance(results.get(k), dict) and "profile" in results[k]]
    mlp = results.get("mlp") if isinstance(results.get("mlp"), dict) and "runs" in results["mlp"] else None
    cols = max(len(images), len(mlp["runs"]) if mlp else 0, 1)
    fig, axes = plt.subplots(3, cols, figsize=(4.5 * cols, 10), squeeze=False)
    for j, k in enumerate(images):
        r = results[k]
        ax = axes[0][j]
        xs = range(len(r["layers"]))
        ax.plot(xs, [r["profile"][la]["all"] for la in r["layers"]], "o-", label="whole probe")
        ax.plot(xs, [r["profile"][la]["class_mean"] for la in r["layers"]], "s--", label="per-class mean")
        ax.set_xticks(
            list(xs), [la.replace("features.", "").replace("net.", "") for la in r["layers"]], rotation=60, fontsize=7
        )
        ax.set_title(f"{k}: ID per layer (end)")
        ax.set_ylabel("TwoNN ID")
        ax.legend(fontsize=7)
        if k in ("fmnist", "cifar") and r["history"]:
            ax = axes[1][j]
            ep = [h["epoch"] for h in r["history"]]
            ax.plot(ep, [h["id_all"] for h in r["history"]], "o-", label="ID last hidden (all)")
            ax.plot(ep, [h["id_class_mean"] for h in r["history"]], "s--", label="ID last hidden (class mean)")
            ax.set_xlabel("epoch")
            ax.set_title(f"{k}: last hidden ID and test acc")
            ax2 = ax.twinx()
            ax2.plot(ep, [h["test_acc"] for h in r["history"]], "k^:", label="test acc")
            ax2.set_ylabel("test accuracy")
            ax.legend(fontsize=7, loc="center right")
    if mlp:
        for j, (set_name, by_act) in enumerate(mlp["runs"].items()):
            ax = axes[2][j]
            for act, seeds in by_act.items():
                epochs = [e for e in mlp["epochs"][set_name] if any(str(e) in s for s in seeds.values())]
                ys = [_nanmedian([s[str(e)]["mean_hidden"] for s in seeds.values() if str(e) in s]) for e in epochs]
                ax.plot(epochs, ys, "o-", label=act)
            ax.set_title(f"{set_name}: median mean hidden ID")
            ax.set_xlabel("epoch")
            ax.legend(fontsize=7)
    for row in axes:
        for ax in row:
            if not ax.has_data():
                ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> None:
    parser = Parser(__doc__)
    parser.with_device(choices=("cpu", "cuda"))
    parser.with_data_root(
        type=Path, help="folder holding FashionMNIST/raw and cifar10/{train,test} (default ../shared/data)"
    )
    parser.with_quick("a small CPU smoke run (not results)")
    parser.add_argument(
        "--parts",
        nargs="+",
        choices=PARTS,
        default=list(PARTS),
        help="fmnist, cifar: parts 1 and 2; resnet: part 1; mlp: part 3",
    )
    parser.with_out(HERE / "results" / "intrinsic_profile")
    parser.add_argument("--probe-per-class", type=int, default=200, help="probe test images per class (10 classes)")
    parser.add_argument("--resnet-epochs", type=int, default=None, help="default: the CIFAR recipe's max_epochs")
    parser.add_argument("--quick-batches", type=int, default=15, help="--quick: training batches per epoch")
    parser.add_argument("--mlp-sets", nargs="+", default=["d1", "d2", "d3"], choices=sorted(MLP_EPOCHS))
    parser.add_argument(
        "--mlp-budget-s",
        type=float,
        default=210.0,
        help="part 3 starts no new run after this many seconds (runs are ordered seed by seed)",
    )
    args = parser.parse_args(argv)
    if not args.data_root.is_absolute():
        args.data_root = (REPO / args.data_root).resolve() if not args.data_root.exists() else args.data_root
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda but torch sees no GPU")
    if args.quick:
        log("# SMOKE RUN (--quick): tiny training, small probes, one seed; checks that the script runs, NOT results")
    log(f"# parts: {' '.join(args.parts)}; device {args.device}; data root {args.data_root}")
    args.out.mkdir(parents=True, exist_ok=True)
    total = time.perf_counter()
    results: dict[str, Any] = {"provenance": provenance(), "quick": args.quick, "device": args.device}
    shared: dict[str, Any] = {}
    for part in args.parts:
        tick = time.perf_counter()
        log(f"\n=== part {part} ===")
        try:
            if part == "mlp":
                results[part] = mlp_part(args)
                report_mlp(results[part])
            else:
                results[part] = image_part(part, args, shared, results)
                report_profile(part, results[part])
                if part != "resnet":
                    report_history(part, results[part])
        except Exception:  # one failing part must not stop the others
            text = traceback.format_exc()
            log(f"PART {part} FAILED:\n{text}")
            results[part] = {"error": text}
        log(f"=== part {part}: {time.perf_counter() - tick:.1f} s ===")
    try:
        figure(results, args.out / "intrinsic_profile.png")
        log(f"\nfigure: {args.out / 'intrinsic_profile.png'}")
    except Exception:
        log(f"FIGURE FAILED:\n{traceback.format_exc()}")
    results["seconds"] = round(time.perf_counter() - total, 1)
    write_json(args.out / "intrinsic_profile.json", results, default=float)
    log(f"numbers: {args.out / 'intrinsic_profile.json'}")
    log(f"TOTAL TIME {results['seconds']:.1f} s")


if __name__ == "__main__":
    main()
