"""R13 stop-loss required (propdesk.risk.rules.stop_required)."""

from __future__ import annotations

from propdesk.model.enums import Side
from propdesk.model.orders import OrderStatus, OrderType
from propdesk.model.price import Price
from propdesk.risk.decisions import Action, EvalPoint
from propdesk.risk.rules.stop_required import StopRequiredParams, StopRequiredRule

from .stub_view import NOW, SEC, StubView, order, pos


def r13(on_missing: str = "attach_stop") -> StopRequiredRule:
    return StopRequiredRule(StopRequiredParams(grace_s=60, on_missing=on_missing, default_stop_ticks=12))  # type: ignore[arg-type]


OPENED = NOW - 60 * SEC


def test_grace_period_then_attach_then_close() -> None:
    v = StubView(now_ns=OPENED + 60 * SEC - 1, positions=[pos("ESH5", 2, opened=OPENED)])
    assert r13().evaluate(v, EvalPoint.CLOCK).action is Action.ALLOW
    assert r13().next_check_ns(v) == OPENED + 60 * SEC
    v.now_ns = OPENED + 60 * SEC
    d = r13().evaluate(v, EvalPoint.CLOCK)
    assert d.action is Action.WARN and d.symbol == "ESH5" and "attach a sell stop 12 ticks" in d.reason
    v.now_ns = OPENED + 120 * SEC
    c = r13().evaluate(v, EvalPoint.CLOCK)
    assert c.action is Action.CLOSE_POSITION and c.symbol == "ESH5"


def test_close_variant() -> None:
    v = StubView(positions=[pos("ESH5", -1, opened=OPENED)])
    d = r13("close").evaluate(v, EvalPoint.FILL)
    assert d.action is Action.CLOSE_POSITION and d.symbol == "ESH5"


def test_stops_must_cover_the_full_size_on_the_opposite_side() -> None:
    stop1 = order("ESH5", Side.SELL, 1, kind=OrderType.STOP)
    v = StubView(positions=[pos("ESH5", 2, opened=OPENED)], working_orders=[stop1])
    missing = r13().missing_stops(v)
    assert len(missing) == 1 and missing[0].qty == 1 and missing[0].side is Side.SELL
    v.working_orders = [stop1, order("ESH5", Side.SELL, 1, kind=OrderType.TRAILING_STOP)]
    assert r13().evaluate(v, EvalPoint.CLOCK).action is Action.ALLOW
    wrong_side = StubView(
        positions=[pos("ESH5", 2, opened=OPENED)], working_orders=[order("ESH5", Side.BUY, 2, kind=OrderType.STOP)]
    )
    assert r13().evaluate(wrong_side, EvalPoint.CLOCK).action is Action.WARN
    limit_only = StubView(positions=[pos("ESH5", 2, opened=OPENED)], working_orders=[order("ESH5", Side.SELL, 2)])
    assert r13().evaluate(limit_only, EvalPoint.CLOCK).action is Action.WARN  # a target is not a stop


def test_bracket_children_count_including_suspended() -> None:
    child = order("ESH5", Side.BUY, 3, kind=OrderType.STOP, parent="E1", status=OrderStatus.SUSPENDED)
    v = StubView(positions=[pos("ESH5", -3, opened=OPENED)], working_orders=[child])
    assert r13().evaluate(v, EvalPoint.CLOCK).action is Action.ALLOW
    gone = order("ESH5", Side.BUY, 3, kind=OrderType.STOP, status=OrderStatus.CANCELED)
    assert (
        r13()
        .evaluate(StubView(positions=[pos("ESH5", -3, opened=OPENED)], working_orders=[gone]), EvalPoint.CLOCK)
        .action
        is Action.WARN
    )


def test_stops_to_attach_only_between_the_two_deadlines_and_only_for_attach_stop() -> None:
    v = StubView(now_ns=OPENED + 59 * SEC, positions=[pos("ESH5", 2, opened=OPENED)])
    assert r13().stops_to_attach(v) == []  # still inside the grace period
    v.now_ns = OPENED + 61 * SEC
    (m,) = r13().stops_to_attach(v)
    assert (m.symbol, m.side, m.qty) == ("ESH5", Side.SELL, 2)
    assert r13("close").stops_to_attach(v) == []
    v.now_ns = OPENED + 120 * SEC
    assert r13().stops_to_attach(v) == []  # past the second deadline the rule closes instead


def test_attach_price_is_beyond_the_average_price_on_the_tick_grid() -> None:
    long_ = StubView(now_ns=OPENED + 61 * SEC, positions=[pos("ESH5", 2, opened=OPENED, avg="6000.125")])
    (m,) = r13().stops_to_attach(long_)
    assert r13().attach_price(long_, m) == Price.of("5997")  # 6000.125 - 12 x 0.25 = 5997.125, rounded down
    short = StubView(now_ns=OPENED + 61 * SEC, positions=[pos("ESH5", -1, opened=OPENED, avg="6000.125")])
    (m,) = r13().stops_to_attach(short)
    assert r13().attach_price(short, m) == Price.of("6003.25")  # 6003.125 rounded up to the tick
    assert r13().attach_price(StubView(now_ns=OPENED + 61 * SEC, positions=[]), m) is None  # position gone
