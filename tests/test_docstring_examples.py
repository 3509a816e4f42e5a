"""The examples in the pure modules' docstrings run and print what they say (doctest)."""

from __future__ import annotations

import json
import sys

from conftest import run_child

#: Modules whose examples are self-contained (no training, no download). They run in a fresh interpreter,
#: since an example registers an activation and so changes the registry of the process it runs in.
MODULES = [
    "lightning_topo",
    "lightning_topo.activations",
    "lightning_topo.callbacks.base",
    "lightning_topo.data.synthetic",
    "lightning_topo.monitoring.capture",
    "lightning_topo.monitoring.layers",
    "lightning_topo.monitoring.report",
    "lightning_topo.pruning.selection",
    "lightning_topo.pruning.structural",
    "lightning_topo.topology.betti",
    "lightning_topo.topology.filters",
    "lightning_topo.topology.flag",
    "lightning_topo.topology.graph",
    "lightning_topo.topology.intrinsic",
]

SCRIPT = """
import doctest, importlib, json, sys
results = {}
for name in sys.argv[1:]:
    outcome = doctest.testmod(importlib.import_module(name), verbose=False)
    results[name] = [outcome.failed, outcome.attempted]
print(json.dumps(results))
"""


def test_docstring_examples_run_as_written():
    run = run_child([sys.executable, "-c", SCRIPT, *MODULES], timeout=300)
    assert run.returncode == 0, run.stderr
    results = json.loads(run.stdout.strip().splitlines()[-1])
    failed = {name: run.stdout for name, (n_failed, _) in results.items() if n_failed}
    assert not failed, f"docstring examples failed in {sorted(failed)}:\n{run.stdout}"
    assert all(attempted > 0 for _, attempted in results.values()), results  # every listed module has examples
