"""Tests for propdesk.model.calendar: trading dates, session opens/closes, holidays, early closes, product hours.

Expected instants are written as wall-clock times in America/Chicago (converted with zoneinfo here, independently of
the code under test) and, around the DST changes, also as literal UTC times.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from importlib import resources
from zoneinfo import ZoneInfo

import exchange_calendars as xc
import pytest

from propdesk.data.aggregation.sessions import CmeSessions
from propdesk.model import calendar as calendar_module
from propdesk.model.calendar import (
    ALL_PRODUCTS,
    DAILY_HALT,
    EXCHANGE_TZ,
    SESSION_OPEN,
    CalendarCoverageError,
    CalendarError,
    CalendarSession,
    TradingCalendar,
    default_calendar,
    load_calendar,
    local_ns,
)

CT = ZoneInfo("America/Chicago")
XC_VERSION = tuple(int(p) for p in xc.__version__.split(".")[:3] if p.isdigit())
S = 1_000_000_000
H = 3600 * S


def ct(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> int:
    """UTC ns of a Chicago wall-clock time."""
    dt = datetime(y, m, d, hh, mm, tzinfo=CT)
    return int(dt.timestamp()) * S


def utc(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> int:
    return int(datetime(y, m, d, hh, mm, tzinfo=UTC).timestamp()) * S


@pytest.fixture(scope="module")
def cal() -> TradingCalendar:
    return default_calendar()


# ---------------------------------------------------------------------------------------------------- what CMES has


def test_cmes_contents_that_the_calendar_builds_on() -> None:
    """Documents, with code, what exchange_calendars' CMES contains and where propdesk deviates (calendar.toml)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        cmes = xc.get_calendar("CMES", start="2025-01-01", end="2026-12-31")
        sched = cmes.schedule
    special = {d.date() for d in cmes.early_closes}
    # Sessions open 17:00 CT on the previous calendar day, no daily break. The regular close is 16:00 CT from
    # exchange_calendars 4.13.3 (22:00 UTC in November), 17:00 CT before; propdesk takes neither (the session
    # boundary is 17:00 CT, the 16:00-17:00 CT halt comes from product hours).
    assert sched.loc["2025-11-12", "open"] == datetime(2025, 11, 11, 17, tzinfo=CT)
    if XC_VERSION >= (4, 13, 3):
        assert sched.loc["2025-11-12", "close"] == datetime(2025, 11, 12, 22, tzinfo=UTC)
        assert sched.loc["2025-11-12", "close"] == datetime(2025, 11, 12, 16, tzinfo=CT)
    else:
        assert sched.loc["2025-11-12", "close"] == datetime(2025, 11, 12, 17, tzinfo=CT)
    assert date(2025, 11, 12) not in special
    assert cmes.break_start_times is None
    # 12:00 CT special closes on holidays and early-close days, every product.
    assert sched.loc["2025-11-27", "close"] == datetime(2025, 11, 27, 12, tzinfo=CT)
    assert sched.loc["2025-11-28", "close"] == datetime(2025, 11, 28, 12, tzinfo=CT)
    assert sched.loc["2025-12-24", "close"] == datetime(2025, 12, 24, 12, tzinfo=CT)
    assert {date(2025, 11, 27), date(2025, 11, 28), date(2025, 12, 24)} <= special
    # Full closures.
    for closed in ("2025-12-25", "2026-01-01", "2026-04-03"):
        assert closed not in {d.date().isoformat() for d in sched.index}
    # Juneteenth: a 12:00 CT special close from 4.13.3, a full session before (calendar.toml's holiday_sessions
    # gives the halt either way).
    if XC_VERSION >= (4, 13, 3):
        assert sched.loc["2025-06-19", "close"] == datetime(2025, 6, 19, 12, tzinfo=CT)
        assert date(2025, 6, 19) in special
    else:
        assert sched.loc["2025-06-19", "close"] == datetime(2025, 6, 19, 17, tzinfo=CT)
    # Deviation propdesk corrects: no July 3 equity early close (a regular session).
    assert date(2025, 7, 3) not in special
    assert sched.loc["2025-07-03", "close"] == sched.loc["2025-07-03", "open"] + (
        sched.loc["2025-11-12", "close"] - sched.loc["2025-11-12", "open"]
    )


