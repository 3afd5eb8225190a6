"""The simulated broker: :class:`SimBroker` implements the ``Broker`` protocol over one :class:`MatchingEngine` per
contract, with a :class:`SimAccount` (balance, realized PnL, fees, FIFO positions).

It is synchronous (ARCHITECTURE.md, "one core, many edges"): a command is handled in the call and its events go
through the handler at once (``OrderSubmitted`` then ``OrderAccepted`` or ``OrderRejected``). Market data drives the
matching: the backtest/replay runner calls :meth:`SimBroker.process_bar`, :meth:`~SimBroker.process_trade`,
:meth:`~SimBroker.process_quote`, :meth:`~SimBroker.process_depth` or :meth:`~SimBroker.process_book` for every
record, *before* publishing the record to strategies (an order also never fills on data older than its acceptance
time, see :mod:`propdesk.brokers.sim.matching`). Fill rules are in :mod:`propdesk.brokers.sim.matching`, options in
:class:`~propdesk.brokers.sim.config.SimConfig`.

Hot path: ``process_bar`` costs one dict lookup, one integer comparison and two attribute stores while no order
works for the symbol.

Closed periods (``SimConfig.calendar_check`` ``calendar`` or ``data``): nothing fills while the contract's trading
calendar says its market is closed (daily halt, weekend, holiday, holiday halt, early close:
:func:`propdesk.brokers.sim.calendar_check.market_span` over ``model/resources/calendar.toml``). A bar, print, quote
or depth update inside a closed period is not traded (no matching, no last price) and the period is reported once
as a data warning (:attr:`SimBroker.closed_periods`, and a ``propdesk.brokers.sim`` log warning); a new order is
rejected (``market closed: ...``) and a risk close (``close_position``/``flatten``) waits for the reopen's first
price. The per-record cost is one integer comparison against the next calendar boundary, looked up (a binary
search) only when a record reaches it.

Bar path marks (:meth:`SimBroker.set_path_listener`): with a listener, a bar of a contract the account holds is
walked point by point (open, nearer extreme, other extreme, close: the matching engine's path) and the listener is
called at each point with the exchange's last price there, so a risk guard sees the bar's path as marks and a close
it sends from the callback fills at the point's price (``flatten_fill="last-price"``), not at the bar's close.

Rejections (``OrderRejected.reason``): duplicate client order id, an order of another account, quantity not a
positive whole number, unknown contract, a price off the contract's tick (or missing for the type), trailing distance
not in 1..1000 ticks (ProjectX's maximum, spec section 3.3), a bracket while native brackets are off (ProjectX's
Position Brackets message), join bid/ask without a quote, reduce-only that would not reduce, market closed
(``SimConfig.calendar_check``).

Native brackets (ProjectX Auto OCO mode, ``../shared/specs/projectx-gateway-api.md`` section 3.3): with a
``BracketSpec`` the stop-loss (stop order) and take-profit (limit order) children get client ids
``<entry cid>-sl`` and ``<entry cid>-tp``, are reported ``OrderSubmitted`` + ``OrderSuspended`` (qty = the entry's)
while the entry works,
and on the entry's first fill are priced at that fill price -/+ the ticks (side-aware), sized to the filled quantity
(``OrderUpdated``) and ``OrderAccepted``. Further entry fills grow them (``OrderUpdated``). The legs are an OCO pair
sized to the open bracket quantity: a partial fill of one shrinks the other, a complete one cancels it. When a leg
closes the whole filled quantity while the entry still works, the entry's remainder is canceled too (no naked
position). An entry canceled or expired before any fill cancels its children. Children are GTC.

Native OCO pairs: :meth:`SimBroker.submit_oco`, or ``Order.linked_ids`` naming working orders at submission. A fill
of one leg shrinks the other by the same quantity; a complete fill cancels it.

Closing: :meth:`close_position` (whole position: also cancels the symbol's working orders) and :meth:`flatten`
send market orders with client ids ``sim-close-<n>`` and tag ``close``; they fill at the next price event, or at
once at the last price with ``SimConfig.flatten_fill="last-price"`` (risk enforcement).

Ids: broker order ids are increasing ints from 1; trade ids are ``"<account id>-<n>"``, unique per account.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Final, Protocol

import numpy as np

from propdesk.brokers.base import BrokerCapabilities
from propdesk.brokers.base import BrokerEventHandler as EventHandler
from propdesk.brokers.sim.calendar_check import (
    ClosedPeriod,
    MarketHours,
    closed_kind,
    ct_text,
    fold_closed_periods,
    market_span,
)
from propdesk.brokers.sim.config import SimConfig
from propdesk.brokers.sim.matching import LIVE_STATUSES, NO_EXPIRY, MatchingEngine, WorkingOrder
from propdesk.core.clock import Clock, TimeEvent
from propdesk.core.errors import PropdeskError
from propdesk.model.contracts import ContractSpec
from propdesk.model.data import Bar, BarSeries, DepthUpdate, QuoteTick, Timeframe, TradeTick
from propdesk.model.enums import BookAction, BookSide, Side
from propdesk.model.events import (
    BrokerConnected,
    BrokerDisconnected,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderExpired,
    OrderFilled,
    OrderModifyRejected,
    OrderRejected,
    OrderSubmitted,
    OrderSuspended,
    OrderUpdated,
)
from propdesk.model.identifiers import AccountId, BrokerOrderId, ClientOrderId
from propdesk.model.orders import BracketSpec, Order, OrderStatus, OrderType, TimeInForce
from propdesk.model.positions import Position
from propdesk.model.price import Money, Price
from propdesk.model.reports import AccountReport, FillReport, OrderReport, PositionReport
from propdesk.model.symbology import spec_for_symbol

log = logging.getLogger("propdesk.brokers.sim")

_NEVER: Final[int] = NO_EXPIRY
"""``MatchingEngine.hours_next`` when the calendar is not checked (``calendar_check="off"``)."""

MAX_TRAIL_TICKS = 1000
"""ProjectX rejects a trailing distance over 1000 ticks (spec section 3.3, "Trail Distance exceeds maximum")."""

ContractLookup = Callable[[str], ContractSpec]
"""Symbol (``ESZ5``) -> its product spec; raises ``ContractError`` for an unknown contract."""
PathListener = Callable[[str, float, int], None]
"""``(symbol, price points, ts_ns)``: a point of a bar's path (:meth:`SimBroker.set_path_listener`)."""
PathProbe = Callable[[str, int, int, float], int | None]
"""``(symbol, a_ticks, b_ticks, tick_size) -> stop_ticks | None``: where the bar walk must stop on the segment
``a -> b`` to report a point (:meth:`SimBroker.set_path_listener`)."""
HistoryProvider = Callable[[str, Timeframe, int, int], BarSeries]
"""``(symbol, timeframe, start_ns, end_ns) -> BarSeries`` for :meth:`SimBroker.request_bars`."""


