"""One builder for the trading node of every session: backtest, replay, live and the risk daemon.

:class:`NodeBuilder` takes what a session has (its kind, clock, broker, account, strategies, risk setup, journal)
and :meth:`NodeBuilder.build` wires it in one fixed order into a :class:`BuiltNode`:

1. the bus (no handler timing on a historical clock: it costs ~300 ns a call in the bar loop);
2. the risk engine (:class:`RiskSetup`), with the lockout store decided here and only here
   (:func:`lockout_store_for`);
3. the node's risk hook: the risk engine's gate, with the journal's back-pressure gate in front of it
   (:meth:`NodeJournal.node_hook <propdesk.node.journaling.NodeJournal.node_hook>`). On a historical clock the journal
   is attached to the bus at once; on a live clock it is attached by :meth:`BuiltNode.recover`, after the node is
   restored from it (:mod:`propdesk.node.recovery`: a restored fill must not be journaled twice);
4. the :class:`~propdesk.node.TradingNode` (it sets itself as the broker's event handler);
5. the bar source and the strategies (historical sessions; a live session adds its strategy after the first
   reconcile: :meth:`BuiltNode.add_strategy`).

Starting is the session's (it owns the feed and the event loop), through :class:`BuiltNode`'s steps:
:meth:`~BuiltNode.start_risk` (the engine, and a simulated broker's intrabar path listener),
:meth:`~BuiltNode.open_journal` / :meth:`~BuiltNode.open_journal_sync` (the run, recorded under the session's
:class:`SessionKind`), :meth:`~BuiltNode.recover` (live clocks), :meth:`~BuiltNode.reconciler` (reconcile on connect
with the one :class:`ReconcilePolicy`) and :meth:`~BuiltNode.stop`.

**Lockout store.** With a journal, the journal's ``lockouts`` table
(:class:`~propdesk.storage.lockouts.SqlLockoutStore`), persisted before any flatten, so a restarted node finds its
lockouts active: a live clock (``propdesk run --broker projectx``, ``propdesk risk --broker projectx``) and every
account of ``propdesk serve`` (:attr:`SessionKind.SERVE`: a simulated one too, its lockouts keyed by its own account
id and timed on its replayed clock, so a restarted service keeps its instances waiting). In memory
(:class:`~propdesk.risk.lockouts.MemoryLockoutStore`) for a one-shot historical run (backtest, ``propdesk run
--replay``, ``propdesk risk --broker sim``): each run starts a fresh account, which the lockouts of an earlier run
must not halt. Without a journal: in memory.

**Recovery** from the journal runs on a live clock only (live, ``propdesk risk --broker projectx``): a historical run
is a fresh simulated account each time, and the journal's records of other runs are not its state.

**Reconcile on connect** (:class:`ReconcilePolicy`, :class:`ConnectReconciler`): one policy for ``propdesk run
--broker projectx`` and ``propdesk risk --broker projectx``: wait for the broker's commands in flight, reconcile,
retry with a growing pause while discrepancies remain (a fill still on its way), lift the guard's connection condition
only after a clean report, else keep the account REDUCING (fail closed).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

from propdesk.core.backoff import Backoff
from propdesk.core.bus import MessageBus
from propdesk.core.clock import SimClock
from propdesk.model.price import Money
from propdesk.node.recovery import NodeRecovery, reconcile_node, recover_node
from propdesk.node.trading_node import NodeConfig, TradingNode
from propdesk.risk.engine import RiskEngine
from propdesk.risk.lockouts import LockoutStore, MemoryLockoutStore

if TYPE_CHECKING:
    from propdesk.brokers.base import Broker
    from propdesk.core.clock import Clock
    from propdesk.execution.order_manager import PreTradeGate
    from propdesk.model.data import Timeframe
    from propdesk.node.journaling import NodeJournal
    from propdesk.risk.audit import AuditLog
    from propdesk.risk.presets import RiskConfig
    from propdesk.risk.reconcile import ReconcileReport
    from propdesk.strategies.base import Strategy

__all__ = [
    "DEFAULT_RECONCILE",
    "BuiltNode",
    "ConnectReconciler",
    "NodeBuilder",
    "ReconcilePolicy",
    "RiskSetup",
    "SessionKind",
    "lockout_store_for",
]

log = logging.getLogger("propdesk.node.builder")


class SessionKind(StrEnum):
    """The kind of a session; its value is the journal's run kind (``strategy_runs.kind``)."""

    BACKTEST = "backtest"
    REPLAY = "replay"
    LIVE = "live"
    RISK = "risk"
    SERVE = "serve"


