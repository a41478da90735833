"""``python -m rnn_prune.study``: a grid of pruning runs that answers whether accuracy follows expansion.

- :mod:`~rnn_prune.study.grid`: the cells (sparsity × criterion × guard × seed) and their names;
- :mod:`~rnn_prune.study.runner`: each cell as ``python -m rnn_prune fit`` then ``test`` commands,
  resumable, several at a time, run in one long-lived worker per slot
  (:mod:`~rnn_prune.study.worker`);
- :mod:`~rnn_prune.study.results`: a cell's ``result.json`` and ``study.csv``;
- :mod:`~rnn_prune.study.analysis`: the pre-specified test, ``analysis.json``;
- :mod:`~rnn_prune.study.provenance`: what each cell ran on, ``study.json``;
- :mod:`~rnn_prune.study.stats`: Spearman, rank partial correlation, break points (description);
- :mod:`~rnn_prune.study.figures` and :mod:`~rnn_prune.study.summary`: PNGs and ``summary.md``.
"""
