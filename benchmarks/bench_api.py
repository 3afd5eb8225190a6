"""Benchmark (issue 14): propdesk's API served by :class:`~propdesk.api.server.ApiServer` (uvicorn in the desk's event
loop) on 127.0.0.1, over the simulated account of :class:`benchmarks.bench_desk.Rig` (SimBroker, the
``topstep-50k-combine`` risk engine, a Desk, the journal's writer process on SQLite in ``/dev/shm`` with
``max_delay_s=0``, its event stream).

1. **Fill -> WebSocket client** (target p99 < 5 ms; the seed's adapter delivers fills in ~1,100 ms on average). Each
   iteration sends a market order through the DeskService, waits for the journal, then a trade tick fills it. The
   window starts when the simulated exchange hands the ``OrderFilled`` to the node and ends when a WebSocket client
   (the ``websockets`` library, same process, over the loopback TCP socket) has parsed the ``filled`` message. It holds
   the journal's commit in the writer process, the stream, the JSON envelope and the socket.
2. **REST**: ``GET /api/v1/accounts`` with a read key, over loopback with httpx (keep-alive): back to back
   (requests/s, p50, p99), and paced at 200 requests/s (p50, p99: the latency a dashboard polling at that rate sees).
3. **100 WebSocket clients**: 100 sockets subscribed to ``orders`` and ``positions`` while ``--burst`` fills are
   made; each client must receive every journaled event of those topics exactly once, in order (checked against the
   ``events`` table); printed: the clients with any loss or duplicate (0 expected) and the time until the last
   client has the last event.

The client and the server share one process and the machine's 2 cores with everything else: compare figures of one
run of the script.

Run: ``python benchmarks/bench_api.py [--fills 300] [--requests 2000] [--burst 50] [--clients 100]`` (``--burst``
rounded up to even: flat at the end).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repo root importable (for ``benchmarks.*``)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from rich.console import Console
from websockets.asyncio.client import ClientConnection, connect

from benchmarks.bench_desk import GATE_TIMEOUT, SHM, SYM, Rig, pct
from propdesk.api.app import create_app
from propdesk.api.auth import Authenticator
from propdesk.api.keys import ApiKeyStore, Scope
from propdesk.api.ratelimit import RateLimiter
from propdesk.api.server import ApiServer
from propdesk.core.bus import topic_matches
from propdesk.model.commands import SubmitOrder
from propdesk.model.enums import Side
from propdesk.node.journaling import NodeJournal
from propdesk.node.service import DeskService
from propdesk.node.stream import EventStream
from propdesk.storage.db import create_engine_for
from propdesk.storage.repositories import Repository

TOPICS = ["orders", "positions"]
PATTERNS = ("events.order.**", "events.position.**")


@dataclass
class Served:
    rig: Rig
    journal: NodeJournal
    service: DeskService
    server: ApiServer
    token: str
    authenticator: Authenticator
    engine_url: str


@asynccontextmanager
async def served(url: str) -> AsyncIterator[Served]:
    """The rig's desk behind the API on a free loopback port, with a read key."""
    journal = NodeJournal(url, max_delay_s=0.0)
    rig = Rig(journal)
    await rig.built.open_journal(strategy="bench-api", symbol=SYM)
    engine = create_engine_for(url)
    stream = EventStream(journal.journal, engine)
    rig.desk.attach_stream(stream)
    await rig.desk.start()
    service = DeskService([(rig.desk, SYM)])
    authenticator = Authenticator(ApiKeyStore(engine), RateLimiter())
    key = await authenticator.store.create(
        "bench", [Scope.READ], now_ns=time.time_ns(), rate_per_minute=10**9, burst=10**9
    )
    server = ApiServer(create_app(service, stream, authenticator, engine=engine), port=0)
    await server.start()
    try:
        yield Served(rig, journal, service, server, key.token, authenticator, url)
    finally:
        await server.stop()
        stream.close()
        await rig.desk.close()
        await journal.close()
        await engine.dispose()


async def open_socket(s: Served, topics: list[str]) -> ClientConnection:
    """A socket that has said hello and read the welcome and the snapshot."""
    async with httpx.AsyncClient(base_url=s.server.url, headers={"Authorization": f"Bearer {s.token}"}) as c:
        ticket = (await c.post("/api/v1/auth/ws-ticket")).json()["ticket"]
    ws = await connect(s.server.url.replace("http://", "ws://") + "/api/v1/ws", max_queue=None)
    await ws.send(json.dumps({"type": "hello", "ticket": ticket, "topics": topics}))
    await ws.recv()  # welcome
    await ws.recv()  # the account's snapshot
    return ws


