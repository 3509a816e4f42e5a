"""The ``lightning-topo`` command: a LightningCLI for any LightningModule and LightningDataModule.

``lightning-topo fit -c recipes/d1_circles.yaml`` works from any directory: a config path that does
not exist relative to the current directory is looked up among the recipes shipped with the package
(``lightning_topo/recipes/`` in the wheel, the top-level ``recipes/`` in a source checkout).
``lightning-topo --recipes`` lists them. Configuration errors (an unknown activation, a negative width,
an unknown dataset...) are reported before training starts, as one line naming the field.

Example:
    $ lightning-topo --recipes
    $ lightning-topo fit -c recipes/d1_circles.yaml --model.init_args.activation=tanh
    $ lightning-topo fit -c d1_circles.yaml --print_config
"""

from __future__ import annotations

import sys
import warnings
from importlib import resources
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningCLI

import lightning_topo.callbacks  # noqa: F401  (imported so that short names resolve: --model=MLPClassifier,
import lightning_topo.data.datamodules  # noqa: F401  --data=SyntheticDataModule, --trainer.callbacks+=BettiMonitor;
import lightning_topo.data.images  # noqa: F401  the package itself imports them lazily)
import lightning_topo.models  # noqa: F401
from lightning_topo import __version__
from lightning_topo.data.image_files import BadImageFilesError

try:
    from pytorch_lightning.callbacks import ModelCheckpoint as _StandaloneModelCheckpoint
except ImportError:  # pragma: no cover - lightning installs it, but it is not ours to require
    _StandaloneModelCheckpoint = ModelCheckpoint

__all__ = [
    "UPSTREAM_WARNINGS",
    "LightningTopoCLI",
    "format_recipes",
    "main",
    "recipes_dir",
    "resolve_config_paths",
    "run_cli",
    "silence_upstream_warnings",
]

_CONFIG_FLAGS = ("-c", "--config")
_CHECKPOINTS = (ModelCheckpoint, _StandaloneModelCheckpoint)
_EPILOG = "lightning-topo --recipes lists the shipped recipes (run one with -c NAME); --version prints the version."


#: Known third-party warnings that the console should not show, each as (message regex, category, module regex):
#: a user of the CLI cannot act on them. Narrow on purpose: another warning of the same module still shows.
UPSTREAM_WARNINGS = (
    # Lightning 2.6's pytree helper (lightning/pytorch/utilities/_pytree.py, line 21) builds torch's LeafSpec, which
    # torch 2.10+ deprecates with a FutureWarning; nothing of ours is involved and only a Lightning release fixes it.
    (
        r"`isinstance\(treespec, LeafSpec\)` is deprecated",
        FutureWarning,
        r"(lightning\.pytorch|pytorch_lightning)\.utilities\._pytree",
    ),
)


def silence_upstream_warnings() -> None:
    """Ignore the :data:`UPSTREAM_WARNINGS` (by message, category and the module that triggers them)."""
    for message, category, module in UPSTREAM_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)


def recipes_dir() -> Path:
    """The folder of the shipped YAML recipes.

    A wheel carries them as package data in ``lightning_topo/recipes/`` (setuptools maps the top-level
    ``recipes/`` there at build time); an editable install or a source checkout reads ``recipes/`` itself.

    Example:
        >>> (recipes_dir() / "d1_circles.yaml").is_file()
        True
    """
    package = Path(str(resources.files("lightning_topo")))
    installed = package / "recipes"
    return installed if installed.is_dir() else package.parent / "recipes"


def format_recipes() -> str:
    """One line per shipped recipe: its file name and the first line of its leading comment.

    Example:
        >>> print(format_recipes())  # doctest: +ELLIPSIS
        Recipes shipped with lightning-topo ...
        ...d1_circles.yaml ...D-I: 9 disks (class 0) in a square with a hole around each disk (class 1), in R^2.
        ...
    """
    recipes = sorted(recipes_dir().glob("*.yaml"))
    if not recipes:
        raise FileNotFoundError(f"no recipes found in {recipes_dir()}; reinstall lightning-topo (pip install .)")
    width = max(len(p.name) for p in recipes)
    lines = [f"Recipes shipped with lightning-topo (run one with: lightning-topo fit -c NAME), in {recipes_dir()}:"]
    for recipe in recipes:
        first = next((line.strip() for line in recipe.read_text().splitlines() if line.strip()), "")
        summary = first.lstrip("#").strip() if first.startswith("#") else ""
        lines.append(f"  {recipe.name:<{width}}  {summary or '(no leading comment)'}")
    return "\n".join(lines)


