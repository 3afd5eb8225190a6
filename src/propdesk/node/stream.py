"""The node's sequenced event stream: every record the journal captures, numbered, replayed from the database and
then followed live, with no gap and no duplicate.

* **The sequence.** The journal (:class:`propdesk.storage.journal.Journal`) numbers every record it captures (order
  events, fills, position changes, account reports and snapshots, EOD balances, risk events, strategy run rows) in
  capture order: one global, gap-free, strictly increasing integer per database, continued from the largest number
  stored when the journal opens (:attr:`Journal.head_seq`). The number is stored with the record (the ``events``
  table, :class:`propdesk.storage.models.EventRow`) in the transaction that writes it, and published to this stream
  once that transaction is committed: a subscriber sees only durable events, and the database and the live feed are
  one source. A batch's events are built when the journal cuts it (:meth:`Journal.add_cut_listener`), while the
  writer writes it, so its commit only hands them to the subscriptions.
* **Subscribing.** :meth:`EventStream.subscribe` (``topics``: bus patterns, ``after_seq``) returns a
  :class:`Subscription`, an async iterator of :class:`StreamEvent`. It first replays the stored events with
  ``seq > after_seq`` (pages of ``replay_page`` rows, by the primary key), while the events published live meanwhile
  are buffered; when a page comes back short, the buffered events not yet replayed follow, then the live ones. An
  event is in the database before it is published, so each one arrives exactly once, in ``seq`` order.
* **A slow consumer loses nothing.** Each subscription has a bounded queue (``max_queue``). The replay waits for
  room; a live event that finds the queue full closes the subscription instead of being dropped: the consumer drains
  what was queued, then :meth:`Subscription.__anext__` raises :class:`SubscriptionClosedError` with
  ``resume_seq`` (the last event it received); ``subscribe(topics, after_seq=resume_seq)`` continues without loss.
* **Conflation.** Quotes and partial bars are not journaled and have no sequence number of their own: published with
  :meth:`EventStream.publish_transient` (or from a bus: :meth:`EventStream.attach_bus`), only the latest value per
  key waits for a subscriber (:attr:`StreamEvent.seq` is the stream's head when it was published; never replayed).
* **Snapshots.** :meth:`EventStream.sequence_point` is the number a state snapshot taken now reflects (the journal
  cuts what it has captured): merge a snapshot taken with it as ``as_of_seq`` with ``subscribe(after_seq=as_of_seq)``.

Loop-thread only, like the journal and the bus.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from propdesk.core import topics
from propdesk.core.bus import topic_matches
from propdesk.core.errors import PropdeskError
from propdesk.storage import wire
from propdesk.storage.repositories import Repository
from propdesk.storage.rows import canonical_json

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from propdesk.core.bus import MessageBus
    from propdesk.core.bus import Subscription as BusSubscription
    from propdesk.storage.journal import Journal

__all__ = [
    "CONFLATED_TOPICS",
    "LOSSLESS_TOPICS",
    "EventStream",
    "StreamEvent",
    "Subscription",
    "SubscriptionClosedError",
]

log = logging.getLogger("propdesk.node.stream")

LOSSLESS_TOPICS: Final[tuple[str, ...]] = (
    topics.ORDER_EVENTS,
    topics.POSITION_EVENTS,
    topics.ACCOUNT_EVENTS,
    topics.RISK_EVENTS,
    topics.STRATEGY_EVENTS,
)
"""The journaled (sequenced) topics: never dropped for a slow consumer."""

CONFLATED_TOPICS: Final[tuple[str, ...]] = (topics.ALL_QUOTES,)
"""The bus patterns :meth:`EventStream.attach_bus` conflates by default (latest value per topic)."""


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One event of the stream.

    ``seq``: the event's sequence number (for a conflated transient event: the stream's head when it was
    published); ``topic``: its bus topic (``events.order.filled`` ...); ``account_id``; ``ts_ns``: its time (UTC ns);
    ``run_id``: the strategy run that journaled it; ``payload``: canonical JSON (prices as ``Price.raw``, money as
    cents); ``conflated``: a transient value (quote, partial bar), not journaled."""

    seq: int
    topic: str
    account_id: int
    ts_ns: int
    run_id: str | None
    payload: str
    conflated: bool = False

    def data(self) -> Any:
        """The payload decoded."""
        return json.loads(self.payload)


