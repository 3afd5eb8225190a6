"""The journal's event sequence: every record numbered in capture order, gap-free across journal opens, stored in
``events`` and published once committed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from propdesk.core.bus import MessageBus
from propdesk.storage import wire
from propdesk.storage.db import create_engine_for
from propdesk.storage.journal import Journal
from propdesk.storage.repositories import Repository

from .factories import ACCOUNT, T0, accepted, fill, position_event, submitted


def _publish_round(bus: MessageBus, n: int, first: int) -> None:
    """``n`` orders (ids from ``first``): submitted, accepted, filled, and a position change each."""
    for i in range(first, first + n):
        cid = f"pd-{i}"
        for ev in (submitted(cid, ts=T0 + i), accepted(cid, ts=T0 + i), fill(f"T{i}", cid=cid, ts=T0 + i)):
            bus.publish(ev.topic, ev)
        pos = position_event("changed", f"T{i}", 1, ts=T0 + i)
        bus.publish(pos.topic, pos)


async def _stored(engine: AsyncEngine) -> list[dict[str, Any]]:
    return await Repository(engine).events_after(0, limit=100_000)


@pytest.mark.asyncio
@pytest.mark.parametrize("writer", ["process", "inline"])
async def test_seq_is_gap_free_and_increasing_across_two_opens(db_url: str, writer: str) -> None:
    published: list[tuple[int, int]] = []  # (last seq, items) per committed batch
    for opening in range(2):
        bus = MessageBus(timing=False)
        journal = Journal(db_url, writer=writer, max_delay_s=0.005)  # type: ignore[arg-type]
        journal.add_listener(lambda last, items, _scope: published.append((last, len(items))))
        journal.attach(bus)
        await journal.start()
        _publish_round(bus, 5, first=opening * 5)
        await journal.flush()
        await journal.stop()
    engine = create_engine_for(db_url)
    try:
        rows = await _stored(engine)
    finally:
        await engine.dispose()
    # 1 first sight of the account per open + 4 events per order, 5 orders per open
    assert [r["seq"] for r in rows] == list(range(1, 2 * (1 + 5 * 4) + 1))
    assert journal.head_seq == 42
    topics = [r["topic"] for r in rows[:5]]
    assert topics == [
        "events.account.seen",
        "events.order.submitted",
        "events.order.accepted",
        "events.order.filled",
        "events.position.changed",
    ]
    second = rows[21:26]
    assert second[0]["topic"] == "events.account.seen"
    assert json.loads(second[3]["payload"])["trade_id"] == "T5"  # the second open's first fill
    assert all(r["account_id"] == ACCOUNT for r in rows)
    # every committed batch was published once, numbered contiguously up to its last seq
    covered = [seq for last, n in published for seq in range(last - n + 1, last + 1)]
    assert covered == list(range(1, 43))


def test_live_rows_equal_stored_rows() -> None:
    items = [wire.encode_order_event(submitted("pd-9")), wire.encode_fill(fill("T9", cid="pd-9"))]
    live = wire.event_rows(items, 11, ("run-1", "v", ()))
    stored = [row for table, row in wire.rows_of(items, [], scope=("run-1", "v", ()), last_seq=11) if table == "events"]
    assert live == stored
    assert [(r["seq"], r["topic"], r["run_id"]) for r in live] == [
        (10, "events.order.submitted", "run-1"),
        (11, "events.order.filled", "run-1"),
    ]
