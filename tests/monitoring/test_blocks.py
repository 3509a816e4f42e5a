"""The block rule read from a traced forward pass: attribute blocks that feed each other, and the numbered parts
of a residual unit left to their block (plain torch here; the libraries' own models in tests/integration)."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from helpers.user_models import AppendList
from torch import nn

from lightning_topo.monitoring.layers import find_blocks, select_layers
from lightning_topo.monitoring.trace import trace_forward


def conv_layer() -> nn.Sequential:
    return nn.Sequential(nn.Linear(4, 4), nn.ReLU())


class ResidualWithParts(nn.Module):
    """A residual block whose main branch is a Sequential of numbered conv-like layers (Hugging Face ResNet)."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Sequential(conv_layer(), conv_layer(), conv_layer())
        self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x
        return self.layer(x) + self.shortcut(residual)


class Stage(nn.Module):
    """Numbered blocks held as attributes and run in turn (timm RegNet's ``b1``, ``b2``)."""

    def __init__(self, depth: int) -> None:
        super().__init__()
        for i in range(depth):
            self.add_module(f"b{i + 1}", ResidualWithParts())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.children():
            x = block(x)
        return x


class ScatteredParts(nn.Module):
    """Numbered attributes with something between them: parts of one block, not a pipeline (EfficientNet's bn1, bn2)."""

    def __init__(self) -> None:
        super().__init__()
        self.norm1, self.mid, self.norm2 = conv_layer(), nn.Linear(4, 4), conv_layer()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm2(self.mid(self.norm1(x)))


def test_the_residual_blocks_are_found_not_their_numbered_parts() -> None:
    net = nn.Sequential(nn.Sequential(ResidualWithParts(), ResidualWithParts()), nn.Linear(4, 2))
    assert find_blocks(net) == [f"0.{b}.layer.{p}" for b in range(2) for p in range(3)]  # by structure alone
    assert find_blocks(net, trace_forward(net, torch.randn(2, 4))) == ["0.0", "0.1"]


def test_attribute_blocks_that_feed_each_other_are_blocks() -> None:
    net = nn.Sequential(Stage(1), Stage(3), nn.Linear(4, 2))
    x = torch.randn(2, 4)
    # by structure alone only the parts show (no Sequential holds the blocks)
    assert find_blocks(net) == [
        f"{s}.b{b}.layer.{p}" for s, depth in enumerate((1, 3)) for b in range(1, depth + 1) for p in range(3)
    ]
    # a one-block stage is its block's output; the parts inside the residual blocks are left to them
    assert find_blocks(net, trace_forward(net, x)) == ["0", "1.b1", "1.b2", "1.b3"]
    assert select_layers(net, "blocks", x) == ["0", "1.b1", "1.b2", "1.b3", "logits"]


def test_numbered_attributes_that_do_not_feed_each_other_are_no_blocks() -> None:
    net = nn.Sequential(nn.Sequential(ScatteredParts(), ScatteredParts()), nn.Linear(4, 2))
    assert find_blocks(net, trace_forward(net, torch.randn(2, 4))) == ["0.0", "0.1"]


def test_numbered_parts_of_a_plain_block_stay_blocks() -> None:
    """Without a residual, a Sequential of numbered Sequentials is what it was: the innermost are the blocks."""
    net = nn.Sequential(nn.Sequential(conv_layer(), conv_layer()), nn.Sequential(conv_layer(), conv_layer()))
    assert find_blocks(net, trace_forward(net, torch.randn(2, 4))) == ["0.0", "0.1", "1.0", "1.1"] == find_blocks(net)


