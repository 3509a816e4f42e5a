"""What every script in ``benchmarks/`` shares: its argument parser, its provenance, its training loop, recipes.

:class:`Parser` holds the options scripts repeat and prints the provenance :func:`header` (date, commit, command,
machine, versions) once the arguments are parsed; :func:`write_json` stores a result with that same record;
:func:`training_steps` is the full-batch loop that ``convergence.py``, ``trajectories.py`` and
``intrinsic_profile.py`` train with; :func:`build_recipe` (and :func:`recipe_in_temp_logs`) builds a recipe from its
YAML as shipped, through the package's LightningCLI, with only its TensorBoard folder moved or its logger off.

Example:
    >>> record = provenance(["benchmarks/example.py", "--fast"])
    >>> {"date", "commit", "command", "cpu_count", "versions"} <= set(record)
    True
    >>> header(["benchmarks/example.py"]).splitlines()[0].startswith("# date: ")
    True
    >>> args = Parser(description="demo", header=False).with_threads().with_seed().parse_args(["--seed", "3"])
    >>> (args.seed, args.threads)
    (3, None)
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.metadata
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = [
    "DATA_ROOT",
    "REPO",
    "Parser",
    "build_recipe",
    "header",
    "load_recipe",
    "print_header",
    "probe_clouds",
    "provenance",
    "recipe_in_temp_logs",
    "recipe_path",
    "training_steps",
    "write_json",
]

REPO = Path(__file__).resolve().parents[1]
DATA_ROOT = REPO.parent / "shared" / "data"  # where the data sets are downloaded once, beside the checkout
PACKAGES = ("torch", "torchvision", "lightning", "gudhi", "numpy", "timm", "transformers")


# ---------------------------------------------------------------------------------------------- provenance
def _git(*args: str) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def _commit() -> str:
    commit = _git("rev-parse", "--short=12", "HEAD") or "unknown"
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return commit + (" (with uncommitted changes)" if dirty else "")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _gpu() -> str:
    if "torch" not in sys.modules:  # never import torch only to describe the machine
        return "not checked (torch not imported)"
    torch = sys.modules["torch"]
    if torch.cuda.is_available():
        return ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    return "none"


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def provenance(argv: list[str] | None = None) -> dict[str, Any]:
    """The record of this run: ``date`` (UTC, ISO), ``commit``, ``command``, machine and package versions."""
    argv = sys.argv if argv is None else argv
    versions = {"python": platform.python_version()}
    versions.update({name: v for name in PACKAGES if (v := _version(name)) is not None})
    record: dict[str, Any] = {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": _commit(),
        "command": "python " + shlex.join(argv),
        "cpu_count": os.cpu_count(),
        "cpu": _cpu_model(),
        "gpu": _gpu(),
        "versions": versions,
    }
    torch = sys.modules.get("torch")
    if torch is not None:
        record["torch_threads"] = torch.get_num_threads()
    try:
        record["load_average"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    return record


def header(argv: list[str] | None = None) -> str:
    """:func:`provenance` as ``# key: value`` comment lines, the first lines of a printout."""
    record = provenance(argv)
    lines = [
        f"# date: {record['date']}",
        f"# commit: {record['commit']}",
        f"# command: {record['command']}",
        f"# machine: {record['cpu_count']} CPU cores ({record['cpu']}), GPU: {record['gpu']}",
        "# versions: " + ", ".join(f"{k} {v}" for k, v in record["versions"].items()),
    ]
    if "torch_threads" in record:
        lines.append(f"# torch threads: {record['torch_threads']}")
    if "load_average" in record:
        lines.append("# load average (1, 5, 15 min): " + ", ".join(map(str, record["load_average"])))
    return "\n".join(lines)


def print_header(argv: list[str] | None = None) -> None:
    """Print :func:`header` and flush, so it stays first when the output is piped through ``tee``."""
    print(header(argv), flush=True)


