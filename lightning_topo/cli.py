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
from importlib import resources
from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.cli import LightningCLI

import lightning_topo.callbacks  # noqa: F401  (imported so that short names resolve: --model=MLPClassifier,
import lightning_topo.data.datamodules  # noqa: F401  --data=SyntheticDataModule, --trainer.callbacks+=BettiMonitor;
import lightning_topo.data.images  # noqa: F401  the package itself imports them lazily)
import lightning_topo.models  # noqa: F401
from lightning_topo import __version__
from lightning_topo.data.images import BadImageFilesError

__all__ = ["LightningTopoCLI", "format_recipes", "main", "recipes_dir", "resolve_config_paths", "run_cli"]

_CONFIG_FLAGS = ("-c", "--config")
_EPILOG = "lightning-topo --recipes lists the shipped recipes (run one with -c NAME); --version prints the version."


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
    """LightningCLI in subclass mode that turns configuration errors into one clear line before training."""

    def instantiate_classes(self) -> None:
        try:
            super().instantiate_classes()
        except (ValueError, TypeError) as error:
            self.parser.error(f"invalid configuration: {error}")


def run_cli(argv: list[str] | None = None, run: bool = True) -> LightningTopoCLI:
    """Build and run the CLI on ``argv`` (default: the command line); returns the LightningCLI object.

    With ``argv=None`` the recipe paths are rewritten in ``sys.argv`` itself and LightningCLI reads the command
    line as usual (handing it ``args`` as well would make it warn about getting both). With ``run=False``
    nothing is trained: ``argv`` has no subcommand, and the returned object holds the instantiated ``trainer``,
    ``model`` and ``datamodule`` of the config (benchmarks use this).

    Example:
        >>> cli = run_cli(["-c", "d1_circles.yaml", "--trainer.logger=false"], run=False)  # doctest: +SKIP
    """
    if argv is None:
        sys.argv[1:] = resolve_config_paths(sys.argv[1:])
        args = None
    else:
        args = resolve_config_paths(list(argv))
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