def _find_recipe(value: str) -> str:
    path = Path(value)
    if path.exists():
        return value
    directory = recipes_dir()
    for candidate in (directory / path, directory / path.name):
        if candidate.is_file():
            return str(candidate)
    return value  # let LightningCLI report the missing file as usual


def resolve_config_paths(argv: list[str]) -> list[str]:
    """Rewrite ``-c/--config`` values that are not files here to the bundled recipe of that name."""
    out: list[str] = []
    expect_config = False
    for arg in argv:
        if expect_config:
            out.append(_find_recipe(arg))
            expect_config = False
        elif arg in _CONFIG_FLAGS:
            out.append(arg)
            expect_config = True
        elif arg.startswith("--config="):
            out.append("--config=" + _find_recipe(arg.split("=", 1)[1]))
        else:
            out.append(arg)
    return out


class LightningTopoCLI(LightningCLI):
    """LightningCLI in subclass mode that turns configuration errors into one clear line before training.

    ``--trainer.enable_checkpointing false`` switches checkpoints off even for a recipe that lists a
    ``ModelCheckpoint`` among its callbacks (the synthetic recipes' ``FitEndCheckpoint``): the callback is dropped,
    where Lightning's Trainer would refuse the combination.
    """

    def instantiate_classes(self) -> None:
        try:
            super().instantiate_classes()
        except (ValueError, TypeError) as error:
            self.parser.error(f"invalid configuration: {error}")

    def instantiate_trainer(self, **kwargs: Any) -> pl.Trainer:
        config = self._get(self.config_init, "trainer", default={})
        callbacks = kwargs.get("callbacks", config.get("callbacks"))
        if kwargs.get("enable_checkpointing", config.get("enable_checkpointing")) is False and callbacks:
            callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
            kwargs["callbacks"] = [c for c in callbacks if not isinstance(c, _CHECKPOINTS)]
        return super().instantiate_trainer(**kwargs)


def run_cli(argv: list[str] | None = None, run: bool = True) -> LightningTopoCLI:
    """Build and run the CLI on ``argv`` (default: the command line); returns the LightningCLI object.

    With ``argv=None`` the recipe paths are rewritten in ``sys.argv`` itself and LightningCLI reads the command
    line as usual (handing it ``args`` as well would make it warn about getting both). With an ``argv``, that list
    is the whole command line: the calling script's own ``sys.argv[1:]`` (a benchmark's ``--recipes d1_circles``)
    is hidden from LightningCLI while it runs, which otherwise warns that it got two command lines. With ``run=False``
    nothing is trained: ``argv`` has no subcommand, and the returned object holds the instantiated ``trainer``,
    ``model`` and ``datamodule`` of the config (benchmarks use this).

    Example:
        >>> cli = run_cli(["-c", "d1_circles.yaml", "--trainer.logger=false"], run=False)
        >>> type(cli.model).__name__, type(cli.datamodule).__name__
        ('MLPClassifier', 'SyntheticDataModule')
    """
    silence_upstream_warnings()
    if argv is None:
        sys.argv[1:] = resolve_config_paths(sys.argv[1:])
        return _build_cli(None, run)
    args = resolve_config_paths(list(argv))
    saved = sys.argv
    sys.argv = sys.argv[:1]  # LightningCLI reads sys.argv[1:] only to warn when args is given as well
    try:
        return _build_cli(args, run)
    finally:
        sys.argv = saved


def _build_cli(args: list[str] | None, run: bool) -> LightningTopoCLI:
    return LightningTopoCLI(
        pl.LightningModule,
        pl.LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        args=args,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"epilog": _EPILOG},
        run=run,
    )


def main(argv: list[str] | None = None) -> int:
    """The console script: ``lightning-topo --version``, ``--recipes`` or a LightningCLI subcommand."""
    args = sys.argv[1:] if argv is None else list(argv)
    if args and args[0] in ("--version", "-V"):
        print(f"lightning-topo {__version__}")
        return 0
    if args and args[0] == "--recipes":
        print(format_recipes())
        return 0
    try:
        run_cli(argv)
    except BadImageFilesError as error:  # raised by an image data module's setup(), before the first batch
        print(f"lightning-topo: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
