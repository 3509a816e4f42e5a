"""Betti-number filter pruning on the Fashion-MNIST CNN recipe, against random, L1 and masking, in one run.

1. Trains the recipe's CNN (32/64/128 channels) for ``--epochs`` epochs on the real data.
2. Scores every conv filter on 500 probe training images under several criteria:
   k-NN hop protocol (beta_1, k=10), Euclidean Vietoris-Rips at a fixed per-layer scale (beta_0; the
   scale is the layer's median distance to the 10th neighbour), cubical persistence of each map, L1 norm.
3. Removes the same number of filters from every conv (``--amount`` of each layer) by each rule, both
   directions (drop highest / drop lowest scores), and by 10 random draws; prints test accuracy before
   fine-tuning, with the BatchNorm statistics as the surgery left them (stale) and re-estimated on 100
   training batches (as BettiPruning does by default).
4. For the package's default rule (k-NN beta_1, drop highest) and for L1: parameters, saved size, CPU
   latency (batch 256) and test accuracy after one fine-tune epoch (at the fit's final learning rate and
   at ``--fine-tune-lr``); the unpruned model given the same epoch; and the latency of the masking that
   Lightning's ModelPruning applies (torch.nn.utils.prune, l1_unstructured) at the same sparsity.

Usage:
    python benchmarks/pruning.py --data-root ../shared/data
    python benchmarks/pruning.py --amount 0.4 --trained /tmp/fmnist_cnn.pt   # reuse the trained weights
    python benchmarks/pruning.py --seed 1 --trained /tmp/fmnist_cnn_s1.pt     # another training run
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.utils.prune as torch_prune
from common import Parser, build_recipe
from torch import nn

from lightning_topo.callbacks import BettiMonitor, BettiPruning, ContinueAtLearningRates, EpochProgress
from lightning_topo.monitoring import capture_activations, probe_from_batches
from lightning_topo.pruning import (
    count_parameters,
    cpu_latency,
    recalibrate_batchnorm,
    remove_filters,
    saved_size_bytes,
    select_filters,
)
from lightning_topo.topology.filters import cubical_scores, filter_betti_scores, l1_scores


@torch.no_grad()
def accuracy(model: nn.Module, loader) -> float:
    model.eval()
    correct = total = 0
    for x, y in loader:
        correct += int((model(x).argmax(1) == y).sum())
        total += len(y)
    return correct / total


def pruned_copy(
    model: nn.Module, plan: dict[str, list[int]], example: torch.Tensor, batches=None, recalibrate_batches: int = 100
) -> nn.Module:
    """A CPU copy of ``model`` without ``plan``'s filters; its BatchNorm statistics re-estimated on ``batches``
    (as BettiPruning does), or left as the surgery left them (stale) when ``batches`` is None."""
    clone = copy.deepcopy(model).cpu()
    clone._trainer = None
    remove_filters(clone, plan, example)
    if batches is not None:
        recalibrate_batchnorm(clone, batches, max_batches=recalibrate_batches)
    return clone


def plan_by_amount(scores: dict[str, np.ndarray], direction: str, amount: float) -> dict[str, list[int]]:
    """Per layer, the ``amount`` fraction of filters with the highest (or lowest) scores."""
    return {n: select_filters(v, amount=amount, direction=direction, layer=n).tolist() for n, v in scores.items()}


def fine_tune(model: pl.LightningModule, data: pl.LightningDataModule, epochs: int, lrs: list[float]) -> None:
    """Train ``epochs`` more epochs, starting at the learning rates the fit ended with (as BettiPruning does), in
    training mode (``accuracy`` leaves a model in eval mode, and Lightning keeps the modes it finds: BatchNorm would
    fine-tune on frozen statistics)."""
    model.train()
    trainer = pl.Trainer(
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        callbacks=[ContinueAtLearningRates(lrs)],
    )
    trainer.fit(model, datamodule=data)


def euclidean_scale(maps: torch.Tensor, neighbour: int = 10, filters: int = 8) -> float:
    """The layer's median distance to the 10th nearest neighbour, over a few filters' clouds."""
    values = []
    for c in np.linspace(0, maps.shape[1] - 1, filters).astype(int):
        cloud = maps[:, c].double()
        dist = torch.cdist(cloud, cloud)
        values.append(dist.kthvalue(neighbour + 1, dim=1).values.median().item())
    return float(np.median(values))


def main() -> None:
    parser = Parser(__doc__)
    parser.with_data_root()
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default: the recipe's max_epochs)")
    parser.add_argument("--amount", type=float, default=0.5)
    parser.add_argument("--probe-size", type=int, default=500)
    parser.add_argument("--fine-tune-epochs", type=int, default=1)
    parser.add_argument("--fine-tune-lr", type=float, default=0.001, help="the second fine-tune learning rate tried")
    parser.add_argument("--random-draws", type=int, default=10)
    parser.add_argument("--recalibrate-batches", type=int, default=100)
    parser.with_seed(0, help="seed of the training run (and of everything after it)")
    parser.add_argument("--trained", help="file of trained weights: loaded if it exists, else written after training")
    args = parser.parse_args()

    pl.seed_everything(args.seed, verbose=False)
    epochs = [] if args.epochs is None else [f"--trainer.max_epochs={args.epochs}"]
    cli = build_recipe(
        "fashion_mnist",
        f"--data.root={args.data_root}",
        "--data.download=false",
        *epochs,
        f"--seed_everything={args.seed}",
        "--trainer.enable_checkpointing=false",
        "--trainer.enable_progress_bar=false",
    )
    trainer, model, data = cli.trainer, cli.model, cli.datamodule
    trainer.callbacks[:] = [
        c for c in trainer.callbacks if not isinstance(c, (BettiMonitor, BettiPruning, EpochProgress))
    ]
    if args.trained and Path(args.trained).exists():
        saved = torch.load(args.trained)
        model.load_state_dict(saved["state_dict"])
        final_lrs = saved["final_lrs"]
        data.setup("fit")
        print(f"loaded the trained weights from {args.trained}")
    else:
        start = time.perf_counter()
        trainer.fit(model, datamodule=data)
        print(f"trained {trainer.current_epoch} epochs in {time.perf_counter() - start:.0f} s")
        final_lrs = [group["lr"] for optimizer in trainer.optimizers for group in optimizer.param_groups]
        if args.trained:
            torch.save({"state_dict": model.state_dict(), "final_lrs": final_lrs}, args.trained)
    model._trainer = None  # copies below must not drag the trainer (and whatever it last touched) along
    # copied now: after a fine-tune, torchmetrics' wrapped update methods of a copy have written graph tensors
    # into the original's metric state, which deepcopy then refuses
    masked = copy.deepcopy(model).cpu()
    data.setup("test")
    test_loader = data.test_dataloader()
    base_acc = accuracy(model, test_loader)
    print(f"test accuracy of the trained model: {base_acc:.4f}")

    x_probe, y_probe = probe_from_batches(data.train_dataloader(), args.probe_size, seed=0)
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    modules = dict(model.named_modules())
    outputs = capture_activations(model, x_probe, convs)
    maps = {n: outputs[n].reshape(len(x_probe), modules[n].out_channels, -1) for n in convs}

    scores: dict[str, dict[str, np.ndarray]] = {}
    timings = {}
    t = time.perf_counter()
    scores["knn beta_1"] = {n: filter_betti_scores(maps[n][..., None], dim=1, k=10) for n in convs}
    timings["knn beta_1"] = time.perf_counter() - t
    t = time.perf_counter()
    scales = {n: euclidean_scale(maps[n]) for n in convs}
    scores["euclidean beta_0"] = {
        n: filter_betti_scores(maps[n][..., None], dim=0, metric="euclidean", scale=scales[n]) for n in convs
    }
    timings["euclidean beta_0"] = time.perf_counter() - t
    t = time.perf_counter()
    side = {n: int(np.sqrt(maps[n].shape[-1])) for n in convs}
    scores["cubical"] = {n: cubical_scores(maps[n].reshape(len(x_probe), -1, side[n], side[n])) for n in convs}
    timings["cubical"] = time.perf_counter() - t
    scores["L1 norm"] = {n: l1_scores(modules[n].weight) for n in convs}

    print("\nscore ranges per layer (min / median / max), and scoring time")
    for crit, per in scores.items():
        ranges = "  ".join(f"{n.split('.')[1]}: {v.min():.0f}/{np.median(v):.0f}/{v.max():.0f}" for n, v in per.items())
        print(f"  {crit:18} {ranges}   {timings.get(crit, 0):.1f} s")
    for n in convs:
        count = int(np.sum(scores["euclidean beta_0"][n] > 300))
        print(
            f"  euclidean beta_0 > 300 in {n}: {count} of {len(scores['euclidean beta_0'][n])} filters (scale {scales[n]:.2f})"
        )

    example = x_probe[:1]

    def pruned(plan: dict[str, list[int]], recalibrate: bool = True) -> nn.Module:
        batches = data.train_dataloader() if recalibrate else None
        return pruned_copy(model, plan, example, batches, args.recalibrate_batches)

    def plan_from(per: dict[str, np.ndarray], direction: str) -> dict[str, list[int]]:
        return plan_by_amount(per, direction, args.amount)

    def both(plan: dict[str, list[int]]) -> tuple[float, float]:
        return accuracy(pruned(plan, recalibrate=False), test_loader), accuracy(pruned(plan), test_loader)

    rng = np.random.default_rng(0)
    random_plans = [
        {
            n: np.sort(
                rng.choice(modules[n].out_channels, int(round(args.amount * modules[n].out_channels)), replace=False)
            ).tolist()
            for n in convs
        }
        for _ in range(args.random_draws)
    ]
    random_accs = np.array([both(plan) for plan in random_plans])  # (draws, [stale, recalibrated])
    print(
        f"\nremoving {args.amount:.0%} of every conv's filters; test accuracy BEFORE fine-tuning (trained: {base_acc:.4f})"
    )
    print(
        f"  {'rule':34} {'stale BN':>9} {'BN re-estimated':>16}   share of {args.random_draws} random draws it beats (re-estimated)"
    )
    for crit, per in scores.items():
        for direction in ("highest", "lowest"):
            stale, fresh = both(plan_from(per, direction))
            beaten = float(np.mean(random_accs[:, 1] < fresh))
            print(f"  {crit + ', drop ' + direction:34} {stale:>9.4f} {fresh:>16.4f}   {beaten:.0%}")
    print(
        f"  {'random (mean of ' + str(args.random_draws) + ')':34} {random_accs[:, 0].mean():>9.4f} {random_accs[:, 1].mean():>16.4f}"
    )
    print(f"  random draws, stale BN:        {', '.join(f'{a:.4f}' for a in random_accs[:, 0])}")
    print(f"  random draws, BN re-estimated: {', '.join(f'{a:.4f}' for a in random_accs[:, 1])}")

    latency_input = x_probe[:1].repeat(256, 1, 1, 1)
    base_latency = cpu_latency(model, latency_input, repeats=21)
    base_params, base_size = count_parameters(model), saved_size_bytes(model)
    print(
        f"\nunpruned: {base_params} parameters, {base_size / 2**20:.2f} MB, {1000 * base_latency:.1f} ms per batch of 256"
    )
    # the fair reference for "after fine-tuning": the unpruned model given the same extra epochs
    reference = copy.deepcopy(model).cpu()
    reference._trainer = None
    fine_tune(reference, data, args.fine_tune_epochs, final_lrs)
    reference_acc = accuracy(reference, test_loader)
    print(f"unpruned model after the same {args.fine_tune_epochs} extra epoch(s): test accuracy {reference_acc:.4f}")
    example_plan = plan_from(scores["knn beta_1"], "highest")
    print(
        "filters per conv, before -> after: "
        + ", ".join(
            f"{n}: {modules[n].out_channels} -> {modules[n].out_channels - len(example_plan[n])}" for n in convs
        )
    )
    for label, crit, direction in (
        ("Betti (k-NN beta_1, drop highest)", "knn beta_1", "highest"),
        ("L1 (drop lowest)", "L1 norm", "lowest"),
    ):
        small = pruned(plan_from(scores[crit], direction))
        before_ft = accuracy(small, test_loader)
        latency = cpu_latency(small, latency_input, repeats=21)
        params, size = count_parameters(small), saved_size_bytes(small)
        print(
            f"{label}: {params} parameters ({1 - params / base_params:.0%} fewer), {size / 2**20:.2f} MB "
            f"({1 - size / base_size:.0%} smaller), {1000 * latency:.1f} ms ({base_latency / latency:.2f}x faster); "
            f"accuracy {base_acc:.4f} -> {before_ft:.4f} before fine-tuning (BN re-estimated)"
        )
        for lr_label, lrs in (
            ("the fit's final lr", final_lrs),
            (f"lr {args.fine_tune_lr:g}", [args.fine_tune_lr] * len(final_lrs)),
        ):
            tuned = pruned(plan_from(scores[crit], direction))  # a fresh copy: deep copies of a tuned module fail
            fine_tune(tuned, data, args.fine_tune_epochs, lrs)
            after_ft = accuracy(tuned, test_loader)
            print(
                f"    after {args.fine_tune_epochs} fine-tune epoch at {lr_label}: {after_ft:.4f} "
                f"({100 * (after_ft - base_acc):+.2f} points vs the trained model, "
                f"{100 * (after_ft - reference_acc):+.2f} vs the unpruned model given the same extra epoch)"
            )
        if crit == "knn beta_1":
            removed_fraction = 1 - params / base_params

    targets = [(m, "weight") for m in masked.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    torch_prune.global_unstructured(targets, pruning_method=torch_prune.L1Unstructured, amount=removed_fraction)
    for module, name in targets:  # ModelPruning's make_pruning_permanent: zeros in dense tensors, as users get them
        torch_prune.remove(module, name)
    mask_latency = cpu_latency(masked, latency_input, repeats=21)
    print(
        f"masking as Lightning's ModelPruning does (l1_unstructured, {removed_fraction:.0%} of weights zeroed): "
        f"{count_parameters(masked)} parameters stored, {1000 * mask_latency:.1f} ms ({base_latency / mask_latency:.2f}x), "
        f"accuracy {accuracy(masked, test_loader):.4f}"
    )


if __name__ == "__main__":
    main()
