"""The study's grid: which cells a study runs and what each cell's folder is called.

A cell is one fit of the study's config at one target sparsity, pruning criterion, guard and seed.
Sparsity 0 prunes nothing, so criterion and guard cannot change it: the grid holds one *dense*
cell per seed there instead of one per criterion × guard. Cell names are stable and readable
(``quickstart-s0.99-magnitude-none-seed0``) because they are the resume key: a cell whose folder
holds a result is finished, whichever invocation (or SLURM task, or machine) ran it.

A criterion (or guard) may carry arguments, ``clustered:mixing=0.25`` (:mod:`rnn_prune.specs`):
each setting is its own cell (``...-clustered_mixing=0.25-none-seed0``), and the spec is kept in
the canonical spelling (keys sorted, values as YAML writes them) so ``mixing=.25`` and
``mixing=0.25`` are one cell. A spec that spells out a default is still a cell of its own.

>>> cells = build_grid("configs/quickstart.yaml", [0, 0.9], ["magnitude", "random"], ["none"], [0])
>>> [c.name for c in cells]
['quickstart-dense-seed0', 'quickstart-s0.9-magnitude-none-seed0', 'quickstart-s0.9-random-none-seed0']
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rnn_prune.specs import format_spec, parse_spec, spec_args, spec_label

__all__ = ["DENSE", "PRUNED", "Cell", "build_grid"]

DENSE = "dense"
"""Cell type of the sparsity-0 reference run (one per seed)."""
PRUNED = "pruned"
"""Cell type of every other cell."""


@dataclass(frozen=True)
class Cell:
    """One point of the grid; ``criterion`` and ``guard`` (specs, with any arguments) are ``None`` for a dense cell."""

    config: str
    sparsity: float
    criterion: str | None
    guard: str | None
    seed: int

    @property
    def kind(self) -> str:
        """``dense`` for the sparsity-0 reference, else ``pruned``."""
        return DENSE if self.sparsity == 0 else PRUNED

    @property
    def name(self) -> str:
        """Folder name under ``OUT/runs/``: config stem, sparsity, criterion, guard, seed."""
        stem = Path(self.config).stem
        if self.kind == DENSE:
            return f"{stem}-{DENSE}-seed{self.seed}"
        parts = [f"s{self.sparsity:g}", _short(self.criterion), _short(self.guard), f"seed{self.seed}"]
        return "-".join([stem, *parts])

    @property
    def criterion_args(self) -> str | None:
        """The criterion's arguments (``blocks=4,mixing=0.25``), ``None`` when it has none."""
        return spec_args(self.criterion) if self.criterion is not None else None

    def to_dict(self) -> dict[str, Any]:
        """Plain fields plus ``kind``, ``name`` and ``criterion_args``, for ``result.json``."""
        return {**asdict(self), "kind": self.kind, "name": self.name, "criterion_args": self.criterion_args}


def _short(spec: str | None) -> str:
    """A class path's last component (``my.pkg.TopK`` -> ``TopK``), arguments as ``_key=value``:
    folder names stay readable."""
    return spec_label(str(spec))


def _canonical(flag: str, spec: str) -> str:
    try:
        return format_spec(*parse_spec(spec))
    except ValueError as error:
        raise ValueError(f"{flag} {error}") from None


def build_grid(
    config: str,
    sparsities: Sequence[float],
    criteria: Sequence[str],
    guards: Sequence[str],
    seeds: Sequence[int],
) -> list[Cell]:
    """Every cell of sparsity × criterion × guard × seed, sparsity 0 once per seed.

    Cells come sparsity-major (all seeds of the lowest sparsity first), so a study cut short has
    whole sparsity levels rather than one seed of everything.

    Raises:
        ValueError: an empty list, a sparsity outside [0, 1), a repeated value (a repeated cell
            would run twice into one folder), or a spec that is not ``name:key=value,...``.
            Criterion and guard names are checked by the fit itself (they may be class paths), so
            a bad one fails its cell with the CLI's message.
    """
    criteria = [_canonical("--criterion", c) for c in criteria]
    guards = [_canonical("--guard", g) for g in guards]
    for flag, values in (("--sparsity", sparsities), ("--criterion", criteria), ("--guard", guards),
                         ("--seeds", seeds)):  # fmt: skip
        if not values:
            raise ValueError(f"{flag} needs at least one value")
        if len(set(values)) != len(values):
            raise ValueError(f"{flag} {' '.join(map(str, values))}: repeated value")
    bad = [s for s in sparsities if not (isinstance(s, int | float) and math.isfinite(s) and 0 <= s < 1)]
    if bad:
        raise ValueError(f"--sparsity {bad}: every sparsity must lie in [0, 1)")
    cells = []
    for sparsity in sorted(float(s) for s in sparsities):
        for seed in seeds:
            if sparsity == 0:
                cells.append(Cell(config, 0.0, None, None, int(seed)))
                continue
            for criterion, guard in itertools.product(criteria, guards):
                cells.append(Cell(config, sparsity, criterion, guard, int(seed)))
    return cells
