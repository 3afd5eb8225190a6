"""Fill rules of the simulated broker's matching engine, on hand-built bars, prints and books (ES, tick 0.25)."""

from __future__ import annotations

from dataclasses import dataclass, field

from propdesk.brokers.sim.config import SimConfig
from propdesk.brokers.sim.matching import MatchingEngine, WorkingOrder
from propdesk.model.data import Bar, Timeframe, TradeTick
from propdesk.model.enums import AggressorSide
from propdesk.model.identifiers import BrokerOrderId, ClientOrderId
from propdesk.model.orders import OrderStatus, OrderType, TimeInForce
from propdesk.model.price import Price

TICK = Price.of("0.25")
M = 60_000_000_000
T0 = 1_763_478_000_000_000_000  # 2025-11-18 15:00 UTC
TF = Timeframe.parse("1m")


def t(points: float) -> int:
    """Points -> ticks of 0.25."""
    return round(points * 4)


@dataclass
class Rec:
    fills: list[tuple[str, int, float, int]] = field(default_factory=list)
    expired: list[tuple[str, int]] = field(default_factory=list)


def engine(**cfg: object) -> tuple[MatchingEngine, Rec]:
    rec = Rec()
    eng = MatchingEngine(
        "ESZ5",
        TICK,
        SimConfig.model_validate(cfg),
        lambda o, q, p, ts: rec.fills.append((o.cid, q, p / 4, ts)),
        lambda o, ts: rec.expired.append((o.cid, ts)),
    )
    return eng, rec


_ids = iter(range(1, 1_000_000))


def order(
    eng: MatchingEngine,
    cid: str,
    side: int,
    qty: int,
    typ: OrderType,
    *,
    limit: float | None = None,
    stop: float | None = None,
    trail: int | None = None,
    ts: int = T0,
    tif: TimeInForce = TimeInForce.GTC,
    expiry_ns: int | None = None,
) -> WorkingOrder:
    o = WorkingOrder(
        cid=ClientOrderId(cid),
        broker_id=BrokerOrderId(next(_ids)),
        symbol="ESZ5",
        side=side,
        qty=qty,
        order_type=typ,
        limit=None if limit is None else t(limit),
        stop=None if stop is None else t(stop),
        trail=trail,
        tif=tif,
        ts_ns=ts,
    )
    o.expiry_ns = expiry_ns
    eng.add(o)
    return o


def bar(o: float, h: float, lo: float, c: float, i: int = 0, vol: int = 1000) -> Bar:
    return Bar("ESZ5", TF, o, h, lo, c, vol, T0 + i * M, T0 + (i + 1) * M)


def trade(px: float, size: int = 1, i: int = 0) -> TradeTick:
    return TradeTick("ESZ5", px, size, AggressorSide.NONE, T0 + i * 1_000_000)


# ----------------------------------------------------------------------------------------------------- market orders


def test_market_fills_at_the_next_bar_open_with_slippage_against_the_order() -> None:
    eng, rec = engine(slippage_ticks=2)
    order(eng, "b", 1, 1, OrderType.MARKET)
    order(eng, "s", -1, 2, OrderType.MARKET)
    eng.on_bar(bar(100, 101, 99, 100.5))
    assert rec.fills == [("b", 1, 100.5, T0), ("s", 2, 99.5, T0)]
    assert eng.orders == []
    assert eng.last_px == 100.5


def test_order_accepted_after_the_bar_opened_waits_for_the_next_bar() -> None:
    eng, rec = engine()
    order(eng, "b", 1, 1, OrderType.MARKET, ts=T0 + M)  # sent at bar 0's close
    eng.on_bar(bar(100, 101, 99, 100.5, i=0))
    assert rec.fills == []
    eng.on_bar(bar(100.75, 101, 99, 100.5, i=1))
    assert rec.fills == [("b", 1, 100.75, T0 + M)]


# ----------------------------------------------------------------------------------------------------- OHLC path


