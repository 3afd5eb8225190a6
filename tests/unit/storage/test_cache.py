"""The bar cache: a hit never touches the source, a partial hit fetches only the gaps (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from propdesk.model.data import BarSeries, Timeframe
from propdesk.storage.cache import BarCache, SeriesSource, missing_spans
from propdesk.storage.db import create_engine_for
from propdesk.storage.repositories import Repository

MIN = 60_000_000_000
T0 = 1_763_000_000_000_000_000 // MIN * MIN  # a whole minute
TF = Timeframe.parse("1m")


def _series(n: int, *, start: int = T0, symbol: str = "ESZ5", skip: range | None = None) -> BarSeries:
    idx = [i for i in range(n) if skip is None or i not in skip]
    opens = np.array([start + i * MIN for i in idx], dtype=np.int64)
    close = np.array([6500.0 + 0.25 * (i % 7) for i in idx])
    return BarSeries(
        symbol,
        TF,
        opens,
        opens + MIN,
        close - 0.25,
        close + 0.5,
        close - 0.5,
        close,
        np.array([10 + i for i in idx], dtype=np.int64),
    )


class CountingSource:
    """A stub source over an in-memory series that records every fetch."""

    def __init__(self, series: BarSeries) -> None:
        self.inner = SeriesSource(series, "stub")
        self.calls: list[tuple[int, int]] = []

    @property
    def name(self) -> str:
        return "stub"

    def fetch(self, symbol: str, timeframe: Timeframe, start_ns: int, end_ns: int) -> BarSeries:
        self.calls.append((start_ns, end_ns))
        return self.inner.fetch(symbol, timeframe, start_ns, end_ns)


def _run(db_url: str, body: object) -> None:
    async def go() -> None:
        engine = create_engine_for(db_url)
        try:
            await body(BarCache(Repository(engine), clock=lambda: 1))  # type: ignore[operator]
        finally:
            await engine.dispose()

    asyncio.run(go())


def test_missing_spans() -> None:
    assert missing_spans(0, 10, []) == [(0, 10)]
    assert missing_spans(0, 10, [(0, 10)]) == []
    assert missing_spans(0, 10, [(-5, 3), (6, 8)]) == [(3, 6), (8, 10)]
    assert missing_spans(5, 10, [(0, 5), (10, 20)]) == [(5, 10)]
    assert missing_spans(0, 10, [(2, 4), (6, 12)]) == [(0, 2), (4, 6)]


def test_miss_then_hit_serves_from_the_database(db_url: str) -> None:
    data = _series(120)
    src = CountingSource(data)

    async def body(cache: BarCache) -> None:
        first = await cache.get("ESZ5", "1m", T0, T0 + 60 * MIN, src)
        assert src.calls == [(T0, T0 + 60 * MIN)]
        assert first.equals(data.between(T0, T0 + 60 * MIN))
        again = await cache.get("ESZ5", TF, T0 + 10 * MIN, T0 + 50 * MIN, src)
        assert len(src.calls) == 1, "a hit must not touch the source"
        assert again.equals(data.between(T0 + 10 * MIN, T0 + 50 * MIN))
        stats = cache.stats()
        assert (stats.requests, stats.hits, stats.source_calls, stats.bars_fetched) == (2, 1, 1, 60)

    _run(db_url, body)


def test_partial_hit_fetches_only_the_gaps(db_url: str) -> None:
    data = _series(200)
    src = CountingSource(data)

    async def body(cache: BarCache) -> None:
        await cache.get("ESZ5", "1m", T0 + 50 * MIN, T0 + 100 * MIN, src)
        await cache.get("ESZ5", "1m", T0 + 120 * MIN, T0 + 150 * MIN, src)
        src.calls.clear()
        out = await cache.get("ESZ5", "1m", T0 + 20 * MIN, T0 + 180 * MIN, src)
        assert src.calls == [
            (T0 + 20 * MIN, T0 + 50 * MIN),
            (T0 + 100 * MIN, T0 + 120 * MIN),
            (T0 + 150 * MIN, T0 + 180 * MIN),
        ]
        assert out.equals(data.between(T0 + 20 * MIN, T0 + 180 * MIN))
        src.calls.clear()
        await cache.get("ESZ5", "1m", T0 + 20 * MIN, T0 + 180 * MIN, src)
        assert src.calls == []

    _run(db_url, body)


def test_an_empty_gap_is_remembered(db_url: str) -> None:
    data = _series(100, skip=range(30, 70))  # a halt: no bars in minutes 30..69
    src = CountingSource(data)

    async def body(cache: BarCache) -> None:
        halt = await cache.get("ESZ5", "1m", T0 + 30 * MIN, T0 + 70 * MIN, src)
        assert len(halt) == 0 and len(src.calls) == 1
        await cache.get("ESZ5", "1m", T0 + 30 * MIN, T0 + 70 * MIN, src)
        assert len(src.calls) == 1
        both = await cache.get("ESZ5", "1m", T0, T0 + 100 * MIN, src)
        assert both.equals(data)
        assert src.calls[1:] == [(T0, T0 + 30 * MIN), (T0 + 70 * MIN, T0 + 100 * MIN)]

    _run(db_url, body)


def test_bars_after_complete_before_are_served_not_cached(db_url: str) -> None:
    data = _series(60)
    src = CountingSource(data)
    cut = T0 + 40 * MIN

    async def body(cache: BarCache) -> None:
        out = await cache.get("ESZ5", "1m", T0, T0 + 60 * MIN, src, complete_before_ns=cut)
        assert out.equals(data)
        assert await cache.repository.coverage("ESZ5", "1m") == [(T0, cut)]
        src.calls.clear()
        await cache.get("ESZ5", "1m", T0, T0 + 60 * MIN, src)
        assert src.calls == [(cut, T0 + 60 * MIN)]

    _run(db_url, body)


def test_symbols_and_timeframes_are_separate(db_url: str) -> None:
    es, nq = _series(30), _series(30, symbol="NQZ5")
    src_es, src_nq = CountingSource(es), CountingSource(nq)

    async def body(cache: BarCache) -> None:
        await cache.get("ESZ5", "1m", T0, T0 + 30 * MIN, src_es)
        got = await cache.get("NQZ5", "1m", T0, T0 + 30 * MIN, src_nq)
        assert got.equals(nq) and len(src_nq.calls) == 1
        five = await cache.get("ESZ5", "5m", T0, T0 + 30 * MIN, src_es)
        assert len(five) == 0 and len(src_es.calls) == 2  # another timeframe is another key

    _run(db_url, body)


def test_empty_range_is_refused(db_url: str) -> None:
    async def body(cache: BarCache) -> None:
        with pytest.raises(ValueError, match="empty"):
            await cache.get("ESZ5", "1m", T0, T0, CountingSource(_series(1)))

    _run(db_url, body)
