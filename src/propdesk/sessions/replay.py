"""The run session behind ``propdesk run --replay``: a :class:`~propdesk.node.TradingNode` on a paced replay of real
bars through the simulated exchange, with a summary at the end.

:class:`RunSession` builds a ``SimClock``, a ``SimBroker``, the node and the strategy from :class:`RunOptions`, and
plays the bars with a :class:`~propdesk.brokers.sim.replay.ReplayFeed` at the chosen speed. The node, the strategy,
the fill rules and the order of play are those of the backtest runner (:func:`propdesk.backtest.engine.run_backtest`),
so a replay over the same bars gives the same fills and round trips at any speed (ARCHITECTURE.md, "Parity"). A
strategy on a timeframe coarser than the bars gets its bars from the node's bar feeds, completed as in a backtest.

Stopping. :meth:`RunSession.interrupt` (installed as the SIGINT handler of the event loop while the session runs, so
Ctrl-C lands there) and :meth:`RunSession.stop` stop the feed after the record being played; the node is then
stopped (strategies' ``on_stop``) and the summary built. Working orders stay as they are and an open position stays
open (it is reported with its unrealized PnL at the last price): the run ends, it does not trade out.

The trading day: the session roll of the trading calendar (:func:`propdesk.model.calendar.default_calendar`: 17:00
America/Chicago, Sunday 17:00 after a Friday, the reopen after a closure; never on a holiday) resets the portfolio's
day PnL, timed by :class:`~propdesk.risk.calendar.SessionTimers` as the risk engine's roll is, so the console's day
PnL restarts with each trading date as the risk engine's does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from propdesk.backtest.evaluation import CombineEvaluation, backtest_risk_setup, evaluation_of
from propdesk.brokers.sim.broker import SimBroker
from propdesk.brokers.sim.config import SimConfig
from propdesk.brokers.sim.replay import (
    DEFAULT_MAX_WAIT_S,
    ReplayFeed,
    ReplayProgress,
    ReplayRecord,
    SleepFn,
)
from propdesk.core import topics
from propdesk.core.clock import SimClock
from propdesk.core.errors import DataError
from propdesk.core.timefmt import iso_utc
from propdesk.core.topics import Priority
from propdesk.execution.round_trips import RoundTrip, RoundTripBuilder
from propdesk.model.calendar import CalendarError, default_calendar
from propdesk.model.data import BarSeries
from propdesk.model.events import OrderFilled
from propdesk.model.identifiers import AccountId
from propdesk.model.price import Money, Price
from propdesk.model.symbology import resolve_contract, spec_for_symbol
from propdesk.node.builder import NodeBuilder, SessionKind
from propdesk.node.desk import Desk
from propdesk.risk.calendar import SessionRolled, SessionTimers
from propdesk.risk.engine import RiskEngine
from propdesk.risk.outcomes import RiskOutcomes
from propdesk.risk.presets import RiskConfig
from propdesk.sessions.common import (
    EventFanout,
    ReplayControl,
    account_json,
    install_sigint,
    load_window_bars,
    remove_sigint,
)
from propdesk.strategies.base import Strategy
from propdesk.strategies.registry import build_strategy

if TYPE_CHECKING:
    from propdesk.node.journaling import NodeJournal

__all__ = [
    "DEFAULT_SPEED",
    "EXIT_INTERRUPTED",
    "RECENT_EVENTS",
    "ReplayAccount",
    "RunOptions",
    "RunSession",
    "RunSummary",
    "load_replay_bars",
    "run_replay",
]

log = logging.getLogger("propdesk.sessions.replay")

DEFAULT_SPEED = 3600.0
"""Default replay speed: one hour of data per wall second (a 23-hour ES session plays in about 23 s)."""

EXIT_INTERRUPTED = 130
"""Exit code of ``propdesk run`` stopped by Ctrl-C (128 + SIGINT, the shell convention); 0 at the end of the data."""

RECENT_EVENTS = 12
"""How many recent order and position events the session keeps for the console."""

EventListener = Callable[[object], None]
"""Called with each order or position event as it is published."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOptions:
    """What ``propdesk run`` plays and trades.

    Attributes:
        replay: a bar file; loaded with its preset (:func:`propdesk.data.loaders.load_bars`).
        strategy: a bundled strategy's name (``sma_cross``); params: its ``--param`` values (strings).
        speed: a multiple of real time, or ``None`` for as fast as possible.
        start_ns / end_ns: play only the bars opening in ``[start_ns, end_ns)`` (UTC ns; ``None`` = unbounded).
        symbol: the contract (``ESZ5``) or root (``ES``: the front month at the last bar); default: the file's.
        balance_usd: the simulated account's starting balance (USD).
        sim: the simulated exchange's options.
        account_id: the simulated account's id.
        max_wait_s: the longest wall wait between two bars (seconds; halts and weekends are shortened to it).
        risk: the risk configuration (``--risk`` / ``--risk-config``): the node runs the risk engine (gate, guard,
            session timers on the replayed clock); ``None``: no risk engine.
    """

    replay: Path
    strategy: str
    params: dict[str, str] = field(default_factory=dict)
    speed: float | None = DEFAULT_SPEED
    start_ns: int | None = None
    end_ns: int | None = None
    symbol: str | None = None
    balance_usd: Decimal = Decimal("50000")
    sim: SimConfig = field(default_factory=SimConfig)
    account_id: int = 1
    max_wait_s: float | None = DEFAULT_MAX_WAIT_S
    risk: RiskConfig | None = None


