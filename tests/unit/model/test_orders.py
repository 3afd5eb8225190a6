"""Tests for the order state machine (propdesk.model.orders) driven by order events (propdesk.model.events)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from propdesk.core.errors import InvalidQuantityError
from propdesk.model.enums import Side
from propdesk.model.events import (
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderDenied,
    OrderExpired,
    OrderFilled,
    OrderModifyRejected,
    OrderPendingCancel,
    OrderPendingUpdate,
    OrderRejected,
    OrderSubmitted,
    OrderUpdated,
)
from propdesk.model.identifiers import AccountId, BrokerOrderId, ClientOrderId
from propdesk.model.orders import IllegalOrderTransitionError, Order, OrderStatus, OrderType
from propdesk.model.price import Money, Price

CID = ClientOrderId("pd-1")
ACC = AccountId(7)


def _order(qty: int = 3, order_type: OrderType = OrderType.LIMIT) -> Order:
    return Order(CID, ACC, "ESZ5", Side.BUY, qty, order_type, limit_price=Price.of("6500.25"))


def _fill(qty: int, price: str, trade_id: str, ts: int = 5) -> OrderFilled:
    return OrderFilled(
        client_order_id=CID,
        account_id=ACC,
        ts_event_ns=ts,
        symbol="ESZ5",
        side=Side.BUY,
        qty=qty,
        price=Price.of(price),
        fee=Money.of("1.40"),
        trade_id=trade_id,
    )


def _working(qty: int = 3) -> Order:
    o = _order(qty)
    o.apply(OrderSubmitted(client_order_id=CID, account_id=ACC, ts_event_ns=1))
    o.apply(OrderAccepted(client_order_id=CID, account_id=ACC, ts_event_ns=2, broker_order_id=BrokerOrderId(99)))
    return o


def test_life_cycle_with_partial_fills_and_exact_average() -> None:
    o = _working()
    assert o.status is OrderStatus.ACCEPTED and o.broker_order_id == 99 and o.is_working
    o.apply(_fill(1, "6500.25", "t1"))
    assert o.status is OrderStatus.PARTIALLY_FILLED and o.leaves_qty == 2
    o.apply(_fill(2, "6500.50", "t2"))
    assert o.status is OrderStatus.FILLED and o.is_done and o.leaves_qty == 0
    # (6500.25 + 2 * 6500.50) / 3 = 6500.41666... exactly representable to 1e-9 by floor division
    assert o.avg_fill_price == Price(6500_416_666_666)
    assert o.fees == Money.of("2.80")


def test_overfill_is_illegal() -> None:
    o = _working(2)
    with pytest.raises(IllegalOrderTransitionError, match="exceeds"):
        o.apply(_fill(3, "6500.25", "t1"))
    assert o.filled_qty == 0 and o.status is OrderStatus.ACCEPTED


def test_terminal_states_accept_nothing() -> None:
    o = _working()
    o.apply(OrderCanceled(client_order_id=CID, account_id=ACC, ts_event_ns=3))
    for event in (
        _fill(1, "6500.25", "t1"),
        OrderAccepted(client_order_id=CID, account_id=ACC, ts_event_ns=4),
        OrderExpired(client_order_id=CID, account_id=ACC, ts_event_ns=4),
        OrderUpdated(client_order_id=CID, account_id=ACC, ts_event_ns=4, qty=5),
    ):
        with pytest.raises(IllegalOrderTransitionError):
            o.apply(event)
    assert o.status is OrderStatus.CANCELED


def test_modify_and_cancel_round_trips() -> None:
    o = _working()
    o.apply(OrderPendingUpdate(client_order_id=CID, account_id=ACC, ts_event_ns=3))
    o.apply(OrderUpdated(client_order_id=CID, account_id=ACC, ts_event_ns=4, qty=5, limit_price=Price.of("6499")))
    assert o.status is OrderStatus.ACCEPTED and o.qty == 5 and o.limit_price == Price.of(6499)
    o.apply(_fill(2, "6499", "t1"))
    o.apply(OrderPendingUpdate(client_order_id=CID, account_id=ACC, ts_event_ns=6))
    o.apply(OrderModifyRejected(client_order_id=CID, account_id=ACC, ts_event_ns=7, reason="too late"))
    assert o.status is OrderStatus.PARTIALLY_FILLED
    with pytest.raises(IllegalOrderTransitionError, match="below"):
        o.apply(OrderUpdated(client_order_id=CID, account_id=ACC, ts_event_ns=8, qty=1))
    o.apply(OrderPendingCancel(client_order_id=CID, account_id=ACC, ts_event_ns=9))
    o.apply(OrderCancelRejected(client_order_id=CID, account_id=ACC, ts_event_ns=10, reason="filled"))
    assert o.status is OrderStatus.PARTIALLY_FILLED
    o.apply(OrderPendingCancel(client_order_id=CID, account_id=ACC, ts_event_ns=11))
    o.apply(OrderCanceled(client_order_id=CID, account_id=ACC, ts_event_ns=12))
    assert o.status is OrderStatus.CANCELED and o.filled_qty == 2 and o.leaves_qty == 0


def test_denied_and_rejected_keep_reason() -> None:
    o = _order()
    o.apply(OrderDenied(client_order_id=CID, account_id=ACC, ts_event_ns=1, reason="daily loss limit"))
    assert o.status is OrderStatus.DENIED and o.reason == "daily loss limit"
    o2 = _order()
    o2.apply(OrderSubmitted(client_order_id=CID, account_id=ACC, ts_event_ns=1))
    o2.apply(OrderRejected(client_order_id=CID, account_id=ACC, ts_event_ns=2, reason="price not on tick"))
    assert o2.status is OrderStatus.REJECTED and o2.reason == "price not on tick"


def test_construction_validates() -> None:
    with pytest.raises(InvalidQuantityError):
        _order(qty=0)
    with pytest.raises(ValueError, match="stop price"):
        Order(CID, ACC, "ESZ5", Side.SELL, 1, OrderType.STOP)
    with pytest.raises(ValueError, match="trail_ticks"):
        Order(CID, ACC, "ESZ5", Side.SELL, 1, OrderType.TRAILING_STOP)
    assert Order(CID, ACC, "ESZ5", Side.SELL, 2, OrderType.MARKET).signed_qty == -2


def test_event_topics() -> None:
    assert _fill(1, "1", "t").topic == "events.order.filled"
    assert OrderPendingCancel(client_order_id=CID, account_id=ACC, ts_event_ns=0).topic == "events.order.pending_cancel"


@given(st.lists(st.integers(min_value=1, max_value=5), min_size=1, max_size=10))
def test_fills_sum_to_quantity(chunks: list[int]) -> None:
    total = sum(chunks)
    o = _working(total)
    for i, q in enumerate(chunks):
        o.apply(_fill(q, "6500.25", f"t{i}", ts=10 + i))
    assert o.status is OrderStatus.FILLED and o.filled_qty == total
    assert o.avg_fill_price == Price.of("6500.25")
