"""Benchmark: the risk engine's cost per event and the fill -> close latency (issue 4, "Benchmark").

Two figures, both with every rule on (the ``topstep-50k-combine`` preset -- R1, R5, R11, R15, R16 -- plus a personal
configuration adding R2, R3, R4, R7, R8, R9, R10, R12, R13 and R14 with a stub hedge book; R6 is the XFA's scaling
plan, measured separately on the ``topstep-50k-xfa`` preset):

1. **Rule evaluation per event** (target < 20 us): :meth:`RuleSet.evaluate` on the live
   :class:`~propdesk.risk.state.AccountState` at the QUOTE, FILL and CLOCK points, with an open ES and MES position
   and a working protective stop. Also the whole :meth:`AccountGuard.evaluate` (rules + decisions + state + audit
   queueing), which is what a quote or a fill really costs inside the guard. Mean / p50 / p99 in microseconds.
2. **Fill -> close latency** (target p99 < 200 us): a real ``TradingNode`` + ``SimBroker`` + ``RiskEngine`` on a
   ``SimClock``. Each iteration builds a fresh node (outside the timed window) holding 1 ES and 1 MES, with R9
   ``max_consecutive_losses = 1``; a manual (foreign) sell of the ES position at a loss is filled by the simulated
   exchange, and the timed window runs from the moment that ``OrderFilled`` enters ``node.on_broker_event`` to the
   moment the enforcer's ``close_position`` reaches the broker (the breach is R9 LOCKOUT: persist the lockout, cancel
   all, close MES). The broker is a ``SimBroker`` subclass recording the ``perf_counter_ns`` of each command.

   Two conditions, both printed:

   * **live** (the figure the target is about): the node runs as a live node does before a breach. The garbage of
     building it is collected first (a long-running node has no start-up garbage left), then it trades (a strategy
     round trip, a manual round trip, the ES and MES entries: the fill path has run before, as it has in any
     session with fills) and handles ``--market-steps`` trade + quote updates of ES and MES at 4 a second (25 s of
     market data by default) before the losing fill. The garbage collector runs as configured; the number of
     windows a collection ran in is printed with the figure (so a collection that lands in the window is counted,
     not hidden).
   * **cold** (the worst case): as before the live flow, but ``gc.collect()`` runs immediately before the fill.
     The full collection walks every object of the process, so the fill path starts with its code and data evicted
     from the CPU caches (L1/L2): what a fill costs after the process did something unrelated and memory-heavy. On
     this machine it costs about 1.5x the live figure; a live node meets it only after a full collection, which the
     default thresholds make rare.

   The spec (risk-rules.md section 7.4 step 1, section 7.5) requires the lockout to be **persisted before** the
   flatten starts, so the store's write is inside the window. Three stores are measured: the in-memory store
   (a lower bound: what the core costs), the JSON file store (atomic rewrite + ``fsync``) and the journal's
   :class:`~propdesk.storage.lockouts.SqlLockoutStore` on SQLite (a committed transaction). The trade-off: a durable
   write costs a disk sync (hundreds of microseconds to milliseconds, depending on the disk), while the in-memory
   state (already HALTED before the write) keeps the gate denying new orders meanwhile; a lockout is rare (once a
   day at most), so the durable store's cost is paid once per breach, not per event.

Run: ``python benchmarks/bench_risk.py [--events 20000] [--iterations 2000] [--durable-iterations 300]
[--market-steps 100]``.
The machine's load matters (figures on a busy shared machine are noisy); p50 is the steadier figure.
"""

from __future__ import annotations

import argparse
import gc
import logging
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from propdesk.brokers.sim import SimBroker, SimConfig
from propdesk.core.bus import MessageBus
from propdesk.core.clock import SimClock
from propdesk.model.calendar import TradingCalendar, default_calendar
from propdesk.model.data import QuoteTick, TradeTick
from propdesk.model.enums import AggressorSide, Side
from propdesk.model.events import OrderFilled
from propdesk.model.identifiers import AccountId, ClientOrderId
from propdesk.model.orders import Order, OrderType, TimeInForce
from propdesk.model.price import Money, Price
from propdesk.node import NodeConfig, TradingNode
from propdesk.risk.decisions import EvalPoint, TradingState
from propdesk.risk.engine import RiskEngine
from propdesk.risk.lockouts import JsonFileLockoutStore, LockoutStore, MemoryLockoutStore
from propdesk.risk.presets import RiskConfig, load_risk_config
from propdesk.risk.rules.hedging import HedgeLeg
from propdesk.storage.lockouts import SqlLockoutStore
from propdesk.storage.migrate import upgrade

CT = ZoneInfo("America/Chicago")
ACCOUNT = AccountId(1)
ES, MES = "ESZ5", "MESZ5"

