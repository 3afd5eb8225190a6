"""Live trading on a ProjectX (TopstepX) account: ``propdesk run --broker projectx``.

:class:`LiveSession` wires a :class:`~propdesk.core.clock.LiveClock`, a
:class:`~propdesk.brokers.projectx.ProjectXBroker`, a :class:`~propdesk.node.TradingNode` (with the
:class:`~propdesk.risk.engine.RiskEngine` when a risk configuration is given) and one strategy, then:

1. **connects** (login, both hubs, the broker's own reconcile) and runs the
   :class:`~propdesk.risk.reconcile.Reconciler` against the node; the account guard lifts its connection condition
   (:meth:`~propdesk.risk.guard.AccountGuard.reconciled`) only after a clean reconcile;
2. **subscribes** the contract's quotes and trades (they reach the node: marks, the risk guard, the strategy) and
   aggregates the trades into bars of the strategy's timeframe with a
   :class:`~propdesk.data.aggregation.TimeBarAggregator`. A bar closes on the next print after its end, or on the
   clock: a ``LiveClock`` alert at each bar's end (plus ``bar_close_delay_s`` for prints still in flight) calls
   ``on_time``. Closed bars go out through :meth:`TradingNode.publish_bar`. They are the node's data
   (``bar_feeds.set_source``): bars of the coarser timeframes the strategy registers (``subscribe_bars``) are built
   from them by the node's bar feeds, closed by the same bar-close timer at their end; a registered timeframe finer
   than the strategy's is a :class:`~propdesk.core.errors.ConfigError`. The warm-up (below) covers the strategy's
   own timeframe; registered timeframes start with the live data;
3. **warms** the strategy's indicators with history bars (``History/retrieveBars``, through the journal's bar cache
   when one is given: :class:`CachedHistory`). The first live bar is usually seen only in part (the session started
   inside it), so it is withheld (``skip_first_partial``) and the history reaches up to the first live bar seen
   whole: there is no gap and no bar twice. Live bars closing while the history loads are held, then published.
   During the warm-up the strategy is bound to a context that denies every order (no order from the past);
4. runs until Ctrl-C (:meth:`LiveSession.interrupt`), ``duration_s`` wall seconds or ``max_bars`` live bars, then
   stops the node and the risk engine and disconnects (working orders and positions stay at the broker, as in
   ``propdesk run --replay``) and returns a :class:`LiveSummary`.

**Reconnects.** A hub drop emits ``BrokerDisconnected``: the guard goes REDUCING. The broker reconnects with a fresh
token, resubscribes and reconciles its own state (fills missed while down are emitted ``reconciled=True``), then
emits ``BrokerConnected``; the session then waits for the broker's commands in flight, runs the ``Reconciler`` (again
``reconciled=True`` events for anything the node still lacks; fills are deduplicated by trade id, so nothing is
counted twice) and, once local orders and positions agree with the broker's reports, calls the guard's
``reconciled()``: every rule is re-evaluated and the account returns to ACTIVE. A reconcile with discrepancies is
retried (``reconcile_attempts``); if they persist the account stays REDUCING (fail closed) and the error is logged.

**Credentials** come only from the environment (``PROPDESK_PROJECTX_USERNAME`` / ``PROPDESK_PROJECTX_API_KEY``) and
are never logged or echoed; **hosts** from the command line, else the ``[projectx]`` table of the config file, else the
TopstepX defaults (:func:`projectx_settings`).

A node started here books the broker's fills of the last 24 hours (the broker's first reconcile): a position opened
before that is reported as a discrepancy and keeps the risk guard REDUCING until the journal (issue 5) restores the
older fills.

**The MLL floor** of an existing account comes from the journal's end-of-day balances, else the risk configuration's
``[account] mll_floor``, else the broker's own trade history: after the first reconcile (today's fills are counted)
and before the guard leaves REDUCING, :func:`propdesk.node.bootstrap.bootstrap_from_broker` derives the end-of-day
balances and the trailing floor from every fill since the account's first trade, seeds the risk engine's account
state and journals the balances (the next start finds them there). When that is impossible the session refuses with
one line naming ``[account] mll_floor``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

from pydantic import ValidationError

from propdesk.brokers.projectx import ProjectXBroker, ProjectXRest, ProjectXSettings
from propdesk.brokers.projectx.config import ENV_API_KEY, ENV_USERNAME
from propdesk.config import get_settings, load_settings
from propdesk.core import topics
from propdesk.core.clock import LiveClock, TimeEvent
from propdesk.core.errors import ConfigError, ContractError
from propdesk.core.timefmt import iso_utc
from propdesk.core.topics import Priority
from propdesk.data.aggregation import TimeBarAggregator, make_schedule
from propdesk.data.aggregation.feeds import NO_END_NS
from propdesk.execution.positions import spec_for_symbol
from propdesk.execution.round_trips import RoundTrip, RoundTripBuilder
from propdesk.model.contracts import known_roots
from propdesk.model.data import Bar, BarSeries, Timeframe, TradeTick
from propdesk.model.enums import Side
from propdesk.model.events import OrderDenied, OrderFilled
from propdesk.model.identifiers import AccountId, ClientOrderId
from propdesk.model.orders import Order, OrderType
from propdesk.model.price import Money, Price
from propdesk.node import DEFAULT_TIMEFRAME, NodeContext, TradingNode
from propdesk.node.bootstrap import HISTORY_SOURCE, BootstrapResult, ConnectFills, start_after_first_reconcile
from propdesk.node.builder import NodeBuilder, ReconcilePolicy, RiskSetup, SessionKind
from propdesk.node.desk import Desk
from propdesk.node.recovery import NodeRecovery
from propdesk.risk.decisions import TradingState
from propdesk.risk.engine import RiskEngine
from propdesk.risk.events import TradingStateChanged
from propdesk.risk.outcomes import RiskOutcomes
from propdesk.risk.presets import RiskConfig
from propdesk.risk.reconcile import ReconcileReport
from propdesk.sessions.common import EventFanout, account_json, install_sigint, remove_sigint
from propdesk.storage.cache import SeriesSource, missing_spans
from propdesk.strategies.base import Strategy
from propdesk.strategies.registry import build_strategy

if TYPE_CHECKING:
    from propdesk.node.journaling import NodeJournal

__all__ = [
    "BrokerHistory",
    "CachedHistory",
    "HistoryProvider",
    "LiveOptions",
    "LiveSession",
    "LiveSummary",
    "projectx_settings",
    "resolve_account",
]

log = logging.getLogger("propdesk.sessions.live")

_HOST_KEYS: Final[frozenset[str]] = frozenset({"api_base", "user_hub_url", "market_hub_url"})
_DAY_NS: Final[int] = 86_400 * 1_000_000_000
_WEEKEND_NS: Final[int] = 4 * _DAY_NS
"""Added to the warm-up look-back so a weekend and a holiday still leave ``warmup_bars`` bars in the window."""


# ---------------------------------------------------------------------------------------------------- settings


def projectx_settings(
    *,
    api_base: str | None = None,
    user_hub: str | None = None,
    market_hub: str | None = None,
    config_path: Path | None = None,
    environ: Mapping[str, str] | None = None,
    **extra: Any,
) -> ProjectXSettings:
    """The adapter's settings: hosts from the arguments, else the ``projectx`` section of :class:`propdesk.config.
    Settings` (environment over config file), else TopstepX; credentials from the environment only
    (``PROPDESK_PROJECTX_USERNAME`` / ``PROPDESK_PROJECTX_API_KEY`` or their ``PROPDESK_PROJECTX__*`` names).

    The settings are the process's (:func:`propdesk.config.get_settings`) unless ``config_path`` or ``environ`` is
    given, then :func:`propdesk.config.load_settings` of them.

    Args:
        api_base, user_hub, market_hub: host overrides (``--api-base``, ``--user-hub``, ``--market-hub``).
        config_path: the config file.
        environ: the environment (default ``os.environ``).
        extra: further settings (tests: short reconnect delays).

    Raises:
        ConfigError: a credential is missing (the message names the variable, never a value), the config file is
            missing or malformed, it holds a credential, or a value is invalid.
    """
    loaded = get_settings() if config_path is None and environ is None else load_settings(config_path, environ=environ)
    px = loaded.projectx
    table = px.adapter_table()
    for key, value in (("api_base", api_base), ("user_hub_url", user_hub), ("market_hub_url", market_hub)):
        if value is not None:
            table[key] = value
    table.update(extra)
    try:
        settings = ProjectXSettings.model_validate(table)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid ProjectX settings: {problems}") from None
    key = px.api_key.get_secret_value() if px.api_key is not None else ""
    missing = [name for name, value in ((ENV_USERNAME, px.username), (ENV_API_KEY, key)) if not value]
    if missing:
        raise ConfigError(f"ProjectX credentials missing: set {' and '.join(missing)} in the environment")
    return settings.model_copy(update={"username": px.username, "api_key": px.api_key})


async def resolve_account(settings: ProjectXSettings, account: str | None) -> tuple[int, str, Money]:
    """The account to trade: ``(id, name, balance USD)`` of ``account`` (an id or a name), or of the user's only
    active account when ``account`` is ``None``.

    Raises:
        ConfigError: no such account, or several active accounts and none chosen (the message lists them).
        ProjectXError: login refused or the API unreachable.
    """
    rest = ProjectXRest(settings)
    try:
        accounts = await rest.search_accounts(only_active=False)
    finally:
        await rest.aclose()
    listing = ", ".join(f"{a.id} ({a.name})" for a in accounts) or "none"
    if account is None:
        active = [a for a in accounts if a.can_trade]
        if len(active) != 1:
            raise ConfigError(f"choose the account with --account ID|NAME; the user's accounts: {listing}")
        chosen = active[0]
    else:
        hit = [a for a in accounts if str(a.id) == account.strip() or a.name == account.strip()]
        if not hit:
            raise ConfigError(f"ProjectX account {account!r} not found; the user's accounts: {listing}")
        chosen = hit[0]
    return chosen.id, chosen.name, Money.of(chosen.balance)


# ---------------------------------------------------------------------------------------------------- history


class HistoryProvider(Protocol):
    """Where the warm-up bars come from: bars of ``symbol`` opening in ``[start_ns, end_ns)`` (UTC ns), oldest
    first."""

    async def bars(self, symbol: str, timeframe: Timeframe, start_ns: int, end_ns: int) -> BarSeries:
        """The bars (see the class docstring)."""
        ...


class BrokerHistory:
    """:class:`HistoryProvider` straight from the broker (``History/retrieveBars``, paged), without a cache."""

    def __init__(self, broker: ProjectXBroker) -> None:
        self.broker = broker

    async def bars(self, symbol: str, timeframe: Timeframe, start_ns: int, end_ns: int) -> BarSeries:
        """``broker.request_bars``. Raises ApiError / ProjectXError from the API."""
        return await self.broker.request_bars(symbol, timeframe, start_ns, end_ns)


class CachedHistory:
    """:class:`HistoryProvider` through the journal's cache-aside :class:`~propdesk.storage.cache.BarCache`.

    The cache's sources are synchronous (``fetch``) while ``History/retrieveBars`` is awaited, so the gaps of the
    cache's coverage are computed first (:func:`~propdesk.storage.cache.missing_spans`); only when there is one is
    the span from the first gap's start to the last gap's end fetched from the broker, and the cache then takes each
    gap from those bars (a :class:`~propdesk.storage.cache.SeriesSource`). A full hit never calls ProjectX. Bars
    ending after ``now - one bar`` are served but not cached (``complete_before_ns``): a bar still forming never
    enters the cache.

    Args:
        cache: the bar cache (a migrated journal database).
        broker: the ProjectX broker (the source on a miss).
        now_ns: wall clock, UTC ns.
    """

    def __init__(self, cache: Any, broker: ProjectXBroker, *, now_ns: Callable[[], int] = time.time_ns) -> None:
        self.cache = cache
        self.broker = broker
        self._now = now_ns
        self.source_calls = 0

    async def bars(self, symbol: str, timeframe: Timeframe, start_ns: int, end_ns: int) -> BarSeries:
        """See the class docstring. Raises ProjectXError / ApiError from the API, sqlalchemy errors from the
        database."""
        covered = await self.cache.repository.coverage(symbol, str(timeframe))
        gaps = missing_spans(start_ns, end_ns, covered)
        source: Any = _NoFetch()
        if gaps:
            self.source_calls += 1
            fetched = await self.broker.request_bars(symbol, timeframe, gaps[0][0], gaps[-1][1])
            source = SeriesSource(fetched, name="projectx")
        series: BarSeries = await self.cache.get(
            symbol, timeframe, start_ns, end_ns, source, complete_before_ns=self._now() - timeframe.ns
        )
        return series


class _NoFetch:
    """The cache's source on a full hit: never asked (nothing is missing)."""

    name = "projectx"

    def fetch(self, symbol: str, timeframe: Timeframe, start_ns: int, end_ns: int) -> BarSeries:
        raise RuntimeError(f"bar cache asked for {symbol} {timeframe} [{start_ns}, {end_ns}) on a full hit")


# ---------------------------------------------------------------------------------------------------- warm-up


class _WarmupContext:
    """The strategy's context while it is fed history bars: it sees the clock and the tick size, holds no position,
    and every order it tries is DENIED at once (nothing reaches the node or the broker)."""

    def __init__(self, node: TradingNode, account_id: AccountId) -> None:
        self._node = node
        self._account_id = account_id
        self._n = 0
        self.denied = 0

    def now_ns(self) -> int:
        return self._node.clock.timestamp_ns()

    def tick_size(self, symbol: str) -> Price:
        return self._node.positions.spec_of(symbol).tick_size

    def position_qty(self, symbol: str, tag: str) -> int:
        return 0

    def _deny(self, symbol: str, side: Side, qty: int, tag: str, *, t: OrderType, price: Price | None) -> Order:
        self._n += 1
        self.denied += 1
        order = Order(
            ClientOrderId(f"warmup-{self._n}"),
            self._account_id,
            symbol,
            side,
            qty,
            t,
            limit_price=price if t is OrderType.LIMIT else None,
            stop_price=price if t is OrderType.STOP else None,
            tag=tag,
        )
        order.apply(
            OrderDenied(
                client_order_id=order.client_order_id,
                account_id=self._account_id,
                ts_event_ns=self.now_ns(),
                reason="warm-up: history bars do not trade",
            )
        )
        return order

    def market(self, symbol: str, side: Side, qty: int, tag: str) -> Order:
        return self._deny(symbol, side, qty, tag, t=OrderType.MARKET, price=None)

    def limit(self, symbol: str, side: Side, qty: int, price: Price, tag: str) -> Order:
        return self._deny(symbol, side, qty, tag, t=OrderType.LIMIT, price=price)

    def stop(self, symbol: str, side: Side, qty: int, price: Price, tag: str) -> Order:
        return self._deny(symbol, side, qty, tag, t=OrderType.STOP, price=price)

    def bracket(
        self,
        symbol: str,
        side: Side,
        qty: int,
        tag: str,
        *,
        stop_loss_ticks: int | None,
        take_profit_ticks: int | None,
        entry_price: Price | None = None,
    ) -> Order:
        t = OrderType.MARKET if entry_price is None else OrderType.LIMIT
        return self._deny(symbol, side, qty, tag, t=t, price=entry_price)

    def modify(self, order: Order, *, qty: int | None = None, price: Price | None = None) -> None:
        return None

    def cancel(self, order: Order) -> None:
        return None

    def close_position(self, symbol: str, tag: str) -> None:
        return None

    def realized_pnl(self, tag: str) -> Money:
        return Money(0)


# ---------------------------------------------------------------------------------------------------- session


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveOptions:
    """What ``propdesk run --broker projectx`` trades.

    Attributes:
        strategy / params: a bundled strategy's name and its ``--param`` values (strings).
        symbol: the contract (``ESZ6``) or root (``ES``: the active contract at ProjectX); default: the strategy's.
        duration_s: stop after this many wall seconds (``None``: no limit).
        max_bars: stop after this many live bars were published (``None``: no limit).
        risk: the risk configuration (the node runs the risk engine: gate, guard, session timers on the live clock).
        risk_new_account: the risk engine takes the account as new at the configuration's start balance (a practice
            account on the local gateway); otherwise the MLL floor comes from the journal, else the configuration's
            ``mll_floor``, else the broker's trade history (:func:`propdesk.node.bootstrap.bootstrap_from_broker`).
        warmup_bars: at most this many history bars warm the strategy.
        warmup_wait_s: the longest wait for the first live bar boundary before warming up (seconds; ``None``: one
            bar plus 10 s, at most 120 s).
        bar_close_delay_s: a bar closes on the clock this long after its end (prints still in flight), seconds.
        reconcile_attempts: how often a reconcile with discrepancies is tried before the account stays REDUCING.
        connect_timeout_s: the longest wait for the broker's commands in flight before a reconcile (seconds).
    """

    strategy: str
    params: dict[str, str] = field(default_factory=dict)
    symbol: str | None = None
    duration_s: float | None = None
    max_bars: int | None = None
    risk: RiskConfig | None = None
    risk_new_account: bool = False
    warmup_bars: int = 1000
    warmup_wait_s: float | None = None
    bar_close_delay_s: float = 0.25
    reconcile_attempts: int = 5
    connect_timeout_s: float = 10.0


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveSummary:
    """What a live session did (the live counterpart of :class:`~propdesk.sessions.replay.RunSummary`).

    Attributes:
        broker / account_id / account_name: where it traded. symbol / strategy / params: what and how.
        warmup_bars: history bars fed to the strategy. bars: live bars published. first_ts_ns / last_ts_ns: close
            times of the first and last live bar (UTC ns).
        fills: every fill of the session (the broker's replay of the last 24 h at connect excluded); trips: closed
            round trips among them.
        realized_pnl / fees / unrealized_pnl: USD, exact. open_qty / avg_price: the open position in ``symbol``.
        balance / equity / starting_balance: the node's portfolio (USD).
        disconnects / reconciles: connection drops seen and clean reconciles run.
        trading_state: the risk guard's state at the end (``None`` without risk).
        mll_floor / mll_floor_source: the MLL floor at the end (USD; ``None`` without risk or while unknown) and
            where it came from: ``broker_history`` (derived at the start), ``journal_or_config``, ``new_account``.
        completed: stopped by ``duration_s`` or ``max_bars``; interrupted: by Ctrl-C. wall_s: wall seconds.
        risk: what the risk engine did this session (:class:`~propdesk.risk.outcomes.RiskOutcomes`: trading state
            timeline, lockouts, orders denied by rule, flattens), ``None`` without risk.
    """

    broker: str
    account_id: int
    account_name: str
    symbol: str
    strategy: str
    params: dict[str, object]
    warmup_bars: int
    bars: int
    first_ts_ns: int | None
    last_ts_ns: int | None
    fills: list[OrderFilled]
    trips: list[RoundTrip]
    realized_pnl: Money
    fees: Money
    unrealized_pnl: Money
    open_qty: int
    avg_price: Price | None
    balance: Money
    equity: Money
    starting_balance: Money
    disconnects: int
    reconciles: int
    trading_state: str | None
    completed: bool
    interrupted: bool
    wall_s: float
    risk: RiskOutcomes | None = None
    mll_floor: Money | None = None
    mll_floor_source: str | None = None

    @property
    def realized_net(self) -> Money:
        """Realized PnL net of fees (USD)."""
        return self.realized_pnl - self.fees

    def to_json_dict(self) -> dict[str, object]:
        """The JSON object ``propdesk run --broker projectx --json`` prints (money as USD strings)."""
        return {
            "broker": self.broker,
            "account_id": self.account_id,
            "account_name": self.account_name,
            "symbol": self.symbol,
            "strategy": self.strategy,
            "params": self.params,
            "warmup_bars": self.warmup_bars,
            "bars": self.bars,
            "first_ts_ns": self.first_ts_ns,
            "last_ts_ns": self.last_ts_ns,
            "first_time_utc": None if self.first_ts_ns is None else iso_utc(self.first_ts_ns),
            "last_time_utc": None if self.last_ts_ns is None else iso_utc(self.last_ts_ns),
            "fills": len(self.fills),
            "trade_ids": [f.trade_id for f in self.fills],
            "trades": len(self.trips),
            "wins": sum(1 for t in self.trips if t.net_pnl.cents > 0),
            "losses": sum(1 for t in self.trips if t.net_pnl.cents < 0),
            **account_json(self),
            "disconnects": self.disconnects,
            "reconciles": self.reconciles,
            "trading_state": self.trading_state,
            "mll_floor_usd": None if self.mll_floor is None else str(self.mll_floor.as_decimal()),
            "mll_floor_source": self.mll_floor_source,
            **({} if self.risk is None else {"risk": self.risk.to_json_dict()}),
            "completed": self.completed,
            "interrupted": self.interrupted,
            "wall_s": round(self.wall_s, 3),
        }


class LiveSession(EventFanout):
    """One live session on a ProjectX account (see the module docstring).

    Args:
        options: what to trade and when to stop.
        settings: the adapter's settings (:func:`projectx_settings`).
        account_id / account_name / balance: the account (:func:`resolve_account`); ``balance`` is the portfolio's
            starting balance (USD).
        strategy: a ready strategy (default: built from ``options``).
        history: where warm-up bars come from (default: :class:`BrokerHistory`; :class:`CachedHistory` with the
            journal's bar cache).
        broker: a ready broker (tests); default: a :class:`ProjectXBroker` on ``settings``.
        journal: the node's journal (:class:`~propdesk.node.journaling.NodeJournal`, not yet opened), or ``None``. With
            one, :meth:`run` opens it, restores the node from it before connecting
            (:func:`propdesk.node.recovery.recover_node`: open orders, positions, the risk engine's day counters,
            end-of-day balances and lockouts; the risk engine's lockouts are kept in the journal's ``lockouts`` table,
            :class:`~propdesk.storage.lockouts.SqlLockoutStore`, persisted before any flatten), attaches it, holds
            the risk guard REDUCING, connects with the broker's reconcile starting at the journal's newest fill,
            reconciles, and only then adds the strategy; it closes the journal at the end.

    Attributes:
        clock, broker, node, risk (``None`` without a risk configuration), desk (the
        :class:`~propdesk.node.desk.Desk` over the node: the console and the summary read it), strategy, symbol (set
        by :meth:`run`), fills (the desk's fills since the broker connected), recent (the last order and position
        events), state_changes (every ``TradingStateChanged``), reconcile_reports (every reconcile's report),
        bootstrap (the MLL floor derived from the broker's trade history, ``None`` when the journal or the
        configuration gave it), recovery (what was restored from the journal, ``None`` without one), disconnects,
        reconciles, warmup_bars, bars (live bars published), last_price.

    Raises:
        ConfigError: unknown strategy or parameter.
    """

    def __init__(
        self,
        options: LiveOptions,
        settings: ProjectXSettings,
        *,
        account_id: int,
        account_name: str = "",
        balance: Money | None = None,
        strategy: Strategy | None = None,
        history: HistoryProvider | None = None,
        broker: ProjectXBroker | None = None,
        journal: NodeJournal | None = None,
    ) -> None:
        self.options = options
        self.journal = journal
        self.recovery: NodeRecovery | None = None
        self.bootstrap: BootstrapResult | None = None
        self.settings = settings
        self.account_name = account_name
        self.strategy = strategy if strategy is not None else build_strategy(options.strategy, options.params)
        self.timeframe = self.strategy.timeframe or DEFAULT_TIMEFRAME
        self.clock = LiveClock()
        self._session_start_ns = time.time_ns()
        self.broker = (
            broker
            if broker is not None
            else ProjectXBroker(settings, account_id=account_id, clock=self.clock, last_fill_ns=self._last_fill_ns)
        )
        self.history: HistoryProvider = history if history is not None else BrokerHistory(self.broker)
        self.starting_balance = balance if balance is not None else Money.of(Decimal("50000"))
        self.built = NodeBuilder(
            kind=SessionKind.LIVE,
            clock=self.clock,
            broker=self.broker,
            account_id=account_id,
            starting_balance_usd=self.starting_balance.as_decimal(),
            risk=None
            if options.risk is None
            else RiskSetup(
                config=options.risk,
                new_account=options.risk_new_account,
                balance=None if options.risk_new_account else self.starting_balance,
            ),
            journal=journal,  # attached in run(), after the node is restored from it
            reconcile=ReconcilePolicy(attempts=options.reconcile_attempts, idle_timeout_s=options.connect_timeout_s),
        ).build()
        self.risk: RiskEngine | None = self.built.risk
        self.node = self.built.node
        self._reconciler = self.built.reconciler(
            since_ns=self._reconcile_since, on_report=self._on_reconcile_report, label="live"
        )
        self.account_id = self.node.account_id
        self.desk = Desk(self.built)
        self.symbol = ""
        self._fills_from: int | None = None
        self.recent: deque[object] = deque(maxlen=12)
        self.state_changes: list[TradingStateChanged] = []
        self.reconcile_reports: list[ReconcileReport] = []
        self.disconnects = 0
        self.reconciles = 0
        self.warmup_bars = 0
        self.bars = 0
        self.first_ts_ns: int | None = None
        self.last_ts_ns: int | None = None
        self.last_price: float | None = None
        self.interrupted = False
        self.completed = False
        self.wall_s = 0.0
        self._t0: float | None = None
        self._listeners: list[Callable[[object], None]] = []
        self._stop: asyncio.Event | None = None
        self._warm = False
        self._held: list[Bar] = []
        self._history_end_ns: int | None = None
        self._boundary: asyncio.Event | None = None
        self._agg: TimeBarAggregator | None = None
        self._schedule = make_schedule(self.timeframe, session_aligned=True)
        self._armed_end: int | None = None
        self._feeds_armed_end: int | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._reconciling = False
        bus = self.node.bus
        bus.subscribe(topics.ORDER_EVENTS, self._on_event, priority=Priority.SESSION_EVENTS)
        bus.subscribe(topics.POSITION_EVENTS, self._on_event, priority=Priority.SESSION_EVENTS)
        bus.subscribe(topics.BROKER_DISCONNECTED, self._on_disconnected, priority=Priority.SESSION_STATE)
        bus.subscribe(topics.BROKER_CONNECTED, self._on_connected, priority=Priority.SESSION_STATE)
        bus.subscribe(TradingStateChanged.TOPIC, self._on_state_changed, priority=Priority.SESSION_STATE)

    # ------------------------------------------------------------------ events

    @property
    def fills(self) -> list[OrderFilled]:
        """The session's fills, oldest first: the desk's since the broker connected (a journal's replayed fills
        left out)."""
        return [] if self._fills_from is None else self.desk.fills()[self._fills_from :]

    def _on_state_changed(self, event: TradingStateChanged) -> None:
        self.state_changes.append(event)
        for listener in self._listeners:
            listener(event)

    def _on_disconnected(self, _event: object) -> None:
        self.disconnects += 1

    def _on_connected(self, _event: object) -> None:
        if not self._reconciling:  # the first connect: run() reconciles itself
            return
        task = asyncio.get_running_loop().create_task(self.reconcile(), name="live-reconcile")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _last_fill_ns(self) -> int | None:
        last = max((f.ts_event_ns for f in self.fills), default=None)
        return last if last is not None else self._reconcile_since()

    def _reconcile_since(self) -> int:
        """Where reconciliation asks for fills from: the journal's newest fill when the node was restored from one,
        else 24 h before the session started."""
        journaled = None if self.recovery is None else self.recovery.last_fill_ns
        return journaled if journaled is not None else self._session_start_ns - _DAY_NS

    @property
    def trading_state(self) -> TradingState | None:
        """The risk guard's state (``None`` without a risk engine)."""
        return None if self.risk is None else self.risk.trading_state

    # ------------------------------------------------------------------ reconcile

    async def reconcile(self) -> ReconcileReport | None:
        """Bring the node in line with the broker's reports under the node's reconcile policy
        (:class:`~propdesk.node.builder.ConnectReconciler`: wait for the broker's commands in flight, reconcile, retry
        ``reconcile_attempts`` times while discrepancies remain; after a clean report the guard re-evaluates every
        rule and lifts its connection condition). Returns the last report, or ``None`` when the reports could not be
        read."""
        self._reconciling = True
        report = await self._reconciler.reconcile()
        self.reconciles = self._reconciler.clean
        return report

    def _on_reconcile_report(self, report: ReconcileReport) -> None:
        self.reconcile_reports.append(report)

    # ------------------------------------------------------------------ bars

    def _on_trade(self, tick: TradeTick) -> None:
        agg = self._agg
        if agg is None:
            return
        self.last_price = tick.price
        agg.handle_trade(tick.price, tick.size, tick.ts_event_ns)
        self._check_boundary()
        if agg.has_open_bar:
            end = self._schedule.bounds(tick.ts_event_ns)[1]
            if end != self._armed_end and end > tick.ts_event_ns:
                self._armed_end = end
                name = "propdesk.sessions.live.bar-close"
                self.clock.cancel_timer(name)
                delay = int(self.options.bar_close_delay_s * 1e9)
                self.clock.set_time_alert(name, end + delay, self._on_bar_time, allow_past=True)

    def _on_bar_time(self, event: TimeEvent) -> None:
        if self._agg is not None:
            self._agg.on_time(event.ts_event_ns - int(self.options.bar_close_delay_s * 1e9))
            self._check_boundary()

    def _arm_feeds(self) -> None:
        """Arm the clock at the end of the earliest bar open in the node's bar feeds (plus ``bar_close_delay_s``),
        so a coarser bar whose last live bar had no trades still closes on time."""
        end = self.node.bar_feeds.next_end_ns()
        if end in (NO_END_NS, self._feeds_armed_end):
            return
        self._feeds_armed_end = end
        name = "propdesk.sessions.live.feeds-close"
        self.clock.cancel_timer(name)
        delay = int(self.options.bar_close_delay_s * 1e9)
        self.clock.set_time_alert(name, end + delay, self._on_feeds_time, allow_past=True)

    def _on_feeds_time(self, event: TimeEvent) -> None:
        ts = event.ts_event_ns - int(self.options.bar_close_delay_s * 1e9)
        if self._agg is not None:  # the live bar ending then first (it may complete the coarser bar)
            self._agg.on_time(ts)
            self._check_boundary()
        self.node.bar_feeds.on_time(ts)
        self._arm_feeds()

    def _check_boundary(self) -> None:
        agg = self._agg
        if self._boundary is None or self._boundary.is_set() or agg is None:
            return
        if agg.withheld_bars or agg.bars_emitted:
            self._boundary.set()

    def _on_agg_bar(self, bar: Bar) -> None:
        if self._history_end_ns is None and self._agg is not None and not self._agg.withheld_bars:
            self._history_end_ns = bar.ts_open_ns  # the first live bar was seen whole: history ends before it
        if not self._warm:
            self._held.append(bar)
            return
        self._publish(bar)

    def _publish(self, bar: Bar) -> None:
        self.bars += 1
        if self.first_ts_ns is None:
            self.first_ts_ns = bar.ts_close_ns
        self.last_ts_ns = bar.ts_close_ns
        self.last_price = bar.close
        self.node.publish_bar(bar)
        if self.node.bar_feeds.active:
            self._arm_feeds()
        limit = self.options.max_bars
        if limit is not None and self.bars >= limit:
            self.completed = True
            self.stop()

    async def _warm_up(self) -> None:
        """Wait for the first live bar boundary (bounded), load history up to it and feed it to the strategy under
        a denying context, then publish the live bars held meanwhile."""
        tf = self.timeframe
        wait = self.options.warmup_wait_s
        if wait is None:
            wait = min(tf.ns / 1e9 + 10.0, 120.0)
        assert self._boundary is not None
        try:
            await asyncio.wait_for(self._boundary.wait(), wait)
        except TimeoutError:
            log.warning("live: no %s bar boundary within %.0f s; warming up to now", tf, wait)
        agg = self._agg
        end = self._history_end_ns
        if end is None and agg is not None and agg.withheld_bars:
            end = min((b.ts_open_ns for b in self._held), default=None)
            if end is None:
                end = self._schedule.bounds(self.clock.timestamp_ns())[0]
        if end is None:
            end = self._schedule.bounds(self.clock.timestamp_ns())[0]
        self._history_end_ns = end
        n = self.options.warmup_bars
        if n > 0:
            start = end - n * tf.ns - _WEEKEND_NS
            try:
                series = await self.history.bars(self.symbol, tf, start, end)
            except Exception as exc:
                log.error("live: warm-up history of %s %s failed (%s); the strategy starts cold", self.symbol, tf, exc)
                series = None
            if series is not None:
                bars = [b for b in series if b.ts_open_ns < end][-n:]
                ctx = _WarmupContext(self.node, self.account_id)
                self.strategy.bind(ctx, self.symbol)
                try:
                    for b in bars:
                        b.symbol = self.symbol
                        self.strategy.handle_bar(b)
                finally:
                    self.strategy.bind(NodeContext(self.node, self.strategy), self.symbol)
                self.warmup_bars = len(bars)
                if ctx.denied:
                    log.info("live: %d orders of the warm-up were not sent", ctx.denied)
        held, self._held = self._held, []
        self._warm = True
        for b in held:
            if b.ts_open_ns >= end and not (self._stop is not None and self._stop.is_set()):
                self._publish(b)

    # ------------------------------------------------------------------ symbol

    async def _resolve_symbol(self) -> str:
        wanted = self.options.symbol or self.strategy.config.symbol
        if wanted not in known_roots():
            await self.broker.contract(wanted)
            return wanted
        candidates = [
            c for c in await self.broker.rest.search_contracts(wanted, live=False) if c.active_contract and c.name
        ]
        for c in candidates:
            try:
                if spec_for_symbol(c.name).root == wanted:
                    self.broker.contracts.add(c)
                    return c.name
            except Exception:  # a name propdesk's grammar does not parse
                continue
        raise ContractError(f"ProjectX lists no active contract of root {wanted!r}")

    # ------------------------------------------------------------------ control

    def stop(self) -> None:
        """End the session (``completed`` unless :meth:`interrupt`)."""
        if self._stop is not None:
            self._stop.set()

    def interrupt(self) -> None:
        """What Ctrl-C does: stop and mark the session interrupted."""
        self.interrupted = True
        self.stop()

    @property
    def elapsed_s(self) -> float:
        """Wall seconds since :meth:`run` started (the final figure once it ended)."""
        if self._t0 is None or self._stop is None or self._stop.is_set():
            return self.wall_s
        return time.perf_counter() - self._t0

    @property
    def running(self) -> bool:
        """True between the start of :meth:`run` and its end."""
        return self._stop is not None and not self._stop.is_set()

    async def run(self, *, handle_sigint: bool = True) -> LiveSummary:
        """Connect, reconcile, subscribe, warm up, trade until stopped; disconnect; return the summary.

        Raises:
            ConfigError: the account is not the user's; HistoryUnavailableError (a ConfigError): the MLL floor is
                known neither from the journal nor the configuration and cannot be derived from the broker's trade
                history; ContractError: the contract is unknown at ProjectX; ProjectXError: login refused or the hubs
                did not connect.
        """
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._t0 = time.perf_counter()
        installed = install_sigint(loop, self.interrupt, enabled=handle_sigint)
        journal_open = False
        try:
            if self.journal is not None:
                await self._recover()
                journal_open = True
            # the risk engine starts only after the first reconcile (its gate denies every order until then): the
            # fills the broker reports at connect happened while the node was down, they are counted, not enforced
            # as fills "opened while REDUCING", and the restored working orders are not canceled as opening orders
            counted = None if self.risk is None else ConnectFills(self.risk, self.node.bus)
            await self.broker.connect()
            self._fills_from = len(self.desk.fills())
            first = await self.reconcile()
            if self.risk is not None and counted is not None:
                self.bootstrap = await start_after_first_reconcile(
                    self.risk,
                    self.broker,
                    counted,
                    reconciled=first is not None and first.ok,
                    now_ns=self.clock.timestamp_ns,
                    journal=None if self.journal is None else self.journal.journal,
                    before_start=self._snapshot_counted,
                )
            self.symbol = await self._resolve_symbol()
            self.built.add_strategy(self.strategy, self.symbol, self.timeframe)
            self._boundary = asyncio.Event()
            self._agg = TimeBarAggregator(self.symbol, self.timeframe, self._on_agg_bar, skip_first_partial=True)
            self.node.bus.subscribe(topics.trades(self.symbol), self._on_trade, priority=Priority.DISPLAY_TRADES)
            self.node.start()
            self.broker.subscribe(self.symbol, quotes=True, trades=True)
            if self.options.duration_s is not None:
                self.clock.set_time_alert(
                    "propdesk.sessions.live.duration",
                    self.clock.timestamp_ns() + int(self.options.duration_s * 1e9),
                    self._on_duration,
                )
            warm = loop.create_task(self._warm_up(), name="live-warmup")
            try:
                await self._stop.wait()
            finally:
                if not warm.done():
                    warm.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await warm
        except KeyboardInterrupt:
            self.interrupt()
        finally:
            self.wall_s = time.perf_counter() - self._t0
            self._stop.set()
            remove_sigint(loop, installed)
            self.clock.cancel_timers()
            for task in list(self._tasks):
                task.cancel()
            self.built.stop()
            await self.broker.aclose()
            if journal_open and self.journal is not None:
                await self.journal.close(status="stopped" if self.interrupted else "completed")
            self.built.close_lockouts()
        return self.summary()

    async def _recover(self) -> None:
        """Open the journal (migrate, record the run, start the writer), restore the node from it and attach it
        (before the risk engine starts and the broker connects: :meth:`BuiltNode.recover
        <propdesk.node.builder.BuiltNode.recover>`)."""
        cfg = self.strategy.config
        await self.built.open_journal(
            strategy=self.strategy.name,
            symbol=self.options.symbol or cfg.symbol,
            timeframe=str(self.timeframe),
            account_id=int(self.account_id),
            params=cfg.model_dump(mode="json"),
            venue_session="",  # ProjectX trade ids are unique in the account: a fill reported again is one row
        )
        self.recovery = await self.built.recover(now_ns=self.clock.timestamp_ns())
        assert self.recovery is not None  # a journal on a live clock
        rep = self.recovery.report
        log.info(
            "live: restored from the journal: %d open orders, %d fills, %d lockouts (newest fill %s)",
            rep.orders_restored,
            rep.fills_replayed,
            len(rep.lockouts),
            "none" if self.recovery.last_fill_ns is None else iso_utc(self.recovery.last_fill_ns),
        )

    def _snapshot_counted(self, bootstrap: BootstrapResult | None, counted: list[OrderFilled]) -> None:
        """Journal the account state once the fills of the first reconcile are counted (and the MLL floor derived,
        ``bootstrap``): the journal's own snapshots after those fills were taken before the engine started, so a
        restart restores from this one. Its time is after every counted fill (broker times may run ahead of the
        clock): fills journaled later count after it."""
        if self.journal is None or self.risk is None:
            return
        ts = max([self.clock.timestamp_ns(), *(f.ts_event_ns + 1 for f in counted)])
        ref = "reconciled" if bootstrap is None else HISTORY_SOURCE
        self.journal.journal.record_account_snapshot(
            int(self.account_id), self.risk.state.snapshot(), ts, kind="manual", ref=ref
        )

    def _on_duration(self, _event: TimeEvent) -> None:
        self.completed = True
        self.stop()

    # ------------------------------------------------------------------ results

    def summary(self) -> LiveSummary:
        """The summary as of now (final once :meth:`run` returned), read from the desk."""
        desk = self.desk
        symbol = self.symbol or self.strategy.symbol
        fills = self.fills
        builder: RoundTripBuilder | None = None
        try:
            spec = spec_for_symbol(symbol)
            builder = RoundTripBuilder(lambda _s: spec)
            for f in fills:
                if f.symbol == symbol:
                    builder.add(f)
        except Exception:  # an unknown symbol (nothing traded)
            builder = None
        pnl = desk.pnl()[0]
        pos = next((p for p in desk.positions() if p.symbol == symbol), None) if self.symbol else None
        account = desk.accounts()[0]
        return LiveSummary(
            broker=self.broker.name,
            account_id=int(self.account_id),
            account_name=self.account_name,
            symbol=symbol,
            strategy=self.strategy.name,
            params=self.strategy.config.model_dump(),
            warmup_bars=self.warmup_bars,
            bars=self.bars,
            first_ts_ns=self.first_ts_ns,
            last_ts_ns=self.last_ts_ns,
            fills=fills,
            trips=[] if builder is None else list(builder.closed),
            realized_pnl=pnl.realized_usd,
            fees=pnl.fees_usd,
            unrealized_pnl=pnl.unrealized_usd,
            open_qty=0 if pos is None else pos.signed_qty,
            avg_price=None if pos is None else pos.avg_price,
            balance=pnl.balance_usd,
            equity=pnl.equity_usd,
            starting_balance=self.starting_balance,
            disconnects=self.disconnects,
            reconciles=self.reconciles,
            trading_state=None if self.risk is None else account.trading_state,
            completed=self.completed,
            interrupted=self.interrupted,
            wall_s=self.elapsed_s,
            risk=desk.risk_outcomes(),
            mll_floor=account.mll_floor_usd,
            mll_floor_source=self._floor_source(),
        )

    def _floor_source(self) -> str | None:
        if self.risk is None or self.risk.state.mll_floor is None:
            return None
        if self.bootstrap is not None:
            return HISTORY_SOURCE
        return "new_account" if self.options.risk_new_account else "journal_or_config"
