"""The monitor and the pruner on the models people bring: timm and Hugging Face transformers, in their own
batch and forward conventions, with tiny configurations built here (no download).

Each model is a user's own LightningModule around the library's model, trained for a step on 100 classes of
random data while two monitors watch it: the default (every activation module, or the blocks) and
``layers="blocks"``, both on ``classes=10``.
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from helpers.trainers import quiet_trainer
from helpers.user_models import HFClassifier
from torch import nn
from torch.utils.data import DataLoader, Dataset

from lightning_topo.callbacks import BettiMonitor, BettiPruning
from lightning_topo.monitoring import find_blocks, is_activation, select_layers
from lightning_topo.monitoring.outputs import select_tensor

timm = pytest.importorskip("timm")
transformers = pytest.importorskip("transformers")

N_CLASSES, PER_CLASS, SEQ = 100, 8, 12


class ImageDataset(Dataset):
    """``PER_CLASS`` random images of each of ``N_CLASSES`` classes: ``(x, y)`` or ``{"pixel_values", "labels"}``."""

    def __init__(self, size: int, as_dict: bool) -> None:
        generator = torch.Generator().manual_seed(0)
        self.x = torch.randn(N_CLASSES * PER_CLASS, 3, size, size, generator=generator)
        self.y = torch.arange(N_CLASSES).repeat_interleave(PER_CLASS)
        self.as_dict = as_dict

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> Any:
        return {"pixel_values": self.x[i], "labels": self.y[i]} if self.as_dict else (self.x[i], self.y[i])


class TextDataset(Dataset):
    """Token-id sequences with an attention mask: the dicts a Hugging Face tokenizer and collator produce."""

    def __init__(self) -> None:
        generator = torch.Generator().manual_seed(0)
        self.ids = torch.randint(5, 100, (N_CLASSES * PER_CLASS, SEQ), generator=generator)
        self.y = torch.arange(N_CLASSES).repeat_interleave(PER_CLASS)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "attention_mask": torch.ones(SEQ, dtype=torch.long), "labels": self.y[i]}


class TimmClassifier(pl.LightningModule):
    """How a timm user writes it: ``(x, y)`` batches, ``forward(x)``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=1e-3)


def _timm(name: str, **kwargs: Any) -> tuple[pl.LightningModule, Dataset]:
    model = timm.create_model(name, pretrained=False, num_classes=N_CLASSES, **kwargs)
    return TimmClassifier(model), ImageDataset(kwargs.get("img_size", 32), as_dict=False)


def _bert() -> tuple[pl.LightningModule, Dataset]:
    config = transformers.BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=SEQ,
        num_labels=N_CLASSES,
    )
    return HFClassifier(transformers.BertForSequenceClassification(config)), TextDataset()


def _hf_vit() -> tuple[pl.LightningModule, Dataset]:
    config = transformers.ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        num_labels=N_CLASSES,
    )
    return HFClassifier(transformers.ViTForImageClassification(config)), ImageDataset(32, as_dict=True)


def _hf_resnet() -> tuple[pl.LightningModule, Dataset]:
    config = transformers.ResNetConfig(
        embedding_size=8, hidden_sizes=[16, 32], depths=[2, 2], layer_type="bottleneck", num_labels=N_CLASSES
    )
    return HFClassifier(transformers.ResNetForImageClassification(config)), ImageDataset(32, as_dict=True)


MODELS = {
    "timm_resnet18": (lambda: _timm("resnet18"), 8),
    "timm_regnetx_002": (lambda: _timm("regnetx_002"), 13),  # s1, s2 (one block each), s3.b1-b4, s4.b1-b7
    "timm_convnext_atto": (lambda: _timm("convnext_atto"), 12),
    "timm_vit_tiny": (lambda: _timm("vit_tiny_patch16_224", img_size=32), 12),
    "hf_bert": (_bert, 2),
    "hf_vit": (_hf_vit, 2),
    "hf_resnet": (_hf_resnet, 4),
}


