"""The gateway against hostile input (issue 14): every request the fuzzing found answering 500, stalling the loop,
or storing what it should refuse, now answers a 4xx or the endpoint's error code, stores nothing and stalls nothing;
the admin API needs its token and refuses cross-site requests; Host headers are checked."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient, WebSocketDenialResponse

from propdesk.emulators.projectx.app import ENDPOINTS
from tests.unit.emulators.projectx.conftest import (
    ADMIN,
    BASE_URL,
    ES,
    OCO_ACCT,
    POSITION_ACCT,
    WS_BASE,
    Api,
    gateway_client,
    loop_stalls,
    make_app,
    make_config,
)
from tests.unit.emulators.projectx.test_hubs import hub

JSON_HEADERS = {"Content-Type": "application/json"}
PLACE = {"accountId": POSITION_ACCT, "contractId": ES, "type": 1, "side": 0, "size": 1, "limitPrice": 6000}
BARS = {
    "contractId": ES, "live": False, "startTime": "2025-09-01T00:00:00Z", "endTime": "2027-01-01T00:00:00Z",
    "unit": 2, "unitNumber": 1, "limit": 10, "includePartialBar": False,
}  # fmt: skip
HOSTILE_BODIES = {
    "integer of 4,301 digits": b'{"accountId":' + b"1" * 4301 + b"}",
    "nesting 20,000 deep": b"[" * 20_000 + b"]" * 20_000,
    "1E+300000": b'{"accountId":1E+300000}',
    "1E+400 price": b'{"accountId":11001,"limitPrice":1E+400}',
    "NaN": b'{"accountId":NaN}',
}


def raw(client: TestClient, path: str, body: bytes, token: str | None = None) -> Any:
    headers = dict(JSON_HEADERS)
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return client.post(f"/api/{path}", content=body, headers=headers)


def orders_of(api: Api, account: int) -> list[dict[str, Any]]:
    """Every order of ``account`` through the three order searches (each must answer)."""
    found = api.ok("Order/search", {"accountId": account, "startTimestamp": "2000-01-01T00:00:00Z"})
    assert found["success"] is True
    assert api.ok("Order/searchOpen", {"accountId": account})["success"] is True
    assert api.ok("Order/v2/query", {"filter": {"accountId": account}})["success"] is True
    rows: list[dict[str, Any]] = found["orders"]
    return rows


@pytest.fixture
def watched(api: Api) -> Iterator[tuple[Api, list[str]]]:
    """``api`` with the server loop's stalls collected; the test fails if there is one."""
    with loop_stalls(api.client) as stalls:
        yield api, stalls
    assert stalls == []


def test_hostile_bodies_get_400_on_every_endpoint_before_and_after_login(watched: tuple[Api, list[str]]) -> None:
    api, _ = watched
    for path in ENDPOINTS:
        for name, body in HOSTILE_BODIES.items():
            for token in (None, api.token):
                r = raw(api.client, path, body, token)
                needs_token = ENDPOINTS[path][1]
                if token is None and needs_token:
                    assert r.status_code == 401, (path, name)
                    continue
                assert r.status_code == 400, (path, name, r.status_code, r.text[:200])
                assert r.headers["content-type"] == "application/problem+json"
                assert "$" in r.json()["errors"], (path, name)


def test_a_body_over_max_body_bytes_is_413_with_or_without_content_length(watched: tuple[Api, list[str]]) -> None:
    api, _ = watched
    big = b'{"userName":"' + b"a" * 20_000_000 + b'"}'
    assert raw(api.client, "Auth/loginKey", big).status_code == 413
    assert raw(api.client, "Order/searchOpen", big, api.token).status_code == 413

    def chunks() -> Iterator[bytes]:
        yield b'{"userName":"'
        for _ in range(100):
            yield b"a" * 10_000
        yield b'"}'

    r = api.client.post("/api/Auth/loginKey", content=chunks(), headers=JSON_HEADERS)
    assert "content-length" not in r.request.headers
    assert r.status_code == 413


def test_a_price_with_more_than_nine_decimals_is_refused_and_nothing_stored(api: Api) -> None:
    placed = api.ok("Order/place", {**PLACE, "limitPrice": 6000}).get("orderId")
    assert placed is not None
    before = orders_of(api, POSITION_ACCT)
    r = raw(api.client, "Order/place", json.dumps(PLACE).replace("6000", "6000.1234567891").encode(), api.token)
    assert (r.status_code, r.json()["errorCode"], r.json()["orderId"]) == (200, 2, None)
    assert "not on the tick size" in r.json()["errorMessage"]
    modify = f'{{"accountId":{POSITION_ACCT},"orderId":{placed},"limitPrice":6000.0000000001}}'.encode()
    r = raw(api.client, "Order/modify", modify, api.token)
    assert (r.status_code, r.json()["errorCode"]) == (200, 3)
    assert orders_of(api, POSITION_ACCT) == before
    on_tick = json.dumps(PLACE).replace("6000", "6000.2500000000000").encode()  # 13 decimals, on the tick
    assert raw(api.client, "Order/place", on_tick, api.token).json()["success"] is True


