"""API fixtures: a migrated database of each backend (SQLite and PostgreSQL, from the storage fixtures) and a tiny
FastAPI app with propdesk's problem handlers, Host/Origin guard and key authentication, reached with httpx."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import httpx
import pytest
import pytest_asyncio
from fastapi import Depends, FastAPI

from propdesk.api.auth import Authenticator, Principal, install_auth, require
from propdesk.api.hosts import HostOriginGuard
from propdesk.api.keys import ApiKeyStore, Scope
from propdesk.api.problems import install_problem_handlers
from propdesk.api.ratelimit import RateLimiter
from propdesk.storage.db import create_engine_for
from propdesk.storage.migrate import upgrade
from tests.unit.storage.conftest import db_url, empty_db_url, pg_database  # noqa: F401

LOOPBACK = ("127.0.0.1", 50000)
REMOTE = ("192.168.1.20", 50000)


class FakeClock:
    """A monotonic clock the test moves by hand (seconds)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def tiny_app(authenticator: Authenticator) -> FastAPI:
    """Routes of each kind: a read, a trade (POST), an admin-only read, and an unauthenticated ping."""
    app = FastAPI()
    install_problem_handlers(app)
    install_auth(app, authenticator)
    app.add_middleware(HostOriginGuard, allowed_hosts=["desk.lan"])

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"pong": "yes"}

    @app.get("/positions")
    async def positions(who: Annotated[Principal, Depends(require(Scope.READ))]) -> dict[str, str]:
        return {"key": who.key.key_id}

    @app.post("/orders")
    async def orders(who: Annotated[Principal, Depends(require())]) -> dict[str, str]:
        return {"placed_by": who.key.key_id}

    @app.get("/admin/keys")
    async def admin(who: Annotated[Principal, Depends(require(Scope.ADMIN))]) -> dict[str, str]:
        return {"admin": who.key.key_id}

    @app.get("/items/{n}")
    async def item(n: int) -> dict[str, int]:
        return {"n": n}

    return app


@dataclass
class ApiHarness:
    """The store, the limiter's clock, and a client factory (loopback by default)."""

    store: ApiKeyStore
    clock: FakeClock
    app: FastAPI

    def client(self, peer: tuple[str, int] = LOOPBACK, host: str = "127.0.0.1:8000") -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, client=peer)
        return httpx.AsyncClient(transport=transport, base_url=f"http://{host}")


@pytest_asyncio.fixture
async def harness(db_url: str) -> AsyncIterator[ApiHarness]:  # noqa: F811
    engine = create_engine_for(db_url)
    clock = FakeClock()
    store = ApiKeyStore(engine)
    app = tiny_app(Authenticator(store, RateLimiter(clock=clock)))
    try:
        yield ApiHarness(store=store, clock=clock, app=app)
    finally:
        await engine.dispose()


@pytest.fixture
def sqlite_db_url(tmp_path: Path) -> str:
    """A migrated SQLite database (the API's tests that do not depend on the backend)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'journal.sqlite3'}"
    upgrade(url)
    return url
