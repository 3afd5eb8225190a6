"""``StubBroker``: an in-memory :class:`~propdesk.brokers.base.Broker` for tests.

It records every command (:attr:`StubBroker.commands`), keeps its own broker-side view of each order, and emits
order events to the handler given to ``set_event_handler``, synchronously (like the simulated broker). With
``auto_ack=True`` (default) it acknowledges at once: ``OrderAccepted`` on submit, ``OrderUpdated`` on modify,
``OrderCanceled`` on cancel. Tests drive the market with :meth:`StubBroker.fill`, :meth:`StubBroker.cancel`,
:meth:`StubBroker.reject`, :meth:`StubBroker.expire`, or :meth:`StubBroker.emit` for any raw event.

Native behaviour, switched on by its :class:`~propdesk.brokers.base.BrokerCapabilities`, follows the conventions in
:mod:`propdesk.execution.brackets`:

* ``native_brackets``: an entry submitted with a ``BracketSpec`` gets children ``<entry>-sl`` (stop) and
  ``<entry>-tp`` (limit) at its first fill, priced from that fill +/- ticks x ``tick_size``, announced with
  ``OrderAccepted`` then ``OrderUpdated`` (qty and price); they are resized (``OrderUpdated``) to the open position
  after every entry or child fill, and the sibling is canceled when a child fills completely.
* ``native_oco``: when an order fills completely, every working order linked to it (either one naming the other in
  ``linked_ids``) is canceled.
* a client order id seen before is rejected ("duplicate"), like a duplicate ProjectX ``customTag``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from propdesk.brokers.base import BrokerCapabilities, BrokerEventHandler
from propdesk.execution.brackets import child_prices
from propdesk.model.data import BarSeries, Timeframe
from propdesk.model.enums import Side
from propdesk.model.events import (
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderExpired,
    OrderFilled,
    OrderModifyRejected,
    OrderRejected,
    OrderUpdated,
)
from propdesk.model.identifiers import AccountId, BrokerOrderId, ClientOrderId
from propdesk.model.orders import BracketSpec, Order, OrderStatus, OrderType
from propdesk.model.price import Money, Price
from propdesk.model.reports import AccountReport, FillReport, OrderReport, PositionReport

__all__ = ["StubBroker", "StubCommand", "StubOrder"]

DEFAULT_ACCOUNT = AccountId(1)
ES_TICK = Price.of("0.25")
ZERO = Money.zero()


@dataclass
class StubCommand:
    """One command the stub received: ``name`` (submit, modify, cancel, cancel_all, close_position, flatten,
    subscribe, unsubscribe), the order's client id when there is one, and the arguments."""

    name: str
    client_order_id: ClientOrderId | None = None
    args: dict[str, object] = field(default_factory=dict)


@dataclass
class StubOrder:
    """The broker-side view of an order."""

    client_order_id: ClientOrderId
    broker_order_id: BrokerOrderId
    symbol: str
    side: Side
    qty: int
    order_type: OrderType
    limit_price: Price | None = None
    stop_price: Price | None = None
    linked_ids: tuple[ClientOrderId, ...] = ()
    bracket: BracketSpec | None = None
    parent_id: ClientOrderId | None = None
    filled: int = 0
    exit_filled: int = 0
    done: bool = False
    children: list[ClientOrderId] = field(default_factory=list)

    @property
    def leaves(self) -> int:
        """Contracts still open (0 once done)."""
        return 0 if self.done else self.qty - self.filled


