"""R2 firm daily loss limit and R3 personal daily loss (propdesk.risk.rules.daily_loss)."""

from __future__ import annotations

import pytest

from propdesk.model.enums import Side
from propdesk.risk.decisions import Action, EvalPoint
from propdesk.risk.rules.daily_loss import (
    FirmDailyLossParams,
    FirmDailyLossRule,
    PersonalDailyLossParams,
    PersonalDailyLossRule,
)

from .stub_view import NEXT_DAY_START, StubView, new, pos, usd


def r2(amount: str | None = "1000", **kw: object) -> FirmDailyLossRule:
    return FirmDailyLossRule(
        FirmDailyLossParams(amount=amount, trigger_buffer_usd="100", default_risk_ticks=20, **kw),  # type: ignore[arg-type]
        firm=True,
    )


def net(x: str, **kw: object) -> StubView:
    return StubView(day_realized_net=usd(x), **kw)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------------------ R2


def test_r2_boundaries_with_buffer() -> None:
    assert r2().evaluate(net("-899.99"), EvalPoint.QUOTE).action is Action.ALLOW
    at = r2().evaluate(net("-900.00"), EvalPoint.QUOTE)
    assert at.action is Action.LOCKOUT and at.until_ns == NEXT_DAY_START and at.rule_id == "R2" and at.firm
    over = r2().evaluate(net("-1012.50"), EvalPoint.FILL)
    assert over.action is Action.LOCKOUT
    assert over.reason.startswith("day net -$1,012.50 reached the $1,000.00 daily loss limit (buffer $100.00)")


def test_r2_day_net_includes_unrealized() -> None:
    v = StubView(day_realized_net=usd("-600"), unrealized=usd("-300"))
    assert r2().evaluate(v, EvalPoint.QUOTE).action is Action.LOCKOUT


def test_r2_off_when_amount_is_none() -> None:
    v = net("-5000")
    assert r2(None).evaluate(v, EvalPoint.QUOTE).action is Action.ALLOW
    assert r2(None).check_order(v, new("ESH5", Side.BUY, 1)).action is Action.ALLOW
    assert "off" in r2(None).describe()


def test_r2_warn_pct() -> None:
    d = r2(warn_pct=(50,)).evaluate(net("-500"), EvalPoint.QUOTE)
    assert d.action is Action.WARN and d.used_fraction == 0.5
    assert r2(warn_pct=(50,)).evaluate(net("-499.99"), EvalPoint.QUOTE).action is Action.ALLOW


def test_r2_pre_deny_with_order_risk() -> None:
    v = net("-400")
    d = r2().check_order(v, new("ESH5", Side.BUY, 2))  # -400 - 500 = -900 = -1000 + 100
    assert d.action is Action.DENY and "$500.00" in d.reason and "-$400.00" in d.reason
    assert r2().check_order(v, new("ESH5", Side.BUY, 1)).action is Action.ALLOW  # -650
    closing = net("-899", positions=[pos("ESH5", -1)])
    assert r2().check_order(closing, new("ESH5", Side.BUY, 1)).action is Action.ALLOW


# ------------------------------------------------------------------------------------------------------------ R3


def r3(**kw: object) -> PersonalDailyLossRule:
    base: dict[str, object] = {"amount": "500", "default_risk_ticks": 20}
    base.update(kw)
    return PersonalDailyLossRule(PersonalDailyLossParams(**base))  # type: ignore[arg-type]


def test_r3_fixed_boundaries() -> None:
    rule = r3(action="liquidate_and_block")
    assert rule.evaluate(net("-499.99"), EvalPoint.QUOTE).action is Action.ALLOW
    at = rule.evaluate(net("-500"), EvalPoint.QUOTE)
    assert at.action is Action.LOCKOUT and at.until_ns == NEXT_DAY_START and not at.firm
    assert "-$500.00" in at.reason and "$500.00 personal daily loss limit" in at.reason
    assert rule.evaluate(net("-500.01"), EvalPoint.FILL).action is Action.LOCKOUT
    buffered = r3(trigger_buffer_usd="50")
    assert buffered.evaluate(net("-450"), EvalPoint.QUOTE).action is Action.LOCKOUT
    assert buffered.evaluate(net("-449.99"), EvalPoint.QUOTE).action is Action.ALLOW


