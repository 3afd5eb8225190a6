"""Benchmark: journal throughput (events/s) into SQLite and PostgreSQL, and the slowdown of the ``sma_cross``
backtest on the ES file with the journal on versus off (target: under 10%, issue 5), through the real path.

* Throughput: ``--events`` fills (each ``OrderFilled`` gives an ``order_events`` row and a ``fills`` row) are
  recorded into a :class:`~propdesk.storage.journal.Journal` with the **process writer** (what the node uses) as
  fast as the caller can, then flushed; events/s is events over the time from the first record to the flush
  returning (everything committed). The inline writer (rows built and written on the core's thread) is shown for
  reference. SQLite is a temp file (WAL, ``synchronous=FULL``); PostgreSQL is a temp database on
  ``$PROPDESK_TEST_PG`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``), dropped afterwards.
* Backtest: :func:`propdesk.backtest.engine.run_backtest` itself, without and with ``journal=NodeJournal(url)``
  (``propdesk backtest --journal``): every order event, fill, position event and order state is journaled, the
  strategy run and the result are recorded. Figures, best of ``--runs``: the replay loop (``run_s``: what the
  node's thread pays) and the whole call, journal set-up (migration check, run row) and the wait for the last
  commit included. The writer process is started before the clock (``NodeJournal(prestart=True)``, as
  ``propdesk backtest --journal`` does while it loads the bars); it migrates the schema during its start-up, and
  the run's rows travel through the journal, so the call itself does no database work on the node's thread. The
  journaled fill count is checked against the run's fills. Besides the best runs' slowdown, the median of the runs'
  own ratios (each journaled run against the "off" run beside it, the order alternating) shows what a typical run
  sees.

Run: ``python benchmarks/bench_journal.py [--events 20000] [--runs 9] [--no-pg] [--no-throughput]``. The machine's
other load moves these figures a lot (2 shared cores): compare runs taken together.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from sqlalchemy import make_url

from propdesk.backtest.cli_support import with_contract
from propdesk.backtest.engine import BacktestResult, run_backtest
from propdesk.data.loaders import load_bars
from propdesk.model.data import BarSeries
from propdesk.model.enums import Side
from propdesk.model.events import OrderFilled
from propdesk.model.identifiers import AccountId, ClientOrderId
from propdesk.model.price import Money, Price
from propdesk.node.journaling import NodeJournal
from propdesk.storage.db import create_engine_for
from propdesk.storage.journal import Journal, WriterKind
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


async def throughput(url: str, n: int, runs: int, writer: WriterKind) -> tuple[float, float]:
    """Best events/s and rows/s over ``runs`` runs of ``n`` fills each."""
    await upgrade_async(url)
    best = (0.0, 0.0)
    for r in range(runs):
        events = _fills(n, r)
        journal = Journal(url, capacity=max(4 * n, 1000), writer=writer)
        await journal.start()
        t0 = time.perf_counter()
        for ev in events:
            journal.record(ev)
        await journal.flush()
        dt = time.perf_counter() - t0
        rows = journal.stats().rows
        await journal.stop()
        best = max(best, (n / dt, rows / dt))
    engine = create_engine_for(url)
    try:
        counts = await Repository(engine).counts()
    finally:
        await engine.dispose()
    assert counts["fills"] == n * runs, counts
    return best


# --------------------------------------------------------------------------------------------- backtest


def backtest(bars: BarSeries, journal_url: str | None) -> tuple[BacktestResult, float, int | None]:
    """One sma_cross run: the result, the wall time of the whole call, fills journaled (None if off)."""
    journal = None
    if journal_url is not None:  # as the CLI does: the writer starts while the bars load (here: before the clock)
        journal = NodeJournal(journal_url, prestart=True)
        journal.wait_ready()
    t0 = time.perf_counter()
    result = run_backtest(bars, build_strategy("sma_cross", {}), journal=journal)
    wall = time.perf_counter() - t0
    if journal_url is None:
        return result, wall, None

    async def count() -> int:
        engine = create_engine_for(journal_url)
        try:
            return len(await Repository(engine).fills(1))
        finally:
            await engine.dispose()

    return result, wall, asyncio.run(count())


async def main_async(args: argparse.Namespace, tmp: Path, pg: tuple[str, str] | None) -> None:
    print(f"journal throughput, {args.events:,} fills per run, best of {args.runs}:")
    for writer in ("process", "inline"):
        ev, rows = await throughput(
            f"sqlite+aiosqlite:///{tmp / f'tp-{writer}.sqlite3'}", args.events, args.runs, writer
        )
        print(f"  SQLite (WAL, synchronous=FULL), {writer:<7} writer: {ev:>9,.0f} events/s  ({rows:,.0f} rows/s)")
        if pg is not None:
            fresh = _pg_create()
            assert fresh is not None
            try:
                ev, rows = await throughput(fresh[0], args.events, args.runs, writer)
            finally:
                _pg_drop(fresh[1])
            print(f"  PostgreSQL 127.0.0.1,          {writer:<7} writer: {ev:>9,.0f} events/s  ({rows:,.0f} rows/s)")


def compare(args: argparse.Namespace, tmp: Path, pg: bool) -> int:
    if not ES_FILE.exists():
        print(f"ES file missing ({ES_FILE}); backtest comparison skipped")
        return 0
    bars = with_contract(load_bars(ES_FILE))
    print(f"\nsma_cross backtest on {ES_FILE.name} ({len(bars):,} bars), best of {args.runs}:")
    variants: list[tuple[str, str | None]] = [("journal off", None), ("journal SQLite", "sqlite")]
    if pg:
        variants.append(("journal PostgreSQL", "pg"))
    loops: dict[str, list[float]] = {label: [] for label, _kind in variants}
    walls: dict[str, list[float]] = {label: [] for label, _kind in variants}
    for r in range(args.runs):  # variants interleaved (order alternating), so a burst of load hits each alike
        for label, kind in variants if r % 2 == 0 else variants[::-1]:
            url = None
            fresh_pg = None
            if kind == "sqlite":
                url = f"sqlite:///{tmp / f'bt{r}.sqlite3'}"
            elif kind == "pg":
                fresh_pg = _pg_create()
                url = None if fresh_pg is None else fresh_pg[0]
            try:
                result, wall, journaled = backtest(bars, url)
            finally:
                if fresh_pg is not None:
                    _pg_drop(fresh_pg[1])
            if journaled is not None and journaled != len(result.fills):
                print(f"  ERROR: {label}: {len(result.fills)} fills but {journaled} journaled", file=sys.stderr)
                return 1
            loops[label].append(result.run_s)
            walls[label].append(wall)
            n_fills = len(result.fills)
    loop_best = {label: min(v) for label, v in loops.items()}
    wall_best = {label: min(v) for label, v in walls.items()}
    for label, _kind in variants:
        extra = "" if _kind is None else f", {n_fills} fills journaled"
        print(
            f"  {label:<20} loop {loop_best[label]:.3f} s ({len(bars) / loop_best[label]:,.0f} bars/s), "
            f"whole call {wall_best[label]:.3f} s{extra}"
        )
    for label, _kind in variants[1:]:
        loop = 100 * (loop_best[label] / loop_best["journal off"] - 1)
        wall = 100 * (wall_best[label] / wall_best["journal off"] - 1)
        # the median of the runs' own ratios (each run against the "off" run next to it): what a typical run sees
        loop_med = 100 * statistics.median(b / a - 1 for a, b in zip(loops["journal off"], loops[label], strict=True))
        wall_med = 100 * statistics.median(b / a - 1 for a, b in zip(walls["journal off"], walls[label], strict=True))
        print(
            f"  slowdown with {label[8:]}: loop {loop:+.1f}%, whole call {wall:+.1f}% (best runs; target < 10%); "
            f"median of paired runs: loop {loop_med:+.1f}%, whole call {wall_med:+.1f}%"
        )
    return 0


def main() -> None:
    """Parse arguments and run the benchmark."""
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--events", type=int, default=20_000)
    p.add_argument("--runs", type=int, default=9, help="paired runs (fewer move the median by +-2%%)")
    p.add_argument("--no-pg", action="store_true", help="skip PostgreSQL")
    p.add_argument("--no-throughput", action="store_true", help="only the backtest comparison")
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="propdesk-bench-journal-"))
    pg = None if args.no_pg else _pg_create()
    try:
        if not args.no_throughput:
            asyncio.run(main_async(args, tmp, pg))
        code = compare(args, tmp, pg is not None)
    finally:
        if pg is not None:
            _pg_drop(pg[1])
    raise SystemExit(code)


if __name__ == "__main__":
    main()
