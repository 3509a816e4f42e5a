"""The proposed activation: its values and gradient, and that YAML selects it by the name ``proposed``.

The winner of the convergence search (benchmarks/convergence.py, results in benchmarks/results/) is
the fold ``f(x) = |x|``, derivative ``sign(x)`` (0 at 0, PyTorch's subgradient choice).
"""

from __future__ import annotations

import sys

import lightning.pytorch as pl
import torch
import yaml
from helpers.paths import REPO

from lightning_topo.activations import get_activation
from lightning_topo.cli import LightningTopoCLI

POINTS = torch.tensor([-3.0, -0.5, 0.0, 0.25, 2.0])


def test_proposed_values_fold_the_line():
    act = get_activation("proposed")
    out = act(POINTS)
    assert torch.equal(out, torch.tensor([3.0, 0.5, 0.0, 0.25, 2.0]))
    # not injective: x and -x are glued together (the topological point of the activation)
    assert torch.equal(act(torch.tensor([-1.7])), act(torch.tensor([1.7])))


def test_proposed_gradient_is_the_sign():
    x = POINTS.clone().requires_grad_(True)
    get_activation("proposed")(x).sum().backward()
    assert torch.equal(x.grad, torch.tensor([-1.0, -1.0, 0.0, 1.0, 1.0]))


def test_proposed_is_the_registered_fold_and_not_relu():
    act = get_activation("proposed")
    assert type(act) is type(get_activation("fold"))
    assert not torch.equal(act(POINTS), torch.relu(POINTS))


def _cli(args: list[str], monkeypatch) -> LightningTopoCLI:
    monkeypatch.setattr(sys, "argv", ["lightning-topo"])  # parse only ``args``, not pytest's command line
    return LightningTopoCLI(
        pl.LightningModule,
        pl.LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        args=args,
        run=False,
    )


def test_proposed_is_selectable_by_name_from_yaml(tmp_path, monkeypatch):
    config = {
        "model": {
            "class_path": "lightning_topo.models.MLPClassifier",
            "init_args": {"in_features": 2, "num_classes": 2, "hidden": [6, 6], "activation": "proposed"},
        },
        "data": {
            "class_path": "lightning_topo.data.SyntheticDataModule",
            "init_args": {"dataset": "d1", "n_points": 300, "val_fraction": 0.0},
        },
        "trainer": {"logger": False, "enable_progress_bar": False, "default_root_dir": str(tmp_path)},
    }
    path = tmp_path / "proposed.yaml"
    path.write_text(yaml.safe_dump(config))
    cli = _cli(["-c", str(path)], monkeypatch)
    acts = [m for name, m in cli.model.named_modules() if name.endswith(".act")]
    assert len(acts) == 2 and all(type(a) is type(get_activation("fold")) for a in acts)
    assert cli.model.hparams.activation == "proposed"
    x = torch.tensor([[1.0, -2.0]])
    h = cli.model.features.layer1.act(cli.model.features.layer1.linear(x))
    assert torch.equal(h, cli.model.features.layer1.linear(x).abs())


def test_recipe_override_selects_proposed(tmp_path, monkeypatch):
    cli = _cli(
        [
            "-c",
            str(REPO / "recipes" / "d1_circles.yaml"),
            "--model.init_args.activation=proposed",
            "--trainer.logger=false",
            f"--trainer.default_root_dir={tmp_path}",
        ],
        monkeypatch,
    )
    assert type(cli.model.features.layer9.act) is type(get_activation("fold"))
