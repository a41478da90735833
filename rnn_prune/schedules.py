"""Pruning schedules: the *cumulative* target sparsity as a function of training time.

Time is measured in epochs and may be fractional (``epoch + batch / batches_per_epoch``) so the
same schedule serves pruning once per epoch and every N steps. A schedule only states where the
model should be; :mod:`callbacks.pruning` turns the target into the step to take.

Select one in YAML by ``class_path`` (a bare float means :class:`ConstantSchedule`)::

    schedule:
      class_path: rnn_prune.schedules.CubicSchedule
      init_args: {final_sparsity: 0.9, start_epoch: 1, end_epoch: 10}

A schedule owns its knobs: the CLI's ``--sparsity`` calls :meth:`Schedule.with_target`, the study
makes a schedule end inside ``max_epochs`` with :meth:`Schedule.ending_by`, the pruning callback
asks :meth:`Schedule.starts_at`; none of them knows a schedule's argument names. A schedule of your
own with other arguments works with all three once it implements those methods.
"""

from __future__ import annotations

import inspect
import math
from abc import ABC, abstractmethod
from typing import Any


def _check_sparsity(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and 0.0 <= value < 1.0):
        raise ValueError(f"{name}={value!r} must lie in [0, 1)")


def _check_epoch(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and value >= 0):
        raise ValueError(f"{name}={value!r} must be a non-negative epoch")