def _fit(module: pl.LightningModule, data: Dataset, root: Path, *monitors: BettiMonitor) -> None:
    torch.manual_seed(0)
    loader = DataLoader(data, batch_size=64, shuffle=True)
    trainer = quiet_trainer(root, max_epochs=1, limit_train_batches=1, callbacks=list(monitors))
    trainer.fit(module, train_dataloaders=loader)


@pytest.mark.parametrize("name", list(MODELS))
def test_default_and_block_views_of_a_real_model_on_ten_of_a_hundred_classes(name: str, tmp_path: Path) -> None:
    build, n_blocks = MODELS[name]
    module, data = build()
    options = {"probe_size": 60, "k": 4, "classes": 10, "log_figure": False, "token_pooling": "first"}
    options["intrinsic_dimension"] = True
    default, blocks = BettiMonitor(**options), BettiMonitor(layers="blocks", **options)
    _fit(module, data, tmp_path, default, blocks)

    for monitor in (default, blocks):
        (entry,) = monitor.history
        hidden = [layer for layer in monitor.watched_layers if layer not in ("input", "logits")]
        assert hidden, f"{name}: no hidden layer watched"
        # every watched layer has Betti numbers for each of the 10 chosen classes, and only for those
        assert set(entry["betti"]) == set(monitor.watched_layers), f"{name}: layers without numbers"
        for layer, per_class in entry["betti"].items():
            assert len(per_class) == 10, (name, layer, sorted(per_class))
            assert all(numbers[0] >= 1 for numbers in per_class.values()), (name, layer)
        # the intrinsic dimension of every measured (layer, class), on classes= and blocks alike
        assert {layer: sorted(c) for layer, c in entry["id"].items()} == {
            layer: sorted(c) for layer, c in entry["betti"].items()
        }, name
        assert all(v > 0 for per_class in entry["id"].values() for v in per_class.values()), name
    assert len([layer for layer in blocks.watched_layers if layer not in ("input", "logits")]) == n_blocks
    default_hidden = [layer for layer in default.watched_layers if layer not in ("input", "logits")]
    assert all(is_activation(dict(module.named_modules())[layer]) for layer in default_hidden) or (
        default_hidden == [layer for layer in blocks.watched_layers if layer not in ("input", "logits")]
    )
    chosen = sorted(int(c) for c in next(iter(default.history[0]["betti"].values())))
    assert chosen == [4, 14, 24, 34, 44, 54, 64, 74, 84, 94]  # evenly over 0..99 from the seeded offset


def test_convnext_activations_are_timm_classes_and_are_watched() -> None:
    """timm's own GELU class does not subclass nn.GELU: recognised by its module path, no timm import needed."""
    model = timm.create_model("convnext_atto", pretrained=False, num_classes=3)
    layers = select_layers(model, None, torch.zeros(2, 3, 32, 32))
    gelus = [name for name, m in model.named_modules() if type(m).__module__ == "timm.layers.activations"]
    assert len(gelus) == 12 and layers == gelus + ["logits"]


def test_blocks_are_the_repeated_blocks_of_each_convention() -> None:
    resnet = timm.create_model("resnet18", pretrained=False, num_classes=3)
    assert find_blocks(resnet) == [f"layer{k}.{n}" for k in range(1, 5) for n in range(2)]
    convnext = timm.create_model("convnext_atto", pretrained=False, num_classes=3)
    depths = (2, 2, 6, 2)
    assert find_blocks(convnext) == [f"stages.{k}.blocks.{n}" for k, d in enumerate(depths) for n in range(d)]
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=3, img_size=32)
    assert find_blocks(vit) == [f"blocks.{n}" for n in range(12)]
    bert, _ = _bert()
    assert find_blocks(bert) == ["model.bert.encoder.layer.0", "model.bert.encoder.layer.1"]
    config = transformers.DistilBertConfig(vocab_size=100, dim=32, n_layers=3, n_heads=2, hidden_dim=37)
    distilbert = transformers.DistilBertForSequenceClassification(config)
    assert find_blocks(distilbert) == [f"distilbert.transformer.layer.{n}" for n in range(3)]


