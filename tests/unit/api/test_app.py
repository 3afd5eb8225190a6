"""The REST API on a real DeskService over the simulated 50K Combine account (tests.kit.api): every resource, the
gate's denial with rule id and headroom, dry run, idempotent retry, If-Match version conflicts, scopes, the OpenAPI
document."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.kit.api import SYM, ApiEnv, api_on

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def api(sqlite_db_url: str) -> AsyncIterator[ApiEnv]:
    async with api_on(sqlite_db_url) as env:
        env.d.env.bar()  # a first price
        yield env


def order(qty: int = 1, side: str = "BUY", **kw: object) -> dict[str, object]:
    return {"symbol": SYM, "side": side, "qty": qty, **kw}


async def test_accounts_carry_the_prop_firm_figures_and_risk_lists_every_rule(api: ApiEnv) -> None:
    async with api.client("read") as c:
        accounts = (await c.get("/accounts")).json()
        one = await c.get(f"/accounts/{api.account_id}")
        rules = (await c.get(f"/accounts/{api.account_id}/risk")).json()
        missing = await c.get("/accounts/999")
    assert [a["account_id"] for a in accounts] == [api.account_id]
    a = accounts[0]
    assert one.json()["account_id"] == api.account_id
    # the 50K Combine: $50,000, MLL $2,000 below -> floor $48,000, distance $2,000
    assert (a["balance_usd"], a["mll_floor_usd"], a["mll_distance_usd"]) == ("50000.00", "48000.00", "2000.00")
    assert a["trading_state"] == "ACTIVE" and a["lockouts"] == [] and a["trades_today"] == 0
    by_id = {r["rule_id"]: r for r in rules}
    assert {"R1", "R5"} <= set(by_id)
    assert (by_id["R5"]["value"], by_id["R5"]["limit"], by_id["R5"]["headroom"]) == ("0", "5", "5")
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["code"] == "NOT_FOUND"


async def test_a_market_order_fills_then_positions_fills_round_trips_and_stats(api: ApiEnv) -> None:
    async with api.client("trade") as c:
        placed = await c.post("/orders", json=order(2, tag="manual"), headers={"Idempotency-Key": "buy-1"})
        assert placed.status_code == 202, placed.text
        body = placed.json()
        assert body["accepted"] and body["idempotency_key"] == "buy-1" and len(body["client_order_ids"]) == 1
        api.d.env.bar(6701.0)  # fills at this bar's open
        positions = (await c.get("/positions")).json()
        fills = (await c.get("/fills")).json()
        closed = await c.post(f"/accounts/{api.account_id}/positions/{SYM}/close", json={"qty": 2})
        api.d.env.bar(6702.0)
        trips = (await c.get("/round-trips")).json()
        days = (await c.get("/stats/daily")).json()
        per_tag = (await c.get("/stats/strategies")).json()
        contracts = (await c.get("/contracts")).json()
        audit = (await c.get("/audit", params={"point": "pre"})).json()
    assert [(p["symbol"], p["signed_qty"], p["avg_price"]) for p in positions] == [(SYM, 2, "6701")]
    assert [(f["qty"], f["price"], f["price_ticks"], f["tag"]) for f in fills] == [(2, "6701", 26804, "manual")]
    assert closed.status_code == 202, closed.text
    assert [(t["direction"], t["qty"], t["entry_price"], t["exit_price"], t["gross_pnl_usd"]) for t in trips] == [
        (1, 2, "6701", "6702", "100.00")  # 2 contracts x 1 point x $50
    ]
    assert days[-1]["complete"] is False and days[-1]["trades"] >= 1
    assert "manual" in {s["tag"] for s in per_tag}
    assert [(x["root"], x["tick_size"], x["tick_value_usd"]) for x in contracts] == [("ES", "0.25", "12.50")]
    assert audit and audit[-1]["point"] == "pre"


async def test_a_denial_names_the_rule_and_its_headroom(api: ApiEnv) -> None:
    async with api.client("trade") as c:
        r = await c.post("/orders", json=order(6), headers={"Idempotency-Key": "too-big"})
        orders = (await c.get("/orders")).json()
    assert r.status_code == 409 and r.headers["content-type"] == "application/problem+json"
    p = r.json()
    assert (p["code"], p["rule_id"], p["headroom_qty"]) == ("RISK_DENIED", "R5", "5")
    assert p["detail"].startswith("R5: ")
    assert orders["items"] == []


async def test_dry_run_answers_the_verdict_and_usd_at_risk_and_sends_nothing(api: ApiEnv) -> None:
    async with api.client("trade") as c:
        ok = await c.post("/orders", params={"dry_run": "true"}, json=order(2, stop_loss_ticks=8))
        denied = await c.post("/orders", params={"dry_run": "true"}, json=order(6, stop_loss_ticks=8))
        orders = (await c.get("/orders")).json()
    assert ok.status_code == 200 and ok.json()["accepted"] and ok.json()["dry_run"]
    risk = ok.json()["risk"]
    # 2 contracts x 8 ticks x $12.50
    assert (risk["at_risk_usd"], risk["mll_headroom_usd"], risk["mll_share"]) == ("200.00", "2000.00", "0.1")
    assert denied.status_code == 200 and not denied.json()["accepted"] and denied.json()["rule_id"] == "R5"
    assert orders["items"] == []


async def test_a_retry_with_the_same_key_gets_the_first_verdict_and_another_body_conflicts(api: ApiEnv) -> None:
    body = order(1, type="LIMIT", limit_price="6650.25")
    async with api.client("trade") as c:
        first = await c.post("/orders", json=body, headers={"Idempotency-Key": "k-1"})
        again = await c.post("/orders", json=body, headers={"Idempotency-Key": "k-1"})
        other = await c.post("/orders", json={**body, "qty": 2}, headers={"Idempotency-Key": "k-1"})
        orders = (await c.get("/orders")).json()["items"]
    assert first.status_code == again.status_code == 202
    assert again.json()["replayed"] and again.json()["client_order_ids"] == first.json()["client_order_ids"]
    assert other.status_code == 409 and other.json()["code"] == "IDEMPOTENCY_CONFLICT"
    assert [(o["limit_price"], o["limit_ticks"]) for o in orders] == [("6650.25", 26601)]


async def test_orders_page_by_cursor_modify_cancel_and_cancel_all(api: ApiEnv) -> None:
    async with api.client("trade") as c:
        for i in range(3):
            r = await c.post("/orders", json=order(1, type="LIMIT", limit_price=f"{6600 + i}"))
            assert r.status_code == 202, r.text
        first = (await c.get("/orders", params={"limit": 2})).json()
        second = (await c.get("/orders", params={"limit": 2, "cursor": first["next_cursor"]})).json()
        ids = [o["client_order_id"] for o in first["items"] + second["items"]]
        modified = await c.patch(f"/orders/{ids[0]}", json={"limit_price": "6590.50"})
        api.d.env.bar()
        after_modify = {o["client_order_id"]: o["limit_price"] for o in (await c.get("/orders")).json()["items"]}
        canceled = await c.delete(f"/orders/{ids[1]}")
        api.d.env.bar()
        left = [o["client_order_id"] for o in (await c.get("/orders")).json()["items"]]
        all_gone = await c.post("/orders/cancel-all", json={"symbol": SYM})
        api.d.env.bar()
        final = (await c.get("/orders")).json()["items"]
        bad_cursor = await c.get("/orders", params={"cursor": "!!"})
        unknown = await c.delete("/orders/no-such-order")
    assert len(first["items"]) == 2 and first["next_cursor"] and len(second["items"]) == 1
    assert second["next_cursor"] is None and len(set(ids)) == 3
    assert modified.status_code == 202 and after_modify[ids[0]] == "6590.5"
    assert canceled.status_code == 202 and sorted(left) == sorted([ids[0], ids[2]])
    assert all_gone.status_code == 202 and final == []
    assert bad_cursor.status_code == 422 and bad_cursor.json()["code"] == "VALIDATION_FAILED"
    assert unknown.status_code == 404


async def test_a_limit_order_without_its_price_is_refused(api: ApiEnv) -> None:
    async with api.client("trade") as c:
        no_price = await c.post("/orders", json=order(1, type="LIMIT"))
        bad_price = await c.post("/orders", json=order(1, type="LIMIT", limit_price="1E+400"))
        huge_qty = await c.post("/orders", json=order(10**18))
    for r in (no_price, bad_price, huge_qty):
        assert r.status_code == 422 and r.json()["code"] == "VALIDATION_FAILED"


async def test_flatten_needs_an_idempotency_key_and_trading_state_goes_more_restrictive_unless_admin(
    api: ApiEnv,
) -> None:
    aid = api.account_id
    async with api.client("trade") as c:
        keyless = await c.post(f"/accounts/{aid}/flatten")
        flat = await c.post(f"/accounts/{aid}/flatten", headers={"Idempotency-Key": "fl-1"}, json={"reason": "test"})
        halt = await c.put(f"/accounts/{aid}/trading-state", json={"state": "HALTED", "reason": "lunch"})
        halted_order = await c.post("/orders", json=order(1))
        lift = await c.put(f"/accounts/{aid}/trading-state", json={"state": "ACTIVE"})
    async with api.client("admin") as c:
        lifted = await c.put(f"/accounts/{aid}/trading-state", json={"state": "ACTIVE"})
        state = (await c.get(f"/accounts/{aid}")).json()["trading_state"]
    assert keyless.status_code == 422 and keyless.json()["code"] == "VALIDATION_FAILED"
    assert flat.status_code == 202 and flat.json()["command"] == "FlattenAccount"
    assert halt.status_code == 202
    assert halted_order.status_code == 409 and halted_order.json()["code"] == "TRADING_STATE_HALTED"
    assert halted_order.json()["rule_id"] == "HALTED"
    assert lift.status_code == 403 and lift.json()["code"] == "FORBIDDEN"
    assert lifted.status_code == 202 and state == "ACTIVE"


async def test_a_read_key_cannot_post_and_no_key_is_unauthorized(api: ApiEnv) -> None:
    async with api.client("read") as c:
        reads = await c.get("/orders")
        post = await c.post("/orders", json=order(1))
        ticket = await c.post("/auth/ws-ticket")
    async with api.client(None) as c:
        anonymous = await c.get("/accounts")
    assert reads.status_code == 200
    assert post.status_code == 403 and post.json()["code"] == "FORBIDDEN"
    assert ticket.status_code == 200 and ticket.json()["ticket"]  # a read key may open the stream
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "UNAUTHORIZED"


async def test_instances_life_cycle_and_params_with_if_match(api: ApiEnv) -> None:
    async with api.client("trade") as c:
        added = await c.post(
            "/instances", json={"name": "sma", "strategy": "sma_cross", "params": {"fast": 5, "slow": 20}}
        )
        got = await c.get("/instances/sma")
        no_match = await c.patch("/instances/sma/params", json={"params": {"qty": 2}})
        changed = await c.patch("/instances/sma/params", json={"params": {"qty": 2}}, headers={"If-Match": '"1"'})
        stale = await c.patch("/instances/sma/params", json={"params": {"qty": 3}}, headers={"If-Match": '"1"'})
        not_live = await c.patch("/instances/sma/params", json={"params": {"fast": 6}}, headers={"If-Match": '"2"'})
        paused = await c.post("/instances/sma/pause")
        state_paused = (await c.get("/instances/sma")).json()["state"]
        resumed = await c.post("/instances/sma/resume")
        stopped = await c.post("/instances/sma/stop", json={"mode": "cancel"})
        listed = (await c.get("/instances")).json()
        await api.d.journal.journal.flush()
        back = await c.post("/instances/sma/rollback", json={"version": 1}, headers={"If-Match": '"2"'})
        await api.d.journal.journal.flush()
        versions = (await c.get("/instances/sma/versions")).json()
        removed = await c.delete("/instances/sma")
        gone = await c.get("/instances/sma")
    assert added.status_code == 202, added.text
    assert got.status_code == 200 and got.headers["etag"] == '"1"' and got.json()["params"]["fast"] == 5
    assert no_match.status_code == 422
    assert changed.status_code == 200 and changed.headers["etag"] == '"2"' and changed.json()["params"]["qty"] == 2
    assert stale.status_code == 412 and stale.json()["code"] == "VERSION_CONFLICT"
    assert stale.json()["rule_id"] == "version_conflict"
    assert not_live.status_code == 422 and not_live.json()["rule_id"] == "not_live"  # fast is fixed while running
    assert paused.status_code == resumed.status_code == stopped.status_code == 202
    assert state_paused == "paused"
    assert [(i["name"], i["state"], i["version"]) for i in listed] == [("sma", "stopped", 2)]
    assert back.status_code == 200 and back.headers["etag"] == '"3"' and back.json()["params"]["qty"] == 1
    assert [(v["version"], v["params"]["qty"], v["reason"]) for v in versions][1:] == [
        (2, 2, ""),
        (3, 1, "rollback to version 1"),
    ]
    assert versions[0]["version"] == 1 and versions[0]["params"]["qty"] == 1 and versions[0]["source"] == "api"
    assert removed.status_code == 202 and gone.status_code == 404


async def test_strategies_list_their_parameter_schema(api: ApiEnv) -> None:
    async with api.client("read") as c:
        found = {s["spec"]: s for s in (await c.get("/strategies")).json()}
    assert "fast" in found["sma_cross"]["params_schema"]["properties"]


async def test_events_catch_up_after_a_seq(api: ApiEnv) -> None:
    async with api.client("trade") as c:
        await c.post("/orders", json=order(1))
        api.d.env.bar()
        await api.d.journal.journal.flush()
        page = (await c.get("/events", params={"after_seq": 0, "topics": "orders,positions"})).json()
        later = (await c.get("/events", params={"after_seq": page["items"][0]["seq"]})).json()
        unknown = await c.get("/events", params={"topics": "nope"})
        huge = await c.get("/events", params={"after_seq": 10**30})
    seqs = [e["seq"] for e in page["items"]]
    assert seqs == sorted(set(seqs)) and page["seq_head"] >= seqs[-1]
    assert {e["topic"] for e in page["items"]} == {"orders", "positions"}
    assert {"filled", "opened"} <= {e["type"] for e in page["items"]}
    assert all(e["seq"] > seqs[0] for e in later["items"])
    assert unknown.status_code == huge.status_code == 422


async def test_the_openapi_document_describes_every_route_and_body(api: ApiEnv) -> None:
    async with api.client(None) as c:
        doc = (await c.get("/openapi.json")).json()
    paths = set(doc["paths"])
    assert {"/api/v1/accounts", "/api/v1/orders", "/api/v1/instances/{name}/params", "/api/v1/events"} <= paths
    schemas = doc["components"]["schemas"]
    assert {"AccountOut", "OrderIn", "CommandResultOut", "Problem", "RuleOut", "EventPage"} <= set(schemas)
    assert {"Hello", "CommandMessage", "EventOut", "SnapshotData"} <= set(schemas)  # the WebSocket's messages
    place = doc["paths"]["/api/v1/orders"]["post"]
    assert {"202", "409", "403"} <= set(place["responses"])


@pytest.mark.parametrize("host", ["evil.example", "127.0.0.1.nip.io"])
async def test_a_foreign_host_is_refused(api: ApiEnv, host: str) -> None:
    async with api.client("read") as c:
        r = await c.get("/accounts", headers={"Host": host})
    assert r.status_code == 400 and r.json()["code"] == "HOST_NOT_ALLOWED"


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b'{"symbol": "ESZ5", "side": "BUY", "qty": ' + b"9" * 5000 + b"}", 422),  # past Python's int limit
        (b"[" * 100_000 + b"]" * 100_000, 413),  # too big before it is too deep
        (b"[" * 1000 + b"]" * 1000, 422),  # too deep
        (b'{"symbol": "ESZ5", "side": "BUY", "qty": 1, "type": "LIMIT", "limit_price": 1E+400}', 422),
        (b'{"accountId": 1E+300000}', 422),
        (b"x" * (65 * 1024), 413),
        (b"{not json", 422),
        (b'{"symbol": "ESZ5", "side": "BUY", "qty": 1, "limit_price": "6650.25", "type": "LIMIT"}', 202),
    ],
)
async def test_bad_bodies_get_4xx_never_5xx(api: ApiEnv, raw: bytes, status: int) -> None:
    async with api.client("trade") as c:
        r = await c.post("/orders", content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == status, r.text
    if status >= 400:
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "VALIDATION_FAILED"
