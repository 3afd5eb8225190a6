"""Fixtures of the gateway tests: an app on the real ES 1-minute file, paused (tests step the replay)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from propdesk.emulators.projectx import AccountConfig, FeedConfig, GatewayConfig, create_app
from tests.conftest import ES_1MIN, SHARED_DATA, resolve_shared

NOW_NS = 1_795_000_000_000_000_000
"""The fixed wall-clock start of every test app (2026-11-18 UTC): the front ES month is ESZ6."""
ES = "CON.F.US.EP.Z26"
POSITION_ACCT = 11001
OCO_ACCT = 11002
LOCKED_ACCT = 11003
USER = {"userName": "propdesk", "apiKey": "propdesk-local-api-key"}
ADMIN_TOKEN = "test-admin-token-0123456789"
"""The admin API token of every test app (``GatewayConfig.admin_token``)."""
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
"""Headers of an admin API request."""
BASE_URL = "http://127.0.0.1:8900"
"""The test clients' base URL (the gateway answers loopback Host headers only)."""
WS_BASE = "ws://127.0.0.1:8900"
"""The base of WebSocket URLs (TestClient joins relative ones to ``ws://testserver``, whatever its base URL)."""


def make_config(**overrides: Any) -> GatewayConfig:
    """A paused gateway on the ES file (ES and MES), three accounts (position, auto_oco, can_trade=False)."""
    resolve_shared(ES_1MIN)
    base: dict[str, Any] = {
        "data_dir": SHARED_DATA,
        "autostart": False,
        "roots": ["ES", "MES", "NQ", "6E"],
        "feeds": [FeedConfig(roots=["ES", "MES"], path=ES_1MIN, start=datetime(2025, 9, 22, 13, 30, tzinfo=UTC))],
        "accounts": [
            AccountConfig(id=POSITION_ACCT, name="PRAC-1", bracket_mode="position"),
            AccountConfig(id=OCO_ACCT, name="PRAC-2", bracket_mode="auto_oco"),
            AccountConfig(id=LOCKED_ACCT, name="PRAC-3", can_trade=False),
        ],
        "ping_interval_s": 60.0,
        "admin_token": ADMIN_TOKEN,
    }
    base.update(overrides)
    return GatewayConfig(**base)


def make_app(**overrides: Any) -> FastAPI:
    """:func:`create_app` over :func:`make_config`."""
    return create_app(make_config(**overrides), now_ns=NOW_NS)


def gateway_client(app: FastAPI) -> TestClient:
    """A TestClient on ``app`` at :data:`BASE_URL` (use as a context manager to run the lifespan)."""
    return TestClient(app, base_url=BASE_URL)


class Api:
    """A logged-in REST client: ``api("Order/place", {...})`` -> response."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        r = client.post("/api/Auth/loginKey", json=USER)
        self.token = r.json()["token"]
        self.headers = {"Authorization": f"Bearer {self.token}"}

    def __call__(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.client.post(f"/api/{path}", json=body if body is not None else {}, headers=self.headers)

    def ok(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        r = self(path, body)
        assert r.status_code == 200, r.text
        data: dict[str, Any] = r.json()
        return data

    def step(self, n: int = 1) -> None:
        assert self.client.post("/_propdesk/replay/step", json={"events": n}, headers=ADMIN).status_code == 200


SLOW_CALLBACK_S = 1.0
"""What the event loop's own detector (asyncio debug mode) reports as a stall: one step of a task running this long
(serving a request takes milliseconds; the stalls these tests guard against took seconds)."""


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def loop_stalls(client: TestClient) -> Iterator[list[str]]:
    """The stalls of ``client``'s server event loop while the block runs, as asyncio's slow-callback reports
    (``Executing <Task ...> took 3.1 seconds``): debug mode is switched on for the block. ``client`` must be open
    (``with`` block: its portal runs the loop)."""

    def watch(on: bool) -> None:
        loop = asyncio.get_running_loop()
        loop.set_debug(on)
        loop.slow_callback_duration = SLOW_CALLBACK_S

    portal = client.portal
    assert portal is not None, "open the TestClient with a with-block"
    collect = _Collect()
    log = logging.getLogger("asyncio")
    log.addHandler(collect)
    portal.call(watch, True)
    stalls: list[str] = []
    try:
        yield stalls
    finally:
        portal.call(watch, False)
        log.removeHandler(collect)
        stalls.extend(m for m in collect.messages if " took " in m)


@pytest.fixture
def app_factory() -> Callable[..., FastAPI]:
    """``app_factory(**config overrides)``."""
    return make_app


@pytest.fixture
def client() -> Iterator[TestClient]:
    """A TestClient on the default test app (lifespan running)."""
    with gateway_client(make_app()) as c:
        yield c


@pytest.fixture
def api(client: TestClient) -> Api:
    """A logged-in :class:`Api` with the replay stepped a few events (prices known)."""
    a = Api(client)
    a.step(4)
    return a
