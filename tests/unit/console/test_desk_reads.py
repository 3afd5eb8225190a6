"""The consoles read the account, positions, working orders, risk, strategy and fills from the session's Desk: each
view drawn over a :class:`~tests.stubs.desk.StubDesk` shows the stub's figures (which no node would report), and the
dashboards of a replay and a live session with their desk swapped for the stub show them too."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console

from propdesk.backtest.cli_support import parse_window
from propdesk.console.live import render_live_dashboard
from propdesk.console.replay import (
    account_panel,
    desk_risk_status,
    orders_panel,
    positions_panel,
    render_dashboard,
    risk_status_panel,
    strategy_label,
)
from propdesk.model.commands import StrategyState
from propdesk.node.desk import StrategyView
from propdesk.sessions.replay import RunOptions, RunSession
from propdesk.strategies.registry import build_strategy
from tests.conftest import ES_1MIN, resolve_shared
from tests.stubs.desk import StubDesk


def text_of(renderable: object, width: int = 130) -> str:
    con = Console(record=True, width=width, color_system=None)
    con.print(renderable)
    return con.export_text()


def test_account_panel_shows_the_desks_pnl() -> None:
    desk = StubDesk()
    text = text_of(account_panel(desk, 6712.75))
    assert "6712.75" in text and "$51,234.50" in text and "$51,334.50" in text  # last price, balance, equity
    assert "+$259.50" in text and "+$100.00" in text and "-$50.00" in text and "$25.00" in text
    assert "fills 0" in " ".join(text.split())
    assert {"pnl", "fills"} <= set(desk.calls)


def test_positions_panel_lists_open_and_flat_positions_of_the_desk() -> None:
    text = text_of(positions_panel(StubDesk()))
    assert "ESZ5" in text and "+2" in text and "6700.25" in text and "+$184.50" in text
    assert "NQZ5" in text and "+$75.00" in text  # flat, its realized PnL kept
    assert "no position yet" in text_of(positions_panel(StubDesk(held=[])))


def test_orders_panel_lists_bracket_children_after_their_entry() -> None:
    text = text_of(orders_panel(StubDesk()))
    assert "working orders (2)" in text
    entry, child = text.index("stub-entry-1"), text.index("stub-stop-2")
    assert entry < child and "6690.5" in text and "6680.25" in text
    assert "no working orders" in text_of(orders_panel(StubDesk(orders=[])))


def test_risk_panel_reads_the_account_and_trading_day() -> None:
    desk = StubDesk()
    status = desk_risk_status(desk)
    assert status == {
        "state": "REDUCING",
        "reasons": ["R5: stub position limit reached"],
        "equity_usd": "51334.50",
        "mll_floor_usd": "49000.00",
        "daily_loss_left_usd": "950.00",
        "daily_loss_rule": "R3",
        "next_reset_ns": desk.day.next_reset_ns,
    }
    text = text_of(risk_status_panel(desk))
    assert "REDUCING" in text and "$49,000.00" in text and "$950.00 (R3)" in text and "2025-10-15 17:00 CT" in text
    no_risk = StubDesk(risk=False)
    assert desk_risk_status(no_risk) is None and risk_status_panel(no_risk) is None


def test_strategy_label_prefers_the_desks_strategy() -> None:
    fallback = build_strategy("sma_cross", {})
    assert strategy_label(StubDesk(), fallback) == "[bold]sma_cross[/] (sma_cross)"
    view = StrategyView(
        tag="desk-tag",
        name="desk_name",
        symbol="ESZ5",
        state=StrategyState.RUNNING,
        params={},
        version=1,
        live=frozenset(),
    )
    assert strategy_label(StubDesk(views=[view]), fallback, sep="  ") == "[bold]desk_name[/]  (desk-tag)"


def test_the_replay_dashboard_reads_the_session_desk() -> None:
    start_ns, end_ns = parse_window("2025-10-01", "2025-10-02")
    options = RunOptions(
        replay=resolve_shared(ES_1MIN), strategy="sma_cross", speed=None, start_ns=start_ns, end_ns=end_ns
    )
    session = RunSession(options)
    session.desk = StubDesk()  # type: ignore[assignment]
    text = text_of(render_dashboard(session))
    assert "$51,234.50" in text and "NQZ5" in text and "stub-stop-2" in text and "REDUCING" in text


@dataclass
class LiveLike:
    """What the live dashboard reads of a live session besides its desk."""

    desk: Any
    strategy: Any = field(default_factory=lambda: build_strategy("sma_cross", {}))
    symbol: str = "ESZ5"
    account_name: str = "stub account"
    account_id: int = 7
    last_ts_ns: int | None = None
    last_price: float | None = 6712.75
    bars: int = 3
    warmup_bars: int = 50
    disconnects: int = 1
    reconciles: int = 2
    elapsed_s: float = 1.0
    fills: list[Any] = field(default_factory=list)
    recent: deque[object] = field(default_factory=deque)


def test_the_live_dashboard_reads_the_session_desk() -> None:
    text = text_of(render_live_dashboard(LiveLike(StubDesk())))  # type: ignore[arg-type]
    assert "connected" in text and "risk REDUCING" in text
    assert "$51,234.50" in text and "+$259.50" in text and "NQZ5" in text and "+$75.00" in text
    assert "working orders (2)" in text and "stub-stop-2" in text and "$49,000.00" in text
    no_risk = text_of(render_live_dashboard(LiveLike(StubDesk(risk=False))))  # type: ignore[arg-type]
    assert "risk REDUCING" not in no_risk and "MLL floor" not in no_risk
