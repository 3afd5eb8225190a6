"""Brackets and OCO through the order manager: the same scenarios against a broker that does them natively and one
where the manager synthesizes them, asserting the same observable guarantees (propdesk.execution.brackets):
children's open quantity == open position after every step, sibling canceled when a leg completes, flat at the end.
"""

from __future__ import annotations

import pytest

from propdesk.brokers.base import BrokerCapabilities
from propdesk.core.bus import MessageBus
from propdesk.core.clock import SimClock
from propdesk.execution.brackets import Bracket, child_prices
from propdesk.execution.order_manager import ORDER_ERROR_TOPIC, OrderManager, OrderManagerError
from propdesk.model.enums import Side
from propdesk.model.events import OrderFilled, OrderSuspended
from propdesk.model.identifiers import AccountId
from propdesk.model.orders import BracketSpec, Order, OrderStatus, OrderType
from propdesk.model.price import Price
from tests.stubs.broker import StubBroker

ACC = AccountId(1)
SYM = "ESZ5"

NATIVE = BrokerCapabilities(native_brackets=True, native_oco=True)
SYNTH_NATIVE_OCO = BrokerCapabilities(native_brackets=False, native_oco=True)
SYNTH = BrokerCapabilities(native_brackets=False, native_oco=False)
SYNTH_NO_MODIFY = BrokerCapabilities(native_brackets=False, native_oco=False, modify_orders=False)
ALL_CAPS = pytest.mark.parametrize(
    "caps",
    [NATIVE, SYNTH_NATIVE_OCO, SYNTH, SYNTH_NO_MODIFY],
    ids=["native", "synth-native-oco", "synth", "synth-nomod"],
)
SYNTH_CAPS = pytest.mark.parametrize(
    "caps", [SYNTH_NATIVE_OCO, SYNTH, SYNTH_NO_MODIFY], ids=["synth-native-oco", "synth", "synth-nomod"]
)


class Rig:
    def __init__(self, caps: BrokerCapabilities, broker: StubBroker | None = None) -> None:
        self.clock = SimClock(0)
        self.bus = MessageBus(timing=False)
        self.broker = broker or StubBroker(account_id=ACC, capabilities=caps)
        self.m = OrderManager(self.bus, self.broker, self.clock, account_id=ACC, run_token="r1")
        self.broker.set_event_handler(self.m.on_broker_event)
        self.fills: list[OrderFilled] = []
        self.errors: list[object] = []
        self.bus.subscribe("events.order.filled", self.fills.append)
        self.bus.subscribe(ORDER_ERROR_TOPIC, self.errors.append)

    def position(self, symbol: str = SYM) -> int:
        """Net contracts from every fill published on the bus (what positions and risk see)."""
        return sum(f.signed_qty for f in self.fills if f.symbol == symbol)

    def leg(self, cid: str | None) -> Order:
        assert cid is not None
        o = self.m.order(cid)
        assert o is not None, f"{cid} is not tracked"
        return o

    def assert_protected(self, b: Bracket) -> None:
        """Children's open quantity equals the open position, in the manager and at the broker."""
        pos = abs(self.position(b.symbol))
        open_children = [self.m.order(c) for c in b.leg_ids]
        open_children_ = [o for o in open_children if o is not None and o.is_open]
        if pos == 0:
            assert open_children_ == [], [o.client_order_id for o in open_children_]
        else:
            assert {o.order_type for o in open_children_} == {OrderType.STOP, OrderType.LIMIT}
            for o in open_children_:
                assert o.leaves_qty == pos, (o.client_order_id, o.leaves_qty, pos)
                assert o.side is b.entry_side.opposite
        broker_side = [so for so in self.broker.working() if so.parent_id == b.entry_id]
        assert sorted(so.leaves for so in broker_side) == [pos] * len(broker_side)
        assert len(broker_side) == (2 if pos else 0)
        assert self.errors == []


def _bracket(r: Rig, qty: int = 3, side: Side = Side.BUY) -> Bracket:
    entry = r.m.limit(SYM, side, qty, "brk", "6500")
    return r.m.submit_bracket(entry, stop_loss_ticks=8, take_profit_ticks=16)


