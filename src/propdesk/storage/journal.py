"""The journal: every order event, fill, position change, account snapshot, risk decision and lockout event the
node publishes, written to the database without ever blocking the core (ARCHITECTURE.md principle 7).

How it works:

* :meth:`Journal.attach` subscribes to the bus (each order event's topic, ``events.position.**``,
  ``events.risk.**``, ``events.account.**``, ``events.session.rolled``); given the node's position manager it takes
  position changes from the manager's capture hook instead of ``events.position.**`` (the same records, without a
  position event object per fill). Capture on the core's thread is as small as it can be: order events (and position
  events) are immutable, so the subscription *is* the buffer's ``list.append`` (no Python frame); so is the position
  manager's capture, which hands over one record of plain values per change
  (:func:`propdesk.model.positions.position_change_record`); other records
  (:meth:`record`) are encoded at once. Nothing awaits, does I/O or builds rows there.
* A **cut** moves the buffer to the writer as one batch: the raw events are encoded there, in one tight loop
  (:mod:`propdesk.storage.wire`; noting which orders changed and which accounts are new), and the state of every
  order that changed is taken. Cuts happen only between bus dispatches. On the event loop a capture schedules the
  cut itself (once the journal runs on a loop its bus captures are the buffer's append plus that check): while the
  writer is idle the cut runs at the end of the current loop turn (no fixed delay: a fill's transaction starts at
  once); while the writer is busy with an earlier batch, at that batch's acknowledgement (everything captured
  meanwhile is one transaction: a group commit under load) or ``max_delay_s`` after the capture, whichever comes
  first; sooner when ``batch_size`` records wait, or when someone waits for durability. Nothing is scheduled while
  nothing is captured. A synchronous driver (a backtest loop) calls :meth:`Journal.pump` instead. The back-pressure
  levels are checked at each cut (and at each :meth:`record`). The writer converts the batch to rows and writes it
  in **one transaction** with insert-or-ignore semantics, so replaying an event never creates a second row.
* Two writers (``writer=``):

  - ``"process"`` (what the node uses): a writer **subprocess** (:mod:`propdesk.storage.writer`). The core's thread
    serializes the batch (``wire.dumps``: MessagePack, ~0.1 us a record) and writes it into the pipe (or leaves it to a
    sender thread when the pipe is full); rows, JSON, hashes and SQL run in the other process, on another core.
    Acknowledgements come back after each commit. If the writer dies, the journal reports HALT, starts a new one and
    sends every unacknowledged batch again (idempotent writes).
  - ``"inline"``: an asyncio task of this process writes through the async engine (``batch_size`` records per
    transaction). Simple, in-memory SQLite works; it costs the core's thread ~50 us a record.

* **Back-pressure is explicit and nothing is dropped.** ``capacity`` bounds how far the node may run ahead of the
  database; it is not a point where records are discarded. When the backlog (captured, not yet committed) passes
  ``high_watermark`` the journal reports :attr:`BackpressureLevel.SLOW` through ``on_backpressure`` (the node goes
  reduce-only: :mod:`propdesk.node.journaling`); at ``capacity``, while the database refuses writes, or while the writer
  process is dead, it reports :attr:`BackpressureLevel.HALT` and keeps every record in memory; when the backlog
  falls below ``low_watermark`` with the writer healthy it reports :attr:`BackpressureLevel.NORMAL`. A failed batch
  is retried (with backoff) until it is written, in order.
* **A fill is journaled before it is acknowledged outside the node**: ``await journal.durable(fill)`` returns once
  the transaction holding it is committed (it records the fill first if the journal has not seen it), and
  :meth:`Journal.journal_fill_then` runs an acknowledgement callback after that. :meth:`flush` waits for everything
  captured so far; :meth:`flush_sync` is its blocking form for a synchronous driver.

**The event sequence.** Every record captured is numbered in capture order, one more than the record before,
continuing after the largest number already stored (``max(events.seq)``: the writer process reports it when it is
ready, the inline writer reads it at start; records captured before are cut once it is known). A cut stamps its batch
with the batch's last number (no work per record); the writer stores each item's number in the ``events`` table
(:class:`propdesk.storage.models.EventRow`) in the batch's transaction, and once the batch is committed it is handed
to the listeners (:meth:`Journal.add_listener`: :class:`propdesk.node.stream.EventStream`). One journal writes a
database at a time; several nodes share it by attaching each one's bus (``propdesk serve``: one node per account,
:meth:`Journal.attach` with the node's ``account_id`` and :attr:`Journal.order_lookups`), so their records get one
sequence, each event keeping its account. A message delivered twice (a reconnect's replay) is one row in its table
but two events.

Loop-thread only: like the bus, a journal is used from the core's thread. Life cycle: ``await start()`` /
``await stop()`` on an event loop, or ``start_sync()`` / ``pump()`` / ``stop_sync()`` without one (the process
writer only).

Account snapshots: pass ``snapshot_sources`` (account id -> a callable returning the risk engine's
:class:`~propdesk.model.records.AccountSnapshot`, e.g. ``AccountState.snapshot``). The journal takes a snapshot after
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
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

from sqlalchemy import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from propdesk.core import topics
from propdesk.core.backoff import Backoff
from propdesk.core.errors import ConfigError
from propdesk.core.topics import Priority
from propdesk.model.events import OrderFilled
from propdesk.model.identifiers import ClientOrderId
from propdesk.model.orders import Order
from propdesk.model.price import Money
from propdesk.model.records import AuditEntry
from propdesk.model.reports import AccountReport
from propdesk.storage import wire
from propdesk.storage.db import create_engine_for, describe_error, is_memory_sqlite, normalize_url, redact_url
from propdesk.storage.repositories import Repository
from propdesk.storage.writer import WriterDiedError, WriterProcess

if TYPE_CHECKING:
    from propdesk.core.bus import MessageBus, Subscription
    from propdesk.model.records import AccountSnapshot

__all__ = ["BackpressureLevel", "Journal", "JournalClosedError", "JournalStats", "PositionSource", "WriterKind"]

log = logging.getLogger("propdesk.storage.journal")

POSITION_PATTERN: Final = topics.POSITION_EVENTS
"""The position events' pattern (not subscribed when the position manager is given to :meth:`Journal.attach`)."""

ORDER_PATTERN: Final = topics.ORDER_EVENTS
"""The order events (subscribed topic by topic: each order event class publishes on its own topic; nothing else
published under ``events.order`` is journaled)."""

