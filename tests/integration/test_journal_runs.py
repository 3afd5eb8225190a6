"""The journal keeps every run (issue 12, part 2): several replays on one database, some of them killed with
``SIGKILL`` in the middle, on SQLite and on the real PostgreSQL. Every fill of every run is journaled exactly once
under its run; a killed run is marked aborted at the next start (a run whose process is alive is not); a restart of
the same replay continues the killed run under its id without journaling anything twice.

The fills each run must have are taken from the run itself (its summary, i.e. what its simulated exchange reported),
never from the journal; the killed runs are real ``propdesk run`` processes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from propdesk.backtest.cli_support import parse_window
from propdesk.data.loaders.presets import load_bars
from propdesk.model.data import BarSeries
from propdesk.node.journaling import NodeJournal
from propdesk.sessions.replay import RunOptions, RunSession, RunSummary
from propdesk.storage.db import sync_url
from tests.conftest import ES_1MIN, resolve_shared
from tests.unit.storage.conftest import pg_database  # noqa: F401 - the fixture, used by name

ROOT = Path(__file__).resolve().parents[2]

W1 = ("2025-10-01", "2025-10-03")
W2 = ("2025-10-06", "2025-10-08")
W3 = ("2025-10-13", "2025-10-15")


@pytest.fixture(scope="module")
def es_bars() -> tuple[Path, BarSeries]:
    path = resolve_shared(ES_1MIN)
    return path, load_bars(path)


@pytest.fixture(params=["sqlite", "postgresql"])
def journal_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each backend (the run migrates it)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'journal.sqlite3'}"
    else:
        yield request.getfixturevalue("pg_database")


def _replay(url: str, es: tuple[Path, BarSeries], window: tuple[str, str]) -> tuple[RunSession, RunSummary]:
    """One ``propdesk run --replay ES --strategy sma_cross --speed max --start .. --end ..`` in this process."""
    path, bars = es
    start_ns, end_ns = parse_window(*window)
    options = RunOptions(replay=path, strategy="sma_cross", speed=None, start_ns=start_ns, end_ns=end_ns)
    session = RunSession(options, bars=bars.between(start_ns, end_ns), journal=NodeJournal(url))
    summary = asyncio.run(session.run(handle_sigint=False))
    assert summary.completed and summary.fills
    return session, summary


def _unjournaled(es: tuple[Path, BarSeries], window: tuple[str, str]) -> RunSummary:
    """The same replay without a journal (what the run's simulated exchange reports)."""
    path, bars = es
    start_ns, end_ns = parse_window(*window)
    options = RunOptions(replay=path, strategy="sma_cross", speed=None, start_ns=start_ns, end_ns=end_ns)
    return asyncio.run(RunSession(options, bars=bars.between(start_ns, end_ns)).run(handle_sigint=False))


def _rows(url: str, sql: str, **params: object) -> list[tuple[object, ...]]:
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql), params)]
    finally:
        engine.dispose()


def _fill_keys(summary: RunSummary) -> list[tuple[str, int, int, int, int]]:
    """What the run's simulated exchange reported: (trade id, event time, side, qty, price raw), in order."""
    return [(f.trade_id, f.ts_event_ns, int(f.side), f.qty, f.price.raw) for f in summary.fills]


def _journaled_fills(url: str, run_id: str) -> list[tuple[str, int, int, int, int]]:
    rows = _rows(
        url,
        "SELECT trade_id, ts_event_ns, side, qty, price_raw FROM fills WHERE run_id = :r ORDER BY ts_event_ns, id",
        r=run_id,
    )
    return [(str(t), int(ts), int(s), int(q), int(p)) for t, ts, s, q, p in rows]  # type: ignore[call-overload]


def test_two_replays_on_one_fresh_journal_keep_every_fill(tmp_path: Path, es_bars: tuple[Path, BarSeries]) -> None:
    """The issue's reproducer: the second run's fills (trade ids ``1-1``, ``1-2`` ... again) are all journaled."""
    url = f"sqlite:///{tmp_path / 'journal.sqlite3'}"
    first, s1 = _replay(url, es_bars, W1)
    second, s2 = _replay(url, es_bars, W2)
    assert s1.fills[0].trade_id == s2.fills[0].trade_id == "1-1"  # the simulated exchange restarts its trade ids
    (total,) = _rows(url, "SELECT count(*) FROM fills")[0]
    assert total == len(s1.fills) + len(s2.fills)
    (snapshots,) = _rows(url, "SELECT count(*) FROM position_snapshots")[0]
    assert snapshots == len(s1.fills) + len(s2.fills)  # sma_cross trades one contract: one snapshot a fill
    assert first.journal is not None and second.journal is not None
    assert _journaled_fills(url, str(first.journal.run_id)) == _fill_keys(s1)
    assert _journaled_fills(url, str(second.journal.run_id)) == _fill_keys(s2)


