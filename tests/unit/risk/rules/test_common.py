"""Shared rule helpers: reduce-only orders (spec section 6), order risk, money formatting."""

from __future__ import annotations

from propdesk.model.enums import Side
from propdesk.model.orders import OrderType
from propdesk.model.price import Money
from propdesk.risk.rules.common import fmt_usd, is_opening, is_reducing, order_risk

from .stub_view import StubView, new, order, pos, usd


def test_reducing_is_opposite_side_within_the_position() -> None:
    v = StubView(positions=[pos("ESH5", 3)])
    assert is_reducing(v, new("ESH5", Side.SELL, 3))
    assert not is_reducing(v, new("ESH5", Side.SELL, 4))  # would flip
    assert not is_reducing(v, new("ESH5", Side.BUY, 1))  # grows
    assert not is_reducing(v, new("MESH5", Side.SELL, 1))  # another contract
    assert is_opening(StubView(), new("ESH5", Side.SELL, 1))  # flat


def test_other_working_reducing_orders_are_subtracted() -> None:
    v = StubView(positions=[pos("ESH5", 3)], working_orders=[order("ESH5", Side.SELL, 2)])
    assert is_reducing(v, new("ESH5", Side.SELL, 1))
    assert not is_reducing(v, new("ESH5", Side.SELL, 2))


def test_protective_orders_are_not_other_reducing_orders() -> None:
    bracket = [
        order("ESH5", Side.SELL, 3, kind=OrderType.STOP, parent="E1"),
        order("ESH5", Side.SELL, 3, parent="E1"),
    ]
    oco = [order("ESH5", Side.SELL, 3, linked=("X",))]
    assert is_reducing(StubView(positions=[pos("ESH5", 3)], working_orders=bracket), new("ESH5", Side.SELL, 3))
    assert is_reducing(StubView(positions=[pos("ESH5", 3)], working_orders=oco), new("ESH5", Side.SELL, 3))
    # a bracket child itself is never an opening order
    assert is_reducing(StubView(), new("ESH5", Side.SELL, 3, kind=OrderType.STOP, parent="E1"))


def test_order_risk_default_ticks_or_attached_stop() -> None:
    o = new("NQH5", Side.BUY, 3)
    v = StubView()
    assert order_risk(v, o, 10) == usd(150)  # 10 ticks x $5.00 x 3
    v.stop_risks[o.client_order_id] = usd("123.45")
    assert order_risk(v, o, 10) == usd("123.45")


def test_fmt_usd() -> None:
    assert fmt_usd(Money(-101250)) == "-$1,012.50"
    assert fmt_usd(Money(0)) == "$0.00"
    assert fmt_usd(Money(5_000_000_05)) == "$5,000,000.05"
