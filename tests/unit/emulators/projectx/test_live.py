"""The gateway on a real uvicorn server (127.0.0.1, free port): a real SignalR client (pysignalr, negotiated) and
a raw WebSocket client (skip-negotiation) against both hubs."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets
from pysignalr.client import SignalRClient

from tests.kit.servers import free_port, serve_app
from tests.unit.emulators.projectx.conftest import ES, POSITION_ACCT, USER, make_app

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    port = free_port()
    yield from serve_app(make_app(bind=f"127.0.0.1:{port}", ping_interval_s=0.5), port)


def _token(base: str) -> str:
    r = httpx.post(f"http://{base}/api/Auth/loginKey", json=USER, timeout=10)
    return str(r.json()["token"])


@pytest.mark.asyncio
async def test_pysignalr_negotiated_user_hub_gets_order_events(server: str) -> None:
    token = _token(server)
    got: list[Any] = []
    ready = asyncio.Event()
    client = SignalRClient(f"http://{server}/hubs/user?access_token={token}", connection_timeout=10)

    async def on_order(args: list[Any]) -> None:
        got.append(args)

    async def on_open() -> None:
        ready.set()

    client.on("GatewayUserOrder", on_order)
    client.on_open(on_open)
    task = asyncio.create_task(client.run())
    try:
        await asyncio.wait_for(ready.wait(), 15)
        await client.send("SubscribeOrders", [POSITION_ACCT])
        await client.send("Heartbeat", [{"timestamp": time.time()}])
        await asyncio.sleep(0.3)
        async with httpx.AsyncClient(base_url=f"http://{server}", timeout=10) as http:
            body = {"accountId": POSITION_ACCT, "contractId": ES, "type": 1, "side": 0, "size": 1, "limitPrice": 5000}
            r = await http.post("/api/Order/place", json=body, headers={"Authorization": f"Bearer {token}"})
            oid = r.json()["orderId"]
        for _ in range(100):
            if got:
                break
            await asyncio.sleep(0.05)
        assert got, "no GatewayUserOrder received"
        assert got[0][0]["action"] == 0 and got[0][0]["data"]["id"] == oid and got[0][0]["data"]["status"] == 1
    finally:
        task.cancel()
        with pytest.raises((asyncio.CancelledError, Exception)):
            await task


@pytest.mark.asyncio
async def test_raw_websocket_skip_negotiation_and_401(server: str) -> None:
    token = _token(server)
    with pytest.raises(websockets.exceptions.InvalidStatus) as exc:
        async with websockets.connect(f"ws://{server}/hubs/market?access_token=bad", open_timeout=10):
            pass
    assert exc.value.response.status_code == 401
    async with websockets.connect(f"ws://{server}/hubs/market?access_token={token}", open_timeout=10) as ws:
        await ws.send('{"protocol":"json","version":1}\x1e')
        assert await asyncio.wait_for(ws.recv(), 10) == "{}\x1e"
        await ws.send(json.dumps({"type": 1, "target": "SubscribeContractQuotes", "arguments": [ES]}) + "\x1e")
        kinds = set()
        for _ in range(10):
            for part in str(await asyncio.wait_for(ws.recv(), 10)).split("\x1e"):
                if part:
                    kinds.add(json.loads(part).get("target", json.loads(part)["type"]))
            if {"GatewayQuote", 6} <= kinds:
                break
        assert {"GatewayQuote", 6} <= kinds
