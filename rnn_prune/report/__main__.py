"""``python -m rnn_prune.report RUN_DIR [RUN_DIR ...] --out DIR``: see :mod:`rnn_prune.report`."""

from rnn_prune.report.summary import main

if __name__ == "__main__":
    raise SystemExit(main())
