"""Tests for the account-level portfolio view (propdesk.execution.portfolio).

Weights: TopstepX counts 10 micros as 1 mini (https://help.topstep.com/en/articles/9221977). Amounts are computed
here from the CME point values (ES $50, MES $5, NQ $20, MNQ $2), not by the code under test.
"""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest

from propdesk.core.bus import MessageBus
from propdesk.core.errors import ContractError
from propdesk.execution.portfolio import Portfolio
from propdesk.execution.positions import PositionManager
from propdesk.model.enums import Side
from propdesk.model.events import OrderFilled
from propdesk.model.identifiers import AccountId, ClientOrderId, Root
from propdesk.model.price import Money, Price

ACC = AccountId(5)
OTHER = AccountId(6)
_ids = itertools.count()


def fill(
    symbol: str, signed_qty: int, price: str, *, fee: str = "0", tag: str = "s", account: AccountId = ACC
) -> OrderFilled:
    n = next(_ids)
    return OrderFilled(
        client_order_id=ClientOrderId(f"c{n}"),
        account_id=account,
        ts_event_ns=n,
        symbol=symbol,
        side=Side.BUY if signed_qty > 0 else Side.SELL,
        qty=abs(signed_qty),
        price=Price.of(price),
        fee=Money.of(fee),
        trade_id=f"t{n}",
        tag=tag,
    )


def usd(points: str, point_value: str, qty: int = 1) -> Money:
    return Money.of(Decimal(points) * Decimal(point_value) * qty)


@pytest.fixture
def bus() -> MessageBus:
    return MessageBus(timing=False)


@pytest.fixture
def pm(bus: MessageBus) -> PositionManager:
    return PositionManager(bus)


@pytest.fixture
def pf(pm: PositionManager) -> Portfolio:
    return Portfolio(pm, ACC, Money.of("50000"))


def test_balance_equity_and_unrealized(bus: MessageBus, pm: PositionManager, pf: Portfolio) -> None:
    assert pf.balance() == pf.equity() == Money.of("50000")
    bus.publish("events.order.filled", fill("ESZ5", 2, "5000.00", fee="2.80"))
    bus.publish("events.order.filled", fill("ESZ5", -1, "5004.00", fee="1.40"))
    bus.publish("events.order.filled", fill("MESZ5", -3, "5000.00", fee="1.11", account=OTHER))  # another account
    realized = usd("4.00", "50")
    assert pf.realized_pnl() == realized
    assert pf.fees() == Money.of("4.20")
    assert pf.realized_net() == realized - Money.of("4.20")
    assert pf.balance() == Money.of("50000") + realized - Money.of("4.20") == Money.of("50195.80")
    pm.update_quote("ESZ5", 4998.50, 4998.75, 10)
    upnl = usd("-1.50", "50", 1)
    assert pf.unrealized_pnl() == upnl and pf.unrealized_cents() == upnl.cents
    assert pf.equity() == Money.of("50195.80") + upnl
    assert pf.unmarked_symbols() == []


def test_day_pnl_and_reset_day(bus: MessageBus, pm: PositionManager, pf: Portfolio) -> None:
    pm.on_fill(fill("NQZ5", 1, "21000.00", fee="1.50"))
    pm.on_fill(fill("NQZ5", -1, "21010.00", fee="1.50"))
    assert pf.day_realized_pnl() == usd("10.00", "20") == Money.of("200.00")
    assert pf.day_fees() == Money.of("3.00")
    assert pf.day_realized_net() == Money.of("197.00")
    assert (pf.day_fill_count(), pf.day_contracts()) == (2, 2)
    pf.reset_day(1_000)
    assert pf.day_start_ts_ns == 1_000
    assert pf.sod_balance == Money.of("50197.00") == pf.balance()
    assert pf.day_realized_pnl() == pf.day_fees() == pf.day_realized_net() == Money(0)
    assert (pf.day_fill_count(), pf.day_contracts()) == (0, 0)
    pm.on_fill(fill("NQZ5", -2, "21010.00", fee="3.00"))
    pm.on_fill(fill("NQZ5", 1, "21012.00", fee="1.50"))
    assert pf.day_realized_pnl() == usd("-2.00", "20")
    assert pf.day_realized_net() == Money.of("-44.50")
    pm.update_trade("NQZ5", 21011.0, 2_000)
    assert pf.day_net_pnl() == Money.of("-44.50") + usd("-1.00", "20")
    # lifetime figures are untouched by the day roll
    assert pf.realized_pnl() == Money.of("160.00")
    assert pf.balance() == Money.of("50000") + Money.of("160.00") - Money.of("7.50")


