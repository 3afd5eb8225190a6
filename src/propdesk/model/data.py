"""Market-data records: quotes, trades, bars, depth updates, and columnar bar/trade series.

Timestamps are UTC nanoseconds since the Unix epoch (``int``). ``ts_event_ns`` is the exchange's time (what bar
aggregation and every time rule use); ``ts_recv_ns`` is when propdesk (or the vendor) received it.

Prices in market-data records are ``float`` points, for speed on the hot path; loaders check that every price is on
the contract's tick grid before a record is built, and money is computed from whole ticks (see
:mod:`propdesk.model.price`), never from these floats directly. Sizes are whole contracts (``int``).

The per-event records (:class:`QuoteTick`, :class:`TradeTick`, :class:`Bar`, :class:`DepthUpdate`) are slotted but not
frozen dataclasses: a frozen one costs about 1.9 us to build on these machines against 0.36 us, and millions are built
per backtest. Treat them as immutable: nothing in propdesk changes a record after it is built.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

from propdesk.core.errors import DataError
from propdesk.model.enums import AggressorSide, BookAction, BookSide

NS_PER_SECOND: Final[int] = 1_000_000_000
NS_PER_MINUTE: Final[int] = 60 * NS_PER_SECOND
NS_PER_HOUR: Final[int] = 60 * NS_PER_MINUTE
NS_PER_DAY: Final[int] = 24 * NS_PER_HOUR

_UNIT_NS: Final[dict[str, int]] = {"s": NS_PER_SECOND, "m": NS_PER_MINUTE, "h": NS_PER_HOUR, "d": NS_PER_DAY}
_TIMEFRAME_RE = re.compile(r"^\s*(\d+)\s*(s|m|h|d)\s*$")


@dataclass(frozen=True, slots=True)
class Timeframe:
    """A bar interval: ``step`` units of ``unit`` (``s`` seconds, ``m`` minutes, ``h`` hours, ``d`` trading days).

    ``Timeframe.parse("5m")`` is five minutes. A ``d`` timeframe means CME sessions (17:00 America/Chicago
    boundary), not calendar days; its :attr:`ns` is nominal (24 h) and aggregators treat it by session.

    Raises:
        ValueError: from :meth:`parse` for anything but ``<positive int><s|m|h|d>``.
    """

    step: int
    unit: str

    def __post_init__(self) -> None:
        if self.unit not in _UNIT_NS:
            raise ValueError(f"timeframe unit {self.unit!r} must be one of s, m, h, d")
        if self.step <= 0:
            raise ValueError(f"timeframe step {self.step} must be positive")

    @classmethod
    def parse(cls, text: str) -> Timeframe:
        """Parse ``"1m"``, ``"15s"``, ``"4h"``, ``"1d"``."""
        m = _TIMEFRAME_RE.match(text)
        if m is None:
            raise ValueError(f"timeframe {text!r} is not of the form <n><s|m|h|d>, e.g. 1m, 5m, 1h, 1d")
        return cls(int(m.group(1)), m.group(2))

    @property
    def ns(self) -> int:
        """The interval in nanoseconds (nominal 24 h per step for ``d``)."""
        return self.step * _UNIT_NS[self.unit]

    def __str__(self) -> str:
        return f"{self.step}{self.unit}"


@dataclass(slots=True)
class QuoteTick:
    """Top of book: best bid and ask (points) with their sizes (contracts)."""

    symbol: str
    bid: float
    ask: float
    bid_size: int
    ask_size: int
    ts_event_ns: int
    ts_recv_ns: int = 0


@dataclass(slots=True)
class TradeTick:
    """One trade print: price (points), size (contracts) and aggressor side."""

    symbol: str
    price: float
    size: int
    aggressor: AggressorSide
    ts_event_ns: int
    ts_recv_ns: int = 0
    trade_id: str = ""


@dataclass(slots=True)
class Bar:
    """An OHLCV bar over ``[ts_open_ns, ts_close_ns)`` (UTC ns); prices in points, volume in contracts.

    A bar is only known at ``ts_close_ns``: anything acting on its close acts at that time.
    """

    symbol: str
    timeframe: Timeframe
    open: float
    high: float
    low: float
    close: float
    volume: int
    ts_open_ns: int
    ts_close_ns: int


@dataclass(slots=True)
class DepthUpdate:
    """One change to an order book.

    For L2 (market by price) ``order_id`` is 0 and ``size`` is the new aggregate size at ``price``; ``level`` is the
    0-based depth level when the source says it (MBP-10), else -1. For L3 (market by order) ``order_id`` is the
    exchange's order id and ``size`` that order's size. ``side`` is ``None`` only for a CLEAR of the whole book.
    ``sequence`` is the venue's sequence number (0 if unknown); ``is_last`` is False while more updates with the
    same event time follow (Databento's F_LAST flag), so consumers can act only on consistent books.
    """

    symbol: str
    action: BookAction
    side: BookSide | None
    price: float
    size: int
    ts_event_ns: int
    order_id: int = 0
    level: int = -1
    sequence: int = 0
    is_last: bool = True
    ts_recv_ns: int = 0


def _as_i64(a: npt.ArrayLike) -> npt.NDArray[np.int64]:
    return np.ascontiguousarray(a, dtype=np.int64)


def _as_f64(a: npt.ArrayLike) -> npt.NDArray[np.float64]:
    return np.ascontiguousarray(a, dtype=np.float64)


@dataclass(frozen=True, eq=False)
class BarSeries:
    """Columnar OHLCV bars of one symbol and timeframe, sorted by ``ts_open_ns``; the form history and files use.

    Arrays (all the same length n): ``ts_open_ns``/``ts_close_ns`` int64 UTC ns, ``open``/``high``/``low``/``close``
    float64 points, ``volume`` int64 contracts.

    Raises:
        DataError: at construction if the arrays differ in length, are unsorted, or a bar's high/low do not bound
            its open and close.
    """

    symbol: str
    timeframe: Timeframe
    ts_open_ns: npt.NDArray[np.int64]
    ts_close_ns: npt.NDArray[np.int64]
    open: npt.NDArray[np.float64]
    high: npt.NDArray[np.float64]
    low: npt.NDArray[np.float64]
    close: npt.NDArray[np.float64]
    volume: npt.NDArray[np.int64]
    source: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        cols = {
            "ts_open_ns": _as_i64(self.ts_open_ns),
            "ts_close_ns": _as_i64(self.ts_close_ns),
            "open": _as_f64(self.open),
            "high": _as_f64(self.high),
            "low": _as_f64(self.low),
            "close": _as_f64(self.close),
            "volume": _as_i64(self.volume),
        }
        n = len(cols["ts_open_ns"])
        for name, arr in cols.items():
            if arr.ndim != 1 or len(arr) != n:
                raise DataError(f"bar column {name!r} has {len(arr)} rows, expected {n}", path=self.source or None)
            object.__setattr__(self, name, arr)
        if n > 1 and bool(np.any(np.diff(cols["ts_open_ns"]) <= 0)):
            i = int(np.argmax(np.diff(cols["ts_open_ns"]) <= 0)) + 1
            raise DataError(f"bars are not strictly increasing in time at bar {i}", path=self.source or None)
        hi, lo = cols["high"], cols["low"]
        bad = (hi < lo) | (hi < cols["open"]) | (hi < cols["close"]) | (lo > cols["open"]) | (lo > cols["close"])
        if bool(np.any(bad)):
            i = int(np.argmax(bad))
            raise DataError(f"bar {i} has a high/low that does not bound its open and close", path=self.source or None)

    def __len__(self) -> int:
        return len(self.ts_open_ns)

    def equals(self, other: BarSeries) -> bool:
        """True when ``other`` has the same symbol, timeframe and bars, field for field (``==`` is identity)."""
        return (
            self.symbol == other.symbol
            and self.timeframe == other.timeframe
            and all(
                np.array_equal(getattr(self, name), getattr(other, name))
                for name in ("ts_open_ns", "ts_close_ns", "open", "high", "low", "close", "volume")
            )
        )

    def __iter__(self) -> Iterator[Bar]:
        sym, tf = self.symbol, self.timeframe
        for to, tc, o, h, lo, c, v in zip(
            self.ts_open_ns.tolist(),
            self.ts_close_ns.tolist(),
            self.open.tolist(),
            self.high.tolist(),
            self.low.tolist(),
            self.close.tolist(),
            self.volume.tolist(),
            strict=True,
        ):
            yield Bar(sym, tf, o, h, lo, c, v, to, tc)

    def bar(self, i: int) -> Bar:
        """The ``i``-th bar as a :class:`Bar`."""
        return Bar(
            self.symbol,
            self.timeframe,
            float(self.open[i]),
            float(self.high[i]),
            float(self.low[i]),
            float(self.close[i]),
            int(self.volume[i]),
            int(self.ts_open_ns[i]),
            int(self.ts_close_ns[i]),
        )

    def between(self, start_ns: int | None = None, end_ns: int | None = None) -> BarSeries:
        """The bars whose open time is in ``[start_ns, end_ns)`` (either bound may be ``None``)."""
        lo = 0 if start_ns is None else int(np.searchsorted(self.ts_open_ns, start_ns, side="left"))
        hi = len(self) if end_ns is None else int(np.searchsorted(self.ts_open_ns, end_ns, side="left"))
        return BarSeries(
            self.symbol,
            self.timeframe,
            self.ts_open_ns[lo:hi],
            self.ts_close_ns[lo:hi],
            self.open[lo:hi],
            self.high[lo:hi],
            self.low[lo:hi],
            self.close[lo:hi],
            self.volume[lo:hi],
            source=self.source,
        )


@dataclass(frozen=True, eq=False)
class TradeSeries:
    """Columnar trade prints of one symbol, sorted by ``ts_event_ns`` (ties keep file order).

    Arrays (length n): ``ts_event_ns`` int64 UTC ns, ``price`` float64 points, ``size`` int64 contracts,
    ``aggressor`` int8 (:class:`AggressorSide` values).

    Raises:
        DataError: if the arrays differ in length, times go backwards, or a size is not positive.
    """

    symbol: str
    ts_event_ns: npt.NDArray[np.int64]
    price: npt.NDArray[np.float64]
    size: npt.NDArray[np.int64]
    aggressor: npt.NDArray[np.int8]
    source: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        ts = _as_i64(self.ts_event_ns)
        px = _as_f64(self.price)
        sz = _as_i64(self.size)
        ag = np.ascontiguousarray(self.aggressor, dtype=np.int8)
        n = len(ts)
        for name, arr in (("price", px), ("size", sz), ("aggressor", ag)):
            if len(arr) != n:
                raise DataError(f"trade column {name!r} has {len(arr)} rows, expected {n}", path=self.source or None)
        if n > 1 and bool(np.any(np.diff(ts) < 0)):
            i = int(np.argmax(np.diff(ts) < 0)) + 1
            raise DataError(f"trades go backwards in time at trade {i}", path=self.source or None)
        if n and bool(np.any(sz <= 0)):
            raise DataError(f"trade {int(np.argmax(sz <= 0))} has a non-positive size", path=self.source or None)
        object.__setattr__(self, "ts_event_ns", ts)
        object.__setattr__(self, "price", px)
        object.__setattr__(self, "size", sz)
        object.__setattr__(self, "aggressor", ag)

    def __len__(self) -> int:
        return len(self.ts_event_ns)

    def equals(self, other: TradeSeries) -> bool:
        """True when ``other`` has the same symbol and prints, field for field (``==`` is identity)."""
        return self.symbol == other.symbol and all(
            np.array_equal(getattr(self, name), getattr(other, name))
            for name in ("ts_event_ns", "price", "size", "aggressor")
        )

    def __iter__(self) -> Iterator[TradeTick]:
        sym = self.symbol
        for ts, px, sz, ag in zip(
            self.ts_event_ns.tolist(), self.price.tolist(), self.size.tolist(), self.aggressor.tolist(), strict=True
        ):
            yield TradeTick(sym, px, sz, AggressorSide(ag), ts)
