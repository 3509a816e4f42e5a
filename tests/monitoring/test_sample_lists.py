"""Model inputs as a list of one tensor per sample (:class:`SampleList`), as detection models take their images,
told apart from a tuple of positional arguments by the labels and the tensors' rows."""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from lightning_topo.monitoring.batches import (
    NO_CLASS,
    BatchReader,
    SampleList,
    call_model,
    concat,
    describe_inputs,
    n_samples,
    primary_tensor,
    same_shapes,
    take,
    to_host,
)
from lightning_topo.monitoring.outputs import CHOICE_ROWS, TokenMask, per_sample
from lightning_topo.monitoring.probe_file import load_probe, save_probe
from lightning_topo.monitoring.trace import trace_forward
from lightning_topo.monitoring.watched_layers import watched_layers


def _images(*sizes: tuple[int, int], channels: int = 3) -> tuple[torch.Tensor, ...]:
    return tuple(torch.rand(channels, *size) for size in sizes)


def test_images_with_a_target_dict_each_are_one_per_sample_even_as_many_as_their_channels() -> None:
    images = _images((4, 5), (4, 5), (4, 5))  # 3 images of 3 channels: a positional reading would see 3 rows each
    targets = tuple({"boxes": torch.zeros(1, 4), "labels": torch.tensor([1])} for _ in images)
    inputs, labels, why = BatchReader().read((images, targets))
    assert isinstance(inputs, SampleList) and n_samples(inputs) == 3 and labels is None
    assert (
        why
        == "its labels (batch[1]) are a target dict per sample (a detector's boxes and their classes), not one class per sample"
    )
    inputs, labels = BatchReader().split((images, targets), classless=True)
    assert labels.tolist() == [NO_CLASS] * 3


def test_a_class_per_image_makes_a_list_of_images_one_per_sample() -> None:
    images = _images((4, 5), (6, 5), (4, 4), (8, 8))
    inputs, labels = BatchReader().split((list(images), torch.tensor([0, 1, 0, 1])))
    assert isinstance(inputs, SampleList) and labels.tolist() == [0, 1, 0, 1]


def test_tensors_of_one_batch_dimension_stay_positional_arguments() -> None:
    x, mask = torch.rand(4, 6), torch.ones(4, 6)
    inputs, labels = BatchReader().split(((x, mask), torch.tensor([0, 1, 0, 1])))
    assert type(inputs) is tuple and n_samples(inputs) == 4
    # as many arguments as samples: the rows count the samples too, so the tuple stays arguments
    inputs, _ = BatchReader().split(((torch.rand(2, 3), torch.rand(2, 5)), torch.tensor([0, 1])))
    assert type(inputs) is tuple
    inputs, _ = BatchReader(input_keys=(0, 1), label_key=2).split((torch.rand(3, 2), torch.rand(3, 4), torch.arange(3)))
    assert type(inputs) is tuple


def test_unlabelled_images_that_share_no_first_dimension_are_one_per_sample() -> None:
    images = _images((4, 5), (6, 5)) + (torch.rand(1, 4, 4),)  # a grey image beside colour ones
    inputs, labels, _ = BatchReader().read((images,))
    assert isinstance(inputs, SampleList) and n_samples(inputs) == 3 and labels is None


def test_a_sample_list_is_indexed_joined_described_and_called_as_a_list() -> None:
    images = SampleList(_images((4, 5), (6, 5), (4, 4)))
    assert [tuple(t.shape) for t in take(images, slice(1, 3))] == [(3, 6, 5), (3, 4, 4)]
    assert isinstance(take(images, torch.tensor([2])), SampleList)
    joined = concat([images, take(images, slice(0, 1))])
    assert isinstance(joined, SampleList) and n_samples(joined) == 4 and joined[3] is images[0]
    assert describe_inputs(images) == "[3 samples: float32 (3, 4, 5), float32 (3, 6, 5), float32 (3, 4, 4)]"
    assert not same_shapes(images) and same_shapes(SampleList(_images((2, 2), (2, 2))))
    assert primary_tensor(SampleList(_images((2, 2), (2, 2)))).shape == (2, 3, 2, 2)

    class CountsImages(nn.Module):
        def forward(self, images: list[torch.Tensor]) -> torch.Tensor:
            assert isinstance(images, list)
            return torch.stack([image.mean() for image in images])

    assert call_model(CountsImages(), images).shape == (3,)