def test_path_visits_the_extreme_nearer_the_open_first() -> None:
    # |H-O| = 2 > |O-L| = 0.5: O -> L -> H -> C, so the sell stop fills before the buy stop
    eng, rec = engine()
    order(eng, "buy_stop", 1, 1, OrderType.STOP, stop=101)
    order(eng, "sell_stop", -1, 1, OrderType.STOP, stop=99.75)
    eng.on_bar(bar(100, 102, 99.5, 101))
    assert [(f[0], f[2]) for f in rec.fills] == [("sell_stop", 99.75), ("buy_stop", 101.0)]
    assert all(f[3] == T0 + M for f in rec.fills)  # inside the bar: stamped at its close

    eng2, rec2 = engine()
    order(eng2, "buy_stop", 1, 1, OrderType.STOP, stop=101)
    order(eng2, "sell_stop", -1, 1, OrderType.STOP, stop=99.75)
    eng2.on_bar(bar(100, 101.5, 98, 99))  # high nearer: O -> H -> L -> C
    assert [f[0] for f in rec2.fills] == ["buy_stop", "sell_stop"]


def test_tie_goes_to_the_extreme_away_from_the_close() -> None:
    for close, first in ((100.5, "sell_stop"), (99.5, "buy_stop")):
        eng, rec = engine()
        order(eng, "buy_stop", 1, 1, OrderType.STOP, stop=101)
        order(eng, "sell_stop", -1, 1, OrderType.STOP, stop=99)
        eng.on_bar(bar(100, 101, 99, close))
        assert rec.fills[0][0] == first


def test_stop_gapped_through_fills_at_the_open() -> None:
    eng, rec = engine(slippage_ticks=1)
    order(eng, "ss", -1, 1, OrderType.STOP, stop=99)
    order(eng, "bs", 1, 1, OrderType.STOP, stop=97)
    eng.on_bar(bar(98, 98.5, 97.5, 98))
    # the sell stop gapped through (open 98 < 99): fills at the open minus a tick; the buy stop at 97 is below
    # the open so it is already triggered too: fills at the open plus a tick
    assert rec.fills == [("ss", 1, 97.75, T0), ("bs", 1, 98.25, T0)]


def test_stop_inside_the_bar_fills_at_the_stop_plus_slippage() -> None:
    eng, rec = engine(slippage_ticks=1)
    order(eng, "bs", 1, 1, OrderType.STOP, stop=101)
    eng.on_bar(bar(100, 102, 99.75, 101.5))
    assert rec.fills == [("bs", 1, 101.25, T0 + M)]


def test_limit_fills_at_the_open_when_the_bar_opens_through_it_else_at_the_limit() -> None:
    eng, rec = engine(slippage_ticks=3)  # no slippage on limits
    order(eng, "gap", 1, 1, OrderType.LIMIT, limit=99)
    order(eng, "path", 1, 1, OrderType.LIMIT, limit=98.25)
    order(eng, "never", 1, 1, OrderType.LIMIT, limit=97)
    eng.on_bar(bar(98.5, 99, 98, 98.75))
    assert rec.fills == [("gap", 1, 98.5, T0), ("path", 1, 98.25, T0 + M)]
    assert [o.cid for o in eng.orders] == ["never"]


def test_touch_versus_through() -> None:
    touch, rt = engine(limit_fill="touch")
    through, rth = engine(limit_fill="through")
    for eng in (touch, through):
        order(eng, "bl", 1, 1, OrderType.LIMIT, limit=99)
        order(eng, "sl", -1, 1, OrderType.LIMIT, limit=101)
        eng.on_bar(bar(100, 101, 99, 100))  # touches both limits exactly
    assert sorted(f[0] for f in rt.fills) == ["bl", "sl"]
    assert rth.fills == []
    through.on_bar(bar(100, 101.25, 98.75, 100, i=1))  # trades through both
    assert sorted((f[0], f[2]) for f in rth.fills) == [("bl", 99.0), ("sl", 101.0)]


def test_stop_limit_triggers_then_works_as_a_limit() -> None:
    eng, rec = engine()
    order(eng, "sl_ok", 1, 1, OrderType.STOP_LIMIT, stop=101, limit=101.25)
    eng.on_bar(bar(100, 102, 99.75, 101.5))
    assert rec.fills == [("sl_ok", 1, 101.0, T0 + M)]

    eng2, rec2 = engine()
    o = order(eng2, "gapped", 1, 1, OrderType.STOP_LIMIT, stop=101, limit=101.25)
    eng2.on_bar(bar(102, 102.5, 101.75, 102))  # opens above the limit: triggered, not filled
    assert rec2.fills == [] and o.triggered
    eng2.on_bar(bar(102, 102.25, 101, 101.5, i=1))  # comes back down through the limit
    assert rec2.fills == [("gapped", 1, 101.25, T0 + 2 * M)]


