"""ProjectX <-> propdesk mapping (spec sections 3.2, 4, 5.4, 5.5)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from propdesk.brokers.projectx.mapping import (
    ContractCache,
    QuoteMerger,
    bar_unit,
    depth_update,
    money_of,
    order_status_of,
    order_to_report,
    order_type_of,
    position_to_report,
    px_order_type,
    px_side,
    quote_tick,
    side_of,
    trade_tick,
    trade_to_fill,
    wire_price,
)
from propdesk.brokers.projectx.models import (
    Contract,
    DepthData,
    MarketTradeData,
    OrderRow,
    PositionRow,
    QuoteData,
    TradeRow,
)
from propdesk.core.errors import InvalidPriceError
from propdesk.model.data import Timeframe
from propdesk.model.enums import AggressorSide, BookAction, BookSide, Side
from propdesk.model.identifiers import ClientOrderId
from propdesk.model.orders import OrderStatus, OrderType
from propdesk.model.price import Money, Price


def test_order_type_and_side_round_trip() -> None:
    wire = {
        OrderType.LIMIT: 1,
        OrderType.MARKET: 2,
        OrderType.STOP_LIMIT: 3,
        OrderType.STOP: 4,
        OrderType.TRAILING_STOP: 5,
        OrderType.JOIN_BID: 6,
        OrderType.JOIN_ASK: 7,
    }
    for t, n in wire.items():
        assert px_order_type(t) == n
        assert order_type_of(n) is t
    for s in Side:
        assert side_of(px_side(s)) is s
    assert px_side(Side.BUY) == 0 and px_side(Side.SELL) == 1


@pytest.mark.parametrize(
    ("px", "fill", "status"),
    [
        (0, 0, OrderStatus.SUBMITTED),
        (1, 0, OrderStatus.ACCEPTED),
        (1, 2, OrderStatus.PARTIALLY_FILLED),
        (2, 3, OrderStatus.FILLED),
        (3, 0, OrderStatus.CANCELED),
        (4, 0, OrderStatus.EXPIRED),
        (5, 0, OrderStatus.REJECTED),
        (6, 0, OrderStatus.SUBMITTED),
        (7, 0, OrderStatus.PENDING_CANCEL),
        (8, 0, OrderStatus.SUSPENDED),
    ],
)
def test_all_nine_statuses(px: int, fill: int, status: OrderStatus) -> None:
    assert order_status_of(px, fill) is status


def test_contract_ids_and_symbols() -> None:
    cache = ContractCache()
    assert cache.symbol_of("CON.F.US.EP.Z25") == "ESZ5"
    assert cache.symbol_of("CON.F.US.ENQ.H26") == "NQH6"
    odd = Contract(id="CON.F.US.XYZ.Z25", name="XYZZ5", tick_size=Decimal("0.1"), tick_value=Decimal(1))
    assert cache.add(odd) == "XYZZ5"
    assert cache.symbol_of("CON.F.US.XYZ.Z25") == "XYZZ5"
    assert cache.by_symbol("XYZZ5") is odd
    assert cache.tick_size("CON.F.US.XYZ.Z25") == Price.of("0.1")
    assert cache.tick_size("CON.F.US.EP.Z25") == Price.of("0.25")


def test_wire_price_requires_the_tick_and_money_rounds_to_cents() -> None:
    tick = Price.of("0.25")
    assert wire_price(Price.of("6543.25"), tick) == Decimal("6543.25")
    with pytest.raises(InvalidPriceError):
        wire_price(Price.of("20900.13"), tick)
    assert money_of(Decimal("1.40")) == Money(140)
    assert money_of(Decimal("0.375")) == Money(38)
    assert money_of(None) == Money(0)


def test_bar_units() -> None:
    assert bar_unit(Timeframe.parse("5s")) == (1, 5)
    assert bar_unit(Timeframe.parse("1m")) == (2, 1)
    assert bar_unit(Timeframe.parse("4h")) == (3, 4)
    assert bar_unit(Timeframe.parse("1d")) == (4, 1)


def test_trade_row_to_fill() -> None:
    row = TradeRow.model_validate(
        {
            "id": 8604,
            "accountId": 203,
            "contractId": "CON.F.US.EP.Z25",
            "creationTimestamp": "2025-01-21T16:13:52Z",
            "price": 6065.25,
            "profitAndLoss": None,
            "fees": 1.4,
            "side": 1,
            "size": 2,
            "voided": False,
            "orderId": 14,
        }
    )
    fill = trade_to_fill(row, client_order_id=ClientOrderId("pd-1"), symbol="ESZ5", tag="s")
    assert fill.trade_id == "8604" and fill.side is Side.SELL and fill.qty == 2
    assert fill.price == Price.of("6065.25") and fill.fee == Money(140) and fill.account_id == 203


def test_position_type_and_size_to_signed_qty() -> None:
    base = {
        "id": 1,
        "accountId": 2,
        "contractId": "CON.F.US.EP.Z25",
        "creationTimestamp": "2025-01-21T16:13:52Z",
        "averagePrice": 6000.375,
    }
    long = position_to_report(PositionRow.model_validate({**base, "type": 1, "size": 3}), symbol="ESZ5")
    short = position_to_report(PositionRow.model_validate({**base, "type": 2, "size": 2}), symbol="ESZ5")
    flat = position_to_report(PositionRow.model_validate({**base, "type": 2, "size": 0}), symbol="ESZ5")
    assert (long.signed_qty, short.signed_qty, flat.signed_qty) == (3, -2, 0)
    assert long.avg_price == Price.of("6000.375")


def test_order_row_to_report() -> None:
    row = OrderRow.model_validate(
        {
            "id": 5,
            "accountId": 2,
            "contractId": "CON.F.US.EP.Z25",
            "status": 1,
            "type": 4,
            "side": 1,
            "size": 3,
            "stopPrice": 6000.25,
            "fillVolume": 1,
            "filledPrice": 6000.5,
            "customTag": "pd-1",
        }
    )
    rep = order_to_report(row, symbol="ESZ5", client_order_id=ClientOrderId("pd-1"))
    assert rep.status is OrderStatus.PARTIALLY_FILLED and rep.order_type is OrderType.STOP
    assert rep.stop_price == Price.of("6000.25") and rep.avg_fill_price == Price.of("6000.5") and rep.filled_qty == 1


def test_partial_quotes_merge() -> None:
    m = QuoteMerger()
    q = m.merge(
        "C", QuoteData.model_validate({"symbol": "F.US.EP", "bestBid": 6000.25, "timestamp": "2025-01-01T00:00:00Z"}), 5
    )
    assert quote_tick("ESZ5", q, 5) is None  # no ask yet
    q = m.merge("C", QuoteData.model_validate({"bestAsk": 6000.5}), 7)
    tick = quote_tick("ESZ5", q, 7)
    assert tick is not None and (tick.bid, tick.ask) == (6000.25, 6000.5)
    q = m.merge("C", QuoteData.model_validate({"bestBid": 6000.5, "lastPrice": 6000.5}), 9)
    tick = quote_tick("ESZ5", q, 9)
    assert tick is not None and (tick.bid, tick.ask) == (6000.5, 6000.5) and q.last_price == Decimal("6000.5")


def test_trade_and_depth_items() -> None:
    t = trade_tick(
        "ESZ5",
        MarketTradeData.model_validate({"price": 6000.25, "volume": 3, "type": 1, "timestamp": "2025-01-01T00:00:00Z"}),
        1,
    )
    assert t.size == 3 and t.aggressor is AggressorSide.SELLER and t.ts_event_ns == 1_735_689_600 * 10**9
    ask = depth_update("ESZ5", DepthData.model_validate({"type": 1, "price": 6000.5, "volume": 7}), 1, is_last=False)
    gone = depth_update("ESZ5", DepthData.model_validate({"type": 4, "price": 6000.25, "volume": 0}), 1, is_last=True)
    reset = depth_update("ESZ5", DepthData.model_validate({"type": 6, "price": 0, "volume": 0}), 1, is_last=True)
    trade = depth_update("ESZ5", DepthData.model_validate({"type": 5, "price": 6000.25, "volume": 1}), 1, is_last=True)
    assert ask is not None and ask.side is BookSide.ASK and ask.action is BookAction.UPDATE and ask.size == 7
    assert gone is not None and gone.side is BookSide.BID and gone.action is BookAction.DELETE
    assert reset is not None and reset.action is BookAction.CLEAR and reset.side is None
    assert trade is None