def _event_of(row: dict[str, Any]) -> StreamEvent:
    return StreamEvent(
        seq=int(row["seq"]),
        topic=row["topic"],
        account_id=int(row["account_id"]),
        ts_ns=int(row["ts_ns"]),
        run_id=row["run_id"],
        payload=row["payload"],
    )


class SubscriptionClosedError(PropdeskError):
    """A subscription was closed: its consumer fell ``max_queue`` events behind, or the stream stopped.
    ``resume_seq``: the last event delivered; ``subscribe(topics, after_seq=resume_seq)`` continues from there."""

    def __init__(self, reason: str, resume_seq: int) -> None:
        super().__init__(f"{reason}: resume from seq {resume_seq}")
        self.reason = reason
        self.resume_seq = resume_seq


class Subscription:
    """One consumer of an :class:`EventStream` (built by :meth:`EventStream.subscribe`): an async iterator of
    :class:`StreamEvent` in ``seq`` order.

    Iteration ends (``StopAsyncIteration``) after :meth:`close`; it raises :class:`SubscriptionClosedError` once the
    queued events are consumed if the stream closed it (slow consumer, stream stopped)."""

    def __init__(self, stream: EventStream, patterns: tuple[str, ...], after_seq: int, max_queue: int) -> None:
        self.patterns = patterns
        self.after_seq = after_seq
        self.max_queue = max_queue
        self._stream = stream
        self._queue: deque[StreamEvent] = deque()
        self._latest: dict[str, StreamEvent] = {}
        self._live_buf: list[StreamEvent] = []
        self._live_lost = 0  # times the live buffer overflowed during the replay (the replay then reads further)
        self._replaying = True
        self._enqueued_seq = after_seq  # the last sequenced event put in the queue
        self._delivered_seq = after_seq  # the last sequenced event handed to the consumer
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._closed: SubscriptionClosedError | None = None
        self._ended = False
        self._task: asyncio.Task[None] | None = None

    @property
    def last_seq(self) -> int:
        """The sequence number of the last sequenced event handed to the consumer (``after_seq`` before any)."""
        return self._delivered_seq

    @property
    def closed(self) -> SubscriptionClosedError | None:
        """Why the stream closed this subscription (``None`` while open or after :meth:`close`)."""
        return self._closed

    def matches(self, topic: str) -> bool:
        """Whether ``topic`` matches one of the subscription's patterns."""
        return any(topic_matches(p, topic) for p in self.patterns)

    def close(self) -> None:
        """End the subscription (iteration stops once the queued events are consumed)."""
        self._ended = True
        self._stream._drop(self)
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._wake.set()

    def _close_for(self, reason: str) -> None:
        if self._closed is None and not self._ended:
            self._closed = SubscriptionClosedError(reason, self._enqueued_seq)
            self._stream._drop(self)
            self._wake.set()

    # -- delivery (the stream's side)

    def _offer_live(self, event: StreamEvent) -> None:
        if self._closed is not None or self._ended or not self.matches(event.topic):
            return
        if self._replaying:
            if len(self._live_buf) >= self.max_queue:
                self._live_buf.clear()  # they are committed: the replay reads them from the database
                self._live_lost += 1
            self._live_buf.append(event)
            return
        self._put(event)

    def _put(self, event: StreamEvent) -> None:
        if event.seq <= self._enqueued_seq:
            return  # the replay read it: a batch is visible in the database just before its publication
        if len(self._queue) >= self.max_queue:
            self._close_for(f"slow consumer: {self.max_queue} events queued")
            return
        self._queue.append(event)
        self._enqueued_seq = event.seq
        self._wake.set()

    def _offer_transient(self, key: str, event: StreamEvent) -> None:
        if self._closed is not None or self._ended or not self.matches(event.topic):
            return
        self._latest.pop(key, None)
        self._latest[key] = event  # the newest value per key, in order of its latest update
        self._wake.set()

    async def _replay(self, repo: Repository, page: int) -> None:
        cursor = self.after_seq
        try:
            while True:
                lost = self._live_lost
                rows = await repo.events_after(cursor, page)
                for row in rows:
                    cursor = int(row["seq"])
                    if not self.matches(row["topic"]):
                        continue
                    while len(self._queue) >= self.max_queue and not self._ended:
                        self._room.clear()
                        await self._room.wait()
                    if self._ended:
                        return
                    self._queue.append(_event_of(row))
                    self._enqueued_seq = cursor
                    self._wake.set()
                if len(rows) < page and lost == self._live_lost:
                    break
            # the seam: no await from here on, so nothing is published in between
            self._replaying = False
            buffered, self._live_buf = self._live_buf, []
            for event in buffered:
                self._put(event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("replaying the event stream after seq %d failed", cursor)
            self._close_for(f"replay failed ({type(exc).__name__}: {exc})")

    # -- the consumer's side

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> StreamEvent:
        while True:
            if self._queue:
                event = self._queue.popleft()
                self._delivered_seq = event.seq
                self._room.set()
                return event
            if self._latest:
                key = next(iter(self._latest))
                return self._latest.pop(key)
            if self._closed is not None:
                raise self._closed
            if self._ended:
                raise StopAsyncIteration
            self._wake.clear()
            await self._wake.wait()

    async def next(self, timeout_s: float | None = None) -> StreamEvent:
        """The next event, waiting at most ``timeout_s`` seconds.

        Raises:
            SubscriptionClosedError: the stream closed the subscription (after its queued events were consumed).
            StopAsyncIteration: :meth:`close` was called and nothing is queued.
            TimeoutError: nothing arrived in time.
        """
        return await asyncio.wait_for(self.__anext__(), timeout_s)


class EventStream:
    """The sequenced event stream of one journal (see the module docstring).

    Args:
        journal: the node's journal (started or not; its committed batches are published from now on).
        engine: the journal's database (replays read the ``events`` table through it).
        max_queue: most events a subscription may hold undelivered before it is closed (see :class:`Subscription`).
        replay_page: events read per replay query.

    Raises:
        ValueError: ``max_queue`` or ``replay_page`` below 1.
    """

    def __init__(self, journal: Journal, engine: AsyncEngine, *, max_queue: int = 10_000, replay_page: int = 1000):
        if max_queue < 1 or replay_page < 1:
            raise ValueError(f"max_queue ({max_queue}) and replay_page ({replay_page}) must be >= 1")
        self.journal = journal
        self.max_queue = max_queue
        self.replay_page = replay_page
        self._repo = Repository(engine)
        self._subs: list[Subscription] = []
        self._bus_subs: list[tuple[MessageBus, BusSubscription]] = []
        self._prepared: dict[int, list[StreamEvent]] = {}  # last seq of a cut batch -> its events, until committed
        journal.add_cut_listener(self._on_cut)
        journal.add_listener(self._on_batch)

    @property
    def head_seq(self) -> int:
        """The sequence number of the newest event published (every event up to it is in the database)."""
        return self.journal.head_seq

    def sequence_point(self) -> int:
        """The sequence number of the last record the journal has captured (it cuts its buffer, so the number is
        final): a state snapshot taken now, on the loop thread, reflects exactly the events up to it. Pass it as
        ``after_seq`` to :meth:`subscribe` to continue the snapshot."""
        return self.journal.sequence_point()

    @property
    def subscriptions(self) -> tuple[Subscription, ...]:
        """The open subscriptions."""
        return tuple(self._subs)

    def subscribe(self, topics: str | Iterable[str] = LOSSLESS_TOPICS, after_seq: int | None = None) -> Subscription:
        """A new subscription to the events whose topic matches ``topics`` (bus patterns), from the event after
        ``after_seq`` (``None``: only events published from now on). Must be called on the running event loop.

        Raises:
            ValueError: ``after_seq`` is negative or past the last number the journal handed out.
            propdesk.core.bus.InvalidTopicError: a malformed pattern.
        """
        patterns = (topics,) if isinstance(topics, str) else tuple(topics)
        for p in patterns:
            topic_matches(p, "events")  # validates the pattern
        head = self.head_seq
        start = head if after_seq is None else after_seq
        captured = self.journal.stats().enqueued  # numbers handed out (a sequence point may be ahead of the head)
        if start < 0 or start > max(head, captured):
            raise ValueError(f"after_seq must be between 0 and the last captured seq ({captured}), not {start}")
        sub = Subscription(self, patterns, start, self.max_queue)
        self._subs.append(sub)
        if start < head:
            sub._task = asyncio.get_running_loop().create_task(
                sub._replay(self._repo, self.replay_page), name="propdesk-stream-replay"
            )
        else:
            sub._replaying = False
        return sub

    def publish_transient(self, topic: str, payload: str, *, ts_ns: int = 0, key: str | None = None) -> None:
        """Offer a transient value (a quote, a partial bar: not journaled) to the subscribers: only the latest value
        per ``key`` (default: the topic) waits for each of them."""
        event = StreamEvent(self.head_seq, topic, 0, ts_ns, None, payload, conflated=True)
        k = topic if key is None else key
        for sub in tuple(self._subs):
            sub._offer_transient(k, event)

    def attach_bus(self, bus: MessageBus, patterns: Iterable[str] = CONFLATED_TOPICS) -> None:
        """Publish the messages of ``patterns`` on ``bus`` as conflated transient events (latest per topic; payload:
        the message as canonical JSON)."""
        for pattern in patterns:
            prefix = pattern.removesuffix(".**").removesuffix(".*")

            def handler(message: object, prefix: str = prefix) -> None:
                self._on_bus_message(prefix, message)

            self._bus_subs.append((bus, bus.subscribe(pattern, handler, -2000)))

    def _on_bus_message(self, prefix: str, message: object) -> None:
        if not self._subs:
            return
        topic = getattr(message, "topic", None)
        if not isinstance(topic, str):
            topic = f"{prefix}.{getattr(message, 'symbol', '')}"
        ts_ns = getattr(message, "ts_event_ns", 0)
        self.publish_transient(topic, canonical_json(message), ts_ns=ts_ns if isinstance(ts_ns, int) else 0)

    def close(self) -> None:
        """Stop the stream: every subscription is closed (its consumer may resume elsewhere from its last seq)."""
        self.journal.remove_listener(self._on_batch)
        self.journal.remove_cut_listener(self._on_cut)
        self._prepared.clear()
        for bus, bsub in self._bus_subs:
            bus.unsubscribe(bsub)
        self._bus_subs.clear()
        for sub in tuple(self._subs):
            sub._close_for("the event stream stopped")

    def _drop(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)

    def _on_cut(self, last_seq: int, items: list[wire.Item], scope: wire.Scope) -> None:
        """A batch was handed to the writer: build its events now, while it is written (published at its commit)."""
        if self._subs:
            self._prepared[last_seq] = [_event_of(row) for row in wire.event_rows(items, last_seq, scope)]

    def _on_batch(self, last_seq: int, items: list[wire.Item], scope: wire.Scope) -> None:
        events = self._prepared.pop(last_seq, None)
        if not self._subs:
            return
        if events is None:
            events = [_event_of(row) for row in wire.event_rows(items, last_seq, scope)]
        for sub in tuple(self._subs):
            for event in events:
                sub._offer_live(event)
