"""Session-anchored VWAP: against a pandas group-by per CME session on the ES and NQ files, DST boundaries, errors.

The oracle builds the session key independently of propdesk: the bar's open time on the America/Chicago wall clock
plus 7 hours, truncated to the date (17:00 CT + 7 h = midnight, so every session maps to one date).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, time

import numpy as np
import pandas as pd
import pytest

from propdesk.core.errors import ConfigError, DataError
from propdesk.data.indicators import SessionVWAP, session_bounds, session_ids, session_vwap
from propdesk.data.loaders import load_bars_csv, load_firstrate_csv
from propdesk.model.data import Bar, BarSeries, Timeframe
from tests.conftest import ES_1MIN, NQ_1MIN, resolve_shared


def ns(text: str) -> int:
    """UTC ns of an ISO time written in UTC (hand-written test inputs)."""
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()) * 1_000_000_000


@pytest.fixture(scope="module", params=["ES", "NQ"])
def bars(request: pytest.FixtureRequest) -> BarSeries:
    if request.param == "ES":
        return load_bars_csv(resolve_shared(ES_1MIN), symbol="ESZ5", tz="America/New_York", clock_offset="5h")
    return load_firstrate_csv(resolve_shared(NQ_1MIN), symbol="NQZ3")


def pandas_session_key(ts_open_ns: np.ndarray) -> pd.Series:
    local = pd.Series(pd.to_datetime(ts_open_ns, unit="ns", utc=True)).dt.tz_convert("America/Chicago")
    return (local.dt.tz_localize(None) + pd.Timedelta(hours=7)).dt.normalize()


def pandas_vwap(s: BarSeries) -> np.ndarray:
    key = pandas_session_key(s.ts_open_ns)
    df = pd.DataFrame({"pv": (s.high + s.low + s.close) / 3.0 * s.volume, "v": s.volume.astype(np.float64)})
    cum = df.groupby(key.to_numpy()).cumsum()
    return (cum["pv"] / cum["v"]).to_numpy()


def run(ind: SessionVWAP, s: BarSeries) -> tuple[np.ndarray, np.ndarray]:
    vals, starts = [], []
    rows = zip(s.high.tolist(), s.low.tolist(), s.close.tolist(), s.volume.tolist(), s.ts_open_ns.tolist(), strict=True)
    for h, lo, c, v, t in rows:
        vals.append(ind.update_bar(h, lo, c, v, t))
        starts.append(ind.session_start_ns)
    return np.array(vals), np.array(starts, dtype=np.int64)


def test_vwap_matches_pandas_groupby_per_session(bars: BarSeries) -> None:
    ours, starts = run(SessionVWAP(), bars)
    want = pandas_vwap(bars)
    assert not np.isnan(want).any()  # every bar in these files has volume
    np.testing.assert_allclose(ours, want, rtol=1e-9, atol=0)
    # Same sessions as the oracle: a new session starts exactly where the pandas key changes.
    key = pandas_session_key(bars.ts_open_ns).to_numpy()
    np.testing.assert_array_equal(np.diff(starts) != 0, key[1:] != key[:-1])
    # The vectorized form repeats the same additions: equal bit for bit.
    vec = session_vwap(bars.high, bars.low, bars.close, bars.volume, bars.ts_open_ns)
    np.testing.assert_array_equal(vec, ours)
    np.testing.assert_array_equal(session_ids(bars.ts_open_ns), starts)


def test_es_sessions_around_the_november_dst_change() -> None:
    es = load_bars_csv(resolve_shared(ES_1MIN), symbol="ESZ5", tz="America/New_York", clock_offset="5h")
    _, starts = run(SessionVWAP(), es)
    first_bar_of_session = es.ts_open_ns[np.r_[0, np.flatnonzero(np.diff(starts)) + 1]]
    # Sunday opens: 17:00 CDT = 22:00 UTC before the change, 17:00 CST = 23:00 UTC from 2025-11-02.
    assert ns("2025-10-26T22:00:00") in first_bar_of_session
    assert ns("2025-11-02T23:00:00") in first_bar_of_session
    assert ns("2025-11-09T23:00:00") in first_bar_of_session
    i = int(np.searchsorted(es.ts_open_ns, ns("2025-11-02T23:00:00")))
    assert starts[i] == ns("2025-11-02T23:00:00")
    vwap = session_vwap(es.high, es.low, es.close, es.volume, es.ts_open_ns)
    assert vwap[i] == (es.high[i] + es.low[i] + es.close[i]) / 3.0  # restarted on the open bar
    # Monday 2025-11-03 (CST): the bar at 15:59 CST = 21:59 UTC still belongs to the Sunday session.
    j = int(np.searchsorted(es.ts_open_ns, ns("2025-11-03T21:59:00")))
    assert es.ts_open_ns[j] == ns("2025-11-03T21:59:00") and starts[j] == ns("2025-11-02T23:00:00")


@pytest.mark.parametrize(
    ("when", "start", "end"),
    [
        ("2025-10-31T15:00:00", "2025-10-30T22:00:00", "2025-10-31T22:00:00"),  # CDT
        ("2025-11-02T12:00:00", "2025-11-01T22:00:00", "2025-11-02T23:00:00"),  # 25-hour session over the change
        ("2025-11-03T15:00:00", "2025-11-02T23:00:00", "2025-11-03T23:00:00"),  # CST
        ("2026-03-08T12:00:00", "2026-03-07T23:00:00", "2026-03-08T22:00:00"),  # 23-hour session (spring forward)
        ("2025-11-03T22:59:59", "2025-11-02T23:00:00", "2025-11-03T23:00:00"),
        ("2025-11-03T23:00:00", "2025-11-03T23:00:00", "2025-11-04T23:00:00"),  # the boundary opens a session
    ],
)
def test_session_bounds_are_dst_correct(when: str, start: str, end: str) -> None:
    assert session_bounds(ns(when)) == (ns(start), ns(end))


def test_vwap_resets_at_the_boundary_and_waits_for_volume() -> None:
    ind = SessionVWAP(source="close")
    assert ind.update(100.0, 1, ns("2025-11-03T22:58:00")) == 100.0
    assert ind.update(102.0, 3, ns("2025-11-03T22:59:00")) == (100.0 + 3 * 102.0) / 4
    assert ind.ready and ind.session_volume == 4
    v = ind.update(200.0, 0, ns("2025-11-03T23:00:00"))  # new session, no volume yet
    assert math.isnan(v) and not ind.ready and ind.session_start_ns == ns("2025-11-03T23:00:00")
    assert ind.update(210.0, 2, ns("2025-11-03T23:01:00")) == 210.0
    assert ind.count == 4
    ind.reset()
    assert ind.count == 0 and math.isnan(ind.value) and not ind.ready


def test_handle_bar_uses_the_open_time_and_any_source() -> None:
    tf = Timeframe.parse("1m")
    # A bar opening 16:59 CST belongs to the old session even though it closes at the boundary.
    b1 = Bar("ESZ5", tf, 10.0, 12.0, 8.0, 11.0, 2, ns("2025-11-03T22:59:00"), ns("2025-11-03T23:00:00"))
    b2 = Bar("ESZ5", tf, 20.0, 24.0, 16.0, 22.0, 2, ns("2025-11-03T23:00:00"), ns("2025-11-03T23:01:00"))
    ind = SessionVWAP(source="ohlc4")
    assert ind.handle_bar(b1) == (10.0 + 12.0 + 8.0 + 11.0) / 4
    assert ind.handle_bar(b2) == (20.0 + 24.0 + 16.0 + 22.0) / 4
    vec = session_vwap([12.0, 24.0], [8.0, 16.0], [11.0, 22.0], [2, 2], [b1.ts_open_ns, b2.ts_open_ns],
                       source="ohlc4", opens=[10.0, 20.0])  # fmt: skip
    np.testing.assert_array_equal(vec, [10.25, 20.5])
    with pytest.raises(ConfigError, match="needs the bar's open"):
        ind.update_bar(1.0, 1.0, 1.0, 1, b2.ts_open_ns)
    with pytest.raises(ConfigError, match="needs the opens"):
        session_vwap([1.0], [1.0], [1.0], [1], [0], source="open")


def test_custom_session_start_and_zone() -> None:
    # Sessions at 18:00 New York (FirstRateData's day): 23:00 UTC in EST.
    lo, hi = session_bounds(ns("2023-11-20T22:59:00"), "America/New_York", time(18, 0))
    assert (lo, hi) == (ns("2023-11-19T23:00:00"), ns("2023-11-20T23:00:00"))


def test_bad_input_raises_and_leaves_state_unchanged() -> None:
    ind = SessionVWAP()
    ind.update_bar(11.0, 9.0, 10.0, 5, ns("2025-11-03T15:00:00"))
    before = (ind.value, ind.count, ind.session_volume)
    with pytest.raises(DataError, match="earlier than the previous"):
        ind.update_bar(11.0, 9.0, 10.0, 5, ns("2025-11-03T14:59:00"))
    with pytest.raises(DataError, match="volume"):
        ind.update_bar(11.0, 9.0, 10.0, -1, ns("2025-11-03T15:01:00"))
    with pytest.raises(DataError, match="not a finite number"):
        ind.update_bar(math.nan, 9.0, 10.0, 1, ns("2025-11-03T15:01:00"))
    assert (ind.value, ind.count, ind.session_volume) == before
    with pytest.raises(ConfigError, match="time zone"):
        SessionVWAP(tz="Mars/Olympus")
    with pytest.raises(ConfigError):
        SessionVWAP(source="vwap")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="not sorted"):
        session_ids([ns("2025-11-03T15:00:00"), ns("2025-11-03T14:00:00")])
    with pytest.raises(DataError, match="negative"):
        session_vwap([1.0], [1.0], [1.0], [-1], [0])
