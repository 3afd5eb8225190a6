"""Tests for the account guard (propdesk.risk.guard) wired like the node: real bus, SimClock, OrderManager with the
RiskGate, PositionManager, Enforcer, and a StubBroker whose closes fill at once or when the test says so.

The account view is the rules' StubView, synced from the position and order managers by a bus handler that runs
between the position manager (priority 100) and the guard (priority 0).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TypeVar

from propdesk.core.bus import MessageBus
from propdesk.core.clock import SimClock
from propdesk.execution.order_manager import OrderManager
from propdesk.execution.positions import PositionManager
from propdesk.model.data import QuoteTick
from propdesk.model.enums import Side
from propdesk.model.events import BrokerConnected, BrokerDisconnected
from propdesk.model.identifiers import AccountId
from propdesk.model.orders import Order, OrderStatus
from propdesk.model.price import Money
from propdesk.risk.audit import RingAuditLog
from propdesk.risk.decisions import Action, Decision, EvalPoint, TradingState, Verdict
from propdesk.risk.enforcer import Enforcer
from propdesk.risk.events import (
    AccountFlattened,
    FlattenRetry,
    LockoutExpired,
    LockoutSet,
    PositionClosedByRisk,
    RiskEvent,
    RuleBreached,
    RuleWarned,
    TradingStateChanged,
)
from propdesk.risk.gate import RiskGate
from propdesk.risk.guard import AccountGuard
from propdesk.risk.lockouts import JsonFileLockoutStore, LockoutStore
from propdesk.risk.rules.base import AccountView, Rule, RuleParams, RuleSet
from tests.unit.risk.rules.stub_view import NEXT_DAY_START, NOW, SEC, StubView, pos
from tests.unit.risk.test_enforcer import CloseBroker, RecordingStore

A = AccountId(1)
E = TypeVar("E", bound=RiskEvent)
ES = "ESH5"
NQ = "NQH5"
DAY = int(timedelta(days=1).total_seconds()) * SEC


class DayLoss(Rule):
    """FILL/QUOTE: LOCKOUT until the next day start when day net <= -limit (like R3 liquidate_and_block)."""

    rule_id = "T3"
    points = frozenset({EvalPoint.FILL, EvalPoint.QUOTE})

    def __init__(self, limit_usd: int) -> None:
        super().__init__(RuleParams())
        self.limit = Money.of(limit_usd)

    def evaluate(self, view: AccountView, point: EvalPoint) -> Decision:
        if view.day_net.cents <= -self.limit.cents:
            return self.decision(
                Action.LOCKOUT,
                f"day net {view.day_net.as_decimal()} <= -{self.limit.as_decimal()}",
                until_ns=view.next_day_start_ns,
            )
        return self.decision(Action.ALLOW, "")

    def describe(self) -> str:
        return f"day loss {self.limit}"


class SetRule(Rule):
    """Answers whatever the test sets (or raises ``exc``)."""

    def __init__(self, rule_id: str, *points: EvalPoint) -> None:
        super().__init__(RuleParams())
        self.rule_id = rule_id  # type: ignore[misc]
        self.points = frozenset(points)  # type: ignore[misc]
        self.action = Action.ALLOW
        self.symbol: str | None = None
        self.exc: Exception | None = None
        self.calls = 0

    def evaluate(self, view: AccountView, point: EvalPoint) -> Decision:
        self.calls += 1
        if self.exc is not None:
            raise self.exc
        return self.decision(self.action, f"set to {self.action.name}", symbol=self.symbol)

    def describe(self) -> str:
        return "set by the test"


class Rig:
    def __init__(
        self,
        rules: list[Rule],
        *,
        store: LockoutStore | None = None,
        fill_closes: bool = True,
        start_ns: int = NOW,
        ruleset: RuleSet | None = None,
        view: StubView | None = None,
        **guard_kw: object,
    ) -> None:
        self.clock = SimClock(start_ns)
        self.bus = MessageBus(timing=False, ts_source=self.clock.timestamp_ns)
        self.broker = CloseBroker(fill_closes=fill_closes, account_id=A, ts_ns=start_ns)
        self.pm = PositionManager(self.bus, subscribe_marks=True)
        self.view = view if view is not None else StubView(now_ns=start_ns)
        self.audit = RingAuditLog()
        self.store = store if store is not None else RecordingStore(self.broker)
        self.rules = ruleset if ruleset is not None else RuleSet(rules)
        self.gate = RiskGate(self.rules, self.view, self.clock, account_id=A, audit=self.audit)
        self.om = OrderManager(self.bus, self.broker, self.clock, account_id=A, gate=self.gate, run_token="grd1")
        self.broker.set_event_handler(self.om.on_broker_event)
        self.enforcer = Enforcer(
            self.bus, self.clock, self.om, positions=self.pm, store=self.store, audit=self.audit, gate=self.gate
        )
        self.day_base_cents = 0
        self.bus.subscribe("events.order.*", self.sync, 50)
        self.bus.subscribe("data.quotes.**", self.sync, 50)
        self.events: list[RiskEvent] = []
        self.bus.subscribe("events.risk.*", self.events.append)
        self.clock.set_time_alert("test.roll", NEXT_DAY_START, lambda _e: self.roll())
        self.guard = AccountGuard(
            self.bus,
            self.clock,
            self.rules,
            self.view,
            self.enforcer,
            account_id=A,
            store=self.store,
            audit=self.audit,
            gate=self.gate,
            **guard_kw,  # type: ignore[arg-type]
        )
        self.guard.start()

    # the account view, kept in line with the managers (what AccountState does in the node)
    def sync(self, _msg: object = None) -> None:
        v, pm = self.view, self.pm
        t = pm.totals(A)
        net = t.realized_cents - t.fees_cents
        v.now_ns = self.clock.timestamp_ns()
        v.positions = [
            pos(
                p.symbol,
                p.signed_qty,
                upnl=None if (u := pm.position_unrealized(p)) is None else str(u.as_decimal()),
                opened=p.opened_ts_ns,
                avg=str(p.avg_price),
            )
            for p in pm.iter_open(A)
        ]
        v.working_orders = self.om.working_orders()
        v.day_realized_net = Money(net - self.day_base_cents)
        v.unrealized = Money(pm.unrealized_cents(A))
        v.balance = Money.of(50000) + Money(net)

    def roll(self) -> None:
        t = self.pm.totals(A)
        self.day_base_cents = t.realized_cents - t.fees_cents
        self.view.day_start_ns = self.view.next_day_start_ns
        self.view.next_day_start_ns += DAY
        self.sync()
        self.bus.publish("events.session.rolled", object())

    # market and orders
    def quote(self, symbol: str, bid: str, ask: str) -> None:
        ts = self.clock.timestamp_ns()
        self.bus.publish(f"data.quotes.{symbol}", QuoteTick(symbol, float(bid), float(ask), 5, 5, ts))

    def open(self, symbol: str, side: Side, qty: int, price: str = "6500") -> Order:
        o = self.om.submit(self.om.market(symbol, side, qty, "s1"))
        self.broker.fill(o.client_order_id, price=price)
        return o

    def limit(self, symbol: str, side: Side, qty: int, price: str = "6400") -> Order:
        return self.om.submit(self.om.limit(symbol, side, qty, "s1", price))

    def stop(self, symbol: str, side: Side, qty: int, price: str = "6400") -> Order:
        return self.om.submit(self.om.stop(symbol, side, qty, "s1", price))

    def advance(self, seconds: float) -> None:
        self.clock.advance_to(self.clock.timestamp_ns() + int(seconds * SEC))

    def of(self, kind: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, kind)]

    def commands(self, name: str) -> int:
        return len(self.broker.commands_named(name))


def test_a_quote_breach_halts_persists_first_cancels_closes_and_verifies() -> None:
    rig = Rig([DayLoss(500)])
    rig.open(ES, Side.BUY, 2)
    entry = rig.limit(ES, Side.BUY, 1)
    stop = rig.stop(ES, Side.SELL, 2)
    rig.quote(ES, "6495.00", "6495.25")  # -20 ticks x 12.50 x 2 = -500.00: hit
    assert rig.guard.state is TradingState.HALTED
    assert isinstance(rig.store, RecordingStore)
    (before_save,) = rig.store.commands_at_save
    assert "cancel_all" not in before_save and "close_position" not in before_save
    assert entry.status is OrderStatus.CANCELED and stop.status is OrderStatus.CANCELED
    assert rig.pm.net_qty(A, ES) == 0 and rig.commands("close_position") == 1
    kinds = [type(e) for e in rig.events]
    assert kinds == [LockoutSet, RuleBreached, TradingStateChanged, AccountFlattened]
    breach = rig.of(RuleBreached)[0]
    assert isinstance(breach, RuleBreached)
    assert breach.point is EvalPoint.QUOTE and breach.rule_id == "T3" and breach.state is TradingState.HALTED
    assert breach.decision.reason == "day net -500.00 <= -500.00"
    (lo,) = rig.guard.lockouts
    assert lo.rule_id == "T3" and lo.expires_at_ns == NEXT_DAY_START and rig.store.load_active(A, NOW) == [lo]
    changed = rig.of(TradingStateChanged)[0]
    assert isinstance(changed, TradingStateChanged)
    assert (changed.old, changed.new) == (TradingState.ACTIVE, TradingState.HALTED)
    # the gate now denies everything
    late = rig.om.submit(rig.om.market(ES, Side.BUY, 1, "s1"))
    assert late.status is OrderStatus.DENIED and "account HALTED (lockout T3" in late.reason


def test_a_manual_fill_that_breaks_a_rule_is_enforced() -> None:
    rig = Rig([DayLoss(500)])
    rig.broker.fill_foreign(ES, Side.BUY, 3, "6500", broker_id=1)
    assert rig.guard.state is TradingState.ACTIVE
    # realized -10 points x $50 = -500.00, and the 2 still held are marked at the last trade: -1000.00
    rig.broker.fill_foreign(ES, Side.SELL, 1, "6490", broker_id=2)
    assert rig.guard.state is TradingState.HALTED
    assert rig.broker.commands_named("close_position")[0].args == {"symbol": ES, "qty": None}
    assert rig.pm.net_qty(A, ES) == 0
    breach = rig.of(RuleBreached)[0]
    assert isinstance(breach, RuleBreached) and breach.point is EvalPoint.FILL
    fills = rig.audit.entries(point="fill")
    assert [e.inputs["fill"]["tag"] for e in fills][:2] == ["manual", "manual"]
    assert fills[1].action == "LOCKOUT" and fills[1].inputs["day_net"] == "-1500.00"
    assert len(rig.of(AccountFlattened)) == 1


def test_flatten_retries_until_the_slow_broker_fills() -> None:
    rig = Rig([DayLoss(500)], fill_closes=False)
    rig.open(ES, Side.BUY, 2)
    rig.quote(ES, "6490", "6490.25")
    assert rig.guard.state is TradingState.HALTED and rig.commands("close_position") == 1
    rig.advance(1)
    assert rig.commands("close_position") == 2
    rig.advance(2)
    assert rig.commands("close_position") == 3 and len(rig.of(FlattenRetry)) == 2
    rig.broker.do_close(ES, price="6490")
    (done,) = rig.of(AccountFlattened)
    assert isinstance(done, AccountFlattened) and done.attempts == 3
    assert rig.guard.state is TradingState.HALTED
    rig.advance(10)
    assert rig.commands("close_position") == 3


def test_the_lockout_survives_a_restart_and_lifts_at_the_next_day_start(tmp_path: Path) -> None:
    store = JsonFileLockoutStore(tmp_path / "lockouts.json", fsync=False)
    rig = Rig([DayLoss(500)], store=store)
    rig.open(ES, Side.BUY, 1)
    rig.quote(ES, "6489", "6489.25")  # -44 ticks x 12.50 = -550.00
    assert rig.guard.state is TradingState.HALTED
    rig.guard.stop()

    # a new process: new managers, the same lockout file
    again = Rig([DayLoss(500)], store=JsonFileLockoutStore(tmp_path / "lockouts.json"), start_ns=NOW + 600 * SEC)
    assert again.guard.state is TradingState.HALTED
    assert [lo.rule_id for lo in again.guard.lockouts] == ["T3"]
    denied = again.om.submit(again.om.market(ES, Side.BUY, 1, "s1"))
    assert denied.status is OrderStatus.DENIED and again.broker.commands_named("submit") == []
    again.clock.advance_to(NEXT_DAY_START - 1)
    assert again.guard.state is TradingState.HALTED
    again.clock.advance_to(NEXT_DAY_START)
    assert again.guard.state is TradingState.ACTIVE
    assert len(again.of(LockoutExpired)) == 1
    assert store.load_active(A, NEXT_DAY_START) == []
    ok = again.om.submit(again.om.market(ES, Side.BUY, 1, "s1"))
    assert ok.status is OrderStatus.ACCEPTED


def test_a_lockout_whose_loss_still_stands_lifts_only_after_the_day_roll() -> None:
    rig = Rig([DayLoss(500)], check_interval_s=60)
    rig.broker.fill_foreign(ES, Side.BUY, 2, "6500", broker_id=1)
    rig.broker.fill_foreign(ES, Side.SELL, 2, "6495", broker_id=2)  # realized -500.00, flat
    assert rig.guard.state is TradingState.HALTED and len(rig.of(AccountFlattened)) == 1
    rig.clock.advance_to(NEXT_DAY_START - 60 * SEC)
    assert rig.guard.state is TradingState.HALTED and len(rig.of(RuleBreached)) == 1
    rig.clock.advance_to(NEXT_DAY_START)
    assert rig.guard.state is TradingState.ACTIVE, rig.guard.state_reasons
    last = rig.of(TradingStateChanged)[-1]
    assert isinstance(last, TradingStateChanged) and last.new is TradingState.ACTIVE
    assert rig.guard.decisions == {} and rig.guard.lockouts == ()


def test_a_fill_while_halted_is_flattened_again() -> None:
    rig = Rig([DayLoss(500)])
    rig.broker.fill_foreign(ES, Side.BUY, 1, "6500", broker_id=1)
    rig.broker.fill_foreign(ES, Side.SELL, 1, "6490", broker_id=2)  # -500.00
    assert rig.guard.state is TradingState.HALTED
    closes = rig.commands("close_position")
    rig.broker.fill_foreign(NQ, Side.BUY, 1, "21000", broker_id=3)  # the trader tries again by hand
    assert rig.commands("close_position") == closes + 1 and rig.pm.net_qty(A, NQ) == 0


def test_stale_quotes_reduce_until_a_quote_arrives_without_flattening() -> None:
    rig = Rig([])
    rig.open(ES, Side.BUY, 1)
    add = rig.limit(ES, Side.BUY, 1)
    stop = rig.stop(ES, Side.SELL, 1)
    rig.advance(5)
    assert rig.guard.state is TradingState.ACTIVE
    rig.advance(1)
    assert rig.guard.state is TradingState.REDUCING
    assert "no quote for ESH5 for 6.0 s (limit 5 s)" in rig.guard.conditions["stale:ESH5"]
    assert add.status is OrderStatus.CANCELED and stop.is_working  # opening orders canceled, protection kept
    assert rig.commands("close_position") == 0 and rig.pm.net_qty(A, ES) == 1
    assert rig.om.submit(rig.om.market(ES, Side.BUY, 1, "s1")).status is OrderStatus.DENIED
    rig.quote(ES, "6500", "6500.25")
    assert rig.guard.state is TradingState.ACTIVE and rig.guard.conditions == {}
    assert [(e.old, e.new) for e in rig.of(TradingStateChanged)] == [
        (TradingState.ACTIVE, TradingState.REDUCING),
        (TradingState.REDUCING, TradingState.ACTIVE),
    ]
    rig.advance(4)
    assert rig.guard.state is TradingState.ACTIVE


def test_stale_quotes_count_only_in_session() -> None:
    rig = Rig([], in_session=lambda ts: False)
    rig.open(ES, Side.BUY, 1)
    rig.advance(30)
    assert rig.guard.state is TradingState.ACTIVE


def test_a_disconnect_reduces_until_reconciled() -> None:
    rig = Rig([])
    rig.open(ES, Side.BUY, 1)
    rig.quote(ES, "6500", "6500.25")
    rig.bus.publish("events.broker.disconnected", BrokerDisconnected(AccountId(99), NOW, "other account"))
    assert rig.guard.state is TradingState.ACTIVE
    rig.bus.publish("events.broker.disconnected", BrokerDisconnected(A, NOW, "hub closed"))
    assert rig.guard.state is TradingState.REDUCING
    assert "hub closed" in rig.guard.conditions["connection"]
    rig.bus.publish("events.broker.connected", BrokerConnected(A, NOW + SEC))
    assert rig.guard.state is TradingState.REDUCING and "until reconciled" in rig.guard.conditions["connection"]
    assert rig.om.submit(rig.om.market(ES, Side.SELL, 1, "s1")).status is OrderStatus.ACCEPTED  # reduces: passes
    rig.guard.reconciled()
    assert rig.guard.state is TradingState.ACTIVE
    assert [e.action for e in rig.audit.entries(point="connection")] == ["DISCONNECTED", "CONNECTED", "RECONCILED"]
    assert [e.action for e in rig.audit.entries(point="state")] == ["ACTIVE->REDUCING", "REDUCING->ACTIVE"]


def test_a_rule_that_raises_reduces_until_it_evaluates_again() -> None:
    rule = SetRule("T7", EvalPoint.CLOCK)
    rig = Rig([rule])
    rule.exc = RuntimeError("calendar missing")
    rig.advance(1)
    assert rig.guard.state is TradingState.REDUCING
    assert any("T7: rule failed (RuntimeError: calendar missing)" in r for r in rig.guard.state_reasons)
    assert rig.commands("close_position") == 0  # fail closed is reduce-only, not a flatten
    rule.exc = None
    rig.advance(1)
    assert rig.guard.state is TradingState.ACTIVE


class BrokenRuleSet(RuleSet):
    def __init__(self) -> None:
        super().__init__([])
        self.broken = True

    def evaluate(self, view: AccountView, point: EvalPoint) -> Verdict:
        if self.broken:
            raise KeyError("view")
        return super().evaluate(view, point)


def test_an_evaluation_that_cannot_run_reduces_until_it_runs() -> None:
    rules = BrokenRuleSet()
    rig = Rig([], ruleset=rules)
    rig.advance(1)
    assert rig.guard.state is TradingState.REDUCING and "evaluation" in rig.guard.conditions
    rules.broken = False
    rig.advance(1)
    assert rig.guard.state is TradingState.ACTIVE


def test_an_opening_fill_while_reducing_is_closed_but_a_reducing_fill_is_not() -> None:
    rig = Rig([])
    rig.open(ES, Side.BUY, 1)
    rig.quote(ES, "6500", "6500.25")
    rig.bus.publish("events.broker.disconnected", BrokerDisconnected(A, NOW, "lost"))
    rig.broker.fill_foreign(ES, Side.BUY, 2, "6500", broker_id=1)  # manual: adds 2
    assert [c.args for c in rig.broker.commands_named("close_position")] == [{"symbol": ES, "qty": 2}]
    assert rig.pm.net_qty(A, ES) == 1
    assert len(rig.of(PositionClosedByRisk)) == 1
    rig.broker.fill_foreign(ES, Side.SELL, 1, "6500", broker_id=2)  # manual: reduces to flat
    assert rig.commands("close_position") == 1 and rig.pm.net_qty(A, ES) == 0


def test_a_fill_reported_in_a_reconcile_is_counted_and_judged_once_reconciled_not_closed() -> None:
    rig = Rig([])
    rig.bus.publish("events.broker.disconnected", BrokerDisconnected(A, NOW, "hub closed"))
    # bought by hand while the hubs were down: the broker reports it in its reconcile after the reconnect
    rig.broker.fill_foreign(ES, Side.BUY, 2, "6500", broker_id=1, reconciled=True)
    rig.bus.publish("events.broker.connected", BrokerConnected(A, NOW + SEC))
    assert rig.guard.state is TradingState.REDUCING
    assert rig.commands("close_position") == 0 and rig.pm.net_qty(A, ES) == 2
    [entry] = rig.audit.entries(point="fill")
    assert entry.action == "RECONCILED" and entry.inputs["fill"]["qty"] == 2 and entry.inputs["fill"]["reconciled"]
    rig.quote(ES, "6500", "6500.25")
    rig.guard.reconciled()
    assert rig.guard.state is TradingState.ACTIVE and rig.commands("close_position") == 0
    assert rig.pm.net_qty(A, ES) == 2
    # once reconciled, a fill is judged as it comes: a manual buy while a rule holds the account REDUCING is closed
    rig.bus.publish("events.broker.disconnected", BrokerDisconnected(A, NOW + 2 * SEC, "hub closed"))
    rig.broker.fill_foreign(ES, Side.BUY, 1, "6500", broker_id=2)
    assert [c.args for c in rig.broker.commands_named("close_position")] == [{"symbol": ES, "qty": 1}]


def test_a_fill_reported_in_a_reconcile_while_halted_is_flattened_once_reconciled() -> None:
    rig = Rig([DayLoss(500)])
    rig.broker.fill_foreign(ES, Side.BUY, 1, "6500", broker_id=1)
    rig.broker.fill_foreign(ES, Side.SELL, 1, "6490", broker_id=2)  # -500.00: HALTED, locked out
    assert rig.guard.state is TradingState.HALTED
    closes = rig.commands("close_position")
    rig.bus.publish("events.broker.disconnected", BrokerDisconnected(A, NOW, "hub closed"))
    rig.broker.fill_foreign(NQ, Side.BUY, 1, "21000", broker_id=3, reconciled=True)  # by hand while down
    assert rig.commands("close_position") == closes and rig.pm.net_qty(A, NQ) == 1
    # a HALTED account stays flat: the reconnect and the reconcile flatten it
    rig.bus.publish("events.broker.connected", BrokerConnected(A, NOW + SEC))
    rig.guard.reconciled()
    assert rig.guard.state is TradingState.HALTED
    assert rig.commands("close_position") == closes + 1 and rig.pm.net_qty(A, NQ) == 0


def test_reduce_only_cancels_opening_orders_and_never_liquidates() -> None:
    rule = SetRule("T8", EvalPoint.CLOCK)
    rig = Rig([rule])
    rig.open(ES, Side.BUY, 1)
    add = rig.limit(ES, Side.BUY, 1)
    stop = rig.stop(ES, Side.SELL, 1)
    rule.action = Action.REDUCE_ONLY
    rig.advance(1)
    assert rig.guard.state is TradingState.REDUCING
    assert add.status is OrderStatus.CANCELED and stop.is_working and rig.pm.net_qty(A, ES) == 1
    assert rig.commands("close_position") == 0 and len(rig.of(RuleBreached)) == 1
    rig.advance(3)
    assert len(rig.of(RuleBreached)) == 1  # the same decision again is not a new breach
    rule.action = Action.ALLOW
    rig.advance(1)
    assert rig.guard.state is TradingState.ACTIVE


def test_close_position_closes_that_contract_only_once() -> None:
    rule = SetRule("T12", EvalPoint.QUOTE)
    rig = Rig([rule])
    rig.open(ES, Side.BUY, 2)
    rig.open(NQ, Side.SELL, 1, price="21000")
    rule.action, rule.symbol = Action.CLOSE_POSITION, ES
    rig.quote(ES, "6499", "6499.25")
    assert rig.pm.net_qty(A, ES) == 0 and rig.pm.net_qty(A, NQ) == -1
    assert rig.guard.state is TradingState.ACTIVE
    rig.quote(NQ, "21000", "21000.25")
    rig.quote(NQ, "21000", "21000.25")
    assert rig.commands("close_position") == 1
    assert len(rig.of(RuleBreached)) == 1 and len(rig.of(PositionClosedByRisk)) == 1


def test_a_warning_is_published_once() -> None:
    rule = SetRule("T15", EvalPoint.CLOCK)
    rule.action = Action.WARN
    rig = Rig([rule])
    rig.advance(3)
    assert len(rig.of(RuleWarned)) == 1 and rig.guard.state is TradingState.ACTIVE


def test_an_unreadable_store_halts_until_it_is_repaired(tmp_path: Path) -> None:
    path = tmp_path / "lockouts.json"
    path.write_text("{garbage")
    rig = Rig([], store=JsonFileLockoutStore(path))
    assert rig.guard.state is TradingState.HALTED
    assert "lockout store unreadable" in rig.guard.conditions["store"]
    assert rig.om.submit(rig.om.market(ES, Side.BUY, 1, "s1")).status is OrderStatus.DENIED
    assert rig.guard.reload_lockouts() is False
    path.write_text('{"version": 1, "lockouts": []}')
    assert rig.guard.reload_lockouts() is True
    assert rig.guard.state is TradingState.ACTIVE


class ViewWithInputs(StubView):
    missing: list[str] = ["mll_floor"]  # noqa: RUF012

    def missing_inputs(self) -> list[str]:
        return list(self.missing)


def test_unknown_inputs_reduce_until_known() -> None:
    view = ViewWithInputs()
    rig = Rig([], view=view)
    assert rig.guard.state is TradingState.REDUCING and "mll_floor" in rig.guard.conditions["inputs"]
    view.missing = []
    rig.advance(1)
    assert rig.guard.state is TradingState.ACTIVE


def test_every_decision_and_enforcement_step_is_audited_in_order() -> None:
    rig = Rig([DayLoss(500)])
    rig.open(ES, Side.BUY, 2)
    rig.quote(ES, "6495.00", "6495.25")
    entries = rig.audit.entries()
    points = [(e.point, e.step, e.action) for e in entries]
    assert points[0] == ("store", "", "LOAD")
    assert ("pre", "", "ALLOW") in points and ("fill", "", "ALLOW") in points
    breach = next(i for i, e in enumerate(entries) if e.point == "quote")
    tail = [(e.point, e.step) for e in entries[breach:]]
    assert tail == [
        ("quote", ""),
        ("state", "state"),
        ("enforce", "persist"),
        ("enforce", "cancel_all"),
        ("fill", ""),  # the stub broker fills the close inside the call; the fill is evaluated like any other
        ("enforce", "close_position"),
        ("enforce", "verify"),
    ]
    decision = entries[breach]
    assert decision.action == "LOCKOUT" and decision.reasons == ("T3: day net -500.00 <= -500.00",)
    assert decision.inputs["day_net"] == "-500.00" and decision.inputs["positions"][0][:2] == [ES, 2]
    assert decision.inputs["exposure"] == 2.0
    assert entries[breach + 1].action == "ACTIVE->HALTED"
