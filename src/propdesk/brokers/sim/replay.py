"""The replay feed: plays recorded bars, trade prints, quotes and depth through a :class:`SimClock`, the simulated
exchange and a trading node, at a speed multiple of real time (1x, Nx) or as fast as possible.

Order of play. Sources are each sorted by event time; :class:`ReplayFeed` merges them with :func:`heapq.merge` on the
record's event time: a bar at its **close** (``ts_close_ns``: a bar is known only once it has closed), a trade,
quote or depth update at its ``ts_event_ns``. Ties go in source order (the first source given first), then in each
source's own order. For each record, in this order (the same as the backtest runner,
:mod:`propdesk.backtest.engine`, so a replay at any speed gives the backtest's fills):

0. with ``before_record``: ``before_record(start)``, ``start`` being the record's start (a bar's open, any other
   record's event time): the node completes the aggregated bars that ended by then
   (:meth:`propdesk.data.aggregation.feeds.BarFeeds.close_due`);
1. ``clock.advance_to(ts)`` (timers due by then fire);
2. the simulated exchange matches it against working orders (``process_bar`` / ``process_trade`` /
   ``process_quote`` / ``process_depth``);
3. it is published to the node (``sink.publish_bar(bar)`` for bars, ``sink.on_broker_event(record)`` for ticks and
   depth, which the node puts on ``data.trades.<symbol>``, ``data.quotes.<symbol>``, ``data.depth.<symbol>``).

Pacing (asyncio). With ``speed=s`` the record at event time ``ts`` is played at wall time
``t0 + (ts - ts0) / s / 1e9`` seconds, where ``ts0`` is the first record's time and ``t0`` the monotonic time it was
played: the feed sleeps until then, so sleeping never accumulates drift. A single wait is capped at ``max_wait_s``
wall seconds (default 2 s): the daily halt and weekends do not stall a paced replay; the skipped wall time is
dropped from the schedule. Waits are taken in slices of at most ``slice_s`` so :meth:`ReplayFeed.stop` takes effect
within a slice. With ``speed=None`` (as fast as possible) the feed never sleeps on the schedule but yields to the
event loop (``sleep(0)``) every ``yield_every`` records, so a live console can refresh and a SIGINT handler can run.

The sleep function and the monotonic time source are injectable, so tests check the pacing without waiting.

Imports only ``core`` and ``model`` (ARCHITECTURE.md, packages table): the node is reached through the
:class:`ReplaySink` protocol, which :class:`propdesk.node.TradingNode` satisfies.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from propdesk.core.clock import SimClock
from propdesk.core.errors import ConfigError
from propdesk.model.data import Bar, BarSeries, DepthUpdate, QuoteTick, TradeSeries, TradeTick

__all__ = [
    "DEFAULT_MAX_WAIT_S",
    "DEFAULT_YIELD_EVERY",
    "MarketMatcher",
    "ReplayFeed",
    "ReplayProgress",
    "ReplayRecord",
    "ReplaySink",
    "ReplaySource",
    "event_ts_ns",
    "parse_speed",
]

ReplayRecord = Bar | TradeTick | QuoteTick | DepthUpdate
"""One record a replay plays."""

ReplaySource = BarSeries | TradeSeries | Iterable[ReplayRecord]
"""A source of records sorted by event time (bars by close time): a bar or trade series, or any iterable."""

SleepFn = Callable[[float], Awaitable[None]]
"""``await sleep(seconds)``; :func:`asyncio.sleep` by default."""

DEFAULT_YIELD_EVERY = 512
"""Records between yields to the event loop when playing as fast as possible."""

DEFAULT_MAX_WAIT_S = 2.0
"""The longest single wall-clock wait (seconds) between two records; longer gaps are shortened to this."""

DEFAULT_SLICE_S = 0.25
"""The longest single ``sleep`` call (seconds), so that :meth:`ReplayFeed.stop` is honoured promptly."""


class MarketMatcher(Protocol):
    """The simulated exchange's market-data side (:class:`propdesk.brokers.sim.SimBroker` fits)."""

    def process_bar(self, bar: Bar) -> None:
        """Match a closed bar against working orders."""
        ...

    def process_trade(self, trade: TradeTick) -> None:
        """Match a trade print against working orders."""
        ...

    def process_quote(self, quote: QuoteTick) -> None:
        """Record the top of book and match against working orders."""
        ...

    def process_depth(self, update: DepthUpdate) -> None:
        """Apply an L2 update and match at consistent points."""
        ...


class ReplaySink(Protocol):
    """Where played records go after matching (:class:`propdesk.node.TradingNode` fits)."""

    def publish_bar(self, bar: Bar) -> None:
        """Publish a closed bar to strategies."""
        ...

    def on_broker_event(self, event: object) -> None:
        """Publish a tick or depth update (routed like any broker event)."""
        ...


def event_ts_ns(record: ReplayRecord) -> int:
    """The time (UTC ns) at which ``record`` is played: a bar's close, any other record's ``ts_event_ns``."""
    if type(record) is Bar:
        return record.ts_close_ns
    return record.ts_event_ns  # type: ignore[union-attr]


