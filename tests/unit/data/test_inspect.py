"""`propdesk data inspect`: report on the real ES and NQ files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from propdesk.core.errors import DataError
from propdesk.data.inspect import classify_gap, inspect_file, render_report
from tests.conftest import ES_1MIN, NQ_1MIN


def _ct(text: str) -> int:
    return pd.Timestamp(text, tz="America/Chicago").value


@pytest.mark.parametrize(
    ("start", "end", "kind"),
    [
        ("2025-09-12 16:00", "2025-09-14 17:00", "weekend"),
        ("2025-10-31 16:00", "2025-11-02 17:00", "weekend"),  # spans the DST change
        ("2025-09-15 16:00", "2025-09-15 17:00", "daily halt"),
        ("2023-11-23 12:00", "2023-11-23 17:00", "holiday"),
        ("2023-11-24 12:15", "2023-11-26 17:00", "holiday"),
        ("2025-09-15 10:00", "2025-09-15 10:05", "no trades"),
        ("2025-11-10 21:00", "2025-11-10 22:00", "unexpected"),
    ],
)
def test_classify_gap(start: str, end: str, kind: str) -> None:
    assert classify_gap(_ct(start), _ct(end)) == kind


def test_es_report(shared_data: Callable[[str], Path]) -> None:
    path = shared_data(ES_1MIN)
    r = inspect_file(path, symbol="ESZ5")
    raw = pd.read_csv(path)
    assert r.rows == len(raw) == 75_791
    assert r.symbol == "ESZ5" and r.timeframe == "1m"
    assert r.first_ns == pd.Timestamp("2025-08-31 22:00", tz="UTC").value
    assert r.tick_size == 0.25 and r.tick_inferred and r.off_tick_bars == 0
    assert r.duplicate_timestamps == 0
    assert r.total_volume == int(raw.volume.sum())
    assert sum(d.volume for d in r.days) == r.total_volume
    assert sum(d.bars for d in r.days) == r.rows
    # README: every Friday has one extra bar at file 22:00 (17:00 ET = 16:00 CT), inside the halt.
    t = pd.to_datetime(raw.timestamp)
    fridays_2200 = int(((t.dt.day_of_week == 4) & (t.dt.hour == 22) & (t.dt.minute == 0)).sum())
    assert r.off_hours == {"Fri 16:00 CT": fridays_2200}
    # README: gaps only at the daily halt and weekends ... plus two missing hours that inspect finds:
    assert r.gap_counts["weekend"] == 10 and r.gap_counts["holiday"] == 0
    unexpected = [g for g in r.top_gaps if g.kind == "unexpected"]
    for g in unexpected:  # the file really has no bar in those hours (file time = UTC after 2025-11-02)
        missing = pd.Timestamp(g.start_ns, tz="UTC").strftime("%Y-%m-%d %H:%M:%S")
        assert missing not in set(raw.timestamp)


def test_nq_report_thanksgiving(shared_data: Callable[[str], Path]) -> None:
    r = inspect_file(shared_data(NQ_1MIN), top_gaps=5)
    assert r.rows == 14_714 and r.symbol == "NQ"
    assert r.gap_counts["holiday"] == 2  # Thursday 12:00-17:00 CT halt and Friday 12:15 CT early close
    assert r.gap_counts["weekend"] == 1 and r.gap_counts["unexpected"] == 0
    assert r.off_hours == {}
    kinds = {
        pd.Timestamp(g.start_ns, tz="UTC").tz_convert("America/Chicago").strftime("%m-%d %H:%M"): g.kind
        for g in r.top_gaps
    }
    assert kinds["11-23 12:00"] == "holiday" and kinds["11-24 12:15"] == "holiday"
    assert r.sessions == len(r.days) == 11


def test_render_has_tables(shared_data: Callable[[str], Path]) -> None:
    r = inspect_file(shared_data(NQ_1MIN))
    console = Console(record=True, width=160)
    render_report(r, console, max_days=4)
    text = console.export_text()
    assert "Volume per trading day" in text and "Largest" in text and "14,714" in text
    assert r.to_dict()["rows"] == 14_714


def test_inspect_dbn_bars_and_refusals(shared_data: Callable[[str], Path], tmp_path: Path) -> None:
    ohlcv = shared_data("databento_glbx_nautilus/futures_ohlcv-1m_2024-07-01T23-40_2024-07-02T00-10.dbn.zst")
    r = inspect_file(ohlcv, symbol="NQU4")
    assert r.rows == 30 and r.symbol == "NQU4" and "ohlcv-1m" in r.loaded_as
    with pytest.raises(DataError, match="bar files"):
        inspect_file(shared_data("databento_glbx_nautilus/esh4-glbx-mdp3-20231225.mbo.dbn.zst"))
    bad = tmp_path / "x.csv"
    bad.write_text(
        "timestamp,open,high,low,close,volume\n2024-01-02 10:00:00,1,1,1,1,1\n2024-01-02 10:01:00,1,z,1,1,1\n"
    )
    with pytest.raises(DataError) as info:
        inspect_file(bad)
    assert info.value.row == 2
