"""The reconciler: the broker's reports against local state after a restart or a reconnect."""

from __future__ import annotations

import asyncio

from propdesk.brokers.sim.broker import SimBroker
from propdesk.core.clock import SimClock
from propdesk.model.enums import Side
from propdesk.model.events import OrderAccepted, OrderEvent, OrderUpdated
from propdesk.model.identifiers import AccountId, BrokerOrderId, ClientOrderId
from propdesk.model.orders import Order, OrderStatus, OrderType
from propdesk.model.price import Money, Price
from propdesk.model.reports import FillReport, OrderReport, PositionReport
from propdesk.node import NodeConfig, TradingNode
from propdesk.risk.reconcile import Reconciled, Reconciler, bracket_parent_id

ACCT = AccountId(3)
T0 = 1_763_000_000_000_000_000
SEC = 1_000_000_000


class StubReports:
    """Canned broker reports."""

    def __init__(
        self,
        orders: list[OrderReport] | None = None,
        fills: list[FillReport] | None = None,
        positions: list[PositionReport] | None = None,
    ) -> None:
        self.orders = orders or []
        self.fills = fills or []
        self.positions = positions or []
        self.since: list[int] = []

    async def order_reports(self) -> list[OrderReport]:
        return self.orders

    async def fill_reports(self, since_ns: int) -> list[FillReport]:
        self.since.append(since_ns)
        return [f for f in self.fills if f.ts_ns >= since_ns]

    async def position_reports(self) -> list[PositionReport]:
        return self.positions


class StubHistory(StubReports):
    def __init__(self, history: list[OrderReport], **kw: list) -> None:  # type: ignore[type-arg]
        super().__init__(**kw)
        self.history = history

    async def order_history(self, since_ns: int) -> list[OrderReport]:
        return self.history


def _node() -> TradingNode:
    clock = SimClock(T0 + 100 * SEC)
    return TradingNode(
        clock=clock,
        broker=SimBroker(clock, account_id=ACCT),
        config=NodeConfig(account_id=int(ACCT), bus_timing=False),
    )


def _working(cid: str, *, qty: int = 1, tag: str = "strat", status: OrderStatus = OrderStatus.ACCEPTED) -> Order:
    o = Order(ClientOrderId(cid), ACCT, "ESZ5", Side.BUY, qty, OrderType.LIMIT, limit_price=Price.of("6500"), tag=tag)
    o.status = status
    return o


def _oreport(cid: str | None, status: OrderStatus, **kw: object) -> OrderReport:
    base: dict[str, object] = {
        "account_id": ACCT,
        "broker_order_id": BrokerOrderId(7),
        "client_order_id": None if cid is None else ClientOrderId(cid),
        "symbol": "ESZ5",
        "side": Side.BUY,
        "qty": 1,
        "order_type": OrderType.LIMIT,
        "status": status,
        "limit_price": Price.of("6500"),
        "ts_ns": T0 + 50 * SEC,
    }
    base.update(kw)
    return OrderReport(**base)  # type: ignore[arg-type]


def _freport(
    trade_id: str, cid: str, *, side: Side = Side.BUY, price: str = "6500", ts: int = T0 + 60 * SEC
) -> FillReport:
    return FillReport(
        account_id=ACCT,
        trade_id=trade_id,
        broker_order_id=BrokerOrderId(7),
        client_order_id=ClientOrderId(cid),
        symbol="ESZ5",
        side=side,
        qty=1,
        price=Price.of(price),
        fee=Money.of("1.40"),
        ts_ns=ts,
    )


def _reconcile(node: TradingNode, broker: StubReports, since: int = T0, **kw: object) -> tuple:  # type: ignore[type-arg]
    published: list[object] = []
    node.bus.subscribe("events.order.**", published.append)
    node.bus.subscribe(Reconciled.TOPIC, published.append)
    rec = Reconciler(
        node.orders,
        node.positions,
        broker,
        account_id=ACCT,
        emit=node.on_broker_event,
        clock=node.clock.timestamp_ns,
        bus=node.bus,
        **kw,  # type: ignore[arg-type]
    )
    return asyncio.run(rec.reconcile(since)), published


def test_bracket_parent_id() -> None:
    assert bracket_parent_id("pd-x-7-sl") == "pd-x-7"
    assert bracket_parent_id("pd-x-7-tp2") == "pd-x-7"
    assert bracket_parent_id("pd-x-7") is None


