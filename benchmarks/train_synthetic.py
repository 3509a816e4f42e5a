"""The synthetic recipes as `lightning-topo fit` runs them: the epoch of 100% training accuracy and the wall time.

Each recipe is built by the package's LightningCLI from its YAML exactly as shipped (BettiMonitor, EarlyStopping,
EpochProgress and the checkpoints included; only the TensorBoard directory moves to a temporary folder) and fitted as the CLI's
``fit`` subcommand does (``trainer.fit(model, datamodule=...)``). One table row per recipe: training points,
network (hidden widths and activation), the epoch at which the whole training set is classified (EarlyStopping's
``train_acc > 0.99999``; "not reached" when ``max_epochs`` ran out first), the wall time of the whole run (data
generation included) and the monitor's share of it: the time spent inside BettiMonitor's hooks, measured around
them, so work the monitor leaves to other processes is not counted, only what the training loop waits for.
The 1-minute load average before and after each run is printed too: the CPU is shared, and a loaded machine
makes every run slower. On a shared CPU whose load exceeds its core count, ``--threads 1`` (or ``OMP_NUM_THREADS=1``
for ``lightning-topo fit``) is much faster for these small full-batch networks: under a load average of about 12 on
2 cores, the D-I network's full-batch loop ran 250 epochs in 13 s with 1 torch thread, and fewer than 250 in
100 s with torch's default 2.

Each recipe runs up to three times in one invocation, so their times share the same machine load: first its own
model, data and optimizer/scheduler (``configure_optimizers``), seeded the same way by the CLI, in a bare full-batch
PyTorch loop without Lightning's loop or the monitor (the same arithmetic, so the same epoch of 100%: checked 1009
on D-I, 622 on D-II, 2257 on D-III, as the Lightning runs), then the recipe as shipped, then
the recipe with BettiMonitor removed. Each row gives its training time (data generation included: ``trainer.fit``,
or the data module's ``setup`` and the bare loop) and its ratio to the bare loop's, the cost of Lightning's loop,
logging, callbacks and checkpoints over the arithmetic; the wall time adds building everything from the YAML. The
last columns count the checkpoint files the fit wrote (a rewritten file counts each time) and give the load average.
``--plain`` runs the bare loop only (the epoch of 100%, quickly); ``--no-monitor-off`` skips the third run.
``--repeats N`` runs these N times in turn (bare loop, recipe, recipe without monitor, bare loop, ...), each ratio
against the bare loop of its own round, and ends with a second table: per recipe and run, the median training time
and the median ratio over the rounds, every round's ratio in brackets.

Targets: the D-I recipe reaches 100% in under 3 minutes on a 2-core CPU (issue 3); every synthetic recipe
reaches 100% as shipped, each in under 10 minutes (issue 12).

Usage:
    python benchmarks/train_synthetic.py | tee benchmarks/results/train_synthetic.txt   # the four recipes
    python benchmarks/train_synthetic.py --recipes d1_circles --threads 1   # bare loop, recipe, recipe w/o monitor
    python benchmarks/train_synthetic.py --recipes d1_circles d2_tori --threads 1
    python benchmarks/train_synthetic.py --recipes d1_circles d2_tori d3_spheres --repeats 3   # medians of 3 rounds
    python benchmarks/train_synthetic.py --recipes d2_tori_paper --trainer.max_epochs=3000   # any CLI override
    python benchmarks/train_synthetic.py --recipes d1_large --threads 1 --plain   # epoch of 100% only, fast
"""

from __future__ import annotations

import functools
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import Parser, build_recipe, forget_betti, recipe_in_temp_logs, recipe_path

from lightning_topo.callbacks import BettiMonitor
from lightning_topo.callbacks.epoch_progress import budget_reached

MAIN_RECIPES = ("d1_circles", "d2_tori", "d3_spheres", "d1_large")


