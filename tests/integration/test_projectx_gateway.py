"""ProjectXBroker against the local gateway on a real uvicorn server (127.0.0.1, free port): login, accounts,
contracts, bars, orders, brackets, fills, positions, trades, closes, and hub reconnects under injected faults."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from propdesk.brokers.projectx import ProjectXBroker, ProjectXSettings
from propdesk.emulators.projectx import create_app
from propdesk.model.data import QuoteTick, Timeframe, TradeTick
from propdesk.model.enums import Side
from propdesk.model.events import (
    BrokerConnected,
    BrokerDisconnected,
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    OrderRejected,
    OrderSuspended,
    OrderUpdated,
)
from propdesk.model.identifiers import AccountId, ClientOrderId
from propdesk.model.orders import BracketSpec, Order, OrderType
from propdesk.model.price import Price
from tests.kit.servers import free_port, serve_app
from tests.unit.emulators.projectx.conftest import ADMIN, OCO_ACCT, POSITION_ACCT, USER, make_config

pytestmark = pytest.mark.timeout(120)
SYMBOL = "ESZ6"
TICK = Price.of("0.25")


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    port = free_port()
    yield from serve_app(create_app(make_config(bind=f"127.0.0.1:{port}", ping_interval_s=0.5)), port)  # wall clock


def settings(base: str) -> ProjectXSettings:
    return ProjectXSettings(
        api_base=f"http://{base}",
        user_hub_url=f"http://{base}/hubs/user",
        market_hub_url=f"http://{base}/hubs/market",
        username=USER["userName"],
        api_key=USER["apiKey"],  # type: ignore[arg-type]
        bracket_modes={OCO_ACCT: "auto_oco"},
        reconnect_base_s=0.1,
        reconnect_max_s=0.5,
        confirm_timeout_s=0.3,
        hub_connect_timeout_s=20,
    )


async def admin(base: str, path: str, body: dict[str, Any] | None = None) -> Any:
    async with httpx.AsyncClient(base_url=f"http://{base}", timeout=10) as http:
        r = await http.post(f"/_propdesk/{path}", json=body or {}, headers=ADMIN)
        assert r.status_code == 200, r.text
        return r.json()


async def until(pred: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not pred():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


class Rec:
    def __init__(self) -> None:
        self.events: list[object] = []

    def __call__(self, e: object) -> None:
        self.events.append(e)

    def of(self, cls: type, cid: str | None = None) -> list[Any]:
        return [
            e for e in self.events if isinstance(e, cls) and (cid is None or getattr(e, "client_order_id", None) == cid)
        ]


def order(acct: int, cid: str, t: OrderType, side: Side, qty: int, **kw: Any) -> Order:
    return Order(ClientOrderId(cid), AccountId(acct), SYMBOL, side, qty, t, tag="it", **kw)


async def started(base: str, acct: int) -> tuple[ProjectXBroker, Rec]:
    broker = ProjectXBroker(settings(base), account_id=acct)
    rec = Rec()
    broker.set_event_handler(rec)
    await broker.connect()
    return broker, rec


@pytest.mark.asyncio
async def test_trading_round_trip(server: str) -> None:
    await admin(server, "faults/clear")
    broker, rec = await started(server, POSITION_ACCT)
    try:
        assert broker.is_connected and rec.of(BrokerConnected)
        assert not broker.capabilities.native_brackets
        acct = await broker.account_report()
        assert acct.account_id == POSITION_ACCT and acct.simulated
        contract = await broker.contract(SYMBOL)
        assert contract.id == "CON.F.US.EP.Z26" and contract.tick_size == TICK.as_decimal()
        end = time.time_ns()
        bars = await broker.request_bars(SYMBOL, Timeframe.parse("1m"), end - 3 * 3600 * 10**9, end)
        assert len(bars) > 0 and bool((bars.ts_open_ns[1:] > bars.ts_open_ns[:-1]).all())

        broker.subscribe(SYMBOL, depth=True)
        await broker.wait_idle()
        await admin(server, "replay/step", {"events": 8})
        await until(lambda: bool(rec.of(QuoteTick)) and bool(rec.of(TradeTick)))
        last = Price.of(str(rec.of(QuoteTick)[-1].bid))

        far = Price(last.raw - 40 * TICK.raw)
        lim = order(POSITION_ACCT, "it-lim", OrderType.LIMIT, Side.BUY, 1, limit_price=far)
        broker.submit_order(lim)
        await until(lambda: bool(rec.of(OrderAccepted, "it-lim")))
        lim.broker_order_id = rec.of(OrderAccepted, "it-lim")[0].broker_order_id
        broker.modify_order(lim, limit_price=Price(far.raw - 4 * TICK.raw))
        await until(lambda: bool(rec.of(OrderUpdated, "it-lim")))
        assert rec.of(OrderUpdated, "it-lim")[-1].limit_price == Price(far.raw - 4 * TICK.raw)
        broker.cancel_order(lim)
        await until(lambda: bool(rec.of(OrderCanceled, "it-lim")))
        assert len(rec.of(OrderCanceled, "it-lim")) == 1

        mkt = order(POSITION_ACCT, "it-mkt", OrderType.MARKET, Side.BUY, 3)
        broker.submit_order(mkt)
        await admin(server, "replay/step", {"events": 2})
        await until(lambda: sum(f.qty for f in rec.of(OrderFilled, "it-mkt")) == 3)
        pos = await broker.position_reports()
        assert [(p.symbol, p.signed_qty) for p in pos] == [(SYMBOL, 3)]

        broker.close_position(SYMBOL, 1)
        await admin(server, "replay/step", {"events": 2})
        await until(lambda: any(f.client_order_id.startswith("px-close-") for f in rec.of(OrderFilled)))
        assert [p.signed_qty for p in await broker.position_reports()] == [2]
        broker.close_position(SYMBOL)
        await admin(server, "replay/step", {"events": 2})
        await until(lambda: sum(f.qty for f in rec.of(OrderFilled) if f.client_order_id.startswith("px-close-")) == 3)
        assert await broker.position_reports() == []
        fills = await broker.fill_reports(0)
        assert sum(f.qty for f in fills if f.side is Side.BUY) == 3
        assert sum(f.qty for f in fills if f.side is Side.SELL) == 3
        assert {f.client_order_id for f in fills if f.side is Side.BUY} == {"it-mkt"}
        trade_ids = [f.trade_id for f in rec.of(OrderFilled)]
        assert len(trade_ids) == len(set(trade_ids))
    finally:
        await broker.aclose()


@pytest.mark.asyncio
async def test_native_brackets_on_auto_oco_account(server: str) -> None:
    await admin(server, "faults/clear")
    broker, rec = await started(server, OCO_ACCT)
    try:
        assert broker.capabilities.native_brackets
        broker.subscribe(SYMBOL)
        await broker.wait_idle()
        await admin(server, "replay/step", {"events": 4})
        await until(lambda: bool(rec.of(QuoteTick)))
        far = Price(Price.of(str(rec.of(QuoteTick)[-1].bid)).raw - 40 * TICK.raw)
        entry = order(OCO_ACCT, "it-br", OrderType.LIMIT, Side.BUY, 1, limit_price=far)
        broker.submit_order(entry, BracketSpec(stop_loss_ticks=8, take_profit_ticks=16))
        await until(lambda: len(rec.of(OrderSuspended)) == 2)
        assert {e.client_order_id for e in rec.of(OrderSuspended)} == {"it-br-sl", "it-br-tp"}
        assert rec.of(OrderAccepted, "it-br")
        reports = await broker.order_reports()
        assert {r.client_order_id for r in reports} >= {"it-br", "it-br-sl", "it-br-tp"}
        broker.cancel_all_orders()
        await until(lambda: {e.client_order_id for e in rec.of(OrderCanceled)} >= {"it-br", "it-br-sl", "it-br-tp"})
    finally:
        await broker.aclose()


@pytest.mark.asyncio
async def test_position_brackets_account_rejects_native_bracket(server: str) -> None:
    await admin(server, "faults/clear")
    s = settings(server).model_copy(update={"bracket_modes": {POSITION_ACCT: "auto_oco"}})  # misconfigured on purpose
    broker = ProjectXBroker(s, account_id=POSITION_ACCT)
    rec = Rec()
    broker.set_event_handler(rec)
    await broker.connect()
    try:
        broker.submit_order(
            order(POSITION_ACCT, "it-pb", OrderType.LIMIT, Side.BUY, 1, limit_price=Price.of("1000")),
            BracketSpec(stop_loss_ticks=8),
        )
        await until(lambda: bool(rec.of(OrderRejected, "it-pb")))
        assert "Position Brackets" in rec.of(OrderRejected, "it-pb")[0].reason
        assert not broker.capabilities.native_brackets
    finally:
        await broker.aclose()


@pytest.mark.asyncio
async def test_reconnect_under_faults_reconciles_lost_fill(server: str) -> None:
    await admin(server, "faults/clear")
    broker, rec = await started(server, POSITION_ACCT)
    try:
        broker.subscribe(SYMBOL)
        await broker.wait_idle()
        await admin(server, "replay/step", {"events": 2})
        # the user hub loses every message: the fill of this order never arrives live
        await admin(server, "faults/hub/messages", {"hub": "user", "drop_all": True})
        broker.submit_order(order(POSITION_ACCT, "it-lost", OrderType.MARKET, Side.BUY, 1))
        await admin(server, "replay/step", {"events": 2})
        await until(lambda: bool(rec.of(OrderAccepted, "it-lost")))
        await asyncio.sleep(0.3)
        assert not rec.of(OrderFilled, "it-lost")
        await admin(server, "faults/clear")
        await admin(server, "faults/hub/drop", {"hub": "all"})
        await until(lambda: len(rec.of(BrokerConnected)) >= 2, 20)
        assert rec.of(BrokerDisconnected)
        (fill,) = rec.of(OrderFilled, "it-lost")
        assert fill.reconciled and fill.qty == 1
        names = [
            type(e).__name__ for e in rec.events if isinstance(e, BrokerConnected | BrokerDisconnected | OrderFilled)
        ]
        assert names.index("OrderFilled") < len(names) - 1 and names[-1] == "BrokerConnected"

        # every token expires and the hubs close: REST renews, the hubs reconnect with the fresh token
        n = len(rec.of(BrokerConnected))
        await admin(server, "faults/tokens/expire", {"close_hubs": True})
        assert (await broker.account_report()).account_id == POSITION_ACCT
        await until(lambda: len(rec.of(BrokerConnected)) > n, 20)
        assert broker.is_connected
        broker.close_position(SYMBOL)
        await admin(server, "replay/step", {"events": 2})
        await until(lambda: any(f.client_order_id.startswith("px-close-") for f in rec.of(OrderFilled)))
        assert await broker.position_reports() == []
    finally:
        await broker.aclose()
