"""``name:key=value,key=value``: a criterion or guard named with its arguments in one string.

The form the CLI's ``--criterion`` / ``--guard``, the study's grid and YAML's short names share, so
that two settings of one criterion (``clustered:mixing=0`` and ``clustered:mixing=0.5``) are two
values of one flag. No torch here: the study's grid reads specs before any fit starts.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from typing import Any

import yaml

__all__ = ["format_spec", "parse_spec", "spec_args", "spec_label"]

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """Split ``name:key=value,key=value`` into the name and its arguments (values read as YAML scalars).

    The name is a built-in name or a class path (dotted: ``pkg.module.Class``, not ``pkg.module:Class``).

    >>> parse_spec("clustered:mixing=0.25,blocks=4")
    ('clustered', {'mixing': 0.25, 'blocks': 4})
    >>> parse_spec("rewired:source=random")
    ('rewired', {'source': 'random'})
    >>> parse_spec("magnitude")
    ('magnitude', {})
    """
    name, separator, rest = spec.partition(":")
    args: dict[str, Any] = {}
    if not separator:
        return name, args
    for item in rest.split(","):
        key, equals, text = (part.strip() for part in item.partition("="))
        if not equals or not _KEY.fullmatch(key) or not text:
            raise ValueError(f"{spec!r}: {item!r} is not key=value (write name:key=value,key=value)")
        if key in args:
            raise ValueError(f"{spec!r}: {key} given twice")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            value = text
        if isinstance(value, str):  # YAML 1.1 reads ``1e-1`` as text: a number is a number
            with contextlib.suppress(ValueError):
                value = float(text)
        if isinstance(value, list | dict):
            raise ValueError(f"{spec!r}: {key}={text} must be a single value")
        args[key] = value
    return name.strip(), args


def format_spec(name: str, args: Mapping[str, Any]) -> str:
    """The canonical ``name:key=value,...`` spelling (keys sorted), so equal specs compare equal.

    >>> format_spec("clustered", {"mixing": 0.5, "blocks": 4})
    'clustered:blocks=4,mixing=0.5'
    >>> format_spec(*parse_spec("clustered:mixing=.50")), format_spec("random", {})
    ('clustered:mixing=0.5', 'random')
    """
    if not args:
        return name
    return name + ":" + ",".join(f"{key}={_text(args[key])}" for key in sorted(args))


def _text(value: Any) -> str:
    """A scalar as YAML writes it (``0.5``, ``true``, ``random``), so that it parses back to itself;
    a whole float as an integer, so that ``mixing=1`` and ``mixing=1.0`` are one cell.

    >>> _text(1.0), _text(1), _text(1e-1), _text(True), _text("random")
    ('1', '1', '0.1', 'true', 'random')
    """
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return yaml.safe_dump(value, default_flow_style=True).removesuffix("\n...\n").strip()


def spec_args(spec: str) -> str | None:
    """The arguments part of a spec in canonical form, ``None`` when it has none.

    >>> spec_args("clustered:mixing=0.5,blocks=4"), spec_args("random")
    ('blocks=4,mixing=0.5', None)
    """
    name, args = parse_spec(spec)
    return format_spec(name, args).partition(":")[2] or None


def spec_label(spec: str) -> str:
    """A short, path-safe label: the name's last dotted part, then ``_key=value`` per argument.

    >>> spec_label("my.pkg.TopK"), spec_label("clustered:mixing=0.25,blocks=4")
    ('TopK', 'clustered_blocks=4_mixing=0.25')
    >>> spec_label("rewired:source=clustered:mixing=0")  # a nested spec: no ':' in a folder name
    'rewired_source=clustered-mixing=0'
    """
    name, args = parse_spec(spec)
    parts = [name.rsplit(".", 1)[-1], *(f"{key}={_text(args[key])}" for key in sorted(args))]
    return "_".join(parts).replace("/", "-").replace(":", "-")
