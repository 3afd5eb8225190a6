"""Session-anchored VWAP: the volume-weighted average price since the current CME session opened.

The session boundary is 17:00 America/Chicago (CME Globex equity-index futures: the trading day runs 17:00 CT to
16:00 CT next day, https://www.cmegroup.com/trading-hours.html), converted with :mod:`zoneinfo`, so it is 22:00 UTC
under CDT and 23:00 UTC under CST. A bar belongs to the session in which it opens (its ``ts_open_ns``); the VWAP
restarts with the first bar at or after the boundary. Days without a session (weekends, holidays) need no special
handling: the next bar simply falls in a later session.

VWAP = sum(price x volume) / sum(volume) over the session's bars, price = the typical price (H + L + C) / 3 by
default (``source`` picks another, see :data:`~propdesk.data.indicators.base.PriceSource`). It is NaN until the
session has traded volume. There is no TA-Lib equivalent; the tests check it against a pandas group-by per session.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt

from propdesk.core.errors import ConfigError, DataError
from propdesk.data.indicators.base import (
    NAN,
    BarIndicator,
    FloatArray,
    PriceSource,
    as_float_array,
    bar_price,
    check_same_length,
    check_source,
    nan_array,
    non_finite,
)
from propdesk.model.calendar import EXCHANGE_TZ, SESSION_OPEN
from propdesk.model.data import Bar

CME_SESSION_TZ: Final[str] = EXCHANGE_TZ
"""The default session time zone, CME's (:data:`propdesk.model.calendar.EXCHANGE_TZ`)."""
CME_SESSION_START: Final[time] = SESSION_OPEN
"""The default session start, the Globex open (:data:`propdesk.model.calendar.SESSION_OPEN`)."""

_EPOCH: Final[datetime] = datetime(1970, 1, 1, tzinfo=UTC)
_US: Final[timedelta] = timedelta(microseconds=1)


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"unknown time zone {tz!r} (an IANA name such as 'America/Chicago')") from exc


def _check_start(start: time) -> time:
    if not isinstance(start, time) or start.tzinfo is not None:
        raise ConfigError(f"session start {start!r} must be a naive datetime.time (local wall clock)")
    return start


