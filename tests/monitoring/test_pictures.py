"""The monitor's figures reach TensorBoard as the PNG the worker encoded: same pixels, no re-encoding."""

from __future__ import annotations

import time

import numpy as np
import pytest
from lightning.pytorch.loggers import TensorBoardLogger
from matplotlib.figure import Figure
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.tensorboard import SummaryWriter

from lightning_topo.monitoring.jobs import figure_tags, render_job
from lightning_topo.monitoring.logger_output import FigureSchedule
from lightning_topo.monitoring.pictures import Picture, encode_png, write_picture
from lightning_topo.monitoring.runner import JobRunner


def red_square_figure() -> Figure:
    figure = Figure(figsize=(2, 1), dpi=40)
    figure.patch.set_facecolor((1.0, 0.0, 0.0))
    return figure


def test_encode_png_keeps_the_rendered_pixels():
    picture = encode_png(red_square_figure())
    assert (picture.height, picture.width) == (40, 80)
    pixels = picture.pixels()
    assert pixels.shape == (40, 80, 3) and pixels.dtype == np.uint8
    assert (pixels == [255, 0, 0]).all()


def test_write_picture_puts_the_png_in_the_event_file_byte_for_byte(tmp_path):
    picture = encode_png(red_square_figure())
    writer = SummaryWriter(tmp_path)
    write_picture(writer, "betti/over_training", picture, step=7)
    writer.close()
    events = EventAccumulator(str(tmp_path), size_guidance={"images": 0})
    events.Reload()
    (image,) = events.Images("betti/over_training")
    assert (image.step, image.height, image.width) == (7, 40, 80)
    assert image.encoded_image_string == picture.png


def test_a_writer_without_a_file_writer_gets_add_image_with_the_pixels():
    received = []

    class ImageOnlyWriter:  # e.g. a custom logger experiment that only knows add_image
        def add_image(self, tag, pixels, step, dataformats):
            received.append((tag, pixels.shape, step, dataformats))

    write_picture(ImageOnlyWriter(), "betti/depth_profile", encode_png(red_square_figure()), step=3)
    assert received == [("betti/depth_profile", (40, 80, 3), 3, "HWC")]


def test_render_job_returns_png_pictures_of_every_figure():
    history = [{"epoch": e, "step": e, "seconds": 0.1, "betti": {"a": {"0": [3 - e, 1]}}} for e in range(3)]
    pictures = render_job(history, ["a"], [0, 1])
    assert sorted(pictures) == ["betti/depth_profile", "betti/over_training"]
    for picture in pictures.values():
        assert isinstance(picture, Picture) and picture.png.startswith(b"\x89PNG")
        assert picture.pixels().shape == (picture.height, picture.width, 3)


def history_with_ids() -> list[dict]:
    return [
        {"epoch": e, "step": e, "seconds": 0.1, "betti": {"a": {"0": [3 - e, 1]}}, "id": {"a": {"0": 2.0 - 0.1 * e}}}
        for e in range(3)
    ]


def test_render_job_draws_only_the_images_asked_for_and_the_same_pixels_as_all_at_once():
    history = history_with_ids()
    assert figure_tags(history) == [
        "betti/over_training",
        "betti/depth_profile",
        "id/depth_profile",
        "id/over_training",
    ]
    assert (
        figure_tags([{k: v for k, v in entry.items() if k != "id"} for entry in history])[-1] == "betti/depth_profile"
    )
    whole = render_job(history, ["a"], [0, 1])
    assert list(whole) == figure_tags(history)
    for tag in figure_tags(history):
        (alone,) = render_job(history, ["a"], [0, 1], tags=[tag]).values()
        assert alone.png == whole[tag].png


@pytest.mark.parametrize(("workers", "jobs"), [(0, 1), (1, 1), (2, 4)])
def test_several_worker_processes_draw_each_image_in_a_job_of_its_own_and_every_image_is_logged(
    tmp_path, workers, jobs
):
    history, runner, schedule = history_with_ids(), JobRunner(workers), FigureSchedule()
    logger = TensorBoardLogger(tmp_path, name="", version="")
    try:
        schedule.due_step = 5
        start = time.perf_counter()
        schedule.draw(runner, history, ["a"], [0, 1])
        assert [(step, weight) for step, _, _, weight in schedule.renders] == [(5, 1 / jobs)] * jobs
        schedule.flush([logger], block=True, warn=pytest.fail)
        elapsed = time.perf_counter() - start
    finally:
        runner.close()
    logger.experiment.close()
    assert not schedule.renders and schedule.due_step is None
    assert 0 < schedule.seconds <= elapsed  # the jobs of one drawing count as one drawing's time, not their sum
    events = EventAccumulator(str(tmp_path), size_guidance={"images": 0})
    events.Reload()
    assert sorted(events.Tags()["images"]) == sorted(figure_tags(history))
    assert all([image.step for image in events.Images(tag)] == [5] for tag in figure_tags(history))
