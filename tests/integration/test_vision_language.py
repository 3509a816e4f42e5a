"""A vision-language model as users train it (a tiny Hugging Face CLIP, built here, no download): batches of
``input_ids``, ``attention_mask`` and ``pixel_values``, a contrastive loss on ``logits_per_image``.

The attention mask is the text's: the image tower's patches are pooled without it (it was applied to them when the
text was as long as the patches, and named them as padded otherwise), and the logits, a similarity matrix against
the batch's other texts, are skipped alone with the reason where the probe spans several batches (every
measurement of the fit was skipped)."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from helpers.trainers import quiet_trainer
from torch.utils.data import DataLoader

from lightning_topo.callbacks import BettiMonitor
from lightning_topo.monitoring.clouds import reduce_clouds
from lightning_topo.monitoring.outputs import select_tensor
from lightning_topo.topology import numpy_neighbour_lists

transformers = pytest.importorskip("transformers")
PATCHES = 17  # a 32-pixel image in 8-pixel patches, and the class token


def _clip() -> Any:
    text = {
        "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 32,
        "vocab_size": 50, "max_position_embeddings": 32, "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2,
    }  # fmt: skip
    vision = {
        "image_size": 32, "patch_size": 8, "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 32,
    }  # fmt: skip
    return transformers.CLIPModel(transformers.CLIPConfig(text_config=text, vision_config=vision, projection_dim=8))


def _batch(n: int, seed: int) -> dict[str, torch.Tensor]:
    """Captions padded to the patches' count (the pad id 1 after each caption's end token 2), and images."""
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(4, PATCHES, (n,), generator=generator)
    mask = (torch.arange(PATCHES) < lengths[:, None]).long()
    ids = torch.randint(3, 50, (n, PATCHES), generator=generator).masked_fill(mask == 0, 1)
    ids[torch.arange(n), lengths - 1] = 2
    return {"input_ids": ids, "attention_mask": mask, "pixel_values": torch.randn(n, 3, 32, 32, generator=generator)}


class ContrastiveCLIP(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.model = _clip()

    def forward(self, **inputs: torch.Tensor) -> Any:
        return self.model(**inputs)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        logits = self(**batch).logits_per_image
        pairs = torch.arange(len(logits))
        return (
            torch.nn.functional.cross_entropy(logits, pairs) + torch.nn.functional.cross_entropy(logits.T, pairs)
        ) / 2

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=1e-3)


def _hooked_mean(model: Any, batch: dict[str, torch.Tensor], layer: str, mask: torch.Tensor | None) -> torch.Tensor:
    found: list[torch.Tensor] = []
    handle = dict(model.named_modules())[layer].register_forward_hook(lambda m, a, o: found.append(select_tensor(o)))
    with torch.no_grad():
        model(**batch)
    handle.remove()
    tokens = found[-1]
    return tokens.mean(1) if mask is None else (tokens * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)


def test_the_image_tower_is_pooled_over_its_patches_and_the_text_tower_over_each_caption() -> None:
    torch.manual_seed(0)
    model = _clip().eval()
    batch = _batch(30, seed=0)
    vision, text = "vision_model.encoder.layers.1", "text_model.encoder.layers.1"
    found = reduce_clouds(model, batch, {"all": None}, {"all": [vision, text]}, k=4, token_pooling="mean")
    for layer, mask in ((vision, None), (text, batch["attention_mask"])):
        expected = numpy_neighbour_lists(_hooked_mean(model, batch, layer, mask).double().numpy(), k=4)
        assert found[(layer, "all")].indices.tolist() == expected.indices.tolist(), layer
    wrong = _hooked_mean(model, batch, vision, batch["attention_mask"])  # the text's mask over the patches
    assert (
        numpy_neighbour_lists(wrong.double().numpy(), k=4).indices.tolist() != found[(vision, "all")].indices.tolist()
    )


@pytest.mark.parametrize("batch_size", [20, 256], ids=["a cloud over several passes", "a cloud in one pass"])
def test_a_clip_fit_measures_both_towers_and_leaves_out_the_batch_dependent_logits(
    batch_size: int, tmp_path: Path, caplog
) -> None:
    """``logits_per_image`` scores each image against the batch's texts: (n, n), no point per sample. It is left out
    at train start, known by its two dimensions that grow with the batch. In a cloud spanning several passes it was
    skipped at every measurement; in one pass it was measured as a similarity matrix, silently."""
    torch.manual_seed(0)
    monitor = BettiMonitor(
        probe_size=48, k=4, batch_size=batch_size, layers="blocks", token_pooling="mean", log_figure=False
    )
    batches = DataLoader([_batch(16, seed) for seed in range(4)], batch_size=None)
    with caplog.at_level(logging.INFO), warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no layer skipped at any measurement
        quiet_trainer(tmp_path, max_epochs=2, callbacks=[monitor]).fit(ContrastiveCLIP(), batches)
    towers = [name for name in monitor.watched_layers if "_model.encoder.layers." in name]
    assert len(towers) == 4 and monitor.watched_layers == ["input", *towers]
    assert "cannot be read at the tokens" not in caplog.text  # no padding is claimed of the patches
    assert "grows with the batch in two dimensions, a similarity matrix of the batch" in caplog.text
    assert "output_key='image_embeds'" in caplog.text
    assert len(monitor.history) == 2
    for entry in monitor.history:  # each epoch measured: every tower layer
        assert set(entry["betti"]) == {"input", *towers}


def test_the_batch_dependent_logits_asked_for_by_name_are_left_out_with_a_warning(tmp_path: Path) -> None:
    monitor = BettiMonitor(probe_size=48, k=4, layers=["logits"], log_figure=False)
    batches = DataLoader([_batch(16, seed) for seed in range(4)], batch_size=None)
    with pytest.warns(UserWarning, match="grows with the batch in two dimensions, a similarity matrix of the batch"):
        quiet_trainer(tmp_path, max_epochs=1, callbacks=[monitor]).fit(ContrastiveCLIP(), batches)
    assert "logits" not in monitor.watched_layers
