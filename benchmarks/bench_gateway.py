"""Benchmark: the local ProjectX gateway (``propdesk gateway``) seen by a client over loopback (issue 6).

1. **Order round trip**: ``--orders`` market orders (default 200, 1 contract, alternating buy/sell, so the account
   ends flat) on account 11001 (position brackets), sent one at a time. Measured per order: from just before the
   ``POST /api/Order/place`` request is sent (httpx) to the moment the client receives the order's
   ``GatewayUserTrade`` (the fill) on the user hub (pysignalr ``SignalRClient``, subscribed with ``SubscribeTrades``).
   Prints p50/p90/p99/max in ms, and the REST reply time alone for comparison.
2. **Hub events pushed per second**: the replay is switched to ``--speed`` (admin API ``/_propdesk/replay/resume``),
   then a raw WebSocket SignalR client (skip-negotiation; JSON protocol) subscribes to the ES contract's quotes,
   trades and depth and counts, for ``--seconds`` (default 5), the invocations received and the *items* they carry
   (every entry of a ``GatewayTrade`` / ``GatewayDepth`` list counts; a ``GatewayQuote`` counts one). Prints events/s
   by target, and the replay's own count of market events streamed over the same window.

The gateway runs as a subprocess (``python -m propdesk gateway --config <tmp json> --data ../shared/data``) on a free
127.0.0.1 port, with the general REST rate limit raised (the default 200 requests/60 s would throttle the order
loop), and is stopped at the end. Everything is bounded (timeouts on every wait) and loopback only. Needs the default
feeds' files in ``../shared/data`` (ES and NQ 1-minute bars).

Run: ``python benchmarks/bench_gateway.py [--orders 200] [--speed 20000] [--seconds 5]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import websockets
from pysignalr.client import SignalRClient

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
USER = {"userName": "propdesk", "apiKey": "propdesk-local-api-key"}  # GatewayConfig defaults (local, not secrets)
ACCOUNT = 11001
RS = "\x1e"
ORDER_SPEED = 60.0  # replay speed during the order loop (one ES minute bar per second)
ADMIN_TOKEN = secrets.token_urlsafe(24)  # the admin API token this script gives the gateway it starts
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def gateway(workdir: Path) -> Iterator[str]:
    """A ``propdesk gateway`` subprocess on a free loopback port; yields ``127.0.0.1:<port>``."""
    port = _free_port()
    cfg = {
        "bind": f"127.0.0.1:{port}",
        "speed": ORDER_SPEED,
        "admin_token": ADMIN_TOKEN,
        "rate_limit": {"general": {"count": 1_000_000, "window_s": 60}, "history": {"count": 1000, "window_s": 30}},
    }
    cfg_path = workdir / "gateway.json"
    cfg_path.write_text(json.dumps(cfg))
    log_path = workdir / "gateway.log"
    cmd = [sys.executable, "-m", "propdesk", "gateway", "--config", str(cfg_path), "--data", str(DATA)]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None:
                    raise SystemExit(f"gateway exited ({proc.returncode}): {log_path.read_text()[-2000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"http://127.0.0.1:{port}/api/Status/ping", timeout=2).json() == "pong":
                        break
                if time.monotonic() > deadline:
                    raise SystemExit(f"gateway did not start: {log_path.read_text()[-2000:]}")
                time.sleep(0.2)
            yield f"127.0.0.1:{port}"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def _pct(xs: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``xs`` by the nearest-rank method."""
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q * len(s) + 0.5) - 1))]


def _summary(name: str, xs: list[float]) -> str:
    return (
        f"{name}: n={len(xs)}  p50={_pct(xs, 0.50):.2f} ms  p90={_pct(xs, 0.90):.2f} ms  "
        f"p99={_pct(xs, 0.99):.2f} ms  max={max(xs):.2f} ms  mean={statistics.fmean(xs):.2f} ms"
    )


async def order_round_trips(base: str, token: str, contract_id: str, n: int) -> tuple[list[float], list[float]]:
    """``n`` sequential market orders; returns (place -> fill event ms, place -> REST reply ms)."""
    fills: dict[int, float] = {}
    waiting: dict[int, asyncio.Event] = {}
    early: set[int] = set()
    ready = asyncio.Event()
    hub = SignalRClient(f"http://{base}/hubs/user?access_token={token}", connection_timeout=10)

    async def on_trade(args: list[Any]) -> None:
        t = time.perf_counter()
        for arg in args:
            data = arg.get("data", arg) if isinstance(arg, dict) else None
            if isinstance(data, dict) and "orderId" in data:
                oid = int(data["orderId"])
                fills.setdefault(oid, t)
                ev = waiting.get(oid)
                if ev is not None:
                    ev.set()
                else:
                    early.add(oid)

    async def on_open() -> None:
        ready.set()

    hub.on("GatewayUserTrade", on_trade)
    hub.on_open(on_open)
    task = asyncio.create_task(hub.run())
    rtt: list[float] = []
    rest: list[float] = []
    try:
        await asyncio.wait_for(ready.wait(), 15)
        account_arg: list[Any] = [ACCOUNT]  # pysignalr annotates arguments as list[dict]; the hub wants the int
        await hub.send("SubscribeTrades", account_arg)
        await asyncio.sleep(0.3)  # the subscribe is fire-and-forget: let it land
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=f"http://{base}/api", headers=headers, timeout=10) as http:
            for i in range(n):
                body = {"accountId": ACCOUNT, "contractId": contract_id, "type": 2, "side": i % 2, "size": 1}
                t0 = time.perf_counter()
                r = await http.post("/Order/place", json=body)
                t1 = time.perf_counter()
                out = r.json()
                if not out.get("success"):
                    raise SystemExit(f"order {i} refused: {out}")
                oid = int(out["orderId"])
                ev = asyncio.Event()
                waiting[oid] = ev
                if oid in early:
                    ev.set()
                await asyncio.wait_for(ev.wait(), 10)
                rtt.append((fills[oid] - t0) * 1000)
                rest.append((t1 - t0) * 1000)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    return rtt, rest


