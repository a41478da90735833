"""The study report: logged runs in, figures and a Markdown summary out.

No training: the runs are written the way Lightning writes them, by calling the real loggers
(``CSVLogger.log_metrics`` / ``WandbLogger.log_metrics`` with epoch-keyed dicts, one call per
logging event, epoch-level metrics at different steps), with values chosen so that every number in
the summary is known by hand.
"""

from __future__ import annotations

import logging
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from lightning.pytorch.loggers import CSVLogger, WandbLogger
from matplotlib.image import imread

from rnn_prune.report import ReportError, RunData, load_run, main, make_figures, summary_table
from rnn_prune.wandb_offline import find_offline_runs, wait_until_complete
from tests.conftest import offline_wandb_env

ROOT = Path(__file__).resolve().parents[1]
FIGURES = {
    "accuracy_vs_sparsity",
    "delta_r_vs_sparsity",
    "normalized_gap_vs_sparsity",
    "guarded_vs_unguarded",
    "accuracy_vs_snr",
}

# --- a hand-made study -------------------------------------------------------------------------
# delta_r of a graph is OFFSET[graph] - sparsity, so a graph is Ramanujan while sparsity <= offset.
# Unguarded, sparsity reaches 0.9: lstm.l0.hh loses the property first (epoch 4, sparsity 0.75),
# the forget gate next (epoch 5), head never; the input gate never had it (so it never "loses" it).
GRAPHS = ("head", "lstm.l0.hh", "lstm.l0.ih.forget_gate", "lstm.l0.ih.input_gate")
OFFSET = {"head": 0.95, "lstm.l0.hh": 0.65, "lstm.l0.ih.forget_gate": 0.8, "lstm.l0.ih.input_gate": -0.1}
SPARSITY = {
    "unguarded": [0.0, 0.3, 0.5, 0.65, 0.75, 0.82, 0.87, 0.9],
    "guarded": [0.0, 0.3, 0.5, 0.55, 0.6, 0.62, 0.63, 0.63],  # the guard stops lstm.l0.hh at epoch 5
}
VAL_ACC = {
    "unguarded": [0.5, 0.8, 0.9, 0.93, 0.92, 0.9, 0.85, 0.8],
    "guarded": [0.5, 0.8, 0.9, 0.93, 0.94, 0.94, 0.95, 0.95],
}
TEST_ACC = {"unguarded": 0.81, "guarded": 0.94, "dense": 0.97}
SNR_ACC = {"dense": {20: 0.95, 10: 0.9, 0: 0.6, -5: 0.4}, "unguarded": {20: 0.78, 10: 0.7, 0: 0.45, -5: 0.3}}
EPOCHS = len(VAL_ACC["unguarded"])
STEPS_PER_EPOCH = 5


def study_rows(kind: str, *, snr: bool = False) -> list[tuple[dict[str, float], int]]:
    """(metrics, step) per logging call, in the order a Lightning fit + test logs them."""
    rows = []
    for epoch in range(EPOCHS):
        last_step = (epoch + 1) * STEPS_PER_EPOCH - 1
        for step in range(epoch * STEPS_PER_EPOCH, last_step + 1, 2):
            rows.append(({"train/loss": 1.0 / (step + 1), "epoch": epoch}, step))
        if kind == "dense":
            rows.append(({"val/acc": 0.9 + epoch / 100, "val/loss": 0.3, "epoch": epoch}, last_step))
            continue
        rows.append(({"val/acc": VAL_ACC[kind][epoch], "val/loss": 0.3, "epoch": epoch}, last_step))
        sparsity = SPARSITY[kind][epoch]
        prune = {"prune/sparsity": sparsity, "epoch": epoch}
        prune.update({f"prune/{g}/sparsity": sparsity for g in GRAPHS})
        if kind == "guarded" and epoch >= 5:
            prune["prune/lstm.l0.hh/stopped_epoch"] = 5
        rows.append((prune, last_step + 1))
        graph = {"epoch": epoch}
        for g in GRAPHS:
            graph[f"graph/{g}/delta_r"] = OFFSET[g] - sparsity
            graph[f"graph/{g}/normalized_gap"] = 0.5 * (1 - sparsity) + OFFSET[g] / 10
        graph["graph/min_delta_r"] = min(OFFSET[g] - sparsity for g in GRAPHS)
        if kind == "guarded":  # the unguarded run leaves the share to be computed from delta_r
            graph["graph/ramanujan_fraction"] = sum(OFFSET[g] >= sparsity for g in GRAPHS) / 4
        rows.append((graph, last_step + 1))
    test = {"test/acc": TEST_ACC[kind], "epoch": EPOCHS}
    if snr:
        test.update({f"test/acc@{db}dB": acc for db, acc in SNR_ACC[kind].items()})
    rows.append((test, EPOCHS * STEPS_PER_EPOCH))
    return rows


