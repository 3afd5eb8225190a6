"""Databento DBN loaders on the shared samples (figures cross-checked in shared/data/README.md)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from propdesk.core.errors import DataError
from propdesk.data.loaders import (
    MboArrays,
    Mbp1Data,
    Mbp10Arrays,
    iter_depth_updates,
    load_dbn,
    load_dbn_bars,
    load_dbn_definitions,
    load_dbn_mbp1,
    load_dbn_mbp10,
    load_dbn_trades,
    load_mbo,
)
from propdesk.data.loaders.dbn import ACTION_TRADE
from propdesk.model.data import NS_PER_MINUTE, BarSeries, DepthUpdate, Timeframe, TradeSeries
from propdesk.model.enums import AggressorSide
from tests.conftest import ESH4_MBO

SAMPLES = "databento_glbx_format_samples/GLBX.MDP3.test_data.{}.dbn.zst"
NAUT = "databento_glbx_nautilus/"
TRADES = NAUT + "futures_trades_2024-07-01T23-58_2024-07-02T00-02.dbn.zst"
MBP1 = NAUT + "futures_mbp-1_2024-07-01T23-58_2024-07-02T00-02.dbn.zst"
OHLCV = NAUT + "futures_ohlcv-1m_2024-07-01T23-40_2024-07-02T00-10.dbn.zst"
DEFS = NAUT + "futures_definition.dbn.zst"


def test_esh4_mbo_matches_readme(shared_data: Callable[[str], Path]) -> None:
    mbo = load_mbo(shared_data(ESH4_MBO))
    assert isinstance(mbo, MboArrays) and len(mbo) == 68_792
    trades = mbo.action == ACTION_TRADE
    assert int(trades.sum()) == 2_973
    assert int(mbo.size[trades].sum()) == 9_892
    assert float(mbo.price[trades].min()) == 4800.25 and float(mbo.price[trades].max()) == 4811.75
    assert mbo.symbols == {17077: "ESH4"}
    np.testing.assert_array_equal(mbo.price_raw[trades], (mbo.price[trades] * 1e9).round().astype(np.int64))
    assert set(np.unique(mbo.action).tolist()) <= {ord(c) for c in "AMCRTF"}
    np.testing.assert_array_equal(mbo.is_last, (mbo.flags & 128) != 0)


def test_iter_depth_updates_skips_trades_and_fills(shared_data: Callable[[str], Path]) -> None:
    mbo = load_mbo(shared_data(SAMPLES.format("mbo")))
    updates = [u for u in iter_depth_updates(mbo) if isinstance(u, DepthUpdate)]
    book_records = np.isin(mbo.action, [ord(c) for c in "AMCR"])
    assert len(updates) == int(book_records.sum())
    first = updates[0]
    assert first.symbol == "ESH1" and first.order_id == int(mbo.order_id[np.argmax(book_records)])
    assert first.is_last == bool(mbo.flags[np.argmax(book_records)] & 128)


def test_trades_and_ohlcv_agree_bar_open_stamping(shared_data: Callable[[str], Path]) -> None:
    trades = load_dbn_trades(shared_data(TRADES))
    bars = load_dbn_bars(shared_data(OHLCV), symbol="ESU4")
    assert trades.symbol == "ESU4" and len(trades) == 120
    assert bars.timeframe == Timeframe(1, "m") and len(bars) == 30
    assert set(trades.aggressor.tolist()) <= {int(AggressorSide.BUYER), int(AggressorSide.SELLER), 0}
    # ohlcv ts_event is the bar OPEN: the trades inside [open, open + 1 min) sum to the bar's volume.
    minute = trades.ts_event_ns // NS_PER_MINUTE * NS_PER_MINUTE
    full = np.unique(minute)[1:-1]  # the trades file starts and ends mid-minute
    assert len(full) >= 2
    for m in full.tolist():
        i = int(np.searchsorted(bars.ts_open_ns, m))
        assert bars.ts_open_ns[i] == m
        sel = minute == m
        assert int(trades.size[sel].sum()) == int(bars.volume[i])
        assert float(trades.price[sel].max()) == float(bars.high[i])


def test_ohlcv_with_two_instruments_needs_symbol(shared_data: Callable[[str], Path]) -> None:
    with pytest.raises(DataError, match="several instruments"):
        load_dbn_bars(shared_data(OHLCV))
    nq = load_dbn_bars(shared_data(OHLCV), symbol="NQU4")
    assert nq.symbol == "NQU4" and len(nq) == 30


def test_mbp1_quotes_and_trades(shared_data: Callable[[str], Path]) -> None:
    data = load_dbn_mbp1(shared_data(MBP1))
    assert len(data.quotes) == 2_288
    trades = load_dbn_trades(shared_data(TRADES))
    np.testing.assert_array_equal(data.trades.ts_event_ns, trades.ts_event_ns)
    np.testing.assert_array_equal(data.trades.size, trades.size)
    assert all(q.bid < q.ask for q in data.quotes)


def test_mbp10_levels(shared_data: Callable[[str], Path]) -> None:
    book = load_dbn_mbp10(shared_data(SAMPLES.format("mbp-10")))
    assert len(book) == 4 and book.bid_px.shape == (4, 10) and book.ask_sz.shape == (4, 10)
    assert float(book.bid_px[0, 0]) == 3702.25 and float(book.ask_px[0, 0]) == 3702.75
    assert bool((np.diff(book.bid_px, axis=1) < 0).all()) and bool((np.diff(book.ask_px, axis=1) > 0).all())


def test_definitions(shared_data: Callable[[str], Path]) -> None:
    defs = load_dbn_definitions(shared_data(DEFS))
    assert set(defs) == {"ESU4", "NQU4"}
    es, nq = defs["ESU4"], defs["NQU4"]
    assert (es.min_price_increment, es.unit_of_measure_qty, es.tick_value_usd) == (0.25, 50.0, 12.5)
    assert (nq.unit_of_measure_qty, nq.tick_value_usd) == (20.0, 5.0)
    assert pd.Timestamp(es.expiration_ns, tz="UTC").strftime("%Y-%m-%d") == "2024-09-20"


@pytest.mark.parametrize(
    ("schema", "kind", "n"),
    [
        ("definition", dict, 1),
        ("mbo", MboArrays, 2),
        ("mbp-10", Mbp10Arrays, 2),
        ("ohlcv-1m", BarSeries, 2),
        ("ohlcv-1d", BarSeries, 1),
        ("trades", TradeSeries, 2),
    ],
)
def test_every_format_sample_loads(shared_data: Callable[[str], Path], schema: str, kind: type, n: int) -> None:
    data = load_dbn(shared_data(SAMPLES.format(schema)))
    assert isinstance(data, kind)
    assert len(data) >= n
    if isinstance(data, BarSeries):
        step = data.ts_close_ns - data.ts_open_ns
        assert set(step.tolist()) == {data.timeframe.ns}


def test_tbbo_sample(shared_data: Callable[[str], Path]) -> None:
    data = load_dbn(shared_data(SAMPLES.format("tbbo")))
    assert isinstance(data, Mbp1Data)
    assert len(data.quotes) == len(data.trades) == 4  # tbbo: one record per trade, with the book before it


def test_unsupported_schema(shared_data: Callable[[str], Path]) -> None:
    with pytest.raises(DataError, match="statistics"):
        load_dbn(shared_data(SAMPLES.format("statistics")))


def test_wrong_schema_for_loader(shared_data: Callable[[str], Path]) -> None:
    with pytest.raises(DataError, match="schema"):
        load_mbo(shared_data(TRADES))


def test_truncated_and_junk_files(shared_data: Callable[[str], Path], tmp_path: Path) -> None:
    raw = shared_data(ESH4_MBO).read_bytes()
    cut = tmp_path / "cut.mbo.dbn.zst"
    cut.write_bytes(raw[:20_000])
    with pytest.raises(DataError, match="truncated"):
        load_mbo(cut)
    junk = tmp_path / "junk.dbn"
    junk.write_text("not a dbn file\n")
    with pytest.raises(DataError, match="cannot decode"):
        load_mbo(junk)
    with pytest.raises(DataError, match="not found"):
        load_mbo(tmp_path / "missing.dbn")
