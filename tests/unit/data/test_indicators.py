"""Indicators against TA-Lib on real bars (ES 1-min, 75,791 bars; NQ 1-min, 14,714 bars), plus the protocol.

Tolerance ("equal to 1e-9"): |ours - TA-Lib| <= 1e-9 * max(1, |TA-Lib|), i.e. absolute 1e-9 for values up to 1
and relative 1e-9 above (prices are ~6,500 ES / ~16,000 NQ points). It is checked at every index from TA-Lib's
lookback on; before it both sides must be NaN. The incremental classes are fed bar by bar from the first bar.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import numpy as np
import numpy.typing as npt
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st
from talib import MA_Type, abstract  # type: ignore[attr-defined]

from propdesk.core.errors import ConfigError, DataError
from propdesk.data.indicators import (
    ADX,
    ATR,
    EMA,
    MACD,
    RSI,
    SMA,
    WMA,
    BarIndicator,
    Bollinger,
    Donchian,
    Indicator,
    Keltner,
    ValueIndicator,
    adx,
    atr,
    bar_price,
    bollinger,
    donchian,
    ema,
    keltner,
    macd,
    rsi,
    sma,
    true_range,
    wma,
)
from propdesk.data.loaders import load_bars_csv, load_firstrate_csv
from propdesk.model.data import Bar, BarSeries, Timeframe
from tests.conftest import ES_1MIN, NQ_1MIN, resolve_shared

TOL = 1e-9
F64 = npt.NDArray[np.float64]


@pytest.fixture(scope="module", params=["ES", "NQ"])
def bars(request: pytest.FixtureRequest) -> BarSeries:
    if request.param == "ES":
        return load_bars_csv(resolve_shared(ES_1MIN), symbol="ESZ5", tz="America/New_York", clock_offset="5h")
    return load_firstrate_csv(resolve_shared(NQ_1MIN), symbol="NQZ3")


def assert_talib_equal(ours: F64, theirs: F64, lookback: int) -> None:
    """NaN exactly before ``lookback``, then within 1e-9 (absolute up to 1, relative above) at every index."""
    assert len(ours) == len(theirs)
    assert np.isnan(theirs[:lookback]).all() and not np.isnan(theirs[lookback:]).any(), "TA-Lib lookback moved"
    assert np.isnan(ours[:lookback]).all(), f"value before the lookback at {np.flatnonzero(~np.isnan(ours[:lookback]))}"
    a, b = ours[lookback:], theirs[lookback:]
    assert not np.isnan(a).any(), f"NaN after the lookback at {lookback + np.flatnonzero(np.isnan(a))[:5]}"
    err = np.abs(a - b) / np.maximum(1.0, np.abs(b))
    worst = int(np.argmax(err))
    assert err[worst] <= TOL, f"index {lookback + worst}: ours {a[worst]!r} vs TA-Lib {b[worst]!r}"


def run_values(ind: ValueIndicator, x: F64, *attrs: str) -> list[F64]:
    """Feed ``x`` through ``update``; collect ``value`` and the named attributes after each update."""
    out: list[list[float]] = [[] for _ in range(1 + len(attrs))]
    for v in x.tolist():
        out[0].append(ind.update(v))
        for j, name in enumerate(attrs, 1):
            out[j].append(getattr(ind, name))
    return [np.array(col) for col in out]


def run_bars(ind: BarIndicator, s: BarSeries, *attrs: str) -> list[F64]:
    """Feed ``s`` through ``update_bar``; collect ``value`` and the named attributes after each bar."""
    out: list[list[float]] = [[] for _ in range(1 + len(attrs))]
    rows = zip(s.high.tolist(), s.low.tolist(), s.close.tolist(), s.volume.tolist(), s.ts_open_ns.tolist(), strict=True)
    for h, lo, c, v, t in rows:
        out[0].append(ind.update_bar(h, lo, c, v, t))
        for j, name in enumerate(attrs, 1):
            out[j].append(getattr(ind, name))
    return [np.array(col) for col in out]


def talib_lookback(name: str, **params: float) -> int:
    return int(abstract.Function(name, **params).lookback)  # type: ignore[attr-defined]


# --- moving averages ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "vec", "ta_name"),
    [(SMA, sma, "SMA"), (EMA, ema, "EMA"), (WMA, wma, "WMA")],
    ids=["SMA", "EMA", "WMA"],
)
@pytest.mark.parametrize("period", [2, 20, 200])
def test_moving_averages_match_talib(
    bars: BarSeries, cls: type[SMA | EMA | WMA], vec: Callable[[F64, int], F64], ta_name: str, period: int
) -> None:
    close = bars.close
    expected = getattr(talib, ta_name)(close, timeperiod=period)
    lookback = talib_lookback(ta_name, timeperiod=period)
    ind = cls(period)
    assert ind.lookback == lookback
    (ours,) = run_values(ind, close)
    assert_talib_equal(ours, expected, lookback)
    assert_talib_equal(vec(close, period), ours, lookback)
    assert ind.count == len(close) and ind.ready


# --- momentum -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("period", [2, 14])
def test_rsi_matches_talib(bars: BarSeries, period: int) -> None:
    expected = talib.RSI(bars.close, timeperiod=period)
    lookback = talib_lookback("RSI", timeperiod=period)
    ind = RSI(period)
    assert ind.lookback == lookback
    (ours,) = run_values(ind, bars.close)
    assert_talib_equal(ours, expected, lookback)
    assert_talib_equal(rsi(bars.close, period), ours, lookback)


@pytest.mark.parametrize(("fast", "slow", "signal"), [(12, 26, 9), (5, 35, 5)])
def test_macd_matches_talib(bars: BarSeries, fast: int, slow: int, signal: int) -> None:
    exp_macd, exp_signal, exp_hist = talib.MACD(bars.close, fast, slow, signal)
    lookback = talib_lookback("MACD", fastperiod=fast, slowperiod=slow, signalperiod=signal)
    ind = MACD(fast, slow, signal)
    assert ind.lookback == lookback
    line, line2, sig, hist = run_values(ind, bars.close, "macd", "signal", "hist")
    assert_talib_equal(line, exp_macd, lookback)
    np.testing.assert_array_equal(line, line2)
    assert_talib_equal(sig, exp_signal, lookback)
    assert_talib_equal(hist, exp_hist, lookback)
    vec = macd(bars.close, fast, slow, signal)
    for got, want in zip(vec, (line, sig, hist), strict=True):
        assert_talib_equal(got, want, lookback)


@pytest.mark.parametrize("period", [2, 14])
def test_adx_and_directional_indicators_match_talib(bars: BarSeries, period: int) -> None:
    h, lo, c = bars.high, bars.low, bars.close
    ind = ADX(period)
    assert ind.lookback == talib_lookback("ADX", timeperiod=period)
    value, pdi, mdi, dx = run_bars(ind, bars, "plus_di", "minus_di", "dx")
    assert_talib_equal(value, talib.ADX(h, lo, c, period), ind.lookback)
    di_lookback = talib_lookback("PLUS_DI", timeperiod=period)
    assert di_lookback == talib_lookback("DX", timeperiod=period) == period
    assert_talib_equal(pdi, talib.PLUS_DI(h, lo, c, period), di_lookback)
    assert_talib_equal(mdi, talib.MINUS_DI(h, lo, c, period), di_lookback)
    assert_talib_equal(dx, talib.DX(h, lo, c, period), di_lookback)
    vec = adx(h, lo, c, period)
    assert_talib_equal(vec.adx, value, ind.lookback)
    assert_talib_equal(vec.plus_di, pdi, di_lookback)
    assert_talib_equal(vec.minus_di, mdi, di_lookback)


# --- volatility -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("period", [1, 14])
def test_atr_matches_talib(bars: BarSeries, period: int) -> None:
    h, lo, c = bars.high, bars.low, bars.close
    ind = ATR(period)
    assert ind.lookback == talib_lookback("ATR", timeperiod=period)
    value, tr = run_bars(ind, bars, "tr")
    assert_talib_equal(value, talib.ATR(h, lo, c, period), ind.lookback)
    assert_talib_equal(tr, talib.TRANGE(h, lo, c), 1)
    assert_talib_equal(true_range(h, lo, c), tr, 1)
    assert_talib_equal(atr(h, lo, c, period), value, ind.lookback)


@pytest.mark.parametrize(("period", "up", "dn"), [(20, 2.0, 2.0), (5, 1.0, 2.5)])
def test_bollinger_matches_talib(bars: BarSeries, period: int, up: float, dn: float) -> None:
    exp_u, exp_m, exp_l = talib.BBANDS(bars.close, period, up, dn, MA_Type.SMA)
    ind = Bollinger(period, up, dn)
    assert ind.lookback == talib_lookback("BBANDS", timeperiod=period)
    mid, upper, middle, lower = run_values(ind, bars.close, "upper", "middle", "lower")
    np.testing.assert_array_equal(mid, middle)
    for ours, theirs in ((upper, exp_u), (middle, exp_m), (lower, exp_l)):
        assert_talib_equal(ours, theirs, ind.lookback)
    vec = bollinger(bars.close, period, up, dn)
    for got, want in zip(vec, (upper, middle, lower), strict=True):
        assert_talib_equal(got, want, ind.lookback)


def test_keltner_is_talib_ema_plus_minus_atr(bars: BarSeries) -> None:
    h, lo, c = bars.high, bars.low, bars.close
    ind = Keltner(ema_period=20, atr_period=10, multiplier=2.0)
    mid, upper, lower = run_bars(ind, bars, "upper", "lower")
    e, a = talib.EMA(c, 20), talib.ATR(h, lo, c, 10)
    lookback = max(talib_lookback("EMA", timeperiod=20), talib_lookback("ATR", timeperiod=10))
    assert ind.lookback == lookback
    exp_mid = np.where(np.isnan(a), np.nan, e)
    assert_talib_equal(mid, exp_mid, lookback)
    assert_talib_equal(upper, exp_mid + 2.0 * a, lookback)
    assert_talib_equal(lower, exp_mid - 2.0 * a, lookback)
    vec = keltner(h, lo, c, ema_period=20, atr_period=10, multiplier=2.0)
    for got, want in zip(vec, (upper, mid, lower), strict=True):
        assert_talib_equal(got, want, lookback)


@pytest.mark.parametrize("period", [1, 20, 390])
def test_donchian_matches_talib_max_min(bars: BarSeries, period: int) -> None:
    h, lo = bars.high, bars.low
    ind = Donchian(period)
    mid, upper, lower = run_bars(ind, bars, "upper", "lower")
    lookback = 0 if period == 1 else talib_lookback("MAX", timeperiod=period)
    assert ind.lookback == lookback
    if period > 1:  # TA-Lib's MAX/MIN need period >= 2
        np.testing.assert_array_equal(upper[lookback:], talib.MAX(h, period)[lookback:])
        np.testing.assert_array_equal(lower[lookback:], talib.MIN(lo, period)[lookback:])
    else:
        np.testing.assert_array_equal(upper, h)
        np.testing.assert_array_equal(lower, lo)
    np.testing.assert_array_equal(mid[lookback:], (upper[lookback:] + lower[lookback:]) / 2.0)
    vec = donchian(h, lo, period)
    for got, want in zip(vec, (upper, mid, lower), strict=True):
        np.testing.assert_array_equal(got, want)


# --- protocol: handle_bar, ready/count, reset, sources, errors ------------------------------------------------------


def make_indicators() -> list[Indicator]:
    return [
        SMA(20),
        EMA(20),
        WMA(20),
        RSI(14),
        MACD(),
        Bollinger(20),
        ATR(14),
        ADX(14),
        Keltner(),
        Donchian(20),
    ]


def feed(inds: Iterable[Indicator], bars: Iterable[Bar]) -> list[list[float]]:
    return [[ind.handle_bar(b) for b in bars] for ind in inds]


def test_handle_bar_drives_the_same_numbers_as_update(bars: BarSeries) -> None:
    part = bars.between(None, int(bars.ts_open_ns[2000]))
    bar_list = list(part)
    via_bars = feed(make_indicators(), bar_list)
    for ind, got in zip(make_indicators(), via_bars, strict=True):
        if isinstance(ind, ValueIndicator):
            (want,) = run_values(ind, part.close)
        else:
            assert isinstance(ind, BarIndicator)
            (want,) = run_bars(ind, part)
        np.testing.assert_array_equal(np.array(got), want)


def test_ready_and_count_follow_the_lookback(bars: BarSeries) -> None:
    for ind in make_indicators():
        for i, b in enumerate(bars.between(None, int(bars.ts_open_ns[80]))):
            v = ind.handle_bar(b)
            assert ind.count == i + 1
            assert ind.ready == (i >= ind.lookback), type(ind).__name__
            assert math.isnan(v) != ind.ready
            assert v == ind.value or (math.isnan(v) and math.isnan(ind.value))


def test_reset_gives_a_fresh_indicator(bars: BarSeries) -> None:
    part = list(bars.between(None, int(bars.ts_open_ns[300])))
    inds = make_indicators()
    first = feed(inds, part)
    for ind in inds:
        ind.reset()
        assert ind.count == 0 and not ind.ready and math.isnan(ind.value)
    again = feed(inds, part)
    np.testing.assert_array_equal(np.array(first), np.array(again))


def test_price_sources() -> None:
    b = Bar("ESZ5", Timeframe.parse("1m"), 5.0, 10.0, 4.0, 7.0, 3, 0, 60_000_000_000)
    expected = {"open": 5.0, "high": 10.0, "low": 4.0, "close": 7.0, "hl2": 7.0, "hlc3": 7.0, "ohlc4": 6.5}
    for source, price in expected.items():
        assert bar_price(b, source) == price  # type: ignore[arg-type]
        sma1 = SMA(1, source=source)  # type: ignore[arg-type]
        assert sma1.handle_bar(b) == price


@pytest.mark.parametrize(
    "make",
    [
        lambda: SMA(0),
        lambda: EMA(-1),
        lambda: WMA(2.5),  # type: ignore[arg-type]
        lambda: RSI(True),
        lambda: MACD(26, 12, 9),
        lambda: MACD(12, 12, 9),
        lambda: Bollinger(20, nbdev_up=0.0),
        lambda: Bollinger(20, nbdev_dn=math.inf),
        lambda: Keltner(multiplier=-1.0),
        lambda: Donchian(0),
        lambda: ADX(0),
        lambda: ATR(0),
        lambda: SMA(5, source="vwap"),  # type: ignore[arg-type]
    ],
)
def test_bad_parameters_raise_config_error(make: Callable[[], Indicator]) -> None:
    with pytest.raises(ConfigError):
        make()


def test_non_finite_input_raises_and_leaves_state_unchanged() -> None:
    for ind in (SMA(3), EMA(3), WMA(3), RSI(3), MACD(2, 3, 2), Bollinger(3)):
        for v in (1.0, 2.0, 3.0, 4.0, 5.0):
            ind.update(v)
        before = (ind.value, ind.count)
        for bad in (math.nan, math.inf, -math.inf):
            with pytest.raises(DataError, match="not a finite number"):
                ind.update(bad)
        assert (ind.value, ind.count) == before
    for bind in (ATR(2), ADX(2), Donchian(2), Keltner(2, 2)):
        for v in (1.0, 2.0, 3.0, 4.0, 5.0):
            bind.update_bar(v + 1, v - 1, v)
        before = (bind.value, bind.count)
        with pytest.raises(DataError, match="not a finite number"):
            bind.update_bar(math.nan, 1.0, 1.0)
        assert (bind.value, bind.count) == before


def test_vectorized_forms_reject_bad_arrays() -> None:
    with pytest.raises(DataError, match=r"values\[1\]"):
        sma([1.0, math.nan, 3.0], 2)
    with pytest.raises(DataError, match="one-dimensional"):
        ema(np.ones((3, 3)), 2)
    with pytest.raises(DataError, match="low has 2 elements"):
        atr([1.0, 2.0, 3.0], [1.0, 2.0], [1.0, 2.0, 3.0], 2)
    assert np.isnan(sma([1.0, 2.0], 3)).all() and np.isnan(rsi([1.0, 2.0], 2)).all()


# --- properties beyond the real files -------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(-40, 40), min_size=1, max_size=300),
    st.lists(st.integers(0, 12), min_size=300, max_size=300),
    st.integers(1, 25),
)
def test_donchian_equals_naive_window_max_min(steps: list[int], ranges: list[int], period: int) -> None:
    mid = 4000.0 + np.cumsum(np.array(steps, dtype=np.float64)) * 0.25
    high = mid + np.array(ranges[: len(mid)], dtype=np.float64) * 0.25
    low = mid - 0.25
    ind = Donchian(period)
    for i in range(len(mid)):
        ind.update_bar(float(high[i]), float(low[i]))
        if i + 1 >= period:
            assert ind.upper == high[i + 1 - period : i + 1].max()
            assert ind.lower == low[i + 1 - period : i + 1].min()
        else:
            assert not ind.ready


def test_bollinger_stddev_has_no_drift_on_long_off_grid_series() -> None:
    """100k non-grid values near 1e5 (where mean(x^2) - mean^2 would lose ~1e-6): the stddev stays at 1e-9."""
    rng = np.random.default_rng(7)
    x = 1e5 + np.cumsum(rng.normal(0.0, 0.37, 100_000))
    period = 30
    (mid, sd) = run_values(Bollinger(period), x, "stddev")
    windows = np.lib.stride_tricks.sliding_window_view(x, period)
    want_sd = windows.std(axis=1)
    np.testing.assert_allclose(sd[period - 1 :], want_sd, rtol=0, atol=1e-9)
    np.testing.assert_allclose(mid[period - 1 :], windows.mean(axis=1), rtol=1e-12, atol=0)