def write_csv_run(run_dir: Path, rows: list[tuple[dict[str, float], int]]) -> Path:
    logger = CSVLogger(save_dir=run_dir, name="lightning_logs")
    for metrics, step in rows:
        logger.log_metrics(metrics, step)
    logger.save()
    return Path(logger.log_dir) / "metrics.csv"


def write_wandb_run(run_dir: Path, rows: list[tuple[dict[str, float], int]], name: str) -> None:
    logger = WandbLogger(offline=True, save_dir=str(run_dir), project="rnn-prune", name=name)
    logger.log_hyperparams({"model": {"cell": "lstm"}})
    for metrics, step in rows:
        logger.log_metrics(metrics, step)
    logger.experiment.finish()
    (run,) = find_offline_runs(run_dir)
    assert wait_until_complete(run)  # finish() can return before wandb-core flushed the file


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Four runs: unguarded and guarded (CSV), the unguarded one again with SNR tests (W&B
    offline, no CSV), and a dense run with SNR tests and no pruning metrics (CSV)."""
    root = tmp_path_factory.mktemp("study")
    runs = {name: root / name for name in ("unguarded", "guarded", "wandb_pruned", "dense")}
    write_csv_run(runs["unguarded"], study_rows("unguarded"))
    write_csv_run(runs["guarded"], study_rows("guarded"))
    write_csv_run(runs["dense"], study_rows("dense", snr=True))
    with pytest.MonkeyPatch.context() as mp:
        for key, value in offline_wandb_env(root).items():
            mp.setenv(key, value)
        write_wandb_run(runs["wandb_pruned"], study_rows("unguarded", snr=True), "wandb_pruned")
    return runs


def table_rows(table: str) -> dict[str, dict[str, str]]:
    lines = [line.strip().strip("|").split(" | ") for line in table.strip().splitlines()]
    header = [cell.strip() for cell in lines[0]]
    return {cells[0].strip(): dict(zip(header, (c.strip() for c in cells), strict=True)) for cells in lines[2:]}


def assert_not_blank(path: Path) -> None:
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert image.std() > 0
    colours = np.unique(image.reshape(-1, image.shape[-1]).round(2), axis=0)
    assert len(colours) > 10


# --- loading ------------------------------------------------------------------------------------


def test_load_run_merges_rows_per_epoch(study: dict[str, Path]) -> None:
    run = load_run(study["unguarded"])
    assert run.name == "unguarded"
    assert run.source == study["unguarded"] / "lightning_logs" / "version_0" / "metrics.csv"
    assert run.epochs.tolist() == list(range(EPOCHS + 1))  # the test row is logged at epoch 8
    assert run.columns["val/acc"][:EPOCHS].tolist() == VAL_ACC["unguarded"]
    assert run.columns["prune/sparsity"][:EPOCHS].tolist() == SPARSITY["unguarded"]
    assert math.isnan(run.columns["val/acc"][EPOCHS])
    # the last training step of each epoch wins over the earlier ones
    assert run.columns["train/loss"][0] == 1.0 / 5
    assert run.last("test/acc") == TEST_ACC["unguarded"]
    assert run.graphs == sorted(GRAPHS)
    assert not run.guarded and load_run(study["guarded"]).guarded


def test_wandb_run_reads_like_the_csv_run(study: dict[str, Path]) -> None:
    csv_run, wandb_run = load_run(study["unguarded"]), load_run(study["wandb_pruned"])
    assert wandb_run.source.suffix == ".wandb"
    assert wandb_run.epochs.tolist() == csv_run.epochs.tolist()
    shared = [k for k in csv_run.columns if k != "step"]
    assert set(shared) <= set(wandb_run.columns)
    for key in shared:
        np.testing.assert_array_equal(wandb_run.columns[key], csv_run.columns[key], err_msg=key)
    assert wandb_run.last("test/acc@-5dB") == SNR_ACC["unguarded"][-5]


def test_from_rows_keeps_last_non_empty_value() -> None:
    rows = [
        {"epoch": "0", "val/acc": "0.5", "train/loss": ""},
        {"epoch": "0", "val/acc": "", "train/loss": "2.0"},
        {"val/acc": "0.6"},  # no epoch: belongs to the epoch of the row before
        {"epoch": "2", "val/acc": "nan", "note": "text"},
    ]
    run = RunData.from_rows("r", rows)
    assert run.epochs.tolist() == [0, 2]
    assert run.columns["val/acc"][0] == 0.6 and math.isnan(run.columns["val/acc"][1])
    assert run.columns["train/loss"].tolist()[0] == 2.0
    assert "note" not in run.columns
    assert run.last("val/acc") == 0.6


def test_ramanujan_share_and_first_loss(study: dict[str, Path]) -> None:
    unguarded, guarded = load_run(study["unguarded"]), load_run(study["guarded"])
    # computed from delta_r: at sparsity 0.9 only head (offset 0.95) is Ramanujan
    assert unguarded.ramanujan_fraction()[EPOCHS - 1] == 0.25
    assert unguarded.ramanujan_losses() == {"lstm.l0.hh": 4, "lstm.l0.ih.forget_gate": 5}
    assert unguarded.first_loss() == ("lstm.l0.hh", 4, 0.75)
    assert guarded.ramanujan_fraction()[EPOCHS - 1] == 0.75  # as logged
    assert guarded.first_loss() is None


def test_load_run_uses_the_newest_of_several_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    old = write_csv_run(tmp_path / "run", [({"val/acc": 0.1, "epoch": 0}, 0)])
    new = write_csv_run(tmp_path / "run", [({"val/acc": 0.2, "epoch": 0}, 0)])
    os.utime(old, (1, 1))
    with caplog.at_level(logging.INFO, logger="rnn_prune.report"):
        run = load_run(tmp_path / "run")
    assert run.source == new and run.last("val/acc") == 0.2
    assert "2 logged runs found, using the newest" in caplog.text


def _not_a_wandb_file(run_dir: Path) -> None:
    (run_dir / "wandb" / "offline-run-x").mkdir(parents=True)
    (run_dir / "wandb" / "offline-run-x" / "run-x.wandb").write_bytes(b"not a run file")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d.mkdir(), "{d}: no metrics.csv or W&B offline run found"),
        (lambda d: None, "{d}: no such file or directory"),
        (
            lambda d: write_csv_run(d, [({"train/loss": 1.0, "epoch": 0}, 0)]),
            "{d}: {d}/lightning_logs/version_0/metrics.csv has no column val/acc",
        ),
        (
            lambda d: write_csv_run(d, [({"val/acc": 0.5}, 0)]),
            "{d}: {d}/lightning_logs/version_0/metrics.csv has no column epoch",
        ),
        (_not_a_wandb_file, "{d}: cannot read {d}/wandb/offline-run-x/run-x.wandb: "),
    ],
    ids=["empty", "missing", "no-val-acc", "no-epoch", "not-wandb"],
)
def test_unusable_run_dir_is_a_one_line_error(tmp_path, capsys, make, message) -> None:
    run_dir = tmp_path / "bad"
    make(run_dir)
    with pytest.raises(ReportError, match=re.escape(message.format(d=run_dir))):
        load_run(run_dir)
    assert main([str(run_dir), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("report: " + message.format(d=run_dir))
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "out" / "summary.md").exists()


# --- figures and summary ------------------------------------------------------------------------


def test_main_writes_every_figure_and_the_summary(study: dict[str, Path], tmp_path: Path, capsys) -> None:
    out = tmp_path / "report"
    assert (
        main([str(study[name]) for name in ("unguarded", "guarded", "wandb_pruned", "dense")] + ["--out", str(out)])
        == 0
    )
    assert {p.stem for p in out.glob("*.png")} == FIGURES
    for png in out.glob("*.png"):
        assert_not_blank(png)
    printed = capsys.readouterr().out.split()
    assert sorted(printed) == sorted(str(p) for p in [*out.glob("*.png"), out / "summary.md"])
    summary = (out / "summary.md").read_text()
    assert "![accuracy_vs_snr](accuracy_vs_snr.png)" in summary

    rows = table_rows(summary[summary.index("| run") : summary.index("\n\n", summary.index("| run"))])
    assert rows["unguarded"] == {
        "run": "unguarded",
        "guarded": "no",
        "final sparsity": "0.9000",
        "final val acc": "0.8000",
        "best val acc": "0.9300",
        "Ramanujan share (end)": "0.2500",
        "first Ramanujan loss at sparsity": "0.7500 (lstm.l0.hh, epoch 4)",
        "test acc": "0.8100",
    }
    assert rows["wandb_pruned"] | {"run": "unguarded"} == rows["unguarded"]
    guarded = rows["guarded"]
    assert (guarded["guarded"], guarded["final sparsity"], guarded["best val acc"]) == ("yes", "0.6300", "0.9500")
    assert (guarded["Ramanujan share (end)"], guarded["first Ramanujan loss at sparsity"]) == ("0.7500", "never")
    dense = rows["dense"]
    assert (dense["final sparsity"], dense["final val acc"], dense["best val acc"]) == ("n/a", "0.9700", "0.9700")
    assert (dense["first Ramanujan loss at sparsity"], dense["test acc"]) == ("n/a", "0.9700")


def test_guarded_figure_needs_both_kinds(study: dict[str, Path], tmp_path: Path, capsys) -> None:
    unguarded_only = make_figures([load_run(study["unguarded"]), load_run(study["wandb_pruned"])], tmp_path / "a")
    assert "guarded_vs_unguarded" not in unguarded_only
    assert set(unguarded_only) == FIGURES - {"guarded_vs_unguarded"}
    both = make_figures([load_run(study["guarded"]), load_run(study["unguarded"])], tmp_path / "b")
    assert both["guarded_vs_unguarded"] == tmp_path / "b" / "guarded_vs_unguarded.png"
    assert main([str(study["guarded"]), "--out", str(tmp_path / "c")]) == 0
    assert "skipped guarded_vs_unguarded.png: needs a guarded run" in capsys.readouterr().err


def test_figures_without_columns_are_skipped_with_a_note(study: dict[str, Path], tmp_path: Path, capsys) -> None:
    out = tmp_path / "dense_only"
    assert main([str(study["dense"]), "--out", str(out)]) == 0
    assert [p.name for p in out.glob("*.png")] == ["accuracy_vs_snr.png"]
    err = capsys.readouterr().err
    assert "skipped accuracy_vs_sparsity.png: no run logged both val/acc and prune/sparsity" in err
    assert "skipped delta_r_vs_sparsity.png" in err and "skipped normalized_gap_vs_sparsity.png" in err
    assert "| dense | no | n/a | 0.9700 |" in (out / "summary.md").read_text()


def test_summary_table_shape(study: dict[str, Path]) -> None:
    table = summary_table([load_run(study["unguarded"])])
    lines = table.splitlines()
    assert len(lines) == 3 and lines[1] == "|---|---|---|---|---|---|---|---|"
    assert all(line.count("|") == 9 for line in lines)


def test_module_entry_point(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "rnn_prune.report", str(tmp_path / "empty"), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr == f"report: {tmp_path / 'empty'}: no metrics.csv or W&B offline run found\n"


# --- W&B sweep files ----------------------------------------------------------------------------

SWEEPS = sorted((ROOT / "configs" / "sweeps").glob("*.yaml"))


def test_every_benchmark_has_a_sweep() -> None:
    assert {p.stem for p in SWEEPS} >= {"quickstart", "smnist", "scifar10", "speech"}


@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_sweep_file_is_a_valid_sweep(path: Path) -> None:
    sweep = yaml.safe_load(path.read_text())
    assert sweep["method"] in {"grid", "random", "bayes"}
    assert sweep["metric"] == {"name": "val/acc", "goal": "maximize"}
    assert sweep["program"]  # the agent reads it even when `command` does not use ${program}
    command = sweep["command"]
    assert command[:5] == ["${env}", "${interpreter}", "-m", "rnn_prune", "fit"]
    assert "${args}" in command
    parameters = sweep["parameters"]
    # ${args} passes --config=... first only if it is the first parameter (also alphabetically)
    assert next(iter(parameters)) == "config" and min(parameters) == "config"
    assert {"config", "sparsity"} <= set(parameters)
    for name, spec in parameters.items():
        assert isinstance(spec.get("values"), list) and spec["values"], name
    assert all(0 < s < 1 for s in parameters["sparsity"]["values"])
    for config in parameters["config"]["values"]:
        assert config.startswith("configs/") and config.endswith(".yaml")
    # every key carries a comment
    for line in path.read_text().splitlines():
        if ":" in line and not line.lstrip().startswith(("#", "-")):
            assert "#" in line, f"{path.name}: uncommented key: {line}"


@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_sweep_configs_exist(path: Path) -> None:
    missing = [
        c for c in yaml.safe_load(path.read_text())["parameters"]["config"]["values"] if not (ROOT / c).is_file()
    ]
    if missing:
        pytest.skip(f"configs not written yet: {', '.join(missing)}")


def _agent_argv(sweep: dict, values: dict) -> list[str]:
    """The argv the W&B agent would run for one grid point, minus ``python -m rnn_prune``: the
    ``${...}`` macros are expanded by wandb's own helper, as ``wandb agent`` does."""
    from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

    macros = create_sweep_command_args({"args": {name: {"value": value} for name, value in values.items()}})
    argv = []
    for part in sweep["command"]:
        if part.startswith("${"):
            argv += macros.get(part[2:-1], [])  # ${env} / ${interpreter} are the agent's own
        else:
            argv.append(part)
    assert argv[:3] == ["-m", "rnn_prune", "fit"]
    return argv[2:]