async def one_fill(s: Served, i: int) -> None:
    """A market order (buy and sell alternate), journaled, then the trade tick that fills it."""
    if i and i % 150 == 0:
        s.rig.next_day(i // 150)
    side = Side.BUY if i % 2 == 0 else Side.SELL
    for attempt in range(5):  # again after a denial by the gate's time limit (a load spike)
        result = s.service.execute(SubmitOrder(idempotency_key=f"f{i}-{attempt}", symbol=SYM, side=side, qty=1))
        if result.accepted or not result.verdict.reason.startswith(GATE_TIMEOUT):
            break
    if not result.accepted:
        raise RuntimeError(f"fill {i}: the order was denied: {result.verdict.reason}")
    await s.journal.journal.flush()
    s.rig.market()


async def fill_to_socket(s: Served, fills: int) -> list[int]:
    """Figure 1: ns from the exchange's fill to the client's parsed ``filled`` message, after a warm-up (an even
    number of fills in all: flat at the end, as before a session roll)."""
    ws = await open_socket(s, ["orders"])
    got = asyncio.Event()
    received = [0]

    async def consume() -> None:
        async for raw in ws:
            if json.loads(raw)["type"] == "filled":
                received[0] = time.perf_counter_ns()
                got.set()

    task = asyncio.create_task(consume())
    out: list[int] = []
    warm = lat_warm(fills)
    try:
        for i in range(warm + fills):
            got.clear()
            await one_fill(s, i)
            await asyncio.wait_for(got.wait(), 10.0)
            if i >= warm:
                out.append(received[0] - s.rig.fill_in_ns)
    finally:
        task.cancel()
        await ws.close()
    return out


async def rest(s: Served, n: int, rate: float | None) -> tuple[float, list[int]]:
    """Figure 2: ``n`` GETs of the accounts (back to back, or paced at ``rate`` per second): (requests/s, ns each)."""
    lat: list[int] = []
    async with httpx.AsyncClient(base_url=s.server.url, headers={"Authorization": f"Bearer {s.token}"}) as c:
        for _ in range(20):
            (await c.get("/api/v1/accounts")).raise_for_status()
        start = time.perf_counter()
        for i in range(n):
            if rate is not None:
                due = start + i / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            t0 = time.perf_counter_ns()
            r = await c.get("/api/v1/accounts")
            lat.append(time.perf_counter_ns() - t0)
            if r.status_code != 200:
                raise RuntimeError(f"GET /accounts answered {r.status_code}: {r.text}")
        elapsed = time.perf_counter() - start
    return n / elapsed, lat


async def many_clients(s: Served, clients: int, burst: int, *, first_fill: int) -> tuple[int, float]:
    """Figure 3: (clients with a loss or a duplicate, seconds until the last client has the last event)."""
    sockets = [await open_socket(s, TOPICS) for _ in range(clients)]
    start_seq = s.journal.journal.head_seq
    seen: list[list[int]] = [[] for _ in sockets]
    target = [0]
    done = asyncio.Event()
    finished = [0]

    async def consume(k: int, ws: ClientConnection) -> None:
        async for raw in ws:
            m = json.loads(raw)
            if m["topic"] in TOPICS:
                seen[k].append(m["seq"])
                if target[0] and m["seq"] >= target[0]:
                    finished[0] += 1
                    if finished[0] == clients:
                        done.set()
                    return

    tasks = [asyncio.create_task(consume(k, ws)) for k, ws in enumerate(sockets)]
    t0 = time.perf_counter()
    for i in range(burst):
        await one_fill(s, first_fill + i)
    await s.journal.journal.flush()
    rows = await Repository(create_engine_for(s.engine_url)).events_after(start_seq, 1_000_000)
    expected = [int(r["seq"]) for r in rows if any(topic_matches(p, r["topic"]) for p in PATTERNS)]
    target[0] = expected[-1]
    for k in range(clients):  # a client already past the target before it was known
        if seen[k] and seen[k][-1] >= target[0]:
            finished[0] += 1
    if finished[0] < clients:
        await asyncio.wait_for(done.wait(), 60.0)
    elapsed = time.perf_counter() - t0
    for task in tasks:
        task.cancel()
    for ws in sockets:
        await ws.close()
    bad = sum(1 for got in seen if got != expected)
    return bad, elapsed


async def run(args: argparse.Namespace, console: Console) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-api-", dir=SHM if SHM.is_dir() else None))
    url = f"sqlite+aiosqlite:///{folder / 'journal.sqlite3'}"
    async with served(url) as s:
        lat = await fill_to_socket(s, args.fills)
        console.print(
            f"1. fill -> WebSocket client ({len(lat)} fills): p50 {pct(lat, 0.5) / 1e3:.2f} ms, "
            f"p99 {pct(lat, 0.99) / 1e3:.2f} ms, max {max(lat) / 1e6:.2f} ms"
        )
        rps, back = await rest(s, args.requests, None)
        console.print(
            f"2. GET /api/v1/accounts back to back ({args.requests}): {rps:,.0f} requests/s, "
            f"p50 {pct(back, 0.5) / 1e3:.2f} ms, p99 {pct(back, 0.99) / 1e3:.2f} ms"
        )
        _, paced = await rest(s, min(args.requests, 2000), 200.0)
        console.print(
            f"   paced at 200 requests/s ({len(paced)}): p50 {pct(paced, 0.5) / 1e3:.2f} ms, "
            f"p99 {pct(paced, 0.99) / 1e3:.2f} ms"
        )
        bad, elapsed = await many_clients(s, args.clients, args.burst, first_fill=len(lat) + lat_warm(args.fills))
        console.print(
            f"3. {args.clients} WebSocket clients, {args.burst} fills: {bad} clients with a lost or duplicated event; "
            f"the last client had the last event {elapsed:.2f} s after the first order"
        )


def lat_warm(fills: int) -> int:
    """The warm-up fills figure 1 made before ``fills`` measured ones (the total even)."""
    warm = max(5, fills // 10)
    return warm + (warm + fills) % 2


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fills", type=int, default=300)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--clients", type=int, default=100)
    args = parser.parse_args(argv)
    args.burst += args.burst % 2  # flat at the end
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(run(args, Console()))


if __name__ == "__main__":
    main()
