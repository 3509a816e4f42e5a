"""How the monitor's figures reach TensorBoard: drawn and PNG-encoded in the background (``encode_png``), then
written by the training process as a ready image summary (``write_picture``), so its thread never re-encodes them.

Torch-free: the monitor's worker processes import it.

Example:
    >>> from matplotlib.figure import Figure
    >>> picture = encode_png(Figure(figsize=(2, 1), dpi=50))
    >>> picture.height, picture.width, picture.png[:4]
    (50, 100, b'\\x89PNG')
"""

from __future__ import annotations

import io
from typing import Any, NamedTuple

import numpy as np

__all__ = ["Picture", "encode_png", "render_rgb", "write_picture"]


class Picture(NamedTuple):
    """A figure rendered to a PNG file's bytes, with its size in pixels."""

    png: bytes
    height: int
    width: int

    def pixels(self) -> np.ndarray:
        """The ``(height, width, 3)`` uint8 RGB array."""
        from PIL import Image

        with Image.open(io.BytesIO(self.png)) as image:
            return np.asarray(image.convert("RGB"))


def render_rgb(figure: Any) -> np.ndarray:
    """A Matplotlib figure rendered with Agg: its ``(height, width, 3)`` uint8 RGB pixels."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def encode_png(figure: Any) -> Picture:
    """Render a Matplotlib figure with Agg and encode it as PNG (zlib level 6, the PNG default)."""
    from PIL import Image

    rgb = render_rgb(figure)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG", compress_level=6)
    return Picture(buffer.getvalue(), *rgb.shape[:2])


def write_picture(experiment: Any, tag: str, picture: Picture, step: int) -> None:
    """Log ``picture`` to a TensorBoard ``SummaryWriter`` (torch's or tensorboardX's) at ``step``.

    Its PNG goes into the event file as it is; ``add_image`` would decode nothing but re-encode every pixel in the
    calling thread (0.1 s for a ten-class heat map). A writer without a file writer gets ``add_image``.
    """
    file_writer = getattr(experiment, "_get_file_writer", None)
    if file_writer is None:
        experiment.add_image(tag, picture.pixels(), step, dataformats="HWC")
        return
    from tensorboard.compat.proto.summary_pb2 import Summary

    image = Summary.Image(height=picture.height, width=picture.width, colorspace=3, encoded_image_string=picture.png)
    file_writer().add_summary(Summary(value=[Summary.Value(tag=tag, image=image)]), step)
