"""``/api/v1/ws`` served by uvicorn (ApiServer) on a loopback port, over the simulated account's desk and its event
stream: snapshot then deltas, resume after a disconnect with every missed event exactly once, a slow consumer closed
with its resume seq, heartbeats, tickets, commands on the socket. SQLite and PostgreSQL for the resume test."""

from __future__ import annotations

import json
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Origin

from propdesk.api.topics import patterns_for
from propdesk.api.ws import CLOSE_RESUME, CLOSE_UNAUTHORIZED
from propdesk.core.bus import topic_matches
from propdesk.storage.repositories import Repository
from tests.kit.api import SYM, ApiEnv, api_on
from tests.unit.storage.conftest import db_url, empty_db_url, pg_database  # noqa: F401

pytestmark = pytest.mark.asyncio

TOPICS = ["orders", "positions"]


async def recv(ws: ClientConnection) -> dict[str, Any]:
    message = json.loads(await ws.recv(decode=True))
    assert set(message) == {"seq", "ts_ns", "topic", "type", "account", "data"}
    return message


async def deltas_until(ws: ClientConnection, seq: int) -> list[dict[str, Any]]:
    """The stream messages up to and including ``seq`` (heartbeats skipped)."""
    out: list[dict[str, Any]] = []
    while not out or out[-1]["seq"] < seq:
        m = await recv(ws)
        if m["topic"] != "system":
            out.append(m)
    return out


async def stored_seqs(api: ApiEnv, after: int, topics: list[str]) -> list[int]:
    """The journaled events of ``topics`` after ``after`` (what a lossless client must receive)."""
    await api.d.journal.journal.flush()
    patterns = patterns_for(topics)
    rows = await Repository(api.d.engine).events_after(after, 100_000)
    return [int(r["seq"]) for r in rows if any(topic_matches(p, r["topic"]) for p in patterns)]


async def trade(api: ApiEnv, key: str, side: str = "BUY") -> None:
    """A market order through REST, filled on the next bar."""
    async with api.client("trade") as c:
        r = await c.post("/orders", json={"symbol": SYM, "side": side, "qty": 1}, headers={"Idempotency-Key": key})
        assert r.status_code == 202, r.text
    api.d.env.bar()
    await api.d.journal.journal.flush()


async def test_snapshot_then_deltas(sqlite_db_url: str) -> None:
    async with api_on(sqlite_db_url, serve=True) as api:
        api.d.env.bar()
        await trade(api, "b1")  # a position before the client connects
        async with api.socket(topics=TOPICS) as ws:
            welcome = await recv(ws)
            snapshot = await recv(ws)
            await trade(api, "s1", "SELL")
            expected = await stored_seqs(api, snapshot["seq"], TOPICS)
            got = await deltas_until(ws, expected[-1])
    assert (welcome["topic"], welcome["type"], welcome["data"]["mode"]) == ("system", "welcome", "snapshot")
    assert welcome["data"]["seq_head"] == welcome["seq"]
    assert (snapshot["topic"], snapshot["account"]) == ("snapshot", api.account_id)
    assert snapshot["data"]["as_of_seq"] == snapshot["seq"] >= welcome["seq"]
    assert [(p["symbol"], p["signed_qty"]) for p in snapshot["data"]["positions"]] == [(SYM, 1)]
    assert snapshot["data"]["account"]["mll_floor_usd"] == "48000.00"
    assert [m["seq"] for m in got] == expected  # every event after the snapshot once, in order
    assert {"filled", "closed"} <= {m["type"] for m in got}


@pytest.mark.parametrize("topics", [TOPICS])
async def test_resume_after_a_disconnect_gets_every_missed_event_exactly_once(db_url: str, topics: list[str]) -> None:  # noqa: F811
    async with api_on(db_url, serve=True) as api:
        api.d.env.bar()
        async with api.socket(topics=topics) as ws:
            await recv(ws)  # welcome
            start = (await recv(ws))["seq"]  # the snapshot's as_of_seq
            await trade(api, "b1")
            first = await deltas_until(ws, (await stored_seqs(api, start, topics))[-1])
        last = first[-1]["seq"]
        for i in range(3):  # missed while disconnected
            await trade(api, f"m{i}", "SELL" if i % 2 == 0 else "BUY")
        async with api.socket(topics=topics, resume_from=last) as ws:
            welcome = await recv(ws)
            await trade(api, "after")  # and live again after the reconnect
            expected = await stored_seqs(api, start, topics)
            second = await deltas_until(ws, expected[-1])
    assert welcome["data"]["mode"] == "replay" and welcome["data"]["after_seq"] == last
    seqs = [m["seq"] for m in first + second]
    assert seqs == expected and len(set(seqs)) == len(seqs)


