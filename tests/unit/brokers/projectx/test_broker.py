"""ProjectXBroker against the REST emulator and scripted hubs: events, ids, uncertain outcomes, reconnect."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from propdesk.brokers.projectx.broker import ProjectXBroker
from propdesk.brokers.projectx.config import ProjectXSettings
from propdesk.brokers.projectx.rest import ProjectXRest
from propdesk.model.data import DepthUpdate, QuoteTick, TradeTick
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
from propdesk.model.price import Money, Price
from tests.unit.brokers.projectx.fakes import ES, FakeHubs, FakeProjectX, Fault

ACCT = 1001


class Harness:
    def __init__(self, *, bracket_mode: str = "position", server_bracket_mode: str = "position") -> None:
        self.api = FakeProjectX(now=time.time, bracket_mode=server_bracket_mode)
        self.gates: dict[str, asyncio.Event] = {}
        self.hubs = FakeHubs()
        self.events: list[object] = []
        settings = ProjectXSettings(
            api_base="http://127.0.0.1:1",
            user_hub_url="http://127.0.0.1:1/hubs/user",
            market_hub_url="http://127.0.0.1:1/hubs/market",
            username="me",
            api_key="secret-key",  # type: ignore[arg-type]
            bracket_modes={ACCT: bracket_mode},  # type: ignore[dict-item]
            confirm_timeout_s=0.05,
            reconnect_base_s=0.01,
            hub_connect_timeout_s=5,
        )

        async def handler(request: httpx.Request) -> httpx.Response:
            gate = self.gates.get(request.url.path.removeprefix("/api/"))
            if gate is not None:
                await gate.wait()
            return self.api.handle(request)

        rest = ProjectXRest(settings, transport=httpx.MockTransport(handler))
        self.broker = ProjectXBroker(settings, account_id=ACCT, rest=rest, hub_factory=self.hubs)
        self.broker.set_event_handler(self.events.append)

    async def connect(self) -> None:
        await self.broker.connect()

    def of(self, cls: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, cls)]

    async def push(self, target: str, args: Any, hub: str = "user") -> None:
        await self.hubs.latest(hub).push(target, args)

    async def settle(self) -> None:
        await self.broker.wait_idle(5)
        for _ in range(5):
            await asyncio.sleep(0)


def order(cid: str = "pd-1", t: OrderType = OrderType.LIMIT, side: Side = Side.BUY, qty: int = 1, **kw: Any) -> Order:
    if t is OrderType.LIMIT and "limit_price" not in kw:
        kw["limit_price"] = Price.of("6000.25")
    return Order(ClientOrderId(cid), AccountId(ACCT), "ESZ5", side, qty, t, tag="strat", **kw)


def trade(tid: int, order_id: int, size: int = 1, price: float = 6000.25, side: int = 0) -> dict[str, Any]:
    return {
        "id": tid,
        "accountId": ACCT,
        "contractId": ES["id"],
        "creationTimestamp": "2025-11-20T15:01:03.5+00:00",
        "price": price,
        "profitAndLoss": None,
        "fees": 1.4,
        "side": side,
        "size": size,
        "voided": False,
        "orderId": order_id,
    }


@pytest.mark.asyncio
async def test_connect_subscribes_reconciles_and_reports_connected() -> None:
    h = Harness()
    await h.connect()
    assert h.broker.is_connected and len(h.of(BrokerConnected)) == 1
    sent = [m for _, m, _ in h.hubs.log]
    assert sent[:4] == ["SubscribeAccounts", "SubscribeOrders", "SubscribePositions", "SubscribeTrades"]
    for ep in ("Trade/search", "Order/searchOpen", "Position/searchOpen"):
        assert h.api.count(ep) == 1
    assert not h.broker.capabilities.native_brackets and h.broker.capabilities.client_order_ids
    await h.broker.aclose()


@pytest.mark.asyncio
async def test_submit_places_with_custom_tag_and_accepts() -> None:
    h = Harness()
    await h.connect()
    h.broker.submit_order(order())
    await h.settle()
    (acc,) = h.of(OrderAccepted)
    body = next(b for e, b in h.api.calls if e == "Order/place")
    assert body["customTag"] == "pd-1" and body["limitPrice"] == 6000.25 and body["type"] == 1 and body["side"] == 0
    assert acc.client_order_id == "pd-1" and acc.broker_order_id == next(iter(h.api.orders))
    # the hub's own report of the same order adds nothing
    await h.push("GatewayUserOrder", [{"action": 0, "data": h.api.orders[acc.broker_order_id]}])
    assert len(h.of(OrderAccepted)) == 1
    await h.broker.aclose()


@pytest.mark.asyncio
async def test_uncertain_place_found_by_custom_tag_is_not_resent() -> None:
    h = Harness()
    await h.connect()
    h.api.faults["Order/place"].append(Fault("timeout", apply=True))
    h.broker.submit_order(order("pd-9"))
    await h.settle()
    assert h.api.count("Order/place") == 1
    (acc,) = h.of(OrderAccepted)
    assert acc.client_order_id == "pd-9" and h.api.orders[acc.broker_order_id]["customTag"] == "pd-9"
    assert not h.of(OrderRejected)
    await h.broker.aclose()


@pytest.mark.asyncio
async def test_uncertain_place_absent_is_rejected_not_resent() -> None:
    h = Harness()
    await h.connect()
    h.api.faults["Order/place"].append(Fault(503))
    h.broker.submit_order(order("pd-5"))
    await h.settle()
    assert h.api.count("Order/place") == 1 and not h.api.orders
    (rej,) = h.of(OrderRejected)
    assert "not placed" in rej.reason and "pd-5" in rej.reason
    await h.broker.aclose()


@pytest.mark.asyncio
async def test_fills_from_trades_deduped_and_terminal_after_fills() -> None:
    h = Harness()
    await h.connect()
    h.broker.submit_order(order("pd-2", t=OrderType.MARKET, qty=3))
    await h.settle()
    oid = h.of(OrderAccepted)[0].broker_order_id
    filled = {**h.api.orders[oid], "status": 2, "fillVolume": 3}
    await h.push("GatewayUserOrder", [{"action": 1, "data": filled}])  # order says filled before its trades
    await h.push("GatewayUserTrade", [{"action": 0, "data": trade(1, oid, 2)}])
    await h.push("GatewayUserTrade", [{"action": 0, "data": trade(1, oid, 2)}])  # duplicate
    await h.push("GatewayUserTrade", [trade(2, oid, 1, 6000.5)])  # bare shape
    fills = h.of(OrderFilled)
    assert [(f.trade_id, f.qty) for f in fills] == [("1", 2), ("2", 1)]
    assert fills[0].fee == Money(140) and fills[1].price == Price.of("6000.5") and fills[0].client_order_id == "pd-2"
    await h.broker.aclose()


@pytest.mark.asyncio
async def test_missing_trades_fetched_before_cancel_is_reported() -> None:
    h = Harness()
    await h.connect()
    h.broker.submit_order(order("pd-3", qty=2))
    await h.settle()
    oid = h.of(OrderAccepted)[0].broker_order_id
    h.api.trades.append(trade(77, oid, 1))
    await h.push("GatewayUserOrder", [{"action": 1, "data": {**h.api.orders[oid], "status": 3, "fillVolume": 1}}])
    assert not h.of(OrderCanceled)  # waits for the fill
    await h.settle()
    kinds = [type(e).__name__ for e in h.events if isinstance(e, OrderFilled | OrderCanceled)]
    assert kinds == ["OrderFilled", "OrderCanceled"]
    await h.broker.aclose()


@pytest.mark.asyncio
async def test_foreign_orders_get_ext_ids_and_close_orders_px_close() -> None:
    h = Harness()
    await h.connect()
    manual = h.api.order(customTag=None, type=2, status=2, fillVolume=1)
    await h.push("GatewayUserOrder", [ACCT, {"action": 0, "data": {**manual, "status": 1}}])
    await h.push("GatewayUserTrade", [ACCT, trade(5, manual["id"])])
    assert h.of(OrderAccepted)[0].client_order_id == f"ext-{manual['id']}"
    assert h.of(OrderFilled)[0].client_order_id == f"ext-{manual['id']}"
    h.api.positions.append(
        {
            "id": 1,
            "accountId": ACCT,
            "contractId": ES["id"],
            "type": 1,
            "size": 1,
            "averagePrice": 6000.25,
            "creationTimestamp": "2025-11-20T15:01:03Z",
        }
    )
    h.broker.close_position("ESZ5")
    await h.settle()
    close_id = max(h.api.orders)
    await h.push("GatewayUserTrade", [{"action": 0, "data": trade(6, close_id, side=1)}])
    assert h.of(OrderFilled)[-1].client_order_id == f"px-close-{close_id}"
    assert h.api.count("Position/closeContract") == 1
    await h.broker.aclose()


@pytest.mark.asyncio
async def test_events_of_unknown_orders_are_held_while_a_place_is_in_flight() -> None:
    h = Harness()
    await h.connect()
    h.gates["Order/place"] = asyncio.Event()
    h.broker.submit_order(order("pd-4", t=OrderType.MARKET))
    for _ in range(5):
        await asyncio.sleep(0)
    oid = h.api.next_id + 1  # the id the emulator will give
    await h.push("GatewayUserTrade", [{"action": 0, "data": trade(11, oid)}])
    assert not h.of(OrderFilled)  # held, not mistaken for a foreign order
    h.gates["Order/place"].set()
    await h.settle()
    (fill,) = h.of(OrderFilled)
    assert fill.client_order_id == "pd-4"
    names = [type(e).__name__ for e in h.events if isinstance(e, OrderAccepted | OrderFilled)]
    assert names == ["OrderAccepted", "OrderFilled"]
    await h.broker.aclose()


@pytest.mark.asyncio
async def test_native_brackets_in_auto_oco_mode_name_children() -> None:
    h = Harness(bracket_mode="auto_oco", server_bracket_mode="auto_oco")
    await h.connect()
    assert h.broker.capabilities.native_brackets
    h.broker.submit_order(order("pd-b"), BracketSpec(stop_loss_ticks=8, take_profit_ticks=16))
    await h.settle()
    body = next(b for e, b in h.api.calls if e == "Order/place")
    assert body["stopLossBracket"] == {"ticks": 8, "type": 4} and body["takeProfitBracket"] == {"ticks": 16, "type": 1}
    entry = h.of(OrderAccepted)[0].broker_order_id
    sl = h.api.order(type=4, side=1, status=8, parentOrderId=entry)
    tp = h.api.order(type=1, side=1, status=8, parentOrderId=entry)
    await h.push("GatewayUserOrder", [{"action": 0, "data": sl}])
    await h.push("GatewayUserOrder", [{"action": 0, "data": tp}])
    assert [e.client_order_id for e in h.of(OrderSuspended)] == ["pd-b-sl", "pd-b-tp"]
    await h.push("GatewayUserOrder", [{"action": 1, "data": {**sl, "status": 1, "stopPrice": 5998.25}}])
    acc = h.of(OrderAccepted)[-1]
    upd = h.of(OrderUpdated)[-1]
    assert acc.client_order_id == "pd-b-sl" and upd.stop_price == Price.of("5998.25")
    await h.broker.aclose()


@pytest.mark.asyncio
async def test_position_brackets_rejection_turns_native_brackets_off() -> None:
    h = Harness(bracket_mode="auto_oco", server_bracket_mode="position")
    await h.connect()
    h.broker.submit_order(order("pd-x"), BracketSpec(stop_loss_ticks=8))
    await h.settle()
    (rej,) = h.of(OrderRejected)
    assert "Position Brackets" in rej.reason
    assert not h.broker.capabilities.native_brackets
    # the rejected order's own hub event maps to the same client id and adds nothing
    rejected = next(iter(h.api.orders.values()))
    await h.push("GatewayUserOrder", [{"action": 0, "data": rejected}])
    assert len(h.of(OrderRejected)) == 1
    await h.broker.aclose()


@pytest.mark.asyncio
async def test_cancel_then_hub_confirms_once() -> None:
    h = Harness()
    await h.connect()
    o = order("pd-c")
    h.broker.submit_order(o)
    await h.settle()
    h.broker.cancel_order(o)
    await h.settle()
    oid = h.of(OrderAccepted)[0].broker_order_id
    assert h.api.orders[oid]["status"] == 3
    await h.push("GatewayUserOrder", [{"action": 1, "data": h.api.orders[oid]}])
    await h.settle()
    assert len(h.of(OrderCanceled)) == 1
    await h.broker.aclose()


@pytest.mark.asyncio
async def test_reconnect_reconciles_missed_fill_then_reports_connected() -> None:
    h = Harness()
    await h.connect()
    h.broker.submit_order(order("pd-r", t=OrderType.MARKET))
    await h.settle()
    oid = h.of(OrderAccepted)[0].broker_order_id
    h.api.trades.append(trade(99, oid))  # filled, but the hub never delivered it: the connection dropped
    h.api.orders[oid].update(status=2, fillVolume=1)
    h.hubs.latest("user").drop()
    for _ in range(200):
        await asyncio.sleep(0.005)
        if len(h.of(BrokerConnected)) == 2:
            break
    names = [type(e).__name__ for e in h.events if isinstance(e, BrokerConnected | BrokerDisconnected | OrderFilled)]
    assert names == ["BrokerConnected", "BrokerDisconnected", "OrderFilled", "BrokerConnected"]
    fill = h.of(OrderFilled)[0]
    assert fill.reconciled and fill.client_order_id == "pd-r"
    user_clients = [c for c in h.hubs.clients if "/hubs/user" in c.url]
    assert len(user_clients) == 2 and user_clients[1].sent[0] == ("SubscribeAccounts", [])
    await h.broker.aclose()


@pytest.mark.asyncio
async def test_market_data_merge_and_lists() -> None:
    h = Harness()
    await h.connect()
    h.broker.subscribe("ESZ5", depth=True)
    await h.settle()
    sent = [(m, a) for _, m, a in h.hubs.log if m.startswith("SubscribeContract")]
    assert ("SubscribeContractQuotes", [ES["id"]]) in sent and ("SubscribeContractMarketDepth", [ES["id"]]) in sent
    await h.push("GatewayQuote", [ES["id"], {"symbol": "F.US.EP", "bestBid": 6000.25, "bestAsk": 6000.5}], hub="market")
    await h.push("GatewayQuote", [ES["id"], {"symbol": "F.US.EP", "bestBid": 6000.5}], hub="market")
    quotes = h.of(QuoteTick)
    assert [(q.bid, q.ask) for q in quotes] == [(6000.25, 6000.5), (6000.5, 6000.5)] and quotes[0].symbol == "ESZ5"
    trades = [
        {"symbolId": "F.US.EP", "price": 6000.5, "timestamp": "2025-11-20T15:01:02Z", "type": 0, "volume": v}
        for v in (1, 2, 3, 4, 5)
    ]
    for _ in range(200):
        await h.push("GatewayTrade", [ES["id"], trades], hub="market")
    assert sum(t.size for t in h.of(TradeTick)) == 200 * 15
    depth = [
        {"type": 6, "price": 0, "volume": 0},
        {"type": 2, "price": 6000.25, "volume": 10},
        {"type": 1, "price": 6000.5, "volume": 4},
        {"type": 5, "price": 6000.5, "volume": 1},
    ]
    await h.push("GatewayDepth", [ES["id"], depth], hub="market")
    ups = h.of(DepthUpdate)
    assert len(ups) == 3 and [u.is_last for u in ups] == [False, False, True]
    await h.broker.aclose()


@pytest.mark.asyncio
async def test_trade_history_is_one_trade_search_of_the_window_without_voided_fills() -> None:
    h = Harness()
    rows = [trade(1, 11), trade(2, 11), trade(3, 12), trade(4, 13)]
    rows[0]["creationTimestamp"] = "2025-11-19T15:00:00+00:00"  # before the window
    rows[1]["profitAndLoss"] = 125.0
    rows[2]["voided"] = True
    h.api.trades.extend(rows)
    start = 1_763_596_800 * 10**9  # 2025-11-20T00:00:00Z
    end = start + 86_400 * 10**9
    got = await h.broker.trade_history(start, end)
    assert [f.trade_id for f in got] == ["2", "4"]
    assert got[0].realized_pnl == Money.of("125.00") and got[0].fee == Money.of("1.40")
    assert got[1].realized_pnl is None and got[0].client_order_id is None
    ((_path, body),) = [c for c in h.api.calls if c[0] == "Trade/search"]
    assert body["accountId"] == ACCT and body["startTimestamp"].startswith("2025-11-20T00:00:00")
    assert body["endTimestamp"].startswith("2025-11-21T00:00:00")
