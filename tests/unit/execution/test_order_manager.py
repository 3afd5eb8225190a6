"""Tests for the order manager (propdesk.execution.order_manager), driven through the in-memory StubBroker."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import pytest

from propdesk.brokers.base import Broker, BrokerCapabilities
from propdesk.core.bus import MessageBus
from propdesk.core.clock import SimClock
from propdesk.core.errors import ContractError, InvalidPriceError, InvalidQuantityError
from propdesk.execution.order_manager import (
    MANUAL_TAG,
    ORDER_ERROR_TOPIC,
    OrderEventError,
    OrderManager,
    OrderManagerError,
    tick_size_of_symbol,
)
from propdesk.model.enums import Side
from propdesk.model.events import OrderAccepted, OrderFilled, OrderUpdated
from propdesk.model.identifiers import AccountId, BrokerOrderId, ClientOrderId
from propdesk.model.orders import Order, OrderStatus
from propdesk.model.price import Money, Price
from tests.stubs.broker import StubBroker

ACC = AccountId(1)
SYM = "ESZ5"


@dataclass
class Rig:
    bus: MessageBus
    clock: SimClock
    broker: StubBroker
    m: OrderManager
    seen: list[tuple[str, object]] = field(default_factory=list)

    def topics(self) -> list[str]:
        return [t for t, _ in self.seen]

    def published(self, topic: str) -> list[object]:
        return [msg for t, msg in self.seen if t == topic]


class StubGate:
    """Denies orders whose quantity exceeds ``max_qty``; records what it saw and how many orders were open."""

    def __init__(self, max_qty: int = 100, *, raises: bool = False) -> None:
        self.max_qty = max_qty
        self.raises = raises
        self.seen: list[tuple[ClientOrderId, int, int]] = []

    def check(self, order: Order, manager: OrderManager) -> str | None:
        self.seen.append((order.client_order_id, order.qty, len(manager.open_orders())))
        if self.raises:
            raise RuntimeError("rule engine down")
        return f"qty {order.qty} over {self.max_qty}" if order.qty > self.max_qty else None


def rig(caps: BrokerCapabilities | None = None, *, gate: StubGate | None = None, auto_ack: bool = True) -> Rig:
    clock = SimClock(1_000)
    bus = MessageBus(timing=False, ts_source=clock.timestamp_ns)
    broker = StubBroker(account_id=ACC, capabilities=caps or BrokerCapabilities(), auto_ack=auto_ack)
    m = OrderManager(bus, broker, clock, account_id=ACC, gate=gate, run_token="abc123")
    broker.set_event_handler(m.on_broker_event)
    r = Rig(bus, clock, broker, m)
    bus.subscribe("events.**", lambda msg: r.seen.append((_topic_of(msg), msg)))
    return r


def _topic_of(msg: object) -> str:
    topic = getattr(msg, "topic", None)
    if isinstance(topic, str):
        return topic
    return ORDER_ERROR_TOPIC if isinstance(msg, OrderEventError) else type(msg).__name__


# ----------------------------------------------------------------------------------------------- factories


def test_factories_build_tagged_orders_with_unique_ids_and_send_nothing() -> None:
    r = rig()
    orders = [
        r.m.market(SYM, Side.BUY, 1, "sma"),
        r.m.limit(SYM, Side.BUY, 2, "sma", "6500.25"),
        r.m.stop(SYM, Side.SELL, 1, "sma", Price.of("6490")),
        r.m.stop_limit(SYM, Side.SELL, 1, "sma", stop_price="6490", limit_price=Decimal("6489.75")),
        r.m.trailing_stop(SYM, Side.SELL, 1, "sma", 12),
        r.m.join_bid(SYM, Side.BUY, 1, "sma"),
        r.m.join_ask(SYM, Side.SELL, 1, "sma"),
    ]
    ids = [o.client_order_id for o in orders]
    assert len(set(ids)) == len(ids)
    assert ids[0] == "pd-abc123-1" and ids[-1] == "pd-abc123-7"
    assert all(o.tag == "sma" and o.status is OrderStatus.INITIALIZED and o.account_id == ACC for o in orders)
    assert orders[1].limit_price == Price.of("6500.25")
    assert orders[3].stop_price == Price.of("6490") and orders[3].limit_price == Price.of("6489.75")
    assert orders[4].trail_ticks == 12
    assert all(o.ts_init_ns == 1_000 for o in orders)
    assert r.broker.commands == [] and r.m.orders() == [] and r.seen == []


def test_prices_are_checked_on_the_tick_before_anything_is_sent() -> None:
    r = rig()
    with pytest.raises(InvalidPriceError, match=r"6500\.1 on ESZ5 is not a multiple of the tick size 0\.25"):
        r.m.limit(SYM, Side.BUY, 1, "sma", "6500.10")
    with pytest.raises(InvalidPriceError, match="stop price"):
        r.m.stop_limit(SYM, Side.SELL, 1, "sma", stop_price="6490.3", limit_price="6490")
    with pytest.raises(InvalidPriceError, match="float"):
        r.m.limit(SYM, Side.BUY, 1, "sma", 6500.25)  # type: ignore[arg-type]
    six_e = r.m.limit("6EZ5", Side.BUY, 1, "fx", "1.08505")
    assert six_e.limit_price == Price.of("1.08505")
    with pytest.raises(InvalidPriceError):
        r.m.limit("6EZ5", Side.BUY, 1, "fx", "1.08501")
    assert r.broker.commands == []


@pytest.mark.parametrize("qty", [0, -1, 1.5, "2", True])
def test_quantity_must_be_a_positive_int(qty: object) -> None:
    r = rig()
    with pytest.raises(InvalidQuantityError):
        r.m.market(SYM, Side.BUY, qty, "sma")  # type: ignore[arg-type]


def test_tag_symbol_and_trail_are_validated() -> None:
    r = rig()
    with pytest.raises(OrderManagerError, match="tag"):
        r.m.market(SYM, Side.BUY, 1, "")
    with pytest.raises(ContractError, match="malformed symbol"):
        r.m.market("ZZZZ", Side.BUY, 1, "sma")
    with pytest.raises(ContractError, match="unknown root"):
        r.m.market("QQZ5", Side.BUY, 1, "sma")
    with pytest.raises(OrderManagerError, match="trail_ticks"):
        r.m.trailing_stop(SYM, Side.SELL, 1, "sma", 0)


def test_tick_size_of_symbol_parses_roots() -> None:
    assert tick_size_of_symbol("ESZ5") == Price.of("0.25")
    assert tick_size_of_symbol("MNQH6") == Price.of("0.25")
    assert tick_size_of_symbol("MESZ25") == Price.of("0.25")
    assert tick_size_of_symbol("6EZ5") == Price.of("0.00005")
    assert tick_size_of_symbol("YMM6") == Price.of("1")
    assert tick_size_of_symbol("CL") == Price.of("0.01")
    with pytest.raises(ContractError):
        tick_size_of_symbol("XXZ5")


# ----------------------------------------------------------------------------------------------- state machine


def test_life_cycle_submitted_accepted_partial_filled() -> None:
    r = rig(auto_ack=False)
    o = r.m.limit(SYM, Side.BUY, 3, "sma", "6500")
    assert r.m.submit(o) is o
    assert o.status is OrderStatus.SUBMITTED
    assert r.m.open_orders() == [o] and r.m.working_orders() == []
    assert r.broker.commands_named("submit")[0].client_order_id == o.client_order_id
    r.broker.accept(o.client_order_id)
    assert o.status is OrderStatus.ACCEPTED and o.broker_order_id is not None
    assert r.m.order_by_broker_id(o.broker_order_id) is o
    assert r.m.working_orders(SYM) == [o] and r.m.working_orders("NQZ5") == []
    r.broker.fill(o.client_order_id, 1, "6500")
    assert o.status is OrderStatus.PARTIALLY_FILLED and o.leaves_qty == 2
    r.broker.fill(o.client_order_id, 2, "6499.75", fee=Money.of("2.80"))
    assert o.status is OrderStatus.FILLED and o.filled_qty == 3
    assert o.avg_fill_price == Price.of("6499.833333333")  # (6500 + 2 x 6499.75) / 3, floored at 1e-9
    assert o.fees == Money.of("2.80")
    assert r.m.open_orders() == [] and r.m.orders_for_tag("sma") == [o]
    assert r.topics() == [
        "events.order.submitted",
        "events.order.accepted",
        "events.order.filled",
        "events.order.filled",
    ]
    fills = r.published("events.order.filled")
    assert all(isinstance(f, OrderFilled) and f.tag == "sma" for f in fills)  # stamped with the order's tag


@pytest.mark.parametrize(
    ("drive", "status"),
    [("cancel", OrderStatus.CANCELED), ("reject", OrderStatus.REJECTED), ("expire", OrderStatus.EXPIRED)],
)
def test_terminal_outcomes(drive: str, status: OrderStatus) -> None:
    r = rig()
    o = r.m.submit(r.m.limit(SYM, Side.BUY, 1, "sma", "6500"))
    getattr(r.broker, drive)(o.client_order_id)
    assert o.status is status and o.is_done
    assert r.m.open_orders() == []


def test_cancel_goes_pending_then_canceled_and_is_sent_once() -> None:
    r = rig(auto_ack=False)
    o = r.m.submit(r.m.limit(SYM, Side.BUY, 1, "sma", "6500"))
    r.broker.accept(o.client_order_id)
    assert r.m.cancel(o.client_order_id) is True
    assert o.status is OrderStatus.PENDING_CANCEL
    assert r.m.cancel(o.client_order_id) is False
    assert len(r.broker.commands_named("cancel")) == 1
    r.broker.cancel(o.client_order_id)
    assert o.status is OrderStatus.CANCELED
    assert r.m.cancel(o.client_order_id) is False  # done: nothing sent
    assert len(r.broker.commands_named("cancel")) == 1
    with pytest.raises(OrderManagerError, match="unknown"):
        r.m.cancel(ClientOrderId("pd-nope-1"))


def test_modify_quantity_and_price() -> None:
    r = rig(auto_ack=False)
    o = r.m.submit(r.m.limit(SYM, Side.BUY, 2, "sma", "6500"))
    r.broker.accept(o.client_order_id)
    assert r.m.modify(o.client_order_id, qty=4, limit_price="6499.5") is True
    assert o.status is OrderStatus.PENDING_UPDATE and o.qty == 2  # unchanged until the broker confirms
    cmd = r.broker.commands_named("modify")[0]
    assert cmd.args["qty"] == 4 and cmd.args["limit_price"] == Price.of("6499.5")
    r.broker.emit(
        OrderUpdated(
            client_order_id=o.client_order_id, account_id=ACC, ts_event_ns=5, qty=4, limit_price=Price.of("6499.5")
        )
    )
    assert o.status is OrderStatus.ACCEPTED and o.qty == 4 and o.limit_price == Price.of("6499.5")
    with pytest.raises(InvalidPriceError):
        r.m.modify(o.client_order_id, limit_price="6499.6")
    with pytest.raises(OrderManagerError, match="no stop price"):
        r.m.modify(o.client_order_id, stop_price="6490")
    r.broker.fill(o.client_order_id, 2)
    with pytest.raises(OrderManagerError, match="exceed the 2 already filled"):
        r.m.modify(o.client_order_id, qty=2)
    with pytest.raises(OrderManagerError, match="nothing to change"):
        r.m.modify(o.client_order_id)
    r.broker.fill(o.client_order_id, 2)
    with pytest.raises(OrderManagerError, match="filled"):
        r.m.modify(o.client_order_id, qty=5)
    assert len(r.broker.commands_named("modify")) == 1


def test_modify_without_broker_support_raises() -> None:
    r = rig(BrokerCapabilities(modify_orders=False))
    o = r.m.submit(r.m.limit(SYM, Side.BUY, 2, "sma", "6500"))
    with pytest.raises(OrderManagerError, match="cannot modify"):
        r.m.modify(o.client_order_id, qty=3)
    assert r.broker.commands_named("modify") == []


# ----------------------------------------------------------------------------------------------- robustness


def test_illegal_event_is_published_as_an_error_and_does_not_crash() -> None:
    r = rig()
    o = r.m.submit(r.m.market(SYM, Side.BUY, 1, "sma"))
    r.broker.fill(o.client_order_id)
    assert o.status is OrderStatus.FILLED
    late = OrderAccepted(client_order_id=o.client_order_id, account_id=ACC, ts_event_ns=9)
    r.broker.emit(late)  # must not raise
    assert o.status is OrderStatus.FILLED
    errors = r.published(ORDER_ERROR_TOPIC)
    assert len(errors) == 1
    err = errors[0]
    assert isinstance(err, OrderEventError) and err.client_order_id == o.client_order_id and err.event is late
    assert "filled" in err.error and "accepted" in err.error
    assert r.published("events.order.accepted").count(late) == 0  # the refused event is not published as accepted


def test_fill_on_a_canceled_order_is_still_published_for_positions() -> None:
    r = rig()
    o = r.m.submit(r.m.limit(SYM, Side.BUY, 1, "sma", "6500"))
    r.broker.cancel(o.client_order_id)
    late = OrderFilled(
        client_order_id=o.client_order_id,
        account_id=ACC,
        ts_event_ns=9,
        symbol=SYM,
        side=Side.BUY,
        qty=1,
        price=Price.of("6500"),
        fee=Money.zero(),
        trade_id="late-1",
    )
    r.broker.emit(late)
    assert o.status is OrderStatus.CANCELED
    assert len(r.published(ORDER_ERROR_TOPIC)) == 1
    fills = r.published("events.order.filled")
    assert len(fills) == 1 and isinstance(fills[0], OrderFilled) and fills[0].trade_id == "late-1"


def test_duplicate_fill_by_trade_id_is_ignored() -> None:
    r = rig()
    o = r.m.submit(r.m.limit(SYM, Side.BUY, 3, "sma", "6500"))
    first = r.broker.fill(o.client_order_id, 1, trade_id="T-1")
    r.broker.emit(first)  # the same execution again (replayed by a reconnect, or order and trade channels)
    assert o.filled_qty == 1 and len(o.fills) == 1
    assert len(r.published("events.order.filled")) == 1
    assert r.published(ORDER_ERROR_TOPIC) == []


def test_foreign_fill_is_tracked_as_manual_and_published() -> None:
    r = rig()
    r.broker.fill_foreign(SYM, Side.SELL, 2, "6501.25", broker_id=77)
    o = r.m.order("ext-77")
    assert o is not None and o.tag == MANUAL_TAG and o.side is Side.SELL and o.symbol == SYM
    assert o.status is OrderStatus.FILLED and o.filled_qty == 2 and o.avg_fill_price == Price.of("6501.25")
    assert r.m.orders_for_tag(MANUAL_TAG) == [o]
    fills = r.published("events.order.filled")
    assert len(fills) == 1 and isinstance(fills[0], OrderFilled) and fills[0].tag == MANUAL_TAG
    # A second execution of the same manual order: its size was larger than the first fill showed.
    r.broker.fill_foreign(SYM, Side.SELL, 1, "6501.00", broker_id=77)
    o2 = r.m.order("ext-77")
    assert o2 is not None and o2.filled_qty == 3 and o2.status is OrderStatus.FILLED
    assert len(r.published("events.order.filled")) == 2
    # Events for a foreign order without enough data are published, not tracked, and are not errors.
    acc = OrderAccepted(
        client_order_id=ClientOrderId("ext-88"), account_id=ACC, ts_event_ns=3, broker_order_id=BrokerOrderId(88)
    )
    r.broker.emit(acc)
    assert r.m.order("ext-88") is None and r.published("events.order.accepted") == [acc]
    assert r.published(ORDER_ERROR_TOPIC) == []


def test_events_of_another_account_and_non_order_events_are_ignored() -> None:
    r = rig()
    r.broker.emit(OrderAccepted(client_order_id=ClientOrderId("x-1"), account_id=AccountId(2), ts_event_ns=1))
    r.broker.emit("not an event")
    assert r.seen == []


# ----------------------------------------------------------------------------------------------- gate, capabilities


def test_denied_order_never_reaches_the_broker() -> None:
    gate = StubGate(max_qty=2)
    r = rig(gate=gate)
    o = r.m.submit(r.m.market(SYM, Side.BUY, 5, "sma"))
    assert o.status is OrderStatus.DENIED and o.reason == "qty 5 over 2"
    assert r.broker.commands == []
    assert r.topics() == ["events.order.denied"]
    ok = r.m.submit(r.m.limit(SYM, Side.BUY, 1, "sma", "6500"))
    assert ok.status is OrderStatus.ACCEPTED
    assert [c.client_order_id for c in r.broker.commands_named("submit")] == [ok.client_order_id]
    assert [s[0] for s in gate.seen] == [o.client_order_id, ok.client_order_id]
    # Modifies pass the gate too: the order as it would be after the change.
    assert r.m.modify(ok.client_order_id, qty=3) is False
    assert ok.qty == 1 and ok.reason == "qty 3 over 2" and ok.status is OrderStatus.ACCEPTED
    assert r.broker.commands_named("modify") == []
    assert len(r.published("events.order.modify_rejected")) == 1
    assert gate.seen[-1][1:] == (3, 1)  # saw qty 3, with one open order in the manager


def test_a_gate_that_raises_denies() -> None:
    r = rig(gate=StubGate(raises=True))
    o = r.m.submit(r.m.market(SYM, Side.BUY, 1, "sma"))
    assert o.status is OrderStatus.DENIED and "rule engine down" in o.reason
    assert r.broker.commands == []


def test_order_type_the_broker_lacks_is_rejected_locally() -> None:
    r = rig(BrokerCapabilities(trailing_stops=False, stop_limit_orders=False, join_bid_ask=False))
    for o in (
        r.m.trailing_stop(SYM, Side.SELL, 1, "sma", 8),
        r.m.stop_limit(SYM, Side.SELL, 1, "sma", stop_price="6490", limit_price="6489"),
        r.m.join_bid(SYM, Side.BUY, 1, "sma"),
    ):
        r.m.submit(o)
        assert o.status is OrderStatus.REJECTED and "does not support" in o.reason
    assert r.broker.commands == []
    r2 = rig(BrokerCapabilities(trailing_stops=True))
    t = r2.m.submit(r2.m.trailing_stop(SYM, Side.SELL, 1, "sma", 8))
    assert t.status is OrderStatus.ACCEPTED


def test_broker_that_raises_on_submit_rejects_the_order() -> None:
    class Failing(StubBroker):
        def submit_order(self, order: Order, bracket: object = None) -> None:
            raise ConnectionError("socket closed")

    clock = SimClock(0)
    bus = MessageBus(timing=False)
    m = OrderManager(bus, Failing(account_id=ACC), clock, account_id=ACC, run_token="t1")
    o = m.submit(m.market(SYM, Side.BUY, 1, "sma"))
    assert o.status is OrderStatus.REJECTED and "socket closed" in o.reason


def test_submit_misuse_raises() -> None:
    r = rig()
    o = r.m.submit(r.m.market(SYM, Side.BUY, 1, "sma"))
    with pytest.raises(OrderManagerError, match="only a new order"):
        r.m.submit(o)
    other = Order(ClientOrderId("pd-x-1"), AccountId(9), SYM, Side.BUY, 1, o.order_type, tag="sma")
    with pytest.raises(OrderManagerError, match="account"):
        r.m.submit(other)
    clash = Order(o.client_order_id, ACC, SYM, Side.BUY, 1, o.order_type, tag="sma")
    with pytest.raises(OrderManagerError, match="already used"):
        r.m.submit(clash)


def test_pass_throughs_reach_the_broker() -> None:
    r = rig()
    r.m.cancel_all(SYM)
    r.m.close_position(SYM, 2)
    r.m.close_position("NQZ5")
    r.m.flatten()
    assert [(c.name, c.args.get("symbol"), c.args.get("qty")) for c in r.broker.commands] == [
        ("cancel_all", SYM, None),
        ("close_position", SYM, 2),
        ("close_position", "NQZ5", None),
        ("flatten", None, None),
    ]
    with pytest.raises(InvalidQuantityError):
        r.m.close_position(SYM, 0)


def test_cancel_all_cancels_working_orders_through_events() -> None:
    r = rig()
    a = r.m.submit(r.m.limit(SYM, Side.BUY, 1, "a", "6500"))
    b = r.m.submit(r.m.limit("NQZ5", Side.BUY, 1, "b", "21000"))
    r.m.cancel_all(SYM)
    assert a.status is OrderStatus.CANCELED and b.status is OrderStatus.ACCEPTED
    assert r.m.open_orders() == [b] and r.m.orders_for_tag("b", open_only=True) == [b]


def test_stub_broker_implements_the_broker_protocol() -> None:
    assert isinstance(StubBroker(), Broker)


def test_malformed_fills_are_errors_not_crashes() -> None:
    r = rig()
    o = r.m.submit(r.m.limit(SYM, Side.BUY, 2, "sma", "6500"))
    for cid, trade in ((o.client_order_id, "z-1"), (ClientOrderId("ext-5"), "z-2")):
        r.broker.emit(
            OrderFilled(
                client_order_id=cid,
                account_id=ACC,
                ts_event_ns=3,
                symbol=SYM,
                side=Side.BUY,
                qty=0,
                price=Price.of("6500"),
                fee=Money.zero(),
                trade_id=trade,
            )
        )
    assert o.filled_qty == 0 and o.status is OrderStatus.ACCEPTED
    assert r.m.order("ext-5") is None
    assert [e.client_order_id for e in r.published(ORDER_ERROR_TOPIC)] == [o.client_order_id, "ext-5"]  # type: ignore[attr-defined]
