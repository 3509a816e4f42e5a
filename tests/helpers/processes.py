"""Child processes that fail a test fast, with their output, instead of hanging it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

#: Seconds a test's child process may run: well under pytest-timeout's 600 s for the whole test, so a hang fails
#: fast and with the child's output instead of as a bare timeout.
CHILD_TIMEOUT = 120


def _text(output: str | bytes | None) -> str:
    if isinstance(output, bytes):  # TimeoutExpired carries bytes even for text=True
        return output.decode(errors="replace")
    return output or ""


def run_child(
    args: list[str], *, timeout: float = CHILD_TIMEOUT, check: bool = False, **kwargs: Any
) -> subprocess.CompletedProcess:
    """``subprocess.run(args, capture_output=True, text=True)`` that fails the test with the child's output when
    it runs past ``timeout`` seconds (and, with ``check``, when it exits non-zero)."""
    try:
        result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kwargs)
    except subprocess.TimeoutExpired as error:
        pytest.fail(
            f"{args[:3]}... ran past {timeout:g} s; its output so far:\n"
            f"--- stdout\n{_text(error.stdout)[-3000:]}\n--- stderr\n{_text(error.stderr)[-5000:]}",
            pytrace=False,
        )
    if check and result.returncode != 0:
        pytest.fail(
            f"{args[:3]}... exited with {result.returncode}:\n--- stdout\n{result.stdout[-3000:]}\n"
            f"--- stderr\n{result.stderr[-5000:]}",
            pytrace=False,
        )
    return result


def run_two_rank_script(directory: Path, source: str) -> tuple[dict, dict]:
    """Run ``source`` (a 2-process DDP script that writes ``rank<r>.json`` into ``argv[1]``); both ranks' JSON."""
    import json
    import textwrap

    script = directory / "two_ranks.py"
    script.write_text(textwrap.dedent(source))
    result = run_child([sys.executable, str(script), str(directory)], timeout=300, cwd=directory)
    assert result.returncode == 0, result.stderr[-3000:]
    rank0, rank1 = (json.loads((directory / f"rank{r}.json").read_text()) for r in (0, 1))
    return rank0, rank1
