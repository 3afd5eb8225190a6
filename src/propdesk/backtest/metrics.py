"""Backtest performance metrics from closed round trips and the mark-to-market equity curve.

Definitions (stated so the figures can be checked by hand):

* ``win_rate``: winning round trips (net PnL > 0) / all round trips; ``None`` without trades.
* ``profit_factor``: sum of net PnL of winners / |sum of net PnL of losers|; ``None`` when there is no loser.
* ``max_drawdown_usd``: the largest fall of account equity (balance + unrealized PnL, marked at every bar close)
  from a previous peak, in USD, reported as a positive amount.
* ``sharpe``: mean / standard deviation (sample, ddof=1) of daily returns, times sqrt(252); a day is a CME trading
  day (the equity at each 17:00 America/Chicago session boundary); ``None`` with fewer than two days or zero
  variance. Returns are relative to the previous day's equity.

Money stays exact (integer cents) up to the ratios, which are floats.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from propdesk.execution.round_trips import RoundTrip
from propdesk.model.price import Money


@dataclass(frozen=True, slots=True)
class EquityCurve:
    """Account equity (cents) after each change, with the UTC ns time and the CME trading day (ordinal) of each.

    ``trading_day`` is any integer that increases with the trading day (e.g. ``date.toordinal()``).
    """

    ts_ns: Sequence[int]
    equity_cents: Sequence[int]
    trading_day: Sequence[int]


@dataclass(frozen=True, slots=True, kw_only=True)
class Metrics:
    """The headline figures of a backtest (see the module docstring for definitions)."""

    trades: int
    wins: int
    losses: int
    win_rate: float | None
    gross_pnl: Money
    fees: Money
    net_pnl: Money
    profit_factor: float | None
    avg_trade: Money | None
    largest_win: Money | None
    largest_loss: Money | None
    max_drawdown: Money
    sharpe: float | None
    daily_pnl: list[tuple[int, Money]]


def max_drawdown_cents(equity_cents: Sequence[int]) -> int:
    """The largest peak-to-trough fall of ``equity_cents`` (a positive number of cents; 0 if it never falls)."""
    if len(equity_cents) == 0:
        return 0
    eq = np.asarray(equity_cents, dtype=np.int64)
    peaks = np.maximum.accumulate(eq)
    return int((peaks - eq).max())


def daily_equity(curve: EquityCurve) -> list[tuple[int, int]]:
    """The last equity (cents) of each trading day, as (trading_day, equity_cents), in day order."""
    out: dict[int, int] = {}
    for day, eq in zip(curve.trading_day, curve.equity_cents, strict=True):
        out[int(day)] = int(eq)
    return sorted(out.items())


def sharpe_ratio(day_equity: Sequence[int], start_cents: int) -> float | None:
    """Annualized Sharpe ratio of daily returns (see the module docstring); ``None`` when undefined."""
    if len(day_equity) < 2:
        return None
    eq = np.asarray([start_cents, *day_equity], dtype=np.float64)
    prev = eq[:-1]
    if bool(np.any(prev <= 0)):
        return None
    rets = np.diff(eq) / prev
    sd = float(np.std(rets, ddof=1))
    if sd == 0.0 or not math.isfinite(sd):
        return None
    return float(np.mean(rets)) / sd * math.sqrt(252.0)


def compute_metrics(trips: Sequence[RoundTrip], curve: EquityCurve, start_cents: int) -> Metrics:
    """Compute :class:`Metrics` from closed round trips and the equity curve (which starts at ``start_cents``)."""
    nets = [t.net_pnl.cents for t in trips]
    wins = [n for n in nets if n > 0]
    losses = [n for n in nets if n < 0]
    gross = sum(t.gross_pnl.cents for t in trips)
    fees = sum(t.fees.cents for t in trips)
    days = daily_equity(curve)
    daily_pnl: list[tuple[int, Money]] = []
    prev = start_cents
    for day, eq in days:
        daily_pnl.append((day, Money(eq - prev)))
        prev = eq
    return Metrics(
        trades=len(trips),
        wins=len(wins),
        losses=len(losses),
        win_rate=len(wins) / len(trips) if trips else None,
        gross_pnl=Money(gross),
        fees=Money(fees),
        net_pnl=Money(gross - fees),
        profit_factor=(sum(wins) / -sum(losses)) if losses else None,
        avg_trade=Money(round((gross - fees) / len(trips))) if trips else None,
        largest_win=Money(max(wins)) if wins else None,
        largest_loss=Money(min(losses)) if losses else None,
        max_drawdown=Money(max_drawdown_cents([start_cents, *curve.equity_cents])),
        sharpe=sharpe_ratio([eq for _, eq in days], start_cents),
        daily_pnl=daily_pnl,
    )