class Schedule(ABC):
    """Cumulative target sparsity over time (in epochs), and the knobs callers may turn.

    Only :meth:`target` is required. The others have defaults that are right for a schedule that
    starts at 0 and has no end; a schedule with a start, an end or a target overrides them.
    """

    @abstractmethod
    def target(self, epoch: float) -> float:
        """Share of the chosen weights that should be pruned at time ``epoch``."""

    def starts_at(self) -> float:
        """The first epoch whose target may be above 0 (a rewind point must not come after it)."""
        return 0.0

    def ends_at(self) -> float | None:
        """The epoch from which the target no longer changes; ``None`` when it never stops."""
        return None

    def with_target(self, sparsity: float) -> Schedule:
        """This schedule, ending at ``sparsity`` instead (the CLI's ``--sparsity``)."""
        raise NotImplementedError(
            f"{type(self).__name__} does not say how to change its target sparsity: implement "
            "Schedule.with_target to use it with --sparsity or the study"
        )

    def ending_by(self, epoch: float) -> Schedule:
        """This schedule, reaching its target by ``epoch`` (itself when it already does).

        Raises:
            ValueError: it cannot end that early (it starts too late).
        """
        end = self.ends_at()
        if end is None or end <= epoch:
            return self
        raise NotImplementedError(
            f"{type(self).__name__} ends at epoch {end:g}, after {epoch:g}, and does not say how to end "
            "earlier: implement Schedule.ending_by"
        )

    def init_args(self) -> dict[str, Any]:
        """The constructor's arguments, read back from attributes of the same names (as
        scikit-learn's ``get_params``): how a changed schedule is written back into a config."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        missing = [name for name in names if not hasattr(self, name)]
        if missing:
            raise NotImplementedError(
                f"{type(self).__name__} keeps no attribute for its arguments {missing}: store them under "
                "their own names or implement Schedule.init_args"
            )
        return {name: getattr(self, name) for name in names}

    def _replace(self, **changes: Any) -> Schedule:
        return type(self)(**(self.init_args() | changes))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class ConstantSchedule(Schedule):
    """Prune to ``sparsity`` at ``start_epoch`` and hold it.

    >>> ConstantSchedule(0.5).target(0)
    0.5
    """

    def __init__(self, sparsity: float, start_epoch: float = 0) -> None:
        _check_sparsity("sparsity", sparsity)
        _check_epoch("start_epoch", start_epoch)
        self.sparsity = float(sparsity)
        self.start_epoch = start_epoch

    def target(self, epoch: float) -> float:
        return self.sparsity if epoch >= self.start_epoch else 0.0

    def starts_at(self) -> float:
        return float(self.start_epoch)

    def ends_at(self) -> float:
        return float(self.start_epoch)

    def with_target(self, sparsity: float) -> Schedule:
        """
        >>> ConstantSchedule(0.5, start_epoch=2).with_target(0.9)
        ConstantSchedule(sparsity=0.9, start_epoch=2)
        """
        return self._replace(sparsity=sparsity)

    def ending_by(self, epoch: float) -> Schedule:
        """Prune at ``epoch`` instead when that is earlier.

        >>> OneShotSchedule(0.8, epoch=9).ending_by(5)
        OneShotSchedule(sparsity=0.8, start_epoch=5)
        """
        _check_epoch("epoch", epoch)
        return self if self.start_epoch <= epoch else self._moved_to(epoch)

    def _moved_to(self, epoch: float) -> Schedule:
        return self._replace(start_epoch=epoch)


class OneShotSchedule(ConstantSchedule):
    """Prune once, at ``epoch``, straight to ``sparsity`` (then fine-tune).

    >>> s = OneShotSchedule(0.8, epoch=3)
    >>> [s.target(e) for e in (2, 3, 9)]
    [0.0, 0.8, 0.8]
    """

    def __init__(self, sparsity: float, epoch: float = 0) -> None:
        super().__init__(sparsity, start_epoch=epoch)

    @property
    def epoch(self) -> float:
        """The pruning epoch (the constructor's ``epoch``)."""
        return self.start_epoch

    def _moved_to(self, epoch: float) -> Schedule:
        return self._replace(epoch=epoch)


class _RampSchedule(Schedule):
    """Shared argument checks of the schedules that ramp from ``initial`` to ``final``."""

    def __init__(
        self, final_sparsity: float, start_epoch: float = 0, end_epoch: float = 10, initial_sparsity: float = 0.0
    ) -> None:
        _check_sparsity("final_sparsity", final_sparsity)
        _check_sparsity("initial_sparsity", initial_sparsity)
        _check_epoch("start_epoch", start_epoch)
        _check_epoch("end_epoch", end_epoch)
        if end_epoch <= start_epoch:
            raise ValueError(f"end_epoch={end_epoch!r} must be after start_epoch={start_epoch!r}")
        if initial_sparsity > final_sparsity:
            raise ValueError(f"initial_sparsity={initial_sparsity!r} exceeds final_sparsity={final_sparsity!r}")
        self.final_sparsity = float(final_sparsity)
        self.initial_sparsity = float(initial_sparsity)
        self.start_epoch = start_epoch
        self.end_epoch = end_epoch

    def starts_at(self) -> float:
        return float(self.start_epoch)

    def ends_at(self) -> float:
        return float(self.end_epoch)

    def with_target(self, sparsity: float) -> Schedule:
        """The same ramp to ``sparsity`` (its initial sparsity capped there).

        >>> CubicSchedule(0.9, start_epoch=1, end_epoch=10).with_target(0.5)
        CubicSchedule(final_sparsity=0.5, initial_sparsity=0.0, start_epoch=1, end_epoch=10)
        """
        _check_sparsity("sparsity", sparsity)
        return self._replace(final_sparsity=sparsity, initial_sparsity=min(self.initial_sparsity, sparsity))

    def ending_by(self, epoch: float) -> Schedule:
        """The ramp squeezed to end at ``epoch`` when it ends later.

        >>> LinearSchedule(0.8, start_epoch=1, end_epoch=10).ending_by(5).end_epoch
        5
        """
        if self.end_epoch <= epoch:
            return self
        if epoch <= self.start_epoch:
            raise ValueError(
                f"{type(self).__name__} ramps from start_epoch={self.start_epoch} to end_epoch={self.end_epoch} and "
                f"cannot end by epoch {epoch:g}: lower its start_epoch"
            )
        return self._replace(end_epoch=epoch)

    def _progress(self, epoch: float) -> float:
        return min(max((epoch - self.start_epoch) / (self.end_epoch - self.start_epoch), 0.0), 1.0)

    def target(self, epoch: float) -> float:
        if epoch < self.start_epoch:
            return 0.0
        s_i, s_f = self.initial_sparsity, self.final_sparsity
        return s_i + (s_f - s_i) * self._shape(self._progress(epoch))

    @abstractmethod
    def _shape(self, progress: float) -> float:
        """Fraction of the way from initial to final sparsity at ``progress`` ∈ [0, 1]."""


class LinearSchedule(_RampSchedule):
    """Sparsity grows linearly from ``initial_sparsity`` at ``start_epoch`` to ``final_sparsity``.

    >>> s = LinearSchedule(0.8, start_epoch=0, end_epoch=4)
    >>> [round(s.target(e), 3) for e in range(6)]
    [0.0, 0.2, 0.4, 0.6, 0.8, 0.8]
    """

    def _shape(self, progress: float) -> float:
        return progress


class CubicSchedule(_RampSchedule):
    """Gradual magnitude pruning (Zhu & Gupta 2017): prune fast early, slowly near the end.

    .. math:: s_t = s_f + (s_i - s_f)\\left(1 - \\frac{t - t_0}{n\\Delta t}\\right)^3,
              \\quad t_0 \\le t \\le t_0 + n\\Delta t

    with :math:`t_0` = ``start_epoch`` and :math:`t_0 + n\\Delta t` = ``end_epoch``.

    >>> s = CubicSchedule(0.9, start_epoch=0, end_epoch=3)
    >>> [round(s.target(e), 4) for e in range(5)]
    [0.0, 0.6333, 0.8667, 0.9, 0.9]
    """

    def _shape(self, progress: float) -> float:
        return 1.0 - (1.0 - progress) ** 3


class IterativeSchedule(Schedule):
    """Lottery-ticket style rounds: every ``every`` epochs remove ``rate`` of the remaining weights.

    After round k (the first at ``start_epoch``) the cumulative target is ``1 - (1 - rate)**k``,
    capped at ``final_sparsity`` and stopped after ``rounds`` rounds when given.

    >>> s = IterativeSchedule(0.2, every=2, start_epoch=1)
    >>> [round(s.target(e), 3) for e in range(6)]
    [0.0, 0.2, 0.2, 0.36, 0.36, 0.488]
    """

    def __init__(
        self,
        rate: float,
        every: int = 1,
        start_epoch: float = 0,
        rounds: int | None = None,
        final_sparsity: float | None = None,
    ) -> None:
        if not (isinstance(rate, int | float) and 0.0 < rate < 1.0):
            raise ValueError(f"rate={rate!r} must lie in (0, 1)")
        if not (isinstance(every, int) and every >= 1):
            raise ValueError(f"every={every!r} must be a positive number of epochs")
        _check_epoch("start_epoch", start_epoch)
        if rounds is not None and not (isinstance(rounds, int) and rounds >= 1):
            raise ValueError(f"rounds={rounds!r} must be a positive integer or null")
        if final_sparsity is not None:
            _check_sparsity("final_sparsity", final_sparsity)
        self.rate = float(rate)
        self.every = every
        self.start_epoch = start_epoch
        self.rounds = rounds
        self.final_sparsity = final_sparsity

    def rounds_done(self, epoch: float) -> int:
        if epoch < self.start_epoch:
            return 0
        done = int(math.floor((epoch - self.start_epoch) / self.every)) + 1
        return done if self.rounds is None else min(done, self.rounds)

    def target(self, epoch: float) -> float:
        sparsity = 1.0 - (1.0 - self.rate) ** self.rounds_done(epoch)
        return sparsity if self.final_sparsity is None else min(sparsity, self.final_sparsity)

    def starts_at(self) -> float:
        return float(self.start_epoch)

    def ends_at(self) -> float | None:
        """The epoch of the last round: ``rounds``, or the first that reaches ``final_sparsity``.

        >>> IterativeSchedule(0.5, every=2, start_epoch=1, final_sparsity=0.8).ends_at()  # 0.5, 0.75, 0.875
        5.0
        """
        needed = []
        if self.rounds is not None:
            needed.append(self.rounds)
        if self.final_sparsity is not None:
            needed.append(max(1, math.ceil(math.log1p(-self.final_sparsity) / math.log1p(-self.rate) - 1e-12)))
        if not needed:
            return None
        return float(self.start_epoch + (min(needed) - 1) * self.every)

    def with_target(self, sparsity: float) -> Schedule:
        """The same rounds, capped at ``sparsity`` (``rounds`` dropped, so the cap is reached).

        >>> IterativeSchedule(0.2, rounds=3).with_target(0.5).target(100)
        0.5
        """
        _check_sparsity("sparsity", sparsity)
        return self._replace(final_sparsity=sparsity, rounds=None)


def as_schedule(schedule: Schedule | float) -> Schedule:
    """A float means "prune to this sparsity from the start"."""
    if isinstance(schedule, Schedule):
        return schedule
    if isinstance(schedule, int | float) and not isinstance(schedule, bool):
        return ConstantSchedule(float(schedule))
    raise ValueError(f"schedule={schedule!r} must be a Schedule or a sparsity in [0, 1)")
