"""Token pooling on real models whose 3-D outputs come in both layouts (tiny configurations built here, no
download): a Wav2Vec2's convolutional feature extractor returns (batch, channels, steps), its encoder layers
(batch, steps, features), and the monitor pools each over its steps; an MLP-Mixer transposes inside its blocks."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from helpers.trainers import quiet_trainer
from helpers.user_models import HFClassifier
from torch.utils.data import DataLoader

from lightning_topo.callbacks import BettiMonitor
from lightning_topo.monitoring.clouds import reduce_clouds
from lightning_topo.monitoring.layouts import channels_first_layers, layer_layouts, unmasked_layers
from lightning_topo.monitoring.outputs import CHANNELS_FIRST, STEPS_FIRST, select_tensor
from lightning_topo.monitoring.trace import trace_forward
from lightning_topo.topology import numpy_neighbour_lists
from lightning_topo.topology.intrinsic import lists_intrinsic_dimension

transformers = pytest.importorskip("transformers")
timm = pytest.importorskip("timm")

FEATURES = "model.wav2vec2.feature_extractor.conv_layers"


def _wav2vec2(layers: int = 2) -> HFClassifier:
    config = transformers.Wav2Vec2Config(
        vocab_size=10, hidden_size=16, num_hidden_layers=layers, num_attention_heads=2, intermediate_size=20,
        conv_dim=(8, 8), conv_stride=(5, 4), conv_kernel=(10, 4), num_feat_extract_layers=2,
        num_conv_pos_embeddings=4, num_conv_pos_embedding_groups=2, num_labels=2, classifier_proj_size=8,
        feat_extract_norm="layer", do_stable_layer_norm=True, mask_time_prob=0.0,
    )  # fmt: skip
    return HFClassifier(transformers.Wav2Vec2ForSequenceClassification(config))


def test_wav2vec2_feature_extractor_is_pooled_over_its_steps_not_its_channels(tmp_path: Path, caplog) -> None:
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    audio, labels = torch.randn(48, 1000, generator=generator), torch.arange(48) % 2
    data = [{"input_values": a, "labels": y} for a, y in zip(audio, labels)]
    loader = DataLoader(data, batch_size=16)
    monitor = BettiMonitor(
        probe_size=48, k=4, log_figure=False, layers="blocks", token_pooling="mean", intrinsic_dimension=True
    )
    model = _wav2vec2()
    with caplog.at_level(logging.INFO):
        quiet_trainer(tmp_path, max_epochs=1, callbacks=[monitor]).fit(model, loader)
    assert f"2 watched layers return (batch, channels, steps), as 1-d convolutions do ({FEATURES}.0, {FEATURES}.1)" in (
        caplog.text
    )
    assert monitor.watched_layers[1:3] == [f"{FEATURES}.0", f"{FEATURES}.1"]  # the audio first, the encoder after

    # what the monitor measured: each class's cloud of the conv outputs averaged over their steps, 8 values a point
    inputs, probe_labels = monitor.probe
    captured: dict[str, torch.Tensor] = {}
    module = dict(model.named_modules())[f"{FEATURES}.1"]
    handle = module.register_forward_hook(lambda m, a, out: captured.__setitem__("out", out))
    model.eval()
    with torch.no_grad():
        model(**inputs)
    handle.remove()
    assert captured["out"].shape[1:] == (8, 49)  # (batch, channels, steps)
    entry = monitor.compute(model)
    for cloud in ("0", "1"):
        points = captured["out"][probe_labels == int(cloud)].mean(2).double().numpy()
        expected = lists_intrinsic_dimension(numpy_neighbour_lists(points, k=4))
        assert entry["id"][f"{FEATURES}.1"][cloud] == pytest.approx(expected, rel=1e-6)


def test_the_layouts_of_real_blocks_are_read_from_the_modules_that_made_them() -> None:
    model = _wav2vec2().eval()
    example = {"input_values": torch.randn(2, 1000)}
    names = [name for name, _ in model.named_modules() if name.startswith(("model.wav2vec2.", "model.projector"))]
    found = channels_first_layers(model, trace_forward(model, example), names)
    assert f"{FEATURES}.0" in found and f"{FEATURES}.1.conv" in found
    # the positional conv under weight_norm, its same-padding trim and activation are (batch, hidden, frames) too
    assert "model.wav2vec2.encoder.pos_conv_embed.activation" in found
    assert not [name for name in found if ".encoder.layers." in name]  # (batch, frames, features) after the projection
    mixer = timm.models.mlp_mixer.MlpMixer(num_classes=2, img_size=32, patch_size=8, num_blocks=2, embed_dim=16)
    mixer.eval()
    trace = trace_forward(mixer, torch.randn(2, 3, 32, 32))
    blocks = [name for name, _ in mixer.named_modules() if name.count(".") == 1 and name.startswith("blocks.")]
    # the token-mixing MLP runs on the transposed tokens, but every block hands back (batch, tokens, features)
    assert blocks and channels_first_layers(mixer, trace, blocks) == []


@pytest.mark.parametrize(
    ("layer", "steps_last"),
    [("model.wav2vec2.encoder.layers.1", False), (f"{FEATURES}.1", True), (f"{FEATURES}.0", True)],
)
def test_an_audio_layer_is_pooled_over_each_clips_own_frames_whatever_its_padding(layer: str, steps_last: bool) -> None:
    """The mask is per audio sample, the encoder's tokens are frames: the model's own frame lengths map one to the
    other, so padding a clip into a longer batch never moves its point (it moved by about 40% of its norm). The
    feature extractor's first convolution has frames of its own, mapped by the config's kernels and strides."""
    torch.manual_seed(0)
    model = _wav2vec2().eval()
    generator = torch.Generator().manual_seed(0)
    clips = [torch.randn(int(n), generator=generator) for n in torch.randint(800, 1600, (30,), generator=generator)]
    longest = max(len(clip) for clip in clips)
    values, mask = torch.zeros(len(clips), longest), torch.zeros(len(clips), longest, dtype=torch.long)
    for row, clip in enumerate(clips):
        values[row, : len(clip)], mask[row, : len(clip)] = clip, 1
    module = dict(model.named_modules())[layer]
    own: list[torch.Tensor] = []
    steps = 2 if steps_last else 1
    handle = module.register_forward_hook(lambda m, a, out: own.append(select_tensor(out).mean(steps)))
    with torch.no_grad():
        for clip in clips:  # each clip alone, unpadded: the mean over its own frames
            model(input_values=clip[None])
    handle.remove()
    batch = {"input_values": values, "attention_mask": mask}
    found = reduce_clouds(
        model, batch, {"all": None}, {"all": [layer]}, k=4, token_pooling="mean",
        layouts={layer: CHANNELS_FIRST} if steps_last else {},
    )[(layer, "all")]  # fmt: skip
    expected = numpy_neighbour_lists(torch.cat(own).double().numpy(), k=4)
    assert found.indices.tolist() == expected.indices.tolist()
    traced = trace_forward(model, batch)  # and the monitor's notice of unreachable layers does not name it
    assert unmasked_layers(model, traced, [layer], mask, [layer] if steps_last else []) == []


def test_xlnet_keeps_its_tokens_first_and_each_sample_is_pooled_over_its_own_tokens(tmp_path: Path) -> None:
    """XLNet's layers return (tokens, batch, features): the monitor reads each sample's column, and pools it under
    the sample's own mask. Its default watched none of its layers, and ``layers='blocks'`` stopped the fit."""
    torch.manual_seed(0)
    config = transformers.XLNetConfig(vocab_size=50, d_model=16, n_layer=2, n_head=2, d_inner=24, num_labels=2)
    model = HFClassifier(transformers.XLNetForSequenceClassification(config)).eval()
    generator = torch.Generator().manual_seed(0)
    lengths = torch.randint(5, 13, (30,), generator=generator)
    ids, mask = torch.zeros(30, 12, dtype=torch.long), torch.zeros(30, 12, dtype=torch.long)
    for row, length in enumerate(lengths):
        ids[row, :length], mask[row, :length] = torch.randint(3, 50, (int(length),), generator=generator), 1
    layer = "model.transformer.layer.1"
    own: list[torch.Tensor] = []
    handle = model.get_submodule(layer).register_forward_hook(lambda m, a, out: own.append(out[0].mean(0)))
    with torch.no_grad():
        for row, length in enumerate(lengths):  # each sequence alone, unpadded: the mean over its own tokens
            model(input_ids=ids[row : row + 1, :length])
    handle.remove()
    batch = {"input_ids": ids, "attention_mask": mask}
    layouts = layer_layouts(model, trace_forward(model, {k: v[:2] for k, v in batch.items()}), [layer], "mean")
    assert layouts == {layer: STEPS_FIRST}
    found = reduce_clouds(model, batch, {"all": None}, {"all": [layer]}, k=4, token_pooling="mean", layouts=layouts)
    expected = numpy_neighbour_lists(torch.cat(own).double().numpy(), k=4)
    assert found[(layer, "all")].indices.tolist() == expected.indices.tolist()

    data = [{"input_ids": i, "attention_mask": m, "labels": y} for i, m, y in zip(ids, mask, torch.arange(30) % 2)]
    for layers in (None, "blocks"):
        monitor = BettiMonitor(layers=layers, probe_size=30, k=4, token_pooling="mean", log_figure=False)
        fitted = HFClassifier(transformers.XLNetForSequenceClassification(config))
        quiet_trainer(tmp_path, max_epochs=1, callbacks=[monitor]).fit(fitted, DataLoader(data, batch_size=10))
        hidden = [name for name in monitor.watched_layers if name.startswith("model.transformer.layer.")]
        assert len(hidden) == 2 and all(monitor.history[-1]["betti"][name] for name in hidden)
