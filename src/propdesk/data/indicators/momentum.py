"""Momentum indicators: RSI, MACD, ADX (with +DI/-DI), incremental (O(1) per update) and vectorized.

Seeding and arithmetic follow TA-Lib 0.6 (https://github.com/TA-Lib/ta-lib, ``src/ta_func/``) with its defaults:

* RSI, ``ta_RSI.c`` (Wilder; ``TA_COMPATIBILITY_DEFAULT``): average gain and loss seeded with the plain mean of the
  first ``n`` price changes, then ``avg = (avg * (n - 1) + change) / n``; ``RSI = 100 * gain / (gain + loss)``, and
  0 when ``gain + loss`` is zero. Lookback ``n``.
* MACD, ``ta_MACD.c``: fast and slow EMAs with ``k = 2 / (n + 1)``. Both start at the slow EMA's first index
  (``slow - 1``): the slow one seeded with the mean of the first ``slow`` values, the fast one with the mean of the
  ``fast`` values ending there (not from the first value). MACD = fast - slow; signal = EMA(signal) of MACD seeded
  with the mean of its first ``signal`` values; histogram = MACD - signal. Lookback ``(slow - 1) + (signal - 1)``.
* ADX, ``ta_ADX.c`` / ``ta_PLUS_DI.c`` / ``ta_MINUS_DI.c`` (Wilder, *New Concepts in Technical Trading Systems*,
  1978, without his integer rounding): +DM/-DM and the true range summed over the first ``n - 1`` changes, then
  Wilder-smoothed ``s = s - s / n + x``; DI = 100 * DM / TR (0 when TR is zero), from index ``n``;
  DX = 100 * |+DI - -DI| / (+DI + -DI); the first ADX is the mean of the first ``n`` DX, then
  ``adx = (adx * (n - 1) + dx) / n``. A DX that cannot be computed (TR or +DI + -DI zero) leaves the ADX unchanged,
  and TA-Lib's DX output repeats its previous value (0 at first).

Zero tests: TA-Lib 0.4-0.6 compared these denominators with 1e-8 (``TA_IS_ZERO``); the TA-Lib 0.8 C library that
propdesk tests against (``talib.__ta_version__``) tests for exact zero, which is also the mathematically right rule
(in a long flat run the RSI keeps its last ratio instead of dropping to 0). propdesk follows 0.8. The arithmetic
order is the reference C source's; TA-Lib 0.8's CPU-dispatched builds (e.g. its FMA variant) can differ from it in the
last bits (about 1e-14 relative), well inside the 1e-9 the tests allow.
"""

from __future__ import annotations

import math
from collections import deque
from typing import NamedTuple

import numpy.typing as npt

from propdesk.core.errors import ConfigError
from propdesk.data.indicators.base import (
    NAN,
    BarIndicator,
    FloatArray,
    PriceSource,
    ValueIndicator,
    as_float_array,
    check_period,
    check_same_length,
    nan_array,
    non_finite,
)
from propdesk.data.indicators.moving_averages import ema_from


class RSI(ValueIndicator):
    """Wilder's relative strength index (0-100) over ``period`` price changes; first value after ``period + 1`` inputs.

    Raises:
        ConfigError: if ``period`` is not an integer >= 1.
        DataError: from :meth:`update` for a non-finite value.
    """

    __slots__ = ("_gain", "_loss", "_period", "_prev", "lookback")

    def __init__(self, period: int = 14, source: PriceSource = "close") -> None:
        super().__init__(source)
        self._period = check_period("RSI period", period)
        self.lookback = self._period
        self._reset_state()

    @property
    def period(self) -> int:
        """The smoothing period (price changes)."""
        return self._period

    def _reset_state(self) -> None:
        self._prev = NAN
        self._gain = 0.0
        self._loss = 0.0

    def update(self, value: float) -> float:
        """Consume one price; return the RSI (NaN for the first ``period`` inputs)."""
        if not math.isfinite(value):
            raise non_finite("RSI", "value", value)
        c = self._count + 1
        self._count = c
        if c == 1:
            self._prev = value
            return self._value
        diff = value - self._prev
        self._prev = value
        n = self._period
        gain = self._gain
        loss = self._loss
        if c > n + 1:
            gain *= n - 1
            loss *= n - 1
        if diff < 0:
            loss -= diff
        else:
            gain += diff
        if c <= n:
            self._gain = gain
            self._loss = loss
            return self._value
        gain /= n
        loss /= n
        self._gain = gain
        self._loss = loss
        total = gain + loss
        self._value = 100.0 * (gain / total) if total != 0.0 else 0.0
        return self._value