def test_a_missed_fill_is_emitted_once_and_marked_reconciled() -> None:
    node = _node()
    node.orders.restore([_working("pd-w")])
    broker = StubReports(fills=[_freport("3-1", "pd-w")], positions=[])
    broker.positions = [PositionReport(account_id=ACCT, symbol="ESZ5", signed_qty=1, avg_price=Price.of("6500"))]
    report, published = _reconcile(node, broker, since=T0 + 10 * SEC)
    assert broker.since == [T0 + 10 * SEC]
    assert report.ok and report.fills == ["3-1"]
    o = node.orders.order("pd-w")
    assert o is not None and o.status is OrderStatus.FILLED
    fills = [e for e in published if isinstance(e, OrderEvent) and e.topic == "events.order.filled"]
    assert len(fills) == 1 and fills[0].reconciled and fills[0].tag == "strat"  # type: ignore[attr-defined]
    assert node.positions.net_qty(ACCT, "ESZ5") == 1
    done = [e for e in published if isinstance(e, Reconciled)]
    assert len(done) == 1 and done[0].fills == 1 and done[0].discrepancies == ()

    again, _ = _reconcile(node, broker, since=T0 + 10 * SEC)  # a second pass finds nothing to do
    assert again.events == [] and again.ok


def test_unknown_bracket_children_are_adopted_with_their_entry_tag() -> None:
    node = _node()
    entry = _working("pd-e", status=OrderStatus.SUBMITTED)
    node.orders.restore([entry])
    sl = _oreport("pd-e-sl", OrderStatus.ACCEPTED, side=Side.SELL, order_type=OrderType.STOP, limit_price=None,
                  stop_price=Price.of("6497"), broker_order_id=BrokerOrderId(8))  # fmt: skip
    tp = _oreport("pd-e-tp", OrderStatus.ACCEPTED, side=Side.SELL, limit_price=Price.of("6503"),
                  broker_order_id=BrokerOrderId(9))  # fmt: skip
    broker = StubReports(
        orders=[sl, tp],
        fills=[_freport("3-1", "pd-e")],
        positions=[PositionReport(account_id=ACCT, symbol="ESZ5", signed_qty=1, avg_price=Price.of("6500"))],
    )
    report, _ = _reconcile(node, broker)
    assert report.ok, report.discrepancies
    assert report.adopted == ["pd-e-sl", "pd-e-tp"]
    child = node.orders.order("pd-e-sl")
    assert child is not None and child.status is OrderStatus.ACCEPTED
    assert child.tag == "strat" and child.parent_id == "pd-e" and child.stop_price == Price.of("6497")
    assert child.broker_order_id == 8
    assert node.orders.order("pd-e").status is OrderStatus.FILLED  # type: ignore[union-attr]
    assert node.positions.strategy_position(ACCT, "strat", "ESZ5").signed_qty == 1  # type: ignore[union-attr]


def test_an_unknown_order_is_attributed_or_manual() -> None:
    node = _node()
    broker = StubReports(orders=[_oreport("pd-lost-1", OrderStatus.ACCEPTED), _oreport(None, OrderStatus.ACCEPTED)])
    report, _ = _reconcile(node, broker, attribute=lambda cid, sym: "strat" if cid.startswith("pd-") else None)
    assert sorted(report.adopted) == ["ext-7", "pd-lost-1"]
    assert node.orders.order("pd-lost-1").tag == "strat"  # type: ignore[union-attr]
    assert node.orders.order("ext-7").tag == "manual"  # type: ignore[union-attr]


def test_orders_no_longer_at_the_broker_are_closed() -> None:
    node = _node()
    node.orders.restore([_working("pd-gone"), _working("pd-exp"), _working("pd-live")])
    history = [_oreport("pd-exp", OrderStatus.EXPIRED)]
    broker = StubHistory(history, orders=[_oreport("pd-live", OrderStatus.ACCEPTED)])
    report, published = _reconcile(node, broker)
    assert report.closed == ["pd-gone", "pd-exp"]
    assert node.orders.order("pd-gone").status is OrderStatus.CANCELED  # type: ignore[union-attr]
    assert "unknown at the broker" in node.orders.order("pd-gone").reason  # type: ignore[union-attr]
    assert node.orders.order("pd-exp").status is OrderStatus.EXPIRED  # type: ignore[union-attr]
    assert node.orders.order("pd-live").status is OrderStatus.ACCEPTED  # type: ignore[union-attr]
    assert all(e.reconciled for e in published if isinstance(e, OrderEvent))


class AcceptedWhileRead(StubHistory):
    """The broker accepts ``cid`` while the reconciler reads its reports: the first report asked for predates it,
    every later one shows it working."""

    def __init__(self, cid: str) -> None:
        super().__init__([])
        self.cid = cid
        self.calls = 0

    def _seen(self) -> list[OrderReport]:
        self.calls += 1
        return [] if self.calls == 1 else [_oreport(self.cid, OrderStatus.ACCEPTED)]

    async def order_reports(self) -> list[OrderReport]:
        return self._seen()

    async def order_history(self, since_ns: int) -> list[OrderReport]:
        return self._seen()


def test_an_order_accepted_while_the_reports_are_read_stays_working() -> None:
    node = _node()
    node.orders.restore([_working("pd-new")])
    report, _published = _reconcile(node, AcceptedWhileRead("pd-new"))
    assert report.closed == []
    assert node.orders.order("pd-new").status is OrderStatus.ACCEPTED  # type: ignore[union-attr]


