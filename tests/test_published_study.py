"""The published study rebuilds from what landed: ``--report-only`` over its committed ``result.json``
files gives the committed ``study.csv``, ``analysis.json`` files, ``summary.md`` and figures byte for byte
(issue 20's "done when"), so the README's numbers are the cells' numbers and nothing else."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import matplotlib
import pytest

from rnn_prune.study.summary import build_outputs

ROOT = Path(__file__).parents[1]
PUBLISHED = sorted(path.parent for path in ROOT.glob("studies/*/analysis.json") if (path.parent / "runs").is_dir())
"""Studies whose cells landed with them (``runs/*/result.json``): the ones a clone can rebuild."""
FIGURES_MATPLOTLIB = "3.11.2"
"""The matplotlib that drew the committed figures: PNG bytes are compared only under the same version
(another one may rasterise text a pixel differently; the text outputs are compared always)."""


def _rebuild(study: Path, out: Path) -> list[Path]:
    for result in study.glob("runs/*/result.json"):
        target = out / result.relative_to(study)
        target.parent.mkdir(parents=True)
        shutil.copyfile(result, target)
    return build_outputs(out)


def _outputs(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir()
                  if path.suffix in (".csv", ".md", ".json", ".png") and path.name != "study.json")  # fmt: skip


def test_a_study_with_committed_cells_is_published() -> None:
    assert [study.name for study in PUBLISHED] == ["sfmnist_lstm_dial"]


@pytest.mark.parametrize("study", PUBLISHED, ids=lambda path: path.name)
def test_published_study_rebuilds_byte_identically_from_its_committed_cells(study: Path, tmp_path: Path) -> None:
    written = _rebuild(study, tmp_path / study.name)
    assert sorted(path.name for path in written) == _outputs(study)
    for path in written:
        if path.suffix != ".png":
            assert path.read_bytes() == (study / path.name).read_bytes(), (
                f"{study.name}/{path.name} is stale: python -m rnn_prune.study --out {study.relative_to(ROOT)} "
                "--report-only")
    if matplotlib.__version__ != FIGURES_MATPLOTLIB:
        pytest.skip(f"figures drawn with matplotlib {FIGURES_MATPLOTLIB}, this is {matplotlib.__version__}")
    for path in written:
        if path.suffix == ".png":
            assert path.read_bytes() == (study / path.name).read_bytes(), f"{study.name}/{path.name} differs"


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