class MACD(ValueIndicator):
    """Moving average convergence/divergence (points): ``macd``, ``signal``, ``hist``; ``value`` is ``macd``.

    All three are NaN until ``(slow - 1) + (signal - 1)`` inputs have been consumed (TA-Lib's lookback).

    Raises:
        ConfigError: if a period is not an integer >= 1 or ``fast >= slow``.
        DataError: from :meth:`update` for a non-finite value.
    """

    __slots__ = (
        "_fast",
        "_fast_ema",
        "_kf",
        "_ks",
        "_ksig",
        "_recent",
        "_sig_sum",
        "_signal",
        "_slow",
        "_slow_ema",
        "_slow_sum",
        "hist",
        "lookback",
        "signal",
    )

    def __init__(self, fast: int = 12, slow: int = 26, signal: int = 9, source: PriceSource = "close") -> None:
        super().__init__(source)
        self._fast = check_period("MACD fast period", fast)
        self._slow = check_period("MACD slow period", slow)
        self._signal = check_period("MACD signal period", signal)
        if self._fast >= self._slow:
            raise ConfigError(f"MACD fast period ({fast}) must be shorter than the slow period ({slow})")
        self._kf = 2.0 / (self._fast + 1)
        self._ks = 2.0 / (self._slow + 1)
        self._ksig = 2.0 / (self._signal + 1)
        self.lookback = (self._slow - 1) + (self._signal - 1)
        self._reset_state()

    @property
    def periods(self) -> tuple[int, int, int]:
        """``(fast, slow, signal)``."""
        return self._fast, self._slow, self._signal

    @property
    def macd(self) -> float:
        """Fast EMA - slow EMA (points); NaN until ready."""
        return self._value

    def _reset_state(self) -> None:
        self._recent: deque[float] = deque(maxlen=self._fast)
        self._slow_sum = 0.0
        self._fast_ema = NAN
        self._slow_ema = NAN
        self._sig_sum = 0.0
        self.signal = NAN
        self.hist = NAN

    def update(self, value: float) -> float:
        """Consume one price; return the MACD line (NaN until ready)."""
        if not math.isfinite(value):
            raise non_finite("MACD", "value", value)
        c = self._count + 1
        self._count = c
        slow = self._slow
        if c > slow:
            fe = self._fast_ema
            fe = (value - fe) * self._kf + fe
            se = self._slow_ema
            se = (value - se) * self._ks + se
        else:
            self._slow_sum += value
            self._recent.append(value)
            if c < slow:
                return self._value
            se = self._slow_sum / slow
            total = 0.0
            for v in self._recent:  # TA-Lib seeds the fast EMA here, from the last `fast` values only
                total += v
            fe = total / self._fast
            self._recent.clear()
        self._fast_ema = fe
        self._slow_ema = se
        line = fe - se
        m = c - slow + 1  # how many MACD values exist
        sp = self._signal
        if m > sp:
            sig = self.signal
            sig = (line - sig) * self._ksig + sig
        else:
            self._sig_sum += line
            if m < sp:
                return self._value
            sig = self._sig_sum / sp
        self.signal = sig
        self.hist = line - sig
        self._value = line
        return line


class ADX(BarIndicator):
    """Wilder's average directional index (0-100), with ``plus_di``/``minus_di`` (0-100) and ``dx``.

    ``value`` is the ADX, defined after ``2 * period`` bars; ``plus_di``, ``minus_di`` and ``dx`` are defined after
    ``period + 1`` bars (TA-Lib's PLUS_DI/MINUS_DI/DX lookback), NaN before.

    Raises:
        ConfigError: if ``period`` is not an integer >= 1.
        DataError: from :meth:`update_bar` for a non-finite price.
    """

    __slots__ = (
        "_minus_dm",
        "_period",
        "_plus_dm",
        "_prev_close",
        "_prev_high",
        "_prev_low",
        "_sum_dx",
        "_tr",
        "dx",
        "lookback",
        "minus_di",
        "plus_di",
    )

    def __init__(self, period: int = 14) -> None:
        super().__init__()
        self._period = check_period("ADX period", period)
        self.lookback = 2 * self._period - 1
        self._reset_state()

    @property
    def period(self) -> int:
        """The smoothing period (bars)."""
        return self._period

    def _reset_state(self) -> None:
        self._prev_high = NAN
        self._prev_low = NAN
        self._prev_close = NAN
        self._plus_dm = 0.0
        self._minus_dm = 0.0
        self._tr = 0.0
        self._sum_dx = 0.0
        self.plus_di = NAN
        self.minus_di = NAN
        self.dx = NAN

    def update_bar(self, high: float, low: float, close: float, volume: float = 0, ts_ns: int = 0) -> float:
        """Consume one bar (points); return the ADX (NaN for the first ``2 * period - 1`` bars)."""
        if not (math.isfinite(high) and math.isfinite(low) and math.isfinite(close)):
            raise non_finite("ADX", "bar (high, low, close)", (high, low, close))
        c = self._count + 1
        self._count = c
        if c == 1:
            self._prev_high = high
            self._prev_low = low
            self._prev_close = close
            return self._value
        n = self._period
        diff_p = high - self._prev_high
        diff_m = self._prev_low - low
        yc = self._prev_close
        self._prev_high = high
        self._prev_low = low
        self._prev_close = close
        tr = high - low
        t = abs(high - yc)
        if t > tr:
            tr = t
        t = abs(low - yc)
        if t > tr:
            tr = t
        plus_dm = self._plus_dm
        minus_dm = self._minus_dm
        if c <= n:  # the first n - 1 changes are summed
            if diff_m > 0 and diff_p < diff_m:
                minus_dm += diff_m
            elif diff_p > 0 and diff_p > diff_m:
                plus_dm += diff_p
            self._plus_dm = plus_dm
            self._minus_dm = minus_dm
            self._tr += tr
            return self._value
        minus_dm -= minus_dm / n
        plus_dm -= plus_dm / n
        if diff_m > 0 and diff_p < diff_m:
            minus_dm += diff_m
        elif diff_p > 0 and diff_p > diff_m:
            plus_dm += diff_p
        prev_tr = self._tr
        prev_tr = prev_tr - (prev_tr / n) + tr
        self._plus_dm = plus_dm
        self._minus_dm = minus_dm
        self._tr = prev_tr
        dx = 0.0
        has_dx = False
        if prev_tr == 0.0:
            self.plus_di = 0.0
            self.minus_di = 0.0
        else:
            mdi = 100.0 * (minus_dm / prev_tr)
            pdi = 100.0 * (plus_dm / prev_tr)
            self.plus_di = pdi
            self.minus_di = mdi
            s = mdi + pdi
            if s != 0.0:
                dx = 100.0 * (abs(mdi - pdi) / s)
                has_dx = True
        if c <= 2 * n:  # the first n DX are summed
            if has_dx:
                self._sum_dx += dx
            if c == 2 * n:
                self._value = self._sum_dx / n
        elif has_dx:
            self._value = ((self._value * (n - 1)) + dx) / n
        if has_dx:
            self.dx = dx
        elif c == n + 1:
            self.dx = 0.0  # TA-Lib's DX: 0 at first, then the previous value, when it cannot be computed
        return self._value


