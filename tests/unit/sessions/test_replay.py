"""The replay session's trading day comes from the trading calendar: the portfolio's day PnL resets at each trading
date's start (17:00 CT, Sunday 17:00 after a Friday), never on a Friday or Saturday evening."""

from __future__ import annotations

import asyncio
from datetime import date

from propdesk.backtest.cli_support import parse_window
from propdesk.model.calendar import SESSION_OPEN, default_calendar, local_ns
from propdesk.sessions.replay import RunOptions, RunSession
from tests.conftest import ES_1MIN, resolve_shared


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
