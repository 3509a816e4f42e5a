"""Score a mutmut 3 run: per module, how many mutants were killed, survived, timed out, were suspicious or not run.

Reads mutmut's result files (``mutants/**/*.py.meta``) and ``benchmarks/mutation/equivalent.txt`` (one equivalent
mutant name a line, then `` # `` and why), and prints the score over the non-equivalent mutants that ran.
``--save FILE`` keeps the exit codes as JSON (the "before" snapshot); ``--before FILE`` prints that snapshot's
score next to today's. The provenance header is written here (not by benchmarks/provenance.py) so this script
reads nothing else of the project.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import os
import platform
import random
import subprocess
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EQUIVALENT = Path(__file__).with_name("equivalent.txt")
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped", 36: "timeout"}
STATUS.update({24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout", None: "not run"})
COLUMNS = ("killed", "timeout", "survived", "equivalent", "suspicious", "no tests", "not run")


def status(code: int | None) -> str:
    """mutmut's verdict for a mutant's exit code (anything unknown is "suspicious", as in mutmut)."""
    return STATUS.get(code, "suspicious")


def load_results(root: Path) -> dict[str, int | None]:
    """Every mutant's exit code, by mutant name, from the ``.meta`` files under ``root`` (mutmut's ``mutants/``)."""
    codes: dict[str, int | None] = {}
    for meta in sorted(root.rglob("*.py.meta")):
        codes.update(json.loads(meta.read_text())["exit_code_by_key"])
    return codes


def load_equivalent(path: Path = EQUIVALENT) -> dict[str, str]:
    """Equivalent mutant names and the reason given for each."""
    if not path.exists():
        return {}
    out = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, reason = line.partition("#")
            out[name.strip()] = reason.strip()
    return out


def module_of(name: str) -> str:
    """``lightning_topo.topology.graph.x_knn__mutmut_3`` -> ``lightning_topo.topology.graph``."""
    return name.rsplit(".", 1)[0]


def only_modules(codes: dict[str, int | None], modules: list[str] | None) -> dict[str, int | None]:
    """The mutants of the named modules of topology/ (``["reduction"]``) or functions (``["graph.x_knn_indices"]``,
    mutmut's name for ``graph.knn_indices``), or every mutant when ``modules`` is None."""
    if not modules:
        return codes
    wanted = {f"lightning_topo.topology.{m}" for m in modules}
    return {
        name: code for name, code in codes.items() if module_of(name) in wanted or name.split("__mutmut_")[0] in wanted
    }


def tally(codes: dict[str, int | None], equivalent: dict[str, str]) -> dict[str, Counter]:
    """Counts of each verdict per module (a surviving mutant listed as equivalent counts as "equivalent")."""
    table: dict[str, Counter] = {}
    for name, code in codes.items():
        verdict = status(code)
        if verdict == "survived" and name in equivalent:
            verdict = "equivalent"
        table.setdefault(module_of(name), Counter())[verdict] += 1
    return table


def score(c: Counter) -> tuple[int, int]:
    """(detected, non-equivalent mutants checked): a timeout counts as detected, as in mutmut; a mutant that no
    selected test reaches ("no tests") counts as not detected, since it is a gap of the selected tests."""
    ran = c["killed"] + c["timeout"] + c["survived"] + c["suspicious"] + c["no tests"]
    return c["killed"] + c["timeout"], ran


def render(table: dict[str, Counter], title: str) -> str:
    lines = [f"## {title}", "module".ljust(40) + "".join(f"{c:>11}" for c in COLUMNS) + "      score"]
    total: Counter = Counter()
    for module in sorted(table):
        total.update(table[module])
    for module, c in [*sorted(table.items()), ("TOTAL", total)]:
        det, ran = score(c)
        pct = f"{100 * det / ran:6.1f}%" if ran else "     -"
        lines.append(module.ljust(40) + "".join(f"{c[k]:>11}" for k in COLUMNS) + f"  {det}/{ran} {pct}")
    return "\n".join(lines)


def _version(pkg: str) -> str:
    try:
        return importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def header(commands: list[str]) -> str:
    commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO, capture_output=True, text=True)
    versions = ", ".join(f"{p} {_version(p)}" for p in ("torch", "numpy", "gudhi", "mutmut", "pytest"))
    return "\n".join(
        [
            f"# date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M UTC}",
            f"# commit: {commit.stdout.strip() or 'unknown'} (HEAD when this printout was made; its tests/topology/ are the 'after' run's)",
            f"# machine: nproc {os.cpu_count()} (shared with other jobs), python {platform.python_version()}",
            f"# versions: {versions}",
            *(f"# command: {c}" for c in commands),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mutants", type=Path, default=REPO / "mutants")
    parser.add_argument("--save", type=Path, help="write the exit codes by mutant name as JSON")
    parser.add_argument("--before", type=Path, help="a --save snapshot to score as 'before'")
    parser.add_argument("--command", action="append", default=[], help="a command to quote in the header")
    parser.add_argument("--survivors", action="store_true", help="list the surviving non-equivalent mutants")
    parser.add_argument("--survivors-of", type=Path, help="print the survivors of a --save snapshot (no header)")
    parser.add_argument("--draw", type=int, help="print this many mutant names drawn uniformly from all (no header)")
    parser.add_argument("--seed", type=int, default=0, help="seed of --draw")
    parser.add_argument("--sampled", type=Path, help="a file of drawn names: also score those mutants alone")
    parser.add_argument(
        "--modules",
        nargs="+",
        help="score only these modules or functions of topology/ (reduction, graph.x_knn_indices)",
    )
    args = parser.parse_args()
    codes = only_modules(load_results(args.mutants), args.modules)
    if args.survivors_of:
        before, equivalent = json.loads(args.survivors_of.read_text()), load_equivalent()
        print(
            "\n".join(
                sorted(n for n, c in before.items() if status(c) in ("survived", "no tests") and n not in equivalent)
            )
        )
        return
    if args.draw:
        print("\n".join(sorted(random.Random(args.seed).sample(sorted(codes), args.draw))))
        return
    if args.save:
        args.save.write_text(json.dumps(codes, indent=0, sort_keys=True))
    # the equivalent mutants among this run's survivors (a name judged at another commit may be killed here)
    equivalent = {n: why for n, why in load_equivalent().items() if status(codes.get(n)) == "survived"}
    print(header(args.command))
    if args.before:
        before = only_modules(json.loads(args.before.read_text()), args.modules)
        print(render(tally(before, {}), "before (existing tests only)"))
        print()
    print(render(tally(codes, equivalent), "after" if args.before else "results"))
    if args.sampled:
        names = args.sampled.read_text().split()
        print()
        print(
            render(
                tally({n: codes.get(n) for n in names}, equivalent),
                f"a uniform sample of {len(names)} of all {len(codes)} mutants ({args.sampled.name}), today's tests: "
                "the estimate for the whole of topology/",
            )
        )
    survivors = sorted(n for n, c in codes.items() if status(c) in ("survived", "no tests") and n not in equivalent)
    print(f"\nsurvivors (and 'no tests') not listed as equivalent: {len(survivors)}")
    if args.survivors:
        print("\n".join(survivors))
    if equivalent:
        print(f"\nequivalent mutants ({len(equivalent)}), with why:")
        print("\n".join(f"  {n}: {r}" for n, r in sorted(equivalent.items())))


if __name__ == "__main__":
    main()