def test_exposure_in_mini_equivalents(pm: PositionManager, pf: Portfolio) -> None:
    pm.on_fill(fill("MNQZ5", 3, "21000.00"))
    pm.on_fill(fill("NQZ5", 1, "21000.00"))
    assert pf.mini_equivalents() == Decimal("1.3")
    assert pf.signed_mini_equivalents() == Decimal("1.3")
    pm.on_fill(fill("ESZ5", -2, "5000.00"))
    assert pf.mini_equivalents() == Decimal("3.3")
    assert pf.signed_mini_equivalents() == Decimal("-0.7")
    assert pf.exposure_by_root() == {Root("ES"): -2, Root("MNQ"): 3, Root("NQ"): 1}
    assert pf.mini_equivalents_by_root() == {
        Root("ES"): Decimal(2),
        Root("MNQ"): Decimal("0.3"),
        Root("NQ"): Decimal(1),
    }


def test_exposure_by_root_spans_contract_months(pm: PositionManager, pf: Portfolio) -> None:
    pm.on_fill(fill("ESZ5", 2, "5000.00"))
    pm.on_fill(fill("ESH6", -1, "5050.00"))
    assert pf.exposure_by_root() == {Root("ES"): 1}
    assert pf.mini_equivalents() == Decimal(3)
    assert [p.symbol for p in pf.open_positions()] == ["ESH6", "ESZ5"]


def test_weight_overrides(pm: PositionManager) -> None:
    pf = Portfolio(pm, ACC, Money(0), weights={"MNQ": Decimal(1)})  # a platform counting micros 1:1
    pm.on_fill(fill("MNQZ5", 3, "21000.00"))
    pm.on_fill(fill("NQZ5", 1, "21000.00"))
    assert pf.mini_equivalents() == Decimal(4)
    with pytest.raises(ContractError):
        pf.weight("QQZ5")


def test_open_positions_and_flat_ones_are_left_out(pm: PositionManager, pf: Portfolio) -> None:
    pm.on_fill(fill("ESZ5", 1, "5000.00"))
    pm.on_fill(fill("ESZ5", -1, "5000.25"))
    pm.on_fill(fill("6EZ5", -2, "1.10800"))
    pm.update_quote("6EZ5", 1.10780, 1.10785, 5)
    snaps = pf.open_positions()
    assert [s.symbol for s in snaps] == ["6EZ5"]
    assert snaps[0].signed_qty == -2
    assert snaps[0].unrealized_pnl == usd("0.00015", "125000", 2) == Money.of("37.50")
    assert pf.exposure_by_root() == {Root("6E"): -2}


def test_strategy_summaries(pm: PositionManager, pf: Portfolio) -> None:
    pm.on_fill(fill("ESZ5", 2, "5000.00", fee="2.00", tag="trend"))
    pm.on_fill(fill("ESZ5", -1, "5002.00", fee="1.00", tag="trend"))
    pm.on_fill(fill("ESZ5", -1, "5001.00", fee="1.00", tag=""))  # a manual close at the broker: trend's last one
    pm.on_fill(fill("ESZ5", 1, "5002.00", fee="1.00", tag=""))  # a manual trade on the flat account: its own
    pm.update_trade("ESZ5", 5003.0, 100)
    s = pf.strategy_summaries()
    assert sorted(s) == ["manual", "trend"]
    trend, manual = s["trend"], s["manual"]
    assert trend.realized_pnl == usd("2.00", "50") + usd("1.00", "50") and trend.fees == Money.of("4.00")
    assert trend.unrealized_pnl == Money(0) and not trend.open_positions and trend.fill_count == 3
    assert manual.realized_pnl == Money(0) and manual.unrealized_pnl == usd("1.00", "50")
    assert manual.realized_net == Money.of("-1.00")
    assert [p.signed_qty for p in pm.open_positions(ACC)] == [1]
    total = sum((x.realized_pnl for x in s.values()), Money(0))
    assert total == pf.realized_pnl()
    assert sum((x.fees for x in s.values()), Money(0)) == pf.fees()
