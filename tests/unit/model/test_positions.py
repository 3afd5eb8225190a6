"""Tests for the position value type and position events (propdesk.model.positions).

Expected amounts are computed independently from the CME contract specs (point value x price difference, with
Decimal), not from the code under test: ES $50/point, MES $5/point, 6E 125,000 EUR x USD/EUR
(https://www.cmegroup.com/markets/equities/sp/e-mini-sandp500.contractSpecs.html,
https://www.cmegroup.com/markets/fx/g10/euro-fx.contractSpecs.html).
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from propdesk.core.errors import InvalidPriceError, InvalidQuantityError
from propdesk.model.identifiers import AccountId
from propdesk.model.positions import (
    Position,
    PositionChanged,
    PositionClosed,
    PositionOpened,
    PositionSnapshot,
)
from propdesk.model.price import Money, Price

ACC = AccountId(1)


def _usd(points: str, point_value: str, qty: int) -> Money:
    """Independent expectation: points x point value x qty, as exact cents."""
    return Money.of(Decimal(points) * Decimal(point_value) * qty)


def es() -> Position:
    return Position("ESZ5", ACC, Price.of("0.25"), Money.of("12.50"))


def mes() -> Position:
    return Position("MESZ5", ACC, Price.of("0.25"), Money.of("1.25"))


def six_e() -> Position:
    return Position("6EZ5", ACC, Price.of("0.00005"), Money.of("6.25"))


def test_6e_round_trip_is_exact_to_the_cent() -> None:
    p = six_e()
    assert p.apply_fill(2, Price.of("1.10785"), Money.of("2.50"), 1) == Money(0)
    realized = p.apply_fill(-2, Price.of("1.10800"), Money.of("2.50"), 2)
    expected = _usd("0.00015", "125000", 2)  # 3 ticks x $6.25 x 2 = $37.50
    assert realized == expected == Money.of("37.50")
    assert p.realized_pnl == expected
    assert p.fees == Money.of("5.00")
    assert p.realized_net == Money.of("32.50")
    assert p.is_flat and p.avg_price is None


def test_6e_many_small_fills_do_not_drift() -> None:
    # 1000 round trips of one 6E tick each: a float accumulation of 0.00005 x 125000 would drift; ints cannot.
    p = six_e()
    for i in range(1000):
        p.apply_fill(1, Price.of("1.10785"), Money(0), 2 * i)
        p.apply_fill(-1, Price.of("1.10790"), Money(0), 2 * i + 1)
    assert p.realized_pnl == _usd("0.00005", "125000", 1000) == Money.of("6250.00")


def test_es_versus_mes_same_move() -> None:
    a, b = es(), mes()
    for p in (a, b):
        p.apply_fill(1, Price.of("6500.00"), Money(0), 1)
        p.apply_fill(-1, Price.of("6501.25"), Money(0), 2)
    assert a.realized_pnl == _usd("1.25", "50", 1) == Money.of("62.50")
    assert b.realized_pnl == _usd("1.25", "5", 1) == Money.of("6.25")


def test_average_price_may_lie_between_ticks() -> None:
    p = es()
    p.apply_fill(1, Price.of("6543.25"), Money(0), 1)
    p.apply_fill(1, Price.of("6543.50"), Money(0), 2)
    assert p.avg_price == Price.of("6543.375")
    p.apply_fill(1, Price.of("6543.50"), Money(0), 3)
    # (6543.25 + 2 x 6543.50) / 3 = 6543.41666...: exact to the 9th decimal, rounded half-even
    assert p.avg_price == Price.of("6543.416666667")


def test_fifo_partial_closes() -> None:
    p = es()
    p.apply_fill(2, Price.of("100.00"), Money(0), 1)
    p.apply_fill(1, Price.of("101.00"), Money(0), 2)
    # sell 1: closes one of the oldest lot (100.00)
    assert p.apply_fill(-1, Price.of("102.00"), Money(0), 3) == _usd("2.00", "50", 1)
    assert p.lots() == [(1, Price.of("100.00")), (1, Price.of("101.00"))]
    # sell 2: the rest of the 100.00 lot, then the 101.00 lot
    assert p.apply_fill(-2, Price.of("100.50"), Money(0), 4) == _usd("0.50", "50", 1) + _usd("-0.50", "50", 1)
    assert p.is_flat
    # the total equals average-cost accounting: cost 2 x 100 + 101 = 301.00, proceeds 102 + 2 x 100.50 = 303.00
    assert p.realized_pnl == _usd("2.00", "50", 1) == Money.of("100.00")


def test_short_position_pnl() -> None:
    p = es()
    p.apply_fill(-3, Price.of("6500.00"), Money(0), 1)
    assert p.is_short and p.signed_qty == -3
    assert p.unrealized_pnl(Price.of("6499.00")) == _usd("1.00", "50", 3)
    assert p.apply_fill(3, Price.of("6502.00"), Money(0), 2) == _usd("-2.00", "50", 3)


def test_reversal_through_zero_in_one_fill() -> None:
    p = es()
    p.apply_fill(2, Price.of("6500.00"), Money(0), 10)
    realized = p.apply_fill(-5, Price.of("6502.00"), Money.of("3.00"), 20)
    assert realized == _usd("2.00", "50", 2)
    assert p.signed_qty == -3
    assert p.avg_price == Price.of("6502.00")
    assert p.lots() == [(3, Price.of("6502.00"))]
    assert p.opened_ts_ns == 20 and p.last_ts_ns == 20
    assert p.fees == Money.of("3.00")


def test_unrealized_long_and_short() -> None:
    p = es()
    p.apply_fill(2, Price.of("5000.00"), Money(0), 1)
    # risk-rules.md §3.1 example: long 2 ES @ 5000.00, bid 4998.50 -> -$150
    assert p.unrealized_pnl(Price.of("4998.50")) == Money.of("-150.00")
    assert p.unrealized_cents(Price.of("4998.50").ticks(Price.of("0.25"))) == -15000


def test_off_grid_fill_raises_and_changes_nothing() -> None:
    p = es()
    p.apply_fill(1, Price.of("6500.00"), Money(100), 1)
    before = p.snapshot()
    with pytest.raises(InvalidPriceError, match="ESZ5"):
        p.apply_fill(1, Price.of("6500.10"), Money(100), 2)
    assert p.snapshot() == before


@pytest.mark.parametrize("qty", [0, True, 1.0])
def test_bad_quantity_raises(qty: object) -> None:
    p = es()
    with pytest.raises(InvalidQuantityError):
        p.apply_fill(qty, Price.of("6500.00"), Money(0), 1)  # type: ignore[arg-type]
    assert p.fill_count == 0


def test_bad_tick_size_raises() -> None:
    with pytest.raises(InvalidPriceError):
        Position("X", ACC, Price(0), Money(1))


def test_snapshot_is_a_frozen_copy() -> None:
    p = es()
    p.apply_fill(1, Price.of("6500.00"), Money.of("1.50"), 7)
    snap = p.snapshot(Money.of("25.00"))
    assert isinstance(snap, PositionSnapshot)
    assert (snap.symbol, snap.account_id, snap.tag, snap.signed_qty) == ("ESZ5", ACC, None, 1)
    assert snap.avg_price == Price.of("6500.00")
    assert snap.unrealized_pnl == Money.of("25.00")
    assert snap.realized_net == Money.of("-1.50")
    assert (snap.opened_ts_ns, snap.last_ts_ns, snap.fill_count) == (7, 7, 1)
    p.apply_fill(-1, Price.of("6500.25"), Money.of("1.50"), 8)
    assert snap.signed_qty == 1  # unchanged by later fills
    flat = p.snapshot(Money.of("99.00"))
    assert flat.is_flat and flat.unrealized_pnl is None and flat.opened_ts_ns == 7


def test_event_topics() -> None:
    snap = es().snapshot()
    kw = {
        "position": snap,
        "trade_id": "t1",
        "tag": "s",
        "fill_signed_qty": 1,
        "fill_price": Price.of("1"),
        "fill_fee": Money(0),
        "fill_realized_pnl": Money(0),
        "ts_event_ns": 1,
    }
    assert PositionOpened(**kw).topic == "events.position.opened"  # type: ignore[arg-type]
    assert PositionChanged(**kw).topic == "events.position.changed"  # type: ignore[arg-type]
    assert PositionClosed(**kw).topic == "events.position.closed"  # type: ignore[arg-type]


_fills = st.lists(
    st.tuples(st.integers(-5, 5).filter(bool), st.integers(20_000, 20_100), st.integers(0, 300)),
    min_size=1,
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(_fills, st.integers(20_000, 20_100))
def test_random_fills_realized_equals_cash_flow_once_flat(fills: list[tuple[int, int, int]], close_tick: int) -> None:
    """Once flat, realized == sum over fills of -signed_qty x price_ticks x tick value (exact cents), and at every
    step realized + unrealized(mark) == cash flow + qty x mark, and the FIFO total matches average-cost accounting."""
    tick = Price.of("0.00005")
    p = six_e()
    cash_ticks = 0
    qty = 0
    fees = 0
    # independent average-cost ledger (Fractions)
    avg = Fraction(0)
    ac_realized = Fraction(0)
    for i, (sq, t, fee) in enumerate(fills):
        p.apply_fill(sq, Price.from_ticks(t, tick), Money(fee), i)
        cash_ticks -= sq * t
        fees += fee
        if qty == 0 or (qty > 0) == (sq > 0):
            avg = (avg * abs(qty) + t * abs(sq)) / (abs(qty) + abs(sq))
        else:
            closed = min(abs(sq), abs(qty))
            ac_realized += (t - avg) * closed * (1 if qty > 0 else -1)
            if abs(sq) > abs(qty):
                avg = Fraction(t)
        qty += sq
        assert p.signed_qty == qty
        assert p.realized_cents + p.unrealized_cents(close_tick) == (cash_ticks + qty * close_tick) * 625
    if qty:
        p.apply_fill(-qty, Price.from_ticks(close_tick, tick), Money(0), len(fills))
        cash_ticks += qty * close_tick
        ac_realized += (close_tick - avg) * abs(qty) * (1 if qty > 0 else -1)
    assert p.is_flat
    assert p.realized_cents == cash_ticks * 625
    assert p.realized_cents == ac_realized * 625
    assert p.fees_cents == fees
