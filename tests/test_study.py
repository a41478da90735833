"""The study end to end: quickstart runs logged with a CSVLogger, then the report over them."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from rnn_prune import report
from rnn_prune.cli import main
from tests.conftest import quickstart_args

EPOCHS = 4


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
        assert float(cells[2]) == pytest.approx(_last_logged(run_dir, "prune/sparsity"), abs=1e-4)
        assert float(cells[3]) == pytest.approx(_last_logged(run_dir, "val/acc"), abs=1e-4)
    # with a 2.0 margin the guard must have stopped pruning below the unguarded run's sparsity
    assert _last_logged(study["guarded"], "prune/sparsity") < _last_logged(study["unguarded"], "prune/sparsity")


def test_report_on_a_run_without_metrics_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "empty").mkdir()
    assert report.main([str(tmp_path / "empty"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "no metrics.csv or W&B offline run found" in err and "Traceback" not in err
