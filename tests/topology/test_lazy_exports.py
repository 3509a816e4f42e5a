"""The lazy exports of lightning_topo.topology: the torch-backed names load on first use, others raise."""

from __future__ import annotations

import re

import pytest

import lightning_topo.topology as topology
from lightning_topo.topology import filter_lists, neighbours


@pytest.mark.parametrize(
    ("name", "module"), [("neighbour_lists", neighbours), ("filter_neighbour_lists", filter_lists)]
)
def test_lazy_names_resolve_to_their_module_and_are_cached(name, module, monkeypatch):
    monkeypatch.delitem(vars(topology), name, raising=False)
    value = topology.__getattr__(name)
    assert value is getattr(module, name)
    assert vars(topology)[name] is value  # cached: __getattr__ is not called again
    assert getattr(topology, name) is value


def test_unknown_names_raise_the_usual_attribute_error():
    with pytest.raises(AttributeError, match=re.escape("module 'lightning_topo.topology' has no attribute 'nope'")):
        topology.__getattr__("nope")
    with pytest.raises(AttributeError, match="has no attribute 'NeighbourList'"):
        topology.NeighbourList  # noqa: B018


def test_every_public_name_resolves():
    assert all(getattr(topology, name) is not None for name in topology.__all__)