def _traced_blocks(model: nn.Module, example: torch.Tensor) -> list[str]:
    return [name for name in select_layers(model, "blocks", example) if name != "logits"]


@pytest.mark.parametrize("layer_type", ["basic", "bottleneck"])
def test_hugging_face_resnet_blocks_are_its_residual_layers_not_their_convolutions(layer_type: str) -> None:
    config = transformers.ResNetConfig(
        embedding_size=8, hidden_sizes=[8, 16], depths=[2, 3], layer_type=layer_type, num_labels=3
    )
    model = transformers.ResNetForImageClassification(config)
    blocks = [f"resnet.encoder.stages.{k}.layers.{n}" for k, depth in enumerate((2, 3)) for n in range(depth)]
    assert _traced_blocks(model, torch.zeros(2, 3, 32, 32)) == blocks
    assert find_blocks(model)[0] == "resnet.encoder.stages.0.layers.0.layer.0"  # structure alone: the convolutions


def test_hugging_face_regnet_blocks_are_its_residual_layers() -> None:
    config = transformers.RegNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[2, 2], groups_width=8)
    model = transformers.RegNetForImageClassification(config)
    blocks = [f"regnet.encoder.stages.{k}.layers.{n}" for k in range(2) for n in range(2)]
    assert _traced_blocks(model, torch.zeros(2, 3, 32, 32)) == blocks


@pytest.mark.parametrize("name", ["regnetx_002", "regnety_002"])
def test_timm_regnet_blocks_are_found_in_its_attribute_stages(name: str) -> None:
    """RegStage holds b1, b2, ... as attributes, not in a Sequential: found because each feeds the next."""
    model = timm.create_model(name, pretrained=False, num_classes=3)
    depths = [len(list(stage.children())) for stage in (model.s1, model.s2, model.s3, model.s4)]
    assert depths == [1, 1, 4, 7]
    expected = ["s1", "s2"] + [f"s{s}.b{b}" for s, depth in ((3, 4), (4, 7)) for b in range(1, depth + 1)]
    assert _traced_blocks(model, torch.zeros(2, 3, 32, 32)) == expected  # a one-block stage is its block
    assert select_layers(model, None, torch.zeros(2, 3, 32, 32))[:-1] == expected  # not 40-66 activations


def test_inception_blocks_are_its_mixed_modules_not_the_convolutions_inside_their_branches() -> None:
    model = timm.create_model("inception_v3", pretrained=False, num_classes=3)
    mixed = [f"Mixed_{n}" for n in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c")]
    assert _traced_blocks(model, torch.zeros(2, 3, 75, 75)) == mixed
    assert select_layers(model, None, torch.zeros(2, 3, 75, 75))[:-1] == mixed  # was 60 branch convolutions


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "vovnet39a",
            [
                "stages.0",
                "stages.1",
                "stages.2.blocks.0",
                "stages.2.blocks.1",
                "stages.3.blocks.0",
                "stages.3.blocks.1",
            ],
        ),
        ("hgnetv2_b0", ["stages.0", "stages.1", "stages.2.blocks.0", "stages.2.blocks.1", "stages.3"]),
        ("skresnet18", [f"layer{k}.{n}" for k in range(1, 5) for n in range(2)]),  # not its kernels' paths
    ],
)
def test_blocks_that_join_their_parts_are_watched_whole(name: str, expected: list[str]) -> None:
    """VoVNet's one-shot aggregation and HGNetV2's blocks concatenate their input with their layers' outputs (VoVNet
    inside its ``conv_mid``); the layers inside, and the light convolutions' ``conv1`` and ``conv2``, are parts (a
    stage of one block is named by the stage, as everywhere). An SKResNet's selective kernels stack the outputs of
    paths run on splits of their input: parts too."""
    model = timm.create_model(name, pretrained=False, num_classes=3)
    assert _traced_blocks(model, torch.zeros(2, 3, 64, 64)) == expected


