"""FirstRateData loader on the NQ sample (oracles from shared/data/README.md)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from propdesk.core.errors import DataError
from propdesk.data.loaders import load_bars, load_firstrate_csv
from propdesk.data.loaders.firstrate import timeframe_from_name
from propdesk.model.data import NS_PER_MINUTE, Timeframe
from tests.conftest import NQ_1MIN, NQ_5MIN

NQ_1DAY = "nq_1min_firstratedata_sample/NQ_1day_sample.csv"
NQ_1HOUR = "nq_1min_firstratedata_sample/NQ_1hour_sample.csv"


def _et(ts_ns: int) -> pd.Timestamp:
    return pd.Timestamp(ts_ns, unit="ns", tz="UTC").tz_convert("America/New_York")


def test_one_minute_file(shared_data: Callable[[str], Path]) -> None:
    bars = load_firstrate_csv(shared_data(NQ_1MIN), symbol="NQZ3")
    assert len(bars) == 14_714
    assert bars.timeframe == Timeframe(1, "m")
    # US/Eastern wall clock, bar start: 2023-11-19 18:00 EST = 23:00 UTC.
    assert bars.ts_open_ns[0] == pd.Timestamp("2023-11-19 23:00", tz="UTC").value
    assert _et(int(bars.ts_open_ns[-1])).strftime("%Y-%m-%d %H:%M") == "2023-12-04 16:59"
    np.testing.assert_array_equal(bars.ts_close_ns - bars.ts_open_ns, np.full(len(bars), NS_PER_MINUTE))


def test_five_minute_file_equals_resampled_one_minute(shared_data: Callable[[str], Path]) -> None:
    one = load_firstrate_csv(shared_data(NQ_1MIN), symbol="NQ")
    five = load_firstrate_csv(shared_data(NQ_5MIN), symbol="NQ")
    assert five.timeframe == Timeframe(5, "m")
    key = one.ts_open_ns // (5 * NS_PER_MINUTE) * (5 * NS_PER_MINUTE)
    df = pd.DataFrame({"k": key, "o": one.open, "h": one.high, "l": one.low, "c": one.close, "v": one.volume})
    agg = df.groupby("k").agg(o=("o", "first"), h=("h", "max"), l=("l", "min"), c=("c", "last"), v=("v", "sum"))
    np.testing.assert_array_equal(agg.index.to_numpy(), five.ts_open_ns)
    for col, arr in (("o", five.open), ("h", five.high), ("l", five.low), ("c", five.close), ("v", five.volume)):
        np.testing.assert_array_equal(agg[col].to_numpy(), arr)


def test_daily_bars_span_the_1800_et_session(shared_data: Callable[[str], Path]) -> None:
    days = load_firstrate_csv(shared_data(NQ_1DAY), symbol="NQ")
    one = load_firstrate_csv(shared_data(NQ_1MIN), symbol="NQ")
    assert len(days) == 10 and days.timeframe == Timeframe(1, "d")
    assert _et(int(days.ts_open_ns[0])).strftime("%Y-%m-%d %H:%M") == "2023-11-19 18:00"
    assert _et(int(days.ts_close_ns[0])).strftime("%Y-%m-%d %H:%M") == "2023-11-20 17:00"
    # Friday after Thanksgiving: the vendor merged Thursday's session, so the bar opens Wednesday 18:00 ET.
    fri = 3
    assert _et(int(days.ts_open_ns[fri])).strftime("%Y-%m-%d %H:%M") == "2023-11-22 18:00"
    # README: daily O/H/L equal the 1-min aggregate per session.
    for i in range(len(days)):
        sel = (one.ts_open_ns >= days.ts_open_ns[i]) & (one.ts_open_ns < days.ts_close_ns[i])
        assert one.open[sel][0] == days.open[i]
        assert one.high[sel].max() == days.high[i]
        assert one.low[sel].min() == days.low[i]


def test_hourly_and_preset(shared_data: Callable[[str], Path]) -> None:
    path = shared_data(NQ_1HOUR)
    bars = load_bars(path)
    assert bars.symbol == "NQ" and bars.timeframe == Timeframe(1, "h") and len(bars) == 246


@pytest.mark.parametrize(
    ("name", "tf"),
    [
        ("NQ_1min_sample.csv", "1m"),
        ("NQ_5min_sample.csv", "5m"),
        ("ES_1hour_x.csv", "1h"),
        ("NQ_1day_sample.csv", "1d"),
    ],
)
def test_timeframe_from_name(name: str, tf: str) -> None:
    assert timeframe_from_name(name) == Timeframe.parse(tf)


def test_no_timeframe_in_name(tmp_path: Path) -> None:
    p = tmp_path / "nq.csv"
    p.write_text("timestamp,open,high,low,close,volume\n2023-11-20 10:00:00,1,1,1,1,1\n")
    with pytest.raises(DataError, match="timeframe"):
        load_firstrate_csv(p, symbol="NQ")
    assert len(load_firstrate_csv(p, symbol="NQ", timeframe="1m")) == 1


def test_headerless_vendor_file_and_bad_row(tmp_path: Path) -> None:
    p = tmp_path / "NQ_1min_continuous.txt"
    lines = [f"2023-11-20 10:{m:02d}:00,16000.25,16001.00,15999.75,16000.50,{m + 1}\n" for m in range(8)]
    p.write_text("".join(lines))
    assert len(load_firstrate_csv(p, symbol="NQ")) == 8
    lines[6] = "2023-11-20 10:06:00,16000.25,16001.00,15999.75,oops,7\n"
    p.write_text("".join(lines))
    with pytest.raises(DataError) as info:
        load_firstrate_csv(p, symbol="NQ")
    assert info.value.row == 7 and "'close'" in str(info.value)
