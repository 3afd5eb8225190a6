"""The journal's process writer (and its capture format), on SQLite and PostgreSQL: batches arrive, durability
waits for the commit, a writer crash halts and recovers without loss, a slow writer drops nothing; the fast row
builders equal the reference ones in rows.py; the node wiring (gate, back-pressure, strategy runs)."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from propdesk.backtest.engine import run_backtest
from propdesk.brokers.sim.broker import SimBroker
from propdesk.core.bus import MessageBus
from propdesk.core.clock import SimClock
from propdesk.core.errors import ConfigError
from propdesk.model.data import BarSeries, Timeframe
from propdesk.model.enums import Side
from propdesk.model.events import OrderCanceled, OrderRejected
from propdesk.model.identifiers import AccountId, ClientOrderId
from propdesk.model.orders import OrderStatus
from propdesk.node import TradingNode
from propdesk.node.journaling import JournalGate, NodeJournal
from propdesk.risk.decisions import TradingState
from propdesk.storage import rows as rw
from propdesk.storage import wire
from propdesk.storage.db import create_engine_for
from propdesk.storage.journal import BackpressureLevel, Journal
from propdesk.storage.repositories import Repository
from propdesk.strategies.registry import build_strategy

from .factories import ACCOUNT, T0, accepted, fill, filled_lifecycle, order, position_event, submitted


@pytest_asyncio.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine_for(db_url)
    try:
        yield eng
    finally:
        await eng.dispose()


def _pid(journal: Journal) -> int:
    proc = journal._proc
    assert proc is not None
    return proc.pid


# ------------------------------------------------------------------------------------------------ capture format


def test_fast_rows_equal_the_reference_rows() -> None:
    o = order("pd-1", qty=1)
    events: list[Any] = [
        submitted(),
        accepted(),
        fill("T1", cid="pd-1", side=Side.SELL),
        OrderRejected(client_order_id=ClientOrderId("pd-2"), account_id=ACCOUNT, ts_event_ns=T0, reason="no"),
        OrderCanceled(client_order_id=ClientOrderId("pd-3"), account_id=AccountId(9), ts_event_ns=T0 + 7),
    ]
    for ev in events[:3]:
        o.apply(ev)
    pos = [position_event("opened", "T1", 1), position_event("closed", "T2", 0)]
    items = [wire.encode_fill(e) if type(e).__name__ == "OrderFilled" else wire.encode_order_event(e) for e in events]
    items += [wire.encode_position(p) for p in pos]
    batch: wire.Batch = (len(items), items, [wire.order_state(o)], ("run-1", "venue-1", ()))
    data = wire.dumps(batch)
    assert data[:1] == b"K"  # plain values: MessagePack
    back = wire.loads(data)
    assert back[:2] == batch[:2] and back[3] == ("run-1", "venue-1", ())
    assert back[2] == [(*s[:14], list(s[14]), *s[15:]) for s in batch[2]]  # nested arrays come back as lists
    got = wire.rows_of(back[1], back[2], scope=back[3])
    run = {"run_id": "run-1"}
    scoped = {"run_id": "run-1", "venue_session": "venue-1"}
    expected: list[tuple[str, rw.Row]] = [("orders", rw.order_row(o, **run))]
    for e in events:
        expected.append(("order_events", rw.order_event_row(e, **run)))
        if type(e).__name__ == "OrderFilled":
            expected.append(("fills", rw.fill_row(e, 991, **scoped)))
    expected += [("position_snapshots", rw.position_event_row(p, **scoped)) for p in pos]
    assert got == expected
    unscoped = wire.rows_of(back[1], back[2])  # outside a run: no run, the empty venue session
    assert [r["run_id"] for _t, r in unscoped] == [None] * len(expected)
    assert {r["venue_session"] for t, r in unscoped if t in ("fills", "position_snapshots")} == {""}
    assert wire.decode_fill(items[2]) == events[2]
    assert wire.decode_position(items[-1]) == pos[-1]


def test_batches_with_objects_are_pickled_and_come_back_whole() -> None:
    """A batch whose caller says it holds objects (a modify's prices, a risk event) is pickled, so the objects come
    back as themselves (MessagePack would write a dataclass as a map of its fields); a plain batch with an int beyond
    64 bits falls back to pickle too; an OCO order's linked ids survive either way; foreign bytes are refused."""
    from propdesk.model.events import OrderUpdated  # noqa: PLC0415
    from propdesk.model.price import Price  # noqa: PLC0415

    assert {OrderUpdated} == wire.OBJECT_EVENTS
    upd = OrderUpdated(
        client_order_id=ClientOrderId("pd-1"), account_id=ACCOUNT, ts_event_ns=T0, limit_price=Price.of("6501")
    )
    o = order("pd-1")
    o.linked_ids = (ClientOrderId("pd-2"),)
    batch: wire.Batch = (1, [wire.encode_order_event(upd)], [wire.order_state(o)], wire.NO_SCOPE)
    data = wire.dumps(batch, plain=False)
    assert data[:1] == b"P"
    back = wire.loads(data)
    assert back == batch and wire.decode_order_event(back[1][0]) == upd
    huge: wire.Batch = (1, [(wire.K_ROWS, 0, [("t", {"v": 2**70})])], [], wire.NO_SCOPE)
    assert wire.dumps(huge)[:1] == b"P" and wire.loads(wire.dumps(huge)) == huge
    row = wire.order_state_row(wire.loads(wire.dumps((0, [], [wire.order_state(o)], wire.NO_SCOPE)))[2][0])
    assert row == rw.order_row(o) and row["linked_ids"] == '["pd-2"]'
    with pytest.raises(ValueError, match="not a journal batch"):
        wire.loads(b"Xabc")
    with pytest.raises(ValueError, match="damaged journal batch"):
        wire.loads(b"K\xc1")


def test_run_rows_take_the_driver_path_on_sqlite_with_statements_compiled_at_start(tmp_path: Any) -> None:
    """On SQLite a run's rows (``strategy_runs`` upserted by id, ``backtest_results`` insert-or-ignore) go through
    the statements the writer compiled before reporting ready (no compile at the end of a backtest); an infinite
    profit factor is stored; a replayed result is ignored."""
    from sqlalchemy import text  # noqa: PLC0415

    from propdesk.storage import writer as wr  # noqa: PLC0415
    from propdesk.storage.db import create_sync_engine_for  # noqa: PLC0415

    eng = create_sync_engine_for(f"sqlite:///{tmp_path / 'runs.sqlite3'}")
    wr._migrate(eng)
    wr._SQL_CACHE.clear()
    fields: dict[str, Any] = {"run_id": "r1", "kind": "backtest", "strategy": "sma_cross", "symbol": "ESZ5"}
    try:
        with eng.connect() as conn:
            wr._warm_run_statements(conn)
            warmed = set(wr._SQL_CACHE)
            assert {k[1] for k in warmed} == {"strategy_runs", "backtest_results"}
            result = rw.backtest_result_row("r1", {"bars": 3, "profit_factor": float("inf"), "net_pnl_usd": "1.25"})
            wr.write_rows_sync(conn, "sqlite", [("strategy_runs", rw.strategy_run_row(**fields, started_ns=1))])
            conn.commit()
            end = rw.strategy_run_row(**fields, started_ns=1, status="done", ended_ns=5)
            wr.write_rows_sync(conn, "sqlite", [("strategy_runs", end), ("backtest_results", result)])
            wr.write_rows_sync(conn, "sqlite", [("backtest_results", result)])
            conn.commit()
            assert set(wr._SQL_CACHE) == warmed
            assert conn.execute(text("SELECT id, status, ended_ns FROM strategy_runs")).all() == [("r1", "done", 5)]
            stored = conn.execute(text("SELECT run_id, bars, profit_factor, net_pnl_cents FROM backtest_results"))
            assert stored.all() == [("r1", 3, float("inf"), 125)]
    finally:
        eng.dispose()


@pytest.mark.asyncio
async def test_a_raw_modify_capture_reaches_the_database_with_its_prices(db_url: str, engine: AsyncEngine) -> None:
    """An ``OrderUpdated`` taken raw from the bus (its item holds ``Price`` objects) makes its cut a pickled batch:
    the event's row carries the new price, next to plain events cut with it."""
    from propdesk.model.events import OrderUpdated  # noqa: PLC0415
    from propdesk.model.price import Price  # noqa: PLC0415

    bus = MessageBus(timing=False)
    journal = Journal(db_url, writer="process", max_delay_s=10.0)
    journal.attach(bus)
    await journal.start()
    for ev in (
        submitted(),
        OrderUpdated(
            client_order_id=ClientOrderId("pd-1"),
            account_id=ACCOUNT,
            ts_event_ns=T0 + 5,
            limit_price=Price.of("6501.5"),
        ),
    ):
        bus.publish(ev.topic, ev)
    await asyncio.wait_for(journal.flush(), 20)
    events = await Repository(engine).order_events(ACCOUNT, "pd-1")
    assert [e["kind"] for e in events] == ["submitted", "updated"]
    assert events[1]["payload"]["limit_price"] == Price.of("6501.5").raw
    await journal.stop()


# ------------------------------------------------------------------------------------------------ process writer


@pytest.mark.asyncio
async def test_batches_arrive_once_and_orders_follow(db_url: str, engine: AsyncEngine) -> None:
    bus = MessageBus(timing=False)
    o = order("pd-1", qty=1)
    journal = Journal(db_url, writer="process", order_lookup=lambda cid: o if cid == "pd-1" else None)
    journal.attach(bus)
    await journal.start()
    events = filled_lifecycle(bus, o)
    pos = position_event("opened", "T1", 1)
    bus.publish(pos.topic, pos)
    await journal.flush()
    counts = await Repository(engine).counts()
    assert (counts["order_events"], counts["fills"], counts["orders"], counts["position_snapshots"]) == (3, 1, 1, 1)
    for ev in [*events, pos]:  # a replay after a reconnect: no new rows
        bus.publish(ev.topic, ev)
    await journal.flush()
    again = await Repository(engine).counts()
    assert {k: n for k, n in again.items() if k != "events"} == {k: n for k, n in counts.items() if k != "events"}
    assert again["events"] == counts["events"] + len(events) + 1  # the stream numbers each re-delivery
    restored = await Repository(engine).order(ACCOUNT, "pd-1")
    assert restored is not None and restored.status is OrderStatus.FILLED and restored.broker_order_id == 991
    [stored] = await Repository(engine).fills(ACCOUNT)
    assert stored == events[2]
    await journal.stop()
    stats = journal.stats()
    assert stats.pending == 0 and stats.failures == 0 and stats.committed == stats.enqueued == 9


@pytest.mark.asyncio
@pytest.mark.timeout(60)
async def test_stop_right_after_a_hurried_cut_was_scheduled_writes_everything(db_url: str, engine: AsyncEngine) -> None:
    """Regression: a backlog over ``batch_size`` schedules an immediate cut (a "hurry"); ``stop()`` before the loop
    ran it used to cancel it while it stayed marked pending, and the final flush then waited forever."""
    journal = Journal(db_url, writer="process", batch_size=3, max_delay_s=10.0)
    bus = MessageBus(timing=False)
    await journal.start()
    journal.attach(bus)
    fills = [fill(f"H{i}") for i in range(5)]
    for f in fills:  # through the bus captures, as a node publishes them: the third one hurries the cut
        bus.publish("events.order.filled", f)
    await journal.stop()  # in the same step: the hurried cut has not run (a regression hangs: timeout below)
    assert sorted(x.trade_id for x in await Repository(engine).fills(ACCOUNT)) == [f.trade_id for f in fills]


@pytest.mark.asyncio
async def test_durable_resolves_only_after_the_commit(db_url: str, engine: AsyncEngine) -> None:
    journal = Journal(db_url, writer="process", max_delay_s=10.0)
    await journal.start()
    os.kill(_pid(journal), signal.SIGSTOP)  # the writer cannot commit
    try:
        f = fill("T1")
        journal.record(f)
        acked: list[int] = []
        task = journal.journal_fill_then(f, lambda: acked.append(journal.committed_seq))
        await asyncio.sleep(0.2)
        assert not task.done() and acked == []
        assert (await Repository(engine).counts())["fills"] == 0
    finally:
        os.kill(_pid(journal), signal.SIGCONT)
    await asyncio.wait_for(task, 20)
    assert acked and acked[0] >= 2  # the account's first sight and the fill
    assert [x.trade_id for x in await Repository(engine).fills(ACCOUNT)] == ["T1"]
    await journal.stop()


@pytest.mark.asyncio
async def test_bus_captures_are_cut_without_a_flush(db_url: str, engine: AsyncEngine) -> None:
    """Events taken raw from the bus (the buffer's append and the check that schedules a cut) reach the database by
    that cut alone; a message of another type on an order topic is skipped at the cut without harming the batch."""
    bus = MessageBus(timing=False)
    o = order("pd-1", qty=1)
    journal = Journal(db_url, writer="process", order_lookup=lambda cid: o if cid == "pd-1" else None, max_delay_s=0.01)
    journal.attach(bus)
    await journal.start()
    filled_lifecycle(bus, o)
    bus.publish("events.order.filled", object())  # not an order event
    for _ in range(500):  # no flush, no record(): only the scheduled cut
        if journal.committed_seq >= 5:
            break
        await asyncio.sleep(0.01)
    counts = await Repository(engine).counts()
    assert (counts["order_events"], counts["fills"], counts["orders"], counts["accounts"]) == (3, 1, 1, 1)
    assert journal.stats().skipped == 1 and journal.pending == 0
    stored = await Repository(engine).order(ACCOUNT, "pd-1")
    assert stored is not None and stored.status is OrderStatus.FILLED
    await journal.stop()


@pytest.mark.asyncio
async def test_durable_finds_a_fill_still_waiting_in_the_buffer(db_url: str, engine: AsyncEngine) -> None:
    """``durable`` of a fill captured from the bus but not cut yet cuts it and waits for its commit; the fill is
    not recorded a second time."""
    bus = MessageBus(timing=False)
    journal = Journal(db_url, writer="process", max_delay_s=10.0)
    journal.attach(bus)
    await journal.start()
    f = fill("T7")
    bus.publish(f.topic, f)
    assert journal.committed_seq == 0
    await asyncio.wait_for(journal.durable(f), 20)
    assert journal.stats().enqueued == 2  # the account's first sight and the fill, once
    assert [x.trade_id for x in await Repository(engine).fills(ACCOUNT)] == ["T7"]
    await journal.stop()


@pytest.mark.asyncio
async def test_writer_crash_halts_then_recovers_without_loss(db_url: str, engine: AsyncEngine) -> None:
    levels: list[BackpressureLevel] = []
    journal = Journal(db_url, writer="process", on_backpressure=levels.append, retry_delay_s=0.05, max_delay_s=0.001)
    await journal.start()
    journal.record(fill("T0"))
    await journal.flush()
    first = _pid(journal)
    os.kill(first, signal.SIGSTOP)
    for i in range(1, 40):
        journal.record(fill(f"T{i}", ts=T0 + i))
    await asyncio.sleep(0.05)  # batches cut and sent, never acknowledged
    os.kill(first, signal.SIGKILL)
    for _ in range(200):
        if journal.level is BackpressureLevel.HALT:
            break
        await asyncio.sleep(0.01)
    assert journal.level is BackpressureLevel.HALT
    assert journal.last_error is not None and "died" in journal.last_error
    await asyncio.wait_for(journal.flush(), 30)  # a new writer gets every unacknowledged batch again
    assert _pid(journal) != first
    assert journal.level is BackpressureLevel.NORMAL and levels[-1] is BackpressureLevel.NORMAL
    assert BackpressureLevel.HALT in levels
    trade_ids = [x.trade_id for x in await Repository(engine).fills(ACCOUNT)]
    assert sorted(trade_ids, key=lambda t: int(t[1:])) == [f"T{i}" for i in range(40)]
    assert journal.stats().restarts == 1
    await journal.stop()


def test_batches_go_straight_into_the_pipe_until_it_is_full_then_through_the_sender(tmp_path: Any) -> None:
    """The core's thread writes a batch into the (enlarged) pipe itself while it has room; once the pipe is full (a
    stopped writer) the rest wait for the sender thread, in order, and nothing is lost or reordered: every record is
    committed after the writer resumes."""
    from propdesk.storage.writer import PIPE_BYTES  # noqa: PLC0415

    journal = Journal(f"sqlite:///{tmp_path / 'pipe.sqlite3'}", writer="process", capacity=10**6, migrate=True)
    journal.start_sync()
    proc = journal._proc
    assert proc is not None and proc._direct is not None
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        n = 0
        while proc._queued == 0:  # batches of ~70 KB until one no longer fits
            for _ in range(500):
                journal.record(fill(f"T{n}", ts=T0 + n))
                n += 1
            journal.pump()
            assert n < 4 * PIPE_BYTES // 100, "the pipe never filled"
        for _ in range(3):  # more batches queue behind the sender thread, not around it
            for _ in range(500):
                journal.record(fill(f"T{n}", ts=T0 + n))
                n += 1
            journal.pump()
        assert proc._queued >= 1
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    journal.flush_sync(60)
    assert proc._queued == 0 and journal.pending == 0
    journal.stop_sync()

    async def trade_ids() -> list[str]:
        eng = create_engine_for(f"sqlite+aiosqlite:///{tmp_path / 'pipe.sqlite3'}")
        try:
            return [f.trade_id for f in await Repository(eng).fills(ACCOUNT)]
        finally:
            await eng.dispose()

    got = asyncio.run(trade_ids())
    assert sorted(got, key=lambda t: int(t[1:])) == [f"T{i}" for i in range(n)]


@pytest.mark.asyncio
async def test_slow_writer_raises_backpressure_and_drops_nothing(db_url: str, engine: AsyncEngine) -> None:
    levels: list[BackpressureLevel] = []
    journal = Journal(
        db_url,
        writer="process",
        capacity=40,
        high_watermark=20,
        low_watermark=10,
        batch_size=5,
        max_delay_s=0.001,
        on_backpressure=levels.append,
    )
    await journal.start()
    pid = _pid(journal)
    os.kill(pid, signal.SIGSTOP)  # a writer that does not keep up
    try:
        for i in range(100):
            journal.record(fill(f"T{i}", ts=T0 + i))
            if i % 10 == 9:
                await asyncio.sleep(0.005)  # cuts happen; nothing is acknowledged
        assert levels == [BackpressureLevel.SLOW, BackpressureLevel.HALT]
        assert journal.pending == 101
    finally:
        os.kill(pid, signal.SIGCONT)
    await asyncio.wait_for(journal.flush(), 30)
    assert journal.level is BackpressureLevel.NORMAL
    assert (await Repository(engine).counts())["fills"] == 100
    assert journal.stats().max_pending == 101
    await journal.stop()


def test_sync_driver_pumps_and_stops(db_url: str) -> None:
    journal = Journal(db_url, writer="process")
    journal.start_sync(wait_ready=False)
    for i in range(25):
        journal.record(fill(f"T{i}", ts=T0 + i))
        if i % 10 == 0:
            journal.pump()
    journal.stop_sync(30)
    stats = journal.stats()
    assert stats.pending == 0 and stats.committed == 26

    async def count() -> int:
        eng = create_engine_for(db_url)
        try:
            return (await Repository(eng).counts())["fills"]
        finally:
            await eng.dispose()

    assert asyncio.run(count()) == 25


def test_process_writer_needs_a_file() -> None:
    with pytest.raises(ConfigError, match="in-memory"):
        Journal("sqlite+aiosqlite:///:memory:", writer="process")


# ------------------------------------------------------------------------------------------------ node wiring


class _Guard:
    def __init__(self) -> None:
        self.conditions: dict[str, tuple[TradingState, str]] = {}

    def set_condition(self, key: str, state: TradingState, reason: str) -> None:
        self.conditions[key] = (state, reason)

    def clear_condition(self, key: str) -> None:
        self.conditions.pop(key, None)


class _Risk:
    def __init__(self) -> None:
        self.guard = _Guard()


def test_gate_lets_only_reducing_orders_through_when_behind(tmp_path: Any) -> None:
    level = [BackpressureLevel.NORMAL]
    net = {"ESZ5": 2}
    gate = JournalGate(lambda: level[0], None, lambda symbol: net.get(symbol, 0))
    buy, sell3, sell1 = order("a", qty=1), order("b", qty=3, side=Side.SELL), order("c", qty=1, side=Side.SELL)
    assert gate.check(buy, None) is None  # type: ignore[arg-type]
    level[0] = BackpressureLevel.SLOW
    assert "SLOW" in str(gate.check(buy, None))  # type: ignore[arg-type]
    assert gate.check(sell3, None) is not None  # type: ignore[arg-type]  # would reverse the position
    assert gate.check(sell1, None) is None  # type: ignore[arg-type]
    level[0] = BackpressureLevel.HALT
    assert gate.check(sell1, None) is None  # type: ignore[arg-type]  # a halted journal never traps a position

    nj = NodeJournal(f"sqlite:///{tmp_path / 'j.sqlite3'}")
    risk = _Risk()
    nj.node_hook(None, risk=risk)
    nj._on_level(BackpressureLevel.HALT)
    assert risk.guard.conditions["journal"][0] is TradingState.REDUCING  # new exposure stops; nothing is liquidated
    nj._on_level(BackpressureLevel.SLOW)
    assert risk.guard.conditions["journal"][0] is TradingState.REDUCING
    nj._on_level(BackpressureLevel.NORMAL)
    assert risk.guard.conditions == {}


def test_journal_gate_is_in_the_order_path_only_while_behind(tmp_path: Any) -> None:
    """At NORMAL the node's order manager asks the risk gate alone (nothing in the order path); SLOW and HALT put the
    journal's gate in front of it, NORMAL takes it out again."""
    clock = SimClock(T0)
    nj = NodeJournal(f"sqlite:///{tmp_path / 'g.sqlite3'}")
    node = TradingNode(clock=clock, broker=SimBroker(clock, account_id=int(ACCOUNT)), risk=nj.node_hook(None))
    assert node.orders.gate is None
    nj.journal._set_level(BackpressureLevel.SLOW)  # as a backlog over the high watermark does
    gate = node.orders.gate
    assert isinstance(gate, JournalGate)
    assert "SLOW" in str(gate.check(order("x", qty=1), node.orders))
    nj.journal._set_level(BackpressureLevel.HALT)
    assert node.orders.gate is gate
    nj.journal._set_level(BackpressureLevel.NORMAL)
    assert node.orders.gate is None


def test_backtest_with_journal_records_run_events_and_result(tmp_path: Any) -> None:
    n = 600
    ts = T0 - T0 % 60_000_000_000 + np.arange(n, dtype=np.int64) * 60_000_000_000
    close = 6500 + np.round(np.sin(np.arange(n) / 15) * 40) * 0.25 * 4
    bars = BarSeries(
        "ESZ5", Timeframe.parse("1m"), ts, ts + 60_000_000_000, close, close + 1, close - 1, close, np.full(n, 10.0)
    )
    url = f"sqlite:///{tmp_path / 'bt.sqlite3'}"
    off = run_backtest(bars, build_strategy("sma_cross", {}))
    nj = NodeJournal(url)
    on = run_backtest(bars, build_strategy("sma_cross", {}), journal=nj)
    assert [f.trade_id for f in on.fills] == [f.trade_id for f in off.fills] and on.fills

    async def read() -> tuple[list[str], dict[str, Any] | None, dict[str, int]]:
        eng = create_engine_for(url)
        try:
            repo = Repository(eng)
            assert nj.run_id is not None
            return [f.trade_id for f in await repo.fills(1)], await repo.backtest_result(nj.run_id), await repo.counts()
        finally:
            await eng.dispose()

    trade_ids, report, counts = asyncio.run(read())
    assert trade_ids == [f.trade_id for f in on.fills]
    assert report is not None and report["fills"] == len(on.fills)
    assert counts["strategy_runs"] == 1 and counts["orders"] == counts["order_events"] // 3
