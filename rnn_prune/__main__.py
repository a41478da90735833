"""Entry point of ``python -m rnn_prune``: builds the LightningCLI and nothing else, except for
``export`` (no Trainer involved: :mod:`rnn_prune.export`, which does not import Lightning)."""

import sys

if __name__ == "__main__":
    if sys.argv[1:2] == ["export"]:
        from rnn_prune.export import console_main as export_main

        export_main(sys.argv[2:])
    else:
        from rnn_prune.cli import console_main

        console_main()
