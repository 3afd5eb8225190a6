"""The replay session: its trading day comes from the trading calendar (the portfolio's day PnL resets at each trading
date's start, 17:00 CT, Sunday 17:00 after a Friday, never on a Friday or Saturday evening), and its summary reads the
session's Desk."""

from __future__ import annotations

import asyncio
from datetime import date

from propdesk.backtest.cli_support import parse_window
from propdesk.model.calendar import SESSION_OPEN, default_calendar, local_ns
from propdesk.sessions.replay import RunOptions, RunSession
from tests.conftest import ES_1MIN, resolve_shared
from tests.stubs.desk import StubDesk


def test_the_day_rolls_at_the_calendars_trading_date_starts() -> None:
    start_ns, end_ns = parse_window("2025-10-16", "2025-10-21")  # Wed 19:00 CT to Mon 19:00 CT
    session = RunSession(
        RunOptions(replay=resolve_shared(ES_1MIN), strategy="sma_cross", speed=None, start_ns=start_ns, end_ns=end_ns)
    )
    asyncio.run(session.run(handle_sigint=False))
    cal = default_calendar()
    rolled = [(r.ended_trading_date, r.trading_date, r.ts_ns) for r in session.day_rolls]
    assert rolled == [
        (date(2025, 10, 16), date(2025, 10, 17), local_ns(date(2025, 10, 16), SESSION_OPEN)),  # Thursday 17:00 CT
        (date(2025, 10, 17), date(2025, 10, 20), local_ns(date(2025, 10, 19), SESSION_OPEN)),  # Sunday 17:00 CT
        (date(2025, 10, 20), date(2025, 10, 21), local_ns(date(2025, 10, 20), SESSION_OPEN)),  # Monday 17:00 CT
    ]
    assert all(ts == cal.day_start_ns(d) for _, d, ts in rolled)
    last_roll = rolled[-1][2]
    assert session.node.portfolio.day_fill_count() == sum(1 for f in session.fills if f.ts_event_ns >= last_roll)


def test_the_summary_reads_the_session_desk() -> None:
    start_ns, end_ns = parse_window("2025-10-16", "2025-10-17")
    session = RunSession(
        RunOptions(replay=resolve_shared(ES_1MIN), strategy="sma_cross", speed=None, start_ns=start_ns, end_ns=end_ns)
    )
    desk = StubDesk()
    session.desk = desk  # type: ignore[assignment]
    summary = session.summary()
    assert (summary.realized_pnl, summary.fees, summary.unrealized_pnl) == (
        desk.totals.realized_usd,
        desk.totals.fees_usd,
        desk.totals.unrealized_usd,
    )
    assert (summary.balance, summary.equity, summary.starting_balance) == (
        desk.totals.balance_usd,
        desk.totals.equity_usd,
        desk.totals.starting_balance_usd,
    )
    assert (summary.open_qty, str(summary.avg_price)) == (2, "6700.25")  # the stub's ESZ5 position
    assert summary.fills == [] and summary.trips == []  # the stub desk has no fill
    assert summary.risk is not None and session.risk is None  # the stub desk's outcomes, not the session's engine's
    out = summary.to_json_dict()
    assert (out["realized_pnl_usd"], out["fees_usd"], out["balance_usd"], out["open_qty"]) == (
        "259.50",
        "25.00",
        "51234.50",
        2,
    )
