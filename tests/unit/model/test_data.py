"""Tests for the market-data records and columnar series in propdesk.model.data."""

from __future__ import annotations

import numpy as np
import pytest

from propdesk.core.errors import DataError
from propdesk.model.data import NS_PER_MINUTE, Bar, BarSeries, Timeframe, TradeSeries, TradeTick
from propdesk.model.enums import AggressorSide, Side


@pytest.mark.parametrize(
    ("text", "ns"),
    [("1m", 60_000_000_000), ("15s", 15_000_000_000), ("4h", 4 * 3600 * 10**9), (" 5 m ", 300_000_000_000)],
)
def test_timeframe_parse(text: str, ns: int) -> None:
    assert Timeframe.parse(text).ns == ns


@pytest.mark.parametrize("text", ["", "m", "0m", "5x", "-1m", "1.5m"])
def test_timeframe_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="timeframe"):
        Timeframe.parse(text)


def _series(ts: list[int], o: list[float], h: list[float], lo: list[float], c: list[float]) -> BarSeries:
    n = len(ts)
    return BarSeries(
        "ESZ5",
        Timeframe.parse("1m"),
        np.array(ts),
        np.array(ts) + NS_PER_MINUTE,
        np.array(o),
        np.array(h),
        np.array(lo),
        np.array(c),
        np.ones(n, dtype=np.int64),
    )


def test_bar_series_iterates_bars_and_slices() -> None:
    t0 = 1_700_000_000 * 10**9
    s = _series(
        [t0, t0 + NS_PER_MINUTE, t0 + 2 * NS_PER_MINUTE], [1, 2, 3], [2, 3, 4], [0.5, 1.5, 2.5], [1.5, 2.5, 3.5]
    )
    bars = list(s)
    assert bars[1] == Bar(
        "ESZ5", Timeframe.parse("1m"), 2.0, 3.0, 1.5, 2.5, 1, t0 + NS_PER_MINUTE, t0 + 2 * NS_PER_MINUTE
    )
    assert s.bar(2).close == 3.5
    part = s.between(t0 + NS_PER_MINUTE, t0 + 2 * NS_PER_MINUTE)
    assert len(part) == 1 and part.open[0] == 2.0


def test_bar_series_rejects_unsorted_times() -> None:
    with pytest.raises(DataError, match=r"strictly increasing.*bar 1"):
        _series([10, 5], [1, 1], [1, 1], [1, 1], [1, 1])


def test_bar_series_rejects_inconsistent_ohlc() -> None:
    with pytest.raises(DataError, match="bar 1 has a high/low"):
        _series([1, 2], [1, 1], [1, 1], [1, 1], [1, 1.25])


def test_trade_series_rejects_bad_sizes_and_order() -> None:
    with pytest.raises(DataError, match="non-positive size"):
        TradeSeries("ESM8", np.array([1, 2]), np.array([1.0, 1.0]), np.array([1, 0]), np.zeros(2))
    with pytest.raises(DataError, match="backwards"):
        TradeSeries("ESM8", np.array([2, 1]), np.array([1.0, 1.0]), np.array([1, 1]), np.zeros(2))


def test_trade_series_iterates_ticks() -> None:
    s = TradeSeries("ESM8", np.array([1, 1, 2]), np.array([1.0, 1.25, 1.5]), np.array([1, 2, 3]), np.array([1, 2, 0]))
    ticks = list(s)
    assert ticks[1] == TradeTick("ESM8", 1.25, 2, AggressorSide.SELLER, 1)
    assert sum(t.size for t in ticks) == 6


def test_side_sign_and_opposite() -> None:
    assert int(Side.BUY) == 1 and int(Side.SELL) == -1
    assert Side.BUY.opposite is Side.SELL and Side.SELL.opposite is Side.BUY


def test_series_equality_is_explicit() -> None:
    t0 = 1_700_000_000 * 10**9
    a = _series([t0], [1], [2], [0.5], [1.5])
    b = _series([t0], [1], [2], [0.5], [1.5])
    c = _series([t0], [1], [2], [0.5], [1.25])
    assert a.equals(b) and not a.equals(c)
    assert a != b  # identity: arrays are not compared implicitly
