"""Orders: types, time in force, statuses, the order state machine and fills.

An :class:`Order` is the one mutable record of an order's life. It changes only through :meth:`Order.apply`, which
takes an order event (:mod:`propdesk.model.events`) and moves the status along the table in
:data:`TRANSITIONS`; any other move raises :class:`IllegalOrderTransitionError`. Fills accumulate exactly: the average
fill price is kept as a sum of fixed-point ``raw`` prices times quantity (see :mod:`propdesk.model.price`).

Statuses follow NautilusTrader's order life cycle, reduced to what a futures broker reports; the ProjectX mapping
(0 None, 1 Open, 2 Filled, 3 Cancelled, 4 Expired, 5 Rejected, 6 Pending, 7 PendingCancellation, 8 Suspended) lives
in the ProjectX broker package (``../shared/specs/projectx-gateway-api.md`` section 4).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Final

from propdesk.core.errors import PropdeskError
from propdesk.model._fastinit import fast_frozen_init
from propdesk.model.enums import Side
from propdesk.model.identifiers import AccountId, BrokerOrderId, ClientOrderId
from propdesk.model.price import PRICE_SCALE, Money, Price, check_qty

if TYPE_CHECKING:
    from propdesk.model.events import OrderEvent


class OrderType(Enum):
    """What kind of order: the types CME futures brokers (and ProjectX) support."""

    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    """Stop-market: becomes a market order when the stop price trades."""
    STOP_LIMIT = "stop_limit"
    TRAILING_STOP = "trailing_stop"
    """A stop that follows the market by ``trail_ticks``."""
    JOIN_BID = "join_bid"
    """A limit order that joins the current best bid (ProjectX type 6)."""
    JOIN_ASK = "join_ask"
    """A limit order that joins the current best ask (ProjectX type 7)."""

    # Identity hash (members are singletons and compare by identity): Enum's own __hash__ is a Python-level
    # hash(self._name_), ~100 ns on every set/dict lookup of the order and matching hot paths.
    __hash__ = object.__hash__


class TimeInForce(Enum):
    """DAY orders expire at the end of the trading session; GTC orders work until filled or canceled."""

    DAY = "day"
    GTC = "gtc"


class OrderStatus(Enum):
    """Where an order is in its life cycle."""

    INITIALIZED = "initialized"
    """Created locally, not yet sent."""
    DENIED = "denied"
    """Refused before it left propdesk (the pre-trade risk gate)."""
    SUBMITTED = "submitted"
    """Sent to the broker, not yet acknowledged."""
    ACCEPTED = "accepted"
    """Working at the broker (ProjectX Open)."""
    SUSPENDED = "suspended"
    """A bracket child waiting for its parent to fill (ProjectX Suspended)."""
    PENDING_UPDATE = "pending_update"
    PENDING_CANCEL = "pending_cancel"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    __hash__ = object.__hash__  # as OrderType: status sets (TERMINAL, OPEN, TRANSITIONS) are probed per event


S = OrderStatus
TERMINAL: Final[frozenset[OrderStatus]] = frozenset({S.DENIED, S.FILLED, S.CANCELED, S.REJECTED, S.EXPIRED})
"""Statuses an order never leaves."""
WORKING: Final[frozenset[OrderStatus]] = frozenset(
    {S.ACCEPTED, S.SUSPENDED, S.PENDING_UPDATE, S.PENDING_CANCEL, S.PARTIALLY_FILLED}
)
"""Statuses of an order that rests at the broker and may still fill."""
OPEN: Final[frozenset[OrderStatus]] = WORKING | {S.SUBMITTED}
"""Statuses of an order that is not done: working, or sent and not yet acknowledged."""

MANUAL_TAG: Final[str] = "manual"
"""The tag of orders and fills propdesk did not place (a trade entered by hand at the broker); an untagged fill
counts as ``manual``."""

ENFORCEMENT_TAG: Final[str] = "risk"
"""The tag of the risk engine's enforcement orders and fills (flatten, close, fallback orders, attached stops), on
its own when no rule is known; :func:`enforcement_tag` adds the rule: ``risk:R11``."""


def enforcement_tag(rule_id: str | None) -> str:
    """The tag of an enforcement order or fill caused by ``rule_id``: ``risk:R11``; ``risk`` when ``rule_id`` is
    ``None`` or empty (a condition such as a stale feed, not a rule)."""
    return f"{ENFORCEMENT_TAG}:{rule_id}" if rule_id else ENFORCEMENT_TAG


def is_enforcement_tag(tag: str) -> bool:
    """True for ``risk`` and ``risk:<RULE>`` (the risk engine's orders and fills)."""
    return tag == ENFORCEMENT_TAG or tag.startswith("risk:")


def is_foreign_tag(tag: str) -> bool:
    """True for a tag no strategy owns: ``manual`` (or empty: an untagged fill) and the enforcement tags. A fill
    with such a tag that reduces the account's position closes what the strategies hold
    (:func:`propdesk.model.positions.attribute_fill`)."""
    return not tag or tag in (MANUAL_TAG, ENFORCEMENT_TAG) or tag.startswith("risk:")


_LIVE = {S.ACCEPTED, S.SUSPENDED, S.PENDING_UPDATE, S.PENDING_CANCEL, S.PARTIALLY_FILLED}
TRANSITIONS: Final[dict[OrderStatus, frozenset[OrderStatus]]] = {
    S.INITIALIZED: frozenset({S.SUBMITTED, S.DENIED, S.REJECTED, S.CANCELED}),
    S.SUBMITTED: frozenset({S.ACCEPTED, S.SUSPENDED, S.REJECTED, S.CANCELED, S.PARTIALLY_FILLED, S.FILLED, S.EXPIRED}),
    S.ACCEPTED: frozenset(_LIVE | {S.FILLED, S.CANCELED, S.EXPIRED, S.REJECTED}),
    S.SUSPENDED: frozenset(_LIVE | {S.FILLED, S.CANCELED, S.EXPIRED}),
    S.PENDING_UPDATE: frozenset(_LIVE | {S.FILLED, S.CANCELED, S.EXPIRED}),
    S.PENDING_CANCEL: frozenset(_LIVE | {S.FILLED, S.CANCELED, S.EXPIRED}),
    S.PARTIALLY_FILLED: frozenset(
        {S.PARTIALLY_FILLED, S.PENDING_UPDATE, S.PENDING_CANCEL, S.FILLED, S.CANCELED, S.EXPIRED}
    ),
    S.FILLED: frozenset(),
    S.CANCELED: frozenset(),
    S.REJECTED: frozenset(),
    S.EXPIRED: frozenset(),
    S.DENIED: frozenset(),
}
"""The legal status moves. A move to the same status is legal only where listed (partial fill after partial fill)."""


@dataclass(frozen=True, slots=True)
class BracketSpec:
    """Native bracket children for an entry: distances from the entry's fill price in ticks (unsigned).

    The stop-loss is a stop-market order ``stop_loss_ticks`` against the position; the take-profit a limit order
    ``take_profit_ticks`` in its favor. ``None`` omits that leg.
    """

    stop_loss_ticks: int | None = None
    take_profit_ticks: int | None = None


class IllegalOrderTransitionError(PropdeskError):
    """An event would move an order along a transition :data:`TRANSITIONS` does not allow."""


@fast_frozen_init
@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of (part of) an order.

    Attributes:
        qty: contracts filled by this execution (> 0).
        price: the execution price (on the tick).
        fee: commissions and exchange fees charged for it (USD, >= 0).
        trade_id: the broker's id of the execution (ProjectX trade ``id``), unique per account.
        ts_ns: execution time, UTC ns.
    """

    qty: int
    price: Price
    fee: Money
    trade_id: str
    ts_ns: int


@dataclass(slots=True)
class Order:
    """An order and its state.

    Prices are :class:`Price` (exact, on the contract's tick); ``qty`` and ``filled_qty`` are contracts. ``tag`` names
    the strategy (or ``manual`` for a trade placed at the broker by hand) for attribution. Bracket and OCO links are
    client order ids: ``parent_id`` on each child, ``linked_ids`` on both legs of an OCO pair.

    Raises:
        InvalidQuantityError: at construction when ``qty`` is not a positive whole number.
        ValueError: at construction when the prices the type needs are missing (limit for LIMIT and STOP_LIMIT,
            stop for STOP and STOP_LIMIT, ``trail_ticks`` for TRAILING_STOP).
    """

    client_order_id: ClientOrderId
    account_id: AccountId
    symbol: str
    side: Side
    qty: int
    order_type: OrderType
    limit_price: Price | None = None
    stop_price: Price | None = None
    trail_ticks: int | None = None
    tif: TimeInForce = TimeInForce.DAY
    tag: str = ""
    reduce_only: bool = False
    parent_id: ClientOrderId | None = None
    linked_ids: tuple[ClientOrderId, ...] = ()
    ts_init_ns: int = 0
    status: OrderStatus = OrderStatus.INITIALIZED
    broker_order_id: BrokerOrderId | None = None
    filled_qty: int = 0
    fees: Money = field(default_factory=Money.zero)
    fills: list[Fill] = field(default_factory=list)
    reason: str = ""
    ts_last_ns: int = 0
    _fill_notional_raw: int = 0

    def __post_init__(self) -> None:
        self.qty = check_qty(self.qty)
        t = self.order_type
        if t in (OrderType.LIMIT, OrderType.STOP_LIMIT) and self.limit_price is None:
            raise ValueError(f"order {self.client_order_id}: a {t.value} order needs a limit price")
        if t in (OrderType.STOP, OrderType.STOP_LIMIT) and self.stop_price is None:
            raise ValueError(f"order {self.client_order_id}: a {t.value} order needs a stop price")
        if t is OrderType.TRAILING_STOP and (self.trail_ticks is None or self.trail_ticks <= 0):
            raise ValueError(f"order {self.client_order_id}: a trailing stop needs trail_ticks > 0")

    @property
    def leaves_qty(self) -> int:
        """Contracts still to fill (0 once the order is done)."""
        return 0 if self.status in TERMINAL else self.qty - self.filled_qty

    @property
    def is_open(self) -> bool:
        """True while the order is sent or working (not yet terminal)."""
        return self.status in OPEN

    @property
    def is_working(self) -> bool:
        """True while the order rests at the broker and may fill."""
        return self.status in WORKING

    @property
    def is_done(self) -> bool:
        """True once the order is filled, canceled, rejected, expired or denied."""
        return self.status in TERMINAL

    @property
    def avg_fill_price(self) -> Price | None:
        """The quantity-weighted average fill price, exact to 1e-9 point (None before the first fill).

        It may lie between ticks (two fills at 6543.25 and 6543.50 average 6543.375).
        """
        if not self.filled_qty:
            return None
        return Price(self._fill_notional_raw // self.filled_qty)

    @property
    def signed_qty(self) -> int:
        """``qty`` with the sign of the side (+ buy, - sell)."""
        return self.qty * int(self.side)

    def transition(self, new: OrderStatus, ts_ns: int) -> None:
        """Move to ``new``.

        Raises:
            IllegalOrderTransitionError: the move is not in :data:`TRANSITIONS`.
        """
        if new not in TRANSITIONS[self.status]:
            raise IllegalOrderTransitionError(
                f"order {self.client_order_id}: cannot go from {self.status.value} to {new.value}"
            )
        self.status = new
        self.ts_last_ns = ts_ns

    def add_fill(self, fill: Fill) -> None:
        """Record an execution and move to PARTIALLY_FILLED or FILLED.

        Raises:
            IllegalOrderTransitionError: the order cannot fill in its status, or the fill exceeds the open quantity.
            InvalidQuantityError: the fill quantity is not positive.
        """
        check_qty(fill.qty, "fill quantity")
        if fill.qty > self.qty - self.filled_qty:
            raise IllegalOrderTransitionError(
                f"order {self.client_order_id}: fill of {fill.qty} exceeds the {self.qty - self.filled_qty} open"
            )
        done = self.filled_qty + fill.qty == self.qty
        self.transition(OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED, fill.ts_ns)
        self.filled_qty += fill.qty
        self._fill_notional_raw += fill.price.raw * fill.qty
        self.fees = self.fees + fill.fee
        self.fills.append(fill)

    def apply(self, event: OrderEvent) -> None:
        """Apply an order event (see :mod:`propdesk.model.events`): the one way an order changes after creation.

        Raises:
            IllegalOrderTransitionError: as :meth:`transition` and :meth:`add_fill`.
        """
        event.apply_to(self)


def avg_price_of(notional_raw: int, qty: int) -> float:
    """A fixed-point notional (sum of ``price.raw * qty``) divided by ``qty``, in points, for display only."""
    return notional_raw / qty / PRICE_SCALE
