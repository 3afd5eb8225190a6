"""R4 personal daily profit target (propdesk.risk.rules.profit_target)."""

from __future__ import annotations

from datetime import date

import pytest

from propdesk.risk.decisions import Action, EvalPoint
from propdesk.risk.rules.profit_target import ProfitTargetParams, ProfitTargetRule

from .stub_view import NEXT_DAY_START, StubView, usd


def r4(**kw: object) -> ProfitTargetRule:
    base: dict[str, object] = {"target": "200"}
    base.update(kw)
    return ProfitTargetRule(ProfitTargetParams(**base))  # type: ignore[arg-type]


def net(x: str, **kw: object) -> StubView:
    return StubView(day_realized_net=usd(x), **kw)  # type: ignore[arg-type]


def test_spec_example_target_200_hit_at_205() -> None:
    assert r4().evaluate(net("199.99"), EvalPoint.QUOTE).action is Action.ALLOW
    at = r4().evaluate(net("200"), EvalPoint.QUOTE)
    assert at.action is Action.LOCKOUT and at.until_ns == NEXT_DAY_START
    d = r4().evaluate(net("205"), EvalPoint.FILL)
    assert d.action is Action.LOCKOUT and "$205.00" in d.reason and "$200.00 daily profit target" in d.reason


def test_unrealized_counts() -> None:
    assert r4().evaluate(StubView(day_realized_net=usd(150), unrealized=usd(50)), EvalPoint.QUOTE).action is (
        Action.LOCKOUT
    )


def test_buffer_triggers_earlier() -> None:
    assert r4(trigger_buffer_usd="10").evaluate(net("190"), EvalPoint.QUOTE).action is Action.LOCKOUT
    assert r4(trigger_buffer_usd="10").evaluate(net("189.99"), EvalPoint.QUOTE).action is Action.ALLOW


@pytest.mark.parametrize(
    ("setting", "action", "until"),
    [
        ("do_nothing", Action.WARN, None),
        ("liquidate", Action.FLATTEN, None),
        ("liquidate_and_block", Action.LOCKOUT, NEXT_DAY_START),
    ],
)
def test_action_variants(setting: str, action: Action, until: int | None) -> None:
    d = r4(action=setting).evaluate(net("205"), EvalPoint.QUOTE)
    assert d.action is action and d.until_ns == until
    if action is Action.WARN:
        assert d.used_fraction == 1.025


def test_warn_pct() -> None:
    d = r4(warn_pct=(50,)).evaluate(net("100"), EvalPoint.QUOTE)
    assert d.action is Action.WARN and d.used_fraction == 0.5 and "50%" in d.reason


def test_consistency_cap_lowers_the_target() -> None:
    hist = [(date(2025, 3, 3), usd(900)), (date(2025, 3, 4), usd(600))]  # prior total $1,500
    rule = r4(target="2000", max_best_day_pct="0.40")  # cap = 0.4 x 1500 / 0.6 = $1,000
    assert rule.evaluate(net("999.99", daily_net_history=hist), EvalPoint.QUOTE).action is Action.ALLOW
    d = rule.evaluate(net("1000", daily_net_history=hist), EvalPoint.QUOTE)
    assert d.action is Action.LOCKOUT and "$1,000.00" in d.reason and "consistency" in d.reason
    # no positive prior total: no cap
    losing = [(date(2025, 3, 4), usd(-300))]
    assert rule.evaluate(net("1500", daily_net_history=losing), EvalPoint.QUOTE).action is Action.ALLOW
    # a cap above the target leaves the target
    assert r4(max_best_day_pct="0.40").evaluate(net("200", daily_net_history=hist), EvalPoint.QUOTE).action is (
        Action.LOCKOUT
    )
