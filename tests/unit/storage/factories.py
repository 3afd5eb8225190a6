"""Small builders of propdesk records for the storage tests."""

from __future__ import annotations

from datetime import date
from typing import Any

from propdesk.core.bus import MessageBus
from propdesk.model.enums import Side
from propdesk.model.events import OrderAccepted, OrderFilled, OrderSubmitted
from propdesk.model.identifiers import AccountId, BrokerOrderId, ClientOrderId
from propdesk.model.orders import Order, OrderType
from propdesk.model.positions import PositionChanged, PositionClosed, PositionOpened, PositionSnapshot
from propdesk.model.price import Money, Price
from propdesk.model.records import AccountSnapshot

ACCOUNT = AccountId(7)
T0 = 1_763_000_000_000_000_000  # 2025-11-13T02:13:20Z


def fill(
    trade_id: str,
    *,
    cid: str = "pd-1",
    side: Side = Side.BUY,
    qty: int = 1,
    price: str = "6500.25",
    fee: str = "1.40",
    ts: int = T0,
    symbol: str = "ESZ5",
    tag: str = "sma",
    account: int = ACCOUNT,
) -> OrderFilled:
    return OrderFilled(
        client_order_id=ClientOrderId(cid),
        account_id=AccountId(account),
        ts_event_ns=ts,
        symbol=symbol,
        side=side,
        qty=qty,
        price=Price.of(price),
        fee=Money.of(fee),
        trade_id=trade_id,
        tag=tag,
    )


def order(cid: str = "pd-1", *, qty: int = 2, side: Side = Side.BUY, ts: int = T0) -> Order:
    return Order(
        client_order_id=ClientOrderId(cid),
        account_id=ACCOUNT,
        symbol="ESZ5",
        side=side,
        qty=qty,
        order_type=OrderType.LIMIT,
        limit_price=Price.of("6500.25"),
        tag="sma",
        ts_init_ns=ts,
    )


def submitted(cid: str = "pd-1", ts: int = T0) -> OrderSubmitted:
    return OrderSubmitted(client_order_id=ClientOrderId(cid), account_id=ACCOUNT, ts_event_ns=ts)


def accepted(cid: str = "pd-1", ts: int = T0 + 1, broker_id: int = 991) -> OrderAccepted:
    return OrderAccepted(
        client_order_id=ClientOrderId(cid), account_id=ACCOUNT, ts_event_ns=ts, broker_order_id=BrokerOrderId(broker_id)
    )


def filled_lifecycle(bus: MessageBus, o: Order) -> list[Any]:
    """Submit, accept and fill ``o`` (``pd-1``, trade ``T1``): each event applied to the order, then published on
    ``bus``, as the order manager does. Returns the three events."""
    events: list[Any] = [submitted(), accepted(), fill("T1", cid="pd-1")]
    for ev in events:
        o.apply(ev)
        bus.publish(ev.topic, ev)
    return events


def position_event(kind: str, trade_id: str, signed_qty: int, *, ts: int = T0) -> PositionOpened:
    snap = PositionSnapshot(
        symbol="ESZ5",
        account_id=ACCOUNT,
        tag=None,
        signed_qty=signed_qty,
        avg_price=None if signed_qty == 0 else Price.of("6500.25"),
        realized_pnl=Money.of("62.50"),
        fees=Money.of("2.80"),
        unrealized_pnl=None,
        opened_ts_ns=T0,
        last_ts_ns=ts,
        fill_count=2,
    )
    cls = {"opened": PositionOpened, "changed": PositionChanged, "closed": PositionClosed}[kind]
    return cls(  # type: ignore[return-value]
        position=snap,
        trade_id=trade_id,
        tag="sma",
        fill_signed_qty=-1,
        fill_price=Price.of("6501.50"),
        fill_fee=Money.of("1.40"),
        fill_realized_pnl=Money.of("62.50"),
        ts_event_ns=ts,
    )


def account_snapshot(balance: str = "50062.50") -> AccountSnapshot:
    return AccountSnapshot(
        trading_date=date(2025, 11, 13),
        balance=Money.of(balance),
        sod_balance=Money.of("50000"),
        day_realized_gross=Money.of("62.50"),
        day_fees=Money.of("2.80"),
        day_peak_realized=Money.of(balance),
        day_peak_equity=Money.of(balance),
        mll_peak=Money.of("50000"),
        eod_balances=((date(2025, 11, 11), Money.of("49900")), (date(2025, 11, 12), Money.of("50000"))),
        daily_net_history=((date(2025, 11, 12), Money.of("100")),),
        trades_today=2,
        trades_week=5,
        contracts_today=2,
        week_start_ns=T0 - 86_400 * 10**9,
        consecutive_losses=1,
        last_loss_ts_ns=T0 - 10**9,
        open_round_trips=(("ESZ5", Money.of("-12.50")),),
    )
