"""Round trips from fills (propdesk.execution.round_trips): exact PnL, scaling, reversals, tags, open trips."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from propdesk.execution.round_trips import RoundTripBuilder, round_trips
from propdesk.model.enums import Side
from propdesk.model.price import Money, Price
from tests.kit.fills import fill
from tests.kit.fills import spec_of as _spec_of


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


def test_open_round_trips_show_the_position_entry_average_and_fees_so_far() -> None:
    b = RoundTripBuilder(_spec_of)
    b.add(fill(Side.SELL, 1, "6500", 1, "1.00"))
    b.add(fill(Side.SELL, 2, "6501", 2, "1.00"))
    b.add(fill(Side.BUY, 1, "6499", 3, "1.00"))
    b.add(fill(Side.BUY, 1, "20000", 4, "0.50", symbol="NQZ5"))
    short, long_nq = b.open_trips()
    assert (short.symbol, short.tag, short.direction, short.qty, short.max_qty) == ("ESZ5", "s", -1, -2, 3)
    assert short.entry_price == Price(6500_666_666_666) and short.fees == Money.of("3.00") and short.fills == 3
    assert (short.entry_ts_ns, short.last_ts_ns) == (1, 3)
    assert (long_nq.symbol, long_nq.qty, long_nq.entry_price) == ("NQZ5", 1, Price.of("20000"))
    b.add(fill(Side.BUY, 2, "6500", 5))
    assert [t.symbol for t in b.open_trips()] == ["NQZ5"] and len(b.closed) == 1
