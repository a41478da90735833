"""The study's epoch budget: the dense model's test accuracy after every epoch of one long fit.

Why: a study's cells must train long enough that the dense reference has converged, or "accuracy
drop" mixes pruning with under-training; but every extra epoch multiplies the study's cost. So
the dense model of the study's config is trained once for ``--epochs`` (30) epochs, its test
accuracy read after every epoch, and the budget is the first epoch count whose test accuracy is
within ``--tolerance`` (0.5 points) of the last epoch's. A dense fit has no schedule, so the first
E epochs of this run are exactly an E-epoch dense cell (same seed, same batches).

    python studies/dense_budget.py --config configs/sfmnist_lstm.yaml --out studies/sfmnist_lstm_budget \\
        --data.init_args.data_dir data

Unknown arguments are fit overrides. One torch thread (recorded), as the study's cells. Writes
``OUT/budget.json`` after every epoch (an interrupted run leaves what it measured).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch: the study's cells run on one thread
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import torch  # noqa: E402
from lightning.pytorch import Callback, LightningModule, Trainer  # noqa: E402

from rnn_prune import keys  # noqa: E402
from rnn_prune.cli import main  # noqa: E402
from rnn_prune.study.provenance import cell_provenance  # noqa: E402
from rnn_prune.study.results import write_json_atomic  # noqa: E402


def budget(test_accs: list[float], tolerance: float) -> dict[str, Any]:
    """The first epoch count within ``tolerance`` of the last epoch's test accuracy, and the first
    from which every later epoch stays within it.

    >>> budget([0.80, 0.85, 0.862, 0.858, 0.861], 0.005)
    {'final_test_acc': 0.861, 'first_within': 3, 'stays_within_from': 3}
    """
    final = test_accs[-1]
    within = [abs(acc - final) <= tolerance + 1e-12 for acc in test_accs]
    first = within.index(True) + 1
    stays = next(i + 1 for i in range(len(within)) if all(within[i:]))
    return {"final_test_acc": final, "first_within": first, "stays_within_from": stays}


class TestAfterEveryEpoch(Callback):
    """Test accuracy of the model after each training epoch, without touching the run's RNG."""

    def __init__(self, out: Path, record: dict[str, Any]) -> None:
        self.out, self.record, self.started = out, record, time.perf_counter()

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        datamodule = trainer.datamodule
        if "test" not in datamodule.splits:
            datamodule.setup("test")
        rng = torch.get_rng_state()  # a loader's iterator draws its base seed from the global RNG
        was_training = pl_module.training
        pl_module.eval()
        correct = total = 0
        with torch.no_grad():
            for x, y in datamodule.test_dataloader():
                correct += int((pl_module(x.to(pl_module.device)).argmax(-1) == y.to(pl_module.device)).sum())
                total += len(y)
        pl_module.train(was_training)
        torch.set_rng_state(rng)
        self.record["epochs"].append({
            "epoch": trainer.current_epoch + 1,
            "test_acc": correct / total,
            "train_acc": float(trainer.callback_metrics.get(keys.TRAIN_ACC, float("nan"))),
            "wall_s": round(time.perf_counter() - self.started, 1),
        })
        self.record.update(budget([e["test_acc"] for e in self.record["epochs"]], self.record["tolerance"]))
        self.out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.out / "budget.json", self.record)


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--tolerance", type=float, default=0.005, help="in accuracy (0.005 = 0.5 points)")
    parser.add_argument("--seed", type=int, default=0)
    args, overrides = parser.parse_known_args(argv)
    torch.set_num_threads(1)
    record: dict[str, Any] = {
        "command": [sys.executable, *sys.argv], "config": args.config, "overrides": overrides,
        "max_epochs": args.epochs, "tolerance": args.tolerance, "seed": args.seed,
        "provenance": {**cell_provenance(os.environ), "torch_threads": torch.get_num_threads()}, "epochs": [],
    }
    cli = main(["--config", args.config, "--sparsity", "0", "--seed_everything", str(args.seed),
                "--trainer.max_epochs", str(args.epochs), "--trainer.enable_progress_bar", "false",
                "--trainer.logger", "false", "--trainer.default_root_dir", str(args.out / "fit"), *overrides],
               run=False)  # fmt: skip
    cli.trainer.callbacks.append(TestAfterEveryEpoch(args.out, record))
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    print(json.dumps({k: record[k] for k in ("final_test_acc", "first_within", "stays_within_from")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(run(sys.argv[1:]))
