"""Entry point of ``python -m rnn_prune``: builds the LightningCLI and nothing else."""

from rnn_prune.cli import console_main

if __name__ == "__main__":
    console_main()
