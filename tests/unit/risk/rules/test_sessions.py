"""R10 session windows and R11 hard flat time (propdesk.risk.rules.sessions)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError

from propdesk.model.enums import Side
from propdesk.risk.decisions import Action, EvalPoint
from propdesk.risk.rules.sessions import (
    FlatTimeParams,
    FlatTimeRule,
    SessionWindowsParams,
    SessionWindowsRule,
)

from .stub_view import NEXT_DAY_START, StubView, ct_ns, new, order, pos


def r10(*windows: object, end: str = "reduce_only") -> SessionWindowsRule:
    return SessionWindowsRule(SessionWindowsParams(windows=windows, on_window_end=end))  # type: ignore[arg-type]


def at(h: int, mi: int = 0, s: int = 0, d: int = 5, **kw: object) -> StubView:
    return StubView(now_ns=ct_ns(2025, 3, d, h, mi, s), **kw)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------------------- R10


def test_r10_inside_and_window_end() -> None:
    rule = r10("new_york")
    assert rule.evaluate(at(10), EvalPoint.CLOCK).action is Action.ALLOW
    assert rule.evaluate(at(15, 59, 59), EvalPoint.CLOCK).action is Action.ALLOW
    d = rule.evaluate(at(16), EvalPoint.CLOCK)
    assert d.action is Action.REDUCE_ONLY and d.until_ns == ct_ns(2025, 3, 6, 7)
    assert "07:00-16:00 CT" in d.reason
    early = rule.evaluate(at(6, 59, 59), EvalPoint.CLOCK)
    assert early.action is Action.REDUCE_ONLY and early.until_ns == ct_ns(2025, 3, 5, 7)
    assert rule.evaluate(at(7), EvalPoint.CLOCK).action is Action.ALLOW


def test_r10_flatten_variant() -> None:
    d = r10("new_york", end="flatten").evaluate(at(16), EvalPoint.CLOCK)
    assert d.action is Action.FLATTEN and d.until_ns == ct_ns(2025, 3, 6, 7)


def test_r10_window_across_midnight() -> None:
    rule = r10("tokyo")  # 18:00-03:00 CT
    assert rule.evaluate(at(23), EvalPoint.CLOCK).action is Action.ALLOW
    assert rule.evaluate(at(2, 59, 59), EvalPoint.CLOCK).action is Action.ALLOW
    d = rule.evaluate(at(3), EvalPoint.CLOCK)
    assert d.action is Action.REDUCE_ONLY and d.until_ns == ct_ns(2025, 3, 5, 18)


def test_r10_custom_windows_and_next_start_across_dst() -> None:
    rule = r10({"start": "08:30", "end": "11:00"}, {"start": "13:00", "end": "15:00"})
    assert rule.evaluate(at(12), EvalPoint.CLOCK).until_ns == ct_ns(2025, 3, 5, 13)
    # Saturday evening before the spring-forward Sunday: 07:00 CDT is 12:00 UTC (it was 13:00 UTC in CST)
    ny = r10("new_york")
    sat = StubView(now_ns=ct_ns(2025, 3, 8, 20))
    assert ny.next_start_ns(sat.now_ns) == int(datetime(2025, 3, 9, 12, tzinfo=UTC).timestamp()) * 10**9


def test_r10_pre() -> None:
    rule = r10("new_york")
    d = rule.check_order(at(17), new("ESH5", Side.BUY, 1))
    assert d.action is Action.DENY and "outside the session windows" in d.reason
    assert rule.check_order(at(17, positions=[pos("ESH5", 1)]), new("ESH5", Side.SELL, 1)).action is Action.ALLOW
    assert rule.check_order(at(9), new("ESH5", Side.BUY, 1)).action is Action.ALLOW


def test_r10_bad_preset() -> None:
    with pytest.raises(ValidationError, match="unknown session preset"):
        SessionWindowsParams(windows=("mars",))  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------------------- R11


class StubSchedule:
    """ES flat 15:05 CT, cutoff 15:00 CT; CL (an early-close product here) flat 12:25, cutoff 12:20 CT."""

    def __init__(self) -> None:
        self.calls: list[tuple[date, str]] = []

    def flat_time_ns(self, d: date, product: str) -> int:
        self.calls.append((d, product))
        return ct_ns(d.year, d.month, d.day, 12, 25) if product == "CL" else ct_ns(d.year, d.month, d.day, 15, 5)

    def entry_cutoff_ns(self, d: date, product: str) -> int:
        return ct_ns(d.year, d.month, d.day, 12, 20) if product == "CL" else ct_ns(d.year, d.month, d.day, 15, 0)


def r11() -> FlatTimeRule:
    return FlatTimeRule(FlatTimeParams(), schedule=StubSchedule())


def test_r11_entry_cutoff() -> None:
    assert r11().check_order(at(14, 59, 59), new("ESH5", Side.BUY, 1)).action is Action.ALLOW
    d = r11().check_order(at(15), new("ESH5", Side.BUY, 1))
    assert d.action is Action.DENY
    assert d.reason == "ES entries stop at 2025-03-05 15:00 CT (flat at 2025-03-05 15:05 CT)"
    assert r11().check_order(at(15, positions=[pos("ESH5", 2)]), new("ESH5", Side.SELL, 2)).action is Action.ALLOW
    assert r11().check_order(at(12, 20), new("CLJ5", Side.BUY, 1)).action is Action.DENY


def test_r11_flat_time_locks_out_until_next_session() -> None:
    held = at(15, 4, 59, positions=[pos("ESH5", 2)])
    w = r11().evaluate(held, EvalPoint.CLOCK)
    assert w.action is Action.WARN and w.symbol == "ESH5"
    d = r11().evaluate(at(15, 5, positions=[pos("ESH5", 2)]), EvalPoint.CLOCK)
    assert d.action is Action.LOCKOUT and d.until_ns == NEXT_DAY_START and d.firm
    assert r11().evaluate(at(15, 5), EvalPoint.CLOCK).action is Action.LOCKOUT  # flat accounts are locked too
    friday_next = ct_ns(2025, 3, 9, 17)  # Sunday 17:00 CT
    fri = StubView(
        now_ns=ct_ns(2025, 3, 7, 15, 6),
        trading_date=date(2025, 3, 7),
        day_start_ns=ct_ns(2025, 3, 6, 17),
        next_day_start_ns=friday_next,
    )
    assert r11().evaluate(fri, EvalPoint.CLOCK).until_ns == friday_next


def test_r11_early_close_product_is_closed_alone() -> None:
    v = at(12, 25, positions=[pos("CLJ5", 1), pos("ESH5", 1)])
    d = r11().evaluate(v, EvalPoint.CLOCK)
    assert d.action is Action.CLOSE_POSITION and d.symbol == "CLJ5"
    assert r11().evaluate(at(12, 25, working_orders=[order("CLJ5", Side.BUY, 1)]), EvalPoint.CLOCK).symbol == "CLJ5"
    assert r11().evaluate(at(12, 24, 59, positions=[pos("CLJ5", 1)]), EvalPoint.CLOCK).action is Action.WARN
    assert r11().evaluate(at(12, 25, positions=[pos("ESH5", 1)]), EvalPoint.CLOCK).action is Action.ALLOW


def test_r11_between_sessions() -> None:
    # the trading date already rolled to Thursday, whose session opens at 17:00 CT
    v = StubView(now_ns=ct_ns(2025, 3, 5, 16, 30), trading_date=date(2025, 3, 6), day_start_ns=ct_ns(2025, 3, 5, 17))
    d = r11().evaluate(v, EvalPoint.CLOCK)
    assert d.action is Action.LOCKOUT and d.until_ns == ct_ns(2025, 3, 5, 17)
    assert r11().check_order(v, new("ESH5", Side.BUY, 1)).action is Action.DENY


def test_r11_reads_the_schedule_for_the_trading_date() -> None:
    sched = StubSchedule()
    FlatTimeRule(FlatTimeParams(), schedule=sched).evaluate(at(10, positions=[pos("CLJ5", 1)]), EvalPoint.CLOCK)
    assert (date(2025, 3, 5), "ES") in sched.calls and (date(2025, 3, 5), "CL") in sched.calls