def load_replay_bars(options: RunOptions) -> BarSeries:
    """The bars a run plays: the file loaded by its preset (``symbol`` overriding the file's), cut to the window.

    Raises:
        DataError: the file cannot be loaded, or no bar falls in the window.
    """
    return load_window_bars(options.replay, symbol=options.symbol, start_ns=options.start_ns, end_ns=options.end_ns)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSummary:
    """What a run did.

    Attributes:
        symbol / strategy / params: what was traded and how.
        speed: the replay speed (``None`` = as fast as possible).
        records / bars / total: records and bars played, and the records there were to play.
        first_ts_ns / last_ts_ns: event time (bar close, UTC ns) of the first and last bar played.
        fills: every fill, in order; trips: the closed round trips.
        realized_pnl / fees: the account's realized PnL (gross) and fees (USD, exact); realized_net = difference.
        unrealized_pnl: the open position's PnL at the last price (USD); open_qty: its signed size (contracts);
            avg_price: its average price (points) or ``None`` when flat.
        balance / equity: the account's balance and equity at the end (USD).
        starting_balance: USD.
        completed: every bar was played; interrupted: stopped by Ctrl-C (SIGINT).
        wall_s: wall seconds the replay took; slept_s: of which spent pacing.
        risk: what the risk engine did (:class:`~propdesk.risk.outcomes.RiskOutcomes`: trading state timeline,
            lockouts, orders denied by rule, flattens), ``None`` without a risk configuration.
        evaluation: the Combine evaluation of the run so far with its reasons, ``None`` without a risk configuration.
        data_warnings: the simulated exchange's data warnings, one line per closed period of the trading calendar
            that held market data, not traded (:attr:`propdesk.brokers.sim.SimBroker.closed_periods`).
        data_warning_summary: the same folded to one line per contract and kind of closed period (text summaries).
    """

    symbol: str
    strategy: str
    params: dict[str, object]
    speed: float | None
    records: int
    bars: int
    total: int | None
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
    completed: bool
    interrupted: bool
    wall_s: float
    slept_s: float
    risk: RiskOutcomes | None = None
    evaluation: CombineEvaluation | None = None
    data_warnings: tuple[str, ...] = ()
    data_warning_summary: tuple[str, ...] = ()

    @property
    def realized_net(self) -> Money:
        """Realized PnL net of fees (USD)."""
        return self.realized_pnl - self.fees

    @property
    def wins(self) -> int:
        """Closed round trips with a positive net PnL."""
        return sum(1 for t in self.trips if t.net_pnl.cents > 0)

    @property
    def losses(self) -> int:
        """Closed round trips with a negative net PnL."""
        return sum(1 for t in self.trips if t.net_pnl.cents < 0)

    def to_json_dict(self) -> dict[str, object]:
        """The JSON object ``propdesk run --json`` prints (money as USD strings with two decimals, times as UTC ns
        and ISO 8601)."""
        trips_net = sum(t.net_pnl.cents for t in self.trips)
        return {
            "symbol": self.symbol,
            "strategy": self.strategy,
            "params": self.params,
            "speed": "max" if self.speed is None else self.speed,
            "records": self.records,
            "bars": self.bars,
            "total": self.total,
            "first_ts_ns": self.first_ts_ns,
            "last_ts_ns": self.last_ts_ns,
            "first_time_utc": None if self.first_ts_ns is None else iso_utc(self.first_ts_ns),
            "last_time_utc": None if self.last_ts_ns is None else iso_utc(self.last_ts_ns),
            "fills": len(self.fills),
            "trades": len(self.trips),
            "wins": self.wins,
            "losses": self.losses,
            "trades_net_pnl_usd": str(Money(trips_net).as_decimal()),
            **account_json(self),
            "completed": self.completed,
            "interrupted": self.interrupted,
            "wall_s": round(self.wall_s, 3),
            "slept_s": round(self.slept_s, 3),
            **({} if self.risk is None else {"risk": self.risk.to_json_dict()}),
            **({} if self.evaluation is None else {"evaluation": self.evaluation.to_json_dict()}),
            "data_warnings": list(self.data_warnings),
        }


