"""The common protocol of propdesk's incremental indicators, and helpers shared by the vectorized forms.

Every indicator is updated one input at a time in O(1) (amortized O(1) for Donchian) and exposes:

* ``value`` (``float``): the main output, ``NaN`` until the indicator is warm;
* ``ready`` (``bool``): whether ``value`` is defined;
* ``count`` (``int``): how many inputs it has consumed since construction or the last :meth:`Indicator.reset`;
* ``reset()``: back to the freshly constructed state;
* ``handle_bar(bar)``: the entry point the strategy layer calls with each closed :class:`~propdesk.model.data.Bar`.

Value indicators (SMA, EMA, WMA, RSI, MACD, Bollinger) take ``update(value)``; bar indicators (ATR, ADX, Donchian,
Keltner, VWAP) take ``update_bar(high, low, close, volume, ts_ns)``. Prices are points (``float``), volume is
contracts, ``ts_ns`` is the bar's open time in UTC nanoseconds.

Warm-up and seeding follow TA-Lib 0.6 (https://github.com/TA-Lib/ta-lib, ``src/ta_func/``) with its defaults
(``TA_COMPATIBILITY_DEFAULT``, unstable period 0), so that feeding a series from its first element gives TA-Lib's
output exactly, index by index, from TA-Lib's lookback on.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Final, Literal, get_args

import numpy as np
import numpy.typing as npt

from propdesk.core.errors import ConfigError, DataError
from propdesk.model.data import Bar

PriceSource = Literal["open", "high", "low", "close", "hl2", "hlc3", "ohlc4"]
"""Which price of a bar a value indicator consumes in :meth:`ValueIndicator.handle_bar`:
``hl2`` = (H+L)/2, ``hlc3`` = (H+L+C)/3 (the typical price), ``ohlc4`` = (O+H+L+C)/4."""

PRICE_SOURCES: Final[tuple[str, ...]] = get_args(PriceSource)

NAN: Final[float] = math.nan

# TA-Lib's TA_IS_ZERO / TA_IS_ZERO_OR_NEG threshold (ta_func/ta_utility.h).
TA_EPSILON: Final[float] = 0.00000001

FloatArray = npt.NDArray[np.float64]


def bar_price(bar: Bar, source: PriceSource) -> float:
    """The price (points) of ``bar`` named by ``source`` (see :data:`PriceSource`).

    Raises:
        ConfigError: if ``source`` is not one of :data:`PRICE_SOURCES`.
    """
    if source == "close":
        return bar.close
    if source == "hlc3":
        return (bar.high + bar.low + bar.close) / 3.0
    if source == "hl2":
        return (bar.high + bar.low) / 2.0
    if source == "ohlc4":
        return (bar.open + bar.high + bar.low + bar.close) / 4.0
    if source == "open":
        return bar.open
    if source == "high":
        return bar.high
    if source == "low":
        return bar.low
    raise ConfigError(f"price source {source!r} must be one of {', '.join(PRICE_SOURCES)}")


def check_source(source: str) -> PriceSource:
    """Return ``source`` if it is a :data:`PriceSource`; raise :class:`ConfigError` otherwise."""
    if source not in PRICE_SOURCES:
        raise ConfigError(f"price source {source!r} must be one of {', '.join(PRICE_SOURCES)}")
    return source  # type: ignore[return-value]


def check_period(name: str, period: int, minimum: int = 1) -> int:
    """Return ``period`` if it is an ``int`` >= ``minimum``; raise :class:`ConfigError` naming ``name`` otherwise."""
    if isinstance(period, bool) or not isinstance(period, int) or period < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {period!r}")
    return period


def check_positive(name: str, x: float) -> float:
    """Return ``x`` as ``float`` if it is finite and > 0; raise :class:`ConfigError` naming ``name`` otherwise."""
    xf = float(x)
    if not math.isfinite(xf) or xf <= 0.0:
        raise ConfigError(f"{name} must be a finite number > 0, got {x!r}")
    return xf


def non_finite(indicator: str, what: str, x: object) -> DataError:
    """The :class:`DataError` an indicator raises for a non-finite input (its state is left unchanged)."""
    return DataError(f"{indicator}: {what} {x!r} is not a finite number")


def as_float_array(name: str, a: npt.ArrayLike) -> FloatArray:
    """``a`` as a contiguous 1-D float64 array of finite numbers.

    Raises:
        DataError: if ``a`` is not 1-D or holds a NaN or infinity (naming the first bad index).
    """
    arr = np.ascontiguousarray(a, dtype=np.float64)
    if arr.ndim != 1:
        raise DataError(f"{name} must be one-dimensional, got shape {arr.shape}")
    finite = np.isfinite(arr)
    if not bool(finite.all()):
        i = int(np.argmin(finite))
        raise DataError(f"{name}[{i}] = {arr[i]!r} is not a finite number")
    return arr


def check_same_length(**arrays: FloatArray | npt.NDArray[np.int64]) -> int:
    """The common length of ``arrays``; raise :class:`DataError` naming the first that differs."""
    n = -1
    first = ""
    for name, arr in arrays.items():
        if n < 0:
            n, first = len(arr), name
        elif len(arr) != n:
            raise DataError(f"{name} has {len(arr)} elements but {first} has {n}")
    return max(n, 0)


def nan_array(n: int) -> FloatArray:
    """A float64 array of ``n`` NaNs."""
    return np.full(n, np.nan, dtype=np.float64)


class Indicator(ABC):
    """Base of every incremental indicator: ``value``, ``ready``, ``count``, ``reset()``, ``handle_bar(bar)``.

    Subclasses set ``self._value`` (NaN until warm) and ``self._count`` in their update method.
    """

    __slots__ = ("_count", "_value")

    #: The TA-Lib-style lookback: the number of inputs consumed before the first defined value.
    lookback: int

    def __init__(self) -> None:
        self._count = 0
        self._value = NAN

    @property
    def value(self) -> float:
        """The main output (points, or a 0-100 oscillator value); ``NaN`` until :attr:`ready`."""
        return self._value

    @property
    def ready(self) -> bool:
        """Whether :attr:`value` is defined (the warm-up is over)."""
        return self._count > self.lookback

    @property
    def count(self) -> int:
        """How many inputs were consumed since construction or the last :meth:`reset`."""
        return self._count

    def reset(self) -> None:
        """Forget every input: back to the freshly constructed state."""
        self._count = 0
        self._value = NAN
        self._reset_state()

    @abstractmethod
    def _reset_state(self) -> None:
        """Reset the subclass's own state."""

    @abstractmethod
    def handle_bar(self, bar: Bar) -> float:
        """Consume one closed bar; return the new :attr:`value`."""