class BookLevels(Protocol):
    """What :meth:`SimBroker.process_book` reads from an order book (``propdesk.data.book.L2Book`` fits)."""

    def levels(self, side: BookSide, n: int = 10) -> list[tuple[float, int]]:
        """The best ``n`` levels of ``side``, best first, as (price points, size contracts)."""
        ...


_FillRow = tuple[str, BrokerOrderId, ClientOrderId, str, int, int, Price, Money, int, Money | None]
"""One fill as recorded on the hot path: trade id, broker and client order ids, symbol, side (+1/-1), qty, price,
fee, UTC ns, realized PnL of a closing fill (else ``None``); turned into a ``FillReport`` on demand."""


class _RejectedError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _is_count(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


class SimAccount:
    """The simulated account: balance = starting balance + realized PnL - fees, all exact USD.

    Positions are :class:`propdesk.model.positions.Position` (FIFO lots in whole ticks), the same accounting the
    position manager uses, so realized PnL agrees fill by fill.
    """

    def __init__(self, account_id: AccountId, starting_balance: Money) -> None:
        self.account_id = account_id
        self.starting_balance = starting_balance
        self.positions: dict[str, Position] = {}
        self._realized_cents = 0
        self._fees_cents = 0

    @property
    def realized_pnl(self) -> Money:
        """Realized PnL of every fill, gross of fees (USD)."""
        return Money(self._realized_cents)

    @property
    def fees(self) -> Money:
        """Commissions and exchange fees charged so far (USD)."""
        return Money(self._fees_cents)

    @property
    def balance(self) -> Money:
        """Starting balance + realized PnL - fees (USD)."""
        return Money(self.starting_balance.cents + self._realized_cents - self._fees_cents)

    def position(self, symbol: str) -> int:
        """Signed contracts held in ``symbol`` (+ long, - short)."""
        p = self.positions.get(symbol)
        return 0 if p is None else p.signed_qty

    def apply_fill(
        self, symbol: str, spec: ContractSpec, signed_qty: int, price: Price, fee: Money, *, ts_ns: int
    ) -> Money:
        """Book one execution; return its realized PnL (gross of ``fee``; zero for an opening fill)."""
        p = self.positions.get(symbol)
        if p is None:
            p = self.positions[symbol] = Position(symbol, self.account_id, spec.tick_size, spec.tick_value)
        realized = p.apply_fill(signed_qty, price, fee, ts_ns)
        self._realized_cents += realized.cents
        self._fees_cents += fee.cents
        return realized


class SimBroker:
    """A simulated broker account (see the module docstring).

    Args:
        clock: the node's clock (``SimClock`` in backtests); command events carry its time.
        account_id: the account this broker trades.
        config: fill rules and fees (default ``SimConfig()``).
        starting_balance: the account's opening balance (USD).
        contracts: symbol -> spec lookup (default: the contract lookup,
            :func:`propdesk.model.symbology.spec_for_symbol`).
        history: optional bar source for :meth:`request_bars`.
        name: the broker's name for logs and the journal.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        account_id: AccountId,
        config: SimConfig | None = None,
        starting_balance: Money | None = None,
        contracts: ContractLookup | None = None,
        history: HistoryProvider | None = None,
        name: str = "sim",
    ) -> None:
        self._clock = clock
        self._account_id = account_id
        self.config = config if config is not None else SimConfig()
        self.account = SimAccount(account_id, starting_balance if starting_balance is not None else Money.of(50_000))
        self._lookup = contracts if contracts is not None else spec_for_symbol
        self._history = history
        self._name = name
        self._handler: EventHandler = _drop
        self._connected = False
        self._engines: dict[str, MatchingEngine] = {}
        self._specs: dict[str, ContractSpec | None] = {}
        self._hours: dict[str, MarketHours] = {}
        self._orders: dict[str, WorkingOrder] = {}
        self._seen: set[str] = set()
        self._fills: list[FillReport] = []  # built on demand from _fill_rows (see _fill_report_list)
        self._fill_rows: list[_FillRow] = []
        self._fee_cfg: SimConfig | None = None  # the config _fee_cache was computed from
        self._fee_cache: dict[str, Money] = {}
        self._expiry_cache: dict[str, tuple[int, int, int]] = {}  # root -> (valid from, valid until, expiry) UTC ns
        self._next_order_id = 1
        self._next_trade = 1
        self._next_close = 1
        self._timers: set[str] = set()
        self._path_listener: PathListener | None = None
        self._path_probe: PathProbe | None = None
        self.closed_periods: list[ClosedPeriod] = []
        """Closed periods of the market in which data arrived and was not traded (data warnings), in order."""
        self.subscriptions: dict[str, tuple[bool, bool, bool]] = {}
        self._caps = BrokerCapabilities(
            native_brackets=self.config.native_brackets,
            native_oco=True,
            trailing_stops=True,
            stop_limit_orders=True,
            join_bid_ask=True,
            partial_close=True,
            modify_orders=True,
            client_order_ids=True,
        )

    # ------------------------------------------------------------------------------------------------ protocol

    @property
    def name(self) -> str:
        """``sim`` unless set."""
        return self._name

    @property
    def account_id(self) -> AccountId:
        """The simulated account's id."""
        return self._account_id

    @property
    def capabilities(self) -> BrokerCapabilities:
        """Everything native; ``native_brackets`` per ``SimConfig.native_brackets``."""
        return self._caps

    @property
    def is_connected(self) -> bool:
        """True between :meth:`connect` and :meth:`disconnect` (commands work either way in the sim)."""
        return self._connected

    def set_event_handler(self, handler: EventHandler) -> None:
        """Register the one callable receiving every event (called synchronously, in order)."""
        self._handler = handler

    async def connect(self) -> None:
        """Mark connected and emit ``BrokerConnected``."""
        self._connected = True
        self._handler(BrokerConnected(self._account_id, self._clock.timestamp_ns()))

    async def disconnect(self) -> None:
        """Mark disconnected and emit ``BrokerDisconnected`` (working orders stay)."""
        self._connected = False
        self._handler(BrokerDisconnected(self._account_id, self._clock.timestamp_ns(), "disconnect requested"))

    # ------------------------------------------------------------------------------------------------ helpers

    def _emit(self, event: object) -> None:
        self._handler(event)

    def _spec(self, symbol: str) -> ContractSpec | None:
        if symbol in self._specs:
            return self._specs[symbol]
        try:
            s: ContractSpec | None = self._lookup(symbol)
        except PropdeskError:
            s = None
        self._specs[symbol] = s
        return s

    def _engine(self, symbol: str) -> MatchingEngine:
        eng = self._engines.get(symbol)
        if eng is None:
            spec = self._spec(symbol)
            tick = spec.tick_size if spec is not None else Price(1)
            eng = self._engines[symbol] = MatchingEngine(symbol, tick, self.config, self._on_fill, self._on_expire)
            if self.config.calendar_check == "off" or spec is None:
                eng.hours_next = _NEVER
            eng.path_watch = self._path_listener is not None and self.account.position(symbol) != 0
        return eng

    def prepare(self, symbol: str) -> None:
        """Build what the first record of ``symbol`` would otherwise build (its matching engine and the trading
        calendar's hours, about a second once per process), so a timed replay loop does not pay for it."""
        eng = self._engine(symbol)
        spec = self._specs.get(symbol)
        if spec is not None and eng.hours_next != _NEVER:
            market_span(spec, self._clock.timestamp_ns())

    # ------------------------------------------------------------------------------------------------ closed periods

    def _span(self, eng: MatchingEngine, ts: int) -> bool:
        """Whether ``eng``'s market is open at ``ts`` (UTC ns), updating its cached span; False only with a spec."""
        if eng.hours_next == _NEVER:
            return True
        if not eng.hours_lo <= ts < eng.hours_hi:
            spec = self._specs.get(eng.symbol)
            if spec is None:
                return True
            off = eng.cal_offset_ns
            is_open, lo, hi = market_span(spec, ts - off)
            eng.hours_open, eng.hours_lo, eng.hours_hi = is_open, max(lo + off, -(2**63)), min(hi + off, _NEVER)
            eng.hours_next = eng.hours_hi if is_open else eng.hours_lo
        return eng.hours_open

    def _closed_record(self, eng: MatchingEngine, ts: int) -> bool:
        """A record at ``ts`` reached ``eng.hours_next``: True when it falls in a closed period (it is then counted
        and reported once per period, and must not be traded)."""
        if self._span(eng, ts):
            return False
        period = eng.closed
        if isinstance(period, ClosedPeriod) and period.start_ns == eng.hours_lo:
            period.records += 1
            return True
        spec = self._specs.get(eng.symbol)
        assert spec is not None  # _span is closed only with a spec
        off = eng.cal_offset_ns
        kind = closed_kind(spec, eng.hours_lo - off, eng.hours_hi - off)
        period = ClosedPeriod(eng.symbol, eng.hours_lo, eng.hours_hi, kind, ts)
        eng.closed = period
        self.closed_periods.append(period)
        log.warning("data warning: %s", period.notice())
        return True

    def set_calendar_offset(self, symbol: str, offset_ns: int) -> None:
        """Judge ``symbol``'s closed periods at ``event time - offset_ns`` (UTC ns): for a replay whose event times are
        shifted from the data's own (the local ProjectX gateway presents a file at the current time), so the data's
        closed periods stay closed whatever time they are presented at. Closed periods are reported in event time."""
        eng = self._engine(symbol)
        eng.cal_offset_ns = offset_ns
        eng.hours_lo, eng.hours_hi = _NEVER, -(2**63)  # look the span up again
        if eng.hours_next != _NEVER:
            eng.hours_next = -(2**63)

    def data_warnings(self) -> list[str]:
        """The data warnings so far, one line each (:meth:`ClosedPeriod.describe` of :attr:`closed_periods`)."""
        return [p.describe() for p in self.closed_periods]

    def data_warning_summary(self) -> list[str]:
        """The data warnings folded for a text summary: one line per contract and kind of closed period
        (:func:`~propdesk.brokers.sim.calendar_check.fold_closed_periods`)."""
        return fold_closed_periods(self.closed_periods)

    # ------------------------------------------------------------------------------------------------ path marks

    def set_path_listener(self, listener: PathListener | None, probe: PathProbe | None = None) -> None:
        """Report the points of each bar's path of a contract the account holds to ``listener`` (``None``: stop).

        ``listener(symbol, price, ts_ns)`` is called at the open, the nearer extreme, the other extreme and the
        close (the matching engine's path), after the orders the path reached were matched, with the exchange's
        last price at that point (see :meth:`MatchingEngine.on_bar`): a risk engine marks the position there and a
        flatten it sends fills at that price. With ``probe(symbol, a_ticks, b_ticks, tick_size)``, each segment
        ``a -> b`` of the path is first offered to it; a price it returns (e.g. where an MLL breaks) becomes an
        extra point of the path, reported to ``listener`` when the walk reaches it. Bars of contracts the account
        does not hold cost nothing extra."""
        self._path_listener = listener
        self._path_probe = probe if listener is not None else None
        for symbol, eng in self._engines.items():
            eng.path_watch = listener is not None and self.account.position(symbol) != 0

    def engine(self, symbol: str) -> MatchingEngine | None:
        """The matching engine of ``symbol`` (for inspection), ``None`` before any order or data for it."""
        return self._engines.get(symbol)

    def _hours_of(self, spec: ContractSpec) -> MarketHours:
        h = self._hours.get(spec.root)
        if h is None:
            h = self._hours[spec.root] = MarketHours(spec)
        return h

    def _fee_per_contract(self, root: str) -> Money:
        """``config.fee_per_contract(root)``, cached per root (the config is immutable; a new config resets it)."""
        cfg = self.config
        if cfg is not self._fee_cfg:
            self._fee_cfg = cfg
            self._fee_cache = {}
        fee = self._fee_cache.get(root)
        if fee is None:
            fee = self._fee_cache[root] = cfg.fee_per_contract(root)
        return fee

    def _day_expiry_ns(self, spec: ContractSpec, now: int) -> int:
        """``MarketHours.session_end_ns(now)``, reusing the last answer while ``now`` is between the time it was
        asked for and 1 ms before that expiry (the first session close strictly after any time in that span is the
        same close; the margin keeps clear of the float rounding in ``session_end_ns``)."""
        cached = self._expiry_cache.get(spec.root)
        if cached is not None and cached[0] <= now < cached[1]:
            return cached[2]
        end = self._hours_of(spec).session_end_ns(now)
        self._expiry_cache[spec.root] = (now, end - 1_000_000, end)
        return end

    def _closed_reason(self, symbol: str, spec: ContractSpec, eng: MatchingEngine, now: int) -> str | None:
        mode = self.config.calendar_check
        if mode == "off":
            return None
        if not self._span(eng, now):
            return (
                f"market closed: {symbol} is in a closed period "
                f"({closed_kind(spec, eng.hours_lo - eng.cal_offset_ns, eng.hours_hi - eng.cal_offset_ns)} "
                f"until {ct_text(eng.hours_hi)} by the trading calendar)"
            )
        if mode == "data":
            if eng.last_ts_ns < 0:
                return f"market closed: no market data for {symbol} yet"
            if now - eng.last_ts_ns > self.config.data_open_tolerance_ns:
                return f"market closed: no market data for {symbol} in the last {self.config.data_open_tolerance_ns} ns"
            return None
        return self._hours_of(spec).closed_reason(now)

    def _ticks(self, price: Price | None, spec: ContractSpec, what: str) -> int | None:
        if price is None:
            return None
        if not isinstance(price, Price):
            raise _RejectedError(f"{what} {price!r} is not a Price")
        if not price.is_aligned(spec.tick_size):
            raise _RejectedError(f"{what} {price} is not on the tick size {spec.tick_size} of {spec.root}")
        return price.ticks(spec.tick_size)

    def _new_broker_id(self) -> BrokerOrderId:
        n = self._next_order_id
        self._next_order_id = n + 1
        return BrokerOrderId(n)

    def _report_price(self, symbol: str, ticks: int | None) -> Price | None:
        if ticks is None:
            return None
        return self._engine(symbol).price(ticks)

    # ------------------------------------------------------------------------------------------------ commands

    def submit_order(self, order: Order, bracket: BracketSpec | None = None) -> None:
        """Validate and accept ``order`` (with native bracket children when ``bracket`` is given); see the module
        docstring for the rejections and the bracket life cycle."""
        now = self._clock.timestamp_ns()
        cid = order.client_order_id
        acct = self._account_id
        if cid in self._seen:
            self._emit(
                OrderRejected(client_order_id=cid, account_id=acct, ts_event_ns=now, reason="duplicate client order id")
            )
            return
        self._seen.add(cid)
        self._handler(OrderSubmitted(client_order_id=cid, account_id=acct, ts_event_ns=now))
        try:
            rec, eng = self._build(order, bracket, now)
        except _RejectedError as rej:
            self._emit(OrderRejected(client_order_id=cid, account_id=acct, ts_event_ns=now, reason=rej.reason))
            return
        self._orders[cid] = rec
        self._handler(
            OrderAccepted(client_order_id=cid, account_id=acct, ts_event_ns=now, broker_order_id=rec.broker_id)
        )
        if bracket is not None and (bracket.stop_loss_ticks is not None or bracket.take_profit_ticks is not None):
            self._suspend_children(rec, bracket, now)
        if order.linked_ids:
            for other in order.linked_ids:
                sib = self._orders.get(other)
                if sib is not None and sib.is_live and sib.symbol == rec.symbol:
                    self._link(rec, sib)
        self._start(rec, eng, now, immediate=self.config.fill_model == "bar-close")

    def submit_oco(self, first: Order, second: Order) -> None:
        """Submit two orders of the same symbol as a native OCO pair (a fill of one shrinks/cancels the other).

        Each gets its own Submitted/Accepted or Rejected events; if either is rejected the other is canceled.
        """
        self.submit_order(first)
        self.submit_order(second)
        a = self._orders.get(first.client_order_id)
        b = self._orders.get(second.client_order_id)
        now = self._clock.timestamp_ns()
        if a is None or b is None:
            for leg in (a, b):
                if leg is not None and leg.is_live:
                    self._cancel(leg, now, "OCO partner rejected")
            return
        if a.symbol != b.symbol:
            self._cancel(a, now, "OCO legs must be on the same contract")
            self._cancel(b, now, "OCO legs must be on the same contract")
            return
        self._link(a, b)

    @staticmethod
    def _link(a: WorkingOrder, b: WorkingOrder) -> None:
        if b not in a.oco:
            a.oco.append(b)
        if a not in b.oco:
            b.oco.append(a)

    def _build(self, order: Order, bracket: BracketSpec | None, now: int) -> tuple[WorkingOrder, MatchingEngine]:
        if order.account_id != self._account_id:
            raise _RejectedError(f"order for account {order.account_id} sent to account {self._account_id}")
        qty = order.qty
        if not _is_count(qty):
            raise _RejectedError(f"quantity {qty!r} is not a positive whole number of contracts")
        if not isinstance(order.side, Side):
            raise _RejectedError(f"side {order.side!r} is not a Side")
        t = order.order_type
        if not isinstance(t, OrderType):
            raise _RejectedError(f"order type {t!r} is not an OrderType")
        if not isinstance(order.tif, TimeInForce):
            raise _RejectedError(f"time in force {order.tif!r} is not a TimeInForce")
        symbol = order.symbol
        spec = self._spec(symbol)
        if spec is None:
            raise _RejectedError(f"unknown contract {symbol!r}")
        limit = stop = trail = None
        if t in (OrderType.LIMIT, OrderType.STOP_LIMIT):
            limit = self._ticks(order.limit_price, spec, "limit price")
            if limit is None:
                raise _RejectedError(f"a {t.value} order needs a limit price")
        if t in (OrderType.STOP, OrderType.STOP_LIMIT):
            stop = self._ticks(order.stop_price, spec, "stop price")
            if stop is None:
                raise _RejectedError(f"a {t.value} order needs a stop price")
        if t is OrderType.TRAILING_STOP:
            trail = order.trail_ticks
            if not _is_count(trail) or trail is None or trail > MAX_TRAIL_TICKS:
                raise _RejectedError(f"trailing distance {trail!r} must be 1..{MAX_TRAIL_TICKS} ticks")
        if bracket is not None:
            if not self.config.native_brackets:
                raise _RejectedError(
                    "Brackets cannot be used with Position Brackets. You must enable Auto OCO Brackets."
                )
            for what, v in (("stop-loss", bracket.stop_loss_ticks), ("take-profit", bracket.take_profit_ticks)):
                if v is not None and not _is_count(v):
                    raise _RejectedError(f"bracket {what} distance {v!r} must be a positive number of ticks")
        eng = self._engine(symbol)
        closed = self._closed_reason(symbol, spec, eng, now)
        if closed is not None:
            raise _RejectedError(closed)
        if t is OrderType.JOIN_BID or t is OrderType.JOIN_ASK:
            limit = eng.bid if t is OrderType.JOIN_BID else eng.ask
            if limit is None:
                raise _RejectedError(f"{t.value} needs a quote for {symbol}; none received yet")
        if order.reduce_only:
            pos = self.account.position(symbol)
            if pos == 0 or (pos > 0) == (order.side is Side.BUY):
                raise _RejectedError(f"reduce-only order would not reduce the position ({pos} {symbol})")
        rec = WorkingOrder(
            cid=order.client_order_id,
            broker_id=self._new_broker_id(),
            symbol=symbol,
            side=int(order.side),
            qty=qty,
            order_type=t,
            limit=limit,
            stop=stop,
            trail=trail,
            tif=order.tif,
            tag=order.tag,
            reduce_only=order.reduce_only,
            ts_ns=now,
        )
        if order.tif is TimeInForce.DAY:
            rec.expiry_ns = self._day_expiry_ns(spec, now)
            if self.config.day_expiry_timer:
                self._ensure_day_timer(spec)
        return rec, eng

    def _start(self, rec: WorkingOrder, eng: MatchingEngine, now: int, *, immediate: bool) -> None:
        eng.add(rec)
        if immediate and rec.order_type is OrderType.MARKET and self._span(eng, now):
            eng.fill_now(rec, now)

    def _suspend_children(self, entry: WorkingOrder, bracket: BracketSpec, now: int) -> None:
        entry.bracket = bracket
        legs: list[tuple[str, OrderType]] = []
        if bracket.stop_loss_ticks is not None:
            legs.append(("sl", OrderType.STOP))
        if bracket.take_profit_ticks is not None:
            legs.append(("tp", OrderType.LIMIT))
        for role, typ in legs:
            cid = ClientOrderId(f"{entry.cid}-{role}")
            child = WorkingOrder(
                cid=cid,
                broker_id=self._new_broker_id(),
                symbol=entry.symbol,
                side=-entry.side,
                qty=entry.qty,
                order_type=typ,
                tif=TimeInForce.GTC,
                tag=entry.tag,
                ts_ns=now,
            )
            child.status = OrderStatus.SUSPENDED
            child.parent = entry
            child.role = role
            entry.children.append(child)
            self._seen.add(cid)
            self._orders[cid] = child
            self._emit(OrderSubmitted(client_order_id=cid, account_id=self._account_id, ts_event_ns=now))
            self._emit(
                OrderSuspended(
                    client_order_id=cid, account_id=self._account_id, ts_event_ns=now, broker_order_id=child.broker_id
                )
            )

    def modify_order(
        self,
        order: Order,
        *,
        qty: int | None = None,
        limit_price: Price | None = None,
        stop_price: Price | None = None,
        trail_ticks: int | None = None,
    ) -> None:
        """Change a working order in place: ``OrderUpdated`` with the changed fields, or ``OrderModifyRejected``.

        Bracket children's quantity is managed by the broker (rejected); their prices can be changed once active.
        """
        now = self._clock.timestamp_ns()
        cid = order.client_order_id
        rec = self._orders.get(cid)
        try:
            if rec is None or not rec.is_live:
                raise _RejectedError(f"order {cid} is not working at the broker")
            spec = self._spec(rec.symbol)
            assert spec is not None
            t = rec.order_type
            if qty is not None:
                if not _is_count(qty):
                    raise _RejectedError(f"quantity {qty!r} is not a positive whole number of contracts")
                if qty <= rec.filled:
                    raise _RejectedError(f"new quantity {qty} must exceed the {rec.filled} already filled")
                if rec.parent is not None:
                    raise _RejectedError("bracket children are sized by the broker to the entry's fills")
            if rec.status is OrderStatus.SUSPENDED and (limit_price is not None or stop_price is not None):
                raise _RejectedError("a suspended bracket child is priced when its entry fills")
            lim = self._ticks(limit_price, spec, "limit price")
            if lim is not None and t not in (
                OrderType.LIMIT,
                OrderType.STOP_LIMIT,
                OrderType.JOIN_BID,
                OrderType.JOIN_ASK,
            ):
                raise _RejectedError(f"a {t.value} order has no limit price")
            stp = self._ticks(stop_price, spec, "stop price")
            if stp is not None and t not in (OrderType.STOP, OrderType.STOP_LIMIT):
                raise _RejectedError(f"a {t.value} order has no stop price")
            if trail_ticks is not None:
                if t is not OrderType.TRAILING_STOP:
                    raise _RejectedError(f"a {t.value} order has no trailing distance")
                if not _is_count(trail_ticks) or trail_ticks > MAX_TRAIL_TICKS:
                    raise _RejectedError(f"trailing distance {trail_ticks!r} must be 1..{MAX_TRAIL_TICKS} ticks")
        except _RejectedError as rej:
            self._emit(
                OrderModifyRejected(
                    client_order_id=cid, account_id=self._account_id, ts_event_ns=now, reason=rej.reason
                )
            )
            return
        if qty is not None:
            rec.qty = qty
        if lim is not None:
            rec.limit = lim
        if stp is not None:
            rec.stop = stp
        if trail_ticks is not None:
            rec.trail = trail_ticks
        rec.ts_last_ns = now
        self._emit(
            OrderUpdated(
                client_order_id=cid,
                account_id=self._account_id,
                ts_event_ns=now,
                qty=qty,
                limit_price=limit_price,
                stop_price=stop_price,
                trail_ticks=trail_ticks,
            )
        )
        if qty is not None:
            for child in rec.children:
                if child.status is OrderStatus.SUSPENDED:
                    child.qty = qty
                    self._emit(
                        OrderUpdated(client_order_id=child.cid, account_id=self._account_id, ts_event_ns=now, qty=qty)
                    )

    def cancel_order(self, order: Order) -> None:
        """Cancel a working (or suspended) order: ``OrderCanceled``, or ``OrderCancelRejected`` if not working."""
        now = self._clock.timestamp_ns()
        rec = self._orders.get(order.client_order_id)
        if rec is None or not rec.is_live:
            self._emit(
                OrderCancelRejected(
                    client_order_id=order.client_order_id,
                    account_id=self._account_id,
                    ts_event_ns=now,
                    reason=f"order {order.client_order_id} is not working at the broker",
                )
            )
            return
        self._cancel(rec, now, "canceled by request")

    def cancel_all_orders(self, symbol: str | None = None) -> None:
        """Cancel every working and suspended order (of ``symbol`` only when given), entries before children."""
        now = self._clock.timestamp_ns()
        for rec in list(self._orders.values()):
            if rec.is_live and (symbol is None or rec.symbol == symbol):
                self._cancel(rec, now, "canceled by request")

    def close_position(self, symbol: str, qty: int | None = None) -> None:
        """Close ``qty`` contracts (all when ``None``; clamped to the position) of ``symbol`` at market.

        Closing the whole position first cancels the symbol's working orders. Nothing happens when flat.
        """
        pos = self.account.position(symbol)
        if pos == 0:
            return
        if qty is None:
            self.cancel_all_orders(symbol)
            pos = self.account.position(symbol)
            if pos == 0:
                return
            n = abs(pos)
        else:
            if not _is_count(qty):
                return
            n = min(qty, abs(pos))
        now = self._clock.timestamp_ns()
        k = self._next_close
        self._next_close = k + 1
        cid = ClientOrderId(f"sim-close-{k}")
        rec = WorkingOrder(
            cid=cid,
            broker_id=self._new_broker_id(),
            symbol=symbol,
            side=-1 if pos > 0 else 1,
            qty=n,
            order_type=OrderType.MARKET,
            tif=TimeInForce.GTC,
            tag="close",
            reduce_only=True,
            ts_ns=now,
        )
        rec.is_close = True
        self._seen.add(cid)
        self._orders[cid] = rec
        self._emit(OrderSubmitted(client_order_id=cid, account_id=self._account_id, ts_event_ns=now))
        self._emit(
            OrderAccepted(
                client_order_id=cid, account_id=self._account_id, ts_event_ns=now, broker_order_id=rec.broker_id
            )
        )
        self._start(rec, self._engine(symbol), now, immediate=self.config.flatten_fill == "last-price")

    def flatten(self) -> None:
        """Cancel every working order, then close every position at market (module docstring)."""
        self.cancel_all_orders()
        for symbol, p in list(self.account.positions.items()):
            if p.signed_qty:
                self.close_position(symbol)

    def expire_day_orders(self, ts_ns: int) -> None:
        """Expire every DAY order whose session ended at or before ``ts_ns`` (UTC ns); used by the day timer."""
        for eng in self._engines.values():
            if ts_ns >= eng.next_expiry_ns:
                eng.expire(ts_ns)

    def _ensure_day_timer(self, spec: ContractSpec) -> None:
        name = f"sim.{self._account_id}.day_expiry.{spec.timezone}.{spec.session_close:%H%M}"
        if name in self._timers:
            return
        self._timers.add(name)

        def fire(ev: TimeEvent) -> None:
            self.expire_day_orders(ev.ts_event_ns)

        self._clock.set_daily_timer(name, spec.session_close, spec.timezone, fire)

    # ------------------------------------------------------------------------------------------------ engine callbacks

    def _cancel(self, rec: WorkingOrder, ts: int, reason: str) -> None:
        if not rec.is_live:
            return
        eng = self._engines.get(rec.symbol)
        if eng is not None:
            eng.remove(rec)
        rec.status = OrderStatus.CANCELED
        rec.ts_last_ns = ts
        self._orders.pop(rec.cid, None)
        self._emit(OrderCanceled(client_order_id=rec.cid, account_id=self._account_id, ts_event_ns=ts, reason=reason))
        if rec.children and rec.filled == 0:
            for child in rec.children:
                self._cancel(child, ts, "bracket parent canceled")

    def _on_expire(self, rec: WorkingOrder, ts: int) -> None:
        self._orders.pop(rec.cid, None)
        self._emit(OrderExpired(client_order_id=rec.cid, account_id=self._account_id, ts_event_ns=ts))
        if rec.children and rec.filled == 0:
            for child in rec.children:
                self._cancel(child, ts, "bracket parent expired")

    def _on_fill(self, rec: WorkingOrder, qty: int, px: int, ts: int) -> None:
        symbol = rec.symbol
        spec = self._specs[symbol]
        assert spec is not None
        price = self._engines[symbol].price(px)
        fee = self._fee_per_contract(spec.root) * qty
        signed = qty * rec.side
        account = self.account
        before = account.position(symbol)
        realized = account.apply_fill(symbol, spec, signed, price, fee, ts_ns=ts)
        closing = before != 0 and (before > 0) != (signed > 0)
        if self._path_listener is not None:
            self._engines[symbol].path_watch = before + signed != 0
        n = self._next_trade
        self._next_trade = n + 1
        trade_id = f"{self._account_id}-{n}"
        cid = rec.cid
        # the FillReport is built when fill_reports() asks (saves a frozen 11-field record per fill in backtests)
        self._fill_rows.append(
            (trade_id, rec.broker_id, cid, symbol, rec.side, qty, price, fee, ts, realized if closing else None)
        )
        if rec.status not in LIVE_STATUSES:
            self._orders.pop(cid, None)
        self._handler(
            OrderFilled(
                client_order_id=cid,
                account_id=self._account_id,
                ts_event_ns=ts,
                symbol=symbol,
                side=Side.BUY if rec.side > 0 else Side.SELL,
                qty=qty,
                price=price,
                fee=fee,
                trade_id=trade_id,
                tag=rec.tag,
            )
        )
        if rec.children:
            if rec.anchor is None:
                rec.anchor = px
            self._sync_bracket(rec, ts)
        elif rec.parent is not None:
            self._sync_bracket(rec.parent, ts)
        if rec.oco:
            self._oco_fill(rec, qty, ts)

    def _sync_bracket(self, entry: WorkingOrder, ts: int) -> None:
        if entry.filled == 0 or entry.anchor is None or entry.bracket is None:
            return
        covered = entry.filled - sum(c.filled for c in entry.children)
        eng = self._engines[entry.symbol]
        acct = self._account_id
        for c in entry.children:
            if not c.is_live:
                continue
            if c.status is OrderStatus.SUSPENDED:
                if covered <= 0:
                    self._cancel(c, ts, "bracket closed")
                    continue
                c.qty = covered
                if c.role == "sl":
                    sl = entry.bracket.stop_loss_ticks
                    assert sl is not None
                    c.stop = entry.anchor - entry.side * sl
                    self._emit(
                        OrderUpdated(
                            client_order_id=c.cid,
                            account_id=acct,
                            ts_event_ns=ts,
                            qty=covered,
                            stop_price=eng.price(c.stop),
                        )
                    )
                else:
                    tp = entry.bracket.take_profit_ticks
                    assert tp is not None
                    c.limit = entry.anchor + entry.side * tp
                    self._emit(
                        OrderUpdated(
                            client_order_id=c.cid,
                            account_id=acct,
                            ts_event_ns=ts,
                            qty=covered,
                            limit_price=eng.price(c.limit),
                        )
                    )
                c.status = OrderStatus.ACCEPTED
                c.ts_accepted_ns = c.ts_last_ns = ts
                self._emit(
                    OrderAccepted(client_order_id=c.cid, account_id=acct, ts_event_ns=ts, broker_order_id=c.broker_id)
                )
                eng.add(c, eligible_now=True)
            elif covered <= 0:
                self._cancel(c, ts, "OCO: the other bracket leg filled")
            elif c.filled + covered != c.qty:
                c.qty = c.filled + covered
                self._emit(OrderUpdated(client_order_id=c.cid, account_id=acct, ts_event_ns=ts, qty=c.qty))
        if covered <= 0 and entry.is_live and any(c.filled for c in entry.children):
            self._cancel(entry, ts, "bracket closed by its exit leg")

    def _oco_fill(self, rec: WorkingOrder, qty: int, ts: int) -> None:
        for sib in list(rec.oco):
            if not sib.is_live:
                continue
            if rec.status is OrderStatus.FILLED or sib.leaves - qty <= 0:
                self._cancel(sib, ts, f"OCO: {rec.cid} filled")
            else:
                sib.qty -= qty
                self._emit(
                    OrderUpdated(client_order_id=sib.cid, account_id=self._account_id, ts_event_ns=ts, qty=sib.qty)
                )

    # ------------------------------------------------------------------------------------------------ market data

    def process_bar(self, bar: Bar) -> None:
        """Match ``bar`` against the symbol's working orders (OHLC path, see matching). HOT PATH."""
        eng = self._engines.get(bar.symbol)
        if eng is None:
            eng = self._engine(bar.symbol)
        if bar.ts_open_ns >= eng.hours_next and self._closed_record(eng, bar.ts_open_ns):
            return
        if eng.orders or eng.path_watch:
            self._match_bar(eng, bar)
        else:
            eng.last_px = bar.close
            eng.last_ts_ns = bar.ts_close_ns

    def _match_bar(self, eng: MatchingEngine, bar: Bar) -> None:
        """``process_bar`` with working orders or a held position: the path walk, reporting the path's points to the
        path listener while a position is held (or an order may open one inside the bar)."""
        listener = self._path_listener
        if listener is None:
            eng.on_bar(bar)
            return
        symbol, tick_f, ts_c = bar.symbol, eng.tick_f, bar.ts_close_ns
        probe = self._path_probe
        eng.on_bar(
            bar,
            lambda p, _ts: listener(symbol, p * tick_f, ts_c),  # the clock is at the close
            None if probe is None else (lambda a, b: probe(symbol, a, b, tick_f)),
        )

    def note_data_time(self, symbol: str, ts_ns: int) -> None:
        """Market data for ``symbol`` exists at ``ts_ns`` (UTC ns) with nothing to match: the close of a bar built
        from finer bars (:meth:`propdesk.data.aggregation.feeds.BarFeeds.close_due`). Under
        ``calendar_check="data"`` the market counts as open then, as at a pre-aggregated bar's close."""
        eng = self._engines.get(symbol)
        if eng is None:
            eng = self._engine(symbol)
        if ts_ns > eng.last_ts_ns:
            eng.last_ts_ns = ts_ns

    def process_trade(self, trade: TradeTick) -> None:
        """Match one trade print against the symbol's working orders."""
        eng = self._engines.get(trade.symbol)
        if eng is None:
            eng = self._engine(trade.symbol)
        if trade.ts_event_ns >= eng.hours_next and self._closed_record(eng, trade.ts_event_ns):
            return
        if eng.orders:
            eng.on_trade(trade)
        else:
            eng.last_px = trade.price
            eng.last_ts_ns = trade.ts_event_ns

    def process_quote(self, quote: QuoteTick) -> None:
        """Record the top of book and match it (a one-level book) against the symbol's working orders."""
        eng = self._engines.get(quote.symbol)
        if eng is None:
            eng = self._engine(quote.symbol)
        if quote.ts_event_ns >= eng.hours_next and self._closed_record(eng, quote.ts_event_ns):
            return
        prev_b, prev_a = eng.bid, eng.ask
        b = eng.to_ticks(quote.bid) if math.isfinite(quote.bid) else None
        a = eng.to_ticks(quote.ask) if math.isfinite(quote.ask) else None
        eng.bid, eng.ask, eng.bid_size, eng.ask_size = b, a, quote.bid_size, quote.ask_size
        eng.last_ts_ns = quote.ts_event_ns
        if eng.orders:
            eng.on_book(
                [] if b is None else [(b, quote.bid_size)],
                [] if a is None else [(a, quote.ask_size)],
                prev_b,
                prev_a,
                ts=quote.ts_event_ns,
                slip=self.config.slippage_ticks,
            )

    def process_depth(self, update: DepthUpdate) -> None:
        """Apply one L2 (market-by-price) update to the symbol's book; at each consistent point (``is_last``) match
        the working orders against it (market orders walk the levels). For L3 data pass an aggregated book to
        :meth:`process_book` instead."""
        eng = self._engines.get(update.symbol)
        if eng is None:
            eng = self._engine(update.symbol)
        action = update.action
        if action is BookAction.CLEAR:
            if update.side is None or update.side is BookSide.BID:
                eng.book_bids.clear()
            if update.side is None or update.side is BookSide.ASK:
                eng.book_asks.clear()
        else:
            side = eng.book_bids if update.side is BookSide.BID else eng.book_asks
            px = eng.to_ticks(update.price)
            if action is BookAction.DELETE or update.size <= 0:
                side.pop(px, None)
            else:
                side[px] = update.size
        if not update.is_last:
            eng.last_ts_ns = update.ts_event_ns
            return
        if update.ts_event_ns >= eng.hours_next and self._closed_record(eng, update.ts_event_ns):
            return
        eng.last_ts_ns = update.ts_event_ns
        n = self.config.book_levels
        bids = sorted(eng.book_bids.items(), reverse=True)[:n]
        asks = sorted(eng.book_asks.items())[:n]
        self._match_book(eng, bids, asks, update.ts_event_ns)

    def process_book(self, symbol: str, book: BookLevels, ts_ns: int) -> None:
        """Match the symbol's working orders against a whole L2 book (e.g. ``propdesk.data.book.L2Book``) at
        ``ts_ns`` (UTC ns); reads ``SimConfig.book_levels`` levels per side."""
        eng = self._engines.get(symbol)
        if eng is None:
            eng = self._engine(symbol)
        if ts_ns >= eng.hours_next and self._closed_record(eng, ts_ns):
            return
        n = self.config.book_levels
        bids = [(eng.to_ticks(p), s) for p, s in book.levels(BookSide.BID, n)]
        asks = [(eng.to_ticks(p), s) for p, s in book.levels(BookSide.ASK, n)]
        eng.last_ts_ns = ts_ns
        self._match_book(eng, bids, asks, ts_ns)

    def _match_book(
        self, eng: MatchingEngine, bids: list[tuple[int, int]], asks: list[tuple[int, int]], ts_ns: int
    ) -> None:
        prev_b, prev_a = eng.bid, eng.ask
        eng.bid, eng.bid_size = (bids[0][0], bids[0][1]) if bids else (None, 0)
        eng.ask, eng.ask_size = (asks[0][0], asks[0][1]) if asks else (None, 0)
        if eng.orders:
            eng.on_book(bids, asks, prev_b, prev_a, ts=ts_ns, slip=0)

    # ------------------------------------------------------------------------------------------------ subscriptions

    def subscribe(self, symbol: str, *, quotes: bool = True, trades: bool = True, depth: bool = False) -> None:
        """Record the subscription (the replay feed, not the sim, supplies the data)."""
        self.subscriptions[symbol] = (quotes, trades, depth)

    def unsubscribe(self, symbol: str) -> None:
        """Forget the subscription."""
        self.subscriptions.pop(symbol, None)

    async def request_bars(self, symbol: str, timeframe: Timeframe, start_ns: int, end_ns: int) -> BarSeries:
        """Bars from the ``history`` provider given at construction; an empty series without one."""
        if self._history is not None:
            return self._history(symbol, timeframe, start_ns, end_ns)
        empty_i = np.empty(0, dtype=np.int64)
        empty_f = np.empty(0, dtype=np.float64)
        return BarSeries(symbol, timeframe, empty_i, empty_i, empty_f, empty_f, empty_f, empty_f, empty_i)

    # ------------------------------------------------------------------------------------------------ reports

    async def order_reports(self) -> list[OrderReport]:
        """Every open order (working, partially filled or suspended), in broker-id order."""
        return [self._order_report(r) for r in sorted(self._orders.values(), key=lambda r: r.broker_id) if r.is_live]

    def _order_report(self, r: WorkingOrder) -> OrderReport:
        eng = self._engine(r.symbol)
        avg = Price(r.notional * eng.tick_size.raw // r.filled) if r.filled else None
        return OrderReport(
            account_id=self._account_id,
            broker_order_id=r.broker_id,
            client_order_id=r.cid,
            symbol=r.symbol,
            side=Side(r.side),
            qty=r.qty,
            order_type=r.order_type,
            status=r.status,
            filled_qty=r.filled,
            avg_fill_price=avg,
            limit_price=self._report_price(r.symbol, r.limit),
            stop_price=self._report_price(r.symbol, r.stop_level()),
            ts_ns=r.ts_last_ns,
        )

    async def fill_reports(self, since_ns: int) -> list[FillReport]:
        """Every fill at or after ``since_ns`` (UTC ns), oldest first."""
        return [f for f in self._fill_report_list() if f.ts_ns >= since_ns]

    def _fill_report_list(self) -> list[FillReport]:
        """Every fill as a :class:`FillReport`, oldest first (built once each, on first demand)."""
        fills, rows = self._fills, self._fill_rows
        for i in range(len(fills), len(rows)):
            trade_id, broker_id, cid, symbol, side, qty, price, fee, ts, realized = rows[i]
            fills.append(
                FillReport(
                    account_id=self._account_id,
                    trade_id=trade_id,
                    broker_order_id=broker_id,
                    client_order_id=cid,
                    symbol=symbol,
                    side=Side.BUY if side > 0 else Side.SELL,
                    qty=qty,
                    price=price,
                    fee=fee,
                    ts_ns=ts,
                    realized_pnl=realized,
                )
            )
        return fills

    async def position_reports(self) -> list[PositionReport]:
        """Every open position with its FIFO average price."""
        out = []
        for symbol, p in self.account.positions.items():
            avg = p.avg_price
            if p.signed_qty and avg is not None:
                out.append(
                    PositionReport(
                        account_id=self._account_id,
                        symbol=symbol,
                        signed_qty=p.signed_qty,
                        avg_price=avg,
                        ts_ns=p.last_ts_ns,
                    )
                )
        return out

    async def account_report(self) -> AccountReport:
        """The balance (starting + realized - fees); always ``can_trade`` and ``simulated``."""
        return AccountReport(
            account_id=self._account_id,
            name=self.config.account_name,
            balance=self.account.balance,
            can_trade=True,
            simulated=True,
            ts_ns=self._clock.timestamp_ns(),
        )


def create_broker(
    settings: SimConfig,
    *,
    account_id: AccountId,
    clock: Clock,
    starting_balance: Money | None = None,
    contracts: ContractLookup | None = None,
    history: HistoryProvider | None = None,
) -> SimBroker:
    """The registry's factory for ``sim`` (:mod:`propdesk.brokers.registry`): a :class:`SimBroker` for
    ``account_id`` on ``clock`` with ``settings`` (``starting_balance`` USD, default 50,000)."""
    return SimBroker(
        clock,
        account_id=account_id,
        config=settings,
        starting_balance=starting_balance,
        contracts=contracts,
        history=history,
    )


def _drop(_event: object) -> None:
    """The default event handler: drops events until :meth:`SimBroker.set_event_handler` is called."""