def _cmes_as_before_4_13_3(
    real: Callable[[str, date, date], list[tuple[date, int, int, bool]]],
) -> Callable[[str, date, date], list[tuple[date, int, int, bool]]]:
    """A stub of the CMES session source giving what exchange_calendars before 4.13.3 gave: regular sessions close
    at 17:00 CT (not 16:00) and Juneteenth is a full session (not a 12:00 CT special close)."""

    def sessions(name: str, start: date, end: date) -> list[tuple[date, int, int, bool]]:
        out = []
        for label, open_ns, close_ns, special in real(name, start, end):
            juneteenth = label.month == 6 and label.day in (18, 19, 20) and special  # the only June special close
            regular = juneteenth or not special
            close = ct(label.year, label.month, label.day, 17) if regular else close_ns
            out.append((label, open_ns, close, not regular))
        return out

    return sessions


def test_both_cmes_regular_close_conventions_give_the_same_calendar(
    cal: TradingCalendar, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(calendar_module, "_xcal_sessions", _cmes_as_before_4_13_3(calendar_module._xcal_sessions))
    old = load_calendar()
    assert old.sessions == cal.sessions
    assert old.early_closes == cal.early_closes
    assert old.holidays == cal.holidays
    # A regular close is not an early close, whichever convention the base calendar uses.
    assert date(2025, 11, 25) not in cal.early_closes


# ---------------------------------------------------------------------------------------------------- trading dates


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        (ct(2025, 11, 2, 18), date(2025, 11, 3)),  # Sunday evening fill -> Monday
        (ct(2025, 11, 13, 17, 30), date(2025, 11, 14)),  # Thursday 17:30 -> Friday
        (ct(2025, 11, 13, 16, 59), date(2025, 11, 13)),  # the halt hour belongs to the day it ends
        (ct(2025, 11, 14, 17), date(2025, 11, 17)),  # Friday 17:00 -> Monday
        (ct(2025, 11, 15, 12), date(2025, 11, 17)),  # Saturday -> Monday
        (ct(2025, 11, 27, 10), date(2025, 11, 28)),  # Thanksgiving morning trades carry Friday
        (ct(2025, 11, 26, 17, 30), date(2025, 11, 28)),
        (ct(2025, 12, 24, 13), date(2025, 12, 24)),  # after the early close, before the 17:00 boundary
        (ct(2025, 12, 24, 17), date(2025, 12, 26)),  # Christmas Day is closed
        (ct(2026, 4, 2, 18), date(2026, 4, 6)),  # Good Friday 2026 is closed
        (ct(2025, 7, 4, 9), date(2025, 7, 7)),  # July 4 morning session carries Monday
        (ct(2025, 6, 19, 9), date(2025, 6, 20)),  # Juneteenth (added to CMES) carries Friday
        (ct(2026, 3, 8, 18), date(2026, 3, 9)),  # spring-forward Sunday evening
    ],
)
def test_trading_date(cal: TradingCalendar, ts: int, expected: date) -> None:
    assert cal.trading_date(ts) == expected


def test_day_start_across_dst_changes(cal: TradingCalendar) -> None:
    # 2025-11-02: Sunday open 17:00 CST = 23:00 UTC; the Sunday before, 17:00 CDT = 22:00 UTC.
    assert cal.day_start_ns(date(2025, 11, 3)) == utc(2025, 11, 2, 23)
    assert cal.day_start_ns(date(2025, 10, 27)) == utc(2025, 10, 26, 22)
    assert cal.day_start_ns(date(2025, 11, 4)) == utc(2025, 11, 3, 23)
    # 2026-03-08: Sunday open 17:00 CDT = 22:00 UTC; the Thursday before 17:00 CST = 23:00 UTC.
    assert cal.day_start_ns(date(2026, 3, 9)) == utc(2026, 3, 8, 22)
    assert cal.day_start_ns(date(2026, 3, 6)) == utc(2026, 3, 5, 23)
    assert cal.day_end_ns(date(2026, 3, 9)) == utc(2026, 3, 9, 22)


