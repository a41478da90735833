"""``ScheduledPruning``: prune the registry's weights on a schedule while training runs.

Thin glue over :mod:`rnn_prune.schedules` (when, how much), :mod:`rnn_prune.criteria` (which
weights matter), :mod:`rnn_prune.guards` (which steps to refuse), :mod:`rnn_prune.pruning` (scores
to masks) and :mod:`rnn_prune.masks` (buffers that checkpoints carry). A new criterion or guard is a
class of your own named in YAML; a different way of pruning is a subclass that overrides the public
steps of :meth:`ScheduledPruning.prune`. Copy this file to write a pruning callback from scratch:
validate in ``__init__``, resolve weights in ``setup``, keep hooks thin, put resumable state in
``state_dict``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any, Literal

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch import Tensor
from typing_extensions import override

from rnn_prune import keys
from rnn_prune.criteria import Criterion, StructuralCriterion, resolve_criterion
from rnn_prune.guards import Guard, resolve_guard
from rnn_prune.masks import apply_masks, get_mask, mask_gradients, set_mask, sparsity
from rnn_prune.pruning import global_masks, layerwise_masks, mask_checksum, mask_scores
from rnn_prune.registry import Graph, PrunableWeight, prunable_weights, select
from rnn_prune.schedules import Schedule, as_schedule

Scope = Literal["layer", "global"]
SCOPES = ("layer", "global")
FAR_AHEAD = 1e9
"""Time (in epochs) at which a run without ``max_epochs`` reads its schedule's final sparsity."""


