"""rnn-prune: prune recurrent networks on a schedule and measure whether their layers stay expanders."""

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # `rnn_prune.load_exported` without importing torch / safetensors for `import rnn_prune`
    if name == "load_exported":
        from rnn_prune.export import load_exported

        return load_exported
    raise AttributeError(f"module 'rnn_prune' has no attribute {name!r}")
