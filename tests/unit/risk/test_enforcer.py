"""Tests for the enforcer (propdesk.risk.enforcer): persist first, cancel, close, verify, retry with backoff.

The real OrderManager and PositionManager run against :class:`CloseBroker`, a StubBroker whose ``close_position``
fills at once or only when the test says so (a broker that is slow to fill).
"""

from __future__ import annotations

import itertools
from typing import TypeVar

from propdesk.core.bus import MessageBus
from propdesk.core.clock import SimClock
from propdesk.execution.order_manager import OrderManager
from propdesk.execution.positions import PositionManager
from propdesk.model.enums import Side
from propdesk.model.events import OrderFilled
from propdesk.model.identifiers import AccountId
from propdesk.model.orders import Order, OrderStatus
from propdesk.model.records import Lockout, LockoutStoreError
from propdesk.risk.audit import RingAuditLog
from propdesk.risk.decisions import TradingState
from propdesk.risk.enforcer import Enforcer
from propdesk.risk.events import AccountFlattened, FlattenRetry, PositionClosedByRisk, RiskEvent
from propdesk.risk.gate import ENFORCEMENT_TAG, RiskGate
from propdesk.risk.lockouts import MemoryLockoutStore
from propdesk.risk.rules.base import RuleSet
from tests.stubs.broker import StubBroker
from tests.unit.risk.rules.stub_view import NOW, SEC, StubView

A = AccountId(1)
E = TypeVar("E", bound=RiskEvent)
ES = "ESH5"
NQ = "NQH5"


class CloseBroker(StubBroker):
    """A StubBroker whose ``close_position`` is filled at market: at once (``fill_closes``) or by :meth:`do_close`."""

    def __init__(self, *, fill_closes: bool = True, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.fill_closes = fill_closes
        self._broker_ids = itertools.count(9001)

    def close_position(self, symbol: str, qty: int | None = None) -> None:
        super().close_position(symbol, qty)
        if self.fill_closes:
            self.do_close(symbol, qty)

    def do_close(self, symbol: str, qty: int | None = None, price: str = "6500") -> None:
        """Fill a market close of ``qty`` (default all) of the broker-side position in ``symbol``."""
        n = self.position(symbol)
        if n:
            q = abs(n) if qty is None else min(qty, abs(n))
            self.fill_foreign(symbol, Side.SELL if n > 0 else Side.BUY, q, price, next(self._broker_ids))


class PmView(StubView):
    """A StubView whose positions are the position manager's."""

    def __init__(self, pm: PositionManager) -> None:
        super().__init__()
        self.pm = pm

    def position_qty(self, symbol: str) -> int:
        return self.pm.net_qty(A, symbol)


class FixedState:
    def __init__(self, state: TradingState) -> None:
        self.state = state
        self.state_reasons = ("test",)


class RecordingStore(MemoryLockoutStore):
    """Notes which broker commands had been sent when each lockout was saved."""

    def __init__(self, broker: StubBroker) -> None:
        super().__init__()
        self.broker = broker
        self.commands_at_save: list[list[str]] = []

    def save(self, lockout: Lockout) -> None:
        self.commands_at_save.append([c.name for c in self.broker.commands])
        super().save(lockout)


class FailingStore(MemoryLockoutStore):
    def save(self, lockout: Lockout) -> None:
        raise LockoutStoreError("disk full")


class Rig:
    def __init__(self, *, fill_closes: bool = True, store: MemoryLockoutStore | None = None, **kw: object) -> None:
        self.clock = SimClock(NOW)
        self.bus = MessageBus(timing=False, ts_source=self.clock.timestamp_ns)
        self.broker = CloseBroker(fill_closes=fill_closes, account_id=A, ts_ns=NOW)
        self.pm = PositionManager(self.bus)
        self.state = FixedState(TradingState.ACTIVE)
        self.gate = RiskGate(RuleSet([]), PmView(self.pm), self.clock, account_id=A, state=self.state)
        self.om = OrderManager(self.bus, self.broker, self.clock, account_id=A, gate=self.gate, run_token="enf1")
        self.broker.set_event_handler(self.om.on_broker_event)
        self.store = store if store is not None else RecordingStore(self.broker)
        self.audit = RingAuditLog()
        self.enforcer = Enforcer(
            self.bus,
            self.clock,
            self.om,
            positions=self.pm,
            store=self.store,
            audit=self.audit,
            gate=self.gate,
            **kw,  # type: ignore[arg-type]
        )
        self.events: list[RiskEvent] = []
        self.bus.subscribe("events.risk.*", self.events.append)

    def open(self, symbol: str, side: Side, qty: int) -> Order:
        o = self.om.submit(self.om.market(symbol, side, qty, "s1"))
        self.broker.fill(o.client_order_id)
        return o

    def working(self, symbol: str, side: Side, qty: int, *, stop: str | None = None) -> Order:
        if stop is not None:
            return self.om.submit(self.om.stop(symbol, side, qty, "s1", stop))
        return self.om.submit(self.om.limit(symbol, side, qty, "s1", "6400" if side is Side.BUY else "6600"))

    def halt(self) -> None:
        self.state.state = TradingState.HALTED

    def of(self, kind: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, kind)]

    def commands(self) -> list[str]:
        return [c.name for c in self.broker.commands if c.name != "submit"]

    def advance(self, seconds: float) -> None:
        self.clock.advance_to(self.clock.timestamp_ns() + int(seconds * SEC))


