"""The node keeps every strategy told of its real position (issue 12, part 1): changes it did not cause reach
``on_position_changed`` with their cause, bracket children shrink to the position, and stops cover what is held.

The node runs over :class:`~tests.stubs.broker.StubBroker` (nothing fills by itself; the test fills). The property
test drives ``trend_following`` (tiny periods, so that signals come every few bars) through random sequences of
bars, entry fills (partial or whole), stop fills, manual closes at the broker, risk flattens with a lockout, and
reconciled fills found after a reconnect.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from propdesk.core.bus import MessageBus
from propdesk.core.clock import SimClock
from propdesk.execution.order_manager import OrderManager
from propdesk.model.data import Bar, Timeframe
from propdesk.model.enums import Side
from propdesk.model.events import OrderFilled
from propdesk.model.identifiers import AccountId, ClientOrderId
from propdesk.model.orders import Order, OrderType
from propdesk.model.positions import PositionCause, StrategyPositionChange
from propdesk.model.price import Money, Price
from propdesk.node import NodeConfig, TradingNode
from propdesk.strategies.base import Strategy, StrategyConfig
from propdesk.strategies.trend_following import TrendFollowing, TrendFollowingConfig
from tests.stubs.broker import StubBroker

ACC = AccountId(1)
ES = "ESZ5"
MIN = 60_000_000_000
T0 = 1_757_000_000 * 1_000_000_000
TICK = 0.25


class Lockout:
    """A pre-trade gate that denies every order while ``locked`` (the risk engine's lockout until the session)."""

    def __init__(self) -> None:
        self.locked = False

    def check(self, order: Order, manager: OrderManager) -> str | None:
        return "R11: locked out until 17:00 CT" if self.locked else None


class Recorder(Strategy):
    """Records every position change it is told of."""

    name = "rec"

    def __init__(self) -> None:
        super().__init__(StrategyConfig(symbol=ES))
        self.changes: list[StrategyPositionChange] = []

    def on_position_changed(self, change: StrategyPositionChange) -> None:
        self.changes.append(change)


@dataclass
class Rig:
    strategy: Strategy
    gate: Lockout = field(default_factory=Lockout)
    close: float = 6500.0
    ts: int = T0
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.clock = SimClock(T0)
        self.broker = StubBroker(account_id=ACC, ts_ns=T0)
        self.node = TradingNode(
            clock=self.clock,
            broker=self.broker,
            bus=MessageBus(timing=False),
            config=NodeConfig(account_id=int(ACC), bus_timing=False),
            gate=self.gate,
            strategies=[self.strategy],
        )
        self.node.start()

    @property
    def price(self) -> str:
        return str(Price.of(str(round(self.close / TICK) * TICK)))

    def bar(self, ticks: int) -> None:
        o = self.close
        self.close = max(100.0, o + ticks * TICK)
        hi, lo = max(o, self.close), min(o, self.close)
        self.ts += MIN
        self.clock.advance_to(self.ts)
        self.broker.ts_ns = self.ts
        bar = Bar(ES, Timeframe.parse("1m"), o, hi, lo, self.close, 10, self.ts - MIN, self.ts)
        self.node.publish_bar(bar)

    def open_orders(self, order_type: OrderType) -> list[Order]:
        tag = self.strategy.tag
        return [o for o in self.node.orders.open_orders(ES) if o.tag == tag and o.order_type is order_type]

    def fill(self, order: Order, qty: int | None = None) -> None:
        self.broker.fill(order.client_order_id, qty, self.price)

    def foreign(self, signed: int, *, reconciled: bool = False) -> None:
        """A fill no strategy placed: a trade by hand at the broker, or one found after a reconnect."""
        n = next(self.ids)
        self.broker.emit(
            OrderFilled(
                client_order_id=ClientOrderId(f"ext-{n}"),
                account_id=ACC,
                ts_event_ns=self.ts,
                symbol=ES,
                side=Side.BUY if signed > 0 else Side.SELL,
                qty=abs(signed),
                price=Price.of(self.price),
                fee=Money.zero(),
                trade_id=f"x{n}",
                reconciled=reconciled,
            )
        )

    def flatten(self, rule: str = "R11") -> None:
        """What the enforcer does: cancel every working order, close at market under ``risk:<rule>``."""
        self.gate.locked = True
        self.node.orders.cancel_all()
        pos = self.node.positions.net_qty(ACC, ES)
        self.node.orders.close_position(ES, tag=f"risk:{rule}")
        if pos:
            self.foreign(-pos)
        self.node.orders.release_close_tag(ES)

    @property
    def position(self) -> int:
        return self.node.strategy_qty(ES, self.strategy.tag)


def test_a_risk_flatten_reaches_the_strategy_with_its_cause_and_rule() -> None:
    rig = Rig(Recorder())
    entry = rig.strategy.buy(2)
    rig.fill(entry, 1)
    rig.fill(entry)
    rig.flatten("R11")
    causes = [(c.cause, c.signed_qty, c.source_tag) for c in rig.strategy.changes]  # type: ignore[attr-defined]
    assert causes == [
        (PositionCause.OWN_FILL, 1, "rec"),
        (PositionCause.OWN_FILL, 2, "rec"),
        (PositionCause.RISK_FLATTEN, 0, "risk:R11"),
    ]
    assert rig.position == 0 and rig.node.positions.net_qty(ACC, ES) == 0


def test_manual_and_reconciled_changes_reach_the_strategy() -> None:
    rig = Rig(Recorder())
    rig.fill(rig.strategy.sell(3))
    rig.foreign(1)  # the trader buys one back at the broker
    rig.foreign(2, reconciled=True)  # the rest, found after a reconnect
    changes = rig.strategy.changes  # type: ignore[attr-defined]
    assert [(c.cause, c.previous_qty, c.signed_qty) for c in changes[1:]] == [
        (PositionCause.MANUAL, -3, -2),
        (PositionCause.RECONCILE, -2, 0),
    ]


class Bracketed(Strategy):
    """Enters with a synthesized bracket; overrides no hook (the node must still shrink its children)."""

    name = "brk"


def test_bracket_children_shrink_to_the_position_after_a_partial_risk_close() -> None:
    strategy = Bracketed(StrategyConfig(symbol=ES, qty=3))
    rig = Rig(strategy)
    entry = strategy.bracket(Side.BUY, stop_loss_ticks=8, take_profit_ticks=16)
    rig.fill(entry)
    (stop,) = rig.open_orders(OrderType.STOP)
    assert stop.qty == 3
    rig.node.orders.close_position(ES, 2, tag="risk:R5")  # an excess of 2 over a tightened position limit
    rig.foreign(-2)
    assert rig.position == 1
    (stop,) = rig.open_orders(OrderType.STOP)
    (target,) = rig.open_orders(OrderType.LIMIT)
    assert stop.qty - stop.filled_qty == 1 and target.qty - target.filled_qty == 1
    rig.fill(stop)  # the stop-loss now closes exactly what is held: never a short
    assert rig.position == 0 and rig.node.positions.net_qty(ACC, ES) == 0
    assert rig.open_orders(OrderType.LIMIT) == []


def trend(qty: int) -> TrendFollowing:
    cfg = TrendFollowingConfig(symbol=ES, qty=qty, fast=1, slow=2, atr_period=1, atr_mult=2.0)
    return TrendFollowing(cfg)


def stop_cover(rig: Rig) -> int:
    """Contracts the strategy's working stops would close (their open quantity)."""
    return sum(o.qty - o.filled_qty for o in rig.open_orders(OrderType.STOP))


def test_the_stop_follows_partial_entry_fills_and_a_manual_partial_close() -> None:
    strategy = trend(3)
    rig = Rig(strategy)
    for step in (4, 4, -8):  # warm up, then a cross down: a short entry
        rig.bar(step)
    (entry,) = rig.open_orders(OrderType.MARKET)
    assert entry.side is Side.SELL and entry.qty == 3
    rig.fill(entry, 1)
    assert rig.position == -1 and stop_cover(rig) == 1  # protected from the first contract on
    rig.fill(entry)
    assert rig.position == -3 and stop_cover(rig) == 3
    rig.foreign(2)  # the trader buys two back at the broker
    assert rig.position == -1 and stop_cover(rig) == 1
    rig.flatten()
    assert rig.position == 0 and stop_cover(rig) == 0 and strategy.direction == 0


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("bar"), st.integers(-12, 12)),
        st.tuples(st.just("fill"), st.integers(1, 3)),
        st.tuples(st.just("stop"), st.just(0)),
        st.tuples(st.just("manual"), st.integers(1, 3)),
        st.tuples(st.just("flatten"), st.just(0)),
        st.tuples(st.just("session"), st.just(0)),
        st.tuples(st.just("reconnect"), st.integers(1, 3)),
    ),
    min_size=5,
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(qty=st.integers(1, 3), ops=OPS)
def test_property_size_stop_cover_and_no_silence_after_a_flatten(qty: int, ops: list[tuple[str, int]]) -> None:
    strategy = trend(qty)
    rig = Rig(strategy)
    for step in (4, -4, 4):  # the indicators are ready from here on
        rig.bar(step)
    for op, n in ops:
        pos = rig.position
        if op == "bar":
            rig.bar(n)
        elif op == "fill":
            for entry in rig.open_orders(OrderType.MARKET):
                rig.fill(entry, min(n, entry.qty - entry.filled_qty))
        elif op == "stop":
            for stop in rig.open_orders(OrderType.STOP):
                rig.fill(stop)
        elif op in ("manual", "reconnect") and pos:
            k = min(n, abs(pos))
            rig.foreign(-k if pos > 0 else k, reconciled=op == "reconnect")
        elif op == "flatten":
            rig.flatten()
        elif op == "session":
            rig.gate.locked = False
        held = rig.position
        assert abs(held) <= qty, f"{op}: holds {held} > {qty}"
        assert held == rig.node.positions.net_qty(ACC, ES)  # only foreign fills that close: all of it is its own
        entry_open = bool(rig.open_orders(OrderType.MARKET))
        if held and not entry_open:
            stops = rig.open_orders(OrderType.STOP)
            assert stop_cover(rig) == abs(held), f"{op}: stop covers {stop_cover(rig)} of {held}"
            assert all(int(s.side) * held < 0 for s in stops)
        if not held:
            assert stop_cover(rig) == 0
    # the lockout lifts at the next session: the strategy must trade again on its next signals
    rig.flatten()
    rig.gate.locked = False
    sent = len(rig.node.orders.orders_for_tag(strategy.tag))
    for step in (12, -12, 12, -12):
        rig.bar(step)
        for entry in rig.open_orders(OrderType.MARKET):
            rig.fill(entry)
    assert len(rig.node.orders.orders_for_tag(strategy.tag)) > sent, "silent after the lockout lifted"


