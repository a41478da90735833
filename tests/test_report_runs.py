"""The report over real quickstart runs: what ``python -m rnn_prune fit`` / ``test`` actually write.

Every test here trains for several epochs (the slow tier). The fast tests of the report over
hand-made logs are in ``tests/test_report.py``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import wandb
from matplotlib.image import imread

from datamodules import DigitsDataModule
from rnn_prune import keys, report
from rnn_prune.cli import main
from rnn_prune.wandb_offline import find_offline_runs, read_run, wait_until_complete
from tests.conftest import quickstart_args

EPOCHS = 4

pytestmark = pytest.mark.slow


def _csv_run(root: Path, config: str, *extra: str) -> Path:
    main(quickstart_args("fit", root, "--trainer.max_epochs", str(EPOCHS), "--trainer.logger",
                         "lightning.pytorch.loggers.CSVLogger", "--trainer.logger.save_dir", str(root),
                         *extra, config=config))  # fmt: skip
    return root


def _last_logged(run_dir: Path, key: str) -> float:
    with open(next(run_dir.rglob("metrics.csv"))) as f:
        values = [row[key] for row in csv.DictReader(f) if row.get(key)]
    return float(values[-1])


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("study")
    return {
        "unguarded": _csv_run(root / "unguarded", "quickstart.yaml", "--sparsity", "0.9"),
        "guarded": _csv_run(root / "guarded", "quickstart_guarded.yaml", "--sparsity", "0.9",
                            "--guard_margin", "2.0"),  # fmt: skip
    }


def test_report_on_quickstart_runs_writes_figures_and_matching_table(study: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "report"
    assert report.main([str(study["unguarded"]), str(study["guarded"]), "--out", str(out)]) == 0
    for name in ("accuracy_vs_sparsity", "delta_r_vs_sparsity", "normalized_gap_vs_sparsity", "guarded_vs_unguarded"):
        image = imread(out / f"{name}.png")
        assert image.ndim == 3 and image.shape[0] > 100 and float(np.std(image)) > 0.01, name
        assert len(np.unique(image.reshape(-1, image.shape[-1]), axis=0)) > 20, f"{name} looks blank"
    summary = (out / "summary.md").read_text()
    rows = {line.split("|")[1].strip(): line for line in summary.splitlines() if line.startswith("| ")}
    for name, run_dir in study.items():
        cells = [c.strip() for c in rows[name].split("|")[1:-1]]
        assert cells[1] == ("yes" if name == "guarded" else "no")
        assert float(cells[2]) == pytest.approx(_last_logged(run_dir, keys.SPARSITY), abs=1e-4)
        assert float(cells[3]) == pytest.approx(_last_logged(run_dir, keys.VAL_ACC), abs=1e-4)
    # with a 2.0 margin the guard must have stopped pruning below the unguarded run's sparsity
    assert _last_logged(study["guarded"], keys.SPARSITY) < _last_logged(study["unguarded"], keys.SPARSITY)


def _unreadable_test_split(self: DigitsDataModule) -> None:
    raise OSError("unreadable test split")


def test_readme_flow_fit_then_test_then_report(tmp_path: Path, capsys: pytest.CaptureFixture,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's flow in one root: ``fit``, ``test --ckpt_path …/last.ckpt``, a failed start,
    then the report. Today's report read the newest W&B run (the test, or the empty failed start)
    and stopped with "has no column val/acc"; it must read the fit and take its test acc from the
    test run."""
    root = tmp_path / "quickstart"
    main(quickstart_args("fit", root, "--trainer.max_epochs", "2"))
    (last,) = root.rglob("last.ckpt")
    main(quickstart_args("test", root, "--ckpt_path", str(last)))
    # A failed start after its W&B run began (a missing checkpoint is refused before any run
    # starts, so the failure comes from the data): it leaves a W&B run with no history.
    monkeypatch.setattr(DigitsDataModule, "test_dataloader", _unreadable_test_split)
    with pytest.raises(OSError, match="unreadable test split"):
        main(quickstart_args("test", root, "--ckpt_path", str(last)))
    monkeypatch.undo()
    wandb.finish()  # in a process of its own, the failed start's run is closed at exit
    sessions = {}
    for run_dir in find_offline_runs(root):
        assert wait_until_complete(run_dir)
        session = read_run(run_dir)
        sessions[session.job_type, bool(session.history)] = session
    assert set(sessions) == {("fit", True), ("test", True), ("test", False)}
    (tested,) = [row[keys.TEST_ACC] for row in sessions["test", True].history if keys.TEST_ACC in row]

    capsys.readouterr()
    assert report.main([str(root), "--out", str(tmp_path / "report")]) == 0
    err = capsys.readouterr().err
    assert f"skipped {sessions['test', False].path}: it logged no history" in err
    summary = (tmp_path / "report" / "summary.md").read_text()
    (row,) = [line for line in summary.splitlines() if line.startswith(f"| {root.name} |")]
    assert row.strip(" |").split(" | ")[-1] == f"{tested:.4f}"  # test acc, no longer n/a
    run = report.load_run(root)
    assert run.epochs.tolist() == [0, 1] and run.sources == [sessions["fit", True].path]
    assert run.final(keys.TEST_ACC) == pytest.approx(tested)


def test_resumed_fit_is_one_history(tmp_path: Path) -> None:
    """``fit --ckpt_path last.ckpt`` continues the W&B run (a second session folder, same id): the
    report reads both sessions as one training, every epoch once."""
    root = tmp_path / "resumed"
    main(quickstart_args("fit", root, "--trainer.max_epochs", "2"))
    (last,) = root.rglob("last.ckpt")
    main(quickstart_args("fit", root, "--trainer.max_epochs", "4", "--ckpt_path", str(last)))
    sessions = [read_run(run_dir) for run_dir in find_offline_runs(root) if wait_until_complete(run_dir)]
    assert len(sessions) == 2 and len({s.run_id for s in sessions}) == 1
    run = report.load_run(root)
    assert run.epochs.tolist() == [0, 1, 2, 3]
    assert sorted(run.sources) == sorted(s.path for s in sessions)
    assert np.isfinite(run.columns[keys.VAL_ACC]).all() and np.isfinite(run.sparsity()).all()
