"""Trade-print CSV loader: the ESM8 prints (no size, no side) and malformed input."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from propdesk.core.errors import DataError
from propdesk.data.loaders import load_trades_csv
from propdesk.model.enums import AggressorSide

ESM8 = "es_trades_esm8_rtrawl/ESM8_trades_20180507.csv.gz"


def test_esm8_prints_need_default_size(shared_data: Callable[[str], Path]) -> None:
    path = shared_data(ESM8)
    with pytest.raises(DataError, match="default_size"):
        load_trades_csv(path, symbol="ESM8")
    loaded = load_trades_csv(path, symbol="ESM8", default_size=1, tick_size=0.25)
    s = loaded.series
    assert len(s) == 74_907
    assert not loaded.size_known and not loaded.aggressor_known
    assert any("no size column" in n for n in loaded.notes)
    assert int(s.size.sum()) == 74_907
    assert set(s.aggressor.tolist()) == {int(AggressorSide.NONE)}
    with gzip.open(path, "rt") as fh:
        df = pd.read_csv(fh)
    expected = pd.to_datetime(df.ts_utc).dt.as_unit("ns").astype("int64").to_numpy()
    np.testing.assert_array_equal(s.ts_event_ns, expected)
    assert len(np.unique(s.ts_event_ns)) == 50_232  # README: distinct timestamps
    assert s.ts_event_ns[0] == pd.Timestamp("2018-05-07 13:30:00.001532", tz="UTC").value


def test_size_and_side_columns(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("timestamp,price,size,side\n2024-01-02 14:30:00,100.25,3,B\n2024-01-02 14:30:00,100.00,2,S\n")
    loaded = load_trades_csv(p, symbol="X", tz="America/Chicago")
    assert loaded.size_known and loaded.aggressor_known
    assert loaded.series.size.tolist() == [3, 2]
    assert loaded.series.aggressor.tolist() == [int(AggressorSide.BUYER), int(AggressorSide.SELLER)]
    assert loaded.series.ts_event_ns[0] == pd.Timestamp("2024-01-02 20:30", tz="UTC").value


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("2024-01-02 14:30:03,abc,1,B\n", "'price'"),
        ("2024-01-02 14:30:03,100.25,0,B\n", "'size'"),
        ("2024-01-02 14:30:03,100.25,1,Q\n", "'side'"),
        ("2024-01-02 14:29:00,100.25,1,B\n", "backwards"),
    ],
)
def test_bad_row_named(tmp_path: Path, line: str, fragment: str) -> None:
    rows = [f"2024-01-02 14:30:0{i},100.25,1,B\n" for i in range(3)]
    p = tmp_path / "t.csv"
    p.write_text("timestamp,price,size,side\n" + "".join(rows) + line)
    with pytest.raises(DataError) as info:
        load_trades_csv(p, symbol="X")
    assert info.value.row == 4 and fragment in str(info.value)
