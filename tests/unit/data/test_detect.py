"""Tests for propdesk.data.loaders.detect: one format decision for backtest, run and data inspect."""

from __future__ import annotations

from pathlib import Path

import pytest

from propdesk.core.errors import DataError
from propdesk.data.catalog import BarCatalog
from propdesk.data.loaders import load_bars
from propdesk.data.loaders.detect import detect_format
from tests.conftest import ES_1MIN, resolve_shared

ES_TRADES = "es_trades_esm8_rtrawl/ESM8_trades_20180507.csv.gz"
OHLCV_DBN = "databento_glbx_nautilus/futures_ohlcv-1m_2024-07-01T23-40_2024-07-02T00-10.dbn.zst"


def test_shared_files_are_told_apart() -> None:
    assert detect_format(resolve_shared(ES_1MIN)) == "bars-csv"
    assert detect_format(resolve_shared(ES_TRADES)) == "trades-csv"
    assert detect_format(resolve_shared(OHLCV_DBN)) == "dbn"


def test_dbn_is_found_by_its_magic_bytes_whatever_its_name(tmp_path: Path) -> None:
    renamed = tmp_path / "bars.csv"
    renamed.write_bytes(resolve_shared(OHLCV_DBN).read_bytes())
    assert detect_format(renamed) == "dbn"
    raw = tmp_path / "raw.bin"
    raw.write_bytes(b"DBN\x03" + b"\x00" * 16)
    assert detect_format(raw) == "dbn"


def test_a_directory_is_not_a_data_file(tmp_path: Path) -> None:
    with pytest.raises(DataError) as exc:
        detect_format(tmp_path)
    assert str(exc.value) == f"{tmp_path}: not a file"


def test_es_trades_file_loads_as_one_minute_bars() -> None:
    bars = load_bars(resolve_shared(ES_TRADES))
    assert bars.symbol == "ESM8" and str(bars.timeframe) == "1m"
    # 08:30:00 to 11:59:59 CT = 13:30 to 16:59 UTC: 210 minutes, 74,907 prints (shared/data/README.md)
    assert len(bars) == 210 and int(bars.volume.sum()) == 74_907
    assert int(bars.ts_open_ns[0]) == 1_525_699_800 * 10**9  # 2018-05-07T13:30:00Z


def test_parquet_catalog_file_loads(tmp_path: Path) -> None:
    full = load_bars(resolve_shared(ES_1MIN), symbol="ESZ5")
    bars = full.between(None, int(full.ts_open_ns[100]))
    BarCatalog(tmp_path).write(bars)
    year_file = next(tmp_path.rglob("*.parquet"))
    assert detect_format(year_file) == "parquet"
    back = load_bars(year_file)
    assert back.symbol == "ESZ5" and len(back) == 100
    assert back.ts_open_ns.tolist() == bars.ts_open_ns.tolist()
