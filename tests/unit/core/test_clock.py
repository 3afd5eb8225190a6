"""Tests for propdesk.core.clock and propdesk.core.timers: SimClock, LiveClock, daily wall-clock timers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from propdesk.core.clock import Clock, LiveClock, SimClock, TimeEvent
from propdesk.core.errors import TimerError
from propdesk.core.timers import next_daily_ns

S = 1_000_000_000  # ns per second
MS = 1_000_000  # ns per millisecond
H = 3600 * S


def utc_ns(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    """UTC nanoseconds of a UTC wall time (computed independently of the code under test)."""
    delta = datetime(year, month, day, hour, minute, second, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * S


class Collector:
    """A stub timer callback recording each event and the clock's time when it was called."""

    def __init__(self, clock: Clock, log: list[tuple[str, int, int]] | None = None) -> None:
        self.clock = clock
        self.events: list[TimeEvent] = []
        self.clock_times: list[int] = []
        self.log = log

    def __call__(self, event: TimeEvent) -> None:
        self.events.append(event)
        now = self.clock.timestamp_ns()
        self.clock_times.append(now)
        if self.log is not None:
            self.log.append((event.name, event.ts_event_ns, now))


def weekdays(d: date) -> bool:
    return d.weekday() < 5


# ---------------------------------------------------------------------------------------------- SimClock basics


def test_sim_clock_time_and_utc_now() -> None:
    clock = SimClock(utc_ns(2025, 11, 3, 14, 30, 0) + 123_456_789)
    assert clock.utc_now() == datetime(2025, 11, 3, 14, 30, 0, 123_456, tzinfo=UTC)
    assert clock.advance_to(clock.timestamp_ns() + 5) == []
    assert clock.timestamp_ns() == utc_ns(2025, 11, 3, 14, 30, 0) + 123_456_794


def test_one_shot_alert_fires_once_at_its_time() -> None:
    clock = SimClock(1_000)
    cb = Collector(clock)
    clock.set_time_alert("alert", 5_000, cb)
    assert clock.timer_names == ["alert"]
    assert clock.next_time_ns("alert") == 5_000
    assert clock.advance_to(4_999) == []
    events = clock.advance_to(10_000)
    assert events == [TimeEvent("alert", 5_000, 5_000)]
    assert cb.events == events
    assert cb.clock_times == [5_000]
    assert clock.timestamp_ns() == 10_000
    assert clock.timer_names == []
    assert clock.advance_to(20_000) == []


def test_alert_at_current_time_fires_on_next_advance() -> None:
    clock = SimClock(100)
    cb = Collector(clock)
    clock.set_time_alert("now", 100, cb)
    assert clock.advance_to(100) == [TimeEvent("now", 100, 100)]


def test_alert_in_past_raises_unless_allowed() -> None:
    clock = SimClock(1_000)
    cb = Collector(clock)
    with pytest.raises(TimerError, match="before the clock's time"):
        clock.set_time_alert("late", 999, cb)
    assert clock.timer_names == []
    clock.set_time_alert("late", 500, cb, allow_past=True)
    assert clock.advance_to(1_000) == [TimeEvent("late", 500, 1_000)]
    assert cb.clock_times == [1_000]  # time never moves backwards


def test_recurring_timer_with_start_and_inclusive_stop() -> None:
    clock = SimClock(0)
    cb = Collector(clock)
    clock.set_timer("tick", 10, cb, start_ns=5, stop_ns=45)
    events = clock.advance_to(1_000)
    assert [e.ts_event_ns for e in events] == [15, 25, 35, 45]
    assert cb.clock_times == [15, 25, 35, 45]
    assert clock.timer_names == []


def test_recurring_timer_defaults_start_to_now_and_runs_forever() -> None:
    clock = SimClock(1_000)
    cb = Collector(clock)
    clock.set_timer("tick", 250, cb)
    assert [e.ts_event_ns for e in clock.advance_to(2_000)] == [1_250, 1_500, 1_750, 2_000]
    assert [e.ts_event_ns for e in clock.advance_to(2_600)] == [2_250, 2_500]
    assert clock.next_time_ns("tick") == 2_750


