"""trend_following: EMA-cross and Donchian entries, the ATR trailing stop's placement and ratchet, reversals."""

from __future__ import annotations

import math

import numpy as np
import pytest
import talib

from propdesk.core.errors import ConfigError
from propdesk.model.data import Bar
from propdesk.model.enums import Side
from propdesk.model.price import Price
from propdesk.strategies.trend_following import TrendFollowing
from tests.stubs.context import StubContext
from tests.unit.strategies import closes_to_bars

TAG = "trend_following"
TICK = 0.25
PARAMS = {"symbol": "ESZ5", "fast": "2", "slow": "4", "atr_period": "3", "atr_mult": "2"}


def arrays(bars: list[Bar]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (np.array([b.high for b in bars]), np.array([b.low for b in bars]), np.array([b.close for b in bars]))


def ema_signals(bars: list[Bar], fast: int = 2, slow: int = 4, atr_period: int = 3) -> list[tuple[int, int]]:
    """(bar index, +1/-1) where sign(EMA fast - EMA slow) changes (TA-Lib), with the ATR defined."""
    h, lo, c = arrays(bars)
    f, s, atr = talib.EMA(c, fast), talib.EMA(c, slow), talib.ATR(h, lo, c, atr_period)
    out, trend = [], 0
    for i in range(len(c)):
        if math.isnan(s[i]):
            continue
        new = 1 if f[i] > s[i] else (-1 if f[i] < s[i] else trend)
        if trend != 0 and new != trend and not math.isnan(atr[i]):
            out.append((i, new))
        trend = new
    return out


def long_stop(anchor: float, atr: float, mult: float = 2.0) -> Price:
    return Price.of(math.floor(round((anchor - mult * atr) / TICK, 6)) * TICK)


def short_stop(anchor: float, atr: float, mult: float = 2.0) -> Price:
    return Price.of(math.ceil(round((anchor + mult * atr) / TICK, 6)) * TICK)


def make(ctx: StubContext, **params: str) -> TrendFollowing:
    strat = ctx.attach(TrendFollowing.from_params({**PARAMS, **params}))
    assert isinstance(strat, TrendFollowing)
    return strat


DOWN_UP = [6600.0 - 0.5 * i for i in range(10)] + [6595.5 + 1.0 * i for i in range(1, 12)]


def test_ema_entry_stop_placement_and_ratchet() -> None:
    bars = closes_to_bars(DOWN_UP)
    h, lo, c = arrays(bars)
    atr = talib.ATR(h, lo, c, 3)
    signals = ema_signals(bars)
    assert signals[0][1] == 1
    i = signals[0][0]
    ctx = StubContext()
    strat = make(ctx)
    for k, bar in enumerate(bars[: i + 1]):
        ctx.now = bar.ts_close_ns
        strat.handle_bar(bar)
        if k < i:
            assert ctx.actions == []
    (entry,) = ctx.actions
    assert (entry.kind, entry.side, entry.qty, entry.ts_ns) == ("market", Side.BUY, 1, bars[i].ts_close_ns)
    assert entry.order is not None
    fill = bars[i + 1].open
    ctx.fill(entry.order, str(fill))  # next-open fill: the stop goes in at once, from the fill and ATR[i]
    (stop,) = ctx.of_kind("stop")
    assert (stop.side, stop.qty, stop.price) == (Side.SELL, 1, long_stop(fill, atr[i]))
    # Rising bars ratchet the stop up from the highest high; it never moves down.
    expected = stop.price
    assert expected is not None
    extreme = fill
    for k in range(i + 1, len(bars)):
        ctx.now = bars[k].ts_close_ns
        strat.handle_bar(bars[k])
        extreme = max(extreme, h[k])
        candidate = long_stop(extreme, atr[k])
        if candidate > expected:
            expected = candidate
        assert strat.stop_price == expected
    modifies = ctx.of_kind("modify")
    assert len(modifies) >= 3
    raws = [m.price.raw for m in modifies if m.price is not None]
    assert len(raws) == len(modifies)
    assert raws == sorted(raws)
    assert stop.order is not None and stop.order.stop_price == expected  # the order itself was modified


def test_the_stop_never_loosens_and_its_fill_clears_the_state() -> None:
    bars = closes_to_bars(DOWN_UP)
    i = ema_signals(bars)[0][0]
    ctx = StubContext()
    strat = make(ctx)
    for bar in bars[: i + 1]:
        strat.handle_bar(bar)
    entry = ctx.actions[0].order
    assert entry is not None
    ctx.fill(entry, str(bars[i + 1].open))
    for bar in bars[i + 1 :]:
        strat.handle_bar(bar)
    before = strat.stop_price
    n_modify = len(ctx.of_kind("modify"))
    # a quiet, lower bar with a wide range (bigger ATR): the candidate is lower; nothing is sent
    last = bars[-1]
    wide = Bar(
        last.symbol,
        last.timeframe,
        last.close,
        last.close,
        last.close - 6.0,
        last.close - 1.0,
        10,
        last.ts_close_ns,
        last.ts_close_ns + 60_000_000_000,
    )
    strat.handle_bar(wide)
    assert strat.stop_price == before
    assert len(ctx.of_kind("modify")) == n_modify
    stop = ctx.of_kind("stop")[0].order
    assert stop is not None
    ctx.fill(stop, str(before))
    assert ctx.position_qty("ESZ5", TAG) == 0
    assert (strat.stop_order, strat.stop_price, strat.direction) == (None, None, 0)
    assert ctx.of_kind("cancel") == []


def test_reversal_is_one_order_and_the_new_stop_is_on_the_other_side() -> None:
    wave = DOWN_UP + [6605.5 - 1.5 * i for i in range(1, 8)]
    bars = closes_to_bars(wave)
    h, lo, c = arrays(bars)
    atr = talib.ATR(h, lo, c, 3)
    signals = ema_signals(bars)
    (up, d1), (down, d2) = signals[:2]
    assert (d1, d2) == (1, -1)
    ctx = StubContext()
    strat = make(ctx)
    for k, bar in enumerate(bars[: down + 1]):
        for a in ctx.of_kind("market"):
            if a.order is not None and a.order.is_open:
                ctx.fill(a.order, str(bar.open))
        ctx.now = bar.ts_close_ns
        strat.handle_bar(bar)
        if k == up + 1:
            assert ctx.position_qty("ESZ5", TAG) == 1
    (old_stop,) = ctx.of_kind("stop")
    assert old_stop.order is not None and old_stop.order.status.value == "canceled"
    assert [a.kind for a in ctx.actions][-2:] == ["cancel", "market"]
    rev = ctx.actions[-1]
    assert (rev.side, rev.qty, rev.ts_ns) == (Side.SELL, 2, bars[down].ts_close_ns)
    assert rev.order is not None
    fill = bars[down + 1].open
    ctx.fill(rev.order, str(fill))
    assert ctx.position_qty("ESZ5", TAG) == -1
    new_stop = ctx.of_kind("stop")[-1]
    assert (new_stop.side, new_stop.qty, new_stop.price) == (Side.BUY, 1, short_stop(fill, atr[down]))
    assert strat.direction == -1


def test_long_only_down_signal_closes_the_long_and_never_shorts() -> None:
    up_down = [6600.0 + 0.5 * i for i in range(10)] + [6604.5 - 1.0 * i for i in range(1, 8)]
    bars = closes_to_bars(up_down)
    down = next(k for k, d in ema_signals(bars) if d == -1)
    ctx = StubContext()
    strat = make(ctx, allow_short="false")
    for bar in bars:
        strat.handle_bar(bar)
    assert ctx.actions == []  # flat: a down signal does nothing
    ctx2 = StubContext()
    strat2 = make(ctx2, allow_short="false")
    for k, bar in enumerate(bars):
        if k == down:
            ctx2.set_position("ESZ5", TAG, 1)
        ctx2.now = bar.ts_close_ns
        strat2.handle_bar(bar)
    assert [(a.kind, a.ts_ns) for a in ctx2.actions] == [("close", bars[down].ts_close_ns)]


def test_donchian_breakouts_both_ways() -> None:
    period = 5
    closes = [6600.0, 6601.0, 6599.0, 6600.5, 6600.0, 6600.25, 6599.75, 6603.0, 6602.0, 6590.0]
    bars = closes_to_bars(closes)
    h, lo, c = arrays(bars)
    atr = talib.ATR(h, lo, c, 3)
    expected = []
    for k in range(period, len(bars)):
        if math.isnan(atr[k]):
            continue
        if c[k] > h[k - period : k].max():
            expected.append((k, Side.BUY))
        elif c[k] < lo[k - period : k].min():
            expected.append((k, Side.SELL))
    assert [s for _, s in expected] == [Side.BUY, Side.SELL]
    ctx = StubContext()
    strat = make(ctx, entry="donchian", donchian_period=str(period))
    entries: list[tuple[int, Side]] = []
    for k, bar in enumerate(bars):
        for a in ctx.of_kind("market"):
            if a.order is not None and a.order.is_open:
                ctx.fill(a.order, str(bar.open))
        n = len(ctx.actions)
        strat.handle_bar(bar)
        entries += [(k, a.side) for a in ctx.actions[n:] if a.kind == "market" and a.side is not None]
    assert entries == expected
    assert [a.qty for a in ctx.of_kind("market")] == [1, 2]  # the short reverses the long


def test_no_second_entry_while_the_first_is_pending() -> None:
    wave = DOWN_UP + [6605.5 - 1.5 * i for i in range(1, 8)] + [6595.0 + 1.5 * i for i in range(1, 8)]
    bars = closes_to_bars(wave)
    assert len(ema_signals(bars)) >= 3
    ctx = StubContext()
    strat = make(ctx)
    for bar in bars:
        strat.handle_bar(bar)
    assert len(ctx.of_kind("market")) == 1


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"entry": "macd"}, "entry"),
        ({"fast": "50", "slow": "20"}, "slow"),
        ({"atr_mult": "0"}, "atr_mult"),
        ({"donchian_period": "0"}, "donchian_period"),
        ({"allow_short": "maybe"}, "allow_short"),
        ({"unknown": "1"}, "unknown"),
    ],
)
def test_bad_parameters_raise_config_error_naming_them(params: dict[str, str], name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        TrendFollowing.from_params(params)
