"""The account's past from the broker's own trade history: end-of-day balances and the MLL floor of an existing
account that the journal knows nothing about (``../shared/specs/risk-rules.md`` sections 3.2-3.4).

An existing account's MLL floor trails its end-of-day balance high since the account started, which the broker does
not report (risk-rules.md section 3; ProjectX spec section 7). The journal has it once propdesk has watched the
account; before that, :func:`derive_history` rebuilds it from the broker's fills (every fill since the account's first
trade, each a :class:`~propdesk.model.reports.FillReport`):

1. fills are deduplicated by trade id and assigned to the CME trading day of their time (the calendar's
   ``trading_date``: the 17:00 CT session roll, DST and holidays from data);
2. each trading day's realized PnL net of fees is ``sum(realized_pnl) - sum(fee)`` over its fills; an opening fill
   (``realized_pnl`` ``None``, a half-turn) adds its fee only (section 3.2);
3. the end-of-day balance of each closed trading day ``d`` (from the first trade's day to the day before today,
   days without trades included) is ``start_balance + net PnL of every day <= d``;
4. the MLL floor trails them per the account's :class:`~propdesk.risk.state.MllConfig`:
   ``peak = max(start, max(eod))``, ``floor = min(start, peak - amount)`` with the lock at the start balance
   (:func:`~propdesk.risk.state.mll_floor`). ``INTRADAY_REALIZED`` also folds in the balance after every fill;
   ``INTRADAY_UNREALIZED`` needs past equity highs, which fills cannot give (:class:`HistoryUnavailableError`);
5. today's realized net PnL, fees and fill count come from the fills at or after today's session open.

The history covers the account's life only if the broker's current balance equals ``start_balance`` plus every
fill's net PnL (:meth:`DerivedHistory.check_balance`); otherwise the account is older than the history the broker
returned (or had a balance adjustment) and the floor cannot be derived.

:func:`apply_history` puts the result into an :class:`~propdesk.risk.state.AccountState` the way the journal's
end-of-day history would (``seed``): EOD balances, the daily net history (R16), the MLL floor, and the balance at
today's start plus the day's realized PnL the state itself counted (today's fills reach the state through the
broker's reconcile, so they are never counted twice).

Pure: no I/O, no clock; money exact (integer cents).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Final, Protocol

from propdesk.core.errors import ConfigError
from propdesk.model.price import Money
from propdesk.model.reports import FillReport
from propdesk.risk.state import AccountState, MllConfig, MllMode, mll_floor

__all__ = [
    "MLL_FLOOR_SETTING",
    "DerivedHistory",
    "HistoryCalendar",
    "HistoryDay",
    "HistoryUnavailableError",
    "apply_history",
    "derive_history",
]

MLL_FLOOR_SETTING: Final[str] = "[account] mll_floor"
"""The risk configuration setting that gives the MLL floor by hand (``propdesk.risk.presets``)."""


class HistoryUnavailableError(ConfigError):
    """The MLL floor cannot be derived from the broker's history; the message is one line naming
    :data:`MLL_FLOOR_SETTING`."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(
            f"MLL floor unknown: {reason}; set {MLL_FLOOR_SETTING} in the risk config (--risk-config FILE) "
            "to the floor TopstepX shows"
        )


class HistoryCalendar(Protocol):
    """What the derivation needs of the trading calendar (``propdesk.model.calendar.TradingCalendar`` has it).

    ``trading_date(ts_ns)``: the trading day of a UTC ns time (17:00 CT roll); ``next_trading_date(d)``: the trading
    day after ``d``; ``day_start_ns(d)``: the session open of ``d``, UTC ns. Each may raise for a date the calendar
    does not cover.
    """

    def trading_date(self, ts_ns: int) -> date: ...
    def next_trading_date(self, d: date) -> date: ...
    def day_start_ns(self, d: date) -> int: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryDay:
    """One closed trading day rebuilt from the broker's fills.

    Attributes:
        trading_date: the CME trading day.
        net_pnl: realized PnL net of fees of the day's fills, USD (0 on a day without fills).
        fees: fees of the day's fills, USD.
        trades: fill rows of the day (half-turns; risk-rules.md section 3.5).
        eod_balance: the balance at the day's close, USD.
        mll_floor: the MLL floor in force after the day's close (``None`` without an MLL), USD.
    """

    trading_date: date
    net_pnl: Money
    fees: Money
    trades: int
    eod_balance: Money
    mll_floor: Money | None