def test_recurring_timer_with_past_start_skips_missed_firings() -> None:
    clock = SimClock(1_000)
    cb = Collector(clock)
    clock.set_timer("grid", 300, cb, start_ns=0)  # grid 300, 600, 900, 1200, ...
    assert clock.next_time_ns("grid") == 1_200
    clock.set_timer("on-grid", 250, cb, start_ns=0)  # 1000 is on the grid: fires now
    assert clock.next_time_ns("on-grid") == 1_000


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"interval_ns": 0}, "interval"),
        ({"interval_ns": -5}, "interval"),
        ({"interval_ns": 10, "start_ns": 100, "stop_ns": 105}, "stop"),
    ],
)
def test_invalid_recurring_timers_raise(kwargs: dict[str, int], message: str) -> None:
    clock = SimClock(0)
    with pytest.raises(TimerError, match=message):
        clock.set_timer("bad", callback=Collector(clock), **kwargs)
    assert clock.timer_names == []


def test_timer_names_are_unique_and_non_empty() -> None:
    clock = SimClock(0)
    cb = Collector(clock)
    clock.set_timer("a", 10, cb)
    with pytest.raises(TimerError, match="already set"):
        clock.set_time_alert("a", 5, cb)
    with pytest.raises(TimerError, match="non-empty"):
        clock.set_time_alert("", 5, cb)
    with pytest.raises(TimerError, match="not callable"):
        clock.set_time_alert("x", 5, "nope")  # type: ignore[arg-type]
    assert clock.timer_names == ["a"]
    with pytest.raises(TimerError, match="no timer named"):
        clock.next_time_ns("zzz")


def test_cancel_timer() -> None:
    clock = SimClock(0)
    cb = Collector(clock)
    clock.set_timer("a", 10, cb)
    clock.set_timer("b", 15, cb)
    clock.advance_to(20)
    assert clock.cancel_timer("a") is True
    assert clock.cancel_timer("a") is False
    assert clock.timer_names == ["b"]
    assert [e.name for e in clock.advance_to(100)] == ["b"] * 5
    clock.cancel_timers()
    assert clock.timer_names == []
    assert clock.next_event_ns() is None
    assert clock.advance_to(1_000) == []


def test_cancel_and_reset_same_name_uses_new_schedule() -> None:
    clock = SimClock(0)
    cb = Collector(clock)
    clock.set_timer("t", 10, cb)
    clock.cancel_timer("t")
    clock.set_timer("t", 7, cb)
    assert [e.ts_event_ns for e in clock.advance_to(21)] == [7, 14, 21]


def test_callback_can_cancel_its_own_timer() -> None:
    clock = SimClock(0)
    seen: list[int] = []

    def once_then_stop(event: TimeEvent) -> None:
        seen.append(event.ts_event_ns)
        if len(seen) == 2:
            clock.cancel_timer(event.name)

    clock.set_timer("t", 10, once_then_stop)
    clock.advance_to(100)
    assert seen == [10, 20]
    assert clock.timer_names == []


def test_one_shot_callback_can_rearm_same_name_within_same_advance() -> None:
    clock = SimClock(0)
    seen: list[int] = []

    def rearm(event: TimeEvent) -> None:
        seen.append(event.ts_event_ns)
        if event.ts_event_ns < 30:
            clock.set_time_alert("a", event.ts_event_ns + 10, rearm)

    clock.set_time_alert("a", 10, rearm)
    clock.advance_to(100)
    assert seen == [10, 20, 30]