class ReplayAccount(ReplayControl):
    """A simulated account on a paced replay of real bars: the ``SimClock``, the ``SimBroker``, the node (built by
    :class:`~propdesk.node.builder.NodeBuilder`, with the risk engine of ``options.risk``) and the
    :class:`~propdesk.brokers.sim.replay.ReplayFeed` (see the module docstring). :class:`RunSession` is one with its
    strategy; ``propdesk serve`` runs several, adding their strategies at runtime through the desk.

    Args:
        options: what to play (``options.strategy`` and ``params`` are not read here).
        bars: the bars to play (default: :func:`load_replay_bars`); the window in ``options`` is not re-applied.
        strategies: the strategies the node starts with (on the contract played).
        sleep / monotonic: the feed's sleep and wall clock (inject fakes in tests).
        on_record: called after each record is played (see :class:`ReplayFeed`).
        journal: the node's journal (see :class:`RunSession`), or ``None``.
        owns_journal: :meth:`play` opens and closes the journal's run (a :class:`RunSession`); ``False``: the journal
            is shared by several accounts (``propdesk serve``), whose owner opens and closes it; the node is only
            wired to it.
        kind: the session's kind (``SERVE`` for an account of ``propdesk serve``: its lockouts are then the
            journal's, :func:`~propdesk.node.builder.lockout_store_for`).

    Attributes:
        node, broker (the ``SimBroker``), clock, bus, feed, bars, symbol (the contract traded), built (the
        :class:`~propdesk.node.builder.BuiltNode`), risk (its risk engine or ``None``), starting_balance.
        desk: the :class:`~propdesk.node.desk.Desk` over the node (the console, the summary and ``propdesk serve``
            read and command the account through it; a journaled one takes commands once :meth:`play` or the
            journal's owner has started it).
        day_rolls: the session rolls so far (each reset the portfolio's day PnL), oldest first.
        fills: every fill so far (the desk's).

    Raises:
        ConfigError: unknown contract, or a strategy's timeframe is finer than the bars' (or not a whole multiple).
        DataError: the file cannot be loaded or the window holds no bar.
    """

    def __init__(
        self,
        options: RunOptions,
        *,
        bars: BarSeries | None = None,
        strategies: tuple[Strategy, ...] = (),
        sleep: SleepFn = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        on_record: Callable[[ReplayRecord], None] | None = None,
        journal: NodeJournal | None = None,
        owns_journal: bool = True,
        kind: SessionKind = SessionKind.REPLAY,
    ) -> None:
        self.options = options
        self.journal = journal
        self.owns_journal = owns_journal
        try:
            self.bars = bars if bars is not None else load_replay_bars(options)
            if not len(self.bars):
                raise DataError("no bars to replay", path=options.replay)
            self.symbol = resolve_contract(self.bars.symbol, int(self.bars.ts_open_ns[-1]))
            if self.bars.symbol != self.symbol:
                b = self.bars
                self.bars = BarSeries(
                    self.symbol, b.timeframe, b.ts_open_ns, b.ts_close_ns, b.open, b.high, b.low, b.close, b.volume
                )
            self.clock = SimClock(int(self.bars.ts_open_ns[0]))
            self.starting_balance = Money.of(options.balance_usd)
            sim_cfg = options.sim  # risk enforcement closes at once at the last price
            if options.risk is not None:
                sim_cfg = sim_cfg.model_copy(update={"flatten_fill": "last-price"})
            self.broker = SimBroker(
                self.clock,
                account_id=AccountId(options.account_id),
                config=sim_cfg,
                starting_balance=self.starting_balance,
            )
            risk = None
            if options.risk is not None:
                risk = backtest_risk_setup(
                    options.risk,
                    root=spec_for_symbol(self.symbol).root,
                    bar_ns=self.bars.timeframe.ns,
                    balance=self.starting_balance,
                )
            self.built = NodeBuilder(
                kind=kind,
                clock=self.clock,
                broker=self.broker,
                account_id=options.account_id,
                starting_balance_usd=options.balance_usd,
                strategies=strategies,
                symbol=self.symbol,
                bar_timeframe=self.bars.timeframe,
                risk=risk,
                journal=journal,
            ).build()
            self.node = self.built.node
            self.bus = self.built.bus
            self.risk: RiskEngine | None = self.built.risk
            self.desk = Desk(self.built)
            self.day_rolls: list[SessionRolled] = []
            self._roll_timers = SessionTimers(
                self.clock, default_calendar(), None, self._roll_day, on_error=self._no_roll, name="propdesk.run"
            )
            self._roll_timers.start()
            self.feed = ReplayFeed(
                self.clock,
                self.broker,
                self.node,
                [self.bars],
                speed=options.speed,
                max_wait_s=options.max_wait_s,
                sleep=sleep,
                monotonic=monotonic,
                on_record=on_record,
                before_record=self._before_record,
            )
            self.interrupted = False
            self.wall_s = 0.0
        except BaseException as exc:  # the journal is the run's from here: never left open by a failed start
            if journal is not None and owns_journal:
                journal.close_after(exc)
            raise
        self._t0: float | None = None

    # ------------------------------------------------------------------ events

    def _before_record(self, start_ns: int) -> None:
        """Complete the aggregated bars that ended by ``start_ns`` (see :meth:`BarFeeds.close_due`)."""
        feeds = self.node.bar_feeds
        if feeds.aggregators and start_ns >= feeds.next_end_ns():
            feeds.close_due(start_ns, self._to_bar_end)

    def _to_bar_end(self, end_ns: int) -> None:
        """The clock to an aggregated bar's end; its close is market data then (as a pre-aggregated bar's)."""
        self.clock.advance_to(end_ns)
        self.broker.note_data_time(self.symbol, end_ns)

    def _roll_day(self, event: SessionRolled) -> None:
        self.day_rolls.append(event)
        self.node.portfolio.reset_day(event.ts_ns)

    def _no_roll(self, exc: CalendarError) -> None:
        log.warning("run: the day PnL no longer resets at the session roll: %s", exc)

    @property
    def fills(self) -> list[OrderFilled]:
        """Every fill so far, oldest first (the desk's)."""
        return self.desk.fills()

    async def play(
        self,
        *,
        run: dict[str, object] | None = None,
        before_play: Callable[[], Awaitable[object]] | None = None,
    ) -> str:
        """Start the risk engine (and, when the session owns its journal, open the journal's run with ``run``'s
        fields), start the node, await ``before_play`` (``propdesk serve`` reconciles the account there), play the
        bars, stop the node (and close the run). Returns the run's status (``completed``, ``stopped`` after
        :meth:`interrupt`, ``failed``).

        Raises:
            Exception: whatever the node, the strategy or the simulated exchange raises (the node is stopped first).
        """
        from propdesk.storage.runs import COMPLETED, FAILED, STOPPED  # noqa: PLC0415 - the database only when used

        self.built.start_risk()
        journal = self.journal if self.owns_journal else None
        if journal is not None:
            await self.built.open_journal(**(run or {}))
            await self.desk.start()
        self._t0 = time.perf_counter()
        status = FAILED
        try:
            self.node.start()  # a timeframe registered in on_start may fail here: the run is then marked failed
            if before_play is not None:
                await before_play()
            await self.feed.run()
            status = COMPLETED
        except KeyboardInterrupt:
            self.interrupt()
        finally:
            assert self._t0 is not None
            self.wall_s = time.perf_counter() - self._t0
            self.built.stop()
            self._roll_timers.stop()
            if self.interrupted:
                status = STOPPED
            if journal is not None:
                await journal.close(status=status)
        return status

    def progress(self) -> ReplayProgress:
        """The feed's counters now."""
        return self.feed.progress()


