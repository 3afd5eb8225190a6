"""Parquet bar catalog: exact round trip, merge without duplicates, year partitions, atomic writes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from propdesk.core.errors import DataError
from propdesk.data.catalog import BarCatalog, read_bar_file, write_bar_file
from propdesk.data.loaders import load_bars
from propdesk.model.data import NS_PER_MINUTE, BarSeries, Timeframe
from tests.conftest import ES_1MIN

COLS = ("ts_open_ns", "ts_close_ns", "open", "high", "low", "close", "volume")


def _bars(start: str, n: int, symbol: str = "ESZ5", base: float = 5000.0) -> BarSeries:
    t0 = pd.Timestamp(start, tz="UTC").value
    ts = t0 + np.arange(n, dtype=np.int64) * NS_PER_MINUTE
    o = base + np.arange(n) * 0.25
    return BarSeries(
        symbol, Timeframe(1, "m"), ts, ts + NS_PER_MINUTE, o, o + 0.5, o - 0.25, o + 0.25, np.arange(n) + 1
    )


def _same(a: BarSeries, b: BarSeries) -> None:
    assert len(a) == len(b)
    for c in COLS:
        np.testing.assert_array_equal(getattr(a, c), getattr(b, c))
        assert getattr(a, c).dtype == getattr(b, c).dtype


def test_round_trip_real_file_exact(shared_data: Callable[[str], Path], tmp_path: Path) -> None:
    es = load_bars(shared_data(ES_1MIN), symbol="ESZ5")
    cat = BarCatalog(tmp_path / "bars")
    assert cat.write(es) == len(es)
    _same(cat.read("ESZ5", "1m"), es)
    assert (tmp_path / "bars" / "ESZ5" / "1m" / "2025.parquet").is_file()


def test_merge_overlap_new_wins_no_duplicates(tmp_path: Path) -> None:
    cat = BarCatalog(tmp_path)
    first = _bars("2024-03-04 14:00", 10)
    second = _bars("2024-03-04 14:05", 10, base=6000.0)  # overlaps minutes 5..9
    cat.write(first)
    assert cat.write(second) == 15
    got = cat.read("ESZ5", Timeframe(1, "m"))
    assert len(np.unique(got.ts_open_ns)) == 15
    np.testing.assert_array_equal(got.open[:5], first.open[:5])
    np.testing.assert_array_equal(got.open[5:], second.open)
    cat.write(first.between(None, int(first.ts_open_ns[2])))  # re-writing stored bars changes nothing
    assert len(cat.read("ESZ5", "1m")) == 15


def test_year_partitions_and_range_read(tmp_path: Path) -> None:
    cat = BarCatalog(tmp_path)
    bars = _bars("2024-12-31 23:55", 10)
    cat.write(bars)
    files = sorted(p.name for p in (tmp_path / "ESZ5" / "1m").iterdir())
    assert files == ["2024.parquet", "2025.parquet"]
    start, end = int(bars.ts_open_ns[3]), int(bars.ts_open_ns[7])
    _same(cat.read("ESZ5", "1m", start, end), bars.between(start, end))
    entries = cat.list()
    assert [(e.symbol, str(e.timeframe), e.rows, e.years) for e in entries] == [("ESZ5", "1m", 10, (2024, 2025))]
    assert entries[0].first_ts_ns == bars.ts_open_ns[0] and entries[0].last_ts_ns == bars.ts_open_ns[-1]


def test_no_temp_files_left_and_list_of_several(tmp_path: Path) -> None:
    cat = BarCatalog(tmp_path)
    cat.write(_bars("2024-03-04 14:00", 3, symbol="ESZ5"))
    cat.write(_bars("2024-03-04 14:00", 4, symbol="NQZ5"))
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    assert [(e.symbol, e.rows) for e in cat.list()] == [("ESZ5", 3), ("NQZ5", 4)]


def test_errors(tmp_path: Path) -> None:
    cat = BarCatalog(tmp_path)
    with pytest.raises(DataError, match="no bars stored"):
        cat.read("ESZ5", "1m")
    with pytest.raises(DataError, match="cannot name"):
        cat.write(_bars("2024-03-04 14:00", 3, symbol="../x"))
    bad = tmp_path / "ESZ5" / "1m" / "2024.parquet"
    bad.parent.mkdir(parents=True)
    bad.write_text("garbage")
    with pytest.raises(DataError, match="Parquet"):
        cat.read("ESZ5", "1m")
    with pytest.raises(DataError, match="Parquet"):
        cat.list()


def test_bar_file_round_trip_and_catalog_reads_it(tmp_path: Path) -> None:
    bars = _bars("2025-10-01 14:00", 30)
    path = write_bar_file(bars, tmp_path / "out" / "es.parquet")
    back = read_bar_file(path)
    assert (back.symbol, back.timeframe) == ("ESZ5", Timeframe(1, "m"))
    _same(back, bars)
    assert read_bar_file(path, symbol="ESH6").symbol == "ESH6"
    _same(load_bars(path), bars)  # the loader behind backtest --data
    # the same file placed in a catalog's layout reads back through BarCatalog
    cat_file = tmp_path / "cat" / "ESZ5" / "1m" / "2025.parquet"
    write_bar_file(bars, cat_file)
    _same(BarCatalog(tmp_path / "cat").read("ESZ5", "1m"), bars)
    assert not list((tmp_path / "out").glob(".*.tmp"))


def test_bar_file_errors_are_clear(tmp_path: Path) -> None:
    plain = tmp_path / "plain.parquet"
    pq.write_table(pa.table({c: [1] for c in COLS}), plain)
    with pytest.raises(DataError, match=r"no propdesk\.symbol / propdesk\.timeframe metadata"):
        read_bar_file(plain)
    other = tmp_path / "other.parquet"
    pq.write_table(pa.table({"x": [1]}), other)
    with pytest.raises(DataError, match="not a bar file: columns x"):
        read_bar_file(other)
    with pytest.raises(DataError, match="drop timeframe"):
        load_bars(other, timeframe="5m")
