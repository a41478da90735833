"""Shared test setup: W&B never reaches a network, runs go to tmp_path, quickstart CLI args."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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
