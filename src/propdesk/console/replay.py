"""The live console of ``propdesk run``: a Rich ``Live`` dashboard over a :class:`~propdesk.sessions.replay.RunSession`,
the plain log-line mode for CI and pipes, and the end-of-run summary.

The dashboard (:func:`render_dashboard`), redrawn about four times a second by :func:`run_with_console`:

* header: contract, strategy, replay time in America/Chicago (CT, the exchange's time) and UTC, speed, progress %
  (bars played / bars to play) and wall time;
* last price (the last bar's close) and the account: balance, equity, day PnL (since the last 17:00 CT roll),
  fees, realized and unrealized PnL;
* positions (symbol, signed qty, average price, unrealized, realized) and working orders;
* recent events: the last order and position events from the bus (``events.order.**``, ``events.position.**``).

The account, positions, working orders, risk, strategy and the orders behind the events are read from the session's
:class:`~propdesk.node.desk.Desk` (:class:`~propdesk.console.display.DeskReader`), never from the node; the header's
replay figures come from the session's feed.

Redraws run as an asyncio task on the replay's own loop (the feed yields to the loop between records), never from
a thread, so the node's state is read between records, never mid-update.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from propdesk.console.display import DeskReader, cancel_and_wait, run_under_live, summary_table
from propdesk.console.risk import risk_outcome_tables, risk_panel
from propdesk.core.timefmt import CT, ns_to_datetime
from propdesk.model.enums import Side
from propdesk.model.events import (
    OrderAccepted,
    OrderCanceled,
    OrderDenied,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderSubmitted,
    OrderUpdated,
)
from propdesk.model.positions import PositionClosed, PositionEvent, PositionOpened
from propdesk.model.price import Money
from propdesk.node.desk import OrderView
from propdesk.node.desk_views import flat_orders
from propdesk.risk.outcomes import plain_reason
from propdesk.sessions.common import AccountFigures
from propdesk.sessions.replay import RunSession, RunSummary
from propdesk.strategies.base import Strategy

__all__ = [
    "CT",
    "REFRESH_PER_S",
    "SummaryFigures",
    "account_panel",
    "describe_event",
    "desk_risk_status",
    "event_line",
    "fmt_ct",
    "fmt_usd",
    "fmt_utc",
    "orders_panel",
    "positions_panel",
    "render_dashboard",
    "render_summary",
    "risk_status_panel",
    "run_plain",
    "run_with_console",
    "strategy_label",
    "summary_account_rows",
]

"""The exchange's time zone (CME Globex)."""

REFRESH_PER_S = 4.0
"""Dashboard redraws per wall second."""

QUIET_EVENTS = (OrderSubmitted, OrderAccepted, OrderUpdated)
"""Order events the plain log mode leaves out (every order has them; fills and outcomes are what matter)."""


def _dt(ts_ns: int, tz: ZoneInfo | None = None) -> datetime:
    return ns_to_datetime(ts_ns, UTC if tz is None else tz)


def fmt_ct(ts_ns: int, *, date: bool = True) -> str:
    """UTC ns as America/Chicago wall time: ``2025-10-01 08:31:00 CT`` (``08:31:00`` with ``date=False``)."""
    d = _dt(ts_ns, CT)
    return d.strftime("%Y-%m-%d %H:%M:%S CT" if date else "%H:%M:%S")


def fmt_utc(ts_ns: int) -> str:
    """UTC ns as ``13:31:00 UTC`` (whole seconds)."""
    return _dt(ts_ns).strftime("%H:%M:%S UTC")


def fmt_usd(m: Money, *, sign: bool = False) -> str:
    """``$52,212.50``; with ``sign`` ``+$112.50`` / ``-$12.50``."""
    v = m.as_decimal()
    body = f"${abs(v):,.2f}"
    if v < 0:
        return "-" + body
    return ("+" + body) if sign else body


def _pnl_text(m: Money) -> Text:
    style = "green" if m.cents > 0 else "red" if m.cents < 0 else ""
    return Text(fmt_usd(m, sign=True), style=style)