# ------------------------------------------------------------------------------------------------ killed runs


def _spawn(url: str, es_path: Path, window: tuple[str, str]) -> subprocess.Popen[bytes]:
    """A real ``propdesk run`` process, paced (120 bars a second) so it can be killed in the middle."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "src"), env.get("PYTHONPATH", "")])
    env["PROPDESK_DATABASE_URL"] = url
    cmd = [sys.executable, "-m", "propdesk", "run", "--replay", str(es_path), "--strategy", "sma_cross"]
    cmd += ["--speed", "7200", "--start", window[0], "--end", window[1], "--no-console"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _run_of(url: str, pid: int) -> str | None:
    rows = _rows(url, "SELECT id FROM strategy_runs WHERE pid = :p", p=pid) if _migrated(url) else []
    return None if not rows else str(rows[0][0])


def _migrated(url: str) -> bool:
    try:
        _rows(url, "SELECT pid FROM strategy_runs WHERE 1 = 0")
    except Exception:
        return False
    return True


def _wait_for_fills(url: str, proc: subprocess.Popen[bytes], n: int, timeout_s: float = 60.0) -> str:
    """Wait until ``proc``'s run has at least ``n`` fills journaled; returns its run id."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the run ended before it could be killed"
        run_id = _run_of(url, proc.pid)
        if run_id is not None and len(_journaled_fills(url, run_id)) >= n:
            return run_id
        time.sleep(0.1)
    raise AssertionError(f"no {n} fills journaled by pid {proc.pid} within {timeout_s}s")


def _kill(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)


def _status(url: str, run_id: str) -> tuple[str, int]:
    status, attempts = _rows(url, "SELECT status, attempts FROM strategy_runs WHERE id = :r", r=run_id)[0]
    return str(status), int(attempts)  # type: ignore[call-overload]


def test_runs_some_killed_keep_every_fill_exactly_once(journal_url: str, es_bars: tuple[Path, BarSeries]) -> None:
    """Two paced ``propdesk run`` processes (the second started while the first runs) are killed with SIGKILL; then
    three replays run to the end: a new window, the first killed replay again (it continues the killed run), and the
    new window again (a new run). Every run's journaled fills are exactly what its simulated exchange reported."""
    url = journal_url
    es_path = es_bars[0]
    killed = _spawn(url, es_path, W2)
    other = None
    try:
        killed_id = _wait_for_fills(url, killed, 0)
        other = _spawn(url, es_path, W3)  # starts while the first run is alive
        _wait_for_fills(url, killed, 2)
        other_id = _wait_for_fills(url, other, 1)
        assert _status(url, killed_id) == ("running", 1)  # its process is alive: not aborted by the second start
    finally:
        _kill(killed)
        if other is not None:
            _kill(other)
    assert _status(url, killed_id)[0] == "running"  # nothing has started since the kill

    a_session, a = _replay(url, es_bars, W1)  # the next start marks both killed runs aborted
    assert _status(url, killed_id) == ("aborted", 1)
    assert _status(url, other_id) == ("aborted", 1)
    other_fills = _journaled_fills(url, other_id)
    assert other_fills

    b_session, b = _replay(url, es_bars, W2)  # the same replay as the killed run: it continues that run
    assert b_session.journal is not None and b_session.journal.run_id == killed_id
    assert _status(url, killed_id) == ("completed", 2)
    c_session, c = _replay(url, es_bars, W1)  # the same replay as a completed run: a new run
    assert c_session.journal is not None and a_session.journal is not None
    assert c_session.journal.run_id not in (a_session.journal.run_id, killed_id)

    for session, summary in ((a_session, a), (b_session, b), (c_session, c)):
        assert session.journal is not None
        run_id = str(session.journal.run_id)
        assert _journaled_fills(url, run_id) == _fill_keys(summary)
        assert _status(url, run_id)[0] == "completed"
        (orders,) = _rows(url, "SELECT count(*) FROM orders WHERE run_id = :r", r=run_id)[0]
        assert orders == len(session.node.orders.orders())
        (snapshots,) = _rows(url, "SELECT count(*) FROM position_snapshots WHERE run_id = :r", r=run_id)[0]
        assert snapshots == len(summary.fills)  # one contract at a time: one position snapshot a fill
    # the killed run that was not restarted keeps the fills it journaled: the start of what its replay reports
    assert other_fills == _fill_keys(_unjournaled(es_bars, W3))[: len(other_fills)]
    (total,) = _rows(url, "SELECT count(*) FROM fills")[0]
    assert total == len(a.fills) + len(b.fills) + len(c.fills) + len(other_fills)