def _local_ns(d: date, start: time, zone: ZoneInfo) -> int:
    return ((datetime.combine(d, start, tzinfo=zone) - _EPOCH) // _US) * 1000


def session_bounds(
    ts_ns: int, tz: str = CME_SESSION_TZ, start: time = CME_SESSION_START, *, zone: ZoneInfo | None = None
) -> tuple[int, int]:
    """The ``[start_ns, end_ns)`` (UTC ns) of the session containing ``ts_ns``, sessions starting daily at ``start``
    on ``tz``'s wall clock (default 17:00 America/Chicago). DST-correct: each boundary is converted on its own date.

    Raises:
        ConfigError: unknown ``tz`` or an aware ``start``.
    """
    z = zone if zone is not None else _zone(tz)
    _check_start(start)
    local = datetime.fromtimestamp(ts_ns // 1_000_000_000, tz=UTC).astimezone(z)
    d = local.date()
    if local.time() < start:
        d -= timedelta(days=1)
    lo = _local_ns(d, start, z)
    hi = _local_ns(d + timedelta(days=1), start, z)
    return lo, hi


class SessionVWAP(BarIndicator):
    """Session-anchored VWAP (points); resets at every session boundary (default 17:00 America/Chicago).

    ``update(price, volume, ts_ns)`` is the core; ``update_bar(high, low, close, volume, ts_ns)`` computes the price
    from ``source`` (``close``, ``hl2``, ``hlc3``, ``high``, ``low``; ``open``/``ohlc4`` need the open, so use
    ``handle_bar``); ``ts_ns`` is the bar's open time (UTC ns). ``value`` is NaN until the session has volume;
    ``session_volume`` (contracts) and ``session_start_ns``/``session_end_ns`` describe the current session;
    ``count`` counts inputs since construction or :meth:`reset`.

    Raises:
        ConfigError: bad ``source``, ``tz`` or ``session_start``; or ``update_bar`` with a source needing the open.
        DataError: from the update methods for a non-finite price, a negative or non-finite volume, or a time earlier
            than the previous input's (the state is left unchanged).
    """

    __slots__ = (
        "_last_ts",
        "_pv",
        "_start",
        "_zone",
        "lookback",
        "session_end_ns",
        "session_start_ns",
        "session_volume",
        "source",
    )

    def __init__(
        self, source: PriceSource = "hlc3", tz: str = CME_SESSION_TZ, session_start: time = CME_SESSION_START
    ) -> None:
        super().__init__()
        self.source: PriceSource = check_source(source)
        self._zone = _zone(tz)
        self._start = _check_start(session_start)
        self.lookback = 0
        self._reset_state()

    @property
    def ready(self) -> bool:
        """Whether the current session has traded volume (so :attr:`value` is defined)."""
        return self.session_volume > 0

    def _reset_state(self) -> None:
        self._pv = 0.0
        self.session_volume: float = 0
        self.session_start_ns = 0
        self.session_end_ns = -1  # forces a new session on the first input
        self._last_ts = -(2**63)

    def update(self, price: float, volume: float, ts_ns: int) -> float:
        """Consume one price (points) traded with ``volume`` (contracts) at ``ts_ns`` (UTC ns); return the VWAP."""
        if not math.isfinite(price):
            raise non_finite("SessionVWAP", "price", price)
        if not (math.isfinite(volume) and volume >= 0):
            raise DataError(f"SessionVWAP: volume {volume!r} must be a finite number >= 0")
        if ts_ns < self._last_ts:
            raise DataError(f"SessionVWAP: time {ts_ns} ns is earlier than the previous input's ({self._last_ts} ns)")
        self._last_ts = ts_ns
        if ts_ns >= self.session_end_ns:
            self.session_start_ns, self.session_end_ns = session_bounds(ts_ns, start=self._start, zone=self._zone)
            self._pv = 0.0
            self.session_volume = 0
            self._value = NAN
        self._count += 1
        if volume > 0:
            self._pv += price * volume
            self.session_volume += volume
            self._value = self._pv / self.session_volume
        return self._value

    def update_bar(self, high: float, low: float, close: float, volume: float = 0, ts_ns: int = 0) -> float:
        """Consume one bar (points, contracts, open time in UTC ns); return the VWAP."""
        src = self.source
        if src == "hlc3":
            price = (high + low + close) / 3.0
        elif src == "close":
            price = close
        elif src == "hl2":
            price = (high + low) / 2.0
        elif src == "high":
            price = high
        elif src == "low":
            price = low
        else:
            raise ConfigError(f"SessionVWAP source {src!r} needs the bar's open: use handle_bar() or update()")
        if not (math.isfinite(high) and math.isfinite(low) and math.isfinite(close)):
            raise non_finite("SessionVWAP", "bar (high, low, close)", (high, low, close))
        return self.update(price, volume, ts_ns)

    def handle_bar(self, bar: Bar) -> float:
        """Consume ``bar`` (price from ``source``, its volume, its open time); return the VWAP."""
        return self.update(bar_price(bar, self.source), bar.volume, bar.ts_open_ns)


def session_ids(
    ts_ns: npt.ArrayLike, tz: str = CME_SESSION_TZ, start: time = CME_SESSION_START
) -> npt.NDArray[np.int64]:
    """For sorted UTC ns times, the session each falls in, as the session's start (UTC ns), vectorized.

    Raises:
        ConfigError: unknown ``tz`` or an aware ``start``. DataError: ``ts_ns`` not 1-D or not sorted.
    """
    z = _zone(tz)
    _check_start(start)
    ts = np.ascontiguousarray(ts_ns, dtype=np.int64)
    if ts.ndim != 1:
        raise DataError(f"ts_ns must be one-dimensional, got shape {ts.shape}")
    if len(ts) == 0:
        return ts.copy()
    if len(ts) > 1 and bool(np.any(np.diff(ts) < 0)):
        raise DataError(f"ts_ns is not sorted (at index {int(np.argmax(np.diff(ts) < 0)) + 1})")
    first = session_bounds(int(ts[0]), start=start, zone=z)[0]
    d0 = datetime.fromtimestamp(first // 1_000_000_000, tz=UTC).astimezone(z).date()
    last_day = datetime.fromtimestamp(int(ts[-1]) // 1_000_000_000, tz=UTC).astimezone(z).date()
    days = (last_day - d0).days + 2
    bounds = np.array([_local_ns(d0 + timedelta(days=i), start, z) for i in range(days)], dtype=np.int64)
    idx = np.searchsorted(bounds, ts, side="right") - 1
    return bounds[idx]


def session_vwap(
    high: npt.ArrayLike,
    low: npt.ArrayLike,
    close: npt.ArrayLike,
    volume: npt.ArrayLike,
    ts_ns: npt.ArrayLike,
    *,
    source: PriceSource = "hlc3",
    opens: npt.ArrayLike | None = None,
    tz: str = CME_SESSION_TZ,
    session_start: time = CME_SESSION_START,
) -> FloatArray:
    """Vectorized :class:`SessionVWAP` over bars (points, contracts, open times in UTC ns, sorted).

    ``opens`` is needed only for ``source`` ``open``/``ohlc4``. Per-session running sums use the same sequential
    additions as the incremental class, so the two agree bit for bit. NaN where the session has no volume yet.

    Raises:
        ConfigError: bad ``source``/``tz``/``session_start``, or ``opens`` missing when needed.
        DataError: arrays not 1-D, not finite, of different lengths, negative volume, or unsorted times.
    """
    src = check_source(source)
    h = as_float_array("high", high)
    lo = as_float_array("low", low)
    c = as_float_array("close", close)
    v = as_float_array("volume", volume)
    ts = np.ascontiguousarray(ts_ns, dtype=np.int64)
    n = check_same_length(high=h, low=lo, close=c, volume=v, ts_ns=ts)
    if bool(np.any(v < 0)):
        raise DataError(f"volume[{int(np.argmax(v < 0))}] is negative")
    if src in ("open", "ohlc4"):
        if opens is None:
            raise ConfigError(f"session_vwap source {src!r} needs the opens array")
        o = as_float_array("opens", opens)
        check_same_length(high=h, opens=o)
        price = o if src == "open" else (o + h + lo + c) / 4.0
    elif src == "hlc3":
        price = (h + lo + c) / 3.0
    elif src == "hl2":
        price = (h + lo) / 2.0
    else:
        price = {"close": c, "high": h, "low": lo}[src]
    sid = session_ids(ts, tz, session_start)
    out = nan_array(n)
    if n == 0:
        return out
    cuts = np.flatnonzero(np.diff(sid)) + 1
    pv = price * v
    for a, b in zip(np.r_[0, cuts].tolist(), np.r_[cuts, n].tolist(), strict=True):
        cum_v = np.cumsum(v[a:b])
        cum_pv = np.cumsum(pv[a:b])
        with np.errstate(invalid="ignore", divide="ignore"):
            out[a:b] = np.where(cum_v > 0, cum_pv / cum_v, np.nan)
    return out


__all__ = ["CME_SESSION_START", "CME_SESSION_TZ", "SessionVWAP", "session_bounds", "session_ids", "session_vwap"]
