"""The lightning-topo CLI: every recipe parses and runs; bad configuration fails before training."""

from __future__ import annotations

import sys

import pytest
from helpers.paths import RECIPES
from helpers.processes import run_child

from lightning_topo.cli import main, recipes_dir, resolve_config_paths, run_cli

FAST = ["--trainer.fast_dev_run=true", "--trainer.logger=false", "--trainer.enable_progress_bar=false"]


def test_the_recipes_exist():
    assert {"d1_circles.yaml", "d2_tori.yaml", "d3_spheres.yaml", "d1_large.yaml"} <= {p.name for p in RECIPES}


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_recipe_parses(recipe, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_cli(["fit", "-c", str(recipe), "--print_config"])
    assert exit_info.value.code in (0, None)
    printed = capsys.readouterr().out
    assert "class_path" in printed and "trainer:" in printed


@pytest.mark.parametrize("recipe", [p for p in RECIPES if p.stem.startswith("d")], ids=lambda p: p.stem)
def test_synthetic_recipe_runs_a_fast_dev_run(recipe, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli = run_cli(["fit", "-c", str(recipe), *FAST])
    assert cli.trainer.state.finished and cli.trainer.global_step == 1


def test_recipes_are_found_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    resolved = resolve_config_paths(["fit", "-c", "recipes/d1_circles.yaml", "--config=d2_tori.yaml"])
    assert resolved[2].endswith("recipes/d1_circles.yaml") and (tmp_path / resolved[2]).is_file()
    assert resolved[3].startswith("--config=") and resolved[3].endswith("recipes/d2_tori.yaml")


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ("--model.init_args.activation=swishy", "unknown activation 'swishy'"),
        ("--model.init_args.hidden=[15,-4]", "hidden widths must be positive"),
        ("--data.init_args.dataset=d7", "dataset must be one of"),
    ],
)
def test_bad_configuration_fails_before_training_naming_the_field(override, field, tmp_path):
    result = run_child(
        [sys.executable, "-m", "lightning_topo.cli", "fit", "-c", "recipes/d1_circles.yaml", override], cwd=tmp_path
    )
    assert result.returncode != 0
    assert field in result.stderr
    assert "invalid configuration" in result.stderr
    assert "epoch" not in result.stdout  # nothing trained
    assert not (tmp_path / "lightning_logs").exists()


def test_version_flag(capsys):
    assert main(["--version"]) == 0
    assert "lightning-topo" in capsys.readouterr().out


def test_a_checkout_reads_its_own_recipes_folder():
    """Editable installs and source checkouts use recipes/ itself (a wheel has lightning_topo/recipes, see test_packaging)."""
    assert recipes_dir() == RECIPES[0].parent


def test_recipes_flag_lists_every_recipe_with_its_first_comment_line(capsys):
    assert main(["--recipes"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for recipe in RECIPES:
        first_comment = recipe.read_text().splitlines()[0].lstrip("#").strip()
        (line,) = (line for line in lines if line.split() and line.split()[0] == recipe.name)
        assert line.split(None, 1)[1] == first_comment


def test_the_listing_takes_only_a_leading_comment_and_says_when_there_are_no_recipes(tmp_path, monkeypatch):
    import lightning_topo.cli as cli

    monkeypatch.setattr(cli, "recipes_dir", lambda: tmp_path)
    with pytest.raises(FileNotFoundError, match="no recipes found in .*reinstall lightning-topo"):
        cli.format_recipes()
    (tmp_path / "a.yaml").write_text("\n# Mine: a tiny run.\n# more\nseed_everything: 0\n")
    (tmp_path / "b.yaml").write_text("seed_everything: 0  # not a description\n")
    assert cli.format_recipes().splitlines()[1:] == ["  a.yaml  Mine: a tiny run.", "  b.yaml  (no leading comment)"]


def test_help_mentions_the_recipes_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code in (0, None)
    assert "lightning-topo --recipes" in " ".join(capsys.readouterr().out.split())


def test_the_console_script_rewrites_recipe_paths_in_sys_argv_without_a_warning(tmp_path, monkeypatch, capsys):
    """As the console script, LightningCLI reads sys.argv itself (no 'args parameter' warning) with the recipe found."""
    import warnings

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["lightning-topo", "fit", "-c", "recipes/d1_circles.yaml", "--print_config"])
    with warnings.catch_warnings(record=True) as caught, pytest.raises(SystemExit) as exit_info:
        warnings.simplefilter("always")
        main()
    assert exit_info.value.code in (0, None)
    assert sys.argv[3] == str(recipes_dir() / "d1_circles.yaml")
    assert "name: d1_circles" in capsys.readouterr().out
    assert not [str(w.message) for w in caught if "args parameter" in str(w.message)]


def test_main_job_recipe_trains_d1_to_100_percent_and_writes_tensorboard_events(tmp_path, monkeypatch, caplog):
    """The README's main job as shipped: the D-I recipe, from another directory, to 100% training accuracy."""
    import torch
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.chdir(tmp_path)
    with caplog.at_level("INFO"):
        cli = run_cli(["fit", "-c", "recipes/d1_circles.yaml"])
    trainer = cli.trainer
    assert float(trainer.callback_metrics["train_acc"]) == 1.0 and trainer.current_epoch < trainer.max_epochs
    events = list((tmp_path / "lightning_logs" / "d1_circles").glob("version_*/events.out.tfevents.*"))
    assert len(events) == 1
    tags = EventAccumulator(str(events[0])).Reload().Tags()["scalars"]
    assert {"train_acc", "betti/seconds", "betti/input/class_0/b0", "betti/logits/class_1/b1"} <= set(tags)
    # EpochProgress's closing line counts the epochs actually run
    assert f"[done]  epoch {trainer.current_epoch} " in caplog.text
    # checkpoints at epochs 500 and 1000 and at the stop (not after each of the ~1,000 one-step epochs): the best
    # by train_acc is the last epoch's (100%), and last.ckpt is that epoch too
    epoch = trainer.current_epoch - 1  # Lightning names and stores the 0-based index of the last epoch run
    checkpoints = events[0].parent / "checkpoints"
    names = sorted(p.name for p in checkpoints.iterdir())
    assert names[1:] == [f"epoch={epoch}-step={trainer.global_step}-train_acc=1.0000.ckpt", "last.ckpt"], names
    assert names[0].startswith("betti_probe-") and names[0].endswith(".pt")  # the monitor's probe, saved once
    assert torch.load(checkpoints / "last.ckpt", weights_only=False)["epoch"] == epoch


def test_a_class_count_that_does_not_match_the_data_fails_before_the_first_step(tmp_path, monkeypatch):
    from lightning_topo.models import MLPClassifier

    steps = []
    training_step = MLPClassifier.training_step
    monkeypatch.setattr(
        MLPClassifier, "training_step", lambda self, *args: steps.append(1) or training_step(self, *args)
    )
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        ValueError,
        match=r"model.num_classes=3 but SyntheticDataModule serves 2 classes; set --model.init_args.num_classes=2",
    ):
        run_cli(["fit", "-c", "recipes/d1_circles.yaml", "--model.init_args.num_classes=3", *FAST])
    assert steps == []  # not one training step ran
    run_cli(["fit", "-c", "recipes/d1_circles.yaml", *FAST])  # the same recipe with its own class count does train
    assert steps == [1]