def test_price_1e400_is_refused_and_the_account_stays_searchable(api: Api) -> None:
    before = orders_of(api, POSITION_ACCT)
    for price in ("1E+400", "1E+50", "-1E+99"):
        r = raw(api.client, "Order/place", json.dumps(PLACE).replace("6000", price).encode(), api.token)
        assert r.status_code == 400, price
    assert orders_of(api, POSITION_ACCT) == before


def test_an_order_for_10_18_contracts_is_refused(api: Api) -> None:
    market = {**PLACE, "type": 2, "limitPrice": None}
    assert api("Order/place", {**market, "size": 10**18}).status_code == 400
    cap = make_config().max_order_size
    for size in (cap + 1, 2**31 - 1, 0, -1):
        r = api.ok("Order/place", {**market, "size": size})
        assert (r["errorCode"], r["orderId"]) == (2, None), size
    assert orders_of(api, POSITION_ACCT) == []
    assert api.ok("Position/searchOpen", {"accountId": POSITION_ACCT})["positions"] == []
    oid = api.ok("Order/place", PLACE)["orderId"]
    assert api.ok("Order/modify", {"accountId": POSITION_ACCT, "orderId": oid, "size": cap + 1})["errorCode"] == 3
    assert api.ok("Order/searchById", {"accountId": POSITION_ACCT, "orderId": oid})["order"]["size"] == 1


@pytest.mark.parametrize(
    "fields",
    [
        {"type": 1, "limitPrice": -5},
        {"type": 1, "limitPrice": 0},
        {"type": 4, "stopPrice": -6000},
        {"type": 3, "limitPrice": 6000, "stopPrice": -1},
    ],
)
def test_negative_or_zero_prices_are_refused(api: Api, fields: dict[str, Any]) -> None:
    r = api.ok("Order/place", {**PLACE, "limitPrice": None, **fields})
    assert (r["errorCode"], r["orderId"]) == (2, None)
    assert "must be positive" in r["errorMessage"]
    assert orders_of(api, POSITION_ACCT) == []


def test_modify_to_a_negative_price_is_refused(api: Api) -> None:
    oid = api.ok("Order/place", PLACE)["orderId"]
    assert api.ok("Order/modify", {"accountId": POSITION_ACCT, "orderId": oid, "limitPrice": -6000})["errorCode"] == 3
    assert api.ok("Order/searchById", {"accountId": POSITION_ACCT, "orderId": oid})["order"]["limitPrice"] == 6000


def test_bracket_ticks_out_of_range_are_refused(api: Api) -> None:
    for ticks in (0, -4, 10_001, 2**31 - 1):
        bracket = {"stopLossBracket": {"ticks": ticks, "type": 4}}
        r = api.ok("Order/place", {**PLACE, "accountId": OCO_ACCT, **bracket})
        assert (r["errorCode"], r["orderId"]) == (2, None), ticks
    assert orders_of(api, OCO_ACCT) == []


def test_unit_number_beyond_int32_is_400_and_beyond_a_century_is_code_3(api: Api) -> None:
    assert api("History/retrieveBars", {**BARS, "unit": 1, "unitNumber": 33_000_000_000}).status_code == 400
    for unit, n in ((3, 2_000_000_000), (2, 2**31 - 1), (6, 1300)):
        assert api.ok("History/retrieveBars", {**BARS, "unit": unit, "unitNumber": n})["errorCode"] == 3, unit
    wide = {**BARS, "startTime": "0001-01-01T00:00:00Z", "endTime": "9999-12-31T23:59:59Z"}
    assert api.ok("History/retrieveBars", wide)["success"] is True


def test_admin_api_needs_its_token() -> None:
    with gateway_client(make_app()) as client:
        assert client.get("/_propdesk/faults").status_code == 401
        wrong = client.get("/_propdesk/faults", headers={"Authorization": "Bearer not-the-token"})
        assert wrong.status_code == 401
        assert "not-the-token" not in wrong.text
        assert wrong.headers["www-authenticate"].startswith("Bearer")
        assert client.post("/_propdesk/replay/step", json={"events": 1}).status_code == 401
        assert client.get("/_propdesk/faults", headers=ADMIN).status_code == 200


