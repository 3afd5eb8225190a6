"""The live status of ``propdesk risk``: a Rich ``Live`` view of the risk daemon, the plain log-line mode for CI and
pipes.

The view (:func:`render_status`) is drawn from the daemon's status dict (:meth:`RiskDaemon.status
<propdesk.sessions.risk_daemon.session.RiskDaemon.status>`, the same object ``--json-status`` prints), redrawn about
four times a second by :func:`run_with_status`:

* header: account, broker, preset, the daemon's clock in America/Chicago (CT) and UTC, replay progress (sim);
* trading state (ACTIVE green, REDUCING yellow, HALTED red) with its reasons, most restrictive first;
* money: balance, equity, day net, the MLL floor and the distance to it; trades and contracts today; the next reset
  (17:00 CT) and the next flat time (R11), in CT;
* rules: each rule with its limit, its verdict now and the fraction of the limit used as a bar;
* lockouts with their expiry (CT), open positions, recent fills (with their source: manual, risk with the rule that
  caused it as ``risk:R11``, propdesk);
* the newest audit entries (about 15).

Redraws run as an asyncio task on the session's own loop (the replay yields to the loop between bars), never from a
thread, so the state is read between events, never mid-update.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final, Protocol

from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from propdesk.console.display import run_under_live
from propdesk.core.timefmt import CT
from propdesk.risk.events import (
    AccountFlattened,
    FlattenRetry,
    LockoutExpired,
    LockoutSet,
    PositionClosedByRisk,
    RiskEvent,
    RuleBreached,
    RuleWarned,
    TradingStateChanged,
)
from propdesk.sessions.risk_daemon.session import FillRecord, RiskDaemon

__all__ = [
    "REFRESH_PER_S",
    "STATE_STYLES",
    "RiskSessionLike",
    "describe_risk_event",
    "render_status",
    "run_plain",
    "run_with_status",
    "usage_bar",
]

REFRESH_PER_S: Final[float] = 4.0
"""Status redraws per wall second."""
STATE_STYLES: Final[dict[str, str]] = {"ACTIVE": "bold green", "REDUCING": "bold yellow", "HALTED": "bold white on red"}
"""Rich style of each trading state."""
BAR_WIDTH: Final[int] = 20
"""Cells of a usage bar."""
AUDIT_ROWS: Final[int] = 15
"""Audit entries shown."""


class RiskSessionLike(Protocol):
    """What the status needs of a session (:class:`~propdesk.sessions.risk_daemon.session.SimRiskSession` and
    :class:`~propdesk.sessions.risk_daemon.session.ProjectXRiskSession` fit)."""

    @property
    def daemon(self) -> RiskDaemon: ...

    def status(self) -> dict[str, Any]: ...

    async def run(self, *, handle_sigint: bool = True) -> dict[str, Any]: ...


def _ct(ts_ns: int | None, *, date: bool = True) -> str:
    if ts_ns is None:
        return "-"
    d = datetime.fromtimestamp(ts_ns // 1_000_000_000, tz=CT)
    return d.strftime("%Y-%m-%d %H:%M:%S CT" if date else "%H:%M:%S")


def _utc(ts_ns: int | None) -> str:
    if ts_ns is None:
        return "-"
    return datetime.fromtimestamp(ts_ns // 1_000_000_000, tz=UTC).strftime("%H:%M:%S UTC")


def _usd(text: str | None, *, sign: bool = False) -> Text:
    """A USD amount given as a decimal string (``"-512.50"``) as ``-$512.50``; with ``sign`` a ``+`` on gains and
    red / green colouring."""
    if text is None:
        return Text("-", style="dim")
    v = Decimal(text)
    body = f"${abs(v):,.2f}"
    if v < 0:
        return Text("-" + body, style="red" if sign else "")
    if sign:
        return Text("+" + body, style="green" if v > 0 else "")
    return Text(body)


def _span(from_ns: int, to_ns: int | None) -> str:
    """``in 2h05m`` between two times (``-`` when unknown or past)."""
    if to_ns is None or to_ns <= from_ns:
        return "-"
    mins = (to_ns - from_ns) // 60_000_000_000
    days, rem = divmod(mins, 1440)
    hours, m = divmod(rem, 60)
    return f"in {days}d{hours:02d}h{m:02d}m" if days else f"in {hours}h{m:02d}m"


def usage_bar(fraction: float | None, width: int = BAR_WIDTH) -> Text:
    """The fraction of a limit used as a bar with its percentage: green below 70%, yellow below 100%, red at or
    over the limit; ``n/a`` (dim) for a rule without a numeric limit."""
    if fraction is None:
        return Text("n/a", style="dim")
    f = max(0.0, fraction)
    filled = min(width, round(min(f, 1.0) * width))
    style = "green" if f < 0.7 else "yellow" if f < 1.0 else "bold red"
    bar = Text("█" * filled, style=style)
    bar.append("░" * (width - filled), style="dim")
    bar.append(f" {100 * f:5.1f}%", style=style)
    return bar


# ---------------------------------------------------------------------------------------------------------- view


def _header(st: dict[str, Any]) -> RenderableType:
    grid = Table.grid(expand=True, padding=(0, 2))
    grid.add_column(ratio=1)
    grid.add_column(justify="right")
    conn = st.get("connected")
    link = "[green]connected[/]" if conn else "[red]disconnected[/]" if conn is False else "[dim]not connected[/]"
    grid.add_row(
        f"[bold]propdesk risk[/]  account [bold]{st['account']}[/] on {st.get('broker', '?')}  "
        f"preset [bold]{st.get('preset') or '-'}[/]",
        link,
    )
    now = st.get("now_ns")
    right = ""
    replay = st.get("replay")
    if isinstance(replay, dict):
        frac = replay.get("fraction")
        pct = "" if frac is None else f"{100 * frac:5.1f}% "
        speed = replay.get("speed")
        state = (
            "[red]interrupted[/]"
            if replay.get("interrupted")
            else "[green]done[/]"
            if replay.get("completed")
            else "[cyan]replaying[/]"
        )
        right = f"{replay.get('symbol')} {pct}({replay.get('bars', 0):,}/{replay.get('total') or 0:,} bars) "
        right += f"speed {speed if speed == 'max' else f'{speed:g}x'} {state}"
    grid.add_row(f"time [bold]{_ct(now)}[/]  ({_utc(now)})  trading day {st.get('trading_date')}", right)
    for warning in st.get("data_warnings") or []:
        grid.add_row(Text(f"data warning: {warning['message']}", style="yellow"), "")
    return Panel(grid, border_style="blue")


def _state(st: dict[str, Any]) -> RenderableType:
    name = str(st.get("state"))
    style = STATE_STYLES.get(name, "bold")
    t = Table.grid(padding=(0, 1))
    t.add_column(no_wrap=True)
    t.add_column(ratio=1)
    reasons = list(st.get("reasons") or [])
    t.add_row(Text(f" {name} ", style=style), Text(reasons[0] if reasons else "all rules pass", style="bold"))
    for r in reasons[1:4]:
        t.add_row("", Text(r, style="dim"))
    if len(reasons) > 4:
        t.add_row("", Text(f"... and {len(reasons) - 4} more", style="dim"))
    return Panel(t, title="trading state", border_style=style.split()[-1] if name == "HALTED" else "blue")


def _money(st: dict[str, Any]) -> RenderableType:
    now = st.get("now_ns") or 0
    t = Table.grid(padding=(0, 2))
    t.add_column(style="dim")
    t.add_column(justify="right")
    t.add_column(style="dim")
    t.add_column(justify="right")
    t.add_row("balance", _usd(st.get("balance_usd")), "day net", _usd(st.get("day_net_usd"), sign=True))
    t.add_row("equity", _usd(st.get("equity_usd")), "MLL floor", _usd(st.get("mll_floor_usd")))
    t.add_row(
        "trades today",
        str(st.get("trades_today", 0)),
        "to MLL",
        _usd(st.get("mll_distance_usd")),
    )
    t.add_row("contracts today", str(st.get("contracts_today", 0)), "", "")
    t.add_row(
        "next reset",
        f"{_ct(st.get('next_reset_ns'))} {_span(now, st.get('next_reset_ns'))}",
        "",
        "",
    )
    t.add_row("next flat", f"{_ct(st.get('next_flat_ns'))} {_span(now, st.get('next_flat_ns'))}", "", "")
    return Panel(t, title="account", border_style="blue")


_ACTION_STYLES: Final[dict[str, str]] = {
    "ALLOW": "green",
    "WARN": "yellow",
    "DENY": "yellow",
    "REDUCE_ONLY": "yellow",
    "CLOSE_POSITION": "red",
    "FLATTEN": "bold red",
    "LOCKOUT": "bold red",
}


def _rules(st: dict[str, Any]) -> RenderableType:
    t = Table(expand=True, show_edge=False, box=None)
    t.add_column("rule", no_wrap=True)
    t.add_column("limit", ratio=3)
    t.add_column("now", no_wrap=True)
    t.add_column("used", no_wrap=True)
    for r in st.get("rules") or []:
        action = r.get("action") or "-"
        who = "firm" if r.get("firm") else "personal"
        t.add_row(
            Text(f"{r['rule_id']} {who}", style="bold" if r.get("firm") else ""),
            Text(str(r.get("describe", ""))),
            Text(action, style=_ACTION_STYLES.get(action, "dim")),
            usage_bar(r.get("used_fraction")),
        )
    return Panel(t, title="rules", border_style="blue")


def _lockouts(st: dict[str, Any]) -> RenderableType:
    t = Table(expand=True, show_edge=False, box=None)
    t.add_column("rule", no_wrap=True)
    t.add_column("expires (CT)", no_wrap=True)
    t.add_column("reason", ratio=1)
    now = st.get("now_ns") or 0
    los = st.get("lockouts") or []
    for lo in los:
        exp = lo.get("expires_at_ns")
        t.add_row(
            Text(str(lo.get("rule_id")), style="bold red"),
            "never (FAILED)" if exp is None else f"{_ct(exp)} {_span(now, exp)}",
            str(lo.get("reason", "")),
        )
    if not los:
        t.add_row(Text("no lockout", style="dim"), "", "")
    return Panel(t, title=f"lockouts ({len(los)})", border_style="red" if los else "blue")


def _positions(st: dict[str, Any]) -> RenderableType:
    t = Table(expand=True, show_edge=False, box=None)
    for col in ("symbol", "qty", "avg price", "unrealized"):
        t.add_column(col, justify="left" if col == "symbol" else "right")
    pos = st.get("positions") or []
    for p in pos:
        t.add_row(p["symbol"], f"{p['qty']:+d}", p.get("avg_price") or "-", _usd(p.get("unrealized_usd"), sign=True))
    if not pos:
        t.add_row(Text("flat", style="dim"), "", "", "")
    orders = st.get("working_orders") or []
    title = f"positions ({len(pos)}), working orders {len(orders)}"
    return Panel(t, title=title, border_style="blue")


_SOURCE_STYLES: Final[dict[str, str]] = {"manual": "magenta", "risk": "bold red", "propdesk": "cyan"}


def _fills(st: dict[str, Any]) -> RenderableType:
    t = Table(expand=True, show_edge=False, box=None)
    t.add_column("time (CT)", no_wrap=True)
    t.add_column("source", no_wrap=True)
    t.add_column("fill", ratio=1)
    t.add_column("pos", justify="right", no_wrap=True)
    recent = (st.get("recent_fills") or [])[-6:]
    for f in recent:
        t.add_row(
            _ct(f["ts_ns"], date=False),
            Text(f.get("label") or f["source"], style=_SOURCE_STYLES.get(f["source"], "")),
            f"{f['side']} {f['qty']} {f['symbol']} @ {f['price']}  ({f['client_order_id']})",
            f"{f['position_before']:+d} -> {f['position_after']:+d}",
        )
    if not recent:
        t.add_row(Text("no fill yet", style="dim"), "", "", "")
    counts = st.get("fills") or {}
    title = "fills: " + ", ".join(f"{k} {v}" for k, v in counts.items())
    return Panel(t, title=title, border_style="blue")


def _audit(st: dict[str, Any]) -> RenderableType:
    t = Table(expand=True, show_edge=False, box=None)
    t.add_column("time (CT)", no_wrap=True)
    t.add_column("point", no_wrap=True)
    t.add_column("action", no_wrap=True)
    t.add_column("state", no_wrap=True)
    t.add_column("reasons", ratio=1, overflow="ellipsis", no_wrap=True)
    entries = (st.get("audit") or [])[-AUDIT_ROWS:]
    for e in entries:
        v = e.get("verdict", {})
        point = e.get("point", "")
        if e.get("step"):
            point = f"{point}/{e['step']}"
        action = str(v.get("action", ""))
        t.add_row(
            _ct(e.get("ts_ns"), date=False),
            point,
            Text(action, style=_ACTION_STYLES.get(action, "")),
            Text(str(v.get("state", "")), style=STATE_STYLES.get(str(v.get("state")), "")),
            "; ".join(v.get("reasons") or []),
        )
    if not entries:
        t.add_row(Text("no audit entry yet", style="dim"), "", "", "", "")
    return Panel(t, title="audit log (newest last)", border_style="blue")


def render_status(st: dict[str, Any]) -> RenderableType:
    """The status view of a daemon's status dict (see the module docstring)."""
    top = Table.grid(expand=True, padding=(0, 1))
    top.add_column(ratio=2)
    top.add_column(ratio=3)
    top.add_row(_money(st), Group(_lockouts(st), _positions(st)))
    return Group(_header(st), _state(st), top, _rules(st), _fills(st), _audit(st))


