"""The journal: every order event, fill, position change, account snapshot, risk decision and lockout event the
node publishes, written to the database without ever blocking the core (ARCHITECTURE.md principle 7).

How it works:

* :meth:`Journal.attach` subscribes to the bus (``events.order.**``, ``events.position.**``, ``events.risk.**``,
  ``events.account.**``, ``events.session.rolled``). The handler runs inside the synchronous core: it only
  appends the message to an in-memory queue (plus, for an order event, a copy of the order's state, since orders
  are mutable) and wakes the writer. It never awaits and never does I/O.
* A writer task (:meth:`Journal.start`) drains the queue in batches (up to ``batch_size`` records, or whatever
  arrived within ``max_delay_s`` of the first one), converts them to rows and writes each batch in **one
  transaction** with insert-or-ignore semantics, so replaying an event never creates a second row.
* **Back-pressure is explicit and nothing is dropped.** The queue's ``capacity`` is a bound on what the node may
  run ahead of the database, not a point where records are discarded. When the backlog passes ``high_watermark``
  the journal reports :attr:`BackpressureLevel.SLOW` through ``on_backpressure`` (the node pauses new orders / goes
  REDUCING); at ``capacity``, or while the database refuses writes, it reports :attr:`BackpressureLevel.HALT`
  (the node halts trading) and keeps every record in memory; when the backlog falls below ``low_watermark`` with
  the database healthy it reports :attr:`BackpressureLevel.NORMAL`. A failed batch is retried (with backoff) until
  it is written; its records stay at the head of the queue, in order.
* **A fill is journaled before it is acknowledged outside the node**: ``await journal.durable(fill)`` returns
  once the batch holding it is committed (it enqueues the fill first if the journal has not seen it), and
  :meth:`Journal.journal_fill_then` runs an acknowledgement callback after that. :meth:`flush` waits for everything
  queued so far.

Loop-thread only: like the bus, a journal is used from the event loop's thread (the core's thread).

Account snapshots: pass ``snapshot_sources`` (account id -> a callable returning the risk engine's
:class:`~propdesk.risk.state.AccountSnapshot`, e.g. ``AccountState.snapshot``). The journal takes a snapshot after
every fill (``kind="fill"``, at the lowest bus priority, so the account state has applied the fill) and at each
``events.session.rolled`` (``kind="eod"``, with the closed day's end-of-day balance, which moves the trailing
drawdown floor). :meth:`record_account_snapshot` and :meth:`record_eod_balance` record them directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from enum import IntEnum
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy.ext.asyncio import AsyncEngine

from propdesk.core.errors import ConfigError
from propdesk.model.events import OrderEvent, OrderFilled
from propdesk.model.identifiers import ClientOrderId
from propdesk.model.orders import Order
from propdesk.model.positions import PositionEvent
from propdesk.model.price import Money
from propdesk.model.reports import AccountReport
from propdesk.risk.audit import AuditEntry
from propdesk.storage import rows as rw
from propdesk.storage.db import describe_error, redact_url
from propdesk.storage.repositories import Repository

if TYPE_CHECKING:
    from propdesk.core.bus import MessageBus, Subscription
    from propdesk.risk.state import AccountSnapshot

__all__ = ["BackpressureLevel", "Journal", "JournalClosedError", "JournalStats"]

log = logging.getLogger("propdesk.storage.journal")

TOPICS: Final[tuple[str, ...]] = (
    "events.order.**",
    "events.position.**",
    "events.risk.**",
    "events.account.**",
)
"""The bus patterns the journal records (at high priority, so a record is queued before anyone reacts to it)."""


class BackpressureLevel(IntEnum):
    """How far the journal is behind (see the module docstring). Larger is worse."""

    NORMAL = 0
    SLOW = 1
    """Backlog above the high watermark: pause new orders (only reducing orders)."""
    HALT = 2
    """Backlog at capacity or the database failing: halt trading; records are still kept."""


class JournalClosedError(ConfigError):
    """A record was offered to a journal that was stopped."""


@dataclass(frozen=True, slots=True)
class JournalStats:
    """Counters of a journal. ``enqueued``/``committed``: records; ``rows``: rows written (a fill is several rows);
    ``batches``: transactions committed; ``failures``: failed batch attempts; ``pending``: records queued or in
    flight; ``max_pending``: the largest backlog seen; ``skipped``: messages of a type the journal does not record."""

    enqueued: int
    committed: int
    rows: int
    batches: int
    failures: int
    pending: int
    max_pending: int
    skipped: int
    level: BackpressureLevel


_Item = tuple[int, int, Any, Any, int, int]
"""(seq, kind, message, extra, account id (0 if none), ts_ns) - kind is one of the _K_* constants."""

_K_ORDER, _K_POSITION, _K_RISK, _K_AUDIT, _K_REPORT, _K_SNAPSHOT, _K_EOD = range(7)


class Journal:
    """The bounded, batched, asynchronous journal writer (see the module docstring).

    Args:
        engine: the database (migrated; see :func:`propdesk.storage.migrate.upgrade_engine`).
        capacity: records the backlog may hold before the journal reports HALT (records beyond it are still kept).
        high_watermark: backlog that reports SLOW (default: half of ``capacity``).
        low_watermark: backlog under which the level returns to NORMAL (default: a quarter of ``capacity``).
        batch_size: most records per transaction.
        max_delay_s: how long the writer waits for a batch to fill once a record is queued (seconds).
        on_backpressure: called with the new :class:`BackpressureLevel` on every change of level.
        order_lookup: client order id -> the node's :class:`Order` (``node.orders.order``), so each order event
            also refreshes the ``orders`` row; ``None`` records events only.
        snapshot_sources: account id -> a callable returning that account's risk snapshot (module docstring).
        retry_delay_s: first wait after a failed batch (doubles up to ``max_retry_delay_s``).
        max_retry_delay_s: longest wait between retries.
        clock: returns now, UTC ns (stamps first sight of an account).

    Raises:
        ValueError: inconsistent sizes (``0 < low <= high <= capacity`` and ``batch_size >= 1`` are required).
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        capacity: int = 100_000,
        high_watermark: int | None = None,
        low_watermark: int | None = None,
        batch_size: int = 500,
        max_delay_s: float = 0.05,
        on_backpressure: Callable[[BackpressureLevel], None] | None = None,
        order_lookup: Callable[[ClientOrderId], Order | None] | None = None,
        snapshot_sources: Mapping[int, Callable[[], AccountSnapshot]] | None = None,
        retry_delay_s: float = 0.2,
        max_retry_delay_s: float = 5.0,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        high = capacity // 2 if high_watermark is None else high_watermark
        low = high // 2 if low_watermark is None else low_watermark
        if not (0 < low <= high <= capacity) or batch_size < 1:
            raise ValueError(
                f"journal sizes must satisfy 0 < low ({low}) <= high ({high}) <= capacity ({capacity}) "
                f"and batch_size ({batch_size}) >= 1"
            )
        self.repository = Repository(engine)
        self.capacity = capacity
        self.high_watermark = high
        self.low_watermark = low
        self.batch_size = batch_size
        self.max_delay_s = max_delay_s
        self.on_backpressure = on_backpressure
        self.order_lookup = order_lookup
        self.snapshot_sources = dict(snapshot_sources or {})
        self.retry_delay_s = retry_delay_s
        self.max_retry_delay_s = max_retry_delay_s
        self._clock = clock
        self._url = redact_url(engine.url)
        self._engine_url = engine.url

        self._queue: deque[_Item] = deque()
        self._inflight = 0
        self._seq = 0
        self._committed_seq = 0
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._waiter_n = 0
        self._pending_fills: dict[tuple[int, str], int] = {}
        self._seen_accounts: set[int] = set()
        self._level = BackpressureLevel.NORMAL
        self._failing = False
        self._wake: asyncio.Event | None = None
        self._hurry: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._subs: list[Subscription] = []
        self._bus: MessageBus | None = None
        # counters
        self._enqueued = 0
        self._rows = 0
        self._batches = 0
        self._failures = 0
        self._max_pending = 0
        self._skipped = 0
        self.last_error: str | None = None

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        """Start the writer task on the running loop (idempotent)."""
        if self._task is not None:
            return
        self._wake = asyncio.Event()
        self._hurry = asyncio.Event()
        if self._queue:
            self._wake.set()
        self._closed = False
        self._task = asyncio.get_running_loop().create_task(self._run(), name="propdesk-journal-writer")

    async def stop(self) -> None:
        """Write everything queued, then stop the writer and detach from the bus. Further records raise
        :class:`JournalClosedError`."""
        self.detach()
        self._closed = True
        if self._task is None:
            return
        assert self._wake is not None and self._hurry is not None
        self._wake.set()
        self._hurry.set()
        try:
            await self._task
        finally:
            self._task = None

    async def __aenter__(self) -> Journal:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def attach(self, bus: MessageBus, *, priority: int = 1000, snapshot_priority: int = -1000) -> None:
        """Subscribe to the journal's topics on ``bus`` (records at ``priority``; account snapshots after fills and
        session rolls at ``snapshot_priority``, after the account state has updated)."""
        self._bus = bus
        for pattern in TOPICS:
            self._subs.append(bus.subscribe(pattern, self.record, priority))
        if self.snapshot_sources:
            self._subs.append(bus.subscribe("events.order.filled", self._snapshot_after_fill, snapshot_priority))
            self._subs.append(bus.subscribe("events.session.rolled", self._snapshot_at_roll, snapshot_priority))

    def detach(self) -> None:
        """Unsubscribe from the bus (queued records are still written)."""
        if self._bus is not None:
            for sub in self._subs:
                self._bus.unsubscribe(sub)
        self._subs.clear()
        self._bus = None

    # ------------------------------------------------------------------ recording (sync, never blocks)

    def record(self, message: object) -> int:
        """Queue ``message`` (an order event, position event, risk event, audit entry or account report) and return
        its sequence number; other messages are counted as skipped (returns 0). Never blocks, never drops.

        Also usable as a :class:`propdesk.risk.audit.AuditLog` sink (``record(entry)``).

        Raises:
            JournalClosedError: the journal was stopped.
        """
        if isinstance(message, OrderEvent):
            order = None
            if self.order_lookup is not None:
                found = self.order_lookup(message.client_order_id)
                if found is not None and found.account_id == message.account_id:
                    order = rw.order_row(found)
            seq = self._put(_K_ORDER, message, order, int(message.account_id), message.ts_event_ns)
            if isinstance(message, OrderFilled):
                self._pending_fills[(int(message.account_id), message.trade_id)] = seq
            return seq
        if isinstance(message, PositionEvent):
            return self._put(_K_POSITION, message, None, int(message.position.account_id), message.ts_event_ns)
        if isinstance(message, AuditEntry):
            return self._put(_K_AUDIT, message, None, int(message.account), message.ts_ns)
        if isinstance(message, AccountReport):
            return self._put(_K_REPORT, message, None, None, message.ts_ns)
        topic = getattr(message, "topic", None)
        if isinstance(topic, str) and topic.startswith("events.risk.") and hasattr(message, "account_id"):
            return self._put(_K_RISK, message, None, int(message.account_id), int(getattr(message, "ts_ns", 0)))
        self._skipped += 1
        return 0

    def record_account_snapshot(
        self, account_id: int, snapshot: AccountSnapshot, ts_ns: int, *, kind: str = "manual", ref: str = ""
    ) -> int:
        """Queue a risk-engine account snapshot (``kind``: ``fill``, ``eod``, ``manual``; ``ref`` makes it unique
        among snapshots of the same kind and time). Its EOD balances are journaled too (insert-or-ignore)."""
        return self._put(_K_SNAPSHOT, snapshot, (kind, ref), int(account_id), ts_ns)

    def record_eod_balance(self, account_id: int, trading_date: date, balance: Money, ts_ns: int) -> int:
        """Queue one end-of-day balance (the first one journaled for a date is kept)."""
        return self._put(_K_EOD, (trading_date, balance), None, int(account_id), ts_ns)

    def _snapshot_after_fill(self, event: object) -> None:
        if isinstance(event, OrderFilled):
            source = self.snapshot_sources.get(int(event.account_id))
            if source is not None:
                self.record_account_snapshot(
                    event.account_id, source(), event.ts_event_ns, kind="fill", ref=event.trade_id
                )

    def _snapshot_at_roll(self, event: object) -> None:
        ts_ns = int(getattr(event, "ts_ns", 0))
        ended = getattr(event, "ended_trading_date", None)
        for account_id, source in self.snapshot_sources.items():
            self.record_account_snapshot(account_id, source(), ts_ns, kind="eod", ref=str(ended or ""))

    def _put(self, kind: int, message: Any, extra: Any, account_id: int | None, ts_ns: int) -> int:
        if self._closed:
            raise JournalClosedError(
                f"the journal ({self._url}) is stopped; a {type(message).__name__} was not recorded"
            )
        if account_id is not None and account_id not in self._seen_accounts:
            self._seen_accounts.add(account_id)
            self._seq += 1
            self._queue.append((self._seq, _K_REPORT, None, None, account_id, ts_ns or self._clock()))
            self._enqueued += 1
        self._seq += 1
        seq = self._seq
        self._queue.append((seq, kind, message, extra, account_id or 0, ts_ns))
        self._enqueued += 1
        backlog = len(self._queue) + self._inflight
        if backlog > self._max_pending:
            self._max_pending = backlog
        if backlog >= self.high_watermark:
            self._raise_level(BackpressureLevel.HALT if backlog >= self.capacity else BackpressureLevel.SLOW)
        wake = self._wake
        if wake is not None and not wake.is_set():
            wake.set()
        if backlog >= self.batch_size and self._hurry is not None:
            self._hurry.set()
        return seq

    # ------------------------------------------------------------------ back-pressure

    @property
    def level(self) -> BackpressureLevel:
        """The current back-pressure level."""
        return self._level

    def _set_level(self, level: BackpressureLevel) -> None:
        if level is self._level:
            return
        old, self._level = self._level, level
        (log.warning if level > old else log.info)("journal back-pressure %s -> %s", old.name, level.name)
        if self.on_backpressure is not None:
            try:
                self.on_backpressure(level)
            except Exception:
                log.exception("journal back-pressure callback failed at level %s", level.name)

    def _raise_level(self, level: BackpressureLevel) -> None:
        if level > self._level:
            self._set_level(level)

    def _relax_level(self) -> None:
        backlog = len(self._queue) + self._inflight
        if self._failing or backlog >= self.capacity:
            target = BackpressureLevel.HALT
        elif backlog >= self.high_watermark:
            target = BackpressureLevel.SLOW
        elif backlog < self.low_watermark:
            target = BackpressureLevel.NORMAL
        else:
            target = min(self._level, BackpressureLevel.SLOW)
        self._set_level(target)

    async def wait_for_capacity(self) -> None:
        """Wait until the level is NORMAL again (a producer that can pause, e.g. a backtest loop, calls this
        between chunks of work)."""
        while self._level is not BackpressureLevel.NORMAL or len(self._queue) + self._inflight >= self.high_watermark:
            await self._wait_seq(self._seq)

    # ------------------------------------------------------------------ durability

    @property
    def pending(self) -> int:
        """Records queued or being written."""
        return len(self._queue) + self._inflight

    async def flush(self) -> None:
        """Wait until every record queued so far is committed.

        Raises:
            JournalClosedError: the writer is not running and records are pending.
        """
        await self._wait_seq(self._seq)

    async def durable(self, event: object) -> None:
        """Wait until ``event`` is committed; an :class:`OrderFilled` the journal has not seen is recorded first.

        Use it before acknowledging a fill outside the node (API push, bridge).

        Raises:
            JournalClosedError: as :meth:`flush`.
        """
        seq = self._seq
        if isinstance(event, OrderFilled):
            key = (int(event.account_id), event.trade_id)
            known = self._pending_fills.get(key)
            seq = known if known is not None else self.record(event)
        await self._wait_seq(seq)

    def journal_fill_then(self, event: OrderFilled, ack: Callable[[], object]) -> asyncio.Task[None]:
        """Run ``ack()`` once ``event`` is durable (see :meth:`durable`); returns the task (its exception, if any,
        is the journal's)."""

        async def _go() -> None:
            await self.durable(event)
            ack()

        return asyncio.get_running_loop().create_task(_go())

    async def _wait_seq(self, seq: int) -> None:
        if seq <= self._committed_seq:
            return
        if self._task is None:
            raise JournalClosedError(f"the journal ({self._url}) is not running; {self.pending} records pending")
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiter_n += 1
        heapq.heappush(self._waiters, (seq, self._waiter_n, fut))
        assert self._hurry is not None
        self._hurry.set()
        await fut

    def _release(self) -> None:
        while self._waiters and self._waiters[0][0] <= self._committed_seq:
            _, _, fut = heapq.heappop(self._waiters)
            if not fut.done():
                fut.set_result(None)

    # ------------------------------------------------------------------ writer

    async def _run(self) -> None:
        assert self._wake is not None and self._hurry is not None
        delay = self.retry_delay_s
        while True:
            if not self._queue:
                if self._closed:
                    break
                self._wake.clear()
                await self._wake.wait()
                continue
            if len(self._queue) < self.batch_size and not self._closed and not self._waiters:
                self._hurry.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._hurry.wait(), self.max_delay_s)
            n = min(self.batch_size, len(self._queue))
            batch = [self._queue.popleft() for _ in range(n)]
            self._inflight = n
            try:
                rows = self._rows_of(batch)
                await self.repository.write(rows)
            except Exception as exc:
                self._queue.extendleft(reversed(batch))  # never drop: back at the head, in order
                self._inflight = 0
                self._failures += 1
                self._failing = True
                self.last_error = describe_error(exc, self._engine_url)
                log.error(
                    "journal write to %s failed (%d records kept, retry in %.2fs): %s",
                    self._url,
                    n,
                    delay,
                    self.last_error,
                )
                self._raise_level(BackpressureLevel.HALT)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_retry_delay_s)
                continue
            delay = self.retry_delay_s
            self._failing = False
            self._inflight = 0
            self._batches += 1
            self._rows += len(rows)
            self._committed_seq = batch[-1][0]
            for _seq, kind, msg, *_rest in batch:
                if kind == _K_ORDER and isinstance(msg, OrderFilled):
                    self._pending_fills.pop((int(msg.account_id), msg.trade_id), None)
            self._release()
            self._relax_level()
            await asyncio.sleep(0)  # let the core run between batches
        self._release()

    @staticmethod
    def _rows_of(batch: list[_Item]) -> list[tuple[str, rw.Row]]:
        out: list[tuple[str, rw.Row]] = []
        add = out.append
        for _seq, kind, msg, extra, account_id, ts_ns in batch:
            if kind == _K_ORDER:
                add(("order_events", rw.order_event_row(msg)))
                if extra is not None:
                    add(("orders", extra))
                if isinstance(msg, OrderFilled):
                    add(("fills", rw.fill_row(msg, None if extra is None else extra["broker_order_id"])))
            elif kind == _K_POSITION:
                add(("position_snapshots", rw.position_event_row(msg)))
            elif kind == _K_RISK:
                add(("risk_events", rw.risk_event_row(msg)))
            elif kind == _K_AUDIT:
                add(("risk_events", rw.audit_entry_row(msg)))
            elif kind == _K_REPORT:
                row = rw.account_row(account_id, ts_ns) if msg is None else rw.account_report_row(msg)
                add(("accounts", row))
            elif kind == _K_SNAPSHOT:
                snap_kind, ref = extra
                add(("account_snapshots", rw.account_snapshot_row(account_id, msg, ts_ns, snap_kind, ref)))
                for row in rw.eod_rows(account_id, msg.eod_balances, ts_ns):
                    add(("eod_balances", row))
            elif kind == _K_EOD:
                add(("eod_balances", rw.eod_rows(account_id, [msg], ts_ns)[0]))
        return out

    # ------------------------------------------------------------------ stats

    def stats(self) -> JournalStats:
        """A snapshot of the journal's counters."""
        return JournalStats(
            enqueued=self._enqueued,
            committed=self._committed_seq,
            rows=self._rows,
            batches=self._batches,
            failures=self._failures,
            pending=self.pending,
            max_pending=self._max_pending,
            skipped=self._skipped,
            level=self._level,
        )
