"""MkDocs hook of the lightning-topo site: results included from their printouts, and the API reference's members.

Two directives, each alone on a line of a page's Markdown, expanded before the page is rendered:

``!results FILE [key="value" ...]``
    Includes part of ``benchmarks/results/FILE`` (a printout a benchmark wrote), so a table on the site is the
    printout itself and cannot drift from it. Keys:

    - ``table="PREFIX"``: the Markdown table whose header line starts with PREFIX (``occurrence="last"`` or a
      number picks among several); ``rows="REGEX"`` keeps only the data rows that match; ``cols="0,1,4"`` keeps
      those columns (0-based).
    - ``start="REGEX"`` [``end="REGEX"`` | ``until="REGEX"``]: the text lines from the first line matching
      ``start`` (``occurrence=`` as above) to the first later line matching ``end`` (included) or ``until`` (not
      included); without either, up to the next blank line. A code block, or Markdown as it is with
      ``as="markdown"``.
    - neither: the whole file, as a code block.

    Every inclusion ends with a line naming the file it came from, linked to the copy the site serves. A file or
    an anchor that is not found stops the build (``mkdocs build --strict`` fails), so a renamed printout cannot
    leave a stale table behind.

``!api PACKAGE``
    One ``::: PACKAGE.NAME`` block (mkdocstrings) per name in ``PACKAGE.__all__``, read from the package at build
    time, so the reference lists every public name, including the ones added after this page was written. A name
    that the package imports only on first use (PEP 562) and that static analysis therefore cannot see through
    the package is documented from the module that defines it.

``!api-root``
    A table of ``lightning_topo.__all__``: each name linked to its entry in a subpackage's page.

The printouts (``*.txt``, ``*.json``, ``*.png`` directly under ``benchmarks/results/``) are also served under
``results/files/``, so every "From ..." line and figure links to the file itself.
"""

from __future__ import annotations

import importlib
import re
import shlex
import sys
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
SERVED = "results/files"  # where the printouts are served, relative to the site root
SERVED_SUFFIXES = {".txt", ".json", ".png"}

_DIRECTIVE = re.compile(r"^!(results|api-root|api)(?=[ \t]|$)(.*)$", re.MULTILINE)


def on_config(config, **kwargs):
    # the package documented is this checkout's, also when another checkout is installed in the environment
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return config


def on_files(files, config, **kwargs):
    for path in sorted(RESULTS.iterdir()):
        if path.is_file() and path.suffix in SERVED_SUFFIXES:
            files.append(File.generated(config, f"{SERVED}/{path.name}", abs_src_path=str(path)))
    return files


def on_page_markdown(markdown, page, config, files, **kwargs):
    def expand(match: re.Match) -> str:
        kind, args = match.group(1), match.group(2).strip()
        where = f"{page.file.src_uri}: !{kind} {args}"
        try:
            if kind == "results":
                return _results(args, page)
            if kind == "api":
                return _api(args)
            return _api_root()
        except PluginError:
            raise
        except Exception as error:  # noqa: BLE001 - any failure names the directive that caused it
            raise PluginError(f"{where}: {error}") from error

    return _DIRECTIVE.sub(expand, markdown)


# --- results -------------------------------------------------------------------------------------------------


def _results(args: str, page) -> str:
    words = shlex.split(args)
    if not words:
        raise PluginError(f"{page.file.src_uri}: !results needs a file name")
    name, options = words[0], dict(word.split("=", 1) for word in words[1:])
    path = RESULTS / name
    if not path.is_file():
        raise PluginError(f"{page.file.src_uri}: benchmarks/results/{name} does not exist")
    lines = path.read_text(encoding="utf-8").splitlines()
    if "table" in options:
        body = _table(lines, options, name)
    elif "start" in options:
        span = _span(lines, options, name)
        body = "\n".join(span) if options.get("as") == "markdown" else _code(span)
    else:
        body = _code(lines)
    return f"{body}\n\n{_source_line(name, page)}\n"


def _source_line(name: str, page) -> str:
    depth = page.file.src_uri.count("/")
    link = "../" * depth + f"{SERVED}/{name}"
    if name.endswith(".md"):  # the generated Markdown reports are included, not served
        return f"<small>From `benchmarks/results/{name}`, included when the site is built.</small>"
    return f"<small>From [`benchmarks/results/{name}`]({link}), included when the site is built.</small>"


def _find(lines: list[str], pattern, name: str, what: str, occurrence: str = "first") -> int:
    hits = [i for i, line in enumerate(lines) if pattern(line)]
    if not hits:
        raise PluginError(f"benchmarks/results/{name}: no line {what}")
    if occurrence == "first":
        return hits[0]
    if occurrence == "last":
        return hits[-1]
    index = int(occurrence) - 1
    if not 0 <= index < len(hits):
        raise PluginError(f"benchmarks/results/{name}: {what} occurs {len(hits)} times, not {occurrence}")
    return hits[index]


