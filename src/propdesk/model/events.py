"""Order events and broker connection events: the messages between strategies, the order manager, risk and
brokers (the commands from outside are in :mod:`propdesk.model.commands`).

Naming follows ARCHITECTURE.md: commands are imperative nouns (``SubmitOrder``), events are past tense
(``OrderFilled``). Every record is a frozen dataclass; timestamps are UTC ns. Order events are keyword-only. Each
order event knows how it changes an :class:`~propdesk.model.orders.Order` (``apply_to``), so every component that
tracks orders (the order manager, the journal's recovery, the reconciler) applies events the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from propdesk.core import topics
from propdesk.model._fastinit import fast_frozen_init
from propdesk.model.enums import Side
from propdesk.model.identifiers import AccountId, BrokerOrderId, ClientOrderId
from propdesk.model.orders import Fill, IllegalOrderTransitionError, Order, OrderStatus
from propdesk.model.price import Money, Price


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderEvent:
    """Base of every order event.

    Attributes:
        client_order_id: propdesk's id of the order.
        account_id: the broker account.
        ts_event_ns: when it happened at the broker or exchange, UTC ns.
        reconciled: True when the event was synthesized by reconciliation (found in the broker's reports, never seen
            live).
    """

    client_order_id: ClientOrderId
    account_id: AccountId
    ts_event_ns: int
    reconciled: bool = False

    def apply_to(self, order: Order) -> None:
        """Change ``order`` as this event says (subclasses)."""
        raise NotImplementedError

    @property
    def topic(self) -> str:
        """The bus topic: ``events.order.<snake_case name without 'order_'>``, e.g. ``events.order.filled``."""
        return _TOPICS[type(self)]


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderDenied(OrderEvent):
    """The pre-trade risk gate refused the order; it never reached the broker."""

    reason: str = ""

    def apply_to(self, order: Order) -> None:
        order.transition(OrderStatus.DENIED, self.ts_event_ns)
        order.reason = self.reason


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderSubmitted(OrderEvent):
    """The order was handed to the broker."""

    def apply_to(self, order: Order) -> None:
        order.transition(OrderStatus.SUBMITTED, self.ts_event_ns)


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderAccepted(OrderEvent):
    """The broker acknowledged the order; it is working."""

    broker_order_id: BrokerOrderId | None = None

    def apply_to(self, order: Order) -> None:
        order.transition(OrderStatus.ACCEPTED, self.ts_event_ns)
        if self.broker_order_id is not None:
            order.broker_order_id = self.broker_order_id


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderSuspended(OrderEvent):
    """A bracket child is held until its parent fills (ProjectX status 8)."""

    broker_order_id: BrokerOrderId | None = None

    def apply_to(self, order: Order) -> None:
        order.transition(OrderStatus.SUSPENDED, self.ts_event_ns)
        if self.broker_order_id is not None:
            order.broker_order_id = self.broker_order_id


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRejected(OrderEvent):
    """The broker or exchange refused the order, with its reason."""

    reason: str = ""

    def apply_to(self, order: Order) -> None:
        order.transition(OrderStatus.REJECTED, self.ts_event_ns)
        order.reason = self.reason


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderPendingUpdate(OrderEvent):
    """A modify was sent and is not yet confirmed."""

    def apply_to(self, order: Order) -> None:
        order.transition(OrderStatus.PENDING_UPDATE, self.ts_event_ns)


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderPendingCancel(OrderEvent):
    """A cancel was sent and is not yet confirmed."""

    def apply_to(self, order: Order) -> None:
        order.transition(OrderStatus.PENDING_CANCEL, self.ts_event_ns)


def _back_to_working(order: Order, ts_ns: int) -> None:
    if order.status in (OrderStatus.PENDING_UPDATE, OrderStatus.PENDING_CANCEL):
        working = OrderStatus.PARTIALLY_FILLED if order.filled_qty else OrderStatus.ACCEPTED
        order.transition(working, ts_ns)


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderUpdated(OrderEvent):
    """The order's quantity or prices changed (a confirmed modify, or a change made at the broker).

    ``qty`` is the new total quantity (contracts, including what already filled); ``None`` fields are unchanged.
    """

    qty: int | None = None
    limit_price: Price | None = None
    stop_price: Price | None = None
    trail_ticks: int | None = None

    def apply_to(self, order: Order) -> None:
        if order.is_done:
            order.transition(order.status, self.ts_event_ns)  # raises: a done order cannot change
        _back_to_working(order, self.ts_event_ns)
        if self.qty is not None:
            if self.qty < order.filled_qty or self.qty <= 0:
                raise IllegalOrderTransitionError(
                    f"order {order.client_order_id}: new quantity {self.qty} is below the {order.filled_qty} filled"
                )
            order.qty = self.qty
        if self.limit_price is not None:
            order.limit_price = self.limit_price
        if self.stop_price is not None:
            order.stop_price = self.stop_price
        if self.trail_ticks is not None:
            order.trail_ticks = self.trail_ticks
        order.ts_last_ns = self.ts_event_ns


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderModifyRejected(OrderEvent):
    """A modify was refused; the order works on unchanged."""

    reason: str = ""

    def apply_to(self, order: Order) -> None:
        _back_to_working(order, self.ts_event_ns)
        order.reason = self.reason


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderCancelRejected(OrderEvent):
    """A cancel was refused (typically: the order already filled); the order is unchanged."""

    reason: str = ""

    def apply_to(self, order: Order) -> None:
        _back_to_working(order, self.ts_event_ns)
        order.reason = self.reason


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderCanceled(OrderEvent):
    """The order was canceled (by request, by an OCO sibling's fill, or by the broker)."""

    reason: str = ""

    def apply_to(self, order: Order) -> None:
        order.transition(OrderStatus.CANCELED, self.ts_event_ns)
        order.reason = self.reason


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderExpired(OrderEvent):
    """A DAY order reached the end of its session unfilled."""

    def apply_to(self, order: Order) -> None:
        order.transition(OrderStatus.EXPIRED, self.ts_event_ns)


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderFilled(OrderEvent):
    """An execution: ``qty`` contracts of ``symbol`` at ``price`` on ``side``, costing ``fee``.

    ``trade_id`` is the broker's execution id: unique per account, so a replayed fill can be recognized and ignored.
    """

    symbol: str
    side: Side
    qty: int
    price: Price
    fee: Money
    trade_id: str
    tag: str = ""

    def apply_to(self, order: Order) -> None:
        order.add_fill(Fill(self.qty, self.price, self.fee, self.trade_id, self.ts_event_ns))

    @property
    def signed_qty(self) -> int:
        """``qty`` with the sign of the side (+ buy, - sell)."""
        return self.qty * int(self.side)


_TOPICS: dict[type[OrderEvent], str] = {
    OrderDenied: topics.ORDER_DENIED,
    OrderSubmitted: topics.ORDER_SUBMITTED,
    OrderAccepted: topics.ORDER_ACCEPTED,
    OrderSuspended: topics.ORDER_SUSPENDED,
    OrderRejected: topics.ORDER_REJECTED,
    OrderPendingUpdate: topics.ORDER_PENDING_UPDATE,
    OrderPendingCancel: topics.ORDER_PENDING_CANCEL,
    OrderUpdated: topics.ORDER_UPDATED,
    OrderModifyRejected: topics.ORDER_MODIFY_REJECTED,
    OrderCancelRejected: topics.ORDER_CANCEL_REJECTED,
    OrderCanceled: topics.ORDER_CANCELED,
    OrderExpired: topics.ORDER_EXPIRED,
    OrderFilled: topics.ORDER_FILLED,
}

_HOT_EVENTS: tuple[type[OrderEvent], ...] = (OrderEvent, *_TOPICS)
for _cls in _HOT_EVENTS:  # hot path: ~4 order events per order in a backtest
    fast_frozen_init(_cls)


# ------------------------------------------------------------------------------------------- connection


@dataclass(frozen=True, slots=True)
class BrokerConnected:
    """The broker's connection (all of its channels) is up. ``ts_ns`` UTC ns."""

    account_id: AccountId
    ts_ns: int


@dataclass(frozen=True, slots=True)
class BrokerDisconnected:
    """The broker's connection was lost; ``reason`` says why. Risk goes REDUCING until reconciled."""

    account_id: AccountId
    ts_ns: int
    reason: str = ""