PERSONAL = """
preset = "{preset}"

[rules.firm_dll]
amount = 1500

[rules.personal_daily_loss]
amount = 1000

[rules.profit_target]
target = 2000

[rules.symbol_limits]
symbols = {{NQ = {{long_max = 2, short_max = 2}}, CL = {{blocked = true}}}}

[rules.trade_limits]
max_per_day = 1000
max_per_week = 5000

[rules.cooldown]
cooldown_min = 1
max_consecutive_losses = {streak}

[rules.session_windows]
windows = ["new_york"]

[rules.max_position_loss]
max_loss_usd = 600

[rules.stop_required]
grace_s = 60
default_stop_ticks = 8

[rules.no_hedging]
groups = [["ES", "MES"], ["NQ", "MNQ"]]
"""


class StubHedgeBook:
    """Another account of the trader holds 1 NQ (long): R14 has a leg to look at on every evaluation."""

    def other_legs(self, roots: frozenset[str]) -> Sequence[HedgeLeg]:
        """The other account's legs in ``roots``."""
        return [HedgeLeg("2", "NQZ5", "NQ", 1, 0)] if "NQ" in roots else []


class RecordingSimBroker(SimBroker):
    """A :class:`SimBroker` that records the ``perf_counter_ns`` of every ``cancel_all_orders`` / ``close_position``
    call (when it reached the broker) and the client order id of every ``submit_order``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.close_ns: list[int] = []
        self.cancel_all_ns: list[int] = []
        self.submitted: list[str] = []

    def close_position(self, symbol: str, qty: int | None = None) -> None:
        """Record the time, then close as the simulated broker does."""
        self.close_ns.append(time.perf_counter_ns())
        super().close_position(symbol, qty)

    def cancel_all_orders(self, symbol: str | None = None) -> None:
        """Record the time, then cancel as the simulated broker does."""
        self.cancel_all_ns.append(time.perf_counter_ns())
        super().cancel_all_orders(symbol)

    def submit_order(self, order: Order, bracket: Any = None) -> None:
        """Record the client order id, then submit."""
        self.submitted.append(str(order.client_order_id))
        super().submit_order(order, bracket)


def ct_ns(y: int, mo: int, d: int, h: int, mi: int = 0) -> int:
    """A Chicago wall time as UTC ns."""
    return int(datetime(y, mo, d, h, mi, tzinfo=CT).timestamp()) * 1_000_000_000


def load_config(preset: str, streak: int, tmp: Path) -> RiskConfig:
    """The all-rules configuration on ``preset`` with R9's loss streak at ``streak``."""
    path = tmp / f"risk-{preset}-{streak}.toml"
    path.write_text(PERSONAL.format(preset=preset, streak=streak), encoding="utf-8")
    return load_risk_config(None, path)


class Rig:
    """A node with the risk engine on a simulated clock and exchange, at a normal Tuesday 09:00 CT."""

    def __init__(self, config: RiskConfig, calendar: TradingCalendar, store: LockoutStore) -> None:
        self.clock = SimClock(ct_ns(2025, 10, 14, 9, 0))
        self.bus = MessageBus(timing=False)
        self.sim = RecordingSimBroker(
            self.clock,
            account_id=ACCOUNT,
            config=SimConfig(flatten_fill="last-price", calendar_check="off"),
            starting_balance=Money.of(50_000),
        )
        self.engine = RiskEngine(
            config,
            calendar=calendar,
            store=store,
            new_account=True,
            quote_stale_s=None,
            roots=("ES", "MES"),
            hedge_book=StubHedgeBook(),
        )
        self.node = TradingNode(
            clock=self.clock,
            broker=self.sim,
            config=NodeConfig(bus_timing=False),
            bus=self.bus,
            risk=self.engine.attach,
        )
        self.engine.start()
        self.node.start()
        self.fill_in_ns = 0
        self._watch = ""
        self.sim.set_event_handler(self._on_event)
        self._ext = 0

    def _on_event(self, event: object) -> None:
        if isinstance(event, OrderFilled) and event.client_order_id == self._watch:
            self.fill_in_ns = time.perf_counter_ns()
        self.node.on_broker_event(event)

    def market(self, px: float, step_ns: int = 1_000_000_000) -> None:
        """Advance the clock and print a trade at ``px`` with a one-tick quote around it (bid = px)."""
        now = self.clock.timestamp_ns() + step_ns
        self.clock.advance_to(now)
        for sym in (ES, MES):
            trade = TradeTick(sym, px, 1, AggressorSide.BUYER, now)
            self.sim.process_trade(trade)
            self.node.on_broker_event(trade)
            quote = QuoteTick(sym, px, px + 0.25, 10, 10, now)
            self.sim.process_quote(quote)
            self.node.on_broker_event(quote)

    def buy(self, symbol: str, qty: int) -> Order:
        """A strategy market order through the order manager (and the gate)."""
        om = self.node.orders
        return om.submit(om.market(symbol, Side.BUY, qty, "bench"))

    def stop(self, symbol: str, side: Side, qty: int, px: str) -> Order:
        """A protective stop through the order manager."""
        om = self.node.orders
        return om.submit(om.stop(symbol, side, qty, "bench", Price.of(px)))

    def manual(self, symbol: str, side: Side, qty: int, *, watch: bool = False) -> str:
        """A manual (foreign) market order sent straight to the simulated exchange; returns its client order id."""
        self._ext += 1
        cid = ClientOrderId(f"ext-{self._ext}")
        order = Order(
            client_order_id=cid,
            account_id=ACCOUNT,
            symbol=symbol,
            side=side,
            qty=qty,
            order_type=OrderType.MARKET,
            tif=TimeInForce.GTC,
            tag="manual",
        )
        if watch:
            self._watch = str(cid)
        self.sim.submit_order(order)
        return str(cid)