class Patches(nn.Module):
    """Rows per patch, not per sample (MobileViT's transformer): (B, 4) -> (2B, 2) and back."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(-1, 2)


class PatchBlock(nn.Module):
    """A block whose inner repeated layers see patches: the inner ones are no blocks, this one is."""

    def __init__(self) -> None:
        super().__init__()
        self.unfold = Patches()
        self.transformer = nn.Sequential(*[nn.Sequential(nn.Linear(2, 2), nn.GELU()) for _ in range(2)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.transformer(self.unfold(x)).reshape(x.shape)


class MultiBranch(nn.Module):
    """Inception's module: numbered chains inside branches that share the input, concatenated."""

    def __init__(self) -> None:
        super().__init__()
        self.branch1x1 = conv_layer()
        self.branch3x3_1, self.branch3x3_2 = conv_layer(), conv_layer()
        self.out = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.cat([self.branch1x1(x), self.branch3x3_2(self.branch3x3_1(x))], 1))


class Lettered(nn.Module):
    """Blocks named Mixed_5b, Mixed_5c, Mixed_6a held as attributes and run in turn."""

    def __init__(self) -> None:
        super().__init__()
        self.Mixed_5b, self.Mixed_5c, self.Mixed_6a = MultiBranch(), MultiBranch(), ResidualWithParts()
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.Mixed_6a(self.Mixed_5c(self.Mixed_5b(x))))


def test_a_block_whose_inner_layers_hold_no_row_per_sample_is_watched_itself() -> None:
    net = nn.Sequential(nn.Sequential(conv_layer(), conv_layer()), nn.Sequential(PatchBlock(), PatchBlock()))
    x = torch.randn(3, 4)
    assert find_blocks(net)[-2:] == ["1.1.transformer.0", "1.1.transformer.1"]  # structure alone: the patch layers
    assert find_blocks(net, trace_forward(net, x)) == ["0.0", "0.1", "1.0", "1.1"]


