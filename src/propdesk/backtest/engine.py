"""The backtest runner: one :class:`~propdesk.node.TradingNode` over historical bars on a ``SimClock`` and the
simulated exchange, as fast as the CPU allows (ARCHITECTURE.md, "Parity": the same node as a replay or live run).

Per bar, in this order: the clock moves to the bar's close (timers due by then fire), the simulated exchange
matches the bar against working orders (so a market order sent on the previous bar's close fills at this bar's open
under the ``next-open`` fill model), then the bar is published to the strategies. The mark-to-market equity curve
is computed after the run from the fills and the bar closes, in integer cents (exact).

A strategy may trade a timeframe coarser than the bars (``--param timeframe=5m`` on 1-minute data): the node's bar
feeds (:mod:`propdesk.data.aggregation.feeds`) build its bars from the replayed ones and publish each as soon as it is
complete; before a bar is matched, every aggregated bar that ended by its open is completed at its end (a missing
last minute), so an order sent on an aggregated bar's close is matched against the next finer bar, whose open is the
next aggregated bar's open. With next-open fills the trades equal a run on pre-aggregated bars; the equity curve is
marked at every replayed (finer) bar's close.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import repeat
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from propdesk.backtest.evaluation import CombineEvaluation, backtest_risk_setup, evaluation_of, risk_summary
from propdesk.backtest.metrics import EquityCurve, Metrics, compute_metrics
from propdesk.brokers.sim.broker import SimBroker
from propdesk.brokers.sim.config import SimConfig
from propdesk.core.clock import SimClock
from propdesk.core.errors import DataError
from propdesk.data.indicators.vwap import session_ids
from propdesk.execution.round_trips import RoundTrip, RoundTripBuilder
from propdesk.model.contracts import ContractSpec
from propdesk.model.data import Bar, BarSeries
from propdesk.model.events import OrderFilled
from propdesk.model.price import Money, Price
from propdesk.model.symbology import resolve_contract, spec_for_symbol
from propdesk.node import bar_topic
from propdesk.node.builder import BuiltNode, NodeBuilder, SessionKind
from propdesk.node.desk import Desk
from propdesk.risk.outcomes import RiskOutcomes
from propdesk.risk.presets import RiskConfig
from propdesk.strategies.base import Strategy

if TYPE_CHECKING:
    from propdesk.node.journaling import NodeJournal

ProgressFn = Callable[[int, int], None]
"""Called as ``progress(bars_done, bars_total)`` every few thousand bars."""

PROGRESS_EVERY = 8192


@dataclass(frozen=True, slots=True, kw_only=True)
class BacktestConfig:
    """How to run a backtest.

    Attributes:
        starting_balance_usd: the account's starting balance (USD).
        sim: the simulated exchange's options (fill model, slippage, fees ...).
        account_id: the simulated account's id.
        risk: the risk configuration (``--risk`` / ``--risk-config``): the node runs the risk engine on the replayed
            timeline and the result carries the Combine evaluation (:mod:`propdesk.backtest.evaluation`).
    """

    starting_balance_usd: Decimal = Decimal("50000")
    sim: SimConfig = field(default_factory=SimConfig)
    account_id: int = 1
    risk: RiskConfig | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BacktestResult:
    """Everything a backtest produced.

    Attributes:
        symbol: the contract traded; bars: the bars replayed; fills: every fill, in order; trips: closed round trips.
        metrics: headline figures over closed trips and the equity curve (see :mod:`propdesk.backtest.metrics`).
        equity: the mark-to-market equity curve, one point per bar (cents).
        open_qty: the position still open at the end (contracts, signed); unrealized: its PnL at the last close
            (USD, exact, gross of fees); open_fees: fees already paid on it (USD).
        run_s: wall time of the replay loop (seconds); bars_per_s: bars / run_s.
        evaluation: the Combine evaluation (with a risk configuration), else ``None``.
        risk: what the risk engine did (:func:`propdesk.backtest.evaluation.risk_summary`), else ``None``.
        outcomes: the risk engine's record (:class:`~propdesk.risk.outcomes.RiskOutcomes`) the views render, else
            ``None``.
        data_warnings: the simulated exchange's data warnings, one line per closed period of the trading calendar
            that held market data, not traded (:attr:`propdesk.brokers.sim.SimBroker.closed_periods`).
        data_warning_summary: the same folded to one line per contract and kind of closed period (text summaries).
    """

    symbol: str
    strategy: str
    params: dict[str, object]
    bars: BarSeries
    fills: list[OrderFilled]
    trips: list[RoundTrip]
    metrics: Metrics
    equity: EquityCurve
    open_qty: int
    unrealized: Money
    open_fees: Money
    starting_balance: Money
    run_s: float
    bars_per_s: float
    evaluation: CombineEvaluation | None = None
    risk: dict[str, object] | None = None
    outcomes: RiskOutcomes | None = None
    data_warnings: tuple[str, ...] = ()
    data_warning_summary: tuple[str, ...] = ()
    timeframe: str = ""

    def to_json_dict(self) -> dict[str, object]:
        """The JSON object ``propdesk backtest --json`` prints (money as strings of USD with two decimals)."""
        m = self.metrics
        return {
            "symbol": self.symbol,
            "strategy": self.strategy,
            "params": self.params,
            "bars": len(self.bars),
            "data_timeframe": str(self.bars.timeframe),
            "timeframe": self.timeframe or str(self.bars.timeframe),
            "first_bar_ns": int(self.bars.ts_open_ns[0]) if len(self.bars) else None,
            "last_bar_ns": int(self.bars.ts_open_ns[-1]) if len(self.bars) else None,
            "fills": len(self.fills),
            "trades": m.trades,
            "wins": m.wins,
            "losses": m.losses,
            "net_pnl_usd": str(m.net_pnl.as_decimal()),
            "gross_pnl_usd": str(m.gross_pnl.as_decimal()),
            "fees_usd": str(m.fees.as_decimal()),
            "win_rate": m.win_rate,
            "profit_factor": m.profit_factor,
            "avg_trade_usd": None if m.avg_trade is None else str(m.avg_trade.as_decimal()),
            "max_drawdown_usd": str(m.max_drawdown.as_decimal()),
            "sharpe": m.sharpe,
            "open_qty": self.open_qty,
            "unrealized_pnl_usd": str(self.unrealized.as_decimal()),
            "open_fees_usd": str(self.open_fees.as_decimal()),
            "starting_balance_usd": str(self.starting_balance.as_decimal()),
            "run_s": round(self.run_s, 6),
            "bars_per_s": round(self.bars_per_s, 1),
            "data_warnings": list(self.data_warnings),
            **({} if self.risk is None else {"risk": self.risk}),
            **({} if self.evaluation is None else {"evaluation": self.evaluation.to_json_dict()}),
        }


def run_backtest(
    bars: BarSeries,
    strategy: Strategy,
    config: BacktestConfig | None = None,
    *,
    progress: ProgressFn | None = None,
    journal: NodeJournal | None = None,
) -> BacktestResult:
    """Run ``strategy`` over ``bars`` through a full trading node on the simulated exchange.

    With ``journal`` (``propdesk backtest --journal``) every order and position event is journaled through its
    writer process (the last records are committed while the result is computed) and the run and its result are
    recorded; the function returns once everything is durable.

    The strategy's symbol is replaced by the contract of the bars (:func:`~propdesk.model.symbology.resolve_contract`
    at the last bar); its timeframe (the bars' when not configured) may be the bars' or any coarser one (see the
    module docstring).

    Whatever it raises, ``journal`` is closed first (:meth:`NodeJournal.close_after
    <propdesk.node.journaling.NodeJournal.close_after>`): the run, once opened, is marked failed, never left running.

    Raises:
        ConfigError: the strategy's timeframe (or one it registers) is finer than the bars' or not a whole multiple
            of it.
        ContractError: the bars' symbol is neither a known contract nor a known root.
        DataError: no bars.
    """
    try:
        result = _backtest(bars, strategy, config, progress, journal)
    except BaseException as exc:
        if journal is not None:
            journal.close_after(exc)
        raise
    if journal is not None:
        journal.close_sync(report=result.to_json_dict())
    return result


def _backtest(
    bars: BarSeries,
    strategy: Strategy,
    config: BacktestConfig | None,
    progress: ProgressFn | None,
    journal: NodeJournal | None,
) -> BacktestResult:
    """:func:`run_backtest` but for closing ``journal`` (opened here when given)."""
    cfg = config or BacktestConfig()
    if not len(bars):
        raise DataError("no bars to backtest (check --start/--end against the data's span)")
    symbol = resolve_contract(bars.symbol, int(bars.ts_open_ns[-1]))
    spec = spec_for_symbol(symbol)
    start = Money.of(cfg.starting_balance_usd)
    built = backtest_node(bars, symbol, strategy, cfg, journal)
    clock = built.node.clock
    sim = built.node.broker
    assert isinstance(clock, SimClock) and isinstance(sim, SimBroker)
    node, risk, bus = built.node, built.risk, built.bus
    desk = Desk(built)  # the result reads its fills and the open position from the desk

    n = len(bars)
    tf = bars.timeframe
    topic = bar_topic(symbol, tf)
    publish = bus.publish
    process = sim.process_bar
    advance = clock.advance_to
    cols = (
        bars.ts_open_ns.tolist(),
        bars.ts_close_ns.tolist(),
        bars.open.tolist(),
        bars.high.tolist(),
        bars.low.tolist(),
        bars.close.tolist(),
        bars.volume.tolist(),
    )
    sim.prepare(symbol)  # the trading calendar's hours are built before the timed loop
    built.start_risk()
    built.open_journal_sync(
        strategy=strategy.name,
        symbol=symbol,
        timeframe=str(tf),
        account_id=cfg.account_id,
        params=strategy.config.model_dump(),
    )
    node.start()
    feeds = node.bar_feeds if node.bar_feeds.active else None
    note_data = sim.note_data_time

    def to_bar_end(end_ns: int) -> None:
        """The clock to an aggregated bar's end; its close is market data then (as a pre-aggregated bar's)."""
        advance(end_ns)
        note_data(symbol, end_ns)

    # The replay allocates orders, fills and events that live to the end of the run; the cyclic garbage collector
    # would scan them again and again (measured ~20 ms of a ~300 ms sma_cross run, plus ~50-130 ms when a full
    # collection of the whole heap falls inside the loop). Automatic collection is paused during the loop and a
    # youngest-generation collection runs after each block instead, so short-lived cycles are still reclaimed.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    t0 = time.perf_counter()
    try:
        done = 0
        for lo in range(0, n, PROGRESS_EVERY):
            hi = min(n, lo + PROGRESS_EVERY)
            ts_o, ts_c, o, h, low, c, v = (col[lo:hi] for col in cols)
            k = hi - lo
            # Bar(symbol, tf, open, high, low, close, volume, ts_open_ns, ts_close_ns), built by map (no unpacking)
            if feeds is None:
                for bar in map(Bar, repeat(symbol, k), repeat(tf, k), o, h, low, c, v, ts_o, ts_c):
                    advance(bar.ts_close_ns)
                    process(bar)
                    publish(topic, bar)
            else:  # aggregated timeframes: complete those that ended before this bar opens, then play it
                next_end, close_due = feeds.next_end_ns, feeds.close_due
                for bar in map(Bar, repeat(symbol, k), repeat(tf, k), o, h, low, c, v, ts_o, ts_c):
                    if bar.ts_open_ns >= next_end():
                        close_due(bar.ts_open_ns, to_bar_end)
                    advance(bar.ts_close_ns)
                    process(bar)
                    publish(topic, bar)
            done = hi
            if journal is not None:  # first, so the records it hands over are not traversed by the collection
                journal.pump_sync()
            if gc_was_enabled:
                gc.collect(0)
            if progress is not None:
                progress(done, n)
        run_s = time.perf_counter() - t0
    finally:
        if gc_was_enabled:
            gc.enable()
    built.stop()

    fills = desk.fills()
    builder = RoundTripBuilder(lambda _s: spec)
    for f in fills:
        builder.add(f)
    curve = equity_curve(bars, fills, spec, start.cents)
    metrics = compute_metrics(builder.closed, curve, start.cents)
    open_qty = next((p.signed_qty for p in desk.positions() if p.symbol == symbol), 0)
    unrealized, open_fees = _open_position(builder, fills, spec, open_qty, float(bars.close[-1]))
    result = BacktestResult(
        symbol=symbol,
        strategy=strategy.name,
        params=strategy.config.model_dump(),
        bars=bars,
        fills=fills,
        trips=builder.closed,
        metrics=metrics,
        equity=curve,
        open_qty=open_qty,
        unrealized=unrealized,
        open_fees=open_fees,
        starting_balance=start,
        run_s=run_s,
        bars_per_s=n / run_s if run_s > 0 else float("inf"),
        evaluation=None if risk is None else evaluation_of(risk),
        risk=None if risk is None else risk_summary(risk),
        outcomes=None if risk is None else risk.outcomes,
        data_warnings=tuple(sim.data_warnings()),
        data_warning_summary=tuple(sim.data_warning_summary()),
        timeframe=str(strategy.timeframe or tf),
    )
    return result


def backtest_node(
    bars: BarSeries, symbol: str, strategy: Strategy, config: BacktestConfig, journal: NodeJournal | None
) -> BuiltNode:
    """The node of a backtest of ``strategy`` on ``symbol`` over ``bars``, built by
    :class:`~propdesk.node.builder.NodeBuilder` (kind ``backtest``): a ``SimClock`` at the first bar's open, the
    simulated exchange (with a risk configuration, its enforcement closes fill at once at the last price), the risk
    engine of :func:`~propdesk.backtest.evaluation.backtest_risk_setup` and ``journal`` (not yet opened).

    Raises:
        ConfigError: the strategy's timeframe is finer than the bars' or not a whole multiple of it, or a bad risk
            option.
    """
    spec = spec_for_symbol(symbol)
    clock = SimClock(int(bars.ts_open_ns[0]))
    start = Money.of(config.starting_balance_usd)
    sim_cfg = config.sim if config.risk is None else config.sim.model_copy(update={"flatten_fill": "last-price"})
    sim = SimBroker(clock, account_id=config.account_id, config=sim_cfg, starting_balance=start)  # type: ignore[arg-type]
    return NodeBuilder(
        kind=SessionKind.BACKTEST,
        clock=clock,
        broker=sim,
        account_id=config.account_id,
        starting_balance_usd=config.starting_balance_usd,
        strategies=(strategy,),
        symbol=symbol,
        bar_timeframe=bars.timeframe,
        risk=None
        if config.risk is None
        else backtest_risk_setup(config.risk, root=spec.root, bar_ns=bars.timeframe.ns, balance=start),
        journal=journal,
    ).build()


def _open_position(
    builder: RoundTripBuilder, fills: list[OrderFilled], spec: ContractSpec, open_qty: int, last_close: float
) -> tuple[Money, Money]:
    """Unrealized PnL at the last close (gross) and the fees paid on the fills of the still-open round trip."""
    if not open_qty:
        return Money(0), Money(0)
    closed_fill_fees = sum(t.fees.cents for t in builder.closed)
    all_fees = sum(f.fee.cents for f in fills)
    cash_ticks = sum(-f.signed_qty * f.price.ticks(spec.tick_size) for f in fills)
    closed_gross = sum(t.gross_pnl.cents for t in builder.closed)
    mark_ticks = Price.of(last_close).round_to_tick(spec.tick_size).ticks(spec.tick_size)
    total_gross_cents = (cash_ticks + open_qty * mark_ticks) * spec.tick_value.cents
    return Money(total_gross_cents - closed_gross), Money(all_fees - closed_fill_fees)


def equity_curve(bars: BarSeries, fills: list[OrderFilled], spec: ContractSpec, start_cents: int) -> EquityCurve:
    """Mark-to-market equity (cents) at each bar's close: start + cash flow + position x close - fees, exact.

    A fill counts from the first bar whose close is at or after the fill time. Bars are marked at their close
    (bars carry no bid/ask), rounded to the tick.
    """
    n = len(bars)
    ts_close = bars.ts_close_ns
    tick = float(spec.tick_size)
    close_ticks: npt.NDArray[np.int64] = np.rint(bars.close / tick).astype(np.int64)
    pos = np.zeros(n, dtype=np.int64)
    cash = np.zeros(n, dtype=np.int64)
    fees = np.zeros(n, dtype=np.int64)
    if fills:
        f_ts = np.fromiter((f.ts_event_ns for f in fills), dtype=np.int64, count=len(fills))
        f_q = np.fromiter((f.signed_qty for f in fills), dtype=np.int64, count=len(fills))
        f_px = np.fromiter((f.price.ticks(spec.tick_size) for f in fills), dtype=np.int64, count=len(fills))
        f_fee = np.fromiter((f.fee.cents for f in fills), dtype=np.int64, count=len(fills))
        idx = np.searchsorted(ts_close, f_ts, side="left").clip(max=n - 1)
        np.add.at(pos, idx, f_q)
        np.add.at(cash, idx, -f_q * f_px)
        np.add.at(fees, idx, f_fee)
        pos = np.cumsum(pos)
        cash = np.cumsum(cash)
        fees = np.cumsum(fees)
    equity = start_cents + (cash + pos * close_ticks) * spec.tick_value.cents - fees
    days = session_ids(bars.ts_open_ns)
    return EquityCurve(ts_close.tolist(), equity.tolist(), days.tolist())
