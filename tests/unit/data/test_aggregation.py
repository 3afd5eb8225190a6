"""Tests for propdesk.data.aggregation: streaming and vectorized time bars, sessions, options and invariants."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from propdesk.core.errors import DataError
from propdesk.data.aggregation import CmeSessions, TimeBarAggregator, aggregate_bars, aggregate_trades
from propdesk.data.loaders import load_firstrate_csv
from propdesk.data.loaders.trades_csv import load_trades_csv
from propdesk.model.data import NS_PER_MINUTE, NS_PER_SECOND, Bar, BarSeries, Timeframe, TradeSeries, TradeTick
from propdesk.model.enums import AggressorSide
from tests.conftest import resolve_shared

NQ_DIR = "nq_1min_firstratedata_sample"
ES_TRADES = "es_trades_esm8_rtrawl/ESM8_trades_20180507.csv.gz"
THANKSGIVING_2023 = date(2023, 11, 23)
TF = Timeframe.parse


def ct(text: str) -> int:
    """UTC ns of an America/Chicago wall-clock time (pandas, independent of the code under test)."""
    return int(pd.Timestamp(text, tz="America/Chicago").value)


def utc(text: str) -> int:
    return int(pd.Timestamp(text, tz="UTC").value)


def trades(rows: Sequence[tuple[int, float, int]], symbol: str = "ESM8") -> TradeSeries:
    ts = np.array([r[0] for r in rows], dtype=np.int64)
    return TradeSeries(
        symbol,
        ts,
        np.array([r[1] for r in rows], dtype=np.float64),
        np.array([r[2] for r in rows], dtype=np.int64),
        np.zeros(len(rows), dtype=np.int8),
    )


def bar_series(
    symbol: str, tf: Timeframe, opens: list[int], closes: list[int], ohlc: list[float], volume: list[int]
) -> BarSeries:
    """Bars from lists; ``ohlc`` is the open column, then high, low and close, each ``len(opens)`` long."""
    n = len(opens)
    px = np.array(ohlc, dtype=np.float64).reshape(4, n)
    i64 = np.int64
    return BarSeries(
        symbol, tf, np.array(opens, i64), np.array(closes, i64), px[0], px[1], px[2], px[3], np.array(volume, i64)
    )


def stream(series: TradeSeries, timeframe: Timeframe, **opts: object) -> tuple[list[Bar], TimeBarAggregator]:
    out: list[Bar] = []
    agg = TimeBarAggregator(series.symbol, timeframe, out.append, **opts)  # type: ignore[arg-type]
    for p, s, t in zip(series.price.tolist(), series.size.tolist(), series.ts_event_ns.tolist(), strict=True):
        agg.handle_trade(p, s, t)
    agg.flush()
    return out, agg


def stream_bars(series: BarSeries, timeframe: Timeframe, **opts: object) -> tuple[list[Bar], TimeBarAggregator]:
    out: list[Bar] = []
    agg = TimeBarAggregator(series.symbol, timeframe, out.append, **opts)  # type: ignore[arg-type]
    for bar in series:
        agg.handle_bar(bar)
    agg.flush()
    return out, agg


def assert_same(bars: list[Bar], series: BarSeries) -> None:
    assert len(bars) == len(series)
    for i, bar in enumerate(bars):
        assert bar == series.bar(i), f"bar {i}"


# --------------------------------------------------------------------------- real data: NQ vendor files


@pytest.fixture(scope="module")
def nq() -> dict[str, BarSeries]:
    names = {"1m": "NQ_1min_sample.csv", "5m": "NQ_5min_sample.csv", "1h": "NQ_1hour_sample.csv"}
    names["1d"] = "NQ_1day_sample.csv"
    return {k: load_firstrate_csv(resolve_shared(f"{NQ_DIR}/{v}"), symbol="NQ") for k, v in names.items()}


def _assert_series_equal(ours: BarSeries, vendor: BarSeries) -> None:
    assert len(ours) == len(vendor)
    for col in ("ts_open_ns", "ts_close_ns", "open", "high", "low", "close", "volume"):
        a, b = getattr(ours, col), getattr(vendor, col)
        mismatch = np.flatnonzero(a != b)
        assert len(mismatch) == 0, f"{col} differs at bars {mismatch[:5].tolist()}"


def test_nq_5min_vendor_file_reproduced_exactly_from_1min(nq: dict[str, BarSeries]) -> None:
    vendor = nq["5m"]
    assert len(vendor) == 2943
    ours = aggregate_bars(nq["1m"], TF("5m"))
    _assert_series_equal(ours, vendor)
    streamed, agg = stream_bars(nq["1m"], TF("5m"))
    assert_same(streamed, vendor)
    assert agg.volume_in == int(nq["1m"].volume.sum()) == int(vendor.volume.sum())
    assert agg.ticks_in == len(nq["1m"])


def test_nq_5min_streaming_emits_on_the_last_1min_bar(nq: dict[str, BarSeries]) -> None:
    """A 5m bar is known when its last 1m bar closes, not when the next 1m bar arrives."""
    out: list[Bar] = []
    agg = TimeBarAggregator("NQ", TF("5m"), out.append)
    first_five = [nq["1m"].bar(i) for i in range(5)]  # 18:00..18:04 ET, all present in the file
    assert [b.ts_open_ns for b in first_five] == [first_five[0].ts_open_ns + i * NS_PER_MINUTE for i in range(5)]
    for b in first_five[:4]:
        agg.handle_bar(b)
    assert out == []
    agg.handle_bar(first_five[4])
    assert out == [nq["5m"].bar(0)]


def test_nq_1hour_vendor_file_reproduced_exactly(nq: dict[str, BarSeries]) -> None:
    _assert_series_equal(aggregate_bars(nq["1m"], TF("1h")), nq["1h"])
    assert len(nq["1h"]) == 246


def test_nq_daily_ohl_match_vendor_per_cme_session(nq: dict[str, BarSeries]) -> None:
    """Daily O/H/L equal the vendor's per session (Thanksgiving merged into Friday, as CME's trade date does).

    The vendor close is the settlement price and its volume includes non-Globex volume (shared/data/README.md),
    so those are only bounded, not equal.
    """
    sessions = CmeSessions([THANKSGIVING_2023])
    ours = aggregate_bars(nq["1m"], TF("1d"), sessions=sessions)
    vendor = nq["1d"]
    assert len(ours) == len(vendor) == 10
    np.testing.assert_array_equal(ours.ts_open_ns, vendor.ts_open_ns)
    for col in ("open", "high", "low"):
        np.testing.assert_array_equal(getattr(ours, col), getattr(vendor, col), err_msg=col)
    assert bool(np.all(vendor.volume > ours.volume))
    assert bool(np.all(vendor.volume < ours.volume * 1.03))
    # session close = 17:00 CT on the trade date, the vendor's date
    trade_dates = [pd.Timestamp(t, tz="UTC").tz_convert("America/Chicago").date() for t in ours.ts_close_ns]
    assert trade_dates[3] == date(2023, 11, 24)
    assert THANKSGIVING_2023 not in trade_dates
    streamed, _ = stream_bars(nq["1m"], TF("1d"), sessions=sessions)
    assert_same(streamed, ours)
    # without the holiday Thanksgiving is its own session: 11 bars, same total volume
    plain = aggregate_bars(nq["1m"], TF("1d"))
    assert len(plain) == 11
    assert int(plain.volume.sum()) == int(ours.volume.sum()) == int(nq["1m"].volume.sum())


# --------------------------------------------------------------------------- real data: ES trade prints


@pytest.fixture(scope="module")
def es_trades() -> TradeSeries:
    return load_trades_csv(resolve_shared(ES_TRADES), symbol="ESM8", default_size=1).series


@pytest.mark.parametrize("tf", ["1m", "5m", "15m", "7s", "1h", "1d"])
def test_es_trades_streaming_equals_vectorized_and_nothing_dropped(es_trades: TradeSeries, tf: str) -> None:
    vec = aggregate_trades(es_trades, TF(tf))
    bars, agg = stream(es_trades, TF(tf))
    assert_same(bars, vec)
    assert int(vec.volume.sum()) == int(es_trades.size.sum()) == agg.emitted_volume == 74_907
    assert agg.emitted_ticks == len(es_trades)
    assert agg.late_ticks == 0


def test_es_trades_1min_bars_match_an_independent_pandas_resample(es_trades: TradeSeries) -> None:
    df = pd.DataFrame(
        {"price": es_trades.price, "size": es_trades.size}, index=pd.to_datetime(es_trades.ts_event_ns, utc=True)
    )
    ref = df["price"].resample("1min").ohlc().dropna()
    vol = df["size"].resample("1min").sum()
    ours = aggregate_trades(es_trades, TF("1m"))
    assert len(ours) == len(ref) == 210
    np.testing.assert_array_equal(ours.ts_open_ns, pd.DatetimeIndex(ref.index).as_unit("ns").asi8)
    for col in ("open", "high", "low", "close"):
        np.testing.assert_array_equal(getattr(ours, col), ref[col].to_numpy(), err_msg=col)
    np.testing.assert_array_equal(ours.volume, vol.loc[ref.index].to_numpy())


def test_es_trades_emit_empty_streaming_equals_vectorized(es_trades: TradeSeries) -> None:
    vec = aggregate_trades(es_trades, TF("1s"), emit_empty=True)
    bars, agg = stream(es_trades, TF("1s"), emit_empty=True)
    assert_same(bars, vec)
    first, last = int(es_trades.ts_event_ns[0]), int(es_trades.ts_event_ns[-1])
    assert len(vec) == last // NS_PER_SECOND - first // NS_PER_SECOND + 1  # every second of the span
    assert agg.empty_bars_emitted == int(np.sum(vec.volume == 0)) > 0
    assert int(vec.volume.sum()) == 74_907


# --------------------------------------------------------------------------- options on small hand-made data

T0 = utc("2024-03-05 15:00")  # a Tuesday, 09:00 CT, a whole minute


def test_empty_bars_carry_previous_close_only_when_asked() -> None:
    rows = [
        (T0 + 10 * NS_PER_SECOND, 100.0, 2),
        (T0 + 20 * NS_PER_SECOND, 101.0, 1),
        (T0 + 210 * NS_PER_SECOND, 99.0, 3),
    ]
    plain = aggregate_trades(trades(rows), TF("1m"))
    assert plain.ts_open_ns.tolist() == [T0, T0 + 3 * NS_PER_MINUTE]
    filled = aggregate_trades(trades(rows), TF("1m"), emit_empty=True)
    assert filled.ts_open_ns.tolist() == [T0 + i * NS_PER_MINUTE for i in range(4)]
    assert filled.bar(1) == Bar(
        "ESM8", TF("1m"), 101.0, 101.0, 101.0, 101.0, 0, T0 + 60 * NS_PER_SECOND, T0 + 120 * NS_PER_SECOND
    )
    assert filled.volume.tolist() == [3, 0, 0, 3]
    bars, _ = stream(trades(rows), TF("1m"), emit_empty=True)
    assert_same(bars, filled)


def test_on_time_closes_the_bar_on_time_and_emits_empty_bars() -> None:
    out: list[Bar] = []
    agg = TimeBarAggregator("ESM8", TF("1m"), out.append, emit_empty=True)
    agg.handle_trade(100.0, 1, T0 + 5 * NS_PER_SECOND)
    agg.on_time(T0 + 59 * NS_PER_SECOND)
    assert out == []
    agg.on_time(T0 + NS_PER_MINUTE)  # the bar's end: closes without a new print
    assert [(b.ts_open_ns, b.volume) for b in out] == [(T0, 1)]
    agg.on_time(T0 + 3 * NS_PER_MINUTE + 30 * NS_PER_SECOND)  # two whole empty minutes passed, the third not
    assert [(b.ts_open_ns, b.volume, b.close) for b in out[1:]] == [
        (T0 + NS_PER_MINUTE, 0, 100.0),
        (T0 + 2 * NS_PER_MINUTE, 0, 100.0),
    ]
    agg.handle_trade(102.0, 4, T0 + 3 * NS_PER_MINUTE + 40 * NS_PER_SECOND)
    agg.flush()
    assert [(b.ts_open_ns, b.volume, b.open) for b in out[3:]] == [(T0 + 3 * NS_PER_MINUTE, 4, 102.0)]
    assert agg.volume_in == 5 and agg.empty_bars_emitted == 2 and agg.bars_emitted == 4


def test_skip_first_partial_withholds_and_counts() -> None:
    rows = [(T0 + 5 * NS_PER_SECOND, 100.0, 2), (T0 + 65 * NS_PER_SECOND, 101.0, 3), (T0 + 70 * NS_PER_SECOND, 99.0, 1)]
    bars, agg = stream(trades(rows), TF("1m"), skip_first_partial=True)
    assert [b.ts_open_ns for b in bars] == [T0 + NS_PER_MINUTE]
    assert (agg.withheld_bars, agg.withheld_ticks, agg.withheld_volume) == (1, 1, 2)
    assert agg.emitted_volume + agg.withheld_volume == 6 == agg.volume_in
    assert_same(bars, aggregate_trades(trades(rows), TF("1m"), skip_first_partial=True))
    # a first print exactly at the bar start: the bar is whole, nothing withheld
    whole = [(T0, 100.0, 2), *rows[1:]]
    bars2, agg2 = stream(trades(whole), TF("1m"), skip_first_partial=True)
    assert [b.ts_open_ns for b in bars2] == [T0, T0 + NS_PER_MINUTE]
    assert agg2.withheld_bars == 0
    assert_same(bars2, aggregate_trades(trades(whole), TF("1m"), skip_first_partial=True))


def test_late_print_is_folded_not_dropped() -> None:
    out: list[Bar] = []
    agg = TimeBarAggregator("ESM8", TF("1m"), out.append)
    agg.handle_trade(100.0, 1, T0 + 70 * NS_PER_SECOND)
    agg.handle_trade(101.0, 1, T0 + 80 * NS_PER_SECOND)
    agg.handle_trade(95.0, 5, T0 + 30 * NS_PER_SECOND)  # belongs to the previous minute, arrives late
    agg.flush()
    assert out == [Bar("ESM8", TF("1m"), 100.0, 101.0, 95.0, 101.0, 7, T0 + NS_PER_MINUTE, T0 + 2 * NS_PER_MINUTE)]
    assert agg.late_ticks == 1
    # late after the bar was closed by the clock: opens the next bar, still counted
    agg.handle_trade(96.0, 2, T0 + 90 * NS_PER_SECOND)
    agg.flush()
    assert out[-1] == Bar("ESM8", TF("1m"), 96.0, 96.0, 96.0, 96.0, 2, T0 + 2 * NS_PER_MINUTE, T0 + 3 * NS_PER_MINUTE)
    assert agg.late_ticks == 2
    assert sum(b.volume for b in out) == agg.volume_in == 9
    assert agg.ticks_in == 4


def test_receive_time_is_ignored() -> None:
    out: list[Bar] = []
    agg = TimeBarAggregator("ESM8", TF("1m"), out.append)
    agg.handle_trade_tick(
        TradeTick("ESM8", 100.0, 1, AggressorSide.BUYER, T0 + NS_PER_SECOND, ts_recv_ns=T0 + 3600 * NS_PER_SECOND)
    )
    agg.flush()
    assert out[0].ts_open_ns == T0
    with pytest.raises(DataError, match="NQ"):
        agg.handle_trade_tick(TradeTick("NQM8", 100.0, 1, AggressorSide.BUYER, T0))


# --------------------------------------------------------------------------- sessions and boundaries


def test_four_hour_bars_are_cut_at_the_halt_and_open_in_both_dst_regimes() -> None:
    for day, nxt, halt_utc, open_utc in (
        ("2024-07-09", "2024-07-10", "2024-07-09 21:00", "2024-07-09 22:00"),  # CDT: 16:00 CT = 21:00 UTC
        ("2024-01-09", "2024-01-10", "2024-01-09 22:00", "2024-01-09 23:00"),  # CST: 16:00 CT = 22:00 UTC
    ):
        rows = [(ct(f"{day} 14:30"), 10.0, 1), (ct(f"{day} 15:59"), 11.0, 1), (ct(f"{day} 17:05"), 12.0, 1)]
        rows.append((ct(f"{nxt} 00:30"), 13.0, 1))
        series = trades(rows)
        cut = aggregate_trades(series, TF("4h"))
        halt, reopen = utc(halt_utc), utc(open_utc)
        assert halt in cut.ts_close_ns.tolist()  # the bar holding the 15:59 CT print ends at the halt
        assert reopen in cut.ts_open_ns.tolist()  # the bar holding the 17:05 CT print starts at the open
        for o, c in zip(cut.ts_open_ns.tolist(), cut.ts_close_ns.tolist(), strict=True):
            assert not o < halt < c and not o < reopen < c
        assert int(cut.volume.sum()) == 4
        bars, _ = stream(series, TF("4h"))
        assert_same(bars, cut)
        spanning = aggregate_trades(series, TF("4h"), session_aligned=False)
        assert bool(np.all(spanning.ts_close_ns - spanning.ts_open_ns == 4 * 3600 * NS_PER_SECOND))
        anchored = aggregate_trades(series, TF("4h"), anchor="session")
        assert anchored.ts_open_ns[1] == ct(f"{day} 17:00")  # 17:00, 21:00, 01:00 CT ...
        assert anchored.ts_open_ns[2] == ct(f"{day} 21:00")
        bars_a, _ = stream(series, TF("4h"), anchor="session")
        assert_same(bars_a, anchored)


def test_daily_bar_sessions_sunday_evening_belongs_to_monday() -> None:
    rows = [
        (ct("2024-03-08 15:59"), 1.0, 1),  # Friday
        (ct("2024-03-10 17:01"), 2.0, 1),  # Sunday evening (CDT started that morning)
        (ct("2024-03-11 16:59"), 3.0, 1),  # Monday, halt hour: still Monday
        (ct("2024-03-11 17:00"), 4.0, 1),  # Monday 17:00: Tuesday's session
    ]
    daily = aggregate_trades(trades(rows), TF("1d"))
    assert daily.ts_open_ns.tolist() == [ct("2024-03-07 17:00"), ct("2024-03-10 17:00"), ct("2024-03-11 17:00")]
    assert daily.ts_close_ns.tolist() == [ct("2024-03-08 17:00"), ct("2024-03-11 17:00"), ct("2024-03-12 17:00")]
    assert daily.volume.tolist() == [1, 2, 1]
    assert daily.close.tolist() == [1.0, 3.0, 4.0]
    assert daily.ts_open_ns[1] == utc("2024-03-10 22:00")  # 17:00 CDT
    bars, agg = stream(trades(rows), TF("1d"))
    assert_same(bars, daily)
    assert agg.off_session_ticks == 0


def test_weekend_print_is_kept_in_mondays_bar_and_counted() -> None:
    rows = [(ct("2024-03-08 15:00"), 1.0, 1), (ct("2024-03-09 12:00"), 2.0, 1), (ct("2024-03-10 18:00"), 3.0, 1)]
    bars, agg = stream(trades(rows), TF("1d"))
    assert [b.volume for b in bars] == [1, 2]
    assert agg.off_session_ticks == 1
    assert_same(bars, aggregate_trades(trades(rows), TF("1d")))


def test_cme_sessions_trade_dates_and_opens() -> None:
    cal = CmeSessions([THANKSGIVING_2023])
    assert cal.trade_date(ct("2023-11-22 16:59")) == date(2023, 11, 22)
    assert cal.trade_date(ct("2023-11-22 17:00")) == date(2023, 11, 24)  # Thanksgiving folds into Friday
    assert cal.trade_date(ct("2023-11-23 10:00")) == date(2023, 11, 24)
    assert cal.session_open_ns(date(2023, 11, 24)) == ct("2023-11-22 17:00")
    assert cal.session_open_ns(date(2023, 11, 27)) == ct("2023-11-26 17:00")  # Monday opens Sunday
    assert cal.session_close_ns(date(2023, 11, 27)) == utc("2023-11-27 23:00")  # CST


# --------------------------------------------------------------------------- errors and validation


def test_bar_input_validation() -> None:
    out: list[Bar] = []
    agg = TimeBarAggregator("NQ", TF("3m"), out.append)
    two = Bar("NQ", TF("2m"), 1.0, 1.0, 1.0, 1.0, 1, T0 + 2 * NS_PER_MINUTE, T0 + 4 * NS_PER_MINUTE)
    with pytest.raises(DataError, match="ends after"):
        agg.handle_bar(two)
    assert not agg.has_open_bar and agg.ticks_in == 0  # nothing half-added
    with pytest.raises(DataError, match="finer"):
        TimeBarAggregator("NQ", TF("1m"), out.append).handle_bar(two)
    with pytest.raises(DataError, match="NQ"):
        agg.handle_bar(Bar("ES", TF("1m"), 1.0, 1.0, 1.0, 1.0, 1, T0, T0 + NS_PER_MINUTE))
    series = bar_series("NQ", TF("2m"), [T0 + 2 * NS_PER_MINUTE], [T0 + 4 * NS_PER_MINUTE], [1.0] * 4, [1])
    with pytest.raises(DataError, match="ends after"):
        aggregate_bars(series, TF("3m"))
    with pytest.raises(ValueError, match="1d"):
        TimeBarAggregator("NQ", TF("2d"), out.append)
    with pytest.raises(ValueError, match="session_aligned"):
        aggregate_trades(trades([(T0, 1.0, 1)]), TF("4h"), anchor="session", session_aligned=False)


def test_zero_volume_input_bars_only_advance_the_clock() -> None:
    tf1 = TF("1m")
    series = bar_series(
        "NQ",
        tf1,
        [T0 + i * NS_PER_MINUTE for i in range(8)],
        [T0 + (i + 1) * NS_PER_MINUTE for i in range(8)],
        [5.0, *[6.0] * 7, 7.0, *[6.0] * 7, 4.0, *[6.0] * 7, *[6.0] * 8],  # open, high, low, close columns
        [9, 0, 0, 0, 0, 0, 0, 0],
    )
    for emit_empty in (False, True):
        vec = aggregate_bars(series, TF("2m"), emit_empty=emit_empty)
        bars, agg = stream_bars(series, TF("2m"), emit_empty=emit_empty)
        assert_same(bars, vec)
        assert vec.volume.tolist() == ([9, 0, 0, 0] if emit_empty else [9])
        assert agg.ticks_in == 1


def test_empty_inputs() -> None:
    assert len(aggregate_trades(trades([]), TF("1m"))) == 0
    out: list[Bar] = []
    agg = TimeBarAggregator("ESM8", TF("1m"), out.append, emit_empty=True)
    agg.on_time(T0)
    agg.flush()
    assert out == [] and agg.volume_in == 0


# --------------------------------------------------------------------------- property: streaming == vectorized


@settings(max_examples=60, deadline=None)
@given(
    gaps=st.lists(st.integers(0, 9 * NS_PER_MINUTE), min_size=1, max_size=60),
    prices=st.lists(st.integers(0, 40), min_size=60, max_size=60),
    sizes=st.lists(st.integers(1, 9), min_size=60, max_size=60),
    tf=st.sampled_from(["1s", "15s", "1m", "5m", "7m", "1h", "4h", "1d"]),
    emit_empty=st.booleans(),
    skip_first_partial=st.booleans(),
    anchor=st.sampled_from(["epoch", "session"]),
    start=st.integers(0, 14 * 24 * 3600),
)
def test_property_streaming_equals_vectorized_and_volume_is_kept(
    gaps: list[int],
    prices: list[int],
    sizes: list[int],
    tf: str,
    emit_empty: bool,
    skip_first_partial: bool,
    anchor: str,
    start: int,
) -> None:
    t = utc("2024-03-01") + start * NS_PER_SECOND
    rows = []
    for i, g in enumerate(gaps):
        t += g
        rows.append((t, 5000.0 + prices[i] * 0.25, sizes[i]))
    series = trades(rows)
    opts: dict[str, object] = {"emit_empty": emit_empty, "skip_first_partial": skip_first_partial, "anchor": anchor}
    vec = aggregate_trades(series, TF(tf), **opts)  # type: ignore[arg-type]
    bars, agg = stream(series, TF(tf), **opts)
    assert_same(bars, vec)
    total = sum(sizes[: len(gaps)])
    assert agg.emitted_volume + agg.withheld_volume == total == agg.volume_in
    assert agg.emitted_ticks + agg.withheld_ticks == len(rows)
    assert int(vec.volume.sum()) + agg.withheld_volume == total
    for b in bars:  # every bar is non-empty unless emit_empty, and is a proper interval
        assert b.ts_open_ns < b.ts_close_ns
        assert b.volume > 0 or emit_empty
