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
- adds ``--sparsity`` / ``--criterion`` / ``--guard`` / ``--guard_margin`` flags that reach into the ScheduledPruning
  callback (sweeps);
- writes every ``ModelCheckpoint`` without a ``dirpath`` to ``<default_root_dir>/checkpoints/``,
  so ``last.ckpt`` is found at one predictable place (the shipped configs keep it the latest epoch);
- keeps runs trustworthy: ``validate`` / ``test`` save their config as ``config.<subcommand>.yaml``
  beside the fit's ``config.yaml`` (never over it), the W&B run gets the full resolved config and
  ``job_type`` = the subcommand, ``fit --ckpt_path`` continues the checkpoint's W&B run, URLs are
  refused as ``--ckpt_path`` (Lightning would unpickle them with ``weights_only=False``), and
  architecture overrides that contradict the checkpoint are refused;
- points W&B's data, cache and artifact folders under the run's root, so nothing is left in ``~``;
- reports a bad value in the config as one line naming the key (:class:`ConfigError`), not a
  jsonargparse traceback.
"""

from __future__ import annotations

import os
import re
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import lightning as L
import torch
import yaml
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason
from lightning.pytorch.cli import ArgsType, LightningArgumentParser, LightningCLI, SaveConfigCallback
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_warn

from rnn_prune.config_entries import names_subclass, pruning_entries, rewrite_schedules
from rnn_prune.loggers import WANDB_RUN_ID_KEY, WandbRunId
from rnn_prune.loggers import WandbLogger as RunLabelledWandbLogger
from rnn_prune.model import ARCHITECTURE_KEYS
from rnn_prune.module import SequenceClassifier

CHECKPOINT_DIR = "checkpoints"
"""Folder under ``default_root_dir`` for checkpoints whose ``ModelCheckpoint`` names no ``dirpath``."""
WANDB_DIR_VARIABLES = {"WANDB_DATA_DIR": "data", "WANDB_CACHE_DIR": "cache", "WANDB_ARTIFACT_DIR": "artifacts"}
"""W&B's folders outside the run directory (staging, cache, downloads), moved under ``<save_dir>/wandb/``."""
_wandb_dirs_set_here: dict[str, str] = {}  # the values this module put into os.environ (ours to replace)


class ConfigError(ValueError):
    """A bad value in the run's config or command line; ``python -m rnn_prune`` prints it in one line."""


def wandb_api_key_configured() -> bool:
    """Whether wandb could authenticate: an env key, a netrc entry, or an explicit mode."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_MODE"):
        return True
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    return netrc.is_file() and "api.wandb.ai" in netrc.read_text(errors="ignore")


def _entries(value: Any) -> list[Any]:
    """A config's ``trainer.logger`` / ``trainer.callbacks`` as a list of ``class_path`` entries."""
    if value is None or isinstance(value, bool):
        return []
    return list(value) if isinstance(value, list) else [value]


def _logger_configs(trainer_config: Any) -> list[Any]:
    return _entries(trainer_config.get("logger"))


def _refuse_remote_checkpoint(ckpt_path: str) -> None:
    """Lightning loads ``http(s)://`` checkpoints through ``torch.hub`` with ``weights_only=False``
    (a crafted file runs code) and caches them in ``~/.cache/torch/hub``: refuse them."""
    if re.match(r"^https?://", str(ckpt_path), flags=re.IGNORECASE):
        raise ConfigError(
            f"--ckpt_path={ckpt_path}: remote checkpoints are refused, because Lightning would unpickle them "
            "with weights_only=False (a crafted file can run code). Download the file and pass its local path: "
            "local checkpoints are loaded with weights_only=True."
        )


def _refuse_architecture_mismatch(hparams: dict[str, Any], model: Any, ckpt_path: str) -> None:
    """The checkpoint fixes the network's shape; an override that disagrees would be silently
    replaced by the checkpoint's value (and the saved config would lie), so refuse it."""
    for key in ARCHITECTURE_KEYS:
        if key not in hparams or model.get(key) is None:
            continue
        if model[key] != hparams[key]:
            raise ConfigError(
                f"--model.{key}={model[key]} does not match the checkpoint's {key}={hparams[key]} ({ckpt_path}): "
                f"the checkpoint fixes the architecture; pass --model.{key} {hparams[key]} "
                "(or the fit's own config.yaml) to use it"
            )


