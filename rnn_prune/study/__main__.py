"""``python -m rnn_prune.study``: see :mod:`rnn_prune.study.command`."""

from rnn_prune.study.command import main

if __name__ == "__main__":
    raise SystemExit(main())
