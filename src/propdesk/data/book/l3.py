"""L3 (market-by-order) order book built from Databento MBO events, with an L2 view maintained incrementally.

Semantics follow Databento's MBO schema (https://databento.com/docs/schemas-and-data-formats/mbo) and its CME
notes (https://databento.com/docs/venues-and-datasets/glbx-mdp3):

* **A** add: a new order (side, price, size). An add for an order id already in the book replaces that order
  (counted in ``duplicate_adds``).
* **C** cancel: reduce the order by ``size``; the order is removed when nothing is left (``size`` 0 removes it).
* **M** modify: the order's new price and/or size; it leaves its old level and joins the new one (new priority;
  queue position is not modelled).
* **R** clear: empty the book.
* **T** trade, **F** fill, **N** none: no change. On CME every fill is followed by the C/M messages that take the
  filled quantity off the book (see ``shared/data/README.md``), so applying T/F as well would double-count.
* **Snapshots**: records flagged F_SNAPSHOT (``flags & 32``) carry the whole book. The first snapshot record after a
  non-snapshot record (or at the start) clears the book, because a snapshot replaces it; Databento normally sends an
  R first, but the ESH4 2023-12-25 file does not.
* **Consistency**: the book is consistent only after a record with F_LAST (``flags & 128``); :meth:`L3Book.apply_mbo`
  returns True then and runs the L2 crossed-book check at that record's ``ts_event``.
* **Unknown order ids** on C or M (e.g. a replay that starts mid-stream without a snapshot) never raise: a C is
  ignored, an M is treated as an add of the order's new state; both are counted in ``unknown_order_events``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np

from propdesk.core.errors import DataError
from propdesk.data.book.l2 import L2Book, to_fixed
from propdesk.data.loaders.dbn import F_LAST, MboArrays
from propdesk.model.data import NS_PER_SECOND, DepthUpdate
from propdesk.model.enums import BookAction, BookSide

F_SNAPSHOT: Final[int] = 1 << 5
"""Databento flag: the record is part of a book snapshot (replay start, recovery)."""

_SIDE_CODE: Final[dict[str, int]] = {"B": int(BookSide.BID), "A": int(BookSide.ASK)}
_ACTION_CODE: Final[dict[BookAction, str]] = {
    BookAction.ADD: "A",
    BookAction.UPDATE: "M",
    BookAction.DELETE: "C",
    BookAction.CLEAR: "R",
}


class L3Book:
    """A market-by-order book for one contract; ``l2`` is its aggregated price-level view (an :class:`L2Book`).

    Orders are kept as ``order_id -> (side, fixed-point price, size)``. See the module doc for the action semantics.

    Attributes:
        l2: the aggregated book (best bid/ask, levels, depth, imbalance, crossed counters).
        unknown_order_events: C/M records whose order id was not in the book.
        duplicate_adds: A records for an order id already in the book.
        events: consistent points seen (records with F_LAST).
    """

    __slots__ = ("_in_snapshot", "_orders", "duplicate_adds", "events", "l2", "unknown_order_events")

    def __init__(self) -> None:
        self.l2 = L2Book()
        self._orders: dict[int, tuple[int, int, int]] = {}
        self._in_snapshot = False
        self.unknown_order_events = 0
        self.duplicate_adds = 0
        self.events = 0

    def apply_mbo(  # noqa: PLR0917 - hot path: positional args are measurably faster than keywords
        self, action: str, side: str, price: int, size: int, order_id: int, flags: int, ts_event_ns: int
    ) -> bool:
        """Apply one MBO record (action/side one-character codes, fixed-point price, size in contracts).

        Returns True when the record ends an exchange event (F_LAST): the book is consistent.

        Raises:
            DataError: for an unknown action, or an A/M without a B/A side.
        """
        if flags & F_SNAPSHOT:
            if not self._in_snapshot:
                self.clear()
                self._in_snapshot = True
        elif self._in_snapshot:
            self._in_snapshot = False
        orders = self._orders
        if action == "A":
            s = _SIDE_CODE.get(side)
            if s is None:
                raise DataError(f"MBO add of order {order_id} has side {side!r}, expected B or A")
            old = orders.get(order_id)
            if old is not None:
                self.duplicate_adds += 1
                self.l2.add_level(old[0], old[1], -old[2])
            orders[order_id] = (s, price, size)
            self.l2.add_level(s, price, size)
        elif action == "C":
            old = orders.get(order_id)
            if old is None:
                self.unknown_order_events += 1
            else:
                left = old[2] - size
                if size <= 0 or left <= 0:
                    del orders[order_id]
                    self.l2.add_level(old[0], old[1], -old[2])
                else:
                    orders[order_id] = (old[0], old[1], left)
                    self.l2.add_level(old[0], old[1], -size)
        elif action == "M":
            s = _SIDE_CODE.get(side)
            if s is None:
                raise DataError(f"MBO modify of order {order_id} has side {side!r}, expected B or A")
            old = orders.get(order_id)
            if old is None:
                self.unknown_order_events += 1
            else:
                self.l2.add_level(old[0], old[1], -old[2])
            if size > 0:
                orders[order_id] = (s, price, size)
                self.l2.add_level(s, price, size)
            elif old is not None:
                del orders[order_id]
        elif action == "R":
            self.clear()
        elif action not in ("T", "F", "N"):
            raise DataError(f"unknown MBO action {action!r} (order {order_id})")
        if flags & F_LAST:
            self._in_snapshot = False
            self.events += 1
            self.l2.check_crossed(ts_event_ns)
            return True
        return False

    def apply(self, update: DepthUpdate) -> bool:
        """Apply an L3 :class:`DepthUpdate` (ADD -> A, UPDATE -> M, DELETE -> C, CLEAR -> R; price in points).

        ``update.is_last`` plays the role of F_LAST. Returns True when the book is consistent afterwards.

        Raises:
            DataError: as :meth:`apply_mbo`; also for a non-finite price.
        """
        side = "N" if update.side is None else ("B" if update.side == BookSide.BID else "A")
        price = 0 if update.action == BookAction.CLEAR else to_fixed(update.price)
        return self.apply_mbo(
            _ACTION_CODE[update.action],
            side,
            price,
            update.size,
            update.order_id,
            F_LAST if update.is_last else 0,
            update.ts_event_ns,
        )

    def clear(self) -> None:
        """Empty the book (orders and levels); counters are kept."""
        self._orders.clear()
        self.l2.clear()

    def order(self, order_id: int) -> tuple[BookSide, int, int] | None:
        """The resting order ``order_id`` as (side, fixed-point price, size), or ``None``."""
        o = self._orders.get(order_id)
        return None if o is None else (BookSide(o[0]), o[1], o[2])

    @property
    def order_count(self) -> int:
        """How many orders rest in the book."""
        return len(self._orders)

    @property
    def in_snapshot(self) -> bool:
        """True while snapshot records are being applied (the book is not yet complete)."""
        return self._in_snapshot


def _record_indices(events: MboArrays, instrument_id: int | None) -> list[int]:
    if instrument_id is None:
        ids = np.unique(events.instrument_id)
        if len(ids) > 1:
            raise DataError(f"MBO events hold {len(ids)} instruments {ids.tolist()[:5]}; pass instrument_id")
        return list(range(len(events)))
    return np.flatnonzero(events.instrument_id == instrument_id).tolist()


def replay_mbo(
    events: MboArrays,
    book: L3Book | None = None,
    on_consistent: Callable[[L3Book, int], None] | None = None,
    *,
    instrument_id: int | None = None,
) -> L3Book:
    """Apply the records of ``events`` (from :func:`propdesk.data.loaders.load_mbo`) to ``book`` and return it.

    ``book`` defaults to a new :class:`L3Book`. Only records of ``instrument_id`` are applied; it may be omitted
    when the events hold one instrument. ``on_consistent(book, i)`` is called after each applied record ``i`` (an
    index into ``events``) that carries F_LAST.

    Raises:
        DataError: as :meth:`L3Book.apply_mbo` (the message names the 1-based record number); if ``events`` hold
            several instruments and ``instrument_id`` is ``None``.
    """
    book = L3Book() if book is None else book
    chars = [chr(c) for c in range(256)]
    acts = [chars[c] for c in events.action.tolist()]
    sides = [chars[c] for c in events.side.tolist()]
    prices = events.price_raw.tolist()
    sizes = events.size.tolist()
    oids = events.order_id.tolist()
    flags = events.flags.tolist()
    tse = events.ts_event_ns.tolist()
    apply = book.apply_mbo
    for i in _record_indices(events, instrument_id):
        try:
            last = apply(acts[i], sides[i], prices[i], sizes[i], oids[i], flags[i], tse[i])
        except DataError as exc:
            raise DataError(exc.reason, row=i + 1) from exc
        if last and on_consistent is not None:
            on_consistent(book, i)
    return book


@dataclass(frozen=True, slots=True)
class BookSample:
    """A book sampled once per second.

    ``second_ns`` is the sampled second (UTC ns, a whole second); ``ts_event_ns``/``ts_recv_ns`` are the times of the
    record after which it was taken; ``bids``/``asks`` the best levels, best first, as (fixed-point price, size).
    """

    second_ns: int
    ts_event_ns: int
    ts_recv_ns: int
    bids: list[tuple[int, int]]
    asks: list[tuple[int, int]]


def sample_first_per_second(
    events: MboArrays, n_levels: int = 10, book: L3Book | None = None, *, instrument_id: int | None = None
) -> list[BookSample]:
    """Replay ``events`` and take the ``n_levels``-level book once per UTC second, by receive time.

    Convention (it reproduces ``ESH4_20231225_mbp10_1s_from_mbo.csv.gz`` exactly, 2,926 of 2,926 rows): for each
    second T in which at least one F_LAST record was *received* (``T <= ts_recv < T + 1 s``), the sample is the book
    right after the *first* such record; seconds without one are omitted. This equals a per-event MBP-10 series
    indexed by ``ts_recv`` resampled with ``first()``. (Taking the book as of the last record before T, by either
    ``ts_event`` or ``ts_recv``, matches only ~490 of 2,926 rows.)

    Raises:
        DataError: as :func:`replay_mbo`.
    """
    out: list[BookSample] = []
    last_second = -1
    recv = events.ts_recv_ns.tolist()
    ev = events.ts_event_ns.tolist()
    bid, ask = BookSide.BID, BookSide.ASK

    def take(b: L3Book, i: int) -> None:
        nonlocal last_second
        second = recv[i] - recv[i] % NS_PER_SECOND
        if second != last_second:
            last_second = second
            out.append(
                BookSample(second, ev[i], recv[i], b.l2.levels_fixed(bid, n_levels), b.l2.levels_fixed(ask, n_levels))
            )

    replay_mbo(events, book, take, instrument_id=instrument_id)
    return out
