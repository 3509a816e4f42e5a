"""Griffe extension of the lightning-topo site: read a docstring's ``Example:`` section as code examples.

The package's Google-style docstrings head their doctests ``Example:``; griffe's Google parser reads only
``Examples:`` as an examples section and renders ``Example:`` as an admonition of Markdown, where ``>>>`` lines
become nested quotes. This turns the singular heading into the plural one before the docstring is parsed.
"""

from __future__ import annotations

import re

import griffe

_HEADING = re.compile(r"^(\s*)Example:[ \t]*$", re.MULTILINE)


class ExampleSections(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _HEADING.sub(r"\1Examples:", obj.docstring.value)
