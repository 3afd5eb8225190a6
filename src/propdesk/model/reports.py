"""Broker reports: what a broker says it has (orders, fills, positions, the account), for reconciliation.

The reconciler compares these with propdesk's own state after a (re)connect and emits the missing events. Money and
prices are exact (:class:`~propdesk.model.price.Price`, :class:`~propdesk.model.price.Money`); quantities are
contracts; timestamps UTC ns. A report about an order propdesk did not place (a manual trade at the broker) has
``client_order_id`` ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass

from propdesk.model.enums import Side
from propdesk.model.identifiers import AccountId, BrokerOrderId, ClientOrderId
from propdesk.model.orders import OrderStatus, OrderType
from propdesk.model.price import Money, Price


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderReport:
    """An order as the broker reports it. ``filled_qty`` and ``avg_fill_price`` cover every fill so far."""

    account_id: AccountId
    broker_order_id: BrokerOrderId
    client_order_id: ClientOrderId | None
    symbol: str
    side: Side
    qty: int
    order_type: OrderType
    status: OrderStatus
    filled_qty: int = 0
    avg_fill_price: Price | None = None
    limit_price: Price | None = None
    stop_price: Price | None = None
    ts_ns: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class FillReport:
    """One execution as the broker reports it (a ProjectX ``Trade`` row, a half-turn).

    ``realized_pnl`` is the broker's own figure when it gives one (``None`` for an opening fill); propdesk computes
    its own from prices and tick value and uses the broker's only to cross-check.
    """

    account_id: AccountId
    trade_id: str
    broker_order_id: BrokerOrderId
    client_order_id: ClientOrderId | None
    symbol: str
    side: Side
    qty: int
    price: Price
    fee: Money
    ts_ns: int
    realized_pnl: Money | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionReport:
    """A net position: ``signed_qty`` contracts (+ long, - short) at ``avg_price``."""

    account_id: AccountId
    symbol: str
    signed_qty: int
    avg_price: Price
    ts_ns: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountReport:
    """The account as the broker reports it: ``balance`` in USD and whether it may trade."""

    account_id: AccountId
    name: str
    balance: Money
    can_trade: bool
    simulated: bool
    ts_ns: int = 0
