"""Model inputs as a list of one tensor per sample (:class:`SampleList`), as detection models take their images,
told apart from a tuple of positional arguments by the labels and the tensors' rows."""

from __future__ import annotations

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
)


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
