"""Tests for the pre-trade gate (propdesk.risk.gate) inside the real order manager, against the StubBroker."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from propdesk.core.bus import MessageBus
from propdesk.core.clock import SimClock
from propdesk.execution.order_manager import OrderManager
from propdesk.model.enums import Side
from propdesk.model.events import OrderDenied, OrderModifyRejected
from propdesk.model.identifiers import AccountId
from propdesk.model.orders import Order, OrderStatus, OrderType
from propdesk.risk.audit import RingAuditLog
from propdesk.risk.decisions import Action, Decision, EvalPoint, TradingState
from propdesk.risk.gate import ENFORCEMENT_TAG, RiskGate, reduce_only_violation
from propdesk.risk.rules.base import AccountView, Rule, RuleParams, RuleSet
from tests.stubs.broker import StubBroker
from tests.unit.risk.rules.stub_view import NOW, StubView, new, order, pos

A = AccountId(1)
ES = "ESH5"


class MaxContracts(Rule):
    """PRE: deny when the projected position (position + order) exceeds ``limit`` contracts."""

    rule_id = "T5"
    points = frozenset({EvalPoint.PRE})

    def __init__(self, limit: int) -> None:
        super().__init__(RuleParams())
        self.limit = limit

    def check_order(self, view: AccountView, order: Order) -> Decision:
        projected = abs(view.position_qty(order.symbol) + order.signed_qty)
        if projected > self.limit:
            return self.decision(Action.DENY, f"projected {projected} contracts > limit {self.limit}")
        return self.decision(Action.ALLOW, "")

    def describe(self) -> str:
        return f"max {self.limit} contracts"


class Warns(Rule):
    rule_id = "TW"
    points = frozenset({EvalPoint.PRE})

    def check_order(self, view: AccountView, order: Order) -> Decision:
        return self.decision(Action.WARN, "80% of the limit used", used_fraction=0.8)

    def describe(self) -> str:
        return "warns"


class Raises(Rule):
    rule_id = "TX"
    points = frozenset({EvalPoint.PRE})

    def check_order(self, view: AccountView, order: Order) -> Decision:
        raise ZeroDivisionError("boom")

    def describe(self) -> str:
        return "raises"


class FixedState:
    def __init__(self, state: TradingState, reasons: tuple[str, ...] = ("T9: test reason",)) -> None:
        self.state = state
        self.state_reasons = reasons


class Rig:
    def __init__(self, rules: list[Rule], state: TradingState | None = TradingState.ACTIVE, **gate_kw: object) -> None:
        self.clock = SimClock(NOW)
        self.bus = MessageBus(timing=False, ts_source=self.clock.timestamp_ns)
        self.broker = StubBroker(account_id=A, ts_ns=NOW)
        self.view = StubView()
        self.audit = RingAuditLog()
        self.gate = RiskGate(
            RuleSet(rules),
            self.view,
            self.clock,
            account_id=A,
            audit=self.audit,
            state=None if state is None else FixedState(state),
            **gate_kw,  # type: ignore[arg-type]
        )
        self.om = OrderManager(self.bus, self.broker, self.clock, account_id=A, gate=self.gate, run_token="gate1")
        self.broker.set_event_handler(self.om.on_broker_event)
        self.denied: list[OrderDenied] = []
        self.bus.subscribe("events.order.denied", self.denied.append)

    def submitted(self) -> list[str]:
        return [str(c.client_order_id) for c in self.broker.commands_named("submit")]


def test_an_allowed_order_reaches_the_broker_and_is_audited() -> None:
    rig = Rig([MaxContracts(3)])
    o = rig.om.submit(rig.om.market(ES, Side.BUY, 2, "s1"))
    assert o.status is OrderStatus.ACCEPTED and rig.submitted() == [o.client_order_id]
    (e,) = rig.audit.entries(point="pre")
    assert e.action == "ALLOW" and e.state == "ACTIVE"
    assert e.inputs["order"]["qty"] == 2 and e.inputs["day_net"] == "0.00" and "exposure" in e.inputs
    assert rig.gate.allowed == 1 and rig.gate.denied == 0


def test_a_denied_order_never_reaches_the_broker_and_carries_the_rule_and_reason() -> None:
    rig = Rig([MaxContracts(3)])
    rig.view.positions = [pos(ES, 2)]
    o = rig.om.submit(rig.om.limit(ES, Side.BUY, 2, "s1", "5000"))
    assert o.status is OrderStatus.DENIED and rig.submitted() == []
    assert "T5: projected 4 contracts > limit 3" in o.reason
    assert [d.reason for d in rig.denied] == [o.reason]
    (e,) = rig.audit.entries(point="pre")
    assert e.action == "DENY" and e.reasons == ("T5: projected 4 contracts > limit 3",)
    assert e.inputs["positions"] == [[ES, 2, "5000", None]] and e.inputs["order"]["side"] == "BUY"


def test_a_warning_passes_with_the_warning_audited() -> None:
    rig = Rig([Warns(RuleParams())])
    o = rig.om.submit(rig.om.market(ES, Side.BUY, 1, "s1"))
    assert o.status is OrderStatus.ACCEPTED
    (e,) = rig.audit.entries(point="pre")
    assert e.action == "WARN" and e.reasons == ("TW: 80% of the limit used",)


def test_a_rule_that_raises_denies() -> None:
    rig = Rig([MaxContracts(10), Raises(RuleParams())])
    o = rig.om.submit(rig.om.market(ES, Side.BUY, 1, "s1"))
    assert o.status is OrderStatus.DENIED and rig.submitted() == []
    assert "TX: rule failed (ZeroDivisionError: boom)" in o.reason


def test_a_check_slower_than_the_timeout_denies() -> None:
    ticks: Iterator[int] = itertools.count(0, 80_000_000)  # each reading 80 ms later
    rig = Rig([MaxContracts(10)], timeout_s=0.05, perf_ns=lambda: next(ticks))
    o = rig.om.submit(rig.om.market(ES, Side.BUY, 1, "s1"))
    assert o.status is OrderStatus.DENIED and "took 80.000 ms (limit 50.000 ms)" in o.reason
    assert rig.submitted() == []


def test_an_unbound_gate_denies_everything() -> None:
    rig = Rig([], state=None)
    o = rig.om.submit(rig.om.market(ES, Side.BUY, 1, "s1"))
    assert o.status is OrderStatus.DENIED and "risk guard not running" in o.reason


def test_halted_denies_every_order_but_a_registered_enforcement_order_that_reduces() -> None:
    rig = Rig([MaxContracts(10)], state=TradingState.HALTED)
    rig.view.positions = [pos(ES, 2)]
    strategy = rig.om.submit(rig.om.market(ES, Side.SELL, 2, "s1"))
    spoof = rig.om.submit(rig.om.market(ES, Side.SELL, 2, ENFORCEMENT_TAG))  # the tag alone is not enough
    assert strategy.status is OrderStatus.DENIED and spoof.status is OrderStatus.DENIED
    assert "account HALTED (T9: test reason)" in strategy.reason
    adds = rig.om.market(ES, Side.BUY, 1, ENFORCEMENT_TAG)
    rig.gate.authorize_enforcement(adds)
    assert rig.om.submit(adds).status is OrderStatus.DENIED and "adds to the position" in adds.reason
    close = rig.om.market(ES, Side.SELL, 2, ENFORCEMENT_TAG, reduce_only=True)
    rig.gate.authorize_enforcement(close)
    assert rig.om.submit(close).status is OrderStatus.ACCEPTED
    assert rig.submitted() == [close.client_order_id]
    assert [e.action for e in rig.audit.entries(point="pre")] == ["DENY", "DENY", "DENY", "ALLOW"]


def test_reducing_passes_only_orders_that_reduce_within_the_remaining_room() -> None:
    rig = Rig([MaxContracts(10)], state=TradingState.REDUCING)
    rig.view.positions = [pos(ES, 2)]
    adds = rig.om.submit(rig.om.market(ES, Side.BUY, 1, "s1"))
    too_big = rig.om.submit(rig.om.limit(ES, Side.SELL, 3, "s1", "5001"))
    other = rig.om.submit(rig.om.market("NQH5", Side.SELL, 1, "s1"))
    first = rig.om.submit(rig.om.limit(ES, Side.SELL, 1, "s1", "5001"))
    second = rig.om.submit(rig.om.stop(ES, Side.SELL, 1, "s1", "4990"))
    third = rig.om.submit(rig.om.stop(ES, Side.SELL, 1, "s1", "4980"))
    assert [o.status for o in (adds, too_big, other, first, second, third)] == [
        OrderStatus.DENIED,
        OrderStatus.DENIED,
        OrderStatus.DENIED,
        OrderStatus.ACCEPTED,
        OrderStatus.ACCEPTED,
        OrderStatus.DENIED,
    ]
    assert "account REDUCING (T9: test reason)" in adds.reason and "adds to the position of 2" in adds.reason
    assert "no position in NQH5" in other.reason
    assert "minus 2 already working to reduce it (room 0)" in third.reason
    assert rig.submitted() == [first.client_order_id, second.client_order_id]


def test_reducing_counts_an_oco_pair_once() -> None:
    rig = Rig([], state=TradingState.REDUCING)
    rig.view.positions = [pos(ES, -2)]
    stop = rig.om.stop(ES, Side.BUY, 2, "s1", "5010")
    target = rig.om.limit(ES, Side.BUY, 2, "s1", "4990")
    rig.om.submit_oco(stop, target)
    assert stop.status is OrderStatus.ACCEPTED and target.status is OrderStatus.ACCEPTED
    extra = rig.om.submit(rig.om.market(ES, Side.BUY, 1, "s1"))
    assert extra.status is OrderStatus.DENIED and "minus 2 already working" in extra.reason


def test_reducing_skips_the_rules_for_a_reducing_order() -> None:
    rig = Rig([Raises(RuleParams())], state=TradingState.REDUCING)
    rig.view.positions = [pos(ES, 1)]
    assert rig.om.submit(rig.om.market(ES, Side.SELL, 1, "s1")).status is OrderStatus.ACCEPTED


def test_a_modify_that_grows_a_reducing_order_past_the_position_is_rejected() -> None:
    rig = Rig([], state=TradingState.REDUCING)
    rig.view.positions = [pos(ES, 2)]
    o = rig.om.submit(rig.om.limit(ES, Side.SELL, 1, "s1", "5001"))
    rejected: list[OrderModifyRejected] = []
    rig.bus.subscribe("events.order.modify_rejected", rejected.append)
    assert rig.om.modify(o.client_order_id, qty=3) is False
    assert "exceeds the position of 2" in rejected[0].reason and o.qty == 1
    assert rig.om.modify(o.client_order_id, qty=2) is True
    assert rig.broker.commands_named("modify")[0].args["qty"] == 2


def test_reduce_only_violation_definition() -> None:
    sell3 = new(ES, Side.SELL, 3)
    assert reduce_only_violation(sell3, 3, ()) is None
    assert reduce_only_violation(sell3, 2, ()) is not None
    assert reduce_only_violation(sell3, 0, ()) is not None
    assert reduce_only_violation(sell3, -3, ()) is not None
    partly = order(ES, Side.SELL, 3, status=OrderStatus.PARTIALLY_FILLED)
    partly.filled_qty = 1  # only the open 2 count
    assert reduce_only_violation(partly, 2, ()) is None
    # other working reducing orders: same side, same contract; a bracket pair counts at its largest leg
    sl = order(ES, Side.SELL, 2, kind=OrderType.STOP, parent="E1")
    tp = order(ES, Side.SELL, 1, kind=OrderType.LIMIT, parent="E1")
    buy = order(ES, Side.BUY, 5)
    elsewhere = order("NQH5", Side.SELL, 5)
    one = new(ES, Side.SELL, 1)
    assert reduce_only_violation(one, 3, (sl, tp, buy, elsewhere)) is None
    assert reduce_only_violation(new(ES, Side.SELL, 2), 3, (sl, tp, buy, elsewhere)) is not None
    # a done order does not count
    canceled = order(ES, Side.SELL, 3, status=OrderStatus.CANCELED)
    assert reduce_only_violation(new(ES, Side.SELL, 3), 3, (canceled,)) is None


@pytest.mark.parametrize("state", [TradingState.ACTIVE, TradingState.REDUCING])
def test_every_decision_is_audited_with_state(state: TradingState) -> None:
    rig = Rig([MaxContracts(1)], state=state)
    rig.view.positions = [pos(ES, 1)]
    rig.om.submit(rig.om.market(ES, Side.BUY, 1, "s1"))
    rig.om.submit(rig.om.market(ES, Side.SELL, 1, "s1"))
    entries = rig.audit.entries(point="pre")
    assert [(e.action, e.state) for e in entries] == [("DENY", state.name), ("ALLOW", state.name)]
