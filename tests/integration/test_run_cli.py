"""``propdesk run --replay``: the node on a replay of the real ES file gives the backtest's fills and round trips
(parity), at full speed and when paced; Ctrl-C (a real SIGINT) stops it cleanly with a summary."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from propdesk.backtest.cli_support import parse_window
from propdesk.backtest.engine import BacktestResult, run_backtest
from propdesk.brokers.sim.replay import ReplayRecord
from propdesk.cli import app
from propdesk.data.loaders.presets import load_bars
from propdesk.model.data import BarSeries
from propdesk.sessions.replay import EXIT_INTERRUPTED, RunOptions, RunSession
from propdesk.strategies.registry import build_strategy
from tests.conftest import ES_1MIN, resolve_shared

START, END = "2025-10-01", "2025-10-08"


@pytest.fixture(scope="module")
def es_path() -> Path:
    return resolve_shared(ES_1MIN)


@pytest.fixture(scope="module")
def week(es_path: Path) -> BarSeries:
    start_ns, end_ns = parse_window(START, END)
    return load_bars(es_path).between(start_ns, end_ns)


@pytest.fixture(scope="module")
def backtest(week: BarSeries) -> BacktestResult:
    return run_backtest(week, build_strategy("sma_cross", {}))


def options(es_path: Path, speed: float | None) -> RunOptions:
    start_ns, end_ns = parse_window(START, END)
    return RunOptions(replay=es_path, strategy="sma_cross", speed=speed, start_ns=start_ns, end_ns=end_ns)


def test_cli_run_at_max_speed_matches_the_backtest(es_path: Path, backtest: BacktestResult) -> None:
    args = ["run", "--replay", str(es_path), "--strategy", "sma_cross", "--speed", "max", "--no-console", "--json"]
    result = CliRunner().invoke(app, [*args, "--start", START, "--end", END])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    bt = backtest.to_json_dict()
    assert out["completed"] is True and out["interrupted"] is False
    assert out["bars"] == bt["bars"] == len(backtest.bars)
    assert out["fills"] == bt["fills"] and out["fills"] > 0
    assert out["trades"] == bt["trades"] and out["wins"] == bt["wins"] and out["losses"] == bt["losses"]
    assert out["trades_net_pnl_usd"] == bt["net_pnl_usd"]
    assert out["open_qty"] == bt["open_qty"]
    assert out["unrealized_pnl_usd"] == bt["unrealized_pnl_usd"]
    # the plain event log went to stderr: one FILLED line per fill
    assert result.stderr.count(" FILLED ") == out["fills"]


def test_cli_rejects_a_bad_speed(es_path: Path) -> None:
    result = CliRunner().invoke(app, ["run", "--replay", str(es_path), "--strategy", "sma_cross", "--speed", "-3"])
    assert result.exit_code == 2
    assert "speed" in result.stderr


def test_session_trips_equal_the_backtest_trip_for_trip(
    es_path: Path, week: BarSeries, backtest: BacktestResult
) -> None:
    session = RunSession(options(es_path, None), bars=week)
    summary = asyncio.run(session.run(handle_sigint=False))
    assert summary.trips == backtest.trips
    assert [(f.side, f.qty, f.price, f.ts_event_ns) for f in summary.fills] == [
        (f.side, f.qty, f.price, f.ts_event_ns) for f in backtest.fills
    ]
    assert summary.realized_net.cents == sum(t.net_pnl.cents for t in backtest.trips)
    assert summary.balance.cents == backtest.starting_balance.cents + summary.realized_net.cents


def test_a_paced_replay_gives_the_same_fills(es_path: Path, week: BarSeries, backtest: BacktestResult) -> None:
    """Speed 3600 with a fake wall clock (no real waiting): pacing changes when records play, not what fills."""
    wall = [0.0]

    async def fake_sleep(seconds: float) -> None:
        wall[0] += seconds

    session = RunSession(options(es_path, 3600.0), bars=week, sleep=fake_sleep, monotonic=lambda: wall[0])
    summary = asyncio.run(session.run(handle_sigint=False))
    assert summary.completed and summary.trips == backtest.trips
    # 7 days of data at 3600x is about 168 s of wall time, less the halts and weekend shortened to 2 s each
    span_s = (int(week.ts_close_ns[-1]) - int(week.ts_close_ns[0])) / 1e9 / 3600
    assert 0 < summary.slept_s <= span_s + 1e-6
    assert summary.slept_s + session.feed.skipped_s == pytest.approx(span_s)


def test_sigint_mid_run_stops_cleanly_with_a_summary(es_path: Path, week: BarSeries, backtest: BacktestResult) -> None:
    """A real SIGINT after 3,000 bars: the loop's handler stops the feed, the node stops, the summary is built."""
    played = [0]

    def on_record(_r: ReplayRecord) -> None:
        played[0] += 1
        if played[0] == 3000:
            os.kill(os.getpid(), signal.SIGINT)

    session = RunSession(options(es_path, None), bars=week, on_record=on_record)
    summary = asyncio.run(session.run())
    assert summary.interrupted and not summary.completed
    assert 3000 <= summary.bars < len(week)  # stopped at the next yield to the loop
    assert not session.node.started  # node.stop() ran: strategies got on_stop
    last = summary.last_ts_ns
    assert last is not None
    # everything up to the interruption is what the backtest did up to the same time
    assert summary.trips == [t for t in backtest.trips if t.exit_ts_ns <= last]
    assert len(summary.fills) == sum(1 for f in backtest.fills if f.ts_event_ns <= last)
    # the default SIGINT handling is back once the run is over
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert EXIT_INTERRUPTED == 130
