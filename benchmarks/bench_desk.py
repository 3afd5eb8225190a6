"""Benchmark (issue 13): a fill to a Desk event-stream subscriber, and commands per second through the Desk.

Both on a node built by :class:`~propdesk.node.builder.NodeBuilder` on the simulated exchange (``SimBroker`` on a
``SimClock`` at Tuesday 2025-10-14 09:00 CT, the ``topstep-50k-combine`` risk engine on, trade and quote ticks as the
market data, one tick a simulated second), with a :class:`~propdesk.node.desk.Desk` on it.

1. **Fill -> stream subscriber** (target p99 < 1 ms in process). Each iteration sends a market order through
   ``Desk.execute`` (buy and sell alternate), then a trade tick fills it (150 fills a trading day, then on to the
   next day's 09:00 CT, under the Combine's 200-contract daily block). The window starts when the simulated
   exchange hands the ``OrderFilled`` to the node (``node.on_broker_event``) and ends when an asyncio task iterating
   an :class:`~propdesk.node.stream.EventStream` subscription (the default lossless topics) receives that fill. The
   stream publishes an event only once the journal has committed it, so the window holds the journal's cut (at the
   end of the loop turn: the writer is idle), the writer process's transaction and its acknowledgement. Baseline in
   the same run: a plain bus subscriber of the same fill (``events.order.filled``, called inside the dispatch).
   Configurations: SQLite in ``/dev/shm`` (no disk sync: the in-process path), SQLite in the temp directory (WAL,
   ``synchronous=FULL``: a disk sync per commit), both with ``max_delay_s=0``; the same file with the journal's
   default ``max_delay_s`` (0.05 s: the longest a record waits for its cut while the writer is busy with an earlier
   batch; an idle writer gets the cut at once, so this should match ``max_delay_s=0``); PostgreSQL on
   ``$PROPDESK_TEST_PG`` (a temp database, dropped afterwards) with ``max_delay_s=0``. All with the writer process
   the node uses; for reference, ``/dev/shm`` with the inline writer (rows written from the event loop's thread, no
   pipe to another process).
2. **Commands per second**: ``--commands`` pairs of a limit buy 100 points under the market (it never fills) and its
   cancel, through ``Desk.execute`` (``SubmitOrder`` + ``CancelOrder``, each with its idempotency key: the content
   digest and the result kept) versus the same orders straight to the order manager (``om.limit`` + ``om.submit``,
   ``om.cancel``), which the desk drives; both pass the same pre-trade gate. No journal (the desk's own cost).
   Orders the gate denies for running past its wall-clock limit (fail closed under a load spike) are counted and
   printed (figure 1 sends such an order again).

Each figure is taken over ``--runs`` runs (the two variants interleaved, order alternating); printed: the median and
the range over the runs, and the ratio of the medians. The machine's load moves these figures (2 shared cores):
compare figures of one run of the script.

Run: ``python benchmarks/bench_desk.py [--runs 3] [--fills 500] [--commands 2000] [--no-pg]``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

if __package__ in (None, ""):  # run as a script: make the repo root importable (for ``benchmarks.*``)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from benchmarks.bench_journal import _pg_create, _pg_drop
from propdesk.brokers.sim import SimBroker, SimConfig
from propdesk.core import topics
from propdesk.core.clock import SimClock
from propdesk.core.topics import Priority
from propdesk.model.commands import CancelOrder, SubmitOrder
from propdesk.model.data import QuoteTick, TradeTick
from propdesk.model.enums import AggressorSide, Side
from propdesk.model.events import OrderFilled
from propdesk.model.identifiers import AccountId
from propdesk.model.orders import OrderStatus, OrderType
from propdesk.model.price import Money, Price
from propdesk.node.builder import NodeBuilder, RiskSetup, SessionKind
from propdesk.node.desk import Desk
from propdesk.node.journaling import NodeJournal
from propdesk.node.stream import EventStream
from propdesk.risk.presets import load_risk_config
from propdesk.storage.db import create_engine_for
from propdesk.storage.journal import WriterKind

SYM = "ESZ5"
PRICE = 6700.0
CT = ZoneInfo("America/Chicago")
START_NS = int(datetime(2025, 10, 14, 9, 0, tzinfo=CT).timestamp()) * 10**9
SHM = Path("/dev/shm")
GATE_TIMEOUT = "pre-trade check took"
"""The start of the gate's denial of a check that ran past its wall-clock limit (fail closed: a load spike or a
garbage collection on a busy machine); such orders are counted, not an error."""
FILLS_A_DAY = 150
"""Fills of figure 1 in one trading day (even: flat at the roll), under the 50K Combine's R15 block of 200 contracts."""


