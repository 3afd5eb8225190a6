"""Key authentication on a tiny FastAPI app (SQLite and PostgreSQL): headers, scopes, mutating methods, remote
clients read-only unless allowed, per-key rate limits, problem documents."""

from __future__ import annotations

import pytest

from propdesk.api.auth import Authenticator, Principal, is_loopback
from propdesk.api.keys import Scope
from propdesk.api.ratelimit import RateLimiter
from propdesk.api.tickets import TicketBook
from tests.unit.api.conftest import REMOTE, ApiHarness, FakeClock


def test_is_loopback() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("127.8.0.1") and is_loopback("::1") and is_loopback("[::1]")
    assert not is_loopback("192.168.1.20") and not is_loopback("testclient") and not is_loopback(None)


@pytest.mark.asyncio
async def test_missing_or_wrong_keys_get_401(harness: ApiHarness) -> None:
    created = await harness.store.create("r", {Scope.READ}, now_ns=1)
    async with harness.client() as client:
        assert (await client.get("/ping")).status_code == 200
        for headers in (
            {},
            {"Authorization": "Bearer nonsense"},
            {"X-API-Key": created.token[:-2] + "xx"},
            {"Authorization": f"Basic {created.token}"},
            {"Authorization": f"Bearer {created.token}", "X-API-Key": "pdk_other"},
        ):
            res = await client.get("/positions", headers=headers)
            assert res.status_code == 401, headers
            assert res.json()["code"] == "UNAUTHORIZED" and res.headers["www-authenticate"].startswith("Bearer")
            assert created.token not in res.text
        ok = await client.get("/positions", headers={"X-API-Key": created.token})
        assert ok.status_code == 200 and ok.json() == {"key": created.key.key_id}
        await harness.store.revoke(created.key.key_id, now_ns=2)
        assert (await client.get("/positions", headers={"X-API-Key": created.token})).status_code == 401


@pytest.mark.asyncio
async def test_scopes_and_mutating_methods(harness: ApiHarness) -> None:
    reader = await harness.store.create("r", {Scope.READ}, now_ns=1)
    trader = await harness.store.create("t", {Scope.TRADE}, now_ns=1)
    admin = await harness.store.create("a", {Scope.ADMIN}, now_ns=1)
    auth = {k: {"Authorization": f"Bearer {v.token}"} for k, v in (("r", reader), ("t", trader), ("a", admin))}
    async with harness.client() as client:
        denied = await client.post("/orders", headers=auth["r"])
        assert denied.status_code == 403 and denied.json()["code"] == "FORBIDDEN" and "'trade'" in denied.text
        assert (await client.post("/orders", headers=auth["t"])).json() == {"placed_by": trader.key.key_id}
        assert (await client.post("/orders", headers=auth["a"])).status_code == 200
        assert (await client.get("/admin/keys", headers=auth["t"])).status_code == 403
        assert (await client.get("/admin/keys", headers=auth["a"])).status_code == 200
        assert (await client.get("/positions", headers=auth["t"])).status_code == 200


@pytest.mark.asyncio
async def test_remote_client_is_read_only_unless_allowed(harness: ApiHarness) -> None:
    plain = await harness.store.create("laptop", {Scope.ADMIN}, now_ns=1)
    remote = await harness.store.create("vps", {Scope.TRADE}, now_ns=1, allow_trade_remote=True)
    async with harness.client(peer=REMOTE, host="desk.lan:8000") as client:
        headers = {"X-API-Key": plain.token}
        assert (await client.get("/positions", headers=headers)).status_code == 200
        res = await client.post("/orders", headers=headers)
        assert res.status_code == 403 and "non-loopback" in res.json()["detail"]
        assert (await client.get("/admin/keys", headers=headers)).status_code == 403
        assert (await client.post("/orders", headers={"X-API-Key": remote.token})).status_code == 200


@pytest.mark.asyncio
async def test_rate_limit_per_key_with_retry_after(harness: ApiHarness) -> None:
    slow = await harness.store.create("slow", {Scope.READ}, now_ns=1, rate_per_minute=30, burst=2)
    other = await harness.store.create("other", {Scope.READ}, now_ns=1, rate_per_minute=30, burst=2)
    async with harness.client() as client:
        headers = {"X-API-Key": slow.token}
        assert [(await client.get("/positions", headers=headers)).status_code for _ in range(2)] == [200, 200]
        limited = await client.get("/positions", headers=headers)
        assert limited.status_code == 429 and limited.json()["code"] == "RATE_LIMITED"
        assert limited.headers["retry-after"] == "2"  # 30/min: one token every 2 s
        assert (await client.get("/positions", headers={"X-API-Key": other.token})).status_code == 200
        harness.clock.now += 2.0
        assert (await client.get("/positions", headers=headers)).status_code == 200


@pytest.mark.asyncio
async def test_last_used_is_recorded(harness: ApiHarness) -> None:
    created = await harness.store.create("r", {Scope.READ}, now_ns=1)
    async with harness.client() as client:
        await client.get("/positions", headers={"X-API-Key": created.token})
    key = await harness.store.get(created.key.key_id)
    assert key is not None and key.last_used_ns is not None and key.last_used_ns > 1


@pytest.mark.asyncio
async def test_websocket_ticket_redeemed_once_and_not_after_revocation(harness: ApiHarness) -> None:
    auth = Authenticator(harness.store)
    created = await harness.store.create("ws", {Scope.READ}, now_ns=1)
    principal = Principal(key=created.key, loopback=True)
    ticket = auth.issue_ticket(principal)
    redeemed = await auth.redeem_ticket(ticket, "127.0.0.1")
    assert redeemed is not None and redeemed.key.key_id == created.key.key_id and redeemed.loopback
    assert await auth.redeem_ticket(ticket, "127.0.0.1") is None
    late = auth.issue_ticket(principal)
    await harness.store.revoke(created.key.key_id, now_ns=2)
    assert await auth.redeem_ticket(late, "127.0.0.1") is None


@pytest.mark.asyncio
async def test_failed_authentications_are_rate_limited_per_client(harness: ApiHarness) -> None:
    created = await harness.store.create("r", {Scope.READ}, now_ns=1)
    async with harness.client(peer=REMOTE, host="desk.lan") as guesser, harness.client() as owner:
        codes = [(await guesser.get("/positions", headers={"X-API-Key": "pdk_guess"})).status_code for _ in range(11)]
        assert codes == [401] * 10 + [429]
        blocked = await guesser.get("/positions", headers={"X-API-Key": created.token})
        assert blocked.status_code == 429 and blocked.json()["code"] == "RATE_LIMITED"
        assert (await owner.get("/positions", headers={"X-API-Key": created.token})).status_code == 200
        harness.clock.now += 2.0  # 30 failures per minute: one more try every 2 s
        assert (await guesser.get("/positions", headers={"X-API-Key": created.token})).status_code == 200


@pytest.mark.asyncio
async def test_authenticator_keeps_the_empty_limiter_and_ticket_book_it_is_given(harness: ApiHarness) -> None:
    limiter, book = RateLimiter(clock=FakeClock()), TicketBook(clock=FakeClock())
    auth = Authenticator(harness.store, limiter, book)  # both are empty (len 0) yet must be used
    assert auth.limiter is limiter and auth.tickets is book