def lockout() -> Lockout:
    return Lockout(account=A, rule_id="T1", reason="loss limit", set_at_ns=NOW, expires_at_ns=NOW + 3600 * SEC)


def test_flatten_persists_the_lockout_first_then_cancels_and_closes_and_verifies() -> None:
    rig = Rig()
    rig.open(ES, Side.BUY, 2)
    entry = rig.working(ES, Side.BUY, 1)
    stop = rig.working(ES, Side.SELL, 2, stop="6400")
    rig.halt()
    assert rig.enforcer.flatten("T1: loss limit", lockouts=[lockout()]) is True
    assert isinstance(rig.store, RecordingStore)
    assert rig.store.commands_at_save == [["submit", "submit", "submit"]]  # nothing sent before the save
    assert rig.commands() == ["cancel_all", "close_position"]
    assert entry.status is OrderStatus.CANCELED and stop.status is OrderStatus.CANCELED
    assert rig.pm.net_qty(A, ES) == 0
    (done,) = rig.of(AccountFlattened)
    assert isinstance(done, AccountFlattened) and done.attempts == 1 and done.reason == "T1: loss limit"
    assert not rig.enforcer.busy
    steps = [e.step for e in rig.audit.entries(point="enforce")]
    assert steps == ["persist", "cancel_all", "close_position", "verify"]
    assert rig.audit.entries(step="close_position")[0].inputs["symbol"] == ES


