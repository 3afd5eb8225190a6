"""The REST client against an emulated ProjectX (httpx.MockTransport): endpoints, auth, budgets, retries, breakers."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from propdesk.brokers.projectx.config import BreakerSettings, ProjectXSettings, RateBudget
from propdesk.brokers.projectx.errors import (
    AuthenticationError,
    BracketModeError,
    CircuitOpenError,
    ContractNotFoundError,
    InvalidCloseSizeError,
    OrderNotFoundError,
    PositionNotFoundError,
    UncertainOutcomeError,
)
from propdesk.brokers.projectx.models import (
    BracketSpecWire,
    ModifyOrderRequest,
    OrderQueryFilter,
    OrderQueryRequest,
    PlaceOrderRequest,
    RetrieveBarsRequest,
)
from propdesk.brokers.projectx.rest import BreakerState, ProjectXRest, SlidingWindowBudget
from tests.unit.brokers.projectx.fakes import ES, FakeProjectX, Fault

ACCT = 1001


class FakeTime:
    def __init__(self) -> None:
        self.t = 1_700_000_000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.t

    async def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.t += s
        await asyncio.sleep(0)


def make(ft: FakeTime, api: FakeProjectX | None = None, **overrides: object) -> tuple[ProjectXRest, FakeProjectX]:
    api = api or FakeProjectX(now=ft)
    settings = ProjectXSettings(
        api_base="http://127.0.0.1:1",
        username="me",
        api_key="secret-key",
        **overrides,  # type: ignore[arg-type]
    )
    rest = ProjectXRest(settings, transport=api.transport(), clock=ft, wall=ft, sleep=ft.sleep, rng=lambda: 0.5)
    return rest, api


def place_req(tag: str = "pd-1", **kw: object) -> PlaceOrderRequest:
    base: dict[str, object] = {
        "account_id": ACCT,
        "contract_id": ES["id"],
        "type": 1,
        "side": 0,
        "size": 1,
        "limit_price": Decimal("6000.25"),
        "custom_tag": tag,
    }
    base.update(kw)
    return PlaceOrderRequest(**base)  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_every_endpoint_parses() -> None:
    ft = FakeTime()
    rest, api = make(ft)
    accounts = await rest.search_accounts()
    assert accounts[0].id == ACCT and accounts[0].simulated is True
    assert (await rest.search_contracts("ES"))[0].name == "ESZ5"
    assert (await rest.contract_by_id(ES["id"])).tick_value == Decimal("12.5")
    assert len(await rest.available_contracts()) == 1
    req = RetrieveBarsRequest(
        contract_id=ES["id"],
        live=False,
        start_time="2025-01-01T00:00:00Z",
        end_time="2025-01-02T00:00:00Z",
        unit=2,
        unit_number=1,
        limit=10,
    )
    assert await rest.retrieve_bars(req) == []
    oid = await rest.place_order(place_req())
    await rest.modify_order(ModifyOrderRequest(account_id=ACCT, order_id=oid, limit_price=Decimal("6000.5")))
    assert api.orders[oid]["limitPrice"] == 6000.5
    assert [o.id for o in await rest.search_open_orders(ACCT)] == [oid]
    assert (await rest.order_by_id(ACCT, oid)) is not None
    rows, total = await rest.query_orders(OrderQueryRequest(filter=OrderQueryFilter(account_id=ACCT, statuses=[1])))
    assert [r.id for r in rows] == [oid] and total == 1
    await rest.cancel_order(ACCT, oid)
    assert (await rest.search_orders(ACCT, 0))[0].status == 3
    api.positions.append(
        {
            "id": 1,
            "accountId": ACCT,
            "contractId": ES["id"],
            "creationTimestamp": "2025-01-01T00:00:00Z",
            "type": 1,
            "size": 3,
            "averagePrice": 6000.25,
        }
    )
    assert (await rest.search_open_positions(ACCT))[0].size == 3
    assert await rest.partial_close_position(ACCT, ES["id"], 1) is not None
    assert await rest.close_position(ACCT, ES["id"]) is not None
    assert await rest.search_trades(ACCT, 0) == []
    assert api.calls[0][0] == "Auth/loginKey" and api.count("Auth/loginKey") == 1
    await rest.aclose()


@pytest.mark.asyncio
async def test_contract_by_id_older_shape_and_not_found() -> None:
    ft = FakeTime()
    rest, api = make(ft)
    api.contract_by_id_shape = "contracts"
    assert (await rest.contract_by_id(ES["id"])).name == "ESZ5"
    with pytest.raises(ContractNotFoundError):
        await rest.contract_by_id("CON.F.US.EP.H99")


@pytest.mark.asyncio
async def test_business_errors_are_decoded_per_endpoint_and_not_retried() -> None:
    ft = FakeTime()
    rest, api = make(ft)
    with pytest.raises(OrderNotFoundError):
        await rest.cancel_order(ACCT, 999)
    with pytest.raises(PositionNotFoundError):
        await rest.close_position(ACCT, ES["id"])
    api.positions.append({"id": 1, "accountId": ACCT, "contractId": ES["id"], "type": 2, "size": 1, "averagePrice": 1})
    with pytest.raises(InvalidCloseSizeError):
        await rest.partial_close_position(ACCT, ES["id"], 1)
    with pytest.raises(BracketModeError) as info:
        await rest.place_order(place_req(stop_loss_bracket=BracketSpecWire(ticks=8, type=4)))
    assert info.value.order_id is not None  # a rejection still carries an orderId (spec 3.3)
    assert api.count("Order/cancel") == 1 and api.count("Order/place") == 1


@pytest.mark.asyncio
async def test_bad_credentials() -> None:
    ft = FakeTime()
    api = FakeProjectX(now=ft)
    settings = ProjectXSettings(api_base="http://x", username="me", api_key="wrong")  # type: ignore[arg-type]
    rest = ProjectXRest(settings, transport=api.transport(), clock=ft, wall=ft, sleep=ft.sleep)
    with pytest.raises(AuthenticationError, match="InvalidCredentials"):
        await rest.search_accounts()
    assert "wrong" not in repr(settings)


@pytest.mark.asyncio
async def test_401_refreshes_and_retries_once_non_mutating_only() -> None:
    ft = FakeTime()
    rest, api = make(ft)
    await rest.search_accounts()
    api.valid_tokens.clear()  # the server forgot every token
    assert (await rest.search_accounts())[0].id == ACCT
    assert api.count("Auth/loginKey") == 2 and api.count("Account/search") == 3
    api.valid_tokens.clear()
    with pytest.raises(UncertainOutcomeError):
        await rest.place_order(place_req("pd-2"))
    assert api.count("Order/place") == 1  # not retried
    assert api.count("Auth/loginKey") == 3  # but the token was renewed for the next call


@pytest.mark.asyncio
async def test_token_refreshed_by_validate_before_expiry() -> None:
    ft = FakeTime()
    rest, api = make(ft, FakeProjectX(now=ft, token_ttl_s=7200))
    await rest.search_accounts()
    ft.t += 3700  # less than an hour left
    await rest.search_accounts()
    assert api.count("Auth/validate") == 1 and api.count("Auth/loginKey") == 1
    api.validate_ok = False
    ft.t += 7200 - 3500  # near expiry again; validate refuses -> login
    await rest.search_accounts()
    assert api.count("Auth/validate") == 2 and api.count("Auth/loginKey") == 2


@pytest.mark.asyncio
async def test_non_mutating_retries_with_backoff() -> None:
    ft = FakeTime()
    rest, api = make(ft)
    await rest.search_accounts()
    api.faults["Order/searchOpen"].extend([Fault("timeout"), Fault(503), Fault(502)])
    assert await rest.search_open_orders(ACCT) == []
    assert api.count("Order/searchOpen") == 4
    assert ft.slept == [0.25, 0.5, 1.0]  # rng 0.5 x base 0.5 x 2**n: exponential with jitter


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "fault", [Fault("timeout"), Fault(500), Fault(429, retry_after="2"), Fault("timeout", apply=True)]
)
async def test_mutating_call_is_sent_once_and_uncertain(fault: Fault) -> None:
    ft = FakeTime()
    rest, api = make(ft)
    await rest.search_accounts()
    api.faults["Order/place"].append(fault)
    with pytest.raises(UncertainOutcomeError) as info:
        await rest.place_order(place_req())
    assert api.count("Order/place") == 1
    assert len(api.orders) == (1 if fault.apply else 0)
    if fault.kind == 429:
        assert info.value.retry_after_s == 2.0


@pytest.mark.asyncio
async def test_429_retry_after_is_honoured_for_searches() -> None:
    ft = FakeTime()
    rest, api = make(ft)
    await rest.search_accounts()
    api.faults["Trade/search"].append(Fault(429, retry_after="7"))
    t0 = ft.t
    assert await rest.search_trades(ACCT, 0) == []
    assert ft.t - t0 >= 7 and api.count("Trade/search") == 2


def test_budget_keeps_reserve_for_priority() -> None:
    ft = FakeTime()
    b = SlidingWindowBudget(RateBudget(count=200, window_s=60, reserve_fraction=0.25), clock=ft)
    assert b.budget.routine_limit == 150
    for _ in range(150):
        assert b.try_acquire(priority=False)
    assert not b.try_acquire(priority=False)
    assert b.wait_s(priority=False) == pytest.approx(60.0)
    for _ in range(50):
        assert b.try_acquire(priority=True)
    assert not b.try_acquire(priority=True)
    ft.t += 60.0
    assert b.try_acquire(priority=False)


@pytest.mark.asyncio
async def test_cancel_passes_while_routine_calls_wait() -> None:
    ft = FakeTime()
    rest, _api = make(ft, general_budget=RateBudget(count=8, window_s=60, reserve_fraction=0.25))
    oid = await rest.place_order(place_req())  # login + place = 2 of 6 routine
    for _ in range(4):
        await rest.search_open_orders(ACCT)
    t0 = ft.t
    await rest.cancel_order(ACCT, oid)  # the reserve: no wait
    assert ft.t == t0
    await rest.search_open_orders(ACCT)  # routine: waits for the window
    assert ft.t - t0 >= 59.0


@pytest.mark.asyncio
async def test_history_budget_is_separate() -> None:
    ft = FakeTime()
    rest, _api = make(ft, history_budget=RateBudget(count=2, window_s=30))
    req = RetrieveBarsRequest(
        contract_id=ES["id"],
        live=False,
        start_time="2025-01-01T00:00:00Z",
        end_time="2025-01-02T00:00:00Z",
        unit=2,
        unit_number=1,
        limit=10,
    )
    t0 = ft.t
    await rest.retrieve_bars(req)
    await rest.retrieve_bars(req)
    await rest.search_accounts()
    assert ft.t == t0
    await rest.retrieve_bars(req)
    assert ft.t - t0 >= 30.0


@pytest.mark.asyncio
async def test_circuit_breaker_transitions_and_priority_bypass() -> None:
    ft = FakeTime()
    changes: list[BreakerState] = []
    api = FakeProjectX(now=ft)
    settings = ProjectXSettings(
        api_base="http://x",
        username="me",
        api_key="secret-key",  # type: ignore[arg-type]
        breaker=BreakerSettings(failure_threshold=3, reset_timeout_s=30),
    )
    rest = ProjectXRest(
        settings,
        transport=api.transport(),
        clock=ft,
        wall=ft,
        sleep=ft.sleep,
        rng=lambda: 0.0,
        on_breaker_change=lambda s: changes.append(s.state),
    )
    await rest.search_accounts()
    api.faults["Order/searchOpen"].extend([Fault(500)] * 3)
    with pytest.raises(CircuitOpenError):  # the third failure opens it: the retry is not sent
        await rest.search_open_orders(ACCT)
    assert api.count("Order/searchOpen") == 3
    assert rest.breaker_status()["general"].state is BreakerState.OPEN
    n = len(api.calls)
    with pytest.raises(CircuitOpenError):
        await rest.search_accounts()
    assert len(api.calls) == n  # nothing sent while open
    await rest.search_open_positions(ACCT, priority=True)  # a flatten's search still goes through
    assert rest.breaker_status()["general"].state is BreakerState.CLOSED  # and its success closed the breaker
    api.faults["Order/searchOpen"].extend([Fault(500)] * 3)
    with pytest.raises(CircuitOpenError):
        await rest.search_open_orders(ACCT)
    ft.t += 31
    assert rest.breaker_status()["general"].state is BreakerState.HALF_OPEN
    await rest.search_accounts()  # the trial call succeeds
    assert rest.breaker_status()["general"].state is BreakerState.CLOSED
    assert changes == [
        BreakerState.OPEN,
        BreakerState.CLOSED,
        BreakerState.OPEN,
        BreakerState.HALF_OPEN,
        BreakerState.CLOSED,
    ]
    assert rest.breaker_status()["history"].state is BreakerState.CLOSED
