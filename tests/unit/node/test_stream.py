"""The sequenced event stream: replay then live without gap or duplicate, lossless for a slow consumer (closed with
a resume seq), conflated quotes. SQLite and PostgreSQL (the storage package's database fixtures)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from propdesk.core.bus import MessageBus
from propdesk.node.stream import EventStream, StreamEvent, Subscription, SubscriptionClosedError
from propdesk.storage.db import create_engine_for
from propdesk.storage.journal import Journal
from tests.unit.storage.conftest import db_url, empty_db_url, pg_database  # noqa: F401
from tests.unit.storage.factories import T0, accepted, fill, position_event, submitted

LOSSLESS = ("events.order.**", "events.position.**")
PER_ORDER = 4  # submitted, accepted, filled, position changed


@dataclass
class Node:
    bus: MessageBus
    journal: Journal
    stream: EventStream
    engine: AsyncEngine


@pytest_asyncio.fixture(params=["inline", "process"])
async def node(db_url: str, request: pytest.FixtureRequest) -> AsyncIterator[Node]:  # noqa: F811
    """A journal (inline writer, or the writer process the node uses) on a bus, with its event stream."""
    engine = create_engine_for(db_url)
    bus = MessageBus(timing=False)
    journal = Journal(
        engine if request.param == "inline" else db_url, max_delay_s=0.002, batch_size=7, writer=request.param
    )
    journal.attach(bus)
    stream = EventStream(journal, engine, max_queue=50, replay_page=9)
    await journal.start()
    try:
        yield Node(bus, journal, stream, engine)
    finally:
        stream.close()
        await journal.stop()
        await engine.dispose()


def publish_orders(bus: MessageBus, first: int, n: int) -> None:
    for i in range(first, first + n):
        cid = f"pd-{i}"
        for ev in (submitted(cid, ts=T0 + i), accepted(cid, ts=T0 + i), fill(f"T{i}", cid=cid, ts=T0 + i)):
            bus.publish(ev.topic, ev)
        pos = position_event("changed", f"T{i}", 1, ts=T0 + i)
        bus.publish(pos.topic, pos)


async def take(sub: Subscription, n: int) -> list[StreamEvent]:
    return [await sub.next(10.0) for _ in range(n)]


def trades(events: list[StreamEvent]) -> list[str]:
    return [json.loads(e.payload)["trade_id"] for e in events if e.topic == "events.order.filled"]


def assert_in_order_once(events: list[StreamEvent], first_order: int, n_orders: int) -> None:
    seqs = [e.seq for e in events]
    assert seqs == sorted(set(seqs))  # strictly increasing: no duplicate
    assert trades(events) == [f"T{i}" for i in range(first_order, first_order + n_orders)]
    assert [e.topic.split(".")[1] for e in events] == ["order", "order", "order", "position"] * n_orders


@pytest.mark.asyncio
async def test_subscribers_each_get_every_event_once_in_order_one_resumed(node: Node) -> None:
    publish_orders(node.bus, 0, 5)
    await node.journal.flush()
    subs = [node.stream.subscribe(LOSSLESS, after_seq=0) for _ in range(3)]
    publish_orders(node.bus, 5, 5)  # live while the replays run
    got: list[list[StreamEvent]] = [await take(s, 10 * PER_ORDER) for s in subs[:2]]
    # the third consumer stops midway and resumes from the last event it received
    part = await take(subs[2], 17)
    subs[2].close()
    publish_orders(node.bus, 10, 2)
    await node.journal.flush()
    resumed = node.stream.subscribe(LOSSLESS, after_seq=subs[2].last_seq)
    assert subs[2].last_seq == part[-1].seq
    rest = await take(resumed, 12 * PER_ORDER - 17)
    got = [g + await take(s, 2 * PER_ORDER) for g, s in zip(got, subs[:2], strict=True)]
    for events in [*got, part + rest]:
        assert_in_order_once(events, 0, 12)
    # the account's first sighting is not an order or position event: the seqs skip exactly it
    assert got[0][0].seq == 2 and got[0][-1].seq == node.stream.head_seq


@pytest.mark.asyncio
async def test_slow_consumer_is_closed_with_its_resume_seq_and_resumes_without_loss(node: Node) -> None:
    slow = node.stream.subscribe(LOSSLESS)  # live only
    publish_orders(node.bus, 0, 20)  # 80 events: more than max_queue (50)
    await node.journal.flush()
    received: list[StreamEvent] = []
    with pytest.raises(SubscriptionClosedError) as closed:
        while True:
            received.append(await slow.next(10.0))
    assert closed.value.resume_seq == received[-1].seq and "resume from seq" in str(closed.value)
    assert len(received) == 50
    assert node.stream.subscriptions == ()
    again = node.stream.subscribe(LOSSLESS, after_seq=closed.value.resume_seq)
    received += await take(again, 80 - 50)
    assert_in_order_once(received, 0, 20)


@pytest.mark.asyncio
async def test_quotes_are_conflated_to_the_latest_value(node: Node) -> None:
    sub = node.stream.subscribe("data.quotes.**")
    for i in range(5):
        node.stream.publish_transient("data.quotes.ESZ5", json.dumps({"bid": 6500 + i}))
    node.stream.publish_transient("data.quotes.NQZ5", json.dumps({"bid": 21000}))
    first, second = await take(sub, 2)
    assert (first.topic, first.data(), first.conflated) == ("data.quotes.ESZ5", {"bid": 6504}, True)
    assert (second.topic, second.data()) == ("data.quotes.NQZ5", {"bid": 21000})
    with pytest.raises(TimeoutError):
        await sub.next(0.05)  # nothing else: the four older ES quotes were replaced


@pytest.mark.asyncio
async def test_replay_live_seam_under_concurrent_publishing(node: Node) -> None:
    publish_orders(node.bus, 0, 10)
    await node.journal.flush()

    async def producer() -> None:
        for k in range(10, 40):
            publish_orders(node.bus, k, 1)
            await asyncio.sleep(0.001)  # commits (and live publications) interleave with the replay's queries

    stream = EventStream(node.journal, node.engine, max_queue=1000, replay_page=9)  # room for every event
    task = asyncio.create_task(producer())
    subs = []
    readers = []
    for _ in range(3):  # subscribing at different points of the production, each read as it goes
        subs.append(stream.subscribe(LOSSLESS, after_seq=0))
        readers.append(asyncio.create_task(take(subs[-1], 40 * PER_ORDER)))
        await asyncio.sleep(0.004)
    await task
    await node.journal.flush()
    for sub, reader in zip(subs, readers, strict=True):
        assert_in_order_once(await reader, 0, 40)
        with pytest.raises(TimeoutError):
            await sub.next(0.05)
    stream.close()


@pytest.mark.asyncio
async def test_snapshot_sequence_point_and_subscribe_after_it(node: Node) -> None:
    publish_orders(node.bus, 0, 3)
    as_of = node.stream.sequence_point()  # state now reflects exactly the events up to it
    assert as_of == 1 + 3 * PER_ORDER
    assert node.stream.head_seq < as_of  # not committed yet: the stream publishes them later
    sub = node.stream.subscribe(LOSSLESS, after_seq=as_of)
    publish_orders(node.bus, 3, 1)
    events = await take(sub, PER_ORDER)
    assert events[0].seq == as_of + 1 and trades(events) == ["T3"]


@pytest.mark.asyncio
async def test_a_replay_behind_a_small_queue_reads_the_live_overflow_back_from_the_database(node: Node) -> None:
    publish_orders(node.bus, 0, 5)
    await node.journal.flush()
    stream = EventStream(node.journal, node.engine, max_queue=5, replay_page=4)
    sub = stream.subscribe(LOSSLESS, after_seq=0)  # its replay waits for room: the live buffer overflows meanwhile
    for k in range(5, 30):
        publish_orders(node.bus, k, 1)
        await asyncio.sleep(0.001)
    await node.journal.flush()
    events = await take(sub, 30 * PER_ORDER)
    assert_in_order_once(events, 0, 30)
    assert sub.closed is None and sub._live_lost > 0
    stream.close()


@pytest.mark.asyncio
async def test_events_built_at_the_cut_equal_the_stored_ones_and_reach_a_subscriber_made_after_the_cut(
    node: Node,
) -> None:
    """A batch's events are built when it is cut (if someone subscribes) and published at its commit: what a
    subscriber gets live is what a replay reads from the database, also for a subscriber that arrived between the cut
    and the commit (the batch's events are then built at the commit)."""
    publish_orders(node.bus, 0, 2)
    node.journal.sequence_point()  # cut now, with no subscriber: the batch is with the writer
    late = node.stream.subscribe(LOSSLESS)
    first = await take(late, 2 * PER_ORDER)
    publish_orders(node.bus, 2, 2)  # cut with a subscriber
    second = await take(late, 2 * PER_ORDER)
    assert_in_order_once(first + second, 0, 4)
    replayed = await take(node.stream.subscribe(LOSSLESS, after_seq=0), 4 * PER_ORDER)
    assert replayed == first + second