TOPICS: Final[tuple[str, ...]] = (
    ORDER_PATTERN,
    POSITION_PATTERN,
    topics.RISK_EVENTS,
    topics.ACCOUNT_EVENTS,
)
"""The bus patterns the journal records (at high priority, so a record is captured before anyone reacts to it)."""

_RISK_PREFIX: Final = topics.RISK_PREFIX + "."

WriterKind = Literal["process", "inline"]
"""Where rows are built and written: a writer subprocess, or an asyncio task of this process."""

_START_TIMEOUT_S: Final = 30.0
"""How long a new writer process may take to import and connect."""


class BackpressureLevel(IntEnum):
    """How far the journal is behind (see the module docstring). Larger is worse."""

    NORMAL = 0
    SLOW = 1
    """Backlog above the high watermark: pause new orders (only reducing orders)."""
    HALT = 2
    """Backlog at capacity, the database failing or the writer process dead: halt trading; records are kept."""


class JournalClosedError(ConfigError):
    """A record was offered to a journal that was stopped, or a wait needs a writer that is not running."""


@dataclass(frozen=True, slots=True)
class JournalStats:
    """Counters of a journal. ``enqueued``/``committed``: records (``committed`` is the sequence number of the last
    committed record); ``rows``: rows written (a fill is several rows); ``batches``: transactions committed;
    ``failures``: failed write attempts; ``pending``: records captured and not yet committed; ``max_pending``: the
    largest backlog seen; ``skipped``: messages of a type the journal does not record; ``restarts``: writer
    processes started again after a death."""

    enqueued: int
    committed: int
    rows: int
    batches: int
    failures: int
    pending: int
    max_pending: int
    skipped: int
    level: BackpressureLevel
    restarts: int = 0


_ORDER_CODE = wire.ORDER_CODE
_POSITION_CODE = wire.POSITION_CODE
_K_FILL = wire.K_FILL
_K_POSITION_CHANGE = wire.K_POSITION_CHANGE
_TS_FIELD: Final[dict[int, int]] = {wire.K_FILL: 3, wire.K_POSITION: 19}


def _ts_of(item: wire.Item) -> int:
    """The event time (UTC ns) of an order-event, fill or position item (stamps a first sight of its account)."""
    kind = item[0]
    if kind == wire.K_ORDER:
        return int(item[wire.ORDER_TS_INDEX[item[2]]])
    if kind == _K_POSITION_CHANGE:
        return int(item[wire.POSITION_CHANGE_TS])
    return int(item[_TS_FIELD[kind]])


class PositionSource(Protocol):
    """What :meth:`Journal.attach` needs of a position manager
    (:class:`propdesk.execution.positions.PositionManager`): a capture hook for every position change."""

    def add_capture(self, capture: Callable[[tuple[Any, ...]], object]) -> None:
        """Call ``capture`` on every account-level position change."""

    def remove_capture(self, capture: Callable[[tuple[Any, ...]], object]) -> bool:
        """Stop calling ``capture``."""