def write_json(path: str | Path, record: dict[str, Any], **dump: Any) -> Path:
    """Write ``record`` to ``path`` as JSON with this run's :func:`provenance` under ``"provenance"`` (a record that
    already carries one keeps it); ``dump`` goes to :func:`json.dumps` (default ``indent=1``)."""
    path = Path(path)
    record = {**record, "provenance": record.get("provenance") or provenance()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, **({"indent": 1} | dump)))
    return path


# ---------------------------------------------------------------------------------------------- arguments
class Parser(argparse.ArgumentParser):
    """The argument parser of a benchmark: the script's docstring as its help, the repeated options one call away,
    and the provenance header printed (and ``--threads`` applied) as soon as the arguments are parsed.

    Args:
        description: The help text (usually the script's ``__doc__``), printed as written.
        header: Print :func:`header` after parsing (``False`` for scripts whose output is data).
        silent_when: Destinations of options that, when set, mean a child process whose stdout is data: no header.
    """

    def __init__(
        self, description: str | None = None, header: bool = True, silent_when: Sequence[str] = (), **kwargs: Any
    ) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(description=description, **kwargs)
        self.header, self.silent_when = header, tuple(silent_when)

    def with_out(self, default: str | Path | None, help: str = "where the results are written") -> Parser:
        """``--out PATH``."""
        self.add_argument("--out", type=Path, default=None if default is None else Path(default), help=help)
        return self

    def with_threads(self, default: int | None = None, help: str = "torch CPU threads (default: torch's)") -> Parser:
        """``--threads N``, applied with :func:`torch.set_num_threads` when parsed (0 or unset: torch's default)."""
        self.add_argument("--threads", type=int, default=default, help=help)
        return self

    def with_seed(self, default: int = 0, help: str = "random seed") -> Parser:
        """``--seed N``."""
        self.add_argument("--seed", type=int, default=default, help=help)
        return self

    def with_seeds(self, default: Sequence[int], help: str = "random seeds, one run each") -> Parser:
        """``--seeds N [N ...]``."""
        self.add_argument("--seeds", nargs="+", type=int, default=list(default), help=help)
        return self

    def with_device(self, default: str = "cpu", help: str = "where to compute: cpu, or cuda", **kwargs: Any) -> Parser:
        """``--device NAME``."""
        self.add_argument("--device", default=default, help=help, **kwargs)
        return self

    def with_quick(self, help: str = "a smoke run: tiny sizes, to check the script runs") -> Parser:
        """``--quick``."""
        self.add_argument("--quick", action="store_true", help=help)
        return self

    def with_data_root(
        self, default: str | Path = DATA_ROOT, help: str = "folder holding the data sets", **kwargs: Any
    ) -> Parser:
        """``--data-root PATH`` (default: ``../shared/data`` beside the checkout)."""
        self.add_argument("--data-root", default=str(default), help=help, **kwargs)
        return self

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: Any = None
    ) -> tuple[argparse.Namespace, list[str]]:
        """Parse (``parse_args`` comes here too), apply ``--threads`` and print the provenance header (unless
        silenced)."""
        parsed, extra = super().parse_known_args(args, namespace)
        threads = getattr(parsed, "threads", None)
        if threads is not None and threads < 0:
            self.error(f"--threads must be 0 (torch's default) or a positive integer, got {threads}")
        if threads or str(getattr(parsed, "device", "")).startswith("cuda"):  # the header names the GPU
            import torch

            if threads:
                torch.set_num_threads(threads)
        if self.header and not any(getattr(parsed, dest, None) for dest in self.silent_when):
            print_header(None if args is None else [sys.argv[0], *args])
        return parsed, extra


