"""The Combine evaluation (pass / fail / in progress) from day closes and rule breaches."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal

from propdesk.backtest.evaluation import HaltAtEnd, evaluate_combine
from propdesk.model.identifiers import AccountId
from propdesk.model.price import Money
from propdesk.risk.decisions import Action, Decision, EvalPoint, TradingState
from propdesk.risk.engine import DayClose
from propdesk.risk.events import RuleBreached

START = Money.of(50_000)
TARGET = Money.of(3_000)
D0 = date(2025, 10, 6)
DAY_NS = 86_400_000_000_000
T0 = 1_759_700_000_000_000_000  # an instant on D0's trading date (see ``date_of``)


def date_of(ts_ns: int) -> date:
    return D0 + timedelta(days=(ts_ns - T0) // DAY_NS)


def days(*pnl_usd: int, trades: int = 4) -> list[DayClose]:
    out: list[DayClose] = []
    bal = START.cents
    for k, usd in enumerate(pnl_usd):
        bal += usd * 100
        out.append(
            DayClose(
                trading_date=D0 + timedelta(days=k),
                net_pnl=Money(usd * 100),
                balance=Money(bal),
                mll_floor=Money.of(48_000),
                trades=trades if usd else 0,
                contracts=trades if usd else 0,
            )
        )
    return out


def breach(day: int, rule_id: str, *, until_ns: int | None, firm: bool = True) -> RuleBreached:
    d = Decision(rule_id=rule_id, action=Action.LOCKOUT, reason=f"{rule_id} test", until_ns=until_ns, firm=firm)
    return RuleBreached(
        account_id=AccountId(1),
        ts_ns=T0 + day * DAY_NS,
        point=EvalPoint.QUOTE,
        decision=d,
        state=TradingState.HALTED,
    )


def run(ds: list[DayClose], breaches: list[RuleBreached] = (), pct: str | None = "0.40"):  # type: ignore[assignment, no-untyped-def]
    return evaluate_combine(
        ds,
        breaches,
        start_balance=START,
        profit_target=TARGET,
        max_best_day_pct=None if pct is None else Decimal(pct),
        trading_date_of=date_of,
        preset="topstep-50k-combine",
    )


def test_passes_on_the_first_day_with_target_and_consistency() -> None:
    ev = run(days(800, 0, 700, 900, 700, 500))  # total 3,100 on day 4; best 900 = 29%
    assert ev.status == "passed"
    assert ev.passed_on == D0 + timedelta(days=4)
    assert ev.target_reached_on == D0 + timedelta(days=4)
    assert ev.days_traded == 4  # day 1 had no trade; day 5 is after the pass
    assert ev.total_profit == Money.of(3_100)
    assert ev.best_day == (D0 + timedelta(days=3), Money.of(900))
    assert ev.best_day_share is not None and abs(ev.best_day_share - 900 / 3100) < 1e-12
    assert ev.consistency_ok is True


def test_target_without_consistency_stays_in_progress_until_the_ratio_passes() -> None:
    ev = run(days(2_000, 1_200))  # 3,200 reached on day 1, but best day 2,000 = 62.5% >= 40%
    assert ev.status == "in_progress"
    assert ev.target_reached_on == D0 + timedelta(days=1)
    assert ev.consistency_ok is False
    # three more days bring the share under 40%: 2,000 / 5,300 = 37.7%
    ev = run(days(2_000, 1_200, 700, 700, 700))
    assert ev.status == "passed"
    assert ev.passed_on == D0 + timedelta(days=4)
    # without a consistency rule the target alone passes
    assert run(days(2_000, 1_200), pct=None).passed_on == D0 + timedelta(days=1)


def test_an_mll_breach_fails_on_its_trading_day_and_ends_the_evaluation() -> None:
    ds = days(-600, -900, -600, 3_000, 3_000)
    ev = run(ds, [breach(2, "R1", until_ns=None)])
    assert ev.status == "failed"
    assert ev.failure is not None
    assert ev.failure.rule_id == "R1" and ev.failure.trading_date == D0 + timedelta(days=2)
    assert ev.days_traded == 3  # the later profitable days do not count
    assert ev.total_profit == Money.of(-2_100)
    assert ev.passed_on is None
    assert len(ev.days) == 5  # the series still covers the whole run


def test_protective_lockouts_are_not_failures() -> None:
    ds = days(-1_500, 500)
    ev = run(
        ds,
        [
            breach(0, "R1", until_ns=T0 + DAY_NS),  # the buffer lockout until the next session
            breach(0, "R3", until_ns=None, firm=False),  # a personal rule, even without expiry
            breach(1, "R11", until_ns=T0 + 2 * DAY_NS),
        ],
    )
    assert ev.status == "in_progress"
    assert ev.failure is None


def test_a_pass_before_a_later_breach_stands() -> None:
    ev = run(days(800, 700, 900, 700, -2_500), [breach(4, "R1", until_ns=None)])
    assert ev.status == "passed"
    assert ev.passed_on == D0 + timedelta(days=3)
    assert ev.failure is None


def test_json_object_has_the_series_for_the_report() -> None:
    ev = run(days(500, -200))
    out = json.loads(json.dumps(ev.to_json_dict()))
    assert out["status"] == "in_progress" and out["passed"] is False and out["failed"] is False
    assert out["profit_target_usd"] == "3000.00"
    assert out["max_best_day_pct"] == 0.4
    assert [d["pnl_usd"] for d in out["days"]] == ["500.00", "-200.00"]
    assert [d["balance_usd"] for d in out["days"]] == ["50500.00", "50300.00"]
    assert all(d["mll_floor_usd"] == "48000.00" for d in out["days"])
    assert out["best_day"] == {"date": D0.isoformat(), "pnl_usd": "500.00"}


def test_the_verdict_states_the_halt_and_the_consistency_in_words() -> None:
    days = [
        DayClose(
            trading_date=date(2025, 9, 3),
            net_pnl=Money(285_000),
            balance=Money(5_285_000),
            mll_floor=Money(4_800_000),
            trades=4,
            contracts=4,
        ),
        DayClose(
            trading_date=date(2025, 9, 4),
            net_pnl=Money(-276_250),
            balance=Money(5_008_750),
            mll_floor=Money(5_000_000),
            trades=2,
            contracts=2,
        ),
    ]
    halt = HaltAtEnd(
        since_ns=1_758_133_980_000_000_000,  # 2025-09-17 18:33 UTC
        rule_id="R1",
        reason="equity $50,087.50 reached the MLL floor $50,000.00 plus the $100.00 buffer; flatten and lock out",
        equity=Money(5_008_750),
        mll_floor=Money(5_000_000),
        buffer=Money(10_000),
        floor_locked=True,
    )
    ev = evaluate_combine(
        days,
        [],
        start_balance=Money(5_000_000),
        profit_target=Money(300_000),
        max_best_day_pct=Decimal("0.4"),
        trading_date_of=lambda _ns: date(2025, 9, 3),
        halted=halt,
    )
    assert ev.status == "in_progress"
    assert ev.reasons == (
        "halted since 2025-09-17 13:33 CT: equity $50,087.50 is within the $100.00 buffer above the locked MLL floor "
        "$50,000.00; no new trade can pass",
        "profit target not reached: balance $50,087.50 is $2,912.50 short of $53,000.00 (start + $3,000.00)",
        "consistency: best day 2025-09-03 $2,850.00 is 3,257 % of total profit $87.50; the rule allows 40 %",
    )
    assert ev.to_json_dict()["halted"]["permanent"] is True