class ScheduledPruning(Callback):
    """Prune recurrent (and optionally Linear) weights towards a scheduled cumulative sparsity.

    Pruning happens at the start of each training epoch (or every ``every_n_steps`` optimizer
    steps). What reaches the target is each *graph* of the registry: each gate block of an
    LSTM/GRU weight, or a whole weight that has no gates. Masks live as ``<param>_mask`` buffers
    on the model; after every optimizer step pruned weights are zeroed again and their gradients
    are zeroed before the step, so they never come back. In ``validate`` / ``test`` runs it logs
    (and prints) the evaluated model's ``prune/sparsity``.

    One pruning step is :meth:`prune`, made of public steps a subclass may override, in the
    spirit of Lightning's ``ModelPruning``: :meth:`filter_parameters_to_prune` (once, at setup),
    then :meth:`compute_scores` → :meth:`compute_masks` → :meth:`guard_masks` →
    :meth:`apply_pruning` → :meth:`apply_lottery_ticket_hypothesis`.

    Args:
        schedule: a :class:`~rnn_prune.schedules.Schedule` (by ``class_path``) or a float, meaning
            that sparsity from the first epoch on.
        criterion: which weights to keep: a built-in name (``magnitude``: the largest ``|w|``;
            ``random``; ``gradient``: the largest accumulated ``|w·∂L/∂w|``; the structural
            ``biregular``, ``clustered``, ``rewired``, which draw each graph's final mask by its
            structure at the first step), optionally with arguments (``clustered:mixing=0.5``),
            a :class:`~rnn_prune.criteria.Criterion` by ``class_path``, or a class path string.
        scope: ``layer`` (every graph reaches the target) or ``global`` (one threshold across all
            chosen weights).
        include: globs over weight names (``lstm.l0.ih``, ``head``) of the weights to prune; each
            must match some weight (a typo is an error, not a silent no-op).
        exclude: globs of weights to leave dense (each must match some weight too).
        every_n_steps: prune every N optimizer steps instead of once per epoch (then also logs
            ``prune/step_sparsity`` at every pruning step).
        guard: ``none``, ``ramanujan`` (:class:`~rnn_prune.guards.RamanujanGuard`: refuses, per
            graph, a step after which the graph is no longer Ramanujan with ``Δr ≥ guard_margin``
            or its average degree falls below 3), a :class:`~rnn_prune.guards.Guard` by
            ``class_path``, or a class path string. A refused graph keeps its last accepted mask
            for the rest of the run. Gate graphs and the stacked matrix of a gated weight are
            both checked.
        guard_margin: the smallest Δr the ``ramanujan`` guard accepts, when it is named as
            ``ramanujan`` (a guard given by ``class_path`` takes its own arguments).
        rewind_to_epoch: lottery-ticket rewind: after every pruning step reset the surviving
            weights (all parameters, masks re-applied) to their values at the start of this epoch
            (0 = initialisation). ``None`` = no rewind.
        seed: seed of the generator handed to the criterion (``random`` draws from it); all DDP
            ranks draw the same masks from it. ``None`` (the default) takes the run's
            ``seed_everything`` (Lightning's ``PL_GLOBAL_SEED``, 0 when it is not set), so runs
            with different seeds draw different random masks; a resumed run keeps the seed saved in
            its checkpoint.
        log_per_graph: also log ``prune/<graph>/sparsity`` for every graph.
    """

    def __init__(
        self,
        schedule: Schedule | float = 0.5,
        criterion: Criterion | str = "magnitude",
        scope: Scope = "layer",
        include: list[str] | None = None,
        exclude: list[str] | None = None,
        every_n_steps: int | None = None,
        guard: Guard | str | None = "none",
        guard_margin: float = 0.0,
        rewind_to_epoch: int | None = None,
        seed: int | None = None,
        log_per_graph: bool = True,
    ) -> None:
        super().__init__()
        self.schedule = as_schedule(schedule)
        if scope not in SCOPES:
            raise ValueError(f"scope={scope!r} is not one of {SCOPES}")
        if every_n_steps is not None and (not isinstance(every_n_steps, int) or every_n_steps < 1):
            raise ValueError(f"every_n_steps={every_n_steps!r} must be a positive integer or null")
        if rewind_to_epoch is not None and (not isinstance(rewind_to_epoch, int) or rewind_to_epoch < 0):
            raise ValueError(f"rewind_to_epoch={rewind_to_epoch!r} must be a non-negative epoch or null")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
            raise ValueError(f"seed={seed!r} must be a non-negative integer or null (the run's seed_everything)")
        if not math.isfinite(guard_margin):
            raise ValueError(f"guard_margin={guard_margin!r} must be finite")
        if guard_margin != 0.0 and not (guard is None or isinstance(guard, str) and guard in ("none", "ramanujan")):
            raise ValueError(
                f"guard_margin={guard_margin!r} applies to guard='ramanujan' only; give guard={guard!r} "
                "its own arguments (init_args) instead"
            )
        first_step = self.schedule.starts_at()
        if rewind_to_epoch is not None and rewind_to_epoch > first_step:
            raise ValueError(
                f"rewind_to_epoch={rewind_to_epoch!r} comes after the schedule's start ({first_step:g}): "
                "the steps before it could not be rewound"
            )
        self.criterion: Criterion = resolve_criterion(criterion)
        if scope == "global" and isinstance(self.criterion, StructuralCriterion):
            raise ValueError(
                f"criterion={criterion!r} sets every graph's edge count itself: use scope='layer', not 'global'"
            )
        self.guard: Guard | None = resolve_guard(guard, margin=float(guard_margin))
        self.scope = scope
        self.include = list(include) if include is not None else ["*.ih", "*.hh"]
        self.exclude = list(exclude or [])
        self.every_n_steps = every_n_steps
        self.guard_margin = float(guard_margin)
        self.rewind_to_epoch = rewind_to_epoch
        self.seed = seed
        self.log_per_graph = log_per_graph

        self._resumed_seed: int | None = None
        self._weights: list[PrunableWeight] = []
        self._graphs: list[Graph] = []
        # Resumable state (see state_dict).
        self._target = 0.0
        self._steps_taken = 0
        self._stopped: dict[str, int] = {}
        self._rewind_snapshot: dict[str, Tensor] | None = None
        self._last_step: int | None = None

    # --- Lightning hooks -------------------------------------------------------------------------

    @property
    @override
    def state_key(self) -> str:
        # several instances (say one per weight group) each keep their own state in a checkpoint
        return self._generate_state_key(include=self.include, exclude=self.exclude)

    @override
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._weights = self.filter_parameters_to_prune(prunable_weights(pl_module))
        self._graphs = [g for w in self._weights for g in w.graphs(per_gate=True, stacked=False)]
        if str(getattr(stage, "value", stage)) == "fit":
            self._check_target(trainer, self._graphs)

    def check_plan(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Raise a ``ValueError`` when the criterion cannot reach the schedule's final target on
        ``pl_module``'s graphs (say ``clustered`` with a density too high for its ``blocks``): called
        in ``setup``, before the first epoch, and by the CLI before anything is written."""
        weights = self.filter_parameters_to_prune(prunable_weights(pl_module))
        self._check_target(trainer, [g for w in weights for g in w.graphs(per_gate=True, stacked=False)])

    def _check_target(self, trainer: L.Trainer, graphs: Sequence[Graph]) -> None:
        target = self.final_target(trainer)
        if target > 0:
            self.criterion.check(graphs, target)

    @override
    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch
        if self.rewind_to_epoch == epoch and self._rewind_snapshot is None:
            self._rewind_snapshot = {k: v.detach().clone() for k, v in pl_module.named_parameters()}
        if self.every_n_steps is None:
            self.prune(trainer, pl_module, float(epoch))

    @override
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._log(pl_module)

    @override
    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step
        if self.every_n_steps is None or step % self.every_n_steps or step == self._last_step:
            return  # (with gradient accumulation several batches share one optimizer step)
        if not math.isfinite(trainer.num_training_batches):
            raise ValueError(
                "every_n_steps needs a training loader with a length (the schedule's time is "
                "epoch + batch / batches); prune per epoch instead"
            )
        self._last_step = step
        batches = max(int(trainer.num_training_batches), 1)
        self.prune(trainer, pl_module, trainer.current_epoch + batch_idx / batches)

    @override
    def on_after_backward(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.criterion.observe(self._weights)
        mask_gradients(self._weights)

    @override
    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        apply_masks(self._weights)

    @override
    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == TrainerFn.VALIDATING:  # in fit, sparsity is logged per training epoch
            self._announce_evaluation()

    @override
    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == TrainerFn.VALIDATING:
            self._log_evaluated_sparsity(pl_module)

    @override
    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._announce_evaluation()

    @override
    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._log_evaluated_sparsity(pl_module)

    @override
    def state_dict(self) -> dict[str, Any]:
        return {
            "target": self._target,
            "steps_taken": self._steps_taken,
            "stopped": dict(self._stopped),
            "rewind_snapshot": self._rewind_snapshot,
            "schedule": repr(self.schedule),
            "last_step": self._last_step,
            "criterion": self.criterion.state_dict(),
            "generator_seed": self.generator_seed,
        }

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._target = float(state_dict["target"])
        self._steps_taken = int(state_dict["steps_taken"])
        self._stopped = dict(state_dict["stopped"])
        self._rewind_snapshot = state_dict.get("rewind_snapshot")
        self._last_step = state_dict.get("last_step")
        self.criterion.load_state_dict(state_dict.get("criterion", {}))
        saved_seed = state_dict.get("generator_seed")
        if saved_seed is not None and saved_seed != self.generator_seed:
            rank_zero_warn(
                f"ScheduledPruning: the checkpoint drew its masks with seed {saved_seed}, this run would use "
                f"{self.generator_seed}; keeping {saved_seed} so the resumed run prunes as the original would"
            )
        self._resumed_seed = saved_seed
        if state_dict.get("schedule") != repr(self.schedule):
            rank_zero_warn(
                f"ScheduledPruning: the checkpoint was pruned with {state_dict.get('schedule')}, this run has "
                f"{self.schedule!r}; the masks so far are kept and the new schedule goes on from them"
            )

    # --- what a subclass overrides ---------------------------------------------------------------

    @property
    def weights(self) -> list[PrunableWeight]:
        """The weights this callback prunes (set in ``setup`` by :meth:`filter_parameters_to_prune`)."""
        return list(self._weights)

    @property
    def graphs(self) -> list[Graph]:
        """The graphs that each reach the target: every gate block, or a whole weight without gates."""
        return list(self._graphs)

    @property
    def stopped(self) -> dict[str, int]:
        """Graphs the guard froze, with the epoch it froze them."""
        return dict(self._stopped)

    def filter_parameters_to_prune(self, weights: Sequence[PrunableWeight]) -> list[PrunableWeight]:
        """The registry's prunable weights this callback prunes: ``include`` minus ``exclude``.

        Override to choose by something other than name globs (say by shape). Raises if a glob
        matches nothing or nothing is left, naming the model's weights.
        """
        weights = list(weights)
        names = [w.name for w in weights]
        unmatched = [p for p in [*self.include, *self.exclude] if not select(weights, [p])]
        if unmatched:
            raise ValueError(
                f"patterns {unmatched} (include={self.include}, exclude={self.exclude}) "
                f"match no prunable weight; the model has {names}"
            )
        chosen = select(weights, self.include, self.exclude)
        if not chosen:
            raise ValueError(f"include={self.include} exclude={self.exclude} leave no weight to prune of {names}")
        return chosen

    @property
    def generator_seed(self) -> int:
        """``seed``, or the run's global seed (``PL_GLOBAL_SEED``, set by ``seed_everything``) when it is None."""
        if self.seed is not None:
            return self.seed
        if self._resumed_seed is not None:  # a resumed run keeps the seed its masks were drawn with
            return self._resumed_seed
        return int(os.environ.get("PL_GLOBAL_SEED", 0))

    def final_target(self, trainer: L.Trainer) -> float:
        """The sparsity the schedule reaches at the run's last pruning time (what :meth:`Criterion.plan` gets).

        The start of the last epoch (``max_epochs − 1``) when pruning once per epoch, ``max_epochs``
        with ``every_n_steps``; a run with no epoch limit (or a stand-in trainer without
        ``max_epochs``, driving :meth:`prune` by hand) takes the schedule's value far ahead.
        """
        max_epochs = getattr(trainer, "max_epochs", None)
        if max_epochs is None or max_epochs < 1:
            return self.schedule.target(FAR_AHEAD)
        return self.schedule.target(float(max_epochs - (1 if self.every_n_steps is None else 0)))

    def compute_scores(self, graphs: Sequence[Graph], generator: torch.Generator) -> dict[str, Tensor]:
        """The criterion's score of every entry of every graph, ``-inf`` where already pruned."""
        out = {}
        for graph in graphs:
            mask = graph.mask_block()
            out[graph.name] = mask_scores(self.criterion.scores(graph, mask, generator), mask)
        return out

    def compute_masks(self, scores: dict[str, Tensor], target: float) -> dict[str, Tensor]:
        """Proposed boolean masks (by graph name) that keep the best scores at ``target`` sparsity."""
        chooser = layerwise_masks if self.scope == "layer" else global_masks
        return chooser(scores, target)

    def guard_masks(self, proposed: dict[str, Tensor], epoch: int) -> dict[str, Tensor]:
        """The proposals the guard accepts; graphs it refuses are frozen from ``epoch`` on.

        Every gate graph is checked, and so is the stacked matrix of a gated weight (a graph the
        metrics measure too): when the accepted gate steps together would spoil it, the whole
        weight keeps its mask and all its gates freeze. Without a guard, ``proposed`` as is.
        """
        if self.guard is None:
            return proposed
        accepted = {}
        for graph in self._graphs:
            if graph.name not in proposed:
                continue
            decision = self.guard.accept(graph, proposed[graph.name])
            if decision:
                accepted[graph.name] = proposed[graph.name]
            else:
                self._freeze(graph.name, epoch, decision)
        for weight in self._weights:
            graphs = weight.graphs(per_gate=True, stacked=True)
            gates = [g.name for g in graphs if g.is_gate]
            if not any(name in accepted for name in gates):
                continue
            stacked = next(g for g in graphs if not g.is_gate)
            decision = self.guard.accept(stacked, self._candidate_mask(weight, accepted))
            if not decision:
                self._freeze(weight.name, epoch, decision)
                for name in gates:
                    accepted.pop(name, None)
                    self._stopped.setdefault(name, epoch)
        return accepted

    def apply_pruning(self, masks: dict[str, Tensor]) -> None:
        """Write the graphs' masks (by graph name) into their weights' mask buffers; zero the pruned."""
        for weight in self._weights:
            if any(g.name in masks for g in weight.graphs(per_gate=True, stacked=False)):
                set_mask(weight, self._candidate_mask(weight, masks))

    def apply_lottery_ticket_hypothesis(self, pl_module: L.LightningModule) -> None:
        """Reset every parameter to its value at ``rewind_to_epoch`` and re-apply the masks."""
        if self._rewind_snapshot is None:
            return
        with torch.no_grad():
            for name, param in pl_module.named_parameters():
                if name in self._rewind_snapshot:
                    param.copy_(self._rewind_snapshot[name])
        apply_masks(self._weights)

    def prune(self, trainer: L.Trainer, pl_module: L.LightningModule, time: float) -> None:
        """One pruning step at ``time`` (in epochs): nothing when the schedule's target has not grown."""
        target = self.schedule.target(time)
        if target <= self._target:
            return
        active = [g for g in self._graphs if g.name not in self._stopped]
        generator = torch.Generator().manual_seed(self.generator_seed * 1_000_003 + self._steps_taken)
        if self._steps_taken == 0:
            self.criterion.plan(active, self.final_target(trainer), generator)
        proposed = self.compute_masks(self.compute_scores(active, generator), target)
        self.criterion.reset()
        self.apply_pruning(self.guard_masks(proposed, trainer.current_epoch))
        self.apply_lottery_ticket_hypothesis(pl_module)
        self._target = target
        self._steps_taken += 1
        self._check_ranks_agree(trainer)
        if self.every_n_steps is not None:  # the epoch-level prune/* keys come at the epoch's end
            pl_module.log_dict(
                {keys.STEP_SPARSITY: sparsity(self._weights), keys.STEP_TARGET: target},
                on_step=True,
                on_epoch=False,
            )

    # --- internals -------------------------------------------------------------------------------

    def _freeze(self, name: str, epoch: int, decision: object) -> None:
        self._stopped[name] = epoch
        reason = getattr(decision, "reason", "") or "refused by the guard"
        rank_zero_info(f"ScheduledPruning: {name} frozen at epoch {epoch} by {type(self.guard).__name__}: {reason}")

    def _candidate_mask(self, weight: PrunableWeight, proposed: dict[str, Tensor]) -> Tensor:
        """The weight's mask with the proposed masks of its graphs put in."""
        mask = get_mask(weight).clone()
        for graph in weight.graphs(per_gate=True, stacked=False):
            if graph.name in proposed:
                mask[graph.rows] = proposed[graph.name]
        return mask

    def _check_ranks_agree(self, trainer: L.Trainer) -> None:
        """Fail loudly if DDP ranks hold different masks (they must prune identically)."""
        if trainer.world_size <= 1:
            return
        checksum = mask_checksum([get_mask(w) for w in self._weights])
        gathered = trainer.strategy.all_gather(checksum.to(trainer.strategy.root_device))
        if not torch.all(gathered == gathered.flatten()[0]):
            raise RuntimeError(
                f"ScheduledPruning: ranks hold different masks after step {self._steps_taken} "
                f"(checksums {gathered.flatten().tolist()}); weights diverged across processes"
            )

    def _log(self, pl_module: L.LightningModule) -> None:
        metrics = {
            keys.SPARSITY: sparsity(self._weights),
            keys.TARGET: self._target,
            keys.GUARDED: float(self.guard is not None),  # lets reports tell guarded runs apart
        }
        if self.log_per_graph:
            for weight in self._weights:
                for g in weight.graphs(per_gate=True, stacked=True):
                    metrics[keys.graph_sparsity(g.name)] = 1.0 - g.mask_block().float().mean().item()
        for name, epoch in self._stopped.items():
            metrics[keys.stopped_epoch(name)] = float(epoch)
        pl_module.log_dict(metrics, on_step=False, on_epoch=True, reduce_fx="max")

    def _announce_evaluation(self) -> None:
        """Say which model a ``validate`` / ``test`` run evaluates: its masks come from the checkpoint."""
        rank_zero_info(
            f"ScheduledPruning: evaluating a model at sparsity {sparsity(self._weights):.3f} "
            f"over {', '.join(w.name for w in self._weights)}"
        )

    def _log_evaluated_sparsity(self, pl_module: L.LightningModule) -> None:
        pl_module.log(keys.SPARSITY, sparsity(self._weights), on_step=False, on_epoch=True, reduce_fx="max")
