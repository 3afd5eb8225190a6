"""The journal wired into a trading node: what ``propdesk run`` and ``propdesk backtest --journal`` use.

:class:`NodeJournal` owns a :class:`~propdesk.storage.journal.Journal` with the writer subprocess
(:mod:`propdesk.storage.writer`), so the node's thread only captures records. It

* migrates the database (``propdesk db upgrade`` happens by itself) and records the **strategy run** (a
  ``strategy_runs`` row at the start with this process as its owner, a heartbeat every
  :data:`~propdesk.storage.runs.HEARTBEAT_S`, its end and status at the end, and for a backtest its
  ``backtest_results`` row); runs whose process is gone are marked aborted at the start, and a replay opened with its
  ``run_key`` continues its killed run (:mod:`propdesk.storage.runs`). Every record is journaled under the run's id
  and venue session (:meth:`propdesk.storage.journal.Journal.set_run`), so runs on one database never mix;
* with a risk engine, journals its **account snapshots** after every fill and at every session roll (with the
  closed day's end-of-day balance, which moves the trailing drawdown floor), so a restarted node gets its day
  counters and end-of-day history back (:mod:`propdesk.storage.recovery`);
* hooks into the node through :meth:`NodeJournal.node_hook` (the ``TradingNode(risk=...)`` hook): it attaches the
  journal to the node's bus (with the order manager as the order lookup) and, while the journal is behind, puts a
  :class:`JournalGate` in front of the pre-trade gate (``OrderManager.gate``; at NORMAL the risk gate alone is asked,
  so a journal that keeps up costs the order path nothing);
* maps the journal's **back-pressure** to trading: at SLOW and HALT the gate lets only orders that reduce exposure
  through (a halted journal must never trap a position); with a risk engine, the account guard also goes REDUCING
  at SLOW and HALT (``AccountGuard.set_condition``: its opening orders are canceled, the state and reason show in
  ``propdesk risk`` and the API), and NORMAL lifts it. A journal that is behind stops new exposure; it does not
  liquidate positions (the records are kept in memory, nothing is lost). A backtest never trades differently
  because of the journal: between chunks of bars it waits for the writer to catch up instead (the node slows).

Defaults (ARCHITECTURE.md principle 7, issue 5): ``propdesk run`` journals by default to the configured database
(``--journal-url``, ``$PROPDESK_DATABASE_URL``, the config file, else the SQLite file under the user's data
directory); ``--no-journal`` turns it off. ``propdesk backtest`` does not journal unless ``--journal`` (or
``--journal-url``) is given: a backtest is a study, and thousands of runs would fill the journal.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import URL

from propdesk.core.errors import ConfigError
from propdesk.model.enums import Side
from propdesk.risk.decisions import TradingState
from propdesk.storage import rows as rw
from propdesk.storage.db import create_engine_for, redact_url, resolve_url
from propdesk.storage.journal import BackpressureLevel, Journal, WriterKind
from propdesk.storage.migrate import upgrade_engine
from propdesk.storage.repositories import Repository
from propdesk.storage.runs import COMPLETED, FAILED, HEARTBEAT_S, STOPPED, RunOwner, run_token_of

if TYPE_CHECKING:
    from propdesk.execution.order_manager import OrderManager, PreTradeGate
    from propdesk.model.orders import Order
    from propdesk.model.records import AccountSnapshot
    from propdesk.node.trading_node import TradingNode

__all__ = ["JOURNAL_CONDITION", "JournalGate", "NodeJournal", "journal_url"]

log = logging.getLogger("propdesk.node.journaling")

JOURNAL_CONDITION = "journal"
"""The key of the account guard's condition the journal's back-pressure sets."""

T = TypeVar("T")


def journal_url(
    url: str | None = None,
    *,
    config_path: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> URL:
    """The journal's database URL with the async driver, highest first: ``url`` (a CLI option), ``database.url`` of
    :class:`propdesk.config.Settings` (``$PROPDESK_DATABASE__URL`` / ``$PROPDESK_DATABASE_URL``, else the config
    file's ``[database] url``, with ``$PROPDESK_DATABASE__PASSWORD`` / ``_FILE`` set in it), else the SQLite file
    under the user's data directory (:func:`propdesk.storage.db.resolve_url`). The process's settings are read
    unless ``config_path`` or ``environ`` is given.

    Raises:
        ConfigError: the chosen URL is malformed or unsupported, or the named config file is missing or malformed.
    """
    if url:
        return resolve_url(url)
    from propdesk.config import get_settings, load_settings  # noqa: PLC0415 - settings only when no URL is given

    explicit = config_path is not None or environ is not None
    db = (load_settings(config_path, environ=environ) if explicit else get_settings()).database
    configured = None if db.url is None else db.url.get_secret_value() or None
    password = None if db.password is None else db.password.get_secret_value()
    return resolve_url(configured=configured, password=password)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to the end from synchronous code (in a helper thread when a loop already runs here)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


class JournalGate:
    """The pre-trade gate that puts the journal's back-pressure in the order path, then asks ``inner`` (the risk
    gate, if any). At SLOW or HALT only an order that reduces exposure passes: ``reduce_only``, or opposite to the
    account's net position in its contract and no larger than it.

    Args:
        level: returns the journal's current level.
        inner: the gate to ask next (``None``: pass).
        net_qty: ``symbol -> signed net position`` of the account (contracts).
    """

    def __init__(
        self,
        level: Callable[[], BackpressureLevel],
        inner: PreTradeGate | None,
        net_qty: Callable[[str], int],
    ) -> None:
        self._level = level
        self.inner = inner
        self._net_qty = net_qty

    def check(self, order: Order, manager: OrderManager) -> str | None:
        """``None`` to pass, else the reason of the denial."""
        level = self._level()
        if level is not BackpressureLevel.NORMAL and not self._reduces(order):
            return f"journal back-pressure {level.name}: the database is behind, only orders that reduce exposure pass"
        return None if self.inner is None else self.inner.check(order, manager)

    def _reduces(self, order: Order) -> bool:
        if order.reduce_only:
            return True
        net = self._net_qty(order.symbol)
        return net != 0 and (net > 0) == (order.side is Side.SELL) and order.qty <= abs(net)


@dataclass(slots=True)
class _Bound:
    """A node wired to the journal: its risk engine (or ``None``), its risk gate and its :class:`JournalGate`."""

    node: TradingNode
    risk: Any
    inner_gate: PreTradeGate | None
    journal_gate: JournalGate | None


def _guard_of(risk: Any) -> Any:
    """The risk engine's account guard when it can hold a condition, else ``None`` (no engine, not started)."""
    if risk is None:
        return None
    try:
        guard = risk.guard
    except ConfigError:  # not started yet
        return None
    if not (hasattr(guard, "set_condition") and hasattr(guard, "clear_condition")):
        return None
    return guard


