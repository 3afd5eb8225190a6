"""Generated requests on every endpoint of the gateway (hypothesis, a bounded number of examples).

REST: no reply is a 5xx, every 200 matches the OpenAPI document's reply model, every 400 is ProblemDetails, and
afterwards every account's orders are still searchable (nothing unservable was stored). Admin API: no 5xx. Hubs: no
message closes the connection (a Heartbeat after each is still answered). The server's event loop never stalls.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from propdesk.emulators.projectx.app import ENDPOINTS
from propdesk.emulators.projectx.openapi import REPLIES
from propdesk.emulators.projectx.signalr import RS
from tests.unit.emulators.projectx.conftest import (
    ADMIN,
    ES,
    LOCKED_ACCT,
    OCO_ACCT,
    POSITION_ACCT,
    Api,
    gateway_client,
    loop_stalls,
    make_app,
)
from tests.unit.emulators.projectx.test_hubs import Hub, hub

EXAMPLES = 400
FIELDS = (
    "accountId", "contractId", "type", "side", "size", "limitPrice", "stopPrice", "trailPrice", "customTag",
    "linkedOrderId", "stopLossBracket", "takeProfitBracket", "ticks", "orderId", "startTimestamp", "endTimestamp",
    "startTime", "endTime", "unit", "unitNumber", "limit", "includePartialBar", "live", "onlyActiveAccounts",
    "searchText", "filter", "statuses", "pageSize", "pageOffset", "sortBy", "sortDirection", "includeTotalCount",
    "createdAfter", "createdBefore", "userName", "apiKey",
)  # fmt: skip
TIMES = [
    "2025-09-22T14:00:00Z", "2026-11-18T00:00:00+00:00", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59-23:59",
    "2025-09-22T14:00:00.123456789123", "not a date", "",
]  # fmt: skip

numbers = st.one_of(
    st.integers(min_value=-(10**40), max_value=10**40).map(str),
    st.sampled_from([POSITION_ACCT, OCO_ACCT, LOCKED_ACCT, 1, 2, 4, 6000, 2**31, 2**63, 10**18]).map(str),
    st.integers(min_value=1, max_value=6000).map(lambda n: "9" * n),
    st.builds(lambda m, e: f"{m}E{e:+d}", st.integers(-99, 99), st.integers(-400_000, 400_000)),
    st.decimals(allow_nan=False, allow_infinity=False, places=None).map(str),
    st.builds(lambda p, d: f"{p}.{d}", st.integers(-7000, 7000), st.integers(0, 10**15).map(str)),
)
strings = st.one_of(
    st.text(max_size=20),
    st.sampled_from([ES, "CON.F.US.EP.H27", "CON.F.US.XX.Z26", "ES", "MNQ", *TIMES]),
).map(json.dumps)
scalars = st.one_of(numbers, strings, st.sampled_from(["true", "false", "null", "NaN", "-Infinity"]))


def _obj(items: dict[str, str]) -> str:
    return "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in items.items()) + "}"


values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda xs: "[" + ",".join(xs) + "]"),
        st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=6), inner, max_size=6).map(_obj),
    ),
    max_leaves=16,
)
bodies = st.one_of(
    st.dictionaries(st.sampled_from(FIELDS), values, max_size=10).map(_obj).map(str.encode),
    values.map(str.encode),
    st.integers(min_value=1, max_value=30_000).map(lambda n: b"[" * n + b"]" * n),
    st.binary(max_size=64),
    st.just(b""),
)
paths = st.sampled_from([*ENDPOINTS, "Status/ping", "Nope/x", "ORDER/PLACE"])

BARS = {
    "contractId": ES, "live": False, "startTime": TIMES[0], "endTime": TIMES[1], "unit": 2, "unitNumber": 1,
    "limit": 10, "includePartialBar": True,
}  # fmt: skip
PLACE = {"accountId": OCO_ACCT, "contractId": ES, "type": 1, "side": 0, "size": 1, "limitPrice": 6000}
TEMPLATES: dict[str, dict[str, Any]] = {
    "Order/place": PLACE,
    "Order/modify": {"accountId": OCO_ACCT, "orderId": 1, "size": 2, "limitPrice": 6000.25},
    "History/retrieveBars": BARS,
    "Order/v2/query": {"filter": {"accountId": OCO_ACCT, "statuses": [1, 8]}, "pageSize": 10},
    "Order/search": {"accountId": OCO_ACCT, "startTimestamp": TIMES[0]},
    "Order/searchOpen": {"accountId": OCO_ACCT},
    "Position/partialCloseContract": {"accountId": OCO_ACCT, "contractId": ES, "size": 1},
    "Trade/search": {"accountId": OCO_ACCT, "startTimestamp": TIMES[0]},
    "Contract/searchById": {"contractId": ES},
}
"""A valid body per endpoint; generated cases replace up to three of its fields with generated JSON."""


def _mutated(path: str) -> st.SearchStrategy[tuple[str, bytes]]:
    template = {k: json.dumps(v) for k, v in TEMPLATES[path].items()}
    changes = st.dictionaries(st.sampled_from(sorted(template)), values, max_size=3)
    return changes.map(lambda c: (path, _obj({**template, **c}).encode()))


cases = st.one_of(
    st.tuples(paths, bodies),
    st.sampled_from(sorted(TEMPLATES)).flatmap(_mutated),
)


def _check_reply(path: str, r: Any) -> None:
    assert r.status_code < 500, (path, r.status_code, r.text[:300])
    key = path.lower()
    if r.status_code == 200 and key in REPLIES:
        REPLIES[key].model_validate(r.json())
    if r.status_code == 400 and key in ENDPOINTS:
        assert r.headers["content-type"] == "application/problem+json", (path, r.text[:300])


def test_generated_requests_never_answer_5xx_nor_stall_the_loop() -> None:
    app = make_app(rate_limit={"general": {"count": 10**6, "window_s": 60}, "history": {"count": 10**6, "window_s": 1}})
    with gateway_client(app) as client:
        api = [Api(client)]
        api[0].step(4)

        @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(case=cases, with_token=st.booleans(), method=st.sampled_from(["POST", "POST", "POST", "GET"]))
        def one(case: tuple[str, bytes], with_token: bool, method: str) -> None:
            path, body = case
            headers = {"Content-Type": "application/json", **(api[0].headers if with_token else {})}
            r = client.request(method, f"/api/{path}", content=body, headers=headers)
            _check_reply(path, r)
            if path.lower() == "auth/logout" and r.status_code == 200:
                api[0] = Api(client)  # the token was revoked: log in again

        with loop_stalls(client) as stalls:
            one()
        assert stalls == []
        for account in (POSITION_ACCT, OCO_ACCT, LOCKED_ACCT):
            for path, body in (
                ("Order/search", {"accountId": account, "startTimestamp": "2000-01-01T00:00:00Z"}),
                ("Order/searchOpen", {"accountId": account}),
                ("Order/v2/query", {"filter": {"accountId": account}}),
                ("Position/searchOpen", {"accountId": account}),
                ("Trade/search", {"accountId": account}),
            ):
                r = api[0](path, body)
                assert r.status_code == 200, (path, account, r.text[:300])
                assert REPLIES[path.lower()].model_validate(r.json()).success is True


ADMIN_PATHS = [
    "faults", "faults/clear", "faults/endpoint", "faults/hub/drop", "faults/hub/messages", "faults/hub/restart",
    "faults/tokens/expire", "replay/step", "replay/pause", "replay/resume", "replay",
]  # fmt: skip
ADMIN_FIELDS = [
    "path", "mode", "status", "delay_s", "count", "hub", "graceful", "drop_next", "drop_all", "targets", "down_s",
    "close_hubs", "events", "speed",
]  # fmt: skip
admin_bodies = st.one_of(
    st.dictionaries(st.sampled_from(ADMIN_FIELDS), values, max_size=5).map(_obj).map(str.encode),
    bodies,
)


def test_generated_admin_requests_never_answer_5xx_nor_stall_the_loop() -> None:
    with gateway_client(make_app()) as client:

        @settings(max_examples=EXAMPLES // 2, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(path=st.sampled_from(ADMIN_PATHS), body=admin_bodies, method=st.sampled_from(["POST", "GET"]))
        def one(path: str, body: bytes, method: str) -> None:
            headers = {"Content-Type": "application/json", **ADMIN}
            r = client.request(method, f"/_propdesk/{path}", content=body, headers=headers)
            assert r.status_code < 500, (path, r.status_code, r.text[:300])
            assert client.post("/_propdesk/faults/clear", headers=ADMIN).status_code == 200
            assert client.post("/_propdesk/replay/pause", headers=ADMIN).status_code == 200

        with loop_stalls(client) as stalls:
            one()
        assert stalls == []
        assert client.get("/api/Status/ping").json() == "pong"


HUB_TYPES = ["1", "1", "1", "3", "4", "5", "6", "99", '"1"', "null", "1E+300000", "9" * 5000]
hub_messages = st.one_of(
    st.builds(
        lambda t, target, args, inv: _obj({"type": t, "target": target, "arguments": args, **inv}),
        st.sampled_from(HUB_TYPES),
        st.sampled_from(
            [
                "SubscribeOrders",
                "SubscribeAccounts",
                "SubscribeContractQuotes",
                "SubscribeContractMarketDepth",
                "UnsubscribeTrades",
                "Heartbeat",
                "Nope",
            ]
        ).map(json.dumps)
        | strings,
        st.lists(values, max_size=3).map(lambda xs: "[" + ",".join(xs) + "]") | values,
        st.sampled_from([{}, {"invocationId": '"f"'}, {"invocationId": "1E+300000"}, {"invocationId": "[[[]]]"}]),
    ),
    values,
    st.text(max_size=40),
    st.integers(min_value=1, max_value=30_000).map(lambda n: "[" * n),
)


HUB_FUZZ = settings(max_examples=EXAMPLES // 4, deadline=None, database=None, suppress_health_check=list(HealthCheck))


def _still_answers(h: Hub, message: str, beat: int) -> None:
    """Send ``message`` then a Heartbeat; the Heartbeat's completion must come back before any Close."""
    h.ws.send_text(message + RS)
    h.send({"type": 1, "target": "Heartbeat", "arguments": [], "invocationId": f"hb-{beat}"})
    for _ in range(10_000):  # events and other completions may come first
        m = h.next()
        assert m.get("type") != 7, (message[:200], m)
        if m == {"type": 3, "invocationId": f"hb-{beat}"}:
            return
    raise AssertionError(f"no Heartbeat completion after {message[:200]!r}")


@pytest.mark.parametrize("name", ["user", "market"])
def test_generated_hub_messages_never_close_the_connection_nor_stall_the_loop(name: str) -> None:
    with gateway_client(make_app()) as client:
        api = Api(client)
        with loop_stalls(client) as stalls, hub(client, name, api.token) as h:
            beats = itertools.count()

            @HUB_FUZZ
            @given(message=hub_messages)
            def one(message: str) -> None:
                _still_answers(h, message, next(beats))

            one()
        assert stalls == []
