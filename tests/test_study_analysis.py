"""The study's pre-specified analysis: synthetic result.json folders whose answer is known, and the model
checked against an independent computation."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats as scipy_stats

from rnn_prune.report import RunData
from rnn_prune.study import analysis
from rnn_prune.study.command import main
from rnn_prune.study.grid import Cell
from rnn_prune.study.results import fit_summary, write_json_atomic

SPARSITIES = (0.5, 0.8, 0.9, 0.95)
CRITERIA = {"magnitude": 0.0, "random": 0.03}
"""Criterion -> its own accuracy penalty (random masks lose more at every sparsity)."""


def _result(cell: Cell, test_acc: float, **fields: Any) -> dict[str, Any]:
    return {**cell.to_dict(), "final_sparsity": cell.sparsity, "reached_target": True, "final_epoch": 3,
            "val_acc": test_acc, "test_acc": test_acc, "ramanujan_defined": 4, "ramanujan_undefined": 0,
            "schedule_note": "", **fields}  # fmt: skip


def _write(out: Path, result: dict[str, Any]) -> None:
    folder = out / "runs" / result["name"]
    folder.mkdir(parents=True)
    write_json_atomic(folder / "result.json", result)


def synthetic_study(out: Path, effect: float, *, noise: float = 0.001, seeds: int = 6, rng_seed: int = 0,
                    config: str = "configs/demo.yaml") -> None:  # fmt: skip
    """``result.json`` files alone (no run folders), as ``--cell-index`` jobs send them back.

    Inside each criterion × sparsity stratum a cell's expansion ``e`` (standard normal) moves all three
    measures; its test accuracy rises by ``effect`` per unit of ``e`` (the claim: ``effect > 0``), on
    top of what sparsity, criterion and seed do, plus ``noise``.
    """
    rng = np.random.default_rng(rng_seed)
    for seed in range(seeds):
        _write(out, _result(Cell(config, 0.0, None, None, seed), 0.9 + rng.normal(0, noise),
                            ramanujan_share=1.0, min_delta_r=10.0, min_delta_r_rel=0.6))  # fmt: skip
    for criterion, penalty in CRITERIA.items():
        for sparsity in SPARSITIES:
            for seed in range(seeds):
                e = rng.normal()
                accuracy = 0.9 - penalty - 0.2 * sparsity**4 + 0.002 * seed + effect * e + rng.normal(0, noise)
                _write(out, _result(Cell(config, sparsity, criterion, "none", seed), accuracy,
                                    min_delta_r_rel=0.2 - 0.5 * sparsity + 0.05 * e,
                                    min_delta_r=3.0 - 4.0 * sparsity + 0.4 * e,
                                    ramanujan_share=float(np.clip(0.5 + 0.2 * e, 0, 1))))  # fmt: skip


def _report(out: Path) -> dict[str, Any]:
    assert main(["--report-only", "--out", str(out)]) == 0
    return json.loads((out / "analysis.json").read_text())


@pytest.mark.parametrize(("effect", "answer"), [(0.01, "supports"), (-0.01, "contradicts"), (0.0, "no effect")])
def test_report_only_over_result_files_answers_what_the_data_was_made_to_say(tmp_path: Path, effect: float,
                                                                               answer: str) -> None:  # fmt: skip
    synthetic_study(tmp_path, effect)
    result = _report(tmp_path)
    assert result["answer"] == answer and result["primary"] == "min_delta_r_rel"
    assert result["margin"] == analysis.MARGIN and (tmp_path / "summary.md").is_file()
    assert (tmp_path / "study.csv").is_file()
    for column in analysis.MEASURES:
        measure = result["measures"][column]
        assert measure["reading"] == answer, (column, measure)
        assert measure["n_cells"] == 48 and measure["n_seeds"] == 6 and measure["n_strata"] == 8
        assert measure["n_missing"] == 0 and measure["mde"] > 0
        low, high = measure["ci95"]
        assert low < measure["estimate"] < high
        if effect != 0:  # the sign convention: more expansion, smaller drop = negative
            assert math.copysign(1, measure["estimate"]) == -math.copysign(1, effect)
            assert measure["p"] < 1e-6
    assert set(result["description"]["min_delta_r"]) == {"raw", "sparsity_fixed", "sparsity_and_criterion_fixed",
                                                         "per_criterion"}  # fmt: skip
    assert set(result["description"]["min_delta_r"]["per_criterion"]) == set(CRITERIA)


def test_a_study_of_two_configs_is_one_answer_each_config_its_own_strata(tmp_path: Path) -> None:
    """Pruning at init and gradual pruning in one folder: ``analysis.json`` pools them (the study's
    answer), holding the config fixed inside a stratum; each config keeps its own file too."""
    synthetic_study(tmp_path, 0.01, config="configs/demo_init.yaml", rng_seed=1)
    synthetic_study(tmp_path, 0.01, config="configs/demo.yaml")
    result = _report(tmp_path)
    assert result["configs"] == ["configs/demo.yaml", "configs/demo_init.yaml"] and result["answer"] == "supports"
    primary = result["measures"][analysis.PRIMARY]
    assert primary["n_strata"] == 16 and primary["n_cells"] == 96
    for stem in ("demo", "demo_init"):
        alone = json.loads((tmp_path / f"{stem}_analysis.json").read_text())
        assert alone["measures"][analysis.PRIMARY]["n_strata"] == 8 and alone["answer"] == "supports"
    assert "## Every config together" in (tmp_path / "summary.md").read_text()


def test_not_significant_is_not_no_effect(tmp_path: Path) -> None:
    """Two noisy seeds and no effect: the interval holds 0 and effects beyond the margin -- inconclusive."""
    synthetic_study(tmp_path, 0.0, noise=0.03, seeds=2)
    result = _report(tmp_path)
    measure = result["measures"][analysis.PRIMARY]
    assert result["answer"] == "inconclusive" and measure["p"] > analysis.ALPHA
    assert measure["mde"] > analysis.MARGIN and measure["ci95"][0] < -analysis.MARGIN


def test_cells_without_a_value_are_counted_and_the_sensitivity_reading_includes_them(tmp_path: Path) -> None:
    synthetic_study(tmp_path, 0.01)
    old = tmp_path / "runs" / "demo-s0.9-random-none-seed0" / "result.json"  # written before the field existed
    write_json_atomic(old, {k: v for k, v in json.loads(old.read_text()).items() if k != "min_delta_r_rel"})
    no_verdict = tmp_path / "runs" / "demo-s0.95-random-none-seed1" / "result.json"  # every graph below degree 3
    write_json_atomic(no_verdict, {**json.loads(no_verdict.read_text()), "ramanujan_share": None,
                                   "ramanujan_defined": 0, "ramanujan_undefined": 4})  # fmt: skip
    result = _report(tmp_path)
    assert result["measures"]["min_delta_r_rel"]["n_missing"] == 1
    assert result["measures"]["min_delta_r_rel"]["n_cells"] == 47
    share = result["measures"]["ramanujan_share"]
    assert share["n_missing"] == 1 and share["n_cells"] == 47
    sensitivity = result["sensitivity"]["ramanujan_share_no_verdict_as_0"]
    assert sensitivity["n_no_verdict"] == 1 and sensitivity["n_missing"] == 0 and sensitivity["n_cells"] == 48
    assert sensitivity["estimate"] != share["estimate"]
    summary = (tmp_path / "summary.md").read_text()
    assert "\n".join(analysis.markdown({k: v for k, v in result.items() if k != "config"})) in summary


def _dummies(labels: list[Any], drop_first: bool) -> np.ndarray:
    levels = list(dict.fromkeys(labels))[1 if drop_first else 0:]
    return np.column_stack([[label == level for label in labels] for level in levels]).astype(float)


def test_the_model_matches_an_independent_within_estimator_and_hc3() -> None:
    """Frisch-Waugh: the effect is the slope of the drop on the measure after both are freed of the
    stratum and seed means; its HC3 variance is sum(z~² e²/(1-h)²) / (sum z~²)²."""
    rng = np.random.default_rng(3)
    strata = [s for s in range(7) for _ in range(4)]
    seeds = [0, 1, 2, 3] * 7
    x = rng.normal(size=28) + np.array(strata) * 0.5
    drops = 0.05 * np.array(strata) + 0.004 * np.array(seeds) - 0.01 * x + rng.normal(0, 0.01, 28) * (1 + x**2)
    effect = analysis.fit_effect(list(drops), list(x), strata, seeds)
    sd = np.std(x, ddof=1)
    others = np.column_stack([_dummies(strata, False), _dummies(seeds, True)])
    z = x / sd

    def residual(v: np.ndarray) -> np.ndarray:
        return v - others @ np.linalg.lstsq(others, v, rcond=None)[0]

    z_, y_ = residual(z), residual(drops)
    slope = float(z_ @ y_ / (z_ @ z_))
    assert effect.estimate == pytest.approx(slope, rel=1e-9) and effect.sd == pytest.approx(sd)
    full = np.column_stack([z, others])
    leverage = np.diag(full @ np.linalg.pinv(full))
    errors = drops - full @ np.linalg.lstsq(full, drops, rcond=None)[0]
    se = math.sqrt(np.sum(z_**2 * errors**2 / (1 - leverage) ** 2)) / (z_ @ z_)
    df = 28 - (1 + 7 + 3)
    half = scipy_stats.t.ppf(0.975, df) * se
    assert effect.ci95 == pytest.approx((slope - half, slope + half), rel=1e-6)
    assert effect.mde == pytest.approx(se * (scipy_stats.t.ppf(0.975, df) + scipy_stats.t.ppf(0.8, df)), rel=1e-6)
    assert effect.p == pytest.approx(2 * scipy_stats.t.sf(abs(slope / se), df), rel=1e-6)
    assert (effect.n_cells, effect.n_strata, effect.n_seeds) == (28, 7, 4)


def test_cells_that_carry_no_information_are_left_out_without_changing_the_estimate() -> None:
    rng = np.random.default_rng(4)
    strata = [s for s in range(6) for _ in range(3)]
    seeds = [0, 1, 2] * 6
    x = rng.normal(size=18)
    drops = list(0.1 * np.array(strata) - 0.02 * x + rng.normal(0, 0.003, 18))
    base = analysis.fit_effect(drops, list(x), strata, seeds)
    # a singleton stratum, and a seed with one cell (fit exactly by its own seed effect)
    more = analysis.fit_effect([*drops, 0.3, 0.2], [*x, 5.0, -3.0], [*strata, 99, 0], [*seeds, 0, 7])
    assert more.n_cells == base.n_cells == 18 and more.n_seeds == 3
    assert more.estimate == pytest.approx(base.estimate * more.sd / base.sd)  # per SD: only the unit changed


@pytest.mark.parametrize(
    ("values", "strata", "note"),
    [
        ([1.0, None, None, None], [0, 0, 1, 1], "1 cell has a value"),
        ([None, None, None, None], [0, 0, 1, 1], "no cell has a value"),
        ([2.0, 2.0, 2.0, 2.0], [0, 0, 1, 1], "the same value in every cell"),
        ([1.0, 2.0, 3.0, 4.0], [0, 1, 2, 3], "no stratum holds two cells"),
        ([1.0, 1.0, 3.0, 3.0], [0, 0, 1, 1], "varies inside too few strata"),
    ],
)
def test_an_effect_that_cannot_be_estimated_is_inconclusive(values: list, strata: list, note: str) -> None:
    effect = analysis.fit_effect([0.1, 0.2, 0.3, 0.4], values, strata, [0, 1, 0, 1])
    assert effect.reading == "inconclusive" and effect.estimate is None and effect.ci95 is None
    assert note in effect.note


def test_a_measure_that_is_zero_in_every_kept_cell_is_not_read_as_another_columns_effect() -> None:
    """A Ramanujan share of 0 in every stratum with two cells, varying only in a singleton stratum
    (left out): its column is all zero, and must not be dropped with the empty levels -- the fit
    then read the first stratum's mean drop as the measure's effect ("contradicts", p ~ 1e-6)."""
    rng = np.random.default_rng(1)
    strata = [s for s in range(3) for _ in range(3)] + [99]
    drops = [0.08 + 0.05 * s + rng.normal(0, 0.002) for s in strata[:9]] + [0.5]
    effect = analysis.fit_effect(drops, [0.0] * 9 + [1.0], strata, [0, 1, 2] * 3 + [0])
    assert effect.reading == "inconclusive" and effect.estimate is None
    assert "varies inside too few strata" in effect.note


def test_fit_effect_rejects_columns_of_unequal_length() -> None:
    with pytest.raises(ValueError, match="one entry per cell"):
        analysis.fit_effect([0.1], [1.0, 2.0], [0], [0])


def test_strata_are_criterion_and_final_sparsity() -> None:
    stopped = {"kind": "pruned", "criterion": "magnitude", "target_sparsity": 0.9, "final_sparsity": 0.74}
    reached = {**stopped, "final_sparsity": 0.9}
    assert analysis.stratum_of(stopped) != analysis.stratum_of(reached)  # a guard that stopped short
    assert analysis.stratum_of({**reached, "final_sparsity": 0.90004}) == analysis.stratum_of(reached)
    assert analysis.stratum_of({**reached, "criterion": "random"}) != analysis.stratum_of(reached)
    assert analysis.stratum_of({**reached, "final_sparsity": None}) == analysis.stratum_of(reached)  # the target
    assert analysis.stratum_of({"kind": "dense", "final_sparsity": 0.0}) is None
    # numeric settings are dials of one family (same degrees); a named source is another family
    mixings = [analysis.stratum_of({**reached, "criterion": f"clustered:mixing={m}"}) for m in (0, 0.25, 1)]
    assert mixings[0] == mixings[1] == mixings[2] == analysis.stratum_of({**reached, "criterion": "clustered"})
    assert analysis.stratum_of({**reached, "criterion": "rewired:swaps=0.5"}) == analysis.stratum_of(
        {**reached, "criterion": "rewired"})  # fmt: skip
    assert analysis.stratum_of({**reached, "criterion": "rewired:source=random"}) != analysis.stratum_of(
        {**reached, "criterion": "rewired"})  # fmt: skip
    assert analysis.stratum_of({**reached, "final_sparsity": 0.99}) != analysis.stratum_of(
        {**reached, "final_sparsity": 0.995})  # fmt: skip


def test_relative_margin_is_delta_r_over_the_bound_of_the_pruned_graphs() -> None:
    rows = [{"epoch": 0, "val/acc": 0.8, "prune/sparsity": 0.9, "prune/a/sparsity": 0.9, "prune/b/sparsity": 0.9,
             "graph/a/delta_r": -1.0, "graph/a/ramanujan_bound": 4.0, "graph/b/delta_r": -0.9,
             "graph/b/ramanujan_bound": 2.0,
             "graph/head/delta_r": -5.0, "graph/head/ramanujan_bound": 5.0}]  # fmt: skip
    summary = fit_summary(RunData.from_rows("cell", rows))
    assert summary["min_delta_r"] == -1.0 and summary["min_delta_r_rel"] == pytest.approx(-0.45)
    no_bound = [{k: v for k, v in rows[0].items() if not k.endswith("ramanujan_bound")}]
    assert fit_summary(RunData.from_rows("cell", no_bound))["min_delta_r_rel"] is None


def test_published_study_csv_is_read_as_result_rows() -> None:
    rows = analysis.rows_from_csv(Path(__file__).parents[1] / "docs" / "study_sfmnist_lstm" / "study.csv")
    assert len(rows) == 46 and rows[0]["seed"] == 0 and rows[0]["criterion"] is None
    result = analysis.analyse(rows)
    assert result["answer"] == "inconclusive"  # the primary measure postdates the published cells
    assert result["measures"]["min_delta_r_rel"]["n_missing"] == 42
    assert result["measures"]["min_delta_r"]["n_seeds"] == 2 and result["twins_counted_once"] == 2


@pytest.mark.parametrize("page", ["README.md", "docs/pilot_sfmnist_lstm.md"])
def test_analysis_blocks_are_rendered_from_the_committed_studies(page: str) -> None:
    root = Path(__file__).parents[1]
    text = (root / page).read_text()
    assert len(analysis.README_BLOCK.findall(text)) >= 1
    assert analysis.render_blocks(text, (root / page).parent) == text, (
        f"{page}'s analysis block is stale: python -m rnn_prune.study.analysis --update {page}")


def test_a_block_over_analysis_json_renders_the_values_as_written(tmp_path: Path) -> None:
    """The published answer is the study's own ``analysis.json``, not a re-fit of its rows."""
    result = analysis.analyse(analysis.rows_from_csv(Path(__file__).parents[1] / "docs" / "study_sfmnist_lstm" /
                                                     "study.csv"))  # fmt: skip
    result["answer"] = "supports"  # a value no re-fit of these rows would give: the JSON is what is read
    (tmp_path / "analysis.json").write_text(json.dumps(result))
    page = "intro\n<!-- analysis: analysis.json -->\nstale\n<!-- /analysis -->\nend\n"
    rendered = analysis.render_blocks(page, tmp_path)
    assert rendered == ("intro\n<!-- analysis: analysis.json -->\n" + "\n".join(analysis.markdown(result))
                        + "\n<!-- /analysis -->\nend\n")  # fmt: skip
    assert "**Answer (pre-specified, min Δr / r): supports.**" in rendered
