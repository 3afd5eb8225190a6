"""The per-evaluation memo of a RuleSet: values several rules need are computed once per evaluation, never reused
across evaluations; R11 remembers the schedule's answers for the current trading date only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from propdesk.model.enums import Side
from propdesk.risk.decisions import Action, EvalPoint
from propdesk.risk.rules.base import RuleSet
from propdesk.risk.rules.common import side_loads
from propdesk.risk.rules.position_limits import (
    MaxPositionParams,
    MaxPositionRule,
    SymbolLimit,
    SymbolLimitsParams,
    SymbolLimitsRule,
)
from propdesk.risk.rules.sessions import FlatTimeParams, FlatTimeRule

from .stub_view import StubView, ct_ns, order, pos


class Schedule:
    """Every product flat at 15:05 CT and entries closed at 15:00 CT of the trading date; records each question."""

    def __init__(self) -> None:
        self.calls: list[tuple[date, str]] = []

    def flat_time_ns(self, d: date, product: str) -> int:
        self.calls.append((d, product))
        return ct_ns(d.year, d.month, d.day, 15, 5)

    def entry_cutoff_ns(self, d: date, product: str) -> int:
        return ct_ns(d.year, d.month, d.day, 15, 0)


@dataclass
class CountingView(StubView):
    """A StubView counting how often its working orders are read."""

    reads: int = 0

    def __getattribute__(self, name: str) -> object:
        if name == "working_orders":
            object.__setattr__(self, "reads", object.__getattribute__(self, "reads") + 1)
        return super().__getattribute__(name)


def rule_set() -> RuleSet:
    return RuleSet(
        [
            MaxPositionRule(MaxPositionParams(limit=Decimal(5), micro_ratio=10)),
            SymbolLimitsRule(SymbolLimitsParams(symbols={"ES": SymbolLimit(long_max=4)})),
            FlatTimeRule(FlatTimeParams(), schedule=Schedule()),
        ]
    )


def test_working_orders_read_once_per_evaluation_and_never_reused() -> None:
    rs = rule_set()
    view = CountingView(positions=[pos("ESH5", 2)])
    assert rs.evaluate(view, EvalPoint.FILL).action is Action.ALLOW
    assert view.reads == 1  # R5, R7 and R11 all need the counted orders: read once
    # a working buy of 3 more: 5 contracts could be long, above R7's 4 (R5's limit of 5 minis is not exceeded)
    view.working_orders = [order("ESH5", Side.BUY, 3)]
    verdict = rs.evaluate(view, EvalPoint.FILL)
    assert view.reads == 2
    assert [(d.rule_id, d.action) for d in verdict.decisions] == [("R7", Action.REDUCE_ONLY)]
    # one more: 6 minis could be held, above R5's limit too
    view.working_orders = [order("ESH5", Side.BUY, 3), order("ESH5", Side.BUY, 1)]
    verdict = rs.evaluate(view, EvalPoint.FILL)
    assert sorted(d.rule_id for d in verdict.decisions) == ["R5", "R7"]
    view.working_orders = []
    assert rs.evaluate(view, EvalPoint.FILL).action is Action.ALLOW


def test_side_loads_outside_a_rule_set_is_computed_on_each_call() -> None:
    view = CountingView(positions=[pos("ESH5", 2)], working_orders=[order("ESH5", Side.SELL, 1)])
    first = side_loads(view)
    second = side_loads(view)
    assert view.reads == 2
    assert first == second and (first["ESH5"].p, first["ESH5"].buy, first["ESH5"].sell) == (2, 0, 1)


def test_r11_asks_the_schedule_again_for_a_new_trading_date() -> None:
    sched = Schedule()
    r11 = FlatTimeRule(FlatTimeParams(), schedule=sched)
    d1, d2 = date(2025, 3, 5), date(2025, 3, 6)
    day1 = StubView(now_ns=ct_ns(2025, 3, 5, 15, 6), trading_date=d1, positions=[pos("ESH5", 1)])
    assert r11.evaluate(day1, EvalPoint.CLOCK).action is Action.LOCKOUT
    calls = len(sched.calls)
    assert r11.evaluate(day1, EvalPoint.CLOCK).action is Action.LOCKOUT
    assert len(sched.calls) == calls  # the same date: remembered
    # the next day at 10:00 CT is before its flat time: the answer comes from the new date
    day2 = StubView(
        now_ns=ct_ns(2025, 3, 6, 10),
        trading_date=d2,
        day_start_ns=ct_ns(2025, 3, 5, 17),
        positions=[pos("ESH5", 1)],
    )
    assert r11.evaluate(day2, EvalPoint.CLOCK).action is Action.ALLOW
    assert (d2, "ES") in sched.calls
