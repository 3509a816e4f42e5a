"""Unreadable image files: the cheap check that finds them (size, magic bytes, the format's end marker; a full
decode only for files that fail it), the warning and error that report them, and how they are listed.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> empty = Path(tempfile.mkdtemp()) / "cat.0.jpg"
    >>> _ = empty.write_bytes(b"")
    >>> check_image_file(empty)
    'empty file'
"""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image, UnidentifiedImageError

__all__ = ["BadImageFileWarning", "BadImageFilesError", "check_image_file", "describe_bad_files"]

#: How many skipped files a warning names (the rest are counted)
SHOW_BAD = 5


class BadImageFileWarning(UserWarning):
    """An image file was skipped because it is empty, not an image, truncated or otherwise undecodable."""


class BadImageFilesError(ValueError):
    """Unreadable image files were found at set-up with ``on_bad_file="raise"``; ``bad_files`` maps path -> reason."""

    def __init__(self, message: str, bad_files: dict[Path, str]) -> None:
        super().__init__(message)
        self.bad_files = bad_files


def _image_format(head: bytes) -> str | None:
    """The format that the first bytes announce (JPEG, PNG, GIF or BMP), or ``None``."""
    signatures = {
        b"\xff\xd8\xff": "JPEG",
        b"\x89PNG\r\n\x1a\n": "PNG",
        b"GIF87a": "GIF",
        b"GIF89a": "GIF",
        b"BM": "BMP",
    }
    return next((name for magic, name in signatures.items() if head.startswith(magic)), None)


def _looks_complete(kind: str | None, tail: bytes, size: int, head: bytes) -> bool:
    """Whether the format's end marker (or, for BMP, the stated file size) is there: no decode needed."""
    if kind == "JPEG":  # SOI ... EOI; a cut-off file lacks the final FF D9
        return tail.endswith(b"\xff\xd9")
    if kind == "PNG":  # the last chunk is IEND (with its CRC)
        return tail.endswith(b"IEND\xaeB`\x82")
    if kind == "GIF":
        return tail.endswith(b";")
    if kind == "BMP" and len(head) >= 6:
        return int.from_bytes(head[2:6], "little") <= size
    return False


def _decode_problem(path: str | Path) -> str | None:
    """Why PIL cannot decode ``path`` (``None`` if it can): the slow, exact check."""
    try:
        with Image.open(path) as image:
            image.convert("RGB")
    except UnidentifiedImageError:
        return "not an image PIL can read"
    except Exception as error:  # PIL raises OSError, SyntaxError, ValueError, EOFError... for broken files
        return f"cannot be decoded ({type(error).__name__}: {error})"
    return None


def check_image_file(path: str | Path) -> str | None:
    """Why an image file is unreadable (empty, not an image, truncated), or ``None`` when it looks fine.

    Cheap: reads the size, the first and the last 16 bytes. A JPEG, PNG, GIF or BMP whose end marker (or
    stated size) is present passes without decoding; anything else (a cut-off file, an unknown or wrong
    format, trailing bytes after the end marker) is decoded once with PIL to decide. A file damaged in the
    middle can still pass; the data modules skip such files when they fail to load.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from PIL import Image
        >>> path = Path(tempfile.mkdtemp()) / "cat.1.jpg"
        >>> Image.new("RGB", (8, 8)).save(path)
        >>> check_image_file(path) is None
        True
        >>> _ = path.write_bytes(path.read_bytes()[:-40])  # cut off: no end marker
        >>> check_image_file(path)
        'truncated or damaged JPEG: its end marker is missing and it cannot be decoded (OSError: Truncated File Read)'
        >>> _ = path.write_bytes(b"")
        >>> check_image_file(path)
        'empty file'
    """
    try:
        with open(path, "rb", buffering=0) as f:  # unbuffered: two 16-byte reads, not two 8 KiB ones
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                return "empty file"
            head = f.read(16)
            f.seek(max(0, size - 16))
            tail = f.read(16)
    except OSError as error:
        return f"cannot be read ({type(error).__name__}: {error})"
    kind = _image_format(head)
    if _looks_complete(kind, tail, size, head):
        return None
    problem = _decode_problem(path)  # missing end marker, trailing bytes or unknown format: let PIL decide
    if problem is not None and kind is not None:
        return f"truncated or damaged {kind}: its end marker is missing and it {problem}"
    return problem


def describe_bad_files(bad: dict[Path, str], limit: int | None = SHOW_BAD) -> str:
    """``path (why); ...`` for the first ``limit`` files, and how many more there are."""
    items = list(bad.items())
    shown = "; ".join(f"{path} ({why})" for path, why in items[:limit])
    return shown + (f"; ... and {len(items) - limit} more" if limit is not None and len(items) > limit else "")