# ----------------------------------------------------------------------------------------------------- partial fills


def test_partial_fills_bounded_by_bar_volume_and_participation() -> None:
    eng, rec = engine(partial_fills=True, participation=0.5)
    a = order(eng, "a", 1, 10, OrderType.MARKET)
    order(eng, "b", -1, 4, OrderType.LIMIT, limit=100.5)
    eng.on_bar(bar(100, 100.75, 99.75, 100.25, vol=7))  # 3 contracts available, all to the first order
    assert rec.fills == [("a", 3, 100.0, T0)]
    assert a.status is OrderStatus.PARTIALLY_FILLED and a.leaves == 7
    eng.on_bar(bar(100.25, 100.75, 100, 100.5, i=1, vol=20))  # 10 available: a takes 7, b 3 of 4
    assert rec.fills[1:] == [("a", 7, 100.25, T0 + M), ("b", 3, 100.5, T0 + 2 * M)]
    assert [o.cid for o in eng.orders] == ["b"]


def test_without_partial_fills_volume_does_not_bound() -> None:
    eng, rec = engine(partial_fills=False)
    order(eng, "a", 1, 50, OrderType.MARKET)
    eng.on_bar(bar(100, 100, 100, 100, vol=1))
    assert rec.fills == [("a", 50, 100.0, T0)]


# ----------------------------------------------------------------------------------------------------- trades


def test_trade_fills_resting_limit_at_the_limit_and_marketable_limit_at_the_print() -> None:
    eng, rec = engine()
    eng.last_px = 100.5
    order(eng, "resting", 1, 1, OrderType.LIMIT, limit=100)
    eng.on_trade(trade(99.75, 5))
    assert rec.fills == [("resting", 1, 100.0, T0)]

    eng2, rec2 = engine()
    eng2.last_px = 99.5  # the market is already below the limit: marketable on arrival
    order(eng2, "marketable", 1, 1, OrderType.LIMIT, limit=100)
    eng2.on_trade(trade(99.75))
    assert rec2.fills == [("marketable", 1, 99.75, T0)]


def test_trade_touch_vs_through_and_partial_bounded_by_print_size() -> None:
    eng, rec = engine(limit_fill="through", partial_fills=True)
    eng.last_px = 101
    order(eng, "bl", 1, 5, OrderType.LIMIT, limit=100)
    eng.on_trade(trade(100, 10, i=1))
    assert rec.fills == []
    eng.on_trade(trade(99.75, 3, i=2))
    assert rec.fills == [("bl", 3, 100.0, T0 + 2_000_000)]
    eng.on_trade(trade(99.75, 9, i=3))
    assert rec.fills[-1] == ("bl", 2, 100.0, T0 + 3_000_000)


def test_trade_triggers_stop_and_fills_at_the_print() -> None:
    eng, rec = engine()
    eng.last_px = 100
    order(eng, "bs", 1, 1, OrderType.STOP, stop=101)
    eng.on_trade(trade(100.75))
    assert rec.fills == []
    eng.on_trade(trade(101.5, i=1))
    assert rec.fills == [("bs", 1, 101.5, T0 + 1_000_000)]


# ----------------------------------------------------------------------------------------------------- L2 book


def test_market_order_walks_the_book_one_fill_per_level() -> None:
    eng, rec = engine(slippage_ticks=5)  # no slippage on an L2 walk
    order(eng, "m", 1, 10, OrderType.MARKET)
    asks = [(t(100), 3), (t(100.25), 4), (t(100.5), 10)]
    eng.on_book([(t(99.75), 5)], asks, None, None, ts=T0, slip=0)
    assert rec.fills == [("m", 3, 100.0, T0), ("m", 4, 100.25, T0), ("m", 3, 100.5, T0)]


def test_limit_walks_only_levels_at_or_better_than_the_limit() -> None:
    eng, rec = engine()
    o = order(eng, "l", 1, 10, OrderType.LIMIT, limit=100.25)
    eng.on_book([], [(t(100), 3), (t(100.25), 4), (t(100.5), 10)], None, t(99.75), ts=T0, slip=0)
    # the previous best ask (99.75) was already below the limit: marketable on arrival, fills at level prices
    assert rec.fills == [("l", 3, 100.0, T0), ("l", 4, 100.25, T0)]
    assert o.leaves == 3 and o in eng.orders


