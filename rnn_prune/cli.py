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
  jsonargparse traceback; a type error names the flag and the expected type;
- writes every checkpoint atomically (:class:`~rnn_prune.checkpoint_io.AtomicCheckpointIO`, unless
  the config names a ``CheckpointIO``), so a full disk never costs the last good ``last.ckpt``;
- gives a ``fit`` its run root alone (:class:`~rnn_prune.run_lock.RunRootLock`), checks every
  argument (``--ckpt_path`` included) before anything is written there, and records how the fit
  ended in ``fit_outcome.json`` (:mod:`rnn_prune.outcome`): a fit stopped by SIGTERM/SIGINT,
  a failed checkpoint write or a divergence ends with its own exit code and one line
  (:func:`console_main`, which ``python -m rnn_prune`` and the ``rnn-prune`` script run).
"""

from __future__ import annotations

import os
import re
import signal
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import lightning as L
import torch
import yaml
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint, Timer
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason
from lightning.pytorch.cli import ArgsType, LightningArgumentParser, LightningCLI, SaveConfigCallback
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.plugins.io import CheckpointIO
from lightning.pytorch.trainer.states import TrainerStatus
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from lightning.pytorch.utilities.exceptions import SIGTERMException

from rnn_prune import outcome as outcomes
from rnn_prune.checkpoint_io import AtomicCheckpointIO, CheckpointWriteError, is_remote
from rnn_prune.config_entries import names_subclass, pruning_entries, rewrite_schedules
from rnn_prune.loggers import WANDB_RUN_ID_KEY, WandbRunId
from rnn_prune.loggers import WandbLogger as RunLabelledWandbLogger
from rnn_prune.model import ARCHITECTURE_KEYS
from rnn_prune.module import SequenceClassifier
from rnn_prune.outcome import FitOutcome
from rnn_prune.run_lock import RunRootBusy, RunRootLock

CHECKPOINT_DIR = "checkpoints"
"""Folder under ``default_root_dir`` for checkpoints whose ``ModelCheckpoint`` names no ``dirpath``."""
WANDB_DIR_VARIABLES = {"WANDB_DATA_DIR": "data", "WANDB_CACHE_DIR": "cache", "WANDB_ARTIFACT_DIR": "artifacts"}
"""W&B's folders outside the run directory (staging, cache, downloads), moved under ``<save_dir>/wandb/``."""
_wandb_dirs_set_here: dict[str, str] = {}  # the values this module put into os.environ (ours to replace)


CHECKPOINT_KEYWORDS = ("last", "best", "hpc")
"""``--ckpt_path`` values Lightning resolves itself to a local checkpoint of the run."""


class ConfigError(ValueError):
    """A bad value in the run's config or command line; ``python -m rnn_prune`` prints it in one line."""


class FitStopped(RuntimeError):
    """A ``fit`` that a signal, a failed checkpoint write or a divergence cut off mid-way.

    Raised out of :func:`main` after the outcome was recorded (``fit_outcome.json``); ``outcome``
    holds the exit code the console uses and the sentence it prints."""

    def __init__(self, outcome: FitOutcome) -> None:
        super().__init__(outcome.reason)
        self.outcome = outcome


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
    (a crafted file runs code) and caches them in ``~/.cache/torch/hub``, and hands any other
    ``scheme://`` (``ftp://``, ``s3://``, ...) and ``registry:`` to the network: refuse them all."""
    text = str(ckpt_path)
    if is_remote(text) or text.lower() == "registry" or text.lower().startswith("registry:"):
        raise ConfigError(
            f"--ckpt_path={ckpt_path}: remote checkpoints are refused, because Lightning would unpickle them "
            "with weights_only=False (a crafted file can run code). Download the file and pass its local path: "
            "local checkpoints are loaded with weights_only=True."
        )