BRACKET_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("enter"), st.sampled_from([Side.BUY, Side.SELL])),
        st.tuples(st.just("fill"), st.integers(1, 3)),
        st.tuples(st.just("stop"), st.integers(1, 3)),
        st.tuples(st.just("target"), st.integers(1, 3)),
        st.tuples(st.just("manual"), st.integers(1, 3)),
        st.tuples(st.just("reconnect"), st.integers(1, 3)),
        st.tuples(st.just("flatten"), st.just(0)),
        st.tuples(st.just("session"), st.just(0)),
    ),
    min_size=3,
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(qty=st.integers(1, 3), ops=BRACKET_OPS)
def test_property_bracket_children_always_cover_the_position(qty: int, ops: list[tuple[str, object]]) -> None:
    """A bracketed strategy (synthesized stop-loss and take-profit): whatever fills, closes or flattens it, its
    children cover exactly what it holds, and it never holds more than it entered."""
    strategy = Bracketed(StrategyConfig(symbol=ES, qty=qty))
    rig = Rig(strategy)
    for op, arg in ops:
        pos = rig.position
        entries = rig.open_orders(OrderType.MARKET)
        if op == "enter" and pos == 0 and not entries and not rig.gate.locked:
            assert isinstance(arg, Side)
            strategy.bracket(arg, stop_loss_ticks=8, take_profit_ticks=16)
        elif op == "fill":
            for entry in entries:
                rig.fill(entry, min(int(arg), entry.qty - entry.filled_qty))  # type: ignore[call-overload]
        elif op in ("stop", "target"):
            kind = OrderType.STOP if op == "stop" else OrderType.LIMIT
            for child in rig.open_orders(kind)[:1]:
                rig.fill(child, min(int(arg), child.qty - child.filled_qty))  # type: ignore[call-overload]
        elif op in ("manual", "reconnect") and pos:
            k = min(int(arg), abs(pos))  # type: ignore[call-overload]
            rig.foreign(-k if pos > 0 else k, reconciled=op == "reconnect")
        elif op == "flatten":
            rig.flatten("R3")
        elif op == "session":
            rig.gate.locked = False
        held = rig.position
        assert abs(held) <= qty
        assert held == rig.node.positions.net_qty(ACC, ES)
        for kind in (OrderType.STOP, OrderType.LIMIT):
            children = rig.open_orders(kind)
            assert sum(o.qty - o.filled_qty for o in children) == abs(held), f"{op}: {kind.value} cover vs {held}"
            assert all(int(o.side) * held < 0 for o in children)
