"""The base class of the package's callbacks: a ``Callback`` of both Lightning namespaces.

``lightning.pytorch`` and the standalone ``pytorch_lightning`` package each define their own ``Callback``.
A Trainer of either calls hooks by name, so a callback of one already runs in the other, but the standalone
``LightningCLI`` type-checks ``trainer.callbacks`` in YAML against its own class. Deriving from both (when the
standalone package is installed: it comes with ``lightning``) makes our callbacks valid everywhere.

Example:
    >>> import lightning.pytorch as pl
    >>> issubclass(TopoCallback, pl.Callback)
    True
"""

from __future__ import annotations

import lightning.pytorch as pl

try:
    import pytorch_lightning as _standalone
except ImportError:  # pragma: no cover - lightning installs it, but it is not ours to require
    _standalone = None

__all__ = ["TopoCallback", "runs_in_spawned_processes"]

_BASES: tuple[type, ...] = (pl.Callback,)
if _standalone is not None and _standalone.Callback is not pl.Callback:
    _BASES += (_standalone.Callback,)


class TopoCallback(*_BASES):  # type: ignore[misc]
    """A ``lightning.pytorch.Callback`` that is also a ``pytorch_lightning.Callback``."""


def runs_in_spawned_processes(trainer: object) -> bool:
    """Whether the fit runs in processes Lightning starts for it (``strategy="ddp_spawn"``, ``"ddp_notebook"``, XLA),
    so that what a callback holds stays there: only the model's weights (``load_state_dict`` into the caller's
    unchanged model) and ``callback_metrics`` come back to the process that called ``fit``.

    Example:
        >>> import lightning.pytorch as pl
        >>> runs_in_spawned_processes(pl.Trainer(accelerator="cpu", devices=1, logger=False))
        False
    """
    launcher = getattr(getattr(trainer, "strategy", None), "launcher", None)
    return any(cls.__name__ == "_MultiProcessingLauncher" for cls in type(launcher).__mro__)
