"""CSV bar loader: the real ES export (clock fix from shared/data/README.md) and malformed input written to tmp_path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from propdesk.core.errors import DataError
from propdesk.data.loaders import describe_load, find_preset, load_bars, load_bars_csv, parse_clock_offset
from propdesk.model.data import NS_PER_HOUR, NS_PER_MINUTE, BarSeries
from tests.conftest import ES_1MIN

HEADER = "timestamp,open,high,low,close,volume\n"
GOOD_ROWS = [f"2024-03-04 10:{m:02d}:00,100.25,100.75,100.00,100.50,{10 + m}\n" for m in range(10)]


def _write(tmp_path: Path, rows: list[str], name: str = "bars.csv", header: str = HEADER) -> Path:
    p = tmp_path / name
    p.write_text(header + "".join(rows))
    return p


def _assert_same_bars(a: BarSeries, b: BarSeries) -> None:
    assert (a.symbol, a.timeframe, len(a)) == (b.symbol, b.timeframe, len(b))
    for col in ("ts_open_ns", "ts_close_ns", "open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(a, col), getattr(b, col))


# --- the real ES export -------------------------------------------------------------------------------------------


def test_es_export_matches_readme_clock_fix(shared_data: Callable[[str], Path]) -> None:
    path = shared_data(ES_1MIN)
    bars = load_bars_csv(path, symbol="ESZ5", tz="America/New_York", clock_offset="5h", tick_size=0.25)
    # Oracle: the fix given in shared/data/README.md, computed independently with pandas.
    df = pd.read_csv(path)
    ts = pd.to_datetime(df.timestamp) - pd.Timedelta(hours=5)
    expected = ts.dt.tz_localize("America/New_York").dt.tz_convert("UTC").dt.as_unit("ns").astype("int64").to_numpy()
    assert len(bars) == 75_791
    np.testing.assert_array_equal(bars.ts_open_ns, expected)
    np.testing.assert_array_equal(bars.ts_close_ns - bars.ts_open_ns, np.full(len(bars), NS_PER_MINUTE))
    np.testing.assert_array_equal(bars.close, df.close.to_numpy())
    np.testing.assert_array_equal(bars.volume, df.volume.to_numpy())
    assert bars.symbol == "ESZ5"


def test_es_cash_open_spike_is_0930_eastern(shared_data: Callable[[str], Path]) -> None:
    bars = load_bars_csv(shared_data(ES_1MIN), symbol="ESZ5", tz="America/New_York", clock_offset="5h")
    et = pd.to_datetime(bars.ts_open_ns, utc=True).tz_convert("America/New_York")
    vol = pd.Series(bars.volume, index=et)
    clean = vol[vol.index >= pd.Timestamp("2025-09-15", tz="America/New_York")]
    at_open = clean[(clean.index.hour == 9) & (clean.index.minute == 30)]
    before = clean[(clean.index.hour == 9) & (clean.index.minute == 29)]
    # In both EDT and EST weeks the 09:30 ET bar nearly always carries several times the volume of the 09:29 bar.
    prev = before.reindex(at_open.index - pd.Timedelta(minutes=1)).to_numpy()
    ratio = at_open.to_numpy() / prev
    assert len(at_open) >= 40
    assert np.median(ratio[at_open.index < pd.Timestamp("2025-11-02", tz="UTC")]) > 3  # EDT weeks
    assert np.median(ratio[at_open.index > pd.Timestamp("2025-11-02", tz="UTC")]) > 3  # EST weeks


def test_es_after_est_starts_file_time_is_utc(shared_data: Callable[[str], Path]) -> None:
    path = shared_data(ES_1MIN)
    bars = load_bars_csv(path, symbol="ESZ5", tz="America/New_York", clock_offset="5h")
    raw = pd.to_datetime(pd.read_csv(path).timestamp).dt.as_unit("ns").astype("int64").to_numpy()
    after = raw >= pd.Timestamp("2025-11-03").value
    np.testing.assert_array_equal(bars.ts_open_ns[after], raw[after])
    before = raw < pd.Timestamp("2025-11-01").value
    np.testing.assert_array_equal(raw[before] - bars.ts_open_ns[before], np.full(before.sum(), NS_PER_HOUR))


def test_es_preset_equals_explicit_flags(shared_data: Callable[[str], Path]) -> None:
    path = shared_data(ES_1MIN)
    preset = find_preset(path)
    assert preset is not None and preset.name == "topstepx-es-export"
    via_preset = load_bars(path, symbol="ESZ5")
    explicit = load_bars_csv(path, symbol="ESZ5", tz="America/New_York", clock_offset="5h", tick_size=0.25)
    _assert_same_bars(via_preset, explicit)
    assert load_bars(path).symbol == "ES"
    assert "clock_offset=5h" in describe_load(path)


def test_preset_override_changes_clock(shared_data: Callable[[str], Path]) -> None:
    path = shared_data(ES_1MIN)
    shifted = load_bars(path, clock_offset="0h")
    fixed = load_bars(path)
    # Without the correction the file time is read as UTC: exactly 5 h later than the corrected bar.
    assert int(shifted.ts_open_ns[0] - fixed.ts_open_ns[0]) == 5 * NS_PER_HOUR


def test_stamp_end_shifts_bars_back_one_interval(tmp_path: Path) -> None:
    p = _write(tmp_path, GOOD_ROWS)
    start = load_bars_csv(p, symbol="X")
    end = load_bars_csv(p, symbol="X", stamp="end")
    np.testing.assert_array_equal(end.ts_close_ns, start.ts_open_ns)
    np.testing.assert_array_equal(end.ts_open_ns, start.ts_open_ns - NS_PER_MINUTE)
    assert start.ts_open_ns[0] == pd.Timestamp("2024-03-04 10:00", tz="UTC").value


def test_declared_zone_is_dst_aware(tmp_path: Path) -> None:
    p = _write(tmp_path, ["2024-01-10 09:30:00,1,1,1,1,1\n", "2024-07-10 09:30:00,1,1,1,1,1\n"])
    bars = load_bars_csv(p, symbol="X", tz="America/New_York")
    hours = pd.to_datetime(bars.ts_open_ns, utc=True).hour
    assert list(hours) == [14, 13]  # EST then EDT


@pytest.mark.parametrize(
    ("text", "ns"),
    [("5h", 5 * NS_PER_HOUR), ("+05:00", 5 * NS_PER_HOUR), ("-30m", -30 * NS_PER_MINUTE), ("90s", 90 * 10**9)],
)
def test_parse_clock_offset(text: str, ns: int) -> None:
    assert parse_clock_offset(text) == ns


def test_parse_clock_offset_rejects_garbage() -> None:
    with pytest.raises(DataError, match="clock offset"):
        parse_clock_offset("five hours")


def test_headerless_file_loads(tmp_path: Path) -> None:
    p = _write(tmp_path, GOOD_ROWS, header="")
    assert len(load_bars_csv(p, symbol="X")) == 10


def test_gzip_file_loads(shared_data: Callable[[str], Path]) -> None:
    path = shared_data("databento_glbx_nautilus/6EH4.XCME_1min_bars_20240101_20240131.csv.gz")
    bars = load_bars(path)
    assert bars.symbol == "6EH4" and len(bars) == 29_996
    # End-stamped: the first row says 23:01 UTC, so the first bar opened at the 23:00 Globex open.
    assert bars.ts_open_ns[0] == pd.Timestamp("2024-01-01 23:00", tz="UTC").value


# --- malformed input: row-numbered errors, nothing returned -------------------------------------------------------


def _expect_error(path: Path, row: int | None, *fragments: str, **kw: object) -> DataError:
    result = None
    with pytest.raises(DataError) as info:
        result = load_bars_csv(path, symbol="X", **kw)  # type: ignore[arg-type]
    assert result is None
    err = info.value
    assert err.row == row, str(err)
    assert err.path == path
    for f in fragments:
        assert f in str(err), str(err)
    return err


def test_bad_number_names_row_and_column(tmp_path: Path) -> None:
    rows = list(GOOD_ROWS)
    rows[6] = "2024-03-04 10:06:00,100.25,abc,100.00,100.50,16\n"
    err = _expect_error(_write(tmp_path, rows), 7, "'high'", "abc")
    assert "line 8" in str(err)


def test_missing_field(tmp_path: Path) -> None:
    rows = list(GOOD_ROWS)
    rows[2] = "2024-03-04 10:02:00,100.25,100.75,,100.50,12\n"
    _expect_error(_write(tmp_path, rows), 3, "'low'", "missing")


def test_short_row_is_missing_fields(tmp_path: Path) -> None:
    rows = list(GOOD_ROWS)
    rows[4] = "2024-03-04 10:04:00,100.25,100.75\n"
    _expect_error(_write(tmp_path, rows), 5, "missing")


def test_extra_field(tmp_path: Path) -> None:
    rows = list(GOOD_ROWS)
    rows[8] = "2024-03-04 10:08:00,100.25,100.75,100.00,100.50,18,99\n"
    _expect_error(_write(tmp_path, rows), 9, "malformed")


def test_earliest_bad_row_is_reported(tmp_path: Path) -> None:
    rows = list(GOOD_ROWS)
    rows[5] = "2024-03-04 10:05:00,100.25,100.75,100.00,100.50,x\n"
    rows[3] = "not a time,100.25,100.75,100.00,100.50,13\n"
    _expect_error(_write(tmp_path, rows), 4, "'timestamp'", "not a timestamp")


@pytest.mark.parametrize(
    ("row", "column", "reason"),
    [
        ("2024-03-04 10:01:00,100.25,100.00,100.75,100.50,11\n", "'high'", "below low"),
        ("2024-03-04 10:01:00,100.25,100.50,100.00,100.75,11\n", "'high'", "below open or close"),
        ("2024-03-04 10:01:00,100.25,100.75,100.50,100.50,11\n", "'low'", "above open or close"),
        ("2024-03-04 10:01:00,100.25,100.75,100.00,100.50,-1\n", "'volume'", "negative"),
        ("2024-03-04 10:01:00,100.25,100.75,100.00,100.50,1.5\n", "'volume'", "whole number"),
    ],
)
def test_inconsistent_bar(tmp_path: Path, row: str, column: str, reason: str) -> None:
    rows = list(GOOD_ROWS)
    rows[1] = row
    _expect_error(_write(tmp_path, rows), 2, column, reason)


def test_off_tick_price(tmp_path: Path) -> None:
    rows = list(GOOD_ROWS)
    rows[5] = "2024-03-04 10:05:00,100.25,100.80,100.00,100.50,15\n"
    _expect_error(_write(tmp_path, rows), 6, "'high'", "tick", tick_size="0.25")
    assert len(load_bars_csv(_write(tmp_path, GOOD_ROWS, "ok.csv"), symbol="X", tick_size=0.25)) == 10


def test_duplicate_and_backward_timestamps(tmp_path: Path) -> None:
    rows = list(GOOD_ROWS)
    rows[4] = rows[3]
    _expect_error(_write(tmp_path, rows, "dup.csv"), 5, "duplicate", "line 6")
    rows = list(GOOD_ROWS)
    rows[4], rows[5] = rows[5], rows[4]
    _expect_error(_write(tmp_path, rows, "back.csv"), 6, "backwards")


def test_missing_column_is_row_zero(tmp_path: Path) -> None:
    p = _write(tmp_path, ["2024-03-04 10:00:00,1,1,1,1\n"], header="timestamp,open,high,low,close\n")
    _expect_error(p, 0, "volume")


def test_empty_file(tmp_path: Path) -> None:
    _expect_error(_write(tmp_path, []), None, "no data rows")


def test_nonexistent_local_time_names_row(tmp_path: Path) -> None:
    rows = [f"2024-03-10 01:{m:02d}:00,1,1,1,1,1\n" for m in (58, 59)] + ["2024-03-10 02:30:00,1,1,1,1,1\n"]
    _expect_error(_write(tmp_path, rows), 3, "does not exist", tz="America/New_York")


def test_ambiguous_hour_resolved_by_file_order(tmp_path: Path) -> None:
    walls = ["00:59", "01:00", "01:30", "01:59", "01:00", "01:30", "02:00"]
    rows = [f"2024-11-03 {w}:00,1,1,1,1,1\n" for w in walls]
    bars = load_bars_csv(_write(tmp_path, rows), symbol="X", tz="America/New_York")
    utc = [t.strftime("%H:%M") for t in pd.to_datetime(bars.ts_open_ns, utc=True)]
    # 00:59 EDT = 04:59 UTC; first 01:xx pass is EDT (05:xx UTC), second is EST (06:xx UTC); 02:00 EST = 07:00 UTC.
    assert utc == ["04:59", "05:00", "05:30", "05:59", "06:00", "06:30", "07:00"]


def test_ambiguous_hour_without_repeat_errors_or_follows_option(tmp_path: Path) -> None:
    rows = ["2024-11-03 00:59:00,1,1,1,1,1\n", "2024-11-03 01:30:00,1,1,1,1,1\n", "2024-11-03 02:00:00,1,1,1,1,1\n"]
    p = _write(tmp_path, rows)
    _expect_error(p, 2, "ambiguous", tz="America/New_York")
    late = load_bars_csv(p, symbol="X", tz="America/New_York", ambiguous="latest")
    assert pd.Timestamp(int(late.ts_open_ns[1]), tz="UTC").hour == 6


def test_unknown_preset_option(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unknown"):
        load_bars(_write(tmp_path, GOOD_ROWS), colour="red")


def test_error_names_the_file_line_not_the_data_row(tmp_path: Path) -> None:
    lines = ["timestamp,open,high,low,close,volume\n"]
    lines += [f"2024-03-04 {i // 60:02d}:{i % 60:02d}:00,100.25,100.50,100.00,100.25,1\n" for i in range(1440)]
    lines += [f"2024-03-05 {i // 60:02d}:{i % 60:02d}:00,100.25,100.50,100.00,100.25,1\n" for i in range(1440)]
    lines += [f"2024-03-06 {i // 60:02d}:{i % 60:02d}:00,100.25,100.50,100.00,100.25,1\n" for i in range(1440)]
    lines += [f"2024-03-07 {i // 60:02d}:{i % 60:02d}:00,100.25,100.50,100.00,100.25,1\n" for i in range(1440)]
    lines[4999] = lines[4999].replace(",100.50,", ",oops,")  # data row 4999, the file's line 5000
    path = tmp_path / "bars.csv"
    path.write_text("".join(lines))
    err = _expect_error(path, 4999)
    assert err.line == 5000
    assert str(err) == f"{path}, line 5000: column 'high': not a finite number: 'oops'"


def test_time_going_backwards_names_the_file_line(tmp_path: Path) -> None:
    rows = list(GOOD_ROWS)
    rows[4] = rows[3]
    path = _write(tmp_path, rows, "dup.csv")
    err = _expect_error(path, 5)
    assert str(err) == f"{path}, line 6: column 'timestamp': duplicate timestamp (same as the line before)"


def test_headerless_file_lines_are_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "nohead.csv"
    path.write_text("2024-03-04 10:00:00,1,2,0.5,1.5,1\n2024-03-04 10:01:00,1,x,0.5,1.5,1\n")
    err = _expect_error(path, 2)
    assert str(err) == f"{path}, line 2: column 'high': not a finite number: 'x'"
