"""R12 max loss per position (propdesk.risk.rules.position_loss)."""

from __future__ import annotations

import pytest

from propdesk.model.enums import Side
from propdesk.model.orders import OrderType
from propdesk.risk.decisions import Action, EvalPoint
from propdesk.risk.rules.position_loss import PositionLossParams, PositionLossRule

from .stub_view import StubView, new, pos, usd


def usd_rule(**kw: object) -> PositionLossRule:
    return PositionLossRule(PositionLossParams(max_loss_usd="300", **kw))  # type: ignore[arg-type]


def test_quote_boundaries() -> None:
    assert usd_rule().evaluate(StubView(positions=[pos("ESH5", 2, upnl="-299.99")]), EvalPoint.QUOTE).action is (
        Action.ALLOW
    )
    d = usd_rule().evaluate(StubView(positions=[pos("ESH5", 2, upnl="-300")]), EvalPoint.QUOTE)
    assert d.action is Action.CLOSE_POSITION and d.symbol == "ESH5" and "-$300.00" in d.reason
    assert usd_rule(trigger_buffer_usd="50").evaluate(
        StubView(positions=[pos("ESH5", 2, upnl="-250")]), EvalPoint.QUOTE
    ).action is (Action.CLOSE_POSITION)


def test_worst_position_first_and_unmarked_skipped() -> None:
    v = StubView(positions=[pos("ESH5", 1, upnl="-310"), pos("NQH5", -1, upnl="-450"), pos("CLJ5", 1)])
    assert usd_rule().evaluate(v, EvalPoint.QUOTE).symbol == "NQH5"
    assert usd_rule().evaluate(StubView(positions=[pos("CLJ5", 1)]), EvalPoint.QUOTE).action is Action.ALLOW


def test_ticks_limit_scales_with_size_and_tick_value() -> None:
    rule = PositionLossRule(PositionLossParams(max_loss_ticks=8))  # ES: 8 x $12.50 = $100 per contract
    assert rule.evaluate(StubView(positions=[pos("ESH5", 2, upnl="-199.99")]), EvalPoint.QUOTE).action is (Action.ALLOW)
    assert rule.evaluate(StubView(positions=[pos("ESH5", -2, upnl="-200")]), EvalPoint.QUOTE).action is (
        Action.CLOSE_POSITION
    )
    assert rule.evaluate(StubView(positions=[pos("MESH5", 2, upnl="-20")]), EvalPoint.QUOTE).action is (
        Action.CLOSE_POSITION
    )  # MES: 8 x $1.25 x 2


def test_pre_denies_a_stop_beyond_the_limit() -> None:
    o = new("ESH5", Side.BUY, 2, kind=OrderType.LIMIT)
    v = StubView(stop_risks={o.client_order_id: usd("300")})
    assert usd_rule().check_order(v, o).action is Action.ALLOW  # equal to the limit: not more
    v.stop_risks[o.client_order_id] = usd("300.01")
    d = usd_rule().check_order(v, o)
    assert d.action is Action.DENY and "$300.01" in d.reason and "$300.00" in d.reason
    assert usd_rule().check_order(StubView(), new("ESH5", Side.BUY, 2)).action is Action.ALLOW  # no stop


def test_exactly_one_limit() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        PositionLossParams()
    with pytest.raises(ValueError, match="exactly one"):
        PositionLossParams(max_loss_usd="100", max_loss_ticks=4)  # type: ignore[arg-type]
