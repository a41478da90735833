"""The published study rebuilds from what landed: ``--report-only`` over its committed ``result.json``
files gives the committed ``study.csv``, ``analysis.json`` files, ``summary.md`` and figures byte for byte
(issue 20's "done when"), so the README's numbers are the cells' numbers and nothing else."""

from __future__ import annotations

import csv
import importlib.metadata
import itertools
import json
import math
import re
import shutil
from pathlib import Path

import pytest

from rnn_prune.study import stats
from rnn_prune.study.command import main

ROOT = Path(__file__).parents[1]
PUBLISHED = sorted(path.parent for path in ROOT.glob("studies/*/analysis.json") if (path.parent / "runs").is_dir())
"""Studies whose cells landed with them (``runs/*/result.json``): the ones a clone can rebuild."""
RECORDED_VERSIONS = {"numpy": "2.4.6", "scipy": "1.17.1", "statsmodels": "0.15.0", "matplotlib": "3.11.2"}
"""The numerical libraries that wrote the committed outputs. Under these exact versions every output
is compared byte for byte; under others the OLS fit may differ in its last digits (and text may
rasterise a pixel differently), so ``analysis.json`` values are compared to 1e-9 and the rest skipped."""


def _versions() -> dict[str, str]:
    return {name: importlib.metadata.version(name) for name in RECORDED_VERSIONS}


def _close(a: object, b: object) -> bool:
    """JSON values equal, floats to 1e-9 relative (nested dicts and lists, which pytest.approx refuses)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, int | float) and isinstance(b, int | float) and math.isclose(a, b, rel_tol=1e-9,
                                                                                          abs_tol=1e-12)  # fmt: skip
    return a == b


def _rebuild(study: Path, out: Path) -> list[Path]:
    """The study's recorded ``--report-only`` over a copy of its committed ``result.json`` files."""
    for result in study.glob("runs/*/result.json"):
        target = out / result.relative_to(study)
        target.parent.mkdir(parents=True)
        shutil.copyfile(result, target)
    assert main(["--out", str(out), "--report-only"]) == 0
    return sorted(path for path in out.iterdir() if path.is_file())


def _outputs(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir()
                  if path.suffix in (".csv", ".md", ".json", ".png") and path.name != "study.json")  # fmt: skip


def test_a_study_with_committed_cells_is_published() -> None:
    assert [study.name for study in PUBLISHED] == ["sfmnist_lstm_dial"]


@pytest.mark.parametrize("study", PUBLISHED, ids=lambda path: path.name)
def test_published_study_rebuilds_byte_identically_from_its_committed_cells(study: Path, tmp_path: Path) -> None:
    written = _rebuild(study, tmp_path / study.name)
    assert [path.name for path in written] == _outputs(study)
    stale = f"python -m rnn_prune.study --out {study.relative_to(ROOT)} --report-only"
    assert (tmp_path / study.name / "study.csv").read_bytes() == (study / "study.csv").read_bytes(), stale
    if _versions() != RECORDED_VERSIONS:
        for path in written:
            if path.name.endswith("analysis.json"):
                assert _close(json.loads(path.read_text()), json.loads((study / path.name).read_text())), path.name
        pytest.skip(f"outputs written under {RECORDED_VERSIONS}, this is {_versions()}: values compared, not bytes")
    for path in written:
        assert path.read_bytes() == (study / path.name).read_bytes(), f"{study.name}/{path.name} is stale: {stale}"


SUMMARY_ROWS = re.compile(r"<!-- summary rows: (?P<source>\S+) -->\n(?P<body>.*?)<!-- /summary rows -->", re.S)
"""A table the README copies from a study's ``summary.md``: every line of it must be one of that file's."""


def test_readme_tables_copied_from_a_summary_are_in_it() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = list(SUMMARY_ROWS.finditer(readme))
    assert blocks, "the README's results section lost its table of the published study"
    for block in blocks:
        summary = set((ROOT / block["source"]).read_text().splitlines())
        stale = [line for line in block["body"].splitlines() if line not in summary]
        assert not stale, f"README rows not in {block['source']}: {stale}"


def _paired(rows: list[dict[str, str]], minuend: str, subtrahend: str, sparsity: str) -> str:
    """``minuend − subtrahend`` test accuracy paired by seed, in points, with its 95 % t interval."""
    accuracy = {(r["criterion"], r["target_sparsity"], r["seed"]): 100 * float(r["test_acc"]) for r in rows}
    seeds = sorted({r["seed"] for r in rows})
    paired = stats.mean_interval([accuracy[minuend, sparsity, s] - accuracy[subtrahend, sparsity, s] for s in seeds])
    assert paired is not None and paired.low is not None and paired.high is not None
    return f"{paired.mean:+.2f} [{paired.low:+.2f}, {paired.high:+.2f}]".replace("-", "−")


def test_readme_paired_contrasts_are_the_cells() -> None:
    """The README's hand-written contrasts (paired by seed), recomputed from the committed study.csv."""
    with open(ROOT / "studies" / "sfmnist_lstm_dial" / "study.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    readme = " ".join((ROOT / "README.md").read_text().split())  # line breaks as spaces
    contrasts = [("clustered:mixing=0.25", "clustered:mixing=0"), ("biregular", "clustered:mixing=0"),
                 ("rewired", "magnitude")]  # fmt: skip
    for (minuend, subtrahend), sparsity in itertools.product(contrasts, ["0.9", "0.95"]):
        contrast = _paired(rows, minuend, subtrahend, sparsity)
        assert contrast.split(" [")[1] in readme, f"{minuend} − {subtrahend} at {sparsity}: {contrast}"
