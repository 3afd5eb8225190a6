"""When the journal cuts its batches on an event loop: at once while the writer is idle (no fixed delay), and, while
the writer is busy with an earlier batch, at that batch's commit (the records captured meanwhile go as one
transaction: a group commit); the order of the sequence is kept either way. On SQLite and PostgreSQL, both writers;
the writer process's retry of a refused transaction on a new connection."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from propdesk.core.bus import MessageBus
from propdesk.storage import wire
from propdesk.storage.db import create_engine_for
from propdesk.storage.journal import BackpressureLevel, Journal, WriterKind
from propdesk.storage.migrate import upgrade_async
from propdesk.storage.repositories import Repository

from .factories import T0, fill, filled_lifecycle, order, position_event
from .test_journal import GatedRepository

LONG_DELAY_S = 3600.0
"""A ``max_delay_s`` no test waits for: whatever is committed was cut without it."""


@pytest_asyncio.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine_for(db_url)
    try:
        yield eng
    finally:
        await eng.dispose()


class Published:
    """A journal listener: the sequence numbers of the committed batches, and a wait for a number."""

    def __init__(self) -> None:
        self.batches: list[tuple[int, int]] = []  # (first seq, last seq) of each batch
        self._changed = asyncio.Event()

    def __call__(self, last_seq: int, items: list[wire.Item], _scope: wire.Scope) -> None:
        self.batches.append((last_seq - len(items) + 1, last_seq))
        self._changed.set()

    async def until(self, seq: int) -> None:
        """Wait (up to 10 s, a failure, not a figure) until every record up to ``seq`` is published."""

        async def wait() -> None:
            while not self.batches or self.batches[-1][1] < seq:
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(wait(), 10.0)


@pytest.mark.asyncio
@pytest.mark.parametrize("writer", ["process", "inline"])
async def test_an_idle_writer_gets_a_bus_capture_at_once(db_url: str, writer: WriterKind) -> None:
    """Attached before it starts (as the node does), the journal's bus captures schedule their own cut: with the
    writer idle, the fill is committed and published without waiting ``max_delay_s`` and without a flush."""
    bus = MessageBus(timing=False)
    journal = Journal(db_url, max_delay_s=LONG_DELAY_S, writer=writer)
    published = Published()
    journal.add_listener(published)
    journal.attach(bus)
    await journal.start()
    try:
        events = filled_lifecycle(bus, order("pd-1", qty=1))
        pos = position_event("opened", "T1", 1)
        bus.publish(pos.topic, pos)
        last = len(events) + 2  # the order events, the position, and the account's first sight (cut with them)
        await published.until(last)
        first, end = published.batches[0][0], published.batches[-1][1]
        assert (first, end) == (1, last) == (1, journal.stats().enqueued)  # numbered 1..last, gap-free, in order
        assert [b for b, _ in published.batches[1:]] == [e + 1 for _, e in published.batches[:-1]]
        assert journal.committed_seq == last
    finally:
        await journal.stop()
    counts = await _counts(db_url)
    assert (counts["order_events"], counts["fills"], counts["position_snapshots"]) == (3, 1, 1)


@pytest.mark.asyncio
async def test_records_captured_while_the_writer_is_busy_go_in_one_transaction_at_its_commit(
    engine: AsyncEngine,
) -> None:
    """While a batch is being written, later records wait (not ``max_delay_s``: its commit) and then go together."""
    journal = Journal(engine, max_delay_s=LONG_DELAY_S)
    gated = GatedRepository(engine, gated=True)
    journal.repository = gated
    published = Published()
    journal.add_listener(published)
    await journal.start()
    try:
        journal.record(fill("T1"))
        for _ in range(5):  # the cut of T1 and its write start; the write waits for the gate
            await asyncio.sleep(0)
        assert gated.attempts == 1
        journal.record(fill("T2", ts=T0 + 1))
        await asyncio.sleep(0)
        journal.record(fill("T3", ts=T0 + 2))
        for _ in range(5):
            await asyncio.sleep(0)
        assert gated.attempts == 1 and published.batches == []  # T2 and T3 wait for the writer
        gated.gate.set()
        await published.until(journal.stats().enqueued)
        assert gated.attempts == 2  # T1's transaction, then one for T2 and T3
        assert gated.written_trade_ids == ["T1", "T2", "T3"]
        assert len(published.batches) == 2
        assert published.batches[1][0] == published.batches[0][1] + 1
    finally:
        await journal.stop()


@pytest.mark.asyncio
async def test_a_detached_journal_does_not_attach_again_at_start(db_url: str) -> None:
    """``detach`` before ``start``: the start does not subscribe again (what it captures then is only recorded)."""
    bus = MessageBus(timing=False)
    journal = Journal(db_url, max_delay_s=LONG_DELAY_S, writer="process")
    journal.attach(bus)
    journal.detach()
    await journal.start()
    try:
        filled_lifecycle(bus, order("pd-1", qty=1))
        assert journal.stats().enqueued == 0
        journal.record(fill("T9"))
        await journal.flush()
        assert journal.committed_seq == journal.stats().enqueued > 0
    finally:
        await journal.stop()


async def _counts(url: str) -> dict[str, int]:
    eng = create_engine_for(url)
    try:
        return await Repository(eng).counts()
    finally:
        await eng.dispose()


@pytest.mark.asyncio
async def test_cut_listeners_see_a_batch_before_its_commit_and_commit_listeners_after(engine: AsyncEngine) -> None:
    journal = Journal(engine, max_delay_s=LONG_DELAY_S)
    gated = GatedRepository(engine, gated=True)
    journal.repository = gated
    cut: list[tuple[int, list[wire.Item]]] = []
    committed: list[tuple[int, list[wire.Item]]] = []
    journal.add_cut_listener(lambda last, items, _scope: cut.append((last, items)))
    journal.add_listener(lambda last, items, _scope: committed.append((last, items)))
    await journal.start()
    try:
        journal.record(fill("T1"))
        last = journal.sequence_point()
        assert [s for s, _ in cut] == [last] and committed == [] and journal.committed_seq == 0
        gated.gate.set()
        await journal.flush()
        assert committed == cut
    finally:
        await journal.stop()
    assert journal.remove_cut_listener(cut.append) is False


@pytest.mark.asyncio
async def test_the_writer_process_retries_a_refused_transaction_on_a_new_connection(tmp_path: Path) -> None:
    """The writer keeps one connection; a transaction the database refuses (here: SQLite locked by another writer
    past the busy timeout) is reported (HALT), retried on a new connection and written once the lock is gone."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'locked.sqlite3'}"
    await upgrade_async(url)
    levels: list[BackpressureLevel] = []
    journal = Journal(url, writer="process", retry_delay_s=0.01, max_retry_delay_s=0.05, on_backpressure=levels.append)
    await journal.start()
    locker = sqlite3.connect(tmp_path / "locked.sqlite3", isolation_level=None)
    try:
        journal.record(fill("T1"))
        await journal.flush()  # the writer's connection is open and has written
        locker.execute("BEGIN EXCLUSIVE")
        journal.record(fill("T2", ts=T0 + 1))
        for _ in range(3000):  # the writer's busy timeout (5 s) runs out, then it reports the failure
            if journal.stats().failures:
                break
            await asyncio.sleep(0.01)
        assert journal.stats().failures >= 1 and journal.level is BackpressureLevel.HALT
        locker.execute("COMMIT")
        await asyncio.wait_for(journal.flush(), 30.0)
        assert journal.level is BackpressureLevel.NORMAL and levels[-1] is BackpressureLevel.NORMAL
    finally:
        locker.close()
        await journal.stop()
    assert (await _counts(url))["fills"] == 2