async def hub_event_rate(base: str, token: str, contract_id: str, seconds: float) -> tuple[Counter[str], float]:
    """Items received per hub target over ``seconds`` (after the subscribe snapshots), and the seconds measured."""
    counts: Counter[str] = Counter()
    async with websockets.connect(
        f"ws://{base}/hubs/market?access_token={token}", open_timeout=10, max_size=None
    ) as ws:
        await ws.send(json.dumps({"protocol": "json", "version": 1}) + RS)
        if await asyncio.wait_for(ws.recv(), 10) != "{}" + RS:
            raise SystemExit("market hub handshake failed")
        for target in ("SubscribeContractQuotes", "SubscribeContractTrades", "SubscribeContractMarketDepth"):
            await ws.send(json.dumps({"type": 1, "target": target, "arguments": [contract_id]}) + RS)
        warm_until = time.perf_counter() + 0.5  # skip the first quote and the depth snapshot
        while time.perf_counter() < warm_until:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.5)
        t0 = time.perf_counter()
        end = t0 + seconds
        while (now := time.perf_counter()) < end:
            try:
                frame = await asyncio.wait_for(ws.recv(), end - now)
            except TimeoutError:
                break
            for part in str(frame).split(RS):
                if not part:
                    continue
                msg = json.loads(part)
                if msg.get("type") != 1:
                    continue
                target = msg["target"]
                payload = msg["arguments"][1] if len(msg["arguments"]) > 1 else None
                counts[target + " msgs"] += 1
                counts[target] += len(payload) if isinstance(payload, list) else 1
        elapsed = time.perf_counter() - t0
    return counts, elapsed


async def run(base: str, orders: int, speed: float, seconds: float) -> None:
    """Both measurements against the gateway at ``base``."""
    async with httpx.AsyncClient(base_url=f"http://{base}", timeout=10) as http:
        token = (await http.post("/api/Auth/loginKey", json=USER)).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        found = await http.post("/api/Contract/search", json={"searchText": "ES", "live": False}, headers=headers)
        contract_id = next(c["id"] for c in found.json()["contracts"] if c["name"].startswith("ES"))

        rtt, rest = await order_round_trips(base, token, contract_id, orders)
        print(f"order round trip, market orders on {contract_id}, account {ACCOUNT} (place sent -> fill event):")
        print("  " + _summary("place -> GatewayUserTrade", rtt))
        print("  " + _summary("place -> REST reply     ", rest))

        before = (await http.get("/_propdesk/replay", headers=ADMIN)).json()
        await http.post("/_propdesk/replay/resume", json={"speed": speed}, headers=ADMIN)
        counts, elapsed = await hub_event_rate(base, token, contract_id, seconds)
        after: dict[str, Any] = {}
        try:  # beyond the replay's throughput the gateway's loop is busy catching up for seconds
            after = (await http.get("/_propdesk/replay", timeout=30, headers=ADMIN)).json()
        except httpx.HTTPError as exc:
            print(f"  (replay state not available: the gateway did not answer within 30 s: {exc!r})")
    items = sum(v for k, v in counts.items() if not k.endswith(" msgs"))
    msgs = sum(v for k, v in counts.items() if k.endswith(" msgs"))
    print(f"market hub push rate, {contract_id}, replay speed {speed:g}x, {elapsed:.2f} s measured:")
    print(f"  events (list entries counted) {items / elapsed:,.0f}/s   hub messages {msgs / elapsed:,.0f}/s")
    for target in ("GatewayQuote", "GatewayTrade", "GatewayDepth"):
        per_s, msgs_per_s = counts[target] / elapsed, counts[target + " msgs"] / elapsed
        print(f"  {target:13s} {per_s:>10,.0f} items/s  {msgs_per_s:>8,.0f} msgs/s")
    if "events_processed" in after:
        done = after["events_processed"] - before["events_processed"]
        print(f"  replay events processed by the gateway over the whole part: {done:,} (all feeds)")


def main() -> None:
    """Entry point (module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--orders", type=int, default=200, help="market orders in the round-trip loop")
    ap.add_argument("--speed", type=float, default=20_000.0, help="replay speed for the push-rate part")
    ap.add_argument("--seconds", type=float, default=5.0, help="length of the push-rate window")
    args = ap.parse_args()
    if not (DATA / "es_1min_topstepx_esz5").exists():
        raise SystemExit(f"missing data: {DATA}/es_1min_topstepx_esz5 (../shared/data beside the checkout)")
    with tempfile.TemporaryDirectory(prefix="propdesk-bench-gateway-") as tmp, gateway(Path(tmp)) as base:
        print(f"gateway at http://{base} (subprocess), python {sys.version.split()[0]}")
        asyncio.run(asyncio.wait_for(run(base, args.orders, args.speed, args.seconds), timeout=300))


if __name__ == "__main__":
    main()
