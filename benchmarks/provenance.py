"""How a benchmark's figures were made: date, commit, command, machine and versions, printed once per printout.

Every script in ``benchmarks/`` prints :func:`header` first and stores :func:`provenance` in the JSON it writes,
so that each figure quoted in the docs can be traced to the build that produced it.

Example:
    >>> record = provenance(["benchmarks/example.py", "--fast"])
    >>> {"date", "commit", "command", "cpu_count", "versions"} <= set(record)
    True
    >>> header(["benchmarks/example.py"]).splitlines()[0].startswith("# date: ")
    True
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["header", "print_header", "provenance"]

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("torch", "torchvision", "lightning", "gudhi", "numpy", "timm", "transformers")


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
