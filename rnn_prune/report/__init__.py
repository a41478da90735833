"""The pruning report: read what runs logged, write figures and a Markdown summary.

    python -m rnn_prune.report runs/quickstart runs/quickstart_guarded --out report/

Each ``RUN_DIR`` is one training. Its metrics come from Lightning's CSVLogger (``metrics.csv``
anywhere under the directory) or from W&B offline runs under it (read with
:mod:`rnn_prune.wandb_offline`, no server needed). :mod:`~rnn_prune.report.runs` sorts out what a
directory holds: the sessions of a resumed training are merged into one history, evaluation runs
(``test --ckpt_path …``) give the ``test acc``, runs with no history (failed starts) are skipped
and named. Every training becomes one table with a row per epoch (:class:`RunData`).

The figures (:mod:`~rnn_prune.report.plots`; PNG, drawn without pyplot so the caller's backend is
untouched) and the summary (:mod:`~rnn_prune.report.summary`):

- ``accuracy_vs_sparsity.png``: ``val/acc`` against ``prune/sparsity``, a line per pruned run;
- ``delta_r_vs_sparsity.png`` / ``normalized_gap_vs_sparsity.png``: ``graph/<graph>/delta_r`` /
  ``normalized_gap`` of every graph against sparsity, a panel per pruned run, a line at 0 and a
  marker where a graph lost the Ramanujan property (its logged ``is_ramanujan`` went from 1 to 0);
- ``guarded_vs_unguarded.png``: accuracy and Ramanujan share, guarded runs (``prune/guarded`` or a
  ``prune/<graph>/stopped_epoch``) beside unguarded ones, only when both kinds are given;
- ``accuracy_vs_snr.png``: final ``test/acc@<snr>dB`` against SNR, ``test/acc`` as "clean";
- ``summary.md``: :func:`summary_table` and links to the figures.

Never-pruned (dense) runs appear as reference lines in the pruned runs' panels. A figure whose
columns no run logged is skipped with a note (logger ``rnn_prune.report``, printed by the CLI); a
run without a training history or without ``val/acc`` is an error (exit code 2).

Other tools (``python -m rnn_prune.study``) reuse :func:`load_run`, :class:`RunData` and the
drawing helpers of :mod:`rnn_prune.report.plots` (:func:`~rnn_prune.report.plots.plot_vs_density`,
:func:`~rnn_prune.report.plots.set_density_axis`, ...).
Importing this package loads matplotlib: import it where figures are drawn, not at module level
of a callback.
"""

from rnn_prune.report.runs import ReportError, RunData, load_run
from rnn_prune.report.summary import main, make_figures, summary_table

__all__ = ["ReportError", "RunData", "load_run", "main", "make_figures", "summary_table"]
