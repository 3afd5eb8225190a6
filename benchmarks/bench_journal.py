"""Benchmark: journal throughput (events/s) into SQLite and PostgreSQL, and the slowdown of the ``sma_cross``
backtest on the ES file with the journal on versus off (target: under 10%, issue 5).

* Throughput: ``--events`` fills (each one ``OrderFilled``: an ``order_events`` row and a ``fills`` row, plus its
  ``orders`` row via the order lookup) are recorded as fast as the caller can, then flushed; events/s is events over
  the time from the first record to the flush returning (everything committed). SQLite is a temp file (WAL,
  ``synchronous=FULL``); PostgreSQL is a temp database on ``$PROPDESK_TEST_PG`` (default
  ``postgresql://postgres@127.0.0.1:5432/postgres``), dropped afterwards.
* Backtest: ``run_backtest`` builds its own bus and cannot take a journal, so this script builds the same node loop
  as :mod:`propdesk.backtest.engine` (clock.advance_to(close) -> sim.process_bar -> publish bar) with a
  ``TradingNode`` + ``SimBroker`` and attaches a :class:`~propdesk.storage.journal.Journal` (with the order manager
  as its order lookup) to the node's bus. The loop runs inside asyncio and yields to the writer every 8,192 bars
  (waiting if the journal reports back-pressure); the journal-on time includes the final flush. Both variants run
  the same loop; best of ``--runs``. The journaled fill count is checked against the run's fills.

Run: ``python benchmarks/bench_journal.py [--events 20000] [--runs 3] [--no-pg]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from sqlalchemy import make_url

from propdesk.backtest.cli_support import with_contract
from propdesk.backtest.engine import resolve_contract
from propdesk.brokers.sim.broker import SimBroker
from propdesk.brokers.sim.config import SimConfig
from propdesk.core.bus import MessageBus
from propdesk.core.clock import SimClock
from propdesk.data.loaders import load_bars
from propdesk.model.data import Bar, BarSeries
from propdesk.model.enums import Side
from propdesk.model.events import OrderFilled
from propdesk.model.identifiers import AccountId, ClientOrderId
from propdesk.model.price import Money, Price
from propdesk.node import NodeConfig, TradingNode, bar_topic
from propdesk.storage.db import create_engine_for
from propdesk.storage.journal import Journal
from propdesk.storage.migrate import upgrade_async
from propdesk.storage.repositories import Repository
from propdesk.strategies.registry import build_strategy

ES_FILE = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "data"
    / "es_1min_topstepx_esz5"
    / "ES_1min_20250831_20251114.csv"
)
PG_ADMIN = os.environ.get("PROPDESK_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
CHUNK = 8192


# --------------------------------------------------------------------------------------------- databases


def _pg_create() -> tuple[str, str] | None:
    try:
        conn = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
    except Exception as exc:
        print(f"PostgreSQL at {PG_ADMIN} unreachable ({type(exc).__name__}); skipping it")
        return None
    name = f"propdesk_bench_{secrets.token_hex(4)}"
    with conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(PG_ADMIN).set(drivername="postgresql+asyncpg", database=name).render_as_string(hide_password=False)
    return url, name


def _pg_drop(name: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --------------------------------------------------------------------------------------------- throughput


def _fills(n: int, offset: int) -> list[OrderFilled]:
    t0 = 1_763_000_000_000_000_000
    return [
        OrderFilled(
            client_order_id=ClientOrderId(f"b-{offset}-{i // 2}"),
            account_id=AccountId(1),
            ts_event_ns=t0 + i,
            symbol="ESZ5",
            side=Side.BUY if i % 2 == 0 else Side.SELL,
            qty=1,
            price=Price.of("6500.25"),
            fee=Money.of("1.40"),
            trade_id=f"t-{offset}-{i}",
            tag="bench",
        )
        for i in range(n)
    ]


async def throughput(url: str, n: int, runs: int) -> tuple[float, float]:
    """Best events/s and rows/s over ``runs`` runs of ``n`` fills each."""
    await upgrade_async(url)
    engine = create_engine_for(url)
    best = (0.0, 0.0)
    try:
        for r in range(runs):
            events = _fills(n, r)
            journal = Journal(engine, capacity=max(2 * n, 1000))
            await journal.start()
            t0 = time.perf_counter()
            for ev in events:
                journal.record(ev)
            await journal.flush()
            dt = time.perf_counter() - t0
            rows = journal.stats().rows
            await journal.stop()
            best = max(best, (n / dt, rows / dt))
        counts = await Repository(engine).counts()
        assert counts["fills"] == n * runs, counts
    finally:
        await engine.dispose()
    return best


# --------------------------------------------------------------------------------------------- backtest


async def backtest(bars: BarSeries, journal_url: str | None) -> tuple[float, int, int | None]:
    """Seconds for the sma_cross run (journal flush included), fills seen, fills journaled (None if off)."""
    symbol = resolve_contract(bars.symbol, bars)
    strategy = build_strategy("sma_cross", {})
    clock = SimClock(int(bars.ts_open_ns[0]))
    bus = MessageBus(timing=False)
    sim = SimBroker(clock, account_id=1, config=SimConfig(), starting_balance=Money.of("50000"))  # type: ignore[arg-type]
    node = TradingNode(clock=clock, broker=sim, config=NodeConfig(account_id=1, bus_timing=False), bus=bus)
    node.add_strategy(strategy, symbol)
    fills: list[OrderFilled] = []
    bus.subscribe("events.order.filled", fills.append, priority=-100)
    journal: Journal | None = None
    engine = None
    if journal_url is not None:
        engine = create_engine_for(journal_url)
        journal = Journal(engine, order_lookup=node.orders.order)
        journal.attach(bus)
        await journal.start()
    tf = bars.timeframe
    topic = bar_topic(symbol, tf)
    publish, process, advance = bus.publish, sim.process_bar, clock.advance_to
    cols = (
        bars.ts_open_ns.tolist(),
        bars.ts_close_ns.tolist(),
        bars.open.tolist(),
        bars.high.tolist(),
        bars.low.tolist(),
        bars.close.tolist(),
        bars.volume.tolist(),
    )
    n = len(bars)
    node.start()
    t0 = time.perf_counter()
    for lo in range(0, n, CHUNK):
        hi = min(n, lo + CHUNK)
        for to, tc, o, h, low, c, v in zip(*(col[lo:hi] for col in cols), strict=True):
            bar = Bar(symbol, tf, o, h, low, c, v, to, tc)
            advance(tc)
            process(bar)
            publish(topic, bar)
        await asyncio.sleep(0)  # the writer's turn (a live node's loop does this all the time)
        if journal is not None and journal.level:
            await journal.wait_for_capacity()
    if journal is not None:
        await journal.flush()
    dt = time.perf_counter() - t0
    node.stop()
    journaled = None
    if journal is not None and engine is not None:
        await journal.stop()
        journaled = len(await Repository(engine).fills(1))
        await engine.dispose()
    return dt, len(fills), journaled


async def main_async(args: argparse.Namespace) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="propdesk-bench-journal-"))
    pg = None if args.no_pg else _pg_create()
    try:
        print(f"journal throughput, {args.events:,} fills per run, best of {args.runs}:")
        ev, rows = await throughput(f"sqlite+aiosqlite:///{tmp / 'tp.sqlite3'}", args.events, args.runs)
        print(f"  SQLite (WAL, synchronous=FULL): {ev:>10,.0f} events/s  ({rows:,.0f} rows/s)")
        if pg is not None:
            ev, rows = await throughput(pg[0], args.events, args.runs)
            print(f"  PostgreSQL 127.0.0.1:          {ev:>10,.0f} events/s  ({rows:,.0f} rows/s)")

        if not ES_FILE.exists():
            print(f"ES file missing ({ES_FILE}); backtest comparison skipped")
            return 0
        bars = with_contract(load_bars(ES_FILE))
        print(f"\nsma_cross backtest on {ES_FILE.name} ({len(bars):,} bars), best of {args.runs}:")
        variants: list[tuple[str, str | None]] = [("journal off", None), ("journal SQLite", "sqlite")]
        if pg is not None:
            variants.append(("journal PostgreSQL", "pg"))
        best: dict[str, float] = {}
        for label, kind in variants:
            times = []
            for r in range(args.runs):
                url = None
                fresh_pg = None
                if kind == "sqlite":
                    url = f"sqlite+aiosqlite:///{tmp / f'bt{r}.sqlite3'}"
                elif kind == "pg":
                    fresh_pg = _pg_create()
                    url = None if fresh_pg is None else fresh_pg[0]
                if url is not None:
                    await upgrade_async(url)
                try:
                    dt, n_fills, journaled = await backtest(bars, url)
                finally:
                    if fresh_pg is not None:
                        _pg_drop(fresh_pg[1])
                if journaled is not None and journaled != n_fills:
                    print(f"  ERROR: {label}: {n_fills} fills but {journaled} journaled", file=sys.stderr)
                    return 1
                times.append(dt)
            best[label] = min(times)
            extra = "" if kind is None else f", {n_fills} fills journaled"
            print(f"  {label:<20} {best[label]:.3f} s  ({len(bars) / best[label]:,.0f} bars/s{extra})")
        base = best["journal off"]
        for label, seconds in best.items():
            if label != "journal off":
                print(f"  slowdown with {label[8:]}: {100 * (seconds / base - 1):+.1f}% (target < 10%)")
    finally:
        if pg is not None:
            _pg_drop(pg[1])
    return 0


def main() -> None:
    """Parse arguments and run the benchmark."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=20_000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--no-pg", action="store_true", help="skip PostgreSQL")
    raise SystemExit(asyncio.run(main_async(p.parse_args())))


if __name__ == "__main__":
    main()
