"""The probe saved once per run, beside the checkpoints, instead of inside every one of them.

A checkpoint then carries the probe's path and fingerprint (a few bytes) rather than its tensors (3 MB for a
1,000-image Fashion-MNIST probe, 300 MB for 500 images at 224 px), and a resumed run measures the very same points.
A missing or changed file is reported (:class:`ProbeFileError`), never silently replaced.

Example:
    >>> import tempfile, torch
    >>> probe = ({"input_ids": torch.arange(6).reshape(3, 2)}, torch.tensor([0, 1, 0]))
    >>> path, digest = save_probe(probe, tempfile.mkdtemp())
    >>> inputs, labels = load_probe(path, digest)
    >>> inputs["input_ids"].tolist(), labels.tolist()
    ([[0, 1], [2, 3], [4, 5]], [0, 1, 0])
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch

from lightning_topo.monitoring.batches import ModelInputs, SampleList

__all__ = ["ProbeFileError", "fingerprint", "load_probe", "save_probe"]


class ProbeFileError(ValueError):
    """The probe file a checkpoint names is missing, unreadable or not the probe it was saved with."""


def _tensors(inputs: ModelInputs) -> list[tuple[str, torch.Tensor]]:
    if isinstance(inputs, torch.Tensor):
        return [("", inputs)]
    if isinstance(inputs, dict):
        return sorted(inputs.items())
    return [(str(i), t) for i, t in enumerate(inputs)]


def fingerprint(probe: tuple[ModelInputs, torch.Tensor]) -> str:
    """A SHA-256 of the probe's tensors (names, dtypes, shapes and bytes), as 16 hex digits.

    Example:
        >>> a = (torch.zeros(2, 3), torch.tensor([0, 1]))
        >>> fingerprint(a) == fingerprint((torch.zeros(2, 3), torch.tensor([0, 1]))), fingerprint(a) == fingerprint((torch.ones(2, 3), a[1]))
        (True, False)
    """
    inputs, labels = probe
    digest = hashlib.sha256()
    for name, tensor in [*_tensors(inputs), ("labels", labels)]:
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}|{flat.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def save_probe(probe: tuple[ModelInputs, torch.Tensor], directory: str | Path) -> tuple[Path, str]:
    """Write the probe to ``directory/betti_probe-<fingerprint>.pt`` once (an existing file is kept); its path
    and fingerprint. The file is written under a temporary name and renamed, so a crash never leaves half a probe."""
    digest = fingerprint(probe)
    path = Path(directory).expanduser().resolve() / f"betti_probe-{digest}.pt"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        inputs, labels = probe
        saved = {"inputs": inputs, "labels": labels, "fingerprint": digest}
        if isinstance(inputs, SampleList):  # a plain tuple (a class torch.load takes) and a flag
            saved.update(inputs=tuple(inputs), sample_list=True)
        torch.save(saved, partial)
        os.replace(partial, path)
    return path, digest


def load_probe(path: str | Path, expected: str) -> tuple[ModelInputs, torch.Tensor]:
    """The probe saved at ``path``; :class:`ProbeFileError` if it is missing, unreadable or not ``expected``."""
    path = Path(path)
    if not path.is_file():
        raise ProbeFileError(
            f"the probe file {path} that the checkpoint names is missing (it is saved once per run, beside the "
            "checkpoints: copy it along with them)"
        )
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        inputs = SampleList(saved["inputs"]) if saved.get("sample_list") else saved["inputs"]
        probe = (inputs, saved["labels"])
    except Exception as error:
        raise ProbeFileError(f"the probe file {path} cannot be read ({type(error).__name__}: {error})") from error
    found = fingerprint(probe)
    if found != expected:
        raise ProbeFileError(
            f"the probe file {path} holds other points than the checkpoint was saved with (fingerprint {found}, "
            f"expected {expected})"
        )
    return probe
