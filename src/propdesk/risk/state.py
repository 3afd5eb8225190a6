"""Account state: the figures the risk rules read, computed locally (``../shared/specs/risk-rules.md`` section 3).

The Gateway API gives balance, positions, orders, fills and quotes, but not unrealized PnL, day PnL, the MLL floor,
trade counts or lockout state (risk-rules.md section 3), so :class:`AccountState` computes them. It implements the
rules' :class:`~propdesk.risk.rules.base.AccountView` for one account.

Sources of its inputs:

* **Positions and marks** come from the node's :class:`~propdesk.execution.positions.PositionManager` (exact FIFO
  realized PnL; liquidation marks: bid for longs, ask for shorts, last trade as fallback, risk-rules.md section 3.1).
* **Fills** arrive through :meth:`AccountState.on_fill` (subscribe it to ``events.order.filled`` at a priority below
  the position manager's 100, so positions are already updated; if they are not, the fill is applied to the position
  manager first, which ignores a trade id it already has). Each fill row is one trade (section 3.5: "five contracts
  and scale out (2, 2, and 1), that counts as 4 trades", https://help.topstep.com/en/articles/10470162). A fill
  whose ``trade_id`` was already counted is ignored.
* **Marks**: :meth:`AccountState.on_mark` after each quote/trade/bar of a held contract recomputes unrealized PnL,
  equity and the day peaks (cheap: O(open positions)). Property reads never recompute: they return cached values.
* **The trading day**: :meth:`AccountState.roll_day` at the session boundary (17:00 America/Chicago) records the
  end-of-day balance, moves the MLL floor, resets the day counters and appends the day to the history.

Every PnL figure includes fees (section 3.2; Topstep's limits are "calculated on the net profit and loss",
https://help.topstep.com/en/articles/9823693). Money is exact (integer cents).

MLL floor (section 3.4, https://help.topstep.com/en/articles/8284204)::

    peak  = max(start_balance, max(eod_balance[d] for every closed trading day d))
    floor = min(start_balance, peak - mll_amount)     # lock_at_start; without the lock: peak - mll_amount

The intraday modes (section 3.4 CONFLICT) also fold the running ``day_peak_realized`` (INTRADAY_REALIZED) or
``day_peak_equity`` (INTRADAY_UNREALIZED) into ``peak``. The floor is ``None`` until known: a new account knows it
from its start balance; an existing one needs :meth:`AccountState.seed` (the user's current floor, e.g. from
TopstepX's "Distance To MLL") or :meth:`AccountState.restore` (the journal). While it is ``None`` the guard keeps the
account REDUCING (section 7.6); :meth:`AccountState.missing_inputs` names what is unknown.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

from propdesk.core.errors import ConfigError
from propdesk.core.timefmt import CT
from propdesk.execution.positions import PositionManager
from propdesk.model.events import OrderFilled
from propdesk.model.identifiers import AccountId, ClientOrderId
from propdesk.model.orders import Order, OrderType
from propdesk.model.price import Money
from propdesk.model.records import AccountSnapshot
from propdesk.risk.rules.base import OpenPosition

__all__ = [
    "AccountState",
    "MllConfig",
    "MllMode",
    "TradingDayCalendar",
    "mll_floor",
]

log = logging.getLogger("propdesk.risk.state")

_CT = CT
"""The time zone of CME trading days (risk-rules.md section 2); used only to probe the calendar for the next day."""


class MllMode(StrEnum):
    """How the Maximum Loss Limit trails (risk-rules.md section 3.4).

    EOD: from the end-of-day balance high (official, https://help.topstep.com/en/articles/8284204).
    INTRADAY_REALIZED / INTRADAY_UNREALIZED: also from today's running realized balance / equity high (a 3P 2026
    page says the Combine trails intraday; CONFLICT, https://proptradingvibes.com/blog/topstep-rules-overview).
    """

    EOD = "EOD"
    INTRADAY_REALIZED = "INTRADAY_REALIZED"
    INTRADAY_UNREALIZED = "INTRADAY_UNREALIZED"


@dataclass(frozen=True, slots=True)
class MllConfig:
    """The Maximum Loss Limit of an account: ``amount`` USD below the balance high, trailing per ``mode``; with
    ``lock_at_start`` the floor stops at the start balance once the high reaches ``start + amount`` (section 3.4)."""

    amount: Money
    mode: MllMode = MllMode.EOD
    lock_at_start: bool = True


def mll_floor(start_balance: Money, peak: Money, cfg: MllConfig) -> Money:
    """The MLL floor for a balance high of ``peak`` (USD): ``min(start, max(start, peak) - amount)`` with
    ``lock_at_start``, else ``max(start, peak) - amount`` (risk-rules.md section 3.4).

    Example (50K Combine, $2,000): peak 50,000 -> 48,000; 50,500 -> 48,500; 52,500 -> 50,000 (locked).
    """
    high = max(start_balance.cents, peak.cents)
    floor = high - cfg.amount.cents
    if cfg.lock_at_start and floor > start_balance.cents:
        floor = start_balance.cents
    return Money(floor)


class TradingDayCalendar(Protocol):
    """What the account state needs of the trading calendar (``propdesk.model.calendar.TradingCalendar`` has it).

    ``trading_date(ts_ns)``: the date of the first session close at or after ``ts_ns`` (UTC ns); ``day_start_ns(d)``:
    the session open of trading day ``d`` (UTC ns). Both may raise for a date the calendar does not cover.
    """

    def trading_date(self, ts_ns: int) -> date: ...
    def day_start_ns(self, d: date) -> int: ...


class _Rolled(Protocol):
    """A session-roll event: the new trading day's start, UTC ns."""

    @property
    def ts_ns(self) -> int: ...


def _week_key(d: date) -> tuple[int, int]:
    iso = d.isocalendar()
    return (iso[0], iso[1])


class AccountState:
    """The locally computed state of one account; implements :class:`~propdesk.risk.rules.base.AccountView`.

    Args:
        account_id: the broker account.
        start_balance: the account's starting balance, USD (50,000 for a 50K Combine; 0 or 50,000 for an XFA,
            risk-rules.md section 3.4). Also the initial balance unless ``balance`` is given.
        positions: the node's position manager (positions, marks, contract specs).
        working_orders: returns the account's open orders (e.g. ``OrderManager.open_orders``); read on demand.
        calendar: the trading calendar (:class:`TradingDayCalendar`).
        clock: returns now, UTC ns (e.g. ``clock.timestamp_ns``).
        mll: the MLL configuration; ``None`` for an account without one (the floor stays ``None``).
        new_account: ``True`` when the account starts now at ``start_balance`` (the MLL floor is then known:
            ``start - amount``); otherwise the floor is unknown until :meth:`seed` or :meth:`restore`.
        balance: the current realized balance when it differs from ``start_balance`` (USD).
        weights: mini-equivalents per contract by root, overriding the default (e.g. ``{"MGC": Decimal("0.1")}``).
        micro_ratio: micros per mini (10 on TopstepX, 1 elsewhere; risk-rules.md R5). ``None`` uses the contract
            table's ``topstepx_mini_weight``.
        default_risk_ticks: ticks of risk assumed by :meth:`stop_risk` for an order without an attached stop;
            ``None`` (default): :meth:`stop_risk` returns 0 for such an order, and the rules' ``order_risk`` applies
            their own ``default_risk_ticks`` parameter (``propdesk.risk.rules.common.order_risk``).
        bracket_stop_ticks: returns the stop-loss distance (ticks) of a bracket whose entry is the given client
            order id, or ``None`` (e.g. ``lambda cid: (b := om.bracket(cid)) and b.stop_loss_ticks``).
        exit_fees: an estimated exit fee per contract by root (USD), subtracted from unrealized PnL (section 3.1
            ``estimate_exit_fees``); roots not listed count 0.

    Raises:
        ConfigError: ``default_risk_ticks`` not positive, a negative MLL amount, or a weight / micro ratio that is not
            positive.
    """

    def __init__(
        self,
        account_id: AccountId,
        *,
        start_balance: Money,
        positions: PositionManager,
        working_orders: Callable[[], Sequence[Order]],
        calendar: TradingDayCalendar,
        clock: Callable[[], int],
        mll: MllConfig | None,
        new_account: bool = False,
        balance: Money | None = None,
        weights: Mapping[str, Decimal] | None = None,
        micro_ratio: int | None = None,
        default_risk_ticks: int | None = None,
        bracket_stop_ticks: Callable[[ClientOrderId], int | None] | None = None,
        exit_fees: Mapping[str, Money] | None = None,
    ) -> None:
        if default_risk_ticks is not None and (
            isinstance(default_risk_ticks, bool) or not isinstance(default_risk_ticks, int) or default_risk_ticks <= 0
        ):
            raise ConfigError(f"default_risk_ticks must be a positive int, got {default_risk_ticks!r}")
        if mll is not None and mll.amount.cents < 0:
            raise ConfigError(f"MLL amount must not be negative, got {mll.amount}")
        if micro_ratio is not None and (isinstance(micro_ratio, bool) or micro_ratio <= 0):
            raise ConfigError(f"micro_ratio must be a positive int, got {micro_ratio!r}")
        for root, w in (weights or {}).items():
            if w <= 0:
                raise ConfigError(f"weight of {root} must be positive, got {w}")
        self.account_id = account_id
        self._pm = positions
        self._orders = working_orders
        self._calendar = calendar
        self._clock = clock
        self._mll = mll
        self._weights_override = dict(weights or {})
        self._micro_ratio = micro_ratio
        self._default_risk_ticks = default_risk_ticks
        self._bracket_stop_ticks = bracket_stop_ticks
        self._exit_fees = {r: m.cents for r, m in (exit_fees or {}).items()}
        self._weights: dict[str, Decimal] = {}
        self._weights_f: dict[str, float] = {}  # float(weight_exact) by symbol
        self._roots: dict[str, str] = {}  # root by symbol (a symbol's root never changes)
        self._start_c = start_balance.cents
        self._m_start = start_balance

        self._trade_ids: set[str] = set()
        self._sym_realized: dict[str, int] = {p.symbol: p.realized_cents for p in positions.positions(account_id)}
        self._round_trip: dict[str, int] = {}
        self._eod: list[tuple[date, Money]] = []
        self._history: list[tuple[date, Money]] = []
        self._best_c = 0
        self._total_c = 0

        now = clock()
        self._date = calendar.trading_date(now)
        self._day_start_ns = calendar.day_start_ns(self._date)
        self._next_day_start_ns = self._next_start(self._date)
        self._week = _week_key(self._date)
        week_start = getattr(calendar, "week_start_ns", None)  # TradingCalendar has it; a stub may not
        self._week_start_ns = int(week_start(self._day_start_ns)) if callable(week_start) else self._day_start_ns

        self._balance_c = start_balance.cents if balance is None else balance.cents
        self._sod_c = self._balance_c
        self._day_gross_c = 0
        self._day_fees_c = 0
        self.trades_today = 0
        """Fill rows since the day started (risk-rules.md section 3.5)."""
        self.trades_week = 0
        """Fill rows since the week started (Sunday 17:00 CT)."""
        self.contracts_today = 0
        """Contracts filled since the day started (sum of fill quantities; R15)."""
        self.consecutive_losses = 0
        """Losing round trips in a row (reset by a winning one and at the day's start; R9)."""
        self.last_loss_ts_ns: int | None = None
        """When the last losing round trip ended, UTC ns (R9 cooldown)."""
        self.fills_before_day = 0
        """Late fills dated before the current day's start (reconciled): counted in the balance only."""

        self._positions_cache: tuple[OpenPosition, ...] | None = None
        self._exit_fee_c = 0
        self._recompute_exit_fees()
        self._unreal_c = positions.unrealized_cents(account_id) - self._exit_fee_c
        self._peak_real_c = self._balance_c
        self._peak_eq_c = self._balance_c + self._unreal_c
        self._mll_peak_c: int | None = None
        if mll is not None and new_account:
            self._mll_peak_c = self._start_c
        zero = Money(0)
        self._m_unreal = self._m_equity = self._m_day_net = self._m_peak_eq = zero
        self._m_balance = self._m_sod = self._m_day_real = self._m_peak_real = zero
        self._m_best = self._m_total = zero
        self._m_floor: Money | None = None
        self._floor_peak_c: int | None = None  # the MLL peak _m_floor was computed from
        self._history_view: tuple[tuple[date, Money], ...] = ()
        self._refresh_history_money()
        self._refresh_day_money()

    # ------------------------------------------------------------------ AccountView

    @property
    def now_ns(self) -> int:
        """Now, UTC ns (from the clock)."""
        return self._clock()

    @property
    def trading_date(self) -> date:
        """The current trading day (changes at :meth:`roll_day`)."""
        return self._date

    @property
    def day_start_ns(self) -> int:
        """The current trading day's session open, UTC ns."""
        return self._day_start_ns

    @property
    def next_day_start_ns(self) -> int:
        """The next trading day's session open, UTC ns (when day lockouts expire)."""
        return self._next_day_start_ns

    @property
    def week_start_ns(self) -> int:
        """The start of the week counted by :attr:`trades_week`, UTC ns."""
        return self._week_start_ns

    @property
    def start_balance(self) -> Money:
        """The account's starting balance, USD."""
        return self._m_start

    @property
    def balance(self) -> Money:
        """Realized balance: start + realized PnL net of fees, USD."""
        return self._m_balance

    @property
    def sod_balance(self) -> Money:
        """The balance at the day's start, USD."""
        return self._m_sod

    @property
    def day_realized_net(self) -> Money:
        """Realized PnL since the day started, net of every fee (opening fills too), USD."""
        return self._m_day_real

    @property
    def day_fees(self) -> Money:
        """Fees since the day started, USD."""
        return Money(self._day_fees_c)

    @property
    def unrealized(self) -> Money:
        """Open PnL at the liquidation marks minus estimated exit fees, USD (unmarked positions count 0)."""
        return self._m_unreal

    @property
    def day_net(self) -> Money:
        """:attr:`day_realized_net` + :attr:`unrealized`, USD."""
        return self._m_day_net

    @property
    def equity(self) -> Money:
        """:attr:`balance` + :attr:`unrealized`, USD."""
        return self._m_equity

    @property
    def day_peak_realized(self) -> Money:
        """Today's highest balance, USD (starts at :attr:`sod_balance`)."""
        return self._m_peak_real

    @property
    def day_peak_equity(self) -> Money:
        """Today's highest equity, USD (starts at the equity at the day's start)."""
        return self._m_peak_eq

    @property
    def mll_floor(self) -> Money | None:
        """The MLL floor, USD; ``None`` while unknown (risk-rules.md section 3.4)."""
        return self._m_floor

    @property
    def mll_peak(self) -> Money | None:
        """The balance high the floor trails, USD; ``None`` while unknown."""
        return None if self._mll_peak_c is None else Money(self._mll_peak_c)

    @property
    def daily_net_history(self) -> Sequence[tuple[date, Money]]:
        """``(trading date, realized day PnL net of fees)`` per closed day, oldest first (R16)."""
        return self._history_view

    @property
    def eod_balances(self) -> Sequence[tuple[date, Money]]:
        """``(trading date, balance at rollover)`` per closed day, oldest first."""
        return tuple(self._eod)

    @property
    def best_day(self) -> Money:
        """The best closed day's net PnL, USD (0 when no day was positive; R16 consistency)."""
        return self._m_best

    @property
    def total_profit(self) -> Money:
        """The sum of closed days' net PnL, USD (R16 consistency: best day / total profit)."""
        return self._m_total

    @property
    def positions(self) -> Sequence[OpenPosition]:
        """The open positions with unrealized PnL at the current marks (rebuilt lazily after a fill or mark)."""
        cached = self._positions_cache
        if cached is None:
            cached = self._positions_cache = self._build_positions()
        return cached

    @property
    def working_orders(self) -> Sequence[Order]:
        """The account's open orders (sent or working), as the order source returns them."""
        return self._orders()

    def position_qty(self, symbol: str) -> int:
        """Signed contracts held in ``symbol`` (0 when flat)."""
        return self._pm.net_qty(self.account_id, symbol)

    def weight(self, symbol: str) -> float:
        """Mini-equivalents per contract of ``symbol`` (TopstepX: 0.1 for a micro).

        Raises:
            ContractError: unknown symbol.
        """
        w = self._weights_f.get(symbol)
        if w is None:
            w = self._weights_f[symbol] = float(self.weight_exact(symbol))
        return w

    def weight_exact(self, symbol: str) -> Decimal:
        """:meth:`weight` as an exact Decimal (cached per symbol).

        Raises:
            ContractError: unknown symbol.
        """
        w = self._weights.get(symbol)
        if w is None:
            spec = self._pm.spec_of(symbol)
            w = self._weights_override.get(spec.root)
            if w is None:
                if self._micro_ratio is None:
                    w = spec.topstepx_mini_weight
                elif spec.is_micro:
                    w = Decimal(1) / Decimal(self._micro_ratio)
                else:
                    w = Decimal(1)
            self._weights[symbol] = w
        return w

    def root_of(self, symbol: str) -> str:
        """The product root of ``symbol`` (``MESZ5`` -> ``MES``).

        Raises:
            ContractError: unknown symbol.
        """
        root = self._roots.get(symbol)
        if root is None:
            root = self._roots[symbol] = self._pm.spec_of(symbol).root
        return root

    def stop_risk(self, order: Order) -> Money:
        """USD lost if ``order``'s open quantity fills and is then stopped out (R1 ``order_risk``).

        The distance is, in this order: the stop-loss ticks of the bracket whose entry is ``order``; the trail of a
        trailing stop; ``|stop - mark|`` for a stop or stop-limit order (the mark of the position the stop would
        close: bid for a sell stop, ask for a buy stop, last trade as fallback); else ``default_risk_ticks`` (0 USD
        when that is ``None``: "no stop attached"). Risk = ticks x tick value x (qty - filled).

        Raises:
            ContractError: unknown symbol.
        """
        spec = self._pm.spec_of(order.symbol)
        qty = order.qty - order.filled_qty
        ticks: int | None = None
        if self._bracket_stop_ticks is not None:
            ticks = self._bracket_stop_ticks(order.client_order_id)
        if ticks is None:
            if order.order_type is OrderType.TRAILING_STOP and order.trail_ticks is not None:
                ticks = order.trail_ticks
            elif order.stop_price is not None and order.order_type in (OrderType.STOP, OrderType.STOP_LIMIT):
                mark = self._pm.mark_ticks(order.symbol, -int(order.side))
                if mark is not None:
                    tick_raw = spec.tick_size.raw
                    stop_ticks = (order.stop_price.raw + tick_raw // 2) // tick_raw
                    ticks = abs(stop_ticks - mark)
        if ticks is None:
            if self._default_risk_ticks is None:
                return Money(0)
            ticks = self._default_risk_ticks
        return Money(ticks * spec.tick_value.cents * qty)

    # ------------------------------------------------------------------ exposure (R5)

    def exposure_minis(self, extra_order: Order | None = None, *, count_working_orders: bool = True) -> Decimal:
        """Worst-case exposure in mini-equivalents (risk-rules.md R5), exact.

        ``sum over contracts of max(|p + B|, |p - S|) x weight``, with ``p`` the signed position and ``B`` / ``S``
        the open quantity of working buy / sell orders that could add exposure: bracket children (``parent_id``
        set) and reduce-only orders are excluded; of an OCO group (``linked_ids``) only the largest leg per side
        counts. ``extra_order`` (the order under pre-trade check) is added; when it has the id of a working order
        (a modify) it replaces it. Without ``count_working_orders`` only ``extra_order`` is added.

        Raises:
            ContractError: unknown symbol.
        """
        buys: dict[str, int] = {}
        sells: dict[str, int] = {}
        oco: dict[tuple[str, str, int], int] = {}  # (group key, symbol, side) -> largest leg
        orders: list[Order] = list(self._orders()) if count_working_orders else []
        if extra_order is not None:
            orders = [o for o in orders if o.client_order_id != extra_order.client_order_id]
            orders.append(extra_order)
        for o in orders:
            if o.parent_id is not None or o.reduce_only or o.is_done:
                continue
            leaves = o.qty - o.filled_qty
            if leaves <= 0:
                continue
            if o.linked_ids:
                key = (min(o.client_order_id, *o.linked_ids), o.symbol, int(o.side))
                if leaves > oco.get(key, 0):
                    oco[key] = leaves
                continue
            book = buys if o.side > 0 else sells
            book[o.symbol] = book.get(o.symbol, 0) + leaves
        for (_g, symbol, side), leaves in oco.items():
            book = buys if side > 0 else sells
            book[symbol] = book.get(symbol, 0) + leaves
        held = {p.symbol: p.signed_qty for p in self._pm.iter_open(self.account_id)}
        total = Decimal(0)
        for symbol in held.keys() | buys.keys() | sells.keys():
            p = held.get(symbol, 0)
            worst = max(abs(p + buys.get(symbol, 0)), abs(p - sells.get(symbol, 0)))
            if worst:
                total += worst * self.weight_exact(symbol)
        return total

    def position_minis(self) -> Decimal:
        """Open positions only in mini-equivalents: ``sum |p| x weight``, exact."""
        total = Decimal(0)
        for p in self._pm.iter_open(self.account_id):
            total += abs(p.signed_qty) * self.weight_exact(p.symbol)
        return total

    # ------------------------------------------------------------------ inputs

    def on_fill(self, fill: OrderFilled) -> bool:
        """Count one fill (any source): balance, day realized PnL and fees, trades, contracts, round trips.

        A fill of another account or a ``trade_id`` already counted is ignored (returns ``False``). A fill dated at
        or after the next day's start rolls the day first. A fill dated before the current day's start (a late,
        reconciled fill) changes the balance only.

        Round trips (R9): a round trip of a contract ends when its net position returns to 0 (a reversal ends one
        and starts the next; its fee is split pro rata as the position manager does); its result is realized PnL
        minus the fees of its fills. A loss adds to :attr:`consecutive_losses` and sets :attr:`last_loss_ts_ns`; a
        win resets the streak; a result of exactly 0 changes neither.

        Returns:
            ``True`` when counted.

        Raises:
            ContractError, InvalidPriceError, InvalidQuantityError: from the position manager, when it has not yet
            applied the fill and refuses it; nothing changes then.
        """
        if fill.account_id != self.account_id or fill.trade_id in self._trade_ids:
            return False
        pm = self._pm
        if not pm.has_trade(self.account_id, fill.trade_id):
            pm.on_fill(fill)
        self._trade_ids.add(fill.trade_id)
        ts = fill.ts_event_ns
        if ts >= self._next_day_start_ns:
            self.roll_day(ts)
        symbol = fill.symbol
        pos = pm.position(self.account_id, symbol)
        realized_c = 0
        after = 0
        if pos is not None:
            realized_c = pos.realized_cents - self._sym_realized.get(symbol, 0)
            self._sym_realized[symbol] = pos.realized_cents
            after = pos.signed_qty
        fee_c = fill.fee.cents
        net_c = realized_c - fee_c
        self._balance_c += net_c
        if ts >= self._day_start_ns:
            self._day_gross_c += realized_c
            self._day_fees_c += fee_c
            self.trades_today += 1
            self.contracts_today += fill.qty
        else:
            self._sod_c += net_c
            self.fills_before_day += 1
            log.warning("fill %s dated before the trading day's start: counted in the balance only", fill.trade_id)
        if ts >= self._week_start_ns:
            self.trades_week += 1
        self._round_trips(symbol, fill, after, realized_c, fee_c)
        if self._balance_c > self._peak_real_c:
            self._peak_real_c = self._balance_c
        self._recompute_exit_fees()
        self._recompute_marks(refresh=False)  # the day figures below refresh every Money value once
        self._refresh_day_money()
        return True

    def _round_trips(self, symbol: str, fill: OrderFilled, after: int, realized_c: int, fee_c: int) -> None:
        before = after - fill.signed_qty
        rt = self._round_trip
        if before == 0:
            rt[symbol] = realized_c - fee_c
            return
        if after != 0 and (before > 0) == (after > 0):
            rt[symbol] = rt.get(symbol, 0) + realized_c - fee_c
            return
        close_fee = fee_c if after == 0 else fee_c * abs(before) // fill.qty
        result = rt.pop(symbol, 0) + realized_c - close_fee
        if after != 0:
            rt[symbol] = -(fee_c - close_fee)
        if result < 0:
            self.consecutive_losses += 1
            self.last_loss_ts_ns = fill.ts_event_ns
        elif result > 0:
            self.consecutive_losses = 0

    def on_mark(self, _message: object = None) -> None:
        """Recompute unrealized PnL, equity, the day equity peak and (intraday modes) the MLL floor from the
        position manager's current marks. Call after each quote, trade or bar of a held contract (it can be
        subscribed to ``data.quotes.*`` directly, below the position manager's priority). O(open positions)."""
        self._recompute_marks()

    _MARK_FIELDS = (
        "_positions_cache",
        "_unreal_c",
        "_peak_eq_c",
        "_mll_peak_c",
        "_floor_peak_c",
        "_m_unreal",
        "_m_equity",
        "_m_day_net",
        "_m_peak_eq",
        "_m_floor",
    )

    def save_marks(self) -> tuple[object, ...]:
        """The figures :meth:`on_mark` changes (unrealized PnL, equity, the equity and MLL peaks, the floor), for
        :meth:`restore_marks`: a what-if evaluation at a hypothetical mark leaves no trace."""
        return tuple(getattr(self, name) for name in self._MARK_FIELDS)

    def restore_marks(self, saved: tuple[object, ...]) -> None:
        """Put back the figures :meth:`save_marks` returned."""
        for name, value in zip(self._MARK_FIELDS, saved, strict=True):
            setattr(self, name, value)

    def roll_day(self, ts_ns: int, eod_balance: Money | None = None) -> bool:
        """Start the trading day that contains ``ts_ns`` (UTC ns), at the session boundary.

        Records ``eod_balance`` (default: the current balance) for the closing day, moves the MLL floor (section
        3.4), appends the closing day's realized net PnL to :attr:`daily_net_history` (realized only: R16 uses
        realized, risk-rules.md section 6), resets the day figures, the day peaks and the loss streak, and the week
        counter when the new day opens a new week (week_start, Sunday 17:00 CT). ``last_loss_ts_ns`` stays.

        Returns:
            ``True`` when a new day started, ``False`` when ``ts_ns`` is still in the current day (a repeated roll).

        Raises:
            Whatever the calendar raises for a date it does not cover; nothing changes then.
        """
        new_date = self._calendar.trading_date(ts_ns)
        if new_date <= self._date:
            return False
        new_start = self._calendar.day_start_ns(new_date)
        next_start = self._next_start(new_date)
        old = self._date
        eod = Money(self._balance_c) if eod_balance is None else eod_balance
        if eod.cents != self._balance_c:
            log.warning("EOD balance %s for %s differs from the computed balance %s", eod, old, Money(self._balance_c))
        self._eod.append((old, eod))
        day_real = self._day_gross_c - self._day_fees_c
        self._history.append((old, Money(day_real)))
        if self._mll_peak_c is not None:
            self._mll_peak_c = max(self._mll_peak_c, eod.cents)
        self._date = new_date
        self._day_start_ns = new_start
        self._next_day_start_ns = next_start
        week = _week_key(new_date)
        if week != self._week:
            self._week = week
            self._week_start_ns = new_start
            self.trades_week = 0
        self._sod_c = self._balance_c
        self._day_gross_c = 0
        self._day_fees_c = 0
        self.trades_today = 0
        self.contracts_today = 0
        self.consecutive_losses = 0
        self._peak_real_c = self._balance_c
        self._peak_eq_c = self._balance_c + self._unreal_c
        self._refresh_history_money()
        self._recompute_marks()
        self._refresh_day_money()
        return True

    def on_session_rolled(self, event: _Rolled) -> None:
        """Bus handler for ``events.session.rolled`` (:class:`propdesk.risk.calendar.SessionRolled`): rolls the
        day at ``event.ts_ns`` with the computed balance as the end-of-day balance. Subscribe it above the account
        guard's priority (0) so the guard sees the new day."""
        self.roll_day(event.ts_ns)

    def seed(
        self,
        *,
        mll_floor: Money | None = None,
        balance: Money | None = None,
        eod_balances: Sequence[tuple[date, Money]] | None = None,
        daily_net_history: Sequence[tuple[date, Money]] | None = None,
    ) -> None:
        """Set what history cannot give: the user's current MLL floor (e.g. TopstepX's "Distance To MLL"), the
        broker's balance, past end-of-day balances and daily results.

        ``mll_floor`` F sets the trailed high to ``F + amount`` (never lowering a known high); ``eod_balances``
        raise the high to their maximum; ``balance`` replaces the realized balance (the day's realized PnL is
        kept: the start-of-day balance moves with it).

        Raises:
            ConfigError: a floor without an MLL configuration, or a floor above the start balance when the floor
                locks at the start balance.
        """
        if balance is not None:
            delta = balance.cents - self._balance_c
            self._balance_c += delta
            self._sod_c += delta
            self._peak_real_c = max(self._peak_real_c + delta, self._balance_c)
            self._peak_eq_c += delta
        if daily_net_history is not None:
            self._history = list(daily_net_history)
            self._refresh_history_money()
        if eod_balances is not None:
            self._eod = list(eod_balances)
        if mll_floor is not None or eod_balances:
            cfg = self._mll
            if cfg is None:
                raise ConfigError(f"account {self.account_id}: an MLL floor was given but no MLL is configured")
            peak = self._mll_peak_c
            if mll_floor is not None:
                if cfg.lock_at_start and mll_floor.cents > self._start_c:
                    raise ConfigError(
                        f"account {self.account_id}: MLL floor {mll_floor} is above the start balance "
                        f"{self._m_start}, where it locks"
                    )
                implied = mll_floor.cents + cfg.amount.cents
                peak = implied if peak is None else max(peak, implied)
            if eod_balances:
                high = max(m.cents for _d, m in eod_balances)
                peak = max(self._start_c, high) if peak is None else max(peak, high)
            self._mll_peak_c = peak
        self._recompute_marks()
        self._refresh_day_money()

    def snapshot(self) -> AccountSnapshot:
        """The persisted figures (for the journal)."""
        return AccountSnapshot(
            trading_date=self._date,
            balance=Money(self._balance_c),
            sod_balance=Money(self._sod_c),
            day_realized_gross=Money(self._day_gross_c),
            day_fees=Money(self._day_fees_c),
            day_peak_realized=Money(self._peak_real_c),
            day_peak_equity=Money(self._peak_eq_c),
            mll_peak=self.mll_peak,
            eod_balances=tuple(self._eod),
            daily_net_history=tuple(self._history),
            trades_today=self.trades_today,
            trades_week=self.trades_week,
            contracts_today=self.contracts_today,
            week_start_ns=self._week_start_ns,
            consecutive_losses=self.consecutive_losses,
            last_loss_ts_ns=self.last_loss_ts_ns,
            open_round_trips=tuple((s, Money(c)) for s, c in sorted(self._round_trip.items())),
        )

    def restore(self, snap: AccountSnapshot) -> None:
        """Load persisted figures. A snapshot of an earlier trading day is loaded and then rolled to today (its
        day becomes history). Fills applied afterwards must be new (the journal replays only fills after it)."""
        self._date = snap.trading_date
        self._day_start_ns = self._calendar.day_start_ns(snap.trading_date)
        self._next_day_start_ns = self._next_start(snap.trading_date)
        self._week = _week_key(snap.trading_date)
        self._week_start_ns = snap.week_start_ns
        self._balance_c = snap.balance.cents
        self._sod_c = snap.sod_balance.cents
        self._day_gross_c = snap.day_realized_gross.cents
        self._day_fees_c = snap.day_fees.cents
        self._peak_real_c = snap.day_peak_realized.cents
        self._peak_eq_c = snap.day_peak_equity.cents
        self._mll_peak_c = None if snap.mll_peak is None else snap.mll_peak.cents
        self._eod = list(snap.eod_balances)
        self._history = list(snap.daily_net_history)
        self.trades_today = snap.trades_today
        self.trades_week = snap.trades_week
        self.contracts_today = snap.contracts_today
        self.consecutive_losses = snap.consecutive_losses
        self.last_loss_ts_ns = snap.last_loss_ts_ns
        self._round_trip = {s: m.cents for s, m in snap.open_round_trips}
        self._refresh_history_money()
        self._recompute_marks()
        self._refresh_day_money()
        now = self._clock()
        if now >= self._next_day_start_ns:
            self.roll_day(now)

    def missing_inputs(self) -> list[str]:
        """What is unknown and keeps the account REDUCING (risk-rules.md section 7.6): ``mll_floor`` while the
        floor is unknown (an MLL is configured), ``mark:<symbol>`` for each open position without a usable mark."""
        out: list[str] = []
        if self._mll is not None and self._mll_peak_c is None:
            out.append("mll_floor")
        out.extend(f"mark:{s}" for s in sorted(self._pm.unmarked_symbols(self.account_id)))
        return out

    # ------------------------------------------------------------------ internals

    def _next_start(self, d: date) -> int:
        """The session open of the trading day after ``d``: the calendar's trading date of a moment late on
        calendar day ``d`` in Chicago (after every CME close of ``d``), then that day's start."""
        probe = d
        for _ in range(14):
            moment = datetime.combine(probe, time(23, 59, 59), tzinfo=_CT)
            ts = int(moment.timestamp()) * 1_000_000_000
            nd = self._calendar.trading_date(ts)
            if nd > d:
                return self._calendar.day_start_ns(nd)
            probe += timedelta(days=1)
        raise ConfigError(f"trading calendar gives no trading day after {d}")

    def _recompute_exit_fees(self) -> None:
        self._positions_cache = None
        if not self._exit_fees:
            self._exit_fee_c = 0
            return
        total = 0
        for p in self._pm.iter_open(self.account_id):
            total += abs(p.signed_qty) * self._exit_fees.get(self.root_of(p.symbol), 0)
        self._exit_fee_c = total

    def _recompute_marks(self, *, refresh: bool = True) -> None:
        """Recompute unrealized PnL, equity, the equity peak and (intraday modes) the MLL peak; with ``refresh``
        (default) also the Money values that depend on them (a caller about to refresh every Money value passes
        ``False``)."""
        self._positions_cache = None
        unreal = self._pm.unrealized_cents(self.account_id) - self._exit_fee_c
        equity = self._balance_c + unreal
        changed = unreal != self._unreal_c
        self._unreal_c = unreal
        if equity > self._peak_eq_c:
            self._peak_eq_c = equity
            changed = True
        if changed and refresh:
            self._refresh_mark_money()
        mode = None if self._mll is None else self._mll.mode
        if mode is MllMode.INTRADAY_UNREALIZED and self._mll_peak_c is not None and self._peak_eq_c > self._mll_peak_c:
            self._mll_peak_c = self._peak_eq_c
            if refresh:
                self._refresh_floor()
        elif (
            mode is MllMode.INTRADAY_REALIZED and self._mll_peak_c is not None and self._peak_real_c > self._mll_peak_c
        ):
            self._mll_peak_c = self._peak_real_c
            if refresh:
                self._refresh_floor()

    def _refresh_mark_money(self) -> None:
        self._m_unreal = Money(self._unreal_c)
        self._m_equity = Money(self._balance_c + self._unreal_c)
        self._m_day_net = Money(self._day_gross_c - self._day_fees_c + self._unreal_c)
        self._m_peak_eq = Money(self._peak_eq_c)

    def _refresh_day_money(self) -> None:
        self._m_balance = Money(self._balance_c)
        self._m_sod = Money(self._sod_c)
        self._m_day_real = Money(self._day_gross_c - self._day_fees_c)
        self._m_peak_real = Money(self._peak_real_c)
        self._refresh_mark_money()
        self._refresh_floor()

    def _refresh_floor(self) -> None:
        cfg = self._mll
        peak = self._mll_peak_c
        if cfg is None or peak is None:
            self._m_floor = None
        elif peak != self._floor_peak_c or self._m_floor is None:  # the floor moves only with the peak
            self._m_floor = mll_floor(self._m_start, Money(peak), cfg)
        self._floor_peak_c = peak

    def _refresh_history_money(self) -> None:
        self._history_view = tuple(self._history)
        self._total_c = sum(m.cents for _d, m in self._history)
        self._best_c = max([0, *(m.cents for _d, m in self._history)])
        self._m_best = Money(self._best_c)
        self._m_total = Money(self._total_c)

    def _build_positions(self) -> tuple[OpenPosition, ...]:
        pm = self._pm
        out: list[OpenPosition] = []
        opened = list(pm.iter_open(self.account_id))
        if len(opened) > 1:
            opened.sort(key=lambda p: p.symbol)
        for pos in opened:
            symbol = pos.symbol
            root = self.root_of(symbol)
            upnl = pm.position_unrealized(pos)
            if upnl is not None and self._exit_fees:
                upnl = Money(upnl.cents - abs(pos.signed_qty) * self._exit_fees.get(root, 0))
            avg = pos.avg_price
            assert avg is not None  # open positions have an average price
            out.append(OpenPosition(symbol, root, pos.signed_qty, avg, upnl, self.weight(symbol), pos.opened_ts_ns))
        return tuple(out)