def test_day_start_after_weekends_holidays_and_closures(cal: TradingCalendar) -> None:
    assert cal.day_start_ns(date(2025, 11, 17)) == ct(2025, 11, 16, 17)  # Monday <- Sunday
    assert cal.day_start_ns(date(2025, 11, 28)) == ct(2025, 11, 26, 17)  # Friday <- Thanksgiving session's open
    assert cal.day_start_ns(date(2025, 12, 26)) == ct(2025, 12, 25, 17)  # reopen after Christmas
    assert cal.day_start_ns(date(2026, 1, 2)) == ct(2026, 1, 1, 17)
    assert cal.day_start_ns(date(2026, 4, 6)) == ct(2026, 4, 5, 17)  # after Good Friday
    assert cal.day_start_ns(date(2025, 7, 7)) == ct(2025, 7, 3, 17)  # July 4 session is Monday's
    assert cal.day_start_ns(date(2026, 1, 20)) == ct(2026, 1, 18, 17)  # MLK Monday folds into Tuesday


def test_holidays_and_early_closes(cal: TradingCalendar) -> None:
    hol = cal.holidays
    for d in (date(2025, 11, 27), date(2025, 12, 25), date(2026, 1, 1), date(2026, 4, 3), date(2025, 7, 4)):
        assert d in hol
    assert date(2025, 6, 19) in hol
    assert date(2025, 11, 28) not in hol
    assert date(2025, 11, 22) not in hol  # weekends are not listed
    early = cal.early_closes
    assert early[date(2025, 11, 28)] == {ALL_PRODUCTS: time(12, 0), "equity_index": time(12, 15)}
    assert early[date(2025, 12, 24)]["equity_index"] == time(12, 15)
    assert early[date(2025, 7, 3)] == {"equity_index": time(12, 15)}
    assert date(2025, 11, 27) not in early  # a holiday session, not a trading date
    assert {s.label for s in cal.holiday_sessions if s.label.year == 2025} == {
        date(2025, 1, 20),
        date(2025, 2, 17),
        date(2025, 5, 26),
        date(2025, 6, 19),
        date(2025, 7, 4),
        date(2025, 9, 1),
        date(2025, 11, 27),
    }


# ---------------------------------------------------------------------------------------------------- closes and hours


def test_session_close_per_product_and_early_close(cal: TradingCalendar) -> None:
    assert cal.session_close_ns(date(2025, 11, 25), "ES") == ct(2025, 11, 25, 16)
    assert cal.session_close_ns(date(2025, 11, 25)) == ct(2025, 11, 25, 16)
    assert cal.session_close_ns(date(2025, 11, 28), "ES") == ct(2025, 11, 28, 12, 15)
    assert cal.session_close_ns(date(2025, 11, 28), "CL") == ct(2025, 11, 28, 12)
    assert cal.session_close_ns(date(2025, 11, 28)) == ct(2025, 11, 28, 12)
    assert cal.session_close_ns(date(2025, 7, 3), "NQ") == ct(2025, 7, 3, 12, 15)
    assert cal.session_close_ns(date(2025, 7, 3), "GC") == ct(2025, 7, 3, 16)
    assert cal.session_close_ns(date(2025, 11, 25), "ZC") == ct(2025, 11, 25, 13, 20)
    assert cal.session_close_ns(date(2025, 11, 25), "LE") == ct(2025, 11, 25, 13, 5)
    assert cal.early_close_ns(date(2025, 11, 28), "MES") == ct(2025, 11, 28, 12, 15)
    assert cal.early_close_ns(date(2025, 11, 25), "MES") is None
    # Friday after Thanksgiving: the Thursday halt, then Friday's own close.
    assert cal.session_closes_ns(date(2025, 11, 28), "ES") == (ct(2025, 11, 27, 12), ct(2025, 11, 28, 12, 15))
    assert cal.session_closes_ns(date(2025, 11, 25), "ES") == (ct(2025, 11, 25, 16),)