def test_a_tie_of_images_as_many_as_their_channels_is_broken_by_their_shape() -> None:
    """3 RGB images with a class each: their rows (3 channels) are as many as the labels too. Images are
    (channels, height, width) floats; DETR's (pixel_values, pixel_mask) arguments at batch size 2 are not."""
    images = _images((4, 5), (4, 5), (4, 5))
    inputs, labels = BatchReader().split((images, torch.tensor([0, 1, 2])))
    assert isinstance(inputs, SampleList) and labels.tolist() == [0, 1, 2]
    detr = (torch.rand(2, 3, 8, 8), torch.ones(2, 8, 8, dtype=torch.long))
    targets = [{"class_labels": torch.tensor([1]), "boxes": torch.rand(1, 4)} for _ in range(2)]
    inputs, _, _ = BatchReader().read((detr, targets))
    assert type(inputs) is tuple and n_samples(inputs) == 2


def test_positional_arguments_of_different_ranks_and_rows_keep_their_error() -> None:
    """A graph batch (x, edge_index, batch) shares no first dimension, and is no list of samples either."""
    graph = (torch.rand(5, 3), torch.zeros(2, 8, dtype=torch.long), torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="do not share one batch dimension"):
        BatchReader().read((graph, torch.tensor([0])))


def test_named_tuples_and_lists_of_arguments_are_indexed_as_arguments() -> None:
    Inputs = collections.namedtuple("Inputs", ["x", "mask"])
    for inputs in (Inputs(torch.rand(4, 3), torch.ones(4, 3)), [torch.rand(4, 3), torch.ones(4, 3)]):
        picked = take(to_host(inputs), torch.tensor([2, 0]))
        assert type(picked) is tuple and [tuple(t.shape) for t in picked] == [(2, 3), (2, 3)]


def test_a_boolean_index_picks_the_samples_it_marks() -> None:
    images = SampleList(_images((2, 2), (3, 3), (4, 4)))
    picked = take(images, torch.tensor([True, False, True]))
    assert [tuple(t.shape) for t in picked] == [(3, 2, 2), (3, 4, 4)]


def test_a_probe_file_keeps_a_list_of_arguments_apart_from_a_list_of_samples(tmp_path: Path) -> None:
    arguments = ([torch.rand(2, 3), torch.ones(2, 3)], torch.tensor([0, 1]))
    inputs, _ = load_probe(*save_probe(arguments, tmp_path / "arguments"))
    assert not isinstance(inputs, SampleList)
    samples = (SampleList(_images((2, 2), (3, 3))), torch.tensor([-1, -1]))
    inputs, _ = load_probe(*save_probe(samples, tmp_path / "samples"))
    assert isinstance(inputs, SampleList) and [tuple(t.shape) for t in inputs] == [(3, 2, 2), (3, 3, 3)]


class _PerImage(nn.Module):
    """A model of a list of images of any size: each image's channel means, then a linear layer."""

    def __init__(self) -> None:
        super().__init__()
        self.body, self.act, self.head = nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)

    def forward(self, images: list[torch.Tensor]) -> torch.Tensor:
        return self.head(self.act(self.body(torch.stack([image.mean(dim=(1, 2)) for image in images]))))


@pytest.mark.parametrize("layers", [None, ["input", "act", "logits"]], ids=["default", "named"])
def test_input_is_left_out_when_any_probe_image_differs_not_only_the_first_two(layers: Any) -> None:
    probe = SampleList(_images((4, 4), (4, 4), (5, 7), (4, 4)))
    said: list[str] = []
    watched = watched_layers(
        _PerImage(), layers, take(probe, slice(0, 2)), call_model, True, said.append, said.append, probe=probe
    )
    assert watched == ["act", "logits"]
    assert any("images have different sizes" in line for line in said)
    same = watched_layers(
        _PerImage(), layers, take(probe, slice(0, 2)), call_model, True, probe=take(probe, slice(0, 2))
    )
    assert same[0] == "input"


