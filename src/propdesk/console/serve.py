"""``propdesk serve``'s compact status: the accounts (replayed time, balance, day net, trading state, fills) and the
strategy instances (account, strategy, state or why it waits, parameter version), as a Rich view redrawn while the
service runs, or as plain lines (a start line, each instance's change of state, progress, the end).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from propdesk.console.display import cancel_and_wait, run_under_live
from propdesk.core.timefmt import iso_utc

if TYPE_CHECKING:
    from propdesk.model.price import Money
    from propdesk.sessions.serve import ServeSession, ServeSummary

__all__ = ["render_serve", "render_serve_summary", "run_serve_plain", "run_serve_with_console"]

_STATE_STYLE = {"ACTIVE": "green", "REDUCING": "yellow", "HALTED": "bold red"}


def _usd(m: Money) -> Text:
    text = f"{m.as_decimal():,.2f}"
    return Text(text, style="red" if m.cents < 0 else "")


def _tables(summary: ServeSummary) -> Group:
    accounts = Table(title="accounts", title_justify="left", expand=False)
    for col in ("account", "id", "contract", "replayed to (UTC)", "played", "balance", "day net", "state", "fills"):
        accounts.add_column(col, justify="right" if col in {"id", "played", "balance", "day net", "fills"} else "left")
    for a in summary.accounts:
        played = f"{a.records:,}" if a.total is None else f"{a.records:,}/{a.total:,}"
        accounts.add_row(
            a.name,
            str(a.account_id),
            a.symbol,
            "-" if a.replay_ts_ns is None else iso_utc(a.replay_ts_ns),
            played,
            _usd(a.balance),
            _usd(a.day_net),
            Text(a.trading_state, style=_STATE_STYLE.get(a.trading_state, "")),
            str(a.fills),
        )
    instances = Table(title="strategy instances", title_justify="left", expand=False)
    for col in ("instance", "account", "strategy", "contract", "state", "version"):
        instances.add_column(col, justify="right" if col == "version" else "left")
    names = {a.account_id: a.name for a in summary.accounts}
    for i in summary.instances:
        state = Text(i.state.value) if not i.waiting else Text(f"{i.state.value} ({i.waiting})", style="yellow")
        instances.add_row(
            i.name, names.get(i.account_id, str(i.account_id)), i.strategy, i.symbol, state, str(i.version)
        )
    return Group(accounts, instances)


def render_serve(session: ServeSession) -> RenderableType:
    """The status view of ``session`` now."""
    return _tables(session.summary())


def render_serve_summary(summary: ServeSummary) -> RenderableType:
    """The final view: the tables and how the service ended."""
    how = "every replay reached its end" if summary.completed else f"stopped ({summary.signal or 'by request'})"
    seq = "" if summary.last_seq is None else f"; journal run {summary.run_id}, last event seq {summary.last_seq}"
    lines = [Text(f"serve: {how} after {summary.wall_s:.1f} s{seq}")]
    lines += [Text(f"warning: {w}", style="yellow") for w in summary.warnings]
    return Group(_tables(summary), *lines)


async def run_serve_with_console(
    session: ServeSession, console: Console, *, refresh_per_s: float = 1.0, handle_signals: bool = True
) -> ServeSummary:
    """Run ``session`` under the status view (redrawn ``refresh_per_s`` times a second); the final view stays."""
    return await run_under_live(
        console,
        lambda: render_serve(session),
        lambda: session.run(handle_signals=handle_signals),
        refresh_per_s=refresh_per_s,
        final=render_serve_summary,
    )


async def run_serve_plain(
    session: ServeSession, write: Callable[[str], None], *, period_s: float = 1.0, handle_signals: bool = True
) -> ServeSummary:
    """Run ``session`` writing plain lines with ``write``: ``serving ...`` once the journal is open and the instances
    restored, each instance's change of state (or of why it waits) and a progress line per account every ``period_s``
    seconds while it plays. Returns the summary."""
    seen: dict[str, tuple[str, str, int]] = {}

    def changes() -> None:
        for i in session.service.instances():
            now = (i.state.value, i.waiting, i.version)
            if seen.get(i.name) != now:
                seen[i.name] = now
                why = f" ({i.waiting})" if i.waiting else ""
                write(f"instance {i.name} on account {i.account_id}: {i.state.value}{why}, params v{i.version}")

    async def report() -> None:
        await session.started.wait()
        names = ", ".join(f"{n} ({aid})" for aid, n in session.names.items())
        write(f"serving {len(session.names)} account(s): {names}")
        while True:
            changes()
            await asyncio.sleep(period_s)
            for a in session.account_status():
                ts = "-" if a.replay_ts_ns is None else iso_utc(a.replay_ts_ns)
                write(f"account {a.name}: {a.records:,} records, at {ts}, {a.trading_state}, {a.fills} fills")

    task = asyncio.create_task(report())
    try:
        summary = await session.run(handle_signals=handle_signals)
    finally:
        await cancel_and_wait(task)
    changes()
    how = "completed" if summary.completed else f"stopped ({summary.signal or 'by request'})"
    write(f"serve {how} after {summary.wall_s:.1f} s")
    return summary