@dataclass
class Row:
    """One run's measurement."""

    recipe: str
    kind: str  # "bare PyTorch loop (--plain)", "recipe as shipped", "recipe, BettiMonitor removed"
    points: int
    network: str
    epoch: str  # epoch of 100% training accuracy, or "not reached (...)"
    train_s: float  # data generation + training (trainer.fit, or setup + the bare loop)
    wall_s: float  # train_s plus building everything from the YAML
    monitor_s: float
    monitored_epochs: int  # -1: no monitor in this run
    checkpoints: int  # checkpoint files written during the fit (rewrites of the same file count)
    load: str  # 1-minute load average before -> after
    ratio: float = float("nan")  # train_s / the bare loop's train_s in the same invocation

    def markdown(self) -> str:
        share = (
            f"{100 * self.monitor_s / self.train_s:.0f}% ({self.monitor_s:.1f} s, {self.monitored_epochs} measurements)"
            if self.monitored_epochs >= 0
            else "n/a"
        )
        return (
            f"| `{self.recipe}.yaml` | {self.kind} | {self.points:,} | {self.network} | {self.epoch} |"
            f" {self.train_s:.1f} s | {self.ratio:.1f}x | {self.wall_s:.1f} s | {share} | {self.checkpoints} |"
            f" {self.load} |"
        )


