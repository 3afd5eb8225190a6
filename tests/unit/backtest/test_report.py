"""Tests for the HTML backtest report (propdesk.backtest.report) and its summary rows."""

from __future__ import annotations

import calendar
import itertools
import math
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from propdesk.backtest.cli_support import summary_rows
from propdesk.backtest.engine import BacktestConfig, BacktestResult, run_backtest
from propdesk.backtest.report import (
    FIGURE_DIV_ID,
    build_figure,
    envelope_line,
    minmax_indices,
    report_html,
    write_report,
)
from propdesk.core.errors import ConfigError
from propdesk.model.data import BarSeries, Timeframe
from propdesk.strategies.registry import build_strategy

NS = 1_000_000_000
MIN = 60 * NS
T0 = calendar.timegm((2025, 10, 6, 13, 0, 0, 0, 0, 0)) * NS  # Monday 08:00 CDT


def synthetic_bars(n: int) -> BarSeries:
    """1-minute ESZ5 bars on the 0.25 tick: a wave with a slow drift, every bar opening at the previous close."""
    i = np.arange(n)
    close = 6500.0 + np.round((12 * np.sin(i / 9.0) + 5 * np.sin(i / 97.0) + i * 0.01) * 4) / 4
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) + 0.25
    low = np.minimum(open_, close) - 0.25
    ts = T0 + i * MIN
    return BarSeries(
        "ESZ5", Timeframe.parse("1m"), ts, ts + MIN, open_, high, low, close, np.full(n, 100, dtype=np.int64)
    )


def backtest(n: int, **params: str) -> BacktestResult:
    strat = build_strategy("sma_cross", {"fast": "3", "slow": "8", **params})
    return run_backtest(synthetic_bars(n), strat, BacktestConfig(starting_balance_usd=Decimal(50000)))


@pytest.fixture(scope="module")
def long_run() -> BacktestResult:
    return backtest(4000)


def traces(fig: Any) -> dict[str, Any]:
    return {t.name: t for t in fig.data}


def ns_of(xs: Any) -> list[int]:
    return np.asarray(xs).astype("datetime64[ns]").astype(np.int64).tolist()


# --- downsampling ----------------------------------------------------------------------------------------------


def test_minmax_indices_short_series_keeps_everything() -> None:
    assert minmax_indices([3.0, 1.0, 2.0], 10).tolist() == [0, 1, 2]


def test_minmax_indices_keeps_extremes_of_every_bucket() -> None:
    rng = np.random.default_rng(7)
    y = np.cumsum(rng.normal(size=20_001))
    idx = minmax_indices(y, 1000)
    assert len(idx) <= 1000
    assert np.all(np.diff(idx) > 0)
    assert idx[0] == 0 and idx[-1] == len(y) - 1
    assert int(np.argmax(y)) in idx and int(np.argmin(y)) in idx
    # every one of the 499 buckets contributes its own min and max
    edges = np.linspace(0, len(y), 499 + 1).astype(int)
    for a, b in itertools.pairwise(edges.tolist()):
        assert a + int(np.argmax(y[a:b])) in idx and a + int(np.argmin(y[a:b])) in idx
    with pytest.raises(ConfigError):
        minmax_indices(y, 3)


def test_envelope_line_keeps_highest_high_and_lowest_low() -> None:
    bars = synthetic_bars(9_999)
    idx, px = envelope_line(bars.high, bars.low, 600)
    assert len(idx) == len(px) <= 600
    assert np.all(np.diff(idx) >= 0)
    assert px.max() == bars.high.max() and px.min() == bars.low.min()
    # each point is a real high or low of the bar it names
    assert all(p in (bars.high[i], bars.low[i]) for i, p in zip(idx.tolist(), px.tolist(), strict=True))


def test_envelope_line_of_few_bars_has_every_high_and_low() -> None:
    bars = synthetic_bars(5)
    idx, px = envelope_line(bars.high, bars.low, 100)
    assert sorted(idx.tolist()) == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert sorted(px.tolist()) == sorted([*bars.high.tolist(), *bars.low.tolist()])


# --- the figure ------------------------------------------------------------------------------------------------


def test_figure_downsamples_the_price_but_marks_every_trade(long_run: BacktestResult) -> None:
    res = long_run
    assert res.metrics.trades > 50  # the fixture really trades
    fig = build_figure(res, max_points=400, candles_max=100)
    tr = traces(fig)
    assert tr["price"].type == "scatter" and len(tr["price"].y) <= 400
    assert max(tr["price"].y) == res.bars.high.max() and min(tr["price"].y) == res.bars.low.min()
    longs = [t for t in res.trips if t.direction > 0]
    shorts = [t for t in res.trips if t.direction < 0]
    assert ns_of(tr["entry long"].x) == [t.entry_ts_ns for t in longs]
    assert list(tr["entry long"].y) == [float(t.entry_price) for t in longs]
    assert len(tr["entry short"].x) == len(shorts)
    assert ns_of(tr["exit"].x) == [t.exit_ts_ns for t in res.trips]
    assert list(tr["exit"].y) == [float(t.exit_price) for t in res.trips]
    n_win = sum(t.net_pnl.cents > 0 for t in res.trips)
    assert sum(c == "#1a9850" for c in tr["exit"].marker.color) == n_win


