"""R16 consistency tracker (propdesk.risk.rules.consistency)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from propdesk.risk.decisions import Action, EvalPoint
from propdesk.risk.rules.consistency import ConsistencyParams, ConsistencyRule, best_day_share, consistency_cap

from .stub_view import StubView, usd

PRIOR = [(date(2025, 3, 3), usd(500)), (date(2025, 3, 4), usd(700)), (date(2025, 2, 28), usd(600))]  # $1,800


def r16() -> ConsistencyRule:
    return ConsistencyRule(ConsistencyParams(max_best_day_pct=Decimal("0.40")))


def test_today_at_the_ratio_warns() -> None:
    # 1,200 / 3,000 = 40%: the ratio must stay below 40%
    d = r16().evaluate(StubView(day_realized_net=usd(1200), daily_net_history=PRIOR), EvalPoint.FILL)
    assert d.action is Action.WARN and d.used_fraction == 1.0
    assert "40.0%" in d.reason and "$3,000.00" in d.reason and "$1,200.00" in d.reason
    ok = r16().evaluate(StubView(day_realized_net=usd("1199.99"), daily_net_history=PRIOR), EvalPoint.FILL)
    assert ok.action is Action.ALLOW


def test_spec_example_ratio_passes() -> None:
    # $900 best of $2,800 total = 32% (help.futures.topstep.com 4405772379155)
    hist = [(date(2025, 3, d), usd(x)) for d, x in ((1, 900), (2, 700), (3, 600), (4, 600))]
    assert r16().evaluate(StubView(daily_net_history=hist), EvalPoint.CLOCK).action is Action.ALLOW


def test_no_warning_when_today_is_not_the_best_or_not_positive() -> None:
    hist = [(date(2025, 3, 3), usd(2000)), (date(2025, 3, 4), usd(100))]
    assert r16().evaluate(StubView(day_realized_net=usd(500), daily_net_history=hist), EvalPoint.FILL).action is (
        Action.ALLOW
    )
    assert r16().evaluate(StubView(day_realized_net=usd(-50), daily_net_history=PRIOR), EvalPoint.FILL).action is (
        Action.ALLOW
    )
    # total profit not positive: no ratio
    losing = [(date(2025, 3, 4), usd(-3000))]
    assert r16().evaluate(StubView(day_realized_net=usd(500), daily_net_history=losing), EvalPoint.FILL).action is (
        Action.ALLOW
    )


def test_todays_own_history_entry_is_ignored() -> None:
    hist = [*PRIOR, (date(2025, 3, 5), usd(99999))]  # StubView.trading_date is 2025-03-05
    d = r16().evaluate(StubView(day_realized_net=usd(1200), daily_net_history=hist), EvalPoint.FILL)
    assert d.action is Action.WARN and d.used_fraction == 1.0


def test_cap_formula() -> None:
    assert consistency_cap([usd(1800)], Decimal("0.40")) == usd(1200)
    assert consistency_cap([usd(1000)], Decimal("0.5")) == usd(1000)
    assert consistency_cap([usd("100.00")], Decimal("0.3")) == usd("42.85")  # 42.857... rounded down
    assert consistency_cap([usd(-5)], Decimal("0.4")) is None


def test_best_day_share_of_the_spec_example_ties_and_no_profit() -> None:
    days = [(date(2025, 3, 3), usd(900)), (date(2025, 3, 4), usd(-100)), (date(2025, 3, 5), usd(2000))]
    total, best, share = best_day_share(days)
    assert total == usd(2800) and best == (date(2025, 3, 5), usd(2000)) and share == Decimal(2000) / Decimal(2800)
    tie = [(date(2025, 3, 3), usd(500)), (date(2025, 3, 4), usd(500))]
    assert best_day_share(tie)[1:] == ((date(2025, 3, 3), usd(500)), Decimal("0.5"))  # the first of equal bests
    assert best_day_share([(date(2025, 3, 3), usd(-50))])[2] is None  # no profit: no share
    assert best_day_share([]) == (usd(0), None, None)