def _check_local_checkpoint(ckpt_path: str) -> dict[str, Any] | None:
    """The checkpoint at a local ``--ckpt_path`` (memory-mapped), checked before anything is written.

    None for Lightning's keywords (``last``, ``best``, ``hpc``), which it resolves itself.

    Raises:
        ConfigError: no such file, or a file that does not load as a checkpoint.
    """
    if str(ckpt_path) in CHECKPOINT_KEYWORDS:
        return None
    path = Path(ckpt_path)
    if not path.is_file():
        where = "is a directory" if path.is_dir() else "no such file"
        example = f"<root>/{CHECKPOINT_DIR}/last.ckpt"
        raise ConfigError(f"--ckpt_path={ckpt_path}: {where}; give a checkpoint file such as {example}")
    try:
        return torch.load(path, weights_only=True, map_location="cpu", mmap=True)
    except Exception as error:  # noqa: BLE001 -- truncated zip, not a checkpoint, unreadable
        if "Weights only load failed" in str(error):
            return {}  # whole, holding objects the safe loader refuses: Lightning loads it in full
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f"--ckpt_path={ckpt_path}: does not load as a checkpoint ({first})") from None


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


def _config_error(config: Any, owner: str, error: BaseException) -> ConfigError:
    """``error`` of class ``owner`` as one line naming the config key that built it."""
    keys = list(_class_path_keys(config.as_dict(), owner))
    return ConfigError(f"{f'{keys[0]} ({owner})' if keys else owner}: {error}")


def _checkpoint_epoch(path: str) -> int | None:
    """The epoch a checkpoint holds, for a message (None when it does not load)."""
    try:
        return torch.load(path, weights_only=True, map_location="cpu", mmap=True).get("epoch")
    except Exception:  # noqa: BLE001 -- only for the message
        return None


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


