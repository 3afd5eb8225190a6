"""``StubDesk``: fixed answers to the :class:`~propdesk.node.desk.Desk` queries the consoles and session summaries
read (:class:`propdesk.console.display.DeskReader`, plus ``daily_stats`` and ``audit`` for the risk daemon's status).

Every figure is distinct from what a fresh node would report (balance $51,234.50, a flat NQZ5 position with realized
+$75.00, an open ESZ5 position of +2 @ 6700.25, a working bracket entry with a stop child, state REDUCING), so a view
that shows them read them from the desk. The attributes are public: a test changes what the desk answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal

from propdesk.model.events import OrderFilled
from propdesk.model.identifiers import AccountId, ClientOrderId
from propdesk.model.positions import PositionSnapshot
from propdesk.model.price import Money, Price
from propdesk.model.records import AuditEntry, Lockout
from propdesk.node.desk import AccountSummary, OrderView, RuleStatus, StrategyView
from propdesk.node.desk_views import PnlTotals, TradingDay
from propdesk.risk.engine import DayClose
from propdesk.risk.outcomes import RiskOutcomes

__all__ = ["STUB_NOW_NS", "StubDesk"]

STUB_NOW_NS = 1_760_540_400 * 10**9
"""2025-10-15 15:00 UTC (10:00 CT): the stub's clock."""


def _position(symbol: str, qty: int, avg: str | None, realized: str, unrealized: str | None) -> PositionSnapshot:
    return PositionSnapshot(
        symbol=symbol,
        account_id=AccountId(7),
        tag=None,
        signed_qty=qty,
        avg_price=None if avg is None else Price.of(avg),
        realized_pnl=Money.of(realized),
        fees=Money(0),
        unrealized_pnl=None if unrealized is None else Money.of(unrealized),
        opened_ts_ns=STUB_NOW_NS,
        last_ts_ns=STUB_NOW_NS,
        fill_count=1,
    )


def _order(cid: str, side: str, order_type: str, qty: int, *, parent: str | None = None, **prices: str) -> OrderView:
    return OrderView(
        client_order_id=ClientOrderId(cid),
        symbol="ESZ5",
        side=side,
        order_type=order_type,
        qty=qty,
        filled_qty=0,
        limit_price=Price.of(prices["limit"]) if "limit" in prices else None,
        stop_price=Price.of(prices["stop"]) if "stop" in prices else None,
        status="accepted",
        tag="stubbed",
        parent_id=None if parent is None else ClientOrderId(parent),
    )


def _default_orders() -> list[OrderView]:
    entry = _order("stub-entry-1", "BUY", "limit", 3, limit="6690.5")
    child = _order("stub-stop-2", "SELL", "stop", 3, parent="stub-entry-1", stop="6680.25")
    return [replace(entry, children=(child,))]