def _table(lines: list[str], options: dict[str, str], name: str) -> str:
    prefix = options["table"]
    first = _find(
        lines,
        lambda line: line.startswith(prefix),
        name,
        f"starts a table with {prefix!r}",
        options.get("occurrence", "first"),
    )
    table = []
    for line in lines[first:]:
        if not line.startswith("|"):
            break
        table.append(line)
    if len(table) < 3:
        raise PluginError(f"benchmarks/results/{name}: the table at {prefix!r} has no rows")
    header, rule, rows = table[0], table[1], table[2:]
    if "rows" in options:
        keep = re.compile(options["rows"])
        rows = [row for row in rows if keep.search(row)]
        if not rows:
            raise PluginError(
                f"benchmarks/results/{name}: no row of the table at {prefix!r} matches {options['rows']!r}"
            )
    table = [header, rule, *rows]
    if "cols" in options:
        columns = [int(c) for c in options["cols"].split(",")]
        table = ["| " + " | ".join(_cells(line)[c] for c in columns) + " |" for line in table]
    return "\n".join(table)


def _cells(line: str) -> list[str]:
    # split on the pipes that separate cells (an escaped \| stays inside its cell)
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def _span(lines: list[str], options: dict[str, str], name: str) -> list[str]:
    start = re.compile(options["start"])
    first = _find(
        lines,
        lambda line: bool(start.search(line)),
        name,
        f"matches {options['start']!r}",
        options.get("occurrence", "first"),
    )
    if "end" in options or "until" in options:
        key = "end" if "end" in options else "until"
        stop = re.compile(options[key])
        last = _find(
            lines[first + 1 :], lambda line: bool(stop.search(line)), name, f"after the start matches {options[key]!r}"
        )
        return lines[first : first + 1 + last + (key == "end")]
    span = []
    for line in lines[first:]:
        if not line.strip():
            break
        span.append(line)
    return span


def _code(lines: list[str]) -> str:
    return "```text\n" + "\n".join(lines) + "\n```"


# --- API reference -------------------------------------------------------------------------------------------

_LOADER = None


def _griffe_package():
    global _LOADER
    if _LOADER is None:
        import griffe

        _LOADER = griffe.load("lightning_topo", search_paths=[str(ROOT)], resolve_aliases=True, resolve_external=False)
    return _LOADER


def _resolves(path: str) -> bool:
    """Whether griffe (so mkdocstrings) can document the object at this dotted path."""
    module = _griffe_package()
    try:
        member = module[path.split(".", 1)[1]] if "." in path else module
        if member.is_alias:
            member.target  # noqa: B018 - resolves the alias or raises
    except Exception:  # noqa: BLE001 - not found, or an alias griffe cannot follow
        return False
    return True


def _public_names(package: str) -> list[str]:
    module = importlib.import_module(package)
    names = getattr(module, "__all__", None)
    if not names:
        raise PluginError(f"{package} has no __all__")
    return sorted(names, key=str.lower)


def _identifier(package: str, name: str) -> str | None:
    """The dotted path mkdocstrings documents ``package.name`` by, or None if it cannot document it."""
    if _resolves(f"{package}.{name}"):
        return f"{package}.{name}"
    # imported on first use (PEP 562), so invisible through the package: try the module that defines it
    value = getattr(importlib.import_module(package), name)
    home = getattr(value, "__module__", None)
    if isinstance(home, str) and _resolves(f"{home}.{name}"):
        return f"{home}.{name}"
    return None


def _api(package: str) -> str:
    blocks = []
    for name in _public_names(package):
        identifier = _identifier(package, name)
        if identifier is not None:
            blocks.append(f"::: {identifier}\n    options:\n      show_root_full_path: false\n")
            continue
        # a constant that static analysis cannot read (e.g. assigned by tuple unpacking): its value, read at build time
        value = repr(getattr(importlib.import_module(package), name))
        if len(value) > 300:
            value = value[:300] + " ..."
        blocks.append(f"### `{name}` {{ #{package}.{name} }}\n\n```python\n{package}.{name} = {value}\n```\n")
    return "\n".join(blocks)


#: the page and anchor of each subpackage's reference, for the root table
_PAGES = {
    "lightning_topo.activations": "activations.md",
    "lightning_topo.callbacks": "callbacks.md",
    "lightning_topo.data": "data.md",
    "lightning_topo.models": "models.md",
    "lightning_topo.monitoring": "monitoring.md",
    "lightning_topo.pruning": "pruning.md",
    "lightning_topo.topology": "topology.md",
}


def _api_root() -> str:
    root = importlib.import_module("lightning_topo")
    rows = ["| name | documented in |", "|---|---|"]
    for name in sorted(root.__all__, key=str.lower):
        if name == "__version__":
            rows.append(f"| `__version__` | the package version, `{root.__version__}` |")
            continue
        homes = [package for package in _PAGES if name in _public_names(package)]
        if not homes:
            raise PluginError(f"lightning_topo.{name} is in no public subpackage's __all__")
        package = homes[0]
        identifier = _identifier(package, name) or f"{package}.{name}"
        rows.append(f"| [`{name}`][{identifier}] | [`{package}`]({_PAGES[package]}) |")
    return "\n".join(rows)
