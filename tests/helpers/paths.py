"""Where the repository, its recipes and the tests are."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
RECIPES = sorted((REPO / "recipes").glob("*.yaml"))