def test_admin_api_refuses_cross_site_requests_and_non_json_bodies() -> None:
    fault = b'{"path": "Order/place", "status": 503}'
    with gateway_client(make_app()) as client:
        evil = {"Content-Type": "text/plain", "Origin": "http://evil.example"}
        assert client.post("/_propdesk/faults/endpoint", content=fault, headers=evil).status_code == 403
        assert client.post("/_propdesk/faults/endpoint", content=fault, headers={**evil, **ADMIN}).status_code == 403
        fetch = {**ADMIN, **JSON_HEADERS, "Sec-Fetch-Site": "cross-site"}
        assert client.post("/_propdesk/faults/endpoint", content=fault, headers=fetch).status_code == 403
        other_port = {**ADMIN, **JSON_HEADERS, "Origin": "http://127.0.0.1:3000"}
        assert client.post("/_propdesk/faults/endpoint", content=fault, headers=other_port).status_code == 403
        plain = {**ADMIN, "Content-Type": "text/plain"}
        assert client.post("/_propdesk/faults/endpoint", content=fault, headers=plain).status_code == 415
        assert client.get("/_propdesk/faults", headers=ADMIN).json()["endpoints"] == {}
        same = {**ADMIN, **JSON_HEADERS, "Origin": BASE_URL}
        assert client.post("/_propdesk/faults/endpoint", content=fault, headers=same).status_code == 200
        assert "order/place" in client.get("/_propdesk/faults", headers=ADMIN).json()["endpoints"]


def test_admin_switches_out_of_range_are_400() -> None:
    with gateway_client(make_app()) as client:
        for path, body in (
            ("replay/step", {"events": 10**12}),
            ("replay/resume", {"speed": 1e300}),
            ("faults/hub/restart", {"hub": "user", "down_s": 1e9}),
            ("faults/endpoint", {"path": "Order/place", "count": 0}),
            ("faults/hub/messages", {"hub": "user", "delay_s": "NaN"}),
        ):
            assert client.post(f"/_propdesk/{path}", json=body, headers=ADMIN).status_code == 400, path


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8900", "127.0.0.1.nip.io", "10.0.0.1:8900"])
def test_a_foreign_host_header_is_refused_everywhere(client: TestClient, host: str) -> None:
    h = {"Host": host}
    assert client.get("/api/Status/ping", headers=h).status_code == 400
    assert client.post("/api/Auth/loginKey", json={}, headers=h).status_code == 400
    assert client.get("/_propdesk/faults", headers={**h, **ADMIN}).status_code == 400
    assert client.get("/openapi.json", headers=h).status_code == 400
    assert client.post("/hubs/user/negotiate", headers=h).status_code == 400


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.1:8900", "localhost:8900", "LOCALHOST", "[::1]:8900"])
def test_loopback_host_headers_are_served(client: TestClient, host: str) -> None:
    assert client.get("/api/Status/ping", headers={"Host": host}).json() == "pong"


def test_a_websocket_from_a_foreign_host_or_origin_is_refused(client: TestClient) -> None:
    token = Api(client).token
    for headers in ({"Host": "evil.example"}, {"Origin": "http://evil.example"}):
        with (
            pytest.raises(WebSocketDenialResponse) as exc,
            client.websocket_connect(f"{WS_BASE}/hubs/user?access_token={token}", headers=headers),
        ):
            pass
        assert exc.value.status_code in (400, 403)


def test_hub_messages_over_the_limits_are_skipped_and_the_connection_lives(client: TestClient) -> None:
    token = Api(client).token
    with loop_stalls(client) as stalls, hub(client, "user", token) as h:
        h.ws.send_text('{"type":1,"target":"SubscribeOrders","arguments":[1E+300000],"invocationId":"a"}\x1e')
        h.ws.send_text("[" * 50_000 + "\x1e")
        h.ws.send_text('{"type":1,"target":"SubscribeOrders","arguments":[' + "9" * 5000 + '],"invocationId":"b"}\x1e')
        h.send({"type": 1, "target": "Heartbeat", "arguments": [], "invocationId": "c"})
        assert h.next() == {"type": 3, "invocationId": "c"}
    assert stalls == []


def test_openapi_document_lists_every_endpoint(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    paths = {p.removeprefix("/api/").lower() for p in doc["paths"]}
    assert set(ENDPOINTS) | {"status/ping"} == paths
    place = doc["paths"]["/api/Order/place"]["post"]
    assert place["security"] == [{"bearer": []}]
    assert set(place["responses"]) == {"200", "400", "401", "413", "429"}
    assert doc["components"]["schemas"]["PlaceRequest"]["properties"]["accountId"]["maximum"] == 2**31 - 1
