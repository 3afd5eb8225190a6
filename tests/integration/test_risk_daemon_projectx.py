"""``propdesk risk --broker projectx`` (:class:`ProjectXRiskSession`) on an account that traded before the daemon
started, on the local gateway: a Topstep 50K Combine with four weeks of history (the account of
``test_history_bootstrap``: today a round trip at 08:00/08:15 CT, net -105.60) and a position opened by hand at the
broker at 09:00 CT, before the daemon starts.

The fills the broker reports at connect happened while the daemon was not running: they are the reconcile's restored
state, counted once in the day's figures, never judged as trades opened while the account was REDUCING (the position
is kept, no order goes out). After the first reconcile the MLL floor is known and the account is ACTIVE; a breach
that happens after the start is enforced as usual. The same holds at a reconnect: fills the daemon missed while the
hubs were down arrive in the reconcile, are counted once and judged with every rule after it, not closed as opened
while REDUCING.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from propdesk.emulators.projectx.wire import contract_info
from propdesk.model.price import Money
from propdesk.model.symbology import front_month
from propdesk.risk.audit import JsonLinesAuditLog
from propdesk.risk.decisions import TradingState
from propdesk.risk.presets import load_risk_config
from propdesk.sessions.risk_daemon.session import ProjectXRiskOptions, ProjectXRiskSession
from tests.integration.test_history_bootstrap import ACCT, serve_weeks_gateway, usd
from tests.integration.test_live_projectx import GatewayApi, settings_for, until

pytestmark = pytest.mark.timeout(120)
TODAY_BEFORE = usd("-105.60")
"""Today's realized net of the history before the manual position (the 08:00/08:15 CT round trip)."""
MLL_FLOOR = "49501.30"
"""The floor the history gives (test_history_bootstrap's module docstring)."""


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The account on the gateway at real time: its fills are stamped at the wall clock, not ahead of the daemon's
    clock (the MLL floor's trade history is read up to the daemon's now)."""
    yield from serve_weeks_gateway(monkeypatch, speed=1.0)


def _contract() -> str:
    return contract_info(front_month("ES", time.time_ns())).id


async def _buy(api: GatewayApi, qty: int) -> dict[str, Any]:
    """A market buy placed by hand at the broker (not through propdesk); returns its trade row once filled."""
    body = {"accountId": ACCT, "contractId": _contract(), "type": 2, "side": 0, "size": qty}
    oid = int((await api.call("Order/place", body))["orderId"])
    for _ in range(200):
        rows = [t for t in await api.trades(ACCT) if t["orderId"] == oid]
        if rows:
            return rows[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"the manual order {oid} did not fill")


async def _balance(api: GatewayApi) -> Money:
    rows = (await api.call("Account/search", {"onlyActiveAccounts": False}))["accounts"]
    return Money.of(Decimal(str(next(a for a in rows if a["id"] == ACCT)["balance"])))


async def _start(gateway: str, audit: Path) -> tuple[ProjectXRiskSession, asyncio.Task[dict[str, Any]]]:
    options = ProjectXRiskOptions(
        account_id=ACCT,
        config=load_risk_config("topstep-50k-combine", None),
        settings=settings_for(gateway),
        audit_path=audit,
        quote_stale_s=120.0,  # at real time the replayed minute bars print every 15 s
    )
    session = ProjectXRiskSession(options)
    run = asyncio.create_task(session.run(handle_sigint=False))
    engine = session.daemon.engine
    deadline = time.monotonic() + 40
    while not (session.reconciles and engine.running and engine.trading_state is TradingState.ACTIVE):
        assert not run.done(), run.result()
        assert time.monotonic() < deadline, f"not ACTIVE: {engine.guard.reasons if engine.running else None}"
        await asyncio.sleep(0.05)
    return session, run


async def _stop(session: ProjectXRiskSession, run: asyncio.Task[dict[str, Any]]) -> dict[str, Any]:
    session.stop()
    status: dict[str, Any] = await asyncio.wait_for(run, 30)
    return status


def _closes_opened_while_reducing(audit: Path) -> list[dict[str, Any]]:
    return [
        e for e in JsonLinesAuditLog.read(audit) if any("opened while REDUCING" in r for r in e["verdict"]["reasons"])
    ]


@pytest.mark.asyncio
async def test_start_counts_todays_fills_once_keeps_an_earlier_position_and_enforces_a_new_breach(
    gateway: str, tmp_path: Path
) -> None:
    api = GatewayApi(gateway)
    opened = await _buy(api, 1)  # 09:00 CT: a position opened by hand before the daemon starts
    open_fee = Money.of(Decimal(str(opened["fees"])))
    balance = await _balance(api)
    assert balance == usd("50578.90") - open_fee
    orders_before = sorted(r["id"] for r in await api.orders(ACCT))

    audit = tmp_path / "audit.jsonl"
    session, run = await _start(gateway, audit)
    try:
        await asyncio.sleep(1.0)  # a close sent at the start would have reached the gateway by now
        engine = session.daemon.engine
        status = session.status()
        # the position opened before the start is kept: no order went out, nothing was closed or breached
        assert sorted(r["id"] for r in await api.orders(ACCT)) == orders_before
        positions = await api.positions(ACCT)
        assert list(positions.values()) == [1], positions
        assert [(p["qty"], Decimal(p["avg_price"])) for p in status["positions"]] == [
            (1, Decimal(str(opened["price"])))
        ]
        assert _closes_opened_while_reducing(audit) == []
        assert engine.breaches == [] and engine.flattens == [] and not engine.enforcer.busy
        assert status["state"] == "ACTIVE" and status["fills"]["risk"] == 0
        symbol = status["positions"][0]["symbol"]
        # the day's counters hold today's three fills once: the round trip and the open buy (net of fees)
        assert status["trades_today"] == 3 and status["contracts_today"] == 3
        assert engine.state.day_realized_net == TODAY_BEFORE - open_fee
        assert status["balance_usd"] == str(balance.as_decimal())
        assert status["mll_floor_usd"] == MLL_FLOOR and status["mll_floor_source"] == "broker_history"
        assert [(f["position_after"], f["reconciled"]) for f in status["recent_fills"]] == [
            (1, True),
            (0, True),
            (1, True),
        ]
        # counted fill by fill: the losing round trip ended at the 08:15 CT sell, the open buy starts the next one
        state = engine.state
        assert state.consecutive_losses == 1 and state.last_loss_ts_ns == status["recent_fills"][1]["ts_ns"]
        assert state.snapshot().open_round_trips == ((symbol, Money(0) - open_fee),)

        # a breach after the start is enforced: 5 more contracts by hand make 6 > R5's 5; the excess is closed
        await _buy(api, 5)
        await until(lambda: bool(engine.breaches) and not engine.enforcer.busy, 30)
        await until(lambda: session.daemon.node.positions.net_qty(session.daemon.account_id, symbol) == 5, 30)
        assert [b.decision.rule_id for b in engine.breaches] == ["R5"]
        assert await api.positions(ACCT) == positions | {next(iter(positions)): 5}
        status = session.status()
        assert status["fills"]["risk"] == 1 and status["trades_today"] == 5
        assert [(f["source"], f["qty"], f["reconciled"]) for f in status["recent_fills"][3:]] == [
            ("manual", 5, False),
            ("risk", 1, False),
        ]
    finally:
        status = await _stop(session, run)
    assert _closes_opened_while_reducing(audit) == []


@pytest.mark.asyncio
async def test_fills_missed_while_disconnected_are_counted_once_and_judged_after_the_reconcile(
    gateway: str, tmp_path: Path
) -> None:
    api = GatewayApi(gateway)
    audit = tmp_path / "audit.jsonl"
    session, run = await _start(gateway, audit)
    engine = session.daemon.engine
    try:
        assert session.status()["trades_today"] == 2
        # the user hub loses its messages: the daemon does not see a manual buy; then every hub connection drops
        await api.admin("faults/hub/messages", {"hub": "user", "drop_all": True})
        opened = await _buy(api, 1)
        open_fee = Money.of(Decimal(str(opened["fees"])))
        orders_before = sorted(r["id"] for r in await api.orders(ACCT))
        await api.admin("faults/clear")
        reconciles = session.reconciles
        await api.admin("faults/hub/drop", {"hub": "all"})
        await until(lambda: session.reconciles > reconciles and engine.trading_state is TradingState.ACTIVE, 30)
        await asyncio.sleep(1.0)  # a close sent at the reconcile would have reached the gateway by now

        status = session.status()
        assert sorted(r["id"] for r in await api.orders(ACCT)) == orders_before
        positions = await api.positions(ACCT)
        assert list(positions.values()) == [1], positions
        assert [p["qty"] for p in status["positions"]] == [1]
        assert _closes_opened_while_reducing(audit) == []
        assert engine.breaches == [] and engine.flattens == [] and status["fills"]["risk"] == 0
        assert status["trades_today"] == 3 and status["contracts_today"] == 3
        assert engine.state.day_realized_net == TODAY_BEFORE - open_fee
        assert status["balance_usd"] == str((await _balance(api)).as_decimal())
        assert status["mll_floor_usd"] == MLL_FLOOR
        assert any(c.new == "REDUCING" for c in engine.outcomes.timeline), "the hub drop did not make it REDUCING"
        # the daemon saw the manual fill only in the reconcile after the reconnect, and counted it there
        seen = [
            e for e in JsonLinesAuditLog.read(audit) if e["inputs"].get("fill", {}).get("trade_id") == str(opened["id"])
        ]
        assert [(e["point"], e["verdict"]["action"], e["inputs"]["fill"]["reconciled"]) for e in seen] == [
            ("fill", "RECONCILED", True)
        ]
    finally:
        await _stop(session, run)
