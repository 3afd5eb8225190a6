"""Rules inside a RuleSet: the most restrictive decision wins, and a failing rule fails closed."""

from __future__ import annotations

from datetime import date

from propdesk.model.enums import Side
from propdesk.risk.decisions import Action, EvalPoint, TradingState
from propdesk.risk.rules.base import RuleSet
from propdesk.risk.rules.daily_loss import FirmDailyLossParams, FirmDailyLossRule
from propdesk.risk.rules.sessions import FlatTimeParams, FlatTimeRule
from propdesk.risk.rules.trade_limits import (
    ExcessiveContractsParams,
    ExcessiveContractsRule,
    TradeLimitsParams,
    TradeLimitsRule,
)

from .stub_view import NEXT_DAY_START, StubView, new, usd


class BrokenSchedule:
    def flat_time_ns(self, d: date, product: str) -> int:
        raise KeyError(f"the calendar does not cover {d}")

    def entry_cutoff_ns(self, d: date, product: str) -> int:
        raise KeyError(f"the calendar does not cover {d}")


def test_raising_rule_fails_closed() -> None:
    rs = RuleSet([FlatTimeRule(FlatTimeParams(), schedule=BrokenSchedule())])
    v = rs.evaluate(StubView(), EvalPoint.CLOCK)
    assert v.action is Action.REDUCE_ONLY and v.state is TradingState.REDUCING
    assert v.decisions[0].rule_id == "R11" and "does not cover" in v.reasons
    pre = rs.check_order(StubView(), new("ESH5", Side.BUY, 1))
    assert not pre.allowed and pre.decisions[0].rule_id == "R11"


def test_most_restrictive_wins() -> None:
    rs = RuleSet(
        [
            FirmDailyLossRule(FirmDailyLossParams(amount="1000", default_risk_ticks=20), firm=True),  # type: ignore[arg-type]
            TradeLimitsRule(TradeLimitsParams(max_per_day=5)),
            ExcessiveContractsRule(ExcessiveContractsParams(warn=150, block=200)),
        ]
    )
    view = StubView(day_realized_net=usd(-1000), trades_today=5, contracts_today=160)
    v = rs.evaluate(view, EvalPoint.FILL)
    assert v.action is Action.LOCKOUT and v.state is TradingState.HALTED and v.until_ns == NEXT_DAY_START
    assert [d.rule_id for d in v.decisions] == ["R2", "R8", "R15"]
    calm = rs.evaluate(StubView(contracts_today=160), EvalPoint.FILL)
    assert calm.action is Action.WARN and calm.allowed
