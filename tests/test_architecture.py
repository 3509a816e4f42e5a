"""The layout's import rules, read from the source, so that they cannot rot (docs/architecture.md states them).

1. Imports never run up a floor: the topology core, the activations and the shared argument checks (1), the plain-torch building blocks
   ``monitoring/`` and ``pruning/`` (2), the Lightning floor ``callbacks/``, ``models/`` and ``data/`` (3), the
   command line (4) and the package's lazy front (5).
2. Floors 1 and 2 import no Lightning (neither ``lightning`` nor ``pytorch_lightning``).
3. Callbacks hold no numerics: no numpy, scipy or gudhi, and from the topology core only its validation constants.
4. The monitor's worker processes import no torch.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers.paths import REPO

PACKAGE = REPO / "lightning_topo"
LIGHTNING = ("lightning", "pytorch_lightning")
NUMERICS = ("numpy", "scipy", "gudhi", "ripser")
#: names a callback may take from the topology core: constants its argument checks name in their messages
TOPOLOGY_CONSTANTS = {"METRICS"}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, e.g. lightning_topo.callbacks.betti_monitor
    target: str  # the imported module, e.g. lightning_topo.topology
    names: tuple[str, ...]  # for `from target import names`
    line: int
    type_checking: bool  # under `if TYPE_CHECKING:` (not run)

    def __str__(self) -> str:
        what = f"from {self.target} import {', '.join(self.names)}" if self.names else f"import {self.target}"
        return f"{self.module} line {self.line}: {what}"


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(source: str, module: str, is_package: bool = False) -> list[Import]:
    """Every import in ``source`` (module level, inside functions, relative ones resolved)."""
    found: list[Import] = []
    tree = ast.parse(source)
    guarded: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            guarded |= {id(child) for statement in node.body for child in ast.walk(statement)}
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append(Import(module, alias.name, (), node.lineno, id(node) in guarded))
        elif isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join([*base, target] if target else base)
            names = tuple(alias.name for alias in node.names)
            found.append(Import(module, target, names, node.lineno, id(node) in guarded))
    return found


def package_imports() -> list[Import]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        found += imports_of(path.read_text(), module_name(path), path.name == "__init__.py")
    return found


def floor(module: str) -> int:
    """The floor of a ``lightning_topo`` module (see the module docstring)."""
    parts = module.split(".")
    if len(parts) == 1:
        return 5  # lightning_topo/__init__.py: the lazy public front
    top = parts[1]
    if top in ("topology", "activations", "arguments"):
        return 1
    if top in ("monitoring", "pruning"):
        return 2
    if top == "data" and (len(parts) == 2 or parts[2] == "synthetic"):
        return 2  # the generators (numpy only); data/__init__ resolves its data modules lazily
    if top in ("callbacks", "models", "data"):
        return 3
    if top == "cli":
        return 4
    raise AssertionError(f"{module} belongs to no floor: add its package to tests/test_architecture.py's floors")


def is_within(target: str, roots: tuple[str, ...]) -> bool:
    return any(target == root or target.startswith(root + ".") for root in roots)


def upward_imports(found: list[Import]) -> list[str]:
    return [
        str(i)
        for i in found
        if i.target.startswith("lightning_topo")
        and not i.type_checking
        and floor(i.target) > floor(i.module)
        and i.names != ("__version__",)  # the package's version, metadata any floor may print
    ]


def lightning_in_low_floors(found: list[Import]) -> list[str]:
    return [str(i) for i in found if floor(i.module) <= 2 and is_within(i.target, LIGHTNING)]


def numerics_in_callbacks(found: list[Import]) -> list[str]:
    bad = []
    for i in found:
        if not i.module.startswith("lightning_topo.callbacks") or i.type_checking:
            continue
        if is_within(i.target, NUMERICS):
            bad.append(str(i))
        elif is_within(i.target, ("lightning_topo.topology",)) and not set(i.names) <= TOPOLOGY_CONSTANTS:
            bad.append(str(i))
    return bad


# ------------------------------------------------------------------------------------------ the rules
def test_imports_never_run_up_a_floor():
    assert not upward_imports(package_imports()), "imports that run up a floor:\n" + "\n".join(
        upward_imports(package_imports())
    )


def test_the_topology_core_monitoring_and_pruning_import_no_lightning():
    bad = lightning_in_low_floors(package_imports())
    assert not bad, "Lightning imported below the Lightning floor:\n" + "\n".join(bad)


def test_callbacks_hold_no_numerics():
    bad = numerics_in_callbacks(package_imports())
    assert not bad, "numerics in a callback (move them to monitoring/ or pruning/):\n" + "\n".join(bad)


def test_the_workers_import_no_torch():
    """The worker process's entry, its framing and its jobs (Betti numbers and figures), run as a worker runs them."""
    script = (
        "import sys\n"
        "import lightning_topo.monitoring.worker, lightning_topo.monitoring.runner, lightning_topo.monitoring.jobs\n"
        "from lightning_topo.monitoring.jobs import betti_job, render_job\n"
        "from lightning_topo.topology import numpy_neighbour_lists\n"
        "import numpy as np\n"
        "t = np.linspace(0, 6.28, 40, endpoint=False)\n"
        "lists = numpy_neighbour_lists(np.stack([np.cos(t), np.sin(t)], 1), k=4)\n"
        "assert betti_job([(('a', '0'), lists)], max_dim=1, scale=2.5)[0][1] == [1, 1]\n"
        "render_job([{'epoch': 0, 'step': 0, 'betti': {'a': {'0': [1, 1]}}}], ['a'], [0, 1])\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'lightning', 'pytorch_lightning'))\n"
        "print(loaded[:5])\n"
        "sys.exit(1 if loaded else 0)\n"
    )
    try:
        run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=REPO)
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"the worker import check ran past 120 s: {error.stdout}\n{error.stderr}")
    assert run.returncode == 0, f"a worker's imports loaded {run.stdout.strip()}:\n{run.stderr[-3000:]}"


# ------------------------------------------------------------------------------------------ the checks can fail
def test_the_checker_catches_each_kind_of_break():
    assert floor("lightning_topo.topology.graph") == 1 and floor("lightning_topo.cli") == 4
    core = imports_of(
        "from lightning_topo.callbacks import BettiMonitor\nimport lightning.pytorch as pl\n",
        "lightning_topo.topology.graph",
    )
    assert upward_imports(core) == [
        "lightning_topo.topology.graph line 1: from lightning_topo.callbacks import BettiMonitor"
    ]
    assert lightning_in_low_floors(core) == ["lightning_topo.topology.graph line 2: import lightning.pytorch"]
    callback = imports_of(
        "import numpy as np\nfrom lightning_topo.topology import METRICS\nfrom lightning_topo.topology import betti_numbers\n"
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import scipy\n",
        "lightning_topo.callbacks.x",
    )
    assert numerics_in_callbacks(callback) == [
        "lightning_topo.callbacks.x line 1: import numpy",
        "lightning_topo.callbacks.x line 3: from lightning_topo.topology import betti_numbers",
    ]
    relative = imports_of("from ..topology import lists\nfrom . import jobs\n", "lightning_topo.monitoring.clouds")
    assert [i.target for i in relative] == ["lightning_topo.topology", "lightning_topo.monitoring"]