class Rig:
    """A sim node with the risk engine and a desk (see the module docstring); ``journal``: bound to the bus."""

    def __init__(self, journal: NodeJournal | None = None) -> None:
        self.clock = SimClock(START_NS)
        self.sim = SimBroker(
            self.clock,
            account_id=AccountId(1),
            config=SimConfig(calendar_check="off"),
            starting_balance=Money.of(50_000),
        )
        setup = RiskSetup(config=load_risk_config("topstep-50k-combine", None), new_account=True, roots=("ES",))
        self.built = NodeBuilder(
            kind=SessionKind.REPLAY, clock=self.clock, broker=self.sim, symbol=SYM, risk=setup, journal=journal
        ).build()
        self.node = self.built.node
        self.om = self.node.orders
        self.sim.prepare(SYM)
        self.built.start_risk()
        self.node.start()
        self.desk = Desk(self.built)
        self.fill_in_ns = 0
        self.bus_ns = 0
        self.sim.set_event_handler(self._on_event)
        self.node.bus.subscribe(topics.ORDER_FILLED, self._on_bus_fill, priority=Priority.LATE)
        self.market()

    def _on_event(self, event: object) -> None:
        if isinstance(event, OrderFilled):
            self.fill_in_ns = time.perf_counter_ns()
        self.node.on_broker_event(event)

    def _on_bus_fill(self, _fill: object) -> None:
        self.bus_ns = time.perf_counter_ns()

    def next_day(self, day: int) -> None:
        """On to 09:00 CT ``day`` trading days after the start (flat: the session roll resets the day's counts, so
        R15's 200-contract daily block is never reached)."""
        self.clock.advance_to(START_NS + day * 86_400_000_000_000)
        self.market()

    def market(self, px: float = PRICE) -> None:
        """One simulated second on: a trade at ``px`` and a one-tick quote around it."""
        now = self.clock.timestamp_ns() + 1_000_000_000
        self.clock.advance_to(now)
        trade = TradeTick(SYM, px, 1, AggressorSide.BUYER, now)
        self.sim.process_trade(trade)
        self.node.on_broker_event(trade)
        quote = QuoteTick(SYM, px, px + 0.25, 10, 10, now)
        self.sim.process_quote(quote)
        self.node.on_broker_event(quote)


# --------------------------------------------------------------------------------------------- figures


@dataclass
class Spread:
    """Median and range of one figure over the runs."""

    values: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def text(self, fmt: str = "{:,.1f}") -> str:
        return f"{fmt.format(self.median)}  [{fmt.format(min(self.values))} - {fmt.format(max(self.values))}]"


def pct(values_ns: Sequence[int], q: float) -> float:
    """The ``q`` quantile of ``values_ns`` in microseconds (nearest rank)."""
    v = sorted(values_ns)
    return v[min(len(v) - 1, int(len(v) * q))] / 1e3


# --------------------------------------------------------------------------------------------- 1. fill -> stream