@ALL_CAPS
def test_children_follow_entry_partial_fills_and_sibling_is_canceled(caps: BrokerCapabilities) -> None:
    r = Rig(caps)
    b = _bracket(r)
    entry = r.leg(b.entry_id)
    assert b.native is caps.native_brackets
    sub = r.broker.commands_named("submit")[0]
    assert sub.args["bracket"] == (BracketSpec(8, 16) if caps.native_brackets else None)
    r.assert_protected(b)  # nothing filled: no children
    r.broker.fill(b.entry_id, 1, "6500")
    r.assert_protected(b)
    assert b.stop_loss_id == f"{b.entry_id}-sl" and b.take_profit_id == f"{b.entry_id}-tp"
    sl, tp = r.leg(b.stop_loss_id), r.leg(b.take_profit_id)
    assert sl.stop_price == Price.of("6498") and tp.limit_price == Price.of("6504")  # 8 and 16 ticks of 0.25
    assert sl.tag == tp.tag == "brk" and sl.parent_id == entry.client_order_id and sl.reduce_only
    r.broker.fill(b.entry_id, 2, "6499.75")
    assert entry.status is OrderStatus.FILLED
    r.assert_protected(b)
    assert r.leg(b.stop_loss_id).stop_price == Price.of("6498")  # priced from the first fill, not the average
    tp = r.leg(b.take_profit_id)
    r.broker.fill(tp.client_order_id, None, "6504")
    assert tp.status is OrderStatus.FILLED
    assert r.leg(b.stop_loss_id).status is OrderStatus.CANCELED
    assert r.position() == 0
    r.assert_protected(b)


@ALL_CAPS
def test_child_partial_fill_shrinks_the_sibling(caps: BrokerCapabilities) -> None:
    r = Rig(caps)
    b = _bracket(r)
    r.broker.fill(b.entry_id, 3, "6500")
    r.assert_protected(b)
    r.broker.fill(r.leg(b.stop_loss_id).client_order_id, 1, "6498")
    assert r.position() == 2
    r.assert_protected(b)
    sl = r.leg(b.stop_loss_id)
    r.broker.fill(sl.client_order_id, sl.leaves_qty, "6498")
    assert r.position() == 0
    assert r.leg(b.take_profit_id).status is OrderStatus.CANCELED
    r.assert_protected(b)


@ALL_CAPS
def test_entry_canceled_after_partial_fill_keeps_children_for_the_filled_qty(caps: BrokerCapabilities) -> None:
    r = Rig(caps)
    b = _bracket(r)
    r.broker.fill(b.entry_id, 1, "6500")
    assert r.m.cancel(b.entry_id) is True
    assert r.leg(b.entry_id).status is OrderStatus.CANCELED
    r.assert_protected(b)
    assert r.leg(b.stop_loss_id).is_working and r.leg(b.take_profit_id).is_working
    r.broker.fill(r.leg(b.take_profit_id).client_order_id, None, "6504")
    assert r.position() == 0 and r.leg(b.stop_loss_id).status is OrderStatus.CANCELED
    r.assert_protected(b)


@ALL_CAPS
@pytest.mark.parametrize("outcome", ["cancel", "reject", "expire"])
def test_entry_done_unfilled_never_gets_children(caps: BrokerCapabilities, outcome: str) -> None:
    r = Rig(caps)
    b = _bracket(r)
    getattr(r.broker, outcome)(b.entry_id)
    assert r.leg(b.entry_id).is_done
    assert [c.client_order_id for c in r.broker.commands_named("submit")] == [b.entry_id]
    assert [o.client_order_id for o in r.m.orders()] == [b.entry_id]
    assert r.broker.working() == []
    r.assert_protected(b)


@ALL_CAPS
def test_short_market_entry_prices_children_mirrored(caps: BrokerCapabilities) -> None:
    r = Rig(caps)
    b = r.m.submit_bracket(r.m.market(SYM, Side.SELL, 2, "brk"), stop_loss_ticks=4, take_profit_ticks=10)
    r.broker.fill(b.entry_id, None, "6500")
    r.assert_protected(b)
    assert r.position() == -2
    assert r.leg(b.stop_loss_id).stop_price == Price.of("6501") and r.leg(b.stop_loss_id).side is Side.BUY
    assert r.leg(b.take_profit_id).limit_price == Price.of("6497.5")
    r.broker.fill(r.leg(b.stop_loss_id).client_order_id, None, "6501")
    assert r.position() == 0
    r.assert_protected(b)


