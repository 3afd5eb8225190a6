"""mean_reversion: Bollinger/RSI fades toward the session VWAP with an ATR stop, checked against TA-Lib and numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import talib

from propdesk.core.errors import ConfigError
from propdesk.model.data import NS_PER_MINUTE, Bar
from propdesk.model.enums import Side
from propdesk.model.positions import PositionCause
from propdesk.strategies.mean_reversion import MeanReversion
from tests.stubs.context import StubContext
from tests.unit.strategies import ct_ns, make_bar

TAG = "mean_reversion"


def series(direction: int) -> list[Bar]:
    """40 quiet bars around 6600 (09:00 CT on), then a run of 8 bars away from it (``direction`` +1 up, -1 down)."""
    start = ct_ns(2025, 10, 14, 9, 0)
    closes = [6600.0 + (0.25 if i % 2 else -0.25) for i in range(40)]
    closes += [6600.0 + direction * x for x in (1.0, 2.5, 4.0, 6.0, 8.5, 11.0, 13.0, 15.5)]
    bars = []
    prev = 6600.0
    for i, c in enumerate(closes):
        bars.append(make_bar(start + i * NS_PER_MINUTE, prev, max(prev, c) + 0.25, min(prev, c) - 0.25, c, 50 + i))
        prev = c
    return bars


def reference_signals(
    bars: list[Bar], overbought: float = 70, oversold: float = 30
) -> list[tuple[int, Side, int, int]]:
    """(bar index, side, stop ticks, VWAP target ticks) where the rules fire, from TA-Lib and a numpy VWAP."""
    h = np.array([b.high for b in bars])
    lo = np.array([b.low for b in bars])
    c = np.array([b.close for b in bars])
    v = np.array([b.volume for b in bars], dtype=float)
    upper, _, lower = talib.BBANDS(c, 20, 2.0, 2.0, talib.MA_Type.SMA)
    rsi = talib.RSI(c, 14)
    atr = talib.ATR(h, lo, c, 14)
    vwap = np.cumsum((h + lo + c) / 3 * v) / np.cumsum(v)  # one session: all bars are 09:00-09:48 CT
    out = []
    for i in range(len(bars)):
        if any(math.isnan(x) for x in (upper[i], rsi[i], atr[i])):
            continue
        stop = math.ceil(round(2.0 * atr[i] / 0.25, 6))
        target = math.floor(round(abs(c[i] - vwap[i]) / 0.25, 6))
        if c[i] > upper[i] and rsi[i] >= overbought and vwap[i] < c[i]:
            out.append((i, Side.SELL, stop, target))
        elif c[i] < lower[i] and rsi[i] <= oversold and vwap[i] > c[i]:
            out.append((i, Side.BUY, stop, target))
    return out


def run(bars: list[Bar], ctx: StubContext, **params: str) -> MeanReversion:
    strat = ctx.attach(MeanReversion.from_params({"symbol": "ESZ5", **params}))
    assert isinstance(strat, MeanReversion)
    for bar in bars:
        ctx.now = bar.ts_close_ns
        strat.handle_bar(bar)
    return strat


@pytest.mark.parametrize(("direction", "side"), [(1, Side.SELL), (-1, Side.BUY)])
def test_fade_entry_matches_the_reference_rules(direction: int, side: Side) -> None:
    bars = series(direction)
    ref = [r for r in reference_signals(bars) if r[3] >= 4]
    assert ref, "the run must trigger the rules"
    i, ref_side, stop, target = ref[0]
    assert ref_side is side
    ctx = StubContext()
    run(bars, ctx)
    (entry,) = ctx.actions  # the entry stays pending: no second order while it is open
    assert entry.kind == "bracket"
    assert (entry.side, entry.qty, entry.stop_loss_ticks, entry.take_profit_ticks) == (side, 1, stop, target)
    assert entry.ts_ns == bars[i].ts_close_ns
    assert entry.entry_price is None  # market entry


def test_target_in_ticks_and_atr_multiple() -> None:
    bars = series(1)
    ctx = StubContext()
    run(bars, ctx, target="ticks", take_profit_ticks="10", atr_stop_mult="1.5")
    i = reference_signals(bars)[0][0]
    h = np.array([b.high for b in bars])
    lo = np.array([b.low for b in bars])
    c = np.array([b.close for b in bars])
    atr = talib.ATR(h, lo, c, 14)
    (entry,) = ctx.actions
    assert entry.ts_ns == bars[i].ts_close_ns
    assert (entry.stop_loss_ticks, entry.take_profit_ticks) == (math.ceil(round(1.5 * atr[i] / 0.25, 6)), 10)


def test_no_entry_when_in_position_or_target_too_near() -> None:
    bars = series(1)
    ctx = StubContext()
    ctx.set_position("ESZ5", TAG, -1)
    run(bars, ctx)
    assert ctx.actions == []
    ctx2 = StubContext()
    run(bars, ctx2, min_target_ticks="1000")
    assert ctx2.actions == []


def test_a_new_entry_after_the_first_is_done_and_flat() -> None:
    bars = series(1)
    signals = reference_signals(bars)
    assert len(signals) >= 2
    ctx = StubContext()
    strat = ctx.attach(MeanReversion.from_params({"symbol": "ESZ5"}))
    first, second = signals[0][0], signals[1][0]
    for k, bar in enumerate(bars):
        if k == first + 1:
            order = ctx.actions[0].order
            assert order is not None
            ctx.fill(order, str(bar.open))
            ctx.set_position("ESZ5", TAG, 0)  # its take-profit filled
        ctx.now = bar.ts_close_ns
        strat.handle_bar(bar)
    assert [a.ts_ns for a in ctx.of_kind("bracket")][:2] == [bars[first].ts_close_ns, bars[second].ts_close_ns]


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"bb_period": "1"}, "bb_period"),
        ({"bb_std": "0"}, "bb_std"),
        ({"bb_std": "nan"}, "bb_std"),
        ({"rsi_overbought": "101"}, "rsi_overbought"),
        ({"rsi_oversold": "80"}, "rsi_oversold"),
        ({"atr_stop_mult": "-1"}, "atr_stop_mult"),
        ({"target": "middle"}, "target"),
        ({"min_target_ticks": "0"}, "min_target_ticks"),
    ],
)
def test_bad_parameters_raise_config_error_naming_them(params: dict[str, str], name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        MeanReversion.from_params(params)


def test_enters_again_after_a_risk_flatten_of_its_position() -> None:
    """The risk engine closes its short at the flat time (a fill tagged ``risk:R11``): its next signal enters."""
    bars = series(1)
    signals = reference_signals(bars)
    first, second = signals[0][0], signals[1][0]
    ctx = StubContext()
    strat = ctx.attach(MeanReversion.from_params({"symbol": "ESZ5"}))
    for k, bar in enumerate(bars):
        if k == first + 1:
            order = ctx.actions[0].order
            assert order is not None
            ctx.fill(order, str(bar.open))
            assert strat.position == -1
            change = ctx.outside_fill("ESZ5", TAG, 1, str(bar.open))  # the flatten
            assert change.cause.outside and strat.position == 0
        ctx.now = bar.ts_close_ns
        strat.handle_bar(bar)
    assert [a.ts_ns for a in ctx.of_kind("bracket")][:2] == [bars[first].ts_close_ns, bars[second].ts_close_ns]


def test_an_outside_flatten_cancels_an_entry_still_working() -> None:
    bars = series(1)
    first = reference_signals(bars)[0][0]
    ctx = StubContext()
    strat = run(bars[: first + 1], ctx)
    entry = ctx.actions[0].order
    assert entry is not None and entry.is_open
    ctx.set_position("ESZ5", TAG, -1)  # say a part of it filled at the broker while we were disconnected
    ctx.outside_fill("ESZ5", TAG, 1, "6600", PositionCause.MANUAL, "manual")
    assert not entry.is_open and ctx.of_kind("cancel")[0].order is entry
    assert strat.position == 0
