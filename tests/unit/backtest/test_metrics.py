"""Tests for the backtest metrics (propdesk.backtest.metrics) over round trips."""

from __future__ import annotations

import math

import pytest

from propdesk.backtest.metrics import EquityCurve, compute_metrics, max_drawdown_cents, sharpe_ratio
from propdesk.execution.round_trips import round_trips
from propdesk.model.enums import Side
from propdesk.model.price import Money
from tests.kit.fills import fill
from tests.kit.fills import spec_of as _spec_of


def test_metrics_definitions() -> None:
    trips = round_trips(
        [
            fill(Side.BUY, 1, "6500", 1),
            fill(Side.SELL, 1, "6504", 2),  # +200
            fill(Side.BUY, 1, "6500", 3),
            fill(Side.SELL, 1, "6498", 4),  # -100
            fill(Side.BUY, 1, "6500", 5),
            fill(Side.SELL, 1, "6501", 6),  # +50
        ],
        _spec_of,
    )
    curve = EquityCurve([1, 2, 3, 4], [5_000_000, 5_020_000, 5_010_000, 5_015_000], [1, 1, 2, 3])
    m = compute_metrics(trips, curve, 5_000_000)
    assert m.trades == 3 and m.wins == 2 and m.losses == 1
    assert m.win_rate == pytest.approx(2 / 3)
    assert m.profit_factor == pytest.approx(2.5)
    assert m.net_pnl == Money.of("150.00") and m.avg_trade == Money.of("50.00")
    assert m.max_drawdown == Money.of("100.00")
    assert [p for _, p in m.daily_pnl] == [Money.of("200"), Money.of("-100"), Money.of("50")]
    assert m.sharpe is not None and math.isfinite(m.sharpe)


def test_drawdown_and_sharpe_edge_cases() -> None:
    assert max_drawdown_cents([]) == 0
    assert max_drawdown_cents([1, 2, 3]) == 0
    assert max_drawdown_cents([5, 1, 9, 2, 10]) == 7
    assert sharpe_ratio([100], 100) is None
    assert sharpe_ratio([110, 121], 100) is None  # constant 10% returns: zero variance
    empty = compute_metrics([], EquityCurve([], [], []), 100)
    assert empty.win_rate is None and empty.profit_factor is None and empty.trades == 0