@dataclass(frozen=True, slots=True, kw_only=True)
class ReconcilePolicy:
    """How a reconcile on (re)connect is retried.

    Attributes:
        attempts: reconciles tried while discrepancies remain (or the reports cannot be read) before the account
            stays REDUCING (at least one).
        idle_timeout_s: before each attempt, the longest wait for the broker's commands in flight (seconds).
        backoff_s: the pause after attempt ``k`` (1-based) is ``k * backoff_s`` seconds (linear: 0.2, 0.4, ... s).
    """

    attempts: int = 5
    idle_timeout_s: float = 10.0
    backoff_s: float = 0.2

    def schedule(self) -> Backoff:
        """The pauses between attempts as the one backoff schedule of :mod:`propdesk.core.backoff` (linear:
        ``k * backoff_s`` after attempt ``k``)."""
        return Backoff(self.backoff_s, factor=1.0, step_s=self.backoff_s, max_attempts=max(0, self.attempts - 1))


DEFAULT_RECONCILE: Final[ReconcilePolicy] = ReconcilePolicy()
"""The one reconcile policy of both live sessions: 5 attempts, 10 s for commands in flight, 0.2 s x attempt pauses.
A single attempt would leave the account REDUCING whenever a fill is still on its way when the reports are read."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskSetup:
    """How the node's risk engine is built (:class:`~propdesk.risk.engine.RiskEngine` documents each option).

    Attributes:
        config: the risk configuration.
        new_account: the account starts now at ``balance`` (its MLL floor is then known).
        balance: the account's realized balance at the start (USD); ``None``: the configuration's start balance.
        roots: the products whose own flat times are timed.
        bar_ns: bars are the price feed, of this duration (UTC ns; historical clocks): QUOTE rules on bar closes, the
            periodic check from the bars, no stale-quote watchdog. ``None``: quotes are the feed.
        quote_stale_s: with quotes as the feed, a held contract without a quote for this long means REDUCING.
        bar_marks: evaluate the QUOTE rules on each bar close of a held contract (off for the risk daemon on a live
            account, whose node has no bars).
        audit: the audit log (default: the engine's ring of recent entries).
    """

    config: RiskConfig
    new_account: bool = False
    balance: Money | None = None
    roots: tuple[str, ...] = ()
    bar_ns: int | None = None
    quote_stale_s: float = 5.0
    bar_marks: bool = True
    audit: AuditLog | None = None

    def engine(self, store: LockoutStore) -> RiskEngine:
        """The risk engine of this setup with ``store`` as its lockout store.

        Raises:
            ConfigError: a bad option or a rule that cannot be built.
        """
        cfg = self.config
        bars = self.bar_ns is not None
        return RiskEngine(
            cfg,
            store=store,
            audit=self.audit,
            new_account=self.new_account,
            balance=None if self.balance is None or self.balance == cfg.start_balance else self.balance,
            roots=self.roots,
            quote_stale_s=None if bars else self.quote_stale_s,
            check_interval_s=max(self.bar_ns or 0, 1) / 1e9 if bars else 1.0,
            clock_from_bars=bars,
            bar_marks=self.bar_marks,
        )


def lockout_store_for(kind: SessionKind, clock: Clock, journal: NodeJournal | None) -> LockoutStore:
    """The risk engine's lockout store (the module docstring's rule, the one place it is decided): the journal's
    ``lockouts`` table with a journal on a live clock or in a ``serve`` session, else in memory.

    Raises:
        ConfigError: the journal's URL is malformed.
    """
    if journal is None or (isinstance(clock, SimClock) and kind is not SessionKind.SERVE):
        return MemoryLockoutStore()
    from propdesk.storage.lockouts import SqlLockoutStore  # noqa: PLC0415 - the database only with a journal

    return SqlLockoutStore(journal.url)


@dataclass(slots=True, kw_only=True)
class NodeBuilder:
    """What a session's node is made of (see the module docstring); :meth:`build` wires it.

    Attributes:
        kind: the session's kind (the journal's run kind).
        clock: a ``SimClock`` (historical: backtest, replay, simulated risk daemon) or a ``LiveClock``.
        broker: the account's broker.
        account_id: the account; starting_balance_usd: its balance at the start (USD), for the portfolio.
        strategies: the strategies, each on ``symbol``; with ``bar_timeframe`` the node's bar feeds take ``symbol``'s
            bars of that timeframe as their source (coarser strategy timeframes are built from them).
        symbol / bar_timeframe: see ``strategies``.
        risk: the risk engine's setup, or ``None`` for no risk engine.
        journal: the node's journal (not yet opened), or ``None``.
        bus: an existing bus (default: a new one, timed on a live clock only).
        reconcile: the reconcile-on-connect policy (live clocks).

    Raises (from :meth:`build`):
        ConfigError: a bad risk option, an unknown contract, or a strategy timeframe finer than the bars'.
    """

    kind: SessionKind
    clock: Clock
    broker: Broker
    account_id: int = 1
    starting_balance_usd: Decimal = Decimal("50000")
    strategies: Sequence[Strategy] = ()
    symbol: str = ""
    bar_timeframe: Timeframe | None = None
    risk: RiskSetup | None = None
    journal: NodeJournal | None = None
    bus: MessageBus | None = None
    reconcile: ReconcilePolicy = field(default=DEFAULT_RECONCILE)

    @property
    def historical(self) -> bool:
        """The clock is a replayed one (``SimClock``)."""
        return isinstance(self.clock, SimClock)

    def build(self) -> BuiltNode:
        """Wire the node in the module docstring's order.

        Raises:
            ConfigError: see the class docstring.
        """
        historical = self.historical
        bus = self.bus if self.bus is not None else MessageBus(timing=not historical)
        journal = self.journal
        risk: RiskEngine | None = None
        store: LockoutStore | None = None
        if self.risk is not None:
            store = lockout_store_for(self.kind, self.clock, journal)
            risk = self.risk.engine(store)
        hook: Callable[[TradingNode], PreTradeGate | None] | None = None if risk is None else risk.attach
        if journal is not None:  # live: attached by recover(), after the node is restored from the journal
            hook = journal.node_hook(hook, risk=risk, bind=historical)
        node = TradingNode(
            clock=self.clock,
            broker=self.broker,
            config=NodeConfig(
                account_id=self.account_id, starting_balance_usd=self.starting_balance_usd, bus_timing=bus.timing
            ),
            bus=bus,
            risk=hook,
        )
        built = BuiltNode(
            kind=self.kind,
            node=node,
            risk=risk,
            journal=journal,
            lockouts=store,
            reconcile_policy=self.reconcile,
            historical=historical,
        )
        if self.bar_timeframe is not None:
            node.bar_feeds.set_source(self.symbol, self.bar_timeframe)
        for strategy in self.strategies:
            node.add_strategy(strategy, self.symbol)
        return built


@dataclass(slots=True, kw_only=True)
class BuiltNode:
    """A wired node and the pieces a session drives (see the module docstring).

    Attributes:
        kind: the session's kind. node: the trading node. risk: its risk engine, or ``None``. journal: its journal,
        or ``None``. lockouts: the risk engine's lockout store (``None`` without one). reconcile_policy: the reconcile
        policy. historical: the clock is a replayed one. recovery: what :meth:`recover` restored (``None`` before).
    """

    kind: SessionKind
    node: TradingNode
    risk: RiskEngine | None
    journal: NodeJournal | None
    lockouts: LockoutStore | None
    reconcile_policy: ReconcilePolicy
    historical: bool
    recovery: NodeRecovery | None = None

    @property
    def bus(self) -> MessageBus:
        """The node's bus."""
        return self.node.bus

    @property
    def recovers(self) -> bool:
        """The node is restored from its journal before it trades (a journal on a live clock)."""
        return self.journal is not None and not self.historical

    def add_strategy(self, strategy: Strategy, symbol: str, timeframe: Timeframe | None = None) -> None:
        """Add ``strategy`` on ``symbol``; with ``timeframe`` the node's bar feeds take ``symbol``'s bars of it as
        their source first.

        Raises:
            ConfigError: the strategy's timeframe is finer than ``timeframe`` or not a multiple of it.
        """
        if timeframe is not None:
            self.node.bar_feeds.set_source(symbol, timeframe)
        self.node.add_strategy(strategy, symbol)

    def start_risk(self, *, path_listener: bool = True) -> None:
        """Start the risk engine (no-op without one) and, with ``path_listener``, give a simulated broker its intrabar
        path listener (the engine judges the bar's path, not only its close)."""
        risk = self.risk
        if risk is None:
            return
        risk.start()
        set_path = getattr(self.node.broker, "set_path_listener", None) if path_listener else None
        if set_path is not None:
            set_path(risk.on_path_mark, risk.path_breach_tick)

    def open_journal_sync(self, **run: Any) -> None:
        """Open the journal's run of this session's kind without an event loop (a backtest:
        :meth:`NodeJournal.open_sync <propdesk.node.journaling.NodeJournal.open_sync>` with ``run``); no-op without
        a journal."""
        if self.journal is not None:
            self.journal.open_sync(kind=self.kind.value, **run)

    async def open_journal(self, **run: Any) -> None:
        """Open the journal's run of this session's kind (:meth:`NodeJournal.open
        <propdesk.node.journaling.NodeJournal.open>` with ``run``); on a historical clock the node then issues the
        run's own client order ids (a continued replay issues those of its killed attempt again). No-op without a
        journal.

        Raises:
            ConfigError: the database cannot be reached or migrated.
        """
        journal = self.journal
        if journal is None:
            return
        await journal.open(kind=self.kind.value, **run)
        if self.historical:
            self.node.orders.ids.use_run_token(journal.run_token)

    async def recover(self, *, now_ns: int) -> NodeRecovery | None:
        """Restore the node from its journal (open orders, positions, the risk engine's account state and lockouts:
        :func:`~propdesk.node.recovery.recover_node`) and attach the journal to the node's bus. Call after
        :meth:`open_journal`, before the risk engine starts and the broker connects. ``None`` (nothing done) unless
        :attr:`recovers`.

        Raises:
            sqlalchemy errors: the journal cannot be read; and see :func:`~propdesk.node.recovery.recover_node`.
        """
        journal = self.journal
        if journal is None or not self.recovers:
            return None
        from propdesk.storage.db import create_engine_for  # noqa: PLC0415 - the database only with a journal
        from propdesk.storage.migrate import upgrade_engine  # noqa: PLC0415

        engine = create_engine_for(journal.url)
        try:
            await upgrade_engine(engine)  # idempotent: the tables exist before they are read
            self.recovery = await recover_node(self.node, engine, now_ns=now_ns, risk=self.risk)
        finally:
            await engine.dispose()
        journal.bind(self.node)
        return self.recovery

    def reconciler(
        self,
        *,
        since_ns: Callable[[], int],
        on_report: Callable[[ReconcileReport], None] | None = None,
        label: str = "",
    ) -> ConnectReconciler:
        """The node's reconcile on connect with this node's policy (:class:`ConnectReconciler`); the journal's done
        orders (after :meth:`recover`) are never adopted again."""
        return ConnectReconciler(
            self,
            since_ns=since_ns,
            on_report=on_report,
            label=label or self.kind.value,
        )

    def stop(self) -> None:
        """Stop the node (strategies' ``on_stop``), then the risk engine."""
        self.node.stop()
        if self.risk is not None:
            self.risk.stop()

    def close_lockouts(self) -> None:
        """Release the lockout store's database connections (a journal's store); no-op for an in-memory one."""
        close = getattr(self.lockouts, "close", None)
        if close is not None:
            close()


