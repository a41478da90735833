"""Lightning's ``WandbLogger``, made unable to stop training.

Offline logging needs nothing, but an *online* run needs an API key and a reachable server; when
``wandb.init`` fails (no network, a bad key, a timeout) Lightning's logger raises and the run dies
before its first step. This subclass logs a warning and starts the same run offline instead, so the
files can be uploaded later with ``wandb sync``. The CLI already switches to offline up front when
no API key is configured at all; this catches what can only be learnt by trying.
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch.loggers import WandbLogger as LightningWandbLogger
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_warn


class WandbLogger(LightningWandbLogger):
    """A ``WandbLogger`` that falls back to offline mode when an online run cannot start.

    Takes exactly the arguments of :class:`lightning.pytorch.loggers.WandbLogger`.
    """

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        if self._experiment is None and not self._offline:
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
        return super().experiment
