"""Encoder-decoder models as users train them (tiny Hugging Face T5 and BART, built here, no download): batches of
``input_ids``, ``attention_mask`` and token ``labels`` padded with -100, as ``DataCollatorForSeq2Seq`` pads them.

The probe's decoder gets its inputs from the labels, as the collator and the model make them in training (T5
could not be run on the probe at all before: it needs ``decoder_input_ids``), and the decoder's layers are
pooled over the decoder's own positions, never with the encoder's attention mask, whose tokens are not theirs."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers.trainers import quiet_trainer
from helpers.user_models import HFClassifier
from torch.utils.data import DataLoader

from lightning_topo.callbacks import BettiMonitor
from lightning_topo.monitoring import NO_CLASS
from lightning_topo.monitoring.batches import call_model
from lightning_topo.monitoring.clouds import reduce_clouds
from lightning_topo.monitoring.layouts import layer_layouts
from lightning_topo.monitoring.outputs import TokenMask, select_tensor
from lightning_topo.monitoring.trace import trace_forward
from lightning_topo.topology import numpy_neighbour_lists

transformers = pytest.importorskip("transformers")


def _t5() -> Any:
    config = transformers.T5Config(
        vocab_size=50, d_model=16, d_kv=8, d_ff=32, num_layers=2, num_heads=2, pad_token_id=0,
        decoder_start_token_id=0,
    )  # fmt: skip
    return transformers.T5ForConditionalGeneration(config)


def _bart() -> Any:
    config = transformers.BartConfig(
        vocab_size=50, d_model=16, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=32,
    )  # fmt: skip
    return transformers.BartForConditionalGeneration(config)


def _lengths(n: int, longest: int, generator: torch.Generator) -> torch.Tensor:
    return torch.randint(2, longest + 1, (n,), generator=generator)


def _seq2seq_batches(n: int = 64, batch_size: int = 16) -> list[dict[str, torch.Tensor]]:
    """Sources padded with the pad id 0 beside their attention mask, targets padded with -100 (the collator's)."""
    generator = torch.Generator().manual_seed(0)
    source = torch.randint(2, 50, (n, 12), generator=generator)
    mask = (torch.arange(12) < _lengths(n, 12, generator)[:, None]).long()
    target = torch.randint(2, 50, (n, 7), generator=generator)
    target = target.masked_fill(torch.arange(7) >= _lengths(n, 7, generator)[:, None], -100)
    return [
        {"input_ids": (source * mask)[i : i + batch_size], "attention_mask": mask[i : i + batch_size],
         "labels": target[i : i + batch_size]}
        for i in range(0, n, batch_size)
    ]  # fmt: skip


@pytest.mark.parametrize("make", [_t5, _bart], ids=["t5", "bart"])
def test_a_seq2seq_model_is_measured_with_the_decoder_inputs_it_trains_on(
    make: Any, tmp_path: Path, caplog: Any
) -> None:
    torch.manual_seed(0)
    model = make()
    batches = _seq2seq_batches()
    monitor = BettiMonitor(log_figure=False, probe_size=48, k=4, layers="blocks", token_pooling="mean")
    with caplog.at_level(logging.INFO):
        quiet_trainer(tmp_path, max_epochs=2, callbacks=[monitor]).fit(
            HFClassifier(model), DataLoader(batches, batch_size=None)
        )
    inputs, labels = monitor.probe
    assert set(inputs) == {"input_ids", "attention_mask", "decoder_input_ids"}
    assert bool((labels == NO_CLASS).all())  # token labels: one cloud
    targets = torch.cat([b["labels"] for b in batches])
    for row in range(0, len(labels), 7):  # each point's decoder inputs are its own targets, shifted right
        source = inputs["input_ids"][row]
        match = torch.nonzero((torch.cat([b["input_ids"] for b in batches]) == source).all(1)).flatten()
        expected = model.prepare_decoder_input_ids_from_labels(labels=targets[match[:1]])
        assert torch.equal(inputs["decoder_input_ids"][row], expected[0])
        assert int(inputs["decoder_input_ids"][row].min()) >= 0  # -100 became the pad token
    decoder = [name for name in monitor.watched_layers if ".decoder." in name]
    assert len(decoder) == 2 and any(".encoder." in name for name in monitor.watched_layers)
    pad = model.config.pad_token_id
    assert "no decoder_attention_mask, so token_pooling='mean' reads the decoder's 3 watched layers" in caplog.text
    assert f"at the decoder inputs that are not the pad token (id {pad}), which padded labels (-100) become" in (
        caplog.text
    )
    assert len(monitor.history) == 2
    for entry in monitor.history:  # every layer measured, none skipped with a reason
        assert set(entry["betti"]) == set(monitor.watched_layers)
        assert all(isinstance(cloud["all"], list) and cloud["all"][0] >= 1 for cloud in entry["betti"].values())


def _pooled(model: Any, batch: dict[str, torch.Tensor], layer: str, mask: torch.Tensor | None) -> torch.Tensor:
    """The layer's output of each sample, averaged over the positions ``mask`` keeps (``None``: all)."""
    module = dict(model.named_modules())[layer]
    found: list[torch.Tensor] = []
    handle = module.register_forward_hook(lambda m, a, out: found.append(select_tensor(out)))
    with torch.no_grad():
        model(**batch)
    handle.remove()
    tokens = found[-1]
    if mask is None:
        return tokens.mean(1)
    return (tokens * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)


@pytest.mark.parametrize("decoder_mask", [False, True], ids=["no decoder mask", "decoder_attention_mask"])
def test_decoder_layers_are_never_pooled_with_the_encoders_mask(decoder_mask: bool) -> None:
    """Source and target of one length (8), so the encoder's mask would fit the decoder's tokens: it used to be
    applied there, averaging the wrong positions of every padded source."""
    torch.manual_seed(0)
    model = _t5().eval()
    generator = torch.Generator().manual_seed(1)
    mask = (torch.arange(8) < _lengths(30, 8, generator)[:, None]).long()
    batch = {
        "input_ids": torch.randint(2, 50, (30, 8), generator=generator) * mask,
        "attention_mask": mask,
        "decoder_input_ids": torch.randint(2, 50, (30, 8), generator=generator),
    }
    own = None
    if decoder_mask:
        own = (torch.arange(8) < _lengths(30, 8, generator)[:, None]).long()
        batch["decoder_attention_mask"] = own
    layers = ["encoder.block.1", "decoder.block.1", "logits"]
    found = reduce_clouds(model, batch, {"all": None}, {"all": layers}, k=4, token_pooling="mean")
    for layer, layer_mask in [("encoder.block.1", mask), ("decoder.block.1", own), ("logits", own)]:
        if layer == "logits":
            with torch.no_grad():
                logits = model(**batch).logits
            expected = logits.mean(1) if own is None else (logits * own[..., None]).sum(1) / own.sum(1, keepdim=True)
        else:
            expected = _pooled(model, batch, layer, layer_mask)
        lists = numpy_neighbour_lists(expected.double().numpy(), k=4)
        assert found[(layer, "all")].indices.tolist() == lists.indices.tolist(), layer
    wrong = _pooled(model, batch, "decoder.block.1", mask)  # what the encoder's mask made of the decoder
    assert (
        numpy_neighbour_lists(wrong.double().numpy(), k=4).indices.tolist()
        != found[("decoder.block.1", "all")].indices.tolist()
    )


def test_whisper_which_shifts_its_labels_inside_its_forward_gets_them_shifted_for_the_probe(
    tmp_path: Path,
) -> None:
    """Whisper has no prepare_decoder_input_ids_from_labels: its decoder inputs are its config's start token and the
    labels, shifted as its own shift_tokens_right does; the fit stopped at train start before."""
    from transformers.models.whisper.modeling_whisper import shift_tokens_right

    torch.manual_seed(0)
    config = transformers.WhisperConfig(
        vocab_size=60, num_mel_bins=8, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, d_model=16, max_source_positions=16,
        max_target_positions=32, pad_token_id=50, bos_token_id=51, eos_token_id=52, decoder_start_token_id=53,
    )  # fmt: skip
    model = transformers.WhisperForConditionalGeneration(config)
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(3, 50, (48, 8), generator=generator)
    labels = labels.masked_fill(torch.arange(8) >= _lengths(48, 8, generator)[:, None], -100)
    features = torch.randn(48, 8, 32, generator=generator)
    batches = [{"input_features": features[i : i + 16], "labels": labels[i : i + 16]} for i in range(0, 48, 16)]
    monitor = BettiMonitor(log_figure=False, probe_size=48, k=4, layers="blocks", token_pooling="mean")
    quiet_trainer(tmp_path, max_epochs=1, callbacks=[monitor]).fit(
        HFClassifier(model), DataLoader(batches, batch_size=None)
    )
    inputs, _ = monitor.probe
    order = [int(torch.nonzero((features == row).all(-1).all(-1))[0]) for row in inputs["input_features"]]
    expected = shift_tokens_right(labels[order], config.pad_token_id, config.decoder_start_token_id)
    assert torch.equal(inputs["decoder_input_ids"], expected)
    assert sum(".decoder." in name for name in monitor.watched_layers) == 2
    entry = monitor.history[-1]
    assert set(entry["betti"]) == set(monitor.watched_layers)


@pytest.mark.parametrize("make", [_t5, _bart], ids=["t5", "bart"])
def test_padded_targets_never_move_a_decoder_point(make: Any) -> None:
    """Targets padded with -100, as ``DataCollatorForSeq2Seq`` pads them, and no ``decoder_attention_mask``: the
    decoder's layers are averaged over each sample's own decoder inputs, as if it ran alone and unpadded. Every
    position was averaged before, the padding's too."""
    torch.manual_seed(0)
    model = make().eval()
    batch = {key: torch.cat([b[key] for b in _seq2seq_batches(n=32)]) for key in ("input_ids", "attention_mask")}
    labels = torch.cat([b["labels"] for b in _seq2seq_batches(n=32)])
    batch["decoder_input_ids"] = model.prepare_decoder_input_ids_from_labels(labels=labels)
    layers = ["decoder.block.1" if make is _t5 else "model.decoder.layers.1", "logits"]
    found = reduce_clouds(model, batch, {"all": None}, {"all": layers}, k=4, token_pooling="mean")
    for layer in layers:
        own = []
        for row in range(len(labels)):  # each sample alone: its source and its decoder inputs, no padding
            source, targets = int(batch["attention_mask"][row].sum()), min(int((labels[row] != -100).sum()) + 1, 7)
            alone = {
                "input_ids": batch["input_ids"][row : row + 1, :source],
                "decoder_input_ids": batch["decoder_input_ids"][row : row + 1, :targets],
            }
            own.append(_pooled(model, alone, layer, None) if layer != "logits" else _logits(model, alone).mean(1))
        expected = numpy_neighbour_lists(torch.cat(own).double().numpy(), k=4)
        assert found[(layer, "all")].indices.tolist() == expected.indices.tolist(), layer
    everything = _pooled(model, batch, layers[0], None)  # what averaging every position made of it
    assert (
        numpy_neighbour_lists(everything.double().numpy(), k=4).indices.tolist()
        != found[(layers[0], "all")].indices.tolist()
    )


def _logits(model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    with torch.no_grad():
        return model(**batch).logits


def _captioner() -> HFClassifier:
    """A ``VisionEncoderDecoderModel`` (a ViT encoder, a GPT-2 decoder), configured for training as its docs say."""
    encoder = transformers.ViTConfig(
        image_size=16, patch_size=8, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=20
    )
    decoder = transformers.GPT2Config(
        vocab_size=50, n_embd=16, n_layer=2, n_head=2, n_positions=16, add_cross_attention=True, is_decoder=True
    )
    config = transformers.VisionEncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder)
    model = transformers.VisionEncoderDecoderModel(config=config)
    model.config.decoder_start_token_id, model.config.pad_token_id = 0, 1
    return HFClassifier(model)


def test_a_captioners_decoder_is_read_at_its_own_tokens_and_its_image_encoder_at_every_patch(
    tmp_path: Path, caplog: Any
) -> None:
    """Images and captions padded with -100, no mask at all: the decoder's means took in the padding, silently."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    lengths = torch.randint(2, 8, (48,), generator=generator)
    labels = torch.randint(5, 50, (48, 7), generator=generator).masked_fill(torch.arange(7) >= lengths[:, None], -100)
    images = torch.randn(48, 3, 16, 16, generator=generator)
    batches = [{"pixel_values": images[i : i + 16], "labels": labels[i : i + 16]} for i in range(0, 48, 16)]
    monitor = BettiMonitor(probe_size=48, k=4, layers="blocks", token_pooling="mean", log_figure=False)
    captioner = _captioner()
    with caplog.at_level(logging.INFO):
        quiet_trainer(tmp_path, max_epochs=1, callbacks=[monitor]).fit(captioner, DataLoader(batches, batch_size=None))
    assert "reads the decoder's 3 watched layers" in caplog.text and "not the pad token (id 1)" in caplog.text
    assert "cannot be read at the tokens" not in caplog.text  # the image's patches have no padding

    model = captioner.model.eval()
    inputs = monitor.probe[0]
    layer = "model.decoder.transformer.h.1"
    found = reduce_clouds(captioner, inputs, {"all": None}, {"all": [layer]}, k=4, token_pooling="mean")
    own = []
    for row in range(48):  # each caption alone: its image and its own decoder inputs, no padding
        kept = int((inputs["decoder_input_ids"][row, 1:] != 1).sum()) + 1
        alone = {"pixel_values": inputs["pixel_values"][row : row + 1]}
        alone["decoder_input_ids"] = inputs["decoder_input_ids"][row : row + 1, :kept]
        own.append(_pooled(model, alone, layer.removeprefix("model."), None))
    expected = numpy_neighbour_lists(torch.cat(own).double().numpy(), k=4)
    assert found[(layer, "all")].indices.tolist() == expected.indices.tolist()


def _notices(model: Any, batch: dict[str, torch.Tensor], layers: list[str]) -> list[str]:
    """What the monitor says at train start about how ``layers`` are pooled (``token_pooling='mean'``)."""
    said: list[str] = []
    trace = trace_forward(model, batch, call_model)
    layer_layouts(model, trace, layers, "mean", said.append, TokenMask.of_model_inputs(model, batch))
    return said


def test_the_decoder_notices_name_the_logits_where_they_are_read_per_decoder_position() -> None:
    """A seq2seq model with no pad id and batches with no decoder mask: its logits, a row per decoder position, are
    averaged over every position as its decoder layers are, but the notice used to name the decoder layers alone.
    A seq2seq classifier's logits (a row per sample) are pooled over nothing and are named in neither notice."""
    torch.manual_seed(0)
    model = _t5().eval()
    for module in model.modules():  # a model that knows no pad token: the decoder's padding cannot be read
        if getattr(module, "config", None) is not None:
            module.config.pad_token_id = None
    batch = {
        "input_ids": torch.tensor([[3, 4, 5, 0], [3, 4, 0, 0]]),
        "attention_mask": torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]]),
        "decoder_input_ids": torch.tensor([[3, 4, 5], [6, 7, 8]]),
    }
    every_position = "reads every decoder position of {} watched decoder layers ({})"
    (said,) = _notices(model, batch, ["encoder.block.1", "decoder.block.1", "logits"])
    assert every_position.format(2, "decoder.block.1, logits") in said
    (said,) = _notices(model, batch, ["logits"])  # the logits alone: they used to get no notice at all
    assert every_position.format(1, "logits") in said
    config = transformers.BartConfig(
        vocab_size=50, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=32, num_labels=3,
    )  # fmt: skip
    classifier = transformers.BartForSequenceClassification(config).eval()
    ids = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, config.pad_token_id)
    ids[:, 1] = config.eos_token_id  # one end of sequence each, where the classifier reads its decoder
    batch = {**batch, "input_ids": ids, "decoder_input_ids": torch.tensor([[2, 3, 4, 5], [2, 3, 4, 1]])}
    (said,) = _notices(classifier, batch, ["model.decoder.layers.0", "logits"])
    assert "reads the decoder's 1 watched layers (model.decoder.layers.0) at the decoder inputs that are not" in said
