"""The runtime of ``propdesk serve``: several accounts in one asyncio loop, one journal, one :class:`DeskService`.

:class:`ServeSession` builds, from :class:`~propdesk.config.ServeSettings`:

* per **sim** account a :class:`~propdesk.sessions.replay.ReplayAccount` (its ``SimClock`` and ``SimBroker``
  replaying its bar file at ``speed``, its own risk preset, guard and lockouts) and a :class:`~propdesk.node.desk.Desk`
  on its node;
* **one** :class:`~propdesk.node.journaling.NodeJournal` wired to every account's node (each node has its own bus; the
  journal captures from all of them, so the event sequence stays one gap-free sequence for the database, each event
  carrying its ``account_id``) and one :class:`~propdesk.node.stream.EventStream` over it;
* the :class:`~propdesk.node.service.DeskService` over the desks, with the instances the journal holds (they win) and
  the configured ones (``[[serve.strategies]]``) not stored yet.

**Order of a start.** The journal's run (kind ``serve``) is opened, the stored instances are read, then each account
starts (its risk engine and node) and reconciles with its broker (:meth:`BuiltNode.reconciler
<propdesk.node.builder.BuiltNode.reconciler>`, the one policy) before its first bar; only after a clean reconcile
are its instances put on its node, and never while it is locked out: they wait, and resume when the lockout ends
(checked after every record the account plays; the status says why an instance waits). An account's lockouts are
the journal's (:func:`~propdesk.node.builder.lockout_store_for`), so a restarted service finds them active and its
instances wait again.

**Stopping.** SIGINT and SIGTERM (installed on the loop while the session runs) and :meth:`ServeSession.stop` stop every
feed after the record being played (and disconnect the ProjectX accounts); each node is then stopped (strategies'
``on_stop``) and its risk engine, the stream is closed and the journal's run is closed (``stopped``; ``completed`` when
every replay reached the end of its data). Working orders and positions stay as they are, as in ``propdesk run``.

**ProjectX accounts.** Per ``projectx`` account a :class:`~propdesk.sessions.live_account.LiveAccount` (its
``LiveClock`` and ProjectX broker, credentials from the environment only; the account and its contract resolved at
ProjectX first: :func:`resolve_live_accounts`). It is restored from the journal, connects and reconciles (the builder's
one policy; every clean reconcile, a reconnect's too, lets its waiting instances resume), subscribes the contracts of
its instances and builds their bars, and warms each instance with history bars before it trades (through the journal's
bar cache when there is a journal: :class:`~propdesk.sessions.live_account.CachedHistory`). Its records carry the empty
venue session (ProjectX trade ids are unique in the account) while the simulated accounts' carry the run id
(:meth:`Journal.set_account_venue <propdesk.storage.journal.Journal.set_account_venue>`). A service with a ProjectX
account runs until it is stopped; its lockout checks run every :data:`LIVE_CHECK_S` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

from propdesk.brokers.sim.replay import DEFAULT_MAX_WAIT_S, SleepFn
from propdesk.config import DEFAULT_SERVE_DATA, ServeAccount, ServeSettings, ServeStrategy
from propdesk.core.errors import ConfigError, DataError
from propdesk.core.timefmt import iso_utc
from propdesk.model.commands import StrategyState
from propdesk.model.price import Money
from propdesk.node.builder import SessionKind
from propdesk.node.desk import Desk
from propdesk.node.service import DeskService, InstanceSpec, InstanceView
from propdesk.sessions.live_account import LiveAccount, LiveOptions
from propdesk.sessions.replay import ReplayAccount, RunOptions

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from propdesk.brokers.projectx import ProjectXSettings
    from propdesk.model.data import BarSeries
    from propdesk.node.journaling import NodeJournal
    from propdesk.node.stream import EventStream
    from propdesk.risk.presets import RiskConfig
    from propdesk.risk.reconcile import ReconcileReport

__all__ = [
    "DEFAULT_ACCOUNT",
    "DEFAULT_INSTANCE",
    "EXIT_SIGINT",
    "LIVE_CHECK_S",
    "AccountStatus",
    "LiveTarget",
    "ServeSession",
    "ServeSummary",
    "resolve_live_accounts",
    "serve_plan",
]

log = logging.getLogger("propdesk.sessions.serve")

DEFAULT_ACCOUNT: Final = ServeAccount(name="combine", broker="sim", account_id=1, risk="topstep-50k-combine")
"""The account ``propdesk serve`` runs with no ``[[serve.accounts]]``: one simulated 50K Combine replaying the ES
file (:data:`propdesk.config.DEFAULT_SERVE_DATA` under ``[serve] data_dir``)."""
DEFAULT_INSTANCE: Final = ServeStrategy(name="sma-es", strategy="sma_cross", account="combine")
"""The strategy instance the default account starts with."""
EXIT_SIGINT: Final = 130
"""Exit code of ``propdesk serve`` stopped by SIGINT (128 + 2); SIGTERM (a service manager's stop) and the end of
every replay exit 0."""


LIVE_CHECK_S: Final = 1.0
"""How often (wall seconds) a ProjectX account's waiting instances are checked against its lockouts."""
DEFAULT_LIVE_SYMBOL: Final = "ES"
"""The contract root a ProjectX account trades when its ``symbol`` is unset (its active contract at ProjectX)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveTarget:
    """A ``projectx`` account of the service as ProjectX knows it: its id, name, balance (USD) and the contract its
    instances trade by default (``ESZ6``)."""

    account_id: int
    account_name: str
    balance: Money
    symbol: str


async def resolve_live_accounts(settings: ServeSettings, projectx: ProjectXSettings) -> dict[str, LiveTarget]:
    """Each ``projectx`` account of ``settings`` at ProjectX (by its ``account``: an id or a name, else the user's
    only active account) with its contract (``symbol``: a contract, or a root resolved to its active contract;
    default :data:`DEFAULT_LIVE_SYMBOL`), by account name.

    Raises:
        ConfigError: no such account, or several and none chosen; ContractError: ProjectX lists no active contract
            of the root; ProjectXError: login refused or the API unreachable.
    """
    from propdesk.brokers.projectx import ProjectXRest  # noqa: PLC0415 - ProjectX only when an account uses it
    from propdesk.core.errors import ContractError  # noqa: PLC0415
    from propdesk.model.contracts import known_roots  # noqa: PLC0415
    from propdesk.sessions.live import resolve_account  # noqa: PLC0415
    from propdesk.sessions.live_account import active_contract  # noqa: PLC0415

    out: dict[str, LiveTarget] = {}
    for account in serve_plan(settings)[0]:
        if account.broker != "projectx":
            continue
        where = f"serve account {account.name!r}"
        try:
            aid, name, balance = await resolve_account(projectx, account.account)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        symbol = account.symbol or DEFAULT_LIVE_SYMBOL
        if symbol in known_roots():
            rest = ProjectXRest(projectx)
            try:
                symbol = str((await active_contract(rest, symbol)).name)
            except ContractError as exc:
                raise ContractError(f"{where}: {exc}") from None
            finally:
                await rest.aclose()
        out[account.name] = LiveTarget(account_id=aid, account_name=name, balance=balance, symbol=symbol)
    return out


def serve_plan(settings: ServeSettings) -> tuple[list[ServeAccount], list[ServeStrategy]]:
    """The accounts and initial instances of ``settings``; with no account configured, :data:`DEFAULT_ACCOUNT` and
    (with no instance configured either) :data:`DEFAULT_INSTANCE`."""
    if settings.accounts:
        return list(settings.accounts), list(settings.strategies)
    if settings.strategies:
        return [DEFAULT_ACCOUNT], list(settings.strategies)
    return [DEFAULT_ACCOUNT], [DEFAULT_INSTANCE]


def _data_path(settings: ServeSettings, account: ServeAccount) -> Path:
    path = account.data if account.data is not None else DEFAULT_SERVE_DATA
    path = path.expanduser()
    return path if path.is_absolute() else settings.data_dir.expanduser() / path


def _risk_of(account: ServeAccount) -> RiskConfig | None:
    """The account's risk configuration (``None``: no risk engine). Raises ConfigError (risk preset or file)."""
    from propdesk.risk.presets import load_risk_config  # noqa: PLC0415 - heavy imports only when serving

    if not account.risk and account.risk_config is None:
        return None
    try:
        return load_risk_config(account.risk or None, account.risk_config)
    except ConfigError as exc:
        raise ConfigError(f"serve account {account.name!r}: {exc}") from None


def _options(settings: ServeSettings, account: ServeAccount, speed: float | None) -> RunOptions:
    """The replay options of a sim account. Raises ConfigError (risk preset or file, balance)."""
    from propdesk.backtest.cli_support import parse_usd  # noqa: PLC0415 - heavy imports only when serving

    where = f"serve account {account.name!r}"
    risk = _risk_of(account)
    if account.balance_usd is not None:
        balance = parse_usd(account.balance_usd, f"{where} balance_usd")
    else:
        balance = risk.start_balance.as_decimal() if risk is not None else Decimal("50000")
    return RunOptions(
        replay=_data_path(settings, account),
        strategy="",
        speed=speed,
        symbol=account.symbol,
        balance_usd=balance,
        account_id=account.account_id,
        max_wait_s=DEFAULT_MAX_WAIT_S,
        risk=risk,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountStatus:
    """One account of the service now (USD as :class:`Money`; times UTC ns).

    Attributes:
        name, account_id, broker, symbol (the contract traded).
        records / total: records played and to play. replay_ts_ns: the replayed clock (``None`` before the first).
        balance / equity / day_net: the account's (``day_net``: today's realized net + unrealized).
        fills: fills so far. open_qty: the signed net position in ``symbol`` (contracts).
        trading_state: ACTIVE / REDUCING / HALTED. reconciled: the account's reconcile was clean.
        finished: its replay reached the end of its data.
    """

    name: str
    account_id: int
    broker: str
    symbol: str
    records: int
    total: int | None
    replay_ts_ns: int | None
    balance: Money
    equity: Money
    day_net: Money
    fills: int
    open_qty: int
    trading_state: str
    reconciled: bool
    finished: bool

    def to_json_dict(self) -> dict[str, object]:
        """JSON form (USD as strings with two decimals, times as UTC ns and ISO 8601)."""
        return {
            "name": self.name,
            "account_id": self.account_id,
            "broker": self.broker,
            "symbol": self.symbol,
            "records": self.records,
            "total": self.total,
            "replay_ts_ns": self.replay_ts_ns,
            "replay_time_utc": None if self.replay_ts_ns is None else iso_utc(self.replay_ts_ns),
            "balance_usd": str(self.balance.as_decimal()),
            "equity_usd": str(self.equity.as_decimal()),
            "day_net_usd": str(self.day_net.as_decimal()),
            "fills": self.fills,
            "open_qty": self.open_qty,
            "trading_state": self.trading_state,
            "reconciled": self.reconciled,
            "finished": self.finished,
        }


def _instance_json(view: InstanceView) -> dict[str, object]:
    return {
        "name": view.name,
        "account_id": view.account_id,
        "strategy": view.strategy,
        "symbol": view.symbol,
        "state": view.state.value,
        "version": view.version,
        "params": view.params,
        "waiting": view.waiting,
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class ServeSummary:
    """What a ``propdesk serve`` session did: its accounts and instances at the end, how it ended (``completed``:
    every replay reached its end; ``signal``: ``SIGINT`` / ``SIGTERM`` / ``""``), the journal's run id and last
    event sequence number (``None`` without a journal), wall seconds, warnings (instances left out)."""

    accounts: tuple[AccountStatus, ...]
    instances: tuple[InstanceView, ...]
    completed: bool
    signal: str
    run_id: str | None
    last_seq: int | None
    wall_s: float
    warnings: tuple[str, ...] = ()

    @property
    def exit_code(self) -> int:
        """:data:`EXIT_SIGINT` after SIGINT, else 0."""
        return EXIT_SIGINT if self.signal == "SIGINT" else 0

    def to_json_dict(self) -> dict[str, object]:
        """The JSON object ``propdesk serve --json`` prints."""
        return {
            "accounts": [a.to_json_dict() for a in self.accounts],
            "instances": [_instance_json(i) for i in self.instances],
            "completed": self.completed,
            "signal": self.signal or None,
            "run_id": self.run_id,
            "last_seq": self.last_seq,
            "wall_s": round(self.wall_s, 3),
            "warnings": list(self.warnings),
        }


class ServeSession:
    """The accounts, desks, service, journal and stream of one ``propdesk serve`` (see the module docstring).

    Args:
        settings: the ``[serve]`` settings (:func:`serve_plan` picks the accounts and initial instances).
        journal: the one journal of every account (not yet opened; the session opens and closes its run), or
            ``None`` (nothing stored, no event stream).
        speed: a multiple of real time, ``None`` for as fast as possible, or ``"settings"`` (the default):
            ``settings.speed`` (0 = as fast as possible).
        bars: per account name, the bars to play instead of its file (tests).
        sleep / monotonic: the feeds' sleep and wall clock.
        live: per projectx account name, the account at ProjectX (:func:`resolve_live_accounts`).
        projectx: the ProjectX adapter's settings (default: :func:`~propdesk.sessions.live.projectx_settings`,
            credentials from the environment).

    Attributes:
        service: the :class:`DeskService`. replays: per account id, its :class:`ReplayAccount`. lives: per account id,
        its :class:`LiveAccount`. stream: the event stream (after :meth:`run` opened the journal; ``None`` without a
        journal). names: account id -> name. symbols: account id -> its contract. order: account ids in
        configuration order.

    Raises:
        ConfigError: a projectx account not resolved (or without credentials), two accounts with one id, a bad risk
            preset or balance, an unknown contract or strategy.
        DataError: an account's file cannot be loaded.
    """

    def __init__(
        self,
        settings: ServeSettings,
        *,
        journal: NodeJournal | None = None,
        speed: float | Literal["settings"] | None = "settings",
        bars: Mapping[str, BarSeries] | None = None,
        sleep: SleepFn = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        live: Mapping[str, LiveTarget] | None = None,
        projectx: ProjectXSettings | None = None,
    ) -> None:
        self.settings = settings
        self.journal = journal
        accounts, strategies = serve_plan(settings)
        pace = (settings.speed or None) if speed == "settings" else speed
        self.replays: dict[int, ReplayAccount] = {}
        self.names: dict[int, str] = {}
        self.brokers: dict[int, str] = {}
        self.reconciled: dict[int, bool] = {}
        self._ids_by_name: dict[str, int] = {}
        self.lives: dict[int, LiveAccount] = {}
        self.symbols: dict[int, str] = {}
        self.order: list[int] = []
        try:
            for account in accounts:
                if account.broker == "projectx":
                    aid = self._live(account, live, projectx, journal)
                else:
                    aid = self._replay(settings, account, pace, bars, sleep, monotonic, journal)
                self.names[aid] = account.name
                self.brokers[aid] = account.broker
                self.reconciled[aid] = False
                self._ids_by_name[account.name] = aid
                self.order.append(aid)
        except BaseException as exc:
            if journal is not None:
                journal.close_after(exc)
            raise
        record_rows = None if journal is None else journal.journal.record_rows
        self.service = DeskService(
            [(self._desk(aid), self.symbols[aid]) for aid in self.order], record_rows=record_rows
        )
        self.initial = [
            InstanceSpec(
                name=s.name,
                strategy=s.strategy,
                account_id=self._ids_by_name[s.account],
                symbol=s.symbol or "",
                params=dict(s.params),
                state=StrategyState(s.state),
            )
            for s in strategies
            if s.account in self._ids_by_name
        ]
        self.stream: EventStream | None = None
        self.signal = ""
        self.warnings: list[str] = [
            f"instance {s.name}: the service runs no account named {s.account!r}; left out"
            for s in strategies
            if s.account not in self._ids_by_name
        ]
        self.started = asyncio.Event()
        self._stopping: asyncio.Event | None = None
        self._engine: AsyncEngine | None = None
        self._t0: float | None = None
        self.wall_s = 0.0

    def _check_new(self, account: ServeAccount, aid: int) -> None:
        if aid in self.names:
            raise ConfigError(
                f"serve account {account.name!r}: account id {aid} is already the service's account "
                f"{self.names[aid]!r} (each account needs its own id)"
            )

    def _replay(  # noqa: PLR0917 - the session's construction arguments, passed on
        self,
        settings: ServeSettings,
        account: ServeAccount,
        pace: float | None,
        bars: Mapping[str, BarSeries] | None,
        sleep: SleepFn,
        monotonic: Callable[[], float],
        journal: NodeJournal | None,
    ) -> int:
        """Build the sim account ``account``; returns its id. Raises ConfigError, DataError."""
        self._check_new(account, account.account_id)
        try:
            replay = ReplayAccount(
                _options(settings, account, pace),
                bars=None if bars is None else bars.get(account.name),
                sleep=sleep,
                monotonic=monotonic,
                on_record=self._on_record_of(account.account_id),
                journal=journal,
                owns_journal=False,
                kind=SessionKind.SERVE,
            )
        except DataError as exc:
            where = "its data" if account.data is not None else "[serve] data_dir"
            reason = f"serve account {account.name!r}: {exc.reason} (check {where})"
            raise DataError(reason, path=exc.path, row=exc.row, line=exc.line) from None
        self.replays[account.account_id] = replay
        self.symbols[account.account_id] = replay.symbol
        return account.account_id

    def _live(
        self,
        account: ServeAccount,
        live: Mapping[str, LiveTarget] | None,
        projectx: ProjectXSettings | None,
        journal: NodeJournal | None,
    ) -> int:
        """Build the projectx account ``account`` (resolved in ``live``); returns its id. Raises ConfigError."""
        target = None if live is None else live.get(account.name)
        if target is None:
            raise ConfigError(
                f"serve account {account.name!r}: the ProjectX account is not resolved yet "
                "(propdesk.sessions.serve.resolve_live_accounts)"
            )
        self._check_new(account, target.account_id)
        if projectx is None:
            from propdesk.sessions.live import projectx_settings  # noqa: PLC0415 - credentials from the environment

            projectx = projectx_settings()
        acct = LiveAccount(
            LiveOptions(strategy="", risk=_risk_of(account)),
            projectx,
            account_id=target.account_id,
            account_name=target.account_name,
            balance=target.balance,
            journal=journal,
            label=f"serve account {account.name}",
        )
        self.lives[target.account_id] = acct
        self.symbols[target.account_id] = target.symbol
        return target.account_id

    def _desk(self, account_id: int) -> Desk:
        replay = self.replays.get(account_id)
        return replay.desk if replay is not None else self.lives[account_id].desk

    def account_id(self, name: str) -> int:
        """The id of the account named ``name``.

        Raises:
            KeyError: no such account.
        """
        return self._ids_by_name[name]

    # ------------------------------------------------------------------ control

    def _on_record_of(self, account_id: int) -> Callable[[object], None]:
        def on_record(_record: object) -> None:
            service = getattr(self, "service", None)
            if service is not None and self.reconciled[account_id]:
                service.resume_waiting(account_id)

        return on_record

    def stop(self, signal_name: str = "") -> None:
        """Stop every replay after the record being played (:meth:`run` then stops the nodes and closes the
        journal). ``signal_name``: the signal that asked (``SIGINT``, ``SIGTERM``), reported in the summary."""
        if signal_name and not self.signal:
            self.signal = signal_name
        for replay in self.replays.values():
            replay.interrupt()
        if self._stopping is not None:
            self._stopping.set()

    async def _run_live(self, account_id: int) -> None:
        """Restore, connect and reconcile the ProjectX account, start it, let its instances resume after each clean
        reconcile and when a lockout ends, until :meth:`stop`; then disconnect it."""
        live = self.lives[account_id]
        assert self._stopping is not None
        stopping = self._stopping
        try:
            await live.recover()
            await live.connect()
            await live.resolve_symbol(self.symbols[account_id])
            live.start()
            live.on_reconciled = lambda: self._live_ready(account_id)
            if live.reconciled:
                self._live_ready(account_id)
            else:
                log.warning("serve account %s: not reconciled; its instances wait", self.names[account_id])
            while not stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), LIVE_CHECK_S)
                if self.reconciled[account_id]:
                    self.service.resume_waiting(account_id)
        except BaseException:
            self.stop()  # a ProjectX account that cannot run stops the service (run() raises its error)
            raise
        finally:
            await live.close()

    def _live_ready(self, account_id: int) -> None:
        self.reconciled[account_id] = True
        self.service.account_ready(account_id)

    def _reconciler_of(self, account_id: int) -> Callable[[], Awaitable[None]]:
        async def reconcile() -> None:
            await self._reconcile(account_id)

        return reconcile

    async def _reconcile(self, account_id: int) -> None:
        replay = self.replays[account_id]
        first = int(replay.bars.ts_open_ns[0])

        def on_report(report: ReconcileReport) -> None:
            if not report.ok:
                log.warning("serve account %s: %s", self.names[account_id], "; ".join(report.discrepancies))

        report = await replay.built.reconciler(
            since_ns=lambda: first, on_report=on_report, label=f"serve account {self.names[account_id]}"
        ).reconcile()
        if report is not None and report.ok:
            self.reconciled[account_id] = True
            self.service.account_ready(account_id)

    async def run(self, *, handle_signals: bool = True) -> ServeSummary:
        """Open the journal's run, restore the instances, play every account until the end of its data or a stop,
        then stop the nodes, the stream and the journal; return the summary.

        With ``handle_signals`` SIGINT and SIGTERM call :meth:`stop` while the session runs (where the platform
        allows it).

        Raises:
            ConfigError: the journal cannot be opened. Exception: whatever an account's node raises (the other
                accounts are stopped first).
        """
        loop = asyncio.get_running_loop()
        installed = self._install_signals(loop) if handle_signals else []
        self._t0 = time.perf_counter()
        status = "failed"
        try:
            self._stopping = asyncio.Event()
            await self._open()
            self.started.set()
            tasks: list[asyncio.Task[object]] = [
                loop.create_task(r.play(before_play=self._reconciler_of(aid)), name=f"serve-account-{aid}")
                for aid, r in self.replays.items()
            ]
            tasks += [loop.create_task(self._run_live(aid), name=f"serve-account-{aid}") for aid in self.lives]
            try:
                results = await asyncio.gather(*tasks, return_exceptions=True)
            except asyncio.CancelledError:
                self.stop()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise
            errors = [r for r in results if isinstance(r, BaseException)]
            if errors:
                raise errors[0]
            stopped = self.signal or self._stopping.is_set() or any(r.interrupted for r in self.replays.values())
            status = "stopped" if stopped else "completed"
        finally:
            self.wall_s = time.perf_counter() - self._t0
            for sig in installed:
                loop.remove_signal_handler(sig)
            await self._close(status)
        return self.summary()

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> list[signal.Signals]:
        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self.stop, sig.name)
            except (NotImplementedError, RuntimeError, ValueError):  # Windows, or not the main thread
                continue
            installed.append(sig)
        return installed

    @property
    def engine(self) -> AsyncEngine | None:
        """The journal's database engine while the session runs (``None`` without a journal or before the start):
        what the API reads the event catch-up, instance versions and its keys from."""
        return self._engine

    async def _open(self) -> None:
        journal = self.journal
        if journal is None:
            self.warnings += self.service.restore((), self.initial)
            return
        from propdesk.node.stream import EventStream  # noqa: PLC0415 - the database only with a journal
        from propdesk.sessions.live_account import CachedHistory  # noqa: PLC0415
        from propdesk.storage.cache import BarCache  # noqa: PLC0415
        from propdesk.storage.db import create_engine_for  # noqa: PLC0415
        from propdesk.storage.instances import load_instances  # noqa: PLC0415
        from propdesk.storage.repositories import Repository  # noqa: PLC0415

        symbols = sorted(set(self.symbols.values()))
        for aid in self.lives:  # ProjectX trade ids are unique in the account: a fill reported again is one row
            journal.journal.set_account_venue(aid, "")
        await journal.open(
            kind=SessionKind.SERVE.value,
            strategy="serve",
            symbol=",".join(symbols),
            params={"accounts": {str(aid): name for aid, name in self.names.items()}},
        )
        self._engine = engine = create_engine_for(journal.url)
        for live in self.lives.values():  # warm-up bars through the journal's bar cache
            live.history = CachedHistory(BarCache(Repository(engine)), live.broker)
        stored = await load_instances(engine)
        self.warnings += self.service.restore(stored, self.initial)
        self.stream = stream = EventStream(journal.journal, engine)
        for aid in self.order:
            desk = self.service.desk(aid)
            desk.attach_stream(stream)
            await desk.start()  # its stored command results: a retried command keeps its first answer

    async def _close(self, status: str) -> None:
        if self.stream is not None:
            self.stream.close()
        for replay in self.replays.values():
            await replay.desk.close()
            replay.built.close_lockouts()
        for live in self.lives.values():
            await live.desk.close()
            live.built.close_lockouts()
        journal = self.journal
        try:
            if journal is not None:
                await journal.close(status=status)
        finally:
            if self._engine is not None:
                await self._engine.dispose()
                self._engine = None

    # ------------------------------------------------------------------ results

    def account_status(self) -> list[AccountStatus]:
        """Every account now, in configuration order (a ProjectX account: its live bars as records, the last one's
        close time as ``replay_ts_ns``; never finished)."""
        out = []
        for aid in self.order:
            summary = self.service.accounts(aid)[0]
            symbol = self.symbols[aid]
            replay = self.replays.get(aid)
            if replay is not None:
                progress = replay.progress()
                node, fills = replay.node, len(replay.fills)
                records, total, ts, finished = (
                    progress.records,
                    progress.total,
                    progress.last_ts_ns,
                    replay.feed.finished,
                )
            else:
                live = self.lives[aid]
                node, fills = live.node, len(live.fills)
                records, total, ts, finished = live.bars, None, live.last_ts_ns, False
            out.append(
                AccountStatus(
                    name=self.names[aid],
                    account_id=aid,
                    broker=self.brokers[aid],
                    symbol=symbol,
                    records=records,
                    total=total,
                    replay_ts_ns=ts,
                    balance=summary.balance_usd,
                    equity=summary.equity_usd,
                    day_net=summary.day_net_usd,
                    fills=fills,
                    open_qty=node.positions.net_qty(node.account_id, symbol),
                    trading_state=summary.trading_state,
                    reconciled=self.reconciled[aid],
                    finished=finished,
                )
            )
        return out

    def summary(self) -> ServeSummary:
        """The session as of now (final once :meth:`run` returned)."""
        journal = self.journal
        return ServeSummary(
            accounts=tuple(self.account_status()),
            instances=tuple(self.service.instances()),
            completed=not self.lives and all(r.feed.finished for r in self.replays.values()),
            signal=self.signal,
            run_id=None if journal is None else journal.run_id,
            last_seq=None if journal is None else journal.journal.committed_seq,
            wall_s=self._elapsed(),
            warnings=tuple(self.warnings),
        )

    def _elapsed(self) -> float:
        """Wall seconds since :meth:`run` started (the final figure once it returned)."""
        if self._t0 is None or self.wall_s:
            return self.wall_s
        return time.perf_counter() - self._t0
