"""Entry point of ``python -m rnn_prune``: builds the LightningCLI and nothing else."""

from rnn_prune.cli import main

if __name__ == "__main__":
    main()