def test_events_fire_in_time_order_with_ties_in_set_order() -> None:
    clock = SimClock(0)
    log: list[tuple[str, int, int]] = []
    clock.set_timer("every-3", 3, Collector(clock, log), stop_ns=12)
    clock.set_timer("every-4", 4, Collector(clock, log), stop_ns=12)
    clock.set_time_alert("at-6", 6, Collector(clock, log))
    clock.set_time_alert("at-2", 2, Collector(clock, log))
    clock.advance_to(12)
    assert [(n, t) for n, t, _ in log] == [
        ("at-2", 2),
        ("every-3", 3),
        ("every-4", 4),
        ("every-3", 6),
        ("at-6", 6),
        ("every-4", 8),
        ("every-3", 9),
        ("every-3", 12),
        ("every-4", 12),
    ]
    assert all(t == now for _, t, now in log)


def test_moving_backwards_raises() -> None:
    clock = SimClock(500)
    with pytest.raises(TimerError, match="backwards"):
        clock.advance_to(499)
    assert clock.timestamp_ns() == 500


def test_advance_from_callback_raises() -> None:
    clock = SimClock(0)
    errors: list[Exception] = []

    def nested(event: TimeEvent) -> None:
        try:
            clock.advance_to(event.ts_event_ns + 1)
        except TimerError as exc:
            errors.append(exc)

    clock.set_time_alert("n", 5, nested)
    clock.advance_to(10)
    assert len(errors) == 1
    assert "inside a timer callback" in str(errors[0])


def test_raising_callback_propagates_and_timer_survives() -> None:
    clock = SimClock(0)
    seen: list[int] = []

    def flaky(event: TimeEvent) -> None:
        seen.append(event.ts_event_ns)
        if event.ts_event_ns == 20:
            raise ValueError("bad tick")

    clock.set_timer("t", 10, flaky)
    with pytest.raises(ValueError, match="bad tick"):
        clock.advance_to(45)
    assert clock.timestamp_ns() == 20
    assert clock.advance_to(45) == [TimeEvent("t", 30, 30), TimeEvent("t", 40, 40)]
    assert seen == [10, 20, 30, 40]


def test_next_event_ns_skips_cancelled_timers() -> None:
    clock = SimClock(0)
    cb = Collector(clock)
    clock.set_time_alert("early", 5, cb)
    clock.set_time_alert("late", 50, cb)
    assert clock.next_event_ns() == 5
    clock.cancel_timer("early")
    assert clock.next_event_ns() == 50


# ---------------------------------------------------------------------------------------------- daily timers

CHICAGO = "America/Chicago"


def _daily_firings(
    start: int, end: int, local_time: dt_time, days: Callable[[date], bool] | None, step_ns: int | None = None
) -> list[int]:
    clock = SimClock(start)
    cb = Collector(clock)
    clock.set_daily_timer("session-roll", local_time, CHICAGO, cb, days=days)
    if step_ns is None:
        clock.advance_to(end)
    else:
        t = start
        while t < end:
            t = min(end, t + step_ns)
            clock.advance_to(t)
    assert cb.clock_times == [e.ts_event_ns for e in cb.events]
    return [e.ts_event_ns for e in cb.events]


@pytest.mark.parametrize("step_ns", [None, H, 37 * 60 * S])
def test_daily_1700_chicago_weekdays_across_dst_end_2025_11_02(step_ns: int | None) -> None:
    # 17:00 CDT (UTC-5) = 22:00 UTC up to Fri 2025-10-31; DST ends Sun 2025-11-02 02:00;
    # 17:00 CST (UTC-6) = 23:00 UTC from Mon 2025-11-03. Sat/Sun are rejected by the predicate.
    fired = _daily_firings(utc_ns(2025, 10, 27), utc_ns(2025, 11, 8), dt_time(17, 0), weekdays, step_ns)
    expected = [utc_ns(2025, 10, d, 22) for d in (27, 28, 29, 30, 31)] + [
        utc_ns(2025, 11, d, 23) for d in (3, 4, 5, 6, 7)
    ]
    assert fired == expected


