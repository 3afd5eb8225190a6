"""The order manager: creates orders, sends them through the pre-trade gate to the broker, tracks their state.

One :class:`OrderManager` per account. It is plain synchronous code (ARCHITECTURE.md, "one core, many edges"):
commands go to the broker (an :class:`OrderRoute`, e.g. a :class:`~propdesk.brokers.base.Broker`) and return at once;
outcomes come back as order events, which the node routes to :meth:`OrderManager.on_broker_event`. The simulated broker
answers in the same call stack, so every method here is re-entrant: an event may arrive while a submit is still on the
stack.

What it does:

* **Orders** are built by factories (:meth:`~OrderManager.market`, :meth:`~OrderManager.limit`, ...) that give each
  a fresh client order id (:mod:`propdesk.execution.ids`), require a strategy tag, and check prices against the
  contract's tick (:class:`~propdesk.core.errors.InvalidPriceError`) and quantities
  (:class:`~propdesk.core.errors.InvalidQuantityError`) before anything is sent.
* **Submitting** runs capability checks (an order type the broker lacks is rejected locally), then the pre-trade gate
  (:class:`PreTradeGate`; a denial gives ``OrderDenied`` and the order never reaches the broker; a gate that raises
  denies: risk-rules.md section 7.2, "a timeout or exception is a DENY"), then ``OrderSubmitted`` and
  ``Broker.submit_order``. Every order propdesk sends passes the gate, bracket children and modifies included.
* **Broker events** are applied to the matching :class:`~propdesk.model.orders.Order` (its state machine) and then
  published on the bus under ``event.topic``. An event the state machine refuses is logged and published as an
  :class:`OrderEventError` on :data:`ORDER_ERROR_TOPIC` instead of raising; a refused fill is still published,
  because it is money that positions and risk must see. A fill whose ``trade_id`` was already seen is dropped.
  Fills are published with the order's tag. Events for an order propdesk did not place (a manual order at the
  broker, client order id ``ext-<broker id>``) are published as they are; an ``OrderFilled`` also creates a tracked
  foreign order tagged :data:`MANUAL_TAG`, or the tag a :meth:`~OrderManager.close_position` asked for
  (``risk:<RULE>``: the broker's close order for the risk engine).
* **Brackets and OCO** (:mod:`propdesk.execution.brackets` states the guarantees and the id and price conventions):
  native when ``broker.capabilities.native_brackets`` / ``native_oco`` say so, synthesized otherwise. Synthesized
  brackets place a stop-loss and a take-profit after the entry's first fill, sized to the open position
  (entry filled minus children filled), and resize them after every fill (modify, or cancel and replace a new pair
  when the broker cannot modify). Native OCO cancels the other leg when one fills completely; partial-fill
  resizing is done here.

Not done here: trailing stops and stop-limit or join orders on a broker that lacks them are rejected locally rather
than synthesized (that needs market data). Brackets whose children fill past the open position (a late fill after
a cancel) are logged, not corrected: reconciliation owns that.

Source: ARCHITECTURE.md ("An order"), ``../shared/specs/projectx-gateway-api.md`` section 3.3 (``customTag``,
brackets), ``../shared/specs/risk-rules.md`` section 7.2 (the gate).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import cache
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, Protocol

from propdesk.core import topics
from propdesk.core.errors import InvalidPriceError, PropdeskError
from propdesk.execution.brackets import (
    STOP_LOSS,
    TAKE_PROFIT,
    Bracket,
    LegKind,
    OcoGroup,
    child_id,
    child_prices,
)
from propdesk.execution.ids import DEFAULT_PREFIX, ClientOrderIdGenerator
from propdesk.model.enums import Side
from propdesk.model.events import (
    OrderCanceled,
    OrderCancelRejected,
    OrderDenied,
    OrderEvent,
    OrderFilled,
    OrderModifyRejected,
    OrderPendingCancel,
    OrderPendingUpdate,
    OrderRejected,
    OrderSubmitted,
    OrderUpdated,
)
from propdesk.model.identifiers import AccountId, BrokerOrderId, ClientOrderId
from propdesk.model.orders import MANUAL_TAG, BracketSpec, Order, OrderStatus, OrderType, TimeInForce, is_foreign_tag
from propdesk.model.price import Price, check_qty
from propdesk.model.symbology import spec_for_symbol

if TYPE_CHECKING:
    from propdesk.core.bus import MessageBus
    from propdesk.core.clock import Clock

__all__ = [
    "MANUAL_TAG",
    "ORDER_ERROR_TOPIC",
    "OrderEventError",
    "OrderManager",
    "OrderManagerError",
    "OrderRoute",
    "PreTradeGate",
    "RouteCapabilities",
    "tick_size_of_symbol",
]

logger = logging.getLogger(__name__)

ORDER_ERROR_TOPIC: Final[str] = topics.ORDER_ERROR
"""Where :class:`OrderEventError` is published (next to the bus's own ``events.error.handler``)."""


_ALWAYS_SUPPORTED: Final = frozenset({OrderType.MARKET, OrderType.LIMIT, OrderType.STOP})
"""Order types every broker takes (:meth:`OrderManager._unsupported` checks only the others)."""

PriceLike = Price | str | int | Decimal
"""A price in points: a :class:`Price` or anything :meth:`Price.of` parses exactly (floats are not accepted)."""


class OrderManagerError(PropdeskError):
    """A request the order manager cannot carry out: unknown client order id, an order in the wrong status for
    the request, a duplicate id, a capability the broker lacks for an explicit request, or a malformed argument."""


@dataclass(frozen=True, slots=True)
class OrderEventError:
    """An order event the state machine refused; published on :data:`ORDER_ERROR_TOPIC`.

    Attributes:
        client_order_id: the order concerned.
        event: the refused event.
        error: the error message (what move was illegal).
        ts_ns: when the manager handled it, UTC ns (the node's clock).
    """

    client_order_id: ClientOrderId
    event: OrderEvent
    error: str
    ts_ns: int


class PreTradeGate(Protocol):
    """The pre-trade risk gate (built in ``risk/``; execution may not import it, so the interface lives here).

    ``check`` sees every order before it is sent (and, for a modify, the order as it would be after the change) and
    returns a reason to deny it, or ``None`` to let it pass. It may query ``manager`` (open orders, tags). An
    exception from ``check`` is treated as a denial.
    """

    def check(self, order: Order, manager: OrderManager) -> str | None:
        """A reason to deny ``order``, or ``None`` to pass it."""
        ...


class RouteCapabilities(Protocol):
    """What the order manager reads of a broker's capabilities (``propdesk.brokers.base.BrokerCapabilities`` has
    it; execution may not import ``brokers/``, so the interface lives here). Each flag: the broker does it natively."""

    @property
    def native_brackets(self) -> bool: ...
    @property
    def native_oco(self) -> bool: ...
    @property
    def trailing_stops(self) -> bool: ...
    @property
    def stop_limit_orders(self) -> bool: ...
    @property
    def join_bid_ask(self) -> bool: ...
    @property
    def modify_orders(self) -> bool: ...


class OrderRoute(Protocol):
    """What the order manager needs of a broker: its name, capabilities and order commands (every
    ``propdesk.brokers.base.Broker`` is one; the interface lives here because execution may not import ``brokers/``).
    Commands return at once; their outcome arrives later as order events (see ``Broker``)."""

    @property
    def name(self) -> str: ...
    @property
    def capabilities(self) -> RouteCapabilities: ...

    def submit_order(self, order: Order, bracket: BracketSpec | None = None) -> None:
        """Send ``order`` (with native bracket children when ``bracket`` is given)."""
        ...

    def modify_order(
        self,
        order: Order,
        *,
        qty: int | None = None,
        limit_price: Price | None = None,
        stop_price: Price | None = None,
        trail_ticks: int | None = None,
    ) -> None:
        """Change a working order; ``None`` fields stay."""
        ...

    def cancel_order(self, order: Order) -> None:
        """Cancel a working order."""
        ...

    def cancel_all_orders(self, symbol: str | None = None) -> None:
        """Cancel every working order of the account (of ``symbol`` only when given)."""
        ...

    def close_position(self, symbol: str, qty: int | None = None) -> None:
        """Close the position in ``symbol`` at market (``qty`` contracts of it, or all)."""
        ...

    def flatten(self) -> None:
        """Cancel every working order and close every position at market."""
        ...


@cache
def tick_size_of_symbol(symbol: str) -> Price:
    """The tick size (points) of ``symbol``: a listed contract (``ESZ5``, ``MNQH26``) or a bare root (``ES``).

    The spec comes from the contract lookup, :func:`propdesk.model.symbology.spec_for_symbol`.

    Raises:
        ContractError: an unknown root or a malformed symbol.
    """
    return spec_for_symbol(symbol).tick_size


class OrderManager:
    """Orders of one account: ids, the pre-trade gate, the broker, the state machine, brackets and OCO.

    Args:
        bus: where order events are published (``event.topic``) and errors on :data:`ORDER_ERROR_TOPIC`.
        broker: the broker commands go to; its ``capabilities`` select native or synthesized brackets and OCO.
        clock: stamps the manager's own events (``OrderSubmitted``, ``OrderDenied``, ...) and new orders.
        account_id: the account; events for other accounts are ignored.
        gate: the pre-trade gate, or ``None`` to pass every order.
        id_prefix: client order id prefix (default ``pd``; see :mod:`propdesk.execution.ids`).
        run_token: client order id run token (default: a fresh one; pass one for reproducible ids).
        tick_size_of: maps a symbol to its tick size (default :func:`tick_size_of_symbol`).

    Raises:
        ConfigError: a malformed ``id_prefix`` or ``run_token``.
    """

    def __init__(
        self,
        bus: MessageBus,
        broker: OrderRoute,
        clock: Clock,
        *,
        account_id: AccountId,
        gate: PreTradeGate | None = None,
        id_prefix: str | None = None,
        run_token: str | None = None,
        tick_size_of: Callable[[str], Price] | None = None,
    ) -> None:
        self._bus = bus
        self._broker = broker
        self._clock = clock
        self._account_id = account_id
        self._gate = gate
        self._ids = ClientOrderIdGenerator(id_prefix or DEFAULT_PREFIX, run_token=run_token)
        self._tick_size_of = tick_size_of or tick_size_of_symbol
        self._orders: dict[ClientOrderId, Order] = {}
        self._view: Mapping[ClientOrderId, Order] = MappingProxyType(self._orders)
        self._open: dict[ClientOrderId, Order] = {}
        self._by_broker_id: dict[BrokerOrderId, ClientOrderId] = {}
        self._by_tag: dict[str, list[ClientOrderId]] = {}
        self._trade_ids: set[str] = set()
        self._foreign: set[ClientOrderId] = set()
        self._brackets: dict[ClientOrderId, Bracket] = {}
        self._leg_bracket: dict[ClientOrderId, Bracket] = {}
        self._native_child: dict[ClientOrderId, tuple[Bracket, LegKind]] = {}
        self._pending_children: dict[ClientOrderId, tuple[ClientOrderId, str, Side, int, OrderType, str]] = {}
        self._oco: dict[ClientOrderId, OcoGroup] = {}
        self._cancel_requested: set[ClientOrderId] = set()
        self._modify_requested: dict[ClientOrderId, int] = {}
        self._close_tags: dict[str, str] = {}
        self._holds: dict[str, Callable[[Order], str | None]] = {}

    # ------------------------------------------------------------------------------------------------ properties

    @property
    def gate(self) -> PreTradeGate | None:
        """The pre-trade gate every order passes (``None``: pass). Replaceable on the core's thread, e.g. by the
        journal's back-pressure gate while the database is behind (:mod:`propdesk.node.journaling`)."""
        return self._gate

    @gate.setter
    def gate(self, gate: PreTradeGate | None) -> None:
        self._gate = gate

    @property
    def account_id(self) -> AccountId:
        """The account this manager trades."""
        return self._account_id

    @property
    def ids(self) -> ClientOrderIdGenerator:
        """The client order id generator (its ``run_token`` identifies this run)."""
        return self._ids

    # ------------------------------------------------------------------------------------------------ factories

    def market(
        self,
        symbol: str,
        side: Side,
        qty: int,
        tag: str,
        *,
        tif: TimeInForce = TimeInForce.DAY,
        reduce_only: bool = False,
    ) -> Order:
        """A new (not yet submitted) market order of ``qty`` contracts.

        Raises:
            InvalidQuantityError: ``qty`` is not a positive whole number.
            OrderManagerError: an empty tag.
            ContractError: an unknown symbol.
        """
        return self._new(symbol, side, qty, tag, OrderType.MARKET, tif=tif, reduce_only=reduce_only)

    def limit(
        self,
        symbol: str,
        side: Side,
        qty: int,
        tag: str,
        price: PriceLike,
        *,
        tif: TimeInForce = TimeInForce.DAY,
        reduce_only: bool = False,
    ) -> Order:
        """A new limit order at ``price`` (points, on the tick).

        Raises:
            InvalidPriceError: ``price`` is not a number on the contract's tick.
            InvalidQuantityError, OrderManagerError, ContractError: as :meth:`market`.
        """
        return self._new(symbol, side, qty, tag, OrderType.LIMIT, limit_price=price, tif=tif, reduce_only=reduce_only)

    def stop(
        self,
        symbol: str,
        side: Side,
        qty: int,
        tag: str,
        stop_price: PriceLike,
        *,
        tif: TimeInForce = TimeInForce.DAY,
        reduce_only: bool = False,
    ) -> Order:
        """A new stop-market order triggered at ``stop_price`` (points, on the tick).

        Raises:
            InvalidPriceError, InvalidQuantityError, OrderManagerError, ContractError: as :meth:`limit`.
        """
        return self._new(
            symbol, side, qty, tag, OrderType.STOP, stop_price=stop_price, tif=tif, reduce_only=reduce_only
        )

    def stop_limit(
        self,
        symbol: str,
        side: Side,
        qty: int,
        tag: str,
        *,
        stop_price: PriceLike,
        limit_price: PriceLike,
        tif: TimeInForce = TimeInForce.DAY,
        reduce_only: bool = False,
    ) -> Order:
        """A new stop-limit order: at ``stop_price`` it becomes a limit order at ``limit_price`` (points, on tick).

        Raises:
            InvalidPriceError, InvalidQuantityError, OrderManagerError, ContractError: as :meth:`limit`.
        """
        return self._new(
            symbol,
            side,
            qty,
            tag,
            OrderType.STOP_LIMIT,
            stop_price=stop_price,
            limit_price=limit_price,
            tif=tif,
            reduce_only=reduce_only,
        )

    def trailing_stop(
        self,
        symbol: str,
        side: Side,
        qty: int,
        tag: str,
        trail_ticks: int,
        *,
        tif: TimeInForce = TimeInForce.DAY,
        reduce_only: bool = False,
    ) -> Order:
        """A new trailing stop that follows the market at ``trail_ticks`` ticks (a positive int).

        Raises:
            OrderManagerError: ``trail_ticks`` is not a positive int, or an empty tag.
            InvalidQuantityError, ContractError: as :meth:`market`.
        """
        if isinstance(trail_ticks, bool) or not isinstance(trail_ticks, int) or trail_ticks <= 0:
            raise OrderManagerError(f"trailing stop on {symbol}: trail_ticks {trail_ticks!r} must be a positive int")
        return self._new(
            symbol, side, qty, tag, OrderType.TRAILING_STOP, trail_ticks=trail_ticks, tif=tif, reduce_only=reduce_only
        )

    def join_bid(
        self,
        symbol: str,
        side: Side,
        qty: int,
        tag: str,
        *,
        tif: TimeInForce = TimeInForce.DAY,
        reduce_only: bool = False,
    ) -> Order:
        """A new limit order resting at the current best bid (ProjectX type 6). Raises as :meth:`market`."""
        return self._new(symbol, side, qty, tag, OrderType.JOIN_BID, tif=tif, reduce_only=reduce_only)

    def join_ask(
        self,
        symbol: str,
        side: Side,
        qty: int,
        tag: str,
        *,
        tif: TimeInForce = TimeInForce.DAY,
        reduce_only: bool = False,
    ) -> Order:
        """A new limit order resting at the current best ask (ProjectX type 7). Raises as :meth:`market`."""
        return self._new(symbol, side, qty, tag, OrderType.JOIN_ASK, tif=tif, reduce_only=reduce_only)

    def _price(self, symbol: str, value: PriceLike, what: str) -> Price:
        if isinstance(value, float):
            raise InvalidPriceError(f"{what} on {symbol}: pass a Price, str, int or Decimal, not the float {value!r}")
        p = value if isinstance(value, Price) else Price.of(value)
        tick = self._tick_size_of(symbol)
        if not p.is_aligned(tick):
            raise InvalidPriceError(f"{what} {p} on {symbol} is not a multiple of the tick size {tick}")
        return p

    def _new(
        self,
        symbol: str,
        side: Side,
        qty: int,
        tag: str,
        order_type: OrderType,
        *,
        limit_price: PriceLike | None = None,
        stop_price: PriceLike | None = None,
        trail_ticks: int | None = None,
        tif: TimeInForce,
        reduce_only: bool,
        client_order_id: ClientOrderId | None = None,
        parent_id: ClientOrderId | None = None,
        linked_ids: tuple[ClientOrderId, ...] = (),
    ) -> Order:
        if not isinstance(tag, str) or not tag.strip():
            raise OrderManagerError(f"{order_type.value} order on {symbol}: a strategy tag is required")
        if not isinstance(side, Side):
            raise OrderManagerError(f"{order_type.value} order on {symbol}: side {side!r} is not a Side")
        qty = check_qty(qty, f"{order_type.value} order on {symbol}: quantity")
        self._tick_size_of(symbol)  # validates the symbol for every order type
        lp = None if limit_price is None else self._price(symbol, limit_price, "limit price")
        sp = None if stop_price is None else self._price(symbol, stop_price, "stop price")
        return Order(
            client_order_id=client_order_id or self._ids.next(),
            account_id=self._account_id,
            symbol=symbol,
            side=side,
            qty=qty,
            order_type=order_type,
            limit_price=lp,
            stop_price=sp,
            trail_ticks=trail_ticks,
            tif=tif,
            tag=tag,
            reduce_only=reduce_only,
            parent_id=parent_id,
            linked_ids=linked_ids,
            ts_init_ns=self._clock.timestamp_ns(),
        )

    # ------------------------------------------------------------------------------------------------ commands

    def submit(self, order: Order) -> Order:
        """Send ``order`` (status INITIALIZED, this account) through the capability check and the gate to the broker.

        Returns the same order: SUBMITTED (or further, with a broker that answers at once), DENIED by the gate, or
        REJECTED locally for an order type the broker lacks.

        Raises:
            OrderManagerError: the order is not INITIALIZED, belongs to another account, or its id is taken.
        """
        self._register(order)
        self._send(order)
        return order

    def submit_bracket(
        self,
        entry: Order,
        *,
        stop_loss_ticks: int | None = None,
        take_profit_ticks: int | None = None,
        tag: str | None = None,
    ) -> Bracket:
        """Submit ``entry`` with a stop-loss and/or take-profit ``*_ticks`` ticks from its first fill price.

        Native (the entry goes with a :class:`~propdesk.model.orders.BracketSpec`) when the broker has
        ``native_brackets``; synthesized otherwise (see the module docstring). ``tag`` is the children's tag
        (default: the entry's).

        Raises:
            OrderManagerError: neither distance given, a distance that is not a positive int, or as :meth:`submit`.
        """
        for name, v in (("stop_loss_ticks", stop_loss_ticks), ("take_profit_ticks", take_profit_ticks)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v <= 0):
                raise OrderManagerError(f"bracket on {entry.client_order_id}: {name} {v!r} must be a positive int")
        if stop_loss_ticks is None and take_profit_ticks is None:
            raise OrderManagerError(
                f"bracket on {entry.client_order_id}: give stop_loss_ticks and/or take_profit_ticks"
            )
        native = self._broker.capabilities.native_brackets
        b = Bracket(
            entry_id=entry.client_order_id,
            symbol=entry.symbol,
            entry_side=entry.side,
            stop_loss_ticks=stop_loss_ticks,
            take_profit_ticks=take_profit_ticks,
            tag=tag or entry.tag,
            native=native,
            tick_size=self._tick_size_of(entry.symbol),
        )
        self._register(entry)
        self._brackets[entry.client_order_id] = b
        if native:
            for kind, ticks in ((STOP_LOSS, stop_loss_ticks), (TAKE_PROFIT, take_profit_ticks)):
                if ticks is not None:
                    cid = child_id(entry.client_order_id, kind)
                    self._native_child[cid] = (b, kind)
                    b.leg_ids.append(cid)
                    if kind == STOP_LOSS:
                        b.stop_loss_id = cid
                    else:
                        b.take_profit_id = cid
            b.generation = 1
            self._send(entry, BracketSpec(stop_loss_ticks, take_profit_ticks))
        else:
            self._send(entry)
        return b

    def pre_check(
        self, order: Order, *, stop_loss_ticks: int | None = None, take_profit_ticks: int | None = None
    ) -> str | None:
        """The reason :meth:`submit` (or, with a distance, :meth:`submit_bracket`) would deny or reject ``order`` now,
        or ``None`` when it would pass: the capability check, a tag hold (:meth:`hold_tag`) and the pre-trade gate,
        exactly as for a real submit, but ``order`` is not registered and nothing is sent (a dry run). With
        ``stop_loss_ticks`` the gate sees the bracket (its rules price the order's risk to that stop); the bracket
        is removed again before this returns.

        Raises:
            OrderManagerError: ``order``'s client order id is already tracked.
        """
        cid = order.client_order_id
        if cid in self._orders:
            raise OrderManagerError(f"client order id {cid} is already used by another order")
        reason = None if order.order_type in _ALWAYS_SUPPORTED else self._unsupported(order)
        if reason is not None:
            return reason
        hold = self._holds.get(order.tag)
        reason = None if hold is None else hold(order)
        if reason is not None or self._gate is None:
            return reason
        if stop_loss_ticks is not None or take_profit_ticks is not None:
            self._brackets[cid] = Bracket(
                entry_id=cid,
                symbol=order.symbol,
                entry_side=order.side,
                stop_loss_ticks=stop_loss_ticks,
                take_profit_ticks=take_profit_ticks,
                tag=order.tag,
                native=self._broker.capabilities.native_brackets,
                tick_size=self._tick_size_of(order.symbol),
            )
        try:
            return self._gate_check(order)
        finally:
            self._brackets.pop(cid, None)

    def submit_oco(self, order_a: Order, order_b: Order) -> OcoGroup:
        """Submit two orders as an OCO pair: when one fills completely the other is canceled; a partial fill of one
        shrinks the other by the same quantity.

        Native (legs linked through ``linked_ids``; the broker cancels) when the broker has ``native_oco``;
        synthesized otherwise. If a leg fills completely before the other was sent, the other is CANCELED locally
        (it never reaches the broker) with a reason saying so.

        Raises:
            OrderManagerError: the two orders are the same, or as :meth:`submit`.
        """
        if order_a.client_order_id == order_b.client_order_id:
            raise OrderManagerError(f"OCO: both legs are {order_a.client_order_id}")
        self._check_new(order_a)
        self._check_new(order_b)
        # Linking is configuration of not-yet-sent orders (status INITIALIZED), not a state change.
        order_a.linked_ids = (order_b.client_order_id,)
        order_b.linked_ids = (order_a.client_order_id,)
        g = OcoGroup([order_a.client_order_id, order_b.client_order_id], self._broker.capabilities.native_oco)
        self._register(order_a)
        self._register(order_b)
        self._oco[order_a.client_order_id] = g
        self._oco[order_b.client_order_id] = g
        for o in (order_a, order_b):
            if o.status is OrderStatus.INITIALIZED:
                self._send(o)
        return g

    def modify(
        self,
        client_order_id: ClientOrderId,
        *,
        qty: int | None = None,
        limit_price: PriceLike | None = None,
        stop_price: PriceLike | None = None,
        trail_ticks: int | None = None,
    ) -> bool:
        """Change an open order's total quantity (contracts, above what already filled) or prices (on the tick).

        The changed order passes the gate first; a denial publishes ``OrderModifyRejected`` with the reason and
        returns False. Otherwise a working order goes PENDING_UPDATE and the broker is asked (True).

        Raises:
            OrderManagerError: unknown id, order not open, nothing to change, a price the order type does not have,
                ``qty`` not above the filled quantity, or a broker without ``modify_orders``.
            InvalidPriceError, InvalidQuantityError: bad price or quantity.
        """
        o = self._require(client_order_id)
        if not o.is_open:
            raise OrderManagerError(f"order {client_order_id} is {o.status.value}: only an open order can be modified")
        if not self._broker.capabilities.modify_orders:
            raise OrderManagerError(f"broker {self._broker.name} cannot modify orders (cancel and submit a new one)")
        if qty is None and limit_price is None and stop_price is None and trail_ticks is None:
            raise OrderManagerError(f"modify {client_order_id}: nothing to change")
        if qty is not None:
            qty = check_qty(qty, f"modify {client_order_id}: quantity")
            if qty <= o.filled_qty:
                raise OrderManagerError(
                    f"modify {client_order_id}: quantity {qty} must exceed the {o.filled_qty} already filled"
                )
        lp = sp = None
        if limit_price is not None:
            if o.limit_price is None:
                raise OrderManagerError(f"modify {client_order_id}: a {o.order_type.value} order has no limit price")
            lp = self._price(o.symbol, limit_price, "limit price")
        if stop_price is not None:
            if o.stop_price is None:
                raise OrderManagerError(f"modify {client_order_id}: a {o.order_type.value} order has no stop price")
            sp = self._price(o.symbol, stop_price, "stop price")
        if trail_ticks is not None and (o.order_type is not OrderType.TRAILING_STOP or trail_ticks <= 0):
            raise OrderManagerError(f"modify {client_order_id}: trail_ticks needs a trailing stop and a positive int")
        return self._request_modify(o, qty=qty, limit_price=lp, stop_price=sp, trail_ticks=trail_ticks)

    def cancel(self, client_order_id: ClientOrderId) -> bool:
        """Ask the broker to cancel an open order (a working one goes PENDING_CANCEL).

        Returns False, sending nothing, when the order is already done or a cancel is already on its way.

        Raises:
            OrderManagerError: unknown id, or an order that was never submitted.
        """
        o = self._require(client_order_id)
        if o.status is OrderStatus.INITIALIZED:
            raise OrderManagerError(f"order {client_order_id} was never submitted; there is nothing to cancel")
        return self._request_cancel(o, "canceled by request")

    def cancel_all(self, symbol: str | None = None) -> None:
        """Ask the broker to cancel every working order of the account (of ``symbol`` only when given), including
        orders propdesk did not place."""
        self._broker.cancel_all_orders(symbol)

    def close_position(self, symbol: str, qty: int | None = None, *, tag: str | None = None) -> None:
        """Ask the broker to close the position in ``symbol`` at market (``qty`` contracts of it, or all).

        The broker places the close order itself (propdesk does not know its id beforehand). With ``tag`` (the risk
        engine's ``risk:<RULE>``), the next order of ``symbol`` that propdesk did not place is tracked under that tag
        instead of ``manual``, so its fills carry it; the claim stays until such an order arrives, a later close of
        the symbol replaces it, or :meth:`release_close_tag` drops it.

        Raises:
            InvalidQuantityError: ``qty`` given and not a positive whole number.
        """
        n = None if qty is None else check_qty(qty, f"close {symbol}: quantity")
        if tag:
            self._close_tags[symbol] = tag
        self._broker.close_position(symbol, n)

    def release_close_tag(self, symbol: str | None = None) -> None:
        """Drop the claim of :meth:`close_position` ``tag=`` for ``symbol`` (every symbol when ``None``): the close it
        was for is done, so a later foreign order is ``manual`` again."""
        if symbol is None:
            self._close_tags.clear()
        else:
            self._close_tags.pop(symbol, None)

    def cap_bracket_exits(self, symbol: str, tag: str, open_qty: int) -> None:
        """Shrink the stop-loss and take-profit children of ``tag``'s brackets in ``symbol`` so that together they
        cover at most ``open_qty`` contracts (the strategy's position after a change it did not cause: a risk close,
        a manual trade, a reconciled fill). The newest bracket keeps its cover first; ``open_qty`` 0 cancels every
        child. Children are never grown here: a synthesized bracket's cover stays ``entry filled - children filled -
        closed from outside``; a native bracket's children are modified (or canceled when the broker cannot
        modify)."""
        left = max(0, open_qty)
        for b in reversed(list(self._brackets.values())):
            if b.symbol != symbol or b.tag != tag:
                continue
            entry = self._orders[b.entry_id]
            covered = entry.filled_qty - b.exit_filled_qty - b.outside_closed_qty
            if covered <= 0:
                continue
            keep = min(covered, left)
            left -= keep
            if keep == covered:
                continue
            reason = f"bracket {b.entry_id}: position reduced from outside to {keep}"
            if b.native:
                b.outside_closed_qty += covered - keep
                for leg in (self._orders[c] for c in b.current_leg_ids if c in self._orders):
                    if not self._set_leaves(leg, keep, reason):
                        self._request_cancel(leg, reason)
            else:
                b.outside_closed_qty += covered - keep
                self._sync_bracket(b)

    def flatten(self) -> None:
        """Ask the broker to cancel every working order and close every position at market."""
        self._broker.flatten()

    def hold_tag(self, tag: str, check: Callable[[Order], str | None] | None) -> None:
        """Put ``check`` in front of the pre-trade gate for the new orders of strategy ``tag`` (``None`` removes it).

        ``check(order)`` returns a reason to deny the order (it is then DENIED with that reason and never reaches the
        gate or the broker) or ``None`` to let it on to the gate. The desk holds a paused strategy's entries and a
        stopped strategy's orders this way (:mod:`propdesk.node.desk`). Modifies and cancels are not held.
        """
        if check is None:
            self._holds.pop(tag, None)
        else:
            self._holds[tag] = check

    # ------------------------------------------------------------------------------------------------ queries

    @property
    def by_client_id(self) -> Mapping[ClientOrderId, Order]:
        """Every tracked order by client order id: a read-only live view (``by_client_id.get`` is the cheapest
        lookup, for the journal's cuts)."""
        return self._view

    def order(self, client_order_id: ClientOrderId | str) -> Order | None:
        """The order with this client order id (submitted by propdesk, a bracket child, or foreign), or None."""
        return self._orders.get(client_order_id)  # type: ignore[arg-type]  # ClientOrderId is a NewType of str

    def order_by_broker_id(self, broker_order_id: BrokerOrderId | int) -> Order | None:
        """The order the broker knows as ``broker_order_id`` (once an event carried it), or None."""
        cid = self._by_broker_id.get(BrokerOrderId(broker_order_id))
        return None if cid is None else self._orders.get(cid)

    def orders(self) -> list[Order]:
        """Every tracked order, in the order they became known."""
        return list(self._orders.values())

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        """Orders sent or working (not terminal), of ``symbol`` when given."""
        if symbol is None:
            return list(self._open.values())
        return [o for o in self._open.values() if o.symbol == symbol]

    def working_orders(self, symbol: str | None = None) -> list[Order]:
        """Orders resting at the broker that may still fill, of ``symbol`` when given."""
        return [o for o in self._open.values() if o.is_working and (symbol is None or o.symbol == symbol)]

    def orders_for_tag(self, tag: str, *, open_only: bool = False) -> list[Order]:
        """Orders carrying strategy ``tag`` (``manual`` for foreign orders), oldest first."""
        out = [self._orders[c] for c in self._by_tag.get(tag, ())]
        return [o for o in out if o.is_open] if open_only else out

    def bracket(self, entry_id: ClientOrderId | str) -> Bracket | None:
        """The bracket whose entry is ``entry_id``, or None."""
        return self._brackets.get(ClientOrderId(entry_id))

    def oco_group(self, client_order_id: ClientOrderId | str) -> OcoGroup | None:
        """The OCO group a leg belongs to, or None."""
        return self._oco.get(ClientOrderId(client_order_id))

    # ------------------------------------------------------------------------------------------------ recovery

    def expect_native_child(
        self,
        client_order_id: ClientOrderId,
        *,
        parent_id: ClientOrderId,
        symbol: str,
        side: Side,
        qty: int,
        order_type: OrderType,
        tag: str,
    ) -> None:
        """Track a native bracket child that the broker holds unpriced (suspended while its market entry works),
        found by the reconciler after a restart, from the broker event that prices it (``OrderUpdated`` carrying its
        stop or limit price, sent when the entry fills): the same moment a child seen live is adopted. Until then it
        has no price to build an :class:`Order` with. ``qty`` is contracts; ``order_type`` STOP (stop-loss) or LIMIT
        (take-profit)."""
        self._pending_children[client_order_id] = (parent_id, symbol, side, qty, order_type, tag)

    def restore(self, orders: Iterable[Order], *, trade_ids: Iterable[str] = ()) -> None:
        """Adopt orders rebuilt after a restart (from the journal, or from the broker's reports by the reconciler)
        as they are (status, fills, broker id), and remember ``trade_ids`` (fills already applied elsewhere, e.g.
        every journaled fill) so that a replayed fill is dropped as a duplicate. Nothing is published or sent.

        Later broker events apply to restored orders like to any other. Bracket and OCO records are not rebuilt: a
        native bracket's children are restored as orders of their own (the broker keeps them an OCO pair); a
        synthesized bracket is not resized after a restart. See :mod:`propdesk.storage.recovery`.

        Raises:
            OrderManagerError: an order of another account, or a client order id already tracked as another order.
        """
        for order in orders:
            cid = order.client_order_id
            if order.account_id != self._account_id:
                raise OrderManagerError(
                    f"restore: order {cid} is for account {order.account_id}, not {self._account_id}"
                )
            known = self._orders.get(cid)
            if known is not None and known is not order:
                raise OrderManagerError(f"restore: client order id {cid} is already tracked as another order")
            if known is None:
                self._orders[cid] = order
                self._by_tag.setdefault(order.tag, []).append(cid)
                if is_foreign_tag(order.tag):  # manual, or a close the broker placed for the risk engine
                    self._foreign.add(cid)
            self._trade_ids.update(f.trade_id for f in order.fills)
            self._after_apply(order)
        self._trade_ids.update(trade_ids)

    # ------------------------------------------------------------------------------------------------ events

    def on_broker_event(self, event: object) -> None:
        """Apply a broker event to its order, publish it, and run bracket/OCO follow-ups. Never raises for a bad
        event (see the module docstring); objects that are not order events are ignored."""
        if not isinstance(event, OrderEvent):
            return
        if event.account_id != self._account_id:
            logger.warning(
                "order event for account %s ignored by the manager of account %s", event.account_id, self._account_id
            )
            return
        is_fill = isinstance(event, OrderFilled)
        if isinstance(event, OrderFilled):
            if event.trade_id in self._trade_ids:
                logger.debug("duplicate fill %s of %s ignored", event.trade_id, event.client_order_id)
                return
            self._trade_ids.add(event.trade_id)
        cid = event.client_order_id
        order = self._orders.get(cid)
        adopted = False  # a foreign order adopted now: logged once the fill has been handled (off the risk path)
        if order is None:
            adopted = is_fill and cid not in self._native_child
            try:
                order = self._adopt(event)
            except PropdeskError as exc:  # e.g. a foreign fill of zero contracts
                logger.error("event %s for unknown order %s cannot be tracked: %s", type(event).__name__, cid, exc)
                self._bus.publish(ORDER_ERROR_TOPIC, OrderEventError(cid, event, str(exc), self._clock.timestamp_ns()))
                order = None
            if order is None:
                self._bus.publish(event.topic, event)
                return
        elif isinstance(event, OrderFilled) and cid in self._foreign and event.qty > order.qty - order.filled_qty:
            order = self._regrow_foreign(order, event.qty)
        elif type(event) is OrderSubmitted and order.status is not OrderStatus.INITIALIZED:
            # The manager marks an order SUBMITTED when it hands it to the broker; a broker that reports the
            # submission too (the sim, ProjectX's first order update) confirms it: not a new transition.
            return
        try:
            order.apply(event)
        except PropdeskError as exc:  # IllegalOrderTransitionError, InvalidQuantityError
            self._after_apply(order)
            if cid in self._foreign:
                logger.debug("foreign order %s: %s", cid, exc)
            else:
                logger.error("order %s: broker event %s refused: %s", cid, type(event).__name__, exc)
                self._bus.publish(ORDER_ERROR_TOPIC, OrderEventError(cid, event, str(exc), self._clock.timestamp_ns()))
            if is_fill:
                self._bus.publish(event.topic, self._tagged(event, order))
            if adopted:
                self._log_adopted(order)
            return
        self._after_apply(order)
        if isinstance(event, OrderFilled):
            published = replace(event, tag=order.tag) if event.tag != order.tag else event  # as _tagged
            self._bus.publish(event.topic, published)
            self._on_fill(order, event)
            if adopted:
                self._log_adopted(order)
            return
        if isinstance(event, (OrderUpdated, OrderModifyRejected)):
            self._modify_requested.pop(cid, None)
        elif isinstance(event, OrderCancelRejected):
            self._cancel_requested.discard(cid)
        self._bus.publish(event.topic, event)

    @staticmethod
    def _tagged(event: OrderEvent, order: Order) -> OrderEvent:
        if isinstance(event, OrderFilled) and event.tag != order.tag:
            return replace(event, tag=order.tag)
        return event

    # ------------------------------------------------------------------------------------------------ internals

    def _check_new(self, order: Order) -> None:
        cid = order.client_order_id
        if order.status is not OrderStatus.INITIALIZED:
            raise OrderManagerError(f"order {cid} is {order.status.value}: only a new order can be submitted")
        if order.account_id != self._account_id:
            raise OrderManagerError(f"order {cid} is for account {order.account_id}, not {self._account_id}")
        if cid in self._orders and self._orders[cid] is not order:
            raise OrderManagerError(f"client order id {cid} is already used by another order")
        if not order.tag:
            raise OrderManagerError(f"order {cid}: a strategy tag is required")

    def _register(self, order: Order) -> None:
        self._check_new(order)
        cid = order.client_order_id
        if cid not in self._orders:
            self._orders[cid] = order
            self._by_tag.setdefault(order.tag, []).append(cid)

    def _require(self, client_order_id: ClientOrderId) -> Order:
        o = self._orders.get(client_order_id)
        if o is None:
            raise OrderManagerError(f"unknown client order id {client_order_id!r}")
        return o

    def _after_apply(self, order: Order) -> None:
        cid = order.client_order_id
        if order.is_open:
            self._open[cid] = order
        else:
            self._open.pop(cid, None)
            if order.is_done:
                self._cancel_requested.discard(cid)
                self._modify_requested.pop(cid, None)
        if order.broker_order_id is not None:
            self._by_broker_id[order.broker_order_id] = cid

    def _apply_local(self, order: Order, event: OrderEvent) -> None:
        """Apply an event the manager itself produced (always legal) and publish it."""
        order.apply(event)
        self._after_apply(order)
        self._bus.publish(event.topic, event)

    def _unsupported(self, order: Order) -> str | None:
        caps = self._broker.capabilities
        t = order.order_type
        if t is OrderType.TRAILING_STOP and not caps.trailing_stops:
            return f"broker {self._broker.name} does not support trailing stops"
        if t is OrderType.STOP_LIMIT and not caps.stop_limit_orders:
            return f"broker {self._broker.name} does not support stop-limit orders"
        if t in (OrderType.JOIN_BID, OrderType.JOIN_ASK) and not caps.join_bid_ask:
            return f"broker {self._broker.name} does not support join-bid/ask orders"
        return None

    def _gate_check(self, order: Order) -> str | None:
        if self._gate is None:
            return None
        try:
            return self._gate.check(order, self)
        except Exception as exc:
            logger.exception("pre-trade gate raised on order %s: denied", order.client_order_id)
            return f"pre-trade gate error: {exc!r}"

    def _send(self, order: Order, bracket: BracketSpec | None = None) -> None:
        cid = order.client_order_id
        ts = self._clock.timestamp_ns()
        reason = None if order.order_type in _ALWAYS_SUPPORTED else self._unsupported(order)
        if reason is not None:
            self._apply_local(
                order, OrderRejected(client_order_id=cid, account_id=self._account_id, ts_event_ns=ts, reason=reason)
            )
            return
        if self._holds:
            hold = self._holds.get(order.tag)
            reason = None if hold is None else hold(order)
        if reason is None and self._gate is not None:
            reason = self._gate_check(order)
        if reason is not None:
            self._apply_local(
                order, OrderDenied(client_order_id=cid, account_id=self._account_id, ts_event_ns=ts, reason=reason)
            )
            return
        self._apply_local(order, OrderSubmitted(client_order_id=cid, account_id=self._account_id, ts_event_ns=ts))
        try:
            self._broker.submit_order(order, bracket)
        except Exception as exc:
            logger.exception("broker %s failed to submit order %s", self._broker.name, cid)
            if order.status is OrderStatus.SUBMITTED:
                self._apply_local(
                    order,
                    OrderRejected(
                        client_order_id=cid,
                        account_id=self._account_id,
                        ts_event_ns=self._clock.timestamp_ns(),
                        reason=f"broker error: {exc!r}",
                    ),
                )

    def _request_modify(
        self,
        order: Order,
        *,
        qty: int | None = None,
        limit_price: Price | None = None,
        stop_price: Price | None = None,
        trail_ticks: int | None = None,
    ) -> bool:
        cid = order.client_order_id
        if self._gate is not None:
            changes: dict[str, object] = {}
            if qty is not None:
                changes["qty"] = qty
            if limit_price is not None:
                changes["limit_price"] = limit_price
            if stop_price is not None:
                changes["stop_price"] = stop_price
            if trail_ticks is not None:
                changes["trail_ticks"] = trail_ticks
            reason = self._gate_check(replace(order, fills=list(order.fills), **changes))  # type: ignore[arg-type]
            if reason is not None:
                self._apply_local(
                    order,
                    OrderModifyRejected(
                        client_order_id=cid,
                        account_id=self._account_id,
                        ts_event_ns=self._clock.timestamp_ns(),
                        reason=reason,
                    ),
                )
                return False
        if order.is_working and order.status is not OrderStatus.SUSPENDED:
            self._apply_local(
                order,
                OrderPendingUpdate(
                    client_order_id=cid, account_id=self._account_id, ts_event_ns=self._clock.timestamp_ns()
                ),
            )
        if qty is not None:
            self._modify_requested[cid] = qty
        try:
            self._broker.modify_order(
                order, qty=qty, limit_price=limit_price, stop_price=stop_price, trail_ticks=trail_ticks
            )
        except Exception as exc:
            logger.exception("broker %s failed to modify order %s", self._broker.name, cid)
            self._modify_requested.pop(cid, None)
            self._apply_local(
                order,
                OrderModifyRejected(
                    client_order_id=cid,
                    account_id=self._account_id,
                    ts_event_ns=self._clock.timestamp_ns(),
                    reason=f"broker error: {exc!r}",
                ),
            )
            return False
        return True

    def _request_cancel(self, order: Order, reason: str) -> bool:
        cid = order.client_order_id
        if order.status is OrderStatus.INITIALIZED:
            # Never sent (an OCO/bracket leg whose sibling filled first): it must not reach the broker.
            self._apply_local(
                order,
                OrderCanceled(
                    client_order_id=cid,
                    account_id=self._account_id,
                    ts_event_ns=self._clock.timestamp_ns(),
                    reason=reason,
                ),
            )
            return False
        if order.is_done or cid in self._cancel_requested:
            return False
        self._cancel_requested.add(cid)
        if order.is_working and order.status is not OrderStatus.PENDING_CANCEL:
            self._apply_local(
                order,
                OrderPendingCancel(
                    client_order_id=cid, account_id=self._account_id, ts_event_ns=self._clock.timestamp_ns()
                ),
            )
        try:
            self._broker.cancel_order(order)
        except Exception as exc:
            logger.exception("broker %s failed to cancel order %s", self._broker.name, cid)
            self._cancel_requested.discard(cid)
            if order.is_open:
                self._apply_local(
                    order,
                    OrderCancelRejected(
                        client_order_id=cid,
                        account_id=self._account_id,
                        ts_event_ns=self._clock.timestamp_ns(),
                        reason=f"broker error: {exc!r}",
                    ),
                )
            return False
        return True

    def _set_leaves(self, order: Order, leaves: int, reason: str) -> bool:
        """Make ``order`` have ``leaves`` contracts open (0 cancels). Returns False when it needs a replace
        (the broker cannot modify)."""
        cid = order.client_order_id
        if order.is_done or cid in self._cancel_requested:
            return True
        if leaves <= 0:
            self._request_cancel(order, reason)
            return True
        target = order.filled_qty + leaves
        if order.status is OrderStatus.INITIALIZED:
            if order.qty != target:
                self._apply_local(
                    order,
                    OrderUpdated(
                        client_order_id=cid,
                        account_id=self._account_id,
                        ts_event_ns=self._clock.timestamp_ns(),
                        qty=target,
                    ),
                )
            return True
        if (order.qty == target and cid not in self._modify_requested) or self._modify_requested.get(cid) == target:
            return True
        if not self._broker.capabilities.modify_orders:
            return False
        self._request_modify(order, qty=target)
        return True

    # ------------------------------------------------------------------------------------------------ adoption

    def _adopt(self, event: OrderEvent) -> Order | None:
        """Create the order for an event whose client order id is unknown: a native bracket child, or a foreign
        order when the event carries enough data (a fill). None when it cannot be built."""
        cid = event.client_order_id
        native = self._native_child.get(cid)
        if native is not None:
            return self._adopt_native_child(cid, native[0], native[1], event)
        if cid in self._pending_children:
            return self._adopt_pending_child(cid, event)
        if not isinstance(event, OrderFilled):
            logger.debug("event %s for unknown order %s published without tracking", type(event).__name__, cid)
            return None
        tag = self._close_tags.pop(event.symbol, MANUAL_TAG)  # a close the risk engine asked for, or manual
        order = Order(
            cid,
            self._account_id,
            event.symbol,
            event.side,
            event.qty,
            OrderType.MARKET,
            tag=tag,
            ts_init_ns=event.ts_event_ns,
        )
        # what applying an OrderSubmitted does (INITIALIZED -> SUBMITTED), without building one: this runs on the
        # risk path of every manual fill
        order.transition(OrderStatus.SUBMITTED, event.ts_event_ns)
        self._orders[cid] = order
        self._by_tag.setdefault(tag, []).append(cid)
        self._foreign.add(cid)
        return order

    def _adopt_pending_child(self, cid: ClientOrderId, event: OrderEvent) -> Order | None:
        parent_id, symbol, side, qty, typ, tag = self._pending_children[cid]
        stop = event.stop_price if isinstance(event, OrderUpdated) and typ is OrderType.STOP else None
        limit = event.limit_price if isinstance(event, OrderUpdated) and typ is OrderType.LIMIT else None
        if stop is None and limit is None:
            logger.debug("pending child %s: %s carries no price yet; not tracked", cid, type(event).__name__)
            return None
        del self._pending_children[cid]
        order = Order(
            cid,
            self._account_id,
            symbol,
            side,
            (event.qty if isinstance(event, OrderUpdated) and event.qty else None) or qty,
            typ,
            stop_price=stop,
            limit_price=limit,
            tif=TimeInForce.GTC,
            tag=tag,
            reduce_only=True,
            parent_id=parent_id,
            ts_init_ns=event.ts_event_ns,
        )
        order.apply(OrderSubmitted(client_order_id=cid, account_id=self._account_id, ts_event_ns=event.ts_event_ns))
        self._orders[cid] = order
        self._by_tag.setdefault(tag, []).append(cid)
        return order

    @staticmethod
    def _log_adopted(order: Order) -> None:
        if logger.isEnabledFor(logging.INFO):
            logger.info(
                "tracking foreign order %s (%s %s %s)", order.client_order_id, order.side.name, order.qty, order.symbol
            )

    def _regrow_foreign(self, old: Order, extra: int) -> Order:
        """Rebuild a foreign order whose true size is larger than its fills so far showed (its size is unknown)."""
        new = Order(
            old.client_order_id,
            old.account_id,
            old.symbol,
            old.side,
            old.filled_qty + extra,
            old.order_type,
            tag=old.tag,
            ts_init_ns=old.ts_init_ns,
        )
        new.apply(
            OrderSubmitted(client_order_id=old.client_order_id, account_id=old.account_id, ts_event_ns=old.ts_init_ns)
        )
        new.broker_order_id = old.broker_order_id
        for f in old.fills:
            new.add_fill(f)
        self._orders[old.client_order_id] = new
        return new

    def _adopt_native_child(self, cid: ClientOrderId, b: Bracket, kind: LegKind, event: OrderEvent) -> Order | None:
        entry = self._orders[b.entry_id]
        ref = entry.fills[0].price if entry.fills else (entry.limit_price or entry.stop_price)
        if ref is None:
            logger.debug("native child %s: no reference price yet (market entry unfilled); event not tracked", cid)
            return None
        sl, tp = child_prices(b.entry_side, ref, b.tick_size, b.stop_loss_ticks, b.take_profit_ticks)
        other = b.take_profit_id if kind == STOP_LOSS else b.stop_loss_id
        order = Order(
            cid,
            self._account_id,
            b.symbol,
            b.entry_side.opposite,
            entry.filled_qty or entry.qty,
            OrderType.STOP if kind == STOP_LOSS else OrderType.LIMIT,
            stop_price=sl if kind == STOP_LOSS else None,
            limit_price=tp if kind == TAKE_PROFIT else None,
            tif=entry.tif,
            tag=b.tag,
            reduce_only=True,
            parent_id=b.entry_id,
            linked_ids=() if other is None else (other,),
            ts_init_ns=event.ts_event_ns,
        )
        order.apply(OrderSubmitted(client_order_id=cid, account_id=self._account_id, ts_event_ns=event.ts_event_ns))
        self._orders[cid] = order
        self._by_tag.setdefault(b.tag, []).append(cid)
        if b.stop_loss_price is None and b.take_profit_price is None:
            b.stop_loss_price, b.take_profit_price = sl, tp
        return order

    # ------------------------------------------------------------------------------------------------ brackets, OCO

    def _on_fill(self, order: Order, event: OrderFilled) -> None:
        cid = order.client_order_id
        b = self._brackets.get(cid)
        if b is not None and not b.native:
            self._sync_bracket(b)
        b = self._leg_bracket.get(cid)
        if b is not None:
            b.exit_filled_qty += event.qty
            self._sync_bracket(b)
        g = self._oco.get(cid)
        if g is not None:
            self._oco_leg_filled(g, order, event.qty)

    def _oco_leg_filled(self, g: OcoGroup, leg: Order, qty: int) -> None:
        for other_id in g.others(leg.client_order_id):
            s = self._orders[other_id]
            if s.is_done or other_id in self._cancel_requested:
                continue
            if leg.status is OrderStatus.FILLED:
                if s.status is OrderStatus.INITIALIZED or not g.native:
                    self._request_cancel(s, f"OCO: {leg.client_order_id} filled")
                continue
            if not self._set_leaves(s, s.qty - s.filled_qty - qty, f"OCO: {leg.client_order_id} filled"):
                self._replace_oco_leg(g, s, s.qty - s.filled_qty - qty)

    def _replace_oco_leg(self, g: OcoGroup, old: Order, leaves: int) -> None:
        others = tuple(g.others(old.client_order_id))
        new = self._new(
            old.symbol,
            old.side,
            leaves,
            old.tag,
            old.order_type,
            limit_price=old.limit_price,
            stop_price=old.stop_price,
            trail_ticks=old.trail_ticks,
            tif=old.tif,
            reduce_only=old.reduce_only,
            parent_id=old.parent_id,
            linked_ids=others,
        )
        g.leg_ids[g.leg_ids.index(old.client_order_id)] = new.client_order_id
        g.replaced_ids.append(old.client_order_id)
        self._register(new)
        self._oco[new.client_order_id] = g
        self._request_cancel(old, "OCO: replaced to resize")
        self._send(new)

    def _sync_bracket(self, b: Bracket) -> None:
        """Bring a synthesized bracket's children in line with its open position; re-entrant (a nested call marks
        the bracket dirty and the outer call runs again)."""
        if b.syncing:
            b.dirty = True
            return
        b.syncing = True
        try:
            for _ in range(100):
                b.dirty = False
                self._sync_bracket_once(b)
                if not b.dirty:
                    return
            logger.error("bracket %s did not settle after 100 passes", b.entry_id)
        finally:
            b.syncing = False

    def _sync_bracket_once(self, b: Bracket) -> None:
        entry = self._orders[b.entry_id]
        pos = entry.filled_qty - b.exit_filled_qty - b.outside_closed_qty
        if pos < 0:
            logger.error("bracket %s: children filled %s past the entry's %s", b.entry_id, -pos, entry.filled_qty)
            pos = 0
        if b.stop_loss_price is None and b.take_profit_price is None and entry.fills:
            b.stop_loss_price, b.take_profit_price = child_prices(
                b.entry_side, entry.fills[0].price, b.tick_size, b.stop_loss_ticks, b.take_profit_ticks
            )
        legs = [self._orders[c] for c in b.current_leg_ids]
        pending = [o for o in legs if o.status is OrderStatus.INITIALIZED]
        live = [o for o in legs if o.is_open and o.client_order_id not in self._cancel_requested]
        reason = f"bracket {b.entry_id}: position closed"
        if pos == 0:
            for o in pending:
                self._request_cancel(o, reason)
            native_done = self._broker.capabilities.native_oco and any(o.status is OrderStatus.FILLED for o in legs)
            if not native_done:  # a native OCO broker cancels the sibling of a completed leg itself
                for o in live:
                    self._request_cancel(o, reason)
            return
        if not live and not pending:
            pending = self._new_pair(b, pos)
        elif live:
            replace_needed = False
            for o in live:
                if not self._set_leaves(o, pos, reason):
                    replace_needed = True
            if replace_needed:
                for o in live:
                    self._request_cancel(o, f"bracket {b.entry_id}: replaced to resize")
                for o in pending:
                    self._request_cancel(o, f"bracket {b.entry_id}: replaced to resize")
                pending = self._new_pair(b, pos)
        for o in pending:
            if b.dirty:
                return  # something happened while sending the previous leg: re-evaluate first
            if o.status is OrderStatus.INITIALIZED:
                self._set_leaves(o, pos, reason)
                if o.status is OrderStatus.INITIALIZED:
                    self._send(o)

    def _new_pair(self, b: Bracket, qty: int) -> list[Order]:
        b.generation += 1
        sl_id = child_id(b.entry_id, STOP_LOSS, b.generation) if b.stop_loss_ticks is not None else None
        tp_id = child_id(b.entry_id, TAKE_PROFIT, b.generation) if b.take_profit_ticks is not None else None
        side = b.entry_side.opposite
        entry = self._orders[b.entry_id]
        made: list[Order] = []
        if sl_id is not None and b.stop_loss_price is not None:
            made.append(
                self._new(
                    b.symbol,
                    side,
                    qty,
                    b.tag,
                    OrderType.STOP,
                    stop_price=b.stop_loss_price,
                    tif=entry.tif,
                    reduce_only=True,
                    client_order_id=sl_id,
                    parent_id=b.entry_id,
                    linked_ids=() if tp_id is None else (tp_id,),
                )
            )
        if tp_id is not None and b.take_profit_price is not None:
            made.append(
                self._new(
                    b.symbol,
                    side,
                    qty,
                    b.tag,
                    OrderType.LIMIT,
                    limit_price=b.take_profit_price,
                    tif=entry.tif,
                    reduce_only=True,
                    client_order_id=tp_id,
                    parent_id=b.entry_id,
                    linked_ids=() if sl_id is None else (sl_id,),
                )
            )
        b.stop_loss_id, b.take_profit_id = sl_id, tp_id
        for o in made:
            self._register(o)
            self._leg_bracket[o.client_order_id] = b
            b.leg_ids.append(o.client_order_id)
        return made
