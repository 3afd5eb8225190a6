"""R5 max position, R6 scaling plan and R7 per-symbol limits (propdesk.risk.rules.position_limits)."""

from __future__ import annotations

from fractions import Fraction

from propdesk.model.enums import Side
from propdesk.model.orders import OrderStatus, OrderType
from propdesk.risk.decisions import Action, EvalPoint
from propdesk.risk.rules.position_limits import (
    MaxPositionParams,
    MaxPositionRule,
    ScalingPlanParams,
    ScalingPlanRule,
    SymbolLimitsParams,
    SymbolLimitsRule,
)

from .stub_view import NOW, SEC, StubView, new, order, pos, usd

BUY, SELL = Side.BUY, Side.SELL


def r5(**kw: object) -> MaxPositionRule:
    base: dict[str, object] = {"limit": 5, "micro_ratio": 10}
    base.update(kw)
    return MaxPositionRule(MaxPositionParams(**base))  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------------------ R5


def test_spec_example_long_es_short_cl_is_five() -> None:
    v = StubView(positions=[pos("ESH5", 2), pos("CLJ5", -3)])
    assert r5().exposure(v) == 5
    assert r5().evaluate(v, EvalPoint.FILL).action is Action.ALLOW  # at the limit is allowed
    d = r5().check_order(v, new("NQH5", BUY, 1))
    assert d.action is Action.DENY and "6 mini-equivalents" in d.reason and "5 limit" in d.reason
    assert r5().check_order(v, new("ESH5", SELL, 1)).action is Action.ALLOW  # reduces to 4


def test_micro_mini_mix() -> None:
    v = StubView(positions=[pos("MNQH5", 3), pos("NQH5", 1)])
    assert r5().exposure(v) == Fraction(13, 10)  # 3 MNQ + 1 NQ = 1.3 minis, exactly
    v2 = StubView(positions=[pos("ESH5", 4), pos("MESH5", 9)])  # 4.9
    assert r5().check_order(v2, new("MESH5", BUY, 1)).action is Action.ALLOW  # 5.0
    d = r5().check_order(v2, new("MESH5", BUY, 2))
    assert d.action is Action.DENY and "5.1" in d.reason
    # a 1:1 platform counts micros as minis
    assert r5(micro_ratio=1).exposure(StubView(positions=[pos("MNQH5", 3), pos("NQH5", 1)])) == 4


def test_weight_override() -> None:
    v = StubView(positions=[pos("CLJ5", 1)])
    assert r5(weights={"CL": "2"}).exposure(v) == 2


def test_working_orders_worst_case_per_side() -> None:
    # long 2, working buy 2 and sell 3: max(|2 + 2|, |2 - 3|) = 4
    v = StubView(positions=[pos("ESH5", 2)], working_orders=[order("ESH5", BUY, 2), order("ESH5", SELL, 3)])
    assert r5().exposure(v) == 4
    assert r5().check_order(v, new("ESH5", BUY, 2)).action is Action.DENY  # max(6, 1)
    assert r5().check_order(v, new("ESH5", SELL, 4)).action is Action.ALLOW  # max(4, 5)
    assert r5().check_order(v, new("ESH5", SELL, 5)).action is Action.DENY  # max(4, 6)
    # not counting working orders
    assert r5(count_working_orders=False).check_order(v, new("ESH5", BUY, 3)).action is Action.ALLOW  # 5


def test_bracket_children_not_counted() -> None:
    children = [
        order("ESH5", SELL, 5, kind=OrderType.STOP, parent="E1"),
        order("ESH5", SELL, 5, kind=OrderType.LIMIT, parent="E1"),
    ]
    v = StubView(positions=[pos("ESH5", 5)], working_orders=children)
    assert r5().exposure(v) == 5
    assert r5().evaluate(v, EvalPoint.FILL).action is Action.ALLOW
    child = new("ESH5", SELL, 5, kind=OrderType.STOP, parent="E1")
    assert r5().check_order(v, child).action is Action.ALLOW
    # a pending entry counts, its children do not: 3 held + 2 working buy = 5
    entry = order("ESH5", BUY, 2)
    v2 = StubView(
        positions=[pos("ESH5", 3)],
        working_orders=[entry, order("ESH5", SELL, 2, kind=OrderType.STOP, parent=entry.client_order_id)],
    )
    assert r5().exposure(v2) == 5


def test_done_orders_not_counted() -> None:
    v = StubView(working_orders=[order("ESH5", BUY, 9, status=OrderStatus.CANCELED)])
    assert r5().exposure(v) == 0


def test_fill_over_limit_closes_newest_first() -> None:
    v = StubView(positions=[pos("ESH5", 4, opened=NOW - 100 * SEC), pos("NQH5", 2, opened=NOW - 10 * SEC)])
    d = r5().evaluate(v, EvalPoint.FILL)
    assert d.action is Action.CLOSE_POSITION and d.symbol == "NQH5" and "6 mini" in d.reason
    assert r5().excess_closes(v) == [("NQH5", 1)]
    micro = StubView(positions=[pos("ESH5", 5, opened=NOW - 100 * SEC), pos("MNQH5", 5, opened=NOW - 5 * SEC)])
    assert r5().excess_closes(micro) == [("MNQH5", 5)]
    assert r5().excess_closes(StubView(positions=[pos("ESH5", 5)])) == []