@pytest.mark.parametrize(
    ("ts", "product", "expected"),
    [
        (ct(2025, 11, 24, 10), "ES", True),
        (ct(2025, 11, 24, 16, 30), "ES", False),  # daily halt
        (ct(2025, 11, 24, 17), "ES", True),
        (ct(2025, 11, 22, 12), "ES", False),  # Saturday
        (ct(2025, 11, 23, 16, 59), "ES", False),  # Sunday before the open
        (ct(2025, 11, 23, 17), "ES", True),
        (ct(2025, 11, 27, 11), "ES", True),  # Thanksgiving morning
        (ct(2025, 11, 27, 13), "ES", False),  # Thanksgiving halt
        (ct(2025, 11, 27, 17, 30), "ES", True),
        (ct(2025, 11, 28, 12, 10), "ES", True),  # Black Friday equity until 12:15
        (ct(2025, 11, 28, 12, 10), "CL", False),  # energy until 12:00
        (ct(2025, 11, 28, 12, 20), "ES", False),
        (ct(2025, 12, 25, 10), "ES", False),  # Christmas
        (ct(2026, 4, 3, 10), "ES", False),  # Good Friday
        (ct(2025, 11, 24, 8), "ZC", False),  # grain break 07:45-08:30
        (ct(2025, 11, 24, 9), "ZC", True),
        (ct(2025, 11, 24, 14), "ZC", False),  # after the 13:20 grain close
        (ct(2025, 11, 23, 19, 30), "ZC", True),  # Sunday night grains
        (ct(2025, 11, 23, 18), "ZC", False),  # grains open at 19:00
        (ct(2025, 11, 24, 8), "HE", False),  # livestock opens 08:30
        (ct(2025, 11, 24, 9), "HE", True),
        (ct(2025, 11, 24, 10), None, True),
        (ct(2025, 11, 24, 16, 30), None, False),
    ],
)
def test_is_open(cal: TradingCalendar, ts: int, product: str | None, expected: bool) -> None:
    assert cal.is_open(ts, product) is expected


def test_next_session_open(cal: TradingCalendar) -> None:
    assert cal.next_session_open_ns(ct(2025, 11, 14, 15)) == ct(2025, 11, 16, 17)  # Friday -> Sunday 17:00
    assert cal.next_session_open_ns(ct(2025, 11, 27, 12, 30)) == ct(2025, 11, 27, 17)  # Thanksgiving reopen
    assert cal.next_session_open_ns(ct(2025, 12, 24, 13)) == ct(2025, 12, 25, 17)
    assert cal.next_session_open_ns(ct(2026, 4, 2, 16)) == ct(2026, 4, 5, 17)  # Good Friday
    assert cal.next_session_open_ns(ct(2025, 11, 24, 10)) == ct(2025, 11, 24, 17)


def test_week_start(cal: TradingCalendar) -> None:
    assert cal.week_start_ns(ct(2025, 11, 5, 10)) == ct(2025, 11, 2, 17)
    assert cal.week_start_ns(ct(2025, 11, 2, 17)) == ct(2025, 11, 2, 17)
    assert cal.week_start_ns(ct(2025, 11, 2, 16, 59)) == ct(2025, 10, 26, 17)
    assert cal.week_start_ns(ct(2025, 11, 2, 16, 59)) == utc(2025, 10, 26, 22)  # CDT
    assert cal.week_start_ns(ct(2025, 11, 8, 12)) == utc(2025, 11, 2, 23)  # CST


# ---------------------------------------------------------------------------------------------------- errors


def test_dates_outside_the_coverage_raise(cal: TradingCalendar) -> None:
    with pytest.raises(CalendarCoverageError, match="outside the trading calendar"):
        cal.trading_date(ct(2021, 6, 1, 10))
    with pytest.raises(CalendarCoverageError, match="outside the trading calendar"):
        cal.trading_date(ct(2028, 3, 1, 10))
    with pytest.raises(CalendarCoverageError):
        cal.day_start_ns(date(2030, 1, 2))
    with pytest.raises(CalendarCoverageError):
        cal.is_open(ct(2029, 1, 2, 10), "ES")
    with pytest.raises(CalendarCoverageError):
        cal.next_trading_date(cal.last_date)


def test_non_trading_dates_and_unknown_products_raise(cal: TradingCalendar) -> None:
    with pytest.raises(CalendarError, match="not a trading date") as info:
        cal.day_start_ns(date(2025, 12, 25))
    assert not isinstance(info.value, CalendarCoverageError)
    with pytest.raises(CalendarError, match="not a trading date"):
        cal.session_close_ns(date(2025, 11, 27), "ES")
    with pytest.raises(CalendarError, match="no trading hours for product 'XX'"):
        cal.session_close_ns(date(2025, 11, 25), "XX")


def test_missing_juneteenth_halt_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # A base calendar with a full session on a clearing holiday (CMES before exchange_calendars 4.13.3 on Juneteenth)
    # needs the halt from calendar.toml.
    monkeypatch.setattr(calendar_module, "_xcal_sessions", _cmes_as_before_4_13_3(calendar_module._xcal_sessions))
    text = resources.files("propdesk.model.resources").joinpath("calendar.toml").read_text(encoding="utf-8")
    without = text.replace('date = "2025-06-19"', 'date = "2025-06-20"')
    with pytest.raises(CalendarError, match="full session on clearing holiday 2025-06-19"):
        load_calendar(without)


