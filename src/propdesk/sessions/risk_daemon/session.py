"""The risk daemon behind ``propdesk risk``: the account guard on its own, attached to a broker account, watching
trades from any source.

:class:`RiskDaemon` is a :class:`~propdesk.node.TradingNode` with **no strategies** and a
:class:`~propdesk.risk.engine.RiskEngine` attached. Every fill the broker reports goes through the account guard,
whoever placed the order: propdesk (another process), or the trader by hand in the broker's own UI (a foreign order,
client order id ``ext-...``, tag ``manual``). On a breach the enforcer flattens through the broker (cancel every
working order, close every position at market, verify, retry) and records the lockout; a manual trade placed while
the account is HALTED cannot be prevented (the broker takes it), so the guard closes it again as soon as it fills
(``../shared/specs/risk-rules.md`` sections 7.3 and 7.4; ARCHITECTURE.md, "A fill that breaks a rule").

Two sessions drive a daemon:

* :class:`SimRiskSession` (``propdesk risk --broker sim``): a simulated account on a paced replay of real bars
  (a ``SimClock``, a ``SimBroker`` whose risk closes fill at the last price, a
  :class:`~propdesk.brokers.sim.replay.ReplayFeed`), with an optional manual script
  (:mod:`propdesk.sessions.risk_daemon.manual`) standing in for the TopstepX UI. The risk engine runs on the replayed
  clock: bars are the price feed (each bar close of a held contract is a QUOTE evaluation), no stale-quote watchdog.
* :class:`ProjectXRiskSession` (``propdesk risk --broker projectx``): a TopstepX account through
  :class:`~propdesk.brokers.projectx.ProjectXBroker` on a ``LiveClock``; on each (re)connect the
  :class:`~propdesk.risk.reconcile.Reconciler` replays the day's fills and open orders from the broker's reports, then
  the guard leaves its fail-closed REDUCING state; quotes are subscribed for every contract held. The risk engine
  starts after the first reconcile, as ``propdesk run --broker projectx``'s does
  (:func:`propdesk.node.bootstrap.start_after_first_reconcile`): the fills the broker reports at connect happened
  before the daemon watched, so they are the account's state (counted once in the day's figures; a position opened
  before the start is kept), not trades judged as opened while REDUCING.

Status: :meth:`RiskDaemon.status` (a JSON-ready dict; :mod:`propdesk.console.risk_daemon` renders it live with Rich).
The audit log goes to a ring of recent entries (for the status) and, with ``audit_path``, to a JSON-lines file. The node
is built by :class:`~propdesk.node.builder.NodeBuilder` (kind ``risk``): with a journal on a live account the lockouts
are kept in the journal's ``lockouts`` table (a restart keeps them) and the node is restored from the journal before it
connects; on a replayed clock they are kept in memory.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from propdesk.brokers.base import Broker
from propdesk.core import topics
from propdesk.core.bus import MessageBus
from propdesk.core.clock import Clock, LiveClock, SimClock
from propdesk.core.errors import DataError
from propdesk.core.timefmt import fmt_ct_seconds, iso_utc_seconds
from propdesk.core.topics import Priority
from propdesk.model.events import BrokerConnected, BrokerDisconnected, OrderFilled
from propdesk.model.identifiers import AccountId
from propdesk.model.orders import is_enforcement_tag
from propdesk.model.price import Money
from propdesk.model.records import AuditEntry
from propdesk.node.builder import NodeBuilder, RiskSetup, SessionKind
from propdesk.node.desk import Desk
from propdesk.node.desk_views import flat_orders
from propdesk.risk.audit import AuditLog, JsonLinesAuditLog, MultiAuditLog, RingAuditLog
from propdesk.risk.engine import RiskEngine
from propdesk.risk.events import RiskEvent
from propdesk.risk.presets import RiskConfig
from propdesk.sessions.common import ReplayControl, install_sigint, load_window_bars, remove_sigint
from propdesk.sessions.risk_daemon.manual import MANUAL_ID_PREFIX, ManualOrder, ManualTrader

if TYPE_CHECKING:
    from propdesk.brokers.sim.broker import SimBroker
    from propdesk.brokers.sim.config import SimConfig
    from propdesk.brokers.sim.replay import ReplayFeed, SleepFn
    from propdesk.model.data import BarSeries
    from propdesk.node.bootstrap import BootstrapResult, TradeHistorySource
    from propdesk.node.journaling import NodeJournal
    from propdesk.risk.reconcile import ReconcileReport

__all__ = [
    "RECENT_AUDIT",
    "RECENT_FILLS",
    "FillRecord",
    "ProjectXRiskOptions",
    "ProjectXRiskSession",
    "RiskDaemon",
    "SimRiskOptions",
    "SimRiskSession",
    "fill_source",
    "projectx_broker",
]

log = logging.getLogger("propdesk.sessions.risk_daemon.session")

RECENT_AUDIT: Final[int] = 15
"""Audit entries the status shows (the newest)."""
RECENT_FILLS: Final[int] = 12
"""Fills the status shows (the newest)."""
_SIM_CLOSE_PREFIX: Final[str] = "sim-close-"
"""Client order id prefix of the simulated broker's ``close_position`` orders (the enforcer's closes)."""
_RECORD_PRIORITY: Final[int] = Priority.DAEMON_RECORD
"""The daemon records a fill before the position manager (100) books it: it sees the position before the fill."""


def _iso_utc(ts_ns: int | None) -> str | None:
    if ts_ns is None:
        return None
    return iso_utc_seconds(ts_ns)


def _iso_ct(ts_ns: int | None) -> str | None:
    if ts_ns is None:
        return None
    return fmt_ct_seconds(ts_ns)


def _usd(m: Money | None) -> str | None:
    return None if m is None else str(m.as_decimal())


def fill_source(fill: OrderFilled, *, enforcing: bool, position_before: int) -> str:
    """Who placed the order behind ``fill``: ``risk`` (an enforcement close: the simulated broker's
    ``sim-close-<n>`` orders, any fill tagged ``risk`` or ``risk:<RULE>``, or a reducing fill while an enforcement
    job is pending), ``manual`` (a foreign order: ``ext-...`` or tag ``manual``), else ``propdesk``."""
    cid = str(fill.client_order_id)
    reduces = position_before != 0 and (position_before > 0) != (fill.signed_qty > 0)
    if cid.startswith(_SIM_CLOSE_PREFIX) or is_enforcement_tag(fill.tag) or (enforcing and reduces):
        return "risk"
    if cid.startswith("ext-") or fill.tag == "manual":
        return "manual"
    return "propdesk"


@dataclass(frozen=True, slots=True, kw_only=True)
class FillRecord:
    """One fill the daemon saw.

    Attributes:
        ts_ns: the fill's event time, UTC ns.
        client_order_id / symbol / side (``BUY``/``SELL``) / qty (contracts) / price (points, as text).
        source: ``manual``, ``risk`` or ``propdesk`` (:func:`fill_source`).
        position_before / position_after: the account's signed position in ``symbol`` around the fill (contracts).
        state: the account's trading state when the fill arrived.
        tag: the fill's tag: ``risk:<RULE>`` for an enforcement close (the rule that caused it), ``manual``, or the
            strategy's.
        reconciled: the broker reported the fill in a reconcile (at connect or after a reconnect): it happened while
            the daemon was not connected, and is counted as the account's state.
    """

    ts_ns: int
    client_order_id: str
    symbol: str
    side: str
    qty: int
    price: str
    source: str
    position_before: int
    position_after: int
    state: str
    tag: str = ""

    @property
    def label(self) -> str:
        """The source, with the rule for an enforcement fill: ``risk:R11``, else ``manual`` / ``risk`` /
        ``propdesk``."""
        return self.tag if self.source == "risk" and is_enforcement_tag(self.tag) else self.source

    reconciled: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (adds ``time_utc`` and ``time_ct``)."""
        return {
            "ts_ns": self.ts_ns,
            "time_utc": _iso_utc(self.ts_ns),
            "time_ct": _iso_ct(self.ts_ns),
            "client_order_id": self.client_order_id,
            "symbol": self.symbol,
            "side": self.side,
            "qty": self.qty,
            "price": self.price,
            "source": self.source,
            "tag": self.tag,
            "label": self.label,
            "position_before": self.position_before,
            "position_after": self.position_after,
            "state": self.state,
            "reconciled": self.reconciled,
        }


