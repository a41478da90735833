"""``ScheduledPruning``: prune the registry's weights on a schedule while training runs.

Thin glue over :mod:`rnn_prune.schedules` (when, how much), :mod:`rnn_prune.pruning` (which
weights) and :mod:`rnn_prune.masks` (buffers that checkpoints carry). Copy this file to write a
pruning callback of your own: validate in ``__init__``, resolve weights in ``setup``, keep hooks thin,
put resumable state in ``state_dict``.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch import Tensor
from typing_extensions import override

from rnn_prune.expansion import layer_expansion
from rnn_prune.masks import apply_masks, get_mask, mask_gradients, set_mask, sparsity
from rnn_prune.pruning import CRITERIA, Criterion, global_masks, layerwise_masks, mask_checksum, scores
from rnn_prune.registry import Graph, PrunableWeight, prunable_weights, select
from rnn_prune.schedules import Schedule, as_schedule

Scope = Literal["layer", "global"]
Guard = Literal["none", "ramanujan"]
SCOPES = ("layer", "global")
GUARDS = ("none", "ramanujan")


class ScheduledPruning(Callback):
    """Prune recurrent (and optionally Linear) weights towards a scheduled cumulative sparsity.

    Pruning happens at the start of each training epoch (or every ``every_n_steps`` optimizer
    steps). The unit that reaches the target is a *graph* of the registry: each gate block of an
    LSTM/GRU weight, or a whole weight that has no gates. Masks live as ``<param>_mask`` buffers
    on the model; after every optimizer step pruned weights are zeroed again and their gradients
    are zeroed before the step, so they never come back.

    Args:
        schedule: a :class:`~rnn_prune.schedules.Schedule` (by ``class_path``) or a float, meaning
            that sparsity from the first epoch on.
        criterion: ``magnitude`` (keep the largest ``|w|``) or ``random``.
        scope: ``layer`` (every graph reaches the target) or ``global`` (one threshold across all
            chosen weights).
        include: globs over weight names (``lstm.l0.ih``, ``head``) of the weights to prune; each
            must match some weight (a typo is an error, not a silent no-op).
        exclude: globs of weights to leave dense (each must match some weight too).
        every_n_steps: prune every N optimizer steps instead of once per epoch (then also logs
            ``prune/step_sparsity`` at every pruning step).
        guard: ``ramanujan`` refuses, per graph, a step that would leave its Δr below
            ``guard_margin``; the graph then keeps its last expander mask for the rest of the run.
            Gate graphs and the stacked matrix of a gated weight are both checked.
        guard_margin: the smallest Δr the guard accepts.
        rewind_to_epoch: lottery-ticket rewind: after every pruning step reset the surviving
            weights (all parameters, masks re-applied) to their values at the start of this epoch
            (0 = initialisation). ``None`` = no rewind.
        seed: seed of the ``random`` criterion; all DDP ranks draw the same masks from it.
        log_per_graph: also log ``prune/<graph>/sparsity`` for every graph.
    """

    def __init__(
        self,
        schedule: Schedule | float = 0.5,
        criterion: Criterion = "magnitude",
        scope: Scope = "layer",
        include: list[str] | None = None,
        exclude: list[str] | None = None,
        every_n_steps: int | None = None,
        guard: Guard = "none",
        guard_margin: float = 0.0,
        rewind_to_epoch: int | None = None,
        seed: int = 0,
        log_per_graph: bool = True,
    ) -> None:
        super().__init__()
        self.schedule = as_schedule(schedule)
        if criterion not in CRITERIA:
            raise ValueError(f"criterion={criterion!r} is not one of {CRITERIA}")
        if scope not in SCOPES:
            raise ValueError(f"scope={scope!r} is not one of {SCOPES}")
        if guard not in GUARDS:
            raise ValueError(f"guard={guard!r} is not one of {GUARDS}")
        if every_n_steps is not None and (not isinstance(every_n_steps, int) or every_n_steps < 1):
            raise ValueError(f"every_n_steps={every_n_steps!r} must be a positive integer or null")
        if rewind_to_epoch is not None and (not isinstance(rewind_to_epoch, int) or rewind_to_epoch < 0):
            raise ValueError(f"rewind_to_epoch={rewind_to_epoch!r} must be a non-negative epoch or null")
        if not math.isfinite(guard_margin):
            raise ValueError(f"guard_margin={guard_margin!r} must be finite")
        first_step = getattr(self.schedule, "start_epoch", 0)
        if rewind_to_epoch is not None and rewind_to_epoch > first_step:
            raise ValueError(
                f"rewind_to_epoch={rewind_to_epoch!r} comes after the schedule's start_epoch={first_step!r}: "
                "the steps before it could not be rewound"
            )
        self.criterion = criterion
        self.scope = scope
        self.include = list(include) if include is not None else ["*.ih", "*.hh"]
        self.exclude = list(exclude or [])
        self.every_n_steps = every_n_steps
        self.guard = guard
        self.guard_margin = float(guard_margin)
        self.rewind_to_epoch = rewind_to_epoch
        self.seed = seed
        self.log_per_graph = log_per_graph

        self._weights: list[PrunableWeight] = []
        self._units: list[Graph] = []
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
        every = prunable_weights(pl_module)
        names = [w.name for w in every]
        unmatched = [p for p in [*self.include, *self.exclude] if not select(every, [p])]
        if unmatched:
            raise ValueError(f"patterns {unmatched} (include={self.include}, exclude={self.exclude}) "
                             f"match no prunable weight; the model has {names}")
        self._weights = select(every, self.include, self.exclude)
        if not self._weights:
            raise ValueError(f"include={self.include} exclude={self.exclude} leave no weight to prune of {names}")
        self._units = [g for w in self._weights for g in w.graphs(per_gate=True, stacked=False)]

    @override
    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch
        if self.rewind_to_epoch == epoch and self._rewind_snapshot is None:
            self._rewind_snapshot = {k: v.detach().clone() for k, v in pl_module.named_parameters()}
        if self.every_n_steps is None:
            self._run_pruning(trainer, pl_module, float(epoch))

    @override
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._log(pl_module)

    @override
    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int) -> None:  # noqa: E501
        step = trainer.global_step
        if self.every_n_steps is None or step % self.every_n_steps or step == self._last_step:
            return  # (with gradient accumulation several batches share one optimizer step)
        if not math.isfinite(trainer.num_training_batches):
            raise ValueError("every_n_steps needs a training loader with a length (the schedule's time is "
                             "epoch + batch / batches); prune per epoch instead")
        self._last_step = step
        batches = max(int(trainer.num_training_batches), 1)
        self._run_pruning(trainer, pl_module, trainer.current_epoch + batch_idx / batches)

    @override
    def on_after_backward(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        mask_gradients(self._weights)

    @override
    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:  # noqa: E501
        apply_masks(self._weights)

    @override
    def state_dict(self) -> dict[str, Any]:
        return {
            "target": self._target,
            "steps_taken": self._steps_taken,
            "stopped": dict(self._stopped),
            "rewind_snapshot": self._rewind_snapshot,
            "schedule": repr(self.schedule),
            "last_step": self._last_step,
        }

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._target = float(state_dict["target"])
        self._steps_taken = int(state_dict["steps_taken"])
        self._stopped = dict(state_dict["stopped"])
        self._rewind_snapshot = state_dict.get("rewind_snapshot")
        self._last_step = state_dict.get("last_step")
        if state_dict.get("schedule") != repr(self.schedule):
            rank_zero_warn(
                f"ScheduledPruning: the checkpoint was pruned with {state_dict.get('schedule')}, this run has "
                f"{self.schedule!r}; the masks so far are kept and the new schedule goes on from them"
            )

    # --- the work --------------------------------------------------------------------------------

    @property
    def stopped(self) -> dict[str, int]:
        """Graphs the Ramanujan guard froze, with the epoch it froze them."""
        return dict(self._stopped)

    def _run_pruning(self, trainer: L.Trainer, pl_module: L.LightningModule, time: float) -> None:
        target = self.schedule.target(time)
        if target <= self._target:
            return
        active = [g for g in self._units if g.name not in self._stopped]
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self._steps_taken)
        score = {g.name: scores(g.weight_block(), g.mask_block(), self.criterion, generator) for g in active}
        chooser = layerwise_masks if self.scope == "layer" else global_masks
        proposed = chooser(score, target)
        if self.guard == "ramanujan":
            proposed = self._guarded(proposed, active, trainer.current_epoch)
        self._apply(proposed)
        if self._rewind_snapshot is not None:
            self._rewind(pl_module)
        self._target = target
        self._steps_taken += 1
        self._check_ranks_agree(trainer)
        if self.every_n_steps is not None:  # the epoch-level prune/* keys come at the epoch's end
            pl_module.log_dict(
                {"prune/step_sparsity": sparsity(self._weights), "prune/step_target": target},
                on_step=True, on_epoch=False,
            )

    def _guarded(self, proposed: dict[str, Tensor], active: list[Graph], epoch: int) -> dict[str, Tensor]:
        """Drop the proposals that would break a graph's expansion; freeze those graphs.

        Every gate graph is checked, and so is the stacked matrix of a gated weight (a graph the
        metrics measure too): when the accepted gate steps together would break it, the whole weight
        keeps its mask and all its gates freeze.
        """
        accepted = {}
        for graph in active:
            delta_r = layer_expansion(proposed[graph.name], imdb=False).delta_r
            if delta_r >= self.guard_margin:  # NaN (degenerate graph) fails too
                accepted[graph.name] = proposed[graph.name]
            else:
                self._freeze(graph.name, epoch, delta_r)
        for weight in self._weights:
            gates = [g.name for g in weight.graphs(per_gate=True, stacked=False) if g.is_gate]
            if not any(name in accepted for name in gates):
                continue
            delta_r = layer_expansion(self._candidate_mask(weight, accepted), imdb=False).delta_r
            if not delta_r >= self.guard_margin:
                self._freeze(weight.name, epoch, delta_r)
                for name in gates:
                    accepted.pop(name, None)
                    self._stopped.setdefault(name, epoch)
        return accepted

    def _freeze(self, name: str, epoch: int, delta_r: float) -> None:
        self._stopped[name] = epoch
        rank_zero_info(
            f"ScheduledPruning: {name} frozen at epoch {epoch} "
            f"(the next step would give Δr={delta_r:.3f} < {self.guard_margin})"
        )

    def _candidate_mask(self, weight: PrunableWeight, proposed: dict[str, Tensor]) -> Tensor:
        """The weight's mask with the proposed masks of its graphs put in."""
        mask = get_mask(weight).clone()
        for graph in weight.graphs(per_gate=True, stacked=False):
            if graph.name in proposed:
                mask[graph.rows] = proposed[graph.name]
        return mask

    def _apply(self, proposed: dict[str, Tensor]) -> None:
        for weight in self._weights:
            if any(g.name in proposed for g in weight.graphs(per_gate=True, stacked=False)):
                set_mask(weight, self._candidate_mask(weight, proposed))

    def _rewind(self, pl_module: L.LightningModule) -> None:
        with torch.no_grad():
            for name, param in pl_module.named_parameters():
                if name in self._rewind_snapshot:
                    param.copy_(self._rewind_snapshot[name])
        apply_masks(self._weights)

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
            "prune/sparsity": sparsity(self._weights),
            "prune/target": self._target,
            "prune/guarded": float(self.guard != "none"),  # lets reports tell guarded runs apart
        }
        if self.log_per_graph:
            for weight in self._weights:
                for g in weight.graphs(per_gate=True, stacked=True):
                    metrics[f"prune/{g.name}/sparsity"] = 1.0 - g.mask_block().float().mean().item()
        for name, epoch in self._stopped.items():
            metrics[f"prune/{name}/stopped_epoch"] = float(epoch)
        pl_module.log_dict(metrics, on_step=False, on_epoch=True, reduce_fx="max")