# ---------------------------------------------------------------------------------------------- training
def training_steps(model: Any, x: Any, y: Any, cfg: Any, epochs: int) -> Iterator[tuple[int, Any, float]]:
    """Full-batch Adam at ``cfg.lr``, halved every ``cfg.lr_halve_every`` steps (a set's schedule, e.g.
    ``convergence.SetConfig``): yields ``(step, logits, accuracy)`` BEFORE update ``step`` (the accuracy after
    ``step`` updates), ``epochs + 1`` times; the caller may stop early (``convergence.run_one`` at 100%)."""
    import torch
    import torch.nn.functional as F

    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    schedule = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.lr_halve_every, gamma=0.5)
    for step in range(epochs + 1):
        logits = model(x)
        yield step, logits, (logits.argmax(1) == y).float().mean().item()
        if step == epochs:
            return
        loss = F.cross_entropy(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()


# ---------------------------------------------------------------------------------------------- recipes
def recipe_path(name: str | Path) -> Path:
    """``recipes/<name>.yaml`` of this checkout (a path ending in ``.yaml`` is returned as it is)."""
    name = Path(name)
    return name if name.suffix in (".yaml", ".yml") else REPO / "recipes" / f"{name}.yaml"


def load_recipe(name: str | Path) -> dict[str, Any]:
    """The recipe :func:`recipe_path` names, as a dict."""
    import yaml

    return yaml.safe_load(recipe_path(name).read_text())


def build_recipe(name: str | Path, *overrides: str, logs: str | Path | None = None) -> Any:
    """The recipe built by the package's LightningCLI from its YAML as shipped, not fitted yet (``run=False``).

    ``name``: as :func:`recipe_path` takes it.  ``logs``: the folder its TensorBoard logger writes to (the
    recipe's logger, only moved); ``None`` turns the logger off.  ``overrides``: LightningCLI arguments such as
    ``"--trainer.max_epochs=3"``, applied after the YAML.  Returns the ``LightningCLI`` (``.trainer``, ``.model``,
    ``.datamodule``).
    """
    from lightning_topo.cli import run_cli

    logger = "--trainer.logger=false" if logs is None else f"--trainer.logger.init_args.save_dir={logs}"
    return run_cli(["-c", str(recipe_path(name)), logger, *overrides], run=False)


@contextmanager
def recipe_in_temp_logs(name: str | Path, *overrides: str) -> Iterator[Any]:
    """:func:`build_recipe` logging into a temporary folder, removed when the block ends (fit inside it)."""
    with tempfile.TemporaryDirectory() as logs:
        yield build_recipe(name, *overrides, logs=logs)


# ---------------------------------------------------------------------------------------------- monitor internals
def forget_betti() -> None:
    """Empty the monitor's Betti memo (:mod:`lightning_topo.monitoring.memo`), so that the next Betti jobs compute.

    The memo answers neighbour lists it has already seen; timing the same weights twice would time the second
    run's lookups.  In a fit the weights change between measurements, so only unchanged layers hit it.  An old
    package (``--old`` comparisons) has no memo and is left as it is."""
    try:
        from lightning_topo.monitoring.memo import BETTI_MEMO
    except ImportError:
        return
    BETTI_MEMO.clear()


def fresh_compute(monitor: Any, model: Any, **kwargs: Any) -> dict[str, Any]:
    """``monitor.compute(model)`` after :func:`forget_betti`: a timed measurement that does all its work."""
    forget_betti()
    return monitor.compute(model, **kwargs)


def probe_clouds(monitor: Any) -> tuple[Any, dict[str, Any], dict[str, list[str]]]:
    """``(inputs, clouds, layers per cloud)`` of a :class:`~lightning_topo.callbacks.BettiMonitor` whose probe is set,
    as its measurements pass them to :func:`lightning_topo.monitoring.clouds.reduce_clouds` on one process: one cloud
    per class (or ``"all"``), each measured at every watched layer. Built from the monitor's public state only."""
    import torch

    x, labels = monitor.probe
    if monitor.per_class:
        clouds = {str(int(c)): torch.nonzero(labels == c).flatten() for c in torch.unique(labels)}
    else:
        clouds = {"all": None}
    return x, clouds, {cloud: monitor.watched_layers for cloud in clouds}