def test_short_class_names_resolve(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli = run_cli(
        [
            "--model=MLPClassifier",
            "--model.in_features=2",
            "--model.num_classes=2",
            "--data=SyntheticDataModule",
            "--data.n_points=400",
            "--trainer.callbacks+=BettiMonitor",
            "--trainer.logger=false",
        ],
        run=False,
    )
    assert type(cli.model).__name__ == "MLPClassifier" and type(cli.datamodule).__name__ == "SyntheticDataModule"
    assert any(type(c).__name__ == "BettiMonitor" for c in cli.trainer.callbacks)


def test_checkpointing_off_on_the_command_line_drops_the_recipes_checkpoint(tmp_path, monkeypatch):
    """The synthetic recipes list a ModelCheckpoint; --trainer.enable_checkpointing=false still means no checkpoint."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    monkeypatch.chdir(tmp_path)
    on = run_cli(["-c", "recipes/d1_circles.yaml", "--trainer.logger=false"], run=False)
    assert any(isinstance(c, ModelCheckpoint) for c in on.trainer.callbacks)
    off = run_cli(
        ["fit", "-c", "recipes/d1_circles.yaml", "--trainer.logger=false", "--trainer.enable_checkpointing=false"]
        + ["--trainer.max_epochs=3"]
    )
    assert off.trainer.checkpoint_callback is None and off.trainer.global_step == 3
    assert not [c for c in off.trainer.callbacks if isinstance(c, ModelCheckpoint)]
    assert not list(tmp_path.rglob("*.ckpt"))


def test_run_cli_with_argv_ignores_the_calling_scripts_own_arguments(monkeypatch, capsys):
    """A benchmark run as `python x.py --recipes d1_circles` calls run_cli(argv): no 'args parameter' warning."""
    import warnings

    script_argv = ["benchmarks/x.py", "--recipes", "d1_circles"]
    monkeypatch.setattr(sys, "argv", list(script_argv))
    with warnings.catch_warnings(record=True) as caught, pytest.raises(SystemExit):
        warnings.simplefilter("always")
        run_cli(["fit", "-c", "recipes/d1_circles.yaml", "--print_config"])
    assert "name: d1_circles" in capsys.readouterr().out
    assert not [str(w.message) for w in caught if "args parameter" in str(w.message)]
    assert sys.argv == script_argv  # restored


def test_only_the_known_upstream_deprecation_is_silenced():
    """Lightning's LeafSpec FutureWarning from its _pytree module is ignored; the same text from elsewhere is not."""
    import warnings

    from lightning_topo.cli import silence_upstream_warnings

    message = "`isinstance(treespec, LeafSpec)` is deprecated, use `isinstance(treespec, TreeSpec)` instead."
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        silence_upstream_warnings()
        for module in ("lightning.pytorch.utilities._pytree", "pytorch_lightning.utilities._pytree", "mine"):
            warnings.warn_explicit(message, FutureWarning, f"{module}.py", 21, module=module)
        warnings.warn_explicit(
            "another deprecation", FutureWarning, "_pytree.py", 30, module="lightning.pytorch.utilities._pytree"
        )
    assert [(w.filename, str(w.message)) for w in caught] == [
        ("mine.py", message),
        ("_pytree.py", "another deprecation"),
    ]
