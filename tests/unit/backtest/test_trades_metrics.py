"""Tests for round trips (propdesk.backtest.trades) and metrics (propdesk.backtest.metrics)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from propdesk.backtest.metrics import EquityCurve, compute_metrics, max_drawdown_cents, sharpe_ratio
from propdesk.backtest.trades import RoundTripBuilder, round_trips
from propdesk.model.contracts import spec
from propdesk.model.enums import Side
from propdesk.model.events import OrderFilled
from propdesk.model.identifiers import AccountId, ClientOrderId
from propdesk.model.price import Money, Price


def _spec_of(symbol: str):  # type: ignore[no-untyped-def]
    return spec(symbol[:-2])


def fill(
    side: Side, qty: int, price: str, ts: int, fee: str = "0", tag: str = "s", symbol: str = "ESZ5"
) -> OrderFilled:
    return OrderFilled(
        client_order_id=ClientOrderId(f"c{ts}"),
        account_id=AccountId(1),
        ts_event_ns=ts,
        symbol=symbol,
        side=side,
        qty=qty,
        price=Price.of(price),
        fee=Money.of(fee),
        trade_id=f"t{ts}",
        tag=tag,
    )


def test_long_round_trip_exact() -> None:
    trips = round_trips([fill(Side.BUY, 1, "6500.25", 1, "2.10"), fill(Side.SELL, 1, "6503.50", 2, "2.10")], _spec_of)
    assert len(trips) == 1
    t = trips[0]
    assert t.direction == 1 and t.qty == 1 and t.entry_ts_ns == 1 and t.exit_ts_ns == 2
    assert t.gross_pnl == Money.of("162.50")  # 13 ticks x 12.50
    assert t.fees == Money.of("4.20") and t.net_pnl == Money.of("158.30")
    assert t.entry_price == Price.of("6500.25") and t.exit_price == Price.of("6503.50")


def test_scaling_in_and_out_short() -> None:
    fills = [
        fill(Side.SELL, 1, "6500", 1),
        fill(Side.SELL, 2, "6501", 2),
        fill(Side.BUY, 2, "6499", 3),
        fill(Side.BUY, 1, "6502", 4),
    ]
    (t,) = round_trips(fills, _spec_of)
    assert t.direction == -1 and t.qty == 3 and t.fills == 4
    # cash in points: +6500 + 2*6501 - 2*6499 - 6502 = 2 points = 8 ticks -> 100 USD
    assert t.gross_pnl == Money.of("100.00")
    assert t.entry_price == Price(6500_666_666_666)  # (6500 + 2*6501) / 3


def test_reversal_splits_the_fill_and_its_fee() -> None:
    b = RoundTripBuilder(_spec_of)
    b.add(fill(Side.BUY, 2, "6500", 1, "1.00"))
    closed = b.add(fill(Side.SELL, 5, "6501", 2, "1.01"))
    assert closed is not None and closed.qty == 2
    assert closed.gross_pnl == Money.of("100.00")  # 2 contracts x 4 ticks x 12.50
    # fee 1.01 split 2:3 -> closing part ceil(101*2/5)=41 cents
    assert closed.fees == Money.of("1.41")
    assert b.open_qty() == {("s", "ESZ5"): -3}
    last = b.add(fill(Side.BUY, 3, "6500", 3, "0"))
    assert last is not None and last.direction == -1 and last.gross_pnl == Money.of("150.00")
    assert last.fees == Money.of("0.60")  # 101 - 41 cents of the reversal fill
    assert closed.fees + last.fees == Money.of("2.01")


def test_tags_and_symbols_are_separate() -> None:
    fills = [
        fill(Side.BUY, 1, "6500", 1, tag="a"),
        fill(Side.SELL, 1, "6500", 2, tag="b"),
        fill(Side.SELL, 1, "6501", 3, tag="a"),
        fill(Side.BUY, 1, "20000", 4, tag="a", symbol="NQZ5"),
    ]
    b = RoundTripBuilder(_spec_of)
    for f in fills:
        b.add(f)
    assert [t.tag for t in b.closed] == ["a"]
    assert b.open_qty() == {("b", "ESZ5"): -1, ("a", "NQZ5"): 1}


@given(st.lists(st.tuples(st.integers(-4, 4).filter(bool), st.integers(0, 40)), min_size=1, max_size=40))
def test_round_trips_sum_to_cash_flow_when_flat(moves: list[tuple[int, int]]) -> None:
    fills = []
    pos = 0
    for i, (q, px) in enumerate(moves):
        fills.append(fill(Side.BUY if q > 0 else Side.SELL, abs(q), str(6500 + px * 0.25), i, "0.37"))
        pos += q
    if pos:
        fills.append(fill(Side.SELL if pos > 0 else Side.BUY, abs(pos), "6500", len(moves), "0.37"))
    trips = round_trips(fills, _spec_of)
    cash_ticks = sum(-f.signed_qty * f.price.ticks(Price.of("0.25")) for f in fills)
    assert sum(t.gross_pnl.cents for t in trips) == cash_ticks * 1250
    assert sum(t.fees.cents for t in trips) == 37 * len(fills)


def test_metrics_definitions() -> None:
    trips = round_trips(
        [
            fill(Side.BUY, 1, "6500", 1),
            fill(Side.SELL, 1, "6504", 2),  # +200
            fill(Side.BUY, 1, "6500", 3),
            fill(Side.SELL, 1, "6498", 4),  # -100
            fill(Side.BUY, 1, "6500", 5),
            fill(Side.SELL, 1, "6501", 6),  # +50
        ],
        _spec_of,
    )
    curve = EquityCurve([1, 2, 3, 4], [5_000_000, 5_020_000, 5_010_000, 5_015_000], [1, 1, 2, 3])
    m = compute_metrics(trips, curve, 5_000_000)
    assert m.trades == 3 and m.wins == 2 and m.losses == 1
    assert m.win_rate == pytest.approx(2 / 3)
    assert m.profit_factor == pytest.approx(2.5)
    assert m.net_pnl == Money.of("150.00") and m.avg_trade == Money.of("50.00")
    assert m.max_drawdown == Money.of("100.00")
    assert [p for _, p in m.daily_pnl] == [Money.of("200"), Money.of("-100"), Money.of("50")]
    assert m.sharpe is not None and math.isfinite(m.sharpe)


def test_drawdown_and_sharpe_edge_cases() -> None:
    assert max_drawdown_cents([]) == 0
    assert max_drawdown_cents([1, 2, 3]) == 0
    assert max_drawdown_cents([5, 1, 9, 2, 10]) == 7
    assert sharpe_ratio([100], 100) is None
    assert sharpe_ratio([110, 121], 100) is None  # constant 10% returns: zero variance
    empty = compute_metrics([], EquityCurve([], [], []), 100)
    assert empty.win_rate is None and empty.profit_factor is None and empty.trades == 0
