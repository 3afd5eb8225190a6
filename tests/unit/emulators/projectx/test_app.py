"""REST conformance of the gateway: envelope, required fields, per-endpoint error codes, 401/404/429, models."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import jwt
import pytest
from starlette.testclient import TestClient

from propdesk.emulators.projectx.app import ENDPOINTS
from propdesk.model.contracts import spec
from tests.unit.emulators.projectx.conftest import (
    ADMIN,
    ES,
    LOCKED_ACCT,
    OCO_ACCT,
    POSITION_ACCT,
    USER,
    Api,
    gateway_client,
    make_app,
)

ACCOUNT_KEYS = {"id", "name", "balance", "canTrade", "isVisible", "simulated"}
CONTRACT_KEYS = {"id", "name", "description", "tickSize", "tickValue", "activeContract", "symbolId"}
ORDER_KEYS = {
    "id", "accountId", "contractId", "symbolId", "creationTimestamp", "updateTimestamp", "status", "type", "side",
    "size", "limitPrice", "stopPrice", "fillVolume", "filledPrice", "customTag",
}  # fmt: skip
POSITION_KEYS = {"id", "accountId", "contractId", "creationTimestamp", "type", "size", "averagePrice"}
TRADE_KEYS = {
    "id", "accountId", "contractId", "creationTimestamp", "price", "profitAndLoss", "fees", "commissions", "side",
    "size", "voided", "orderId",
}  # fmt: skip
BAR_KEYS = {"t", "o", "h", "l", "c", "v"}
ENVELOPE = {"success", "errorCode", "errorMessage"}
BARS = {
    "contractId": ES, "live": False, "startTime": "2026-01-01T00:00:00Z", "endTime": "2027-01-01T00:00:00Z",
    "unit": 2, "unitNumber": 1, "limit": 10, "includePartialBar": False,
}  # fmt: skip

# (endpoint, a valid body, its payload key, a body that fails with a business error and that code)
CASES: list[tuple[str, dict[str, Any], str | None, dict[str, Any], int]] = [
    ("Account/search", {"onlyActiveAccounts": True}, "accounts", {}, -1),
    ("Contract/search", {"searchText": "ES", "live": False}, "contracts", {}, -1),
    ("Contract/searchById", {"contractId": ES}, "contract", {"contractId": "CON.F.US.XX.Z26"}, 1),
    ("Contract/available", {"live": False}, "contracts", {}, -1),
    ("History/retrieveBars", BARS, "bars", {**BARS, "contractId": "CON.F.US.XX.Z26"}, 1),
    ("Order/search", {"accountId": POSITION_ACCT, "startTimestamp": "2020-01-01T00:00:00Z"}, "orders",
     {"accountId": 1, "startTimestamp": "2020-01-01T00:00:00Z"}, 1),
    ("Order/searchOpen", {"accountId": POSITION_ACCT}, "orders", {"accountId": 1}, 1),
    ("Order/v2/query", {"filter": {"accountId": POSITION_ACCT}}, "orders", {"filter": {"accountId": 1}}, 1),
    ("Position/searchOpen", {"accountId": POSITION_ACCT}, "positions", {"accountId": 1}, 1),
    ("Trade/search", {"accountId": POSITION_ACCT}, "trades", {"accountId": 1}, 1),
    ("Order/place", {"accountId": POSITION_ACCT, "contractId": ES, "type": 1, "side": 0, "size": 1,
                     "limitPrice": 6000}, "orderId", {"accountId": 1, "contractId": ES, "type": 2, "side": 0,
                                                       "size": 1}, 1),
    ("Order/cancel", None, None, {"accountId": POSITION_ACCT, "orderId": 1}, 2),
    ("Position/closeContract", None, "orderId", {"accountId": POSITION_ACCT, "contractId": ES}, 2),
]  # fmt: skip


def test_every_endpoint_refuses_a_missing_or_bad_token(client: TestClient) -> None:
    for path, (_, needs_token) in ENDPOINTS.items():
        if not needs_token:
            continue
        assert client.post(f"/api/{path}", json={}).status_code == 401, path
        bad = {"Authorization": "Bearer not.a.jwt"}
        assert client.post(f"/api/{path}", json={}, headers=bad).status_code == 401, path


def test_unknown_path_is_404_and_ping_is_pong(client: TestClient) -> None:
    assert client.post("/api/Nope/nothing", json={}).status_code == 404
    assert client.post("/api/Auth/loginApp", json={}).status_code == 404
    r = client.get("/api/Status/ping")
    assert r.status_code == 200
    assert r.json() == "pong"


def test_login_returns_a_jwt_with_exp(client: TestClient) -> None:
    r = client.post("/api/Auth/loginKey", json=USER, headers={"Accept": "text/plain"})
    body = r.json()
    assert set(body) >= ENVELOPE | {"token"}
    assert body["success"] is True
    assert body["token"].count(".") == 2
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 86_400


def test_login_errors(client: TestClient) -> None:
    assert client.post("/api/Auth/loginKey", json={"userName": "propdesk"}).status_code == 400
    bad = client.post("/api/Auth/loginKey", json={**USER, "apiKey": "wrong"}).json()
    assert (bad["success"], bad["errorCode"], bad["token"]) == (False, 3, None)
    nouser = client.post("/api/Auth/loginKey", json={**USER, "userName": "x"}).json()
    assert (nouser["errorCode"], nouser["token"]) == (1, None)


@pytest.mark.parametrize(("path", "good", "key", "bad", "code"), CASES)
def test_envelope_and_payload_key_always_present(
    api: Api, path: str, good: dict[str, Any] | None, key: str | None, bad: dict[str, Any], code: int
) -> None:
    if good is not None:
        body = api.ok(path, good)
        assert set(body) >= ENVELOPE
        assert body["success"] is True and body["errorCode"] == 0 and body["errorMessage"] is None
        if key is not None:
            assert key in body and body[key] is not None
    if code >= 0:
        body = api.ok(path, bad)
        assert set(body) >= ENVELOPE
        assert (body["success"], body["errorCode"]) == (False, code)
        assert isinstance(body["errorMessage"], str)
        if key is not None:
            assert key in body and body[key] in (None, [])


REQUIRED = {
    "Contract/search": ({"searchText": "ES", "live": False}, ["searchText"]),
    "Contract/searchById": ({"contractId": ES}, ["contractId"]),
    "History/retrieveBars": (BARS, ["contractId", "startTime", "endTime", "unit", "unitNumber", "limit"]),
    "Order/place": (
        {"accountId": POSITION_ACCT, "contractId": ES, "type": 2, "side": 0, "size": 1},
        ["accountId", "contractId", "type", "side", "size"],
    ),
    "Order/modify": ({"accountId": POSITION_ACCT, "orderId": 1}, ["accountId", "orderId"]),
    "Order/cancel": ({"accountId": POSITION_ACCT, "orderId": 1}, ["accountId", "orderId"]),
    "Order/search": (
        {"accountId": POSITION_ACCT, "startTimestamp": "2020-01-01T00:00:00Z"},
        ["accountId", "startTimestamp"],
    ),
    "Order/searchOpen": ({"accountId": POSITION_ACCT}, ["accountId"]),
    "Position/searchOpen": ({"accountId": POSITION_ACCT}, ["accountId"]),
    "Position/closeContract": ({"accountId": POSITION_ACCT, "contractId": ES}, ["accountId", "contractId"]),
    "Position/partialCloseContract": (
        {"accountId": POSITION_ACCT, "contractId": ES, "size": 1},
        ["accountId", "contractId", "size"],
    ),
    "Trade/search": ({"accountId": POSITION_ACCT}, ["accountId"]),
}


@pytest.mark.parametrize("path", sorted(REQUIRED))
def test_missing_required_field_is_400_problem_details(api: Api, path: str) -> None:
    body, fields = REQUIRED[path]
    for f in fields:
        partial = {k: v for k, v in body.items() if k != f}
        r = api(path, partial)
        assert r.status_code == 400, (path, f)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert f in r.json()["errors"]
    assert api(path, {**body, "unknownField": 1}).status_code == 200


def test_v2_query_invalid_is_problem_details_and_finds_suspended_children(api: Api) -> None:
    r = api("Order/v2/query", {"filter": {"accountId": POSITION_ACCT, "statuses": ["open"]}})
    assert r.status_code == 400
    assert r.json()["status"] == 400 and "filter.statuses" in r.json()["errors"]
    assert api("Order/v2/query", {"accountId": POSITION_ACCT}).status_code == 400
    assert api("Order/v2/query", {"filter": {"accountId": POSITION_ACCT}, "sortBy": 5}).status_code == 400
    last = api.ok("Contract/searchById", {"contractId": ES})
    assert last["success"]
    entry = api.ok(
        "Order/place",
        {"accountId": OCO_ACCT, "contractId": ES, "type": 1, "side": 0, "size": 2, "limitPrice": 5000,
         "stopLossBracket": {"ticks": 8, "type": 4}, "takeProfitBracket": {"ticks": 12, "type": 1}},
    )  # fmt: skip
    assert entry["success"] is True
    open_ids = {o["id"] for o in api.ok("Order/searchOpen", {"accountId": OCO_ACCT})["orders"]}
    assert open_ids == {entry["orderId"]}
    q = api.ok("Order/v2/query", {"filter": {"accountId": OCO_ACCT, "statuses": [8]}, "includeTotalCount": True})
    children = q["orders"]
    assert q["totalCount"] == 2
    assert {c["status"] for c in children} == {8}
    assert {c["parentOrderId"] for c in children} == {entry["orderId"]}
    assert {(c["type"], c["side"], c["size"]) for c in children} == {(4, 1, 2), (1, 1, 2)}
    for o in children:
        assert set(o) >= ORDER_KEYS


def test_position_brackets_rejection_still_carries_an_order_id(api: Api) -> None:
    body = api.ok(
        "Order/place",
        {"accountId": POSITION_ACCT, "contractId": ES, "type": 2, "side": 0, "size": 1,
         "stopLossBracket": {"ticks": 10, "type": 4}, "takeProfitBracket": None},
    )  # fmt: skip
    assert body["success"] is False
    assert body["errorCode"] == 2
    assert body["errorMessage"].startswith("Brackets cannot be used with Position Brackets")
    assert isinstance(body["orderId"], int)
    found = api.ok("Order/searchById", {"accountId": POSITION_ACCT, "orderId": body["orderId"]})["order"]
    assert found["status"] == 5
    assert api.ok("Position/searchOpen", {"accountId": POSITION_ACCT})["positions"] == []


def test_place_error_codes(api: Api) -> None:
    def place(**kw: Any) -> dict[str, Any]:
        b = {"accountId": POSITION_ACCT, "contractId": ES, "type": 2, "side": 0, "size": 1, **kw}
        return api.ok("Order/place", b)

    assert place(accountId=999)["errorCode"] == 1
    assert place(type=1)["errorCode"] == 2  # limit order without limitPrice
    assert place(type=1, limitPrice=6000.1)["errorCode"] == 2  # off tick
    assert place(type=4)["errorCode"] == 2  # stop without stopPrice
    assert place(type=9)["errorCode"] == 2
    assert place(side=3)["errorCode"] == 2
    assert place(size=0)["errorCode"] == 2
    assert place(type=1, limitPrice=5000, customTag="dup")["success"] is True
    dup = place(type=1, limitPrice=5000, customTag="dup")
    assert (dup["errorCode"], dup["orderId"]) == (2, None)
    assert place(accountId=LOCKED_ACCT)["errorCode"] == 4
    assert place(contractId="CON.F.US.ENQ.Z26")["errorCode"] == 5  # NQ has no feed: market closed
    assert place(contractId="CON.F.US.XX.Z26")["errorCode"] == 8
    assert place(contractId="CON.F.US.EP.H27")["errorCode"] == 9  # a listed month that is not the active one
    assert place(type=5, trailPrice=1000)["errorCode"] == 2  # trail distance over 1000 ticks


def test_modify_cancel_and_close_codes(api: Api) -> None:
    oid = api.ok(
        "Order/place",
        {"accountId": POSITION_ACCT, "contractId": ES, "type": 1, "side": 0, "size": 1, "limitPrice": 5000},
    )["orderId"]
    assert api.ok("Order/modify", {"accountId": 999, "orderId": oid})["errorCode"] == 1
    assert api.ok("Order/modify", {"accountId": POSITION_ACCT, "orderId": 1})["errorCode"] == 2
    assert api.ok("Order/modify", {"accountId": POSITION_ACCT, "orderId": oid, "stopPrice": 5000})["errorCode"] == 3
    m = api.ok("Order/modify", {"accountId": POSITION_ACCT, "orderId": oid, "limitPrice": 5001.25, "size": 3})
    assert m["success"] is True
    o = api.ok("Order/searchById", {"accountId": POSITION_ACCT, "orderId": oid})["order"]
    assert (o["limitPrice"], o["size"], o["status"]) == (5001.25, 3, 1)
    assert api.ok("Order/cancel", {"accountId": 999, "orderId": oid})["errorCode"] == 1
    assert api.ok("Order/cancel", {"accountId": POSITION_ACCT, "orderId": 424242})["errorCode"] == 2
    assert api.ok("Order/cancel", {"accountId": POSITION_ACCT, "orderId": oid})["success"] is True
    assert api.ok("Order/cancel", {"accountId": POSITION_ACCT, "orderId": oid})["errorCode"] == 3
    assert api.ok("Position/closeContract", {"accountId": 999, "contractId": ES})["errorCode"] == 1
    assert api.ok("Position/closeContract", {"accountId": POSITION_ACCT, "contractId": ES})["errorCode"] == 2
    assert (
        api.ok("Position/closeContract", {"accountId": POSITION_ACCT, "contractId": "CON.F.US.XX.Z6"})["errorCode"] == 3
    )
    assert (
        api.ok("Position/closeContract", {"accountId": POSITION_ACCT, "contractId": "CON.F.US.EP.H27"})["errorCode"]
        == 4
    )
    api.ok("Order/place", {"accountId": POSITION_ACCT, "contractId": ES, "type": 2, "side": 1, "size": 2})
    bad = api.ok("Position/partialCloseContract", {"accountId": POSITION_ACCT, "contractId": ES, "size": 3})
    assert bad["errorCode"] == 5
    part = api.ok("Position/partialCloseContract", {"accountId": POSITION_ACCT, "contractId": ES, "size": 1})
    assert part["success"] is True and isinstance(part["orderId"], int)
    pos = api.ok("Position/searchOpen", {"accountId": POSITION_ACCT})["positions"]
    assert [(p["type"], p["size"]) for p in pos] == [(2, 1)]


def test_market_round_trip_models_and_exact_pnl(api: Api) -> None:
    acct0 = api.ok("Account/search", {"onlyActiveAccounts": True})["accounts"]
    assert all(set(a) >= ACCOUNT_KEYS for a in acct0)
    start = {a["id"]: Decimal(str(a["balance"])) for a in acct0}[POSITION_ACCT]
    buy = api.ok("Order/place", {"accountId": POSITION_ACCT, "contractId": ES, "type": 2, "side": 0, "size": 2})
    pos = api.ok("Position/searchOpen", {"accountId": POSITION_ACCT})["positions"]
    assert len(pos) == 1 and set(pos[0]) >= POSITION_KEYS and (pos[0]["type"], pos[0]["size"]) == (1, 2)
    api.step(12)
    close = api.ok("Position/closeContract", {"accountId": POSITION_ACCT, "contractId": ES})
    assert close["success"] and isinstance(close["orderId"], int)
    trades = api.ok("Trade/search", {"accountId": POSITION_ACCT, "startTimestamp": "2020-01-01T00:00:00Z"})["trades"]
    assert [t["orderId"] for t in trades] == [buy["orderId"], close["orderId"]]
    assert all(set(t) >= TRADE_KEYS for t in trades)
    opening, closing = trades
    assert opening["profitAndLoss"] is None
    es = spec("ES")
    ticks = (Decimal(str(closing["price"])) - Decimal(str(opening["price"]))) / es.tick_size.as_decimal()
    expected = ticks * es.tick_value.as_decimal() * 2
    assert Decimal(str(closing["profitAndLoss"])) == expected
    balance = {a["id"]: Decimal(str(a["balance"])) for a in api.ok("Account/search", {})["accounts"]}
    assert balance[POSITION_ACCT] == start + expected
    orders = api.ok("Order/search", {"accountId": POSITION_ACCT, "startTimestamp": "2020-01-01T00:00:00Z"})["orders"]
    assert [(o["status"], o["fillVolume"]) for o in orders] == [(2, 2), (2, 2)]
    assert api.ok("Position/searchOpen", {"accountId": POSITION_ACCT})["positions"] == []


def test_contracts_active_month_and_by_id_shapes(app_factory: Any) -> None:
    for shape, keys in (("contract", {"contract"}), ("contracts", {"contracts"}), ("both", {"contract", "contracts"})):
        with gateway_client(app_factory(contract_by_id_shape=shape)) as c:
            api = Api(c)
            body = api.ok("Contract/searchById", {"contractId": ES})
            assert keys <= set(body) and not ({"contract", "contracts"} - keys) & set(body)
            row = body["contract"] if "contract" in keys else body["contracts"][0]
            assert set(row) >= CONTRACT_KEYS
            assert (row["name"], row["symbolId"], row["tickSize"], row["tickValue"]) == ("ESZ6", "F.US.EP", 0.25, 12.5)
            found = api.ok("Contract/search", {"searchText": "ES", "live": False})["contracts"]
            assert [r["name"] for r in found] == ["ESZ6", "MESZ6"]
            assert all(r["activeContract"] for r in found)
    with gateway_client(app_factory(live_contracts="empty")) as c:
        api = Api(c)
        assert api.ok("Contract/search", {"searchText": "ES", "live": True})["contracts"] == []
        assert len(api.ok("Contract/search", {"searchText": "ES", "live": False})["contracts"]) == 2


def test_bars_newest_first_limit_and_codes(api: Api) -> None:
    bars = api.ok("History/retrieveBars", {**BARS, "unit": 2, "unitNumber": 5, "limit": 4})["bars"]
    assert len(bars) == 4 and all(set(b) == BAR_KEYS for b in bars)
    ts = [b["t"] for b in bars]
    assert ts == sorted(ts, reverse=True)
    minutes = api.ok("History/retrieveBars", {**BARS, "unit": 2, "unitNumber": 1, "limit": 20})["bars"]
    first5 = [m for m in minutes if m["t"] >= bars[1]["t"] and m["t"] < bars[0]["t"]]
    assert len(first5) == 5
    assert sum(m["v"] for m in first5) == bars[1]["v"]
    assert max(m["h"] for m in first5) == bars[1]["h"]
    assert min(m["l"] for m in first5) == bars[1]["l"]
    for field, value, code in (("unit", 7, 2), ("unitNumber", 0, 3), ("limit", 20_001, 4)):
        body = api.ok("History/retrieveBars", {**BARS, field: value})
        assert (body["errorCode"], body["bars"]) == (code, [])


def test_rate_limit_429_with_retry_after(app_factory: Any) -> None:
    with gateway_client(app_factory(rate_limit={"general": {"count": 3, "window_s": 60}})) as c:
        api = Api(c)
        for _ in range(3):
            assert api("Account/search", {}).status_code == 200
        r = api("Account/search", {})
        assert r.status_code == 429
        assert 1 <= int(r.headers["Retry-After"]) <= 60


def test_validate_logout_and_expired_tokens(app_factory: Any) -> None:
    with gateway_client(app_factory(validate_grace_s=0)) as c:
        api = Api(c)
        v = api.ok("Auth/validate")
        assert v["success"] is True and v["newToken"].count(".") == 2
        assert api.ok("Auth/logout")["success"] is True
        assert api("Account/search", {}).status_code == 401
        assert api.ok("Auth/validate")["errorCode"] == 2
        fresh = Api(c)
        c.post("/_propdesk/faults/tokens/expire", json={}, headers=ADMIN)
        assert fresh("Account/search", {}).status_code == 401
        expired = fresh.ok("Auth/validate")
        assert (expired["success"], expired["errorCode"], expired["newToken"]) == (False, 3, None)
        assert Api(c)("Account/search", {}).status_code == 200
    with gateway_client(app_factory(validate_grace_s=3600)) as c:
        api = Api(c)
        c.post("/_propdesk/faults/tokens/expire", json={}, headers=ADMIN)
        assert api.ok("Auth/validate")["success"] is True


def test_make_app_without_override_has_spec_defaults() -> None:
    cfg = make_app().state.gateway.config
    assert (cfg.token_ttl_s, cfg.user_event_shape, cfg.contract_by_id_shape) == (86_400, "wrapped", "both")
    assert (cfg.rate_limit.general.count, cfg.rate_limit.history.count) == (200, 30)
