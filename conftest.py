"""Doctest fixtures for the examples in ``lightning_topo``'s docstrings (collected by ``--doctest-modules``)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _activation_registry_restored(request: pytest.FixtureRequest):
    """An example may register an activation (``activations``' does): the registry is put back after each doctest."""
    if not isinstance(request.node, pytest.DoctestItem):
        yield
        return
    from lightning_topo import activations

    saved = dict(activations._REGISTRY)
    yield
    activations._REGISTRY.clear()
    activations._REGISTRY.update(saved)
