"""Realtime: tolerant unwrapping of raw frames, the stale-feed watchdog and the hub reconnect sequence (spec 5)."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from propdesk.brokers.projectx.realtime import (
    HubConnection,
    StaleFeedWatchdog,
    UserHub,
    unwrap_market_event,
    unwrap_user_event,
    url_with_token,
)
from tests.unit.brokers.projectx.fakes import FakeHubs

ORDER = {
    "id": 9056,
    "accountId": 12345,
    "contractId": "CON.F.US.MNQ.Z26",
    "status": 2,
    "type": 2,
    "side": 0,
    "size": 1,
    "fillVolume": 1,
    "filledPrice": 21000.25,
    "customTag": "pd-7f3a",
}


def frame_args(raw: str) -> object:
    """The ``arguments`` of one SignalR JSON frame (record separator stripped)."""
    return json.loads(raw.rstrip("\x1e"))["arguments"]


@pytest.mark.parametrize(
    ("args", "action", "account"),
    [
        ([{"action": 1, "data": ORDER}], 1, None),  # wrapped
        ([ORDER], None, None),  # bare
        ([12345, {"action": 0, "data": ORDER}], 0, 12345),  # account + wrapped
        ([12345, ORDER], None, 12345),  # account + bare
    ],
)
def test_user_event_shapes(args: object, action: int | None, account: int | None) -> None:
    events = unwrap_user_event(args)
    assert len(events) == 1
    assert events[0].data["id"] == 9056 and events[0].action == action and events[0].account_id == account


def test_user_event_from_a_raw_frame_and_removal() -> None:
    raw = '{"type":1,"target":"GatewayUserOrder","arguments":[{"action":2,"data":' + json.dumps(ORDER) + "}]}\x1e"
    (ev,) = unwrap_user_event(frame_args(raw))
    assert ev.is_removal and ev.data["customTag"] == "pd-7f3a"


def test_user_event_lists_keep_every_payload() -> None:
    events = unwrap_user_event([[{"action": 1, "data": {"id": 1}}, {"action": 1, "data": {"id": 2}}], {"id": 3}])
    assert [e.data["id"] for e in events] == [1, 2, 3]


def test_market_trade_list_keeps_every_trade() -> None:
    raw = (
        '{"type":1,"target":"GatewayTrade","arguments":["CON.F.US.MNQ.Z26",[{"symbolId":"F.US.MNQ","price":21000.25,'
        '"timestamp":"2026-11-20T15:01:02.45+00:00","type":0,"volume":2},{"symbolId":"F.US.MNQ","price":21000.5,'
        '"timestamp":"2026-11-20T15:01:02.45+00:00","type":0,"volume":3}]]}\x1e'
    )
    contract, items = unwrap_market_event(frame_args(raw))
    assert contract == "CON.F.US.MNQ.Z26"
    assert sum(i["volume"] for i in items) == 5  # pitfall 1: PXPY kept one of these


def test_market_single_dict_payload() -> None:
    contract, items = unwrap_market_event(["CON.F.US.EP.Z25", {"bestBid": 1.0}])
    assert contract == "CON.F.US.EP.Z25" and items == [{"bestBid": 1.0}]


def test_watchdog_reports_once_and_resumes() -> None:
    t = [0.0]
    w = StaleFeedWatchdog(30.0, clock=lambda: t[0])
    w.watch("A")
    w.watch("B")
    t[0] = 29.0
    w.touch("B")
    assert w.check() == []
    t[0] = 31.0
    assert w.check() == [("A", 31.0)]
    assert w.check() == []  # once
    assert not w.all_stale
    t[0] = 60.0
    assert [c for c, _ in w.check()] == ["B"]
    assert w.all_stale
    assert w.touch("A") is True and w.touch("A") is False


def test_url_with_token_replaces_old_token_and_id() -> None:
    url = url_with_token("http://h/hubs/user?access_token=old&id=abc&x=1", "new")
    assert "access_token=new" in url and "old" not in url and "id=abc" not in url and "x=1" in url


@pytest.mark.asyncio
async def test_reconnect_uses_fresh_token_resubscribes_then_reconciles_then_connected() -> None:
    hubs = FakeHubs()
    tokens = iter(["tok-1", "tok-2", "tok-3"])
    log: list[str] = []
    states: list[bool] = []

    async def token(force: bool) -> str:
        return next(tokens)

    async def reconcile() -> None:
        log.append("reconcile:" + ",".join(m for _, m, _ in hubs.log))
        hubs.log.clear()

    def on_state(up: bool, reason: str) -> None:
        states.append(up)
        log.append(f"state:{up}")

    async def no_sleep(_s: float) -> None:
        await asyncio.sleep(0)

    hub = UserHub(
        "http://h/hubs/user",
        token,
        [7],
        on_event=lambda t, e: None,
        reconcile=reconcile,
        on_state=on_state,
        factory=hubs,
    )
    hub.conn._sleep = no_sleep
    hub.conn.start()
    for _ in range(50):
        await asyncio.sleep(0)
        if hub.conn.connected:
            break
    assert hub.conn.connected
    assert "access_token=tok-1" in hubs.clients[0].url
    hubs.clients[0].drop()
    for _ in range(50):
        await asyncio.sleep(0)
        if len(hubs.clients) == 2 and hub.conn.connected:
            break
    assert "access_token=tok-2" in hubs.clients[1].url
    assert hubs.clients[1].token_factory() == "tok-2"
    subs = "SubscribeAccounts,SubscribeOrders,SubscribePositions,SubscribeTrades"
    assert log == [f"reconcile:{subs}", "state:True", "state:False", f"reconcile:{subs}", "state:True"]
    assert hubs.clients[1].sent[1] == ("SubscribeOrders", [7]) and hubs.clients[1].sent[0] == ("SubscribeAccounts", [])
    await hub.conn.stop()
    assert states[-1] is False


@pytest.mark.asyncio
async def test_refused_connection_backs_off_and_retries() -> None:
    hubs = FakeHubs()
    hubs.refuse = True
    delays: list[float] = []
    count = [0]

    async def token(force: bool) -> str:
        count[0] += 1
        return f"t{count[0]}"

    async def sleep(s: float) -> None:
        delays.append(s)
        if len(delays) >= 3:
            hubs.refuse = False
        await asyncio.sleep(0)

    async def on_open() -> None:
        return None

    conn = HubConnection(
        "market",
        "http://h/hubs/market",
        token,
        handlers={},
        on_open=on_open,
        on_state=lambda u, r: None,
        factory=hubs,
        rng=lambda: 1.0,
        sleep=sleep,
        reconnect_base_s=1.0,
        reconnect_max_s=3.0,
    )
    conn.start()
    for _ in range(100):
        await asyncio.sleep(0)
        if conn.connected:
            break
    assert conn.connected and delays == [1.0, 2.0, 3.0]
    assert count[0] == 4  # a token asked for on every attempt
    await conn.stop()


def test_tokens_in_hub_urls_are_masked_in_logs(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="pysignalr.transport"):
        logging.getLogger("pysignalr.transport").info(
            "Performing negotiation, URL: `%s`", "http://h/hubs/user/negotiate?access_token=eyJ.abc.def&id=1"
        )
    assert "eyJ.abc.def" not in caplog.text and "access_token=***" in caplog.text