@pytest.mark.parametrize(
    ("setting", "action", "until"),
    [
        ("do_nothing", Action.WARN, None),
        ("liquidate", Action.FLATTEN, None),
        ("liquidate_and_block", Action.LOCKOUT, NEXT_DAY_START),
    ],
)
def test_r3_action_variants(setting: str, action: Action, until: int | None) -> None:
    d = r3(action=setting).evaluate(net("-600"), EvalPoint.QUOTE)
    assert d.action is action and d.until_ns == until
    if action is Action.WARN:
        assert d.used_fraction == 1.2


def test_r3_trailing_realized_spec_example() -> None:
    # $500 trailing on $50,000 -> $49,500; at a $51,200 high -> $50,700 (help.topstep.com 10490293)
    rule = r3(mode="trailing", basis="realized")
    assert rule.evaluate(StubView(balance=usd("49500.01")), EvalPoint.FILL).action is Action.ALLOW
    d = rule.evaluate(StubView(balance=usd("49500")), EvalPoint.FILL)
    assert d.action is Action.LOCKOUT and "$49,500.00" in d.reason and "$50,000.00" in d.reason
    high = usd("51200")
    assert rule.evaluate(StubView(balance=usd("50700.01"), day_peak_realized=high), EvalPoint.FILL).action is (
        Action.ALLOW
    )
    d2 = rule.evaluate(StubView(balance=usd("50700"), day_peak_realized=high), EvalPoint.FILL)
    assert d2.action is Action.LOCKOUT and "$50,700.00" in d2.reason and "$51,200.00" in d2.reason


def test_r3_trailing_unrealized_uses_equity_and_its_peak() -> None:
    v = StubView(balance=usd("50800"), unrealized=usd("-100"), day_peak_equity=usd("51200"))
    assert r3(mode="trailing", basis="unrealized").evaluate(v, EvalPoint.QUOTE).action is Action.LOCKOUT
    # the realized basis ignores the unrealized loss and the equity peak
    assert r3(mode="trailing", basis="realized").evaluate(v, EvalPoint.QUOTE).action is Action.ALLOW


def test_r3_trailing_peak_never_below_start_of_day() -> None:
    v = StubView(balance=usd("49500"), day_peak_realized=usd("0"))
    assert r3(mode="trailing").evaluate(v, EvalPoint.FILL).action is Action.LOCKOUT


def test_r3_pre_headroom() -> None:
    v = net("-300")  # headroom $200
    d = r3().check_order(v, new("ESH5", Side.BUY, 1))  # default risk $250
    assert d.action is Action.DENY and "$250.00" in d.reason and "$200.00" in d.reason
    o = new("ESH5", Side.BUY, 1)
    v.stop_risks[o.client_order_id] = usd("199.99")
    assert r3().check_order(v, o).action is Action.ALLOW
    v.stop_risks[o.client_order_id] = usd("200")
    assert r3().check_order(v, o).action is Action.DENY
    assert r3(action="do_nothing").check_order(net("-300"), new("ESH5", Side.BUY, 1)).action is Action.WARN
    flat_ok = net("-300", positions=[pos("ESH5", 3)])
    assert r3().check_order(flat_ok, new("ESH5", Side.SELL, 3)).action is Action.ALLOW


def test_r3_warn_pct() -> None:
    d = r3(warn_pct=(80,)).evaluate(net("-400"), EvalPoint.QUOTE)
    assert d.action is Action.WARN and d.used_fraction == 0.8
