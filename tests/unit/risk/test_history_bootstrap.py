"""Tests for the account history rebuilt from the broker's fills (propdesk.risk.history_bootstrap).

Every expected figure is computed by hand in the comments (50K Combine: start 50,000, MLL 2,000 EOD, locked at the
start balance; risk-rules.md section 3.4). Times are UTC; the CME trading day rolls at 17:00 CT (22:00 UTC in CDT,
23:00 UTC in CST after 2025-11-02).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from propdesk.core.bus import MessageBus
from propdesk.execution.positions import PositionManager
from propdesk.model.calendar import default_calendar
from propdesk.model.enums import Side
from propdesk.model.events import OrderFilled
from propdesk.model.identifiers import AccountId, BrokerOrderId, ClientOrderId
from propdesk.model.price import Money, Price
from propdesk.model.reports import FillReport
from propdesk.risk.history_bootstrap import (
    MLL_FLOOR_SETTING,
    HistoryUnavailableError,
    apply_history,
    derive_history,
)
from propdesk.risk.state import AccountState, MllConfig, MllMode

ACC = AccountId(11)
START = Money.of(Decimal("50000"))
MLL = MllConfig(amount=Money.of(Decimal("2000")))
CAL = default_calendar()


def ns(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()) * 1_000_000_000


def usd(text: str) -> Money:
    return Money.of(Decimal(text))


_ids = iter(range(1, 10_000))


def fill(ts: str, pnl: str | None, fee: str = "2.80", *, trade_id: str | None = None) -> FillReport:
    """One ES fill (a half-turn): ``pnl`` None for an opening fill."""
    tid = trade_id if trade_id is not None else str(next(_ids))
    return FillReport(
        account_id=ACC,
        trade_id=tid,
        broker_order_id=BrokerOrderId(int(tid)),
        client_order_id=None,
        symbol="ESZ5",
        side=Side.BUY,
        qty=1,
        price=Price.of("6000.00"),
        fee=usd(fee),
        ts_ns=ns(ts),
        realized_pnl=None if pnl is None else usd(pnl),
    )


NOW = "2025-11-05T16:00"  # Wednesday 10:00 CST


def weeks_of_fills() -> list[FillReport]:
    dup = fill("2025-10-30T15:00", "500.00", trade_id="9001")
    return [
        # Thu 2025-10-30: open (fee only), close +500: net 500 - 2.80 - 2.80 = 494.40; EOD 50,494.40
        fill("2025-10-30T14:00", None),
        dup,
        dup,  # the same trade id twice counts once
        # 22:30 UTC on 2025-10-30 is 17:30 CDT: after the roll, so it belongs to Fri 2025-10-31
        fill("2025-10-30T22:30", None),
        # Fri 2025-10-31: close +1,000: net 1,000 - 2.80 - 2.80 = 994.40; EOD 51,488.80 (the high)
        fill("2025-10-31T14:00", "1000.00"),
        # Mon 2025-11-03: no fills; EOD stays 51,488.80
        # Tue 2025-11-04 (CST now): 22:30 UTC is 16:30 CST, before the roll: Tuesday's.
        # Net -300 - 2.80 - 2.80 = -305.60; EOD 51,183.20
        fill("2025-11-04T22:30", None),
        fill("2025-11-04T22:45", "-300.00"),
        # Wed 2025-11-05 (today): +100 round trip (net 94.40) and an opening half-turn (fee 1.40): net 93.00
        fill("2025-11-05T15:00", None),
        fill("2025-11-05T15:30", "100.00"),
        fill("2025-11-05T15:45", None, "1.40"),
        # after now: not counted
        fill("2025-11-05T17:00", "5000.00"),
    ]


def test_eod_balances_floor_and_today_from_weeks_of_fills() -> None:
    h = derive_history(weeks_of_fills(), start_balance=START, calendar=CAL, now_ns=ns(NOW), mll=MLL)
    assert h.eod_balances == (
        (date(2025, 10, 30), usd("50494.40")),
        (date(2025, 10, 31), usd("51488.80")),
        (date(2025, 11, 3), usd("51488.80")),
        (date(2025, 11, 4), usd("51183.20")),
    )
    assert h.daily_net_history == (
        (date(2025, 10, 30), usd("494.40")),
        (date(2025, 10, 31), usd("994.40")),
        (date(2025, 11, 3), usd("0")),
        (date(2025, 11, 4), usd("-305.60")),
    )
    assert [d.trades for d in h.days] == [2, 2, 0, 2]
    assert [d.fees for d in h.days] == [usd("5.60"), usd("5.60"), usd("0"), usd("5.60")]
    # the floor trails the EOD high: 50,494.40 - 2,000; 51,488.80 - 2,000 (kept on the no-trade and losing days)
    assert [d.mll_floor for d in h.days] == [usd("48494.40"), usd("49488.80"), usd("49488.80"), usd("49488.80")]
    assert h.mll_peak == usd("51488.80")
    assert h.mll_floor == usd("49488.80")
    assert h.trading_date == date(2025, 11, 5)
    assert h.sod_balance == usd("51183.20")
    assert h.day_realized_net == usd("93.00")
    assert h.day_fees == usd("7.00")
    assert h.trades_today == 3
    assert h.balance == usd("51276.20")
    assert h.fills == 9
    assert h.first_trade_ns == ns("2025-10-30T14:00")


def test_dst_change_moves_the_roll_in_utc() -> None:
    # 22:30 UTC is 17:30 CDT (next trading day) before 2025-11-02 and 16:30 CST (same day) after it
    fills = [fill("2025-10-29T22:30", "10.00", "0"), fill("2025-11-04T22:30", "20.00", "0")]
    h = derive_history(fills, start_balance=START, calendar=CAL, now_ns=ns("2025-11-06T15:00"), mll=MLL)
    traded = {d.trading_date: d.net_pnl for d in h.days if d.trades}
    assert traded == {date(2025, 10, 30): usd("10.00"), date(2025, 11, 4): usd("20.00")}


def test_floor_locks_at_the_start_balance() -> None:
    fills = [
        fill("2025-10-06T14:00", None, "0"),
        fill("2025-10-06T15:00", "2600.00", "0"),  # Mon: EOD 52,600 -> floor min(50,000, 50,600) = 50,000
        fill("2025-10-07T14:00", None, "0"),
        fill("2025-10-07T15:00", "-1000.00", "0"),  # Tue: EOD 51,600 -> the floor stays 50,000
    ]
    h = derive_history(fills, start_balance=START, calendar=CAL, now_ns=ns("2025-10-08T15:00"), mll=MLL)
    assert [d.mll_floor for d in h.days] == [usd("50000"), usd("50000")]
    assert h.mll_peak == usd("52600")
    assert h.mll_floor == usd("50000")


def test_no_fills_is_a_new_account() -> None:
    h = derive_history([], start_balance=START, calendar=CAL, now_ns=ns(NOW), mll=MLL)
    assert h.days == ()
    assert h.first_trade_ns is None
    assert h.mll_floor == usd("48000")
    assert h.balance == START
    h.check_balance(START)


def test_intraday_realized_folds_the_running_balance_high() -> None:
    fills = [
        fill("2025-10-06T14:00", None, "0"),
        fill("2025-10-06T15:00", "900.00", "0"),  # running 50,900
        fill("2025-10-06T16:00", None, "0"),
        fill("2025-10-06T17:00", "-400.00", "0"),  # EOD 50,500
    ]
    cfg = MllConfig(amount=MLL.amount, mode=MllMode.INTRADAY_REALIZED)
    h = derive_history(fills, start_balance=START, calendar=CAL, now_ns=ns("2025-10-07T15:00"), mll=cfg)
    assert h.mll_peak == usd("50900")
    assert h.mll_floor == usd("48900")


def test_intraday_unrealized_cannot_be_derived() -> None:
    cfg = MllConfig(amount=MLL.amount, mode=MllMode.INTRADAY_UNREALIZED)
    with pytest.raises(HistoryUnavailableError, match=r"\[account\] mll_floor"):
        derive_history([], start_balance=START, calendar=CAL, now_ns=ns(NOW), mll=cfg)


def test_a_history_that_does_not_explain_the_balance_is_refused_in_one_line() -> None:
    h = derive_history(weeks_of_fills(), start_balance=START, calendar=CAL, now_ns=ns(NOW), mll=MLL)
    h.check_balance(usd("51276.20"))
    with pytest.raises(HistoryUnavailableError) as exc:
        h.check_balance(usd("53000.00"))
    text = str(exc.value)
    assert MLL_FLOOR_SETTING in text
    assert "\n" not in text
    assert "51276.20" in text and "53000.00" in text


def _state(now: int) -> tuple[AccountState, PositionManager]:
    pm = PositionManager(MessageBus(timing=False))
    state = AccountState(
        ACC,
        start_balance=START,
        positions=pm,
        working_orders=list,
        calendar=CAL,
        clock=lambda: now,
        mll=MLL,
        new_account=False,
    )
    return state, pm


def test_apply_history_seeds_the_state_and_keeps_the_days_own_fills() -> None:
    now = ns(NOW)
    state, _pm = _state(now)
    assert state.missing_inputs() == ["mll_floor"]
    # today's fills reach the state through the broker's reconcile: a +100 round trip, fees 2.80 each
    for i, (ts, side, px) in enumerate(
        (("2025-11-05T15:00", Side.BUY, "6000.00"), ("2025-11-05T15:30", Side.SELL, "6002.00"))
    ):
        state.on_fill(
            OrderFilled(
                client_order_id=ClientOrderId(f"c{i}"),
                account_id=ACC,
                ts_event_ns=ns(ts),
                symbol="ESZ5",
                side=side,
                qty=1,
                price=Price.of(px),
                fee=usd("2.80"),
                trade_id=f"t{i}",
            )
        )
    assert state.day_realized_net == usd("94.40")  # 2 points x 50 USD - 5.60
    h = derive_history(weeks_of_fills(), start_balance=START, calendar=CAL, now_ns=now, mll=MLL)
    apply_history(state, h)
    assert state.missing_inputs() == []
    assert state.mll_floor == usd("49488.80")
    assert state.sod_balance == usd("51183.20")
    assert state.balance == usd("51277.60")  # 51,183.20 + 94.40 counted by the state
    assert state.day_realized_net == usd("94.40")
    assert state.trades_today == 2
    assert list(state.eod_balances) == list(h.eod_balances)
    assert list(state.daily_net_history) == list(h.daily_net_history)