class ConnectReconciler:
    """Reconcile on (re)connect under :class:`ReconcilePolicy` (one at a time: a reconnect during a reconcile waits).

    Each attempt waits for the broker's commands in flight (``wait_idle``, when the broker has it), then runs
    :func:`~propdesk.node.recovery.reconcile_node` from ``since_ns()``; a clean report lets the account guard
    re-evaluate every rule and lift its connection condition (when the risk engine runs). A report with discrepancies,
    or reports that cannot be read, is retried after ``k * backoff_s`` seconds; when none is clean the account stays
    REDUCING and the error is logged.

    Attributes:
        reports: every report, oldest first. clean: clean reports so far.
    """

    def __init__(
        self,
        built: BuiltNode,
        *,
        since_ns: Callable[[], int],
        on_report: Callable[[ReconcileReport], None] | None = None,
        label: str = "",
    ) -> None:
        self.built = built
        self.policy = built.reconcile_policy
        self._since = since_ns
        self._on_report = on_report
        self._label = label
        self._lock: asyncio.Lock | None = None
        self.reports: list[ReconcileReport] = []
        self.clean = 0

    def _done(self) -> Collection[str]:
        recovery = self.built.recovery
        return () if recovery is None else recovery.done_order_ids

    async def reconcile(self) -> ReconcileReport | None:
        """Reconcile under the policy; returns the last report (clean or not), or ``None`` when the broker's reports
        could not be read at all."""
        lock = self._lock
        if lock is None:
            lock = self._lock = asyncio.Lock()
        built, policy = self.built, self.policy
        node = built.node
        attempts = max(1, policy.attempts)
        async with lock:
            report: ReconcileReport | None = None
            for attempt in range(1, attempts + 1):
                wait_idle = getattr(node.broker, "wait_idle", None)
                if wait_idle is not None:
                    await wait_idle(policy.idle_timeout_s)
                try:
                    report = await reconcile_node(
                        node, node.broker, since_ns=self._since(), done=self._done(), clock=node.clock.timestamp_ns
                    )
                except Exception:
                    log.exception("%s: reconciliation with the broker failed (attempt %d)", self._label, attempt)
                    report = None
                else:
                    self.reports.append(report)
                    if self._on_report is not None:
                        self._on_report(report)
                    if report.ok:
                        self.clean += 1
                        risk = built.risk
                        if risk is not None and risk.running:
                            risk.guard.reconciled()
                        return report
                if attempt < attempts:
                    await asyncio.sleep(policy.schedule().delay(attempt))
            log.error(
                "%s: local state still differs from the broker after %d reconciles%s; the account stays REDUCING",
                self._label,
                attempts,
                "" if report is None else f": {'; '.join(report.discrepancies)}",
            )
            return report
