"""The Desk's queries built from what it saw: round trips from its fills, the consistency share, bars from the bar
cache (tests.kit.desk: a 50K Combine node on the simulated broker)."""

from __future__ import annotations

from decimal import Decimal

from propdesk.backtest.evaluation import evaluation_of
from propdesk.model.commands import ClosePosition, SubmitOrder
from propdesk.model.enums import Side
from propdesk.model.price import Money, Price
from tests.kit.desk import SYM, T0, Env, M, buy, make_env


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


def round_trip(env: Env, key: str, entry: float, exit_: float) -> None:
    env.desk.execute(buy(f"{key}-in"))
    env.bar(entry)
    env.desk.execute(ClosePosition(idempotency_key=f"{key}-out", symbol=SYM))
    env.bar(exit_)


def test_consistency_share_is_the_best_day_over_total_profit_as_the_combine_evaluation_computes_it() -> None:
    env = make_env()
    [before] = env.desk.accounts()
    assert before.consistency_share is None and before.consistency_limit == Decimal("0.4")  # no profit yet
    round_trip(env, "d1", 6700.0, 6702.0)  # +8 ticks: +$100 on Wed
    env.i += 24 * 60  # Thu, same time: past Wed's 17:00 CT roll
    env.bar(6700.0)
    round_trip(env, "d2", 6700.0, 6704.0)  # +16 ticks: +$200 on Thu
    [account] = env.desk.accounts()
    assert account.consistency_share == Decimal(200) / Decimal(300)
    risk = env.built.risk
    assert risk is not None and len(risk.day_closes) == 1
    assert evaluation_of(risk).best_day_share == float(account.consistency_share)