def test_fill_working_orders_over_limit_is_reduce_only() -> None:
    v = StubView(positions=[pos("ESH5", 4)], working_orders=[order("ESH5", BUY, 2)])
    d = r5().evaluate(v, EvalPoint.FILL)
    assert d.action is Action.REDUCE_ONLY and "6 mini" in d.reason


def test_size_down_names_the_fitting_quantity() -> None:
    rule = r5(on_oversize="size_down")
    v = StubView(positions=[pos("ESH5", 4)])
    o = new("ESH5", BUY, 3)
    d = rule.check_order(v, o)
    assert d.action is Action.DENY and "at most 1 would fit" in d.reason
    assert rule.fitting_qty(v, o) == 1
    assert rule.fitting_qty(StubView(positions=[pos("ESH5", 5)]), o) == 0


# ------------------------------------------------------------------------------------------------------------ R6


def r6() -> ScalingPlanRule:
    return ScalingPlanRule(
        ScalingPlanParams(
            micro_ratio=10,
            ladder=(
                {"max_lots": 2},
                {"eod_profit_gt": "1500", "max_lots": 3},
                {"eod_profit_gt": "2000", "max_lots": 5},
            ),  # type: ignore[arg-type]
        )
    )


def test_scaling_ladder_from_end_of_day_profit() -> None:
    assert r6().limit_for(StubView(sod_balance=usd("51500"))) == 2  # profit not above $1,500
    assert r6().limit_for(StubView(sod_balance=usd("51500.01"))) == 3
    assert r6().limit_for(StubView(sod_balance=usd("52000"))) == 3
    assert r6().limit_for(StubView(sod_balance=usd("52000.01"))) == 5
    assert r6().limit_for(StubView(sod_balance=usd("49000"))) == 2


def test_scaling_limit_does_not_grow_intraday() -> None:
    v = StubView(sod_balance=usd("51000"), balance=usd("60000"), positions=[pos("ESH5", 2)])
    d = r6().check_order(v, new("ESH5", BUY, 1))
    assert d.action is Action.DENY and d.rule_id == "R6" and "2 limit" in d.reason
    v3 = StubView(sod_balance=usd("51600"), positions=[pos("ESH5", 2)])
    assert r6().check_order(v3, new("MESH5", BUY, 10)).action is Action.ALLOW  # 3.0
    assert r6().check_order(v3, new("ESH5", BUY, 2)).action is Action.DENY


# ------------------------------------------------------------------------------------------------------------ R7


def r7() -> SymbolLimitsRule:
    return SymbolLimitsRule(
        SymbolLimitsParams(symbols={"NQ": {"long_max": 2, "short_max": 1}, "CL": {"blocked": True}})  # type: ignore[dict-item]
    )


def test_r7_per_side_limits_at_pre() -> None:
    v = StubView()
    assert r7().check_order(v, new("NQH5", BUY, 2)).action is Action.ALLOW
    d = r7().check_order(v, new("NQH5", BUY, 3))
    assert d.action is Action.DENY and "3 long" in d.reason and "long limit of 2" in d.reason
    assert r7().check_order(v, new("NQH5", SELL, 2)).action is Action.DENY  # short max 1
    assert r7().check_order(v, new("ESH5", BUY, 50)).action is Action.ALLOW  # no limit on ES
    with_working = StubView(working_orders=[order("NQH5", BUY, 1)])
    assert r7().check_order(with_working, new("NQH5", BUY, 2)).action is Action.DENY


def test_r7_counts_every_contract_of_the_root() -> None:
    v = StubView(positions=[pos("NQH5", 1), pos("NQM5", 1)])
    assert r7().check_order(v, new("NQM5", BUY, 1)).action is Action.DENY


def test_r7_brackets_excluded_and_reducing_passes() -> None:
    v = StubView(positions=[pos("NQH5", 2)], working_orders=[order("NQH5", SELL, 2, kind=OrderType.STOP, parent="E9")])
    assert r7().evaluate(v, EvalPoint.FILL).action is Action.ALLOW
    assert r7().check_order(v, new("NQH5", SELL, 2)).action is Action.ALLOW
    assert r7().check_order(v, new("NQH5", SELL, 4)).action is Action.DENY  # short 2 > 1


def test_r7_blocked_symbol() -> None:
    d = r7().check_order(StubView(), new("CLJ5", BUY, 1))
    assert d.action is Action.DENY and "CL is blocked" in d.reason
    held = StubView(positions=[pos("CLJ5", 1)])
    assert r7().check_order(held, new("CLJ5", SELL, 1)).action is Action.ALLOW
    f = r7().evaluate(held, EvalPoint.FILL)
    assert f.action is Action.CLOSE_POSITION and f.symbol == "CLJ5"
    assert r7().evaluate(StubView(working_orders=[order("CLJ5", BUY, 1)]), EvalPoint.FILL).action is (
        Action.REDUCE_ONLY
    )


def test_r7_fill_excess() -> None:
    d = r7().evaluate(StubView(positions=[pos("NQH5", 3)]), EvalPoint.FILL)
    assert d.action is Action.CLOSE_POSITION and d.symbol == "NQH5" and "excess (1)" in d.reason
    assert r7().evaluate(StubView(working_orders=[order("NQH5", BUY, 3)]), EvalPoint.FILL).action is (
        Action.REDUCE_ONLY
    )
    assert r7().evaluate(StubView(positions=[pos("NQH5", 2)]), EvalPoint.FILL).action is Action.ALLOW