class RiskDaemon:
    """The account guard on its own (see the module docstring): a strategy-less node plus the risk engine.

    Args:
        broker: the account's broker (``SimBroker``, ``ProjectXBroker``, any :class:`~propdesk.brokers.base.Broker`).
        clock: the node's clock (``SimClock`` for a replay, ``LiveClock`` live).
        config: the risk configuration (preset + personal rules).
        balance: the account's realized balance now (USD); default: the configuration's start balance.
        new_account: the account starts now at ``balance`` (the MLL floor is then known: simulated accounts);
            otherwise the floor comes from the configuration's ``mll_floor`` and the account stays REDUCING until
            it is known (risk-rules.md section 3.4, "Seeding").
        bar_ns: the bar duration (UTC ns) when bars are the price feed (a replay): QUOTE rules run on bar closes,
            the periodic check runs from the bars, no stale-quote watchdog. ``None`` (live): quotes are the feed,
            stale after ``quote_stale_s``.
        quote_stale_s: live only: a held contract without a quote for this long means REDUCING.
        roots: products whose own flat times must be timed too (early-close products).
        audit_path: a JSON-lines audit file (appended), or ``None``.
        journal: the node's journal (not yet opened), or ``None``. On a live clock the risk engine's lockouts are
            kept in its ``lockouts`` table (a restart keeps them) and the node is restored from it before it connects;
            on a replayed clock, or without a journal, they are kept in memory
            (:func:`propdesk.node.builder.lockout_store_for`).
        bus: the bus (default: a new one without handler timing).
        recent_audit: audit entries kept for :meth:`status` (the newest).

    Attributes:
        desk: the :class:`~propdesk.node.desk.Desk` over the daemon's node; :meth:`status` reads it.

    Raises:
        ConfigError: a bad option (see :class:`~propdesk.risk.engine.RiskEngine`), or a rule that cannot be built.
        OSError: the audit file cannot be opened.
    """

    def __init__(
        self,
        broker: Broker,
        clock: Clock,
        config: RiskConfig,
        *,
        balance: Money | None = None,
        new_account: bool = False,
        bar_ns: int | None = None,
        quote_stale_s: float = 5.0,
        roots: tuple[str, ...] = (),
        audit_path: Path | None = None,
        journal: NodeJournal | None = None,
        bus: MessageBus | None = None,
        recent_audit: int = RECENT_AUDIT,
    ) -> None:
        self.broker = broker
        self.clock = clock
        self.config = config
        self.account_id = AccountId(int(broker.account_id))
        self.ring = RingAuditLog(max(1, recent_audit))
        self.audit_file: JsonLinesAuditLog | None = JsonLinesAuditLog(audit_path) if audit_path is not None else None
        sinks: list[AuditLog] = [self.ring] if self.audit_file is None else [self.ring, self.audit_file]
        start = balance if balance is not None else config.start_balance
        bars = bar_ns is not None
        self.built = NodeBuilder(
            kind=SessionKind.RISK,
            clock=clock,
            broker=broker,
            account_id=int(self.account_id),
            starting_balance_usd=start.as_decimal(),
            risk=RiskSetup(
                config=config,
                new_account=new_account,
                balance=start,
                roots=roots,
                bar_ns=bar_ns,
                quote_stale_s=quote_stale_s,
                bar_marks=bars,
                audit=MultiAuditLog(sinks),
            ),
            journal=journal,
            bus=bus if bus is not None else MessageBus(timing=False),
        ).build()
        assert self.built.risk is not None  # a risk setup was given
        self.engine: RiskEngine = self.built.risk
        self.bus = self.built.bus
        self.node = self.built.node
        self.desk = Desk(self.built)
        self.journal = journal
        self.fills: list[FillRecord] = []
        """Every fill seen, oldest first."""
        self.risk_events: deque[RiskEvent] = deque(maxlen=64)
        """The newest risk events (breaches, state changes, lockouts, flattens)."""
        self.connected: bool | None = None
        """The broker connection as last reported (``None`` before any report)."""
        self._listeners: list[Callable[[object], None]] = []
        self.bus.subscribe(topics.ORDER_FILLED, self._on_fill, _RECORD_PRIORITY)
        self.bus.subscribe(topics.RISK_EVENTS, self._on_risk_event, Priority.SESSION_STATE)
        self.bus.subscribe(topics.BROKER_CONNECTED, self._on_connection, Priority.SESSION_STATE)
        self.bus.subscribe(topics.BROKER_DISCONNECTED, self._on_connection, Priority.SESSION_STATE)
        self.running = False

    # ------------------------------------------------------------------------------------------------ life cycle

    def start(self, *, engine: bool = True, path_listener: bool = False) -> None:
        """Start the risk engine (loads the lockouts, arms the session timers) and the node. Idempotent.

        Args:
            engine: start the risk engine too; ``False`` leaves it to the caller (a live account's engine starts
                after the first reconcile: :func:`propdesk.node.bootstrap.start_after_first_reconcile`).
            path_listener: a simulated broker reports each bar's intrabar path to the engine (a replay).

        Raises:
            CalendarError: the calendar does not cover the clock's time.
        """
        if self.running:
            return
        if engine:
            self.built.start_risk(path_listener=path_listener)
        self.node.start()
        self.running = True

    def stop(self) -> None:
        """Stop the node and the engine and close the audit file. Idempotent."""
        if not self.running:
            return
        self.running = False
        self.built.stop()
        self.built.close_lockouts()
        if self.audit_file is not None:
            self.audit_file.close()

    def add_listener(self, listener: Callable[[object], None]) -> None:
        """Call ``listener`` with each :class:`FillRecord` and each risk event from now on (plain log lines)."""
        self._listeners.append(listener)

    # ------------------------------------------------------------------------------------------------ handlers

    def _on_fill(self, fill: OrderFilled) -> None:
        if fill.account_id != self.account_id:
            return
        before = self.node.positions.net_qty(self.account_id, fill.symbol)
        enforcing = self.engine.running and self.engine.enforcer.busy
        rec = FillRecord(
            ts_ns=fill.ts_event_ns,
            client_order_id=str(fill.client_order_id),
            symbol=fill.symbol,
            side=fill.side.name,
            qty=fill.qty,
            price=str(fill.price),
            source=fill_source(fill, enforcing=enforcing, position_before=before),
            position_before=before,
            position_after=before + fill.signed_qty,
            state=self.engine.trading_state.name,
            tag=fill.tag,
            reconciled=fill.reconciled,
        )
        self.fills.append(rec)
        for listener in self._listeners:
            listener(rec)

    def _on_risk_event(self, event: object) -> None:
        if isinstance(event, RiskEvent):
            self.risk_events.append(event)
            for listener in self._listeners:
                listener(event)

    def _on_connection(self, event: object) -> None:
        if isinstance(event, BrokerConnected):
            self.connected = True
        elif isinstance(event, BrokerDisconnected):
            self.connected = False

    # ------------------------------------------------------------------------------------------------ status

    def recent_audit(self, n: int = RECENT_AUDIT) -> list[AuditEntry]:
        """The newest ``n`` audit entries, oldest first."""
        entries = self.ring.entries()
        return entries[-n:] if n > 0 else []

    def positions(self) -> list[dict[str, Any]]:
        """Open positions (the desk's): ``symbol``, ``qty`` (signed contracts), ``avg_price`` (points, text),
        ``unrealized_usd`` (at the current mark, or ``None`` when unmarked)."""
        return [
            {
                "symbol": p.symbol,
                "qty": p.signed_qty,
                "avg_price": None if p.avg_price is None else str(p.avg_price),
                "unrealized_usd": _usd(p.unrealized_pnl),
            }
            for p in self.desk.positions()
        ]

    def status(self) -> dict[str, Any]:
        """The status as a JSON-ready dict, read from the daemon's :class:`~propdesk.node.desk.Desk`: ``account``,
        ``preset``, ``state``, ``reasons``, ``trading_date``, ``next_reset_ns`` / ``next_reset_utc``, ``next_flat_ns``
        / ``next_flat_utc``, ``balance_usd``, ``equity_usd``, ``day_net_usd``, ``mll_floor_usd``,
        ``daily_loss_left_usd`` / ``daily_loss_rule``, ``trades_today``, ``contracts_today``, ``rules`` (``rule_id``,
        ``firm``, ``describe``, ``action``, ``reason``, ``used_fraction`` each), ``lockouts``
        (:meth:`Lockout.to_dict` plus ``expires_ct``), ``conditions``; plus ``broker``, ``connected``, ``now_ns`` /
        ``now_utc`` / ``now_ct`` (the daemon's clock), ``next_reset_ct`` / ``next_flat_ct``, ``mll_distance_usd``
        (equity minus the floor), ``positions``, ``working_orders`` (the open orders, bracket children after their
        entry), ``fills`` (counts by source), ``recent_fills``, ``breaches``, ``flattens`` and ``audit`` (the newest
        entries, :meth:`AuditEntry.to_dict` each). Money as USD decimal strings, times UTC ns."""
        desk = self.desk
        acct = desk.accounts()[0]
        day = desk.trading_day()
        assert day is not None  # the daemon always has a risk engine
        today = desk.daily_stats()[-1]
        now = self.clock.timestamp_ns()
        by_source: dict[str, int] = {"manual": 0, "risk": 0, "propdesk": 0}
        for f in self.fills:
            by_source[f.source] = by_source.get(f.source, 0) + 1
        return {
            "account": acct.account_id,
            "preset": day.preset,
            "state": acct.trading_state,
            "reasons": list(acct.state_reasons),
            "trading_date": day.trading_date.isoformat(),
            "next_reset_ns": day.next_reset_ns,
            "next_reset_utc": _iso_utc(day.next_reset_ns),
            "next_flat_ns": day.next_flat_ns,
            "next_flat_utc": _iso_utc(day.next_flat_ns),
            "balance_usd": _usd(acct.balance_usd),
            "equity_usd": _usd(acct.equity_usd),
            "day_net_usd": _usd(acct.day_net_usd),
            "mll_floor_usd": _usd(acct.mll_floor_usd),
            "daily_loss_left_usd": _usd(acct.daily_loss_left_usd),
            "daily_loss_rule": acct.daily_loss_rule,
            "trades_today": acct.trades_today,
            "contracts_today": today.contracts,
            "rules": [
                {
                    "rule_id": r.rule_id,
                    "firm": r.firm,
                    "describe": r.describe,
                    "action": r.state,
                    "reason": r.reason,
                    "used_fraction": r.used_fraction,
                }
                for r in desk.risk_status()
            ],
            "lockouts": [{**lo.to_dict(), "expires_ct": _iso_ct(lo.expires_at_ns)} for lo in acct.lockouts],
            "conditions": day.conditions,
            "broker": self.broker.name,
            "connected": self.connected,
            "now_ns": now,
            "now_utc": _iso_utc(now),
            "now_ct": _iso_ct(now),
            "next_reset_ct": _iso_ct(day.next_reset_ns),
            "next_flat_ct": _iso_ct(day.next_flat_ns),
            "mll_distance_usd": _usd(acct.mll_distance_usd),
            "positions": self.positions(),
            "working_orders": [
                {
                    "client_order_id": str(o.client_order_id),
                    "symbol": o.symbol,
                    "side": o.side,
                    "qty": o.qty - o.filled_qty,
                    "type": o.order_type,
                    "tag": o.tag,
                }
                for o in flat_orders(desk.working_orders())
            ],
            "fills": by_source,
            "recent_fills": [f.to_dict() for f in self.fills[-RECENT_FILLS:]],
            "breaches": len(self.engine.breaches),
            "flattens": len(self.engine.flattens),
            "audit": [e.to_dict() for e in desk.audit(limit=RECENT_AUDIT)],
        }


