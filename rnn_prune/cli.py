"""``python -m rnn_prune fit|validate|test|predict --config FILE``: the package's LightningCLI.

Everything a run needs is in the YAML: the model's init args, the data module's ``class_path``,
the trainer with its loggers and callbacks (pruning, expansion metrics). The CLI only

- links the data module's ``input_size`` / ``num_classes`` into the model, so configs never
  repeat them;
- puts a W&B logger that was given no ``save_dir`` under ``trainer.default_root_dir``, so that one
  override moves every output of a run (checkpoints, W&B files; CSV and TensorBoard loggers take
  their ``save_dir`` explicitly);
- switches a W&B logger to offline mode when no API key is configured, so a missing key never
  stops training (``wandb sync`` uploads the run later; see the README);
- under a ``wandb agent`` (``WANDB_SWEEP_ID`` set) logs online and gives each sweep run its own
  ``default_root_dir/<run id>``;
- adds ``--sparsity`` / ``--guard`` / ``--guard_margin`` flags that reach into the ScheduledPruning
  callback (sweeps).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import lightning as L
from lightning.pytorch.cli import ArgsType, LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_warn

from rnn_prune.module import SequenceClassifier


def wandb_api_key_configured() -> bool:
    """Whether wandb could authenticate: an env key, a netrc entry, or an explicit mode."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_MODE"):
        return True
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    return netrc.is_file() and "api.wandb.ai" in netrc.read_text(errors="ignore")


def _logger_configs(trainer_config: Any) -> list[Any]:
    loggers = trainer_config.get("logger")
    if loggers is None or isinstance(loggers, bool):
        return []
    return list(loggers) if isinstance(loggers, list) else [loggers]


def _apply_pruning_overrides(config: Any) -> None:
    """Write ``--sparsity`` / ``--guard`` / ``--guard_margin`` into the config's ScheduledPruning callback."""
    sparsity, guard, margin = config.get("sparsity"), config.get("guard"), config.get("guard_margin")
    if sparsity is None and guard is None and margin is None:
        return
    if sparsity is not None and not 0.0 <= sparsity < 1.0:
        raise ValueError(f"--sparsity={sparsity} must lie in [0, 1)")
    callbacks = config["trainer"].get("callbacks") or []
    pruning = [c for c in callbacks if str(c.get("class_path", "")).endswith("ScheduledPruning")]
    if not pruning:
        raise ValueError("--sparsity / --guard / --guard_margin need a ScheduledPruning entry in trainer.callbacks")
    for callback in pruning:
        init_args = callback["init_args"]
        if guard is not None:
            init_args["guard"] = guard
        if margin is not None:
            init_args["guard_margin"] = margin
        if sparsity is None:
            continue
        schedule = init_args.get("schedule")
        if schedule is None or isinstance(schedule, int | float):
            init_args["schedule"] = sparsity
            continue
        schedule_args = schedule["init_args"]
        key = "final_sparsity" if "final_sparsity" in schedule_args else "sparsity"
        schedule_args[key] = sparsity


class RNNPruneCLI(LightningCLI):
    """LightningCLI with the data→model links and the logger defaults described above."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.input_size", "model.input_size", apply_on="instantiate")
        parser.link_arguments("data.num_classes", "model.num_classes", apply_on="instantiate")
        # Short flags for sweeps: editing a callback inside trainer.callbacks from the command line
        # is awkward, so these reach into the config's ScheduledPruning entry.
        parser.add_argument(
            "--sparsity", type=float | None, default=None,
            help="Final target sparsity of the ScheduledPruning callback's schedule (sweeps).",
        )
        parser.add_argument(
            "--guard", type=Literal["none", "ramanujan"] | None, default=None,
            help="Override the ScheduledPruning callback's guard (sweeps).",
        )
        parser.add_argument(
            "--guard_margin", type=float | None, default=None,
            help="Override the ScheduledPruning callback's guard_margin (sweeps).",
        )

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        trainer = config["trainer"]
        sweep_run = os.environ.get("WANDB_RUN_ID") if os.environ.get("WANDB_SWEEP_ID") else None
        if sweep_run:  # a `wandb agent` run: its own output dir, and online so the sweep sees it
            trainer["default_root_dir"] = str(Path(trainer.get("default_root_dir") or "runs") / sweep_run)
        root = trainer.get("default_root_dir") or os.getcwd()
        for logger in _logger_configs(trainer):
            class_name = str(logger.get("class_path", "")).rsplit(".", 1)[-1]
            init_args = logger.get("init_args")
            if class_name != "WandbLogger" or init_args is None:  # CSV/TensorBoard require save_dir
                continue
            if init_args.get("save_dir") in (None, "", "."):
                init_args["save_dir"] = str(root)
            if sweep_run:
                init_args["offline"] = False
            elif not init_args.get("offline") and not wandb_api_key_configured():
                rank_zero_warn("No W&B API key found: logging offline; upload later with `wandb sync`.")
                init_args["offline"] = True
        if trainer.get("default_root_dir"):
            Path(trainer["default_root_dir"]).mkdir(parents=True, exist_ok=True)
        _apply_pruning_overrides(config)

    def _finish_wandb_runs(self) -> None:
        """One W&B run per command: close it so a later command in this process starts its own."""
        if not self.trainer.is_global_zero:
            return
        for logger in self.trainer.loggers:
            if isinstance(logger, WandbLogger) and logger._experiment is not None:
                logger.experiment.finish()

    def after_fit(self) -> None:
        self._finish_wandb_runs()

    def after_validate(self) -> None:
        self._finish_wandb_runs()

    def after_test(self) -> None:
        self._finish_wandb_runs()

    def after_predict(self) -> None:
        self._finish_wandb_runs()


def main(args: ArgsType = None, *, run: bool = True) -> RNNPruneCLI:
    """Build and (with ``run``) run the CLI; ``args`` replaces ``sys.argv[1:]`` (used by tests)."""
    return RNNPruneCLI(
        SequenceClassifier,
        L.LightningDataModule,
        subclass_mode_data=True,
        auto_configure_optimizers=False,
        save_config_kwargs={"overwrite": True},
        args=args,
        run=run,
    )
