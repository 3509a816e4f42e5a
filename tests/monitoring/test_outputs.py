"""Which tensor of a model's output the monitor measures: tensors, dicts, (named) tuples, ModelOutput-like objects."""

from __future__ import annotations

import pytest
import torch
from helpers.user_models import ModelOutputLike, Output

from lightning_topo.monitoring.outputs import TokenMask, feature_lengths, per_sample, select_tensor


def test_select_tensor_rule():
    t = torch.ones(3, 2)
    assert select_tensor({"features": torch.zeros(3, 5), "logits": t}) is t
    assert select_tensor({"a": "text", "b": t}) is t  # no logits: the first tensor
    assert select_tensor(Output(torch.zeros(3, 5), t)) is t
    assert select_tensor((torch.zeros(3, 5), t), key=1) is t
    assert select_tensor({"x": t}, key=lambda out: out["x"] * 2).sum() == 12
    assert select_tensor(ModelOutputLike(logits=t)) is t
    with pytest.raises(TypeError, match="no key 'scores'; its keys are"):
        select_tensor({"logits": t}, key="scores")
    with pytest.raises(TypeError, match="found no tensor .* pass output_key"):
        select_tensor({"a": "text"})
    assert per_sample(torch.ones(4, 7, 3)).shape == (4, 21)
    assert per_sample(torch.arange(24.0).reshape(2, 4, 3), "first").tolist() == [[0, 1, 2], [12, 13, 14]]


def test_mean_and_last_pooling_read_only_the_tokens_the_mask_keeps():
    from lightning_topo.monitoring.outputs import per_sample

    hidden = torch.arange(2 * 4 * 3, dtype=torch.float32).reshape(2, 4, 3)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])  # the first sample padded by two tokens
    mean = per_sample(hidden, "mean", mask=mask)
    torch.testing.assert_close(mean[0], hidden[0, :2].mean(0))  # padding left out
    torch.testing.assert_close(mean[1], hidden[1].mean(0))
    last = per_sample(hidden, "last", mask=mask)
    torch.testing.assert_close(last, torch.stack([hidden[0, 1], hidden[1, 3]]))
    torch.testing.assert_close(per_sample(hidden, "last"), hidden[:, -1])  # no mask: the last position
    torch.testing.assert_close(per_sample(hidden, "mean", mask=mask[:, :3]), hidden.mean(1))  # other tokens: plain


def test_the_monitor_pools_each_sequence_over_its_own_tokens_whatever_its_padding():
    from torch import nn

    from lightning_topo.monitoring.clouds import reduce_clouds
    from lightning_topo.topology import numpy_neighbour_lists

    class Embed(nn.Module):  # (batch, tokens) ids -> (batch, tokens, 3); the pad id 0 lies far from every token
        def __init__(self) -> None:
            super().__init__()
            self.table = nn.Embedding(30, 3)
            with torch.no_grad():
                self.table.weight[0] = 1000.0

        def forward(self, input_ids, attention_mask):
            return self.table(input_ids)

    torch.manual_seed(0)
    model = Embed().eval()
    generator = torch.Generator().manual_seed(0)
    lengths = torch.randint(2, 12, (30,), generator=generator)
    ids = torch.randint(1, 30, (30, 12), generator=generator)
    mask = (torch.arange(12) < lengths[:, None]).long()
    ids = ids * mask  # right-padded with the pad id 0, as a collator pads
    with torch.no_grad():
        tokens = model.table(ids)
    expected = (tokens * mask[..., None]).sum(1) / lengths[:, None]  # each sequence's own tokens only
    found = reduce_clouds(
        model, {"input_ids": ids, "attention_mask": mask}, {"all": None}, {"all": ["logits"]}, k=4, token_pooling="mean"
    )[("logits", "all")]
    assert found.indices.tolist() == numpy_neighbour_lists(expected.double().numpy(), k=4).indices.tolist()


class _AudioModel(torch.nn.Module):
    """Hugging Face's audio convention: ``_get_feat_extract_output_lengths`` and a config listing the convolutions."""

    def __init__(self, kernels: object = (10, 3), strides: object = (5, 2)) -> None:
        super().__init__()
        self.config = type("Config", (), {"conv_kernel": kernels, "conv_stride": strides})()

    def _get_feat_extract_output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return ((lengths - 10) // 5 + 1 - 3) // 2 + 1


def test_a_padded_audio_mask_is_read_at_every_convolutions_frames_and_nowhere_else():
    inner = _AudioModel()
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), inner)  # found anywhere inside
    mask = torch.zeros(2, 400, dtype=torch.long)
    mask[0, :400], mask[1, :200] = 1, 1
    reader = TokenMask(mask, feature_lengths(model))
    # the last frames (39; 200 samples keep 19), the first convolution's (79; 39 kept), the samples themselves
    assert reader.of(39).sum(1).tolist() == [39, 19]
    assert reader.of(79).sum(1).tolist() == [79, 39]
    assert reader.of(400) is mask
    assert reader.of(50) is None  # no convolution makes 50 frames of 400 samples: no mask fits
    # without the config's lists only the model's own map is known; any other model has none
    assert len(feature_lengths(_AudioModel(kernels=None))) == 1
    assert len(feature_lengths(_AudioModel(kernels=(10,), strides=(5, 2)))) == 1
    assert feature_lengths(torch.nn.Linear(2, 2)) == ()
    assert TokenMask(mask).of(39) is None


def test_a_models_own_frame_map_of_another_signature_is_passed_over_and_a_short_clip_keeps_a_frame():
    mask = torch.zeros(2, 400, dtype=torch.long)
    mask[0, :400], mask[1, :5] = 1, 1  # the second clip is shorter than the first convolution's 10 samples

    def needs_a_window(lengths: torch.Tensor, window: int) -> torch.Tensor:
        return lengths // window

    unreadable = (
        lambda n: (n // 4, n // 4),  # Qwen2-Audio's convention: (feature frames, output frames)
        needs_a_window,
        lambda n: int(n) // 4,  # a single int, as some models take
        lambda n: n / 4.0,  # fractional frames
    )
    assert TokenMask(mask, unreadable).of(100) is None  # passed over, not raised
    reader = TokenMask(mask, (*unreadable, lambda n: n // 4))
    assert reader.of(100).sum(1).tolist() == [100, 1]  # the short clip keeps its first frame, never an empty mean
    assert TokenMask(mask, feature_lengths(_AudioModel())).of(79).sum(1).tolist() == [79, 1]


def test_a_batch_with_no_mask_to_read_does_not_walk_the_model_at_every_pass() -> None:
    """``TokenMask.of_model_inputs`` runs at every measurement pass; for an image batch it walked all of a model's
    modules twice (about 1 ms for a ResNet-50) to find an audio model's frames and a seq2seq pad id it never used."""
    walks = []

    class Counted(torch.nn.Sequential):
        def modules(self):
            walks.append(1)
            return super().modules()

    model = Counted(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
    assert TokenMask.of_model_inputs(model, torch.zeros(2, 3, 8, 8)) is None
    assert TokenMask.of_model_inputs(model, (torch.zeros(2, 3, 8, 8), torch.zeros(2, 3))) is None
    assert not walks
    text = {"input_ids": torch.ones(2, 5, dtype=torch.long), "attention_mask": torch.ones(2, 5)}
    assert TokenMask.of_model_inputs(model, text).of(5).tolist() == [[1.0] * 5] * 2
    assert walks  # a mapping may hold a mask: the model is read for its frames and pad id