def test_verify_retries_with_backoff_until_the_broker_fills() -> None:
    rig = Rig(fill_closes=False)
    rig.open(ES, Side.SELL, 3)
    rig.halt()
    rig.enforcer.flatten("T1: loss limit")
    assert rig.commands() == ["cancel_all", "close_position"] and rig.enforcer.flatten_pending
    rig.advance(0.9)
    assert rig.commands().count("close_position") == 1
    rig.advance(0.1)  # 1 s after the first round
    assert rig.commands().count("close_position") == 2
    rig.advance(1.9)
    assert rig.commands().count("close_position") == 2
    rig.advance(0.1)  # 2 s after the second round
    assert rig.commands().count("close_position") == 3
    retries = rig.of(FlattenRetry)
    assert [(r.attempt, (r.next_retry_ns - r.ts_ns) // SEC) for r in retries] == [(2, 2), (3, 4)]
    assert retries[0].positions == ((ES, -3),)
    assert rig.of(AccountFlattened) == []
    rig.broker.do_close(ES)  # the broker finally fills: verified on the fill event, no need to wait
    (done,) = rig.of(AccountFlattened)
    assert done.attempts == 3
    rig.advance(120)
    assert rig.commands().count("close_position") == 3
    assert not any(n.startswith("risk.enforce") for n in rig.clock.timer_names)
    assert [e.reasons[0] for e in rig.audit.entries(step="verify")][:1] == ["not done after round 1"]


def test_backoff_doubles_and_caps_at_60_seconds() -> None:
    rig = Rig(fill_closes=False)
    rig.open(ES, Side.BUY, 1)
    rig.halt()
    rig.enforcer.flatten("stuck")
    for _ in range(8):
        nxt = rig.clock.next_event_ns()
        assert nxt is not None
        rig.clock.advance_to(nxt)
    waits = [(r.next_retry_ns - r.ts_ns) // SEC for r in rig.of(FlattenRetry)]
    assert waits == [2, 4, 8, 16, 32, 60, 60, 60]


def test_the_fallback_market_order_passes_the_halted_gate_and_completes_the_flatten() -> None:
    rig = Rig(fill_closes=False, fallback_after=1)
    rig.open(ES, Side.BUY, 2)
    rig.halt()
    rig.enforcer.flatten("T1")
    rig.advance(1)
    fallback = [o for o in rig.om.orders() if o.tag == ENFORCEMENT_TAG]
    assert len(fallback) == 1
    (o,) = fallback
    assert o.status is OrderStatus.ACCEPTED and o.side is Side.SELL and o.qty == 2 and o.reduce_only
    assert rig.of(FlattenRetry)[0].fallback
    rig.broker.fill(o.client_order_id)
    (done,) = rig.of(AccountFlattened)
    assert done.attempts == 2
    assert rig.audit.entries(step="fallback_order")[0].reasons == ("accepted",)


def test_force_false_does_nothing_on_a_flat_account_and_force_verifies_at_once() -> None:
    rig = Rig()
    assert rig.enforcer.flatten("stay flat", force=False) is False
    assert rig.commands() == [] and rig.events == []
    assert rig.enforcer.flatten("new breach") is True
    (done,) = rig.of(AccountFlattened)
    assert done.attempts == 1 and rig.commands() == ["cancel_all"]


def test_a_second_flatten_while_one_is_pending_only_persists_its_lockouts() -> None:
    rig = Rig(fill_closes=False)
    rig.open(ES, Side.BUY, 1)
    rig.enforcer.flatten("first")
    assert rig.enforcer.flatten("second", lockouts=[lockout()]) is False
    assert rig.commands().count("close_position") == 1 and len(rig.store.all()) == 1


def test_close_position_closes_one_contract_only() -> None:
    rig = Rig()
    rig.open(ES, Side.BUY, 2)
    rig.open(NQ, Side.SELL, 1)
    nq_stop = rig.working(NQ, Side.BUY, 1, stop="21000")
    assert rig.enforcer.close_position(ES, "T12: max loss per position") is True
    assert [(c.name, c.args.get("symbol")) for c in rig.broker.commands if c.name != "submit"] == [
        ("cancel_all", ES),
        ("close_position", ES),
    ]
    assert rig.pm.net_qty(A, ES) == 0 and rig.pm.net_qty(A, NQ) == -1 and nq_stop.is_working
    (done,) = rig.of(PositionClosedByRisk)
    assert done.symbol == ES and done.attempts == 1


def test_closing_an_excess_keeps_the_rest_and_the_protective_orders() -> None:
    rig = Rig()
    rig.open(ES, Side.BUY, 3)
    opening = rig.working(ES, Side.BUY, 1)
    stop = rig.working(ES, Side.SELL, 3, stop="6400")
    assert rig.enforcer.close_position(ES, "opened while REDUCING", qty=1) is True
    closes = rig.broker.commands_named("close_position")
    assert [c.args["qty"] for c in closes] == [1]
    assert rig.pm.net_qty(A, ES) == 2
    assert opening.status is OrderStatus.CANCELED and stop.is_working
    assert len(rig.of(PositionClosedByRisk)) == 1


def test_cancel_opening_orders_keeps_orders_that_reduce() -> None:
    rig = Rig()
    rig.open(ES, Side.BUY, 2)
    add = rig.working(ES, Side.BUY, 1)
    stop = rig.working(ES, Side.SELL, 2, stop="6400")
    flat_contract = rig.working(NQ, Side.SELL, 1)
    canceled = rig.enforcer.cancel_opening_orders("T8: trade limit")
    assert sorted(canceled) == sorted([add.client_order_id, flat_contract.client_order_id])
    assert add.status is OrderStatus.CANCELED and flat_contract.status is OrderStatus.CANCELED and stop.is_working
    (e,) = rig.audit.entries(step="cancel_opening")
    assert e.reasons == ("T8: trade limit",)


def test_a_store_that_fails_does_not_stop_the_flatten() -> None:
    rig = Rig(store=FailingStore())
    rig.open(ES, Side.BUY, 1)
    rig.enforcer.flatten("T1", lockouts=[lockout()])
    assert rig.pm.net_qty(A, ES) == 0 and len(rig.of(AccountFlattened)) == 1
    (e,) = rig.audit.entries(step="persist")
    assert e.reasons[0].startswith("failed: LockoutStoreError")


class ReportedExposure:
    """An exposure source backed by what the broker reports (here: set by the test)."""

    def __init__(self) -> None:
        self.positions: dict[str, int] = {ES: 1}

    def open_positions(self) -> dict[str, int]:
        return dict(self.positions)

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        return []


def test_flat_is_judged_by_the_exposure_source() -> None:
    rig = Rig(fill_closes=False)
    reported = ReportedExposure()
    enforcer = Enforcer(rig.bus, rig.clock, rig.om, exposure=reported, backoff_s=(5,))
    enforcer.flatten("reports")
    assert rig.commands() == ["cancel_all", "close_position"]
    rig.advance(5)
    assert rig.commands().count("close_position") == 2
    reported.positions = {}
    rig.advance(5)
    assert len(rig.of(AccountFlattened)) == 1 and rig.commands().count("close_position") == 2


def test_enforcement_fills_carry_the_rule_tag_and_close_the_strategy_position() -> None:
    rig = Rig()
    seen: list[object] = []
    rig.bus.subscribe("events.order.filled", seen.append)
    rig.open(ES, Side.BUY, 2)
    rig.halt()
    rig.enforcer.flatten("R11: flat time", rule="R11")
    close = seen[-1]
    assert isinstance(close, OrderFilled) and close.tag == "risk:R11" and close.client_order_id.startswith("ext-")
    order = rig.om.order(close.client_order_id)
    assert order is not None and order.tag == "risk:R11"  # tracked under the rule, not "manual"
    s1 = rig.pm.strategy_position(A, "s1", ES)
    assert s1 is not None and s1.signed_qty == 0  # the strategy is flat, as the account is
    assert rig.om.orders_for_tag("manual") == []
    # the claim ended with the job: a later trade placed by hand is manual again
    rig.broker.fill_foreign(ES, Side.BUY, 1, "6500", 77)
    assert isinstance(seen[-1], OrderFilled) and seen[-1].tag == "manual"


def test_a_partial_close_and_the_fallback_order_carry_the_rule_tag() -> None:
    rig = Rig(fill_closes=False, fallback_after=1)
    rig.open(ES, Side.BUY, 3)
    assert rig.enforcer.close_position(ES, "R5: 1 over the limit", qty=1, rule="R5")
    rig.broker.do_close(ES, 1)
    fills = [f for f in rig.broker.emitted if isinstance(f, OrderFilled)]
    assert rig.om.order(fills[-1].client_order_id).tag == "risk:R5"  # type: ignore[union-attr]
    rig.halt()
    rig.enforcer.flatten("R2: MLL", rule="R2")
    rig.advance(1)
    (fallback,) = [o for o in rig.om.orders() if rig.gate.is_enforcement(o)]
    assert fallback.tag == "risk:R2" and fallback.qty == 2