class ValueIndicator(Indicator):
    """An indicator of one price series: ``update(value)``; :meth:`handle_bar` feeds it ``bar_price(bar, source)``."""

    __slots__ = ("source",)

    def __init__(self, source: PriceSource = "close") -> None:
        super().__init__()
        self.source: PriceSource = check_source(source)

    @abstractmethod
    def update(self, value: float) -> float:
        """Consume one price (points); return the new :attr:`value` (NaN while warming up).

        Raises:
            DataError: if ``value`` is not finite (the state is left unchanged).
        """

    def handle_bar(self, bar: Bar) -> float:
        """Consume ``bar_price(bar, self.source)``; return the new :attr:`value`."""
        return self.update(bar_price(bar, self.source))


class BarIndicator(Indicator):
    """An indicator of OHLCV bars: ``update_bar(high, low, close, volume, ts_ns)``; :meth:`handle_bar` unpacks a bar.

    ``ts_ns`` is the bar's open time (UTC ns); only time-anchored indicators (VWAP) use it and ``volume``.
    """

    __slots__ = ()

    @abstractmethod
    def update_bar(self, high: float, low: float, close: float, volume: float = 0, ts_ns: int = 0) -> float:
        """Consume one bar (prices in points, volume in contracts, open time in UTC ns); return the new value.

        Raises:
            DataError: if a price is not finite (the state is left unchanged).
        """

    def handle_bar(self, bar: Bar) -> float:
        """Consume ``bar``'s high, low, close, volume and open time; return the new :attr:`value`."""
        return self.update_bar(bar.high, bar.low, bar.close, bar.volume, bar.ts_open_ns)
