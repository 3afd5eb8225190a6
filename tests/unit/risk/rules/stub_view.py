"""A settable stand-in for :class:`propdesk.risk.rules.base.AccountView`, and small builders for positions and orders.

Money figures are USD (:class:`Money`), times UTC ns. ``day_net`` and ``equity`` are derived as the spec defines them
(``day_realized_net + unrealized``, ``balance + unrealized``); ``day_peak_*`` are balances (the day's highs).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from propdesk.model.contracts import spec
from propdesk.model.enums import Side
from propdesk.model.identifiers import AccountId, ClientOrderId
from propdesk.model.orders import Order, OrderStatus, OrderType
from propdesk.model.price import Money, Price
from propdesk.model.symbology import parse_symbol
from propdesk.risk.rules.base import OpenPosition

CT = ZoneInfo("America/Chicago")


def ct_ns(y: int, mo: int, d: int, h: int, mi: int = 0, s: int = 0) -> int:
    """Chicago wall time as UTC ns."""
    return int(datetime(y, mo, d, h, mi, s, tzinfo=CT).timestamp()) * 1_000_000_000


# Wednesday 2025-03-05, 10:00 CT; the trading day started Tuesday 17:00 CT and the next starts Wednesday 17:00 CT.
NOW = ct_ns(2025, 3, 5, 10)
DAY_START = ct_ns(2025, 3, 4, 17)
NEXT_DAY_START = ct_ns(2025, 3, 5, 17)
SEC = 1_000_000_000

_ids = itertools.count(1)


def usd(x: str | int) -> Money:
    """Shorthand for :meth:`Money.of`."""
    return Money.of(x)


def pos(
    symbol: str, qty: int, *, upnl: str | None = None, opened: int = NOW - 600 * SEC, avg: str = "5000"
) -> OpenPosition:
    """An open position of ``qty`` signed contracts."""
    root = parse_symbol(symbol, NOW).root
    return OpenPosition(
        symbol=symbol,
        root=root,
        signed_qty=qty,
        avg_price=Price.of(avg),
        unrealized=None if upnl is None else Money.of(upnl),
        weight=float(spec(root).topstepx_mini_weight),
        opened_ts_ns=opened,
    )


def order(
    symbol: str,
    side: Side,
    qty: int,
    *,
    kind: OrderType = OrderType.LIMIT,
    status: OrderStatus = OrderStatus.ACCEPTED,
    parent: str | None = None,
    linked: tuple[str, ...] = (),
) -> Order:
    """An order (working by default; ``status=INITIALIZED`` for a new order at the gate)."""
    coid = ClientOrderId(f"O-{next(_ids)}")
    return Order(
        client_order_id=coid,
        account_id=AccountId(1),
        symbol=symbol,
        side=side,
        qty=qty,
        order_type=kind,
        limit_price=Price.of("5000") if kind in (OrderType.LIMIT, OrderType.STOP_LIMIT) else None,
        stop_price=Price.of("4990") if kind in (OrderType.STOP, OrderType.STOP_LIMIT) else None,
        trail_ticks=8 if kind is OrderType.TRAILING_STOP else None,
        status=status,
        parent_id=None if parent is None else ClientOrderId(parent),
        linked_ids=tuple(ClientOrderId(x) for x in linked),
    )


def new(symbol: str, side: Side, qty: int, **kw: object) -> Order:
    """A new order at the pre-trade gate (INITIALIZED)."""
    return order(symbol, side, qty, status=OrderStatus.INITIALIZED, **kw)  # type: ignore[arg-type]


@dataclass
class StubView:
    """An :class:`AccountView` with settable fields (defaults: a flat 50K account at ``NOW``)."""

    now_ns: int = NOW
    trading_date: date = date(2025, 3, 5)
    day_start_ns: int = DAY_START
    next_day_start_ns: int = NEXT_DAY_START
    start_balance: Money = field(default_factory=lambda: usd(50000))
    balance: Money = field(default_factory=lambda: usd(50000))
    sod_balance: Money = field(default_factory=lambda: usd(50000))
    day_realized_net: Money = field(default_factory=Money.zero)
    unrealized: Money = field(default_factory=Money.zero)
    day_peak_realized: Money = field(default_factory=lambda: usd(50000))
    day_peak_equity: Money = field(default_factory=lambda: usd(50000))
    mll_floor: Money | None = field(default_factory=lambda: usd(48000))
    trades_today: int = 0
    trades_week: int = 0
    contracts_today: int = 0
    consecutive_losses: int = 0
    last_loss_ts_ns: int | None = None
    daily_net_history: Sequence[tuple[date, Money]] = ()
    positions: Sequence[OpenPosition] = ()
    working_orders: Sequence[Order] = ()
    stop_risks: dict[str, Money] = field(default_factory=dict)
    """``stop_risk`` by client order id (absent: no stop attached, zero)."""

    @property
    def day_net(self) -> Money:
        return self.day_realized_net + self.unrealized

    @property
    def equity(self) -> Money:
        return self.balance + self.unrealized

    def position_qty(self, symbol: str) -> int:
        return sum(p.signed_qty for p in self.positions if p.symbol == symbol)

    def weight(self, symbol: str) -> float:
        return float(spec(self.root_of(symbol)).topstepx_mini_weight)

    def root_of(self, symbol: str) -> str:
        return str(parse_symbol(symbol, self.now_ns).root)

    def stop_risk(self, order: Order) -> Money:
        return self.stop_risks.get(order.client_order_id, Money.zero())