def test_mobilevit_blocks_keep_the_transformer_stages_whose_inner_layers_see_patches() -> None:
    """The transformer layers inside a MobileViT block hold rows per patch; the stages around them are watched."""
    model = timm.create_model("mobilevit_xxs", pretrained=False, num_classes=3)
    blocks = _traced_blocks(model, torch.zeros(2, 3, 64, 64))
    assert blocks == ["stages.0", "stages.1.0", "stages.1.1", "stages.1.2", "stages.2", "stages.3", "stages.4"]


def test_efficientformer_blocks_include_the_last_attention_block_of_another_class() -> None:
    model = timm.create_model("efficientformer_l1", pretrained=False, num_classes=3)
    blocks = _traced_blocks(model, torch.zeros(2, 3, 224, 224))
    assert blocks[-2:] == ["stages.3.blocks.2", "stages.3.blocks.4"]  # blocks.3 is Flat (no modules): no block
    assert type(dict(model.named_modules())[blocks[-1]]).__name__ == "MetaBlock1d"


def test_hrnet_blocks_are_all_called_in_the_forward_pass() -> None:
    """ModuleLists (never called themselves) and modules run through .forward (no hooks) cannot be watched."""
    from lightning_topo.monitoring.trace import trace_forward

    model = timm.create_model("hrnet_w18_small", pretrained=False, num_classes=3)
    example = torch.zeros(2, 3, 64, 64)
    blocks = _traced_blocks(model, example)
    called = trace_forward(model, example).called
    assert blocks and all(block in called for block in blocks)
    assert not any(block.startswith("downsamp_modules") for block in blocks)


def test_stem_convolutions_are_no_blocks() -> None:
    """LeViT's and EfficientFormerV2's stems hold numbered ConvNorm units; the blocks are their stages' blocks."""
    levit = timm.create_model("levit_128s", pretrained=False, num_classes=3)
    expected = [f"stages.{k}.blocks.{n}" for k, depth in enumerate((2, 3, 4)) for n in range(depth)]
    assert _traced_blocks(levit, torch.zeros(2, 3, 224, 224)) == expected
    former = timm.create_model("efficientformerv2_s0", pretrained=False, num_classes=3)
    expected = [f"stages.{k}.blocks.{n}" for k, depth in enumerate((2, 2, 6, 4)) for n in range(depth)]
    assert _traced_blocks(former, torch.zeros(2, 3, 224, 224)) == expected


def test_efficientvit_blocks_are_its_blocks_not_the_attention_heads_inside_them() -> None:
    """EfficientViT (MSRA) holds its per-head projections in ModuleLists under a residual wrapper; they used to be
    watched, 48 of them, instead of the blocks, and its patch embedding's convolutions with them."""
    model = timm.create_model("efficientvit_m0", pretrained=False, num_classes=3, img_size=64)
    blocks = _traced_blocks(model, torch.zeros(2, 3, 64, 64))
    assert [b for b in blocks if ".blocks." in b] == ["stages.1.blocks.0", "stages.1.blocks.1"] + [
        f"stages.2.blocks.{n}" for n in range(3)
    ]
    assert not [b for b in blocks if ".attn." in b or b.startswith("patch_embed")]


def test_a_hybrid_vits_backbone_inside_its_patch_embedding_keeps_its_blocks() -> None:
    """timm's hybrid ViTs hold a whole ResNet under ``patch_embed.backbone``: a stem's numbered parts are no blocks,
    but that network's residual blocks are (its own ``stem`` is a stem again)."""
    from timm.layers import GroupNormAct
    from timm.models.resnetv2 import ResNetV2
    from timm.models.vision_transformer import VisionTransformer
    from timm.models.vision_transformer_hybrid import HybridEmbed

    norm = partial(GroupNormAct, num_groups=4)
    backbone = ResNetV2(layers=(2, 2), channels=(32, 64), num_classes=0, global_pool="", stem_chs=16, norm_layer=norm)
    model = VisionTransformer(
        img_size=32, patch_size=1, embed_dim=16, depth=2, num_heads=2, num_classes=2,
        embed_layer=partial(HybridEmbed, backbone=backbone),
    )  # fmt: skip
    inner = [f"patch_embed.backbone.stages.{k}.blocks.{n}" for k in range(2) for n in range(2)]
    assert _traced_blocks(model, torch.zeros(2, 3, 32, 32)) == [*inner, "blocks.0", "blocks.1"]


