"""R8 max trades per day/week and R15 excessive contracts (propdesk.risk.rules.trade_limits)."""

from __future__ import annotations

import pytest

from propdesk.model.enums import Side
from propdesk.risk.decisions import Action, EvalPoint
from propdesk.risk.rules.trade_limits import (
    ExcessiveContractsParams,
    ExcessiveContractsRule,
    TradeLimitsParams,
    TradeLimitsRule,
)

from .stub_view import NEXT_DAY_START, StubView, new, pos


def r8() -> TradeLimitsRule:
    return TradeLimitsRule(TradeLimitsParams(max_per_day=10, max_per_week=30))


def test_r8_day_boundary() -> None:
    assert r8().evaluate(StubView(trades_today=9, trades_week=9), EvalPoint.FILL).action is Action.ALLOW
    d = r8().evaluate(StubView(trades_today=10, trades_week=10), EvalPoint.FILL)
    assert d.action is Action.REDUCE_ONLY and d.until_ns == NEXT_DAY_START and "10 trades today" in d.reason


def test_r8_week_boundary() -> None:
    assert r8().evaluate(StubView(trades_today=2, trades_week=29), EvalPoint.FILL).action is Action.ALLOW
    d = r8().evaluate(StubView(trades_today=2, trades_week=30), EvalPoint.FILL)
    assert d.action is Action.REDUCE_ONLY and d.until_ns is None and "weekly limit of 30" in d.reason


@pytest.mark.parametrize("trades", [10, 11, 50])
def test_r8_never_flattens_or_locks_out(trades: int) -> None:
    v = StubView(trades_today=trades, trades_week=trades, positions=[pos("ESH5", 3, upnl="-400")])
    assert r8().evaluate(v, EvalPoint.FILL).action is Action.REDUCE_ONLY


def test_r8_pre_denies_openings_only() -> None:
    v = StubView(trades_today=10, positions=[pos("ESH5", 2)])
    d = r8().check_order(v, new("ESH5", Side.BUY, 1))
    assert d.action is Action.DENY and "daily limit of 10" in d.reason
    assert r8().check_order(v, new("ESH5", Side.SELL, 2)).action is Action.ALLOW
    assert r8().check_order(StubView(trades_today=9), new("ESH5", Side.BUY, 1)).action is Action.ALLOW


def test_r8_needs_a_limit() -> None:
    with pytest.raises(ValueError, match="max_per_day"):
        TradeLimitsParams()


def r15() -> ExcessiveContractsRule:
    return ExcessiveContractsRule(ExcessiveContractsParams(warn=150, block=200))


def test_r15_levels() -> None:
    assert r15().evaluate(StubView(contracts_today=149), EvalPoint.FILL).action is Action.ALLOW
    w = r15().evaluate(StubView(contracts_today=150), EvalPoint.FILL)
    assert w.action is Action.WARN and w.used_fraction == 0.75
    assert r15().evaluate(StubView(contracts_today=199), EvalPoint.FILL).action is Action.WARN
    b = r15().evaluate(StubView(contracts_today=200), EvalPoint.FILL)
    assert b.action is Action.REDUCE_ONLY and b.until_ns == NEXT_DAY_START


def test_r15_pre_denies_passing_the_block() -> None:
    v = StubView(contracts_today=195)
    assert r15().check_order(v, new("ESH5", Side.BUY, 5)).action is Action.ALLOW  # reaches 200
    d = r15().check_order(v, new("ESH5", Side.BUY, 6))
    assert d.action is Action.DENY and "201" in d.reason and "200" in d.reason
    closing = StubView(contracts_today=199, positions=[pos("ESH5", 6)])
    assert r15().check_order(closing, new("ESH5", Side.SELL, 6)).action is Action.ALLOW


def test_r15_params_validated() -> None:
    with pytest.raises(ValueError, match="below block"):
        ExcessiveContractsParams(warn=200, block=200)


def test_r15_without_warn_level() -> None:
    rule = ExcessiveContractsRule(ExcessiveContractsParams(block=200))
    assert rule.evaluate(StubView(contracts_today=199), EvalPoint.FILL).action is Action.ALLOW
    assert rule.evaluate(StubView(contracts_today=200), EvalPoint.FILL).action is Action.REDUCE_ONLY
