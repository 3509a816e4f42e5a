"""Physical removal: filters really leave a user's ResNet-18, residual couplings included, and it still runs."""

from __future__ import annotations

import torch
import torchvision

from lightning_topo.pruning import remove_filters


def test_user_resnet18_filters_are_really_removed_including_residual_couplings():
    net = torchvision.models.resnet18(num_classes=2).eval()
    x = torch.randn(2, 3, 32, 32)
    params = sum(p.numel() for p in net.parameters())
    sizes = remove_filters(net, {"layer1.0.conv1": list(range(32)), "layer2.0.conv2": [0, 1, 2, 3]}, x[:1])
    assert sizes["layer1.0.conv1"] == (64, 32)
    assert net.layer1[0].bn1.num_features == 32 and net.layer1[0].conv2.in_channels == 32
    assert (
        net.layer2[0].conv2.out_channels == 124 and net.layer2[0].downsample[0].out_channels == 124
    )  # the residual sum
    assert net(x).shape == (2, 2)
    assert sum(p.numel() for p in net.parameters()) < params