def test_densenet_blocks_are_its_dense_blocks_and_transitions_not_the_norms_around_them() -> None:
    model = timm.create_model("densenet121", pretrained=False, num_classes=3)
    expected = [
        f"features.{kind}{k}"
        for k in range(1, 5)
        for kind in ("denseblock", "transition")
        if (kind, k) != ("transition", 4)
    ]
    assert find_blocks(model) == expected  # norm0 and norm5 are BatchNormAct2d units, numbered around the blocks
    assert _traced_blocks(model, torch.zeros(2, 3, 64, 64)) == expected


def test_hugging_face_pvt_one_layer_stages_keep_their_layer() -> None:
    """PVT holds each stage's layers in a ModuleList inside a ModuleList; a one-layer stage used to be lost."""
    config = transformers.PvtConfig(image_size=64, hidden_sizes=[8, 16, 40, 64], depths=[2, 1, 2, 1], num_labels=3)
    model = transformers.PvtForImageClassification(config)
    layers = [f"block.{k}.{n}" for k, depth in enumerate((2, 1, 2, 1)) for n in range(depth)]
    blocks = _traced_blocks(model, torch.zeros(2, 3, 64, 64))
    assert [name for name in blocks if ".block." in name] == [f"pvt.encoder.{name}" for name in layers]


def test_albert_blocks_are_the_calls_of_its_one_shared_layer_group() -> None:
    """ALBERT runs one layer group once per depth: layers='blocks' stopped the fit ("no repeated block"); each call,
    on the previous call's output, is now a block (not the attention inside, which each call also runs)."""
    config = transformers.AlbertConfig(
        vocab_size=100, embedding_size=8, hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
        intermediate_size=32, num_labels=N_CLASSES,
    )  # fmt: skip
    model = transformers.AlbertForSequenceClassification(config)
    example = {"input_ids": torch.randint(0, 100, (2, SEQ)), "attention_mask": torch.ones(2, SEQ, dtype=torch.long)}
    group = "albert.encoder.albert_layer_groups.0"
    assert select_layers(model, "blocks", example) == [f"{group}-call1", f"{group}-call2", group, "logits"]
    found: list[torch.Tensor] = []  # each call's hidden states: the outputs of the three depths, in order
    handle = dict(model.named_modules())[group].register_forward_hook(
        lambda m, a, out: found.append(select_tensor(out))
    )
    with torch.no_grad():
        hidden = model.eval()(**example, output_hidden_states=True).hidden_states
    handle.remove()
    assert all(torch.equal(found[depth], hidden[depth + 1]) for depth in range(3))
    siamese = nn.ModuleDict({"encoder": nn.Sequential(nn.Linear(4, 4), nn.ReLU())})  # called twice, not chained
    pair = lambda module, x: module["encoder"](x[:, :4]) - module["encoder"](x[:, 4:])  # noqa: E731
    assert select_layers(siamese, "activations", torch.zeros(2, 8), pair) == ["encoder.1-call1", "encoder.1", "logits"]
    with pytest.raises(ValueError, match="has no repeated block"):
        select_layers(siamese, "blocks", torch.zeros(2, 8), pair)