@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_sweep_runs_parse_through_the_real_cli(path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """Every config of a sweep, with the last value of every other parameter, parses; the
    overrides land after the config file (so they win)."""
    from rnn_prune.cli import main as cli_main

    monkeypatch.chdir(ROOT)  # the agent runs from the repository root; config paths are relative
    sweep = yaml.safe_load(path.read_text())
    parameters = sweep["parameters"]
    for config in parameters["config"]["values"]:
        values = {name: spec["values"][-1] for name, spec in parameters.items()} | {"config": config}
        with pytest.raises(SystemExit) as exit_info:
            cli_main([*_agent_argv(sweep, values), "--print_config"])
        assert exit_info.value.code in (0, None)
        printed = yaml.safe_load(capsys.readouterr().out)
        assert printed["sparsity"] == values["sparsity"]
        assert printed["seed_everything"] == values["seed_everything"]
        if "guard" in values:
            assert printed["guard"] == values["guard"]
        if "model.cell" in values:
            assert printed["model"]["cell"] == values["model.cell"]


def test_quickstart_sweep_sets_the_pruning_callback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rnn_prune.cli import main as cli_main

    monkeypatch.chdir(ROOT)
    sweep = yaml.safe_load((ROOT / "configs" / "sweeps" / "quickstart.yaml").read_text())
    values = {"config": "configs/quickstart_guarded.yaml", "model.cell": "gru", "seed_everything": 1, "sparsity": 0.7}
    argv = [*_agent_argv(sweep, values), f"--trainer.default_root_dir={tmp_path}"]
    cli = cli_main(argv[1:], run=False)  # without a subcommand: instantiate, do not fit
    (pruning,) = [cb for cb in cli.trainer.callbacks if type(cb).__name__ == "ScheduledPruning"]
    assert pruning.schedule.final_sparsity == 0.7 and pruning.guard == "ramanujan"
    assert cli.model.hparams.cell == "gru"