def _point_wandb_dirs_under(wandb_dir: Path) -> None:
    """Move W&B's data (artifact staging), cache and artifact folders under the run's ``wandb/``.

    By default W&B stages tables and histograms in ``~/.local/share/wandb`` (never removed) and
    keeps logs in ``~/.cache/wandb``. A variable the user set is kept; one this module set for an
    earlier command in the same process is replaced."""
    for variable, folder in WANDB_DIR_VARIABLES.items():
        current = os.environ.get(variable)
        if current is not None and _wandb_dirs_set_here.get(variable) != current:
            continue  # the user's own choice
        value = str((wandb_dir / folder).resolve())
        os.environ[variable] = _wandb_dirs_set_here[variable] = value


def _class_path_keys(config: Any, class_name: str, prefix: str = "") -> Iterator[str]:
    """Dotted keys of the config entries whose ``class_path`` ends in ``class_name`` (for messages)."""
    if isinstance(config, dict):
        if str(config.get("class_path", "")).rsplit(".", 1)[-1] == class_name:
            yield prefix or "<root>"
        for key, value in config.items():
            yield from _class_path_keys(value, class_name, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(config, list):
        for index, value in enumerate(config):
            yield from _class_path_keys(value, class_name, f"{prefix}[{index}]")


def _user_error(error: BaseException) -> tuple[BaseException, str | None]:
    """The innermost cause of an instantiation error, and the class whose ``__init__`` raised it.

    jsonargparse wraps a class's own ``ValueError`` in two or three union/subclass errors; the
    innermost one is the sentence the class wrote."""
    root = error
    while root.__cause__ is not None:
        root = root.__cause__
    owner = None
    for frame, _ in traceback.walk_tb(root.__traceback__):
        instance = frame.f_locals.get("self")
        if frame.f_code.co_name == "__init__" and instance is not None:
            owner = type(instance).__name__
    return root, owner


def _apply_pruning_overrides(config: Any) -> None:
    """Write ``--sparsity`` / ``--criterion`` / ``--guard`` / ``--guard_margin`` into the ScheduledPruning entries.

    Every callback whose class is :class:`~callbacks.pruning.ScheduledPruning` or a subclass gets
    them; ``--criterion`` and ``--guard`` take a built-in name or a class path, which the callback
    resolves (and validates) itself.
    """
    overrides = {flag: config.get(flag) for flag in ("sparsity", "criterion", "guard", "guard_margin")}
    if all(value is None for value in overrides.values()):
        return
    sparsity = overrides.pop("sparsity")
    if sparsity is not None and not 0.0 <= sparsity < 1.0:
        raise ConfigError(f"--sparsity={sparsity} must lie in [0, 1)")
    callbacks = config["trainer"].get("callbacks")
    pruning = list(pruning_entries(callbacks))
    if not pruning:
        raise ConfigError(
            "--sparsity / --criterion / --guard / --guard_margin need a ScheduledPruning entry in trainer.callbacks"
        )
    for callback in pruning:
        init_args = callback["init_args"]
        for flag, value in overrides.items():
            if value is not None:
                init_args[flag] = value
    if sparsity is not None:
        try:  # the schedule sets its own target: the CLI knows none of its argument names
            rewrite_schedules(callbacks, lambda schedule: schedule.with_target(sparsity))
        except (ValueError, NotImplementedError) as error:
            raise ConfigError(f"--sparsity={sparsity}: {error}") from error


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
            "--criterion", type=str | None, default=None,
            help="Override the ScheduledPruning callback's criterion: magnitude, random, gradient, biregular, "
            "clustered, rewired or a class path such as my_module.MyCriterion, optionally with arguments: "
            "clustered:mixing=0.5,blocks=4 (sweeps).",
        )
        parser.add_argument(
            "--guard", type=str | None, default=None,
            help="Override the ScheduledPruning callback's guard: none, ramanujan or a class path (sweeps).",
        )
        parser.add_argument(
            "--guard_margin", type=float | None, default=None,
            help="Override the ScheduledPruning callback's guard_margin (sweeps).",
        )

    def _parse_ckpt_path(self) -> None:
        """Check ``--ckpt_path`` before Lightning reads the model's hyperparameters from it.

        URLs are refused, architecture overrides must agree with the checkpoint, and the W&B run
        id the checkpoint was written under is kept so that ``fit`` continues that run."""
        self._checkpoint_run_id: str | None = None
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if ckpt_path:
            _refuse_remote_checkpoint(ckpt_path)
            if Path(ckpt_path).is_file():
                checkpoint = torch.load(ckpt_path, weights_only=True, map_location="cpu", mmap=True)
                hparams = checkpoint.get("hyper_parameters") or {}
                _refuse_architecture_mismatch(hparams, self.config[subcommand]["model"], ckpt_path)
                self._checkpoint_run_id = checkpoint.get(WANDB_RUN_ID_KEY)
        super()._parse_ckpt_path()

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        trainer = config["trainer"]
        sweep_run = os.environ.get("WANDB_RUN_ID") if os.environ.get("WANDB_SWEEP_ID") else None
        if sweep_run:  # a `wandb agent` run: its own output dir, and online so the sweep sees it
            trainer["default_root_dir"] = str(Path(trainer.get("default_root_dir") or "runs") / sweep_run)
        root = Path(trainer.get("default_root_dir") or os.getcwd())
        for logger in _logger_configs(trainer):
            init_args = logger.get("init_args")
            if init_args is None or not names_subclass(logger.get("class_path"), WandbLogger):
                continue  # CSV/TensorBoard require save_dir
            if init_args.get("save_dir") in (None, "", "."):
                init_args["save_dir"] = str(root)
            _point_wandb_dirs_under(Path(init_args["save_dir"]) / "wandb")
            if sweep_run:
                init_args["offline"] = False
            elif not init_args.get("offline") and not wandb_api_key_configured():
                rank_zero_warn("No W&B API key found: logging offline; upload later with `wandb sync`.")
                init_args["offline"] = True
        for callback in _entries(trainer.get("callbacks")):
            init_args = callback.get("init_args")
            is_checkpoint = init_args is not None and names_subclass(callback.get("class_path"), ModelCheckpoint)
            if is_checkpoint and not init_args.get("dirpath"):  # else <save_dir>/<project>/<run id>/checkpoints
                init_args["dirpath"] = str(root / CHECKPOINT_DIR)
        if trainer.get("default_root_dir"):
            Path(trainer["default_root_dir"]).mkdir(parents=True, exist_ok=True)
        _apply_pruning_overrides(config)

    def instantiate_classes(self) -> None:
        """Instantiate as Lightning does, but turn a class's own ``ValueError`` (wrapped by
        jsonargparse in ~120 lines of union errors) into one :class:`ConfigError` naming the key."""
        try:
            super().instantiate_classes()
        except ValueError as error:
            root, owner = _user_error(error)
            if owner is None or not isinstance(root, ValueError) or isinstance(root, ConfigError):
                raise
            config = self.config[self.subcommand] if self.subcommand else self.config
            keys = list(_class_path_keys(config.as_dict(), owner))
            where = f"{keys[0]} ({owner})" if keys else owner
            raise ConfigError(f"{where}: {root}") from root

    def after_instantiate_classes(self) -> None:
        """Label the W&B run with the subcommand, and let ``fit --ckpt_path`` continue the checkpoint's run."""
        if self.subcommand is None:
            return
        sweep = bool(os.environ.get("WANDB_SWEEP_ID"))  # the agent names the run itself
        for logger in self.trainer.loggers:
            if not isinstance(logger, RunLabelledWandbLogger):
                continue
            if self.subcommand == "fit":
                logger.configure_run(job_type="fit", run_id=None if sweep else self._checkpoint_run_id)
            else:  # an evaluation: its own run, pointing at the training run it evaluates
                extra = {"checkpoint_run_id": self._checkpoint_run_id} if self._checkpoint_run_id else {}
                logger.configure_run(job_type=self.subcommand, config=extra)

    def _finish_wandb_runs(self) -> None:
        """One W&B run per command: close it so a later command in this process starts its own."""
        if not self.trainer.is_global_zero:
            return
        for logger in self.trainer.loggers:
            if isinstance(logger, WandbLogger) and logger._experiment is not None:
                logger.experiment.finish()

    def _report_bad_training(self) -> None:
        """Say why an EarlyStopping check ended training when the reason is a run gone bad
        (``val/loss`` NaN/inf or diverged): Lightning itself says so only with ``verbose``."""
        for callback in self.trainer.early_stopping_callbacks:
            logged = self.trainer.callback_metrics.get(callback.monitor)
            value = float(logged) if logged is not None else float("nan")
            if callback.stopping_reason == EarlyStoppingReason.NON_FINITE_METRIC:
                what = f"{callback.monitor} = {value} is not finite"
            elif callback.stopping_reason == EarlyStoppingReason.DIVERGENCE_THRESHOLD:
                what = f"{callback.monitor} = {value} passed divergence_threshold={callback.divergence_threshold}"
            else:
                continue
            rank_zero_warn(
                f"Training went bad and was stopped after epoch {callback.stopped_epoch}: {what}. Lower the "
                "learning rate, set trainer.gradient_clip_val, or check the data for NaN; last.ckpt holds this "
                "(bad) state, the monitored ModelCheckpoint the best epoch before it."
            )

    def after_fit(self) -> None:
        self._report_bad_training()
        self._finish_wandb_runs()

    def after_validate(self) -> None:
        self._finish_wandb_runs()

    def after_test(self) -> None:
        self._finish_wandb_runs()

    def after_predict(self) -> None:
        self._finish_wandb_runs()