def _side(side: Side) -> str:
    return "BUY" if side is Side.BUY else "SELL"


def describe_event(event: object, order: OrderView | None = None) -> tuple[str, str]:
    """A short ``(kind, detail)`` for an order or position event, e.g. ``("FILLED", "BUY 1 ESZ5 @ 6712.25")``.

    ``order`` (the order the event is about, when known) fills in side, quantity and symbol for events that lack
    them.
    """
    if isinstance(event, PositionEvent):
        p = event.position
        if isinstance(event, PositionClosed) or p.signed_qty == 0:
            return "POS CLOSED", f"{p.symbol} flat, realized {fmt_usd(event.fill_realized_pnl, sign=True)}"
        kind = "POS OPENED" if isinstance(event, PositionOpened) else "POS CHANGED"
        side = "LONG" if p.signed_qty > 0 else "SHORT"
        return kind, f"{side} {abs(p.signed_qty)} {p.symbol} @ {p.avg_price}"
    if isinstance(event, OrderFilled):
        tag = f" [{event.tag}]" if event.tag else ""
        fee = f" fee {fmt_usd(event.fee)}" if event.fee.cents else ""
        return "FILLED", f"{_side(event.side)} {event.qty} {event.symbol} @ {event.price}{fee}{tag}"
    if isinstance(event, OrderEvent):
        kind = type(event).__name__.removeprefix("Order").upper()
        what = (
            f"{order.side} {order.qty} {order.symbol} {order.order_type}"
            if order is not None
            else str(event.client_order_id)
        )
        reason = ""
        if isinstance(event, OrderRejected | OrderDenied | OrderCanceled) and event.reason:
            reason = f": {plain_reason(event.reason)}"
        if isinstance(event, OrderExpired):
            reason = " (end of session)"
        return kind, f"{what}{reason}"
    return type(event).__name__, ""


def event_line(event: object, order: OrderView | None = None) -> str:
    """One plain log line: ``2025-10-01 08:31:00 CT  FILLED      BUY 1 ESZ5 @ 6712.25``."""
    ts = getattr(event, "ts_event_ns", 0)
    kind, detail = describe_event(event, order)
    return f"{fmt_ct(int(ts))}  {kind:<11} {detail}"


def _order_of(desk: DeskReader, event: object) -> OrderView | None:
    if isinstance(event, OrderEvent):
        return desk.order(event.client_order_id)
    return None


# ---------------------------------------------------------------------------------------------------------- dashboard


def strategy_label(desk: DeskReader, fallback: Strategy, *, sep: str = " ") -> str:
    """``[bold]name[/]{sep}(tag)`` of the desk's first strategy (Rich markup), or of ``fallback`` while the desk has
    none yet (a live session adds its strategy when it runs)."""
    views = desk.strategies()
    name, tag = (fallback.name, fallback.tag) if not views else (views[0].name, views[0].tag)
    return f"[bold]{name}[/]{sep}({tag})"


def _header(session: RunSession) -> RenderableType:
    prog = session.progress()
    speed = "max" if session.feed.speed is None else f"{session.feed.speed:g}x"
    ts = prog.last_ts_ns
    when = f"{fmt_ct(ts)}  ({fmt_utc(ts)})" if ts is not None else "waiting for the first bar"
    frac = prog.fraction
    pct = "" if frac is None else f"{100 * frac:5.1f}%  ({prog.records:,}/{prog.total:,} bars)"
    state = (
        "[red]interrupted[/]"
        if session.interrupted
        else "[green]done[/]"
        if session.feed.finished
        else "[yellow]stopped[/]"
        if session.feed.stopped
        else "[cyan]playing[/]"
    )
    grid = Table.grid(expand=True, padding=(0, 2))
    grid.add_column(ratio=1)
    grid.add_column(justify="right")
    grid.add_row(
        f"[bold]propdesk run[/]  {session.symbol}  strategy {strategy_label(session.desk, session.strategy, sep='  ')}",
        f"speed {speed}  {state}",
    )
    grid.add_row(f"replay time [bold]{when}[/]", f"{pct}  wall {session.elapsed_s:.1f}s")
    return Panel(grid, border_style="blue")


