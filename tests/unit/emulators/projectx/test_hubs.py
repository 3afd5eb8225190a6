"""SignalR conformance of both hubs: negotiate, handshake, framing, ping, close, invocations and wire shapes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from starlette.testclient import TestClient, WebSocketDenialResponse

from propdesk.emulators.projectx.hubs import chunk
from tests.unit.emulators.projectx.conftest import ES, OCO_ACCT, POSITION_ACCT, WS_BASE, Api, gateway_client, make_app

RS = "\x1e"
pytestmark = pytest.mark.timeout(60)
USER_REQUIRED = {
    "GatewayUserOrder": {"id", "accountId", "contractId", "symbolId", "creationTimestamp", "updateTimestamp",
                         "status", "type", "side", "size", "limitPrice", "stopPrice", "fillVolume", "filledPrice",
                         "customTag"},
    "GatewayUserTrade": {"id", "accountId", "contractId", "creationTimestamp", "price", "profitAndLoss", "fees",
                         "side", "size", "voided", "orderId"},
    "GatewayUserPosition": {"id", "accountId", "contractId", "creationTimestamp", "type", "size", "averagePrice"},
    "GatewayUserAccount": {"id", "name", "balance", "canTrade", "isVisible", "simulated"},
}  # fmt: skip


class Hub:
    """A raw hub client over the TestClient WebSocket: splits frames on 0x1E, skips pings unless asked."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.pending: list[dict[str, Any]] = []

    def send(self, *messages: dict[str, Any]) -> None:
        self.ws.send_text("".join(json.dumps(m) + RS for m in messages))

    def next(self, *, pings: bool = False) -> dict[str, Any]:
        while True:
            if not self.pending:
                frame = self.ws.receive_text()
                assert frame.endswith(RS)
                self.pending = [json.loads(p) for p in frame.split(RS) if p]
            msg = self.pending.pop(0)
            if pings or msg.get("type") != 6:
                return msg

    def until(self, target: str) -> dict[str, Any]:
        for _ in range(200):
            m = self.next()
            if m.get("target") == target:
                return m
        raise AssertionError(f"no {target}")


@contextmanager
def hub(client: TestClient, name: str, token: str, query: str = "") -> Iterator[Hub]:
    with client.websocket_connect(f"{WS_BASE}/hubs/{name}?access_token={token}{query}") as ws:
        ws.send_text('{"protocol":"json","version":1}' + RS)
        assert ws.receive_text() == "{}" + RS
        yield Hub(ws)


def test_negotiate_versions_and_auth(client: TestClient) -> None:
    token = Api(client).token
    v0 = client.post(f"/hubs/user/negotiate?access_token={token}")
    assert v0.status_code == 200
    body = v0.json()
    assert body["negotiateVersion"] == 0 and isinstance(body["connectionId"], str)
    assert body["availableTransports"] == [{"transport": "WebSockets", "transferFormats": ["Text", "Binary"]}]
    v1 = client.post("/hubs/market/negotiate?negotiateVersion=1", headers={"Authorization": f"Bearer {token}"})
    assert v1.json()["negotiateVersion"] == 1 and "connectionToken" in v1.json()
    assert client.post("/hubs/user/negotiate").status_code == 401
    assert client.post("/hubs/user/negotiate?access_token=junk").status_code == 401


def test_websocket_refused_without_valid_token(client: TestClient) -> None:
    with (
        pytest.raises(WebSocketDenialResponse) as exc,
        client.websocket_connect(f"{WS_BASE}/hubs/user?access_token=junk"),
    ):
        pass
    assert exc.value.status_code == 401


def test_handshake_with_and_without_negotiation_and_bad_protocol(client: TestClient) -> None:
    token = Api(client).token
    cid = client.post(f"/hubs/user/negotiate?access_token={token}").json()["connectionId"]
    for query in (f"&id={cid}", "", "&id=stale-unknown-id"):
        with hub(client, "user", token, query) as h:
            h.send({"type": 1, "target": "Heartbeat", "arguments": [{"timestamp": 1.0}], "invocationId": "1"})
            assert h.next() == {"type": 3, "invocationId": "1"}
    with client.websocket_connect(f"{WS_BASE}/hubs/user?access_token={token}") as ws:
        ws.send_text('{"protocol":"messagepack","version":1}' + RS)
        reply = json.loads(ws.receive_text().rstrip(RS))
        assert "error" in reply