class RunConfigSaver(SaveConfigCallback):
    """Saves the config without ever overwriting the training's record, and gives it to W&B.

    ``fit`` writes ``config.yaml`` (a resumed fit rewrites it with the same settings);
    ``validate`` / ``test`` / ``predict`` write ``config.<subcommand>.yaml`` beside it, so the only
    record of how a model was trained survives its evaluation. Every W&B logger gets the full
    resolved config under the key ``config`` (Lightning itself logs only the model's and the data
    module's hyperparameters).
    """

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        stage = str(getattr(stage, "value", stage))  # Lightning passes its TrainerFn enum
        if stage != "fit":
            self.config_filename = f"config.{stage}.yaml"
        super().setup(trainer, pl_module, stage)

    def save_config(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        resolved = yaml.safe_load(self.parser.dump(self.config, skip_none=False))
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_hyperparams({"config": resolved})


class _ArgumentParser(LightningArgumentParser):
    """Prints a parse error first, with a one-line tip, instead of ~60 lines of usage before it."""

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        if not self.exit_on_error or os.environ.get("JSONARGPARSE_DEBUG"):
            super().error(message, ex)
        parser = getattr(ex, "subcommand_parser", None) or self
        sys.stderr.write(f"error: {message}\n")
        sys.stderr.write(f"tip: for the accepted options run: {parser.prog.replace(' [options]', '')} --help\n")
        self.exit(2)


def main(args: ArgsType = None, *, run: bool = True) -> RNNPruneCLI:
    """Build and (with ``run``) run the CLI; ``args`` replaces ``sys.argv[1:]`` (used by tests)."""
    return RNNPruneCLI(
        SequenceClassifier,
        L.LightningDataModule,
        subclass_mode_data=True,
        auto_configure_optimizers=False,
        parser_class=_ArgumentParser,
        save_config_callback=RunConfigSaver,
        save_config_kwargs={"overwrite": True},
        trainer_defaults={"callbacks": [WandbRunId()]},  # every checkpoint records its W&B run
        args=args,
        run=run,
    )


def console_main() -> None:
    """``python -m rnn_prune``: a :class:`ConfigError` is printed as one ``error:`` line (exit 2)."""
    try:
        main()
    except ConfigError as error:
        sys.stderr.write(f"error: {error}\n")
        raise SystemExit(2) from None
