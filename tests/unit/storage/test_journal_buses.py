"""One journal attached to several buses (``propdesk serve``: a node and a bus per account): the accounts' records
get one gap-free event sequence, each account's session roll snapshots only that account, each account's orders
are looked up in its own order manager, and a detach unsubscribes from every bus. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import text

from propdesk.core import topics
from propdesk.core.bus import MessageBus
from propdesk.model.enums import Side
from propdesk.model.identifiers import AccountId, ClientOrderId
from propdesk.model.orders import Order, OrderType
from propdesk.model.price import Price
from propdesk.risk.calendar import SessionRolled
from propdesk.storage.db import create_engine_for
from propdesk.storage.journal import Journal
from propdesk.storage.repositories import Repository
from tests.unit.storage.conftest import db_url, empty_db_url, pg_database  # noqa: F401
from tests.unit.storage.factories import T0, account_snapshot, fill


@pytest.mark.asyncio
async def test_two_buses_one_gap_free_sequence_partitioned_by_account(db_url: str) -> None:  # noqa: F811
    engine = create_engine_for(db_url)
    buses = {1: MessageBus(timing=False), 2: MessageBus(timing=False)}
    orders = {
        aid: Order(
            client_order_id=ClientOrderId(f"pd-{aid}"),
            account_id=AccountId(aid),
            symbol="ESZ5",
            side=Side.BUY,
            qty=3,
            order_type=OrderType.LIMIT,
            limit_price=Price.of("6500.25"),
            tag="sma",
            ts_init_ns=T0,
        )
        for aid in buses
    }
    journal = Journal(engine, max_delay_s=0.002, snapshot_sources={1: account_snapshot, 2: account_snapshot})
    for aid, bus in buses.items():
        journal.order_lookups[aid] = lambda cid, aid=aid: orders[aid] if cid == f"pd-{aid}" else None
        journal.attach(bus, account_id=aid)
    await journal.start()
    try:
        for i in range(6):  # interleaved: account 1, 2, 1, 2 ...
            aid = 1 + i % 2
            ev = fill(f"T{i}", cid=f"pd-{aid}", account=aid, ts=T0 + i)
            buses[aid].publish(ev.topic, ev)
        rolled = SessionRolled(ended_trading_date=date(2025, 11, 12), trading_date=date(2025, 11, 13), ts_ns=T0 + 10)
        buses[2].publish(topics.SESSION_ROLLED, rolled)
        await journal.flush()
        journal.detach()
        assert all(not bus.subscriptions() for bus in buses.values())
        head = journal.head_seq
    finally:
        await journal.stop()
    try:
        events = await Repository(engine).events_after(0, 1000)
        fills = await Repository(engine).fills()
        async with engine.connect() as conn:
            rows = (await conn.execute(text("select account_id, client_order_id, qty from orders"))).all()
    finally:
        await engine.dispose()
    assert [int(e["seq"]) for e in events] == list(range(1, head + 1))
    filled = [(int(e["account_id"]), e["topic"]) for e in events if e["topic"] == topics.ORDER_FILLED]
    assert filled == [(1 + i % 2, topics.ORDER_FILLED) for i in range(6)]
    eod = [int(e["account_id"]) for e in events if e["topic"] == topics.ACCOUNT_SNAPSHOT and '"eod"' in e["payload"]]
    assert eod == [2]  # the roll on account 2's bus snapshots account 2 only
    assert sorted(int(f.account_id) for f in fills) == [1, 1, 1, 2, 2, 2]
    # each account's order state came from its own order manager
    assert sorted((int(a), c, int(q)) for a, c, q in rows) == [(1, "pd-1", 3), (2, "pd-2", 3)]