@dataclass
class StubDesk:
    """The stub (see the module docstring); ``risk=False`` answers as a desk without a risk engine."""

    risk: bool = True
    account: AccountSummary = field(
        default_factory=lambda: AccountSummary(
            account_id=7,
            balance_usd=Money.of("51234.50"),
            equity_usd=Money.of("51334.50"),
            day_realized_net_usd=Money.of("-150"),
            unrealized_usd=Money.of("100"),
            day_net_usd=Money.of("-50"),
            mll_floor_usd=Money.of("49000"),
            mll_distance_usd=Money.of("2334.50"),
            daily_loss_left_usd=Money.of("950"),
            daily_loss_rule="R3",
            trades_today=4,
            consistency_share=Decimal("0.40"),
            consistency_limit=Decimal("0.50"),
            trading_state="REDUCING",
            state_reasons=("R5: stub position limit reached",),
            lockouts=(
                Lockout(
                    account=AccountId(7),
                    rule_id="R3",
                    reason="stub lockout",
                    set_at_ns=STUB_NOW_NS,
                    expires_at_ns=STUB_NOW_NS + 7 * 3600 * 10**9,
                ),
            ),
            connected=True,
            ts_ns=STUB_NOW_NS,
        )
    )
    totals: PnlTotals = field(
        default_factory=lambda: PnlTotals(
            account_id=7,
            starting_balance_usd=Money.of("51000"),
            realized_usd=Money.of("259.50"),
            fees_usd=Money.of("25"),
            realized_net_usd=Money.of("234.50"),
            unrealized_usd=Money.of("100"),
            balance_usd=Money.of("51234.50"),
            equity_usd=Money.of("51334.50"),
            day_net_usd=Money.of("-50"),
        )
    )
    held: list[PositionSnapshot] = field(
        default_factory=lambda: [
            _position("ESZ5", 2, "6700.25", "184.50", "100"),
            _position("NQZ5", 0, None, "75", None),
        ]
    )
    orders: list[OrderView] = field(default_factory=_default_orders)
    fill_list: list[OrderFilled] = field(default_factory=list)
    rules: list[RuleStatus] = field(
        default_factory=lambda: [
            RuleStatus(
                rule_id="R5",
                firm=True,
                describe="R5 stub max position",
                state="REDUCE_ONLY",
                reason="stub position limit reached",
                used_fraction=1.0,
                value=None,
                limit=None,
                headroom=None,
                last_decision="",
            )
        ]
    )
    day: TradingDay = field(
        default_factory=lambda: TradingDay(
            trading_date=date(2025, 10, 15),
            next_reset_ns=STUB_NOW_NS + 7 * 3600 * 10**9,  # 17:00 CT
            next_flat_ns=STUB_NOW_NS + 5 * 3600 * 10**9 + 5 * 60 * 10**9,  # 15:05 CT
            preset="stub-preset",
            conditions={"stale:ESZ5": "no quote for 9 s"},
        )
    )
    views: list[StrategyView] = field(default_factory=list)
    entries: list[AuditEntry] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    """The queries asked, in order."""

    def accounts(self) -> list[AccountSummary]:
        self.calls.append("accounts")
        return [self.account]

    def pnl(self) -> list[PnlTotals]:
        self.calls.append("pnl")
        return [self.totals]

    def positions(self) -> list[PositionSnapshot]:
        self.calls.append("positions")
        return [p for p in self.held if p.signed_qty]

    def all_positions(self) -> list[PositionSnapshot]:
        self.calls.append("all_positions")
        return list(self.held)

    def working_orders(self) -> list[OrderView]:
        self.calls.append("working_orders")
        return list(self.orders)

    def order(self, client_order_id: ClientOrderId) -> OrderView | None:
        self.calls.append("order")
        for o in self.orders:
            for v in (o, *o.children):
                if v.client_order_id == client_order_id:
                    return v
        return None

    def fills(self) -> list[OrderFilled]:
        self.calls.append("fills")
        return list(self.fill_list)

    def risk_status(self) -> list[RuleStatus]:
        self.calls.append("risk_status")
        return list(self.rules) if self.risk else []

    def trading_day(self) -> TradingDay | None:
        self.calls.append("trading_day")
        return self.day if self.risk else None

    def strategies(self) -> list[StrategyView]:
        self.calls.append("strategies")
        return list(self.views)

    def risk_outcomes(self) -> RiskOutcomes | None:
        self.calls.append("risk_outcomes")
        return RiskOutcomes() if self.risk else None

    def daily_stats(self) -> list[DayClose]:
        self.calls.append("daily_stats")
        today = DayClose(
            trading_date=self.day.trading_date,
            net_pnl=Money.of("-150"),
            balance=self.account.balance_usd,
            mll_floor=self.account.mll_floor_usd,
            trades=self.account.trades_today,
            contracts=6,
            complete=False,
        )
        return [today] if self.risk else []

    def audit(self, *, point: str | None = None, limit: int = 100) -> list[AuditEntry]:
        self.calls.append("audit")
        found = [e for e in self.entries if point is None or e.point == point]
        return found[-limit:] if limit > 0 else []
