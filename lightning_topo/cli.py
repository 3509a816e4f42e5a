"""The ``lightning-topo`` command: a LightningCLI for any LightningModule and LightningDataModule.

``lightning-topo fit -c recipes/d1_circles.yaml`` works from any directory: a config path that does
not exist relative to the current directory is looked up among the recipes shipped with the package.
Configuration errors (an unknown activation, a negative width, an unknown dataset...) are reported
before training starts, as one line naming the field.

Example:
    $ lightning-topo fit -c recipes/d1_circles.yaml --model.init_args.activation=tanh
    $ lightning-topo fit -c d1_circles.yaml --print_config
"""

from __future__ import annotations

import sys
from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.cli import LightningCLI

import lightning_topo.callbacks  # noqa: F401  (imported so that short names resolve: --model=MLPClassifier,
import lightning_topo.data.datamodules  # noqa: F401  --data=SyntheticDataModule, --trainer.callbacks+=BettiMonitor;
import lightning_topo.data.images  # noqa: F401  the package itself imports them lazily)
import lightning_topo.models  # noqa: F401
from lightning_topo import __version__

__all__ = ["LightningTopoCLI", "RECIPE_DIRS", "main", "resolve_config_paths", "run_cli"]

_PACKAGE_DIR = Path(__file__).resolve().parent
#: Where recipes are looked up: the source tree's recipes/ (editable installs), then the copy in the package.
RECIPE_DIRS = (_PACKAGE_DIR.parent / "recipes", _PACKAGE_DIR / "recipes")
_CONFIG_FLAGS = ("-c", "--config")


def _find_recipe(value: str) -> str:
    path = Path(value)
    if path.exists():
        return value
    for directory in RECIPE_DIRS:
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
    """Build and run the CLI on ``argv`` (default: ``sys.argv[1:]``); returns the LightningCLI object.

    With ``run=False`` nothing is trained: ``argv`` has no subcommand, and the returned object holds the
    instantiated ``trainer``, ``model`` and ``datamodule`` of the config (benchmarks use this).
    """
    args = sys.argv[1:] if argv is None else list(argv)
    return LightningTopoCLI(
        pl.LightningModule,
        pl.LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        args=resolve_config_paths(args),
        save_config_kwargs={"overwrite": True},
        run=run,
    )


def main(argv: list[str] | None = None) -> int:
    """The console script: ``lightning-topo --version`` or a LightningCLI subcommand."""
    args = sys.argv[1:] if argv is None else list(argv)
    if args and args[0] in ("--version", "-V"):
        print(f"lightning-topo {__version__}")
        return 0
    run_cli(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
