"""Issue 3's reference check: ``sma_cross`` fast=10 slow=30, one ES contract ($50 a point), next-open fills, no
costs, on the ES 1-minute file, gives exactly the same trades (entry and exit times and prices) and net PnL as
backtrader run on the same bars in the same test."""

from __future__ import annotations

from decimal import Decimal

import pytest

from benchmarks.peers.backtrader_sma import run_backtrader_sma
from propdesk.backtest.engine import BacktestConfig, run_backtest
from propdesk.brokers.sim.config import SimConfig
from propdesk.data.loaders import load_bars
from propdesk.model.data import BarSeries
from propdesk.strategies.registry import build_strategy
from tests.conftest import ES_1MIN, NQ_1MIN, resolve_shared


@pytest.fixture(scope="module")
def es_bars() -> BarSeries:
    return load_bars(resolve_shared(ES_1MIN), symbol="ESZ5")


def _compare(bars: BarSeries, fast: int, slow: int) -> int:
    strategy = build_strategy("sma_cross", {"fast": str(fast), "slow": str(slow)})
    # backtrader has no exchange calendar: it trades every bar, closed-period bars included (Labor Day afternoon,
    # the Friday 16:00 CT bars), so propdesk's closed-period check is off for a like-for-like comparison
    config = BacktestConfig(
        sim=SimConfig(fill_model="next-open", slippage_ticks=0, commission_per_side_usd=0, calendar_check="off")
    )
    ours = run_backtest(bars, strategy, config)
    spec_point_value = 50 if bars.symbol.startswith("ES") else 20
    peer = run_backtrader_sma(bars, fast=fast, slow=slow, point_value=spec_point_value)
    assert len(ours.trips) == len(peer.trades) > 0
    for mine, theirs in zip(ours.trips, peer.trades, strict=True):
        assert mine.entry_ts_ns == theirs.entry_ts_ns
        assert mine.exit_ts_ns == theirs.exit_ts_ns
        assert mine.entry_price.as_decimal() == theirs.entry_price
        assert mine.exit_price.as_decimal() == theirs.exit_price
        assert mine.direction * mine.qty == theirs.qty
    assert ours.metrics.net_pnl.as_decimal() == peer.net_pnl_usd.quantize(Decimal("0.01"))
    assert ours.metrics.fees.cents == 0
    return len(ours.trips)


@pytest.mark.slow
def test_sma_cross_matches_backtrader_on_es(es_bars: BarSeries) -> None:
    assert _compare(es_bars, 10, 30) == 1492


@pytest.mark.slow
def test_sma_cross_matches_backtrader_on_nq_other_periods() -> None:
    bars = load_bars(resolve_shared(NQ_1MIN), symbol="NQZ3")
    assert _compare(bars, 5, 20) > 100
