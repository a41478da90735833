"""Read and rewrite entries of a LightningCLI config (YAML dicts or jsonargparse Namespaces).

The CLI (``--sparsity``) and the study (a schedule that must end inside ``max_epochs``) both find
the ScheduledPruning entries of a config and change their schedule before anything is built. This
module does it once, for both: it finds the entries by class (a subclass counts), instantiates
the schedule the entry names, lets the schedule change itself (:meth:`Schedule.with_target`,
:meth:`Schedule.ending_by`) and writes the result back as ``class_path`` / ``init_args``. It knows no
schedule's argument names.
"""

from __future__ import annotations

import pkgutil
from collections.abc import Callable, Iterator
from typing import Any

from rnn_prune.schedules import ConstantSchedule, Schedule, as_schedule

__all__ = ["is_scheduled_pruning", "names_subclass", "pruning_entries", "rewrite_schedules"]


def names_subclass(class_path: Any, base: type) -> bool:
    """Whether a config entry's ``class_path`` names ``base`` or a subclass (by type, not by name)."""
    try:
        resolved = pkgutil.resolve_name(str(class_path))
    except (ImportError, AttributeError, ValueError):
        return False
    return isinstance(resolved, type) and issubclass(resolved, base)


SCHEDULED_PRUNING_PATHS = ("callbacks.ScheduledPruning", "callbacks.pruning.ScheduledPruning")
"""The built-in callback's own ``class_path`` spellings: recognised without importing Lightning, so
the study's ``--list`` needs no training stack (a subclass is imported to check it)."""


def is_scheduled_pruning(entry: Any) -> bool:
    """Whether a ``trainer.callbacks`` entry (with a ``class_path``) is ScheduledPruning or a subclass."""
    if not hasattr(entry, "get"):
        return False
    if str(entry.get("class_path", "")) in SCHEDULED_PRUNING_PATHS:
        return True
    from callbacks.pruning import ScheduledPruning  # callbacks sit beside the package; import when needed

    return names_subclass(entry.get("class_path", ""), ScheduledPruning)


def pruning_entries(callbacks: Any) -> Iterator[Any]:
    """The ScheduledPruning entries of a config's ``trainer.callbacks`` (a list, one entry, or None)."""
    entries = [] if callbacks is None else callbacks if isinstance(callbacks, list) else [callbacks]
    return (entry for entry in entries if is_scheduled_pruning(entry))


def _plain(value: Any) -> Any:
    """A Namespace (jsonargparse) as a plain dict; anything else unchanged."""
    return value.as_dict() if hasattr(value, "as_dict") else value


def load_schedule(value: Any) -> Schedule:
    """The schedule a config entry's ``schedule`` value describes (a float, or ``class_path`` + ``init_args``)."""
    value = _plain(value)
    if value is None or isinstance(value, int | float):
        return as_schedule(0.5 if value is None else value)  # ScheduledPruning's default
    if not isinstance(value, dict) or "class_path" not in value:
        raise ValueError(f"schedule={value!r} must be a sparsity or a class_path with init_args")
    try:
        cls = pkgutil.resolve_name(str(value["class_path"]))
    except (ImportError, AttributeError, ValueError) as error:
        raise ValueError(f"schedule class_path {value['class_path']!r} cannot be imported: {error}") from error
    if not (isinstance(cls, type) and issubclass(cls, Schedule)):
        raise ValueError(f"schedule class_path {value['class_path']!r} is not a rnn_prune.schedules.Schedule")
    return cls(**(value.get("init_args") or {}))


def _write_schedule(entry_args: Any, old: Any, schedule: Schedule) -> None:
    """Write ``schedule`` into ``entry_args["schedule"]``, keeping a float a float and a Namespace a Namespace."""
    if old is None or isinstance(_plain(old), int | float):
        if type(schedule) is ConstantSchedule and schedule.starts_at() == 0:
            entry_args["schedule"] = schedule.init_args()["sparsity"]
            return
        entry_args["schedule"] = {"class_path": _class_path(schedule), "init_args": schedule.init_args()}
        return
    if pkgutil.resolve_name(str(old["class_path"])) is not type(schedule):
        old["class_path"] = _class_path(schedule)
    args = old.get("init_args")
    if args is None:
        old["init_args"] = args = {}
    for key in list(_plain(args)):
        if key not in schedule.init_args():
            del args[key]
    for key, value in schedule.init_args().items():
        args[key] = value


def _class_path(schedule: Schedule) -> str:
    return f"{type(schedule).__module__}.{type(schedule).__qualname__}"


def rewrite_schedules(callbacks: Any, change: Callable[[Schedule], Schedule]) -> list[tuple[Schedule, Schedule]]:
    """Replace the schedule of every ScheduledPruning entry by ``change(schedule)``, in place.

    Returns ``(before, after)`` per entry (the same object twice where nothing changed). A
    schedule that cannot make the change raises ``ValueError`` or ``NotImplementedError`` with
    its own sentence.
    """
    changed = []
    for entry in pruning_entries(callbacks):
        args = entry.get("init_args")
        if args is None:
            entry["init_args"] = args = {}
        old = args.get("schedule")
        before = load_schedule(old)
        after = change(before)
        if after is not before:
            _write_schedule(args, old, after)
        changed.append((before, after))
    return changed