@pytest.mark.parametrize("step_ns", [None, H])
def test_daily_1700_chicago_weekdays_across_dst_start_2026_03_08(step_ns: int | None) -> None:
    # 17:00 CST = 23:00 UTC up to Fri 2026-03-06; DST starts Sun 2026-03-08; 17:00 CDT = 22:00 UTC from Mon 03-09.
    fired = _daily_firings(utc_ns(2026, 3, 2), utc_ns(2026, 3, 14), dt_time(17, 0), weekdays, step_ns)
    expected = [utc_ns(2026, 3, d, 23) for d in (2, 3, 4, 5, 6)] + [utc_ns(2026, 3, d, 22) for d in (9, 10, 11, 12, 13)]
    assert fired == expected


def test_daily_every_day_fires_once_on_the_dst_sundays() -> None:
    fired = _daily_firings(utc_ns(2025, 11, 1), utc_ns(2025, 11, 4), dt_time(17, 0), None)
    assert fired == [utc_ns(2025, 11, 1, 22), utc_ns(2025, 11, 2, 23), utc_ns(2025, 11, 3, 23)]
    fired = _daily_firings(utc_ns(2026, 3, 7), utc_ns(2026, 3, 10), dt_time(17, 0), None)
    assert fired == [utc_ns(2026, 3, 7, 23), utc_ns(2026, 3, 8, 22), utc_ns(2026, 3, 9, 22)]


def test_daily_ambiguous_local_time_fires_once_at_first_occurrence() -> None:
    # 01:30 occurs twice on 2025-11-02 in Chicago (06:30 UTC as CDT, 07:30 UTC as CST): fire once, at the first.
    fired = _daily_firings(utc_ns(2025, 11, 1), utc_ns(2025, 11, 4), dt_time(1, 30), None, H)
    assert fired == [utc_ns(2025, 11, 1, 6, 30), utc_ns(2025, 11, 2, 6, 30), utc_ns(2025, 11, 3, 7, 30)]


def test_daily_nonexistent_local_time_fires_a_gap_later() -> None:
    # 02:30 does not exist on 2026-03-08 in Chicago (02:00 CST -> 03:00 CDT): read with the CST offset -> 08:30 UTC.
    fired = _daily_firings(utc_ns(2026, 3, 7), utc_ns(2026, 3, 10), dt_time(2, 30), None, H)
    assert fired == [utc_ns(2026, 3, 7, 8, 30), utc_ns(2026, 3, 8, 8, 30), utc_ns(2026, 3, 9, 7, 30)]


def test_daily_timer_set_at_its_exact_time_fires_now() -> None:
    now = utc_ns(2025, 11, 3, 23)  # 17:00 CST
    clock = SimClock(now)
    cb = Collector(clock)
    clock.set_daily_timer("roll", dt_time(17, 0), CHICAGO, cb)
    assert clock.next_time_ns("roll") == now
    clock.advance_to(now + 1)
    assert clock.next_time_ns("roll") == now + 24 * H