async def test_a_slow_consumer_is_closed_with_its_resume_seq_and_resumes_without_loss(sqlite_db_url: str) -> None:
    async with api_on(sqlite_db_url, serve=True, max_queue=1) as api:
        api.d.env.bar()
        async with api.socket(topics=TOPICS) as ws:
            await recv(ws)
            start = (await recv(ws))["seq"]
            await trade(api, "b1")  # one journal batch of several events: more than the queue holds
            received: list[dict[str, Any]] = []
            closing: dict[str, Any] | None = None
            while closing is None:
                m = await recv(ws)
                if m["type"] == "closing":
                    closing = m
                elif m["topic"] != "system":
                    received.append(m)
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
        resume = closing["data"]["resume_seq"]
        assert closed.value.rcvd is not None and closed.value.rcvd.code == CLOSE_RESUME
        assert closed.value.rcvd.reason == f"resume_from={resume}"
        assert [m["seq"] for m in received][-1:] in ([], [resume])
        expected = await stored_seqs(api, start, TOPICS)
        rest: list[dict[str, Any]] = []
        while not rest or rest[-1]["seq"] < expected[-1]:  # a queue of 1 may close the resumed socket too
            async with api.socket(topics=TOPICS, resume_from=resume) as ws:
                await recv(ws)
                try:
                    while not rest or rest[-1]["seq"] < expected[-1]:
                        m = await recv(ws)
                        if m["type"] == "closing":
                            resume = m["data"]["resume_seq"]
                            break
                        if m["topic"] != "system":
                            rest.append(m)
                except ConnectionClosed:
                    pass
    assert [m["seq"] for m in received + rest] == expected


async def test_heartbeats_carry_the_seq_head(sqlite_db_url: str) -> None:
    async with api_on(sqlite_db_url, serve=True, heartbeat_s=0.05) as api:
        await trade(api, "b1")  # events: the head is past 0
        async with api.socket(topics=["risk"]) as ws:
            await recv(ws)
            await recv(ws)
            beats = [await recv(ws)]
            while beats[-1]["seq"] != api.d.stream.head_seq:  # the head moves once the journal commits
                beats.append(await recv(ws))
            head = api.d.stream.head_seq
    assert {(b["topic"], b["type"]) for b in beats} == {("system", "heartbeat")}
    assert all(b["seq"] == b["data"]["seq_head"] for b in beats)
    assert beats[-1]["seq"] == head > 0


async def test_a_ticket_opens_one_socket_only(sqlite_db_url: str) -> None:
    async with api_on(sqlite_db_url, serve=True) as api:
        assert api.server is not None
        ticket = await api.ticket()
        url = api.server.url.replace("http://", "ws://") + "/api/v1/ws"
        async with connect(url) as ws:
            await ws.send(json.dumps({"type": "hello", "ticket": ticket}))
            assert (await recv(ws))["type"] == "welcome"
        async with connect(url) as ws:
            await ws.send(json.dumps({"type": "hello", "ticket": ticket}))
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == CLOSE_UNAUTHORIZED


async def test_commands_on_the_socket_are_answered_with_the_verdict(sqlite_db_url: str) -> None:
    async with api_on(sqlite_db_url, serve=True) as api:
        api.d.env.bar()
        body = {"symbol": SYM, "side": "BUY", "qty": 2, "stop_loss_ticks": 8}
        async with api.socket(scope="trade", topics=["risk"]) as ws:
            await recv(ws)
            await recv(ws)
            await ws.send(
                json.dumps(
                    {"type": "command", "id": "c1", "command": "submit_order", "body": {**body, "dry_run": True}}
                )
            )
            dry = await recv(ws)
            await ws.send(
                json.dumps(
                    {
                        "type": "command",
                        "id": "c2",
                        "command": "submit_order",
                        "idempotency_key": "ws-1",
                        "body": {**body, "qty": 6},
                    }
                )
            )
            denied = await recv(ws)
            await ws.send(json.dumps({"type": "command", "id": "c3", "command": "launch_rocket"}))
            malformed = await recv(ws)
            await ws.send("{not json")
            not_json = await recv(ws)
        async with api.socket(scope="read", topics=["risk"]) as ws:
            await recv(ws)
            await recv(ws)
            await ws.send(json.dumps({"type": "command", "id": "c4", "command": "flatten"}))
            forbidden = await recv(ws)
    assert (dry["topic"], dry["type"], dry["data"]["id"]) == ("command", "result", "c1")
    assert dry["data"]["result"]["accepted"] and dry["data"]["result"]["risk"]["at_risk_usd"] == "200.00"
    assert denied["data"]["problem"]["code"] == "RISK_DENIED" and denied["data"]["problem"]["rule_id"] == "R5"
    assert malformed["data"]["problem"]["code"] == not_json["data"]["problem"]["code"] == "VALIDATION_FAILED"
    assert forbidden["data"]["problem"]["code"] == "FORBIDDEN"


async def test_a_cross_origin_socket_is_refused(sqlite_db_url: str) -> None:
    async with api_on(sqlite_db_url, serve=True) as api:
        assert api.server is not None
        url = api.server.url.replace("http://", "ws://") + "/api/v1/ws"
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url, origin=Origin("http://evil.example")):
                pass
    assert refused.value.response.status_code == 403
