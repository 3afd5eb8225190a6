"""The firm's trading-day schedule on top of the exchange calendar: flat time, entry cutoff, and the timers that fire
the session roll, the entry cutoff and the flatten.

Rules (risk-rules.md section 2 and R11; Topstep, https://help.topstep.com/en/articles/8284206):

* ``flat_deadline(d, product)`` = min(15:10 CT, the product's own close, the early close) on trading date ``d``.
  A holiday session folded into ``d`` (e.g. Thanksgiving Thursday, halted 12:00 CT, trades carry Friday) has its own
  deadline at its halt: positions are not held through a market halt.
* ``flat_time`` = deadline - ``flat_buffer_min`` (default 5 min: 15:05 CT, before Topstep's 15:08 CT courtesy
  flatten); ``entry_cutoff`` = deadline - ``entry_cutoff_min`` (default 10 min).
* The daily reset (:class:`SessionRolled`) happens at the next trading date's start: 17:00 CT, Sunday 17:00 CT after
  a Friday, or the calendar's reopen after a closure. It never happens on a holiday (Thanksgiving Thursday 17:00 CT
  is inside Friday's trading date).

:class:`SessionTimers` drives these with one-shot clock alerts (no polling): after each firing it computes the next
instant from the calendar and re-arms, so weekends and holidays are skipped by data. Each boundary fires exactly
once, with ``ts_ns`` equal to the scheduled boundary (on a :class:`~propdesk.core.clock.LiveClock` the callback runs
a little later; ``tests/unit/risk/test_calendar.py`` prints the measured lateness).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, time
from typing import Final, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from propdesk.core import topics
from propdesk.core.clock import Clock
from propdesk.core.errors import ConfigError
from propdesk.core.timers import TimeEvent
from propdesk.model.calendar import EXCHANGE_TZ, CalendarError, TradingCalendar, chicago_local, local_ns

__all__ = [
    "EntryCutoffReached",
    "FirmSchedule",
    "FlatTimeReached",
    "FlatWindow",
    "SessionCalendar",
    "SessionRolled",
    "SessionTimers",
]

_MINUTE_NS: Final[int] = 60_000_000_000


class SessionCalendar(Protocol):
    """What :class:`SessionTimers` needs of a calendar for the session roll (:class:`TradingCalendar` has it)."""

    def trading_date(self, ts_ns: int) -> date:
        """The trading date of ``ts_ns``."""
        ...

    def next_trading_date(self, d: date) -> date:
        """The first trading date after ``d``."""
        ...

    def previous_trading_date(self, d: date) -> date:
        """The last trading date before ``d``."""
        ...

    def day_start_ns(self, d: date) -> int:
        """The start of trading date ``d``, UTC ns."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionRolled:
    """A trading date ended and the next one started (the daily reset, 17:00 CT or the calendar's reopen).

    Attributes:
        ended_trading_date: the trading date that ended.
        trading_date: the trading date that started.
        ts_ns: the boundary, UTC ns (the new trading date's start).
    """

    ended_trading_date: date
    trading_date: date
    ts_ns: int

    @property
    def topic(self) -> str:
        """The bus topic, ``events.session.rolled``."""
        return topics.SESSION_ROLLED


@dataclass(frozen=True, slots=True, kw_only=True)
class FlatTimeReached:
    """The firm's flat time for some products: flatten them now (R11).

    Attributes:
        trading_date: the trading date concerned.
        roots: the product roots whose flat time this is (empty for the default CME Globex hours).
        deadline_ns: the flat deadline (positions must be closed before it), UTC ns.
        ts_ns: the flat time (deadline - flat buffer), UTC ns.
    """

    trading_date: date
    roots: tuple[str, ...]
    deadline_ns: int
    ts_ns: int

    @property
    def topic(self) -> str:
        """The bus topic, ``events.session.flat_time``."""
        return topics.SESSION_FLAT_TIME


@dataclass(frozen=True, slots=True, kw_only=True)
class EntryCutoffReached:
    """No new opening orders for some products from now until the next session open (R11).

    Attributes: as :class:`FlatTimeReached`; ``ts_ns`` is the entry cutoff (deadline - entry cutoff minutes).
    """

    trading_date: date
    roots: tuple[str, ...]
    deadline_ns: int
    ts_ns: int

    @property
    def topic(self) -> str:
        """The bus topic, ``events.session.entry_cutoff``."""
        return topics.SESSION_ENTRY_CUTOFF