class NodeJournal:
    """A journal bound to a trading node, or to several (``propdesk serve``: one per account, one event sequence; see
    the module docstring).

    Args:
        url: the database URL; ``None`` resolves it (``$PROPDESK_DATABASE_URL``, the config file, the SQLite file).
        config_path: the config file for that resolution.
        capacity: the journal's back-pressure capacity (records; SLOW at half, see :class:`Journal`).
        prestart: start the writer process now, so its start-up (imports, connection: ~0.3-1 s) overlaps the
            caller's own preparation (loading the bars); :meth:`open_sync` then finds it running.
        writer: ``process`` (the default: the node's thread only captures records) or ``inline`` (rows built and
            written on the event loop's thread: one process, for a measurement or a test; no synchronous driver).
        journal_options: further :class:`Journal` keyword arguments (``max_delay_s``, ``batch_size``...).

    Attributes:
        url: the resolved URL (async driver). journal: the journal (``None`` until :meth:`open_sync` / :meth:`open`).
        run_id: the ``strategy_runs`` id of this run (after opening).
        continued: the run opened is a killed run continued (:mod:`propdesk.storage.runs`), not a new one.

    Raises:
        ConfigError: a malformed or unsupported URL, or a bad config file.
    """

    def __init__(
        self,
        url: str | URL | None = None,
        *,
        config_path: str | Path | None = None,
        capacity: int = 100_000,
        prestart: bool = False,
        writer: WriterKind = "process",
        **journal_options: Any,
    ) -> None:
        plain = url.render_as_string(hide_password=False) if isinstance(url, URL) else url
        self.url: URL = journal_url(plain, config_path=config_path)
        options: dict[str, Any] = {"migrate": True, **journal_options}  # the writer migrates
        self.journal = Journal(self.url, writer=writer, capacity=capacity, on_backpressure=self._on_level, **options)
        if prestart:
            self.journal.start_sync(wait_ready=False)
        self.run_id: str | None = None
        self.continued = False
        self._run_row: dict[str, Any] | None = None
        self._next_beat = float("inf")
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._nodes: list[_Bound] = []
        self._risks: list[Any] = []  # every risk engine given to node_hook: back-pressure maps to their guards

    @property
    def display_url(self) -> str:
        """The URL with its password hidden."""
        return redact_url(self.url)

    # ------------------------------------------------------------------ node wiring

    def node_hook(
        self, inner: Callable[[TradingNode], PreTradeGate | None] | None = None, *, risk: Any = None, bind: bool = True
    ) -> Callable[[TradingNode], PreTradeGate | None]:
        """A ``TradingNode(risk=...)`` hook: call ``inner`` (e.g. ``RiskEngine.attach``) for the gate, attach the
        journal to the node's bus and return the gate: ``inner``'s while the journal keeps up, a :class:`JournalGate`
        around it while the journal is behind (swapped on ``node.orders.gate`` at each change of level). Pass the risk
        engine as ``risk`` to map back-pressure to its guard's state (module docstring). With ``bind=False`` the
        journal is not attached yet: the caller restores the node from the journal first
        (:mod:`propdesk.node.recovery`), then calls :meth:`bind`.

        One journal may serve several nodes (``propdesk serve``: one node per account, one event sequence): call
        the hook of each; every node gets its own gate and its own back-pressure condition, and the journal captures
        from every node's bus."""
        if risk is not None:
            self._risks.append(risk)

        def hook(node: TradingNode) -> PreTradeGate | None:
            inner_gate = None if inner is None else inner(node)
            account = node.account_id
            journal_gate = JournalGate(
                lambda: self.journal.level, inner_gate, lambda symbol: node.positions.net_qty(account, symbol)
            )
            self._nodes.append(_Bound(node, risk, inner_gate, journal_gate))
            if bind:
                self.bind(node)
            return self._gate_for(self._bound_of(node), self.journal.level)

        return hook

    @property
    def nodes(self) -> tuple[TradingNode, ...]:
        """The nodes wired to this journal through :meth:`node_hook`, in the order they were built."""
        return tuple(b.node for b in self._nodes)

    def _bound_of(self, node: TradingNode) -> _Bound:
        for bound in self._nodes:
            if bound.node is node:
                return bound
        bound = _Bound(node, None, node.orders.gate, None)
        self._nodes.append(bound)
        return bound

    def bind(self, node: TradingNode) -> None:
        """Attach the journal to ``node``'s bus, with its order manager as the order lookup of its account (also
        done by the hook)."""
        bound = self._bound_of(node)
        account = int(node.account_id)
        journal = self.journal
        lookup = node.orders.by_client_id.get
        if journal.order_lookup is None:
            journal.order_lookup = lookup
        journal.order_lookups[account] = lookup
        source = self._snapshot_source(bound.risk)
        if source is not None:  # the risk engine's account state: after every fill and at every session roll
            journal.snapshot_sources[account] = source
        journal.attach(node.bus, positions=node.positions, account_id=account)
        self._place_gate(bound, journal.level)

    @staticmethod
    def _snapshot_source(risk: Any) -> Callable[[], AccountSnapshot] | None:
        """The risk engine's account snapshot (day counters, peaks, the end-of-day balances the trailing drawdown
        floor depends on) as a journal snapshot source, or ``None`` without a risk engine attached to the node."""
        if risk is None:
            return None
        try:
            state = risk.state
        except ConfigError:  # not attached to a node
            return None
        snapshot = getattr(state, "snapshot", None)
        return snapshot if callable(snapshot) else None

    @staticmethod
    def _gate_for(bound: _Bound, level: BackpressureLevel) -> PreTradeGate | None:
        """A node's gate at ``level``: the risk gate alone at NORMAL, the :class:`JournalGate` around it else."""
        return (
            bound.inner_gate if level is BackpressureLevel.NORMAL or bound.journal_gate is None else bound.journal_gate
        )

    def _place_gate(self, bound: _Bound, level: BackpressureLevel) -> None:
        """Put the :class:`JournalGate` in front of the risk gate at SLOW and HALT, take it out at NORMAL (only if
        the order manager's gate is still one of the two)."""
        if bound.journal_gate is None:
            return
        orders = bound.node.orders
        want = self._gate_for(bound, level)
        current = orders.gate
        if current is not want and (current is bound.journal_gate or current is bound.inner_gate):
            orders.gate = want

    def _on_level(self, level: BackpressureLevel) -> None:
        for bound in self._nodes:
            self._place_gate(bound, level)
        for risk in self._risks:
            guard = _guard_of(risk)
            if guard is None:
                continue
            if level is BackpressureLevel.NORMAL:
                guard.clear_condition(JOURNAL_CONDITION)
                continue
            why = self.journal.last_error or f"{self.journal.pending} records not yet committed"
            guard.set_condition(JOURNAL_CONDITION, TradingState.REDUCING, f"journal back-pressure {level.name} ({why})")

    # ------------------------------------------------------------------ runs

    def _new_row(  # noqa: PLR0917
        self,
        kind: str,
        strategy: str,
        symbol: str,
        timeframe: str,
        account_id: int | None,
        params: Mapping[str, Any],
        run_key: str | None,
    ) -> dict[str, Any]:
        """The ``strategy_runs`` row of a new run owned by this process (a new UUID, status ``running``)."""
        now = time.time_ns()
        owner = RunOwner.current()
        return rw.strategy_run_row(
            run_id=str(uuid.uuid4()),
            kind=kind,
            strategy=strategy,
            symbol=symbol,
            timeframe=timeframe,
            account_id=account_id,
            params=dict(params),
            started_ns=now,
            run_key=run_key,
            host=owner.host,
            pid=owner.pid,
            pid_start=owner.pid_start,
            heartbeat_ns=now,
        )

    def _adopt_run(self, row: dict[str, Any], continued: bool, venue_session: str | None) -> str:
        """Take ``row`` as this run's: the journal's records are stamped with its id and venue session from now on."""
        run_id = str(row["id"])
        self.run_id = run_id
        self.continued = continued
        self._run_row = row
        self.journal.set_run(run_id, run_id if venue_session is None else venue_session)
        self._next_beat = time.monotonic() + HEARTBEAT_S
        return run_id

    @property
    def run_token(self) -> str:
        """The client order id run token of this run (:func:`propdesk.storage.runs.run_token_of`): a node that takes
        it issues the same client order ids when a killed replay is continued.

        Raises:
            ConfigError: no run opened yet.
        """
        if self.run_id is None:
            raise ConfigError("the journal has no run yet: open it first")
        return run_token_of(self.run_id)

    def _beat(self) -> None:
        """Refresh the run's heartbeat through the journal (an upsert of its row by id, in order with the records)."""
        row = self._run_row
        if row is None or not self.journal.running:
            return
        row = self._run_row = {**row, "heartbeat_ns": time.time_ns()}
        self.journal.record_rows([("strategy_runs", row)])
        self._next_beat = time.monotonic() + HEARTBEAT_S

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            self._beat()

    async def _open_db(self, row: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        engine = create_engine_for(self.url)
        try:
            await upgrade_engine(engine)
            stored, continued, aborted = await Repository(engine).claim_run(row)
        finally:
            await engine.dispose()
        if aborted:
            log.warning("runs whose process is gone, marked aborted: %s", ", ".join(aborted))
        return stored, continued

    async def _close_db(self, ended_ns: int, status: str, report: Mapping[str, Any] | None) -> None:
        if self.run_id is None:
            return
        engine = create_engine_for(self.url)
        try:
            repo = Repository(engine)
            await repo.finish_run(self.run_id, ended_ns=ended_ns, status=status)
            if report is not None:
                await repo.save_backtest_result(self.run_id, report)
        finally:
            await engine.dispose()

    def open_sync(
        self,
        *,
        kind: str,
        strategy: str,
        symbol: str,
        timeframe: str = "",
        account_id: int | None = None,
        params: Mapping[str, Any] | None = None,
        venue_session: str | None = None,
    ) -> str:
        """Start the writer process (unless ``prestart`` did), which migrates the database, marks the runs whose
        process is gone aborted (:mod:`propdesk.storage.runs`) and connects; wait until it is ready and record the
        run's start through the journal (its ``strategy_runs`` row, with this process as its owner, is committed with
        the first batch). No event loop needed; nothing of the database work runs on the caller's thread (issue 5:
        with ``prestart`` it all overlaps the caller's preparation). A run opened here is a new run (a backtest): it is
        never a continued one. ``venue_session``: as :meth:`open`. Returns the run id (a new UUID).

        Raises:
            ConfigError: the database cannot be reached or migrated, or the writer cannot start.
        """
        journal = self.journal
        journal.start_sync(wait_ready=False)
        if not journal.wait_ready():
            error = journal.last_error or "it did not answer in time"
            journal.stop_sync()
            raise ConfigError(f"the journal at {self.display_url} could not start: {error}")
        row = self._new_row(kind, strategy, symbol, timeframe, account_id, params or {}, None)
        run_id = self._adopt_run(row, False, venue_session)
        journal.record_rows([("strategy_runs", row)])
        return run_id

    def wait_ready(self, timeout_s: float = 30.0) -> bool:
        """Block until the writer process is connected (after ``prestart``); False if it did not answer in time."""
        return self.journal.wait_ready(timeout_s)

    def pump_sync(self) -> None:
        """Between chunks of a synchronous run: hand the captured records to the writer (and the run's heartbeat
        every :data:`~propdesk.storage.runs.HEARTBEAT_S`); while the journal is behind (any level but NORMAL), wait
        for it (the run slows, it never trades differently)."""
        journal = self.journal
        if time.monotonic() >= self._next_beat:
            self._beat()
        journal.pump()
        if journal.level is not BackpressureLevel.NORMAL:
            journal.flush_sync()

    def close_sync(self, *, status: str = COMPLETED, report: Mapping[str, Any] | None = None) -> None:
        """Record the run's end (``status``: ``completed``, ``stopped``, ``failed``; and a backtest's ``report``,
        ``BacktestResult.to_json_dict()``) through the journal, write everything and stop the writer. The writer
        process's own exit is not waited for once everything is committed.

        Raises:
            JournalClosedError: records could not be committed in time.
        """
        recorded = self._record_end(time.time_ns(), status, report)
        try:
            self.journal.stop_sync()
        finally:
            if not recorded:  # a journal already stopped: write the end directly
                _run(self._close_db(time.time_ns(), status, report))

    def close_after(self, error: BaseException) -> None:
        """Close the journal after the run (or its preparation) raised ``error``: the records captured so far are
        committed, the run, if opened, is marked ``failed`` (``stopped`` for a ``KeyboardInterrupt``) and the writer
        process stops; a journal never opened just stops its writer. A failure of the close itself is logged, not
        raised, so the caller re-raises ``error`` itself. No event loop needed."""
        status = STOPPED if isinstance(error, KeyboardInterrupt) else FAILED
        try:
            self.close_sync(status=status)
        except Exception as exc:  # the run's own error is the one to report
            log.warning("the journal at %s did not close cleanly after a failed run: %s", self.display_url, exc)

    def _record_end(self, ended_ns: int, status: str, report: Mapping[str, Any] | None) -> bool:
        row = self._run_row
        if row is None or self.run_id is None or not self.journal.running:
            return False
        row = self._run_row = {**row, "status": status, "ended_ns": ended_ns, "heartbeat_ns": ended_ns}
        rows: list[tuple[str, dict[str, Any]]] = [("strategy_runs", row)]
        if report is not None:
            rows.append(("backtest_results", rw.backtest_result_row(self.run_id, report)))
        self.journal.record_rows(rows)
        return True

    async def open(
        self,
        *,
        kind: str,
        strategy: str,
        symbol: str,
        timeframe: str = "",
        account_id: int | None = None,
        params: Mapping[str, Any] | None = None,
        run_key: str | None = None,
        venue_session: str | None = None,
    ) -> str:
        """Open the run on the running event loop: migrate the database, mark the runs whose process is gone aborted,
        record the run's start with this process as its owner (or, with ``run_key``, continue the newest run with
        that key if it was aborted: :func:`propdesk.storage.runs.claim_run`; :attr:`continued` tells), start the
        writer and a heartbeat every :data:`~propdesk.storage.runs.HEARTBEAT_S`. Returns the run id.

        ``venue_session``: the scope the broker's trade ids are unique in besides the account
        (:meth:`Journal.set_run <propdesk.storage.journal.Journal.set_run>`): ``None`` (default) for a simulated
        exchange, whose trade ids restart in every run (the venue session is then the run id); ``""`` for a broker
        whose trade ids are unique in the account (ProjectX).

        Raises:
            ConfigError: the database cannot be reached or migrated, or the writer cannot start.
        """
        row = self._new_row(kind, strategy, symbol, timeframe, account_id, params or {}, run_key)
        stored, continued = await self._open_db(row)
        run_id = self._adopt_run(stored, continued, venue_session)
        await self.journal.start()
        self._heartbeat_task = asyncio.get_running_loop().create_task(self._heartbeats(), name="propdesk-run-heartbeat")
        return run_id

    async def close(self, *, status: str = COMPLETED, report: Mapping[str, Any] | None = None) -> None:
        """:meth:`close_sync` on the running event loop."""
        task, self._heartbeat_task = self._heartbeat_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        recorded = self._record_end(time.time_ns(), status, report)
        try:
            await self.journal.stop()
        finally:
            if not recorded:
                await self._close_db(time.time_ns(), status, report)