class SubmittedWhileRead(StubHistory):
    """A strategy submits ``order`` while the reconciler waits for the broker's first report (the clock moves on)."""

    def __init__(self, node: TradingNode, order: Order) -> None:
        super().__init__([])
        self.node, self.order = node, order

    async def order_history(self, since_ns: int) -> list[OrderReport]:
        clock = self.node.clock
        assert isinstance(clock, SimClock)
        clock.advance_to(clock.timestamp_ns() + SEC)
        self.order.ts_last_ns = clock.timestamp_ns()
        self.node.orders.restore([self.order])
        return []


def test_an_order_submitted_while_the_reports_are_read_is_not_closed() -> None:
    node = _node()
    order = _working("pd-inflight", status=OrderStatus.SUBMITTED)
    report, _published = _reconcile(node, SubmittedWhileRead(node, order))
    assert report.closed == []
    assert node.orders.order("pd-inflight").status is OrderStatus.SUBMITTED  # type: ignore[union-attr]


def test_done_orders_are_not_adopted_from_history() -> None:
    node = _node()
    broker = StubHistory([_oreport("pd-old", OrderStatus.CANCELED)])
    report, _ = _reconcile(node, broker)
    assert report.adopted == ["pd-old"]  # without the journal's word it is rebuilt (and closed)
    node2 = _node()
    rec = Reconciler(
        node2.orders, node2.positions, broker, account_id=ACCT, emit=node2.on_broker_event, clock=lambda: T0
    )
    report2 = asyncio.run(rec.reconcile(T0, done={"pd-old"}))
    assert report2.adopted == [] and node2.orders.order("pd-old") is None


def test_price_and_status_differences_are_aligned() -> None:
    node = _node()
    node.orders.restore(
        [_working("pd-m", status=OrderStatus.PENDING_CANCEL), _working("pd-s", status=OrderStatus.SUBMITTED)]
    )
    broker = StubReports(
        orders=[
            _oreport("pd-m", OrderStatus.ACCEPTED, limit_price=Price.of("6499.75"), qty=2),
            _oreport("pd-s", OrderStatus.SUSPENDED),
        ]
    )
    report, _ = _reconcile(node, broker)
    m = node.orders.order("pd-m")
    assert m is not None and m.status is OrderStatus.ACCEPTED and m.qty == 2 and m.limit_price == Price.of("6499.75")
    assert node.orders.order("pd-s").status is OrderStatus.SUSPENDED  # type: ignore[union-attr]
    assert report.ok


def test_position_differences_are_reported() -> None:
    node = _node()
    broker = StubReports(
        positions=[PositionReport(account_id=ACCT, symbol="ESZ5", signed_qty=-2, avg_price=Price.of("6500"))]
    )
    report, published = _reconcile(node, broker)
    assert not report.ok and "ESZ5" in report.discrepancies[0]
    done = [e for e in published if isinstance(e, Reconciled)]
    assert done and done[0].discrepancies == tuple(report.discrepancies)


def test_unpriced_suspended_bracket_child_is_tracked_once_the_broker_prices_it() -> None:
    """A restart while a market bracket entry still works: its children are suspended at the broker with no price
    yet. That is not a discrepancy; the order manager tracks each child from the update that prices it."""
    node = _node()
    entry = _oreport("pd-x-5", OrderStatus.ACCEPTED, order_type=OrderType.MARKET, limit_price=None)
    child = _oreport(
        "pd-x-5-sl",
        OrderStatus.SUSPENDED,
        side=Side.SELL,
        order_type=OrderType.STOP,
        limit_price=None,
        stop_price=None,
        broker_order_id=BrokerOrderId(8),
    )
    report, _published = _reconcile(node, StubReports(orders=[entry, child]), attribute=lambda cid, sym: "strat")
    assert report.discrepancies == []
    assert node.orders.order(ClientOrderId("pd-x-5")) is not None
    assert node.orders.order(ClientOrderId("pd-x-5-sl")) is None  # nothing to build it with yet
    # the entry fills at the broker; the broker prices the child and works it
    node.orders.on_broker_event(
        OrderUpdated(
            client_order_id=ClientOrderId("pd-x-5-sl"),
            account_id=ACCT,
            ts_event_ns=T0 + 120 * SEC,
            qty=1,
            stop_price=Price.of("6490"),
        )
    )
    node.orders.on_broker_event(
        OrderAccepted(
            client_order_id=ClientOrderId("pd-x-5-sl"),
            account_id=ACCT,
            ts_event_ns=T0 + 120 * SEC,
            broker_order_id=BrokerOrderId(8),
        )
    )
    sl = node.orders.order(ClientOrderId("pd-x-5-sl"))
    assert sl is not None and sl.status is OrderStatus.ACCEPTED
    assert sl.stop_price == Price.of("6490") and sl.parent_id == "pd-x-5" and sl.tag == "strat" and sl.side is Side.SELL