async def fill_latency_run(url: str, fills: int, max_delay_s: float, writer: WriterKind) -> tuple[list[int], list[int]]:
    """One run: ``fills`` (fill -> stream subscriber, fill -> bus subscriber) latencies in ns, after a warm-up."""
    journal = NodeJournal(url, max_delay_s=max_delay_s, writer=writer)
    rig = Rig(journal)
    await rig.built.open_journal(strategy="bench", symbol=SYM)
    engine = create_engine_for(url)
    stream = EventStream(journal.journal, engine)
    rig.desk.attach_stream(stream)
    await rig.desk.start()
    sub = stream.subscribe()
    got = asyncio.Event()
    received = [0]

    async def consume() -> None:
        async for event in sub:
            if event.topic == topics.ORDER_FILLED:
                received[0] = time.perf_counter_ns()
                got.set()

    task = asyncio.create_task(consume())
    stream_ns: list[int] = []
    bus_ns: list[int] = []
    warm = max(5, fills // 10)
    try:
        for i in range(warm + fills):
            if i and i % FILLS_A_DAY == 0:
                rig.next_day(i // FILLS_A_DAY)
            side = Side.BUY if i % 2 == 0 else Side.SELL
            for attempt in range(5):  # again after a denial by the gate's time limit (a load spike)
                result = rig.desk.execute(SubmitOrder(idempotency_key=f"f{i}-{attempt}", symbol=SYM, side=side, qty=1))
                if result.accepted or not result.verdict.reason.startswith(GATE_TIMEOUT):
                    break
            if not result.accepted:
                raise RuntimeError(f"fill {i}: the order was denied: {result.verdict.reason}")
            await journal.journal.flush()  # the order's own events are out of the way: the window holds the fill
            got.clear()
            rig.market()
            await asyncio.wait_for(got.wait(), 10.0)
            if i >= warm:
                stream_ns.append(received[0] - rig.fill_in_ns)
                bus_ns.append(rig.bus_ns - rig.fill_in_ns)
    finally:
        task.cancel()
        stream.close()
        await rig.desk.close()
        await journal.close()
        await engine.dispose()
    return stream_ns, bus_ns


@dataclass
class LatencyRow:
    label: str
    stream_p50: Spread
    stream_p99: Spread
    bus_p50: Spread
    bus_p99: Spread


@dataclass(frozen=True)
class Config:
    """One journal configuration of figure 1: ``database`` gives a run's URL and its clean-up."""

    label: str
    database: Callable[[int], tuple[str, Callable[[], None]]]
    max_delay_s: float
    writer: WriterKind = "process"


def fill_latency(configs: list[Config], runs: int, fills: int, progress: Progress) -> list[LatencyRow]:
    """Figure 1 for each configuration."""
    rows: list[LatencyRow] = []
    task = progress.add_task("fill -> stream subscriber", total=len(configs) * runs)
    for config in configs:
        label, database, delay = config.label, config.database, config.max_delay_s
        n = fills if delay == 0 else max(20, fills // 5)
        per_run: list[tuple[list[int], list[int]]] = []
        for r in range(runs):
            url, cleanup = database(r)
            try:
                per_run.append(asyncio.run(fill_latency_run(url, n, delay, config.writer)))
            finally:
                cleanup()
            progress.advance(task)
        rows.append(
            LatencyRow(
                label=f"{label} (n={n})",
                stream_p50=Spread([pct(s, 0.50) for s, _ in per_run]),
                stream_p99=Spread([pct(s, 0.99) for s, _ in per_run]),
                bus_p50=Spread([pct(b, 0.50) for _, b in per_run]),
                bus_p99=Spread([pct(b, 0.99) for _, b in per_run]),
            )
        )
    return rows


# --------------------------------------------------------------------------------------------- 2. commands/s


def through_desk(rig: Rig, n: int, run: int) -> float:
    """``n`` submit + cancel pairs through ``Desk.execute``; commands per second."""
    desk, px = rig.desk, Price.of(PRICE - 100)
    t0 = time.perf_counter()
    for i in range(n):
        placed = desk.execute(
            SubmitOrder(
                idempotency_key=f"s{run}-{i}",
                symbol=SYM,
                side=Side.BUY,
                qty=1,
                order_type=OrderType.LIMIT,
                limit_price=px,
            )
        )
        desk.execute(CancelOrder(idempotency_key=f"c{run}-{i}", client_order_id=placed.client_order_ids[0]))
    return 2 * n / (time.perf_counter() - t0)


def through_order_manager(rig: Rig, n: int, _run: int) -> float:
    """The same orders straight to the order manager; commands per second."""
    om, px = rig.om, Price.of(PRICE - 100)
    t0 = time.perf_counter()
    for _ in range(n):
        order = om.submit(om.limit(SYM, Side.BUY, 1, "desk", px))
        om.cancel(order.client_order_id)
    return 2 * n / (time.perf_counter() - t0)


def commands_per_s(runs: int, n: int, progress: Progress) -> tuple[Spread, Spread, dict[str, int]]:
    """Figure 2: (desk, order manager) commands per second over ``runs`` runs, and per variant the orders the gate
    denied for running past its time limit.

    Raises:
        RuntimeError: an order ended neither canceled nor denied by the gate's time limit.
    """
    variants: list[tuple[str, Callable[[Rig, int, int], float]]] = [
        ("desk", through_desk),
        ("order manager", through_order_manager),
    ]
    rates: dict[str, list[float]] = {name: [] for name, _ in variants}
    timeouts: dict[str, int] = dict.fromkeys(rates, 0)
    task = progress.add_task("commands per second", total=runs * len(variants))
    for r in range(runs):
        for name, fn in variants if r % 2 == 0 else variants[::-1]:
            rig = Rig()
            through_order_manager(rig, max(10, n // 20), -1)  # warm-up of the order path
            rates[name].append(fn(rig, n, r))
            for o in rig.om.orders():
                if o.status is OrderStatus.DENIED and o.reason.startswith(GATE_TIMEOUT):
                    timeouts[name] += 1
                elif o.status is not OrderStatus.CANCELED:
                    raise RuntimeError(f"{name}: order {o.client_order_id} ended {o.status.value}: {o.reason}")
            progress.advance(task)
    return Spread(rates["desk"]), Spread(rates["order manager"]), timeouts


# --------------------------------------------------------------------------------------------- main


def _sqlite(folder: Path, stem: str) -> Callable[[int], tuple[str, Callable[[], None]]]:
    def make(run: int) -> tuple[str, Callable[[], None]]:
        path = folder / f"{stem}-{run}.sqlite3"
        return f"sqlite+aiosqlite:///{path}", lambda: None

    return make


def _pg(run: int) -> tuple[str, Callable[[], None]]:
    created = _pg_create()
    if created is None:
        raise RuntimeError("PostgreSQL became unreachable")
    url, name = created
    return url, lambda: _pg_drop(name)


def main(argv: Sequence[str] | None = None) -> None:
    """Run both figures and print them."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--runs", type=int, default=3, help="runs of each figure (median and range over them)")
    ap.add_argument("--fills", type=int, default=500, help="timed fills per run (max_delay_s=0; a fifth at 0.05 s)")
    ap.add_argument("--commands", type=int, default=2000, help="submit + cancel pairs per run")
    ap.add_argument("--no-pg", action="store_true", help="leave PostgreSQL out")
    args = ap.parse_args(argv)
    logging.disable(logging.WARNING)  # preset source warnings are not the figure
    try:
        _run(args)
    finally:
        logging.disable(logging.NOTSET)  # a caller in the same process (the smoke test) logs as before


def _run(args: argparse.Namespace) -> None:
    console = Console(width=160)
    with tempfile.TemporaryDirectory(prefix="bench_desk_") as tmp_name:
        tmp = Path(tmp_name)
        configs: list[Config] = []
        shm: Path | None = None
        if SHM.is_dir():
            shm = Path(tempfile.mkdtemp(prefix="bench_desk_", dir=SHM))
            configs.append(Config("SQLite in /dev/shm, writer process, max_delay_s=0", _sqlite(shm, "shm"), 0.0))
            configs.append(
                Config("SQLite in /dev/shm, writer inline, max_delay_s=0", _sqlite(shm, "inl"), 0.0, "inline")
            )
        configs.append(Config("SQLite file (fsync), writer process, max_delay_s=0", _sqlite(tmp, "disk"), 0.0))
        configs.append(
            Config("SQLite file (fsync), writer process, default max_delay_s=0.05", _sqlite(tmp, "batch"), 0.05)
        )
        if not args.no_pg and _pg_probe():
            configs.append(Config("PostgreSQL 127.0.0.1, writer process, max_delay_s=0", _pg, 0.0))
        with Progress(console=console, transient=True) as progress:
            desk_rate, om_rate, timeouts = commands_per_s(args.runs, args.commands, progress)
            print_commands(console, args, desk_rate, om_rate, timeouts)
            latency = fill_latency(configs, args.runs, args.fills, progress)
            print_latency(console, args, latency)
        if shm is not None:
            for f in shm.iterdir():
                f.unlink()
            shm.rmdir()
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    if load is not None:
        console.print(f"load average at the end: {load[0]:.2f} (1 min), {load[1]:.2f} (5 min), {os.cpu_count()} cores")


def print_commands(
    console: Console, args: argparse.Namespace, desk_rate: Spread, om_rate: Spread, timeouts: dict[str, int]
) -> None:
    """Figure 2's table and ratio."""
    cmd = Table(title=escape(f"commands per second ({args.commands:,} submit + cancel pairs a run): median [range]"))
    cmd.add_column("path")
    cmd.add_column("commands/s", justify="right")
    cmd.add_column("gate time-outs", justify="right")
    cmd.add_row("Desk.execute", desk_rate.text("{:,.0f}"), str(timeouts["desk"]))
    cmd.add_row("order manager", om_rate.text("{:,.0f}"), str(timeouts["order manager"]))
    console.print(cmd)
    console.print(
        f"desk / order manager: {desk_rate.median / om_rate.median:.2f}x "
        f"({1e6 / desk_rate.median - 1e6 / om_rate.median:,.1f} us more a command through the desk)"
    )


def print_latency(console: Console, args: argparse.Namespace, latency: list[LatencyRow]) -> None:
    """Figure 1's table and the target."""
    table = Table(title=escape(f"fill -> subscriber latency, us: median [range] over {args.runs} runs"))
    for col in ("journal", "stream p50", "stream p99", "bus p50", "bus p99", "p50 ratio", "p99 ratio"):
        table.add_column(col, justify="right" if col != "journal" else "left")
    for row in latency:
        table.add_row(
            row.label,
            row.stream_p50.text(),
            row.stream_p99.text(),
            row.bus_p50.text("{:,.2f}"),
            row.bus_p99.text("{:,.2f}"),
            f"{row.stream_p50.median / row.bus_p50.median:,.0f}x",
            f"{row.stream_p99.median / row.bus_p99.median:,.0f}x",
        )
    console.print(table)
    best = min(latency, key=lambda r: r.stream_p99.median)
    verdict = "met" if best.stream_p99.median < 1000 else "NOT met"
    console.print(f"target p99 < 1 ms in process: {verdict} (best: {best.label}, p99 {best.stream_p99.median:,.0f} us)")


def _pg_probe() -> bool:
    created = _pg_create()
    if created is None:
        return False
    _pg_drop(created[1])
    return True


if __name__ == "__main__":
    main()
