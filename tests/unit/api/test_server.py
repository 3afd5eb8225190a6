"""ApiServer: uvicorn inside the running loop, on 127.0.0.1 by default; start once, stop idempotent, a taken port
refused."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from propdesk.api.server import ApiServer
from propdesk.config import ApiSettings

pytestmark = pytest.mark.asyncio


def ping_app() -> FastAPI:
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"pong": "yes"}

    return app


async def test_serves_in_the_current_loop_on_loopback_and_stops() -> None:
    server = ApiServer(ping_app(), ApiSettings(), port=0)
    assert server.host == "127.0.0.1"
    await server.start()
    try:
        assert server.running and server.port > 0 and server.url == f"http://127.0.0.1:{server.port}"
        async with httpx.AsyncClient() as client:
            r = await client.get(f"{server.url}/ping")
        assert r.json() == {"pong": "yes"}
        with pytest.raises(RuntimeError, match="already started"):
            await server.start()
    finally:
        await server.stop()
    await server.stop()  # idempotent
    assert not server.running


async def test_a_taken_port_is_refused() -> None:
    first = ApiServer(ping_app(), port=0)
    await first.start()
    try:
        second = ApiServer(ping_app(), ApiSettings(port=first.port))
        with pytest.raises(RuntimeError, match=f"could not listen on 127.0.0.1:{first.port}"):
            await second.start()
    finally:
        await first.stop()