_DIVERGED_HINT = (
    "Lower the learning rate, set trainer.gradient_clip_val, or check the data for NaN; last.ckpt holds the "
    "last saved (possibly bad) state, the monitored ModelCheckpoint the best epoch before it"
)


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

        URLs are refused, a missing or broken file is a :class:`ConfigError` before anything is
        written (``config.yaml`` stays the earlier fit's), architecture overrides must agree with the
        checkpoint, and the W&B run id the checkpoint was written under is kept so that ``fit``
        continues that run."""
        self._checkpoint_run_id: str | None = None
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if ckpt_path:
            _refuse_remote_checkpoint(ckpt_path)
            checkpoint = _check_local_checkpoint(ckpt_path)
            if checkpoint:
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
            raise _config_error(config, owner, root) from root

    def after_instantiate_classes(self) -> None:
        """Label the W&B run with the subcommand, and let ``fit --ckpt_path`` continue the checkpoint's run."""
        if self.subcommand is None:
            return
        if self.subcommand == "fit":
            self._check_pruning_plans()
        sweep = bool(os.environ.get("WANDB_SWEEP_ID"))  # the agent names the run itself
        for logger in self.trainer.loggers:
            if not isinstance(logger, RunLabelledWandbLogger):
                continue
            if self.subcommand == "fit":
                logger.configure_run(job_type="fit", run_id=None if sweep else self._checkpoint_run_id)
            else:  # an evaluation: its own run, pointing at the training run it evaluates
                extra = {"checkpoint_run_id": self._checkpoint_run_id} if self._checkpoint_run_id else {}
                logger.configure_run(job_type=self.subcommand, config=extra)

    def _check_pruning_plans(self) -> None:
        """A pruning criterion that cannot reach the schedule's target on this model (``clustered`` with
        a density above ``1/blocks``) is a bad config: one :class:`ConfigError` line, before the run root
        is locked or written, not a traceback at the first pruning step."""
        from callbacks.pruning import ScheduledPruning  # the callbacks sit beside the CLI

        config = self.config[self.subcommand]
        for callback in self.trainer.callbacks:
            if not isinstance(callback, ScheduledPruning):
                continue
            try:
                callback.check_plan(self.trainer, self.model)
            except ValueError as error:
                raise _config_error(config, type(callback).__name__, error) from error

    def _finish_wandb_runs(self) -> None:
        """One W&B run per command: close it so a later command in this process starts its own."""
        if not self.trainer.is_global_zero:
            return
        for logger in self.trainer.loggers:
            if isinstance(logger, WandbLogger) and logger._experiment is not None:
                logger.experiment.finish()

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        """The trainer, writing checkpoints atomically (:class:`~rnn_prune.checkpoint_io.AtomicCheckpointIO`)
        unless the config names a ``CheckpointIO`` plugin of its own."""
        plugins = self._get(self.config_init, "trainer", default={}).get("plugins")
        listed = [] if plugins is None else list(plugins) if isinstance(plugins, list) else [plugins]
        if not any(isinstance(plugin, CheckpointIO) for plugin in listed):
            kwargs["plugins"] = [*listed, AtomicCheckpointIO()]
        return super().instantiate_trainer(**kwargs)

    def _run_subcommand(self, subcommand: str) -> None:
        """Run the subcommand; a ``fit`` holds the run root's lock and records how it ended.

        The lock (global rank 0) is taken before anything is written into the root. However the
        fit ends, :attr:`outcome` says how and ``fit_outcome.json`` keeps it; a fit that did not
        return (a signal, a failed checkpoint write, a NaN loss) raises :class:`FitStopped`.
        """
        self.outcome: FitOutcome | None = None
        if subcommand != "fit":
            super()._run_subcommand(subcommand)
            return
        self._local_root = not is_remote(self.trainer.default_root_dir)  # (an fsspec root: no lock, no outcome)
        lock = RunRootLock(self.trainer.default_root_dir) if self.trainer.is_global_zero and self._local_root else None
        if lock is not None:
            lock.acquire()
        try:
            try:
                super()._run_subcommand(subcommand)
            except BaseException as error:  # noqa: BLE001 -- re-raised unless it is a known way to stop
                self.outcome = self._stopped_outcome(error)
                if self.outcome is None:
                    raise
                self._record_outcome(finish_wandb=True)
                raise FitStopped(self.outcome) from error
            self.outcome = self._finished_outcome()
            self._record_outcome(finish_wandb=False)
        finally:
            if lock is not None:
                lock.release()

    def _record_outcome(self, *, finish_wandb: bool) -> None:
        if self.outcome is None or not self.trainer.is_global_zero:
            return
        # The disk that refused a checkpoint may refuse these writes too: the outcome's own line
        # (the exit code, the path) must still reach the user, so a failure here is one warning.
        if self._local_root:
            try:
                outcomes.write_outcome(Path(self.trainer.default_root_dir), self.outcome)
            except OSError as error:
                sys.stderr.write(f"warning: could not record the fit's outcome in {self.trainer.default_root_dir}: "
                                 f"{error.strerror or error}\n")
        if finish_wandb:  # a fit cut off: close its W&B run as failed (the next session resumes it)
            for logger in self.trainer.loggers:
                if isinstance(logger, WandbLogger) and logger._experiment is not None:
                    try:
                        logger.experiment.finish(exit_code=self.outcome.exit_code)
                    except Exception as error:  # noqa: BLE001 -- W&B's own failure must not hide the outcome
                        sys.stderr.write(f"warning: could not close the W&B run: {_one_line(error)}\n")

    def _last_checkpoint(self) -> str | None:
        """The newest ``last*.ckpt`` any ModelCheckpoint wrote."""
        found = set()
        for callback in self.trainer.checkpoint_callbacks:
            dirpath = getattr(callback, "dirpath", None)
            if not dirpath:
                continue
            paths = (getattr(callback, "last_model_path", ""), getattr(callback, "best_model_path", ""), "last.ckpt")
            for path in (Path(dirpath) / p for p in paths if p):  # (a resumed run's may name the old root's)
                if path.parent == Path(dirpath) and path.name.startswith("last") and path.is_file():
                    found.add(path)
        return str(max(found, key=lambda p: p.stat().st_mtime)) if found else None

    def _max_epochs(self) -> int | None:
        max_epochs = self.trainer.max_epochs
        return None if max_epochs is None or max_epochs < 0 else int(max_epochs)

    def _stopped_outcome(self, error: BaseException) -> FitOutcome | None:
        """The outcome of a fit that ``error`` cut off, or None for an error that is not a way to stop."""
        epoch, max_epochs = self.trainer.current_epoch, self._max_epochs()
        of = f" of {max_epochs}" if max_epochs is not None else ""
        signum = None
        if isinstance(error, SIGTERMException) or self.trainer.received_sigterm:
            signum = signal.SIGTERM
        elif isinstance(error, KeyboardInterrupt) or (
            isinstance(error, SystemExit) and isinstance(error.__context__, KeyboardInterrupt)
            and self.trainer.state.status == TrainerStatus.INTERRUPTED
        ):  # Lightning turns Ctrl-C into sys.exit(1), raised while it handles the KeyboardInterrupt
            signum = signal.SIGINT
        if signum is not None:
            checkpoint = self._last_checkpoint()
            saved = _checkpoint_epoch(checkpoint) if checkpoint is not None else None
            name = signal.Signals(signum).name
            if checkpoint is None:
                where = "before any checkpoint was written: start it again"
            else:
                held = f"epoch {saved}, the last whole one" if saved is not None else "the last whole epoch"
                where = f"{checkpoint} holds {held}; resume with --ckpt_path {checkpoint}"
            return FitOutcome(outcomes.INTERRUPTED, outcomes.signal_exit_code(signum),
                              f"fit stopped by {name} in epoch {epoch}{of}; {where}", epoch, max_epochs,
                              checkpoint)  # fmt: skip
        if isinstance(error, CheckpointWriteError):
            checkpoint = self._last_checkpoint()
            return FitOutcome(outcomes.FAILED, outcomes.EXIT_CHECKPOINT_WRITE, f"{error} (epoch {epoch}{of})",
                              epoch, max_epochs, checkpoint)  # fmt: skip
        diverged = isinstance(error, FloatingPointError) or (
            isinstance(error, RuntimeError) and "without overflow" in str(error)  # an update beyond float32
        )
        if diverged:
            checkpoint = self._last_checkpoint()
            first = str(error).strip().splitlines()[0]
            return FitOutcome(outcomes.DIVERGED, outcomes.EXIT_DIVERGED,
                              f"training diverged in epoch {epoch}: {first}. {_DIVERGED_HINT}", epoch, max_epochs,
                              checkpoint)  # fmt: skip
        return None

    def _finished_outcome(self) -> FitOutcome:
        """The outcome of a fit that returned: diverged (an EarlyStopping check said so), completed,
        or stopped by a callback (and why)."""
        trainer = self.trainer
        epoch = trainer.current_epoch - 1 if trainer.current_epoch > 0 else None
        max_epochs = self._max_epochs()
        checkpoint = self._last_checkpoint()
        stopped_by = None
        for callback in trainer.early_stopping_callbacks:
            logged = trainer.callback_metrics.get(callback.monitor)
            value = float(logged) if logged is not None else float("nan")
            if callback.stopping_reason == EarlyStoppingReason.NON_FINITE_METRIC:
                what = f"{callback.monitor} = {value} is not finite"
            elif callback.stopping_reason == EarlyStoppingReason.DIVERGENCE_THRESHOLD:
                what = f"{callback.monitor} = {value} passed divergence_threshold={callback.divergence_threshold}"
            else:
                if callback.stopping_reason != EarlyStoppingReason.NOT_STOPPED:
                    message = (callback.stopping_reason_message or callback.stopping_reason.value).strip()
                    stopped_by = f"early stopping after epoch {callback.stopped_epoch}: {message}"
                continue
            reason = f"training went bad and was stopped after epoch {callback.stopped_epoch}: {what}. {_DIVERGED_HINT}"
            return FitOutcome(outcomes.DIVERGED, outcomes.EXIT_DIVERGED, reason, epoch, max_epochs, checkpoint)
        reached_epochs = max_epochs is not None and trainer.current_epoch >= max_epochs
        reached_steps = trainer.max_steps not in (None, -1) and trainer.global_step >= trainer.max_steps
        if reached_epochs or reached_steps:
            return FitOutcome(outcomes.COMPLETED, outcomes.EXIT_OK, "", epoch, max_epochs, checkpoint)
        if stopped_by is None:
            timer = any(isinstance(c, Timer) for c in trainer.callbacks)
            stopped_by = f"{'trainer.max_time was reached' if timer else 'a callback set trainer.should_stop'} " \
                         f"after epoch {epoch}"  # fmt: skip
        return FitOutcome(outcomes.STOPPED, outcomes.EXIT_OK, stopped_by, epoch, max_epochs, checkpoint)

    def before_fit(self) -> None:
        """Say in one line where the run's files go and how to stop and resume it."""
        root = Path(self.trainer.default_root_dir)
        last = root / CHECKPOINT_DIR / "last.ckpt"
        rank_zero_info(
            f"rnn_prune: writing to {root} (config.yaml, {CHECKPOINT_DIR}/last.ckpt every epoch); "
            f"Ctrl-C or SIGTERM stops after the current batch, resume with --ckpt_path {last}"
        )

    def after_fit(self) -> None:
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


_TYPE_NAMES = {"NoneType": "null", "str": "a string", "int": "an integer", "float": "a number", "bool": "true/false"}


_TYPE_PATTERN = r"<class '[^']+'>|typing\.\w+\[[^\]]*\]"
"""A type as jsonargparse prints it: ``<class 'float'>`` or ``typing.Literal['a', 'b']``."""


def _type_name(text: str) -> str:
    """``<class 'float'>`` -> ``a number``; ``typing.Literal['a', 'b']`` -> ``one of ['a', 'b']``."""
    match = re.fullmatch(r"<class '(?:[\w.]+\.)?(\w+)'>", text.strip())
    if match:
        return _TYPE_NAMES.get(match[1], match[1])
    literal = re.search(r"Literal\[(.*)\]", text)
    return f"one of [{literal[1]}]" if literal else text.strip()


def one_line_parse_error(message: str) -> str:
    """A jsonargparse type error in one line naming the flag, the expected type and the value given.

    >>> one_line_parse_error('Parser key "sparsity":\\n  Does not validate against any of the Union subtypes\\n'
    ...     "  Subtypes: [<class 'float'>, <class 'NoneType'>]\\n  Errors:\\n    - Expected a <class 'float'>\\n"
    ...     "    - Expected a <class 'NoneType'>\\n  Given value type: <class 'str'>\\n  Given value: abc")
    "--sparsity: expected a number or null, got 'abc'"
    >>> one_line_parse_error("Unrecognized arguments: --x 1")
    'Unrecognized arguments: --x 1'
    """
    key = re.match(r'^Parser key "([^"]+)":', message)
    if not key:
        return " ".join(line.strip() for line in message.splitlines() if line.strip())
    subtypes = re.search(r"Subtypes: \[(.*)\]", message)
    if subtypes:
        expected = [_type_name(t) for t in re.findall(_TYPE_PATTERN, subtypes[1])]
    else:
        expected = [_type_name(t) for t in re.findall(rf"Expected a ({_TYPE_PATTERN}|\S+)", message)]
    given = re.search(r"(?:Given value|Got value): (.*)", message)
    value = given[1].strip() if given else None
    if not expected:
        details = [line.strip() for line in message.splitlines()[1:] if line.strip()]
        return f"--{key[1]}: " + (details[0] if details else "invalid value")
    unique = list(dict.fromkeys(expected))
    got = f", got {value!r}" if value is not None else ""
    return f"--{key[1]}: expected {' or '.join(unique)}{got}"


class _ArgumentParser(LightningArgumentParser):
    """Prints a parse error first, with a one-line tip, instead of ~60 lines of usage before it."""

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        if not self.exit_on_error or os.environ.get("JSONARGPARSE_DEBUG"):
            super().error(message, ex)
        parser = getattr(ex, "subcommand_parser", None) or self
        sys.stderr.write(f"error: {one_line_parse_error(message)} "
                         f"(options: {parser.prog.replace(' [options]', '')} --help)\n")  # fmt: skip
        self.exit(2)


def _prog() -> str:
    """How the user started us, for messages: ``python -m rnn_prune`` or the script's name."""
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return "python -m rnn_prune" if name in ("__main__.py", "-m", "-c", "") else name


def main(args: ArgsType = None, *, run: bool = True) -> RNNPruneCLI:
    """Build and (with ``run``) run the CLI; ``args`` replaces ``sys.argv[1:]`` (used by tests).

    Raises:
        ConfigError: a bad value in the config or on the command line (nothing was written).
        FitStopped: a ``fit`` cut off by a signal, a failed checkpoint write or a NaN loss; its
            ``outcome`` says how (``cli.outcome`` for a fit that returned).
        RunRootBusy: another live fit holds ``default_root_dir``.
    """
    return RNNPruneCLI(
        SequenceClassifier,
        L.LightningDataModule,
        subclass_mode_data=True,
        auto_configure_optimizers=False,
        parser_class=_ArgumentParser,
        parser_kwargs={"prog": _prog()},
        save_config_callback=RunConfigSaver,
        save_config_kwargs={"overwrite": True},
        trainer_defaults={"callbacks": [WandbRunId()]},  # every checkpoint records its W&B run
        args=args,
        run=run,
    )


def _done_line(cli: RNNPruneCLI) -> str:
    """What a user needs after a fit: where it stopped, its accuracy and sparsity, and what to run next."""
    outcome = cli.outcome
    metrics = cli.trainer.callback_metrics
    numbers = ", ".join(f"{key} {float(metrics[key]):.4f}" for key in ("val/acc", "prune/sparsity") if key in metrics)
    root = Path(cli.trainer.default_root_dir)
    offline = any(isinstance(lg, WandbLogger) and lg._offline for lg in cli.trainer.loggers)
    sync = f"; upload the W&B run with `wandb sync {root / 'wandb'}/offline-run-*`" if offline else ""
    epochs = f"{outcome.epoch + 1} epochs" if outcome is not None and outcome.epoch is not None else "no epoch"
    return (f"done: {epochs}{', ' + numbers if numbers else ''}; last.ckpt: {outcome.checkpoint if outcome else None}; "
            f"figures and summary: python -m rnn_prune.report {root}{sync}")  # fmt: skip


def console_main(args: ArgsType = None) -> None:
    """``python -m rnn_prune`` and the ``rnn-prune`` script: every way a run can fail is one line.

    Exit codes are :mod:`rnn_prune.outcome`'s: 2 for bad input (a :class:`ConfigError`, a data
    file, a checkpoint path), 3 for a diverged fit, 74 for a checkpoint that could not be written,
    75 for a run root in use, 130/143 for a fit stopped by SIGINT/SIGTERM (after ``last.ckpt``).
    Anything else is a bug and keeps its traceback. ``export`` is dispatched as ``python -m rnn_prune
    export`` does it (:func:`rnn_prune.export.console_main`: no Trainer involved).
    """
    argv = sys.argv[1:] if args is None else args
    if isinstance(argv, (list, tuple)) and list(argv[:1]) == ["export"]:
        from rnn_prune.export import console_main as export_main

        export_main(list(argv[1:]))
        return
    from datamodules._common import DataError  # the data modules sit beside the CLI

    try:
        cli = main(args)
    except (ConfigError, DataError) as error:
        _exit_with(f"error: {_one_line(error)}", outcomes.EXIT_CONFIG)
    except RunRootBusy as error:
        _exit_with(f"error: {error}", outcomes.EXIT_ROOT_BUSY)
    except CheckpointWriteError as error:  # outside a fit (a fit's is a FitStopped)
        _exit_with(f"error: {error}", outcomes.EXIT_CHECKPOINT_WRITE)
    except FitStopped as stopped:
        prefix = "stopped" if stopped.outcome.status == outcomes.INTERRUPTED else "error"
        _exit_with(f"{prefix}: {stopped.outcome.reason}", stopped.outcome.exit_code)
    outcome = getattr(cli, "outcome", None)
    if outcome is not None and outcome.exit_code != outcomes.EXIT_OK:
        _exit_with(f"error: {outcome.reason}", outcome.exit_code)
    if outcome is not None and cli.trainer.is_global_zero:
        if outcome.status == outcomes.STOPPED:
            sys.stderr.write(f"stopped early: {outcome.reason}\n")
        sys.stderr.write(_done_line(cli) + "\n")


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _exit_with(line: str, code: int) -> NoReturn:
    sys.stderr.write(line.rstrip() + "\n")
    raise SystemExit(code) from None
