"""The ``Broker`` protocol: one interface for every broker, so nothing above it knows which one it talks to.

Principles (ARCHITECTURE.md): the core is synchronous and never awaits the network, so commands return at once and
their outcome arrives later as events (``OrderAccepted``, ``OrderFilled``, ``OrderRejected`` ...) through the
handler set with :meth:`Broker.set_event_handler`. A live broker sends the request from an asyncio task; the
simulated broker handles it in the same call stack. Reports (what the broker says it has) are coroutines, used by the
reconciler after a connect. Everything broker-specific (ProjectX enums, contract ids, wire shapes) stays inside
the broker's own package; the order manager reads :class:`BrokerCapabilities` instead of checking types, and
synthesizes what a broker lacks (brackets, OCO, trailing stops).

Every order carries its :class:`~propdesk.model.identifiers.ClientOrderId`; a broker that supports it sends it as
an idempotency key (ProjectX ``customTag``), so a submit whose outcome is unknown is resolved by looking the id up,
never by sending the order again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from propdesk.model.data import BarSeries, Timeframe
from propdesk.model.identifiers import AccountId
from propdesk.model.orders import BracketSpec, Order
from propdesk.model.price import Price
from propdesk.model.reports import AccountReport, FillReport, OrderReport, PositionReport


@dataclass(frozen=True, slots=True)
class BrokerCapabilities:
    """What a broker (for this account) does natively.

    Attributes:
        native_brackets: stop-loss/take-profit children attached to an entry, sized to its fills (ProjectX: only in
            Auto OCO bracket mode).
        native_oco: two working orders where one's fill cancels the other.
        trailing_stops: trailing stop orders with a distance in ticks.
        stop_limit_orders: stop-limit orders.
        join_bid_ask: orders that join the best bid or ask.
        partial_close: closing part of a position in one call.
        modify_orders: changing a working order's quantity and prices in place.
        client_order_ids: the broker stores the client order id and can look an order up by it (idempotency key).
    """

    native_brackets: bool = False
    native_oco: bool = False
    trailing_stops: bool = False
    stop_limit_orders: bool = False
    join_bid_ask: bool = False
    partial_close: bool = False
    modify_orders: bool = True
    client_order_ids: bool = False


BrokerEventHandler = Callable[[object], None]
"""Receives every broker event: order events, fills, ``BrokerConnected``/``BrokerDisconnected``
(:mod:`propdesk.model.events`), market data."""


@runtime_checkable
class Broker(Protocol):
    """The interface every broker implements. See the module docstring for the rules."""

    @property
    def name(self) -> str:
        """A short name for logs and the journal (``sim``, ``projectx``)."""
        ...

    @property
    def account_id(self) -> AccountId:
        """The account this broker instance trades."""
        ...

    @property
    def capabilities(self) -> BrokerCapabilities:
        """What this broker does natively for this account."""
        ...

    @property
    def is_connected(self) -> bool:
        """True while every channel the broker needs is up."""
        ...

    def set_event_handler(self, handler: BrokerEventHandler) -> None:
        """Register the one callable that receives every event (the node publishes them on the bus)."""
        ...

    async def connect(self) -> None:
        """Open the connection(s); emits ``BrokerConnected``. Raises a ``PropdeskError`` subclass on failure."""
        ...

    async def disconnect(self) -> None:
        """Close the connection(s); working orders stay at the broker."""
        ...

    # --- commands: return at once, outcome arrives as events -------------------------------------------------

    def submit_order(self, order: Order, bracket: BracketSpec | None = None) -> None:
        """Send ``order`` (with native bracket children when ``bracket`` is given and supported)."""
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
        """Change a working order; ``None`` fields stay. Outcome: ``OrderUpdated`` or ``OrderModifyRejected``."""
        ...

    def cancel_order(self, order: Order) -> None:
        """Cancel a working order. Outcome: ``OrderCanceled`` or ``OrderCancelRejected``."""
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

    # --- reports: for reconciliation --------------------------------------------------------------------------

    async def order_reports(self) -> list[OrderReport]:
        """Every open order at the broker, bracket children waiting for their parent included."""
        ...

    async def fill_reports(self, since_ns: int) -> list[FillReport]:
        """Every fill at or after ``since_ns`` (UTC ns), oldest first."""
        ...

    async def position_reports(self) -> list[PositionReport]:
        """Every open position."""
        ...

    async def account_report(self) -> AccountReport:
        """The account's balance and state."""
        ...

    # --- market data ------------------------------------------------------------------------------------------

    def subscribe(self, symbol: str, *, quotes: bool = True, trades: bool = True, depth: bool = False) -> None:
        """Stream market data for ``symbol`` as ``QuoteTick``/``TradeTick``/``DepthUpdate`` events."""
        ...

    def unsubscribe(self, symbol: str) -> None:
        """Stop streaming ``symbol``."""
        ...

    async def request_bars(self, symbol: str, timeframe: Timeframe, start_ns: int, end_ns: int) -> BarSeries:
        """Historical bars of ``symbol`` over ``[start_ns, end_ns)``."""
        ...
