"""Clocks and timers: :class:`SimClock` for backtests and replays, :class:`LiveClock` for live trading.

Both implement :class:`Clock`: the time in UTC nanoseconds and named timers of three kinds:

* :meth:`Clock.set_time_alert`: one-shot, at an absolute time;
* :meth:`Clock.set_timer`: recurring, every ``interval_ns`` from a start time, optionally until a stop time;
* :meth:`Clock.set_daily_timer`: at a wall-clock time in a time zone on each accepted local date (e.g. 17:00
  America/Chicago on each trading day), DST-correct (rules in :mod:`propdesk.core.timers`).

A timer calls its callback with a :class:`TimeEvent`. Every scheduled firing is delivered exactly once, in time
order; ties (same ``ts_event_ns``) go in the order the timers were set. The next firing is scheduled *before* the
callback runs, so a callback that raises does not stop a recurring timer, and a callback may cancel its own timer
or set a new timer under the same name. An exception from a callback propagates: out of
:meth:`SimClock.advance_to`, or to the asyncio loop's exception handler (which logs it) for :class:`LiveClock`.

Design after NautilusTrader's ``TestClock`` / ``LiveClock`` (https://nautilustrader.io/docs/latest/concepts/),
written anew. Clocks are not thread-safe: use one from a single thread (the node's event-loop thread).
"""

from __future__ import annotations

import asyncio
import heapq
import time
from abc import ABC, abstractmethod
from datetime import datetime
from datetime import time as dt_time

from propdesk.core.errors import TimerError
from propdesk.core.timers import (
    DailySchedule,
    DayPredicate,
    IntervalSchedule,
    OneShotSchedule,
    Schedule,
    TimeEvent,
    TimeEventCallback,
    ns_to_utc_datetime,
)

__all__ = ["Clock", "LiveClock", "SimClock", "TimeEvent", "TimeEventCallback"]


class _Timer:
    __slots__ = ("active", "callback", "handle", "name", "next_ns", "order", "schedule")

    def __init__(self, name: str, callback: TimeEventCallback, schedule: Schedule, order: int) -> None:
        self.name = name
        self.callback = callback
        self.schedule = schedule
        self.next_ns = schedule.first_ns
        self.order = order
        self.active = True
        self.handle: asyncio.TimerHandle | None = None