# ---------------------------------------------------------------------------------------------------------- runs


def describe_risk_event(event: object) -> str | None:
    """One plain line for a risk event or a :class:`FillRecord` (without the time), or ``None`` for events the log
    leaves out."""
    if isinstance(event, FillRecord):
        source = f"{event.label}, reconciled" if event.reconciled else event.label
        return (
            f"FILL [{source}] {event.side} {event.qty} {event.symbol} @ {event.price} "
            f"({event.client_order_id}) position {event.position_before:+d} -> {event.position_after:+d}"
        )
    if isinstance(event, RuleBreached):
        d = event.decision
        return f"BREACH {d.rule_id} {d.action.name}: {d.reason} (state {event.state.name})"
    if isinstance(event, RuleWarned):
        return f"WARN {event.decision.rule_id}: {event.decision.reason}"
    if isinstance(event, TradingStateChanged):
        why = "; ".join(event.reasons) or "all rules pass"
        return f"STATE {event.old.name} -> {event.new.name}: {why}"
    if isinstance(event, LockoutSet):
        lo = event.lockout
        return f"LOCKOUT {lo.rule_id} until {_ct(lo.expires_at_ns)}: {lo.reason}"
    if isinstance(event, LockoutExpired):
        return f"LOCKOUT EXPIRED {event.lockout.rule_id}"
    if isinstance(event, AccountFlattened):
        return f"FLATTENED after {event.attempts} round(s): {event.reason}"
    if isinstance(event, PositionClosedByRisk):
        return f"CLOSED {event.symbol} after {event.attempts} round(s): {event.reason}"
    if isinstance(event, FlattenRetry):
        return f"RETRY {event.attempt} ({event.symbol or 'account'}): still open {dict(event.positions)}"
    return None