def test_figure_equity_drawdown_and_daily_pnl_agree_with_the_metrics(long_run: BacktestResult) -> None:
    res = long_run
    tr = traces(build_figure(res, max_points=400, candles_max=100))
    eq = np.asarray(res.equity.equity_cents) / 100.0
    assert len(tr["equity"].y) <= 400
    assert max(tr["equity"].y) == eq.max() and min(tr["equity"].y) == eq.min()
    assert tr["equity"].y[-1] == eq[-1]
    # the deepest drawdown drawn is the metric's maximum drawdown
    assert -min(tr["drawdown"].y) == float(res.metrics.max_drawdown.as_decimal())
    assert max(tr["drawdown"].y) <= 0
    daily = list(tr["daily PnL"].y)
    assert len(daily) == len(res.metrics.daily_pnl) >= 2  # 4000 minutes span three CME trading days
    assert math.isclose(sum(daily), (res.equity.equity_cents[-1] - res.starting_balance.cents) / 100.0)
    assert list(tr["daily PnL"].customdata) == ["2025-10-06", "2025-10-07", "2025-10-08", "2025-10-09"][: len(daily)]


def test_short_run_draws_candles() -> None:
    res = backtest(300)
    tr = traces(build_figure(res, candles_max=500))
    assert tr["price"].type == "candlestick"
    assert len(tr["price"].open) == 300
    assert list(tr["price"].close) == res.bars.close.tolist()


def test_open_position_is_marked() -> None:
    full = backtest(600)
    first = full.trips[0]
    # stop the data two bars after the first entry: the position is still open
    n = int(np.searchsorted(full.bars.ts_open_ns, first.entry_ts_ns)) + 2
    res = backtest(n)
    assert res.open_qty == 1 and res.metrics.trades == 0
    tr = traces(build_figure(res))
    assert ns_of(tr["open entry"].x) == [first.entry_ts_ns]
    assert list(tr["open entry"].y) == [float(first.entry_price)]
    rows = dict(summary_rows(res))
    assert rows["open position (contracts)"] == "+1"
    assert rows["trades (closed round trips)"] == "0"
    assert rows["unrealized PnL (not in net)"] == f"{res.unrealized.as_decimal():,} USD"


# --- the HTML file ---------------------------------------------------------------------------------------------


def test_write_report_inline_is_self_contained(long_run: BacktestResult, tmp_path: Path) -> None:
    out = write_report(long_run, tmp_path / "deep" / "report.html")
    assert out == tmp_path / "deep" / "report.html"
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert f'id="{FIGURE_DIV_ID}"' in text and "plotly-graph-div" in text
    # plotly.js is inside the file (no external script) so it displays offline
    assert re.search(r"<script[^>]*\bsrc=", text) is None
    assert "plotly.js v" in text and len(text) > 1_000_000
    assert 'id="propdesk-summary"' in text
    assert f"{long_run.metrics.net_pnl.as_decimal():,} USD" in text
    assert f"{long_run.metrics.trades:,}" in text


def test_report_cdn_is_small_and_names_the_cdn(long_run: BacktestResult) -> None:
    text = report_html(long_run, plotly_js="cdn")
    assert re.search(r'<script[^>]*\bsrc="https://cdn\.plot\.ly/plotly-[0-9.]+\.min\.js"', text)
    assert len(text) < 1_000_000
    with pytest.raises(ConfigError, match="plotly_js"):
        report_html(long_run, plotly_js="offline")  # type: ignore[arg-type]


def test_summary_rows_are_exact(long_run: BacktestResult) -> None:
    rows = dict(summary_rows(long_run))
    m = long_run.metrics
    assert rows["contract"] == "ESZ5"
    assert rows["strategy"].startswith("sma_cross") and "fast=3" in rows["strategy"] and "slow=8" in rows["strategy"]
    assert rows["bars"] == "4,000"
    assert rows["net PnL"] == f"{m.net_pnl.as_decimal():,} USD"
    assert rows["max drawdown"] == f"{m.max_drawdown.as_decimal():,} USD"
    assert rows["wins / losses"] == f"{m.wins} / {m.losses}"
    assert rows["period (UTC)"] == "2025-10-06T13:00:00Z to 2025-10-09T07:40:00Z"
