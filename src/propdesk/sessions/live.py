"""Live trading on a ProjectX (TopstepX) account: ``propdesk run --broker projectx``.

:class:`LiveSession` is a :class:`~propdesk.sessions.live_account.LiveAccount` (a
:class:`~propdesk.core.clock.LiveClock`, a :class:`~propdesk.brokers.projectx.ProjectXBroker`, a
:class:`~propdesk.node.TradingNode` with the :class:`~propdesk.risk.engine.RiskEngine` when a risk configuration is
given) with one strategy (``propdesk serve`` runs several accounts, adding their strategies at runtime); it:

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
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from pydantic import ValidationError

from propdesk.brokers.projectx import ProjectXBroker, ProjectXRest, ProjectXSettings
from propdesk.brokers.projectx.config import ENV_API_KEY, ENV_USERNAME
from propdesk.config import get_settings, load_settings
from propdesk.core import topics
from propdesk.core.clock import TimeEvent
from propdesk.core.errors import ConfigError
from propdesk.core.timefmt import iso_utc
from propdesk.core.topics import Priority
from propdesk.execution.round_trips import RoundTrip, RoundTripBuilder
from propdesk.model.data import Bar
from propdesk.model.events import OrderFilled
from propdesk.model.price import Money, Price
from propdesk.model.symbology import spec_for_symbol
from propdesk.node import DEFAULT_TIMEFRAME
from propdesk.node.bootstrap import HISTORY_SOURCE
from propdesk.risk.events import TradingStateChanged
from propdesk.risk.outcomes import RiskOutcomes
from propdesk.sessions.common import EventFanout, account_json, install_sigint, remove_sigint
from propdesk.sessions.live_account import BrokerHistory, CachedHistory, HistoryProvider, LiveAccount, LiveOptions
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


# ---------------------------------------------------------------------------------------------------- session


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


class LiveSession(EventFanout, LiveAccount):
    """One live session on a ProjectX account: a :class:`~propdesk.sessions.live_account.LiveAccount` with one
    strategy (see the module docstring).

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
        as :class:`~propdesk.sessions.live_account.LiveAccount`'s, and strategy, timeframe (the strategy's), symbol
        (set by :meth:`run`), recent (the last order and position events).

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
        self.strategy = strategy if strategy is not None else build_strategy(options.strategy, options.params)
        self.timeframe = self.strategy.timeframe or DEFAULT_TIMEFRAME
        super().__init__(
            options,
            settings,
            account_id=account_id,
            account_name=account_name,
            balance=balance,
            history=history,
            broker=broker,
            journal=journal,
        )
        self.symbol = ""
        self.recent: deque[object] = deque(maxlen=12)
        self.completed = False
        self.interrupted = False
        self.wall_s = 0.0
        self._t0: float | None = None
        self._listeners: list[Callable[[object], None]] = []
        self._stop: asyncio.Event | None = None
        bus = self.node.bus
        bus.subscribe(topics.ORDER_EVENTS, self._on_event, priority=Priority.SESSION_EVENTS)
        bus.subscribe(topics.POSITION_EVENTS, self._on_event, priority=Priority.SESSION_EVENTS)

    def _on_state_changed(self, event: TradingStateChanged) -> None:
        super()._on_state_changed(event)
        for listener in self._listeners:
            listener(event)

    def _published(self, bar: Bar) -> None:
        limit = self.options.max_bars
        if limit is not None and self.bars >= limit:
            self.completed = True
            self.stop()

    # ------------------------------------------------------------------ control

    def stop(self) -> None:
        """End the session (``completed`` unless :meth:`interrupt`)."""
        if self._stop is not None:
            self._stop.set()
            self.closed = True  # no live bar is published after the stop

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
            await self.connect()
            self.symbol = await self.resolve_symbol(self.options.symbol or self.strategy.config.symbol)
            self.add_strategy(self.strategy, self.symbol)
            self.start()
            if self.options.duration_s is not None:
                self.clock.set_time_alert(
                    "propdesk.sessions.live.duration",
                    self.clock.timestamp_ns() + int(self.options.duration_s * 1e9),
                    self._on_duration,
                )
            await self._stop.wait()
        except KeyboardInterrupt:
            self.interrupt()
        finally:
            self.wall_s = time.perf_counter() - self._t0
            self._stop.set()
            remove_sigint(loop, installed)
            await self.close()
            if journal_open and self.journal is not None:
                await self.journal.close(status="stopped" if self.interrupted else "completed")
            self.built.close_lockouts()
        return self.summary()

    async def _recover(self) -> None:
        """Open the journal (migrate, record the run, start the writer), restore the node from it and attach it
        (before the risk engine starts and the broker connects: :meth:`LiveAccount.recover
        <propdesk.sessions.live_account.LiveAccount.recover>`)."""
        assert self.journal is not None
        cfg = self.strategy.config
        await self.built.open_journal(
            strategy=self.strategy.name,
            symbol=self.options.symbol or cfg.symbol,
            timeframe=str(self.timeframe),
            account_id=int(self.account_id),
            params=cfg.model_dump(mode="json"),
            venue_session="",  # ProjectX trade ids are unique in the account: a fill reported again is one row
        )
        await self.recover()

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