class Clock(ABC):
    """The time (UTC ns) and named timers. Subclasses: :class:`SimClock`, :class:`LiveClock`.

    Timer names are unique among the clock's live timers; a one-shot timer's name is free again once it has
    fired (so its callback may re-arm it), a recurring timer's once it has fired its last event or been cancelled.
    """

    def __init__(self) -> None:
        self._timers: dict[str, _Timer] = {}
        self._order = 0

    # ------------------------------------------------------------------ time

    @abstractmethod
    def timestamp_ns(self) -> int:
        """The current time, UTC nanoseconds since the Unix epoch."""

    def utc_now(self) -> datetime:
        """The current time as an aware UTC :class:`datetime` (truncated to microseconds)."""
        return ns_to_utc_datetime(self.timestamp_ns())

    # ------------------------------------------------------------------ timers

    @property
    def timer_names(self) -> list[str]:
        """Names of the live timers, in the order they were set."""
        return list(self._timers)

    def next_time_ns(self, name: str) -> int:
        """The next scheduled firing of timer ``name``, UTC ns.

        Raises:
            TimerError: no live timer has that name.
        """
        timer = self._timers.get(name)
        if timer is None:
            raise TimerError(f"no timer named {name!r}")
        return timer.next_ns

    def set_time_alert(
        self, name: str, alert_ns: int, callback: TimeEventCallback, *, allow_past: bool = False
    ) -> None:
        """A one-shot timer firing at ``alert_ns`` (UTC ns; equal to the current time is allowed).

        With ``allow_past=True`` an alert in the past fires at the next opportunity, with
        ``ts_event_ns=alert_ns`` (and a later ``ts_init_ns``).

        Raises:
            TimerError: the name is empty or in use, or ``alert_ns`` is in the past and ``allow_past`` is false.
        """
        self._check_name(name)
        self._add(name, callback, OneShotSchedule(alert_ns, self.timestamp_ns(), allow_past=allow_past))

    def set_timer(
        self,
        name: str,
        interval_ns: int,
        callback: TimeEventCallback,
        start_ns: int | None = None,
        stop_ns: int | None = None,
    ) -> None:
        """A recurring timer firing at ``start_ns + k * interval_ns`` (k = 1, 2, ...) up to and including
        ``stop_ns`` (forever if ``None``). ``start_ns`` defaults to now; if it is in the past, firings before
        now are skipped (no catch-up burst at set time).

        Raises:
            TimerError: the name is empty or in use, ``interval_ns <= 0``, or ``stop_ns`` is before the first
                firing.
        """
        self._check_name(name)
        self._add(name, callback, IntervalSchedule(interval_ns, self.timestamp_ns(), start_ns, stop_ns))

    def set_daily_timer(
        self,
        name: str,
        local_time: dt_time,
        tz: str,
        callback: TimeEventCallback,
        days: DayPredicate | None = None,
    ) -> None:
        """A timer firing at wall-clock ``local_time`` in IANA zone ``tz`` on each local date that ``days``
        accepts (every date if ``None``), e.g. ``time(17, 0)``, ``"America/Chicago"``, a trading-day predicate.

        Each firing is computed with :mod:`zoneinfo`, so it is right across DST changes. A local time in the
        spring-forward gap fires one gap-length later on the wall clock; one in the fall-back overlap fires once,
        at its first occurrence (PEP 495 ``fold=0``; see :mod:`propdesk.core.timers`). The first firing is the
        earliest at or after now. ``days`` receives the *local* date in ``tz``.

        Raises:
            TimerError: the name is empty or in use, ``tz`` is unknown, ``local_time`` has a tzinfo, or ``days``
                accepts no date within the next 400 days.
        """
        self._check_name(name)
        self._add(name, callback, DailySchedule(local_time, tz, self.timestamp_ns(), days))

    def cancel_timer(self, name: str) -> bool:
        """Cancel timer ``name``. Returns ``False`` if no live timer has that name."""
        timer = self._timers.pop(name, None)
        if timer is None:
            return False
        timer.active = False
        self._disarm(timer)
        return True

    def cancel_timers(self) -> None:
        """Cancel every timer."""
        for name in list(self._timers):
            self.cancel_timer(name)

    # ------------------------------------------------------------------ internals

    def _check_name(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise TimerError(f"timer name must be a non-empty string, got {name!r}")
        if name in self._timers:
            raise TimerError(f"a timer named {name!r} is already set; cancel it first")

    def _add(self, name: str, callback: TimeEventCallback, schedule: Schedule) -> None:
        if not callable(callback):
            raise TimerError(f"callback of timer {name!r} is not callable: {callback!r}")
        timer = _Timer(name, callback, schedule, self._order)
        self._arm(timer)  # may raise (LiveClock without a loop): register only once armed
        self._order += 1
        self._timers[name] = timer

    def _retire(self, timer: _Timer) -> None:
        timer.active = False
        if self._timers.get(timer.name) is timer:
            del self._timers[timer.name]

    def _fire(self, timer: _Timer, ts_event_ns: int) -> TimeEvent:
        """Schedule the timer's next firing (or retire it), then call its callback. Returns the event."""
        try:
            nxt = timer.schedule.next_after(ts_event_ns)
        except BaseException:
            self._retire(timer)  # e.g. a day predicate that raised: do not leave a half-scheduled timer
            raise
        if nxt is None:
            self._retire(timer)
        else:
            timer.next_ns = nxt
            self._arm(timer)
        event = TimeEvent(timer.name, ts_event_ns, self.timestamp_ns())
        timer.callback(event)
        return event

    @abstractmethod
    def _arm(self, timer: _Timer) -> None:
        """Make ``timer`` fire at ``timer.next_ns``."""

    @abstractmethod
    def _disarm(self, timer: _Timer) -> None:
        """Stop a pending firing of ``timer`` (it has already been marked inactive)."""


class SimClock(Clock):
    """A simulated clock: time moves only through :meth:`advance_to`, which fires due timers itself.

    Timers are kept in a heap keyed by (next firing, set order), so an advance costs O(log n) per event.

    Args:
        start_ns: the initial time, UTC ns.
    """

    def __init__(self, start_ns: int = 0) -> None:
        super().__init__()
        self._now = int(start_ns)
        self._heap: list[tuple[int, int, _Timer]] = []
        self._advancing = False

    def timestamp_ns(self) -> int:
        """The simulated time, UTC ns."""
        return self._now

    def next_event_ns(self) -> int | None:
        """The time of the next pending timer firing (UTC ns), or ``None`` if no timer is pending."""
        heap = self._heap
        while heap and not heap[0][2].active:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def advance_to(self, ts_ns: int) -> list[TimeEvent]:
        """Move time forward to ``ts_ns`` (UTC ns), firing every timer due at or before it.

        Events fire in strict time order across all timers (ties in the order the timers were set). Before each
        callback the clock's time is set to the event's ``ts_event_ns`` (a past alert set with ``allow_past``
        fires at the current time instead). Timers set by a callback that fall due at or before ``ts_ns`` fire
        within the same call. After the last event the time is ``ts_ns``. Advancing to the current time fires
        the timers due now.

        Returns:
            The events fired, in order.

        Raises:
            TimerError: ``ts_ns`` is before the current time, or ``advance_to`` is called from a timer callback.
            Exception: whatever a callback raises propagates; the clock is then at that event's time and the
                remaining due events stay pending (a further ``advance_to`` fires them).
        """
        heap = self._heap
        if (not heap or heap[0][0] > ts_ns) and not self._advancing and ts_ns >= self._now:
            # fast path (every bar of a backtest): no timer due, nothing to fire
            self._now = ts_ns if type(ts_ns) is int else int(ts_ns)
            return []
        if self._advancing:
            raise TimerError("SimClock.advance_to called from inside a timer callback")
        if ts_ns < self._now:
            raise TimerError(f"SimClock cannot move backwards: from {self._now} ns to {ts_ns} ns")
        fired: list[TimeEvent] = []
        self._advancing = True
        try:
            while heap and heap[0][0] <= ts_ns:
                when, _, timer = heapq.heappop(heap)
                if not timer.active:
                    continue
                self._now = max(self._now, when)
                fired.append(self._fire(timer, when))
            self._now = int(ts_ns)
        finally:
            self._advancing = False
        return fired

    def _arm(self, timer: _Timer) -> None:
        heapq.heappush(self._heap, (timer.next_ns, timer.order, timer))

    def _disarm(self, timer: _Timer) -> None:
        pass  # lazy deletion: inactive entries are skipped when popped


class LiveClock(Clock):
    """The real clock (:func:`time.time_ns`), with timers run on an asyncio event loop.

    Each firing is scheduled from its absolute target time (``loop.call_at`` with the remaining wall-clock
    delay), never by sleeping an interval, so recurring timers do not drift. A timer that wakes before its target
    (the loop's monotonic clock and the wall clock can diverge) re-arms for the remainder. A firing is never
    skipped: if the loop was blocked past several firings they run back-to-back, each with its scheduled
    ``ts_event_ns``, as on a :class:`SimClock`.

    Args:
        loop: the loop to run timers on; by default the loop running when a timer is set (setting a timer
            outside a running loop then raises :class:`TimerError`).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__()
        self._loop = loop

    def timestamp_ns(self) -> int:
        """The wall-clock time, UTC ns (:func:`time.time_ns`)."""
        return time.time_ns()

    def _get_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is not None:
            return self._loop
        try:
            return asyncio.get_running_loop()
        except RuntimeError:
            raise TimerError(
                "LiveClock timers need an asyncio loop: set them from a running loop or pass LiveClock(loop=...)"
            ) from None

    def _arm(self, timer: _Timer) -> None:
        loop = self._get_loop()
        delay_s = (timer.next_ns - time.time_ns()) / 1e9
        timer.handle = loop.call_at(loop.time() + delay_s, self._on_due, timer)

    def _disarm(self, timer: _Timer) -> None:
        if timer.handle is not None:
            timer.handle.cancel()
            timer.handle = None

    def _on_due(self, timer: _Timer) -> None:
        timer.handle = None
        if not timer.active:
            return
        if time.time_ns() < timer.next_ns:
            self._arm(timer)  # woke early: wait for the remainder
            return
        self._fire(timer, timer.next_ns)