def test_ping_unknown_methods_and_several_messages_per_frame(app_factory: Any) -> None:
    with gateway_client(app_factory(ping_interval_s=0.05)) as client:
        token = Api(client).token
        with hub(client, "market", token) as h:
            assert h.next(pings=True) == {"type": 6}
            h.send(
                {"type": 1, "target": "SubscribeToQuotes", "arguments": [ES], "headers": {}},
                {"type": 1, "target": "NoSuchMethod", "arguments": [], "invocationId": "a"},
                {"type": 1, "target": "SubscribeContractQuotes", "arguments": [ES], "invocationId": "b"},
            )
            err = h.next()
            assert (err["type"], err["invocationId"]) == (3, "a") and "NoSuchMethod" in err["error"]
            quote = h.next()
            assert quote["target"] == "GatewayQuote" and quote["arguments"][0] == ES
            assert h.next() == {"type": 3, "invocationId": "b"}


def test_client_close_message_closes(client: TestClient) -> None:
    token = Api(client).token
    with hub(client, "user", token) as h:
        h.send({"type": 7})
        msg = h.ws.receive()
        assert msg["type"] == "websocket.close"


def test_subscribe_accounts_takes_no_arguments(client: TestClient) -> None:
    token = Api(client).token
    with hub(client, "user", token) as h:
        h.send({"type": 1, "target": "SubscribeAccounts", "arguments": [POSITION_ACCT], "invocationId": "1"})
        assert "error" in h.next()
        h.send({"type": 1, "target": "SubscribeOrders", "arguments": [999], "invocationId": "2"})
        assert "error" in h.next()
        h.send({"type": 1, "target": "SubscribeAccounts", "arguments": [], "invocationId": "3"})
        assert h.next() == {"type": 3, "invocationId": "3"}


def _unwrap(shape: str, args: list[Any], account_id: int) -> tuple[int | None, dict[str, Any]]:
    if shape == "wrapped":
        assert len(args) == 1 and set(args[0]) == {"action", "data"}
        return args[0]["action"], args[0]["data"]
    if shape == "bare":
        assert len(args) == 1 and "action" not in args[0]
        return None, args[0]
    assert len(args) == 2 and args[0] == account_id
    if shape == "acct_wrapped":
        return args[1]["action"], args[1]["data"]
    return None, args[1]


@pytest.mark.parametrize("shape", ["wrapped", "bare", "acct_wrapped", "acct_bare"])
def test_user_events_fill_sequence_in_each_shape(shape: str) -> None:
    with gateway_client(make_app(user_event_shape=shape)) as client:
        api = Api(client)
        api.step(4)
        with hub(client, "user", api.token) as h:
            subs = [("SubscribeAccounts", [])] + [
                (t, [POSITION_ACCT]) for t in ("SubscribeOrders", "SubscribePositions", "SubscribeTrades")
            ]
            h.send(*({"type": 1, "target": t, "arguments": a, "invocationId": t} for t, a in subs))
            for _ in subs:
                assert h.next()["type"] == 3
            placed = api.ok(
                "Order/place", {"accountId": POSITION_ACCT, "contractId": ES, "type": 2, "side": 0, "size": 1}
            )
            seen = []
            orders = []
            for _ in range(5):
                m = h.next()
                seen.append(m["target"])
                action, data = _unwrap(shape, m["arguments"], POSITION_ACCT)
                assert USER_REQUIRED[m["target"]] <= set(data)
                if m["target"] == "GatewayUserOrder":
                    orders.append((action, data["id"], data["status"], data["fillVolume"]))
                if m["target"] == "GatewayUserPosition":
                    assert (data["type"], data["size"]) == (1, 1)
            oid = placed["orderId"]
            if shape in ("wrapped", "acct_wrapped"):
                assert orders == [(0, oid, 1, 0), (1, oid, 2, 1)]
            else:
                assert orders == [(None, oid, 1, 0), (None, oid, 2, 1)]
            assert seen == [
                "GatewayUserOrder",
                "GatewayUserOrder",
                "GatewayUserTrade",
                "GatewayUserPosition",
                "GatewayUserAccount",
            ]
            api.ok("Position/closeContract", {"accountId": POSITION_ACCT, "contractId": ES})
            pos = h.until("GatewayUserPosition")
            _, data = _unwrap(shape, pos["arguments"], POSITION_ACCT)
            assert (data["size"], data["type"]) == (0, 1)


