"""The historical-bar cache: cache-aside over the journal's ``bars`` and ``bar_coverage`` tables.

Every history request (a replay file's bars now, the broker's bar history with the ProjectX broker) goes through
:meth:`BarCache.get`:

* the spans of ``(symbol, timeframe)`` already cached are read from ``bar_coverage`` (merged where they touch);
* the parts of ``[start_ns, end_ns)`` they do not cover (the *gaps*) are fetched from the source, one call per gap,
  and stored with their coverage (a gap with no bars, e.g. a weekend, is recorded as covered too, so it is not asked
  for again);
* the answer is then read from the ``bars`` table: a full hit never touches the source, a partial hit fetches only
  the missing ranges.

Coverage means "every bar opening in the span is cached"; a span is only recorded for what the source could know
completely: with ``complete_before_ns`` (e.g. now minus one bar, for a live broker) the part of a gap after it is
fetched and returned but neither stored nor marked covered, so a bar still forming is never cached.

Bars are stored as in :func:`propdesk.storage.rows.bar_row` (prices fixed point x 10**9, exact on the tick); a
served series is rebuilt from the table, so a hit and a miss give identical bars.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from propdesk.model.data import Bar, BarSeries, Timeframe
from propdesk.storage.repositories import Repository

__all__ = ["BarCache", "BarSource", "CacheStats", "FunctionSource", "SeriesSource", "missing_spans"]

log = logging.getLogger("propdesk.storage.cache")


class BarSource(Protocol):
    """Where bars come from on a miss: a replay file's loader, the broker's bar history."""

    @property
    def name(self) -> str:
        """A short name recorded with the coverage (``file:ES_1min.csv``, ``projectx``)."""
        ...

    def fetch(self, symbol: str, timeframe: Timeframe, start_ns: int, end_ns: int) -> BarSeries:
        """Bars of ``symbol``/``timeframe`` opening in ``[start_ns, end_ns)`` (UTC ns), sorted by open time.

        Raises:
            Whatever the source raises (``DataError``, a broker error): nothing is cached for that gap then.
        """
        ...


class FunctionSource:
    """A :class:`BarSource` over a plain function ``(symbol, timeframe, start_ns, end_ns) -> BarSeries``."""

    def __init__(self, name: str, fn: Callable[[str, Timeframe, int, int], BarSeries]) -> None:
        self._name = name
        self._fn = fn

    @property
    def name(self) -> str:
        """The source's name."""
        return self._name

    def fetch(self, symbol: str, timeframe: Timeframe, start_ns: int, end_ns: int) -> BarSeries:
        """Call the function."""
        return self._fn(symbol, timeframe, start_ns, end_ns)


class SeriesSource:
    """A :class:`BarSource` over bars already in memory (a replay file loaded by its preset): ``fetch`` slices it.

    Args:
        series: the bars; name: the source's name (default ``series:<symbol>``, or the series' ``source`` path).
    """

    def __init__(self, series: BarSeries, name: str | None = None) -> None:
        self.series = series
        self._name = name or (f"file:{series.source}" if series.source else f"series:{series.symbol}")

    @property
    def name(self) -> str:
        """The source's name."""
        return self._name

    def fetch(self, symbol: str, timeframe: Timeframe, start_ns: int, end_ns: int) -> BarSeries:
        """The series' bars opening in ``[start_ns, end_ns)`` (empty for another symbol or timeframe)."""
        s = self.series
        if s.symbol != symbol or str(s.timeframe) != str(timeframe):
            return s.between(0, 0)
        return s.between(start_ns, end_ns)


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Counters of a :class:`BarCache`: requests served, full hits, source calls (one per gap), bars fetched from
    the source and bars served."""

    requests: int
    hits: int
    source_calls: int
    bars_fetched: int
    bars_served: int


def missing_spans(start_ns: int, end_ns: int, covered: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of ``[start_ns, end_ns)`` not inside any ``covered`` span (merged, sorted), in order.

    >>> missing_spans(0, 10, [(2, 4), (6, 12)])
    [(0, 2), (4, 6)]
    """
    gaps: list[tuple[int, int]] = []
    cur = start_ns
    for s, e in covered:
        if e <= cur:
            continue
        if s >= end_ns:
            break
        if s > cur:
            gaps.append((cur, s))
        cur = max(cur, e)
        if cur >= end_ns:
            break
    if cur < end_ns:
        gaps.append((cur, end_ns))
    return gaps


