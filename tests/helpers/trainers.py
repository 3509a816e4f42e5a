"""A quiet CPU trainer for tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl


def quiet_trainer(root: Path, **kwargs: Any) -> pl.Trainer:
    """A CPU trainer without progress bar, summary or checkpoints unless asked."""
    options: dict[str, Any] = dict(
        accelerator="cpu",
        devices=1,
        default_root_dir=str(root),
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        logger=False,
        num_sanity_val_steps=0,
        log_every_n_steps=1,
    )
    options.update(kwargs)
    return pl.Trainer(**options)


def quiet_standalone_trainer(root: Path, **kwargs: Any) -> Any:
    """The same quiet CPU trainer from the standalone ``pytorch_lightning`` package (imported only here)."""
    import pytorch_lightning as ptl

    options: dict[str, Any] = dict(
        max_epochs=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        default_root_dir=root,
    )
    options.update(kwargs)
    return ptl.Trainer(**options)