@SYNTH_CAPS
def test_synthesized_bracket_replaces_children_when_entry_fills_after_they_finished(caps: BrokerCapabilities) -> None:
    r = Rig(caps)
    b = _bracket(r)
    r.broker.fill(b.entry_id, 1, "6500")
    first_tp = b.take_profit_id
    r.broker.fill(r.leg(b.take_profit_id).client_order_id, None, "6504")
    assert r.position() == 0
    r.assert_protected(b)
    r.broker.fill(b.entry_id, 2, "6500")  # the entry keeps working and fills more: protect the new position
    r.assert_protected(b)
    assert b.take_profit_id != first_tp and b.generation >= 2
    assert r.leg(b.stop_loss_id).stop_price == Price.of("6498")
    r.broker.fill(r.leg(b.stop_loss_id).client_order_id, None, "6498")
    assert r.position() == 0
    r.assert_protected(b)


def test_synthesized_children_are_resized_by_modify() -> None:
    r = Rig(SYNTH)
    b = _bracket(r)
    r.broker.fill(b.entry_id, 1, "6500")
    r.broker.fill(b.entry_id, 1, "6500")
    mods = r.broker.commands_named("modify")
    assert sorted((c.client_order_id, c.args["qty"]) for c in mods) == [(b.stop_loss_id, 2), (b.take_profit_id, 2)]
    assert r.broker.commands_named("cancel") == []


def test_synthesized_children_are_canceled_and_replaced_without_modify() -> None:
    r = Rig(SYNTH_NO_MODIFY)
    b = _bracket(r)
    r.broker.fill(b.entry_id, 1, "6500")
    first = (b.stop_loss_id, b.take_profit_id)
    r.broker.fill(b.entry_id, 1, "6500")
    assert r.broker.commands_named("modify") == []
    assert {c.client_order_id for c in r.broker.commands_named("cancel")} == set(first)
    assert (b.stop_loss_id, b.take_profit_id) == (f"{b.entry_id}-sl2", f"{b.entry_id}-tp2")
    r.assert_protected(b)


class GappingBroker(StubBroker):
    """Fills every stop order completely the moment it is submitted (the market gapped through it)."""

    def submit_order(self, order: Order, bracket: BracketSpec | None = None) -> None:
        super().submit_order(order, bracket)
        if order.order_type is OrderType.STOP and not self.orders[order.client_order_id].done:
            self.fill(order.client_order_id, None, order.stop_price or Price.of("0"))


@pytest.mark.parametrize("caps", [SYNTH_NATIVE_OCO, SYNTH], ids=["synth-native-oco", "synth"])
def test_leg_filled_before_its_sibling_was_sent_cancels_the_sibling(caps: BrokerCapabilities) -> None:
    r = Rig(caps, GappingBroker(account_id=ACC, capabilities=caps))
    b = _bracket(r, qty=2)
    r.broker.fill(b.entry_id, None, "6500")
    tp = r.leg(b.take_profit_id)
    assert r.leg(b.stop_loss_id).status is OrderStatus.FILLED
    assert tp.status is OrderStatus.CANCELED and "position closed" in tp.reason
    assert tp.client_order_id not in {c.client_order_id for c in r.broker.commands}
    assert r.position() == 0
    r.assert_protected(b)


def test_bracket_arguments_are_checked() -> None:
    r = Rig(SYNTH)
    with pytest.raises(OrderManagerError, match="give stop_loss_ticks"):
        r.m.submit_bracket(r.m.market(SYM, Side.BUY, 1, "brk"))
    with pytest.raises(OrderManagerError, match="positive int"):
        r.m.submit_bracket(r.m.market(SYM, Side.BUY, 1, "brk"), stop_loss_ticks=0)
    assert r.broker.commands == []


def test_child_prices_are_mirrored_for_sells() -> None:
    tick = Price.of("0.25")
    assert child_prices(Side.BUY, Price.of("100"), tick, 4, 8) == (Price.of("99"), Price.of("102"))
    assert child_prices(Side.SELL, Price.of("100"), tick, 4, None) == (Price.of("101"), None)


# ----------------------------------------------------------------------------------------------- OCO

OCO_CAPS = pytest.mark.parametrize(
    "caps",
    [BrokerCapabilities(native_oco=True), SYNTH, SYNTH_NO_MODIFY],
    ids=["native-oco", "synth", "synth-nomod"],
)


