"""Market-data replay of the gateway: real data from ``../shared/data`` streamed as quotes, trades and depth.

Each :class:`~propdesk.emulators.projectx.config.FeedConfig` file feeds the active contract of its roots. Sources:

* **Bars** (e.g. the ES 1-minute TopstepX export): every bar becomes four prints along the path the sim's matching
  engine assumes (:mod:`propdesk.brokers.sim.matching`): open, the extreme nearer the open (tie: the one away from the
  close), the other extreme, close, at 0, 1/4, 2/4 and 3/4 of the bar. The bar's volume is split over them (whole
  contracts, the remainder on the last prints, so the sum is the bar's volume exactly). The quote after a print is a
  one-tick market touching it: an up-tick (buyer aggressor) leaves ``ask = price, bid = price - tick``, a down-tick
  ``bid = price, ask = price + tick``; unchanged prices keep the last aggressor (the tick rule). **This is
  synthetic**: bars carry no quotes.
* **Trades** (e.g. the ESM8 prints): each print is streamed as it is (size from the file or
  ``default_trade_size``; aggressor from the file, else the tick rule) with the same one-tick quote around it.
* **MBO** (e.g. the ESH4 Databento file): the L3 book (:class:`propdesk.data.book.L3Book`) is replayed record by
  record; at each consistent point (F_LAST) the changed price levels are streamed as depth, the top of book as the
  quote and the trade records (``T``; aggressor from the record's side) as trades.

For bars and trades the depth is a **synthetic** ``depth_levels``-level book around the quote: level sizes are a
fixed function of the price (``5 + (ticks * 7) mod 23`` contracts), so a level keeps its size while the book moves and
only the levels entering or leaving are streamed.

Quote statistics: ``open``/``high``/``low``/``volume`` are per session; a new session starts after 30 minutes
without prints; ``change`` is measured from the previous session's last price (the session's first price when
there is none).

Time: each feed's timestamps are shifted by a whole number of minutes so that its ``start`` is presented at the
gateway's start time (``clock_mode="now"``), or kept (``"data"``). The :class:`PresentedClock` runs at ``speed``
times real time from there; the replay streams every event whose presented time has come. The sim broker of every
account processes the same prints, quotes and books (through :class:`TradingSink`), so orders fill on this data.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Protocol

import numpy as np

from propdesk.core.errors import DataError
from propdesk.data.book.l2 import L2Book, from_fixed
from propdesk.data.book.l3 import F_SNAPSHOT, L3Book
from propdesk.data.loaders import load_bars, load_mbo, load_trades_csv
from propdesk.emulators.projectx.config import FeedConfig, GatewayConfig
from propdesk.emulators.projectx.history import FeedHistory, bars_from_prints
from propdesk.emulators.projectx.wire import ContractCatalog, ContractInfo, iso
from propdesk.model.contracts import spec
from propdesk.model.data import QuoteTick, TradeTick
from propdesk.model.enums import AggressorSide, BookSide

log = logging.getLogger(__name__)

NS: Final[int] = 1_000_000_000
SESSION_GAP_NS: Final[int] = 30 * 60 * NS
BUY: Final[int] = 0
SELL: Final[int] = 1
UNKNOWN: Final[int] = -1
DOM_ASK: Final[int] = 1
DOM_BID: Final[int] = 2
DOM_RESET: Final[int] = 6


class TradingSink(Protocol):
    """Receives the replayed data for the sim brokers (implemented by
    :class:`propdesk.emulators.projectx.state.GatewayState`)."""

    def advance(self, ts_ns: int) -> None:
        """Move the sim clock to ``ts_ns`` (never backwards)."""
        ...

    def on_trade(self, tick: TradeTick) -> None:
        """A print of an active contract (``tick.symbol`` is the contract's symbol, ``ESZ6``)."""
        ...

    def on_quote(self, quote: QuoteTick) -> None:
        """A top-of-book change."""
        ...

    def on_book(self, symbol: str, book: L2Book, ts_ns: int) -> None:
        """A consistent L2 book (MBO feeds)."""
        ...


class MarketSink(Protocol):
    """Receives wire payloads for the market hub (implemented by
    :class:`propdesk.emulators.projectx.hubs.MarketHub`)."""

    def publish_quote(self, contract_id: str, quote: dict[str, Any]) -> None:
        """A full ``GatewayQuote`` payload."""
        ...

    def publish_trades(self, contract_id: str, items: list[dict[str, Any]]) -> None:
        """``GatewayTrade`` items, oldest first."""
        ...

    def publish_depth(self, contract_id: str, items: list[dict[str, Any]]) -> None:
        """``GatewayDepth`` items, in order."""
        ...


@dataclass(slots=True)
class MarketEvent:
    """One replayed exchange event (data time until the feed shifts it).

    ``prints``: (price points, size contracts, aggressor 0 buy / 1 sell / -1 unknown); ``bid``/``ask`` the top of
    book after the event (``None`` = side empty or unknown); ``levels`` the changed levels (DOM type, price, new
    size) for MBO feeds, ``None`` for a synthetic book; ``reset`` the book was cleared first.
    """

    ts_ns: int
    prints: list[tuple[float, int, int]]
    bid: float | None = None
    ask: float | None = None
    bid_size: int = 0
    ask_size: int = 0
    levels: list[tuple[int, float, int]] | None = None
    reset: bool = False


class PresentedClock:
    """The gateway's presented time (UTC ns): starts at ``start_ns`` and runs at ``speed`` x real time unless paused.

    Args:
        start_ns: presented time at construction.
        speed: presented seconds per real second.
        paused: start frozen (tests step the replay instead).
        mono: monotonic clock in seconds.
    """

    def __init__(
        self, start_ns: int, speed: float, *, paused: bool = False, mono: Callable[[], float] = time.monotonic
    ) -> None:
        self._mono = mono
        self.speed = speed
        self._base_ns = start_ns
        self._base_mono = mono()
        self.paused = paused

    def now_ns(self) -> int:
        """The presented time now."""
        if self.paused:
            return self._base_ns
        return self._base_ns + int((self._mono() - self._base_mono) * self.speed * NS)

    def pause(self) -> None:
        """Freeze the presented time."""
        if not self.paused:
            self._base_ns = self.now_ns()
            self.paused = True

    def resume(self) -> None:
        """Let the presented time run again from where it stands."""
        if self.paused:
            self._base_mono = self._mono()
            self.paused = False

    def set_speed(self, speed: float) -> None:
        """Change the speed from now on."""
        self._base_ns = self.now_ns()
        self._base_mono = self._mono()
        self.speed = speed

    def jump_to(self, ts_ns: int) -> None:
        """Move the presented time forward to ``ts_ns`` (never backwards)."""
        now = self.now_ns()
        if ts_ns > now:
            self._base_ns = ts_ns
            self._base_mono = self._mono()


# --------------------------------------------------------------------------------------------------- loading


@dataclass
class FeedData:
    """A loaded feed in data time: the event source from ``start_ns`` on, and the history arrays."""

    kind: str
    first_ns: int
    start_ns: int
    history: FeedHistory
    events: Callable[[], Iterator[MarketEvent]]
    tick: float
    book: Callable[[], L2Book | None] = lambda: None


def _kind_of(cfg: FeedConfig, path: Path) -> str:
    if cfg.kind != "auto":
        return cfg.kind
    name = path.name.lower()
    if ".mbo." in name:
        return "mbo"
    if "trade" in name:
        return "trades"
    if name.endswith((".csv", ".csv.gz", ".txt")):
        return "bars"
    raise DataError("cannot tell the feed kind from the file name; set kind", path=path)


def _ns(dt: datetime | None) -> int | None:
    return None if dt is None else int(dt.timestamp()) * NS + dt.microsecond * 1000


def _print_events(
    ts: np.ndarray[Any, Any], px: np.ndarray[Any, Any], size: np.ndarray[Any, Any], agg: np.ndarray[Any, Any], i0: int
) -> Iterator[MarketEvent]:
    ts_l, px_l, sz_l, ag_l = ts.tolist(), px.tolist(), size.tolist(), agg.tolist()
    for i in range(i0, len(ts_l)):
        yield MarketEvent(ts_l[i], [(px_l[i], sz_l[i], ag_l[i])])


def _history_from_prints(ts: Any, px: Any, size: Any) -> FeedHistory:
    t, o, h, lo, c, v = bars_from_prints(ts, px, size, 60 * NS)
    return FeedHistory(ts, px, size, t, o, h, lo, c, v)


def load_feed(cfg: FeedConfig, data_dir: Path) -> FeedData:
    """Load one feed's file (module docstring) in data time.

    Raises:
        DataError: the file is missing or malformed, or holds no record at or after ``start``.
    """
    path = Path(cfg.path)
    if not path.is_absolute():
        path = data_dir / path
    if not path.exists():
        raise DataError("market-data file not found", path=path)
    kind = _kind_of(cfg, path)
    root = cfg.roots[0]
    tick = float(_tick_of(root))
    start = _ns(cfg.start)
    if kind == "bars":
        bars = load_bars(path)
        n = len(bars)
        if n == 0:
            raise DataError("no bars in the file", path=path)
        o, h, lo, c = bars.open, bars.high, bars.low, bars.close
        low_first = ((o - lo) < (h - o)) | (((o - lo) == (h - o)) & (c >= o))
        a = np.where(low_first, lo, h)
        b = np.where(low_first, h, lo)
        px = np.stack([o, a, b, c], axis=1).ravel()
        k = np.arange(4, dtype=np.int64)
        dur = bars.ts_close_ns - bars.ts_open_ns
        ts = (bars.ts_open_ns[:, None] + (dur[:, None] * k[None, :]) // 4).ravel()
        q, r = np.divmod(bars.volume, 4)
        vol = (q[:, None] + (k[None, :] >= (4 - r)[:, None])).ravel().astype(np.int64)
        keep = vol > 0
        agg = np.full(len(ts), UNKNOWN, dtype=np.int64)
        hist = FeedHistory(
            ts[keep], px[keep], vol[keep], bars.ts_open_ns, bars.open, bars.high, bars.low, bars.close, bars.volume
        )
    elif kind == "trades":
        loaded = load_trades_csv(path, symbol=root, default_size=cfg.default_trade_size)
        s = loaded.series
        ts, px, vol = s.ts_event_ns, s.price, s.size
        agg = np.where(s.aggressor == AggressorSide.BUYER, BUY, np.where(s.aggressor == AggressorSide.SELLER, SELL, -1))
        hist = _history_from_prints(ts, px, vol)
    else:
        return _load_mbo_feed(path, start, tick)
    if len(ts) == 0:
        raise DataError("no prints in the file", path=path)
    first = int(ts[0])
    i0 = 0 if start is None else int(np.searchsorted(ts, start, side="left"))
    if i0 >= len(ts):
        raise DataError(f"no data at or after the feed start {cfg.start}", path=path)
    ts_c, px_c, vol_c, agg_c = ts, px, vol, agg
    return FeedData(
        kind=kind,
        first_ns=first,
        start_ns=int(ts[i0]),
        history=hist,
        events=lambda: _print_events(ts_c, px_c, vol_c, agg_c, i0),
        tick=tick,
    )


def _tick_of(root: str) -> float:
    return float(spec(root).tick_size.as_decimal())


def _load_mbo_feed(path: Path, start: int | None, tick: float) -> FeedData:
    mbo = load_mbo(path)
    ids = np.unique(mbo.instrument_id)
    if len(ids) != 1:
        counts = [int((mbo.instrument_id == i).sum()) for i in ids]
        iid = int(ids[int(np.argmax(counts))])
        sel = np.flatnonzero(mbo.instrument_id == iid)
    else:
        sel = np.arange(len(mbo))
    acts = mbo.action[sel]
    trade = sel[acts == ord("T")]
    t_ts = mbo.ts_event_ns[trade]
    t_px = mbo.price[trade]
    t_sz = mbo.size[trade]
    hist = _history_from_prints(t_ts, t_px, t_sz)
    first = int(mbo.ts_event_ns[sel[0]])
    start_ns = first if start is None else max(first, start)
    book = L3Book()

    def events() -> Iterator[MarketEvent]:
        book.clear()
        a_l = [chr(x) for x in mbo.action[sel].tolist()]
        s_l = [chr(x) for x in mbo.side[sel].tolist()]
        p_l = mbo.price_raw[sel].tolist()
        z_l = mbo.size[sel].tolist()
        o_l = mbo.order_id[sel].tolist()
        f_l = mbo.flags[sel].tolist()
        t_l = mbo.ts_event_ns[sel].tolist()
        touched: set[tuple[int, int]] = set()
        prints: list[tuple[float, int, int]] = []
        reset = False
        apply = book.apply_mbo
        for i in range(len(a_l)):
            a, s, flags = a_l[i], s_l[i], f_l[i]
            if a == "R" or (flags & F_SNAPSHOT and not book.in_snapshot):
                reset = True
                touched.clear()
            if a in ("A", "C", "M"):
                old = book.order(o_l[i])
                if old is not None:
                    touched.add((int(old[0]), old[1]))
                if s in ("B", "A"):
                    touched.add((int(BookSide.BID) if s == "B" else int(BookSide.ASK), p_l[i]))
            elif a == "T" and t_l[i] >= start_ns:
                agg = BUY if s == "B" else SELL if s == "A" else UNKNOWN
                prints.append((from_fixed(p_l[i]), z_l[i], agg))
            last = apply(a, s, p_l[i], z_l[i], o_l[i], flags, t_l[i])
            if not last or t_l[i] < start_ns:
                if last:
                    touched.clear()
                    reset = False
                continue
            l2 = book.l2
            if reset:
                levels = _all_levels(l2)
            else:
                levels = [
                    (DOM_BID if sd == BookSide.BID else DOM_ASK, from_fixed(p), l2.size_at(BookSide(sd), p))
                    for sd, p in sorted(touched)
                ]
            bb, ba = l2.best_bid(), l2.best_ask()
            yield MarketEvent(
                t_l[i],
                prints,
                None if bb is None else bb[0],
                None if ba is None else ba[0],
                0 if bb is None else bb[1],
                0 if ba is None else ba[1],
                levels,
                reset,
            )
            touched = set()
            prints = []
            reset = False

    return FeedData(
        kind="mbo", first_ns=first, start_ns=start_ns, history=hist, events=events, tick=tick, book=lambda: book.l2
    )


def _all_levels(l2: L2Book) -> list[tuple[int, float, int]]:
    out = [(DOM_BID, p, s) for p, s in l2.levels(BookSide.BID, l2.level_count(BookSide.BID))]
    out += [(DOM_ASK, p, s) for p, s in l2.levels(BookSide.ASK, l2.level_count(BookSide.ASK))]
    return out


def _level_size(ticks: int) -> int:
    return 5 + (ticks * 7) % 23


# --------------------------------------------------------------------------------------------------- runtime


@dataclass
class FeedRuntime:
    """A feed being replayed: its data, its contracts, its time shift and its live market state."""

    cfg: FeedConfig
    data: FeedData
    contracts: list[ContractInfo]
    offset_ns: int
    history: FeedHistory
    events: Iterator[MarketEvent]
    head: MarketEvent | None = None
    last: float | None = None
    bid: float | None = None
    ask: float | None = None
    bid_size: int = 0
    ask_size: int = 0
    aggressor: int = BUY
    quote_ref: float | None = None
    open: float | None = None
    high: float | None = None
    low: float | None = None
    volume: int = 0
    prev_close: float | None = None
    last_print_ns: int = -(2**62)
    last_update_ns: int = 0
    synthetic: dict[int, dict[float, int]] = field(default_factory=lambda: {DOM_BID: {}, DOM_ASK: {}})

    def next_ts(self) -> int | None:
        """Presented time of the next event, ``None`` when the feed is exhausted."""
        if self.head is None:
            self.head = next(self.events, None)
            if self.head is not None:
                self.head.ts_ns += self.offset_ns
        return None if self.head is None else self.head.ts_ns

    def pop(self) -> MarketEvent:
        """Take the next event (call :meth:`next_ts` first)."""
        ev = self.head
        assert ev is not None
        self.head = None
        return ev


CATCH_UP_CHUNK = 2000
"""Events the replay task streams before it yields to the event loop."""


class MarketReplay:
    """Streams the configured feeds (module docstring) into the sim brokers and the market hub.

    Args:
        config: the gateway configuration (feeds, data dir, speed, clock mode, synthetic depth size).
        now_ns: the wall-clock start (UTC ns); with ``clock_mode="now"`` it is the presented start time.
        trading: receives every print/quote/book for the sim brokers.
        feeds: pre-loaded feed data per feed config (tests); loaded from the files when ``None``.

    Raises:
        DataError: a feed file is missing or malformed.
    """

    def __init__(
        self,
        config: GatewayConfig,
        *,
        now_ns: int,
        trading: TradingSink,
        feeds: list[FeedData] | None = None,
    ) -> None:
        self.config = config
        self.trading = trading
        self.sink: MarketSink | None = None
        loaded = feeds if feeds is not None else [load_feed(f, config.data_dir) for f in config.feeds]
        if config.clock_mode == "now" or not loaded:
            start = now_ns
            offsets = [((now_ns - d.start_ns) // (60 * NS)) * 60 * NS for d in loaded]
        else:
            start = min(d.start_ns for d in loaded)
            offsets = [0 for _ in loaded]
        self.start_ns = start
        self.clock = PresentedClock(start, config.speed, paused=not config.autostart)
        self.catalog = ContractCatalog(config.roots, start)
        self.feeds: list[FeedRuntime] = []
        self._by_contract: dict[str, FeedRuntime] = {}
        for cfg, data, off in zip(config.feeds, loaded, offsets, strict=True):
            h = data.history
            shifted = FeedHistory(
                h.print_ts + off,
                h.print_px,
                h.print_size,
                h.bar_ts + off,
                h.bar_open,
                h.bar_high,
                h.bar_low,
                h.bar_close,
                h.bar_volume,
            )
            rt = FeedRuntime(cfg, data, [self.catalog.active[r] for r in cfg.roots], off, shifted, data.events())
            self._seed(rt)
            self.feeds.append(rt)
            for c in rt.contracts:
                self._by_contract[c.id] = rt
        self._task: asyncio.Task[None] | None = None
        self.events_processed = 0

    # ------------------------------------------------------------------------------------------ views

    def now_ns(self) -> int:
        """The presented time (UTC ns)."""
        return self.clock.now_ns()

    def feed_of(self, contract_id: str) -> FeedRuntime | None:
        """The feed serving ``contract_id`` (an active contract), or ``None``."""
        return self._by_contract.get(contract_id)

    def last_price(self, symbol: str) -> float | None:
        """The last traded price (points) of the active contract ``symbol`` (``ESZ6``), ``None`` before any print."""
        for rt in self.feeds:
            if any(c.name == symbol for c in rt.contracts):
                return rt.last
        return None

    def history_of(self, contract_id: str) -> FeedHistory | None:
        """The bar-history source of ``contract_id``, or ``None`` without a feed."""
        rt = self._by_contract.get(contract_id)
        return None if rt is None else rt.history

    def quote(self, contract_id: str) -> dict[str, Any] | None:
        """The full current ``GatewayQuote`` payload of ``contract_id``, ``None`` before any price."""
        rt = self._by_contract.get(contract_id)
        if rt is None or rt.last is None:
            return None
        c = next(c for c in rt.contracts if c.id == contract_id)
        return self._quote_json(rt, c)

    def depth_snapshot(self, contract_id: str) -> list[dict[str, Any]]:
        """Reset (type 6) followed by every level of the current book of ``contract_id`` (empty without a feed)."""
        rt = self._by_contract.get(contract_id)
        if rt is None:
            return []
        c = next(c for c in rt.contracts if c.id == contract_id)
        ts = iso(rt.last_update_ns or self.now_ns())
        items: list[dict[str, Any]] = [
            {"timestamp": ts, "type": DOM_RESET, "price": 0.0, "volume": 0, "currentVolume": 0}
        ]
        book = rt.data.book()
        levels = (
            _all_levels(book)
            if book is not None
            else [(side, p, s) for side in (DOM_BID, DOM_ASK) for p, s in rt.synthetic[side].items()]
        )
        for side, p, s in levels:
            items.append({"timestamp": ts, "type": side, "price": c.price(p), "volume": s, "currentVolume": s})
        return items

    # ------------------------------------------------------------------------------------------ driving

    def catch_up(self) -> int:
        """Stream every event whose presented time has come; return how many."""
        return self._process(self.now_ns(), None)

    def step(self, n: int) -> int:
        """Pause the clock and stream the next ``n`` events whatever their time (tests); return how many."""
        self.clock.pause()
        return self._process(None, n)

    def _process(self, until_ns: int | None, max_events: int | None) -> int:
        out_trades: dict[str, list[dict[str, Any]]] = {}
        out_depth: dict[str, list[dict[str, Any]]] = {}
        quoted: set[str] = set()
        count = 0
        while max_events is None or count < max_events:
            best: FeedRuntime | None = None
            best_ts = 0
            for rt in self.feeds:
                ts = rt.next_ts()
                if ts is not None and (until_ns is None or ts <= until_ns) and (best is None or ts < best_ts):
                    best, best_ts = rt, ts
            if best is None:
                break
            ev = best.pop()
            if until_ns is None:
                self.clock.jump_to(ev.ts_ns)
            self._apply(best, ev, out_trades, out_depth, quoted)
            count += 1
        self.events_processed += count
        sink = self.sink
        if sink is not None:
            for cid, items in out_trades.items():
                sink.publish_trades(cid, items)
            for cid, items in out_depth.items():
                sink.publish_depth(cid, items)
            for cid in quoted:
                q = self.quote(cid)
                if q is not None:
                    sink.publish_quote(cid, q)
        return count

    def _apply(
        self,
        rt: FeedRuntime,
        ev: MarketEvent,
        out_trades: dict[str, list[dict[str, Any]]],
        out_depth: dict[str, list[dict[str, Any]]],
        quoted: set[str],
    ) -> None:
        ts = ev.ts_ns
        self.trading.advance(ts)
        tick = rt.data.tick
        trade_items: list[tuple[float, int, int]] = []
        quote_px: float | None = None
        for px, size, side in ev.prints:
            quote_px = px
            if size <= 0:  # a bar's path point without volume: moves the quote only
                if rt.quote_ref is not None and px != rt.quote_ref:
                    rt.aggressor = BUY if px > rt.quote_ref else SELL
                rt.quote_ref = px
                continue
            rt.quote_ref = px
            agg = side
            if agg == UNKNOWN:
                if rt.last is not None and px != rt.last:
                    rt.aggressor = BUY if px > rt.last else SELL
                agg = rt.aggressor
            else:
                rt.aggressor = agg
            if ts - rt.last_print_ns >= SESSION_GAP_NS:
                rt.prev_close = rt.last
                rt.open, rt.high, rt.low, rt.volume = px, px, px, 0
            rt.last_print_ns = ts
            rt.last = px
            rt.high = px if rt.high is None else max(rt.high, px)
            rt.low = px if rt.low is None else min(rt.low, px)
            rt.volume += size
            trade_items.append((px, size, agg))
        depth_changes: list[tuple[int, float, int]] = []
        if ev.levels is not None:
            rt.bid, rt.ask, rt.bid_size, rt.ask_size = ev.bid, ev.ask, ev.bid_size, ev.ask_size
            depth_changes = ev.levels
        elif quote_px is not None:
            px = quote_px
            if rt.aggressor == BUY:
                rt.bid, rt.ask = px - tick, px
            else:
                rt.bid, rt.ask = px, px + tick
            depth_changes = self._synthetic_book(rt)
        rt.last_update_ns = ts
        for c in rt.contracts:
            sym = c.name
            for px, size, agg in trade_items:
                self.trading.on_trade(
                    TradeTick(sym, px, size, AggressorSide.BUYER if agg == BUY else AggressorSide.SELLER, ts)
                )
            book = rt.data.book()
            if book is not None:
                self.trading.on_book(sym, book, ts)
            elif rt.bid is not None and rt.ask is not None:
                self.trading.on_quote(QuoteTick(sym, rt.bid, rt.ask, rt.bid_size, rt.ask_size, ts))
            stamp = iso(ts)
            if trade_items:
                out_trades.setdefault(c.id, []).extend(
                    {"symbolId": c.symbol_id, "price": c.price(px), "timestamp": stamp, "type": agg, "volume": size}
                    for px, size, agg in trade_items
                )
            if ev.reset:
                out_depth.setdefault(c.id, []).append(
                    {"timestamp": stamp, "type": DOM_RESET, "price": 0.0, "volume": 0, "currentVolume": 0}
                )
            if depth_changes:
                out_depth.setdefault(c.id, []).extend(
                    {"timestamp": stamp, "type": side, "price": c.price(p), "volume": s, "currentVolume": s}
                    for side, p, s in depth_changes
                )
            if rt.last is not None and (trade_items or quote_px is not None or ev.levels is not None):
                quoted.add(c.id)

    def _synthetic_book(self, rt: FeedRuntime) -> list[tuple[int, float, int]]:
        assert rt.bid is not None and rt.ask is not None
        tick = rt.data.tick
        n = rt.cfg.depth_levels
        changes: list[tuple[int, float, int]] = []
        for side, best, sign in ((DOM_BID, rt.bid, -1), (DOM_ASK, rt.ask, 1)):
            new: dict[float, int] = {}
            for i in range(n):
                p = round(best + sign * i * tick, 9)
                new[p] = _level_size(round(p / tick))
            old = rt.synthetic[side]
            changes.extend((side, p, 0) for p in old if p not in new)
            changes.extend((side, p, s) for p, s in new.items() if old.get(p) != s)
            rt.synthetic[side] = new
        rt.bid_size = rt.synthetic[DOM_BID][round(rt.bid, 9)]
        rt.ask_size = rt.synthetic[DOM_ASK][round(rt.ask, 9)]
        return changes

    def _seed(self, rt: FeedRuntime) -> None:
        """Start the market state from the last print before the feed's start (no streaming, no sim)."""
        h = rt.data.history
        i = int(np.searchsorted(h.print_ts, rt.data.start_ns, side="left")) - 1
        if i < 0 or rt.data.kind == "mbo":
            return
        px = float(h.print_px[i])
        rt.last = rt.open = rt.high = rt.low = rt.quote_ref = px
        rt.last_print_ns = int(h.print_ts[i]) + rt.offset_ns
        rt.last_update_ns = rt.last_print_ns
        rt.bid, rt.ask = px - rt.data.tick, px
        self._synthetic_book(rt)

    def touch(self, symbol: str) -> None:
        """Re-send the current top of book of ``symbol`` to the sim brokers at the presented time, so a marketable
        order fills against the current market at once (as on a live exchange). Nothing is streamed."""
        now = self.now_ns()
        for rt in self.feeds:
            for c in rt.contracts:
                if c.name != symbol:
                    continue
                self.trading.advance(now)
                book = rt.data.book()
                if book is not None:
                    self.trading.on_book(symbol, book, now)
                elif rt.bid is not None and rt.ask is not None:
                    self.trading.on_quote(QuoteTick(symbol, rt.bid, rt.ask, rt.bid_size, rt.ask_size, now))
                return

    def _quote_json(self, rt: FeedRuntime, c: ContractInfo) -> dict[str, Any]:
        last = rt.last
        assert last is not None
        ref = rt.prev_close if rt.prev_close is not None else rt.open
        change = 0.0 if ref is None else last - ref
        stamp = iso(rt.last_update_ns)
        return {
            "symbol": c.symbol_id,
            "symbolName": f"/{c.root}",
            "lastPrice": c.price(last),
            "bestBid": None if rt.bid is None else c.price(rt.bid),
            "bestAsk": None if rt.ask is None else c.price(rt.ask),
            "change": c.price(change),
            "changePercent": 0.0 if not ref else round(change / ref * 100, 4),
            "open": None if rt.open is None else c.price(rt.open),
            "high": None if rt.high is None else c.price(rt.high),
            "low": None if rt.low is None else c.price(rt.low),
            "volume": rt.volume,
            "lastUpdated": stamp,
            "timestamp": stamp,
        }

    # ------------------------------------------------------------------------------------------ task

    async def run(self) -> None:
        """Stream events as their presented time comes, until cancelled.

        Due events are streamed in chunks of :data:`CATCH_UP_CHUNK`, yielding to the event loop between chunks, so
        a replay far behind its presented time (a high speed, a paused loop) never freezes the REST endpoints and
        hubs of the same server.
        """
        while True:
            done = 0
            try:
                done = self._process(self.now_ns(), CATCH_UP_CHUNK)
            except Exception:  # a broken record must not stop the server; it is logged
                log.exception("market replay failed on an event")
            if done >= CATCH_UP_CHUNK:
                await asyncio.sleep(0)
                continue
            wait = 0.25
            if not self.clock.paused:
                nxt = [t for t in (rt.next_ts() for rt in self.feeds) if t is not None]
                if nxt:
                    wait = min(wait, max(0.001, (min(nxt) - self.now_ns()) / NS / self.clock.speed))
            await asyncio.sleep(wait)

    def start(self) -> None:
        """Start :meth:`run` as a task on the running loop (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self.run(), name="gateway-market-replay")

    async def stop(self) -> None:
        """Cancel the replay task."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