def test_perceiver_blocks_are_each_call_of_its_self_attention_layers() -> None:
    """A Perceiver runs its self-attention layers once per block of its encoder (``num_blocks``): the block view
    watched each layer's last call only; each call, at its depth, is now a block."""
    config = transformers.PerceiverConfig(
        vocab_size=100, d_model=32, d_latents=16, num_latents=8, num_blocks=2, num_self_attends_per_block=2,
        num_self_attention_heads=2, num_cross_attention_heads=2, max_position_embeddings=SEQ, num_labels=N_CLASSES,
    )  # fmt: skip
    model = transformers.PerceiverForSequenceClassification(config).eval()
    example = {"input_ids": torch.randint(0, 100, (2, SEQ)), "attention_mask": torch.ones(2, SEQ, dtype=torch.long)}
    layer = "perceiver.encoder.self_attends.{}".format
    calls = [layer(0) + "-call1", layer(1) + "-call1", layer(0), layer(1)]
    assert select_layers(model, "blocks", example) == [*calls, "logits"]
    found: list[torch.Tensor] = []  # each call's latents, in the order they ran: four depths, no two alike
    modules = dict(model.named_modules())
    hook = lambda module, args, out: found.append(select_tensor(out))  # noqa: E731
    handles = [modules[layer(k)].register_forward_hook(hook) for k in range(2)]
    with torch.no_grad():
        last = model(**example, output_hidden_states=True).hidden_states[-1]  # the encoder's last latents
    for handle in handles:
        handle.remove()
    assert len(found) == 4 and torch.equal(found[-1], last)
    assert not any(torch.allclose(a, b) for i, a in enumerate(found) for b in found[i + 1 :])


def test_funnel_blocks_are_its_layers_though_its_encoder_reads_its_input_for_a_mask() -> None:
    """Funnel's encoder casts its mask with ``attention_mask.type_as(inputs_embeds)`` before its layers read the
    embeddings: that second read, of a dtype, made the encoder look residual, and ``layers='blocks'`` found none."""
    config = transformers.FunnelConfig(
        vocab_size=50, block_sizes=[2, 2], d_model=16, n_head=2, d_head=8, d_inner=24, num_labels=N_CLASSES,
        num_decoder_layers=1,
    )  # fmt: skip
    model = transformers.FunnelForSequenceClassification(config)
    example = {"input_ids": torch.randint(3, 50, (2, SEQ)), "attention_mask": torch.ones(2, SEQ, dtype=torch.long)}
    blocks = [f"funnel.encoder.blocks.{stage}.{layer}" for stage in (0, 1) for layer in (0, 1)]
    assert select_layers(model, "blocks", example) == [*blocks, "logits"]


def test_torchvision_mobilenet_v2_blocks_are_its_inverted_residuals() -> None:
    import torchvision

    model = torchvision.models.mobilenet_v2(num_classes=3)
    assert _traced_blocks(model, torch.zeros(2, 3, 32, 32)) == [f"features.{n}" for n in range(19)]


def test_efficientnet_default_is_its_blocks_not_65_activations() -> None:
    model = timm.create_model("efficientnet_b0", pretrained=False, num_classes=3)
    acts = select_layers(model, "activations", torch.zeros(2, 3, 32, 32))
    default = select_layers(model, None, torch.zeros(2, 3, 32, 32))
    assert len(acts) - 1 == 65  # every SE and BN activation: unreadable as hundreds of TensorBoard tags
    assert default == select_layers(model, "blocks", torch.zeros(2, 3, 32, 32))
    assert len(default) - 1 == 16  # blocks.0 (one block) and the 15 blocks of stages 1-6


