"""benchmarks/trajectories.py's report code on a tiny synthetic history (no training)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import torch
from helpers.paths import REPO

sys.path.insert(0, str(REPO / "benchmarks"))

import trajectories as tr  # noqa: E402

LAYERS = ["input", "features.layer1.act", "features.layer2.act", "logits"]
EPOCHS = [0, 50, 100, 150, 200]


def fake_run(activation: str, seed: int, hidden_b0: list[tuple[int, int]], first_100: int | None) -> dict:
    """A stored run: class a has beta_0 9 at the input and ``hidden_b0[i]`` in the two hidden layers at EPOCHS[i];
    class a's beta_1 is 1 in layer 1 at every epoch (so 'all Betti numbers' differs from beta_0)."""
    history = []
    for epoch, (h1, h2) in zip(EPOCHS, hidden_b0):
        betti = {
            "input": {"0": [9, 0], "1": [1, 9]},
            "features.layer1.act": {"0": [h1, 1], "1": [1, 9]},
            "features.layer2.act": {"0": [h2, 0], "1": [1, 9]},
            "logits": {"0": [1, 0], "1": [1, 0]},
        }
        history.append({"epoch": epoch, "step": epoch, "seconds": 0.1, "blocked_seconds": 0.1, "betti": betti})
    config = {"dataset": "d1", "units": 9, "n_points": 100, "hidden": [4, 4], "scaling": "none", "lr": 0.01}
    config |= {"lr_halve_every": 2500, "k": 14, "budget": 6000, "betti_points": None, "max_dim": 1}
    return {
        "set": "toy",
        "activation": activation,
        "seed": seed,
        "config": config,
        "epochs": 200,
        "every": 50,
        "first_100": first_100,
        "diverged_at": None,
        "final_acc": 1.0 if first_100 is not None else 0.9,
        "acc": [0.5] * len(EPOCHS),
        "layers": LAYERS,
        "dims": [0, 1],
        "probe_points": {"0": 50, "1": 50},
        "history": history,
        "route_check": True,
        "seconds": 1.0,
        "monitor_seconds": 0.5,
    }


#: fold collapses early (layer 2 reaches 1 at epoch 50), ReLU later (layer 2 at 150), tanh never.
FOLD = [
    fake_run("proposed", 0, [(9, 9), (9, 1), (6, 1), (3, 1), (3, 1)], 100),
    fake_run("proposed", 1, [(9, 9), (9, 1), (3, 1), (3, 1), (1, 1)], 120),
    fake_run("proposed", 2, [(9, 9), (9, 3), (9, 1), (3, 1), (3, 1)], 80),
]
RELU = [
    fake_run("relu", 0, [(9, 9), (9, 9), (9, 6), (9, 1), (6, 1)], 150),
    fake_run("relu", 1, [(9, 9), (9, 9), (9, 3), (9, 1), (9, 1)], None),
    fake_run("relu", 2, [(9, 9), (9, 9), (9, 9), (9, 3), (6, 1)], 200),
]
TANH = [fake_run("tanh", s, [(9, 9)] * 5, None) for s in (0, 1)]


def write(root: Path, runs: list[dict]) -> None:
    for r in runs:
        path = tr.run_path(r["set"], r["activation"], r["seed"], root)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(r))


def test_collapse_is_the_hidden_mean_relative_to_the_input():
    entry = FOLD[0]["history"][2]  # epoch 100: layer 1 beta = (6, 1), layer 2 (1, 0), input (9, 0)
    layers = tr.hidden_layers(FOLD[0])
    assert layers == ["features.layer1.act", "features.layer2.act"]
    assert tr.collapse(entry, layers) == pytest.approx((6 / 9 + 1 / 9) / 2)
    assert tr.collapse(entry, layers, total=True) == pytest.approx((7 / 9 + 1 / 9) / 2)
    skipped = {"betti": {k: v for k, v in entry["betti"].items() if k != "features.layer1.act"}}
    assert tr.collapse(skipped, layers) == pytest.approx(1 / 9)  # a layer the monitor skipped is left out