# ---------------------------------------------------------------------------------------------------------- sim


@dataclass(frozen=True, slots=True, kw_only=True)
class SimRiskOptions:
    """What ``propdesk risk --broker sim`` plays.

    Attributes:
        replay: a bar file (loaded with its preset, :func:`propdesk.data.loaders.load_bars`).
        config: the risk configuration.
        account_id: the simulated account's id.
        speed: a multiple of real time, or ``None`` for as fast as possible.
        start_ns / end_ns: play only the bars opening in ``[start_ns, end_ns)`` (UTC ns; ``None`` = unbounded).
        symbol: the contract or root of the data (default: the file's).
        balance_usd: the account's balance at the start (default: the configuration's start balance).
        manual: the manual orders to place at the broker
            (:func:`~propdesk.sessions.risk_daemon.manual.load_manual_script`).
        audit_path: see :class:`RiskDaemon`.
        sim: the simulated exchange's options (risk closes always fill at the last price).
        max_wait_s: the longest wall wait between two bars when paced (seconds).
    """

    replay: Path
    config: RiskConfig
    account_id: int = 1
    speed: float | None = 60.0
    start_ns: int | None = None
    end_ns: int | None = None
    symbol: str | None = None
    balance_usd: Decimal | None = None
    manual: tuple[ManualOrder, ...] = ()
    audit_path: Path | None = None
    sim: SimConfig | None = None
    max_wait_s: float | None = 2.0


