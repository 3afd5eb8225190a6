"""Fault injection switches of the admin API: endpoint 5xx/timeouts, hub drops/delays/restarts, expired tokens."""

from __future__ import annotations

import json

import httpx
import pytest
from starlette.testclient import TestClient

from tests.unit.emulators.projectx.conftest import ADMIN, BASE_URL, ES, POSITION_ACCT, Api, make_app
from tests.unit.emulators.projectx.test_hubs import RS, hub

pytestmark = pytest.mark.timeout(60)


def test_endpoint_error_and_timeout_for_a_count(client: TestClient) -> None:
    api = Api(client)
    r = client.post(
        "/_propdesk/faults/endpoint", json={"path": "Order/place", "status": 503, "count": 1}, headers=ADMIN
    )
    assert r.status_code == 200
    body = {"accountId": POSITION_ACCT, "contractId": ES, "type": 1, "side": 0, "size": 1, "limitPrice": 5000}
    assert api("Order/place", body).status_code == 503
    assert api("Order/place", body).status_code == 200
    client.post(
        "/_propdesk/faults/endpoint",
        json={"path": "/api/Account/search", "mode": "timeout", "delay_s": 0.01},
        headers=ADMIN,
    )
    assert api("Account/search", {}).status_code == 504
    assert api("Account/search", {}).status_code == 504
    assert client.post("/_propdesk/faults/clear", headers=ADMIN).json()["endpoints"] == {}
    assert api("Account/search", {}).status_code == 200
    assert (
        client.post("/_propdesk/faults/endpoint", json={"path": "x", "status": 200}, headers=ADMIN).status_code == 400
    )


def test_drop_and_resume_hub_messages(client: TestClient) -> None:
    api = Api(client)
    with hub(client, "market", api.token) as h:
        h.send({"type": 1, "target": "SubscribeContractQuotes", "arguments": [ES], "invocationId": "1"})
        h.until("GatewayQuote")
        h.next()
        client.post(
            "/_propdesk/faults/hub/messages",
            json={"hub": "market", "drop_all": True, "targets": ["GatewayQuote"]},
            headers=ADMIN,
        )
        api.step(3)
        h.send({"type": 1, "target": "Heartbeat", "arguments": [], "invocationId": "2"})
        assert h.next() == {"type": 3, "invocationId": "2"}  # the quotes of the 3 events were dropped
        client.post("/_propdesk/faults/clear", headers=ADMIN)
        api.step(1)
        assert h.next()["target"] == "GatewayQuote"


def test_drop_connections_abruptly_or_gracefully(client: TestClient) -> None:
    api = Api(client)
    with hub(client, "user", api.token) as h:
        assert client.post("/_propdesk/faults/hub/drop", json={"hub": "user"}, headers=ADMIN).json() == {"dropped": 1}
        msg = h.ws.receive()
        assert msg["type"] == "websocket.close" and msg["code"] == 1011
    with hub(client, "user", api.token) as h:
        client.post("/_propdesk/faults/hub/drop", json={"hub": "all", "graceful": True}, headers=ADMIN)
        close = json.loads(h.ws.receive_text().rstrip(RS))
        assert close["type"] == 7 and close["allowReconnect"] is True


def test_restart_refuses_new_connections_for_a_while(client: TestClient) -> None:
    api = Api(client)
    with hub(client, "market", api.token) as h:
        assert (
            client.post("/_propdesk/faults/hub/restart", json={"hub": "market", "down_s": 60}, headers=ADMIN).json()[
                "closed"
            ]
            == 1
        )
        assert json.loads(h.ws.receive_text().rstrip(RS))["type"] == 7
    assert client.post(f"/hubs/market/negotiate?access_token={api.token}").status_code == 503
    assert client.post(f"/hubs/user/negotiate?access_token={api.token}").status_code == 200
    client.post("/_propdesk/faults/clear", headers=ADMIN)
    assert client.post(f"/hubs/market/negotiate?access_token={api.token}").status_code == 200


def test_expired_tokens_are_refused_by_rest_and_hubs(client: TestClient) -> None:
    api = Api(client)
    with hub(client, "user", api.token) as h:
        r = client.post("/_propdesk/faults/tokens/expire", json={"close_hubs": True}, headers=ADMIN)
        assert r.json()["closed"] == 1
        assert json.loads(h.ws.receive_text().rstrip(RS))["type"] == 7
    assert api("Account/search", {}).status_code == 401
    assert client.post(f"/hubs/user/negotiate?access_token={api.token}").status_code == 401
    fresh = Api(client)
    assert fresh("Account/search", {}).status_code == 200


@pytest.mark.asyncio
async def test_admin_api_is_loopback_only() -> None:
    app = make_app()
    transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 5000))
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as c:
        assert (await c.get("/_propdesk/faults", headers=ADMIN)).status_code == 403
    local = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
    async with httpx.AsyncClient(transport=local, base_url=BASE_URL) as c:
        assert (await c.get("/_propdesk/faults", headers=ADMIN)).status_code == 200
