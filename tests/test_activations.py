"""The activation registry: names, defaults, errors, and the topology candidates' values."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_topo import activations
from lightning_topo.activations import (
    PROPOSED_ACTIVATION,
    Fold,
    ParametricSplit,
    get_activation,
    list_activations,
    register_activation,
)


def test_builtin_names_are_registered():
    expected = {
        "relu",
        "leaky_relu",
        "tanh",
        "sigmoid",
        "gelu",
        "silu",
        "elu",
        "identity",
        "clipped_relu",
        "fold",
        "smooth_split",
        "parametric_split",
        "proposed",
    }
    assert expected <= set(list_activations())


def test_each_call_builds_a_new_module():
    assert get_activation("relu") is not get_activation("relu")
    assert isinstance(get_activation("ReLU"), nn.ReLU)  # names are case-insensitive


def test_leaky_relu_uses_the_topology_literature_slope():
    assert get_activation("leaky_relu").negative_slope == 0.2
    assert get_activation("leaky_relu", negative_slope=0.1).negative_slope == 0.1


def test_proposed_is_an_alias_of_the_registered_choice():
    assert PROPOSED_ACTIVATION in list_activations()
    assert type(get_activation("proposed")) is type(get_activation(PROPOSED_ACTIVATION))


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown activation 'swishy'.*relu.*tanh"):
        get_activation("swishy")
    with pytest.raises(ValueError, match="by name"):
        get_activation(nn.ReLU)  # type: ignore[arg-type]


def test_register_a_user_activation(monkeypatch):
    monkeypatch.setattr(activations, "_REGISTRY", dict(activations._REGISTRY))

    @register_activation("softsign_test")
    class SoftsignTest(nn.Softsign):
        pass

    assert isinstance(get_activation("softsign_test"), SoftsignTest)
    with pytest.raises(ValueError, match="already registered"):
        register_activation("softsign_test")(nn.Softsign)
    with pytest.raises(ValueError, match="reserved"):
        register_activation("proposed")


def test_registering_by_mistake_is_caught_where_it_is_written(monkeypatch):
    monkeypatch.setattr(activations, "_REGISTRY", dict(activations._REGISTRY))
    with pytest.raises(ValueError, match=r"takes a name .*with the parentheses"):
        register_activation(nn.Softsign)  # type: ignore[arg-type]  # @register_activation without ("name")
    with pytest.raises(TypeError, match="needs an nn.Module class or factory, got 3"):
        register_activation("three")(3)  # type: ignore[arg-type]
    register_activation("plain_function")(torch.relu)  # callable, but returns a tensor, not a layer
    with pytest.raises(TypeError, match=r"'plain_function' .* returned a Tensor, not an nn.Module"):
        get_activation("plain_function", input=torch.zeros(1))
    assert "three" not in list_activations()


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("clipped_relu", {"ceiling": -1.0}, "ceiling must be a positive finite number"),  # was a bare AssertionError
        ("smooth_split", {"a": float("nan")}, "steepness of the split\\) must be a positive finite number"),
        ("smooth_split", {"c": float("nan")}, "width of the split\\) must be a finite number"),  # NaN outputs
        ("parametric_split", {"a": float("inf")}, "starting a must be a finite number"),
    ],
)
def test_candidate_parameters_are_checked(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        get_activation(name, **kwargs)


def test_candidate_values():
    x = torch.tensor([-2.0, -0.5, 0.0, 0.5, 2.0])
    assert torch.equal(get_activation("clipped_relu")(x), torch.tensor([0.0, 0.0, 0.0, 0.5, 1.0]))
    assert torch.equal(Fold()(x), x.abs())
    split = get_activation("smooth_split", c=1.0, a=4.0)(x)
    assert torch.allclose(split, x + torch.tanh(4 * x))
    assert split[3] - split[2] > 1.0  # the split pushes points away from 0


def test_parametric_split_learns_its_parameters():
    act = ParametricSplit(c=0.5, a=2.0)
    act(torch.linspace(-1, 1, 11)).pow(2).sum().backward()
    assert act.c.grad is not None and act.a.grad is not None and act.c.grad != 0
