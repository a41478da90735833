"""Shared test setup: W&B never reaches a network, runs go to tmp_path, one torch thread, quickstart CLI args."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from lightning.pytorch import Callback, Trainer

# The test models are tiny: a second intra-op thread only adds OpenMP hand-offs, and on a busy
# 2-core machine it made a 64-unit LSTM step 60x slower (0.2 s instead of 3 ms). Processes that a
# test starts keep torch's default; numpy's BLAS keeps its own, which test_expansion_share relies on.
torch.set_num_threads(1)

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("WANDB_DISABLE_GIT", "true")

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"


def quickstart_args(subcommand: str, root: Path, *extra: str, config: str = "quickstart.yaml") -> list[str]:
    """CLI args for a quickstart run whose every output lands under ``root``."""
    return [
        subcommand,
        "--config",
        str(CONFIGS / config),
        "--trainer.default_root_dir",
        str(root),
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.enable_model_summary",
        "false",
        *extra,
    ]


def offline_wandb_env(root: Path) -> dict[str, str]:
    """Environment for a wandb run that stays offline, quiet and under ``root``."""
    return {
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "WANDB_DIR": str(root),
        "WANDB_DISABLE_GIT": "true",
        "WANDB_CONSOLE": "off",
    }


@pytest.fixture(autouse=True)
def _run_in_tmp_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Relative paths a test forgets to redirect land in its tmp dir, not in the repo."""
    monkeypatch.chdir(tmp_path)


class _EpochCount(Callback):
    def __init__(self, item: pytest.Item | None) -> None:
        self.item = item

    def on_train_epoch_start(self, trainer: Trainer, pl_module: object) -> None:
        if self.item is not None:
            _EPOCHS[self.item.nodeid] = _EPOCHS.get(self.item.nodeid, 0) + 1


_EPOCHS: dict[str, int] = {}
"""Epochs trained per test, its fixtures included (a shared fixture counts for the first test that sets it up)."""
_CURRENT: list[pytest.Item | None] = [None]
_fit = Trainer.fit


@functools.wraps(_fit)  # keeps fit's signature: LightningCLI reads the fit subcommand's arguments (--ckpt_path) from it
def _counted_fit(self: Trainer, *args, **kwargs):
    self.callbacks.append(_EpochCount(_CURRENT[0]))
    return _fit(self, *args, **kwargs)


Trainer.fit = _counted_fit  # for the whole test process: module- and session-scoped fixtures count too


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    _CURRENT[0] = item  # before its fixtures are set up, so the epochs they train are the test's


@pytest.fixture(autouse=True)
def _quick_tier_trains_at_most_one_epoch(request: pytest.FixtureRequest):
    """The README's tiers, checked: a test not marked ``slow`` trains at most one epoch in all.

    Counts the epochs every ``Trainer.fit`` starts (CLI fits included) while the test or any
    fixture it sets up runs: a shared module-scoped fixture counts for the first test that needs
    it, so a quick test may not lean on a fixture that trains more than its one epoch.
    """
    yield
    epochs = _EPOCHS.get(request.node.nodeid, 0)
    if not request.node.get_closest_marker("slow"):
        assert epochs <= 1, f"{request.node.nodeid} trains {epochs} epochs: mark it @pytest.mark.slow or train one"


def fake_trainer(epoch: int = 0) -> SimpleNamespace:
    """The few trainer attributes the pruning callback reads, for driving it without a fit."""
    return SimpleNamespace(current_epoch=epoch, world_size=1, sanity_checking=False)
