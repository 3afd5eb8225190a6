"""Strategy runs (:mod:`propdesk.storage.runs`) on both backends: a run whose process is gone is marked aborted and a
live one is not; a replay whose newest run was aborted is continued under its id; runs are listed with their fill
and order counts; a run id or a unique start of one names a run. Also the process writer's start-up sweep (the
backtest path) and the heartbeat a run's journal writes."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Connection, create_engine, select, text

from propdesk.core.errors import ConfigError
from propdesk.node.journaling import NodeJournal
from propdesk.storage import rows as rw
from propdesk.storage import runs
from propdesk.storage.db import create_engine_for, sync_url
from propdesk.storage.models import StrategyRun
from propdesk.storage.repositories import Repository

from .factories import fill

HOST = socket.gethostname()
NOW = 1_800_000_000_000_000_000
SEC = 1_000_000_000
ME = runs.RunOwner.current()


@pytest.fixture
def conn(db_url: str) -> Iterator[Connection]:
    engine = create_engine(sync_url(db_url))
    try:
        with engine.begin() as c:
            yield c
    finally:
        engine.dispose()


def _dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _row(run_id: str, **changes: Any) -> dict[str, Any]:
    """A ``running`` run owned by this process, started a minute before ``NOW``, with ``changes``."""
    fields: dict[str, Any] = {
        "run_id": run_id,
        "kind": "replay",
        "strategy": "sma_cross",
        "symbol": "ESZ5",
        "started_ns": NOW - 60 * SEC,
        "host": HOST,
        "pid": ME.pid,
        "pid_start": ME.pid_start,
        "heartbeat_ns": NOW,
    }
    fields.update(changes)
    return rw.strategy_run_row(**fields)


def _status(conn: Connection, run_id: str) -> tuple[str, int | None, int]:
    t = StrategyRun.__table__.c
    r = conn.execute(select(t.status, t.ended_ns, t.attempts).where(t.id == run_id)).one()
    return str(r.status), r.ended_ns, int(r.attempts)


def test_a_run_whose_process_is_gone_is_aborted_and_a_live_one_is_not(conn: Connection) -> None:
    lease = int(runs.LEASE_S * SEC)
    cases = {
        "alive-here": _row("alive-here"),
        "dead-here": _row("dead-here", pid=_dead_pid(), pid_start=None),
        "reused-pid": _row("reused-pid", pid_start=(ME.pid_start or 0) + 1),  # our pid, another process's start
        "other-host-fresh": _row("other-host-fresh", host="elsewhere", pid=1, heartbeat_ns=NOW - lease + SEC),
        "other-host-stale": _row("other-host-stale", host="elsewhere", pid=1, heartbeat_ns=NOW - lease - SEC),
        "no-owner": _row(
            "no-owner", host="", pid=None, pid_start=None, heartbeat_ns=None, started_ns=NOW - lease - SEC
        ),
    }
    for row in cases.values():
        runs.claim_run(conn, row)
    done = _row("done-dead", pid=_dead_pid(), status=runs.COMPLETED)  # not running: left as it is
    runs.claim_run(conn, done)

    aborted = runs.sweep_runs(conn, now_ns=NOW)

    assert sorted(aborted) == ["dead-here", "no-owner", "other-host-stale", "reused-pid"]
    assert _status(conn, "alive-here") == (runs.RUNNING, None, 1)
    assert _status(conn, "other-host-fresh") == (runs.RUNNING, None, 1)
    assert _status(conn, "dead-here") == (runs.ABORTED, NOW, 1)  # ended at its last heartbeat
    assert _status(conn, "other-host-stale") == (runs.ABORTED, NOW - lease - SEC, 1)
    assert _status(conn, "no-owner") == (runs.ABORTED, NOW - lease - SEC, 1)  # no heartbeat (before 0002): its start
    assert _status(conn, "done-dead")[0] == runs.COMPLETED
    assert runs.sweep_runs(conn, now_ns=NOW) == []


def test_only_an_aborted_replay_is_continued(conn: Connection) -> None:
    killed = _row("killed", pid=_dead_pid(), pid_start=None, run_key="K1")
    runs.claim_run(conn, killed)
    assert runs.sweep_runs(conn, now_ns=NOW) == ["killed"]

    again = _row("new-1", run_key="K1", heartbeat_ns=NOW + SEC)
    stored, continued = runs.claim_run(conn, again)
    assert continued and stored["id"] == "killed" and stored["attempts"] == 2
    assert (stored["status"], stored["ended_ns"], stored["pid"], stored["heartbeat_ns"]) == (
        runs.RUNNING,
        None,
        ME.pid,
        NOW + SEC,
    )
    assert stored["started_ns"] == killed["started_ns"]  # the run keeps its start

    # the same key while that run is running (a concurrent replay) or once it completed: a new run each time
    stored, continued = runs.claim_run(conn, _row("new-2", run_key="K1"))
    assert not continued and stored["id"] == "new-2"
    conn.execute(text("UPDATE strategy_runs SET status = 'completed'"))
    stored, continued = runs.claim_run(conn, _row("new-3", run_key="K1", started_ns=NOW))
    assert not continued and stored["id"] == "new-3"
    stored, continued = runs.claim_run(conn, _row("other-key", run_key="K2"))
    assert not continued


@pytest.mark.asyncio
async def test_runs_are_listed_with_their_fills_and_orders(db_url: str) -> None:
    engine = create_engine_for(db_url)
    try:
        repo = Repository(engine)
        first, continued, _ = await repo.claim_run(_row("aaaa-1"))
        assert not continued
        await repo.claim_run(_row("aaaa-2", pid=_dead_pid(), pid_start=None, started_ns=NOW))
        rows: list[tuple[str, rw.Row]] = [
            ("fills", rw.fill_row(fill("1-1"), run_id="aaaa-1", venue_session="aaaa-1")),
            ("fills", rw.fill_row(fill("1-2"), run_id="aaaa-1", venue_session="aaaa-1")),
            ("fills", rw.fill_row(fill("1-1"), run_id="aaaa-2", venue_session="aaaa-2")),  # same trade id, run 2
            ("fills", rw.fill_row(fill("1-1"), run_id="aaaa-2", venue_session="aaaa-2")),  # the same fill again
        ]
        await repo.write(rows)
        listed = await repo.runs()
        assert [(r.run_id, r.status, r.fills, r.owner_gone) for r in listed] == [
            ("aaaa-1", runs.RUNNING, 2, False),
            ("aaaa-2", runs.RUNNING, 1, True),  # its process is gone: aborted at the next start, not by a listing
        ]
        assert listed[0].to_dict()["run_id"] == "aaaa-1" and first["id"] == "aaaa-1"
        assert await repo.resolve_run("aaaa-2") == "aaaa-2"
        with pytest.raises(ConfigError, match="ambiguous"):
            await repo.resolve_run("aaaa")
        with pytest.raises(ConfigError, match="no run 'zz'"):
            await repo.resolve_run("zz")
        assert [f.trade_id for f in await repo.fills(run_id="aaaa-1")] == ["1-1", "1-2"]
    finally:
        await engine.dispose()


def test_run_key_and_token() -> None:
    a = runs.run_key_of({"file": "/d/es.csv", "window": [1, 2], "params": {"fast": 10}})
    assert a == runs.run_key_of({"params": {"fast": 10}, "window": [1, 2], "file": "/d/es.csv"})  # order-free
    assert a != runs.run_key_of({"file": "/d/es.csv", "window": [1, 3], "params": {"fast": 10}})
    assert len(a) == 64
    assert runs.run_token_of("5B99b525-6ad6-4b29-b371-27c99b0d55f1") == "5b99b5256"


def test_owner_alive() -> None:
    assert runs.owner_alive(HOST, ME.pid, ME.pid_start) is True
    assert runs.owner_alive(HOST, _dead_pid(), None) is False
    assert runs.owner_alive("elsewhere", ME.pid, ME.pid_start) is None  # another host: the heartbeat decides


def test_a_backtest_journal_sweeps_at_start_and_beats(db_url: str) -> None:
    """The process writer (the backtest's journal, which opens without an event loop) marks the runs whose process
    is gone aborted when it starts; the run it records is owned by this process and its heartbeat moves."""
    engine = create_engine(sync_url(db_url))
    try:
        with engine.begin() as c:
            runs.claim_run(c, _row("killed", pid=_dead_pid(), pid_start=None))
        nj = NodeJournal(db_url)
        run_id = nj.open_sync(kind="backtest", strategy="sma_cross", symbol="ESZ5")
        nj.journal.flush_sync()
        with engine.connect() as c:
            assert _status(c, "killed")[0] == runs.ABORTED
            first_beat = c.execute(text("SELECT heartbeat_ns FROM strategy_runs WHERE id = :r"), {"r": run_id}).one()
        time.sleep(0.01)
        nj._next_beat = 0.0  # the heartbeat is due
        nj.pump_sync()
        nj.journal.flush_sync()
        nj.close_sync()
        with engine.connect() as c:
            r = c.execute(
                text("SELECT status, pid, host, heartbeat_ns, ended_ns FROM strategy_runs WHERE id = :r"), {"r": run_id}
            ).one()
        assert (r.status, r.pid, r.host) == (runs.COMPLETED, os.getpid(), HOST)
        assert first_beat[0] < r.heartbeat_ns == r.ended_ns
    finally:
        engine.dispose()


def test_close_marks_a_failed_or_stopped_replay(db_url: str) -> None:
    async def go(status: str) -> str:
        nj = NodeJournal(db_url)
        run_id = await nj.open(kind="replay", strategy="sma_cross", symbol="ESZ5", run_key=status)
        await nj.close(status=status)
        return run_id

    for status in (runs.STOPPED, runs.FAILED):
        run_id = asyncio.run(go(status))
        engine = create_engine(sync_url(db_url))
        try:
            with engine.connect() as c:
                assert _status(c, run_id)[0] == status
        finally:
            engine.dispose()