def account_panel(desk: DeskReader, last_price: float | None) -> RenderableType:
    """The account panel: the last price (points) and the desk's PnL (:meth:`Desk.pnl
    <propdesk.node.desk.Desk.pnl>`: balance, equity, realized, unrealized, day PnL, fees; USD) and its fill count."""
    pnl = desk.pnl()[0]
    t = Table.grid(padding=(0, 2))
    t.add_column(style="dim")
    t.add_column(justify="right")
    t.add_column(style="dim")
    t.add_column(justify="right")
    price = Text("-" if last_price is None else f"{last_price:.2f}", style="bold")
    t.add_row("last price", price, "balance", fmt_usd(pnl.balance_usd))
    t.add_row("realized", _pnl_text(pnl.realized_usd), "equity", fmt_usd(pnl.equity_usd))
    t.add_row("unrealized", _pnl_text(pnl.unrealized_usd), "day PnL", _pnl_text(pnl.day_net_usd))
    t.add_row("fills", str(len(desk.fills())), "fees", fmt_usd(pnl.fees_usd))
    return Panel(t, title="account", border_style="blue")


def positions_panel(desk: DeskReader) -> RenderableType:
    """The positions panel: every position the desk's account held (:meth:`Desk.all_positions
    <propdesk.node.desk.Desk.all_positions>`, flat ones with their realized PnL): signed qty, average price,
    unrealized and realized PnL (USD)."""
    t = Table(expand=True, show_edge=False, box=None)
    for col, just in (("symbol", "left"), ("qty", "right"), ("avg price", "right")):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    t.add_column("unrealized", justify="right")
    t.add_column("realized", justify="right")
    rows = 0
    for pos in desk.all_positions():
        upnl = pos.unrealized_pnl if pos.signed_qty else Money(0)
        qty = Text(f"{pos.signed_qty:+d}" if pos.signed_qty else "0", style="bold" if pos.signed_qty else "dim")
        t.add_row(
            pos.symbol,
            qty,
            "-" if pos.avg_price is None or not pos.signed_qty else str(pos.avg_price),
            "-" if upnl is None else _pnl_text(upnl),
            _pnl_text(pos.realized_pnl),
        )
        rows += 1
    if not rows:
        t.add_row(Text("no position yet", style="dim"), "", "", "", "")
    return Panel(t, title="positions", border_style="blue")


def orders_panel(desk: DeskReader) -> RenderableType:
    """The working orders panel: the desk's working orders (bracket children after their entry), the last 8:
    id, side, quantity left (contracts), type, limit or stop price (points), status, tag."""
    t = Table(expand=True, show_edge=False, box=None)
    for col in ("order", "side", "qty", "type", "price", "status", "tag"):
        t.add_column(col, justify="right" if col in ("qty", "price") else "left")
    working = flat_orders(desk.working_orders())
    for o in working[-8:]:
        price = o.limit_price if o.limit_price is not None else o.stop_price
        t.add_row(
            str(o.client_order_id),
            o.side,
            f"{o.qty - o.filled_qty}",
            o.order_type,
            "-" if price is None else str(price),
            o.status,
            o.tag,
        )
    if not working:
        t.add_row(Text("no working orders", style="dim"), "", "", "", "", "", "")
    return Panel(t, title=f"working orders ({len(working)})", border_style="blue")


