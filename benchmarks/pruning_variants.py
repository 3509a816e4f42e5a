"""The exploratory side of the pruning benchmark: other Betti scores, other probes, other fine-tuning recipes.

``benchmarks/pruning.py`` measures the package's rules; this script backs the README's statements about what else
was tried, on the same trained weights (``--trained``, written by ``pruning.py --trained PATH``):

1. Robustness of k-NN beta_0 scores over probe draws: for probe seeds and hop counts ``k``, the accuracy before
   fine-tuning (BatchNorm re-estimated) after removing ``--amount`` of every conv's filters, both directions.
2. Fine-tuning recipes for one epoch, on the L1 rule (drop lowest) and the k=3 beta_0 rule (drop lowest): plain
   Adam at 0.001, knowledge distillation from the unpruned model (T=4, 0.9 of the loss), and a cosine decay from
   0.002 to 0 over the epoch, with and without distillation; for ``--amounts``.

Usage:
    python benchmarks/pruning.py --data-root ../shared/data --trained /tmp/fmnist_cnn.pt   # trains once
    python benchmarks/pruning_variants.py --data-root ../shared/data --trained /tmp/fmnist_cnn.pt
"""

from __future__ import annotations

import copy

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from common import Parser, build_recipe
from pruning import accuracy, plan_by_amount, pruned_copy
from torch import nn

from lightning_topo.monitoring import capture_activations, probe_from_batches
from lightning_topo.pruning import count_parameters
from lightning_topo.topology.filters import filter_betti_scores, l1_scores


def main() -> None:
    parser = Parser(__doc__)
    parser.with_data_root()
    parser.add_argument("--trained", required=True, help="trained weights written by benchmarks/pruning.py --trained")
    parser.add_argument("--amount", type=float, default=0.5)
    parser.add_argument("--amounts", type=float, nargs="+", default=[0.5, 0.4], help="amounts of the fine-tuning part")
    parser.add_argument("--probe-seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--k-values", type=int, nargs="+", default=[2, 3, 4, 6, 10])
    args = parser.parse_args()

    pl.seed_everything(0, verbose=False)
    cli = build_recipe(
        "fashion_mnist",
        f"--data.root={args.data_root}",
        "--data.download=false",
        "--trainer.enable_checkpointing=false",
    )
    model, data = cli.model, cli.datamodule
    model.load_state_dict(torch.load(args.trained)["state_dict"])
    data.setup("fit")
    data.setup("test")
    test_loader = data.test_dataloader()
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    modules = dict(model.named_modules())
    print(f"trained model: test accuracy {accuracy(model, test_loader):.4f}")

    def pruned(plan: dict[str, list[int]], example: torch.Tensor) -> nn.Module:
        return pruned_copy(model, plan, example, data.train_dataloader())

    def knn_beta0(probe: torch.Tensor, k: int) -> dict[str, np.ndarray]:
        outputs = capture_activations(model, probe, convs)
        maps = {n: outputs[n].reshape(len(probe), modules[n].out_channels, -1) for n in convs}
        return {n: filter_betti_scores(maps[n][..., None], dim=0, k=k) for n in convs}

    print(
        f"\n1. k-NN beta_0 scores, {args.amount:.0%} of every conv removed, accuracy before fine-tuning (BN re-estimated)"
    )
    for seed in args.probe_seeds:
        probe, _ = probe_from_batches(data.train_dataloader(), 500, seed=seed)
        for k in args.k_values:
            scores = knn_beta0(probe, k)
            medians = [float(np.median(v)) for v in scores.values()]
            accs = {
                d: accuracy(pruned(plan_by_amount(scores, d, args.amount), probe[:1]), test_loader)
                for d in ("lowest", "highest")
            }
            print(
                f"  probe seed {seed}, k={k:2d}: drop lowest {accs['lowest']:.4f}, drop highest {accs['highest']:.4f}"
                f"   (median score per layer {medians})",
                flush=True,
            )

    teacher = copy.deepcopy(model).eval()
    probe, _ = probe_from_batches(data.train_dataloader(), 500, seed=0)

    def fine_tune(student: nn.Module, lr: float, distil: bool, cosine: bool) -> None:
        optimizer = torch.optim.Adam(student.parameters(), lr=lr)
        loader = data.train_dataloader()
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, len(loader)) if cosine else None
        student.train()
        for x, y in loader:
            logits = student(x)
            loss = F.cross_entropy(logits, y)
            if distil:
                with torch.no_grad():
                    soft = F.softmax(teacher(x) / 4.0, dim=1)
                loss = 0.1 * loss + 0.9 * 16.0 * F.kl_div(
                    F.log_softmax(logits / 4.0, dim=1), soft, reduction="batchmean"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if schedule is not None:
                schedule.step()
        student.eval()

    print("\n2. one fine-tune epoch after pruning (BN re-estimated first), test accuracy")
    rules = {
        "k-NN beta_0 (k=3), drop lowest": (knn_beta0(probe, 3), "lowest"),
        "L1, drop lowest": ({n: l1_scores(modules[n].weight) for n in convs}, "lowest"),
    }
    for amount in args.amounts:
        for name, (scores, direction) in rules.items():
            plan = plan_by_amount(scores, direction, amount)
            base = pruned(plan, probe[:1])
            print(
                f"  amount {amount}, {name}: {1 - count_parameters(base) / count_parameters(model):.0%} fewer parameters, "
                f"before fine-tuning {accuracy(base, test_loader):.4f}",
                flush=True,
            )
            for lr, distil, cosine in (
                (0.001, False, False),
                (0.001, True, False),
                (0.002, False, True),
                (0.002, True, True),
            ):
                student = pruned(plan, probe[:1])
                fine_tune(student, lr, distil, cosine)
                print(
                    f"    lr {lr}{' cosine to 0' if cosine else ''}{', distilled' if distil else ''}: "
                    f"{accuracy(student, test_loader):.4f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