def test_table_numbers_at_a_fixed_epoch():
    stats = tr.at_epoch(FOLD, 100)  # per run (6+1)/18, (3+1)/18, (9+1)/18
    assert stats["median"] == pytest.approx(7 / 18)
    assert (stats["min"], stats["max"], stats["n"]) == (pytest.approx(4 / 18), pytest.approx(10 / 18), 3)
    total = tr.at_epoch(RELU, 200, total=True)  # per run (7+1)/18, (10+1)/18, (7+1)/18
    assert total["median"] == pytest.approx(8 / 18) and total["max"] == pytest.approx(11 / 18)
    assert tr.at_epoch(FOLD, 75)["n"] == 0  # not a measured epoch: no number rather than a wrong one


def test_fixed_epochs_snap_to_the_measured_grid():
    assert tr.median_first_100(FOLD) == 100
    assert tr.median_first_100(RELU) == 200  # the seed that never got there counts as infinite
    assert math.isinf(tr.median_first_100(TANH))
    epochs = tr.fixed_epochs({"proposed": FOLD, "relu": RELU, "tanh": TANH})
    assert [e for _, e in epochs] == [100, 200]
    assert "epoch 100" in epochs[0][0] and "fold" in epochs[0][0]
    assert "ReLU" in epochs[1][0] and "end" in epochs[1][0]
    late = [dict(r, first_100=101) for r in FOLD]
    assert [e for _, e in tr.fixed_epochs({"proposed": late, "relu": RELU})] == [100, 150, 200]


def test_verdict_rule():
    epochs = tr.fixed_epochs({"proposed": FOLD, "relu": RELU})
    assert tr.verdict({"proposed": FOLD, "relu": RELU}, epochs) == ("faster", [True, True])
    swapped = {"proposed": [dict(r, activation="proposed") for r in RELU], "relu": FOLD}
    assert tr.verdict(swapped, epochs) == ("slower", [False, False])
    same = {"proposed": FOLD, "relu": [dict(r, activation="relu") for r in FOLD]}
    assert tr.verdict(same, epochs) == ("mixed", [False, False])  # a tie is not "faster"
    # lower at epoch 100 only, higher at the end
    crossing = [fake_run("relu", s, [(9, 9), (9, 9), (9, 9), (1, 1), (1, 1)], 150) for s in range(3)]
    assert tr.verdict({"proposed": FOLD, "relu": crossing}, epochs) == ("mixed", [True, False])
    assert tr.verdict({"proposed": FOLD}, epochs)[0] == "n/a"


def test_gap_and_overlap_of_the_seed_ranges():
    epochs = tr.fixed_epochs({"proposed": FOLD, "relu": RELU})
    gap, overlap = tr.spread_overlap(FOLD, RELU, epochs)
    assert gap == pytest.approx(15 / 18 - 7 / 18)  # epoch 100's medians; the ranges never overlap
    assert overlap == 0
    assert tr.spread_overlap(FOLD, FOLD, epochs) == (0, 2)


def test_collapse_order_per_layer():
    firsts = tr.collapse_epochs(FOLD)
    assert firsts == {"features.layer1.act": math.inf, "features.layer2.act": 50}  # layer 1 once in 3 seeds
    assert tr.collapse_epochs(RELU)["features.layer2.act"] == 150
    assert tr.order_sentence(FOLD) == "first layer2 (epoch 50); never on the median seed: layer1"


def test_same_epoch_as_convergence_run():
    end = {"set": "toy", "activation": "fold", "seed": 0, "epochs": 100, "converged": True}
    assert tr.same_first_100(FOLD[0], [end]) is True
    assert tr.same_first_100(FOLD[0], [dict(end, epochs=101)]) is False
    assert tr.same_first_100(RELU[1], [dict(end, activation="relu", seed=1, epochs=6000, converged=False)]) is True
    assert tr.same_first_100(TANH[0], [end]) is None


