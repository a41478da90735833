"""Lightning's ``WandbLogger``, made unable to stop training, and the checkpoint's record of its run.

Offline logging needs nothing, but an *online* run needs an API key and a reachable server; when
``wandb.init`` fails (no network, a bad key, a timeout) Lightning's logger raises and the run dies
before its first step. :class:`WandbLogger` says up front that it is connecting and for how long at
most, waits :data:`INIT_TIMEOUT_S` rather than W&B's 90 s, and then logs a warning and starts the
same run offline, so the files can be uploaded later with ``wandb sync``. Offline runs are quiet
(no history/summary dump at their end). The CLI already switches
to offline up front when no API key is configured at all; this catches what can only be learnt by
trying.

:class:`WandbRunId` writes the run's id into every checkpoint (``checkpoint["wandb_run_id"]``), so
that ``fit --ckpt_path`` continues the same W&B run instead of starting a second one.
"""

from __future__ import annotations

import os
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import WandbLogger as LightningWandbLogger
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

INIT_TIMEOUT_S = 20.0
"""Seconds an online ``wandb.init`` may take before the run goes offline (W&B's own default is 90;
``WANDB_INIT_TIMEOUT`` or an explicit ``settings`` still win)."""
WANDB_RUN_ID_KEY = "wandb_run_id"
"""Top-level checkpoint key holding the W&B run id the checkpoint was written under."""


class WandbLogger(LightningWandbLogger):
    """A ``WandbLogger`` that falls back to offline mode when an online run cannot start.

    Takes exactly the arguments of :class:`lightning.pytorch.loggers.WandbLogger`.
    """

    def configure_run(self, *, job_type: str, run_id: str | None = None, config: dict[str, Any] | None = None) -> None:
        """Set what the CLI knows before the run starts: ``job_type`` (the subcommand, so readers
        tell training from evaluation runs), the ``run_id`` to continue (``resume="allow"`` is
        Lightning's default) and extra run-config entries. Must be called before :attr:`experiment`."""
        if self._experiment is not None:
            raise RuntimeError("configure_run() must be called before the W&B run starts")
        self._wandb_init["job_type"] = job_type
        if run_id is not None:
            self._wandb_init["id"] = self._id = run_id
        if config:
            self._wandb_init["config"] = {**(self._wandb_init.get("config") or {}), **config}

    def _shorten_init_timeout(self) -> float:
        if "settings" not in self._wandb_init and "WANDB_INIT_TIMEOUT" not in os.environ:
            import wandb

            self._wandb_init["settings"] = wandb.Settings(init_timeout=INIT_TIMEOUT_S)
            return INIT_TIMEOUT_S
        settings = self._wandb_init.get("settings")
        return float(getattr(settings, "init_timeout", None) or os.environ.get("WANDB_INIT_TIMEOUT", 90))

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        if self._experiment is None and not self._offline:
            timeout = self._shorten_init_timeout()
            rank_zero_info(
                f"W&B: starting an online run; if the server or API key does not answer within {timeout:.0f} s "
                "(WANDB_INIT_TIMEOUT), the run is logged offline instead."
            )
            try:
                return super().experiment
            except Exception as error:  # wandb raises CommError, UsageError, AuthenticationError, ...
                rank_zero_warn(
                    f"W&B could not start an online run ({type(error).__name__}: {error}); "
                    "logging offline instead: upload later with `wandb sync`."
                )
                self._experiment = None
                self._offline = True
                self._wandb_init["mode"] = "offline"
        if self._experiment is None and self._offline:
            self._quiet_offline()
        return super().experiment

    def _quiet_offline(self) -> None:
        """No run history/summary dump at the end of an offline run (the CLI's last line says how to
        ``wandb sync``); a ``quiet`` the user set in ``settings`` or ``WANDB_QUIET`` wins."""
        if "WANDB_QUIET" in os.environ:
            return
        import wandb

        settings = self._wandb_init.get("settings")
        if settings is None:
            self._wandb_init["settings"] = wandb.Settings(quiet=True)
        elif isinstance(settings, wandb.Settings) and "quiet" not in settings.model_fields_set:
            settings.quiet = True


class WandbRunId(Callback):
    """Records the W&B run id in every checkpoint under :data:`WANDB_RUN_ID_KEY`.

    The CLI adds it to every trainer; ``fit --ckpt_path <ckpt>`` reads the id back and continues
    that run, so a resumed training is one W&B run (in offline mode: one more
    ``offline-run-<time>-<id>`` folder with the same id).
    """

    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        for logger in trainer.loggers:
            if isinstance(logger, LightningWandbLogger) and logger.version:
                checkpoint[WANDB_RUN_ID_KEY] = str(logger.version)
                return
