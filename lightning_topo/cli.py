"""The ``lightning-topo`` command line (a LightningCLI arrives with the models)."""

from __future__ import annotations

import sys

from lightning_topo import __version__


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("--version", "-V"):
        print(f"lightning-topo {__version__}")
        return 0
    print(f"lightning-topo {__version__}: Betti-number monitoring and pruning for PyTorch Lightning.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
