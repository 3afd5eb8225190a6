"""R1 MLL floor (propdesk.risk.rules.mll)."""

from __future__ import annotations

from propdesk.model.enums import Side
from propdesk.risk.decisions import Action, EvalPoint
from propdesk.risk.rules.mll import MllParams, MllRule

from .stub_view import NEXT_DAY_START, StubView, new, pos, usd


def rule() -> MllRule:
    return MllRule(
        MllParams(amount=usd(2000), trigger_buffer_usd=usd(100), warn_pct=(70, 85, 95), default_risk_ticks=20),
        firm=True,
    )


def at_equity(eq: str, **kw: object) -> StubView:
    return StubView(balance=usd(eq), **kw)  # type: ignore[arg-type]


def test_boundaries_around_buffer_and_floor() -> None:
    r = rule()
    just_above = r.evaluate(at_equity("48100.01"), EvalPoint.QUOTE)
    assert just_above.action is Action.WARN  # 1,899.99 of 2,000 used = 94.9995% -> the 85% level
    assert "85%" in just_above.reason
    at_buffer = r.evaluate(at_equity("48100.00"), EvalPoint.QUOTE)
    assert at_buffer.action is Action.LOCKOUT and at_buffer.until_ns == NEXT_DAY_START and at_buffer.firm
    assert "$48,100.00" in at_buffer.reason and "$48,000.00" in at_buffer.reason and "$100.00" in at_buffer.reason
    below_buffer = r.evaluate(at_equity("48099.99"), EvalPoint.FILL)
    assert below_buffer.action is Action.LOCKOUT and below_buffer.until_ns == NEXT_DAY_START
    failed = r.evaluate(at_equity("48000.00"), EvalPoint.QUOTE)
    assert failed.action is Action.LOCKOUT and failed.until_ns is None and "failed" in failed.reason
    assert r.evaluate(at_equity("47999.99"), EvalPoint.CLOCK).until_ns is None


def test_equity_includes_unrealized() -> None:
    v = StubView(balance=usd(48500), unrealized=usd(-400))  # equity 48,100 = floor + buffer
    assert rule().evaluate(v, EvalPoint.QUOTE).action is Action.LOCKOUT


def test_warn_levels_and_used_fraction() -> None:
    r = rule()
    assert r.evaluate(at_equity("49400"), EvalPoint.QUOTE).action is Action.ALLOW  # 30% used
    assert r.evaluate(at_equity("48600.01"), EvalPoint.QUOTE).action is Action.ALLOW  # 69.9995%
    d = r.evaluate(at_equity("48600"), EvalPoint.QUOTE)  # exactly 70%
    assert d.action is Action.WARN and d.used_fraction == 0.7 and "70%" in d.reason
    d85 = r.evaluate(at_equity("48200"), EvalPoint.QUOTE)  # 1,800 used = 90%: the 85% level
    assert d85.action is Action.WARN and "85%" in d85.reason and d85.used_fraction == 0.9


def test_floor_locked_at_start_reports_no_use() -> None:
    # after the floor locked at the start balance, equity far above it uses nothing
    v = StubView(balance=usd(53000), mll_floor=usd(50000))
    assert rule().evaluate(v, EvalPoint.QUOTE).action is Action.ALLOW


def test_unknown_floor_is_reduce_only_and_denies_openings() -> None:
    v = StubView(mll_floor=None, positions=[pos("ESH5", 2)])
    assert rule().evaluate(v, EvalPoint.CLOCK).action is Action.REDUCE_ONLY
    assert rule().check_order(v, new("ESH5", Side.BUY, 1)).action is Action.DENY
    assert rule().check_order(v, new("ESH5", Side.SELL, 2)).action is Action.ALLOW


def test_pre_default_risk_ticks() -> None:
    v = at_equity("48600")
    # 2 ES x 20 ticks x $12.50 = $500 -> 48,100 = floor + buffer -> deny
    d = rule().check_order(v, new("ESH5", Side.BUY, 2))
    assert d.action is Action.DENY and "$500.00" in d.reason and "$48,000.00" in d.reason
    assert rule().check_order(v, new("ESH5", Side.BUY, 1)).action is Action.ALLOW  # 48,350
    # micros: 20 ticks x $1.25 x 10 MES = $250
    assert rule().check_order(v, new("MESH5", Side.BUY, 10)).action is Action.ALLOW


def test_pre_uses_attached_stop_risk() -> None:
    o = new("ESH5", Side.BUY, 2)
    v = at_equity("48600", stop_risks={o.client_order_id: usd("300")})
    assert rule().check_order(v, o).action is Action.ALLOW
    v.stop_risks[o.client_order_id] = usd("500")
    assert rule().check_order(v, o).action is Action.DENY


def test_pre_reducing_orders_always_pass() -> None:
    v = at_equity("48100.50", positions=[pos("ESH5", 2)])
    assert rule().check_order(v, new("ESH5", Side.SELL, 2)).action is Action.ALLOW
    assert rule().check_order(v, new("ESH5", Side.SELL, 3)).action is Action.DENY  # would flip short 1
