"""The run console: the dashboard renders the session's state, the plain mode logs fills, the summary renders."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from rich.console import Console

from propdesk.backtest.cli_support import parse_window
from propdesk.console.replay import (
    describe_event,
    event_line,
    fmt_ct,
    fmt_usd,
    render_dashboard,
    render_summary,
    run_plain,
)
from propdesk.model.enums import Side
from propdesk.model.events import OrderFilled
from propdesk.model.identifiers import AccountId, ClientOrderId
from propdesk.model.price import Money, Price
from propdesk.sessions.replay import RunOptions, RunSession
from tests.conftest import ES_1MIN, resolve_shared


@pytest.fixture(scope="module")
def es_path() -> Path:
    return resolve_shared(ES_1MIN)


def day_session(es_path: Path) -> RunSession:
    start_ns, end_ns = parse_window("2025-10-01", "2025-10-02")
    return RunSession(RunOptions(replay=es_path, strategy="sma_cross", speed=None, start_ns=start_ns, end_ns=end_ns))


def text_of(renderable: object) -> str:
    con = Console(record=True, width=130, color_system=None)
    con.print(renderable)
    return con.export_text()


def test_formatting_helpers() -> None:
    assert fmt_usd(Money(5221250)) == "$52,212.50"
    assert fmt_usd(Money(-1250), sign=True) == "-$12.50"
    assert fmt_usd(Money(11250), sign=True) == "+$112.50"
    # 2025-10-01 13:30 UTC is 08:30 CDT
    assert fmt_ct(1_759_325_400 * 10**9) == "2025-10-01 08:30:00 CT"


def test_plain_mode_logs_each_fill_and_the_dashboard_shows_the_state(es_path: Path) -> None:
    session = day_session(es_path)
    before = text_of(render_dashboard(session))
    assert "waiting for the first bar" in before and "no position yet" in before
    lines: list[str] = []
    summary = asyncio.run(run_plain(session, lines.append, handle_sigint=False))
    assert lines[0].startswith(f"replaying {summary.total:,} bars of ESZ5")
    fills = [ln for ln in lines if " FILLED " in ln]
    assert len(fills) == len(summary.fills) > 0
    assert not any(" SUBMITTED " in ln or " ACCEPTED " in ln for ln in lines)  # quiet steps left out
    closed = [ln for ln in lines if " POS CLOSED " in ln]
    assert len(closed) == len(summary.trips)

    after = text_of(render_dashboard(session))
    assert "ESZ5" in after and "sma_cross" in after and "done" in after
    assert "100.0%" in after and f"{summary.total:,}/{summary.total:,} bars" in after
    assert f"{session.feed.last_price:.2f}" in after  # last price
    assert fmt_usd(summary.balance) in after
    # the recent-events panel shows the last events, the newest being the last fill's position event or the fill
    last_fill = summary.fills[-1]
    assert str(last_fill.price) in after


def test_event_descriptions() -> None:
    fill = OrderFilled(
        client_order_id=ClientOrderId("pd-x-1"),
        account_id=AccountId(1),
        ts_event_ns=1_759_325_400 * 10**9,
        symbol="ESZ5",
        side=Side.BUY,
        qty=2,
        price=Price.of("6712.25"),
        fee=Money(280),
        trade_id="1-1",
        tag="sma_cross",
    )
    assert describe_event(fill) == ("FILLED", "BUY 2 ESZ5 @ 6712.25 fee $2.80 [sma_cross]")
    assert event_line(fill).startswith("2025-10-01 08:30:00 CT  FILLED ")


def test_summary_renders_the_figures(es_path: Path) -> None:
    session = day_session(es_path)
    summary = asyncio.run(session.run(handle_sigint=False))
    text = text_of(render_summary(summary))
    assert "end of data" in text
    assert f"{len(summary.fills)}" in text and f"{len(summary.trips)} (" in text
    assert fmt_usd(summary.equity) in text
