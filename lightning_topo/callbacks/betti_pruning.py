"""BettiPruning: after fit, physically remove the conv filters whose outputs have high Betti numbers."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import TYPE_CHECKING, Any

import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch import nn

from lightning_topo.arguments import check_count, check_finite, check_positive, check_seed, is_real
from lightning_topo.callbacks.base import TopoCallback, runs_in_spawned_processes
from lightning_topo.callbacks.batch_preparation import fit_batch_preparation, overrides_hook
from lightning_topo.callbacks.continue_at_learning_rates import ContinueAtLearningRates
from lightning_topo.monitoring import eval_mode, select_layers
from lightning_topo.monitoring.batches import (
    BatchReader,
    ForwardFn,
    ModelInputs,
    as_model_input,
    has_class,
    take,
    to_host,
)
from lightning_topo.monitoring.hooks import split_call
from lightning_topo.monitoring.outputs import predicted_classes, select_tensor
from lightning_topo.monitoring.probe import check_classes, checked_probe, draw_probe, first_loader
from lightning_topo.monitoring.probe_preparation import fit_batch_limit
from lightning_topo.pruning import (
    batchnorm_layers,
    count_parameters,
    cpu_copy,
    format_report,
    paired_cpu_latency,
    recalibrate_batchnorm,
    removable_filters,
    remove_filters,
    save_pruned,
    saved_size_bytes,
)
from lightning_topo.pruning.output_layers import output_map_convolutions
from lightning_topo.pruning.report import layer_rows
from lightning_topo.pruning.rollback import restore, snapshot
from lightning_topo.pruning.scoring import CRITERIA, filter_scores, pruning_plan
from lightning_topo.pruning.selection import alike_layers

if TYPE_CHECKING:
    import numpy as np

__all__ = ["BettiPruning", "CRITERIA"]


class BettiPruning(TopoCallback):
    """Score every selected conv filter by the topology of its outputs and remove the high scorers, for real.

    When ``fit`` ends, global rank zero runs a fixed probe (a class-balanced sample of the training data)
    through the model; each filter's outputs over the probe images form a point cloud (one point per
    image, its flattened feature map) whose Betti number ``beta_dim`` is the filter's score.  Filters
    scoring above ``threshold`` (or the ``amount`` highest-scoring fraction of each layer) are removed
    from the model with torch-pruning: smaller conv weights, matching BatchNorm, next conv and linear
    head, residual connections included.  The decision is broadcast, so every rank prunes alike; the
    BatchNorm statistics are then re-estimated on training batches (the removed filters made them stale),
    and the model passed to ``trainer.fit`` *is* the pruned model afterwards (``hparams["channels"]`` updated
    for :class:`~lightning_topo.models.CNNClassifier`).  A report (filters, parameters, saved size, CPU
    latency, validation accuracy, before and after) is printed and sent to the loggers.

    What the threshold means depends on the protocol. Under the default k-NN hop protocol a filter's
    cloud is connected (beta_0 = 1), so the score is beta_1, the number of loops, which is small: the paper's
    "> 300" never fires there, and ``amount`` is the practical rule. ``criterion="euclidean"`` (a
    Vietoris-Rips complex at radius ``scale``, score beta_0) gives scores in the hundreds, where 300 does
    fire. Which criterion keeps the useful filters is an open question: the docs' pruning results compare
    them with random choices and the L1 norm on a Fashion-MNIST CNN; measure on your own model.

    Args:
        threshold: remove filters scoring above this (ignored when ``amount`` is given).
        amount: remove this fraction of each selected layer's filters, highest scores first.
        criterion: ``"knn"`` (hop protocol), ``"euclidean"`` (fixed scale), ``"cubical"`` (persistent
            features of each 2-D map) or ``"l1"`` (weight norm, a baseline).
        direction: ``"highest"`` removes high scores (the paper's rule); ``"lowest"`` the reverse.
        dim: which Betti number is the score (default: 1 for ``knn``, 0 for ``euclidean``).
        layers: conv module names or glob patterns (default: every ``Conv2d``).
        probe_size: number of probe images.
        k, scale: topology options (hops for ``knn``, radius for ``euclidean``).
        min_filters_per_layer: never leave fewer filters in a layer (a rule that would is clamped, with a warning).
        recalibrate_batches: training batches over which every BatchNorm's running statistics are re-estimated
            right after the surgery (no gradient step; 0 keeps the stale ones). Stale statistics cost much of
            a pruned model's accuracy (the docs' pruning results measure how much).
        fine_tune_epochs: epochs of fine-tuning after pruning (single-process training only). An epoch is the
            fit's: the fitting Trainer's ``limit_train_batches`` applies, and ``fast_dev_run`` fine-tunes its
            number of batches only (and saves nothing to ``save_path``). On a training loader with no length
            (an endless stream) and no ``limit_train_batches``, the fit was one epoch cut at ``max_steps``, so a
            fine-tuning epoch is that long too; with no ``max_steps`` either, fine-tuning is skipped with a
            warning rather than never ending.
        fine_tune_lr: the learning rate of every parameter group while fine-tuning; ``None`` continues at the
            rates the fit ended with (a decayed schedule is not restarted from its top).
        max_accuracy_drop: if validation accuracy drops by more than this (a fraction, 0.005 = 0.5 points)
            after fine-tuning, warn loudly and restore the unpruned weights. Accuracy reads as many validation
            batches as the fit's validation did (``limit_val_batches``); with no validation loader, none validated,
            or an endless stream with no ``limit_val_batches`` (then with a warning), it is the probe's.
        save_path: also save the pruned model there (load it with :func:`lightning_topo.pruning.load_pruned`).
        latency_batch: batch size of the CPU latency measurement in the report.
        classes: score the filters on these classes only: a list of labels, or a number ``N`` of classes spread
            evenly over the label range (as :class:`~lightning_topo.callbacks.BettiMonitor`'s ``classes``).
        input_keys, label_key, forward_fn: where the model inputs and labels are in a batch and how the model is
            called, as for :class:`~lightning_topo.callbacks.BettiMonitor` (the same rule reads any batch).

    Example:
        >>> pruner = BettiPruning(amount=0.5, fine_tune_epochs=1, max_accuracy_drop=0.005)
        >>> import lightning.pytorch as pl
        >>> trainer = pl.Trainer(callbacks=[pruner], max_epochs=2)  # a fit needs a model and data  # doctest: +SKIP
        >>> trainer.fit(model, datamodule=dm)  # doctest: +SKIP
        >>> pruner.report["parameters"]  # doctest: +SKIP
        (93642, 26218)
    """

    def __init__(
        self,
        threshold: float | None = 300.0,
        amount: float | None = None,
        criterion: str = "knn",
        direction: str = "highest",
        dim: int | None = None,
        layers: Sequence[str] | None = None,
        probe_size: int = 500,
        k: int = 10,
        scale: float = 2.5,
        min_filters_per_layer: int = 1,
        recalibrate_batches: int = 100,
        fine_tune_epochs: int = 0,
        fine_tune_lr: float | None = None,
        max_accuracy_drop: float | None = None,
        save_path: str | None = None,
        latency_batch: int = 256,
        seed: int = 0,
        classes: int | Sequence[int] | None = None,
        input_keys: Sequence[str | int] | None = None,
        label_key: str | int | None = None,
        forward_fn: ForwardFn | None = None,
    ) -> None:
        if amount is None and threshold is None:
            raise ValueError("give a threshold (an absolute score) or an amount (a fraction of each layer's filters)")
        if amount is not None and not (is_real(amount) and 0.0 <= amount < 1.0):
            raise ValueError(f"amount must be a fraction in [0, 1), got {amount!r}")
        if threshold is not None:
            check_finite("threshold", threshold)  # NaN would select nothing, silently
        check_count("k", k, minimum=2)
        check_positive("scale", scale)
        check_count("latency_batch", latency_batch)
        check_seed(seed)
        if isinstance(layers, str):  # one pattern, not a list of its characters
            layers = [layers]
        if layers is not None and (not layers or not all(isinstance(name, str) for name in layers)):
            raise ValueError(
                f"layers must be None (every Conv2d) or a non-empty list of conv module names/glob patterns, got {layers!r}"
            )
        if criterion not in CRITERIA:
            raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
        if direction not in ("highest", "lowest"):
            raise ValueError(f"direction must be 'highest' or 'lowest', got {direction!r}")
        if dim is not None:
            check_count("dim (None: the criterion's own)", dim, minimum=0)
        check_count(f"probe_size (more points than k={k})", probe_size, minimum=k + 1)
        check_count("min_filters_per_layer", min_filters_per_layer)
        check_count("recalibrate_batches (0: no recalibration)", recalibrate_batches, minimum=0)
        check_count("fine_tune_epochs", fine_tune_epochs, minimum=0)
        if fine_tune_lr is not None:
            check_positive("fine_tune_lr (None: the fit's final rates)", fine_tune_lr)
        if max_accuracy_drop is not None and not (is_real(max_accuracy_drop) and 0.0 <= max_accuracy_drop <= 1.0):
            raise ValueError(f"max_accuracy_drop must be a fraction in [0, 1], got {max_accuracy_drop!r}")
        self.threshold, self.amount, self.criterion, self.direction = threshold, amount, criterion, direction
        self.dim = (1 if criterion == "knn" else 0) if dim is None else dim
        self.layers = None if layers is None else list(layers)
        self.probe_size, self.k, self.scale, self.seed = probe_size, k, scale, seed
        self.min_filters_per_layer, self.fine_tune_epochs = min_filters_per_layer, fine_tune_epochs
        self.recalibrate_batches, self.fine_tune_lr = recalibrate_batches, fine_tune_lr
        self.max_accuracy_drop, self.save_path, self.latency_batch = max_accuracy_drop, save_path, latency_batch
        self.classes = check_classes(classes)
        self._reader = BatchReader(
            input_keys, label_key, forward_fn, owner="BettiPruning", probe_hint="set_probe(model, inputs, labels)"
        )
        self._probe: tuple[ModelInputs, torch.Tensor] | None = None
        self._given_probe: tuple[ModelInputs, torch.Tensor] | None = None  # set_probe before a fit: kept
        self._convs: list[str] = []
        self._refused: dict[str, str] = {}  # layers whose filters cannot be removed, and why (rank zero)
        self._pruned = False  # whether this pruner shrank the model at the end of its fit (and kept it so)
        self._fit_settings: dict[str, Any] = {}
        self.report: dict[str, Any] = {}

    # ------------------------------------------------------------------------------ set-up (every rank)
    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if stage == "fit" and runs_in_spawned_processes(trainer):
            raise ValueError(
                "BettiPruning cannot prune in processes Lightning starts for the fit (strategy='ddp_spawn' or "
                "'ddp_notebook'): they would prune their own copies, and Lightning then loads rank 0's pruned weights "
                "into the unpruned model of the process that called fit(), which fails after training. Use "
                "strategy='ddp': Lightning then runs your script once per device, and every rank prunes alike"
            )

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        # the batches it reads itself (probe, BatchNorm re-estimation, accuracy) as training_step gets them
        self._reader = dataclasses.replace(self._reader, prepare=fit_batch_preparation(trainer, pl_module))
        if self._given_probe is not None:  # set_probe before the fit: kept, its layers resolved on this model
            self._use_probe(pl_module, *self._given_probe)
        else:
            probe = draw_probe(
                trainer.train_dataloader, self.probe_size, pl_module, self.seed, self._reader, self.classes,
                info=rank_zero_info, batch_limit=fit_batch_limit(trainer),
            )  # fmt: skip
            self._use_probe(pl_module, *probe)
        # Lightning moves the module back to the CPU before ``on_fit_end``; remember where and how it trained,
        # so that fine-tuning runs there too.
        self._fit_settings = {
            "accelerator": "gpu" if trainer.strategy.root_device.type == "cuda" else "cpu",
            "precision": getattr(trainer, "precision", "32-true"),
            "gradient_clip_val": getattr(trainer, "gradient_clip_val", None),
            "accumulate_grad_batches": getattr(trainer, "accumulate_grad_batches", 1),
        }

    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if stage == "fit":  # the batch hooks' step holds the fit's Trainer and module: let them go
            self._reader = dataclasses.replace(self._reader, prepare=None)

    def set_probe(self, model: nn.Module, inputs: ModelInputs, labels: torch.Tensor) -> None:
        """Fix the probe images (one class each) and resolve the layers to prune on ``model``; called before a fit,
        the fit keeps this probe instead of drawing one from its training batches (those that hold no class per
        sample, as MixUp or segmentation masks make, cannot give one)."""
        self._use_probe(model, inputs, labels, announce=False)  # said when a fit uses it
        self._given_probe = self._probe

    def _use_probe(self, model: nn.Module, inputs: ModelInputs, labels: torch.Tensor, announce: bool = True) -> None:
        # labels come back flat, detached, on the host; the pruner scores filters on class clouds
        inputs, labels = checked_probe(inputs, labels, allow_classless=False)
        inputs = to_host(inputs)
        self._probe = (inputs, labels)
        example = take(inputs, slice(0, 2))
        conv2d = {n: m for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
        convs = [n for n, m in conv2d.items() if m.groups == 1]
        if self.layers is None:  # every convolution, but a segmentation head's classes
            outputs = output_map_convolutions(model, convs, example, self._reader.forward)
            if outputs and announce:
                rank_zero_info(
                    f"BettiPruning: leaves {outputs[0]} whole: its filters are the model's output channels (the "
                    "classes of its output map), and removing one would remove a class"
                )
            chosen = [name for name in convs if name not in outputs]
        else:
            chosen = select_layers(model, self.layers, example, self._reader.forward)
        chosen = [name for name in chosen if split_call(name)[1] is None]  # a module's calls share its filters
        grouped = [n for n in chosen if n in conv2d and n not in convs]
        if grouped:
            raise ValueError(
                f"BettiPruning scores ordinary (groups=1) convolutions; {grouped} are grouped or depthwise, and lose "
                "their channels with the convolution that feeds them: choose that one instead "
                f"(ordinary convolutions: {convs})"
            )
        not_conv = [n for n in chosen if n not in convs]
        if not_conv:
            raise ValueError(f"BettiPruning prunes Conv2d layers only; {not_conv} are not (convolutions: {convs})")
        if not chosen:
            raise ValueError(f"{type(model).__name__} has no Conv2d layer to prune")
        self._convs = chosen

    # ------------------------------------------------------------------------------ after fit
    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        if getattr(trainer, "interrupted", False):
            return
        if self._probe is None:
            rank_zero_warn(
                "BettiPruning: the fit trained no epoch, so it drew no probe and pruned nothing (a run resumed from a "
                "checkpoint that had already reached max_epochs or max_steps, or limit_train_batches=0); to prune "
                "that model, resume it with one more epoch (max_epochs) and the pruner among the callbacks"
            )
            return
        plan, scores = None, None
        if trainer.is_global_zero:
            scores = self.score(pl_module)
            plan = pruning_plan(
                scores, self.threshold, self.amount, self.direction, self.min_filters_per_layer, self.seed
            )
            plan = self._removable(pl_module, plan)
        plan = trainer.strategy.broadcast(plan, src=0)
        if not any(plan.values()):
            rule = f"threshold={self.threshold}" if self.amount is None else f"amount={self.amount}"
            hint = (
                "under the k-NN hop protocol scores are small Betti numbers, so use amount"
                if self.amount is None
                else "the amount rounds to no filter in any layer, or min_filters_per_layer keeps them all"
            )
            rank_zero_warn(f"BettiPruning: no filter selected (criterion={self.criterion}, {rule}); {hint}")
            return
        if trainer.is_global_zero:
            self._warn_of_alike_scores(scores, plan)
        self.prune(trainer, pl_module, plan, scores)

    def _removable(self, pl_module: Any, plan: dict[str, list[int]]) -> dict[str, list[int]]:
        """``plan`` without the layers whose filters torch-pruning cannot remove from this model so that it still
        runs (:func:`~lightning_topo.pruning.removable_filters`); a warning names them and why. Their filters stay."""
        removable, refused = removable_filters(
            pl_module, plan, self._surgery_example(pl_module), forward_fn=self._tracing_forward
        )
        self._refused = refused
        if refused:
            shown = "; ".join(f"{name} ({why})" for name, why in refused.items())
            rank_zero_warn(
                f"BettiPruning: {len(refused)} of {sum(1 for f in plan.values() if f)} layers keep all their filters: "
                f"removing theirs leaves a model that does not run, as torch-pruning cannot follow how their "
                f"channels are used (a residual added to a slice of the channels, grouped convolutions): {shown}. "
                "The other layers are pruned; to leave such layers out from the start, name the rest in layers=[...]"
            )
        return {name: removable.get(name, []) for name in plan}

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        """A fit's checkpoint loaded into the model this pruner shrank (``trainer.test()``, ``validate()`` or
        ``predict()`` with no model load the best one): its error is a list of size mismatches; say why, and what
        to do, beside it."""
        if not self._pruned or not isinstance(exception, RuntimeError) or "size mismatch" not in str(exception):
            return
        note = (
            "BettiPruning pruned this model when its fit ended, so the fit's checkpoints (the best and the last, which "
            "trainer.test(), validate() and predict() load when given no model) hold the UNPRUNED network, which does "
            "not fit it. Test the pruned model with trainer.test(model, ...) (its current weights), or load it with "
            "lightning_topo.pruning.load_pruned(save_path); the unpruned one loads from a checkpoint into a fresh "
            "module (YourModule.load_from_checkpoint(path))"
        )
        if hasattr(exception, "add_note"):  # Python 3.11+: printed with the traceback
            exception.add_note(note)
        else:
            rank_zero_warn(note)
        # Lightning keeps the checkpoint it failed to load and would load it again into the next trainer.test(model)
        connector = getattr(trainer, "_checkpoint_connector", None)
        if connector is not None and hasattr(connector, "_loaded_checkpoint"):
            connector._loaded_checkpoint = {}

    def _warn_of_alike_scores(self, scores: dict[str, np.ndarray], plan: dict[str, list[int]]) -> None:
        """Say so when a layer's filters all scored alike, so that chance, not topology, chose its removals."""
        alike = alike_layers(scores, plan)
        if not alike:
            return
        shown = ", ".join(
            f"{name} ({len(plan[name])} of {len(scores[name])} chosen, all {score:g})" for name, score in alike.items()
        )
        way_out = (
            "their weights' norms are equal (an untrained or constant layer)"
            if self.criterion == "l1"
            else "a probe with more points per class (probe_size), or another k, lets the topology tell them apart"
        )
        rank_zero_warn(
            f"BettiPruning: in {len(alike)} of {len(plan)} layers every filter scored alike, so a seeded random "
            f"order chose the filters to remove, not their {self.criterion} scores: {shown} (layers coupled to others "
            f"lose what those lose too, as the report's table shows); {way_out}"
        )

    def score(self, model: nn.Module) -> dict[str, np.ndarray]:
        """Each selected conv layer's filter scores on the probe: ``{name: (n_filters,)}``."""
        if self._probe is None:
            raise RuntimeError(
                "BettiPruning.score needs a probe: call pruner.set_probe(model, inputs, labels) first (a fit does it "
                "at train start)"
            )
        return filter_scores(
            model, self._convs, self._probe[0], self.criterion, self._reader.forward, self.dim, self.k, self.scale
        )

    def prune(
        self, trainer: Any, pl_module: Any, plan: dict[str, list[int]], scores: dict[str, np.ndarray] | None
    ) -> None:
        """Remove ``plan``'s filters from ``pl_module`` in place, fine-tune, guard accuracy, report, save.

        If the surgery, the fine-tuning or the measurements fail, the trained model is restored with a loud
        warning (single-process training; under DDP the error is raised, as one rank cannot restore alone).
        An interrupt (Ctrl-C, ``SystemExit``) restores it too, then is raised again: a Ctrl-C always stops the run.
        """
        backup = snapshot(pl_module)
        latency_input = take(self._probe[0], torch.zeros(self.latency_batch, dtype=torch.long))
        try:
            self._warn_if_validation_unread(trainer)
            unpruned = cpu_copy(pl_module)  # timed in place beside the pruned model at the end
            before = self._measure(trainer, pl_module)
            sizes = remove_filters(pl_module, plan, self._surgery_example(pl_module), forward_fn=self._tracing_forward)
            self._update_hparams(pl_module)
            self._recalibrate(trainer, pl_module)
            pruned_acc = None
            if self.fine_tune_epochs:
                pruned_acc = self._accuracy(trainer, pl_module)  # what the rule itself kept, before fine-tuning
                self._fine_tune(trainer, pl_module)
            after = self._measure(trainer, pl_module)
            before["latency_ms"], after["latency_ms"] = (
                1000 * seconds
                for seconds in paired_cpu_latency([unpruned, pl_module], latency_input, forward=self._reader.forward)
            )
            del unpruned
            pruned_acc = after["val_acc"] if pruned_acc is None else pruned_acc
        except (KeyboardInterrupt, SystemExit) as interrupt:  # Lightning turns a Ctrl-C in a fit into SystemExit
            restore(pl_module, backup)
            rank_zero_warn(
                f"\n!!! BettiPruning was interrupted ({type(interrupt).__name__}) while pruning or fine-tuning; the "
                "trained, UNPRUNED model was restored before the run stops. !!!"
            )
            raise
        except Exception as error:  # the trained model is worth more than the pruning: never lose it
            restore(pl_module, backup)
            if trainer.world_size > 1:
                raise
            rank_zero_warn(
                f"\n!!! BettiPruning failed ({type(error).__name__}: {error}); the trained, UNPRUNED model was "
                f"restored. Check the layers selected ({self._convs}) and that batches are read right (input_keys, "
                "label_key, forward_fn). !!!"
            )
            return
        drop = before["val_acc"] - after["val_acc"]
        # rank zero decides, so that ranks whose validation shards differ still keep the same model
        kept_unpruned = trainer.strategy.broadcast(
            self.max_accuracy_drop is not None and drop > self.max_accuracy_drop, src=0
        )
        if kept_unpruned:
            restore(pl_module, backup)
            rank_zero_warn(
                f"\n!!! BettiPruning: {self._accuracy_name(trainer)} fell by {100 * drop:.2f} points "
                f"({before['val_acc']:.4f} -> {after['val_acc']:.4f}), more than max_accuracy_drop="
                f"{100 * self.max_accuracy_drop:.2f} points: the UNPRUNED model was restored. !!!"
            )
        self._pruned = not kept_unpruned
        self._report(trainer, plan, sizes, scores, before, after, pruned_acc, kept_unpruned)
        if self.save_path and trainer.is_global_zero and not kept_unpruned:
            self._save(trainer, pl_module)

    def _save(self, trainer: Any, pl_module: Any) -> None:
        """Save the pruned model to ``save_path``, except in a ``fast_dev_run`` (which writes no checkpoint either)."""
        if getattr(trainer, "fast_dev_run", False):
            rank_zero_info(
                f"BettiPruning: `fast_dev_run` mode: the pruned model is not saved to {self.save_path!r} "
                "(checkpointing is suppressed)"
            )
            return
        try:
            save_pruned(pl_module, self.save_path)
        except Exception as error:  # a full disk, a module that cannot be pickled: the model in memory is fine
            rank_zero_warn(
                f"BettiPruning: could not save the pruned model to {self.save_path!r} ({type(error).__name__}: "
                f"{error}); the pruned model is still the one passed to fit: save its state_dict instead"
            )

    # ------------------------------------------------------------------------------ helpers
    def _update_hparams(self, pl_module: Any) -> None:
        hparams = getattr(pl_module, "hparams", None)
        features = getattr(pl_module, "features", None)
        if hparams is not None and "channels" in hparams and features is not None:
            convs = [m for n, m in features.named_modules() if n.endswith(".conv") and isinstance(m, nn.Conv2d)]
            if len(convs) == len(hparams["channels"]):
                hparams["channels"] = [c.out_channels for c in convs]

    def _recalibrate(self, trainer: Any, pl_module: Any) -> None:
        """Re-estimate the BatchNorm statistics on rank zero's training batches, on the fit's device; broadcast them."""
        layers = batchnorm_layers(pl_module)
        if not self.recalibrate_batches or not layers:
            return
        if trainer.is_global_zero:
            home = next(pl_module.parameters()).device
            pl_module.to(trainer.strategy.root_device)
            try:
                limit = fit_batch_limit(trainer, dev_run=True)  # overfit_batches, fast_dev_run: the fit's batches
                recalibrate_batchnorm(
                    pl_module,
                    self._train_batches(trainer),
                    self.recalibrate_batches if limit is None else min(self.recalibrate_batches, limit),
                    inputs_of=lambda batch: self._reader.split(batch, classless=True)[0],  # inputs alone
                    forward=self._reader.forward,
                )
            finally:
                pl_module.to(home)
        if trainer.world_size > 1:  # every rank keeps rank zero's statistics, so the copies stay identical
            states = trainer.strategy.broadcast(
                [layer.state_dict() for layer in layers] if trainer.is_global_zero else None, src=0
            )
            for layer, state in zip(layers, states):
                layer.load_state_dict(state)

    def _train_batches(self, trainer: Any) -> Any:
        datamodule = getattr(trainer, "datamodule", None)
        return first_loader(datamodule.train_dataloader() if datamodule is not None else trainer.train_dataloader)[0]

    def _fine_tune_length(self, trainer: Any) -> dict[str, Any] | None:
        """The fine-tuning Trainer's length arguments, bounded as the fit was; ``None`` if an epoch would never end."""
        fast_dev_run = getattr(trainer, "fast_dev_run", False)
        if fast_dev_run:  # its number of batches, one epoch (Lightning's own rule)
            return {"fast_dev_run": fast_dev_run}
        limit = getattr(trainer, "limit_train_batches", 1.0)
        length = {
            "max_epochs": self.fine_tune_epochs,
            "limit_train_batches": limit,
            "limit_val_batches": getattr(trainer, "limit_val_batches", 1.0),
        }
        for name in ("limit_train_batches", "limit_val_batches"):  # 1.0, Lightning's default, given, is announced
            if length[name] == 1.0 and isinstance(length[name], float):
                length[name] = None
        if _endless(self._validation(trainer)[1]):  # an endless validation stream with no bound
            length["limit_val_batches"] = 0
        ran_out = _read_to_the_end(getattr(getattr(trainer, "fit_loop", None), "epoch_loop", None))
        if math.isfinite(getattr(trainer, "num_training_batches", math.inf)) or limit == 0 or ran_out:
            return length  # the fit's epochs had an end (a stream with no length too, that ran out): so do these
        max_steps = getattr(trainer, "max_steps", -1)
        if max_steps is None or max_steps < 0:
            return None
        # an endless loader: the fit was one epoch cut at max_steps optimizer steps, so a fine-tuning epoch is as long
        length["limit_train_batches"] = max_steps * getattr(trainer, "accumulate_grad_batches", 1)
        return length

    def _fine_tune(self, trainer: Any, pl_module: Any) -> None:
        if trainer.world_size > 1:
            rank_zero_warn("BettiPruning: fine-tuning after pruning runs only in single-process training; skipped")
            return
        length = self._fine_tune_length(trainer)
        if length is None:
            rank_zero_warn(
                "BettiPruning: fine-tuning skipped: the training loader has no length (an endless stream) and the fit "
                "set neither limit_train_batches nor max_steps, so a fine-tuning epoch would never end. Give the "
                "Trainer limit_train_batches=N (batches per epoch) or max_steps to fine-tune; the model stays pruned."
            )
            return
        settings = self._fit_settings or {"accelerator": "cpu"}
        # fine-tuning continues at the learning rates the fit ended with, not at configure_optimizers' starting
        # ones: a decayed schedule restarted from its top undoes much of what the fit learnt
        final_lrs = [group["lr"] for optimizer in trainer.optimizers for group in optimizer.param_groups]
        if self.fine_tune_lr is not None:
            final_lrs = [float(self.fine_tune_lr)] * len(final_lrs)
        datamodule = getattr(trainer, "datamodule", None)
        try:
            with _lightning_info_silenced():  # the inner Trainer's start-up and stop lines are not the user's
                tuner = type(trainer)(
                    **length,
                    devices=1,
                    logger=False,
                    enable_checkpointing=False,
                    enable_progress_bar=False,
                    enable_model_summary=False,
                    num_sanity_val_steps=0,
                    callbacks=[ContinueAtLearningRates(final_lrs)],
                    **settings,
                )
                if datamodule is not None:
                    tuner.fit(pl_module, datamodule=datamodule)
                else:  # the loaders given to fit(): the validation ones too, or fine-tuning would not validate
                    validation = trainer.val_dataloaders if length.get("limit_val_batches") != 0 else None
                    if isinstance(validation, (list, tuple, dict)) and not validation:
                        validation = None  # (a loader itself is never tested for truth: a stream has no len())
                    tuner.fit(pl_module, train_dataloaders=trainer.train_dataloader, val_dataloaders=validation)
        finally:
            pl_module.trainer = trainer

    def _val_batches(self, trainer: Any) -> Any:
        datamodule = getattr(trainer, "datamodule", None)
        if datamodule is None:
            loaders = trainer.val_dataloaders
        else:  # Lightning's default val_dataloader raises: a data module without one has no validation loader
            loaders = datamodule.val_dataloader() if overrides_hook(datamodule, "val_dataloader") else None
        if isinstance(loaders, (list, tuple, dict)) and not loaders:
            return None
        return first_loader(loaders)[0]  # of several (a list or dict of loaders), the first, as Lightning's index 0

    def _validation(self, trainer: Any) -> tuple[Any, float | None]:
        """The fit's validation loader and how many of its batches the fit read (0: none; ``math.inf``: endless;
        ``None``: all of them, a loader with no length that the fit's validation read to its end)."""
        loader = self._val_batches(trainer)
        if loader is None:
            return None, 0
        counts = getattr(trainer, "num_val_batches", None)
        if counts:  # the fit validated: Lightning's own count (limit_val_batches, fast_dev_run applied)
            epoch_loop = getattr(getattr(trainer, "fit_loop", None), "epoch_loop", None)
            if not math.isfinite(counts[0]) and _read_to_the_end(getattr(epoch_loop, "val_loop", None)):
                return loader, None  # no length, yet it ended: a finite stream (Hugging Face streaming data)
            return loader, counts[0]
        # the fit never validated (or this is no Trainer): the same count, from limit_val_batches
        limit = getattr(trainer, "limit_val_batches", 1.0)
        try:
            length = len(loader)
        except TypeError:  # an IterableDataset without __len__
            length = math.inf
        if isinstance(limit, int):
            return loader, min(length, limit)
        return loader, int(length * limit) if math.isfinite(length) else (math.inf if limit > 0 else 0)

    def _accuracy_batches(self, trainer: Any) -> Iterable[tuple[ModelInputs, torch.Tensor]]:
        """The (inputs, labels) that measure accuracy: the fit's validation batches, as many as it read; else the probe.

        The probe (training images) stands in when there is no validation loader, when the fit validated on no
        batch (``limit_val_batches=0``), and when the loader is an endless stream with no ``limit_val_batches``.
        """
        loader, count = self._validation(trainer)
        if _on_the_probe(count):
            return [self._probe]
        return (self._reader.split(batch) for batch in (loader if count is None else islice(loader, int(count))))

    def _accuracy_name(self, trainer: Any) -> str:
        """What the accuracy before and after pruning was measured on (:meth:`_accuracy_batches`), for the report."""
        return (
            "probe accuracy (training images)" if _on_the_probe(self._validation(trainer)[1]) else "validation accuracy"
        )

    def _warn_if_validation_unread(self, trainer: Any) -> None:
        """Say so when an endless validation stream with no bound leaves accuracy to the probe."""
        if _endless(self._validation(trainer)[1]):
            rank_zero_warn(
                "BettiPruning: the validation loader has no length (an endless stream) and the fit set no "
                "limit_val_batches, so reading it would never end: accuracy before and after pruning (and "
                "max_accuracy_drop) is measured on the probe's training images instead, and fine-tuning does not "
                "validate. Give the Trainer limit_val_batches=N to measure it on N validation batches."
            )

    def _surgery_example(self, model: nn.Module) -> ModelInputs:
        """The probe's first sample, on the model's device: what torch-pruning's graph is traced with."""
        return as_model_input(model, take(self._probe[0], slice(0, 1)))

    def _tracing_forward(self, model: nn.Module, inputs: ModelInputs) -> torch.Tensor:
        """torch-pruning's tracing call: the batch rule's call, reduced to the logits tensor it can trace."""
        return select_tensor(self._reader.forward(model, inputs))

    def _accuracy(self, trainer: Any, model: nn.Module) -> float:
        correct = total = 0
        with eval_mode(model), torch.no_grad():  # every submodule's own mode comes back, even on an error
            for inputs, labels in self._accuracy_batches(trainer):
                logits = select_tensor(self._reader.forward(model, as_model_input(model, inputs)))
                if logits.dim() > 2:  # a segmentation map: no row of class scores per sample to compare
                    rank_zero_warn(
                        f"BettiPruning: accuracy is not measured: the model's output (shape {tuple(logits.shape)}) "
                        "holds no row of class scores per sample (a segmentation map?), so the report's accuracy is "
                        "nan and max_accuracy_drop cannot guard the pruning; measure the pruned model yourself"
                    )
                    return math.nan
                labels = labels.to(logits.device)
                labelled = has_class(labels)  # a negative label is no class: unlabelled (-1), or ignored (-100)
                correct += int(((predicted_classes(logits) == labels) & labelled).sum())
                total += int(labelled.sum())
        return correct / max(total, 1)

    def _measure(self, trainer: Any, model: nn.Module) -> dict[str, float]:
        """Parameters, saved size and validation accuracy (the CPU latency is timed for both models together)."""
        return {
            "parameters": count_parameters(model),
            "size_mb": saved_size_bytes(model) / 2**20,
            "val_acc": self._accuracy(trainer, model),
        }

    def _report(self, trainer, plan, sizes, scores, before, after, pruned_acc, kept_unpruned) -> None:
        rows = layer_rows(sizes, scores)
        totals = {
            "parameters": (before["parameters"], after["parameters"]),
            "saved size (MB)": (before["size_mb"], after["size_mb"]),
            f"CPU latency, batch {self.latency_batch} (ms)": (before["latency_ms"], after["latency_ms"]),
            self._accuracy_name(trainer): (before["val_acc"], after["val_acc"]),
        }
        if self.fine_tune_epochs:
            totals["  of which before fine-tuning"] = (before["val_acc"], pruned_acc)
        table = format_report(rows, totals)
        self.report = {
            "layers": rows,
            "before": before,
            "after": after,
            "kept_unpruned": kept_unpruned,
            "parameters": (before["parameters"], after["parameters"]),
            "table": table,
            "val_acc_before_fine_tune": pruned_acc,
            "criterion": self.criterion,
            "dim": self.dim,
            "refused": dict(self._refused),
        }
        rank_zero_info(
            f"\nBettiPruning report (criterion={self.criterion}, beta_{self.dim}, "
            f"{'amount=' + str(self.amount) if self.amount is not None else 'threshold=' + str(self.threshold)})\n{table}"
        )
        if not trainer.is_global_zero:
            return
        metrics = {
            f"pruning/{k}_{when}": float(v) for when, d in (("before", before), ("after", after)) for k, v in d.items()
        }
        metrics["pruning/val_acc_before_fine_tune"] = float(pruned_acc)
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)
            experiment = getattr(logger, "experiment", None)
            if hasattr(experiment, "add_text"):
                experiment.add_text("pruning/report", "```\n" + table + "\n```", trainer.global_step)


#: the standalone package's loggers, for a pytorch_lightning Trainer
_STANDALONE_LOGGERS = ("pytorch_lightning", "lightning_fabric")


@contextlib.contextmanager
def _lightning_info_silenced() -> Iterator[None]:
    """Lightning's info lines (accelerators, tips, ``Trainer.fit stopped``) held back meanwhile; its warnings kept."""
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric", *_STANDALONE_LOGGERS)]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(max(logging.WARNING, logger.getEffectiveLevel()))
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _on_the_probe(count: float | None) -> bool:
    """Whether accuracy is measured on the probe: the fit's validation read no batch, or an endless stream."""
    return count == 0 or _endless(count)


def _endless(count: float | None) -> bool:
    """Whether a count of batches is an endless stream's (``None``, a stream that ended, is not)."""
    return count is not None and not math.isfinite(count)


def _read_to_the_end(loop: Any) -> bool:
    """Whether a loop of the fit (its training epoch loop, or its validation loop) last read its loader to the end:
    Lightning's ``batch_progress.is_last_batch``, so a loader with no length that ran out is told from an endless
    stream cut at ``max_steps`` or by a stop."""
    return bool(getattr(getattr(loop, "batch_progress", None), "is_last_batch", False))