def _load_bars(options: SimRiskOptions) -> BarSeries:
    return load_window_bars(options.replay, symbol=options.symbol, start_ns=options.start_ns, end_ns=options.end_ns)


class SimRiskSession(ReplayControl):
    """``propdesk risk --broker sim``: the daemon on a simulated account fed by a paced replay, with manual orders
    placed straight at the simulated broker (see the module docstring).

    Args:
        options: what to play.
        bars: the bars (default: loaded from ``options.replay`` and cut to the window).
        sleep / monotonic: the feed's sleep and wall clock (fakes in tests).

    Attributes:
        daemon, broker (the ``SimBroker``), clock (``SimClock``), feed, trader (the manual orders), bars, symbol.

    Raises:
        DataError: the file cannot be loaded, the window holds no bar, or a manual order is for another product
            than the one replayed.
        ConfigError: bad options.
    """

    def __init__(
        self,
        options: SimRiskOptions,
        *,
        bars: BarSeries | None = None,
        sleep: SleepFn | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        from propdesk.brokers.sim.broker import SimBroker  # noqa: PLC0415
        from propdesk.brokers.sim.config import SimConfig  # noqa: PLC0415
        from propdesk.brokers.sim.replay import ReplayFeed  # noqa: PLC0415
        from propdesk.model.symbology import spec_for_symbol  # noqa: PLC0415

        self.options = options
        self.bars = bars if bars is not None else _load_bars(options)
        if not len(self.bars):
            raise DataError("no bars to replay", path=options.replay)
        self.symbol = self.bars.symbol
        root = spec_for_symbol(self.symbol).root
        self.root = root
        for m in options.manual:
            if m.symbol not in (self.symbol, root):
                raise DataError(
                    f"manual order {m.describe()} is for {m.symbol}, but the replay plays {self.symbol} ({root})",
                    row=m.line,
                )
        self.clock = SimClock(int(self.bars.ts_open_ns[0]))
        balance = Money.of(options.balance_usd) if options.balance_usd is not None else options.config.start_balance
        sim_cfg = (options.sim or SimConfig()).model_copy(update={"flatten_fill": "last-price"})
        self.broker: SimBroker = SimBroker(
            self.clock, account_id=AccountId(options.account_id), config=sim_cfg, starting_balance=balance
        )
        self.daemon = RiskDaemon(
            self.broker,
            self.clock,
            options.config,
            balance=balance,
            new_account=True,
            bar_ns=self.bars.timeframe.ns,
            roots=(root,),
            audit_path=options.audit_path,
        )
        self.trader = ManualTrader(
            self.clock,
            self.broker,
            account_id=AccountId(options.account_id),
            orders=options.manual,
            resolve_symbol=self._resolve,
        )
        feed_kwargs: dict[str, Any] = {"speed": options.speed, "max_wait_s": options.max_wait_s}
        if sleep is not None:
            feed_kwargs["sleep"] = sleep
        self.feed: ReplayFeed = ReplayFeed(
            self.clock, self.broker, self.daemon.node, [self.bars], monotonic=monotonic, **feed_kwargs
        )
        self.interrupted = False
        self.wall_s = 0.0
        self._t0: float | None = None

    def _resolve(self, symbol: str) -> str:
        return self.symbol if symbol == self.root else symbol

    async def run(self, *, handle_sigint: bool = True) -> dict[str, Any]:
        """Start the daemon, arm the manual orders, play the bars, stop; return the final :meth:`status`.

        Raises:
            Exception: whatever the node, the risk engine or the simulated exchange raises (the daemon is stopped
                first).
        """
        loop = asyncio.get_running_loop()
        installed = install_sigint(loop, self.interrupt, enabled=handle_sigint)
        self.daemon.start(path_listener=True)
        await self.broker.connect()
        self.trader.arm()
        self._t0 = time.perf_counter()
        try:
            await self.feed.run()
        except KeyboardInterrupt:
            self.interrupt()
        finally:
            self.wall_s = time.perf_counter() - self._t0
            remove_sigint(loop, installed)
            self.trader.disarm()
            status = self.status()
            self.daemon.stop()
        return status

    def status(self) -> dict[str, Any]:
        """:meth:`RiskDaemon.status` plus ``replay`` (``symbol``, ``bars``, ``total``, ``speed``, ``completed``,
        ``interrupted``, ``wall_s``), ``manual`` (``placed``, ``pending``: the scripted orders placed so far and
        still to come, as text) and ``data_warnings`` (the simulated exchange's closed periods that held data, not
        traded: :meth:`propdesk.brokers.sim.calendar_check.ClosedPeriod.to_dict` each)."""
        st = self.daemon.status()
        prog = self.feed.progress()
        st["replay"] = {
            "symbol": self.symbol,
            "bars": prog.bars,
            "total": prog.total,
            "fraction": prog.fraction,
            "speed": "max" if self.feed.speed is None else self.feed.speed,
            "completed": self.feed.finished,
            "interrupted": self.interrupted,
            "wall_s": round(self.elapsed_s, 3),
        }
        st["data_warnings"] = [p.to_dict() for p in self.broker.closed_periods]
        st["manual"] = {
            "placed": [f"{_iso_ct(m.ts_ns)} {MANUAL_ID_PREFIX}{m.line}: {m.describe()}" for m in self.trader.placed],
            "pending": [f"{_iso_ct(m.ts_ns)} {MANUAL_ID_PREFIX}{m.line}: {m.describe()}" for m in self.trader.pending],
        }
        return st


# ---------------------------------------------------------------------------------------------------------- projectx


@dataclass(frozen=True, slots=True, kw_only=True)
class ProjectXRiskOptions:
    """What ``propdesk risk --broker projectx`` watches.

    Attributes:
        account_id: the ProjectX account id.
        config: the risk configuration (its ``mll_floor`` seeds the MLL floor; without it the floor is derived from
            the broker's trade history at the first reconcile, :mod:`propdesk.node.bootstrap`; risk-rules.md 3.4).
        audit_path: see :class:`RiskDaemon`.
        settings: a ready :class:`~propdesk.brokers.projectx.ProjectXSettings` (default: the TopstepX hosts with
            the credentials from ``PROPDESK_PROJECTX_USERNAME`` / ``PROPDESK_PROJECTX_API_KEY``).
        quote_stale_s: a held contract without a quote for this long means REDUCING.
    """

    account_id: int
    config: RiskConfig
    audit_path: Path | None = None
    settings: Any = None
    quote_stale_s: float = 5.0


def projectx_broker(options: ProjectXRiskOptions, clock: Clock) -> Broker:
    """The ``projectx`` broker of the registry (:mod:`propdesk.brokers.registry`) for ``options`` (its settings, or
    the defaults; credentials from the environment).

    Raises:
        ConfigError: the ProjectX adapter cannot be loaded in this build, or the credentials are missing.
    """
    from propdesk.brokers import registry  # noqa: PLC0415 - the adapter is imported only when used

    entry = registry.get("projectx")
    settings: Any = entry.settings(options.settings)
    return entry.create(settings.with_env_credentials(), account_id=AccountId(options.account_id), clock=clock)


class ProjectXRiskSession:
    """``propdesk risk --broker projectx``: the daemon on a live TopstepX account until Ctrl-C (module docstring).

    Args:
        options: the account and the risk configuration.
        broker: a ready broker (tests, the local gateway); default: :func:`projectx_broker`.
        journal: the node's journal (not yet opened), or ``None``: :meth:`run` opens its run (kind ``risk``),
            restores the node and the lockouts from it before connecting (the lockouts are kept in its ``lockouts``
            table) and closes it at the end.

    Raises:
        ConfigError: see :func:`projectx_broker`.
    """

    def __init__(
        self, options: ProjectXRiskOptions, *, broker: Broker | None = None, journal: NodeJournal | None = None
    ) -> None:
        self.options = options
        self.clock = LiveClock()
        self.broker = broker if broker is not None else projectx_broker(options, self.clock)
        self.daemon = RiskDaemon(
            self.broker,
            self.clock,
            options.config,
            new_account=False,
            quote_stale_s=options.quote_stale_s,
            audit_path=options.audit_path,
            journal=journal,
        )
        self.journal = journal
        self._reconciler = self.daemon.built.reconciler(
            since_ns=lambda: self.daemon.engine.state.day_start_ns, on_report=self._on_report, label="risk"
        )
        self._stop: asyncio.Event | None = None
        self._subscribed: set[str] = set()
        self.interrupted = False
        self.reconciles = 0
        self.bootstrap: BootstrapResult | None = None
        """The MLL floor derived from the broker's trade history (``None`` when the configuration gave it)."""
        self._ready = False
        self.daemon.bus.subscribe(topics.BROKER_CONNECTED, self._on_connected, Priority.DAEMON_RECONCILE)
        self.daemon.bus.subscribe(topics.ORDER_FILLED, self._on_fill, Priority.DAEMON_RECONCILE)
        self._tasks: set[asyncio.Task[Any]] = set()

    def stop(self) -> None:
        """End the session (from a signal handler or a callback)."""
        if self._stop is not None:
            self._stop.set()

    def interrupt(self) -> None:
        """What Ctrl-C does."""
        self.interrupted = True
        self.stop()

    def _watch(self, symbol: str) -> None:
        if symbol not in self._subscribed:
            self._subscribed.add(symbol)
            self.broker.subscribe(symbol, quotes=True, trades=True)

    def _on_fill(self, fill: OrderFilled) -> None:
        self._watch(fill.symbol)

    def _on_connected(self, _event: object) -> None:
        if self._ready:  # a reconnect: reconcile again before the guard lifts REDUCING
            task = asyncio.get_running_loop().create_task(self.reconcile())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def reconcile(self) -> bool:
        """Replay the broker's fills since the trading day's start and its open orders into the node and subscribe the
        held contracts' quotes, under the node's reconcile policy (:class:`~propdesk.node.builder.ConnectReconciler`:
        wait for the broker's commands in flight, retry while discrepancies remain); once the risk engine runs (a
        reconnect), a clean reconcile lets the guard re-evaluate every rule and lift its connection condition (when
        none is clean the account stays REDUCING and the error is logged).

        Returns:
            True when the reconcile was clean.
        """
        report = await self._reconciler.reconcile()
        self.reconciles = self._reconciler.clean
        return report is not None and report.ok

    def _on_report(self, _report: ReconcileReport) -> None:
        for pos in self.daemon.node.positions.iter_open(self.daemon.account_id):
            self._watch(pos.symbol)

    def _history_source(self) -> TradeHistorySource | None:
        """The broker as the source of its trade history and balance, ``None`` when it has neither."""
        broker = self.broker
        if hasattr(broker, "trade_history") and hasattr(broker, "account_report"):
            source: TradeHistorySource = broker  # type: ignore[assignment]
            return source
        return None

    async def run(self, *, handle_sigint: bool = True) -> dict[str, Any]:
        """Start the daemon, connect, reconcile, and watch until :meth:`stop` or Ctrl-C; return the final status.

        Raises:
            ConfigError, ProjectXError: the connection failed (the daemon is stopped first).
            HistoryUnavailableError: the MLL floor is not configured and cannot be derived from the broker's trade
                history.
        """
        from propdesk.node.bootstrap import ConnectFills, start_after_first_reconcile  # noqa: PLC0415

        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        installed = install_sigint(loop, self.interrupt, enabled=handle_sigint)
        engine = self.daemon.engine
        built = self.daemon.built
        journal_open = False
        counted: ConnectFills | None = None
        try:
            if self.journal is not None:  # the run, then the node and its lockouts restored, before connecting
                await built.open_journal(
                    strategy="risk-daemon",
                    symbol="",
                    account_id=int(self.daemon.account_id),
                    params={"preset": self.options.config.preset},
                    venue_session="",  # ProjectX trade ids are unique in the account
                )
                journal_open = True
                await built.recover(now_ns=self.clock.timestamp_ns())
            self.daemon.start(engine=False)  # the engine starts after the first reconcile (module docstring)
            counted = ConnectFills(engine, self.daemon.bus)
            await self.broker.connect()
            clean = await self.reconcile()
            self.bootstrap = await start_after_first_reconcile(
                engine,
                self._history_source(),
                counted,
                reconciled=clean,
                now_ns=self.clock.timestamp_ns,
                journal=None if self.journal is None else self.journal.journal,
            )
            self._ready = True
            await self._stop.wait()
        finally:
            if counted is not None:
                counted.close()
            remove_sigint(loop, installed)
            status = self.status()
            self.daemon.stop()
            try:
                await self.broker.disconnect()
            except Exception:
                log.exception("risk: disconnect from ProjectX failed")
            if journal_open and self.journal is not None:
                await self.journal.close(status="stopped" if self.interrupted else "completed")
        return status

    def status(self) -> dict[str, Any]:
        """:meth:`RiskDaemon.status` plus ``reconciles`` (clean reconciliations so far), ``interrupted`` and
        ``mll_floor_source`` (``broker_history`` when the floor was derived from the trade history, else ``None``)."""
        st = self.daemon.status()
        st["reconciles"] = self.reconciles
        st["interrupted"] = self.interrupted
        st["mll_floor_source"] = "broker_history" if self.bootstrap is not None else None
        return st
