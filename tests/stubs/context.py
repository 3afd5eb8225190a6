"""``StubContext``: an in-memory :class:`~propdesk.strategies.base.StrategyContext` for strategy tests.

It records every call a strategy makes (:attr:`StubContext.actions`), creates real :class:`Order` objects (moved to
SUBMITTED, or DENIED when the test asked for a denial), and lets the test drive the world: set the clock and
positions, fill or cancel orders. :meth:`StubContext.fill` applies an :class:`OrderFilled` to the order, updates the
position attributed to the order's tag, and (when a strategy is attached) delivers ``on_position_changed`` (a
:class:`StrategyPositionChange` with cause OWN_FILL, or BRACKET_CHILD for an order with a parent) then
``on_order_event``, in the node's order (the position manager books a fill before the order event reaches the
strategy). :meth:`StubContext.outside_fill` moves a position as a risk flatten, a manual trade or a reconciled fill
would, with that cause. Nothing fills by itself: a market order stays SUBMITTED until the test
fills it, and ``close_position`` only records the request and cancels the tag's open orders unless
``auto_close=True``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from propdesk.model.enums import Side
from propdesk.model.events import (
    OrderCanceled,
    OrderDenied,
    OrderEvent,
    OrderFilled,
    OrderSubmitted,
    OrderUpdated,
)
from propdesk.model.identifiers import AccountId, ClientOrderId
from propdesk.model.orders import Order, OrderType
from propdesk.model.positions import Position, PositionCause, StrategyPositionChange
from propdesk.model.price import Money, Price
from propdesk.strategies.base import Strategy

ACCOUNT = AccountId(1)


@dataclass
class Action:
    """One call a strategy made on the context.

    ``kind`` is ``market``, ``limit``, ``stop``, ``bracket``, ``modify``, ``cancel`` or ``close``. ``order`` is the
    order created (or modified/canceled); for ``close`` it is ``None``. ``price`` is the limit/stop price, or the new
    price of a ``modify``.
    """

    kind: str
    symbol: str
    tag: str
    ts_ns: int
    side: Side | None = None
    qty: int | None = None
    price: Price | None = None
    order: Order | None = None
    stop_loss_ticks: int | None = None
    take_profit_ticks: int | None = None
    entry_price: Price | None = None


@dataclass
class StubContext:
    """An in-memory strategy context: records orders, holds positions, fills on request.

    Attributes:
        now: the clock (UTC ns) that :meth:`now_ns` returns; tests set it.
        tick: the tick size of every symbol (points).
        positions: signed positions (contracts) by ``(symbol, tag)``.
        actions: every call, in order.
        orders: every order created, in order.
        deny_reason: when non-empty, the next order is DENIED with this reason (then it is cleared).
        auto_close: when True, ``close_position`` also sets the position to 0 at once.
        strategy: the attached strategy, to which fills and cancels are delivered.
    """

    now: int = 0
    tick: Price = field(default_factory=lambda: Price.of("0.25"))
    positions: dict[tuple[str, str], int] = field(default_factory=dict)
    actions: list[Action] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    deny_reason: str = ""
    auto_close: bool = False
    strategy: Strategy | None = None
    realized: dict[str, Money] = field(default_factory=dict)
    _next_id: int = 0
    _trade_id: int = 0
    _books: dict[tuple[str, str], Position] = field(default_factory=dict)

    # --- test side ----------------------------------------------------------------------------------------------

    def attach(self, strategy: Strategy) -> Strategy:
        """Bind ``strategy`` to this context, remember it for event delivery, call its ``on_start``; return it."""
        strategy.bind(self)
        self.strategy = strategy
        strategy.on_start()
        return strategy

    def of_kind(self, *kinds: str) -> list[Action]:
        """The recorded actions of the given kinds, in order."""
        return [a for a in self.actions if a.kind in kinds]

    def set_position(self, symbol: str, tag: str, qty: int) -> None:
        """Set the signed position of ``tag`` in ``symbol`` (contracts), without events."""
        self.positions[(symbol, tag)] = qty

    def fill(self, order: Order, price: str | Price, qty: int | None = None) -> OrderFilled:
        """Fill ``qty`` (default: what is left) of ``order`` at ``price``; update the position; deliver the events.

        Raises:
            IllegalOrderTransitionError: the order cannot fill in its status.
        """
        px = price if isinstance(price, Price) else Price.of(price)
        q = order.qty - order.filled_qty if qty is None else qty
        self._trade_id += 1
        ev = OrderFilled(
            client_order_id=order.client_order_id,
            account_id=ACCOUNT,
            ts_event_ns=self.now,
            symbol=order.symbol,
            side=order.side,
            qty=q,
            price=px,
            fee=Money.zero(),
            trade_id=f"T{self._trade_id}",
            tag=order.tag,
        )
        order.apply(ev)
        cause = PositionCause.BRACKET_CHILD if order.parent_id is not None else PositionCause.OWN_FILL
        self._move(order.symbol, order.tag, q * int(order.side), px, cause, order.tag, str(order.client_order_id))
        if self.strategy is not None:
            self.strategy.on_order_event(ev)
        return ev

    def outside_fill(
        self,
        symbol: str,
        tag: str,
        signed_qty: int,
        price: str | Price,
        cause: PositionCause = PositionCause.RISK_FLATTEN,
        source_tag: str = "risk:R11",
    ) -> StrategyPositionChange:
        """Move ``tag``'s position by ``signed_qty`` at ``price`` as a fill the strategy did not place would (a risk
        flatten by default), and deliver the change to the strategy."""
        px = price if isinstance(price, Price) else Price.of(price)
        self._trade_id += 1
        return self._move(symbol, tag, signed_qty, px, cause, source_tag, f"ext-{self._trade_id}")

    def _move(
        self, symbol: str, tag: str, signed_qty: int, price: Price, cause: PositionCause, source_tag: str, cid: str
    ) -> StrategyPositionChange:
        key = (symbol, tag)
        book = self._books.get(key)
        if book is None:
            book = self._books[key] = Position(symbol, ACCOUNT, self.tick, Money.of("12.50"), tag)
        prev = self.positions.get(key, 0)
        if book.signed_qty != prev:  # the test set the position directly: start the book from it
            book = self._books[key] = Position(symbol, ACCOUNT, self.tick, Money.of("12.50"), tag)
            if prev:
                book.apply_fill(prev, price, Money.zero(), self.now)
        book.apply_fill(signed_qty, price, Money.zero(), self.now)
        self.positions[key] = book.signed_qty
        change = StrategyPositionChange(
            account_id=ACCOUNT,
            symbol=symbol,
            tag=tag,
            signed_qty=book.signed_qty,
            previous_qty=prev,
            avg_price=book.avg_price,
            cause=cause,
            source_tag=source_tag,
            client_order_id=cid,
            trade_id=f"T{self._trade_id}",
            price=price,
            ts_event_ns=self.now,
        )
        if self.strategy is not None:
            self.strategy.on_position_changed(change)
        return change

    def cancel_from_broker(self, order: Order, reason: str = "") -> OrderCanceled:
        """Cancel ``order`` as the broker would (e.g. an OCO sibling filled); deliver the event."""
        ev = OrderCanceled(
            client_order_id=order.client_order_id, account_id=ACCOUNT, ts_event_ns=self.now, reason=reason
        )
        order.apply(ev)
        self._deliver(ev)
        return ev

    def open_orders(self, tag: str | None = None) -> list[Order]:
        """Orders not yet done (optionally only ``tag``'s)."""
        return [o for o in self.orders if o.is_open and (tag is None or o.tag == tag)]

    # --- StrategyContext ------------------------------------------------------------------------------------------

    def now_ns(self) -> int:
        """The test's clock (UTC ns)."""
        return self.now

    def tick_size(self, symbol: str) -> Price:
        """The configured tick size, for every symbol."""
        return self.tick

    def position_qty(self, symbol: str, tag: str) -> int:
        """The signed position of ``tag`` in ``symbol`` (0 if never set)."""
        return self.positions.get((symbol, tag), 0)

    def market(self, symbol: str, side: Side, qty: int, tag: str) -> Order:
        """Record and create a market order."""
        order = self._new(symbol, side, qty, tag, OrderType.MARKET)
        self.actions.append(Action("market", symbol, tag, self.now, side, qty, order=order))
        return order

    def limit(self, symbol: str, side: Side, qty: int, price: Price, tag: str) -> Order:
        """Record and create a limit order."""
        order = self._new(symbol, side, qty, tag, OrderType.LIMIT, limit_price=price)
        self.actions.append(Action("limit", symbol, tag, self.now, side, qty, price, order))
        return order

    def stop(self, symbol: str, side: Side, qty: int, price: Price, tag: str) -> Order:
        """Record and create a stop-market order."""
        order = self._new(symbol, side, qty, tag, OrderType.STOP, stop_price=price)
        self.actions.append(Action("stop", symbol, tag, self.now, side, qty, price, order))
        return order

    def bracket(
        self,
        symbol: str,
        side: Side,
        qty: int,
        tag: str,
        *,
        stop_loss_ticks: int | None,
        take_profit_ticks: int | None,
        entry_price: Price | None = None,
    ) -> Order:
        """Record a bracket; create only its entry (market, or limit at ``entry_price``)."""
        if entry_price is None:
            order = self._new(symbol, side, qty, tag, OrderType.MARKET)
        else:
            order = self._new(symbol, side, qty, tag, OrderType.LIMIT, limit_price=entry_price)
        self.actions.append(
            Action(
                "bracket",
                symbol,
                tag,
                self.now,
                side,
                qty,
                order=order,
                stop_loss_ticks=stop_loss_ticks,
                take_profit_ticks=take_profit_ticks,
                entry_price=entry_price,
            )
        )
        return order

    def modify(self, order: Order, *, qty: int | None = None, price: Price | None = None) -> None:
        """Record and apply the change at once (as a confirmed ``OrderUpdated``)."""
        self.actions.append(Action("modify", order.symbol, order.tag, self.now, order.side, qty, price, order))
        stop = price if order.order_type is OrderType.STOP else None
        limit = price if order.order_type is not OrderType.STOP else None
        order.apply(
            OrderUpdated(
                client_order_id=order.client_order_id,
                account_id=ACCOUNT,
                ts_event_ns=self.now,
                qty=qty,
                limit_price=limit,
                stop_price=stop,
            )
        )

    def cancel(self, order: Order) -> None:
        """Record and cancel at once (delivering the event)."""
        self.actions.append(Action("cancel", order.symbol, order.tag, self.now, order.side, order.qty, order=order))
        if order.is_open:
            ev = OrderCanceled(client_order_id=order.client_order_id, account_id=ACCOUNT, ts_event_ns=self.now)
            order.apply(ev)
            self._deliver(ev)

    def close_position(self, symbol: str, tag: str) -> None:
        """Record; cancel the tag's open orders in ``symbol`` (delivering the events); flatten if ``auto_close``."""
        self.actions.append(Action("close", symbol, tag, self.now, qty=self.positions.get((symbol, tag), 0)))
        for o in self.orders:
            if o.is_open and o.symbol == symbol and o.tag == tag:
                ev = OrderCanceled(client_order_id=o.client_order_id, account_id=ACCOUNT, ts_event_ns=self.now)
                o.apply(ev)
                self._deliver(ev)
        held = self.positions.get((symbol, tag), 0)
        if self.auto_close and held != 0:
            book = self._books.get((symbol, tag))
            price = book.avg_price if book is not None and book.avg_price is not None else Price.of("0")
            self._move(symbol, tag, -held, price.round_to_tick(self.tick), PositionCause.OWN_FILL, tag, "close")

    def realized_pnl(self, tag: str) -> Money:
        """What the test put in :attr:`realized` for ``tag`` (zero otherwise)."""
        return self.realized.get(tag, Money.zero())

    # --- internals ----------------------------------------------------------------------------------------------

    def _new(
        self,
        symbol: str,
        side: Side,
        qty: int,
        tag: str,
        order_type: OrderType,
        *,
        limit_price: Price | None = None,
        stop_price: Price | None = None,
    ) -> Order:
        self._next_id += 1
        cid = ClientOrderId(f"O-{self._next_id}")
        order = Order(
            cid,
            ACCOUNT,
            symbol,
            side,
            qty,
            order_type,
            limit_price=limit_price,
            stop_price=stop_price,
            tag=tag,
            ts_init_ns=self.now,
        )
        if self.deny_reason:
            order.apply(
                OrderDenied(client_order_id=cid, account_id=ACCOUNT, ts_event_ns=self.now, reason=self.deny_reason)
            )
            self.deny_reason = ""
        else:
            order.apply(OrderSubmitted(client_order_id=cid, account_id=ACCOUNT, ts_event_ns=self.now))
        self.orders.append(order)
        return order

    def _deliver(self, ev: OrderEvent) -> None:
        if self.strategy is not None:
            self.strategy.on_order_event(ev)
