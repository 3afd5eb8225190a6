"""SimBroker: commands, events, rejections, brackets, OCO, fees, DAY expiry, closing and reports (ES, tick 0.25)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest

from propdesk.brokers.base import Broker
from propdesk.brokers.sim import SimBroker, SimConfig
from propdesk.core.clock import SimClock
from propdesk.model.data import Bar, DepthUpdate, QuoteTick, Timeframe
from propdesk.model.enums import BookAction, BookSide, Side
from propdesk.model.events import (
    BrokerConnected,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderModifyRejected,
    OrderRejected,
    OrderSubmitted,
    OrderSuspended,
    OrderUpdated,
)
from propdesk.model.identifiers import AccountId, ClientOrderId
from propdesk.model.orders import BracketSpec, Order, OrderStatus, OrderType, TimeInForce
from propdesk.model.price import Money, Price

ACCT = AccountId(7)
SYM = "ESZ5"
M = 60_000_000_000
TF = Timeframe.parse("1m")
T = TypeVar("T")


def utc(y: int, mo: int, d: int, h: int, mi: int = 0) -> int:
    return int(datetime(y, mo, d, h, mi, tzinfo=UTC).timestamp()) * 1_000_000_000


T0 = utc(2025, 11, 18, 15)  # Tuesday 09:00 CST


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@dataclass
class Collector:
    """The broker's event handler: records events and applies order events to the registered orders (so every
    event sequence must be legal for the order state machine)."""

    events: list[object] = field(default_factory=list)
    orders: dict[str, Order] = field(default_factory=dict)

    def __call__(self, ev: object) -> None:
        self.events.append(ev)
        if isinstance(ev, OrderEvent) and ev.client_order_id in self.orders:
            self.orders[ev.client_order_id].apply(ev)

    def of(self, cls: type[T], cid: str | None = None) -> list[T]:
        return [
            e for e in self.events if isinstance(e, cls) and (cid is None or getattr(e, "client_order_id", None) == cid)
        ]

    def kinds(self, cid: str) -> list[str]:
        return [type(e).__name__ for e in self.events if getattr(e, "client_order_id", None) == cid]


def make(start: int = T0, **cfg: Any) -> tuple[SimBroker, Collector, SimClock]:
    cfg.setdefault("calendar_check", "off")
    clock = SimClock(start)
    broker = SimBroker(clock, account_id=ACCT, config=SimConfig(**cfg), starting_balance=Money.of(50_000))
    col = Collector()
    broker.set_event_handler(col)
    return broker, col, clock


def mk(
    col: Collector,
    cid: str,
    side: Side,
    qty: int,
    typ: OrderType = OrderType.MARKET,
    *,
    limit: str | None = None,
    stop: str | None = None,
    trail: int | None = None,
    tif: TimeInForce = TimeInForce.GTC,
    symbol: str = SYM,
    account: AccountId = ACCT,
    reduce_only: bool = False,
) -> Order:
    o = Order(
        ClientOrderId(cid),
        account,
        symbol,
        side,
        qty,
        typ,
        limit_price=None if limit is None else Price.of(limit),
        stop_price=None if stop is None else Price.of(stop),
        trail_ticks=trail,
        tif=tif,
        tag="t1",
        reduce_only=reduce_only,
    )
    col.orders[cid] = o
    return o


def children(col: Collector, cid: str, side: Side, qty: int) -> tuple[Order, Order]:
    """The bracket children as the order manager would track them (prices set by the broker's events)."""
    sl = mk(col, f"{cid}-sl", side.opposite, qty, OrderType.STOP, stop="1")
    tp = mk(col, f"{cid}-tp", side.opposite, qty, OrderType.LIMIT, limit="1")
    return sl, tp


def bar(o: float, h: float, lo: float, c: float, i: int = 0, vol: int = 1000, start: int = T0) -> Bar:
    return Bar(SYM, TF, o, h, lo, c, vol, start + i * M, start + (i + 1) * M)


def fills(col: Collector, cid: str | None = None) -> list[tuple[str, int, str]]:
    return [(str(f.client_order_id), f.qty, str(f.price)) for f in col.of(OrderFilled, cid)]


# --------------------------------------------------------------------------------------------------- protocol, basics


def test_satisfies_the_broker_protocol_and_connects() -> None:
    broker, col, _ = make()
    assert isinstance(broker, Broker)
    assert broker.capabilities.native_brackets and broker.capabilities.native_oco
    run(broker.connect())
    assert broker.is_connected and isinstance(col.events[-1], BrokerConnected)


def test_market_order_sent_at_a_bar_close_fills_at_the_next_bar_open() -> None:
    broker, col, clock = make(fill_model="next-open")
    broker.process_bar(bar(100, 101, 99, 100.5, i=0))
    clock.advance_to(T0 + M)  # bar 0's close
    o = mk(col, "m1", Side.BUY, 2)
    broker.submit_order(o)
    assert col.kinds("m1") == ["OrderSubmitted", "OrderAccepted"]
    assert o.status is OrderStatus.ACCEPTED and o.broker_order_id == 1
    broker.process_bar(bar(100, 101, 99, 100.5, i=0))  # replayed bar t: never fills inside it
    assert fills(col) == []
    broker.process_bar(bar(100.75, 101, 100, 100.5, i=1))
    assert fills(col) == [("m1", 2, "100.75")]
    f = col.of(OrderFilled)[0]
    assert f.ts_event_ns == T0 + M and f.side is Side.BUY and f.tag == "t1" and f.trade_id == "7-1"
    assert o.status is OrderStatus.FILLED and o.avg_fill_price == Price.of("100.75")


def test_bar_close_fill_model_fills_at_once_at_the_last_close() -> None:
    broker, col, _ = make(fill_model="bar-close", slippage_ticks=1)
    broker.process_bar(bar(100, 101, 99, 100.5))
    broker.submit_order(mk(col, "m", Side.SELL, 1))
    assert fills(col) == [("m", 1, "100.25")]


# --------------------------------------------------------------------------------------------------- rejections


def _reason(col: Collector, cid: str) -> str:
    rej = col.of(OrderRejected, cid)
    assert len(rej) == 1, col.kinds(cid)
    return rej[0].reason


def test_rejections_carry_a_reason() -> None:
    broker, col, _ = make(native_brackets=False)
    broker.submit_order(mk(col, "offtick", Side.BUY, 1, OrderType.LIMIT, limit="6500.10"))
    assert "not on the tick size 0.25" in _reason(col, "offtick")
    assert col.kinds("offtick") == ["OrderSubmitted", "OrderRejected"]
    assert col.orders["offtick"].status is OrderStatus.REJECTED

    bad_qty = mk(col, "qty", Side.BUY, 1)
    bad_qty.qty = 0  # the constructor refuses it; the broker must still check what it receives
    broker.submit_order(bad_qty)
    assert "positive whole number" in _reason(col, "qty")
    frac = mk(col, "frac", Side.BUY, 1)
    frac.qty = 1.5  # type: ignore[assignment]
    broker.submit_order(frac)
    assert "positive whole number" in _reason(col, "frac")

    broker.submit_order(mk(col, "unknown", Side.BUY, 1, symbol="ZZZZ5"))
    assert "unknown contract" in _reason(col, "unknown")

    broker.submit_order(mk(col, "acct", Side.BUY, 1, account=AccountId(99)))
    assert "account 99" in _reason(col, "acct")

    broker.submit_order(mk(col, "br", Side.BUY, 1), BracketSpec(stop_loss_ticks=4))
    assert "Auto OCO" in _reason(col, "br")

    broker.submit_order(mk(col, "jb", Side.BUY, 1, OrderType.JOIN_BID))
    assert _reason(col, "jb") == "join_bid needs a quote for ESZ5; none received yet"

    tr = mk(col, "trail", Side.SELL, 1, OrderType.TRAILING_STOP, trail=5)
    tr.trail_ticks = 1001
    broker.submit_order(tr)
    assert "1..1000" in _reason(col, "trail")

    broker.submit_order(mk(col, "ro", Side.SELL, 1, reduce_only=True))
    assert "reduce-only" in _reason(col, "ro")

    # a duplicate client order id is refused without touching the first order
    first = mk(col, "dup", Side.BUY, 1, OrderType.LIMIT, limit="90")
    broker.submit_order(first)
    broker.submit_order(Order(ClientOrderId("dup"), ACCT, SYM, Side.BUY, 1, OrderType.MARKET))
    assert col.kinds("dup")[-1] == "OrderRejected" and "duplicate" in col.of(OrderRejected, "dup")[0].reason


def test_join_bid_ask_without_a_quote_is_rejected() -> None:
    broker, col, _ = make()
    broker.submit_order(mk(col, "ja", Side.SELL, 1, OrderType.JOIN_ASK))
    assert _reason(col, "ja") == "join_ask needs a quote for ESZ5; none received yet"


def test_market_closed_by_data_mode_and_by_calendar() -> None:
    broker, col, clock = make(calendar_check="data")
    broker.submit_order(mk(col, "nodata", Side.BUY, 1))
    assert _reason(col, "nodata") == "market closed: no market data for ESZ5 yet"
    broker.process_bar(bar(100, 101, 99, 100, i=0))  # a bar that exists counts as open
    clock.advance_to(T0 + M)
    broker.submit_order(mk(col, "ok", Side.BUY, 1))
    assert col.kinds("ok") == ["OrderSubmitted", "OrderAccepted"]
    clock.advance_to(T0 + 10 * M)  # nine minutes without data
    broker.submit_order(mk(col, "stale", Side.BUY, 1))
    assert "no market data" in _reason(col, "stale")

    sat = utc(2025, 11, 22, 15)  # Saturday
    halt = utc(2025, 11, 18, 22, 30)  # Tuesday 16:30 CT: daily halt
    open_ = utc(2025, 11, 18, 23, 30)  # Tuesday 17:30 CT: the next session is open
    for ts, cid, expect in ((sat, "sat", "weekend"), (halt, "halt", "daily halt"), (open_, "eve", None)):
        cb, ccol, cclock = make(calendar_check="calendar")
        cclock.advance_to(ts)
        cb.submit_order(mk(ccol, cid, Side.BUY, 1))
        if expect is None:
            assert ccol.kinds(cid) == ["OrderSubmitted", "OrderAccepted"]
        else:
            assert expect in _reason(ccol, cid)


# --------------------------------------------------------------------------------------------------- fees, account


def test_fees_and_realized_pnl_are_exact() -> None:
    broker, col, clock = make(commission_per_side_usd="0.50", exchange_fee_per_side_usd={"ES": "1.40"})
    broker.submit_order(mk(col, "buy", Side.BUY, 3))
    broker.process_bar(bar(6500.25, 6501, 6500, 6500.5, i=0))
    clock.advance_to(T0 + M)
    broker.submit_order(mk(col, "sell", Side.SELL, 3))
    broker.process_bar(bar(6502.75, 6503, 6502, 6502.5, i=1))
    buy, sell = col.of(OrderFilled)
    assert buy.fee == Money.of("5.70") and sell.fee == Money.of("5.70")  # (0.50 + 1.40) x 3 per side
    # 6500.25 -> 6502.75 = 10 ticks x 3 contracts x 12.50 USD
    assert broker.account.realized_pnl == Money.of("375.00")
    assert broker.account.fees == Money.of("11.40")
    assert broker.account.balance == Money.of("50363.60")
    reports = run(broker.fill_reports(0))
    assert [r.realized_pnl for r in reports] == [None, Money.of("375.00")]
    assert run(broker.account_report()).balance == Money.of("50363.60")


# --------------------------------------------------------------------------------------------------- brackets


def test_bracket_children_suspended_then_sized_to_partial_fills_and_oco() -> None:
    broker, col, _ = make(partial_fills=True)
    entry = mk(col, "e", Side.BUY, 3, OrderType.LIMIT, limit="100")
    sl, tp = children(col, "e", Side.BUY, 3)
    broker.submit_order(entry, BracketSpec(stop_loss_ticks=8, take_profit_ticks=4))
    assert col.kinds("e") == ["OrderSubmitted", "OrderAccepted"]
    assert col.kinds("e-sl") == ["OrderSubmitted", "OrderSuspended"] == col.kinds("e-tp")
    assert sl.status is OrderStatus.SUSPENDED
    assert {r.client_order_id: r.status for r in run(broker.order_reports())} == {
        "e": OrderStatus.ACCEPTED,
        "e-sl": OrderStatus.SUSPENDED,
        "e-tp": OrderStatus.SUSPENDED,
    }

    broker.process_bar(bar(100.25, 100.5, 100, 100.25, i=0, vol=1))  # 1 of 3 fills at 100
    assert fills(col) == [("e", 1, "100")]
    assert sl.status is OrderStatus.ACCEPTED and sl.qty == 1 and sl.stop_price == Price.of("98")
    assert tp.status is OrderStatus.ACCEPTED and tp.qty == 1 and tp.limit_price == Price.of("101")

    broker.process_bar(bar(100, 100.25, 99.75, 100, i=1, vol=1))  # 1 more at 100: children grow to 2
    assert sl.qty == 2 and tp.qty == 2 and entry.filled_qty == 2

    broker.process_bar(bar(100.75, 101, 100.75, 101, i=2, vol=1))  # TP fills 1 of 2: SL shrinks to 1
    assert fills(col, "e-tp") == [("e-tp", 1, "101")]
    assert tp.status is OrderStatus.PARTIALLY_FILLED and sl.qty == 1

    broker.process_bar(bar(101, 101.25, 101, 101, i=3, vol=5))  # TP completes: SL canceled, entry remainder too
    assert tp.status is OrderStatus.FILLED
    assert sl.status is OrderStatus.CANCELED and "OCO" in sl.reason
    assert entry.status is OrderStatus.CANCELED and entry.filled_qty == 2
    assert broker.account.position(SYM) == 0
    assert broker.account.realized_pnl == Money.of("100.00")  # 2 x 4 ticks x 12.50
    assert run(broker.order_reports()) == []


def test_stop_loss_fill_cancels_the_take_profit() -> None:
    broker, col, _ = make()
    entry = mk(col, "s", Side.SELL, 2)
    sl, tp = children(col, "s", Side.SELL, 2)
    broker.submit_order(entry, BracketSpec(stop_loss_ticks=4, take_profit_ticks=8))
    broker.process_bar(bar(100, 100.25, 99.5, 100, i=0))  # short 2 at 100; SL 101 (buy stop), TP 98
    assert sl.stop_price == Price.of("101") and tp.limit_price == Price.of("98") and sl.side is Side.BUY
    broker.process_bar(bar(100.25, 101.5, 100, 101.25, i=1))
    assert fills(col, "s-sl") == [("s-sl", 2, "101")]
    assert tp.status is OrderStatus.CANCELED
    assert broker.account.realized_pnl == Money.of("-100.00")


def test_bracket_children_act_in_the_entry_fill_bar() -> None:
    broker, col, _ = make()
    entry = mk(col, "e", Side.BUY, 1)
    children(col, "e", Side.BUY, 1)
    broker.submit_order(entry, BracketSpec(stop_loss_ticks=4, take_profit_ticks=4))
    broker.process_bar(bar(100, 100.25, 98.5, 99))  # entry at the open, then down through the SL at 99
    assert fills(col) == [("e", 1, "100"), ("e-sl", 1, "99")]


def test_entry_canceled_before_a_fill_cancels_its_children() -> None:
    broker, col, _ = make()
    entry = mk(col, "e", Side.BUY, 1, OrderType.LIMIT, limit="90")
    sl, tp = children(col, "e", Side.BUY, 1)
    broker.submit_order(entry, BracketSpec(stop_loss_ticks=4, take_profit_ticks=4))
    broker.cancel_order(entry)
    assert entry.status is OrderStatus.CANCELED
    assert sl.status is OrderStatus.CANCELED and tp.status is OrderStatus.CANCELED


# --------------------------------------------------------------------------------------------------- OCO


def test_submit_oco_pair_one_fill_cancels_the_other() -> None:
    broker, col, _ = make()
    a = mk(col, "a", Side.SELL, 2, OrderType.LIMIT, limit="102")
    b = mk(col, "b", Side.SELL, 2, OrderType.STOP, stop="98")
    broker.submit_oco(a, b)
    broker.process_bar(bar(100, 102.25, 99.75, 102))
    assert fills(col) == [("a", 2, "102")]
    assert b.status is OrderStatus.CANCELED and b.reason == "OCO: a filled"


def test_linked_ids_link_an_oco_pair_and_partial_fill_shrinks_the_sibling() -> None:
    broker, col, _ = make(partial_fills=True)
    a = mk(col, "a", Side.BUY, 3, OrderType.LIMIT, limit="99")
    broker.submit_order(a)
    b = mk(col, "b", Side.BUY, 3, OrderType.STOP, stop="103")
    b.linked_ids = (ClientOrderId("a"),)
    broker.submit_order(b)
    broker.process_bar(bar(100, 100, 98.75, 99, vol=1))
    assert fills(col) == [("a", 1, "99")]
    assert b.qty == 2 and col.of(OrderUpdated, "b")[-1].qty == 2


# --------------------------------------------------------------------------------------------------- TIF


def test_day_order_expires_at_the_session_end_and_gtc_survives() -> None:
    broker, col, _ = make()
    day = mk(col, "day", Side.BUY, 1, OrderType.LIMIT, limit="95", tif=TimeInForce.DAY)
    gtc = mk(col, "gtc", Side.BUY, 1, OrderType.LIMIT, limit="95", tif=TimeInForce.GTC)
    broker.submit_order(day)
    broker.submit_order(gtc)
    close = utc(2025, 11, 18, 22)  # 16:00 CST
    broker.process_bar(bar(100, 100, 99, 99.5, start=close - M))  # the session's last bar: still working
    assert day.status is OrderStatus.ACCEPTED
    evening = utc(2025, 11, 18, 23)  # 17:00 CST: the next session's first bar
    broker.process_bar(bar(99, 99, 94, 95, start=evening))
    assert day.status is OrderStatus.EXPIRED and col.of(OrderExpired, "day")[0].ts_event_ns == evening
    assert fills(col) == [("gtc", 1, "95")]


def test_day_expiry_timer_for_live_paper_trading() -> None:
    broker, col, clock = make(day_expiry_timer=True)
    day = mk(col, "day", Side.BUY, 1, OrderType.LIMIT, limit="95", tif=TimeInForce.DAY)
    broker.submit_order(day)
    clock.advance_to(utc(2025, 11, 18, 22) - 1)
    assert day.status is OrderStatus.ACCEPTED
    clock.advance_to(utc(2025, 11, 18, 22))
    assert day.status is OrderStatus.EXPIRED


# --------------------------------------------------------------------------------------------------- quotes, depth


def test_join_bid_rests_at_the_best_bid_and_fills_on_a_quote() -> None:
    broker, col, _ = make()
    broker.process_quote(QuoteTick(SYM, 100.0, 100.25, 10, 12, T0))
    jb = mk(col, "jb", Side.BUY, 1, OrderType.JOIN_BID)
    broker.submit_order(jb)
    (rep,) = run(broker.order_reports())
    assert rep.limit_price == Price.of("100") and rep.order_type is OrderType.JOIN_BID
    broker.process_quote(QuoteTick(SYM, 99.75, 100.0, 10, 12, T0 + 1))  # the ask comes down to the bid we joined
    assert fills(col) == [("jb", 1, "100")]


def test_market_order_on_quotes_fills_at_the_ask_plus_slippage() -> None:
    broker, col, _ = make(slippage_ticks=1)
    broker.submit_order(mk(col, "m", Side.BUY, 2))
    broker.process_quote(QuoteTick(SYM, 100.0, 100.25, 10, 12, T0 + 1))
    assert fills(col) == [("m", 2, "100.5")]


def test_depth_updates_build_a_book_that_market_orders_walk() -> None:
    broker, col, _ = make()

    def upd(side: BookSide, px: float, size: int, last: bool = False) -> DepthUpdate:
        return DepthUpdate(SYM, BookAction.UPDATE, side, px, size, T0, is_last=last)

    for u in (upd(BookSide.BID, 99.75, 5), upd(BookSide.ASK, 100, 2), upd(BookSide.ASK, 100.25, 3, last=True)):
        broker.process_depth(u)
    broker.submit_order(mk(col, "m", Side.BUY, 4))
    broker.process_depth(upd(BookSide.ASK, 100.5, 10, last=True))
    assert fills(col) == [("m", 2, "100"), ("m", 2, "100.25")]
    assert len({f.trade_id for f in col.of(OrderFilled)}) == 2


# --------------------------------------------------------------------------------------------------- modify, cancel


def test_modify_and_cancel() -> None:
    broker, col, _ = make()
    o = mk(col, "l", Side.BUY, 1, OrderType.LIMIT, limit="95")
    broker.submit_order(o)
    broker.modify_order(o, qty=3, limit_price=Price.of("96.5"))
    assert o.qty == 3 and o.limit_price == Price.of("96.5")
    broker.modify_order(o, stop_price=Price.of("90"))
    assert "no stop price" in col.of(OrderModifyRejected, "l")[-1].reason
    broker.modify_order(o, limit_price=Price.of("96.3"))
    assert "tick size" in col.of(OrderModifyRejected, "l")[-1].reason
    broker.process_bar(bar(97, 97, 96.5, 96.75))
    assert fills(col) == [("l", 3, "96.5")]
    broker.cancel_order(o)
    assert "not working" in col.of(OrderCancelRejected, "l")[0].reason
    p = mk(col, "p", Side.SELL, 1, OrderType.LIMIT, limit="110")
    broker.submit_order(p)
    broker.cancel_order(p)
    assert p.status is OrderStatus.CANCELED and col.of(OrderCanceled, "p")[0].reason == "canceled by request"


# --------------------------------------------------------------------------------------------------- closing, reports


def test_close_position_fills_at_the_next_price_and_flatten_at_the_last_price() -> None:
    broker, col, clock = make()
    broker.submit_order(mk(col, "b", Side.BUY, 2))
    broker.process_bar(bar(100, 100.5, 99.5, 100.25, i=0))
    broker.submit_order(mk(col, "tp", Side.SELL, 2, OrderType.LIMIT, limit="110"))
    clock.advance_to(T0 + M)
    broker.close_position(SYM, qty=1)  # partial close: other orders stay
    assert col.orders["tp"].status is OrderStatus.ACCEPTED
    broker.process_bar(bar(100.5, 100.5, 100, 100.25, i=1))
    assert fills(col)[-1] == ("sim-close-1", 1, "100.5")
    assert broker.account.position(SYM) == 1

    flat, fcol, _ = make(flatten_fill="last-price")
    flat.submit_order(mk(fcol, "b", Side.BUY, 2))
    flat.process_bar(bar(100, 100.5, 99.5, 100.25, i=0))
    flat.submit_order(mk(fcol, "tp", Side.SELL, 2, OrderType.LIMIT, limit="110"))
    flat.flatten()
    assert fcol.orders["tp"].status is OrderStatus.CANCELED
    assert fills(fcol)[-1] == ("sim-close-1", 2, "100.25")
    assert flat.account.position(SYM) == 0
    assert [type(e).__name__ for e in fcol.events if getattr(e, "client_order_id", "") == "sim-close-1"] == [
        "OrderSubmitted",
        "OrderAccepted",
        "OrderFilled",
    ]


def test_reports_for_reconciliation() -> None:
    broker, col, _ = make()
    broker.submit_order(mk(col, "b", Side.BUY, 2))
    broker.process_bar(bar(100, 100.5, 99.5, 100.25, i=0))
    broker.submit_order(mk(col, "s", Side.SELL, 1))
    broker.process_bar(bar(101, 101, 101, 101, i=1))
    broker.submit_order(mk(col, "l", Side.SELL, 1, OrderType.STOP, stop="95"))
    (pos,) = run(broker.position_reports())
    assert pos.signed_qty == 1 and pos.avg_price == Price.of("100") and pos.account_id == ACCT
    (orep,) = run(broker.order_reports())
    assert orep.client_order_id == "l" and orep.stop_price == Price.of("95") and orep.broker_order_id == 3
    frs = run(broker.fill_reports(T0 + M))
    assert [(f.trade_id, f.qty, f.price, f.realized_pnl) for f in frs] == [("7-2", 1, Price.of("101"), Money.of("50"))]
    acct = run(broker.account_report())
    assert acct.simulated and acct.can_trade and acct.balance == Money.of("50050")
    assert {e.broker_order_id for e in col.of(OrderAccepted)} == {1, 2, 3}
    assert len(col.of(OrderSubmitted)) == 3 and col.of(OrderSuspended) == []


def test_bars_without_working_orders_only_store_the_last_price() -> None:
    broker, _, _ = make()
    broker.process_bar(bar(100, 101, 99, 100.5, i=0))
    broker.process_bar(bar(100.5, 101, 99, 99.75, i=1))
    eng = broker.engine(SYM)
    assert eng is not None and eng.last_px == 99.75 and eng.last_ts_ns == T0 + 2 * M and eng.event_no == 0


def test_event_handler_exceptions_propagate() -> None:
    broker, _, _ = make()

    def boom(_: object) -> None:
        raise RuntimeError("handler failed")

    broker.set_event_handler(boom)
    with pytest.raises(RuntimeError):
        broker.submit_order(Order(ClientOrderId("x"), ACCT, SYM, Side.BUY, 1, OrderType.MARKET))


# --------------------------------------------------------------------------------------------------- closed periods

LABOR_NOON = utc(2025, 9, 1, 17)  # Labor Day 2025-09-01 12:00 CDT: CME equity futures halt until 17:00 CDT
LABOR_REOPEN = utc(2025, 9, 1, 22)  # 17:00 CDT


def _labor_day_bars(broker: SimBroker, clock: SimClock, start: int, n: int, px: float) -> None:
    for i in range(n):
        b = bar(px, px + 1, px - 1, px, i=i, start=start)
        clock.advance_to(b.ts_close_ns)
        broker.process_bar(b)


@pytest.mark.parametrize("mode", ["data", "calendar"])
def test_no_fill_inside_a_closed_period_and_one_warning_per_period(mode: str) -> None:
    broker, col, clock = make(LABOR_NOON - 31 * M, calendar_check=mode)
    clock.advance_to(LABOR_NOON - 30 * M)
    broker.process_bar(bar(6540, 6540, 6540, 6540, start=LABOR_NOON - 31 * M))  # data before the halt
    broker.submit_order(mk(col, "lim", Side.BUY, 1, OrderType.LIMIT, limit="6535"))  # 11:30 CDT, out of reach
    _labor_day_bars(broker, clock, LABOR_NOON - 30 * M, 30, 6540.0)
    assert fills(col) == []
    _labor_day_bars(broker, clock, LABOR_NOON, 240, 6530.0)  # 12:00-15:59 CDT: the limit is crossed, not traded
    assert fills(col) == []
    assert broker.engine(SYM).last_px == 6540.0  # closed-period prices are not the exchange's last price
    assert len(broker.closed_periods) == 1
    period = broker.closed_periods[0]
    assert (period.start_ns, period.end_ns, period.kind, period.records) == (
        LABOR_NOON,
        LABOR_REOPEN,
        "early close",
        240,
    )
    assert broker.data_warnings() == [
        "ESZ5: 240 market-data records inside a closed period (early close, 2025-09-01 12:00 CT to "
        "2025-09-01 17:00 CT by the trading calendar) were not traded"
    ]
    reopen = bar(6528.5, 6529, 6528, 6528.5, start=LABOR_REOPEN)
    clock.advance_to(reopen.ts_close_ns)
    broker.process_bar(reopen)  # the reopen gaps through the limit: it fills at the open
    assert fills(col) == [("lim", 1, "6528.5")]
    assert col.of(OrderFilled, "lim")[0].ts_event_ns == LABOR_REOPEN
    assert len(broker.closed_periods) == 1


def test_orders_sent_in_a_closed_period_are_rejected_and_risk_closes_wait_for_the_reopen() -> None:
    broker, col, clock = make(LABOR_NOON - 2 * M, calendar_check="data", flatten_fill="last-price")
    clock.advance_to(LABOR_NOON - M)
    broker.process_bar(bar(6540, 6540, 6540, 6540, start=LABOR_NOON - 2 * M))
    broker.submit_order(mk(col, "long", Side.BUY, 2))
    broker.process_bar(bar(6540, 6541, 6539, 6540, start=LABOR_NOON - M))
    assert fills(col) == [("long", 2, "6540")]
    _labor_day_bars(broker, clock, LABOR_NOON, 10, 6530.0)
    broker.submit_order(mk(col, "late", Side.BUY, 1))
    assert _reason(col, "late") == (
        "market closed: ESZ5 is in a closed period (early close until 2025-09-01 17:00 CT by the trading calendar)"
    )
    broker.close_position(SYM)  # a risk flatten in the halt: accepted, not filled at a closed-period price
    assert fills(col, "sim-close-1") == []
    reopen = bar(6528.5, 6529, 6528, 6528.5, start=LABOR_REOPEN)
    clock.advance_to(reopen.ts_close_ns)
    broker.process_bar(reopen)
    assert fills(col, "sim-close-1") == [("sim-close-1", 2, "6528.5")]


def test_calendar_check_off_trades_every_record() -> None:
    broker, col, clock = make(LABOR_NOON, calendar_check="off")
    broker.submit_order(mk(col, "lim", Side.BUY, 1, OrderType.LIMIT, limit="6535"))
    _labor_day_bars(broker, clock, LABOR_NOON, 3, 6530.0)
    assert fills(col) == [("lim", 1, "6530")]
    assert broker.closed_periods == []


# --------------------------------------------------------------------------------------------------- bar path points


def test_path_listener_sees_the_matching_path_of_a_held_contract_only() -> None:
    broker, col, clock = make()
    seen: list[tuple[str, float, int]] = []
    broker.set_path_listener(lambda s, p, ts: seen.append((s, p, ts)))
    up = bar(100, 103, 99, 102, i=0)  # |H-O| = 3 > |O-L| = 1: O, L, H, C
    broker.process_bar(up)
    assert seen == []  # flat: no path walk
    broker.submit_order(mk(col, "buy", Side.BUY, 1))
    down = bar(100, 101, 98, 99, i=1)  # |H-O| = 1 < |O-L| = 2: O, H, L, C
    clock.advance_to(down.ts_close_ns)
    broker.process_bar(down)
    assert fills(col) == [("buy", 1, "100")]
    close = down.ts_close_ns
    assert seen == [(SYM, 100.0, close), (SYM, 101.0, close), (SYM, 98.0, close), (SYM, 99.0, close)]
    tie = bar(100, 102, 98, 101, i=2)  # a tie on an up bar: the extreme away from the close first (O, L, H, C)
    broker.process_bar(tie)
    assert [p for _s, p, _t in seen[4:]] == [100.0, 98.0, 102.0, 101.0]


def test_a_close_sent_at_a_path_point_fills_at_that_point_and_the_probe_adds_a_point() -> None:
    broker, col, clock = make(flatten_fill="last-price", slippage_ticks=1)
    broker.submit_order(mk(col, "buy", Side.BUY, 5))
    broker.process_bar(bar(100, 100, 100, 100, i=0))
    assert fills(col) == [("buy", 5, "100.25")]  # market fill + 1 tick of slippage
    level = round(98.5 / 0.25)  # a "breach" level at 98.50: the probe stops the walk there
    probes: list[tuple[int, int]] = []

    def probe(symbol: str, a: int, b: int, tick: float) -> int | None:
        probes.append((a, b))
        return level if min(a, b) <= level <= max(a, b) and a > level else None

    def listener(symbol: str, price: float, ts: int) -> None:
        if price <= 98.5 and broker.account.position(SYM):
            broker.close_position(SYM)

    broker.set_path_listener(listener, probe)
    b = bar(100, 101, 97, 99.5, i=1)  # O 100, H 101, L 97, C 99.5: the breach is on the segment 101 -> 97
    clock.advance_to(b.ts_close_ns)
    broker.process_bar(b)
    # the close fills at the breach price less one tick of slippage, not at the low (97) nor at the close (99.5)
    assert fills(col, "sim-close-1") == [("sim-close-1", 5, "98.25")]
    assert probes == [(400, 404), (404, 388)]  # flat after the close: no more probes
    assert broker.account.position(SYM) == 0


def test_closed_periods_follow_the_data_time_of_a_shifted_replay() -> None:
    # the gateway presents a file at another time: Labor Day's afternoon shown two days later (Wednesday) is still
    # the Labor Day halt, and the Wednesday's own hours do not apply
    shift = 2 * 24 * 60 * M
    broker, col, clock = make(LABOR_NOON + shift - M, calendar_check="data")
    broker.set_calendar_offset(SYM, shift)
    broker.process_bar(bar(6540, 6540, 6540, 6540, start=LABOR_NOON + shift - 2 * M))
    broker.submit_order(mk(col, "lim", Side.BUY, 1, OrderType.LIMIT, limit="6535"))
    _labor_day_bars(broker, clock, LABOR_NOON + shift, 5, 6530.0)
    assert fills(col) == []
    [period] = broker.closed_periods
    assert (period.start_ns, period.end_ns, period.kind) == (LABOR_NOON + shift, LABOR_REOPEN + shift, "early close")