@dataclass(frozen=True, slots=True)
class FlatWindow:
    """One flat deadline within a trading date, and the instants derived from it (UTC ns).

    ``entry_cutoff_ns <= flat_time_ns <= deadline_ns <= reopen_ns``; ``reopen_ns`` is the next session open after
    the deadline (lockouts set at the flat time last until then).
    """

    trading_date: date
    entry_cutoff_ns: int
    flat_time_ns: int
    deadline_ns: int
    reopen_ns: int


class FirmSchedule:
    """The firm's flat time and entry cutoff on a :class:`TradingCalendar`.

    Args:
        calendar: the exchange calendar.
        flat_time: the firm's latest flat time, local (Topstep: 15:10 CT, https://help.topstep.com/en/articles/8284206).
        flat_buffer_min: minutes before the deadline at which propdesk flattens (default 5 -> 15:05 CT).
        entry_cutoff_min: minutes before the deadline from which opening orders are denied (default 10).
        tz: the zone of ``flat_time``.

    Raises:
        ConfigError: an aware ``flat_time``, a negative buffer or cutoff, or an unknown zone.
    """

    __slots__ = ("_buffer_ns", "_calendar", "_cutoff_ns", "_flat_time", "_tz")

    def __init__(
        self,
        calendar: TradingCalendar,
        flat_time: time = time(15, 10),
        flat_buffer_min: int = 5,
        entry_cutoff_min: int = 10,
        tz: str = EXCHANGE_TZ,
    ) -> None:
        if flat_time.tzinfo is not None:
            raise ConfigError(f"flat_time must be a naive local time, got {flat_time!r}")
        if flat_buffer_min < 0 or entry_cutoff_min < 0:
            raise ConfigError(
                f"flat_buffer_min and entry_cutoff_min must be >= 0, got {flat_buffer_min} and {entry_cutoff_min}"
            )
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"unknown time zone {tz!r}") from None
        self._calendar = calendar
        self._flat_time = flat_time
        self._buffer_ns = flat_buffer_min * _MINUTE_NS
        self._cutoff_ns = entry_cutoff_min * _MINUTE_NS
        self._tz = tz

    @property
    def calendar(self) -> TradingCalendar:
        """The exchange calendar."""
        return self._calendar

    def _deadline(self, close_ns: int) -> int:
        # 15:10 local on the calendar date of the close.
        close_day = _local_date(close_ns, self._tz)
        return min(close_ns, local_ns(close_day, self._flat_time, self._tz))

    def flat_deadline_ns(self, d: date, product: str | None = None) -> int:
        """min(flat time, the product's close, the early close) on trading date ``d``, UTC ns.

        Raises:
            CalendarError / CalendarCoverageError: ``d`` not a trading date or not covered; unknown product.
        """
        return self._deadline(self._calendar.session_close_ns(d, product))

    def flat_time_ns(self, d: date, product: str | None = None) -> int:
        """:meth:`flat_deadline_ns` minus the flat buffer, UTC ns. Raises as :meth:`flat_deadline_ns`."""
        return self.flat_deadline_ns(d, product) - self._buffer_ns

    def entry_cutoff_ns(self, d: date, product: str | None = None) -> int:
        """:meth:`flat_deadline_ns` minus the entry cutoff, UTC ns. Raises as :meth:`flat_deadline_ns`."""
        return self.flat_deadline_ns(d, product) - self._cutoff_ns

    def flat_windows(self, d: date, product: str | None = None) -> tuple[FlatWindow, ...]:
        """Every flat deadline of trading date ``d`` in order: one per holiday halt folded into ``d``, then the day's
        own (:meth:`flat_deadline_ns`). Raises as :meth:`flat_deadline_ns`.
        """
        out: list[FlatWindow] = []
        for close in self._calendar.session_closes_ns(d, product):
            deadline = self._deadline(close)
            out.append(
                FlatWindow(
                    trading_date=d,
                    entry_cutoff_ns=deadline - self._cutoff_ns,
                    flat_time_ns=deadline - self._buffer_ns,
                    deadline_ns=deadline,
                    reopen_ns=self._calendar.next_session_open_ns(deadline),
                )
            )
        return tuple(out)

    def _in_window(self, ts_ns: int, product: str | None, flat: bool) -> bool:
        # The window can belong to the trading date of ts or, after the 17:00 boundary of a Friday or an early
        # close, to the previous one (its lockout lasts until the next session open).
        cal = self._calendar
        d = cal.trading_date(ts_ns)
        days = [d]
        if d > cal.first_date:
            days.insert(0, cal.previous_trading_date(d))
        for day in days:
            for w in self.flat_windows(day, product):
                begin = w.flat_time_ns if flat else w.entry_cutoff_ns
                if begin <= ts_ns < w.reopen_ns:
                    return True
        return False

    def is_entry_blocked(self, ts_ns: int, product: str | None = None) -> bool:
        """True from an entry cutoff until the next session open (opening orders are denied; R11).

        Use it at start-up and on each order: :class:`SessionTimers` fires only future cutoffs.

        Raises:
            CalendarError / CalendarCoverageError: ``ts_ns`` not covered; unknown product.
        """
        return self._in_window(ts_ns, product, flat=False)

    def is_flat_required(self, ts_ns: int, product: str | None = None) -> bool:
        """True from a flat time until the next session open (positions must be closed; R11).

        Raises:
            CalendarError / CalendarCoverageError: ``ts_ns`` not covered; unknown product.
        """
        return self._in_window(ts_ns, product, flat=True)


