"""A timm ResNet-18 trained on CIFAR-10 in a plain LightningModule, with BettiMonitor watching its blocks.

The LightningModule is written the way a timm user writes one (``(x, y)`` batches, ``forward(x)``); the monitor
needs no option to read it. No download: the images come from ``--data`` (PNG class folders
``cifar10/{train,test}/<class>/*.png``, or torchvision's ``cifar-10-batches-py`` there; ``--download`` fetches
the latter when online). The network starts from random weights (``--pretrained`` loads timm's ImageNet weights
where the hub is reachable, which is the usual fine-tuning setting). About a minute on a 2-core CPU.

    python examples/timm_cifar10.py --data ../shared/data
    tensorboard --logdir lightning_logs     # betti/<block>/class_<c>/b0, b1 and the figures
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import lightning.pytorch as pl
import timm
import torch
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from lightning_topo.callbacks import BettiMonitor
from lightning_topo.data import CIFAR10DataModule


class TimmClassifier(pl.LightningModule):
    """Any timm model as a classifier: cross-entropy, accuracy, AdamW."""

    def __init__(self, name: str = "resnet18", num_classes: int = 10, lr: float = 1e-3, pretrained: bool = False):
        super().__init__()
        self.save_hyperparameters()
        self.model = timm.create_model(name, pretrained=pretrained, num_classes=num_classes)
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        self.train_acc(logits, y)
        self.log("train_acc", self.train_acc, on_step=False, on_epoch=True, prog_bar=True)
        return nn.functional.cross_entropy(logits, y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=self.hparams.lr)


def main(argv: list[str] | None = None) -> BettiMonitor:
    # the pinned Lightning calls a torch API that torch deprecates (upstream, harmless): keep the console readable
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\) is deprecated")
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--download", action="store_true", help="fetch CIFAR-10 with torchvision (online)")
    parser.add_argument("--pretrained", action="store_true", help="timm's ImageNet weights (online)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batches", type=int, default=30, help="training batches of 64 per epoch")
    parser.add_argument("--logdir", default="lightning_logs")
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    data = CIFAR10DataModule(root=args.data, download=args.download, val_fraction=0.0, batch_size=64)
    model = TimmClassifier("resnet18", num_classes=data.num_classes, pretrained=args.pretrained)
    # the eight residual blocks (layer1.0 ... layer4.1) and the logits, 20 images of each class
    monitor = BettiMonitor(layers="blocks", probe_size=200, k=8)
    trainer = pl.Trainer(
        accelerator="auto",
        max_epochs=args.epochs,
        limit_train_batches=args.batches,
        callbacks=[monitor],
        logger=pl.loggers.TensorBoardLogger(args.logdir, name="timm_cifar10"),
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=5,
    )
    trainer.fit(model, datamodule=data)
    print(f"watched: {', '.join(monitor.watched_layers)}")
    last = monitor.history[-1]
    for layer, per_class in last["betti"].items():
        numbers = ", ".join(f"{c}: {tuple(b)}" for c, b in sorted(per_class.items(), key=lambda kv: int(kv[0])))
        print(f"epoch {last['epoch']}  {layer:10s} (b0, b1) per class  {numbers}")
    return monitor


if __name__ == "__main__":
    main()
