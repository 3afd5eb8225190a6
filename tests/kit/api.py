"""propdesk's API on a started desk over the simulated account (:func:`tests.kit.desk.desk_on`): a
:class:`~propdesk.node.service.DeskService`, API keys of each scope, the app, an httpx client on its ASGI transport,
and (for WebSocket tests) the app served by :class:`~propdesk.api.server.ApiServer` on a free loopback port."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection, connect

from propdesk.api.app import create_app
from propdesk.api.auth import Authenticator
from propdesk.api.keys import ApiKeyStore, Scope
from propdesk.api.server import ApiServer
from propdesk.config import ApiSettings
from propdesk.node.service import DeskService
from propdesk.node.stream import EventStream
from tests.kit.desk import SYM, Desked, desk_on

__all__ = ["SYM", "ApiEnv", "api_on", "eventually"]


async def eventually(condition: Callable[[], bool], *, timeout_s: float = 30.0, what: str = "") -> None:
    """Wait (real time) until ``condition()`` holds: for the journal's commits.

    Raises:
        AssertionError: it did not hold within ``timeout_s`` (a failure, not a timing).
    """
    deadline = time.monotonic() + timeout_s
    while not condition():
        await asyncio.sleep(0.002)
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached: {what or condition}")


@dataclass
class ApiEnv:
    """The desk (``d``), its service, the app and a bearer token per scope (``tokens["read"]`` ...)."""

    d: Desked
    service: DeskService
    app: FastAPI
    tokens: dict[str, str]
    authenticator: Authenticator
    server: ApiServer | None = None

    @property
    def account_id(self) -> int:
        """The simulated account."""
        return self.service.account_ids[0]

    def client(self, scope: str | None = "trade") -> httpx.AsyncClient:
        """An httpx client on the app (loopback peer) authenticated with ``scope``'s key (``None``: no key)."""
        headers = {} if scope is None else {"Authorization": f"Bearer {self.tokens[scope]}"}
        transport = httpx.ASGITransport(app=self.app, client=("127.0.0.1", 50000))
        return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000/api/v1", headers=headers)

    async def ticket(self, scope: str = "read") -> str:
        """A WebSocket ticket for ``scope``'s key."""
        async with self.client(scope) as c:
            r = await c.post("/auth/ws-ticket")
            assert r.status_code == 200, r.text
            return str(r.json()["ticket"])

    @asynccontextmanager
    async def socket(
        self, *, scope: str = "read", topics: list[str] | None = None, resume_from: int | None = None
    ) -> AsyncIterator[ClientConnection]:
        """A WebSocket to the served app that has said hello (the welcome not yet read)."""
        assert self.server is not None, "api_on(..., serve=True) serves the app"
        hello: dict[str, Any] = {"type": "hello", "ticket": await self.ticket(scope)}
        if topics is not None:
            hello["topics"] = topics
        if resume_from is not None:
            hello["resume_from"] = resume_from
        url = self.server.url.replace("http://", "ws://") + "/api/v1/ws"
        async with connect(url, open_timeout=10) as ws:
            await ws.send(json.dumps(hello))
            yield ws


async def _keys(store: ApiKeyStore) -> dict[str, str]:
    scopes = {"read": [Scope.READ], "trade": [Scope.READ, Scope.TRADE], "admin": [Scope.READ, Scope.TRADE, Scope.ADMIN]}
    out = {}
    for name, granted in scopes.items():
        created = await store.create(name, granted, now_ns=1, rate_per_minute=100_000, burst=100_000)
        out[name] = created.token
    return out


@asynccontextmanager
async def api_on(
    url: str, *, serve: bool = False, heartbeat_s: float = 15.0, max_queue: int | None = None
) -> AsyncIterator[ApiEnv]:
    """The API on a started desk whose journal is on ``url`` (a migrated database); ``serve``: also on uvicorn;
    ``max_queue``: the app's own event stream with that queue bound (slow-consumer tests)."""
    async with desk_on(url) as d:
        service = DeskService([(d.env.desk, SYM)], record_rows=d.journal.journal.record_rows)
        service.account_ready(service.account_ids[0])
        stream = d.stream if max_queue is None else EventStream(d.journal.journal, d.engine, max_queue=max_queue)
        authenticator = Authenticator(ApiKeyStore(d.engine))
        tokens = await _keys(authenticator.store)
        app = create_app(service, stream, authenticator, ApiSettings(), engine=d.engine, heartbeat_s=heartbeat_s)
        env = ApiEnv(d=d, service=service, app=app, tokens=tokens, authenticator=authenticator)
        if serve:
            env.server = ApiServer(app, ApiSettings(), port=0)
            await env.server.start()
        try:
            yield env
        finally:
            if env.server is not None:
                await env.server.stop()
            if stream is not d.stream:
                stream.close()
