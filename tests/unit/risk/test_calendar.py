"""Tests for propdesk.risk.calendar: flat deadline, flat time, entry cutoff, and the session timers.

Expected instants are Chicago wall-clock times converted with zoneinfo here (independently of the code under test).
"""

from __future__ import annotations

import asyncio
import time as wall
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from propdesk.core.clock import LiveClock, SimClock
from propdesk.core.errors import ConfigError
from propdesk.model.calendar import (
    CalendarCoverageError,
    CalendarError,
    CalendarSession,
    TradingCalendar,
    default_calendar,
)
from propdesk.risk.calendar import (
    EntryCutoffReached,
    FirmSchedule,
    FlatTimeReached,
    SessionRolled,
    SessionTimers,
)

CT = ZoneInfo("America/Chicago")
S = 1_000_000_000
MS = 1_000_000


def ct(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> int:
    return int(datetime(y, m, d, hh, mm, tzinfo=CT).timestamp()) * S


@pytest.fixture(scope="module")
def cal() -> TradingCalendar:
    return default_calendar()


@pytest.fixture(scope="module")
def firm(cal: TradingCalendar) -> FirmSchedule:
    return FirmSchedule(cal)


# ---------------------------------------------------------------------------------------------------- FirmSchedule


def test_flat_deadline_time_and_cutoff_on_a_regular_day(firm: FirmSchedule) -> None:
    d = date(2025, 11, 25)
    assert firm.flat_deadline_ns(d, "ES") == ct(2025, 11, 25, 15, 10)
    assert firm.flat_time_ns(d, "ES") == ct(2025, 11, 25, 15, 5)
    assert firm.entry_cutoff_ns(d, "ES") == ct(2025, 11, 25, 15, 0)
    assert firm.flat_deadline_ns(d) == ct(2025, 11, 25, 15, 10)


def utc(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> int:
    return int(datetime(y, m, d, hh, mm, tzinfo=UTC).timestamp()) * S


def test_flat_deadline_across_dst(firm: FirmSchedule) -> None:
    # 15:10 CDT = 20:10 UTC before 2025-11-02; 15:10 CST = 21:10 UTC after; back to CDT after 2026-03-08.
    assert firm.flat_deadline_ns(date(2025, 10, 31), "ES") == utc(2025, 10, 31, 20, 10)
    assert firm.flat_deadline_ns(date(2025, 11, 3), "ES") == utc(2025, 11, 3, 21, 10)
    assert firm.flat_deadline_ns(date(2026, 3, 6), "ES") == utc(2026, 3, 6, 21, 10)
    assert firm.flat_deadline_ns(date(2026, 3, 9), "ES") == utc(2026, 3, 9, 20, 10)


def test_flat_deadline_on_early_close_is_the_early_close(firm: FirmSchedule) -> None:
    d = date(2025, 11, 28)
    assert firm.flat_deadline_ns(d, "ES") == ct(2025, 11, 28, 12, 15)
    assert firm.flat_time_ns(d, "ES") == ct(2025, 11, 28, 12, 10)
    assert firm.entry_cutoff_ns(d, "ES") == ct(2025, 11, 28, 12, 5)
    assert firm.flat_deadline_ns(d, "CL") == ct(2025, 11, 28, 12)
    assert firm.flat_deadline_ns(date(2025, 12, 24), "NQ") == ct(2025, 12, 24, 12, 15)
    assert firm.flat_deadline_ns(date(2025, 7, 3), "ES") == ct(2025, 7, 3, 12, 15)


def test_products_that_close_earlier(firm: FirmSchedule) -> None:
    d = date(2025, 11, 25)
    assert firm.flat_deadline_ns(d, "ZC") == ct(2025, 11, 25, 13, 20)
    assert firm.flat_time_ns(d, "ZC") == ct(2025, 11, 25, 13, 15)
    assert firm.flat_deadline_ns(d, "HE") == ct(2025, 11, 25, 13, 5)


def test_flat_windows_include_the_holiday_halt(firm: FirmSchedule) -> None:
    windows = firm.flat_windows(date(2025, 11, 28), "ES")
    assert [w.deadline_ns for w in windows] == [ct(2025, 11, 27, 12), ct(2025, 11, 28, 12, 15)]
    assert [w.flat_time_ns for w in windows] == [ct(2025, 11, 27, 11, 55), ct(2025, 11, 28, 12, 10)]
    assert [w.reopen_ns for w in windows] == [ct(2025, 11, 27, 17), ct(2025, 11, 30, 17)]


@pytest.mark.parametrize(
    ("ts", "blocked", "flat"),
    [
        (ct(2025, 11, 25, 14, 59), False, False),
        (ct(2025, 11, 25, 15, 0), True, False),
        (ct(2025, 11, 25, 15, 5), True, True),
        (ct(2025, 11, 25, 16, 30), True, True),
        (ct(2025, 11, 25, 17, 0), False, False),  # the next session is open
        (ct(2025, 11, 27, 11, 56), True, True),  # before the Thanksgiving halt
        (ct(2025, 11, 27, 17, 30), False, False),  # reopened for Friday
        (ct(2025, 11, 28, 12, 6), True, False),
        (ct(2025, 11, 29, 12), True, True),  # Saturday: locked until Sunday 17:00
    ],
)
def test_entry_blocked_and_flat_required(firm: FirmSchedule, ts: int, blocked: bool, flat: bool) -> None:
    assert firm.is_entry_blocked(ts, "ES") is blocked
    assert firm.is_flat_required(ts, "ES") is flat


def test_firm_schedule_rejects_bad_config(cal: TradingCalendar) -> None:
    with pytest.raises(ConfigError):
        FirmSchedule(cal, flat_buffer_min=-1)
    with pytest.raises(ConfigError):
        FirmSchedule(cal, tz="Mars/Olympus")
    with pytest.raises(ConfigError):
        FirmSchedule(cal, flat_time=time(15, 10, tzinfo=CT))


def test_configurable_flat_time(cal: TradingCalendar) -> None:
    firm = FirmSchedule(cal, flat_time=time(15, 0), flat_buffer_min=2, entry_cutoff_min=30)
    d = date(2025, 11, 25)
    assert firm.flat_time_ns(d, "ES") == ct(2025, 11, 25, 14, 58)
    assert firm.entry_cutoff_ns(d, "ES") == ct(2025, 11, 25, 14, 30)


# ---------------------------------------------------------------------------------------------------- SessionTimers


class Recorder:
    """Stub handlers recording every event with the clock's time at the call."""

    def __init__(self, clock: SimClock | LiveClock) -> None:
        self.clock = clock
        self.rolls: list[SessionRolled] = []
        self.flats: list[FlatTimeReached] = []
        self.cutoffs: list[EntryCutoffReached] = []
        self.errors: list[CalendarError] = []
        self.called_at: list[int] = []

    def roll(self, e: SessionRolled) -> None:
        self.called_at.append(self.clock.timestamp_ns())
        self.rolls.append(e)

    def flat(self, e: FlatTimeReached) -> None:
        self.flats.append(e)

    def cutoff(self, e: EntryCutoffReached) -> None:
        self.cutoffs.append(e)

    def error(self, e: CalendarError) -> None:
        self.errors.append(e)


def run_sim(
    cal: TradingCalendar,
    firm: FirmSchedule,
    start: int,
    end: int,
    step_ns: int | None = None,
    roots: tuple[str, ...] = (),
) -> Recorder:
    clock = SimClock(start)
    rec = Recorder(clock)
    timers = SessionTimers(
        clock, cal, firm, rec.roll, on_flatten=rec.flat, on_entry_cutoff=rec.cutoff, roots=roots, on_error=rec.error
    )
    timers.start()
    if step_ns is None:
        clock.advance_to(end)
    else:
        t = start
        while t < end:
            t = min(t + step_ns, end)
            clock.advance_to(t)
    return rec


def test_thanksgiving_week_fires_once_per_boundary_and_never_on_the_holiday(
    cal: TradingCalendar, firm: FirmSchedule
) -> None:
    rec = run_sim(cal, firm, ct(2025, 11, 24, 8), ct(2025, 12, 2, 8))
    assert [(e.ended_trading_date, e.trading_date, e.ts_ns) for e in rec.rolls] == [
        (date(2025, 11, 24), date(2025, 11, 25), ct(2025, 11, 24, 17)),
        (date(2025, 11, 25), date(2025, 11, 26), ct(2025, 11, 25, 17)),
        (date(2025, 11, 26), date(2025, 11, 28), ct(2025, 11, 26, 17)),
        (date(2025, 11, 28), date(2025, 12, 1), ct(2025, 11, 30, 17)),
        (date(2025, 12, 1), date(2025, 12, 2), ct(2025, 12, 1, 17)),
    ]
    assert rec.called_at == [e.ts_ns for e in rec.rolls]  # SimClock: exactly at the boundary
    assert all(datetime.fromtimestamp(e.ts_ns / S, CT).date() != date(2025, 11, 27) for e in rec.rolls)
    assert [(e.trading_date, e.ts_ns, e.deadline_ns) for e in rec.flats] == [
        (date(2025, 11, 24), ct(2025, 11, 24, 15, 5), ct(2025, 11, 24, 15, 10)),
        (date(2025, 11, 25), ct(2025, 11, 25, 15, 5), ct(2025, 11, 25, 15, 10)),
        (date(2025, 11, 26), ct(2025, 11, 26, 15, 5), ct(2025, 11, 26, 15, 10)),
        (date(2025, 11, 28), ct(2025, 11, 27, 11, 55), ct(2025, 11, 27, 12)),  # Thanksgiving halt
        (date(2025, 11, 28), ct(2025, 11, 28, 11, 55), ct(2025, 11, 28, 12)),  # default hours: 12:00 early close
        (date(2025, 12, 1), ct(2025, 12, 1, 15, 5), ct(2025, 12, 1, 15, 10)),
    ]
    assert [e.ts_ns for e in rec.cutoffs] == [e.deadline_ns - 10 * 60 * S for e in rec.flats]
    assert rec.errors == []


def test_stepping_the_clock_does_not_duplicate_firings(cal: TradingCalendar, firm: FirmSchedule) -> None:
    one_go = run_sim(cal, firm, ct(2025, 12, 22, 8), ct(2025, 12, 30, 8))
    stepped = run_sim(cal, firm, ct(2025, 12, 22, 8), ct(2025, 12, 30, 8), step_ns=7 * 60 * S)
    assert stepped.rolls == one_go.rolls
    assert stepped.flats == one_go.flats
    assert stepped.cutoffs == one_go.cutoffs
    # Christmas: Wednesday 24th early close, Thursday closed, reopen Thursday 17:00 for Friday 26th.
    assert [(e.ended_trading_date, e.trading_date, e.ts_ns) for e in one_go.rolls][2:4] == [
        (date(2025, 12, 24), date(2025, 12, 26), ct(2025, 12, 25, 17)),
        (date(2025, 12, 26), date(2025, 12, 29), ct(2025, 12, 28, 17)),
    ]
    assert len({e.ts_ns for e in one_go.rolls}) == len(one_go.rolls)


def test_roll_across_dst_weekends(cal: TradingCalendar, firm: FirmSchedule) -> None:
    rec = run_sim(cal, firm, ct(2025, 10, 30, 12), ct(2025, 11, 4, 12))
    utc_hours = [(e.ts_ns // S // 3600) % 24 for e in rec.rolls]
    assert [e.trading_date for e in rec.rolls] == [date(2025, 10, 31), date(2025, 11, 3), date(2025, 11, 4)]
    assert utc_hours == [22, 23, 23]  # 17:00 CDT, then 17:00 CST on Sunday 2 November
    rec = run_sim(cal, firm, ct(2026, 3, 5, 12), ct(2026, 3, 10, 12))
    assert [(e.ts_ns // S // 3600) % 24 for e in rec.rolls] == [23, 22, 22]


def test_per_product_flat_times_are_grouped(cal: TradingCalendar, firm: FirmSchedule) -> None:
    rec = run_sim(cal, firm, ct(2025, 11, 25, 8), ct(2025, 11, 29, 0), roots=("ES", "CL", "ZC"))
    assert [(e.roots, e.ts_ns) for e in rec.flats] == [
        (("ZC",), ct(2025, 11, 25, 13, 15)),
        (("ES", "CL"), ct(2025, 11, 25, 15, 5)),
        (("ZC",), ct(2025, 11, 26, 13, 15)),
        (("ES", "CL"), ct(2025, 11, 26, 15, 5)),
        (("ES", "CL", "ZC"), ct(2025, 11, 27, 11, 55)),
        (("CL", "ZC"), ct(2025, 11, 28, 11, 55)),
        (("ES",), ct(2025, 11, 28, 12, 10)),
    ]


def test_good_friday_is_skipped(cal: TradingCalendar, firm: FirmSchedule) -> None:
    rec = run_sim(cal, firm, ct(2026, 4, 2, 8), ct(2026, 4, 7, 0))
    assert [(e.ended_trading_date, e.trading_date, e.ts_ns) for e in rec.rolls] == [
        (date(2026, 4, 2), date(2026, 4, 6), ct(2026, 4, 5, 17)),
        (date(2026, 4, 6), date(2026, 4, 7), ct(2026, 4, 6, 17)),
    ]
    assert [e.ts_ns for e in rec.flats] == [ct(2026, 4, 2, 15, 5), ct(2026, 4, 6, 15, 5)]


def test_stop_cancels_pending_timers(cal: TradingCalendar, firm: FirmSchedule) -> None:
    clock = SimClock(ct(2025, 11, 24, 8))
    rec = Recorder(clock)
    timers = SessionTimers(clock, cal, firm, rec.roll, on_flatten=rec.flat)
    timers.start()
    assert timers.next_ns("roll") == ct(2025, 11, 24, 17)
    assert timers.next_ns("flatten") == ct(2025, 11, 24, 15, 5)
    timers.stop()
    clock.advance_to(ct(2025, 11, 26, 8))
    assert rec.rolls == [] and rec.flats == []
    assert clock.timer_names == []


def synthetic(opens_closes: list[tuple[int, int]]) -> TradingCalendar:
    """A calendar of consecutive trading dates with the given (open, close) instants."""
    sessions = []
    d0 = date(2030, 1, 7).toordinal()
    for i, (o, c) in enumerate(opens_closes):
        d = date.fromordinal(d0 + i)
        sessions.append(CalendarSession(d, d, o, c))
    return TradingCalendar(sessions, source="test schedule")


def test_end_of_coverage_reports_an_error_once() -> None:
    h = 3600 * S
    cal = synthetic([(0, 10 * h), (11 * h, 20 * h)])
    clock = SimClock(h)
    rec = Recorder(clock)
    SessionTimers(clock, cal, None, rec.roll, on_error=rec.error).start()
    clock.advance_to(30 * h)
    assert [(e.ts_ns, e.trading_date) for e in rec.rolls] == [(11 * h, date(2030, 1, 8))]
    assert len(rec.errors) == 1 and isinstance(rec.errors[0], CalendarCoverageError)


def test_without_error_handler_the_coverage_error_propagates() -> None:
    h = 3600 * S
    cal = synthetic([(0, 10 * h)])
    with pytest.raises(CalendarCoverageError):
        SessionTimers(SimClock(h), cal, None, lambda e: None).start()


def test_live_clock_fires_the_roll_once_at_the_boundary() -> None:
    """On a LiveClock, a boundary ~200 ms ahead fires once with ts_ns equal to the boundary.

    The lateness (callback time - boundary) is printed, not asserted (tests never assert timings); typical figures
    on an idle machine are 0.1-2 ms, well within the 50 ms target.
    """

    async def main() -> tuple[Recorder, int]:
        now = wall.time_ns()
        boundary = now + 200 * MS
        cal = synthetic(
            [(now - 3600 * S, now + 100 * MS), (boundary, now + 3600 * S), (now + 7200 * S, now + 9000 * S)]
        )
        clock = LiveClock()
        rec = Recorder(clock)
        timers = SessionTimers(clock, cal, None, rec.roll, on_error=rec.error)
        timers.start()
        await asyncio.sleep(0.45)
        timers.stop()
        return rec, boundary

    rec, boundary = asyncio.run(main())
    assert [(e.ended_trading_date, e.trading_date, e.ts_ns) for e in rec.rolls] == [
        (date(2030, 1, 7), date(2030, 1, 8), boundary)
    ]
    assert rec.errors == []
    print(f"LiveClock session roll lateness: {(rec.called_at[0] - boundary) / MS:.3f} ms")
