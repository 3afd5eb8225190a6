"""Timer events and schedules: when a one-shot, recurring or daily wall-clock timer fires next.

These are the clock-independent parts of the timers used by :mod:`propdesk.core.clock`. All times are UTC
nanoseconds (int). A *schedule* answers two questions: its first firing (computed when the timer is set) and, given
the scheduled time of a firing, the next one (``None`` when the timer is finished).

Daily wall-clock times are converted with :mod:`zoneinfo` (IANA tz database, the ``tzdata`` package), so DST changes
are handled by data. Local times that do not exist or occur twice follow PEP 495 with ``fold=0``
(https://peps.python.org/pep-0495/):

* a time in the spring-forward gap (e.g. 02:30 America/Chicago on 2026-03-08) is read with the UTC offset in force
  *before* the change, so it fires one gap-length later on the wall clock (02:30 CST = 08:30 UTC = 03:30 CDT);
* a time in the fall-back overlap (e.g. 01:30 America/Chicago on 2025-11-02) fires once, at its *first*
  occurrence (01:30 CDT = 06:30 UTC).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from propdesk.core.errors import TimerError
from propdesk.core.timefmt import datetime_to_ns, ns_to_datetime

__all__ = [
    "DailySchedule",
    "DayPredicate",
    "IntervalSchedule",
    "OneShotSchedule",
    "Schedule",
    "TimeEvent",
    "TimeEventCallback",
    "local_time_to_ns",
    "next_daily_ns",
    "ns_to_utc_datetime",
]

logger = logging.getLogger(__name__)

_ONE_DAY: Final = timedelta(days=1)
MAX_DAY_SEARCH: Final = 400
"""How many local days a daily timer looks ahead for a day its predicate accepts before giving up."""


@dataclass(frozen=True, slots=True)
class TimeEvent:
    """Passed to a timer's callback when it fires.

    Attributes:
        name: the timer's name.
        ts_event_ns: the scheduled firing time, UTC ns.
        ts_init_ns: the clock's time when the event was created, UTC ns (equal to ``ts_event_ns`` on a
            :class:`~propdesk.core.clock.SimClock` except for past alerts; a little later on a
            :class:`~propdesk.core.clock.LiveClock`).
    """

    name: str
    ts_event_ns: int
    ts_init_ns: int


TimeEventCallback = Callable[[TimeEvent], None]
"""A timer callback: called with the :class:`TimeEvent`, returns nothing."""

DayPredicate = Callable[[date], bool]
"""Accepts or rejects a local calendar date (e.g. "is a trading day")."""


ns_to_utc_datetime = ns_to_datetime
"""UTC nanoseconds to an aware UTC :class:`datetime` (truncated to microseconds)."""

_datetime_to_ns = datetime_to_ns


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise TimerError(f"unknown time zone {tz!r} (expected an IANA name such as 'America/Chicago')") from exc


def local_time_to_ns(day: date, local_time: time, zone: ZoneInfo) -> int:
    """The UTC ns of wall-clock ``local_time`` on ``day`` in ``zone``.

    Non-existent and ambiguous local times follow PEP 495 ``fold=0`` (see the module docstring).
    """
    local = datetime.combine(day, local_time.replace(fold=0), tzinfo=zone)
    return _datetime_to_ns(local.astimezone(UTC))


def next_daily_ns(
    after_ns: int,
    local_time: time,
    tz: str | ZoneInfo,
    days: DayPredicate | None = None,
    *,
    max_days: int = MAX_DAY_SEARCH,
) -> int | None:
    """The first instant strictly after ``after_ns`` when the wall clock in ``tz`` shows ``local_time`` on a
    local date that ``days`` accepts (every date when ``days`` is ``None``).

    Args:
        after_ns: UTC ns; the result is strictly greater.
        local_time: a naive wall-clock time (its ``fold`` is ignored).
        tz: an IANA zone name or a :class:`ZoneInfo`.
        days: predicate over local dates; called at most ``max_days + 2`` times.
        max_days: how many local dates to look ahead.

    Returns:
        UTC ns, or ``None`` if no accepted date lies within ``max_days`` days.

    Raises:
        TimerError: unknown zone, or ``local_time`` is timezone-aware.
    """
    if local_time.tzinfo is not None:
        raise TimerError(f"local_time must be a naive wall-clock time, got {local_time!r} with a tzinfo")
    zone = tz if isinstance(tz, ZoneInfo) else _zone(tz)
    # Start one day early: a gap time shifted forward could land after local midnight of the next date.
    day = ns_to_utc_datetime(after_ns).astimezone(zone).date() - _ONE_DAY
    for _ in range(max_days + 2):
        if days is None or days(day):
            ts = local_time_to_ns(day, local_time, zone)
            if ts > after_ns:
                return ts
        day += _ONE_DAY
    return None


class Schedule:
    """When a timer fires: ``first_ns`` and :meth:`next_after`. Subclasses define the rule."""

    __slots__ = ("first_ns",)

    def __init__(self, first_ns: int) -> None:
        self.first_ns = first_ns

    def next_after(self, fired_ns: int) -> int | None:
        """The firing after the one scheduled at ``fired_ns`` (UTC ns), or ``None`` if the timer is finished."""
        raise NotImplementedError

    def describe(self) -> str:
        """A short human-readable description of the rule."""
        raise NotImplementedError


class OneShotSchedule(Schedule):
    """Fires once at ``alert_ns`` (UTC ns).

    Raises:
        TimerError: ``alert_ns`` is before ``now_ns`` and ``allow_past`` is false.
    """

    __slots__ = ()

    def __init__(self, alert_ns: int, now_ns: int, *, allow_past: bool = False) -> None:
        if alert_ns < now_ns and not allow_past:
            raise TimerError(f"time alert at {alert_ns} ns is before the clock's time {now_ns} ns")
        super().__init__(int(alert_ns))

    def next_after(self, fired_ns: int) -> int | None:
        return None

    def describe(self) -> str:
        return f"once at {self.first_ns} ns"


class IntervalSchedule(Schedule):
    """Fires at ``start_ns + k * interval_ns`` for k = 1, 2, ..., up to and including ``stop_ns``.

    ``start_ns`` defaults to ``now_ns``. If ``start_ns`` is in the past, firings before ``now_ns`` are skipped: the
    first is the earliest ``start_ns + k * interval_ns >= now_ns`` (k >= 1).

    Raises:
        TimerError: ``interval_ns <= 0``, or ``stop_ns`` is before the first firing (the timer would never fire).
    """

    __slots__ = ("interval_ns", "start_ns", "stop_ns")

    def __init__(self, interval_ns: int, now_ns: int, start_ns: int | None = None, stop_ns: int | None = None):
        if interval_ns <= 0:
            raise TimerError(f"timer interval must be > 0 ns, got {interval_ns}")
        start = now_ns if start_ns is None else int(start_ns)
        k = max(1, -(-(now_ns - start) // interval_ns))  # exact integer ceil
        first = start + k * interval_ns
        if stop_ns is not None and stop_ns < first:
            raise TimerError(f"timer stop {stop_ns} ns is before its first firing at {first} ns")
        super().__init__(first)
        self.interval_ns = int(interval_ns)
        self.start_ns = start
        self.stop_ns = stop_ns

    def next_after(self, fired_ns: int) -> int | None:
        nxt = fired_ns + self.interval_ns
        if self.stop_ns is not None and nxt > self.stop_ns:
            return None
        return nxt

    def describe(self) -> str:
        stop = "" if self.stop_ns is None else f" until {self.stop_ns} ns"
        return f"every {self.interval_ns} ns from {self.start_ns} ns{stop}"


class DailySchedule(Schedule):
    """Fires at wall-clock ``local_time`` in zone ``tz`` on each local date ``days`` accepts (DST-correct).

    The first firing is the earliest such instant at or after ``now_ns``. Non-existent and ambiguous local times
    follow PEP 495 ``fold=0`` (module docstring): the timer fires exactly once per accepted date.

    Raises:
        TimerError: unknown zone, aware ``local_time``, or no accepted date within :data:`MAX_DAY_SEARCH` days.
    """

    __slots__ = ("days", "local_time", "tz", "zone")

    def __init__(self, local_time: time, tz: str, now_ns: int, days: DayPredicate | None = None) -> None:
        zone = _zone(tz)
        first = next_daily_ns(now_ns - 1, local_time, zone, days)
        if first is None:
            raise TimerError(
                f"daily timer at {local_time} {tz}: no day within {MAX_DAY_SEARCH} days is accepted by {days!r}"
            )
        super().__init__(first)
        self.local_time = local_time
        self.tz = tz
        self.zone = zone
        self.days = days

    def next_after(self, fired_ns: int) -> int | None:
        nxt = next_daily_ns(fired_ns, self.local_time, self.zone, self.days)
        if nxt is None:
            logger.warning(
                "daily timer at %s %s ends: no accepted day within %d days after %d ns",
                self.local_time,
                self.tz,
                MAX_DAY_SEARCH,
                fired_ns,
            )
        return nxt

    def describe(self) -> str:
        return f"daily at {self.local_time} {self.tz}"