def test_bert_is_monitored_in_its_own_convention_without_options(tmp_path: Path) -> None:
    """The HF failure rows: dict batches, forward(**batch), a ModelOutput: no crash, every layer measured."""
    module, data = _bert()
    monitor = BettiMonitor(probe_size=40, k=4, classes=[3, 7], log_figure=False)
    _fit(module, data, tmp_path, monitor)
    (entry,) = monitor.history
    assert "input" not in monitor.watched_layers  # token ids have no geometry to measure
    assert monitor.watched_layers == [
        "model.bert.encoder.layer.0.intermediate.intermediate_act_fn",
        "model.bert.encoder.layer.1.intermediate.intermediate_act_fn",
        "model.bert.pooler.activation",
        "logits",
    ]
    assert {layer: sorted(per_class) for layer, per_class in entry["betti"].items()} == {
        layer: ["3", "7"] for layer in monitor.watched_layers
    }
    inputs, labels = monitor.probe
    # the two classes' 8 sequences each (fewer than the 20 asked for), ids and mask together
    assert set(inputs) == {"input_ids", "attention_mask"} and inputs["input_ids"].shape == (2 * PER_CLASS, SEQ)
    assert sorted(set(labels.tolist())) == [3, 7]


def test_the_default_probe_on_a_hundred_classes_watches_ten_of_them(tmp_path: Path, caplog) -> None:
    """The issue's many-classes row with the monitor's defaults (probe 1,000, k=14): 10 points a class would measure
    nothing, so the default watches 10 classes of the first batch's labels; classes=10 picks them over 0..99."""
    torch.manual_seed(0)
    x = torch.randn(N_CLASSES * 120, 8)
    y = torch.arange(N_CLASSES).repeat_interleave(120)
    module = TimmClassifier(nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, N_CLASSES)))
    default, ten = BettiMonitor(log_figure=False), BettiMonitor(classes=10, log_figure=False)
    loader = DataLoader(list(zip(x, y)), batch_size=256, shuffle=True)
    with caplog.at_level(logging.INFO):
        quiet_trainer(tmp_path, max_epochs=1, limit_train_batches=1, callbacks=[default, ten]).fit(
            module, train_dataloaders=loader
        )
    assert "so it watches 10 of them, spread evenly over the labels of the first batch" in caplog.text
    for monitor in (default, ten):
        assert len(monitor.probe[1]) == 1000 and torch.bincount(monitor.probe[1]).max() == 100
        assert {len(per_class) for per_class in monitor.history[0]["betti"].values()} == {10}
    assert sorted(set(ten.probe[1].tolist())) == [4, 14, 24, 34, 44, 54, 64, 74, 84, 94]


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        # no labels the rule knows, so every tensor is an input, and the model takes no 'text': the error names
        # label_key, which leaves 'score' out
        ({"text": torch.zeros(4, 3), "score": torch.zeros(4)}, r"could not be run on the probe's inputs "),
        ({"text": ["a", "b"]}, r"dict with keys \['text'\]: found no tensor among its model inputs"),
    ],
)
def test_an_unreadable_batch_is_one_clear_error_at_train_start(batch: Any, message: str, tmp_path: Path) -> None:
    module = TimmClassifier(nn.Linear(3, 2))
    module.training_step = lambda batch, i: module(torch.zeros(1, 3)).sum()  # type: ignore[method-assign]
    monitor = BettiMonitor(probe_size=8, k=2, log_figure=False)
    loader = DataLoader([batch], batch_size=None)  # the batch as the loader yields it
    with pytest.raises(ValueError, match=message + r"(?=.*label_key)(?=.*input_keys)(?=.*forward_fn)"):
        quiet_trainer(tmp_path, max_epochs=1, callbacks=[monitor]).fit(module, train_dataloaders=loader)