def _event_ts(event: object) -> int | None:
    if isinstance(event, FillRecord):
        return event.ts_ns
    if isinstance(event, RiskEvent):
        return event.ts_ns
    return None


async def run_with_status(
    session: RiskSessionLike, console: Console, *, refresh_per_s: float = REFRESH_PER_S, handle_sigint: bool = True
) -> dict[str, Any]:
    """Run ``session`` under the live status on ``console`` (redrawn ``refresh_per_s`` times a second); the final
    view stays on screen. Returns the final status (see the session's ``run``)."""
    return await run_under_live(
        console,
        lambda: render_status(session.status()),
        lambda: session.run(handle_sigint=handle_sigint),
        refresh_per_s=refresh_per_s,
        final=render_status,
    )


async def run_plain(
    session: RiskSessionLike, write: Callable[[str], None], *, handle_sigint: bool = True
) -> dict[str, Any]:
    """Run ``session`` writing one plain line per fill and per risk event (breach, warning, state change, lockout,
    flatten, retry), each stamped with its time in CT. Returns the final status."""
    st = session.status()
    write(f"risk daemon on account {st['account']} ({st.get('broker')}), preset {st.get('preset') or '-'}")

    def on_event(event: object) -> None:
        line = describe_risk_event(event)
        if line is not None:
            write(f"{_ct(_event_ts(event))}  {line}")

    session.daemon.add_listener(on_event)
    final = await session.run(handle_sigint=handle_sigint)
    for warning in final.get("data_warnings") or []:
        write(f"data warning: {warning['message']}")
    write(
        f"final state {final['state']}: day net {final.get('day_net_usd')} USD, balance {final.get('balance_usd')} "
        f"USD, lockouts {len(final.get('lockouts') or [])}"
    )
    return final