def test_bracket_children_events_and_remove_action() -> None:
    with gateway_client(make_app(emit_remove_action=True)) as client:
        api = Api(client)
        api.step(4)
        with hub(client, "user", api.token) as h:
            h.send({"type": 1, "target": "SubscribeOrders", "arguments": [OCO_ACCT], "invocationId": "1"})
            h.next()
            oid = api.ok(
                "Order/place",
                {"accountId": OCO_ACCT, "contractId": ES, "type": 1, "side": 0, "size": 1, "limitPrice": 5000,
                 "stopLossBracket": {"ticks": 4, "type": 4}, "takeProfitBracket": {"ticks": 4, "type": 1}},
            )["orderId"]  # fmt: skip
            first = [h.until("GatewayUserOrder")["arguments"][0] for _ in range(3)]
            assert {(m["data"]["status"], m["data"]["parentOrderId"]) for m in first} == {
                (8, oid),
                (1, None),
            }
            api.ok("Order/cancel", {"accountId": OCO_ACCT, "orderId": oid})
            actions = [h.until("GatewayUserOrder")["arguments"][0] for _ in range(6)]
            assert sum(1 for m in actions if m["action"] == 2) == 3
            assert {m["data"]["status"] for m in actions} == {3}


def test_market_wire_shapes_trades_depth_and_quotes(client: TestClient) -> None:
    api = Api(client)
    with hub(client, "market", api.token) as h:
        for i, t in enumerate(("SubscribeContractTrades", "SubscribeContractMarketDepth", "SubscribeContractQuotes")):
            h.send({"type": 1, "target": t, "arguments": [ES], "invocationId": str(i)})
        snapshot = h.until("GatewayDepth")
        contract, items = snapshot["arguments"]
        assert contract == ES and isinstance(items, list)
        assert items[0]["type"] == 6
        assert all({"type", "price", "volume", "timestamp", "currentVolume"} <= set(i) for i in items)
        assert {i["type"] for i in items[1:]} == {1, 2}
        quote = h.until("GatewayQuote")
        assert {"symbol", "lastPrice", "bestBid", "bestAsk", "volume", "timestamp"} <= set(quote["arguments"][1])
        assert quote["arguments"][1]["symbol"] == "F.US.EP"
        api.step(8)
        trade = h.until("GatewayTrade")
        contract, items = trade["arguments"]
        assert contract == ES and isinstance(items, list) and items
        assert all({"symbolId", "price", "timestamp", "volume", "type"} <= set(i) for i in items)
        assert all(i["type"] in (0, 1) and i["volume"] > 0 for i in items)


def test_partial_quotes_send_changed_fields_plus_symbol_and_timestamp() -> None:
    with gateway_client(make_app(partial_quotes=True)) as client:
        api = Api(client)
        with hub(client, "market", api.token) as h:
            h.send({"type": 1, "target": "SubscribeContractQuotes", "arguments": [ES]})
            full = h.until("GatewayQuote")["arguments"][1]
            api.step(1)
            part = h.until("GatewayQuote")["arguments"][1]
            assert {"symbol", "timestamp"} <= set(part)
            assert set(part) < set(full)
            assert all(part[k] != full[k] for k in part if k not in ("symbol", "timestamp"))


def test_keepalive_resends_last_quote_when_quiet(client: TestClient) -> None:
    api = Api(client)
    gw = client.app.state.gateway  # type: ignore[attr-defined]
    with hub(client, "market", api.token) as h:
        h.send({"type": 1, "target": "SubscribeContractQuotes", "arguments": [ES], "invocationId": "1"})
        first = h.until("GatewayQuote")
        h.next()
        assert gw.market_hub.keepalive(now_mono=0.0) == 0
        assert gw.market_hub.keepalive(now_mono=10**9) == 1
        assert h.until("GatewayQuote") == first


def test_depth_snapshot_split_under_max_frame_bytes() -> None:
    items = [{"timestamp": "2026-11-18T00:00:00.000000+00:00", "type": 1, "price": 6000.0 + i, "volume": i,
              "currentVolume": i} for i in range(500)]  # fmt: skip
    parts = chunk(items, 4096)
    assert len(parts) > 1
    assert [x for p in parts for x in p] == items
    assert all(len(json.dumps(p, separators=(",", ":"))) < 4096 for p in parts)
    with gateway_client(make_app(max_frame_bytes=1024)) as client:
        api = Api(client)
        with client.websocket_connect(f"{WS_BASE}/hubs/market?access_token={api.token}") as ws:
            ws.send_text('{"protocol":"json","version":1}' + RS)
            ws.receive_text()
            ws.send_text(json.dumps({"type": 1, "target": "SubscribeContractMarketDepth", "arguments": [ES]}) + RS)
            got: list[dict[str, Any]] = []
            while len(got) < 21:  # Reset + 10 bid + 10 ask levels
                frame = ws.receive_text()
                assert len(frame.encode()) <= 1024
                msg = json.loads(frame.rstrip(RS))
                assert msg["target"] == "GatewayDepth"
                got.extend(msg["arguments"][1])
            assert got[0]["type"] == 6 and len(got) == 21
