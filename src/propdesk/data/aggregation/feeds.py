"""Bar feeds: the bars of every timeframe the strategies want, built on the bus from the finest data of a symbol.

A session declares what it feeds the bus for a symbol with :meth:`BarFeeds.set_source`: bars of one timeframe
(the finest data, e.g. the 1-minute bars of a file) published on ``data.bars.<symbol>.<tf>``. Anyone who wants bars
of another timeframe calls :meth:`BarFeeds.want`; the feeds then run one
:class:`~propdesk.data.aggregation.streaming.TimeBarAggregator` per symbol x timeframe (shared by every subscriber),
subscribed to the source topic, and publish each completed bar on that timeframe's topic. Bars are placed by
exchange time and are session aware (the aggregators' defaults, :mod:`propdesk.data.aggregation.schedule`):
intraday bars are cut at the CME daily halt and the 17:00 CT session open, ``1d`` bars are CME sessions closing at
17:00 CT. So an aggregated bar equals the bar :func:`~propdesk.data.aggregation.vectorized.aggregate_bars` builds
from the same data.

When a bar is emitted. An aggregated bar is complete when the data's time reaches its end:

* normally when its last finer bar arrives (that bar closes at the aggregated bar's end);
* when that last finer bar is missing (no trades in that minute), when the data shows time has passed the end: the
  driver calls :meth:`BarFeeds.close_due` with the next record's start time before matching that record, which
  advances the clock to each due end and emits the bar there. So an order placed on the aggregated bar's close is
  matched against the next finer bar, whose open is the next aggregated bar's open: with next-open fills the trades
  equal those on pre-aggregated bars;
* live, from the session's bar-close timer (:meth:`BarFeeds.on_time`).

A bar the data ends inside is never completed and not emitted.

Subscribers of the source topic see a finer bar before any aggregated bar it completes: the aggregators subscribe at
priority :data:`AGGREGATOR_PRIORITY` (below the default 0).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from propdesk.core import topics
from propdesk.core.bus import MessageBus
from propdesk.core.errors import ConfigError
from propdesk.core.topics import Priority
from propdesk.data.aggregation.sessions import CmeSessions
from propdesk.data.aggregation.streaming import TimeBarAggregator
from propdesk.model.data import Bar, Timeframe

__all__ = ["AGGREGATOR_PRIORITY", "NO_END_NS", "BarFeeds", "bars_topic", "check_coarser"]

AGGREGATOR_PRIORITY: Final[int] = Priority.AGGREGATOR
"""Bus priority of the aggregators on the source topic: after the default-priority subscribers of the finer bar."""

NO_END_NS: Final[int] = 2**63 - 1
"""What :meth:`BarFeeds.next_end_ns` returns when no aggregated bar is open."""


def bars_topic(symbol: str, timeframe: Timeframe | str) -> str:
    """The bus topic of ``symbol``'s bars of ``timeframe``: ``data.bars.ESZ5.5m`` (``topics.bars``)."""
    return topics.bars(symbol, timeframe)


def check_coarser(target: Timeframe, source: Timeframe, what: str) -> None:
    """Check that ``target`` bars can be built from ``source`` bars.

    Buildable: the same timeframe; ``1d`` (CME sessions) from any intraday timeframe; an intraday timeframe whose
    length is a whole multiple of the source's (``5m`` from ``1m`` or ``30s``; ``1h`` from ``15m``).

    Raises:
        ConfigError: ``target`` is finer than ``source`` (a timeframe finer than the data), or not a whole multiple of
            it (e.g. ``5m`` from ``2m``: a source bar would straddle two target bars); the message starts with
            ``what``.
    """
    if target == source:
        return
    if source.unit == "d":
        raise ConfigError(f"{what}: {target} bars cannot be built from {source} data (finer than the data)")
    if target.unit == "d":
        return
    if target.ns < source.ns:
        raise ConfigError(f"{what}: {target} bars cannot be built from {source} data (finer than the data)")
    if target.ns % source.ns:
        raise ConfigError(
            f"{what}: {target} bars cannot be built from {source} data ({target} is not a whole multiple of {source})"
        )


