"""A restartable replay node for the crash-recovery test (``test_crash_recovery.py``); run as a script.

    python tests/integration/crash_driver.py --data ES_1min.csv --db sqlite+aiosqlite:///j.sqlite3 \\
        --broker broker.sqlite3 --out summary.json --bars 800 [--pace 0.002]

The honest model of a crash:

* **The broker is another process.** :class:`DurableSim` wraps the simulated broker and stands in for the remote
  one: after every bar it persists the whole broker (its order book, native brackets, account, fill history: a pickle
  of the ``SimBroker`` with the clock and the event handler left out) and the client order ids it received, in one
  SQLite transaction, together with the index of the bar. A crash inside a bar loses that bar's market data and
  commands together, as if the process died before its requests left it; the broker never loses a committed bar.
  Every submission is recorded (``submissions``), so the test can check that no client order id reached the broker
  twice. The broker keeps its order history (ProjectX ``Order/search``) for reconciliation.
* **The node is this process.** Its journal is the database at ``--db``, written by the real batched async
  :class:`~propdesk.storage.journal.Journal` (it may lag the broker by a few batches when the process dies).
* **Restart** (same ``--db`` and ``--broker``): the broker is loaded at its last committed bar P; the node is rebuilt
  from the journal (:func:`propdesk.storage.recovery.apply_recovery`), the journal attached, the broker's reports
  reconciled (:class:`propdesk.risk.reconcile.Reconciler`: fills, orders and cancels the journal missed, marked
  reconciled), the strategy warmed up on bars 0..P with its orders refused (strategies are deterministic functions
  of the bars and their own position), and the replay resumes at bar P+1.

The strategy keeps a native bracket working almost all the time: when flat after a bar it enters at market on the
side of the close against the mean of the last ``lookback`` closes, with stop-loss and take-profit ``ticks`` away.

The summary (JSON) gives the node's final positions, PnL and the recovery figures of this start.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import pickle
import sqlite3
import sys
from collections import deque
from pathlib import Path
from typing import Any, ClassVar

from propdesk.brokers.sim.broker import SimBroker
from propdesk.core.clock import SimClock
from propdesk.model.data import Bar, BarSeries
from propdesk.model.enums import Side
from propdesk.model.events import OrderEvent
from propdesk.model.identifiers import AccountId
from propdesk.model.orders import Order
from propdesk.model.price import Money
from propdesk.model.reports import OrderReport
from propdesk.model.symbology import resolve_contract
from propdesk.node import NodeConfig, TradingNode
from propdesk.risk.reconcile import Reconciler
from propdesk.sessions.replay import RunOptions, load_replay_bars
from propdesk.storage.db import create_engine_for
from propdesk.storage.journal import Journal
from propdesk.storage.migrate import upgrade_async
from propdesk.storage.recovery import apply_recovery, load_recovery
from propdesk.storage.repositories import Repository
from propdesk.strategies.base import Strategy, StrategyConfig

ACCOUNT = 1


class BracketEveryBar(Strategy):
    """When flat after a bar: a market entry with a native bracket, long if the close is at or above the mean of the
    last ``lookback`` closes, else short. Its state is the last closes only (rebuilt by warming up)."""

    name: ClassVar[str] = "crash_bracket"

    def __init__(self, lookback: int = 10, ticks: int = 12) -> None:
        super().__init__(StrategyConfig(symbol="ES", timeframe="1m"))
        self.lookback = lookback
        self.ticks = ticks
        self.closes: deque[float] = deque(maxlen=lookback)

    def on_bar(self, bar: Bar) -> None:
        self.closes.append(bar.close)
        if len(self.closes) < self.lookback or self.position != 0:
            return
        side = Side.BUY if bar.close * self.lookback >= sum(self.closes) else Side.SELL
        self.bracket(side, stop_loss_ticks=self.ticks, take_profit_ticks=self.ticks)


class WarmupRefusedError(Exception):
    """An order asked for while warming up (the orders of those bars were sent before the restart)."""


class WarmupContext:
    """The context a strategy warms up with: flat, no orders."""

    def __init__(self, node: TradingNode) -> None:
        self._node = node

    def now_ns(self) -> int:
        return self._node.clock.timestamp_ns()

    def tick_size(self, symbol: str) -> Any:
        return self._node.positions.spec_of(symbol).tick_size

    def position_qty(self, symbol: str, tag: str) -> int:
        return 0

    def __getattr__(self, name: str) -> Any:
        def refuse(*_a: object, **_k: object) -> Order:
            raise WarmupRefusedError(name)

        return refuse


def warm_up(strategy: Strategy, node: TradingNode, symbol: str, bars: BarSeries) -> int:
    """Feed ``bars`` to ``strategy`` (indicators and ``on_bar``) with its orders refused; returns bars fed."""
    strategy.bind(WarmupContext(node), symbol)  # type: ignore[arg-type]
    n = 0
    for bar in bars:
        with contextlib.suppress(WarmupRefusedError):
            strategy.handle_bar(bar)
        n += 1
    return n


class DurableSim:
    """The simulated broker made durable per bar (module docstring). Delegates everything to the ``SimBroker``."""

    def __init__(self, sim: SimBroker, path: Path, history: dict[str, Any] | None = None) -> None:
        self.sim = sim
        self.history: dict[str, Any] = history if history is not None else {}
        self._pending: list[tuple[str, str]] = []
        self._dirty = True
        self._downstream: Any = None
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a commit survives the process being killed
        self.db.execute("CREATE TABLE IF NOT EXISTS state (id INTEGER PRIMARY KEY, bar_index INTEGER, blob BLOB)")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS submissions (seq INTEGER PRIMARY KEY AUTOINCREMENT, cid TEXT, "
            "bar_index INTEGER, payload TEXT)"
        )

    @classmethod
    def open(cls, path: Path, clock: SimClock, make: Any) -> tuple[DurableSim, int]:
        """The broker at its last committed bar (``make()`` builds a fresh one); returns it and that bar's index
        (-1 for a fresh broker)."""
        db = sqlite3.connect(path)
        try:
            db.execute("CREATE TABLE IF NOT EXISTS state (id INTEGER PRIMARY KEY, bar_index INTEGER, blob BLOB)")
            row = db.execute("SELECT bar_index, blob FROM state WHERE id = 1").fetchone()
        finally:
            db.close()
        if row is None:
            return cls(make(), path), -1

        class _Loader(pickle.Unpickler):
            def persistent_load(self, pid: Any) -> Any:
                return clock if pid == "clock" else [] if pid == "fills" else _drop

        sim, history = _Loader(io.BytesIO(row[1])).load()
        return cls(sim, path, history), int(row[0])

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sim, name)

    def set_event_handler(self, handler: Any) -> None:
        self._downstream = handler
        self.sim.set_event_handler(self._on_event)

    def _on_event(self, event: object) -> None:
        self._dirty = True
        if isinstance(event, OrderEvent):
            rec = self.sim._orders.get(event.client_order_id)
            if rec is not None:
                self.history[str(event.client_order_id)] = rec
        self._downstream(event)

    def submit_order(self, order: Order, bracket: Any = None) -> None:
        payload = json.dumps([order.symbol, int(order.side), order.qty, order.order_type.value])
        self._pending.append((str(order.client_order_id), payload))
        self._dirty = True
        self.sim.submit_order(order, bracket)

    async def order_history(self, since_ns: int) -> list[OrderReport]:
        return [self.sim._order_report(r) for r in self.history.values() if r.ts_last_ns >= since_ns]

    def commit(self, bar_index: int) -> None:
        """Persist the broker as of the end of bar ``bar_index`` and the submissions since the last commit.

        The pickle is taken only when an order event or a command happened since the last one; otherwise only the
        bar index moves (what else changes on a quiet bar, the last price, is set again by the next bar before any
        order can use it). The fill reports cache (``_fills``) is left out: it is rebuilt from the fill rows."""
        cur = self.db.cursor()
        cur.execute("BEGIN")
        cur.executemany(
            "INSERT INTO submissions (cid, bar_index, payload) VALUES (?, ?, ?)",
            [(c, bar_index, pl) for c, pl in self._pending],
        )
        if self._dirty:
            buf = io.BytesIO()
            p = pickle.Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL)
            sim = self.sim
            skip = {id(sim._clock): "clock", id(sim._handler): "handler", id(sim._fills): "fills"}
            p.persistent_id = lambda obj: skip.get(id(obj))  # type: ignore[method-assign]
            p.dump((sim, self.history))
            cur.execute(
                "INSERT OR REPLACE INTO state (id, bar_index, blob) VALUES (1, ?, ?)", (bar_index, buf.getvalue())
            )
        else:
            cur.execute("UPDATE state SET bar_index = ? WHERE id = 1", (bar_index,))
        cur.execute("COMMIT")
        self._pending.clear()
        self._dirty = False


def _drop(_event: object) -> None:
    return None


def replay_bars(data: Path, n: int, start: str) -> tuple[BarSeries, str]:
    """``n`` one-minute bars of ``data`` from ``start`` (ISO UTC), with the contract resolved."""
    from datetime import datetime  # noqa: PLC0415

    start_ns = int(datetime.fromisoformat(start).timestamp()) * 1_000_000_000
    bars = load_replay_bars(RunOptions(replay=data, strategy="sma_cross", start_ns=start_ns))
    bars = bars.between(None, int(bars.ts_open_ns[min(n, len(bars) - 1)]))
    symbol = resolve_contract(bars.symbol, int(bars.ts_open_ns[-1]))
    if bars.symbol != symbol:
        b = bars
        bars = BarSeries(symbol, b.timeframe, b.ts_open_ns, b.ts_close_ns, b.open, b.high, b.low, b.close, b.volume)
    return bars, symbol


async def run(args: argparse.Namespace) -> dict[str, Any]:
    bars, symbol = replay_bars(Path(args.data), args.bars, args.start)
    strategy = BracketEveryBar()
    first = int(bars.ts_open_ns[0])
    clock = SimClock(first)

    def make() -> SimBroker:
        return SimBroker(clock, account_id=AccountId(ACCOUNT), starting_balance=Money.of(50_000))

    broker, done = DurableSim.open(Path(args.broker), clock, make)
    if done >= 0:
        clock.advance_to(int(bars.ts_close_ns[done]))
    node = TradingNode(
        clock=clock,
        broker=broker,  # type: ignore[arg-type]
        config=NodeConfig(account_id=ACCOUNT, bus_timing=False),
    )
    await upgrade_async(args.db)
    engine = create_engine_for(args.db)
    repo = Repository(engine)
    recovered = await load_recovery(repo, ACCOUNT, clock.timestamp_ns())
    recovery = apply_recovery(node, recovered)
    journal = Journal(engine, order_lookup=node.orders.order)
    journal.attach(node.bus)
    await journal.start()
    reconciler = Reconciler(
        node.orders,
        node.positions,
        broker,  # type: ignore[arg-type]
        account_id=AccountId(ACCOUNT),
        emit=node.on_broker_event,
        clock=clock.timestamp_ns,
        bus=node.bus,
        attribute=lambda _cid, sym: strategy.tag if sym == symbol else None,
    )
    rec = await reconciler.reconcile(recovered.last_fill_ts_ns or 0, done=recovered.done_order_ids)
    warmed = warm_up(
        strategy, node, symbol, bars.between(None, int(bars.ts_open_ns[done]) + 1) if done >= 0 else bars.between(0, 0)
    )
    node.add_strategy(strategy, symbol)
    node.start()
    for j in range(done + 1, len(bars)):
        bar = bars.bar(j)
        clock.advance_to(bar.ts_close_ns)
        broker.process_bar(bar)
        node.publish_bar(bar)
        broker.commit(j)
        await asyncio.sleep(args.pace)
    node.stop()
    await journal.flush()
    await journal.stop()
    await engine.dispose()
    pos = node.positions.position(node.account_id, symbol)
    return {
        "symbol": symbol,
        "bars": len(bars),
        "resumed_after_bar": done,
        "warmed_up": warmed,
        "recovery": {
            "orders_restored": recovery.orders_restored,
            "fills_replayed": recovery.fills_replayed,
            "discrepancies": recovery.discrepancies,
        },
        "reconcile": {
            "adopted": [str(c) for c in rec.adopted],
            "fills": rec.fills,
            "closed": [str(c) for c in rec.closed],
            "events": len(rec.events),
            "discrepancies": rec.discrepancies,
        },
        "position": None
        if pos is None
        else {
            "qty": pos.signed_qty,
            "avg_price": None if pos.avg_price is None else str(pos.avg_price),
            "realized_usd": str(pos.realized_pnl.as_decimal()),
            "fees_usd": str(pos.fees.as_decimal()),
        },
        "strategy_qty": node.strategy_qty(symbol, strategy.tag),
        "realized_usd": str(node.portfolio.realized_pnl().as_decimal()),
        "fees_usd": str(node.portfolio.fees().as_decimal()),
        "broker_balance_usd": str(broker.sim.account.balance.as_decimal()),
        "open_orders": sorted(str(o.client_order_id) for o in node.orders.open_orders()),
        "duplicate_fills": node.positions.duplicate_fills,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--broker", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--bars", type=int, default=800)
    ap.add_argument("--start", default="2025-10-14T00:00:00+00:00")
    ap.add_argument("--pace", type=float, default=0.0)
    args = ap.parse_args(argv)
    summary = asyncio.run(run(args))
    Path(args.out).write_text(json.dumps(summary, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
