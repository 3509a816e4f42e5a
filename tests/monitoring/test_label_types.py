"""Class labels as a collate_fn of one's own gives them: NumPy arrays and NumPy ints are classes; class names
(strings) are not, and the reason names them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lightning_topo.monitoring.batches import BatchReader

X = torch.zeros(3, 2)


@pytest.mark.parametrize(
    "labels",
    [np.array([0, 2, 1]), [np.int64(0), np.int64(2), np.int64(1)], np.array([0.0, 2.0, 1.0]), [0, 2, 1]],
    ids=["numpy array", "list of numpy ints", "numpy floats", "list of ints"],
)
def test_numpy_labels_are_classes(labels) -> None:
    """A NumPy array or a list of NumPy ints was read as no class, and the probe measured as one cloud."""
    inputs, found, why = BatchReader().read({"x": X, "y": labels})
    assert why is None and found.tolist() == [0, 2, 1]


def test_class_names_are_no_classes_and_the_reason_says_they_are_strings() -> None:
    _, found, why = BatchReader().read({"x": X, "y": ["cat", "dog", "bird"]})
    assert found is None
    assert why == (
        "its labels ('y') are strings ('cat', ...): class names, not class indices; map them to indices (in the "
        "dataset or the collate_fn)"
    )
