"""Doctest fixtures for the examples in ``lightning_topo``'s docstrings (collected by ``--doctest-modules``)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _doctest_isolation(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """For a doctest: work in a fresh ``tmp_path`` (no example writes into the repository) and put back the
    activation registry afterwards (an example registers a name)."""
    if not isinstance(request.node, pytest.DoctestItem):
        return
    from lightning_topo import activations

    monkeypatch.chdir(request.getfixturevalue("tmp_path"))
    monkeypatch.setattr(activations, "_REGISTRY", dict(activations._REGISTRY))