@dataclass(frozen=True, slots=True, kw_only=True)
class DerivedHistory:
    """What :func:`derive_history` rebuilt (USD exact, times UTC ns).

    Attributes:
        start_balance: the account's starting balance (the preset's or ``[account] start_balance``).
        first_trade_ns: the time of the account's first fill (``None``: no fill at all).
        fills: fills counted (non-duplicate trade ids up to ``now``).
        days: every closed trading day from the first fill's day to the day before ``trading_date``, oldest first.
        trading_date: today's trading day.
        sod_balance: the balance at today's session open (the last end-of-day balance, or the start balance).
        day_realized_net / day_fees / trades_today: today's realized PnL net of fees, fees and fill rows.
        balance: the balance now: ``sod_balance + day_realized_net``.
        mll_peak: the balance high the floor trails (``None`` without an MLL).
        mll_floor: the MLL floor in force now (``None`` without an MLL).
    """

    start_balance: Money
    first_trade_ns: int | None
    fills: int
    days: tuple[HistoryDay, ...]
    trading_date: date
    sod_balance: Money
    day_realized_net: Money
    day_fees: Money
    trades_today: int
    balance: Money
    mll_peak: Money | None
    mll_floor: Money | None

    @property
    def eod_balances(self) -> tuple[tuple[date, Money], ...]:
        """``(trading date, end-of-day balance)`` per closed day, oldest first (as ``AccountState.eod_balances``)."""
        return tuple((d.trading_date, d.eod_balance) for d in self.days)

    @property
    def daily_net_history(self) -> tuple[tuple[date, Money], ...]:
        """``(trading date, realized net PnL)`` per closed day, oldest first (as the state's daily history, R16)."""
        return tuple((d.trading_date, d.net_pnl) for d in self.days)

    def check_balance(self, broker_balance: Money) -> None:
        """Check that the fills cover the account's whole life: the start balance plus every fill's net PnL must be
        the broker's current balance (USD).

        Raises:
            HistoryUnavailableError: they differ (the account is older than the history returned, or its balance
                was adjusted outside trading).
        """
        if broker_balance.cents != self.balance.cents:
            raise HistoryUnavailableError(
                f"the broker's trade history ({self.fills} fills) does not explain the balance: start "
                f"{self.start_balance} + fills = {self.balance}, the broker reports {broker_balance}"
            )


def derive_history(
    fills: Iterable[FillReport],
    *,
    start_balance: Money,
    calendar: HistoryCalendar,
    now_ns: int,
    mll: MllConfig | None,
) -> DerivedHistory:
    """Rebuild the account's end-of-day balances, MLL floor and today's figures from its fills (module docstring).

    Args:
        fills: every fill of the account since its first trade (any order; voided fills already left out).
            Fills after ``now_ns`` are ignored; a trade id seen twice counts once.
        start_balance: the account's starting balance, USD (where the floor locks).
        calendar: the trading calendar (:class:`HistoryCalendar`).
        now_ns: now, UTC ns (today's trading day).
        mll: the account's MLL configuration, or ``None`` (no floor).

    Raises:
        HistoryUnavailableError: the MLL trails intraday equity (``INTRADAY_UNREALIZED``), which fills cannot give.
        CalendarError: a fill's date or today is outside the calendar.
    """
    if mll is not None and mll.mode is MllMode.INTRADAY_UNREALIZED:
        raise HistoryUnavailableError("the MLL trails intraday equity, which the broker's fills cannot give")
    seen: set[str] = set()
    rows: list[FillReport] = []
    for f in fills:
        if f.ts_ns > now_ns or f.trade_id in seen:
            continue
        seen.add(f.trade_id)
        rows.append(f)
    rows.sort(key=lambda f: (f.ts_ns, f.trade_id))
    today = calendar.trading_date(now_ns)
    today_start = calendar.day_start_ns(today)

    # per trading day: (net cents, fee cents, fills); running balance after each fill for INTRADAY_REALIZED
    per_day: dict[date, list[int]] = {}
    start_c = start_balance.cents
    running = start_c
    intraday_high = start_c
    today_net = today_fees = today_trades = 0
    for f in rows:
        realized = 0 if f.realized_pnl is None else f.realized_pnl.cents
        net = realized - f.fee.cents
        running += net
        intraday_high = max(intraday_high, running)
        if f.ts_ns >= today_start:
            today_net += net
            today_fees += f.fee.cents
            today_trades += 1
            continue
        acc = per_day.setdefault(calendar.trading_date(f.ts_ns), [0, 0, 0])
        acc[0] += net
        acc[1] += f.fee.cents
        acc[2] += 1

    days: list[HistoryDay] = []
    balance = start_c
    peak = start_c
    if per_day:
        d = min(per_day)
        while d < today:
            net, fees, n = per_day.get(d, (0, 0, 0))
            balance += net
            peak = max(peak, balance)
            floor = None if mll is None else mll_floor(start_balance, Money(peak), mll)
            days.append(
                HistoryDay(
                    trading_date=d, net_pnl=Money(net), fees=Money(fees), trades=n, eod_balance=Money(balance),
                    mll_floor=floor,
                )
            )  # fmt: skip
            d = calendar.next_trading_date(d)
    if mll is not None and mll.mode is MllMode.INTRADAY_REALIZED:
        peak = max(peak, intraday_high)
    return DerivedHistory(
        start_balance=start_balance,
        first_trade_ns=rows[0].ts_ns if rows else None,
        fills=len(rows),
        days=tuple(days),
        trading_date=today,
        sod_balance=Money(balance),
        day_realized_net=Money(today_net),
        day_fees=Money(today_fees),
        trades_today=today_trades,
        balance=Money(balance + today_net),
        mll_peak=None if mll is None else Money(peak),
        mll_floor=None if mll is None else mll_floor(start_balance, Money(peak), mll),
    )


def apply_history(state: AccountState, history: DerivedHistory) -> None:
    """Seed ``state`` with ``history`` as the journal's end-of-day history would: the EOD balances, the daily net
    history (R16), the MLL floor, and the balance ``history.sod_balance + state.day_realized_net`` (today's fills
    are counted by the state itself, from the broker's reconcile; the state's start-of-day balance becomes
    ``history.sod_balance``).

    Raises:
        ConfigError: ``state`` has no MLL configured while ``history`` has a floor (``AccountState.seed``).
    """
    state.seed(
        balance=Money(history.sod_balance.cents + state.day_realized_net.cents),
        eod_balances=history.eod_balances,
        daily_net_history=history.daily_net_history,
        mll_floor=history.mll_floor,
    )
