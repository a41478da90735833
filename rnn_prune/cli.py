"""``python -m rnn_prune fit|validate|test|predict --config FILE``: the package's LightningCLI.

Everything a run needs is in the YAML: the model's init args, the data module's ``class_path``,
the trainer with its loggers and callbacks (pruning, expansion metrics). The CLI only

- links the data module's ``input_size`` / ``num_classes`` into the model, so configs never
  repeat them;
- puts loggers that were given no ``save_dir`` under ``trainer.default_root_dir``, so that one
  override moves every output of a run (checkpoints, W&B files, CSV logs);
- switches a W&B logger to offline mode when no API key is configured, so a missing key never
  stops training (``wandb sync`` uploads the run later; see the README).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.cli import ArgsType, LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities import rank_zero_warn

from rnn_prune.module import SequenceClassifier

_LOGGERS_WITH_SAVE_DIR = ("WandbLogger", "CSVLogger", "TensorBoardLogger")


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


class RNNPruneCLI(LightningCLI):
    """LightningCLI with the data→model links and the logger defaults described above."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.input_size", "model.input_size", apply_on="instantiate")
        parser.link_arguments("data.num_classes", "model.num_classes", apply_on="instantiate")

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        trainer = config["trainer"]
        root = trainer.get("default_root_dir") or os.getcwd()
        for logger in _logger_configs(trainer):
            class_name = str(logger.get("class_path", "")).rsplit(".", 1)[-1]
            init_args = logger.get("init_args")
            if class_name not in _LOGGERS_WITH_SAVE_DIR or init_args is None:
                continue
            if init_args.get("save_dir") in (None, "", "."):
                init_args["save_dir"] = str(root)
            if class_name == "WandbLogger" and not init_args.get("offline") and not wandb_api_key_configured():
                rank_zero_warn("No W&B API key found: logging offline; upload later with `wandb sync`.")
                init_args["offline"] = True
        if trainer.get("default_root_dir"):
            Path(trainer["default_root_dir"]).mkdir(parents=True, exist_ok=True)


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