class Journal:
    """The bounded, batched journal writer (see the module docstring).

    Args:
        engine: the database (migrated; see :func:`propdesk.storage.migrate.upgrade_engine`): an
            :class:`AsyncEngine`, or a URL (the process writer needs no engine in this process).
        capacity: records the backlog may hold before the journal reports HALT (records beyond it are still kept).
        high_watermark: backlog that reports SLOW (default: half of ``capacity``).
        low_watermark: backlog under which the level returns to NORMAL (default: half of ``high_watermark``).
        batch_size: inline writer: most records per transaction; both: a cut is scheduled at once when this many
            records wait.
        max_delay_s: while the writer is busy with an earlier batch, the longest a captured record waits for its
            cut (seconds, event loop only; the batch's acknowledgement cuts sooner, and an idle writer gets the cut at
            the end of the loop turn).
        on_backpressure: called with the new :class:`BackpressureLevel` on every change of level.
        order_lookup: client order id -> the node's :class:`Order` (``node.orders.order``), so each batch also
            refreshes the ``orders`` rows of the orders it touches; ``None`` records events only.
        snapshot_sources: account id -> a callable returning that account's risk snapshot (module docstring).
        retry_delay_s: first wait after a failed batch or a writer death (doubles up to ``max_retry_delay_s``).
        max_retry_delay_s: longest wait between retries.
        clock: returns now, UTC ns (stamps first sight of an account).
        writer: ``"inline"`` (default) or ``"process"`` (module docstring).
        migrate: process writer: the child upgrades the schema (Alembic) and marks the runs whose process is gone
            aborted (:func:`propdesk.storage.runs.sweep_runs`) before it reports ready, so a caller that starts the
            writer early (``start_sync(wait_ready=False)``) pays no migration check on its own thread.

    Raises:
        ValueError: inconsistent sizes (``0 < low <= high <= capacity`` and ``batch_size >= 1`` are required).
        ConfigError: the process writer on an in-memory SQLite database (another process cannot see it), or a
            malformed URL.
    """

    def __init__(
        self,
        engine: AsyncEngine | str | URL,
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
        writer: WriterKind = "inline",
        migrate: bool = False,
    ) -> None:
        high = capacity // 2 if high_watermark is None else high_watermark
        low = high // 2 if low_watermark is None else low_watermark
        if not (0 < low <= high <= capacity) or batch_size < 1:
            raise ValueError(
                f"journal sizes must satisfy 0 < low ({low}) <= high ({high}) <= capacity ({capacity}) "
                f"and batch_size ({batch_size}) >= 1"
            )
        if writer not in ("inline", "process"):
            raise ValueError(f"writer must be 'inline' or 'process', not {writer!r}")
        self._own_engine = not isinstance(engine, AsyncEngine)
        self._engine_url: URL = normalize_url(engine if not isinstance(engine, AsyncEngine) else engine.url)
        if writer == "process" and is_memory_sqlite(self._engine_url):
            raise ConfigError("the journal's process writer needs a database file, not in-memory SQLite")
        self._engine: AsyncEngine | None = engine if isinstance(engine, AsyncEngine) else None
        self.writer: WriterKind = writer
        self.migrate = migrate
        self._repository: Repository | None = None if self._engine is None else Repository(self._engine)
        self.capacity = capacity
        self.high_watermark = high
        self.low_watermark = low
        self.batch_size = batch_size
        self.max_delay_s = max_delay_s
        self.on_backpressure = on_backpressure
        self.order_lookup = order_lookup
        self.order_lookups: dict[int, Callable[[ClientOrderId], Order | None]] = {}
        """Account id -> that account's order lookup (several nodes on one journal); an account without one uses
        :attr:`order_lookup`."""
        self.snapshot_sources = dict(snapshot_sources or {})
        self.retry_delay_s = retry_delay_s
        self.max_retry_delay_s = max_retry_delay_s
        self._clock = clock
        self._url = redact_url(self._engine_url)

        self._scope: wire.Scope = wire.NO_SCOPE
        # capture (core's thread)
        self._buf: list[Any] = []  # items, and raw events and position records the cut encodes
        self._dirty: dict[ClientOrderId, int] = {}
        self._objects = 0  # records in the buffer that hold objects (the next cut is pickled, not MessagePack)
        self._fill_seq: dict[tuple[int, str], int] = {}
        self._seen_accounts: set[int] = set()
        self._cut_seq = 0
        self._based = False  # the event sequence continues from the database's largest number, once it is known
        self._inflight = 0
        self._unpublished: deque[tuple[int, list[wire.Item], wire.Scope]] = deque()
        self._listeners: list[Callable[[int, list[wire.Item], wire.Scope], object]] = []
        self._cut_listeners: list[Callable[[int, list[wire.Item], wire.Scope], object]] = []
        # writers
        self._inline: deque[wire.Batch] = deque()
        self._unacked: deque[tuple[int, int, bytes]] = deque()
        self._proc: WriterProcess | None = None
        self._ready = False
        self._restart_handle: asyncio.TimerHandle | None = None
        self._restart_due = 0.0
        self._retry = Backoff(retry_delay_s, 2.0, max_retry_delay_s)
        """Waits between write retries and between writer restarts: ``retry_delay_s`` doubling up to
        ``max_retry_delay_s``."""
        self._restart_attempt = 0
        self._committed_seq = 0
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._waiter_n = 0
        self._level = BackpressureLevel.NORMAL
        self._failing = False
        self._dead = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.Handle | None = None
        self._soon = False
        self._armed = True  # no loop yet: a synchronous driver pumps
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._running = False
        self._closed = False
        self._subs: list[tuple[MessageBus, Subscription]] = []
        self._positions: list[tuple[PositionSource, Callable[[Any], object]]] = []  # with the capture each was given
        self._attach_args: list[tuple[MessageBus, int, int, PositionSource | None, int | None]] = []
        self._attached_raw = False  # a bus subscribed with the plain append (before the loop was known)
        # counters
        self._rows = 0
        self._batches = 0
        self._failures = 0
        self._max_pending = 0
        self._skipped = 0
        self._restarts = 0
        self.last_error: str | None = None

    @property
    def repository(self) -> Repository:
        """The repository the inline writer writes through (replaceable, e.g. by a test double).

        Raises:
            ConfigError: the journal was built from a URL and is not started (no engine yet).
        """
        if self._repository is None:
            raise ConfigError("the journal has no engine yet: start it first")
        return self._repository

    @repository.setter
    def repository(self, repo: Repository) -> None:
        self._repository = repo

    @property
    def _seq(self) -> int:
        """The sequence number of the last record captured: every captured entry counts one, in capture order (a
        batch's first sights of accounts, found when it is cut, add to the numbers after it). Once cut, a record's
        number is its event sequence number (:attr:`head_seq`)."""
        return self._cut_seq + len(self._buf)

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        """Start the writer on the running loop (idempotent). The process writer is spawned and connected first.

        Raises:
            ConfigError: the writer process could not start or reach the database (message: URL redacted).
        """
        if self._running and self._loop is not None:
            return
        loop = asyncio.get_running_loop()
        self._closed = False
        if self.writer == "process":
            proc = self._proc
            if proc is None:
                proc = self._proc = await self._spawn_async()
            elif not self._ready:  # started by start_sync(wait_ready=False): adopt it once it is connected
                self._check_ready(proc, await loop.run_in_executor(None, proc.wait_readable, _START_TIMEOUT_S))
                self._ready = True
            self._loop = loop
            loop.add_reader(proc.fileno, self._on_readable)
        else:
            self._loop = loop
            if self._engine is None:
                self._engine = create_engine_for(self._engine_url)
                if self._repository is None:
                    self._repository = Repository(self._engine)
            if not self._based:
                self._set_base(await self.repository.max_event_seq())
            self._wake = asyncio.Event()
            self._task = loop.create_task(self._run_inline(), name="propdesk-journal-writer")
        self._running = True
        self._armed = False
        if self._attach_args and self._attached_raw:  # attached before the loop: captures that wake
            attached = list(self._attach_args)
            self.detach()
            for bus, priority, snapshot_priority, positions, account_id in attached:
                self.attach(
                    bus,
                    priority=priority,
                    snapshot_priority=snapshot_priority,
                    positions=positions,
                    account_id=account_id,
                )
        if self._buf:
            self._arm()

    def wait_ready(self, timeout_s: float = _START_TIMEOUT_S) -> bool:
        """Block until the process writer has reported it is connected (after ``start_sync(wait_ready=False)``);
        False if it did not within ``timeout_s`` or died (then reported as a writer death)."""
        proc = self._proc
        if proc is None or self._loop is not None or self._ready:
            return self._ready
        if proc.wait_readable(timeout_s):
            self._poll_process()
        return self._ready

    def start_sync(self, *, wait_ready: bool = True) -> None:
        """Start the process writer without an event loop (a synchronous driver then calls :meth:`pump`).

        With ``wait_ready=False`` the child's start-up (imports, connection: ~0.3 s) overlaps the caller's work; a
        child that cannot start is then reported like a dead writer (HALT, :attr:`last_error`, restarts).

        Raises:
            ConfigError: the inline writer (it needs a loop), or (``wait_ready``) the writer process could not start.
        """
        if self._running:
            return
        if self.writer != "process":
            raise ConfigError("start_sync() needs the process writer (Journal(writer='process'))")
        self._closed = False
        self._proc = self._spawn_sync(wait_ready=wait_ready)
        self._running = True
        self._armed = True

    async def stop(self) -> None:
        """Write everything captured, then stop the writer and detach from the bus. Further records raise
        :class:`JournalClosedError`.

        Raises:
            JournalClosedError: the process writer could not commit everything (records pending; see
                :attr:`last_error`).
        """
        self.detach()
        self._closed = True
        if not self._running:
            return
        self._cancel_timer()
        if self.writer == "process":
            try:
                await self._wait_seq(self._seq)
            finally:
                self._shutdown_process()
        else:
            self._cut()
            assert self._wake is not None and self._task is not None
            self._wake.set()
            try:
                await self._task
            finally:
                self._task = None
                self._running = False
                if self._own_engine and self._engine is not None:
                    await self._engine.dispose()
                    self._engine = None
        self._release()

    def stop_sync(self, timeout_s: float = 60.0) -> None:
        """:meth:`stop` without an event loop (the process writer).

        Raises:
            JournalClosedError: not everything was committed within ``timeout_s``.
        """
        self.detach()
        self._closed = True
        if not self._running:
            return
        try:
            self.flush_sync(timeout_s)
        finally:
            self._shutdown_process()

    def _shutdown_process(self) -> None:
        if self._restart_handle is not None:
            self._restart_handle.cancel()
            self._restart_handle = None
        proc, self._proc = self._proc, None
        if proc is not None:
            if self._loop is not None:
                with contextlib.suppress(Exception):
                    self._loop.remove_reader(proc.fileno)
            # all acknowledged: nothing left for the child to write, so its own shutdown need not be waited for
            proc.stop(wait=bool(self._unacked or self._buf))
        self._running = False

    async def __aenter__(self) -> Journal:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def attach(
        self,
        bus: MessageBus,
        *,
        priority: int = Priority.JOURNAL,
        snapshot_priority: int = Priority.SNAPSHOT,
        positions: PositionSource | None = None,
        account_id: int | None = None,
    ) -> None:
        """Subscribe to the journal's topics on ``bus`` (records at ``priority``; account snapshots after fills and
        session rolls at ``snapshot_priority``, after the account state has updated).

        With ``positions`` (the node's position manager) position changes are captured from the manager directly
        (:meth:`PositionManager.add_capture`: the same records, without building a position event per fill, ~3 us
        each) instead of from ``events.position.**``.

        Several buses may be attached (``propdesk serve``: one node, one bus per account, one journal and one event
        sequence for all): pass each node's ``account_id``, so a session roll on its bus snapshots only that account
        (``None``: every account of :attr:`snapshot_sources`, the one-node case)."""
        self._attach_args.append((bus, priority, snapshot_priority, positions, account_id))
        live = self._loop is not None and self._running
        raw = self._capture_live if live else self._buf.append
        self._attached_raw = self._attached_raw or not live
        subs: list[Subscription] = []
        for pattern in TOPICS:
            if positions is not None and pattern == POSITION_PATTERN:
                continue
            if pattern == ORDER_PATTERN:  # one subscription per order event topic: the buffer's own append
                for cls, topic in wire.ORDER_EVENT_TOPICS.items():
                    capture = self._capture_object if cls in wire.OBJECT_EVENTS else raw
                    subs.append(bus.subscribe(topic, capture, priority))
                continue
            handler = raw if pattern == POSITION_PATTERN else self.record
            subs.append(bus.subscribe(pattern, handler, priority))
        if positions is not None:
            positions.add_capture(raw)
            self._positions.append((positions, raw))
        if self.snapshot_sources:
            subs.append(bus.subscribe(topics.ORDER_FILLED, self._snapshot_after_fill, snapshot_priority))

            def at_roll(event: object) -> None:
                self._snapshot_at_roll(event, account_id)

            subs.append(bus.subscribe(topics.SESSION_ROLLED, at_roll, snapshot_priority))
        self._subs.extend((bus, sub) for sub in subs)
        if self._buf and not self._armed:
            self._arm()

    def detach(self) -> None:
        """Unsubscribe from every attached bus and position manager (captured records are still written)."""
        for bus, sub in self._subs:
            bus.unsubscribe(sub)
        self._subs.clear()
        self._attach_args.clear()
        self._attached_raw = False
        for positions, capture in self._positions:
            positions.remove_capture(capture)
        self._positions.clear()

    # ------------------------------------------------------------------ capture (sync, never blocks)

    def record(self, message: object) -> int:
        """Capture ``message`` (an order event, position event, risk event, audit entry or account report) and
        return its sequence number; other messages are counted as skipped (returns 0). Never blocks, never drops.

        Also usable as a :class:`propdesk.risk.audit.AuditLog` sink (``record(entry)``).

        Raises:
            JournalClosedError: the journal was stopped.
        """
        cls = type(message)
        if cls is OrderFilled:
            item = wire.encode_fill(message)  # type: ignore[arg-type]
        elif cls in _ORDER_CODE:
            item = wire.encode_order_event(message)  # type: ignore[arg-type]
            if cls in wire.OBJECT_EVENTS:
                self._objects += 1
        elif cls in _POSITION_CODE:
            item = wire.encode_position(message)  # type: ignore[arg-type]
        else:
            return self._record_other(message)
        if self._closed:
            self._refuse(message)
        acct = item[1]
        if acct not in self._seen_accounts:
            self._first_sight(acct, message.ts_event_ns)  # type: ignore[attr-defined]
        self._buf.append(item)
        seq = self._seq
        if item[0] != wire.K_POSITION:
            if self.order_lookup is not None or self.order_lookups:
                # every order event (not only fills) refreshes its order's row: canceled legs and orders still
                # working at a crash must be in the journal for recovery
                self._dirty[message.client_order_id] = acct  # type: ignore[attr-defined]
            if item[0] == _K_FILL:
                self._fill_seq[(acct, item[10])] = seq
        self._after_capture()
        return seq

    def _after_capture(self) -> None:
        """The back-pressure and cut-timer checks of a capture (only called when one may be due)."""
        backlog = len(self._buf) + self._inflight
        if backlog >= self.high_watermark:
            self._over(backlog)
        if not self._armed:
            self._arm()
        elif backlog >= self.batch_size and not self._soon and self._loop is not None:
            self._hurry()

    def _capture_object(self, event: object) -> None:
        """The raw capture of an order event whose item holds objects (a modify's prices): the cut that takes it is
        pickled (:func:`propdesk.storage.wire.dumps`)."""
        self._buf.append(event)
        self._objects += 1
        if not self._armed:
            self._arm()

    def _capture_live(self, message: object) -> None:
        """The raw capture while the journal runs on an event loop: the buffer's append, and a cut scheduled if none
        is (:meth:`_arm`). A synchronous driver's captures are the buffer's own ``append`` (it pumps by itself)."""
        self._buf.append(message)
        if not self._armed:
            self._arm()

    @property
    def scope(self) -> wire.Scope:
        """``(run id, venue session, per-account venue sessions)`` stamped on the rows of every record cut from now on
        (see :meth:`set_run` and :meth:`set_account_venue`)."""
        return self._scope

    def set_run(self, run_id: str | None, venue_session: str = "") -> None:
        """Journal the records cut from now on under the strategy run ``run_id`` (``None``: outside a run) and the
        venue session ``venue_session``: the scope the broker's trade ids are unique in besides the account - the run
        id for a simulated exchange, whose trade ids restart in every run; empty for a broker whose trade ids are
        unique in the account (ProjectX), so a fill reported again in a later run is still one row
        (:mod:`propdesk.storage.models`). Set it before the first record of the run is captured. The venue sessions
        of single accounts (:meth:`set_account_venue`) are kept.
        """
        self._scope = (run_id, venue_session, self._scope[2])

    def set_account_venue(self, account_id: int, venue_session: str) -> None:
        """Journal the records of ``account_id`` cut from now on under ``venue_session`` instead of the run's (a
        journal shared by accounts of different brokers: ``propdesk serve``'s ProjectX accounts take ``""`` beside
        simulated ones under the run id). Set it before the account's first record is captured."""
        others = tuple(p for p in self._scope[2] if p[0] != account_id)
        self._scope = (self._scope[0], self._scope[1], (*others, (int(account_id), venue_session)))

    @property
    def running(self) -> bool:
        """True between start and stop (records are accepted)."""
        return self._running and not self._closed

    def record_rows(self, rows: list[tuple[str, dict[str, Any]]], account_id: int = 0) -> int:
        """Capture ready-made ``(table, row)`` pairs (rare records such as a ``strategy_runs`` row, upserted by id,
        or a ``backtest_results`` row), written in order with the records around them. Returns the sequence
        number (``flush`` / ``committed_seq`` tell when it is durable).

        Raises:
            JournalClosedError: the journal was stopped.
        """
        if self._closed:
            self._refuse(rows)
        self._buf.append((wire.K_ROWS, account_id, list(rows)))
        if not self._armed:
            self._arm()
        return self._seq

    def _record_other(self, message: object) -> int:
        if isinstance(message, AuditEntry):
            return self._put((wire.K_AUDIT, int(message.account), message), message, message.ts_ns)
        if isinstance(message, AccountReport):
            return self._put((wire.K_REPORT, int(message.account_id), message, message.ts_ns), message, message.ts_ns)
        topic = getattr(message, "topic", None)
        if isinstance(topic, str) and topic.startswith(_RISK_PREFIX) and hasattr(message, "account_id"):
            acct = int(message.account_id)
            return self._put((wire.K_RISK, acct, message), message, int(getattr(message, "ts_ns", 0)))
        self._skipped += 1
        return 0

    def record_account_snapshot(
        self, account_id: int, snapshot: AccountSnapshot, ts_ns: int, *, kind: str = "manual", ref: str = ""
    ) -> int:
        """Capture a risk-engine account snapshot (``kind``: ``fill``, ``eod``, ``manual``; ``ref`` makes it unique
        among snapshots of the same kind and time). Its EOD balances are journaled too (insert-or-ignore)."""
        return self._put((wire.K_SNAPSHOT, int(account_id), snapshot, (kind, ref), ts_ns), snapshot, ts_ns)

    def record_eod_balance(self, account_id: int, trading_date: date, balance: Money, ts_ns: int) -> int:
        """Capture one end-of-day balance (the first one journaled for a date is kept)."""
        return self._put((wire.K_EOD, int(account_id), (trading_date, balance), ts_ns), balance, ts_ns)

    def _snapshot_after_fill(self, event: object) -> None:
        if isinstance(event, OrderFilled):
            source = self.snapshot_sources.get(int(event.account_id))
            if source is not None:
                self.record_account_snapshot(
                    event.account_id, source(), event.ts_event_ns, kind="fill", ref=event.trade_id
                )

    def _snapshot_at_roll(self, event: object, only: int | None = None) -> None:
        ts_ns = int(getattr(event, "ts_ns", 0))
        ended = getattr(event, "ended_trading_date", None)
        for account_id, source in tuple(self.snapshot_sources.items()):
            if only is None or account_id == only:
                self.record_account_snapshot(account_id, source(), ts_ns, kind="eod", ref=str(ended or ""))

    def _refuse(self, message: object) -> None:
        raise JournalClosedError(f"the journal ({self._url}) is stopped; a {type(message).__name__} was not recorded")

    def _first_sight(self, account_id: int, ts_ns: int) -> None:
        self._seen_accounts.add(account_id)
        self._buf.append((wire.K_REPORT, account_id, None, ts_ns or self._clock()))

    def _put(self, item: wire.Item, message: object, ts_ns: int = 0) -> int:
        """Capture a rare record (slow path: kept as the object itself)."""
        if self._closed:
            self._refuse(message)
        acct = item[1]
        if item[0] != wire.K_REPORT and acct not in self._seen_accounts:
            self._first_sight(acct, ts_ns)
        if item[0] == wire.K_REPORT:
            self._seen_accounts.add(acct)
        self._buf.append(item)
        self._objects += 1
        seq = self._seq
        backlog = len(self._buf) + self._inflight
        if backlog >= self.high_watermark:
            self._over(backlog)
        if not self._armed:
            self._arm()
        return seq

    # ------------------------------------------------------------------ cuts

    def _writer_busy(self) -> bool:
        """Whether an earlier batch is still on its way to a commit (sent and not acknowledged, or queued for the
        inline writer)."""
        return bool(self._unacked) if self.writer == "process" else bool(self._inline)

    def _arm(self) -> None:
        """Schedule the cut of what was captured: at the end of the current loop turn while the writer is idle (no
        delay: the batch's transaction starts at once); while it is busy with an earlier batch, at its
        acknowledgement (:meth:`_after_commit`: the records captured meanwhile are one transaction, a group commit)
        or ``max_delay_s`` from now, whichever comes first."""
        if self._loop is None or not self._running:
            return
        self._armed = True
        if self._writer_busy():
            self._timer = self._loop.call_later(self.max_delay_s, self._on_timer)
        else:
            self._soon = True
            self._timer = self._loop.call_soon(self._on_timer)

    def _after_commit(self) -> None:
        """A batch was committed: a cut waiting for the writer (:meth:`_arm`) happens now if it has become idle."""
        if self._buf and self._loop is not None and not self._writer_busy():
            self._hurry()

    def _hurry(self) -> None:
        if self._loop is None or not self._running or self._soon:
            return
        self._cancel_timer()
        self._armed = True
        self._soon = True
        self._timer = self._loop.call_soon(self._on_timer)

    def _cancel_timer(self) -> None:
        """Cancel the pending cut (timer or hurry) and forget it was pending, so the next capture or wait schedules a
        new one (a hurry canceled by :meth:`stop` while still marked pending left :meth:`flush` waiting forever)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._soon = False
        self._armed = self._loop is None  # a synchronous driver pumps by itself

    def _on_timer(self) -> None:
        self._timer = None
        self._armed = False
        self._soon = False
        self._cut()
        if self._buf and self._based:  # captured by a listener of the cut's batch (nothing else is left)
            self._arm()

    def pump(self) -> None:
        """Cut what was captured and hand it to the writer, and take in the writer's acknowledgements. A synchronous
        driver (a backtest loop) calls this between chunks of work; on an event loop it happens by itself. Call it
        only between bus dispatches."""
        self._cut()
        if self._loop is None and self._proc is not None:
            self._poll_process()
        elif self._loop is None and self._dead:
            self._maybe_restart_sync()

    def _cut(self) -> None:
        buf = self._buf
        if not buf or not self._running or not self._based:
            return
        raw = buf[:]  # the list itself stays: the bus subscriptions append to it
        buf.clear()
        plain = not self._objects
        self._objects = 0
        items, fills, first_sights = self._encode(raw)
        last = self._cut_seq + len(items)  # gap-free: a skipped message takes no number
        self._cut_seq = last
        if len(items) != len(raw) + first_sights and self._waiters:  # numbers handed out past the cut's last
            self._waiters = [(min(s, last), n, f) for s, n, f in self._waiters]
            heapq.heapify(self._waiters)
        if fills:
            self._fill_seq.update(dict.fromkeys(fills, last))
        states: list[tuple[Any, ...]] = []
        if self._dirty:
            lookup = self.order_lookup
            lookups = self.order_lookups
            if lookup is not None or lookups:
                get = wire.order_state
                add = states.append
                for cid, acct in self._dirty.items():
                    find = lookups.get(acct, lookup) if lookups else lookup
                    order = None if find is None else find(cid)
                    if order is not None and order.account_id == acct:
                        add(get(order))
            self._dirty = {}
        self._inflight += len(items)
        backlog = self._inflight
        if backlog > self._max_pending:
            self._max_pending = backlog
        if backlog >= self.high_watermark:
            self._over(backlog)
        batch: wire.Batch = (last, items, states, self._scope)
        self._unpublished.append((last, items, self._scope))
        if self.writer == "process":
            data = wire.dumps(batch, plain=plain)
            self._unacked.append((last, len(items), data))
            if self._proc is not None and not self._dead:
                self._proc.send(data)
        else:
            self._inline.append(batch)
            if self._wake is not None:
                self._wake.set()
        for listener in self._cut_listeners:  # while the writer writes the batch
            try:
                listener(last, items, self._scope)
            except Exception:
                log.exception("journal cut listener %r failed at seq %d", listener, last)
        if len(self._fill_seq) > 100_000:
            done = self._committed_seq
            self._fill_seq = {k: s for k, s in self._fill_seq.items() if s > done}

    def _encode(self, raw: list[Any]) -> tuple[list[wire.Item], list[tuple[int, str]], int]:
        """The items of a cut's entries, in capture order: items made by :meth:`record` as they are; events taken
        raw from the bus and the position manager's captures encoded here (:mod:`propdesk.storage.wire`), with their
        bookkeeping (orders touched, first sight of an account). Returns the items, the ``(account, trade id)`` of
        the raw fills (on an event loop, for :meth:`durable`), and how many first sights were added. A message of an
        unknown type is counted as skipped."""
        items: list[wire.Item] = []
        add = items.append
        fills: list[tuple[int, str]] = []
        seen = self._seen_accounts
        dirty = self._dirty
        encoder_of = wire.ORDER_ENCODERS.get
        track_fills = self._loop is not None  # durable() needs a loop: a synchronous driver never asks
        added = 0
        for m in raw:
            t = type(m)
            if t is tuple:
                if m[0] != _K_POSITION_CHANGE:
                    add(m)  # made by record(): its bookkeeping is done
                    continue
                item = m
            else:
                encode = encoder_of(t)
                if encode is not None:
                    item = encode(m)
                    dirty[m.client_order_id] = item[1]
                    if track_fills and t is OrderFilled:
                        fills.append((item[1], item[10]))
                elif t in _POSITION_CODE:
                    item = wire.encode_position(m)
                else:
                    self._skipped += 1
                    continue
            if item[1] not in seen:
                seen.add(item[1])
                add((wire.K_REPORT, item[1], None, _ts_of(item) or self._clock()))
                added += 1
            add(item)
        if self.order_lookup is None and not self.order_lookups:
            dirty.clear()
        return items, fills, added

    # ------------------------------------------------------------------ process writer

    async def _spawn_async(self) -> WriterProcess:
        proc = WriterProcess(
            self._engine_url.render_as_string(hide_password=False),
            retry_delay_s=self.retry_delay_s,
            max_retry_delay_s=self.max_retry_delay_s,
            migrate=self.migrate,
        )
        loop = asyncio.get_running_loop()
        ready = await loop.run_in_executor(None, proc.wait_readable, _START_TIMEOUT_S)
        self._check_ready(proc, ready)
        self._ready = True
        return proc

    def _spawn_sync(self, *, wait_ready: bool = True) -> WriterProcess:
        proc = WriterProcess(
            self._engine_url.render_as_string(hide_password=False),
            retry_delay_s=self.retry_delay_s,
            max_retry_delay_s=self.max_retry_delay_s,
            migrate=self.migrate,
        )
        self._ready = False
        if wait_ready:
            self._check_ready(proc, proc.wait_readable(_START_TIMEOUT_S))
            self._ready = True
        return proc

    def _check_ready(self, proc: WriterProcess, readable: bool) -> None:
        msgs: list[tuple[Any, ...]] = []
        error = "it did not answer in time"
        if readable:
            try:
                msgs = proc.read()
            except WriterDiedError as exc:
                error = str(exc)
        if msgs and msgs[0][0] == "ready":
            if not self._based:
                self._set_base(int(msgs[0][2]))
            return
        if msgs and msgs[0][0] == "fatal":
            error = str(msgs[0][1])
        proc.kill()
        proc.close()
        raise ConfigError(f"the journal writer for {self._url} could not start: {error}")

    def _on_readable(self) -> None:
        self._poll_process()

    def _poll_process(self) -> None:
        proc = self._proc
        if proc is None:
            return
        try:
            msgs = proc.read()
        except WriterDiedError as exc:
            self._writer_died(str(exc))
            return
        for msg in msgs:
            tag = msg[0]
            if tag == "ready":
                self._ready = True
                if not self._based:
                    self._set_base(int(msg[2]))
                    self._cut()  # records captured while the sequence's start was unknown
            elif tag == "ack":
                _, last_seq, n_records, n_rows = msg
                self._commit(last_seq, n_records, n_rows)
            elif tag == "fail":
                self._failures += 1
                self._failing = True
                self.last_error = str(msg[2])
                log.error("journal write to %s failed (records kept, retrying): %s", self._url, self.last_error)
                self._raise_level(BackpressureLevel.HALT)
            elif tag == "fatal":
                self._writer_died(f"the journal writer stopped: {msg[1]}")
                return

    def _commit(self, last_seq: int, n_records: int, n_rows: int) -> None:
        while self._unacked and self._unacked[0][0] <= last_seq:
            self._unacked.popleft()
        self._inflight = sum(n for _s, n, _d in self._unacked)
        self._rows += n_rows
        self._batches += 1
        self._failing = False
        self._restart_attempt = 0
        if last_seq > self._committed_seq:
            self._committed_seq = last_seq
        self._publish()
        self._release()
        self._relax_level()
        self._after_commit()

    def _writer_died(self, reason: str) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if self._loop is not None:
                with contextlib.suppress(Exception):
                    self._loop.remove_reader(proc.fileno)
            proc.kill()
            proc.close()
        self._dead = True
        self._failures += 1
        self.last_error = reason
        self._restart_attempt += 1
        delay = self._retry.delay(self._restart_attempt)
        log.error("%s; %d records kept, a new writer starts in %.2fs", reason, self.pending, delay)
        self._raise_level(BackpressureLevel.HALT)
        if self._closed and self._loop is None:
            return
        if self._loop is not None:
            self._restart_handle = self._loop.call_later(delay, self._restart_async)
        else:
            self._restart_due = time.monotonic() + delay

    def _restart_async(self) -> None:
        self._restart_handle = None
        assert self._loop is not None
        self._loop.create_task(self._restart_coro(), name="propdesk-journal-restart")

    async def _restart_coro(self) -> None:
        if not self._running:
            return
        try:
            proc = await self._spawn_async()
        except ConfigError as exc:
            self._writer_died(str(exc))
            return
        assert self._loop is not None
        self._adopt(proc)
        self._loop.add_reader(proc.fileno, self._on_readable)

    def _maybe_restart_sync(self) -> None:
        if not self._dead or time.monotonic() < self._restart_due:
            return
        try:
            proc = self._spawn_sync()
        except ConfigError as exc:
            self._writer_died(str(exc))
            return
        self._adopt(proc)

    def _adopt(self, proc: WriterProcess) -> None:
        self._proc = proc
        self._dead = False
        self._restarts += 1
        log.warning("journal writer restarted; sending %d unacknowledged batches again", len(self._unacked))
        for _last, _n, data in self._unacked:
            proc.send(data)
        self._relax_level()

    # ------------------------------------------------------------------ back-pressure

    @property
    def level(self) -> BackpressureLevel:
        """The current back-pressure level."""
        return self._level

    def _over(self, backlog: int) -> None:
        if backlog > self._max_pending:
            self._max_pending = backlog
        self._raise_level(BackpressureLevel.HALT if backlog >= self.capacity else BackpressureLevel.SLOW)

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
        backlog = self.pending
        if self._failing or self._dead or backlog >= self.capacity:
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
        while self._level is not BackpressureLevel.NORMAL or self.pending >= self.high_watermark:
            await self._wait_seq(self._seq)

    # ------------------------------------------------------------------ the event sequence

    def _set_base(self, head: int) -> None:
        """Continue the event sequence after ``head`` (the largest number stored). Nothing was cut before, so every
        number handed out so far (waiters, fills) counted from 0: they move up with it."""
        self._based = True
        if head <= 0:
            return
        self._cut_seq += head
        self._committed_seq += head
        self._waiters = [(s + head, n, f) for s, n, f in self._waiters]
        heapq.heapify(self._waiters)
        self._fill_seq = {k: s + head for k, s in self._fill_seq.items()}

    @property
    def head_seq(self) -> int:
        """The event sequence number of the last committed record (0: none yet). Every record the journal captures
        is numbered in capture order, one greater than the one before, continuing after the largest number already
        in the database (read when the journal opens: one journal writes a database at a time); the number is
        stored with the record (the ``events`` table) and published with it once committed (:meth:`add_listener`)."""
        return self._committed_seq

    def sequence_point(self) -> int:
        """Cut what was captured and return the sequence number of the last record captured: state taken now (on the
        core's thread, between bus dispatches) reflects exactly the records up to it.

        Raises:
            JournalClosedError: records wait that cannot be numbered yet (the journal is not running, or its writer
                has not yet told where the sequence continues).
        """
        self._cut()
        if self._buf:
            raise JournalClosedError(
                f"the journal ({self._url}) cannot number its {len(self._buf)} waiting records yet"
                f" ({'writer starting' if self._running else 'not running'})"
            )
        return self._cut_seq

    def add_listener(self, listener: Callable[[int, list[wire.Item], wire.Scope], object]) -> None:
        """Call ``listener(last_seq, items, scope)`` for every batch once it is committed, in sequence order: the
        batch's items are numbered ``last_seq - len(items) + 1`` ... ``last_seq``
        (:func:`propdesk.storage.wire.event_rows` gives their ``events`` rows). Called on the core's thread."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[int, list[wire.Item], wire.Scope], object]) -> bool:
        """Stop calling ``listener``; False if it was not added."""
        try:
            self._listeners.remove(listener)
        except ValueError:
            return False
        return True

    def add_cut_listener(self, listener: Callable[[int, list[wire.Item], wire.Scope], object]) -> None:
        """Call ``listener(last_seq, items, scope)`` for every batch as soon as it is cut and handed to the writer,
        before it is durable (same arguments as :meth:`add_listener`): for work that a listener of the commit would
        otherwise do after the commit (e.g. building the stream's events), done while the writer writes. Never to
        publish the batch: it is not committed yet. Called on the core's thread."""
        self._cut_listeners.append(listener)

    def remove_cut_listener(self, listener: Callable[[int, list[wire.Item], wire.Scope], object]) -> bool:
        """Stop calling ``listener`` at cuts; False if it was not added."""
        try:
            self._cut_listeners.remove(listener)
        except ValueError:
            return False
        return True

    def _publish(self) -> None:
        done = self._committed_seq
        pending = self._unpublished
        while pending and pending[0][0] <= done:
            last, items, scope = pending.popleft()
            for listener in tuple(self._listeners):
                try:
                    listener(last, items, scope)
                except Exception:
                    log.exception("journal listener %r failed at seq %d", listener, last)

    # ------------------------------------------------------------------ durability

    @property
    def pending(self) -> int:
        """Records captured and not yet committed."""
        return len(self._buf) + self._inflight

    @property
    def committed_seq(self) -> int:
        """The sequence number of the last committed record (every record up to it is durable)."""
        return self._committed_seq

    async def flush(self) -> None:
        """Wait until every record captured so far is committed.

        Raises:
            JournalClosedError: the writer is not running and records are pending.
        """
        await self._wait_seq(self._seq)

    def flush_sync(self, timeout_s: float = 60.0) -> None:
        """Block until every record captured so far is committed (process writer, no event loop).

        Raises:
            JournalClosedError: not committed within ``timeout_s`` (the writer keeps failing or is dead).
        """
        deadline = time.monotonic() + timeout_s
        target: int | None = None
        while True:
            if target is None and self._based:  # numbers are known once the writer has told where they start
                target = self._seq
                self._cut()
            if target is not None and self._committed_seq >= target:
                break
            if not self._running:
                raise JournalClosedError(f"the journal ({self._url}) is not running; {self.pending} records pending")
            left = deadline - time.monotonic()
            if left <= 0:
                raise JournalClosedError(
                    f"the journal ({self._url}) did not commit {self.pending} records within {timeout_s}s"
                    f" (last error: {self.last_error})"
                )
            if self._proc is None:
                time.sleep(min(left, 0.05))
                self._maybe_restart_sync()
            elif self._proc.wait_readable(min(left, 0.5)):
                self._poll_process()

    async def durable(self, event: object) -> None:
        """Wait until ``event`` is committed; an :class:`OrderFilled` the journal has not seen is recorded first.

        Use it before acknowledging a fill outside the node (API push, bridge).

        Raises:
            JournalClosedError: as :meth:`flush`.
        """
        seq = self._seq
        if isinstance(event, OrderFilled):
            key = (int(event.account_id), event.trade_id)
            known = self._fill_seq.get(key)
            if known is None and self._buf and self._running:
                self._cut()  # the fill may still wait in the buffer, raw (a coroutine runs between dispatches)
                known = self._fill_seq.get(key)
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
        seq = min(seq, self._seq)  # a skipped message's number was never given to a record
        if seq <= self._committed_seq:
            return
        if not self._running or self._loop is None:
            raise JournalClosedError(f"the journal ({self._url}) is not running; {self.pending} records pending")
        fut: asyncio.Future[None] = self._loop.create_future()
        self._waiter_n += 1
        heapq.heappush(self._waiters, (seq, self._waiter_n, fut))
        if self._buf and seq > self._cut_seq:
            self._hurry()
        await fut

    def _release(self) -> None:
        while self._waiters and self._waiters[0][0] <= self._committed_seq:
            _, _, fut = heapq.heappop(self._waiters)
            if not fut.done():
                fut.set_result(None)
        if not self._running:
            while self._waiters:
                _, _, fut = heapq.heappop(self._waiters)
                if not fut.done():
                    fut.set_exception(
                        JournalClosedError(f"the journal ({self._url}) stopped with {self.pending} records pending")
                    )

    # ------------------------------------------------------------------ inline writer

    async def _run_inline(self) -> None:
        assert self._wake is not None
        waits = self._retry.delays()
        while True:
            if not self._inline:
                if self._closed:
                    break
                self._wake.clear()
                await self._wake.wait()
                continue
            last_seq, items, states, scope = self._inline[0]
            n = len(items)
            size = self.batch_size
            chunks = [items[lo : lo + size] for lo in range(0, n, size)] or [[]]
            done = 0
            while done < len(chunks):
                chunk = chunks[done]
                final = done == len(chunks) - 1
                try:
                    chunk_last = last_seq - n + min((done + 1) * size, n)
                    rows = wire.rows_of(chunk, states, order_rows=final, scope=scope, last_seq=chunk_last)
                    await self.repository.write(rows)
                except Exception as exc:
                    self._failures += 1
                    self._failing = True
                    self.last_error = describe_error(exc, self._engine_url)
                    delay = next(waits)
                    log.error(
                        "journal write to %s failed (%d records kept, retry in %.2fs): %s",
                        self._url,
                        len(chunk),
                        delay,
                        self.last_error,
                    )
                    self._raise_level(BackpressureLevel.HALT)
                    await asyncio.sleep(delay)
                    continue
                waits = self._retry.delays()
                self._failing = False
                done += 1
                self._inflight -= len(chunk)
                self._batches += 1
                self._rows += len(rows)
                if final:
                    self._inline.popleft()
                    self._committed_seq = last_seq
                    self._publish()
                    self._after_commit()
                self._release()
                self._relax_level()
                await asyncio.sleep(0)  # let the core run between transactions

    # ------------------------------------------------------------------ stats

    def stats(self) -> JournalStats:
        """A snapshot of the journal's counters."""
        return JournalStats(
            enqueued=self._seq,
            committed=self._committed_seq,
            rows=self._rows,
            batches=self._batches,
            failures=self._failures,
            pending=self.pending,
            max_pending=max(self._max_pending, self.pending),
            skipped=self._skipped,
            level=self._level,
            restarts=self._restarts,
        )
