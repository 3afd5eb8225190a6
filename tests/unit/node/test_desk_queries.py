"""The Desk's queries built from what it saw: round trips from its fills, the consistency share, bars from the bar
cache (tests.kit.desk: a 50K Combine node on the simulated broker)."""

from __future__ import annotations

from propdesk.model.commands import ClosePosition, SubmitOrder
from propdesk.model.enums import Side
from propdesk.model.price import Money, Price
from tests.kit.desk import SYM, T0, M, buy, make_env


def test_round_trips_from_the_desks_fills_and_the_open_one() -> None:
    env = make_env()
    env.desk.execute(buy("a1", 2))
    env.bar(6700.0)  # bought 2 at 6700
    env.desk.execute(ClosePosition(idempotency_key="cp", symbol=SYM))
    env.bar(6702.0)  # sold 2 at 6702: +8 ticks x 2 = +$200
    env.desk.execute(SubmitOrder(idempotency_key="s1", symbol=SYM, side=Side.SELL, qty=1))
    env.bar(6701.0)  # short 1 at 6701, open
    [trip] = env.desk.round_trips()
    assert (trip.symbol, trip.tag, trip.direction, trip.qty) == (SYM, "desk", 1, 2)
    assert (trip.entry_price, trip.exit_price) == (Price.of("6700"), Price.of("6702"))
    assert trip.gross_pnl == Money.of("200") and trip.net_pnl == Money.of("200")  # the sim charges no fee
    assert (trip.entry_ts_ns, trip.exit_ts_ns) == (T0 + M, T0 + 2 * M)  # at the opens of the bars that filled them
    [still] = env.desk.open_round_trips()
    assert (still.direction, still.qty, still.entry_price) == (-1, -1, Price.of("6701"))