def _local_date(ts_ns: int, tz: str) -> date:
    return chicago_local(ts_ns, tz).date()


RollHandler = Callable[[SessionRolled], None]
FlatHandler = Callable[[FlatTimeReached], None]
CutoffHandler = Callable[[EntryCutoffReached], None]
ErrorHandler = Callable[[CalendarError], None]


class SessionTimers:
    """One-shot clock alerts for the session roll, the flat time and the entry cutoff, re-armed after each firing.

    Args:
        clock: the node's clock (:class:`~propdesk.core.clock.SimClock` or :class:`~propdesk.core.clock.LiveClock`).
        calendar: where the session boundaries come from (any :class:`SessionCalendar`; a
            :class:`TradingCalendar` in production, a synthetic one in tests).
        schedule: the firm schedule (used for the flat and cutoff timers).
        on_roll: called with each :class:`SessionRolled`.
        on_flatten: called with each :class:`FlatTimeReached`; ``None`` = no flat timer.
        on_entry_cutoff: called with each :class:`EntryCutoffReached`; ``None`` = no cutoff timer.
        roots: the products to time flat and cutoff for; products with the same time are reported in one event.
            Empty = the default CME Globex hours (16:00 CT close).
        on_error: called when the calendar cannot give the next boundary (coverage ended): the timer of that kind
            stops and risk must go REDUCING. Without it the :class:`CalendarError` propagates (from :meth:`start`, or
            out of the clock's timer dispatch).
        name: prefix of the timer names (``<name>.roll``, ``<name>.flatten``, ``<name>.entry_cutoff``).

    Only future instants are armed: an instant equal to the clock's time at :meth:`start` fires, earlier ones do not
    (use :meth:`FirmSchedule.is_flat_required` / :meth:`FirmSchedule.is_entry_blocked` at start-up).
    """

    __slots__ = (
        "_calendar",
        "_clock",
        "_name",
        "_next",
        "_on_cutoff",
        "_on_error",
        "_on_flatten",
        "_on_roll",
        "_roots",
        "_schedule",
        "_started",
    )

    def __init__(
        self,
        clock: Clock,
        calendar: SessionCalendar,
        schedule: FirmSchedule | None,
        on_roll: RollHandler,
        *,
        on_flatten: FlatHandler | None = None,
        on_entry_cutoff: CutoffHandler | None = None,
        roots: Sequence[str] = (),
        on_error: ErrorHandler | None = None,
        name: str = "session",
    ) -> None:
        if (on_flatten is not None or on_entry_cutoff is not None) and schedule is None:
            raise ConfigError("SessionTimers: a flat or entry-cutoff handler needs a FirmSchedule")
        self._clock = clock
        self._calendar = calendar
        self._schedule = schedule
        self._on_roll = on_roll
        self._on_flatten = on_flatten
        self._on_cutoff = on_entry_cutoff
        self._roots: tuple[str, ...] = tuple(roots)
        self._on_error = on_error
        self._name = name
        self._next: dict[str, int] = {}
        self._started = False

    # ------------------------------------------------------------------ public

    def start(self) -> None:
        """Arm the timers for the next roll, flat time and entry cutoff at or after the clock's time.

        Raises:
            CalendarError: the calendar cannot give a boundary and no ``on_error`` was given.
            TimerError: already started (timer names in use).
        """
        after = self._clock.timestamp_ns() - 1
        self._started = True
        self._arm_roll(after)
        if self._on_flatten is not None:
            self._arm_flat("flatten", after)
        if self._on_cutoff is not None:
            self._arm_flat("entry_cutoff", after)

    def stop(self) -> None:
        """Cancel every pending timer."""
        for kind in list(self._next):
            self._clock.cancel_timer(f"{self._name}.{kind}")
        self._next.clear()
        self._started = False

    def next_ns(self, kind: str) -> int | None:
        """The next armed instant of ``kind`` (``roll``, ``flatten``, ``entry_cutoff``), UTC ns, or ``None``."""
        return self._next.get(kind)

    # ------------------------------------------------------------------ roll

    def _next_roll(self, after_ns: int) -> tuple[date, date, int]:
        cal = self._calendar
        d = cal.trading_date(after_ns)
        start = cal.day_start_ns(d)
        if start > after_ns:
            return cal.previous_trading_date(d), d, start
        nxt = cal.next_trading_date(d)
        return d, nxt, cal.day_start_ns(nxt)

    def _arm_roll(self, after_ns: int) -> None:
        try:
            ended, new, at = self._next_roll(after_ns)
        except CalendarError as exc:
            self._next.pop("roll", None)
            self._fail(exc)
            return

        def fire(event: TimeEvent) -> None:
            self._next.pop("roll", None)
            self._arm_roll(event.ts_event_ns)
            self._on_roll(SessionRolled(ended_trading_date=ended, trading_date=new, ts_ns=event.ts_event_ns))

        self._set("roll", at, fire)

    # ------------------------------------------------------------------ flat time and entry cutoff

    def _next_flat(self, kind: str, after_ns: int) -> tuple[date, tuple[str, ...], int, int]:
        assert self._schedule is not None
        cal = self._schedule.calendar
        products: tuple[str | None, ...] = self._roots or (None,)
        d = cal.trading_date(after_ns)
        for _ in range(3):
            found: dict[int, tuple[int, list[str]]] = {}
            for p in products:
                for w in self._schedule.flat_windows(d, p):
                    at = w.flat_time_ns if kind == "flatten" else w.entry_cutoff_ns
                    if at > after_ns:
                        entry = found.setdefault(at, (w.deadline_ns, []))
                        if p is not None:
                            entry[1].append(p)
                        break
            if found:
                at = min(found)
                deadline, roots = found[at]
                return d, tuple(roots), deadline, at
            d = cal.next_trading_date(d)
        raise CalendarError(f"no {kind} instant within three trading dates after {after_ns} ns")

    def _arm_flat(self, kind: str, after_ns: int) -> None:
        try:
            d, roots, deadline, at = self._next_flat(kind, after_ns)
        except CalendarError as exc:
            self._next.pop(kind, None)
            self._fail(exc)
            return

        def fire(event: TimeEvent) -> None:
            self._next.pop(kind, None)
            self._arm_flat(kind, event.ts_event_ns)
            if kind == "flatten":
                assert self._on_flatten is not None
                self._on_flatten(
                    FlatTimeReached(trading_date=d, roots=roots, deadline_ns=deadline, ts_ns=event.ts_event_ns)
                )
            else:
                assert self._on_cutoff is not None
                self._on_cutoff(
                    EntryCutoffReached(trading_date=d, roots=roots, deadline_ns=deadline, ts_ns=event.ts_event_ns)
                )

        self._set(kind, at, fire)

    # ------------------------------------------------------------------ internals

    def _set(self, kind: str, at_ns: int, callback: Callable[[TimeEvent], None]) -> None:
        if not self._started:
            return
        self._next[kind] = at_ns
        # allow_past: on a LiveClock the instant computed at start may have just passed; it still fires, once.
        self._clock.set_time_alert(f"{self._name}.{kind}", at_ns, callback, allow_past=True)

    def _fail(self, exc: CalendarError) -> None:
        if self._on_error is None:
            raise exc
        self._on_error(exc)