class RunSession(EventFanout, ReplayAccount):
    """One replay run: the node, the simulated exchange, the strategy and the feed (see the module docstring).

    Args:
        options: what to play and trade.
        bars: the bars to play (default: :func:`load_replay_bars`); the window in ``options`` is not re-applied.
        strategy: a ready strategy (default: built from ``options.strategy`` and ``options.params``).
        sleep / monotonic: the feed's sleep and wall clock (inject fakes in tests).
        on_record: called after each record is played (see :class:`ReplayFeed`).
        journal: journal every order and position event and the run (``propdesk run`` passes one unless
            ``--no-journal``; see :mod:`propdesk.node.journaling`); ``None``: no journal. The session closes it: at the
            end of :meth:`run`, or here when the session cannot be built (:meth:`NodeJournal.close_after
            <propdesk.node.journaling.NodeJournal.close_after>`).

    Attributes:
        node, broker (the ``SimBroker``), clock, bus, feed, strategy, bars, symbol (the contract traded).
        desk: the :class:`~propdesk.node.desk.Desk` over the node: the console and the summary read it.
        recent: the last :data:`RECENT_EVENTS` order and position events, oldest first.
        day_rolls: the session rolls so far (each reset the portfolio's day PnL), oldest first.
        fills: every fill so far.

    Raises:
        ConfigError: unknown strategy or parameter, unknown contract, or the strategy's timeframe is finer than the
            bars' (or not a whole multiple of it).
        DataError: the file cannot be loaded or the window holds no bar.
    """

    def __init__(
        self,
        options: RunOptions,
        *,
        bars: BarSeries | None = None,
        strategy: Strategy | None = None,
        sleep: SleepFn = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        on_record: Callable[[ReplayRecord], None] | None = None,
        journal: NodeJournal | None = None,
    ) -> None:
        try:
            self.strategy = strategy if strategy is not None else build_strategy(options.strategy, options.params)
        except BaseException as exc:
            if journal is not None:
                journal.close_after(exc)
            raise
        super().__init__(
            options,
            bars=bars,
            strategies=(self.strategy,),
            sleep=sleep,
            monotonic=monotonic,
            on_record=on_record,
            journal=journal,
        )
        self.recent: deque[object] = deque(maxlen=RECENT_EVENTS)
        self._listeners: list[EventListener] = []
        # order events before the position manager (priority 100) publishes the position events a fill causes
        self.bus.subscribe(topics.ORDER_EVENTS, self._on_event, priority=Priority.SESSION_EVENTS)
        self.bus.subscribe(topics.POSITION_EVENTS, self._on_event, priority=Priority.SESSION_EVENTS)

    # ------------------------------------------------------------------ control

    async def run(self, *, handle_sigint: bool = True) -> RunSummary:
        """Start the node, play the bars, stop the node; return the summary.

        With ``handle_sigint`` the loop's SIGINT handler is :meth:`interrupt` while playing (where the platform
        allows it); a ``KeyboardInterrupt`` raised inside the replay is treated the same way.

        Raises:
            Exception: whatever the node, the strategy or the simulated exchange raises (the node is stopped first).
        """
        loop = asyncio.get_running_loop()
        installed = install_sigint(loop, self.interrupt, enabled=handle_sigint)
        run: dict[str, object] = {
            "strategy": self.strategy.name,
            "symbol": self.symbol,
            "timeframe": str(self.bars.timeframe),
            "account_id": self.options.account_id,
            "params": self.strategy.config.model_dump(),
            "run_key": None if self.journal is None else self.run_key(),
        }
        try:
            await self.play(run=run)
        finally:
            remove_sigint(loop, installed)
        return self.summary()

    def run_key(self) -> str:
        """The identity of this replay on a journal (:func:`propdesk.storage.runs.run_key_of`): the file (resolved
        path, size, modification time), the contract, the strategy and its parameters, the window, the account, the
        starting balance, the simulated exchange's and the risk configuration - everything its fills depend on, not
        the speed. A journaled replay whose previous run with the same key was killed continues that run
        (:mod:`propdesk.storage.runs`).

        Raises:
            DataError: the file cannot be read.
        """
        from propdesk.storage.runs import run_key_of  # noqa: PLC0415 - the database only when used

        o = self.options
        path = Path(o.replay).expanduser().resolve()
        try:
            st = path.stat()
        except OSError as exc:
            raise DataError(f"cannot read the replay file: {exc.strerror}", path=path) from None
        return run_key_of(
            {
                "kind": "replay",
                "file": str(path),
                "file_size": st.st_size,
                "file_mtime_ns": st.st_mtime_ns,
                "symbol": self.symbol,
                "strategy": self.strategy.name,
                "params": self.strategy.config.model_dump(mode="json"),
                "start_ns": o.start_ns,
                "end_ns": o.end_ns,
                "account_id": o.account_id,
                "balance_usd": str(o.balance_usd),
                "sim": o.sim.model_dump(mode="json"),
                "risk": None if o.risk is None else repr(o.risk),
            }
        )

    # ------------------------------------------------------------------ results

    def summary(self) -> RunSummary:
        """The summary as of now (final once :meth:`run` returned), read from the desk."""
        desk = self.desk
        fills = desk.fills()
        spec = spec_for_symbol(self.symbol)
        builder = RoundTripBuilder(lambda _s: spec)
        for f in fills:
            builder.add(f)
        pnl = desk.pnl()[0]
        pos = next((p for p in desk.positions() if p.symbol == self.symbol), None)
        prog = self.feed.progress()
        return RunSummary(
            symbol=self.symbol,
            strategy=self.strategy.name,
            params=self.strategy.config.model_dump(),
            speed=self.feed.speed,
            records=prog.records,
            bars=prog.bars,
            total=prog.total,
            first_ts_ns=prog.first_ts_ns,
            last_ts_ns=prog.last_ts_ns,
            fills=fills,
            trips=list(builder.closed),
            realized_pnl=pnl.realized_usd,
            fees=pnl.fees_usd,
            unrealized_pnl=pnl.unrealized_usd,
            open_qty=0 if pos is None else pos.signed_qty,
            avg_price=None if pos is None else pos.avg_price,
            balance=pnl.balance_usd,
            equity=pnl.equity_usd,
            starting_balance=pnl.starting_balance_usd,
            completed=self.feed.finished,
            interrupted=self.interrupted,
            wall_s=self.elapsed_s,
            slept_s=prog.slept_s,
            risk=desk.risk_outcomes(),
            evaluation=None if self.risk is None else evaluation_of(self.risk),
            data_warnings=tuple(self.broker.data_warnings()),
            data_warning_summary=tuple(self.broker.data_warning_summary()),
        )


def run_replay(options: RunOptions, *, bars: BarSeries | None = None) -> RunSummary:
    """Build a :class:`RunSession` and run it to the end of the data or Ctrl-C in a new event loop (no console).

    Raises:
        ConfigError, DataError: see :class:`RunSession`.
    """
    session = RunSession(options, bars=bars)
    return asyncio.run(session.run())