def _long_then_oco(r: Rig, qty: int = 2) -> tuple[Order, Order]:
    r.broker.fill(r.m.submit(r.m.market(SYM, Side.BUY, qty, "oco")).client_order_id, None, "6500")
    a = r.m.limit(SYM, Side.SELL, qty, "oco", "6510")
    b = r.m.stop(SYM, Side.SELL, qty, "oco", "6490")
    g = r.m.submit_oco(a, b)
    assert g.native is r.broker.capabilities.native_oco
    assert a.linked_ids == (b.client_order_id,) and b.linked_ids == (a.client_order_id,)
    return a, b


@OCO_CAPS
def test_oco_full_fill_cancels_the_other(caps: BrokerCapabilities) -> None:
    r = Rig(caps)
    a, b = _long_then_oco(r)
    r.broker.fill(a.client_order_id, None, "6510")
    assert a.status is OrderStatus.FILLED and b.status is OrderStatus.CANCELED
    assert r.position() == 0 and r.broker.working() == [] and r.errors == []


@OCO_CAPS
def test_oco_partial_fill_shrinks_the_other(caps: BrokerCapabilities) -> None:
    r = Rig(caps)
    a, _ = _long_then_oco(r, qty=3)
    r.broker.fill(a.client_order_id, 1, "6510")
    assert r.position() == 2
    g = r.m.oco_group(a.client_order_id)
    assert g is not None
    other = r.leg(g.others(a.client_order_id)[0])
    assert other.leaves_qty == 2 and a.leaves_qty == 2
    assert sorted(so.leaves for so in r.broker.working()) == [2, 2]
    r.broker.fill(a.client_order_id, None, "6510")
    assert r.position() == 0 and other.status is OrderStatus.CANCELED
    assert r.broker.working() == [] and r.errors == []


def test_oco_leg_filled_during_submit_cancels_the_other() -> None:
    r = Rig(SYNTH, GappingBroker(account_id=ACC, capabilities=SYNTH))
    r.broker.fill(r.m.submit(r.m.market(SYM, Side.BUY, 1, "oco")).client_order_id, None, "6500")
    stop = r.m.stop(SYM, Side.SELL, 1, "oco", "6490")
    target = r.m.limit(SYM, Side.SELL, 1, "oco", "6510")
    r.m.submit_oco(stop, target)
    assert stop.status is OrderStatus.FILLED
    assert target.status is OrderStatus.CANCELED
    assert target.client_order_id not in {c.client_order_id for c in r.broker.commands}
    assert r.position() == 0


def test_oco_needs_two_distinct_new_orders() -> None:
    r = Rig(SYNTH)
    a = r.m.limit(SYM, Side.SELL, 1, "oco", "6510")
    with pytest.raises(OrderManagerError, match="both legs"):
        r.m.submit_oco(a, a)
    sent = r.m.submit(r.m.limit(SYM, Side.SELL, 1, "oco", "6511"))
    with pytest.raises(OrderManagerError, match="only a new order"):
        r.m.submit_oco(a, sent)


def test_native_children_announced_suspended_before_the_entry_fills() -> None:
    # ProjectX shows native children as Suspended (status 8) while the entry works.
    r = Rig(NATIVE)
    seen: list[object] = []
    r.bus.subscribe("events.order.suspended", seen.append)
    b = _bracket(r)
    for cid in (b.stop_loss_id, b.take_profit_id):
        assert cid is not None
        r.broker.emit(OrderSuspended(client_order_id=cid, account_id=ACC, ts_event_ns=1))
    sl = r.leg(b.stop_loss_id)
    assert sl.status is OrderStatus.SUSPENDED and sl.stop_price == Price.of("6498")  # from the limit price
    assert len(seen) == 2
    r.broker.fill(b.entry_id, 2, "6499")  # fills better than the limit: the broker re-prices the children
    assert sl.status is OrderStatus.ACCEPTED and sl.stop_price == Price.of("6497")
    r.assert_protected(b)
    # A market entry has no reference price before it fills: the event is published but not tracked.
    m = r.m.submit_bracket(r.m.market(SYM, Side.BUY, 1, "brk"), stop_loss_ticks=4, take_profit_ticks=4)
    r.broker.emit(OrderSuspended(client_order_id=f"{m.entry_id}-sl", account_id=ACC, ts_event_ns=2))
    assert r.m.order(f"{m.entry_id}-sl") is None and len(seen) == 3
    r.broker.fill(m.entry_id, None, "6500")
    assert r.leg(m.stop_loss_id).stop_price == Price.of("6499")
    assert r.errors == []