class MACDResult(NamedTuple):
    """Vectorized MACD output: three arrays (points), NaN before the lookback."""

    macd: FloatArray
    signal: FloatArray
    hist: FloatArray


class ADXResult(NamedTuple):
    """Vectorized ADX output: three arrays (0-100); ADX NaN before ``2 * period - 1``, the DIs before ``period``."""

    adx: FloatArray
    plus_di: FloatArray
    minus_di: FloatArray


def rsi(values: npt.ArrayLike, period: int = 14) -> FloatArray:
    """Vectorized :class:`RSI` (a loop over Wilder's recursion, same arithmetic): NaN in the first ``period`` places.

    Raises:
        ConfigError: bad ``period``. DataError: ``values`` not 1-D or not finite.
    """
    check_period("RSI period", period)
    x = as_float_array("values", values)
    out = nan_array(len(x))
    if len(x) <= period:
        return out
    xs = x.tolist()
    gain = 0.0
    loss = 0.0
    for i in range(1, period + 1):
        d = xs[i] - xs[i - 1]
        if d < 0:
            loss -= d
        else:
            gain += d
    gain /= period
    loss /= period
    m = period - 1
    for i in range(period, len(xs)):
        if i > period:
            d = xs[i] - xs[i - 1]
            gain *= m
            loss *= m
            if d < 0:
                loss -= d
            else:
                gain += d
            gain /= period
            loss /= period
        total = gain + loss
        out[i] = 100.0 * (gain / total) if total != 0.0 else 0.0
    return out


def macd(values: npt.ArrayLike, fast: int = 12, slow: int = 26, signal: int = 9) -> MACDResult:
    """Vectorized :class:`MACD`: ``(macd, signal, hist)``, NaN in the first ``(slow - 1) + (signal - 1)`` places.

    Raises:
        ConfigError: bad periods or ``fast >= slow``. DataError: ``values`` not 1-D or not finite.
    """
    MACD(fast, slow, signal)  # validates the periods
    x = as_float_array("values", values)
    n = len(x)
    start = slow - 1
    line = ema_from(x, fast, start) - ema_from(x, slow, start)
    sig = nan_array(n)
    if n > start:
        sig[start:] = ema_from(line[start:], signal, signal - 1)
    lookback = start + signal - 1
    line[: min(lookback, n)] = math.nan
    return MACDResult(line, sig, line - sig)


def adx(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, period: int = 14) -> ADXResult:
    """Vectorized :class:`ADX` (runs the incremental class: Wilder's recursions have no numpy form).

    Raises:
        ConfigError: bad ``period``. DataError: arrays not 1-D, not finite, or of different lengths.
    """
    ind = ADX(period)
    h = as_float_array("high", high)
    lo = as_float_array("low", low)
    c = as_float_array("close", close)
    n = check_same_length(high=h, low=lo, close=c)
    out_adx, out_p, out_m = nan_array(n), nan_array(n), nan_array(n)
    update = ind.update_bar
    for i, (hi, li, ci) in enumerate(zip(h.tolist(), lo.tolist(), c.tolist(), strict=True)):
        out_adx[i] = update(hi, li, ci)
        out_p[i] = ind.plus_di
        out_m[i] = ind.minus_di
    return ADXResult(out_adx, out_p, out_m)


__all__ = ["ADX", "MACD", "RSI", "ADXResult", "MACDResult", "adx", "macd", "rsi"]