class StubBroker:
    """An in-memory broker for tests (see the module docstring)."""

    def __init__(
        self,
        *,
        account_id: AccountId = DEFAULT_ACCOUNT,
        capabilities: BrokerCapabilities | None = None,
        auto_ack: bool = True,
        tick_size: Price = ES_TICK,
        ts_ns: int = 0,
    ) -> None:
        self._account_id = account_id
        self._caps = capabilities or BrokerCapabilities()
        self.auto_ack = auto_ack
        self.tick_size = tick_size
        self.ts_ns = ts_ns
        self.commands: list[StubCommand] = []
        self.orders: dict[ClientOrderId, StubOrder] = {}
        self.fills: list[OrderFilled] = []
        self.emitted: list[object] = []
        self.reject_next: str | None = None
        self._handler: BrokerEventHandler | None = None
        self._connected = False
        self._next_broker_id = 1000
        self._next_trade = 1

    # ------------------------------------------------------------------ Broker protocol: properties
    @property
    def name(self) -> str:
        return "stub"

    @property
    def account_id(self) -> AccountId:
        return self._account_id

    @property
    def capabilities(self) -> BrokerCapabilities:
        return self._caps

    @property
    def is_connected(self) -> bool:
        return self._connected

    def set_event_handler(self, handler: BrokerEventHandler) -> None:
        self._handler = handler

    async def connect(self) -> None:
        self._connected = True

    async def disconnect(self) -> None:
        self._connected = False

    # ------------------------------------------------------------------ Broker protocol: commands
    def submit_order(self, order: Order, bracket: BracketSpec | None = None) -> None:
        cid = order.client_order_id
        self.commands.append(StubCommand("submit", cid, {"order": order, "bracket": bracket}))
        if cid in self.orders:
            self._emit(
                OrderRejected(
                    client_order_id=cid,
                    account_id=self._account_id,
                    ts_event_ns=self.ts_ns,
                    reason=f"duplicate client order id {cid}",
                )
            )
            return
        so = StubOrder(
            cid,
            self._new_broker_id(),
            order.symbol,
            order.side,
            order.qty,
            order.order_type,
            order.limit_price,
            order.stop_price,
            order.linked_ids,
            bracket,
            order.parent_id,
        )
        self.orders[cid] = so
        if self.reject_next is not None:
            reason, self.reject_next = self.reject_next, None
            self.reject(cid, reason)
        elif bracket is not None and not self._caps.native_brackets:
            self.reject(cid, "brackets are not supported")
        elif self.auto_ack:
            self.accept(cid)

    def modify_order(
        self,
        order: Order,
        *,
        qty: int | None = None,
        limit_price: Price | None = None,
        stop_price: Price | None = None,
        trail_ticks: int | None = None,
    ) -> None:
        cid = order.client_order_id
        self.commands.append(
            StubCommand(
                "modify",
                cid,
                {"qty": qty, "limit_price": limit_price, "stop_price": stop_price, "trail_ticks": trail_ticks},
            )
        )
        if not self.auto_ack:
            return
        so = self.orders.get(cid)
        if not self._caps.modify_orders:
            self._emit(
                OrderModifyRejected(
                    client_order_id=cid,
                    account_id=self._account_id,
                    ts_event_ns=self.ts_ns,
                    reason="modify not supported",
                )
            )
        elif so is None or so.done:
            self._emit(
                OrderModifyRejected(
                    client_order_id=cid,
                    account_id=self._account_id,
                    ts_event_ns=self.ts_ns,
                    reason="order is not working",
                )
            )
        else:
            self._update(so, qty=qty, limit_price=limit_price, stop_price=stop_price)

    def cancel_order(self, order: Order) -> None:
        cid = order.client_order_id
        self.commands.append(StubCommand("cancel", cid))
        if not self.auto_ack:
            return
        so = self.orders.get(cid)
        if so is None or so.done:
            self._emit(
                OrderCancelRejected(
                    client_order_id=cid,
                    account_id=self._account_id,
                    ts_event_ns=self.ts_ns,
                    reason="order is not working",
                )
            )
        else:
            self.cancel(cid)

    def cancel_all_orders(self, symbol: str | None = None) -> None:
        self.commands.append(StubCommand("cancel_all", None, {"symbol": symbol}))
        for so in list(self.orders.values()):
            if not so.done and (symbol is None or so.symbol == symbol):
                self.cancel(so.client_order_id)

    def close_position(self, symbol: str, qty: int | None = None) -> None:
        self.commands.append(StubCommand("close_position", None, {"symbol": symbol, "qty": qty}))

    def flatten(self) -> None:
        self.commands.append(StubCommand("flatten"))
        for so in list(self.orders.values()):
            if not so.done:
                self.cancel(so.client_order_id)

    # ------------------------------------------------------------------ Broker protocol: reports, market data
    async def order_reports(self) -> list[OrderReport]:
        return [
            OrderReport(
                account_id=self._account_id,
                broker_order_id=so.broker_order_id,
                client_order_id=so.client_order_id,
                symbol=so.symbol,
                side=so.side,
                qty=so.qty,
                order_type=so.order_type,
                status=OrderStatus.PARTIALLY_FILLED if so.filled else OrderStatus.ACCEPTED,
                filled_qty=so.filled,
                limit_price=so.limit_price,
                stop_price=so.stop_price,
            )
            for so in self.orders.values()
            if not so.done
        ]

    async def fill_reports(self, since_ns: int) -> list[FillReport]:
        return [
            FillReport(
                account_id=self._account_id,
                trade_id=f.trade_id,
                broker_order_id=self.orders[f.client_order_id].broker_order_id
                if f.client_order_id in self.orders
                else BrokerOrderId(0),
                client_order_id=f.client_order_id,
                symbol=f.symbol,
                side=f.side,
                qty=f.qty,
                price=f.price,
                fee=f.fee,
                ts_ns=f.ts_event_ns,
            )
            for f in self.fills
            if f.ts_event_ns >= since_ns
        ]

    async def position_reports(self) -> list[PositionReport]:
        out = []
        for symbol in sorted({f.symbol for f in self.fills}):
            n = self.position(symbol)
            if n:
                out.append(
                    PositionReport(
                        account_id=self._account_id, symbol=symbol, signed_qty=n, avg_price=self.fills[-1].price
                    )
                )
        return out

    async def account_report(self) -> AccountReport:
        return AccountReport(
            account_id=self._account_id, name="stub", balance=Money.of("50000"), can_trade=True, simulated=True
        )

    def subscribe(self, symbol: str, *, quotes: bool = True, trades: bool = True, depth: bool = False) -> None:
        self.commands.append(StubCommand("subscribe", None, {"symbol": symbol}))

    def unsubscribe(self, symbol: str) -> None:
        self.commands.append(StubCommand("unsubscribe", None, {"symbol": symbol}))

    async def request_bars(self, symbol: str, timeframe: Timeframe, start_ns: int, end_ns: int) -> BarSeries:
        raise NotImplementedError("StubBroker has no bars")

    # ------------------------------------------------------------------ test drivers
    def commands_named(self, name: str) -> list[StubCommand]:
        """The recorded commands called ``name``."""
        return [c for c in self.commands if c.name == name]

    def position(self, symbol: str) -> int:
        """Net signed contracts of ``symbol`` from every fill the stub emitted."""
        return sum(f.signed_qty for f in self.fills if f.symbol == symbol)

    def working(self) -> list[StubOrder]:
        """Broker-side orders not done."""
        return [so for so in self.orders.values() if not so.done]

    def emit(self, event: object) -> None:
        """Send any event to the handler as if the broker produced it."""
        self._emit(event)

    def accept(self, cid: str) -> None:
        """Acknowledge an order (``OrderAccepted`` with its broker order id)."""
        so = self.orders[ClientOrderId(cid)]
        self._emit(
            OrderAccepted(
                client_order_id=so.client_order_id,
                account_id=self._account_id,
                ts_event_ns=self.ts_ns,
                broker_order_id=so.broker_order_id,
            )
        )

    def reject(self, cid: str, reason: str = "rejected") -> None:
        """Reject an order."""
        so = self.orders[ClientOrderId(cid)]
        so.done = True
        self._emit(
            OrderRejected(
                client_order_id=so.client_order_id, account_id=self._account_id, ts_event_ns=self.ts_ns, reason=reason
            )
        )

    def expire(self, cid: str) -> None:
        """Expire an order."""
        so = self.orders[ClientOrderId(cid)]
        so.done = True
        self._emit(
            OrderExpired(client_order_id=so.client_order_id, account_id=self._account_id, ts_event_ns=self.ts_ns)
        )

    def cancel(self, cid: str, reason: str = "canceled") -> None:
        """Cancel an order (as if requested or done at the broker)."""
        so = self.orders[ClientOrderId(cid)]
        so.done = True
        self._emit(
            OrderCanceled(
                client_order_id=so.client_order_id, account_id=self._account_id, ts_event_ns=self.ts_ns, reason=reason
            )
        )

    def fill(
        self,
        cid: str,
        qty: int | None = None,
        price: Price | str = "6500",
        *,
        fee: Money = ZERO,
        trade_id: str | None = None,
    ) -> OrderFilled:
        """Fill ``qty`` (default: all that is open) of an order at ``price`` and run native bracket/OCO logic.

        Returns the ``OrderFilled`` emitted.
        """
        so = self.orders[ClientOrderId(cid)]
        n = so.leaves if qty is None else qty
        p = price if isinstance(price, Price) else Price.of(price)
        so.filled += n
        if so.filled >= so.qty:
            so.done = True
        event = self._fill_event(so.client_order_id, so.symbol, so.side, n, p, fee, trade_id)
        self._emit(event)
        if so.bracket is not None and self._caps.native_brackets:
            self._entry_filled(so, p)
        if so.parent_id is not None and so.parent_id in self.orders and self.orders[so.parent_id].bracket:
            self._child_filled(so)
        elif so.done and self._caps.native_oco:
            for other in self.orders.values():
                linked = other.client_order_id in so.linked_ids or so.client_order_id in other.linked_ids
                if linked and not other.done:
                    self.cancel(other.client_order_id, f"OCO: {so.client_order_id} filled")
        return event

    def fill_foreign(
        self, symbol: str, side: Side, qty: int, price: str, broker_id: int, *, reconciled: bool = False
    ) -> OrderFilled:
        """A fill of an order placed by hand at the broker (client order id ``ext-<broker id>``); ``reconciled``: as
        reported in a reconcile (missed while the connection was down)."""
        event = self._fill_event(
            ClientOrderId(f"ext-{broker_id}"), symbol, side, qty, Price.of(price), Money.zero(), None
        )
        if reconciled:
            event = replace(event, reconciled=True)
        self._emit(event)
        return event

    # ------------------------------------------------------------------ internals
    def _emit(self, event: object) -> None:
        self.emitted.append(event)
        if isinstance(event, OrderFilled):
            self.fills.append(event)
        if self._handler is not None:
            self._handler(event)

    def _new_broker_id(self) -> BrokerOrderId:
        self._next_broker_id += 1
        return BrokerOrderId(self._next_broker_id)

    def _fill_event(
        self, cid: ClientOrderId, symbol: str, side: Side, qty: int, price: Price, fee: Money, trade_id: str | None
    ) -> OrderFilled:
        if trade_id is None:
            trade_id = f"t{self._next_trade}"
            self._next_trade += 1
        return OrderFilled(
            client_order_id=cid,
            account_id=self._account_id,
            ts_event_ns=self.ts_ns,
            symbol=symbol,
            side=side,
            qty=qty,
            price=price,
            fee=fee,
            trade_id=trade_id,
        )

    def _update(
        self,
        so: StubOrder,
        *,
        qty: int | None = None,
        limit_price: Price | None = None,
        stop_price: Price | None = None,
    ) -> None:
        if qty is not None:
            so.qty = qty
        if limit_price is not None:
            so.limit_price = limit_price
        if stop_price is not None:
            so.stop_price = stop_price
        self._emit(
            OrderUpdated(
                client_order_id=so.client_order_id,
                account_id=self._account_id,
                ts_event_ns=self.ts_ns,
                qty=qty,
                limit_price=limit_price,
                stop_price=stop_price,
            )
        )

    def _entry_filled(self, entry: StubOrder, price: Price) -> None:
        assert entry.bracket is not None
        pos = entry.filled - entry.exit_filled
        if not entry.children:
            sl, tp = child_prices(
                entry.side, price, self.tick_size, entry.bracket.stop_loss_ticks, entry.bracket.take_profit_ticks
            )
            for suffix, order_type, p in (("sl", OrderType.STOP, sl), ("tp", OrderType.LIMIT, tp)):
                if p is None:
                    continue
                cid = ClientOrderId(f"{entry.client_order_id}-{suffix}")
                child = StubOrder(
                    cid,
                    self._new_broker_id(),
                    entry.symbol,
                    entry.side.opposite,
                    pos,
                    order_type,
                    limit_price=p if order_type is OrderType.LIMIT else None,
                    stop_price=p if order_type is OrderType.STOP else None,
                    parent_id=entry.client_order_id,
                )
                self.orders[cid] = child
                entry.children.append(cid)
                self.accept(cid)
                self._update(child, qty=pos, limit_price=child.limit_price, stop_price=child.stop_price)
            return
        for cid in entry.children:
            child = self.orders[cid]
            if not child.done and child.leaves != pos:
                self._update(child, qty=child.filled + pos)

    def _child_filled(self, child: StubOrder) -> None:
        assert child.parent_id is not None
        entry = self.orders[child.parent_id]
        entry.exit_filled = sum(self.orders[c].filled for c in entry.children)
        pos = entry.filled - entry.exit_filled
        for cid in entry.children:
            sib = self.orders[cid]
            if sib is child or sib.done:
                continue
            if child.done or pos <= 0:
                self.cancel(cid, f"bracket: {child.client_order_id} filled")
            elif sib.leaves != pos:
                self._update(sib, qty=sib.filled + pos)