def test_report_from_stored_json(tmp_path):
    root = tmp_path / "trajectories"
    write(root, FOLD + RELU + TANH)
    end_run = {
        "set": "toy",
        "activation": "fold",
        "seed": 0,
        "config": {"budget": 6000},
        "converged": True,
        "epochs": 100,
        "final_acc": 1.0,
        "betti": {"a": [[9, 0], [3, 0], [1, 0], [1, 0]], "b": [[1, 9], [1, 9], [1, 9], [1, 0]]},
    }
    text = tr.write_report(root, tmp_path, end_runs=[end_run])
    assert text == (tmp_path / "trajectories.md").read_text()
    assert "## toy" in text
    row = next(line for line in text.splitlines() if line.startswith("| 100 |"))
    # fold beta_0 median (min-max) at epoch 100: (6+1)/18, (3+1)/18, (9+1)/18; ReLU's: (9+6)/18, (9+3)/18, (9+9)/18
    assert "| 0.39 (0.22-0.56) |" in row and "| 0.83 (0.67-1.00) |" in row
    assert "verdict: **faster**" in text and "overlap at 0 of 2 fixed epochs" in text
    init = next(line for line in text.splitlines() if line.startswith("| 0 |"))
    assert "not in the verdict" in init and "| 1.00 (1.00-1.00) |" in init
    assert "first layer2 (epoch 50)" in text
    summary = text.splitlines()[text.splitlines().index("## Summary") :]
    assert next(line for line in summary if line.startswith("| toy | 0 (initialisation) |")).endswith(
        "| 1.00 | 1.00 | 1.00 | (reference, not in the verdict) |"
    )
    assert next(line for line in summary if "| 100 (epoch 100" in line).startswith(
        "|  | 100 (epoch 100, fold (proposed) median to 100% (100)) | 0.83 | 0.39 | 1.00 | **faster**;"
    )
    assert "END-OF-RUN" in text and "| fold (proposed) | 1 | 1/1 | 100 | 0.22 |" in text
    fold_row = next(line for line in text.splitlines() if line.startswith("| fold (proposed) | 3 |"))
    assert "3/3, 100; 80-120" in fold_row and "| 1/1 |" in fold_row
    assert (tmp_path / "trajectories.png").stat().st_size > 0
    for a in ("relu", "proposed", "tanh"):
        assert (tmp_path / f"trajectories_toy_{a}.png").stat().st_size > 0


def test_report_without_runs_says_how_to_get_them(tmp_path):
    with pytest.raises(SystemExit, match="no trajectory runs under .*train first"):
        tr.write_report(tmp_path / "empty", tmp_path, end_runs=[], figures=False)


def test_monitor_outside_a_trainer_measures_every_layer():
    from lightning_topo.models import MLPClassifier

    torch.manual_seed(0)
    model = MLPClassifier(2, 2, hidden=(6, 6), activation="proposed")
    x = torch.randn(60, 2)
    y = (x[:, 0] > 0).long()
    monitor = tr.make_monitor(model, x, y, tr.SETS["d1"])
    entry = monitor.compute(model, epoch=3, step=3)
    assert entry["epoch"] == 3
    assert list(entry["betti"]) == ["input", "features.layer1.act", "features.layer2.act", "logits"]
    assert all(len(v) == 2 for layer in entry["betti"].values() for v in layer.values())  # dims 0 and 1


def test_route_cell_tells_the_two_checks_apart_and_reads_old_runs_as_full_batch():
    new_ok = {"route_check": True, "full_batch_check": False}
    new_bad = {"route_check": False, "full_batch_check": False}
    old = {"route_check": True}  # made before full_batch_check existed: its route_check was the full-batch one
    assert tr.route_cell([new_ok, new_bad]) == "1/2; 0/2"
    assert tr.route_cell([new_ok, old]) == "1/1; 1/2"
    assert tr.route_cell([old, old]) == "n/a; 2/2"