def test_a_row_per_choice_of_a_one_dimensional_output_is_read_per_sample() -> None:
    assert per_sample(torch.arange(6.0), rows=2, layout=CHOICE_ROWS).tolist() == [[0, 1, 2], [3, 4, 5]]


def test_a_square_attention_mask_is_not_taken_for_choices() -> None:
    """A (batch, tokens, tokens) mask beside (batch, tokens) ids is no multiple-choice mask: it is left as given."""
    mask = TokenMask.of_inputs({"input_ids": torch.ones(2, 5, dtype=torch.long), "attention_mask": torch.ones(2, 5, 5)})
    assert mask.mask.shape == (2, 5, 5)
    choices = TokenMask.of_inputs(
        {"input_ids": torch.ones(2, 4, 5, dtype=torch.long), "attention_mask": torch.ones(2, 4, 5)}
    )
    assert choices.mask.shape == (8, 5)


def test_only_token_ids_of_three_dimensions_are_choices() -> None:
    """Raw grey images (batch, height, width) of uint8 are no multiple-choice ids."""
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 2))
    grey = trace_forward(net, torch.zeros(2, 3, 4, dtype=torch.uint8), lambda m, x: m(x.float()))
    assert grey.choices == 0


def test_a_probe_of_images_as_arguments_is_told_to_be_a_sample_list() -> None:
    class Detects(nn.Module):
        def forward(self, images: list[torch.Tensor]) -> torch.Tensor:
            return torch.stack([image.mean() for image in images])

    with pytest.raises(ValueError, match=r"give probe=\(SampleList\(\[...\]\), labels\)"):
        trace_forward(Detects(), tuple(_images((4, 4), (4, 4), (4, 4))), call_model)
    with pytest.raises(ValueError) as raised:
        trace_forward(Detects(), (torch.rand(2, 3), torch.rand(2, 3)), call_model)
    assert "SampleList" not in str(raised.value)  # (batch, features) arguments are no images


def test_a_list_of_samples_is_read_as_its_columns_with_a_class_each() -> None:
    """``collate_fn=lambda b: b``: (image, label) samples, labels as 0-d tensors, as a dataset returns them."""
    samples = [(image, torch.tensor(label)) for image, label in zip(_images((4, 5), (6, 5), (4, 4)), (2, 0, 1))]
    inputs, labels = BatchReader().split(samples)
    assert isinstance(inputs, SampleList) and labels.tolist() == [2, 0, 1]
    assert inputs[1] is samples[1][0]


def test_a_list_of_samples_it_cannot_read_is_described_as_the_list_the_loader_gave() -> None:
    """The errors used to describe the columns ("tuple of 2 items (tuple, tuple)"), not the 8 samples the loader gave,
    and one of them the list of samples as "list of 8 items", with its columns' indices."""
    samples = [(image, {"boxes": torch.zeros(0, 4)}) for image in _images(*[(4, 4 + n) for n in range(8)])]
    said = "list of 8 samples, each a tuple (Tensor, dict), read as its columns batch[0] ... batch[1]"
    for reader, problem in (
        (BatchReader(label_key="cls"), "it has no key 'cls'"),
        (BatchReader(input_keys=[3]), "index 3 is not an item of it"),
        (BatchReader(), "its labels (batch[1]) are a target dict per sample"),
    ):
        with pytest.raises(ValueError) as raised:
            reader.split(samples)
        assert f"a training batch of type {said}: {problem}" in str(raised.value)
    with pytest.raises(ValueError, match=r"type tuple of 2 items \(tuple, tuple\): index 3"):
        BatchReader(input_keys=[3]).split(tuple(zip(*samples)))  # columns the loader made: described as they are
