"""``python -m rnn_prune.study``: the grid, the schedule fix, the statistics, study.csv, and (slow) a
small study on the quickstart that is killed mid-way and resumed."""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.image import imread
from scipy import stats as scipy_stats

from rnn_prune import keys, wandb_offline
from rnn_prune.report import RunData
from rnn_prune.study import analysis, figures, results, stats
from rnn_prune.study.command import main
from rnn_prune.study.grid import Cell, build_grid
from rnn_prune.study.results import DERIVED_VERSION, fit_summary, snr_columns, write_json_atomic
from rnn_prune.study.runner import (
    CELL_LOG,
    FIT_DONE,
    RESULT,
    Study,
    cell_environment,
    checkpoint_loads,
    last_checkpoint,
    plan_schedule,
    slot_environments,
)
from rnn_prune.study.summary import build_outputs
from tests.conftest import CONFIGS, offline_wandb_env

QUICKSTART = str(CONFIGS / "quickstart.yaml")


# --- grid ------------------------------------------------------------------------------------------


def test_grid_runs_sparsity_zero_once_per_seed_and_names_cells_uniquely() -> None:
    cells = build_grid("c/quickstart.yaml", [0.9, 0, 0.5], ["magnitude", "random"], ["none", "ramanujan"], [0, 1])
    assert len(cells) == 2 + 2 * 2 * 2 * 2  # one dense cell per seed, then 2 sparsities x 2 x 2 x 2 seeds
    assert [c.sparsity for c in cells[:2]] == [0.0, 0.0] and {c.kind for c in cells[:2]} == {"dense"}
    assert all(c.criterion is None and c.guard is None for c in cells[:2])
    assert [c.sparsity for c in cells[2:]] == sorted(c.sparsity for c in cells[2:])
    assert len({c.name for c in cells}) == len(cells)
    assert cells[2].name == "quickstart-s0.5-magnitude-none-seed0"
    assert Cell("x.yaml", 0.9, "my.pkg.TopK", "none", 3).name == "x-s0.9-TopK-none-seed3"


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (([], ["magnitude"], ["none"], [0]), "--sparsity needs at least one value"),
        (([0.9, 0.9], ["magnitude"], ["none"], [0]), "--sparsity 0.9 0.9: repeated value"),
        (([1.0], ["magnitude"], ["none"], [0]), r"must lie in \[0, 1\)"),
        (([0.5], ["magnitude"], ["none"], [0, 0]), "--seeds 0 0: repeated value"),
    ],
)
def test_grid_rejects_bad_values(args: tuple, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build_grid("c.yaml", *args)


# --- schedule fix and commands -------------------------------------------------------------------------


def _config(end: float, max_epochs: int | None = 20, key: str = "end_epoch") -> dict[str, Any]:
    if key == "epoch":
        schedule = {"class_path": "rnn_prune.schedules.OneShotSchedule", "init_args": {"sparsity": 0.9, key: end}}
    else:
        schedule = {"class_path": "rnn_prune.schedules.CubicSchedule",
                    "init_args": {"final_sparsity": 0.9, "start_epoch": 1, key: end}}  # fmt: skip
    callbacks = [{"class_path": "callbacks.ScheduledPruning", "init_args": {"schedule": schedule}},
                 {"class_path": "callbacks.ExpansionMetrics"}]  # fmt: skip
    return {"trainer": {"max_epochs": max_epochs, "callbacks": callbacks}}


def _end(overlay: dict[str, Any], key: str = "end_epoch") -> float:
    return overlay["trainer"]["callbacks"][0]["init_args"]["schedule"]["init_args"][key]


def test_schedule_that_ends_in_time_is_left_alone() -> None:
    assert plan_schedule(_config(end=10, max_epochs=20), ["--trainer.max_epochs", "11"]) == (None, "")


@pytest.mark.parametrize("overrides", [["--trainer.max_epochs", "6"], ["--trainer.max_epochs=6"]])
def test_schedule_past_max_epochs_moves_to_leave_a_fine_tune_epoch(overrides: list[str]) -> None:
    overlay, note = plan_schedule(_config(end=10), overrides)
    assert _end(overlay) == 5 and "at epoch 5, not 10" in note and "max_epochs=6" in note
    assert overlay["trainer"]["callbacks"][1] == {"class_path": "callbacks.ExpansionMetrics"}  # list kept whole


def test_one_shot_schedule_at_max_epochs_moves_too() -> None:
    overlay, _ = plan_schedule(_config(end=8, max_epochs=8, key="epoch"), [])
    assert _end(overlay, "epoch") == 7


def test_schedule_that_cannot_end_before_max_epochs_is_refused() -> None:
    with pytest.raises(ValueError, match=r"cannot end before max_epochs=2: CubicSchedule ramps from start_epoch=1 "
                                         r"to end_epoch=10 and cannot end by epoch 1"):  # fmt: skip
        plan_schedule(_config(end=10), ["--trainer.max_epochs", "2"])


def test_cell_commands_pass_flags_overlay_overrides_and_resume_checkpoint(tmp_path: Path) -> None:
    study = Study.prepare(QUICKSTART, tmp_path, ["--trainer.max_epochs", "4"])
    assert study.overlay is not None and "at epoch 3, not 10" in study.schedule_note
    dense, pruned = build_grid(QUICKSTART, [0, 0.9], ["random"], ["ramanujan"], [7])
    fit = study.fit_command(pruned, None)
    assert fit[2:4] == ["rnn_prune", "fit"] and fit[fit.index("--config", 5) + 1] == str(study.overlay)
    for flag, value in [("--sparsity", "0.9"), ("--criterion", "random"), ("--guard", "ramanujan"),
                        ("--seed_everything", "7"), ("--trainer.max_epochs", "4"),
                        ("--trainer.default_root_dir", str(tmp_path / "runs" / pruned.name / "fit"))]:  # fmt: skip
        assert fit[fit.index(flag) + 1] == value
    assert "--ckpt_path" not in fit
    assert "--criterion" not in study.fit_command(dense, None) and "--guard" not in study.fit_command(dense, None)
    ckpt = tmp_path / "last.ckpt"
    assert study.fit_command(pruned, ckpt)[-2:] == ["--ckpt_path", str(ckpt)]
    test = study.test_command(pruned, ckpt)
    assert test[3] == "test" and test[-2:] == ["--ckpt_path", str(ckpt)]
    assert test[test.index("--trainer.logger") + 1].endswith("CSVLogger")


def test_slots_fix_the_threads_and_place_cells_per_gpu() -> None:
    one = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    assert slot_environments(4, gpus=[]) == [one] * 4  # one thread each by default, however many slots
    assert slot_environments(1, gpus=[]) == [one]
    assert slot_environments(2, gpus=[], threads=3)[0]["OMP_NUM_THREADS"] == "3"
    assert slot_environments(2, gpus=["0", "1"]) == [{**one, "CUDA_VISIBLE_DEVICES": g} for g in "01"]
    # two cells per GPU: slots spread over the devices first, then double up
    placed = slot_environments(4, gpus=["0", "3"], cells_per_gpu=2)
    assert [s["CUDA_VISIBLE_DEVICES"] for s in placed] == ["0", "3", "0", "3"]
    assert slot_environments(3, gpus=["5"], cells_per_gpu=3) == [{**one, "CUDA_VISIBLE_DEVICES": "5"}] * 3
    with pytest.raises(ValueError, match=r"--parallel 3: 2 GPU\(s\) × --cells-per-gpu 1 hold 2 cells at a time"):
        slot_environments(3, gpus=["0", "1"])
    for kwargs, flag in [({"parallel": 0}, "--parallel 0"), ({"threads": 0}, "--threads-per-cell 0"),
                         ({"cells_per_gpu": 0}, "--cells-per-gpu 0")]:  # fmt: skip
        with pytest.raises(ValueError, match=f"{flag}: must be at least 1"):
            slot_environments(**{"parallel": 2, "gpus": ["0"], **kwargs})


def test_the_last_cell_left_keeps_the_thread_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One cell left of a --parallel 2 study gets the same threads it would beside another (the old
    runner gave it all the cores)."""
    study = Study.prepare(QUICKSTART, tmp_path, [])
    envs: list[dict[str, str]] = []
    monkeypatch.setattr(Study, "run_cell", lambda self, cell, env, processes: envs.append(env) or {})
    monkeypatch.setattr("rnn_prune.study.runner.visible_gpus", lambda: [])
    assert study.run(build_grid(QUICKSTART, [0], ["magnitude"], ["none"], [0]), parallel=2) == []
    assert len(envs) == 1 and envs[0]["OMP_NUM_THREADS"] == "1"


def test_list_prints_cells_with_index_and_status(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    args = ["--config", QUICKSTART, "--sparsity", "0", "0.9", "--criterion", "magnitude", "random",
            "--out", str(tmp_path)]  # fmt: skip
    (tmp_path / "runs" / "quickstart-s0.9-random-none-seed0").mkdir(parents=True)
    assert main([*args, "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["0\ttodo\tquickstart-dense-seed0", "1\ttodo\tquickstart-s0.9-magnitude-none-seed0",
                     "2\tpartial\tquickstart-s0.9-random-none-seed0"]  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--cell-index", "3"], r"--cell-index 3: the grid has cells 0 to 2"),
        (["--sparsity", "1.5"], r"every sparsity must lie in \[0, 1\)"),
        (["stray"], "unrecognised argument 'stray'"),
        (["--parallel", "0"], "--parallel 0: must be at least 1"),
        (["--threads-per-cell", "0"], "--threads-per-cell 0: must be at least 1"),
        (["--cells-per-gpu", "0"], "--cells-per-gpu 0: must be at least 1"),
        (["--cell-index", "-1"], "--cell-index -1: must be at least 0"),
        (["--seeds", "-1"], "--seeds -1: seed_everything takes 0 to 4294967295"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(tmp_path: Path, capsys: pytest.CaptureFixture, extra: list[str],
                                             match: str) -> None:  # fmt: skip
    args = ["--config", QUICKSTART, "--sparsity", "0", "0.9", "--criterion", "magnitude", "random",
            "--out", str(tmp_path), *extra]  # fmt: skip
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    assert __import__("re").search(match, capsys.readouterr().err)


def test_list_of_a_missing_config_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--config", str(tmp_path / "missing.yaml"), "--sparsity", "0.9", "--out", str(tmp_path), "--list"])
    assert exit_info.value.code == 2 and "missing.yaml: no such file" in capsys.readouterr().err


def test_overlay_is_written_atomically_and_only_when_it_changes(tmp_path: Path) -> None:
    """SLURM array tasks all prepare the study at once: none may see another's half-written overlay."""
    study = Study.prepare(QUICKSTART, tmp_path, ["--trainer.max_epochs", "4"])
    before = study.overlay.stat()
    Study.prepare(QUICKSTART, tmp_path, ["--trainer.max_epochs", "4"])
    after = study.overlay.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # unchanged: not rewritten
    Study.prepare(QUICKSTART, tmp_path, ["--trainer.max_epochs", "5"])
    assert study.overlay.stat().st_ino != before.st_ino  # changed: a new file renamed over the old one
    assert "end_epoch: 4" in study.overlay.read_text()


def test_a_subclass_of_scheduled_pruning_is_swept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_study_pruning.py").write_text(
        "from callbacks.pruning import ScheduledPruning\n\n\nclass Mine(ScheduledPruning):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    config = tmp_path / "mine.yaml"
    text = Path(QUICKSTART).read_text().replace(
        "class_path: callbacks.ScheduledPruning", "class_path: my_study_pruning.Mine"
    )
    assert "my_study_pruning.Mine" in text
    config.write_text(text)
    study = Study.prepare(config, tmp_path / "out", ["--trainer.max_epochs", "4"])
    assert "at epoch 3, not 10" in study.schedule_note


def test_config_without_scheduled_pruning_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "plain.yaml"
    config.write_text("trainer:\n  max_epochs: 3\n")
    with pytest.raises(ValueError, match="has no callbacks.ScheduledPruning"):
        Study.prepare(config, tmp_path / "out", [])


# --- statistics ---------------------------------------------------------------------------------------


def test_spearman_matches_scipy_and_skips_missing_pairs() -> None:
    x, y = [0.1, 0.4, 0.2, 0.9, 0.5, None], [3.0, 1.0, 2.5, 0.2, 0.9, 7.0]
    expected = scipy_stats.spearmanr(x[:5], y[:5])
    result = stats.spearman(x, y)
    assert result.n == 5 and result.rho == pytest.approx(expected.statistic)
    assert result.p == pytest.approx(expected.pvalue)
    assert stats.spearman([1, 2], [3, 4]) is None


def test_partial_correlation_removes_what_sparsity_explains() -> None:
    rng = np.random.default_rng(0)
    sparsity = np.repeat([0.5, 0.8, 0.9, 0.95, 0.99], 8)
    drop = sparsity + rng.normal(0, 0.01, sparsity.size)  # both follow sparsity only
    share = 1 - sparsity + rng.normal(0, 0.01, sparsity.size)
    raw, partial = stats.spearman(drop, share), stats.partial_spearman(drop, share, sparsity)
    assert raw.rho < -0.8 and raw.p < 1e-6
    assert abs(partial.rho) < 0.4 and partial.p > 0.05
    # within each sparsity the share now really tracks the drop: the partial correlation sees it
    share_tracking = 1 - sparsity - 5 * (drop - sparsity)
    partial = stats.partial_spearman(drop, share_tracking, sparsity)
    assert partial.rho < -0.8 and partial.p < 1e-6


def test_equal_sparsity_means_the_final_sparsity_a_guard_stopped_at() -> None:
    # Guarded cells stop short of their target: their higher share and smaller drop come from being
    # less sparse. Held at the *final* sparsity, the share explains nothing more.
    rng = np.random.default_rng(1)
    rows = [{"kind": "dense", "cell": "d", "target_sparsity": 0.0, "final_sparsity": 0.0, "test_acc": 0.9,
             "ramanujan_share": 1.0, "min_delta_r": 5.0}]  # fmt: skip
    for i in range(24):
        target = 0.9
        final = target if i % 2 else rng.uniform(0.6, 0.85)  # every other cell guarded
        rows.append({"kind": "pruned", "cell": f"c{i}", "target_sparsity": target, "final_sparsity": final,
                     "criterion": "magnitude", "guard": "none" if i % 2 else "ramanujan",
                     "test_acc": 0.9 - final / 4 + rng.normal(0, 0.002),
                     "ramanujan_share": 1.5 - final + rng.normal(0, 0.002), "min_delta_r": 1.0 - final})  # fmt: skip
    described = analysis.analyse(rows)["description"]["ramanujan_share"]
    assert described["raw"]["rho"] < -0.5  # less sparse, more Ramanujan, smaller drop
    assert abs(described["sparsity_fixed"]["rho"]) < 0.45, described


def test_break_points_and_their_order() -> None:
    assert stats.break_point([0.9, 0.5, 0.99], [0.8, 0.95, 0.4], 0.9) == 0.9
    assert stats.break_point([0.5], [0.95], 0.9) is None
    assert stats.compare_breaks(0.9, 0.9).endswith("(at)")
    assert stats.compare_breaks(0.9, 0.99).endswith("(before)")
    assert stats.compare_breaks(0.99, 0.5).endswith("(after)")
    assert "accuracy never does" in stats.compare_breaks(None, 0.5)


# --- study.csv, summary.md, figures from synthetic cells ----------------------------------------------


def _write_result(out: Path, cell: Cell, test_acc: float, share: float, min_delta_r: float, **extra: Any) -> None:
    folder = out / "runs" / cell.name
    folder.mkdir(parents=True)
    result = {**cell.to_dict(), "final_sparsity": cell.sparsity + 0.001, "reached_target": True, "final_epoch": 5,
              "val_acc": test_acc + 0.01, "test_acc": test_acc, "ramanujan_share": share, "ramanujan_defined": 8,
              "ramanujan_undefined": 0, "min_delta_r": min_delta_r, "mean_imdb": None, "first_loss_sparsity": None,
              "first_loss_epoch": None, "first_loss_graph": None, "schedule_note": "", **extra}  # fmt: skip
    write_json_atomic(folder / RESULT, result)


def _synthetic_study(out: Path, config: str = "configs/demo.yaml", **extra: Any) -> list[Cell]:
    cells = build_grid(config, [0, 0.5, 0.9, 0.99], ["magnitude", "random"], ["none", "ramanujan"], [0, 1])
    for cell in cells:
        s, penalty = cell.sparsity, 0.1 if cell.criterion == "random" else 0.0
        acc = 0.95 - (0.3 * s**8 + penalty * s) + 0.002 * cell.seed
        share = 1.0 if s < 0.9 or cell.guard == "ramanujan" else 0.5 - 0.05 * cell.seed
        _write_result(out, cell, acc, share, 1.0 - 2 * s, **extra)
    return cells


def test_study_outputs_from_finished_cells(tmp_path: Path) -> None:
    cells = _synthetic_study(tmp_path)
    (tmp_path / "runs" / "demo-s0.995-magnitude-none-seed0").mkdir()  # an unfinished cell: no result.json
    written = build_outputs(tmp_path)
    with open(tmp_path / "study.csv") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == len(cells) == 26
    assert rows[0]["kind"] == "dense" and rows[0]["criterion"] == "" and rows[0]["guard"] == ""
    assert {"config", "target_sparsity", "criterion", "guard", "seed", "final_sparsity", "val_acc", "test_acc",
            "ramanujan_share", "min_delta_r", "mean_imdb", "first_loss_sparsity", "first_loss_epoch"} <= set(rows[0])
    assert rows[0]["mean_imdb"] == ""
    summary = (tmp_path / "summary.md").read_text()
    result = json.loads((tmp_path / "analysis.json").read_text())
    assert result["config"] == "configs/demo.yaml" and result["answer"] in analysis.READINGS
    assert "\n".join(analysis.markdown({k: v for k, v in result.items() if k != "config"})) in summary
    assert "Spearman" in summary and "Drop vs Ramanujan share" in summary
    assert "- magnitude, guard none: accuracy and expansion break at the same sparsity 0.9 (at)." in summary
    assert "- magnitude, guard ramanujan: accuracy breaks at sparsity 0.9 while every graph stays Ramanujan" in summary
    # seeds 0 and 1 of random at 0.5: 0.8988 and 0.9008, so mean 0.8998 ± t(0.975, 1 df) · 0.001 = ± 0.0127
    assert "| random | none | 0.5 | 2 | 0.8998 [0.8871, 0.9125] | n/a | +0.000 |" in summary
    assert "| dense | none | 0 | 2 | 0.9510 [0.9383, 0.9637] | n/a | +1.000 |" in summary
    pngs = [p for p in written if p.suffix == ".png"]
    assert {p.stem for p in pngs} == {"accuracy_vs_sparsity", "expansion_vs_sparsity", "pruning_choices",
                                      "accuracy_vs_expansion"}
    for png in pngs:
        image = imread(png)
        assert len(np.unique(image.reshape(-1, image.shape[-1]), axis=0)) > 20, f"{png.name} looks blank"
        assert f"![{png.stem}]({png.name})" in summary


def test_accuracy_figure_has_one_legend_entry_per_line_and_no_empty_panel(tmp_path: Path) -> None:
    _synthetic_study(tmp_path)
    rows = [json.loads(p.read_text()) | {"target_sparsity": json.loads(p.read_text())["sparsity"]}
            for p in sorted((tmp_path / "runs").glob("*/result.json"))]  # fmt: skip
    figure = figures.accuracy_vs_sparsity(rows)
    (ax,) = figure.axes
    labels = ax.get_legend_handles_labels()[1]
    assert len(labels) == len(set(labels)) == 1 + 4 + 1  # dense, 4 criterion x guard lines, the break marker
    assert "dense (sparsity 0)" in labels and not any("(dense)" in label for label in labels)
    left, right = ax.get_xlim()
    assert left > right and ax.get_xscale() == "log"  # density falls to the right: sparsity grows
    for figure in (figures.expansion_vs_sparsity(rows), figures.pairwise_differences(rows)):
        assert all(ax.lines for ax in figure.axes)


def test_criterion_arguments_make_their_own_cells_columns_and_points(tmp_path: Path) -> None:
    criteria = ["biregular", "clustered:mixing=0", "clustered:mixing=.5", "rnn_prune.criteria.ClusteredCriterion"]
    cells = build_grid("configs/demo.yaml", [0, 0.8, 0.9], criteria, ["none"], [0, 1])
    assert [c.name for c in cells if c.sparsity == 0.8 and c.seed == 0] == [
        "demo-s0.8-biregular-none-seed0", "demo-s0.8-clustered_mixing=0-none-seed0",
        "demo-s0.8-clustered_mixing=0.5-none-seed0", "demo-s0.8-ClusteredCriterion-none-seed0"]  # fmt: skip
    with pytest.raises(ValueError, match="--criterion clustered:mixing=0.5 clustered:mixing=0.5: repeated value"):
        build_grid("c.yaml", [0.5], ["clustered:mixing=0.5", "clustered:mixing=0.50"], ["none"], [0])
    with pytest.raises(ValueError, match="--criterion 'clustered:mixing': 'mixing' is not key=value"):
        build_grid("c.yaml", [0.5], ["clustered:mixing"], ["none"], [0])
    for cell in cells:
        mixing = {"clustered:mixing=0": 0.0, "clustered:mixing=0.5": 0.5}.get(str(cell.criterion), 1.0)
        _write_result(tmp_path, cell, 0.9 - 0.1 * (1 - mixing) * cell.sparsity, 1.0, mixing - 0.5)
    build_outputs(tmp_path)
    with open(tmp_path / "study.csv") as file:
        rows = list(csv.DictReader(file))
    clustered = [r for r in rows if r["criterion"].startswith("clustered:")]
    assert len(clustered) == 2 * 2 * 2 and {r["criterion_args"] for r in clustered} == {"mixing=0", "mixing=0.5"}
    assert {r["criterion_args"] for r in rows if not r["criterion"].startswith("clustered:")} == {""}
    analysis = json.loads((tmp_path / "analysis.json").read_text())  # one clustered stratum per sparsity:
    assert analysis["measures"]["min_delta_r"]["n_strata"] == 3 * 2  # its mixings differ in expansion alone
    results = [json.loads(p.read_text()) for p in sorted((tmp_path / "runs").glob("*/result.json"))]
    figure = figures.accuracy_vs_expansion([r | {"target_sparsity": r["sparsity"]} for r in results])
    assert [ax.get_title() for ax in figure.axes] == ["sparsity 0.8", "sparsity 0.9"]
    points = figure.axes[0].collections
    assert len(points) == len(criteria) and all(len(c.get_offsets()) == 2 for c in points)  # two seeds each
    assert len(figure.legends[0].get_texts()) == 1 + len(criteria)  # dense reference + one per criterion


def test_snr_keys_are_parsed_by_the_keys_module() -> None:
    assert keys.parse_snr_key(keys.test_acc(keys.snr_suffix(-5.0))) == -5.0
    assert keys.parse_snr_key("test/acc@2.5dB") == 2.5
    assert keys.parse_snr_key("test/acc") is None and keys.parse_snr_key("test/loss@5dB") is None
    result = {"test/acc@10dB": 0.9, "test/acc@2.5dB": 0.5, "test/acc@-5dB": 0.3, "test/acc": 0.95}
    assert snr_columns([result]) == ["test/acc@-5dB", "test/acc@2.5dB", "test/acc@10dB"]


def test_expansion_figure_has_its_title_with_one_panel() -> None:
    rows = [{"kind": "pruned", "criterion": "magnitude", "guard": "none", "target_sparsity": s, "min_delta_r": d}
            for s, d in [(0.5, 1.0), (0.9, -1.0)]]  # fmt: skip
    figure = figures.expansion_vs_sparsity(rows)  # no Ramanujan share: one panel
    assert len(figure.axes) == 1 and figure.get_suptitle().startswith("Expansion of the final model")


def test_speech_cells_get_snr_columns_and_the_snr_figure(tmp_path: Path) -> None:
    _synthetic_study(tmp_path, config="configs/speech.yaml", **{"test/acc@0dB": 0.5, "test/acc@-5dB": 0.3})
    written = build_outputs(tmp_path)
    with open(tmp_path / "study.csv") as file:
        header = next(csv.reader(file))
    assert header[header.index("test_acc") + 1 : header.index("test_acc") + 3] == ["test/acc@-5dB", "test/acc@0dB"]
    assert tmp_path / "accuracy_vs_snr.png" in written


def test_two_configs_in_one_folder_get_their_own_sections_and_figures(tmp_path: Path) -> None:
    _synthetic_study(tmp_path, config="configs/a.yaml")
    _synthetic_study(tmp_path, config="configs/b.yaml")
    build_outputs(tmp_path)
    summary = (tmp_path / "summary.md").read_text()
    assert "## `configs/a.yaml`" in summary and "## `configs/b.yaml`" in summary
    assert (tmp_path / "a_accuracy_vs_sparsity.png").is_file() and (tmp_path / "b_accuracy_vs_sparsity.png").is_file()
    assert json.loads((tmp_path / "b_analysis.json").read_text())["config"] == "configs/b.yaml"
    assert json.loads((tmp_path / "analysis.json").read_text())["configs"] == ["configs/a.yaml", "configs/b.yaml"]


def _imdb_rows() -> list[dict[str, float]]:
    """Two epochs: IMDB defined at sparsity 0.5, undefined (NaN) at the final sparsity 0.99."""
    return [{keys.EPOCH: 0, keys.VAL_ACC: 0.9, keys.SPARSITY: 0.5, keys.graph("a", "imdb"): 7.0,
             keys.graph("a", "delta_r"): 0.5},
            {keys.EPOCH: 1, keys.VAL_ACC: 0.5, keys.SPARSITY: 0.99, keys.graph("a", "imdb"): math.nan,
             keys.graph("a", "delta_r"): -1.0}]  # fmt: skip


def test_mean_imdb_is_the_final_epochs_not_an_earlier_one() -> None:
    summary = fit_summary(RunData.from_rows("r", _imdb_rows()))
    assert summary["final_epoch"] == 1 and summary["mean_imdb"] is None  # not 7.0 from sparsity 0.5
    assert (summary["imdb_defined"], summary["imdb_undefined"]) == (0, 1)


def test_rebuild_rederives_log_fields_of_cells_finished_by_older_code(tmp_path: Path) -> None:
    """A result.json from before the IMDB fix carries the old value; the rebuild (as --report-only
    runs it) re-reads the cell's fit log once, stores the new fields and leaves current ones alone."""
    from lightning.pytorch.loggers import CSVLogger

    cells = _synthetic_study(tmp_path)
    old = next(c for c in cells if c.sparsity == 0.99)
    path = tmp_path / "runs" / old.name / RESULT
    write_json_atomic(path, {**json.loads(path.read_text()), "mean_imdb": 7.0})  # no derived_version: old code
    logger = CSVLogger(save_dir=tmp_path / "runs" / old.name / "fit", name="lightning_logs")
    for step, row in enumerate(_imdb_rows()):
        logger.log_metrics(row, step)
    logger.save()
    build_outputs(tmp_path)
    with open(tmp_path / "study.csv") as file:
        row = next(r for r in csv.DictReader(file) if r["cell"] == old.name)
    assert row["mean_imdb"] == "" and row["final_sparsity"] == "0.99" and row["test_acc"] != ""
    stored = json.loads(path.read_text())
    assert stored["derived_version"] == DERIVED_VERSION and stored["mean_imdb"] is None
    assert stored["min_delta_r"] == -1.0 and stored["reached_target"] is True and stored["imdb_undefined"] == 1
    assert "| n/a (0 of 1) |" in (tmp_path / "summary.md").read_text()
    mtime = path.stat().st_mtime_ns
    build_outputs(tmp_path)
    assert path.stat().st_mtime_ns == mtime  # re-derived once, not at every rebuild


def test_no_finished_cell_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no finished cell"):
        build_outputs(tmp_path)


# --- end to end: kill a study mid-way and resume it ------------------------------------------------------


def _study_command(out: Path) -> list[str]:
    return [sys.executable, "-m", "rnn_prune.study", "--config", QUICKSTART, "--sparsity", "0", "0.9",
            "--criterion", "magnitude", "--seeds", "0", "--out", str(out), "--trainer.max_epochs", "3",
            "--trainer.enable_model_summary", "false"]  # fmt: skip


@pytest.mark.slow
def test_study_killed_mid_way_resumes_without_rerunning_finished_cells(tmp_path: Path) -> None:
    out = tmp_path / "study"
    env = {**os.environ, **offline_wandb_env(tmp_path), "OMP_NUM_THREADS": "1"}
    dense, pruned = tmp_path / "study/runs/quickstart-dense-seed0", tmp_path / "study/runs/quickstart-s0.9-magnitude-none-seed0"  # noqa: E501
    with open(tmp_path / "first.log", "w") as log:
        first = subprocess.Popen(_study_command(out), env=env, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True)  # fmt: skip
        try:  # kill the whole study (its cell processes too) once the second cell saved an epoch
            while not ((dense / RESULT).is_file() and (ckpt := last_checkpoint(pruned / "fit")) is not None
                       and checkpoint_loads(ckpt)):  # fmt: skip
                assert first.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
                time.sleep(0.1)
        finally:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
    assert not (pruned / RESULT).exists() and not (pruned / FIT_DONE).exists()
    # Lightning writes checkpoints in place: the kill may still have cut the next epoch's save short
    resumable = checkpoint_loads(last_checkpoint(pruned / "fit"))
    dense_result = (dense / RESULT).read_bytes()
    dense_mtime = (dense / RESULT).stat().st_mtime_ns

    resumed = subprocess.run(_study_command(out), env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert (dense / RESULT).read_bytes() == dense_result and (dense / RESULT).stat().st_mtime_ns == dense_mtime
    commands = [line for line in (pruned / "cell.log").read_text().splitlines() if line.startswith("$ ")]
    fits = [line for line in commands if " fit " in line]
    assert len(fits) == 2 and "--ckpt_path" not in fits[0]
    if resumable:  # restarted from its own checkpoint
        assert "--ckpt_path" in fits[1]
    else:  # the broken one set aside, the fit started over
        assert "--ckpt_path" not in fits[1] and "does not load" in (pruned / "cell.log").read_text()
    with open(out / "study.csv") as file:
        rows = list(csv.DictReader(file))
    assert [r["kind"] for r in rows] == ["dense", "pruned"]
    assert abs(float(rows[1]["final_sparsity"]) - 0.9) <= 0.01 and rows[1]["final_epoch"] == "2"
    assert math.isfinite(float(rows[1]["test_acc"])) and "Spearman" in (out / "summary.md").read_text()

    log_before = (pruned / "cell.log").read_text()
    again = subprocess.run(_study_command(out), env=env, capture_output=True, text=True)
    assert again.returncode == 0 and (pruned / "cell.log").read_text() == log_before  # nothing ran again


# --- the W&B sweep of study cells ---------------------------------------------------------------------


STUDY_SWEEPS = sorted((CONFIGS / "sweeps" / "study").glob("*.yaml"))


@pytest.mark.parametrize("path", STUDY_SWEEPS, ids=[p.stem for p in STUDY_SWEEPS])
def test_study_sweep_runs_every_cell_of_its_grid_once(path: Path, capsys: pytest.CaptureFixture,
                                                       tmp_path: Path) -> None:  # fmt: skip
    """The agent's argv (macros expanded by wandb's own helper) parses through the study's command,
    and the swept cell indices are exactly the grid's cells."""
    import yaml
    from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

    sweep = yaml.safe_load(path.read_text())
    assert sweep["method"] == "grid" and list(sweep["parameters"]) == ["cell-index"]
    indices = sweep["parameters"]["cell-index"]["values"]
    macros = create_sweep_command_args({"args": {"cell-index": {"value": indices[-1]}}})
    argv = [a for part in sweep["command"] for a in (macros.get(part[2:-1], []) if part.startswith("${") else [part])]
    assert argv[:2] == ["-m", "rnn_prune.study"] and argv[-1] == f"--cell-index={indices[-1]}"
    argv = [str(CONFIGS.parent / a) if a.startswith("configs/") else a for a in argv[2:-1]]
    argv[argv.index("--out") + 1] = str(tmp_path)
    assert main([*argv, "--list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert indices == list(range(len(listed)))


def test_a_failing_cell_is_reported_and_the_others_still_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    study = Study.prepare(QUICKSTART, tmp_path, [])
    cells = build_grid(QUICKSTART, [0, 0.5, 0.9], ["magnitude"], ["none"], [0])
    ran: list[str] = []

    def fake_run_cell(self: Study, cell: Cell, env: dict[str, str], processes: object) -> dict[str, Any]:
        ran.append(cell.name)
        if cell.sparsity == 0.5:
            raise KeyError("val/acc")
        return {}

    monkeypatch.setattr(Study, "run_cell", fake_run_cell)
    errors = study.run(cells, parallel=2, slots=[{}, {}])
    assert sorted(ran) == sorted(c.name for c in cells)
    assert errors == ["quickstart-s0.5-magnitude-none-seed0: KeyError: 'val/acc'"]


# --- resuming: W&B waits, the W&B service, a checkpoint cut off mid-write ---------------------------------


def _sessions(fit_dir: Path, names: list[str]) -> list[Path]:
    runs = []
    for name in names:
        run = fit_dir / "wandb" / f"offline-run-{name}"
        run.mkdir(parents=True)
        (run / f"run-{name.rsplit('-', 1)[-1]}.wandb").write_bytes(b"")  # no exit record: never complete
        runs.append(run)
    return runs


def test_only_the_newest_wandb_session_is_waited_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A SIGKILLed session never writes its exit record: waiting on it would stall every resumed cell."""
    killed, resumed = _sessions(tmp_path / "fit", ["20260101_010000-abc", "20260101_020000-abc"])
    waited: list[Path] = []
    monkeypatch.setattr(wandb_offline, "wait_until_complete", lambda run, timeout: waited.append(run) or True)
    results._wait_for_wandb(tmp_path / "fit")
    assert waited == [resumed]


def test_no_wandb_wait_unless_the_fit_just_ran(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _sessions(tmp_path / "fit", ["20260101_010000-abc"])
    waited: list[Path] = []
    monkeypatch.setattr(wandb_offline, "wait_until_complete", lambda run, timeout: waited.append(run) or True)
    monkeypatch.setattr(results, "fit_fields", lambda sparsity, fit_dir: {"final_sparsity": sparsity})
    test_run = RunData.from_rows("t", [{"epoch": 0, "test/acc": 0.5}])
    monkeypatch.setattr(results, "load_run", lambda path, require: test_run)
    cell = build_grid(QUICKSTART, [0.9], ["magnitude"], ["none"], [0])[0]
    assert results.cell_result(cell, tmp_path / "fit", tmp_path / "test")["test_acc"] == 0.5
    assert waited == []
    results.cell_result(cell, tmp_path / "fit", tmp_path / "test", fit_just_ran=True)
    assert len(waited) == 1


def test_cells_do_not_inherit_the_parents_wandb_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """pytest (or a notebook) may run a W&B service and export WANDB_SERVICE; a cell that connected to
    it would find its killed fit's run still registered there ("run ID ... is in use")."""
    assert cell_environment({"WANDB_SERVICE": "x", "A": "1"}, {"OMP_NUM_THREADS": "2"}) == {"A": "1",
                                                                                            "OMP_NUM_THREADS": "2"}
    monkeypatch.setenv("WANDB_SERVICE", "2-123-tcp-localhost-4567")
    study = Study.prepare(QUICKSTART, tmp_path, [])
    envs: list[dict[str, str]] = []
    monkeypatch.setattr(Study, "run_cell", lambda self, cell, env, processes: envs.append(env) or {})
    assert study.run(build_grid(QUICKSTART, [0], ["magnitude"], ["none"], [0]), slots=[{"OMP_NUM_THREADS": "1"}]) == []
    assert "WANDB_SERVICE" not in envs[0] and envs[0]["OMP_NUM_THREADS"] == "1" and "PATH" in envs[0]


class _FakeProcesses:
    """Records the cell's commands; its "fit" saves a loadable last.ckpt, as a finished fit would."""

    def __init__(self) -> None:
        self.commands: list[list[str]] = []

    def run(self, command: list[str], env: dict[str, str], log_path: Path, name: str, stage: str,
            ok_codes: tuple[int, ...] = (0,)) -> int:  # fmt: skip
        import torch

        from rnn_prune import outcome

        self.commands.append(command)
        if stage == "fit":
            root = Path(command[command.index("--trainer.default_root_dir") + 1])
            (root / "checkpoints").mkdir(parents=True, exist_ok=True)
            torch.save({"epoch": 2}, root / "checkpoints" / "last.ckpt")
            outcome.write_outcome(root, outcome.FitOutcome(outcome.COMPLETED, 0, "", 2, 3))
        return 0


@pytest.mark.parametrize("truncated", [True, False])
def test_a_last_checkpoint_cut_off_mid_write_restarts_the_fit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              truncated: bool) -> None:  # fmt: skip
    import torch

    study = Study.prepare(QUICKSTART, tmp_path, [])
    cell = build_grid(QUICKSTART, [0.9], ["magnitude"], ["none"], [0])[0]
    ckpt = study.cell_dir(cell) / "fit" / "checkpoints" / "last.ckpt"
    ckpt.parent.mkdir(parents=True)
    torch.save({"epoch": 1, "state_dict": {"w": torch.zeros(64, 64)}}, ckpt)
    if truncated:  # the study was killed while Lightning wrote it
        ckpt.write_bytes(ckpt.read_bytes()[:5000])
    assert checkpoint_loads(ckpt) is not truncated
    whole = tmp_path / "objects.ckpt"  # objects the weights-only loader refuses: whole, so the fit may resume
    torch.save({"state_dict": {}, "callbacks": {"Mine": {"root": Path("x")}}}, whole)
    assert checkpoint_loads(whole)
    monkeypatch.setattr("rnn_prune.study.runner.cell_result", lambda cell, fit_dir, test_dir, fit_just_ran: {})
    processes = _FakeProcesses()
    study.run_cell(cell, {}, processes)
    fit, test = processes.commands
    assert ("--ckpt_path" in fit) is not truncated and test[-1] == str(ckpt)
    broken = study.cell_dir(cell) / "fit.broken1" / "checkpoints" / "last.ckpt"
    assert broken.is_file() is truncated
    if truncated:
        assert "does not load" in (study.cell_dir(cell) / CELL_LOG).read_text()
    assert (study.cell_dir(cell) / RESULT).is_file()


def test_cell_expansion_is_over_the_pruned_graphs_not_the_dense_head() -> None:
    # At high sparsity every pruned gate loses its verdict (average degree < 3) while the unpruned
    # head stays a dense Ramanujan graph: the cell's share must not become the head's 1.0.
    rows = [{"epoch": 0, "val/acc": 0.5, "prune/sparsity": 0.99, "prune/lstm.l0.hh/sparsity": 0.99,
             "graph/lstm.l0.hh/is_ramanujan": float("nan"), "graph/lstm.l0.hh/delta_r": -1.5,
             "graph/lstm.l0.hh/imdb": float("nan"),
             "graph/head/is_ramanujan": 1.0, "graph/head/delta_r": 10.0, "graph/head/imdb": 10.0}]  # fmt: skip
    summary = fit_summary(RunData.from_rows("cell", rows))
    assert summary["ramanujan_defined"] == 0 and summary["ramanujan_undefined"] == 1
    assert summary["ramanujan_share"] is None
    assert summary["min_delta_r"] == -1.5
    assert summary["mean_imdb"] is None
    dense = fit_summary(RunData.from_rows("dense", [{**rows[0], "prune/lstm.l0.hh/sparsity": None}]))
    assert dense["ramanujan_defined"] == 1 and dense["ramanujan_share"] == 1.0  # no pruned graph: all graphs


def test_partial_correlation_holds_the_criterion_fixed() -> None:
    # Pooled across criteria an association can appear that no criterion shows on its own.
    x, y = [1, 2, 3, 4, 5, 6, 7, 8], [5, 6, 7, 8, 1, 2, 3, 4]  # pooled: falling; within each group: rising
    assert stats.spearman(x, y).rho < 0
    assert stats.partial_spearman(x, y, [0] * 8, ["a"] * 4 + ["b"] * 4).rho > 0.99
    assert stats.partial_spearman([1, 2], [2, 1], [0, 0]) is None


def test_a_guarded_cell_whose_guard_never_fired_counts_once() -> None:
    base = {"kind": "pruned", "target_sparsity": 0.8, "criterion": "random", "seed": 0, "final_sparsity": 0.8,
            "test_acc": 0.84}  # fmt: skip
    rows = [{**base, "guard": "none"}, {**base, "guard": "ramanujan"}, {**base, "guard": "ramanujan", "seed": 1}]
    assert len(stats.distinct_runs(rows)) == 2


def test_no_partial_correlation_from_what_the_covariate_already_fixes() -> None:
    # Both follow sparsity monotonically (one seed, random masks): the residual ranks are the fit's
    # curvature, the same for both, which would read as ρ = ±1.
    z = np.array([0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.8, 0.9])
    tie_break = np.array([0, 0, 0, 0, 0, 0, 0, 1, 1]) * 1e-3  # the same order inside z's ties
    assert stats.partial_spearman(z + tie_break, -(z + tie_break), z) is None
