"""benchmarks/intrinsic_profile.py's helpers on tiny models: one ID per watched layer, the hunchback rule."""

from __future__ import annotations

import math
import sys

import torch
from helpers.paths import REPO

sys.path.insert(0, str(REPO / "benchmarks"))

import intrinsic_profile as ip  # noqa: E402

from lightning_topo.models import CNNClassifier  # noqa: E402
from lightning_topo.monitoring import capture_activations  # noqa: E402


def test_profile_of_a_tiny_cnn_has_one_id_per_watched_layer():
    torch.manual_seed(0)
    model = CNNClassifier(in_channels=1, num_classes=3, channels=[4, 8], pool_output=2)
    x, y = torch.randn(90, 1, 12, 12), torch.arange(90) % 3
    layers, last = ip.watched_layers(model, x[:2])
    assert layers == ["input", "features.block1", "features.block2", "pool", "logits"]
    assert last == "pool"
    profile = ip.id_profile(capture_activations(model, x, layers), y)
    assert list(profile) == layers
    for p in profile.values():
        assert sorted(p["per_class"]) == ["0", "1", "2"]
        assert math.isfinite(p["all"]) and p["all"] > 0
        assert math.isclose(p["class_mean"], sum(p["per_class"].values()) / 3)


def test_duplicated_cloud_gives_nan_not_an_error():
    profile = ip.id_profile({"dead": torch.zeros(20, 4)}, torch.arange(20) % 2, max_per_class=5)
    assert math.isnan(profile["dead"]["all"]) and math.isnan(profile["dead"]["class_mean"])


def test_hunchback_rule():
    assert ip.rises_then_falls([3.0, 9.0, 7.0, 4.0, 2.0], last_hidden=3)[0]
    assert not ip.rises_then_falls([9.0, 8.0, 7.0, 4.0, 2.0], last_hidden=3)[0]  # maximum at the input
    assert not ip.rises_then_falls([3.0, 5.0, 7.0, 9.0, 2.0], last_hidden=3)[0]  # the last hidden layer is the max
    assert ip.rises_then_falls([3.0, float("nan"), 7.0, 4.0, 2.0], last_hidden=3)[0]


def test_mlp_run_measures_every_layer_at_the_given_epochs():
    at = ip.mlp_run("d1", "proposed", 0, (0, 2), "cpu", max_per_class=60)
    assert sorted(at) == ["0", "2"]
    assert len(at["2"]["class_mean"]) == 11  # input, 9 hidden layers, logits
    assert at["2"]["last_hidden"] == at["2"]["class_mean"][-2]