def test_a_module_that_never_runs_is_no_block() -> None:
    class SkipsOne(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.blocks = nn.ModuleList([conv_layer() for _ in range(3)])

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.blocks[2](self.blocks[0](x))

    net = SkipsOne()
    assert find_blocks(net) == ["blocks.0", "blocks.1", "blocks.2"]
    assert find_blocks(net, trace_forward(net, torch.randn(2, 4))) == ["blocks.0", "blocks.2"]


def test_a_stages_odd_last_block_is_a_block_too() -> None:
    """Two of one class make the group; a third class among them (EfficientFormer's MetaBlock1d) joins it."""
    net = nn.Sequential(conv_layer(), conv_layer(), nn.Flatten(), ResidualWithParts())
    assert find_blocks(net, trace_forward(net, torch.randn(2, 4))) == ["0", "1", "3"]


def test_lettered_blocks_are_read_and_the_numbered_chains_inside_branches_are_parts() -> None:
    net = Lettered()
    assert find_blocks(net, trace_forward(net, torch.randn(2, 4))) == ["Mixed_5b", "Mixed_5c", "Mixed_6a"]


def test_numbered_modules_that_bracket_the_blocks_are_no_group() -> None:
    """A DenseNet's ``norm0`` before its dense blocks and ``norm5`` after them share a class and a name stem, but
    their numbers leave a gap: they are the stem's and the head's parts, not repeated blocks."""
    features = OrderedDict(norm0=conv_layer(), block1=conv_layer(), block2=conv_layer(), norm3=conv_layer())
    net = nn.Sequential(OrderedDict(features=nn.Sequential(features), head=nn.Linear(4, 2)))
    expected = ["features.block1", "features.block2"]
    assert find_blocks(net) == expected
    assert find_blocks(net, trace_forward(net, torch.randn(2, 4))) == expected


def test_a_stems_numbered_convolutions_are_no_blocks() -> None:
    """LeViT's ``stem.conv1`` ... ``conv4`` are repeated and chained, yet they are the stem, not the model's blocks."""
    stem = nn.Sequential(OrderedDict(conv1=conv_layer(), conv2=conv_layer(), conv3=conv_layer()))
    net = nn.Sequential(OrderedDict(stem=stem, blocks=nn.Sequential(conv_layer(), conv_layer()), head=nn.Linear(4, 2)))
    assert find_blocks(net) == ["blocks.0", "blocks.1"]
    assert find_blocks(net, trace_forward(net, torch.randn(2, 4))) == ["blocks.0", "blocks.1"]
    renamed = nn.Sequential(OrderedDict(body=stem, head=nn.Linear(4, 2)))  # the same modules outside a stem: blocks
    assert find_blocks(renamed) == ["body.conv1", "body.conv2", "body.conv3"]


class ListsOfBlocks(nn.Module):
    """Stages held as a ModuleList of ModuleLists, the second stage one block deep (a Hugging Face PVT's ``block``)."""

    def __init__(self) -> None:
        super().__init__()
        self.stages = nn.ModuleList([nn.ModuleList([conv_layer(), conv_layer()]), nn.ModuleList([conv_layer()])])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            for block in stage:
                x = block(x)
        return x


def test_a_one_block_stage_held_in_a_module_list_is_watched_as_its_block() -> None:
    """The lists never run themselves; a list of one block stands for that block instead of vanishing."""
    net = ListsOfBlocks()
    assert find_blocks(net, trace_forward(net, torch.randn(2, 4))) == ["stages.0.0", "stages.0.1", "stages.1.0"]


class Residual(nn.Module):
    """``x + m(x)``: a residual wrapper around a unit (timm EfficientViT's ``ResidualDrop``)."""

    def __init__(self, m: nn.Module) -> None:
        super().__init__()
        self.m = m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.m(x)


class Heads(nn.Module):
    """Per-head projections in a ModuleList, run one after another on the same input's parts (a cascaded attention)."""

    def __init__(self) -> None:
        super().__init__()
        self.heads = nn.ModuleList([conv_layer(), conv_layer(), conv_layer()])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for head in self.heads:
            x = head(x)
        return x


def test_numbered_parts_under_a_residual_wrapper_inside_a_block_are_left_to_the_block() -> None:
    """Neither the heads' owner nor the numbered block around them branches; the wrapper between them does."""
    block = lambda: nn.Sequential(OrderedDict(mixer=Residual(Heads()), ffn=Residual(conv_layer())))  # noqa: E731
    net = nn.Sequential(OrderedDict(blocks=nn.Sequential(block(), block()), head=nn.Linear(4, 2)))
    assert find_blocks(net, trace_forward(net, torch.randn(2, 4))) == ["blocks.0", "blocks.1"]


def test_a_patch_embedding_is_a_stem() -> None:
    """timm names a ViT-style stem ``patch_embed``: its numbered convolutions are no blocks."""
    embed = nn.Sequential(OrderedDict(conv1=conv_layer(), conv2=conv_layer(), conv3=conv_layer()))
    net = nn.Sequential(OrderedDict(patch_embed=embed, blocks=nn.Sequential(conv_layer(), conv_layer())))
    assert find_blocks(net, trace_forward(net, torch.randn(2, 4))) == ["blocks.0", "blocks.1"]


class _Halves(nn.Module):
    """Repeated blocks over each sample's two halves, ``(batch * 2, 4)``: rows that are not the samples."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*(nn.Sequential(nn.Linear(4, 4), nn.ReLU()) for _ in range(2)))
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(x.reshape(-1, 4)).reshape(len(x), 8))


def test_blocks_of_other_rows_than_the_samples_are_named_with_their_rows() -> None:
    with pytest.raises(ValueError, match=r"its blocks \(blocks.0 ...\) give 6 rows for 3 samples \(attention windows"):
        select_layers(_Halves(), "blocks", torch.zeros(3, 8))


class LightConv(nn.Module):
    """Two chained numbered layers, ``conv1`` then ``conv2`` (an HGNetV2 block's light convolution)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2 = conv_layer(), conv_layer()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(x))


class Aggregating(nn.Module):
    """Layers run in turn, their outputs concatenated with the block's input and aggregated (an HGNetV2 block)."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList([LightConv(), LightConv()])
        self.aggregation = nn.Linear(12, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = [x]
        for layer in self.layers:
            outputs.append(layer(outputs[-1]))
        return self.aggregation(torch.cat(outputs, dim=1))


class OneShotAggregation(nn.Module):
    """A VoVNet block: its ``mid`` runs numbered layers and concatenates the block's input with their outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.mid = AppendList(conv_layer(), conv_layer(), conv_layer())
        self.concat = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.concat(self.mid(x, [x]))


@pytest.mark.parametrize("block", [Aggregating, OneShotAggregation], ids=["HGNetV2", "VoVNet"])
def test_the_layers_of_a_block_that_concatenates_its_input_are_left_to_the_block(block: type[nn.Module]) -> None:
    """The layers inside are numbered and chained, and the light convolutions' ``conv1``, ``conv2`` too; but the
    block reads its input again in a concatenation (in its own code, or in a ``Sequential`` of its own): they are
    its parts, and the parts of its parts."""
    net = nn.Sequential(OrderedDict(blocks=nn.Sequential(block(), block()), head=nn.Linear(4, 2)))
    assert find_blocks(net, trace_forward(net, torch.randn(2, 4))) == ["blocks.0", "blocks.1"]


class RunTwice(nn.Module):
    """Its blocks run in turn, and then all of them again (a Perceiver's self-attention layers, once per block)."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([ResidualWithParts(), ResidualWithParts()])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(2):
            for block in self.blocks:
                x = block(x)
        return x


def test_blocks_run_several_times_in_a_pass_are_a_block_per_call_in_forward_order() -> None:
    net = RunTwice()
    calls = ["blocks.0-call1", "blocks.1-call1", "blocks.0", "blocks.1"]
    assert select_layers(net, "blocks", torch.randn(2, 4)) == [*calls, "logits"]


class SplitPaths(nn.Module):
    """Paths run side by side on splits of the input, their outputs stacked and summed (timm's SelectiveKernel with
    ``split_input``): the input is used once, by the split, so the module does not branch."""

    def __init__(self) -> None:
        super().__init__()
        self.paths = nn.ModuleList([nn.Sequential(nn.Linear(2, 4), nn.ReLU()) for _ in range(2)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pieces = torch.split(x, 2, dim=1)
        return torch.stack([path(piece) for path, piece in zip(self.paths, pieces)], dim=1).sum(1)


class SelectiveKernelBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2 = SplitPaths(), conv_layer()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.conv1(x))


def test_paths_side_by_side_that_one_operation_joins_are_left_to_their_block() -> None:
    """A ModuleList's members that do not feed each other and whose outputs are stacked together are a unit's
    branches, not a pipeline of blocks (they were the blocks of a timm SKResNet, two per residual block)."""
    net = nn.Sequential(OrderedDict(blocks=nn.Sequential(SelectiveKernelBlock(), SelectiveKernelBlock())))
    trace = trace_forward(net, torch.randn(2, 4))
    assert frozenset({"blocks.0.conv1.paths.0", "blocks.0.conv1.paths.1"}) in trace.joined
    assert find_blocks(net, trace) == ["blocks.0", "blocks.1"]


def test_a_pipelines_collected_outputs_stay_its_blocks() -> None:
    """Blocks that each feed the next stay blocks when their outputs are then stacked together (a weighted sum of
    every layer's hidden states)."""

    class Collected(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = nn.ModuleList([ResidualWithParts(), ResidualWithParts()])

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            outputs = []
            for layer in self.layers:
                x = layer(x)
                outputs.append(x)
            return torch.stack(outputs).mean(0)

    net = Collected()
    trace = trace_forward(net, torch.randn(2, 4))
    assert frozenset({"layers.0", "layers.1"}) in trace.joined
    assert find_blocks(net, trace) == ["layers.0", "layers.1"]