def _events(session: RunSession) -> RenderableType:
    t = Table(expand=True, show_edge=False, box=None)
    t.add_column("time (CT)", no_wrap=True)
    t.add_column("event", no_wrap=True)
    t.add_column("detail", ratio=1)
    styles = {"FILLED": "green", "REJECTED": "red", "DENIED": "red", "CANCELED": "yellow", "POS CLOSED": "cyan"}
    for ev in list(session.recent):
        kind, detail = describe_event(ev, _order_of(session.desk, ev))
        ts = int(getattr(ev, "ts_event_ns", 0))
        t.add_row(fmt_ct(ts), Text(kind, style=styles.get(kind, "")), Text(detail))  # a [tag] is not markup
    if not session.recent:
        t.add_row(Text("no events yet", style="dim"), "", "")
    return Panel(t, title="recent events", border_style="blue")


def render_dashboard(session: RunSession) -> RenderableType:
    """The dashboard of ``session`` as it is now (see the module docstring)."""
    top = Table.grid(expand=True, padding=(0, 1))
    top.add_column(ratio=2)
    top.add_column(ratio=3)
    desk = session.desk
    top.add_row(account_panel(desk, session.feed.last_price), positions_panel(desk))
    risk = risk_status_panel(desk)
    if risk is None:
        return Group(_header(session), top, orders_panel(desk), _events(session))
    return Group(_header(session), top, risk, orders_panel(desk), _events(session))


def desk_risk_status(desk: DeskReader) -> dict[str, Any] | None:
    """The figures :func:`propdesk.console.risk.risk_panel` shows, from the desk: ``state``, ``reasons``,
    ``equity_usd``, ``mll_floor_usd``, ``daily_loss_left_usd`` / ``daily_loss_rule`` (USD as decimal strings) from
    :meth:`Desk.accounts <propdesk.node.desk.Desk.accounts>` and ``next_reset_ns`` from :meth:`Desk.trading_day
    <propdesk.node.desk.Desk.trading_day>`; ``None`` without a risk engine."""
    day = desk.trading_day()
    if day is None:
        return None
    acct = desk.accounts()[0]
    return {
        "state": acct.trading_state,
        "reasons": list(acct.state_reasons),
        "equity_usd": _usd_str(acct.equity_usd),
        "mll_floor_usd": _usd_str(acct.mll_floor_usd),
        "daily_loss_left_usd": _usd_str(acct.daily_loss_left_usd),
        "daily_loss_rule": acct.daily_loss_rule,
        "next_reset_ns": day.next_reset_ns,
    }


def _usd_str(m: Money | None) -> str | None:
    return None if m is None else str(m.as_decimal())


def risk_status_panel(desk: DeskReader) -> RenderableType | None:
    """The risk panel of a dashboard: :func:`propdesk.console.risk.risk_panel` of :func:`desk_risk_status` (trading
    state and why, MLL floor and distance, daily loss left, next reset in CT) in a border; fits 80 columns. ``None``
    without a risk engine."""
    try:
        status = desk_risk_status(desk)
    except Exception as exc:  # a display must not fail the run (e.g. a rule raising in its peek)
        return Panel(Text(f"risk status unavailable: {type(exc).__name__}: {exc}"), title="risk", border_style="red")
    if status is None:
        return None
    state = str(status.get("state"))
    style = {"ACTIVE": "blue", "REDUCING": "yellow"}.get(state, "red")
    return Panel(risk_panel(status), title="risk", border_style=style)


async def run_with_console(
    session: RunSession, console: Console, *, refresh_per_s: float = REFRESH_PER_S, handle_sigint: bool = True
) -> RunSummary:
    """Run ``session`` under a live dashboard on ``console`` (redrawn ``refresh_per_s`` times a second); the final
    dashboard stays on screen. Returns the summary (see :meth:`RunSession.run`)."""
    return await run_under_live(
        console,
        lambda: render_dashboard(session),
        lambda: session.run(handle_sigint=handle_sigint),
        refresh_per_s=refresh_per_s,
    )


