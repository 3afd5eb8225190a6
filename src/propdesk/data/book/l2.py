"""L2 (market-by-price) order book: aggregate size per price level on each side.

Prices inside the book are **fixed-point integers in units of 1e-9 points** (Databento's representation, see
https://databento.com/docs/standards-and-conventions/common-fields-enums-types#prices), so no float is ever a key.
Public queries that return a price in points (``best_bid``, ``levels``, ``spread``, ...) convert at the edge with
:func:`from_fixed`; the ``*_fixed`` variants return the exact integers. Sizes are whole contracts (``int``).

Layout: per side a ``dict`` key -> size plus a list of keys kept sorted with :mod:`bisect`. Bid keys are the price,
ask keys are the negated price, so both lists are ascending and the best level is always the *last* element; most
changes happen near the top of the book, so inserts and deletes move few list elements.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections.abc import Iterable
from typing import Final

from propdesk.core.errors import DataError
from propdesk.model.data import DepthUpdate, QuoteTick
from propdesk.model.enums import BookAction, BookSide

PRICE_SCALE: Final[int] = 1_000_000_000
"""Fixed-point scale of book prices: 1 point == 1_000_000_000 units (Databento's 1e-9 convention)."""

_BID: Final[int] = int(BookSide.BID)
_ASK: Final[int] = int(BookSide.ASK)


def to_fixed(price: float) -> int:
    """Convert a price in points (float) to the book's fixed-point int (1e-9 points), rounding to the nearest unit.

    Raises:
        DataError: if ``price`` is not finite.
    """
    if not math.isfinite(price):
        raise DataError(f"book price {price!r} is not a finite number")
    return round(price * PRICE_SCALE)


def from_fixed(price_fixed: int) -> float:
    """Convert a fixed-point book price (1e-9 points) to points (float)."""
    return price_fixed / PRICE_SCALE


class L2Book:
    """An aggregated (market-by-price) order book for one contract.

    Update with :meth:`apply_level` (hot path, fixed-point price), :meth:`add_level` (size delta, used by
    :class:`~propdesk.data.book.l3.L3Book`), :meth:`apply_snapshot` (MBP-10 style replace) or :meth:`apply`
    (a :class:`~propdesk.model.data.DepthUpdate`, price in points).

    Crossed-book detection: :meth:`check_crossed` is run at every consistent point (a ``DepthUpdate`` with
    ``is_last``, the end of every MBO event in ``L3Book``, every snapshot); :meth:`apply_level` does not run it, so
    a transiently crossed book inside one exchange event is not reported. ``crossed`` is the state at the last check,
    ``crossed_events`` counts the checks that found the book crossed (best bid >= best ask) and
    ``last_crossed_ts_ns`` is the time (UTC ns) of the last such check (``None`` if never crossed).

    Attributes:
        missing_deletes: deletes (size 0) of a price level that was not in the book; ignored, counted.
    """

    __slots__ = (
        "_ask",
        "_ask_keys",
        "_bid",
        "_bid_keys",
        "crossed",
        "crossed_events",
        "last_crossed_ts_ns",
        "missing_deletes",
    )

    def __init__(self) -> None:
        self._bid: dict[int, int] = {}
        self._ask: dict[int, int] = {}
        self._bid_keys: list[int] = []
        self._ask_keys: list[int] = []
        self.crossed = False
        self.crossed_events = 0
        self.last_crossed_ts_ns: int | None = None
        self.missing_deletes = 0

    # ------------------------------------------------------------------ updates

    def apply_level(self, side: int, price: int, size: int) -> None:
        """Set the aggregate ``size`` (contracts) at fixed-point ``price`` on ``side`` (a :class:`BookSide`).

        ``size`` 0 deletes the level (a delete of an absent level is counted in ``missing_deletes``).

        Raises:
            DataError: if ``size`` is negative.
        """
        if side == _BID:
            d = self._bid
            keys = self._bid_keys
            k = price
        else:
            d = self._ask
            keys = self._ask_keys
            k = -price
        if size > 0:
            if k not in d:
                insort(keys, k)
            d[k] = size
        elif size == 0:
            if k in d:
                del d[k]
                del keys[bisect_left(keys, k)]
            else:
                self.missing_deletes += 1
        else:
            raise DataError(f"negative size {size} for {BookSide(side).name} level at {from_fixed(price)}")

    def add_level(self, side: int, price: int, delta: int) -> int:
        """Add ``delta`` contracts (may be negative) to the level at fixed-point ``price``; return the new size.

        A level that reaches 0 is removed. A result below 0 (more removed than the level holds: inconsistent input)
        also removes the level and returns the negative value so the caller can count it.
        """
        if side == _BID:
            d = self._bid
            keys = self._bid_keys
            k = price
        else:
            d = self._ask
            keys = self._ask_keys
            k = -price
        old = d.get(k)
        if old is None:
            if delta > 0:
                insort(keys, k)
                d[k] = delta
            return delta
        new = old + delta
        if new > 0:
            d[k] = new
        else:
            del d[k]
            del keys[bisect_left(keys, k)]
        return new

    def apply_snapshot(
        self, bids: Iterable[tuple[int, int]], asks: Iterable[tuple[int, int]], ts_ns: int | None = None
    ) -> None:
        """Replace the whole book with ``bids`` and ``asks``: iterables of (fixed-point price, size) (an MBP-10 record).

        Entries with size <= 0 are skipped (empty MBP levels). The crossed check runs afterwards when ``ts_ns`` is
        given.

        Raises:
            DataError: if a price appears twice on one side.
        """
        self.clear()
        for name, entries, side in (("bid", bids, _BID), ("ask", asks, _ASK)):
            d = self._bid if side == _BID else self._ask
            sign = 1 if side == _BID else -1
            for price, size in entries:
                if size <= 0:
                    continue
                k = sign * price
                if k in d:
                    raise DataError(f"snapshot has {name} price {from_fixed(price)} twice")
                d[k] = size
        self._bid_keys = sorted(self._bid)
        self._ask_keys = sorted(self._ask)
        if ts_ns is not None:
            self.check_crossed(ts_ns)

    def clear(self, side: BookSide | None = None) -> None:
        """Empty one side, or the whole book when ``side`` is ``None``. Crossed counters are kept."""
        if side is None or side == _BID:
            self._bid.clear()
            self._bid_keys.clear()
        if side is None or side == _ASK:
            self._ask.clear()
            self._ask_keys.clear()

    def apply(self, update: DepthUpdate) -> None:
        """Apply an L2 :class:`DepthUpdate` (price in points, ``size`` the new aggregate size at that price).

        ADD/UPDATE set the level, DELETE removes it, CLEAR empties ``update.side`` (or the whole book when the side is
        ``None``). When ``update.is_last`` the crossed check runs at ``update.ts_event_ns``.

        Raises:
            DataError: if a non-CLEAR update has no side, a non-finite price or a negative size.
        """
        action = update.action
        if action == BookAction.CLEAR:
            self.clear(update.side)
        else:
            if update.side is None:
                raise DataError(f"depth update {action.name} at {update.price} has no side")
            size = 0 if action == BookAction.DELETE else update.size
            self.apply_level(update.side, to_fixed(update.price), size)
        if update.is_last:
            self.check_crossed(update.ts_event_ns)

    def check_crossed(self, ts_ns: int) -> bool:
        """Record whether the book is crossed now (best bid >= best ask); return it. See the class doc."""
        crossed = bool(self._bid_keys) and bool(self._ask_keys) and self._bid_keys[-1] >= -self._ask_keys[-1]
        self.crossed = crossed
        if crossed:
            self.crossed_events += 1
            self.last_crossed_ts_ns = ts_ns
        return crossed

    # ------------------------------------------------------------------ queries

    def best_bid_fixed(self) -> tuple[int, int] | None:
        """Best bid as (fixed-point price, size), or ``None`` if there is no bid."""
        keys = self._bid_keys
        if not keys:
            return None
        k = keys[-1]
        return k, self._bid[k]

    def best_ask_fixed(self) -> tuple[int, int] | None:
        """Best ask as (fixed-point price, size), or ``None`` if there is no ask."""
        keys = self._ask_keys
        if not keys:
            return None
        k = keys[-1]
        return -k, self._ask[k]

    def best_bid(self) -> tuple[float, int] | None:
        """Best bid as (price in points, size in contracts), or ``None`` if there is no bid."""
        b = self.best_bid_fixed()
        return None if b is None else (from_fixed(b[0]), b[1])

    def best_ask(self) -> tuple[float, int] | None:
        """Best ask as (price in points, size in contracts), or ``None`` if there is no ask."""
        a = self.best_ask_fixed()
        return None if a is None else (from_fixed(a[0]), a[1])

    def spread(self) -> float | None:
        """Best ask minus best bid in points (negative when crossed), or ``None`` if a side is empty."""
        if not self._bid_keys or not self._ask_keys:
            return None
        return from_fixed(-self._ask_keys[-1] - self._bid_keys[-1])

    def mid(self) -> float | None:
        """Mid price (best bid + best ask) / 2 in points, or ``None`` if a side is empty."""
        if not self._bid_keys or not self._ask_keys:
            return None
        return (self._bid_keys[-1] - self._ask_keys[-1]) / (2 * PRICE_SCALE)

    def levels_fixed(self, side: BookSide, n: int = 10) -> list[tuple[int, int]]:
        """The best ``n`` levels of ``side``, best first, as (fixed-point price, size); fewer if the side is thinner."""
        if side == _BID:
            d = self._bid
            return [(k, d[k]) for k in self._bid_keys[: -n - 1 : -1]] if n > 0 else []
        d = self._ask
        return [(-k, d[k]) for k in self._ask_keys[: -n - 1 : -1]] if n > 0 else []

    def levels(self, side: BookSide, n: int = 10) -> list[tuple[float, int]]:
        """The best ``n`` levels of ``side``, best first, as (price in points, size in contracts)."""
        return [(from_fixed(p), s) for p, s in self.levels_fixed(side, n)]

    def level_count(self, side: BookSide) -> int:
        """How many price levels ``side`` holds."""
        return len(self._bid_keys) if side == _BID else len(self._ask_keys)

    def size_at(self, side: BookSide, price: int) -> int:
        """Aggregate size (contracts) at fixed-point ``price`` on ``side``; 0 if there is no such level."""
        return self._bid.get(price, 0) if side == _BID else self._ask.get(-price, 0)

    def depth(self, side: BookSide, n: int = 10) -> int:
        """Total size (contracts) over the best ``n`` levels of ``side``."""
        return sum(s for _, s in self.levels_fixed(side, n))

    def imbalance(self, n: int = 1) -> float | None:
        """(bid depth - ask depth) / (bid depth + ask depth) over the best ``n`` levels, in [-1, 1].

        ``None`` when both sides are empty. +1 means only bids, -1 only asks.
        """
        b = self.depth(BookSide.BID, n)
        a = self.depth(BookSide.ASK, n)
        total = b + a
        if total == 0:
            return None
        return (b - a) / total

    def is_crossed(self) -> bool:
        """True if best bid >= best ask right now (both sides non-empty). Does not touch the crossed counters."""
        return bool(self._bid_keys) and bool(self._ask_keys) and self._bid_keys[-1] >= -self._ask_keys[-1]

    def to_quote(self, symbol: str, ts_event_ns: int, ts_recv_ns: int = 0) -> QuoteTick:
        """The top of the book as a :class:`QuoteTick` (prices in points).

        Raises:
            DataError: if the bid or the ask side is empty.
        """
        b = self.best_bid()
        a = self.best_ask()
        if b is None or a is None:
            empty = "bid" if b is None else "ask"
            raise DataError(f"cannot make a quote for {symbol}: the {empty} side of the book is empty")
        return QuoteTick(symbol, b[0], a[0], b[1], a[1], ts_event_ns, ts_recv_ns)

    def __repr__(self) -> str:
        return f"L2Book(bid={self.best_bid()}, ask={self.best_ask()}, levels={len(self._bid)}/{len(self._ask)})"
