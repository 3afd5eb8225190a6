"""The matching engine of the simulated broker: one :class:`MatchingEngine` per contract.

It holds the working orders of one symbol and decides, from market data, when and at what price they fill. It
knows nothing about accounts, events or brackets: each execution is reported to the broker through the ``on_fill``
callback (``WorkingOrder, qty, price_ticks, ts_ns``), each DAY expiry through ``on_expire``. The broker may add,
change or remove orders from inside those callbacks; the engine re-scans its orders after every execution.

All prices inside the engine are whole ticks (``int``); market-data floats are converted with
``round(price / tick_size)``, exact for prices on the tick grid.

**Bars** (``on_bar``). The price path through a bar is: the open, then the extreme nearer the open, then the other
extreme, then the close. Tie rule (``|H-O| == |O-L|``): the extreme away from the close comes first (an up bar,
``C >= O``, goes O-L-H-C; a down bar O-H-L-C). The open is a *gap* from the previous price: everything marketable at
the open fills at the open (a market order, a stop the open gapped through, a limit the open crossed: the better
price). Along each following segment the path is continuous: a stop triggers at its stop price and fills there
(plus slippage against the order); a limit fills at its limit. Orders are processed in the order the path reaches
them (ties: acceptance order). Fills at the open carry the bar's ``ts_open_ns``, fills inside the bar its
``ts_close_ns`` (a bar is known at its close). A bar whose high-low range cannot reach any working order skips the
path walk (only trailing stops' water marks move), which keeps resting brackets cheap on the backtest hot path.

**Trades** (``on_trade``). A print at ``p`` after the previous price ``q``: a market order or triggered stop fills at
``p`` (+ slippage); a limit fills at its limit if it was resting (``q`` at or beyond the limit on the far side, or
the order already partly filled, so it rests at its limit), else at ``p`` (it was marketable when it arrived).

**Quotes and L2 depth** (``on_book``). A quote is a one-level book. Market orders and triggered stops walk the
opposite side level by level, one fill per level at the level's price (quotes: plus slippage); limits walk only the
levels at or better than the limit (resting limits fill at the limit). A buy stop triggers on the best ask reaching
the stop, a sell stop on the best bid. Without ``partial_fills`` a market-type order that exhausts the visible book
fills its remainder at the worst level reached; with it, the remainder waits for the next event.

**Partial fills** (``SimConfig.partial_fills``): a bar's volume or a print's size times ``participation`` is one
pool shared by every order in that event; a book level's size times ``participation`` is available per level.

**Trailing stops**: the stop is ``trail`` ticks behind the best price since placement (high-water mark for sell
stops, low-water mark for buy stops), updated at every point of the path; it triggers and fills like a stop.

**Eligibility**: an order added while an event is being processed (from inside a fill callback) waits for the next
event; bracket children activated by the broker (``activate``) take part in the rest of the current event.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from propdesk.brokers.sim.config import SimConfig
from propdesk.model.data import Bar, TradeTick
from propdesk.model.identifiers import BrokerOrderId, ClientOrderId
from propdesk.model.orders import BracketSpec, OrderStatus, OrderType, TimeInForce
from propdesk.model.price import Price

NO_EXPIRY: Final[int] = 2**63 - 1
"""``next_expiry_ns`` when no DAY order works."""

_MARKET: Final = OrderType.MARKET
_LIMIT: Final = OrderType.LIMIT
_STOP: Final = OrderType.STOP
_STOP_LIMIT: Final = OrderType.STOP_LIMIT
_TRAILING: Final = OrderType.TRAILING_STOP
_LIMIT_LIKE: Final = frozenset({OrderType.LIMIT, OrderType.JOIN_BID, OrderType.JOIN_ASK})

_FILL: Final = 1
_TRIGGER: Final = 2

LIVE_STATUSES: Final = frozenset({OrderStatus.ACCEPTED, OrderStatus.SUSPENDED, OrderStatus.PARTIALLY_FILLED})
"""Statuses of a sim order that is still at the broker."""


class WorkingOrder:
    """The simulated broker's own record of an order (the caller's ``Order`` is never touched).

    Attributes:
        cid, broker_id: client and broker order ids.
        symbol: the contract symbol (``ESZ5``).
        side: +1 buy, -1 sell.
        qty, filled: total and filled contracts.
        notional: sum of fill price (ticks) x qty, for the average fill price.
        order_type: the ``OrderType``; JOIN_BID/JOIN_ASK keep their type but carry the joined ``limit``.
        limit, stop: prices in ticks (``None`` when the type has none); ``trail``: trailing distance in ticks.
        tif, expiry_ns: time in force and, for DAY orders, the UTC ns at which the order expires.
        status: ACCEPTED, SUSPENDED, PARTIALLY_FILLED or a terminal status.
        triggered: a stop (stop-limit) whose stop price traded: it now works as a market (limit) order.
        wm: trailing stops' water mark in ticks (high for sell stops, low for buy stops).
        born_event, eligible_ns: the order takes part only in market-data events counted after ``born_event``
            whose time (a bar's open, a tick's event time) is at or after ``eligible_ns`` (its acceptance time):
            an order sent at bar t's close never fills inside bar t, whatever order the runner feeds things in.
        parent, children, bracket, anchor, role: native bracket links: children (``role`` ``sl``/``tp``) point to
            the entry (``parent``); the entry holds ``children``, its ``bracket`` and the price of its first fill
            (``anchor``, ticks), from which the children are priced.
        oco: the orders cancelled/reduced when this one fills (native OCO pairs).
        is_close: created by ``close_position``/``flatten``.
    """

    __slots__ = (
        "anchor",
        "born_event",
        "bracket",
        "broker_id",
        "children",
        "cid",
        "eligible_ns",
        "expiry_ns",
        "filled",
        "is_close",
        "limit",
        "notional",
        "oco",
        "order_type",
        "parent",
        "qty",
        "reduce_only",
        "role",
        "side",
        "status",
        "stop",
        "symbol",
        "tag",
        "tif",
        "trail",
        "triggered",
        "ts_accepted_ns",
        "ts_last_ns",
        "wm",
    )

    def __init__(
        self,
        *,
        cid: ClientOrderId,
        broker_id: BrokerOrderId,
        symbol: str,
        side: int,
        qty: int,
        order_type: OrderType,
        limit: int | None = None,
        stop: int | None = None,
        trail: int | None = None,
        tif: TimeInForce = TimeInForce.GTC,
        tag: str = "",
        reduce_only: bool = False,
        ts_ns: int = 0,
    ) -> None:
        self.cid = cid
        self.broker_id = broker_id
        self.symbol = symbol
        self.side = side
        self.qty = qty
        self.filled = 0
        self.notional = 0
        self.order_type = order_type
        self.limit = limit
        self.stop = stop
        self.trail = trail
        self.tif = tif
        self.expiry_ns: int | None = None
        self.tag = tag
        self.reduce_only = reduce_only
        self.status = OrderStatus.ACCEPTED
        self.triggered = False
        self.wm: int | None = None
        self.born_event = 0
        self.eligible_ns = ts_ns
        self.parent: WorkingOrder | None = None
        self.children: list[WorkingOrder] = []
        self.bracket: BracketSpec | None = None
        self.anchor: int | None = None
        self.role = ""
        self.oco: list[WorkingOrder] = []
        self.is_close = False
        self.ts_accepted_ns = ts_ns
        self.ts_last_ns = ts_ns

    @property
    def leaves(self) -> int:
        """Contracts still to fill."""
        return self.qty - self.filled

    @property
    def is_live(self) -> bool:
        """True while the order is at the broker (working or suspended)."""
        return self.status in LIVE_STATUSES

    def stop_level(self) -> int | None:
        """The current stop price in ticks (for a trailing stop: water mark -/+ trail), ``None`` if unknown."""
        if self.order_type is _TRAILING:
            if self.wm is None or self.trail is None:
                return None
            return self.wm + self.trail if self.side > 0 else self.wm - self.trail
        return self.stop

    def __repr__(self) -> str:
        return (
            f"WorkingOrder({self.cid}, {'BUY' if self.side > 0 else 'SELL'} {self.filled}/{self.qty} "
            f"{self.order_type.value}, limit={self.limit}, stop={self.stop_level()}, {self.status.value})"
        )


FillCallback = Callable[[WorkingOrder, int, int, int], None]
"""``(order, qty, price_ticks, ts_ns)``: one execution; the engine has already updated ``filled``/``status``."""
ExpireCallback = Callable[[WorkingOrder, int], None]
"""``(order, ts_ns)``: a DAY order expired; the engine has removed it and set its status."""
PathCallback = Callable[[int, int], None]
"""``(price_ticks, ts_ns)``: the bar walk reached a point of its path (:meth:`MatchingEngine.on_bar`)."""
ProbeCallback = Callable[[int, int], int | None]
"""``(a_ticks, b_ticks) -> stop_ticks | None``: where to stop on the path segment ``a -> b`` (:meth:`on_bar`)."""


class MatchingEngine:
    """Working orders of one contract and the rules that fill them (see the module docstring).

    Args:
        symbol: the contract symbol.
        tick_size: the contract's tick size (points).
        config: fill rules (slippage, touch/through, partial fills).
        on_fill, on_expire: callbacks into the broker.

    Attributes:
        orders: working orders (not suspended ones), in acceptance order.
        last_px: the last traded (or bar close / path) price in points, ``None`` before any data.
        last_ts_ns: UTC ns of the last market-data event processed (-1 before any).
        bid, ask, bid_size, ask_size: the last top of book (ticks / contracts), ``None``/0 before any.
        event_no: counts processed market-data events.
        next_expiry_ns: the earliest DAY expiry among ``orders`` (may be stale-early, never late).
        hours_open, hours_lo, hours_hi: the market-hours span last looked up for this contract (open or closed over
            ``[hours_lo, hours_hi)``, UTC ns), kept by the broker; hours_next: the time from which the broker must
            look again (``hours_hi`` while open, ``hours_lo`` while closed so every record inside is counted).
        closed: the closed period data last fell into (the broker's data warning), else ``None``.
        cal_offset_ns: how far this contract's event times are shifted from the data's own times (a replay presented
            at another time); the calendar is asked about ``ts - cal_offset_ns``.
        path_watch: the broker wants the bar path's points reported (a path listener and a position in this
            contract, see :meth:`on_bar`).
    """

    __slots__ = (
        "_ev_ts",
        "_part",
        "_partial",
        "_slip",
        "_touch",
        "ask",
        "ask_size",
        "bid",
        "bid_size",
        "book_asks",
        "book_bids",
        "cal_offset_ns",
        "closed",
        "event_no",
        "hours_hi",
        "hours_lo",
        "hours_next",
        "hours_open",
        "last_px",
        "last_ts_ns",
        "next_expiry_ns",
        "on_expire",
        "on_fill",
        "orders",
        "path_watch",
        "symbol",
        "tick_f",
        "tick_size",
    )

    def __init__(
        self, symbol: str, tick_size: Price, config: SimConfig, on_fill: FillCallback, on_expire: ExpireCallback
    ) -> None:
        self.symbol = symbol
        self.tick_size = tick_size
        self.tick_f = float(tick_size)
        self._slip = config.slippage_ticks
        self._touch = config.limit_fill == "touch"
        self._partial = config.partial_fills
        self._part = config.participation
        self.on_fill = on_fill
        self.on_expire = on_expire
        self.orders: list[WorkingOrder] = []
        self.last_px: float | None = None
        self.last_ts_ns = -1
        self.bid: int | None = None
        self.ask: int | None = None
        self.bid_size = 0
        self.ask_size = 0
        self.book_bids: dict[int, int] = {}
        self.book_asks: dict[int, int] = {}
        self.event_no = 0
        self._ev_ts = 0
        self.next_expiry_ns = NO_EXPIRY
        self.hours_open = True
        self.hours_lo = NO_EXPIRY
        self.hours_hi = -(2**63)
        self.hours_next = -(2**63)
        self.closed: object | None = None
        self.cal_offset_ns = 0
        self.path_watch = False

    # ------------------------------------------------------------------------------------------ order book keeping

    def to_ticks(self, price: float) -> int:
        """A market-data price (points) as whole ticks."""
        return round(price / self.tick_f)

    def price(self, ticks: int) -> Price:
        """Whole ticks as an exact :class:`Price`."""
        return Price(ticks * self.tick_size.raw)

    def last_ticks(self) -> int | None:
        """The last price in ticks, ``None`` before any data."""
        return None if self.last_px is None else round(self.last_px / self.tick_f)

    def add(self, order: WorkingOrder, *, eligible_now: bool = False) -> None:
        """Start working ``order``. ``eligible_now`` lets it take part in the event being processed (bracket
        children the broker activates from a fill); otherwise it waits for the next market-data event."""
        if eligible_now:
            order.born_event = self.event_no - 1
            order.eligible_ns = -(2**63)
        else:
            order.born_event = self.event_no
            order.eligible_ns = order.ts_accepted_ns
        if order.order_type is _TRAILING and order.wm is None:
            order.wm = self.last_ticks()
        if order.expiry_ns is not None and order.expiry_ns < self.next_expiry_ns:
            self.next_expiry_ns = order.expiry_ns
        self.orders.append(order)

    def remove(self, order: WorkingOrder) -> bool:
        """Stop working ``order`` (canceled, expired or done elsewhere); False if it was not working here."""
        try:
            self.orders.remove(order)
        except ValueError:
            return False
        return True

    def expire(self, ts_ns: int) -> None:
        """Expire every DAY order whose expiry is at or before ``ts_ns`` (UTC ns), then recompute the next one."""
        nxt = NO_EXPIRY
        for o in list(self.orders):
            exp = o.expiry_ns
            if exp is None:
                continue
            if exp <= ts_ns:
                if self.remove(o):
                    o.status = OrderStatus.EXPIRED
                    o.ts_last_ns = ts_ns
                    self.on_expire(o, ts_ns)
            elif exp < nxt:
                nxt = exp
        self.next_expiry_ns = min((o.expiry_ns for o in self.orders if o.expiry_ns is not None), default=NO_EXPIRY)

    def _execute(self, order: WorkingOrder, qty: int, px: int, ts_ns: int) -> None:
        order.filled += qty
        order.notional += px * qty
        order.ts_last_ns = ts_ns
        if order.filled >= order.qty:
            order.status = OrderStatus.FILLED
            self.remove(order)
        else:
            order.status = OrderStatus.PARTIALLY_FILLED
        self.on_fill(order, qty, px, ts_ns)

    def fill_now(self, order: WorkingOrder, ts_ns: int) -> bool:
        """Fill a market order at once at the last price (+ slippage), all of it (``bar-close`` fill model,
        ``last-price`` flatten). False (nothing done) when no price is known yet or the order is not working."""
        last = self.last_ticks()
        if last is None or order not in self.orders:
            return False
        self._execute(order, order.leaves, last + order.side * self._slip, ts_ns)
        return True

    # ------------------------------------------------------------------------------------------------ bars, trades

    def on_bar(self, bar: Bar, on_point: PathCallback | None = None, probe: ProbeCallback | None = None) -> None:
        """Match the working orders against ``bar`` along its OHLC path (module docstring); sets ``last_px`` to the
        close. Without ``on_point`` call only when ``orders`` is not empty.

        ``on_point(price_ticks, ts_ns)`` is called at each point of the path (the open, the nearer extreme, the
        other extreme, the close; ``ts_ns`` the bar's open for the open, its close for the rest) after the orders
        the path reached on the way there were matched, with ``last_px`` at that point: a market order filled at
        once from inside the callback (``fill_now``, e.g. a risk flatten) fills at the point's price. The callback
        may cancel and add orders; an added order waits for the next event.

        Points are reported (and probes asked) only while ``path_watch`` is set (the broker clears it when the
        account goes flat). ``probe(a_ticks, b_ticks)``, when given, is asked before each segment of the path
        (after the open) for a price on it at which the walk must stop and report a point (the first price at which
        a risk limit breaks), or ``None``; the walk then matches up to that price, reports it with ``on_point`` and
        goes on to ``b``."""
        self.event_no += 1
        ts_o = self._ev_ts = bar.ts_open_ns
        if ts_o >= self.next_expiry_ns:
            self.expire(ts_o)
        if on_point is not None:
            self._walk_points(bar, ts_o, on_point, probe)
        elif self.orders:
            tf = self.tick_f
            h = round(bar.high / tf)
            lo = round(bar.low / tf)
            if not self._may_act(h, lo):
                self.last_px = bar.close
                self.last_ts_ns = bar.ts_close_ns
                return
            o = round(bar.open / tf)
            c = round(bar.close / tf)
            budget = [int(bar.volume * self._part)] if self._partial else None
            self._gap(o, o, None, None, ts=ts_o, budget=budget)
            if self.orders:  # else everything filled at the open (a market order): no path left to walk
                up, down = h - o, o - lo
                if up < down or (up == down and c < o):
                    e1, e2 = h, lo
                else:
                    e1, e2 = lo, h
                ts_c = bar.ts_close_ns
                self._segment(o, e1, ts_c, budget)
                self._segment(e1, e2, ts_c, budget)
                self._segment(e2, c, ts_c, budget)
                self._mark(c)
        self.last_px = bar.close
        self.last_ts_ns = bar.ts_close_ns

    def _walk_points(self, bar: Bar, ts_o: int, on_point: PathCallback, probe: ProbeCallback | None) -> None:
        """:meth:`on_bar` with ``on_point``: the whole path is walked (no range shortcut), reporting each point."""
        tf = self.tick_f
        h = round(bar.high / tf)
        lo = round(bar.low / tf)
        if not self.path_watch and not self._may_act(h, lo):  # flat, and no order can fill: nothing to report
            self.last_px = bar.close
            self.last_ts_ns = bar.ts_close_ns
            return
        o = round(bar.open / tf)
        c = round(bar.close / tf)
        budget = [int(bar.volume * self._part)] if self._partial else None
        if self.orders:
            self._gap(o, o, None, None, ts=ts_o, budget=budget)
        self.last_px = o * tf
        if self.path_watch:
            on_point(o, ts_o)
        up, down = h - o, o - lo
        e1, e2 = (h, lo) if up < down or (up == down and c < o) else (lo, h)
        ts_c = bar.ts_close_ns
        a = o
        for b in (e1, e2, c):
            if probe is not None and a != b and self.path_watch:
                stop = probe(a, b)
                if stop is not None and stop != b:
                    if self.orders:
                        self._segment(a, stop, ts_c, budget)
                    self.last_px = stop * tf
                    if self.path_watch:
                        on_point(stop, ts_c)
                    a = stop
            if self.orders:
                self._segment(a, b, ts_c, budget)
            self.last_px = b * tf
            if self.path_watch:
                on_point(b, ts_c)
            a = b
        if self.orders:
            self._mark(c)

    def _may_act(self, h: int, lo: int) -> bool:
        """False when no eligible order can fill or trigger anywhere in ``[lo, h]`` (ticks); then only the trailing
        stops' water marks move (to ``h`` / ``lo``: the path visits both). True otherwise (walk the path)."""
        trailing = False
        for o in self.orders:
            if not self._eligible(o):
                continue
            t = o.order_type
            if t is _MARKET or (o.triggered and t is not _STOP_LIMIT):
                return True
            if t in _LIMIT_LIKE or (t is _STOP_LIMIT and o.triggered):
                lim = o.limit
                if lim is None or (lo <= lim if o.side > 0 else h >= lim):
                    return True
                continue
            st = o.stop
            if t is _TRAILING:
                wm, tr = o.wm, o.trail
                if wm is None or tr is None:
                    return True
                trailing = True
                if o.side > 0:
                    if min(wm, lo) + tr <= h:
                        return True
                elif max(wm, h) - tr >= lo:
                    return True
                continue
            if st is None or (h >= st if o.side > 0 else lo <= st):
                return True
        if trailing:
            for o in self.orders:
                if o.order_type is _TRAILING and self._eligible(o) and o.wm is not None:
                    o.wm = min(o.wm, lo) if o.side > 0 else max(o.wm, h)
        return False

    def on_trade(self, trade: TradeTick) -> None:
        """Match the working orders against one print (module docstring); sets ``last_px``."""
        self.event_no += 1
        ts = self._ev_ts = trade.ts_event_ns
        if ts >= self.next_expiry_ns:
            self.expire(ts)
        if self.orders:
            p = self.to_ticks(trade.price)
            prev = self.last_ticks()
            budget = [int(trade.size * self._part)] if self._partial else None
            self._gap(p, p, prev, prev, ts=ts, budget=budget)
            self._mark(p)
        self.last_px = trade.price
        self.last_ts_ns = ts

    def _mark(self, p: int) -> None:
        for o in self.orders:
            if o.order_type is _TRAILING and not o.triggered and self._eligible(o):
                wm = o.wm
                if wm is None or (p < wm if o.side > 0 else p > wm):
                    o.wm = p

    def _eligible(self, o: WorkingOrder) -> bool:
        return o.born_event < self.event_no and o.eligible_ns <= self._ev_ts

    def _at_point(self, o: WorkingOrder, p: int, prev: int | None, can_fill: bool) -> tuple[int, int] | None:
        """What ``o`` does when the price jumps to ``p`` (from ``prev``): (action, fill price) or None."""
        s = o.side
        t = o.order_type
        if t is _TRAILING and not o.triggered:
            wm = o.wm
            if wm is None or (p < wm if s > 0 else p > wm):
                o.wm = wm = p
        if t is _MARKET or (o.triggered and t is not _STOP_LIMIT):
            return (_FILL, p + s * self._slip) if can_fill else None
        if t in _LIMIT_LIKE or (t is _STOP_LIMIT and o.triggered):
            lim = o.limit
            assert lim is not None
            if not can_fill:
                return None
            rested = o.filled > 0
            if s > 0:
                if p < lim or (self._touch and p == lim):
                    return _FILL, lim if (rested or (prev is not None and prev >= lim)) else p
            elif p > lim or (self._touch and p == lim):
                return _FILL, lim if (rested or (prev is not None and prev <= lim)) else p
            return None
        st = o.stop_level()
        if st is None or (p < st if s > 0 else p > st):
            return None
        if t is _STOP_LIMIT or not can_fill:
            return _TRIGGER, p
        return _FILL, p + s * self._slip

    def _gap(
        self, buy_p: int, sell_p: int, prev_buy: int | None, prev_sell: int | None, *, ts: int, budget: list[int] | None
    ) -> None:
        self.last_px = buy_p * self.tick_f
        while True:
            can_fill = budget is None or budget[0] > 0
            for o in self.orders:
                if not self._eligible(o):
                    continue
                hit = (
                    self._at_point(o, buy_p, prev_buy, can_fill)
                    if o.side > 0
                    else self._at_point(o, sell_p, prev_sell, can_fill)
                )
                if hit is None:
                    continue
                if hit[0] == _TRIGGER:
                    o.triggered = True
                else:
                    self._take(o, hit[1], ts, budget)
                break
            else:
                return

    def _take(self, o: WorkingOrder, px: int, ts: int, budget: list[int] | None) -> None:
        qty = o.leaves
        if budget is not None:
            qty = min(qty, budget[0])
            budget[0] -= qty
        self._execute(o, qty, px, ts)

    def _in_segment(
        self, o: WorkingOrder, cur: int, b: int, up: bool, can_fill: bool
    ) -> tuple[int, int, int, int] | None:
        """The first thing ``o`` does on the continuous path ``cur`` -> ``b``: (distance, location, action, price)."""
        s = o.side
        t = o.order_type
        if t is _MARKET or (o.triggered and t is not _STOP_LIMIT):
            return (0, cur, _FILL, cur + s * self._slip) if can_fill else None
        if t in _LIMIT_LIKE or (t is _STOP_LIMIT and o.triggered):
            if not can_fill:
                return None
            lim = o.limit
            assert lim is not None
            touch = self._touch
            if s > 0:
                if cur < lim or (touch and cur == lim):
                    return 0, cur, _FILL, cur
                if not up and (b < lim or (touch and b == lim)):
                    return cur - lim, lim, _FILL, lim
            else:
                if cur > lim or (touch and cur == lim):
                    return 0, cur, _FILL, cur
                if up and (b > lim or (touch and b == lim)):
                    return lim - cur, lim, _FILL, lim
            return None
        st = o.stop_level()
        if st is None:
            return None
        if s > 0:
            if cur >= st:
                d, at = 0, cur
            elif up and b >= st:
                d, at = st - cur, st
            else:
                return None
        elif cur <= st:
            d, at = 0, cur
        elif not up and b <= st:
            d, at = cur - st, st
        else:
            return None
        if t is _STOP_LIMIT or not can_fill:
            return d, at, _TRIGGER, at
        return d, at, _FILL, at + s * self._slip

    def _segment(self, a: int, b: int, ts: int, budget: list[int] | None) -> None:
        if a == b:
            return
        up = b > a
        cur = a
        while True:
            self._mark(cur)
            can_fill = budget is None or budget[0] > 0
            best: tuple[int, int, int, int] | None = None
            best_o: WorkingOrder | None = None
            for o in self.orders:
                if not self._eligible(o):
                    continue
                hit = self._in_segment(o, cur, b, up, can_fill)
                if hit is not None and (best is None or hit[0] < best[0]):
                    best, best_o = hit, o
            if best is None or best_o is None:
                return
            cur = best[1]
            self.last_px = cur * self.tick_f
            if best[2] == _TRIGGER:
                best_o.triggered = True
            else:
                self._take(best_o, best[3], ts, budget)

    # ------------------------------------------------------------------------------------------------ quotes, depth

    def on_book(
        self,
        bids: list[tuple[int, int]],
        asks: list[tuple[int, int]],
        prev_bid: int | None,
        prev_ask: int | None,
        *,
        ts: int,
        slip: int,
    ) -> None:
        """Match the working orders against a book (module docstring): ``bids``/``asks`` best first as
        (price ticks, size contracts); ``prev_*`` the best prices before this update; ``slip`` ticks on
        market-type fills (quotes: ``slippage_ticks``; L2 depth: 0). Does not change ``last_px``."""
        self.event_no += 1
        self._ev_ts = ts
        if ts >= self.next_expiry_ns:
            self.expire(ts)
        used_bid: dict[int, int] = {}
        used_ask: dict[int, int] = {}
        while self.orders:
            for o in self.orders:
                if not self._eligible(o):
                    continue
                buy = o.side > 0
                levels = asks if buy else bids
                if not levels:
                    continue
                if self._book_step(
                    o, levels, used_ask if buy else used_bid, prev_ask if buy else prev_bid, ts=ts, slip=slip
                ):
                    break
            else:
                return

    def _book_step(
        self,
        o: WorkingOrder,
        levels: list[tuple[int, int]],
        used: dict[int, int],
        prev: int | None,
        *,
        ts: int,
        slip: int,
    ) -> bool:
        s = o.side
        t = o.order_type
        obs = levels[0][0]
        acted = False
        if t in (_STOP, _TRAILING, _STOP_LIMIT) and not o.triggered:
            if t is _TRAILING:
                wm = o.wm
                if wm is None or (obs < wm if s > 0 else obs > wm):
                    o.wm = obs
            st = o.stop_level()
            if st is None or (obs < st if s > 0 else obs > st):
                return False
            o.triggered = True
            acted = True
        limit = o.limit if (t in _LIMIT_LIKE or t is _STOP_LIMIT) else None
        return self._walk(o, levels, used, limit, prev, ts=ts, slip=slip) > 0 or acted

    def _walk(
        self,
        o: WorkingOrder,
        levels: list[tuple[int, int]],
        used: dict[int, int],
        limit: int | None,
        prev: int | None,
        *,
        ts: int,
        slip: int,
    ) -> int:
        s = o.side
        touch = self._touch
        resting = limit is not None and (
            o.filled > 0 or (prev is not None and (prev >= limit if s > 0 else prev <= limit))
        )
        done = 0
        worst: int | None = None
        for px, size in levels:
            if limit is not None and not (
                (px < limit or (touch and px == limit)) if s > 0 else (px > limit or (touch and px == limit))
            ):
                break
            worst = px
            avail = (int(size * self._part) if self._partial else size) - used.get(px, 0)
            if avail <= 0:
                continue
            take = min(avail, o.leaves)
            used[px] = used.get(px, 0) + take
            fill_px = (limit if resting else px) if limit is not None else px + s * slip
            assert fill_px is not None
            self._execute(o, take, fill_px, ts)
            done += take
            if not o.is_live or o.leaves <= 0:
                return done
        if limit is None and not self._partial and worst is not None and o.is_live and o.leaves > 0:
            rest = o.leaves
            self._execute(o, rest, worst + s * slip, ts)
            done += rest
        return done
