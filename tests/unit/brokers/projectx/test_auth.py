"""Token lifecycle (spec section 2)."""

from __future__ import annotations

import pytest

from propdesk.brokers.projectx.auth import ASSUMED_TTL_S, TokenManager, jwt_exp
from propdesk.brokers.projectx.errors import AuthenticationError
from tests.unit.brokers.projectx.fakes import make_jwt


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


class Server:
    def __init__(self, clock: Clock, ttl: float = 86400.0) -> None:
        self.clock = clock
        self.ttl = ttl
        self.logins = 0
        self.validates = 0
        self.validate_fails = False

    async def login(self) -> str:
        self.logins += 1
        return make_jwt(self.clock() + self.ttl, sub=f"l{self.logins}")

    async def validate(self, token: str) -> str | None:
        self.validates += 1
        if self.validate_fails:
            raise AuthenticationError(
                endpoint="Auth/validate", error_code=3, name="ExpiredToken", meaning="x", server_message=None
            )
        return make_jwt(self.clock() + self.ttl, sub=f"v{self.validates}")


def test_jwt_exp() -> None:
    assert jwt_exp(make_jwt(1234.0)) == 1234.0
    assert jwt_exp("not-a-jwt") is None
    assert jwt_exp("a.!!!.c") is None


@pytest.mark.asyncio
async def test_login_once_then_cached() -> None:
    clock = Clock()
    srv = Server(clock)
    seen: list[str] = []
    tm = TokenManager(srv.login, srv.validate, now=clock)
    tm.add_listener(seen.append)
    t1 = await tm.get()
    t2 = await tm.get()
    assert t1 == t2 and srv.logins == 1 and srv.validates == 0 and seen == [t1]
    assert tm.expires_at == clock.t + 86400


@pytest.mark.asyncio
async def test_validate_before_expiry_then_login_fallback() -> None:
    clock = Clock()
    srv = Server(clock)
    tm = TokenManager(srv.login, srv.validate, refresh_before_expiry_s=3600, validate_interval_s=12 * 3600, now=clock)
    first = await tm.get()
    clock.t += 12 * 3600 + 1  # validate interval reached
    second = await tm.get()
    assert second != first and srv.validates == 1 and srv.logins == 1
    clock.t += 11 * 3600
    srv.validate_fails = True
    clock.t += 3600  # less than an hour left on the validated token? no: 23 h old -> near expiry
    third = await tm.get()
    assert third not in (first, second) and srv.logins == 2 and srv.validates == 2


@pytest.mark.asyncio
async def test_expired_token_goes_straight_to_login() -> None:
    clock = Clock()
    srv = Server(clock, ttl=600)
    tm = TokenManager(srv.login, srv.validate, refresh_before_expiry_s=60, now=clock)
    await tm.get()
    clock.t += 700
    await tm.get()
    assert srv.validates == 0 and srv.logins == 2


@pytest.mark.asyncio
async def test_stale_after_401_logs_in_once_for_concurrent_callers() -> None:
    clock = Clock()
    srv = Server(clock)
    tm = TokenManager(srv.login, srv.validate, now=clock)
    t1 = await tm.get()
    a = await tm.refresh(stale=t1)
    b = await tm.refresh(stale=t1)  # already replaced: no second login
    assert a == b and srv.logins == 2 and srv.validates == 0


@pytest.mark.asyncio
async def test_unreadable_token_assumed_one_hour() -> None:
    clock = Clock()

    async def login() -> str:
        return "opaque"

    async def validate(_t: str) -> str | None:
        return None

    tm = TokenManager(login, validate, refresh_before_expiry_s=60, now=clock)
    await tm.get()
    assert tm.expires_at == clock.t + ASSUMED_TTL_S
