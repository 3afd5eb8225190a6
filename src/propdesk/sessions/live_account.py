"""A ProjectX (TopstepX) account as one piece of a session: ``propdesk run --broker projectx`` runs one with its
strategy (:class:`~propdesk.sessions.live.LiveSession`), ``propdesk serve`` runs several beside simulated accounts,
adding their strategies at runtime through the desk.

:class:`LiveAccount` wires a :class:`~propdesk.core.clock.LiveClock`, a
:class:`~propdesk.brokers.projectx.ProjectXBroker` and the node (built by
:class:`~propdesk.node.builder.NodeBuilder`, with the :class:`~propdesk.risk.engine.RiskEngine` when a risk
configuration is given), then:

1. **connects** (:meth:`LiveAccount.connect`: the journal's restore when there is one, login, both hubs, the broker's
   own reconcile) and reconciles the node with the broker under the builder's one policy
   (:class:`~propdesk.node.builder.ConnectReconciler`); the risk engine starts after the first reconcile
   (:func:`propdesk.node.bootstrap.start_after_first_reconcile`: the fills reported at connect are counted, the MLL
   floor is derived when neither the journal nor the configuration gives it). Every later ``BrokerConnected``
   (a reconnect) reconciles again; the guard lifts its connection condition only after a clean report;
2. **builds bars per contract**: the first strategy on a contract subscribes its quotes and trades and aggregates the
   trades into bars of that strategy's timeframe (:class:`~propdesk.data.aggregation.TimeBarAggregator`; a bar closes
   on the next print after its end, or on a ``LiveClock`` alert at its end plus ``bar_close_delay_s``). They are the
   node's bars of the contract (``bar_feeds.set_source``): coarser timeframes are built from them by the node's bar
   feeds, closed by the same kind of timer;
3. **warms each strategy** as it is added (:meth:`LiveAccount.add_strategy`, or the desk's
   :meth:`~propdesk.node.desk.Desk.add_strategy` at runtime) with history bars of its timeframe
   (``History/retrieveBars``, through the journal's bar cache when one is given: :class:`CachedHistory`) under a
   context that denies every order, while the contract's live bars are held; the held bars are published once the
   history is fed, so the strategy sees no gap and no bar twice. The first bar of a new contract feed is usually seen
   only in part, so it is withheld (``skip_first_partial``) and the history reaches up to the first live bar seen
   whole; a strategy added to a running feed gets the history up to the first bar not yet published.

:meth:`LiveAccount.close` stops the node and the risk engine and disconnects (working orders and positions stay at the
broker).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final, Protocol

from propdesk.brokers.projectx import ProjectXBroker, ProjectXRest, ProjectXSettings
from propdesk.core import topics
from propdesk.core.clock import LiveClock, TimeEvent
from propdesk.core.errors import ContractError
from propdesk.core.timefmt import iso_utc
from propdesk.core.topics import Priority
from propdesk.data.aggregation import TimeBarAggregator, make_schedule
from propdesk.data.aggregation.feeds import NO_END_NS
from propdesk.model.contracts import known_roots
from propdesk.model.data import Bar, BarSeries, Timeframe, TradeTick
from propdesk.model.enums import Side
from propdesk.model.events import OrderDenied, OrderFilled
from propdesk.model.identifiers import AccountId, ClientOrderId
from propdesk.model.orders import Order, OrderType
from propdesk.model.price import Money, Price
from propdesk.model.symbology import spec_for_symbol
from propdesk.node import DEFAULT_TIMEFRAME, NodeContext, TradingNode
from propdesk.node.bootstrap import HISTORY_SOURCE, BootstrapResult, ConnectFills, start_after_first_reconcile
from propdesk.node.builder import NodeBuilder, ReconcilePolicy, RiskSetup, SessionKind
from propdesk.node.desk import Desk
from propdesk.node.recovery import NodeRecovery
from propdesk.risk.decisions import TradingState
from propdesk.risk.engine import RiskEngine
from propdesk.risk.events import TradingStateChanged
from propdesk.risk.presets import RiskConfig
from propdesk.risk.reconcile import ReconcileReport
from propdesk.storage.cache import SeriesSource, missing_spans
from propdesk.strategies.base import Strategy

if TYPE_CHECKING:
    from propdesk.brokers.projectx.models import Contract
    from propdesk.node.journaling import NodeJournal

__all__ = [
    "BrokerHistory",
    "CachedHistory",
    "HistoryProvider",
    "LiveAccount",
    "LiveOptions",
    "active_contract",
]

log = logging.getLogger("propdesk.sessions.live")

_DAY_NS: Final[int] = 86_400 * 1_000_000_000
_WEEKEND_NS: Final[int] = 4 * _DAY_NS
"""Added to the warm-up look-back so a weekend and a holiday still leave ``warmup_bars`` bars in the window."""


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


# ---------------------------------------------------------------------------------------------------- contracts


async def active_contract(rest: ProjectXRest, root: str) -> Contract:
    """The active contract of ``root`` (``ES``) at ProjectX.

    Raises:
        ContractError: ProjectX lists no active contract of the root. ProjectXError / ApiError: from the API.
    """
    for c in await rest.search_contracts(root, live=False):
        if not (c.active_contract and c.name):
            continue
        try:
            if spec_for_symbol(c.name).root == root:
                return c
        except Exception:  # a name propdesk's grammar does not parse
            continue
    raise ContractError(f"ProjectX lists no active contract of root {root!r}")


# ---------------------------------------------------------------------------------------------------- options


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveOptions:
    """What ``propdesk run --broker projectx`` trades (a :class:`LiveAccount` reads the account's options only).

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


# ---------------------------------------------------------------------------------------------------- account


class _ContractFeed:
    """The live bars of one contract: the aggregator of its trades, the bars held while a strategy warms up, and the
    end of the history its first warm-up reached."""

    def __init__(self, symbol: str, timeframe: Timeframe, on_bar: Callable[[_ContractFeed, Bar], None]) -> None:
        self.symbol = symbol
        self.timeframe = timeframe
        self.schedule = make_schedule(timeframe, session_aligned=True)
        self.agg = TimeBarAggregator(symbol, timeframe, lambda bar: on_bar(self, bar), skip_first_partial=True)
        self.boundary = asyncio.Event()
        self.history_end_ns: int | None = None
        self.held: list[Bar] = []
        self.warming = 0
        self.warmed = False
        self.armed_end: int | None = None
        self.subscribed = False

    def check_boundary(self) -> None:
        if not self.boundary.is_set() and (self.agg.withheld_bars or self.agg.bars_emitted):
            self.boundary.set()


class LiveAccount:
    """One ProjectX account: clock, broker, node, desk, reconcile on connect, bars per contract and strategies warmed
    with history bars (see the module docstring).

    Args:
        options: the account's options (``options.strategy``, ``params``, ``symbol``, ``duration_s`` and
            ``max_bars`` are the session's, not read here).
        settings: the adapter's settings (:func:`~propdesk.sessions.live.projectx_settings`).
        account_id / account_name / balance: the account (:func:`~propdesk.sessions.live.resolve_account`);
            ``balance`` is the portfolio's starting balance (USD).
        history: where warm-up bars come from (default: :class:`BrokerHistory`).
        broker: a ready broker (tests); default: a :class:`ProjectXBroker` on ``settings``.
        journal: the node's journal (not yet opened), or ``None``. With one, :meth:`connect` restores the node from it
            before connecting (:meth:`BuiltNode.recover <propdesk.node.builder.BuiltNode.recover>`); the journal's
            run is opened by the account's owner first (a :class:`~propdesk.sessions.live.LiveSession`, or
            ``propdesk serve`` for several accounts).
        label: the account's name in log lines.

    Attributes:
        clock, broker, node, built (the :class:`~propdesk.node.builder.BuiltNode`), risk (``None`` without a risk
        configuration), desk (the :class:`~propdesk.node.desk.Desk`: strategies it adds at runtime are warmed as
        :meth:`add_strategy`'s), account_id, starting_balance, fills (the desk's fills since the broker connected),
        state_changes (every ``TradingStateChanged``), reconcile_reports, bootstrap (the MLL floor derived from the
        broker's trade history, ``None`` when the journal or the configuration gave it), recovery (what was restored
        from the journal), disconnects, reconciles (clean ones), warmup_bars (history bars fed, every strategy),
        bars (live bars published, every contract), first_ts_ns / last_ts_ns (their close times), last_price.
    """

    def __init__(
        self,
        options: LiveOptions,
        settings: ProjectXSettings,
        *,
        account_id: int,
        account_name: str = "",
        balance: Money | None = None,
        history: HistoryProvider | None = None,
        broker: ProjectXBroker | None = None,
        journal: NodeJournal | None = None,
        label: str = "live",
    ) -> None:
        self.options = options
        self.journal = journal
        self.settings = settings
        self.account_name = account_name
        self.label = label
        self.recovery: NodeRecovery | None = None
        self.bootstrap: BootstrapResult | None = None
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
            journal=journal,  # attached by connect(), after the node is restored from it
            reconcile=ReconcilePolicy(attempts=options.reconcile_attempts, idle_timeout_s=options.connect_timeout_s),
        ).build()
        self.risk: RiskEngine | None = self.built.risk
        self.node = self.built.node
        self._reconciler = self.built.reconciler(
            since_ns=self._reconcile_since, on_report=self._on_reconcile_report, label=label
        )
        self.account_id = self.node.account_id
        self.desk = Desk(self.built)
        self.desk.before_add = self._before_add
        self._fills_from: int | None = None
        self.state_changes: list[TradingStateChanged] = []
        self.reconcile_reports: list[ReconcileReport] = []
        self.disconnects = 0
        self.reconciles = 0
        self.warmup_bars = 0
        self.bars = 0
        self.first_ts_ns: int | None = None
        self.last_ts_ns: int | None = None
        self.last_price: float | None = None
        self.on_reconciled: Callable[[], None] | None = None
        """Called after each clean reconcile (``propdesk serve`` lets the account's instances resume then)."""
        self.closed = False
        """No more live bars are published (set by :meth:`close`, or by a session stopping)."""
        self._feeds: dict[str, _ContractFeed] = {}
        self._pending: list[tuple[Strategy, _ContractFeed]] = []
        self._started = False
        self._feeds_armed_end: int | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._reconciling = False
        bus = self.node.bus
        bus.subscribe(topics.BROKER_DISCONNECTED, self._on_disconnected, priority=Priority.SESSION_STATE)
        bus.subscribe(topics.BROKER_CONNECTED, self._on_connected, priority=Priority.SESSION_STATE)
        bus.subscribe(TradingStateChanged.TOPIC, self._on_state_changed, priority=Priority.SESSION_STATE)

    # ------------------------------------------------------------------ events

    @property
    def fills(self) -> list[OrderFilled]:
        """The account's fills, oldest first: the desk's since the broker connected (a journal's replayed fills
        left out)."""
        return [] if self._fills_from is None else self.desk.fills()[self._fills_from :]

    def _on_state_changed(self, event: TradingStateChanged) -> None:
        self.state_changes.append(event)

    def _on_disconnected(self, _event: object) -> None:
        self.disconnects += 1

    def _on_connected(self, _event: object) -> None:
        if not self._reconciling:  # the first connect: connect() reconciles itself
            return
        self._spawn(self.reconcile(), "live-reconcile")

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _last_fill_ns(self) -> int | None:
        last = max((f.ts_event_ns for f in self.fills), default=None)
        return last if last is not None else self._reconcile_since()

    def _reconcile_since(self) -> int:
        """Where reconciliation asks for fills from: the journal's newest fill when the node was restored from one,
        else 24 h before the account was built."""
        journaled = None if self.recovery is None else self.recovery.last_fill_ns
        return journaled if journaled is not None else self._session_start_ns - _DAY_NS

    @property
    def trading_state(self) -> TradingState | None:
        """The risk guard's state (``None`` without a risk engine)."""
        return None if self.risk is None else self.risk.trading_state

    @property
    def reconciled(self) -> bool:
        """At least one reconcile was clean."""
        return self.reconciles > 0

    # ------------------------------------------------------------------ connect and reconcile

    async def reconcile(self) -> ReconcileReport | None:
        """Bring the node in line with the broker's reports under the node's reconcile policy
        (:class:`~propdesk.node.builder.ConnectReconciler`: wait for the broker's commands in flight, reconcile, retry
        ``reconcile_attempts`` times while discrepancies remain; after a clean report the guard re-evaluates every
        rule and lifts its connection condition). Returns the last report, or ``None`` when the reports could not be
        read."""
        self._reconciling = True
        report = await self._reconciler.reconcile()
        self.reconciles = self._reconciler.clean
        if report is not None and report.ok and self.on_reconciled is not None:
            self.on_reconciled()
        return report

    def _on_reconcile_report(self, report: ReconcileReport) -> None:
        self.reconcile_reports.append(report)

    async def recover(self) -> None:
        """Restore the node from its journal (whose run is open) and attach it: before the risk engine starts and the
        broker connects (:meth:`BuiltNode.recover <propdesk.node.builder.BuiltNode.recover>`). No-op without a
        journal."""
        if self.journal is None:
            return
        self.recovery = await self.built.recover(now_ns=self.clock.timestamp_ns())
        assert self.recovery is not None  # a journal on a live clock
        rep = self.recovery.report
        log.info(
            "%s: restored from the journal: %d open orders, %d fills, %d lockouts (newest fill %s)",
            self.label,
            rep.orders_restored,
            rep.fills_replayed,
            len(rep.lockouts),
            "none" if self.recovery.last_fill_ns is None else iso_utc(self.recovery.last_fill_ns),
        )

    async def connect(self) -> ReconcileReport | None:
        """Connect and reconcile; start the risk engine after the first reconcile (see the module docstring). Call
        after :meth:`recover` when there is a journal. Returns the first reconcile's last report.

        Raises:
            HistoryUnavailableError (a ConfigError): the MLL floor is known neither from the journal nor the
                configuration and cannot be derived from the broker's trade history; ProjectXError: login refused or
                the hubs did not connect.
        """
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
        return first

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

    async def resolve_symbol(self, wanted: str) -> str:
        """The contract of ``wanted``: a contract (checked at ProjectX) or a root (its active contract at ProjectX).

        Raises:
            ContractError: ProjectX lists no such contract or no active contract of the root.
        """
        if wanted not in known_roots():
            await self.broker.contract(wanted)
            return wanted
        contract = await active_contract(self.broker.rest, wanted)
        self.broker.contracts.add(contract)
        return str(contract.name)

    # ------------------------------------------------------------------ strategies

    def add_strategy(self, strategy: Strategy, symbol: str) -> None:
        """Put ``strategy`` on the node on the contract ``symbol`` and warm it with history bars (see the module
        docstring: now on a started account, else at :meth:`start`).

        Raises:
            ConfigError: its timeframe is finer than the contract's live bars or not a multiple of them.
        """
        self._before_add(strategy, symbol)
        self.node.add_strategy(strategy, symbol)

    def _before_add(self, strategy: Strategy, symbol: str) -> None:
        """The desk's hook before a strategy goes on the node: the contract's feed (its bars are the node's source)
        and the strategy's warm-up, holding the contract's live bars until it is fed."""
        feed = self._feeds.get(symbol)
        if feed is None:
            feed = self._feeds[symbol] = _ContractFeed(
                symbol, strategy.timeframe or DEFAULT_TIMEFRAME, self._on_agg_bar
            )
            if self.node.bar_feeds.source(symbol) is None:
                self.node.bar_feeds.set_source(symbol, feed.timeframe)
            self.node.bus.subscribe(topics.trades(symbol), self._trade_handler(feed), priority=Priority.DISPLAY_TRADES)
        feed.warming += 1
        if self._started:
            self._subscribe(feed)
            self._spawn(self._warm(strategy, feed), f"live-warmup-{strategy.tag}")
        else:
            self._pending.append((strategy, feed))

    def start(self) -> None:
        """Start the node (strategies' ``on_start``), subscribe the contracts of its strategies and warm them; later
        strategies are warmed as they are added. Call after :meth:`connect`."""
        self.node.start()
        self._started = True
        pending, self._pending = self._pending, []
        for _strategy, feed in pending:
            self._subscribe(feed)
        for strategy, feed in pending:
            self._spawn(self._warm(strategy, feed), f"live-warmup-{strategy.tag}")

    def _subscribe(self, feed: _ContractFeed) -> None:
        if not feed.subscribed:
            feed.subscribed = True
            self.broker.subscribe(feed.symbol, quotes=True, trades=True)

    # ------------------------------------------------------------------ bars

    def _trade_handler(self, feed: _ContractFeed) -> Callable[[TradeTick], None]:
        def on_trade(tick: TradeTick) -> None:
            self._on_trade(feed, tick)

        return on_trade

    def _on_trade(self, feed: _ContractFeed, tick: TradeTick) -> None:
        agg = feed.agg
        self.last_price = tick.price
        agg.handle_trade(tick.price, tick.size, tick.ts_event_ns)
        feed.check_boundary()
        if agg.has_open_bar:
            end = feed.schedule.bounds(tick.ts_event_ns)[1]
            if end != feed.armed_end and end > tick.ts_event_ns:
                feed.armed_end = end
                name = f"propdesk.sessions.live.bar-close.{feed.symbol}"
                self.clock.cancel_timer(name)
                delay = int(self.options.bar_close_delay_s * 1e9)
                self.clock.set_time_alert(name, end + delay, self._bar_timer(feed), allow_past=True)

    def _bar_timer(self, feed: _ContractFeed) -> Callable[[TimeEvent], None]:
        def on_time(event: TimeEvent) -> None:
            feed.agg.on_time(event.ts_event_ns - int(self.options.bar_close_delay_s * 1e9))
            feed.check_boundary()

        return on_time

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
        for feed in self._feeds.values():  # the live bars ending then first (they may complete the coarser bar)
            feed.agg.on_time(ts)
            feed.check_boundary()
        self.node.bar_feeds.on_time(ts)
        self._arm_feeds()

    def _on_agg_bar(self, feed: _ContractFeed, bar: Bar) -> None:
        if feed.history_end_ns is None and not feed.agg.withheld_bars:
            feed.history_end_ns = bar.ts_open_ns  # the first live bar was seen whole: history ends before it
        if feed.warming or not feed.warmed:
            feed.held.append(bar)
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
        self._published(bar)

    def _published(self, bar: Bar) -> None:
        """Called after each live bar is published (a session's stop conditions)."""

    # ------------------------------------------------------------------ warm-up

    async def _first_end(self, feed: _ContractFeed) -> int:
        """Where the history of a new feed ends: wait for its first live bar boundary (bounded), then the open of
        the first live bar seen whole (or of the bar now)."""
        tf = feed.timeframe
        wait = self.options.warmup_wait_s
        if wait is None:
            wait = min(tf.ns / 1e9 + 10.0, 120.0)
        try:
            await asyncio.wait_for(feed.boundary.wait(), wait)
        except TimeoutError:
            log.warning("%s: no %s %s bar boundary within %.0f s; warming up to now", self.label, feed.symbol, tf, wait)
        end = feed.history_end_ns
        if end is None and feed.agg.withheld_bars:
            end = min((b.ts_open_ns for b in feed.held), default=None)
        if end is None:
            end = feed.schedule.bounds(self.clock.timestamp_ns())[0]
        feed.history_end_ns = end
        return end

    def _running_end(self, feed: _ContractFeed) -> int:
        """Where the history of a strategy added to a running feed ends: the first bar not yet published."""
        if feed.held:
            return feed.held[0].ts_open_ns
        return feed.schedule.bounds(self.clock.timestamp_ns())[0]

    async def _warm(self, strategy: Strategy, feed: _ContractFeed) -> None:
        """Feed ``strategy`` history bars up to its feed's first unpublished bar under a denying context, then (the
        last warm-up of the feed) publish the live bars held meanwhile."""
        end: int | None = None
        try:
            end = self._running_end(feed) if feed.warmed else await self._first_end(feed)
            await self._feed_history(strategy, feed.symbol, end)
        finally:
            feed.warming -= 1
            if not feed.warming and not self.closed:
                feed.warmed = True
                held, feed.held = feed.held, []
                for b in held:
                    if (end is None or b.ts_open_ns >= end) and not self.closed:
                        self._publish(b)

    async def _feed_history(self, strategy: Strategy, symbol: str, end: int) -> None:
        tf = strategy.timeframe or DEFAULT_TIMEFRAME
        n = self.options.warmup_bars
        if n <= 0 or strategy not in self.node.strategies:  # not put on the node (a timeframe it cannot have)
            return
        start = end - n * tf.ns - _WEEKEND_NS
        try:
            series = await self.history.bars(symbol, tf, start, end)
        except Exception as exc:
            log.error(
                "%s: warm-up history of %s %s failed (%s); %s starts cold", self.label, symbol, tf, exc, strategy.tag
            )
            return
        bars = [b for b in series if b.ts_open_ns < end][-n:]
        ctx = _WarmupContext(self.node, self.account_id)
        strategy.bind(ctx, symbol)
        try:
            for b in bars:
                b.symbol = symbol
                strategy.handle_bar(b)
        finally:
            strategy.bind(NodeContext(self.node, strategy), symbol)
        self.warmup_bars += len(bars)
        if ctx.denied:
            log.info("%s: %d orders of the warm-up of %s were not sent", self.label, ctx.denied, strategy.tag)

    # ------------------------------------------------------------------ stop

    async def close(self) -> None:
        """Cancel the account's timers and tasks, stop the node and the risk engine, disconnect (working orders and
        positions stay at the broker). The journal and the lockout store are the owner's to close."""
        self.closed = True
        self.clock.cancel_timers()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.built.stop()
        await self.broker.aclose()
