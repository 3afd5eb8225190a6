"""R14 no hedging across accounts (propdesk.risk.rules.hedging)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from pydantic import ValidationError

from propdesk.model.enums import Side
from propdesk.risk.decisions import Action, EvalPoint
from propdesk.risk.rules.hedging import HedgeLeg, NoHedgingParams, NoHedgingRule

from .stub_view import NOW, SEC, StubView, new, pos


@dataclass
class StubBook:
    legs: list[HedgeLeg] = field(default_factory=list)

    def other_legs(self, roots: frozenset[str]) -> Sequence[HedgeLeg]:
        return [leg for leg in self.legs if leg.root in roots]


def r14(*legs: HedgeLeg) -> NoHedgingRule:
    params = NoHedgingParams(groups=(frozenset({"ES", "MES"}), frozenset({"NQ", "MNQ"})))
    return NoHedgingRule(params, book=StubBook(list(legs)))


def leg(symbol: str, root: str, qty: int, opened: int = NOW - 100 * SEC) -> HedgeLeg:
    return HedgeLeg(account="XFA-2", symbol=symbol, root=root, signed_qty=qty, opened_ts_ns=opened)


def test_pre_denies_the_opposite_side_in_the_group() -> None:
    rule = r14(leg("MESH5", "MES", 3))  # another account is long MES
    d = rule.check_order(StubView(), new("ESH5", Side.SELL, 1))
    assert d.action is Action.DENY and "XFA-2" in d.reason and "+3 MESH5" in d.reason
    assert rule.check_order(StubView(), new("ESH5", Side.BUY, 1)).action is Action.ALLOW  # same direction
    assert rule.check_order(StubView(), new("NQH5", Side.SELL, 1)).action is Action.ALLOW  # other group
    assert rule.check_order(StubView(), new("CLJ5", Side.SELL, 1)).action is Action.ALLOW


def test_root_without_group_is_its_own_group() -> None:
    rule = r14(leg("CLJ5", "CL", -1))
    assert rule.check_order(StubView(), new("CLJ5", Side.BUY, 1)).action is Action.DENY


def test_reducing_order_is_not_a_hedge() -> None:
    rule = r14(leg("ESH5", "ES", -2))
    v = StubView(positions=[pos("ESH5", 2)])
    assert rule.check_order(v, new("ESH5", Side.SELL, 2)).action is Action.ALLOW


def test_fill_closes_the_newer_leg_only() -> None:
    older_there = r14(leg("ESH5", "ES", -1, opened=NOW - 100 * SEC))
    v = StubView(positions=[pos("MESH5", 5, opened=NOW - 10 * SEC)])
    d = older_there.evaluate(v, EvalPoint.FILL)
    assert d.action is Action.CLOSE_POSITION and d.symbol == "MESH5"
    newer_there = r14(leg("ESH5", "ES", -1, opened=NOW - 5 * SEC))
    w = newer_there.evaluate(v, EvalPoint.FILL)
    assert w.action is Action.WARN and "newer leg is in account XFA-2" in w.reason
    assert r14().evaluate(v, EvalPoint.FILL).action is Action.ALLOW


def test_groups_must_be_disjoint() -> None:
    with pytest.raises(ValidationError, match="more than one group"):
        NoHedgingParams(groups=(frozenset({"ES", "MES"}), frozenset({"MES", "NQ"})))