def _timed(hook: Any, spent: list[float]) -> Any:
    """``hook`` that adds the seconds it runs to ``spent[0]``."""

    @functools.wraps(hook)
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return hook(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - start

    return timed


def _time_hooks(monitor: Any, spent: list[float]) -> None:
    """Wrap every ``on_*``/``setup``/``teardown`` hook of this monitor instance so its time adds up in ``spent``."""
    for name in dir(type(monitor)):
        if (name.startswith("on_") or name in ("setup", "teardown")) and callable(getattr(monitor, name)):
            setattr(monitor, name, _timed(getattr(monitor, name), spent))


def _network(model: Any) -> str:
    hp = getattr(model, "hparams", {})
    widths = list(hp.get("hidden", []))
    shape = f"{len(widths)}x{widths[0]}" if widths and len(set(widths)) == 1 else "-".join(map(str, widths))
    return f"{shape} {hp.get('activation', '?')}"


def _recipe(name: str) -> Path:
    path = recipe_path(name)
    if not path.is_file():
        raise SystemExit(f"no recipe {path}; choose from {sorted(p.stem for p in path.parent.glob('*.yaml'))}")
    return path


def run_recipe(recipe: str, extra: list[str], monitor: bool = True) -> Row:
    """Fit one recipe as shipped (plus ``extra`` CLI overrides) and measure it; ``monitor=False`` drops BettiMonitor.

    ``train_s`` is the time of ``trainer.fit`` (data generation in the data module's ``setup`` included, as in
    :func:`run_plain`); ``wall_s`` adds building the trainer, model and data module from the YAML.
    """
    path = _recipe(recipe)
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    with recipe_in_temp_logs(path, *extra) as cli:
        trainer = cli.trainer
        if not monitor:
            trainer.callbacks[:] = [c for c in trainer.callbacks if not isinstance(c, BettiMonitor)]
        betti = next((c for c in trainer.callbacks if isinstance(c, BettiMonitor)), None)
        spent = [0.0]
        if betti is not None:
            _time_hooks(betti, spent)
        writes = [0]
        save = trainer.save_checkpoint  # what ModelCheckpoint calls for every file it writes

        def counted(*args: Any, **kwargs: Any) -> Any:
            writes[0] += 1
            return save(*args, **kwargs)

        trainer.save_checkpoint = counted
        forget_betti()  # as in a fresh process: a later round fits the same weights and would only look them up
        fit_start = time.perf_counter()
        trainer.fit(cli.model, datamodule=cli.datamodule)
        end = time.perf_counter()
        checkpoints = writes[0]
    accuracy = float(trainer.callback_metrics["train_acc"])
    budget = budget_reached(trainer)
    if budget is None and accuracy >= 1.0:
        epoch = str(trainer.current_epoch)
    else:
        epoch = f"not reached ({budget or 'stopped'} at epoch {trainer.current_epoch}, train_acc {accuracy:.5f})"
    return Row(
        recipe=recipe,
        kind="recipe as shipped" if monitor else "recipe, BettiMonitor removed",
        points=len(cli.datamodule.train_set),
        network=_network(cli.model),
        epoch=epoch,
        train_s=end - fit_start,
        wall_s=end - start,
        monitor_s=spent[0],
        monitored_epochs=len(getattr(betti, "history", [])) if betti is not None else -1,
        checkpoints=checkpoints,
        load=f"{load_before:.1f} -> {os.getloadavg()[0]:.1f}",
    )


def run_plain(recipe: str, extra: list[str]) -> Row:
    """The recipe's model, data, optimizer and seed in a bare full-batch loop: the epoch of 100%, quickly.

    ``train_s`` runs from the data module's ``setup`` (data generation) to the last step, like the Lightning rows.
    """
    import torch.nn.functional as F

    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    cli = build_recipe(_recipe(recipe), *extra)
    model, datamodule = cli.model, cli.datamodule
    fit_start = time.perf_counter()
    datamodule.setup("fit")
    x, y = datamodule.train_set.tensors
    configured = model.configure_optimizers()
    optimizer, schedule = configured["optimizer"], configured.get("lr_scheduler", {}).get("scheduler")
    epoch, accuracy = "", 0.0
    for step in range(cli.trainer.max_epochs):
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        accuracy = (logits.argmax(1) == y).float().mean().item()  # what EarlyStopping sees at this epoch's end
        if accuracy == 1.0:
            epoch = str(step + 1)  # epochs run, as Lightning's trainer.current_epoch counts them after the stop
            break
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if schedule is not None:
            schedule.step()
    else:
        epoch = f"not reached (max_epochs={cli.trainer.max_epochs}, train_acc {accuracy:.5f})"
    end = time.perf_counter()
    return Row(
        recipe=recipe,
        kind="bare PyTorch loop (--plain)",
        points=len(x),
        network=_network(model),
        epoch=epoch,
        train_s=end - fit_start,
        wall_s=end - start,
        monitor_s=0.0,
        monitored_epochs=-1,
        checkpoints=0,
        load=f"{load_before:.1f} -> {os.getloadavg()[0]:.1f}",
    )


HEADER = [
    "| recipe | run | points | network | epoch of 100% | training time | x bare loop | wall time | monitor share "
    "(time in its hooks) | checkpoint writes | load avg |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
]


def one_round(recipe: str, extra: list[str], args: Any, counter: str) -> list[Row]:
    """The bare loop, then (unless ``--plain``) the recipe and (unless ``--no-monitor-off``) the recipe without its
    monitor, each row printed as it ends with its ratio to this round's bare loop."""
    plain = run_plain(recipe, extra)
    runs = [plain]
    if not args.plain:
        runs.append(run_recipe(recipe, extra, monitor=True))
        if not args.no_monitor_off:
            runs.append(run_recipe(recipe, extra, monitor=False))
    for row in runs:
        row.ratio = row.train_s / plain.train_s
        print(f"\n== {counter}{row.markdown()}", flush=True)
    return runs


MEDIAN_HEADER = [
    "| recipe | run | epoch of 100% | training time (median) | x bare loop (median) | x bare loop, every round |",
    "|---|---|---|---|---|---|",
]


def median_row(same_run: tuple[Row, ...]) -> str:
    """One line of the medians table: the same recipe and run kind, one :class:`Row` per round."""
    first = same_run[0]
    epochs = sorted({row.epoch for row in same_run})
    ratios = ", ".join(f"{row.ratio:.2f}" for row in same_run)
    return (
        f"| `{first.recipe}.yaml` | {first.kind} | {' / '.join(epochs)} |"
        f" {statistics.median(row.train_s for row in same_run):.1f} s |"
        f" {statistics.median(row.ratio for row in same_run):.2f}x | [{ratios}] |"
    )


def main() -> None:
    parser = Parser(__doc__)
    parser.add_argument("--recipes", nargs="+", default=list(MAIN_RECIPES), help="recipe names (recipes/<name>.yaml)")
    parser.with_threads(help="torch threads (default: torch's own, one per core); see the docstring")
    parser.add_argument("--plain", action="store_true", help="bare PyTorch loop only: the epoch of 100%% (see above)")
    parser.add_argument(
        "--no-monitor-off",
        action="store_true",
        help="skip the third run per recipe (the recipe without BettiMonitor)",
    )
    parser.add_argument("--repeats", type=int, default=1, help="rounds per recipe; > 1 adds a table of medians")
    args, extra = parser.parse_known_args()  # anything else is a LightningCLI override, e.g. --trainer.max_epochs=3000
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    rows: list[Row] = []
    medians: list[str] = []
    for recipe in args.recipes:
        counters = [f"round {i + 1}/{args.repeats} " for i in range(args.repeats)] if args.repeats > 1 else [""]
        rounds = [one_round(recipe, extra, args, counter) for counter in counters]
        rows += [row for runs in rounds for row in runs]
        medians += [median_row(same_run) for same_run in zip(*rounds)]
    print("\n" + "\n".join(HEADER + [row.markdown() for row in rows]), flush=True)
    if args.repeats > 1:
        print(f"\nmedians of {args.repeats} rounds\n" + "\n".join(MEDIAN_HEADER + medians), flush=True)


if __name__ == "__main__":
    main()
