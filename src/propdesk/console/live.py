"""The console of ``propdesk run --broker projectx``: a Rich ``Live`` dashboard over a
:class:`~propdesk.sessions.live.LiveSession`, plain log lines for CI and pipes, the end-of-run summary, and
:func:`run_live_command` (what the CLI calls).

The dashboard follows the replay console (:mod:`propdesk.console.replay`): header (account, contract, strategy,
connection and risk state, wall time), account (last price, balance, equity, realized/unrealized, day PnL, fills),
positions, working orders and recent events, with the same event wording
(:func:`propdesk.console.replay.describe_event`). The account, positions, working orders, risk state, strategy and the
orders behind the events are read from the session's :class:`~propdesk.node.desk.Desk`; the connection counters and
bars from the session. Redraws run as an asyncio task on the session's own loop, so the desk is read between events,
never mid-update.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from propdesk.console.display import DeskReader, plain_writer, run_under_live, summary_table
from propdesk.console.replay import (
    QUIET_EVENTS,
    REFRESH_PER_S,
    describe_event,
    event_line,
    fmt_ct,
    fmt_usd,
    risk_status_panel,
    strategy_label,
    summary_account_rows,
)
from propdesk.console.risk import risk_outcome_tables
from propdesk.core.errors import ConfigError
from propdesk.model.events import OrderEvent
from propdesk.model.positions import PositionClosed, PositionEvent, PositionOpened
from propdesk.model.price import Money
from propdesk.node.desk import AccountSummary, OrderView
from propdesk.node.desk_views import flat_orders
from propdesk.risk.events import TradingStateChanged
from propdesk.risk.outcomes import plain_reason
from propdesk.sessions.live import (
    CachedHistory,
    HistoryProvider,
    LiveOptions,
    LiveSession,
    LiveSummary,
    projectx_settings,
)
from propdesk.sessions.live import resolve_account as _resolve_account

if TYPE_CHECKING:
    from propdesk.node.journaling import NodeJournal

__all__ = [
    "render_live_dashboard",
    "render_live_summary",
    "run_live_command",
    "run_live_plain",
    "run_live_with_console",
]


def _pnl(m: Money) -> Text:
    return Text(fmt_usd(m, sign=True), style="green" if m.cents > 0 else "red" if m.cents < 0 else "")


def _order_of(desk: DeskReader, event: object) -> OrderView | None:
    return desk.order(event.client_order_id) if isinstance(event, OrderEvent) else None


def render_live_dashboard(session: LiveSession) -> RenderableType:
    """The dashboard of ``session`` as it is now (see the module docstring): the account, positions, working orders,
    risk and strategy from the session's :class:`~propdesk.node.desk.Desk`, the connection counters and bars from the
    session."""
    desk = session.desk
    pnl = desk.pnl()[0]
    try:
        account: AccountSummary | None = desk.accounts()[0]
    except Exception:  # a display must not fail the session (the risk panel says why)
        account = None
    connected = "[green]connected[/]" if account is not None and account.connected else "[red]disconnected[/]"
    risk_panel = risk_status_panel(desk)
    state = "?" if account is None else account.trading_state
    risk = "" if risk_panel is None else f"  risk [bold]{state}[/]"
    head = Table.grid(expand=True, padding=(0, 2))
    head.add_column(ratio=1)
    head.add_column(justify="right")
    head.add_row(
        f"[bold]propdesk run[/] projectx {session.account_name or session.account_id}  "
        f"{session.symbol or '-'}  strategy {strategy_label(desk, session.strategy)}",
        f"{connected}{risk}",
    )
    last = fmt_ct(session.last_ts_ns) if session.last_ts_ns is not None else "waiting for the first live bar"
    head.add_row(
        f"last bar [bold]{last}[/]  bars {session.bars} (+{session.warmup_bars} warm-up)",
        f"drops {session.disconnects}  reconciles {session.reconciles}  wall {session.elapsed_s:.1f}s",
    )
    acct = Table.grid(padding=(0, 2))
    for _ in range(4):
        acct.add_column()
    price = "-" if session.last_price is None else f"{session.last_price:.2f}"
    acct.add_row("last price", Text(price, style="bold"), "balance", fmt_usd(pnl.balance_usd))
    acct.add_row("realized", _pnl(pnl.realized_usd), "equity", fmt_usd(pnl.equity_usd))
    acct.add_row("unrealized", _pnl(pnl.unrealized_usd), "day PnL", _pnl(pnl.day_net_usd))
    acct.add_row("fills", str(len(session.fills)), "fees", fmt_usd(pnl.fees_usd))
    pos = Table(expand=True, show_edge=False, box=None)
    for col in ("symbol", "qty", "avg price", "realized"):
        pos.add_column(col)
    for p in desk.all_positions():
        pos.add_row(
            p.symbol,
            f"{p.signed_qty:+d}" if p.signed_qty else "0",
            "-" if p.avg_price is None or not p.signed_qty else str(p.avg_price),
            _pnl(p.realized_pnl),
        )
    orders = Table(expand=True, show_edge=False, box=None)
    for col in ("order", "side", "qty", "type", "status", "tag"):
        orders.add_column(col)
    working = flat_orders(desk.working_orders())
    for o in working[-8:]:
        orders.add_row(str(o.client_order_id), o.side, str(o.qty - o.filled_qty), o.order_type, o.status, o.tag)
    events = Table(expand=True, show_edge=False, box=None)
    events.add_column("time (CT)", no_wrap=True)
    events.add_column("event", no_wrap=True)
    events.add_column("detail", ratio=1)
    for ev in list(session.recent):
        kind, detail = describe_event(ev, _order_of(desk, ev))
        events.add_row(fmt_ct(int(getattr(ev, "ts_event_ns", 0))), kind, Text(detail))  # a [tag] is not markup
    top = Table.grid(expand=True, padding=(0, 1))
    top.add_column(ratio=2)
    top.add_column(ratio=3)
    top.add_row(Panel(acct, title="account"), Panel(pos, title="positions"))
    risk_panels: list[RenderableType] = [] if risk_panel is None else [risk_panel]
    return Group(
        Panel(head, border_style="blue"),
        top,
        *risk_panels,
        Panel(orders, title=f"working orders ({len(working)})"),
        Panel(events, title="recent events"),
    )


async def run_live_with_console(
    session: LiveSession, console: Console, *, refresh_per_s: float = REFRESH_PER_S, handle_sigint: bool = True
) -> LiveSummary:
    """Run ``session`` under a live dashboard on ``console``; returns the summary."""
    return await run_under_live(
        console,
        lambda: render_live_dashboard(session),
        lambda: session.run(handle_sigint=handle_sigint),
        refresh_per_s=refresh_per_s,
    )


async def run_live_plain(
    session: LiveSession, write: Callable[[str], None], *, handle_sigint: bool = True
) -> LiveSummary:
    """Run ``session`` writing plain lines: fills, order outcomes, position opens/closes and risk state changes."""
    write(
        f"live on ProjectX account {session.account_name or session.account_id} with {session.strategy.name} "
        f"({session.timeframe} bars)"
    )

    def on_event(event: object) -> None:
        if isinstance(event, TradingStateChanged):
            write(
                f"{fmt_ct(event.ts_ns)}  RISK        {event.old.name} -> {event.new.name}: "
                f"{'; '.join(plain_reason(r) for r in event.reasons) or 'no rule or condition holds'}"
            )
            return
        if isinstance(event, QUIET_EVENTS):
            return
        if isinstance(event, PositionEvent) and not isinstance(event, PositionOpened | PositionClosed):
            return
        write(event_line(event, _order_of(session.desk, event)))

    session.add_event_listener(on_event)
    return await session.run(handle_sigint=handle_sigint)


def render_live_summary(summary: LiveSummary) -> RenderableType:
    """The end-of-session summary as a Rich table."""
    status = "interrupted (Ctrl-C)" if summary.interrupted else "done" if summary.completed else "stopped"
    rows: list[tuple[str, str | Text]] = [
        ("account", f"{summary.account_name or summary.account_id} ({summary.broker})"),
        ("contract / strategy", f"{summary.symbol} / {summary.strategy}"),
        ("status", status),
        ("bars", f"{summary.bars} live (+{summary.warmup_bars} warm-up)"),
        ("wall time", f"{summary.wall_s:.2f}s"),
        ("fills", str(len(summary.fills))),
        ("round trips", str(len(summary.trips))),
        *summary_account_rows(summary),
        ("connection", f"{summary.disconnects} drops, {summary.reconciles} clean reconciles"),
    ]
    if summary.trading_state is not None:
        rows.append(("risk state", summary.trading_state))
    if summary.mll_floor is not None:
        rows.append(("MLL floor", f"{summary.mll_floor.as_decimal():,} USD ({summary.mll_floor_source})"))
    table = summary_table("live run summary", rows)
    if summary.risk is None:
        return table
    return Group(table, risk_outcome_tables(summary.risk, end_ns=summary.last_ts_ns))


def run_live_command(
    *,
    options: LiveOptions,
    account: str | None,
    api_base: str | None,
    user_hub: str | None,
    market_hub: str | None,
    config_path: Path | None,
    bar_cache: bool,
    out: Console,
    plain: bool,
    journal: NodeJournal | None = None,
) -> LiveSummary:
    """``propdesk run --broker projectx``: settings (hosts from options/config, credentials from the environment),
    the account, the journal's bar cache (``bar_cache``: the database of ``$PROPDESK_DATABASE_URL`` / the config
    file / the SQLite file, migrated on first use), then the session under the dashboard or plain lines. With
    ``journal`` the session restores the node from it and reconciles before trading (:class:`LiveSession`).

    Raises:
        ConfigError: missing credentials (names the variable), a bad option, an unknown account.
        ProjectXError: login refused, the API unreachable, the hubs not connecting.
    """
    if options.duration_s is not None and options.duration_s <= 0:
        raise ConfigError(f"--duration must be > 0 seconds, not {options.duration_s:g}")
    if options.max_bars is not None and options.max_bars <= 0:
        raise ConfigError(f"--bars must be > 0, not {options.max_bars}")
    settings = projectx_settings(api_base=api_base, user_hub=user_hub, market_hub=market_hub, config_path=config_path)

    async def main() -> LiveSummary:
        account_id, name, balance = await _resolve_account(settings, account)
        session = LiveSession(
            options, settings, account_id=account_id, account_name=name, balance=balance, journal=journal
        )
        engine = None
        if bar_cache:
            from propdesk.node.journaling import journal_url  # noqa: PLC0415
            from propdesk.storage.cache import BarCache  # noqa: PLC0415 - the database only when asked
            from propdesk.storage.db import create_engine_for  # noqa: PLC0415
            from propdesk.storage.migrate import upgrade_engine  # noqa: PLC0415
            from propdesk.storage.repositories import Repository  # noqa: PLC0415

            engine = create_engine_for(journal_url(None, config_path=config_path))
            await upgrade_engine(engine)
            history: HistoryProvider = CachedHistory(BarCache(Repository(engine)), session.broker, now_ns=time.time_ns)
            session.history = history
        try:
            if plain:
                return await run_live_plain(session, plain_writer(out))
            return await run_live_with_console(session, out)
        finally:
            if engine is not None:
                await engine.dispose()

    return asyncio.run(main())
