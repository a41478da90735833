"""rnn-prune: prune recurrent networks on a schedule and measure whether their layers stay expanders."""

__version__ = "0.1.0"