def parse_speed(value: float | str | None) -> float | None:
    """A speed option as the feed takes it: ``None``, ``0``, ``"max"`` or ``"inf"`` mean as fast as possible
    (``None``); a positive number is a multiple of real time (``1`` = real time, ``60`` = one minute of data per
    second). Strings like ``"60"``, ``"60x"`` and ``"0.5"`` are accepted.

    Raises:
        ConfigError: a negative, non-finite (other than ``inf``) or unparseable value.
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("max", "inf", "fast"):
            return None
        text = text.removesuffix("x")
        try:
            value = float(text)
        except ValueError:
            raise ConfigError(f"speed {value!r} is not a number or 'max'") from None
    speed = float(value)
    if speed == float("inf") or speed == 0:
        return None
    if not (speed > 0 and math.isfinite(speed)):
        raise ConfigError(f"speed {value!r} must be a positive multiple of real time, 0 or 'max'")
    return speed


@dataclass(frozen=True, slots=True)
class ReplayProgress:
    """A snapshot of a feed's counters.

    Attributes:
        records: records played; bars / trades / quotes / depth: of which of each kind.
        total: records expected (``None`` when a source's length is unknown).
        first_ts_ns / last_ts_ns: event time of the first / latest record played (UTC ns; ``None`` before any).
        slept_s: wall seconds spent waiting on the schedule (monotonic clock of the feed).
        skipped_s: wall seconds of long gaps dropped by ``max_wait_s``.
    """

    records: int
    bars: int
    trades: int
    quotes: int
    depth: int
    total: int | None
    first_ts_ns: int | None
    last_ts_ns: int | None
    slept_s: float
    skipped_s: float

    @property
    def fraction(self) -> float | None:
        """Records played / total in [0, 1], or ``None`` when the total is unknown."""
        if self.total is None:
            return None
        return 1.0 if self.total == 0 else min(1.0, self.records / self.total)


class ReplayFeed:
    """Plays merged sources through a clock, the simulated exchange and a sink (see the module docstring).

    Args:
        clock: the node's :class:`SimClock`; it must not be ahead of the first record.
        matcher: the simulated exchange (``SimBroker``).
        sink: the node (``TradingNode``).
        sources: one or more sources, each sorted by event time.
        speed: a multiple of real time (> 0), or ``None`` for as fast as possible (see :func:`parse_speed`).
        yield_every: records between event-loop yields at full speed (>= 1).
        max_wait_s: the longest wall wait between two records (seconds, > 0), or ``None`` for no cap.
        slice_s: the longest single sleep (seconds, > 0).
        sleep: the async sleep (default :func:`asyncio.sleep`); inject a fake in tests.
        monotonic: wall time in seconds (default :func:`time.monotonic`); inject a fake in tests.
        on_record: called after each record is published, as ``on_record(record)`` (e.g. a last-price cache).
        before_record: called with each record's start time (UTC ns: a bar's open, a tick's event time) before the
            clock moves to its event time (step 0 of the module docstring).

    Raises:
        ConfigError: no sources, a non-positive ``yield_every``, ``max_wait_s`` or ``slice_s``, or a bad speed.
    """

    def __init__(
        self,
        clock: SimClock,
        matcher: MarketMatcher,
        sink: ReplaySink,
        sources: Sequence[ReplaySource],
        *,
        speed: float | None = None,
        yield_every: int = DEFAULT_YIELD_EVERY,
        max_wait_s: float | None = DEFAULT_MAX_WAIT_S,
        slice_s: float = DEFAULT_SLICE_S,
        sleep: SleepFn = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        on_record: Callable[[ReplayRecord], None] | None = None,
        before_record: Callable[[int], None] | None = None,
    ) -> None:
        if not sources:
            raise ConfigError("a replay needs at least one source of records")
        if yield_every < 1:
            raise ConfigError(f"yield_every must be >= 1, got {yield_every}")
        if max_wait_s is not None and not max_wait_s > 0:
            raise ConfigError(f"max_wait_s must be > 0 seconds or None, got {max_wait_s}")
        if not slice_s > 0:
            raise ConfigError(f"slice_s must be > 0 seconds, got {slice_s}")
        self.clock = clock
        self.matcher = matcher
        self.sink = sink
        self._sources = list(sources)
        self.speed = parse_speed(speed)
        self.yield_every = yield_every
        self.max_wait_s = max_wait_s
        self.slice_s = slice_s
        self._sleep = sleep
        self._monotonic = monotonic
        self._on_record = on_record
        self._before_record = before_record
        total = 0
        for src in self._sources:
            try:
                total += len(src)  # type: ignore[arg-type]
            except TypeError:
                total = -1
                break
        self.total: int | None = None if total < 0 else total
        self.records = 0
        self.bars = 0
        self.trades = 0
        self.quotes = 0
        self.depth = 0
        self.first_ts_ns: int | None = None
        self.last_ts_ns: int | None = None
        self.slept_s = 0.0
        self.skipped_s = 0.0
        self.last_price: float | None = None
        """The latest price seen: a bar's close, a trade's price, a quote's mid (points)."""
        self._t0: float | None = None
        self._ts0 = 0
        self._stopped = False
        self._running = False
        self.finished = False
        """True once every record was played (not when stopped early)."""

    # ------------------------------------------------------------------------------------------------ control

    def stop(self) -> None:
        """Ask the feed to stop: :meth:`run` returns after the record being played (or within one sleep slice).
        Safe to call from a signal handler scheduled on the loop, from a callback, or before :meth:`run`."""
        self._stopped = True

    @property
    def stopped(self) -> bool:
        """True once :meth:`stop` was called."""
        return self._stopped

    @property
    def running(self) -> bool:
        """True while :meth:`run` is playing."""
        return self._running

    def progress(self) -> ReplayProgress:
        """The counters now (see :class:`ReplayProgress`)."""
        return ReplayProgress(
            records=self.records,
            bars=self.bars,
            trades=self.trades,
            quotes=self.quotes,
            depth=self.depth,
            total=self.total,
            first_ts_ns=self.first_ts_ns,
            last_ts_ns=self.last_ts_ns,
            slept_s=self.slept_s,
            skipped_s=self.skipped_s,
        )

    def records_iter(self) -> Iterator[ReplayRecord]:
        """The merged records in play order (a fresh merge of the sources; the feed's counters are untouched)."""
        its: list[Iterator[ReplayRecord]] = [iter(s) for s in self._sources]
        if len(its) == 1:
            return its[0]
        return heapq.merge(*its, key=event_ts_ns)

    # ------------------------------------------------------------------------------------------------ play

    async def run(self) -> ReplayProgress:
        """Play every record (or until :meth:`stop`); return the final counters.

        Raises:
            RuntimeError: the feed is already running or has already run.
            TimerError: a record is older than the clock (sources out of order), from ``SimClock.advance_to``.
            Exception: whatever the matcher, the node or a timer callback raises propagates (the feed stops).
        """
        if self._running or self.records or self.finished:
            raise RuntimeError("a ReplayFeed plays once; build a new one to replay again")
        self._running = True
        try:
            await self._play()
        finally:
            self._running = False
        return self.progress()

    async def _play(self) -> None:
        advance = self.clock.advance_to
        m = self.matcher
        sink = self.sink
        publish_bar = sink.publish_bar
        publish_event = sink.on_broker_event
        on_record = self._on_record
        before = self._before_record
        speed = self.speed
        yield_every = self.yield_every
        sleep = self._sleep
        since_yield = 0
        for rec in self.records_iter():
            if self._stopped:
                break
            cls = type(rec)
            ts = rec.ts_close_ns if cls is Bar else rec.ts_event_ns  # type: ignore[union-attr]
            if speed is not None and await self._pace(ts, speed):
                since_yield = 0
                if self._stopped:
                    break
            elif since_yield >= yield_every:
                since_yield = 0
                await sleep(0)
                if self._stopped:
                    break
            if before is not None:
                before(rec.ts_open_ns if cls is Bar else ts)  # type: ignore[union-attr]
            advance(ts)
            if cls is Bar:
                m.process_bar(rec)  # type: ignore[arg-type]
                publish_bar(rec)  # type: ignore[arg-type]
                self.bars += 1
                self.last_price = rec.close  # type: ignore[union-attr]
            elif cls is TradeTick:
                m.process_trade(rec)  # type: ignore[arg-type]
                publish_event(rec)
                self.trades += 1
                self.last_price = rec.price  # type: ignore[union-attr]
            elif cls is QuoteTick:
                m.process_quote(rec)  # type: ignore[arg-type]
                publish_event(rec)
                self.quotes += 1
                q: QuoteTick = rec  # type: ignore[assignment]
                if math.isfinite(q.bid) and math.isfinite(q.ask):
                    self.last_price = (q.bid + q.ask) / 2
            elif cls is DepthUpdate:
                m.process_depth(rec)  # type: ignore[arg-type]
                publish_event(rec)
                self.depth += 1
            else:
                raise TypeError(f"a replay cannot play a {cls.__name__}: expected a bar, trade, quote or depth update")
            if self.first_ts_ns is None:
                self.first_ts_ns = ts
            self.records += 1
            since_yield += 1
            self.last_ts_ns = ts
            if on_record is not None:
                on_record(rec)
        else:
            self.finished = True

    async def _pace(self, ts: int, speed: float) -> bool:
        """Wait until the wall time at which the record at ``ts`` is due (see the module docstring); ``True`` if it
        slept."""
        now = self._monotonic()
        if self._t0 is None:
            self._t0 = now
            self._ts0 = ts
            return False
        due = self._t0 + (ts - self._ts0) / 1e9 / speed
        wait = due - now
        cap = self.max_wait_s
        if cap is not None and wait > cap:
            self._t0 -= wait - cap  # drop the excess from the schedule
            self.skipped_s += wait - cap
            due = now + cap
            wait = cap
        slept = False
        while wait > 0 and not self._stopped:
            await self._sleep(min(wait, self.slice_s))
            slept = True
            after = self._monotonic()
            self.slept_s += after - now
            now = after
            wait = due - now
        return slept
