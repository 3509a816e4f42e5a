"""Small models and data as a user would bring them, shared by the monitor's tests (and the scripts they run)."""

from __future__ import annotations

import collections
import dataclasses
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import TensorDataset

from lightning_topo.monitoring.outputs import select_tensor


def blobs(n: int = 256, seed: int = 0) -> TensorDataset:
    """Two separable Gaussian blobs in R^4."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.randn(n, 4, generator=gen) + 3.0 * y[:, None].float()
    return TensorDataset(x, y)


class FlakyTanh(nn.Tanh):
    """A tanh that returns NaN in eval mode: it blows up exactly when the monitor looks at it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        return y if self.training else y * float("nan")


class TinyNet(pl.LightningModule):
    """A user's own LightningModule, nothing from this package."""

    def __init__(self, poison: bool = False, norm: bool = False) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 8), FlakyTanh() if poison else nn.Tanh())
        # BatchNorm statistics and Dropout's random draws are what a careless monitor would disturb
        self.out = nn.Sequential(nn.BatchNorm1d(8), nn.Dropout(0.5), nn.Linear(8, 2)) if norm else nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(x)
        if not torch.isfinite(h).all():  # the network routes around its broken layer; the monitor must cope
            h = torch.tanh(self.body[:3](x))
        return self.out(h)

    def training_step(self, batch, batch_idx):
        loss = nn.functional.cross_entropy(self(batch[0]), batch[1])
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=0.01)


def route_blobs(n: int = 240, dim: int = 4, seed: int = 0) -> TensorDataset:
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.randn(n, dim, generator=gen) + 3.0 * y[:, None].float()
    return TensorDataset(x, y)


Output = collections.namedtuple("Output", ["features", "logits"])


@dataclasses.dataclass
class ModelOutputLike(collections.OrderedDict):
    """Hugging Face's ModelOutput: an ordered dict that is also a dataclass, read by key or attribute."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if getattr(self, f.name) is not None:
                self[f.name] = getattr(self, f.name)


class OutputsNet(pl.LightningModule):
    """A small user model whose forward returns a tensor, a dict, a named tuple or a ModelOutput-like object."""

    def __init__(self, returns: str = "tensor") -> None:
        super().__init__()
        torch.manual_seed(0)
        self.returns = returns
        self.body = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 8), nn.Tanh())
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor):
        features = self.body(x)
        logits = self.head(features)
        if self.returns == "dict":
            return {"features": features, "logits": logits}
        if self.returns == "namedtuple":
            return Output(features, logits)
        if self.returns == "modeloutput":
            return ModelOutputLike(loss=logits.sum() * 0, logits=logits)
        return logits

    def training_step(self, batch, batch_idx):
        return nn.functional.cross_entropy(select_tensor(self(batch[0])), batch[1])

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=0.01)


class HFClassifier(pl.LightningModule):
    """How a Hugging Face user writes it: dict batches, ``forward(**batch)`` returning a ``ModelOutput``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, **inputs: torch.Tensor) -> Any:
        return self.model(**inputs)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self(**batch).loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=1e-3)


class NetClassifier(pl.LightningModule):
    """A plain network as users wrap one: ``self.net``, ``(x, y)`` batches (of several loaders, the one under
    ``"a"``), cross-entropy, Adam."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch["a"] if isinstance(batch, dict) else batch
        return nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=0.01)


class AppendList(nn.Sequential):
    """A ``Sequential`` whose own forward concatenates a list it is given with its layers' outputs (timm's
    ``SequentialAppendList``, a VoVNet block's ``conv_mid``)."""

    def forward(self, x: torch.Tensor, outputs: list[torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        for layer in self:
            x = layer(x)
            outputs.append(x)
        return torch.cat(outputs, dim=1)
