"""The command line of ``python -m rnn_prune.study``; see the README section "Running the study".

Arguments it does not know are fit overrides handed to every cell's ``python -m rnn_prune fit``
and ``test`` (``--trainer.max_epochs 8``, ``--data.batch_size 256``, ...).

``--list`` and ``--report-only`` import no training stack (no torch, no Lightning): they read
configs and ``result.json`` files only.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from rnn_prune.study.grid import build_grid
from rnn_prune.study.provenance import cpu_name, gpu_name, record_invocation
from rnn_prune.study.runner import Study, StudyInterrupted, cell_status, slot_environments, visible_gpus
from rnn_prune.study.summary import build_outputs

__all__ = ["main"]

log = logging.getLogger("rnn_prune.study")

MAX_SEED = 2**32 - 1
"""The largest seed ``seed_everything`` accepts (numpy's limit)."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m rnn_prune.study",
        description="Run a sparsity × criterion × guard × seed grid of fits of one config, resumably, "
        "then write study.csv, summary.md and figures. Unknown --key value pairs are fit overrides.",
    )
    parser.add_argument("--config", help="the LightningCLI YAML every cell fits (not needed with --report-only)")
    parser.add_argument("--sparsity", type=float, nargs="+",
                        help="target sparsities; 0 = dense (not needed with --report-only)")  # fmt: skip
    parser.add_argument("--criterion", nargs="+", default=["magnitude"], help="pruning criteria (default magnitude)")
    parser.add_argument("--guard", nargs="+", default=["none"], help="guards: none, ramanujan (default none)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="seed_everything values (default 0)")
    parser.add_argument("--out", type=Path, required=True, help="study folder: runs/<cell>/, study.csv, summary.md")
    parser.add_argument("--parallel", type=int, default=1,
                        help="cells at a time (on GPUs: at most GPUs × --cells-per-gpu)")  # fmt: skip
    parser.add_argument("--threads-per-cell", type=int, default=1,
                        help="torch threads of every cell (OMP_NUM_THREADS; default 1): part of a cell's "
                             "result, so fixed, never derived from --parallel")  # fmt: skip
    parser.add_argument("--cells-per-gpu", type=int, default=1,
                        help="cells one GPU takes at a time where there are GPUs (default 1)")  # fmt: skip
    parser.add_argument("--cell-index", type=int, default=None,
                        help="run only cell K of --list (e.g. $SLURM_ARRAY_TASK_ID)")  # fmt: skip
    parser.add_argument("--fresh-processes", action="store_true",
                        help="run each cell's fit and test as fresh `python -m rnn_prune` processes instead of "
                             "in one long-lived worker per slot (slower: each pays the imports; for "
                             "debugging, or extensions that keep state in module globals)")  # fmt: skip
    parser.add_argument("--list", action="store_true", help="print the cells with their index and status, run none")
    parser.add_argument("--report-only", action="store_true",
                        help="only rebuild study.csv, analysis.json, summary.md and figures "
                             "from OUT/runs/*/result.json")  # fmt: skip
    return parser


def _report(out: Path, errors: list[str]) -> int:
    """Rebuild the outputs from ``out``'s finished cells; the exit code (1 when nothing to report or a cell failed)."""
    try:
        for path in build_outputs(out):
            print(path)
    except ValueError as err:
        log.error("%s", err)
        return 1
    if errors:
        log.error("%d cell(s) failed (rerun the same command to retry them): %s", len(errors), "; ".join(errors))
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the study; exit code 0, 1 when a cell failed, 2 for bad arguments, 143/130 when SIGTERM/SIGINT
    stopped it (its cells stopped too, their ``last.ckpt`` kept for the rerun)."""
    parser = _parser()
    args, overrides = parser.parse_known_args(argv)
    if overrides and not overrides[0].startswith("--"):
        parser.error(f"unrecognised argument {overrides[0]!r}: fit overrides are --key value pairs")
    for flag, value in (("--parallel", args.parallel), ("--threads-per-cell", args.threads_per_cell),
                        ("--cells-per-gpu", args.cells_per_gpu)):  # fmt: skip
        if value < 1:
            parser.error(f"{flag} {value}: must be at least 1")
    if args.cell_index is not None and args.cell_index < 0:
        parser.error(f"--cell-index {args.cell_index}: must be at least 0 (see --list)")
    if bad := [seed for seed in args.seeds if not 0 <= seed <= MAX_SEED]:
        parser.error(f"--seeds {' '.join(map(str, bad))}: seed_everything takes 0 to {MAX_SEED}")
    if not args.report_only and (args.config is None or args.sparsity is None):
        parser.error("--config and --sparsity are required (only --report-only rebuilds from OUT alone)")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("study: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        if args.report_only:  # from OUT alone: the config's callbacks (Lightning classes) are not read
            return _report(args.out, [])
        try:
            cells = build_grid(args.config, args.sparsity, args.criterion, args.guard, args.seeds)
            if args.list:  # only folder names: nothing written, and the callbacks (Lightning) not imported
                if not Path(args.config).is_file():
                    raise ValueError(f"--config {args.config}: no such file")
                study = Study(Path(args.config), args.out, overrides)
            else:
                study = Study.prepare(args.config, args.out, overrides)
        except ValueError as err:
            parser.error(str(err))
        if args.cell_index is not None and not 0 <= args.cell_index < len(cells):
            parser.error(f"--cell-index {args.cell_index}: the grid has cells 0 to {len(cells) - 1} (see --list)")
        if args.list:
            for index, cell in enumerate(cells):
                print(f"{index}\t{cell_status(study.cell_dir(cell))}\t{cell.name}")
            return 0
        if study.schedule_note:
            log.info("%s", study.schedule_note)
        chosen = cells if args.cell_index is None else [cells[args.cell_index]]
        errors: list[str] = []
        gpus = visible_gpus()
        try:
            slots = slot_environments(args.parallel, gpus=gpus, threads=args.threads_per_cell,
                                      cells_per_gpu=args.cells_per_gpu)  # fmt: skip
        except ValueError as err:
            parser.error(str(err))
        record_invocation(args.out, list(sys.argv[1:] if argv is None else argv), config=study.config,
                          overrides=overrides, threads_per_cell=args.threads_per_cell,
                          cells_per_gpu=args.cells_per_gpu,
                          devices=[gpu_name(g) or g for g in gpus] if gpus else [cpu_name()])  # fmt: skip
        start = time.monotonic()
        try:
            errors = study.run(chosen, slots=slots, fresh_processes=args.fresh_processes)
        except KeyboardInterrupt as stop:  # the cells were stopped (their last.ckpt kept): resumable
            signum = stop.signum if isinstance(stop, StudyInterrupted) else signal.SIGINT
            log.error("stopped by %s; rerun the same command to resume", signal.Signals(signum).name)
            return 128 + int(signum)
        log.info("ran the grid's unfinished cells in %.0f s", time.monotonic() - start)
        return _report(args.out, errors)
    finally:
        log.removeHandler(handler)