def test_thin_book_remainder_fills_at_the_worst_level_or_waits_with_partial_fills() -> None:
    eng, rec = engine()
    order(eng, "m", -1, 5, OrderType.MARKET)
    eng.on_book([(t(99), 2)], [], None, None, ts=T0, slip=0)
    assert rec.fills == [("m", 2, 99.0, T0), ("m", 3, 99.0, T0)]

    eng2, rec2 = engine(partial_fills=True)
    o = order(eng2, "m", -1, 5, OrderType.MARKET)
    eng2.on_book([(t(99), 2)], [], None, None, ts=T0, slip=0)
    assert rec2.fills == [("m", 2, 99.0, T0)] and o.leaves == 3


def test_two_orders_share_the_book_liquidity_in_one_event() -> None:
    eng, rec = engine()
    order(eng, "a", 1, 2, OrderType.MARKET)
    order(eng, "b", 1, 2, OrderType.MARKET)
    eng.on_book([], [(t(100), 3), (t(100.25), 5)], None, None, ts=T0, slip=0)
    assert rec.fills == [("a", 2, 100.0, T0), ("b", 1, 100.0, T0), ("b", 1, 100.25, T0)]


def test_book_stop_triggers_on_the_best_price() -> None:
    eng, rec = engine()
    order(eng, "ss", -1, 1, OrderType.STOP, stop=99)
    eng.on_book([(t(99.25), 5)], [(t(99.5), 5)], None, None, ts=T0, slip=0)
    assert rec.fills == []
    eng.on_book([(t(99), 5)], [(t(99.25), 5)], t(99.25), t(99.5), ts=T0 + 1, slip=0)
    assert rec.fills == [("ss", 1, 99.0, T0 + 1)]


# ----------------------------------------------------------------------------------------------------- trailing stops


def test_trailing_stop_ratchets_with_the_high_water_mark_and_triggers_like_a_stop() -> None:
    eng, rec = engine()
    eng.last_px = 100
    o = order(eng, "trail", -1, 1, OrderType.TRAILING_STOP, trail=4)  # 1 point behind
    assert o.stop_level() == t(99)
    eng.on_bar(bar(100.25, 100.75, 100.25, 100.5, i=0))  # cannot reach the stop: only the mark moves
    assert rec.fills == [] and o.stop_level() == t(99.75)
    eng.on_bar(bar(100.5, 103, 100.5, 102.5, i=1))
    assert rec.fills == [] and o.stop_level() == t(102)
    eng.on_bar(bar(102.5, 103.5, 101, 101.5, i=2))  # up to 103.5 first (stop 102.5), then down through it
    assert rec.fills == [("trail", 1, 102.5, T0 + 3 * M)]


def test_buy_trailing_stop_follows_the_low() -> None:
    eng, rec = engine()
    eng.last_px = 100
    o = order(eng, "trail", 1, 1, OrderType.TRAILING_STOP, trail=2)
    eng.on_trade(trade(99))
    eng.on_trade(trade(98.5, i=1))
    assert o.stop_level() == t(99)
    eng.on_trade(trade(98.75, i=2))
    assert rec.fills == []
    eng.on_trade(trade(99, i=3))
    assert rec.fills == [("trail", 1, 99.0, T0 + 3_000_000)]


# ----------------------------------------------------------------------------------------------------- expiry, fill_now


def test_day_order_expires_before_a_bar_that_opens_after_its_session_end() -> None:
    eng, rec = engine()
    order(eng, "day", 1, 1, OrderType.LIMIT, limit=99, expiry_ns=T0 + 2 * M, tif=TimeInForce.DAY)
    order(eng, "gtc", 1, 1, OrderType.LIMIT, limit=98)
    eng.on_bar(bar(100, 100, 99.5, 100, i=1))  # before expiry: works
    assert rec.expired == []
    eng.on_bar(bar(100, 100, 97, 100, i=2))  # opens at the expiry: expired first, no fill
    assert rec.expired == [("day", T0 + 2 * M)]
    assert rec.fills == [("gtc", 1, 98.0, T0 + 3 * M)]


def test_fill_now_uses_the_last_price() -> None:
    eng, rec = engine(slippage_ticks=1)
    o = order(eng, "m", -1, 3, OrderType.MARKET)
    assert not eng.fill_now(o, T0)  # no price yet
    eng.last_px = 100.0
    assert eng.fill_now(o, T0 + 5)
    assert rec.fills == [("m", 3, 99.75, T0 + 5)]