def test_daily_timer_follows_the_predicate_over_holidays() -> None:
    holidays = {date(2025, 12, 25), date(2026, 1, 1)}

    def trading_day(d: date) -> bool:
        return d.weekday() < 5 and d not in holidays

    fired = _daily_firings(utc_ns(2025, 12, 22), utc_ns(2026, 1, 3), dt_time(17, 0), trading_day)
    days = [datetime.fromtimestamp(ns / S, tz=ZoneInfo(CHICAGO)).date() for ns in fired]
    assert days == [
        date(2025, 12, 22),
        date(2025, 12, 23),
        date(2025, 12, 24),
        date(2025, 12, 26),
        date(2025, 12, 29),
        date(2025, 12, 30),
        date(2025, 12, 31),
        date(2026, 1, 2),
    ]
    assert all((ns // S) % 86_400 == 23 * 3600 for ns in fired)  # 17:00 CST = 23:00 UTC all winter


def test_daily_timer_invalid_arguments() -> None:
    clock = SimClock(utc_ns(2025, 1, 1))
    cb = Collector(clock)
    with pytest.raises(TimerError, match="unknown time zone"):
        clock.set_daily_timer("x", dt_time(17), "America/Chicgo", cb)
    with pytest.raises(TimerError, match="naive"):
        clock.set_daily_timer("x", dt_time(17, tzinfo=UTC), CHICAGO, cb)
    with pytest.raises(TimerError, match="no day within"):
        clock.set_daily_timer("x", dt_time(17), CHICAGO, cb, days=lambda d: False)
    assert clock.timer_names == []


def test_daily_predicate_error_retires_the_timer() -> None:
    clock = SimClock(utc_ns(2025, 1, 1))
    cb = Collector(clock)
    calendar_end = date(2025, 1, 3)

    def calendar(d: date) -> bool:
        if d > calendar_end:
            raise LookupError(f"calendar has no data for {d}")
        return True

    clock.set_daily_timer("roll", dt_time(17), CHICAGO, cb, days=calendar)
    with pytest.raises(LookupError):
        clock.advance_to(utc_ns(2025, 1, 10))
    assert clock.timer_names == []
    assert len(cb.events) == 2  # 01-01 and 01-02 fired; computing the one after 01-03 failed before its call


def test_next_daily_ns_is_strictly_after() -> None:
    at = utc_ns(2025, 11, 3, 23)
    assert next_daily_ns(at - 1, dt_time(17), CHICAGO) == at
    assert next_daily_ns(at, dt_time(17), CHICAGO) == at + 24 * H
    assert next_daily_ns(at, dt_time(17), CHICAGO, lambda d: False, max_days=10) is None


# ---------------------------------------------------------------------------------------------- property


@st.composite
def _timer_specs(draw: st.DrawFn) -> list[tuple[str, int, int, int | None]]:
    """(kind, first/interval, start, stop) for a few random alerts and interval timers."""
    specs: list[tuple[str, int, int, int | None]] = []
    for _ in range(draw(st.integers(1, 6))):
        if draw(st.booleans()):
            specs.append(("alert", draw(st.integers(0, 200)), 0, None))
        else:
            interval = draw(st.integers(1, 40))
            start = draw(st.integers(0, 50))
            stop = draw(st.one_of(st.none(), st.integers(start + interval, 250)))
            specs.append(("every", interval, start, stop))
    return specs


@settings(max_examples=150, deadline=None)
@given(specs=_timer_specs(), steps=st.lists(st.integers(0, 60), min_size=1, max_size=8))
def test_sim_clock_fires_everything_in_order(specs: list[tuple[str, int, int, int | None]], steps: list[int]) -> None:
    clock = SimClock(0)
    log: list[tuple[str, int, int]] = []
    for i, (kind, a, start, stop) in enumerate(specs):
        if kind == "alert":
            clock.set_time_alert(f"t{i}", a, Collector(clock, log))
        else:
            clock.set_timer(f"t{i}", a, Collector(clock, log), start_ns=start, stop_ns=stop)
    t = 0
    for step in steps:
        t += step
        clock.advance_to(t)

    # Brute-force reference: every scheduled time <= t, sorted by (time, set order).
    expected: list[tuple[int, int]] = []
    for i, (kind, a, start, stop) in enumerate(specs):
        last = t if stop is None else min(t, stop)
        times = [a] if kind == "alert" else list(range(start + a, last + 1, a))
        expected += [(ts, i) for ts in times if ts <= t]
    expected.sort()
    assert [(ts, int(name[1:])) for name, ts, _ in log] == expected
    assert all(ts == now for _, ts, now in log)
    assert clock.timestamp_ns() == t


# ---------------------------------------------------------------------------------------------- LiveClock


def test_live_clock_time_is_wall_clock() -> None:
    clock = LiveClock()
    before = time.time_ns()
    now = clock.timestamp_ns()
    after = time.time_ns()
    assert before <= now <= after
    assert abs(clock.utc_now() - datetime.now(UTC)) < timedelta(seconds=5)


def test_live_clock_needs_a_loop_for_timers() -> None:
    clock = LiveClock()
    with pytest.raises(TimerError, match="asyncio loop"):
        clock.set_time_alert("a", time.time_ns() + S, Collector(clock))
    assert clock.timer_names == []


async def _wait_until_idle(clock: Clock, timeout_s: float = 3.0) -> None:
    deadline = time.monotonic() + timeout_s
    while clock.timer_names and time.monotonic() < deadline:
        await asyncio.sleep(0.005)


def test_live_clock_timers_fire_in_order() -> None:
    async def main() -> tuple[list[tuple[str, int, int]], list[str]]:
        clock = LiveClock()
        log: list[tuple[str, int, int]] = []
        t0 = clock.timestamp_ns()
        clock.set_timer("tick", 10 * MS, Collector(clock, log), start_ns=t0, stop_ns=t0 + 50 * MS)
        clock.set_time_alert("alert-25", t0 + 25 * MS, Collector(clock, log))
        clock.set_time_alert("alert-5", t0 + 5 * MS, Collector(clock, log))
        clock.set_timer("cancelled", 7 * MS, Collector(clock, log), start_ns=t0)
        clock.cancel_timer("cancelled")
        await _wait_until_idle(clock)
        return [(n, ts - t0, now) for n, ts, now in log], clock.timer_names

    log, remaining = asyncio.run(main())
    assert remaining == []
    assert [(n, ts) for n, ts, _ in log] == [
        ("alert-5", 5 * MS),
        ("tick", 10 * MS),
        ("tick", 20 * MS),
        ("alert-25", 25 * MS),
        ("tick", 30 * MS),
        ("tick", 40 * MS),
        ("tick", 50 * MS),
    ]


def test_live_clock_event_times_are_on_the_absolute_grid_and_never_early() -> None:
    async def main() -> tuple[int, list[TimeEvent]]:
        clock = LiveClock()
        cb = Collector(clock)
        t0 = clock.timestamp_ns()
        clock.set_timer("grid", 3 * MS, cb, start_ns=t0, stop_ns=t0 + 30 * MS)
        await asyncio.sleep(0.010)
        time.sleep(0.012)  # block the loop past several firings: they must still all fire
        await _wait_until_idle(clock)
        return t0, cb.events

    t0, events = asyncio.run(main())
    assert [e.ts_event_ns - t0 for e in events] == [k * 3 * MS for k in range(1, 11)]
    assert all(e.ts_init_ns >= e.ts_event_ns for e in events)


def test_live_clock_raising_callback_goes_to_loop_handler_and_timer_continues() -> None:
    async def main() -> tuple[list[int], list[str]]:
        loop = asyncio.get_running_loop()
        reported: list[str] = []
        loop.set_exception_handler(lambda _loop, ctx: reported.append(repr(ctx.get("exception"))))
        clock = LiveClock(loop=loop)
        seen: list[int] = []
        t0 = clock.timestamp_ns()

        def flaky(event: TimeEvent) -> None:
            seen.append(event.ts_event_ns - t0)
            if len(seen) == 2:
                raise ValueError("flaky")

        clock.set_timer("t", 5 * MS, flaky, start_ns=t0, stop_ns=t0 + 20 * MS)
        await _wait_until_idle(clock)
        return seen, reported

    seen, reported = asyncio.run(main())
    assert seen == [5 * MS, 10 * MS, 15 * MS, 20 * MS]
    assert reported == [repr(ValueError("flaky"))]


def test_live_clock_daily_timer_is_scheduled_for_the_next_local_time() -> None:
    async def main() -> tuple[int, int]:
        clock = LiveClock()
        clock.set_daily_timer("roll", dt_time(17), CHICAGO, Collector(clock))
        nxt = clock.next_time_ns("roll")
        now = clock.timestamp_ns()
        clock.cancel_timer("roll")
        return nxt, now

    nxt, now = asyncio.run(main())
    assert now <= nxt <= now + 25 * H
    local = datetime.fromtimestamp(nxt / S, tz=ZoneInfo(CHICAGO))
    assert (local.hour, local.minute, local.second) == (17, 0, 0)
