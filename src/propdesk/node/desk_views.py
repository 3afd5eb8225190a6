"""Values returned by the :class:`~propdesk.node.desk.Desk` queries the consoles and session summaries read
(:meth:`Desk.pnl <propdesk.node.desk.Desk.pnl>`, :meth:`Desk.trading_day <propdesk.node.desk.Desk.trading_day>`),
beside the ones defined with the desk itself (``AccountSummary``, ``OrderView``, ``RuleStatus``, ``StrategyView``).

Frozen; money as :class:`~propdesk.model.price.Money` (USD, exact), times UTC ns.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from propdesk.model.price import Money

if TYPE_CHECKING:
    from propdesk.node.desk import OrderView

__all__ = ["PnlTotals", "TradingDay", "flat_orders"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PnlTotals:
    """One account's PnL since its node started, from the portfolio (the fills the node saw), in USD.

    Attributes:
        account_id: the account. starting_balance_usd: the balance before the first fill the node saw.
        realized_usd: realized PnL gross of fees. fees_usd: fees (commissions and exchange fees).
        realized_net_usd: realized minus fees. unrealized_usd: open PnL at the current marks (unmarked count 0).
        balance_usd: starting balance + realized net. equity_usd: balance + unrealized.
        day_net_usd: today's realized net + unrealized (the portfolio's day, reset at its session roll).
    """

    account_id: int
    starting_balance_usd: Money
    realized_usd: Money
    fees_usd: Money
    realized_net_usd: Money
    unrealized_usd: Money
    balance_usd: Money
    equity_usd: Money
    day_net_usd: Money


@dataclass(frozen=True, slots=True, kw_only=True)
class TradingDay:
    """The risk engine's trading day and clock-driven events.

    Attributes:
        trading_date: the CME trading date now (it starts at the previous 17:00 America/Chicago session roll).
        next_reset_ns: the next session roll, when day lockouts and day counters reset (UTC ns; ``None`` unknown).
        next_flat_ns: the next flat time (R11 flatten; UTC ns; ``None`` without one).
        preset: the risk preset's name (``topstep-50k-combine``), ``None`` without one.
        conditions: the guard's fail-closed conditions now (``store``, ``connection``, ``stale:<symbol>`` ... ->
            reason).
    """

    trading_date: date
    next_reset_ns: int | None
    next_flat_ns: int | None
    preset: str | None
    conditions: dict[str, str]


def flat_orders(views: Iterable[OrderView]) -> list[OrderView]:
    """Working orders as one list: each top-level order followed by its bracket children (``Desk.working_orders``
    nests a child under its open entry)."""
    out: list[OrderView] = []
    for v in views:
        out.append(v)
        out.extend(v.children)
    return out