class BarFeeds:
    """Aggregated bar feeds on a bus (see the module docstring).

    Args:
        bus: the node's bus.
        sessions: the CME session calendar the aggregators use (holidays); default weekends only, as
            :func:`~propdesk.data.aggregation.vectorized.aggregate_bars` by default.

    Attributes:
        aggregators: ``(symbol, timeframe) -> TimeBarAggregator``, one per aggregated feed.
    """

    __slots__ = ("_aggs", "_pending", "_sessions", "_sources", "aggregators", "bus")

    def __init__(self, bus: MessageBus, *, sessions: CmeSessions | None = None) -> None:
        self.bus = bus
        self._sessions = sessions
        self._sources: dict[str, Timeframe] = {}
        self._pending: dict[str, list[Timeframe]] = {}
        self.aggregators: dict[tuple[str, Timeframe], TimeBarAggregator] = {}
        self._aggs: list[TimeBarAggregator] = []

    def source(self, symbol: str) -> Timeframe | None:
        """The timeframe of the finest bars published for ``symbol``, or ``None`` when not declared."""
        return self._sources.get(symbol)

    def set_source(self, symbol: str, timeframe: Timeframe) -> None:
        """Declare that ``symbol``'s finest data are ``timeframe`` bars on ``data.bars.<symbol>.<timeframe>``, and
        build the feeds already wanted for it.

        Raises:
            ConfigError: another source was already declared for ``symbol``, or a wanted timeframe cannot be built
                from ``timeframe`` (:func:`check_coarser`).
        """
        old = self._sources.get(symbol)
        if old is not None and old != timeframe:
            raise ConfigError(f"{symbol}: the data is already {old} bars, cannot also be {timeframe} bars")
        for tf in self._pending.get(symbol, ()):
            check_coarser(tf, timeframe, symbol)
        self._sources[symbol] = timeframe
        for tf in self._pending.pop(symbol, ()):
            self._build(symbol, tf, timeframe)

    def want(self, symbol: str, timeframe: Timeframe) -> str:
        """Have ``symbol``'s ``timeframe`` bars published; returns their topic. Building starts at once when the
        source is known (nothing is built when ``timeframe`` is the source's), else when it is declared.

        Raises:
            ConfigError: ``timeframe`` cannot be built from the declared source (:func:`check_coarser`).
        """
        src = self._sources.get(symbol)
        if src is None:
            pending = self._pending.setdefault(symbol, [])
            if timeframe not in pending:
                pending.append(timeframe)
        elif timeframe != src:
            check_coarser(timeframe, src, symbol)
            self._build(symbol, timeframe, src)
        return bars_topic(symbol, timeframe)

    def _build(self, symbol: str, timeframe: Timeframe, source: Timeframe) -> None:
        key = (symbol, timeframe)
        if key in self.aggregators:
            return
        topic = bars_topic(symbol, timeframe)
        publish = self.bus.publish

        def emit(bar: Bar) -> None:
            publish(topic, bar)

        agg = TimeBarAggregator(symbol, timeframe, emit, sessions=self._sessions)
        self.aggregators[key] = agg
        self._aggs.append(agg)
        self.bus.subscribe(bars_topic(symbol, source), agg.handle_bar, priority=AGGREGATOR_PRIORITY)

    @property
    def active(self) -> bool:
        """True when at least one aggregated feed runs."""
        return bool(self.aggregators)

    def next_end_ns(self) -> int:
        """The earliest end (UTC ns) of a bar still open in an aggregator; :data:`NO_END_NS` when none is open."""
        end = NO_END_NS
        for agg in self._aggs:
            e = agg.open_end_ns
            if e is not None and e < end:
                end = e
        return end

    def on_time(self, ts_ns: int) -> None:
        """The data's time reached ``ts_ns`` (UTC ns): emit every open bar that ended at or before it."""
        for agg in self._aggs:
            agg.on_time(ts_ns)

    def close_due(self, ts_ns: int, advance: Callable[[int], object]) -> None:
        """Before a record starting at ``ts_ns`` (a bar's open, a tick's time) is matched: emit every open bar that
        ended at or before ``ts_ns``, each after ``advance(end)`` moved the simulated clock to its end (so anything
        acting on it acts at the bar's close, as on pre-aggregated bars)."""
        while True:
            end = self.next_end_ns()
            if end > ts_ns:
                return
            advance(end)
            self.on_time(end)
