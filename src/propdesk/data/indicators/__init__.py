"""Technical indicators, incremental (O(1) per update, for live and backtest bars) and vectorized (numpy, for history).

Incremental classes share the protocol of :mod:`propdesk.data.indicators.base` (``update``/``update_bar``,
``value``, ``ready``, ``count``, ``reset``, ``handle_bar``); each has a vectorized twin giving the same numbers.
Warm-up and seeding follow TA-Lib; the tests compare every indicator with TA-Lib on real ES and NQ bars.
"""

from propdesk.data.indicators.base import (
    PRICE_SOURCES,
    BarIndicator,
    Indicator,
    PriceSource,
    ValueIndicator,
    bar_price,
)
from propdesk.data.indicators.momentum import ADX, MACD, RSI, ADXResult, MACDResult, adx, macd, rsi
from propdesk.data.indicators.moving_averages import EMA, SMA, WMA, ema, sma, wma
from propdesk.data.indicators.volatility import (
    ATR,
    Bands,
    Bollinger,
    Donchian,
    Keltner,
    atr,
    bollinger,
    donchian,
    keltner,
    true_range,
)
from propdesk.data.indicators.vwap import (
    CME_SESSION_START,
    CME_SESSION_TZ,
    SessionVWAP,
    session_bounds,
    session_ids,
    session_vwap,
)

__all__ = [
    "ADX",
    "ATR",
    "CME_SESSION_START",
    "CME_SESSION_TZ",
    "EMA",
    "MACD",
    "PRICE_SOURCES",
    "RSI",
    "SMA",
    "WMA",
    "ADXResult",
    "Bands",
    "BarIndicator",
    "Bollinger",
    "Donchian",
    "Indicator",
    "Keltner",
    "MACDResult",
    "PriceSource",
    "SessionVWAP",
    "ValueIndicator",
    "adx",
    "atr",
    "bar_price",
    "bollinger",
    "donchian",
    "ema",
    "keltner",
    "macd",
    "rsi",
    "session_bounds",
    "session_ids",
    "session_vwap",
    "sma",
    "true_range",
    "wma",
]