def test_forward_fn_and_keys_read_a_custom_convention(tmp_path: Path) -> None:
    """A batch the rule cannot guess: two inputs under custom keys, labels under 'cls', a forward taking a dict."""

    class TwoInputs(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(3, 8), nn.Linear(2, 8)
            self.act, self.head = nn.ReLU(), nn.Linear(8, 2)

        def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
            return self.head(self.act(self.a(batch["left"]) + self.b(batch["right"])))

        def training_step(self, batch: dict[str, torch.Tensor], i: int) -> torch.Tensor:
            return nn.functional.cross_entropy(self(batch), batch["cls"])

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    torch.manual_seed(0)
    batch = {"left": torch.randn(32, 3), "right": torch.randn(32, 2), "cls": torch.arange(32) % 2}
    batches = DataLoader([batch, batch], batch_size=None)
    monitor = BettiMonitor(
        probe_size=40,
        k=4,
        input_keys=["left", "right"],
        label_key="cls",
        forward_fn=lambda module, inputs: module(inputs),
        include_input=False,
        log_figure=False,
    )
    quiet_trainer(tmp_path, max_epochs=1, callbacks=[monitor]).fit(TwoInputs(), train_dataloaders=batches)
    assert monitor.watched_layers == ["act", "logits"]
    assert {layer: sorted(c) for layer, c in monitor.history[0]["betti"].items()} == {
        "act": ["0", "1"],
        "logits": ["0", "1"],
    }


def test_pruning_a_timm_resnet18_shrinks_it_and_the_pruned_model_reloads(tmp_path: Path) -> None:
    from lightning_topo.pruning import load_pruned

    module, data = _timm("resnet18")
    pruner = BettiPruning(
        amount=0.25,
        criterion="knn",
        layers=["model.layer1.*.conv1", "model.layer2.*.conv1"],
        probe_size=40,
        k=4,
        classes=10,
        recalibrate_batches=1,
        save_path=str(tmp_path / "pruned.pt"),
    )
    torch.manual_seed(0)
    loader = DataLoader(data, batch_size=64, shuffle=True)
    quiet_trainer(tmp_path, max_epochs=1, limit_train_batches=1, callbacks=[pruner]).fit(
        module, train_dataloaders=loader
    )
    before, after = pruner.report["parameters"]
    assert after < before
    convs = dict(module.named_modules())
    assert [convs[f"model.layer{k}.{n}.conv1"].out_channels for k in (1, 2) for n in (0, 1)] == [48, 48, 96, 96]
    reloaded = load_pruned(tmp_path / "pruned.pt")
    x = data[0][0][None]
    module.eval()
    reloaded.eval()
    with torch.no_grad():
        assert torch.allclose(reloaded(x), module(x))


def test_pruning_a_timm_rexnet_leaves_whole_the_layers_torch_pruning_cannot_follow(tmp_path: Path) -> None:
    """RexNet adds each block's shortcut to a slice of its channels (``x[:, :c] += shortcut``), which torch-pruning's
    graph does not see, and on some layers its group search never ends. The pruning used to fail whole (the trained
    model restored) or hang; now those layers keep their filters, with a warning, and the others are pruned."""
    from lightning_topo.pruning import load_pruned

    module, data = _timm("rexnet_100")
    layers = [f"model.features.{n}.conv_{part}.conv" for n in (1, 2) for part in ("exp", "pwl")]
    layers.append("model.features.7.conv_pwl.conv")  # the endless group search
    pruner = BettiPruning(
        amount=0.25, criterion="l1", layers=layers, probe_size=40, k=4, classes=10, recalibrate_batches=1,
        save_path=str(tmp_path / "pruned.pt"),
    )  # fmt: skip
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match=r"3 of 5 layers keep all their filters") as warned:
        quiet_trainer(tmp_path, max_epochs=1, limit_train_batches=1, callbacks=[pruner]).fit(
            module, train_dataloaders=DataLoader(data, batch_size=64, shuffle=True)
        )
    assert not any("UNPRUNED" in str(w.message) for w in warned)
    refused = pruner.report["refused"]
    assert sorted(refused) == sorted(name for name in layers if "pwl" in name)
    assert "did not end within 5000 dependencies" in refused["model.features.7.conv_pwl.conv"]
    convs = dict(module.named_modules())
    assert [convs[f"model.features.{n}.conv_exp.conv"].out_channels for n in (1, 2)] == [72, 122]
    assert [convs[name].out_channels for name in sorted(refused)] == [27, 38, 95]  # whole
    before, after = pruner.report["parameters"]
    assert after < before
    x = data[0][0][None]
    reloaded = load_pruned(tmp_path / "pruned.pt").eval()
    with torch.no_grad():
        assert torch.allclose(reloaded(x), module.eval()(x))