async def run_plain(
    session: RunSession, write: Callable[[str], None], *, handle_sigint: bool = True, every_pct: int = 10
) -> RunSummary:
    """Run ``session`` writing plain lines with ``write``: a start line, fills and order outcomes and position
    opens/closes (not the submitted/accepted/updated steps every order has), and progress every ``every_pct``
    percent of the bars (checked a few times a second). Returns the summary."""
    speed = "max" if session.feed.speed is None else f"{session.feed.speed:g}x"
    write(
        f"replaying {session.feed.total:,} bars of {session.symbol} "
        f"({fmt_ct(int(session.bars.ts_close_ns[0]))} to {fmt_ct(int(session.bars.ts_close_ns[-1]))}) "
        f"with {session.strategy.name} at speed {speed}"
    )

    def on_event(event: object) -> None:
        if not isinstance(event, QUIET_EVENTS) and not (
            isinstance(event, PositionEvent) and not isinstance(event, PositionOpened | PositionClosed)
        ):
            write(event_line(event, _order_of(session.desk, event)))

    session.add_event_listener(on_event)

    async def report() -> None:
        step = 0
        while True:
            await asyncio.sleep(0.25)
            frac = session.progress().fraction
            if frac is not None and int(100 * frac) // every_pct > step:
                step = int(100 * frac) // every_pct
                ts = session.progress().last_ts_ns
                write(f"progress {100 * frac:.0f}% at {fmt_ct(ts) if ts is not None else '-'}")

    task = asyncio.create_task(report())
    try:
        summary = await session.run(handle_sigint=handle_sigint)
    finally:
        await cancel_and_wait(task)
    return summary


# ---------------------------------------------------------------------------------------------------------- summary


class SummaryFigures(AccountFigures, Protocol):
    """A session summary's account figures (see :class:`~propdesk.sessions.common.AccountFigures`) and its contract."""

    @property
    def symbol(self) -> str: ...


def summary_account_rows(summary: SummaryFigures) -> list[tuple[str, str | Text]]:
    """The account rows of an end-of-run summary table: realized PnL, fees, realized net, unrealized PnL (USD, signed
    and coloured), the open position (signed contracts @ average price, or ``flat``) and balance / equity (USD)."""
    return [
        ("realized PnL", _pnl_text(summary.realized_pnl)),
        ("fees", fmt_usd(summary.fees)),
        ("realized net", _pnl_text(summary.realized_net)),
        ("unrealized PnL", _pnl_text(summary.unrealized_pnl)),
        (
            "open position",
            "flat"
            if not summary.open_qty
            else f"{summary.open_qty:+d} {summary.symbol} @ {summary.avg_price} (left open)",
        ),
        ("balance / equity", f"{fmt_usd(summary.balance)} / {fmt_usd(summary.equity)}"),
    ]


def render_summary(summary: RunSummary) -> RenderableType:
    """The end-of-run summary as a Rich table."""
    status = "interrupted (Ctrl-C)" if summary.interrupted else "end of data" if summary.completed else "stopped early"
    span = (
        f"{fmt_ct(summary.first_ts_ns)} -> {fmt_ct(summary.last_ts_ns)}"
        if summary.first_ts_ns is not None and summary.last_ts_ns is not None
        else "-"
    )
    total = "?" if summary.total is None else f"{summary.total:,}"
    rows: list[tuple[str, str | Text]] = [
        ("contract / strategy", f"{summary.symbol} / {summary.strategy}"),
        ("status", status),
        ("bars played", f"{summary.bars:,} of {total}"),
        ("replayed", span),
        ("speed", "max" if summary.speed is None else f"{summary.speed:g}x"),
        ("wall time", f"{summary.wall_s:.2f}s (paced {summary.slept_s:.2f}s)"),
        ("fills", str(len(summary.fills))),
        ("round trips", f"{len(summary.trips)} ({summary.wins} won, {summary.losses} lost)"),
        *summary_account_rows(summary),
        *(("data warning", w) for w in summary.data_warning_summary),
    ]
    table = summary_table("run summary", rows)
    if summary.risk is None and summary.evaluation is None:
        return table
    return Group(table, risk_outcome_tables(summary.risk, summary.evaluation, end_ns=summary.last_ts_ns))
