"""The journal: bus subscription, batching, idempotency, back-pressure, durability, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from datetime import date
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from propdesk.core.bus import MessageBus
from propdesk.model.identifiers import AccountId
from propdesk.model.orders import OrderStatus
from propdesk.model.records import AuditEntry
from propdesk.risk.calendar import SessionRolled
from propdesk.risk.decisions import TradingState
from propdesk.risk.events import TradingStateChanged
from propdesk.storage.db import create_engine_for
from propdesk.storage.journal import BackpressureLevel, Journal, JournalClosedError
from propdesk.storage.repositories import Repository

from .factories import ACCOUNT, T0, accepted, account_snapshot, fill, filled_lifecycle, order, position_event, submitted


@pytest_asyncio.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine_for(db_url)
    try:
        yield eng
    finally:
        await eng.dispose()


class GatedRepository(Repository):
    """A real repository whose writes wait for ``gate`` and can be made to fail ``fail_times`` times."""

    def __init__(self, engine: AsyncEngine, *, gated: bool = False, fail_times: int = 0) -> None:
        super().__init__(engine)
        self.gate = asyncio.Event()
        if not gated:
            self.gate.set()
        self.fail_times = fail_times
        self.attempts = 0
        self.written_trade_ids: list[str] = []

    async def write(self, rows: Iterable[tuple[str, Any]]) -> int:
        rows = list(rows)
        self.attempts += 1
        await self.gate.wait()
        if self.fail_times:
            self.fail_times -= 1
            raise ConnectionError("lost postgresql://bob:hunter22@db:5432/pd")
        n = await super().write(rows)
        self.written_trade_ids += [r["trade_id"] for t, r in rows if t == "fills"]
        return n


async def _counts(engine: AsyncEngine) -> dict[str, int]:
    return await Repository(engine).counts()


@pytest.mark.asyncio
async def test_bus_events_are_journaled_once(engine: AsyncEngine) -> None:
    bus = MessageBus(timing=False)
    o = order("pd-1", qty=1)
    journal = Journal(engine, order_lookup=lambda cid: o if cid == "pd-1" else None, max_delay_s=0.005)
    journal.attach(bus)
    await journal.start()
    events = filled_lifecycle(bus, o)
    pos = position_event("opened", "T1", 1)
    bus.publish(pos.topic, pos)
    state = TradingStateChanged(
        account_id=ACCOUNT, ts_ns=T0, old=TradingState.ACTIVE, new=TradingState.HALTED, reasons=("R3",)
    )
    bus.publish(state.topic, state)
    bus.publish("data.bars.ESZ5.1m", object())  # not a journal topic: ignored
    audit = AuditEntry(
        ts_ns=T0,
        account=ACCOUNT,
        point="pre",
        action="DENY",
        state="ACTIVE",
        reasons=("R5: too big",),
        inputs={"api_key": "sk-live-123", "qty": 3},
    )
    journal.record(audit)
    await journal.flush()
    first = await _counts(engine)
    assert (first["order_events"], first["fills"], first["orders"], first["position_snapshots"]) == (3, 1, 1, 1)
    assert (first["risk_events"], first["accounts"]) == (2, 1)

    # everything replayed (a reconnect re-delivers): no new rows
    for ev in [*events, pos, state]:
        bus.publish(ev.topic, ev)
    journal.record(audit)
    await journal.flush()
    again = await _counts(engine)
    assert {k: n for k, n in again.items() if k != "events"} == {k: n for k, n in first.items() if k != "events"}
    # the event stream numbers what the bus delivered: each re-delivery is one more event (its payload the same)
    assert again["events"] == first["events"] + len(events) + 3

    repo = Repository(engine)
    [stored] = await repo.fills(ACCOUNT)
    assert stored == events[2]
    restored = await repo.order(ACCOUNT, "pd-1")
    assert restored is not None and restored.status is OrderStatus.FILLED and restored.broker_order_id == 991
    rows = await repo.risk_events(ACCOUNT, kind="decision_logged")
    assert rows[0]["payload"]["inputs"] == {"qty": 3}  # the secret-looking key is scrubbed
    await journal.stop()
    assert journal.stats().failures == 0


@pytest.mark.asyncio
async def test_slow_writer_raises_backpressure_and_drops_nothing(engine: AsyncEngine) -> None:
    levels: list[BackpressureLevel] = []
    journal = Journal(
        engine,
        capacity=20,
        high_watermark=10,
        low_watermark=5,
        batch_size=4,
        max_delay_s=0.001,
        on_backpressure=levels.append,
    )
    slow = GatedRepository(engine, gated=True)
    journal.repository = slow
    await journal.start()
    for i in range(50):  # the core publishes without yielding: the writer cannot run
        journal.record(fill(f"T{i}", ts=T0 + i))
    assert levels == [BackpressureLevel.SLOW, BackpressureLevel.HALT]
    assert journal.pending == 51  # 50 fills + the first sight of the account: nothing dropped
    slow.gate.set()
    await journal.flush()
    assert levels[-1] is BackpressureLevel.NORMAL
    assert journal.level is BackpressureLevel.NORMAL
    assert sorted(slow.written_trade_ids, key=lambda t: int(t[1:])) == [f"T{i}" for i in range(50)]
    assert (await _counts(engine))["fills"] == 50
    stats = journal.stats()
    assert stats.max_pending == 51 and stats.batches >= 13
    await journal.stop()


@pytest.mark.asyncio
async def test_failing_database_halts_retries_and_recovers(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    levels: list[BackpressureLevel] = []
    journal = Journal(engine, on_backpressure=levels.append, retry_delay_s=0.001, max_delay_s=0.001)
    journal.repository = GatedRepository(engine, fail_times=2)
    await journal.start()
    journal.record(fill("T1"))
    journal.record(fill("T2", ts=T0 + 1))
    await journal.flush()
    assert levels == [BackpressureLevel.HALT, BackpressureLevel.NORMAL]
    assert journal.stats().failures == 2
    assert [f.trade_id for f in await Repository(engine).fills(ACCOUNT)] == ["T1", "T2"]
    assert "ConnectionError" in caplog.text and "bob:***@db" in caplog.text
    assert "hunter22" not in caplog.text and "hunter22" not in str(journal.last_error)
    await journal.stop()


@pytest.mark.asyncio
async def test_fill_is_durable_before_it_is_acknowledged(engine: AsyncEngine) -> None:
    journal = Journal(engine, max_delay_s=0.001)
    gated = GatedRepository(engine, gated=True)
    journal.repository = gated
    await journal.start()
    f = fill("T1")
    journal.record(f)
    acked: list[bool] = []
    task = journal.journal_fill_then(f, lambda: acked.append("T1" in gated.written_trade_ids))
    unseen = fill("T2", ts=T0 + 5)  # a fill the journal never saw is recorded by durable() first
    durable = asyncio.ensure_future(journal.durable(unseen))
    await asyncio.sleep(0.02)
    assert not task.done() and not durable.done() and acked == []
    gated.gate.set()
    await asyncio.wait_for(asyncio.gather(task, durable), 5)
    assert acked == [True]
    assert set(gated.written_trade_ids) == {"T1", "T2"}
    await journal.stop()


@pytest.mark.asyncio
async def test_stop_writes_everything_then_refuses(engine: AsyncEngine) -> None:
    journal = Journal(engine, max_delay_s=10.0)  # a long batch delay: stop must not wait for it
    await journal.start()
    for i in range(7):
        journal.record(fill(f"T{i}", ts=T0 + i))
    await asyncio.wait_for(journal.stop(), 5)
    assert (await _counts(engine))["fills"] == 7
    with pytest.raises(JournalClosedError):
        journal.record(fill("T99"))


@pytest.mark.asyncio
async def test_account_snapshots_after_fills_and_at_the_session_roll(engine: AsyncEngine) -> None:
    bus = MessageBus(timing=False)
    snap = account_snapshot()
    journal = Journal(engine, snapshot_sources={ACCOUNT: lambda: snap}, max_delay_s=0.001)
    journal.attach(bus)
    await journal.start()
    f = fill("T1")
    bus.publish(f.topic, f)
    roll = SessionRolled(ended_trading_date=date(2025, 11, 13), trading_date=date(2025, 11, 14), ts_ns=T0 + 10**12)
    bus.publish(roll.topic, roll)
    journal.record_eod_balance(ACCOUNT, date(2025, 11, 13), snap.balance, T0 + 10**12)
    await journal.flush()
    repo = Repository(engine)
    counts = await repo.counts()
    assert counts["account_snapshots"] == 2  # one after the fill, one at the roll
    assert await repo.latest_account_snapshot(ACCOUNT) == snap
    eods = await repo.eod_balances(ACCOUNT)
    assert [d for d, _ in eods] == [date(2025, 11, 11), date(2025, 11, 12), date(2025, 11, 13)]
    assert eods[-1][1] == snap.balance
    await journal.stop()


def test_bad_sizes_rejected() -> None:
    eng = create_engine_for("sqlite+aiosqlite:///:memory:")
    with pytest.raises(ValueError, match="capacity"):
        Journal(eng, capacity=10, high_watermark=20)


@pytest.mark.asyncio
async def test_orders_without_fills_get_their_row(engine: AsyncEngine) -> None:
    """A working order (submitted, accepted, never filled) is journaled as an order row, not only as events: recovery
    restores working orders from these rows."""
    bus = MessageBus(timing=False)
    o = order("pd-9", qty=1)
    journal = Journal(engine, order_lookup=lambda cid: o if cid == "pd-9" else None, max_delay_s=0.005)
    journal.attach(bus)
    await journal.start()
    for ev in (submitted(cid="pd-9"), accepted(cid="pd-9")):
        o.apply(ev)
        bus.publish(ev.topic, ev)
    await journal.flush()
    restored = await Repository(engine).order(ACCOUNT, "pd-9")
    assert restored is not None and restored.status is OrderStatus.ACCEPTED
    await journal.stop()


@pytest.mark.asyncio
async def test_venue_sessions_keep_simulated_runs_apart_and_dedupe_a_broker_account(engine: AsyncEngine) -> None:
    """A simulated exchange's trade ids restart in every run: two runs journaled under their own venue session keep
    both fills ``1-1``. A broker whose trade ids are unique in the account (the empty venue session, as ProjectX):
    the same fill reported again in a later run (a restart of the same live account) is one row, owned by the run
    that journaled it first. Position snapshots follow the fills."""

    async def journal_run(run_id: str, venue: str, trade_id: str) -> None:
        journal = Journal(engine, max_delay_s=0.005)
        journal.set_run(run_id, venue)
        assert journal.scope == (run_id, venue, ())
        await journal.start()
        journal.record(fill(trade_id))
        journal.record(position_event("opened", trade_id, 1))
        await journal.stop()

    await journal_run("sim-1", "sim-1", "1-1")
    await journal_run("sim-2", "sim-2", "1-1")
    await journal_run("live-1", "", "9001")
    await journal_run("live-2", "", "9001")  # the restarted live session sees the same fill again
    repo = Repository(engine)
    got = [(j.run_id, j.venue_session, j.fill.trade_id) for j in await repo.journaled_fills(ACCOUNT)]
    assert sorted(got) == [("live-1", "", "9001"), ("sim-1", "sim-1", "1-1"), ("sim-2", "sim-2", "1-1")]
    counts = await _counts(engine)
    assert counts["fills"] == counts["position_snapshots"] == 3


@pytest.mark.asyncio
async def test_an_account_of_another_broker_keeps_its_own_venue_session_on_a_shared_journal(
    engine: AsyncEngine,
) -> None:
    """One journal for a simulated account (venue session: the run id) and a ProjectX account (``""``), as
    ``propdesk serve`` runs them: each fill is keyed by its own account's venue session, so a restarted service
    journals the ProjectX account's fill reported again once, and the simulated account's restarted ids apart."""
    live = int(ACCOUNT) + 1

    async def journal_run(run_id: str) -> None:
        journal = Journal(engine, max_delay_s=0.005)
        journal.set_account_venue(live, "")
        journal.set_run(run_id, run_id)
        assert journal.scope == (run_id, run_id, ((live, ""),))
        await journal.start()
        journal.record(fill("1-1"))  # the simulated account: its ids restart in every run
        journal.record(fill("9001", account=live, cid="pd-9"))  # ProjectX: reported again after the restart
        await journal.stop()

    await journal_run("serve-1")
    await journal_run("serve-2")
    repo = Repository(engine)
    sim = [(j.run_id, j.venue_session, j.fill.trade_id) for j in await repo.journaled_fills(ACCOUNT)]
    px = [(j.run_id, j.venue_session, j.fill.trade_id) for j in await repo.journaled_fills(AccountId(live))]
    assert sorted(sim) == [("serve-1", "serve-1", "1-1"), ("serve-2", "serve-2", "1-1")]
    assert px == [("serve-1", "", "9001")]
