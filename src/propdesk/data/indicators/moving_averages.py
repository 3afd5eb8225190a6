"""Moving averages: SMA, EMA, WMA, incremental (O(1) per update) and vectorized, seeded as TA-Lib seeds them.

Sources (TA-Lib 0.6, https://github.com/TA-Lib/ta-lib, ``src/ta_func/``):

* SMA, ``ta_SMA.c``: a running sum, ``total += new``, output ``total / n``, then ``total -= oldest``. The first
  value is at index ``n - 1`` (lookback ``n - 1``).
* EMA, ``ta_EMA.c`` (``TA_COMPATIBILITY_DEFAULT``): ``k = 2 / (n + 1)``, seeded with the SMA of the first ``n``
  values (summed left to right), then ``ema = (x - ema) * k + ema``. Lookback ``n - 1``.
* WMA, ``ta_WMA.c``: weights ``1..n`` (newest heaviest), divider ``n (n + 1) / 2``, kept with two running sums
  (the plain sum and the weighted sum). Lookback ``n - 1``.

The incremental classes repeat TA-Lib's floating-point operations in TA-Lib's order, so their output equals TA-Lib's
bit for bit on the same inputs. The vectorized SMA and WMA sum each window afresh (no running-sum drift); they equal
the incremental output to about 1e-12 relative (exactly when the sums are exact, e.g. prices on a 0.25 tick grid).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from propdesk.data.indicators.base import (
    FloatArray,
    PriceSource,
    ValueIndicator,
    as_float_array,
    check_period,
    nan_array,
    non_finite,
)


class SMA(ValueIndicator):
    """Simple moving average of the last ``period`` values (points); first value after ``period`` inputs.

    Raises:
        ConfigError: if ``period`` is not an integer >= 1.
        DataError: from :meth:`update` for a non-finite value.
    """

    __slots__ = ("_buf", "_period", "_pos", "_total", "lookback")

    def __init__(self, period: int = 20, source: PriceSource = "close") -> None:
        super().__init__(source)
        self._period = check_period("SMA period", period)
        self.lookback = self._period - 1
        self._buf = [0.0] * self._period
        self._pos = 0
        self._total = 0.0

    @property
    def period(self) -> int:
        """The window length (inputs)."""
        return self._period

    def _reset_state(self) -> None:
        self._buf = [0.0] * self._period
        self._pos = 0
        self._total = 0.0

    def update(self, value: float) -> float:
        """Consume one value; return the SMA (NaN for the first ``period - 1`` inputs)."""
        # ``value - value`` is 0.0 for every finite value and NaN for NaN and +-inf (NaN != 0.0): the same test as
        # ``math.isfinite`` without a global lookup and a call (this runs on every bar).
        if value - value != 0.0:
            raise non_finite("SMA", "value", value)
        n = self._period
        buf = self._buf
        pos = self._pos
        buf[pos] = value
        pos += 1
        if pos == n:
            pos = 0
        self._pos = pos
        total = self._total + value
        c = self._count + 1
        self._count = c
        if c >= n:
            self._value = total / n
            total -= buf[pos]  # the oldest value of this window leaves before the next input
        self._total = total
        return self._value


class EMA(ValueIndicator):
    """Exponential moving average, ``k = 2 / (period + 1)``, seeded with the SMA of the first ``period`` values.

    Raises:
        ConfigError: if ``period`` is not an integer >= 1.
        DataError: from :meth:`update` for a non-finite value.
    """

    __slots__ = ("_k", "_period", "_sum", "lookback")

    def __init__(self, period: int = 20, source: PriceSource = "close") -> None:
        super().__init__(source)
        self._period = check_period("EMA period", period)
        self.lookback = self._period - 1
        self._k = 2.0 / (self._period + 1)
        self._sum = 0.0

    @property
    def period(self) -> int:
        """The EMA period (inputs)."""
        return self._period

    @property
    def k(self) -> float:
        """The smoothing factor ``2 / (period + 1)``."""
        return self._k

    def _reset_state(self) -> None:
        self._sum = 0.0

    def update(self, value: float) -> float:
        """Consume one value; return the EMA (NaN for the first ``period - 1`` inputs)."""
        if not math.isfinite(value):
            raise non_finite("EMA", "value", value)
        c = self._count + 1
        self._count = c
        n = self._period
        if c > n:
            prev = self._value
            self._value = (value - prev) * self._k + prev
        else:
            self._sum += value
            if c == n:
                self._value = self._sum / n
        return self._value


class WMA(ValueIndicator):
    """Linearly weighted moving average (weights 1..period, newest heaviest), TA-Lib's running-sum form.

    Raises:
        ConfigError: if ``period`` is not an integer >= 1.
        DataError: from :meth:`update` for a non-finite value.
    """

    __slots__ = ("_buf", "_divider", "_period", "_pos", "_sub", "_sum", "_trailing", "lookback")

    def __init__(self, period: int = 20, source: PriceSource = "close") -> None:
        super().__init__(source)
        self._period = check_period("WMA period", period)
        self.lookback = self._period - 1
        self._divider = float((self._period * (self._period + 1)) >> 1)
        self._reset_state()

    @property
    def period(self) -> int:
        """The window length (inputs)."""
        return self._period

    def _reset_state(self) -> None:
        self._buf = [0.0] * self._period
        self._pos = 0
        self._sub = 0.0  # plain sum of the window (TA-Lib's periodSub)
        self._sum = 0.0  # weighted sum (TA-Lib's periodSum)
        self._trailing = 0.0  # the value that leaves the plain sum at the next input

    def update(self, value: float) -> float:
        """Consume one value; return the WMA (NaN for the first ``period - 1`` inputs)."""
        if not math.isfinite(value):
            raise non_finite("WMA", "value", value)
        n = self._period
        buf = self._buf
        pos = self._pos
        buf[pos] = value
        pos += 1
        if pos == n:
            pos = 0
        self._pos = pos
        c = self._count + 1
        self._count = c
        if c < n:
            self._sub += value
            self._sum += value * c
            return self._value
        sub = self._sub + value
        sub -= self._trailing
        total = self._sum + value * n
        self._trailing = buf[pos]  # oldest value of this window
        self._value = total / self._divider
        self._sum = total - sub
        self._sub = sub
        return self._value


def sma(values: npt.ArrayLike, period: int = 20) -> FloatArray:
    """Vectorized :class:`SMA`: an array like ``values`` with NaN in the first ``period - 1`` places.

    Each window is summed afresh (numpy), so there is no running-sum drift.

    Raises:
        ConfigError: bad ``period``. DataError: ``values`` not 1-D or not finite.
    """
    check_period("SMA period", period)
    x = as_float_array("values", values)
    out = nan_array(len(x))
    if len(x) >= period:
        out[period - 1 :] = sliding_window_view(x, period).sum(axis=1) / period
    return out


def ema(values: npt.ArrayLike, period: int = 20) -> FloatArray:
    """Vectorized :class:`EMA` (a Python loop over the recursion, same arithmetic): NaN in the first ``period - 1``.

    Raises:
        ConfigError: bad ``period``. DataError: ``values`` not 1-D or not finite.
    """
    check_period("EMA period", period)
    x = as_float_array("values", values)
    return ema_from(x, period, period - 1)


def ema_from(x: FloatArray, period: int, seed_end: int) -> FloatArray:
    """EMA of ``x`` seeded at index ``seed_end`` with the mean of ``x[seed_end - period + 1 : seed_end + 1]``.

    NaN before ``seed_end``. TA-Lib seeds MACD's fast EMA this way (at the slow EMA's first index). ``x`` must be
    a finite float64 array (unchecked).
    """
    n = len(x)
    out = nan_array(n)
    if seed_end >= n or seed_end < period - 1:
        return out
    xs = x.tolist()
    total = 0.0
    for v in xs[seed_end - period + 1 : seed_end + 1]:
        total += v
    prev = total / period
    out[seed_end] = prev
    k = 2.0 / (period + 1)
    for i in range(seed_end + 1, n):
        prev = (xs[i] - prev) * k + prev
        out[i] = prev
    return out


def wma(values: npt.ArrayLike, period: int = 20) -> FloatArray:
    """Vectorized :class:`WMA` (each window's weighted sum afresh): NaN in the first ``period - 1`` places.

    Raises:
        ConfigError: bad ``period``. DataError: ``values`` not 1-D or not finite.
    """
    check_period("WMA period", period)
    x = as_float_array("values", values)
    out = nan_array(len(x))
    if len(x) >= period:
        weights = np.arange(1, period + 1, dtype=np.float64)
        divider = float((period * (period + 1)) >> 1)
        out[period - 1 :] = (sliding_window_view(x, period) @ weights) / divider
    return out


__all__ = ["EMA", "SMA", "WMA", "ema", "ema_from", "sma", "wma"]