def _series(symbol: str, timeframe: Timeframe, bars: list[Bar], source: str) -> BarSeries:
    return BarSeries(
        symbol,
        timeframe,
        np.array([b.ts_open_ns for b in bars], dtype=np.int64),
        np.array([b.ts_close_ns for b in bars], dtype=np.int64),
        np.array([b.open for b in bars], dtype=np.float64),
        np.array([b.high for b in bars], dtype=np.float64),
        np.array([b.low for b in bars], dtype=np.float64),
        np.array([b.close for b in bars], dtype=np.float64),
        np.array([b.volume for b in bars], dtype=np.int64),
        source=source,
    )


class BarCache:
    """Cache-aside bar history in the journal database (see the module docstring).

    Args:
        repository: the journal's repository (migrated database).
        clock: now, UTC ns (stamps ``fetched_ns`` on coverage rows).
    """

    def __init__(self, repository: Repository, *, clock: Callable[[], int] = time.time_ns) -> None:
        self.repository = repository
        self._clock = clock
        self._requests = 0
        self._hits = 0
        self._calls = 0
        self._fetched = 0
        self._served = 0

    def stats(self) -> CacheStats:
        """The counters so far."""
        return CacheStats(self._requests, self._hits, self._calls, self._fetched, self._served)

    async def get(
        self,
        symbol: str,
        timeframe: Timeframe | str,
        start_ns: int,
        end_ns: int,
        source: BarSource,
        *,
        complete_before_ns: int | None = None,
    ) -> BarSeries:
        """Bars of ``symbol``/``timeframe`` opening in ``[start_ns, end_ns)`` (UTC ns), from the cache where it
        covers the range and from ``source`` for the gaps (module docstring).

        Raises:
            ValueError: ``end_ns <= start_ns``.
            Whatever ``source.fetch`` raises (gaps fetched before the failure stay cached).
            sqlalchemy errors: the database failed.
        """
        if end_ns <= start_ns:
            raise ValueError(f"bar range [{start_ns}, {end_ns}) is empty")
        tf = timeframe if isinstance(timeframe, Timeframe) else Timeframe.parse(timeframe)
        tf_text = str(tf)
        self._requests += 1
        covered = await self.repository.coverage(symbol, tf_text)
        gaps = missing_spans(start_ns, end_ns, covered)
        if not gaps:
            self._hits += 1
        extra: list[Bar] = []  # fetched beyond complete_before_ns: served, not cached
        for gs, ge in gaps:
            fetched = source.fetch(symbol, tf, gs, ge)
            self._calls += 1
            bars = [b for b in fetched if gs <= b.ts_open_ns < ge and b.symbol == symbol]
            self._fetched += len(bars)
            limit = ge if complete_before_ns is None else min(ge, complete_before_ns)
            keep = [b for b in bars if b.ts_open_ns < limit]
            extra.extend(b for b in bars if b.ts_open_ns >= limit)
            now = self._clock()
            if limit > gs:
                if keep:
                    await self.repository.save_bars(keep, coverage=(gs, limit), source=source.name, fetched_ns=now)
                else:
                    await self.repository.save_coverage(symbol, tf_text, gs, limit, source=source.name, fetched_ns=now)
            log.debug(
                "bar cache %s %s: fetched %d bars of [%d, %d) from %s", symbol, tf, len(bars), gs, ge, source.name
            )
        bars = await self.repository.load_bars(symbol, tf_text, start_ns, end_ns)
        if extra:
            cached = {b.ts_open_ns for b in bars}
            bars = sorted([*bars, *(b for b in extra if b.ts_open_ns not in cached)], key=lambda b: b.ts_open_ns)
        self._served += len(bars)
        return _series(symbol, tf, bars, f"cache:{source.name}")