def summary(values_ns: list[int]) -> str:
    """``mean / p50 / p99 / max`` in microseconds."""
    v = sorted(values_ns)
    n = len(v)
    mean = statistics.fmean(v) / 1e3
    return (
        f"mean {mean:7.2f}  p50 {v[n // 2] / 1e3:7.2f}  p99 {v[min(n - 1, int(n * 0.99))] / 1e3:7.2f}  "
        f"max {v[-1] / 1e3:8.2f} us  (n={n})"
    )


def timed(fn: Callable[[], object], n: int) -> list[int]:
    """``n`` timings of ``fn()`` in ns (after a warm-up of n // 10 calls)."""
    for _ in range(max(1, n // 10)):
        fn()
    out: list[int] = []
    clock = time.perf_counter_ns
    for _ in range(n):
        t0 = clock()
        fn()
        out.append(clock() - t0)
    return out


def per_event(config: RiskConfig, calendar: TradingCalendar, events: int, label: str) -> None:
    """Figure 1 (see the module docstring)."""
    rig = Rig(config, calendar, MemoryLockoutStore())
    rig.market(6000.0)
    rig.buy(ES, 1)
    rig.buy(MES, 2)
    rig.market(6000.0)
    rig.stop(ES, Side.SELL, 1, "5990")
    rig.market(6000.25)
    assert rig.node.positions.net_qty(ACCOUNT, ES) == 1, "the ES buy did not fill"
    assert rig.engine.trading_state is TradingState.ACTIVE, rig.engine.guard.state_reasons
    rules, view, guard = rig.engine.rules, rig.engine.state, rig.engine.guard
    ids = ",".join(r.rule_id for r in rules.rules)
    print(f"\n[{label}] rules on: {ids}")
    for point in (EvalPoint.QUOTE, EvalPoint.FILL, EvalPoint.CLOCK):
        n_rules = sum(1 for r in rules.rules if point in r.points)
        verdict = rules.evaluate(view, point)
        assert verdict.allowed, verdict.reasons

        def rule_set(p: EvalPoint = point) -> object:
            return rules.evaluate(view, p)

        print(f"  RuleSet.evaluate {point.value:5s} ({n_rules:2d} rules): {summary(timed(rule_set, events))}")
    for point in (EvalPoint.QUOTE, EvalPoint.FILL):

        def whole_guard(p: EvalPoint = point) -> object:
            return guard.evaluate(p)

        print(f"  AccountGuard.evaluate {point.value:5s}:     {summary(timed(whole_guard, events))}")
    assert rig.engine.trading_state is TradingState.ACTIVE


class _GcCounter:
    """Counts garbage collections (``gc.callbacks``) so a timed window can tell whether one ran inside it."""

    def __init__(self) -> None:
        self.started = 0

    def __call__(self, phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            self.started += 1


def fill_to_close(
    config: RiskConfig,
    calendar: TradingCalendar,
    make_store: Callable[[int], LockoutStore],
    iterations: int,
    *,
    cold: bool,
    market_steps: int,
) -> tuple[list[int], list[int], int]:
    """Figure 2: (fill -> close_position, fill -> cancel_all) latencies in ns, one fresh node per iteration, and the
    number of windows a garbage collection ran in. ``cold``: ``gc.collect()`` right before the fill (see the module
    docstring); else the live flow."""
    closes: list[int] = []
    cancels: list[int] = []
    counter = _GcCounter()
    gc.callbacks.append(counter)
    in_window = 0
    try:
        for i in range(iterations):
            rig = Rig(config, calendar, make_store(i))
            gc.collect()  # the start-up garbage (and the previous iteration's node) is not the figure
            rig.market(6000.0)
            # a live node has traded before: a flat round trip by strategy and by hand, then the two entries
            rig.buy(ES, 1)
            rig.market(6000.0)
            rig.manual(ES, Side.SELL, 1)
            rig.market(6000.0)
            rig.buy(ES, 1)
            rig.buy(MES, 1)
            rig.market(6000.0)  # both fill at this price
            for k in range(market_steps):  # market data while the positions are held (4 updates a second)
                rig.market(6000.0 - 0.25 * (k % 2), step_ns=250_000_000)
            rig.market(5999.75)
            rig.manual(ES, Side.SELL, 1, watch=True)  # fills at the next trade: a losing round trip (R9 streak of 1)
            if cold:
                gc.collect()
            rig.sim.close_ns.clear()
            rig.sim.cancel_all_ns.clear()
            before = counter.started
            rig.market(5999.75)
            in_window += counter.started != before
            if not rig.sim.close_ns or rig.fill_in_ns == 0:
                raise RuntimeError(f"iteration {i}: no close reached the broker ({rig.engine.guard.state_reasons})")
            closes.append(rig.sim.close_ns[0] - rig.fill_in_ns)
            cancels.append(rig.sim.cancel_all_ns[0] - rig.fill_in_ns)
            if rig.node.positions.net_qty(ACCOUNT, MES) != 0 or rig.engine.trading_state is not TradingState.HALTED:
                raise RuntimeError(f"iteration {i}: the account is not flat and HALTED")
            if [b.rule_id for b in rig.engine.breaches] != ["R9"]:
                raise RuntimeError(f"iteration {i}: unexpected breaches {[b.rule_id for b in rig.engine.breaches]}")
            for lo in rig.engine.guard.lockouts:  # a shared store must not lock the next iteration's account
                rig.engine.store.clear(lo)
            rig.engine.stop()
    finally:
        gc.callbacks.remove(counter)
    return closes, cancels, in_window


def main(argv: Sequence[str] | None = None) -> None:
    """Run both figures and print them."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--events", type=int, default=20_000, help="timed evaluations per point")
    ap.add_argument("--iterations", type=int, default=2_000, help="fill -> close iterations (in-memory store)")
    ap.add_argument("--durable-iterations", type=int, default=300, help="iterations with the JSON and SQL stores")
    ap.add_argument(
        "--market-steps", type=int, default=100, help="trade + quote updates handled before the fill (live flow)"
    )
    args = ap.parse_args(argv)
    logging.disable(logging.WARNING)  # preset source warnings and the guard's breach logs are not the figure

    calendar = default_calendar()
    with tempfile.TemporaryDirectory(prefix="bench_risk_") as tmp_name:
        tmp = Path(tmp_name)
        combine = load_config("topstep-50k-combine", 50, tmp)
        per_event(combine, calendar, args.events, "topstep-50k-combine + personal")
        per_event(load_config("topstep-50k-xfa", 50, tmp), calendar, args.events, "topstep-50k-xfa + personal (R6)")

        streak1 = load_config("topstep-50k-combine", 1, tmp)
        steps = args.market_steps
        print("\nfill -> close latency (OrderFilled into node.on_broker_event -> close_position at the broker):")
        for cold in (False, True):
            closes, cancels, in_gc = fill_to_close(
                streak1, calendar, lambda _i: MemoryLockoutStore(), args.iterations, cold=cold, market_steps=steps
            )
            label = "cold (gc.collect() just before)" if cold else f"live ({steps} market updates before)"
            print(f"  in-memory store, {label}; a collection ran in {in_gc} of {len(closes)} windows:")
            print(f"    close:      {summary(closes)}")
            print(f"    cancel all: {summary(cancels)}")

        json_dir = tmp / "json"
        closes, _, in_gc = fill_to_close(
            streak1,
            calendar,
            lambda i: JsonFileLockoutStore(json_dir / f"lockouts-{i}.json"),
            args.durable_iterations,
            cold=False,
            market_steps=steps,
        )
        print(f"  JSON file store, live   close: {summary(closes)}  (atomic rewrite + fsync before the flatten)")

        url = f"sqlite:///{tmp / 'journal.sqlite3'}"
        upgrade(url)
        sql = SqlLockoutStore(url)
        try:
            closes, _, in_gc = fill_to_close(
                streak1, calendar, lambda _i: sql, args.durable_iterations, cold=False, market_steps=steps
            )
        finally:
            sql.close()
        print(f"  SQLite SQL store, live  close: {summary(closes)}  (committed transaction before the flatten)")


if __name__ == "__main__":
    main()