def test_invalid_synthetic_sessions_are_refused() -> None:
    d1, d2 = date(2025, 1, 6), date(2025, 1, 7)
    with pytest.raises(CalendarError, match="overlaps"):
        TradingCalendar([CalendarSession(d1, d1, 0, 10 * S), CalendarSession(d2, d2, 5 * S, 20 * S)])
    with pytest.raises(CalendarError, match="no trading date"):
        TradingCalendar([CalendarSession(d1, d2, 0, 10 * S)])
    with pytest.raises(CalendarError, match="no sessions"):
        TradingCalendar([])


# ---------------------------------------------------------------------------------------------------- data/ sessions


def test_cme_sessions_from_calendar_agree_with_trading_date(cal: TradingCalendar) -> None:
    sessions = CmeSessions.from_calendar(cal)
    assert sessions.holidays == cal.holidays
    ts = ct(2025, 1, 2, 0)
    end = ct(2026, 12, 30, 0)
    while ts < end:
        assert sessions.trade_date(ts) == cal.trading_date(ts), ts
        ts += 3 * H + 17 * 60 * S  # every 3 h 17 min: every hour of the day is visited over the span


@pytest.mark.parametrize(
    ("at", "product", "expected"),
    [
        # Labor Day 2025: equity trades until the 12:00 CT holiday halt, reopens at 17:00 CT
        (ct(2025, 9, 1, 11, 59), "ES", (True, ct(2025, 8, 31, 17), ct(2025, 9, 1, 12))),
        (ct(2025, 9, 1, 12), "ES", (False, ct(2025, 9, 1, 12), ct(2025, 9, 1, 17))),
        (ct(2025, 9, 1, 16, 59), "ES", (False, ct(2025, 9, 1, 12), ct(2025, 9, 1, 17))),
        (ct(2025, 9, 1, 17), "ES", (True, ct(2025, 9, 1, 17), ct(2025, 9, 2, 16))),
        # the daily halt, the weekend (Friday 16:00 -> Sunday 17:00), the day after Thanksgiving (12:15 CT equity)
        (ct(2025, 9, 3, 16, 30), "ES", (False, ct(2025, 9, 3, 16), ct(2025, 9, 3, 17))),
        (ct(2025, 9, 6, 12), "ES", (False, ct(2025, 9, 5, 16), ct(2025, 9, 7, 17))),
        (ct(2025, 11, 28, 12, 20), "ES", (False, ct(2025, 11, 28, 12, 15), ct(2025, 11, 30, 17))),
        # a grain break (07:45-08:30 CT) is a closed span too
        (ct(2025, 9, 3, 8), "ZC", (False, ct(2025, 9, 3, 7, 45), ct(2025, 9, 3, 8, 30))),
    ],
)
def test_open_span(cal: TradingCalendar, at: int, product: str, expected: tuple[bool, int, int]) -> None:
    assert cal.open_span(at, product) == expected
    assert cal.is_open(at, product) is expected[0]


def test_open_span_agrees_with_is_open_minute_by_minute(cal: TradingCalendar) -> None:
    start = ct(2025, 11, 24)  # Thanksgiving week: a holiday halt, an early close and a weekend
    for product in ("ES", "ZC"):
        for minute in range(0, 8 * 24 * 60, 7):
            ts = start + minute * 60_000_000_000
            is_open, lo, hi = cal.open_span(ts, product)
            assert lo <= ts < hi
            assert is_open is cal.is_open(ts, product)
            assert cal.is_open(lo, product) is is_open and cal.is_open(hi - 1, product) is is_open


def test_the_session_constants_are_the_calendars_day_boundary() -> None:
    assert EXCHANGE_TZ == "America/Chicago"
    cal = default_calendar()
    wed = date(2025, 10, 15)
    assert cal.day_start_ns(wed) == local_ns(date(2025, 10, 14), SESSION_OPEN)  # Tuesday 17:00 CT
    assert cal.trading_date(local_ns(date(2025, 10, 14), SESSION_OPEN)) == wed
    assert cal.session_close_ns(wed) == local_ns(wed, DAILY_HALT)  # the 16:00 CT halt ends ES's day
