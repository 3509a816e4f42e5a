"""A Hugging Face BERT text classifier in its own convention, with BettiMonitor on ``layers="blocks"``.

The batches are what a tokenizer and a padding collator produce (``input_ids``, ``attention_mask``, ``labels``,
padded per batch) and the LightningModule calls ``self.model(**batch)`` as Hugging Face users do; the monitor
reads both with its defaults, calls the model without the labels, and watches each encoder layer's output (the
hidden states, first token) per class. The configuration is tiny and built here, and the text is generated (three
topics of sentences), so it runs offline in well under a minute on a CPU.

    python examples/hf_text_classifier.py
    tensorboard --logdir lightning_logs
"""

from __future__ import annotations

import argparse
import random
import warnings

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader
from transformers import BertConfig, BertForSequenceClassification

from lightning_topo.callbacks import BettiMonitor

TOPICS = {
    "sport": "match goal team player score coach league season win referee stadium cup".split(),
    "food": "bread cheese soup recipe oven salt dinner spicy sweet kitchen taste fruit".split(),
    "tech": "laptop code server network chip screen battery software cloud data robot app".split(),
}
FILLER = "the a of and to in is was it for on with as at by this".split()
SPECIAL = ["[PAD]", "[CLS]", "[SEP]"]


def make_corpus(n_per_topic: int, seed: int = 0) -> list[tuple[str, int]]:
    """Sentences of 4-14 words, each drawn from one topic's words mixed with filler; the label is the topic."""
    rng = random.Random(seed)
    corpus = []
    for label, words in enumerate(TOPICS.values()):
        for _ in range(n_per_topic):
            length = rng.randint(4, 14)
            corpus.append((" ".join(rng.choice(words if rng.random() < 0.6 else FILLER) for _ in range(length)), label))
    rng.shuffle(corpus)
    return corpus


class Tokenizer:
    """A whitespace word-level tokenizer over a fixed vocabulary, with BERT's [CLS] ... [SEP] framing."""

    def __init__(self) -> None:
        words = sorted({w for ws in TOPICS.values() for w in ws} | set(FILLER))
        self.vocab = {token: i for i, token in enumerate(SPECIAL + words)}

    def __call__(self, texts: list[str]) -> dict[str, torch.Tensor]:
        ids = [[1] + [self.vocab[w] for w in text.split()] + [2] for text in texts]
        width = max(map(len, ids))  # dynamic padding: each batch to its own longest sentence
        return {
            "input_ids": torch.tensor([row + [0] * (width - len(row)) for row in ids]),
            "attention_mask": torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in ids]),
        }


class TextClassifier(pl.LightningModule):
    """The usual Hugging Face LightningModule: ``forward(**batch)``, the model's own loss."""

    def __init__(self, vocab_size: int, num_labels: int, lr: float = 3e-3) -> None:
        super().__init__()
        config = BertConfig(
            vocab_size=vocab_size,
            hidden_size=64,
            num_hidden_layers=4,
            num_attention_heads=4,
            intermediate_size=128,
            max_position_embeddings=32,
            num_labels=num_labels,
        )
        self.model = BertForSequenceClassification(config)
        self.lr = lr

    def forward(self, **batch: torch.Tensor):
        return self.model(**batch)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        output = self(**batch)
        self.log("train_acc", (output.logits.argmax(-1) == batch["labels"]).float().mean(), prog_bar=True)
        return output.loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=self.lr)


def main(argv: list[str] | None = None) -> BettiMonitor:
    # the pinned Lightning calls a torch API that torch deprecates (upstream, harmless): keep the console readable
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\) is deprecated")
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--logdir", default="lightning_logs")
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    tokenizer = Tokenizer()
    corpus = make_corpus(200)

    def collate(items: list[tuple[str, int]]) -> dict[str, torch.Tensor]:
        batch = tokenizer([text for text, _ in items])
        batch["labels"] = torch.tensor([label for _, label in items])
        return batch

    loader = DataLoader(corpus, batch_size=32, shuffle=True, collate_fn=collate)
    model = TextClassifier(len(tokenizer.vocab), num_labels=len(TOPICS))
    monitor = BettiMonitor(layers="blocks", token_pooling="first", probe_size=150, k=8)
    trainer = pl.Trainer(
        accelerator="auto",
        max_epochs=args.epochs,
        callbacks=[monitor],
        logger=pl.loggers.TensorBoardLogger(args.logdir, name="hf_text_classifier"),
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=5,
    )
    trainer.fit(model, train_dataloaders=loader)
    print(f"watched: {', '.join(monitor.watched_layers)}")
    print(f"train_acc {float(trainer.callback_metrics['train_acc']):.3f}")
    for entry in monitor.history:
        row = "  ".join(
            f"{layer.split('.')[-1] if layer != 'logits' else 'logits'}:"
            + "/".join(f"{per_class[c][0]},{per_class[c][1]}" for c in sorted(per_class))
            for layer, per_class in entry["betti"].items()
        )
        print(f"epoch {entry['epoch']}  (b0,b1) per class (layer: sport/food/tech)  {row}")
    return monitor


if __name__ == "__main__":
    main()
