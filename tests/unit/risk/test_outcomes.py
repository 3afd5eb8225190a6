"""The risk outcome recorder: events published on a real bus become the timeline, the lockouts (renewals merged), the
denials by rule, the flattens with their fills and the halts every view renders."""

from __future__ import annotations

from propdesk.core.bus import MessageBus
from propdesk.model.enums import Side
from propdesk.model.events import OrderDenied, OrderFilled
from propdesk.model.identifiers import AccountId, ClientOrderId
from propdesk.model.price import Money, Price
from propdesk.model.records import Lockout
from propdesk.risk.decisions import TradingState
from propdesk.risk.events import AccountFlattened, LockoutExpired, LockoutSet, TradingStateChanged
from propdesk.risk.outcomes import RiskOutcomes, plain_reason, rule_of

ACC = AccountId(7)
S = 1_000_000_000
R11_REASON = "flat time 2025-09-02 15:05 CT reached: flatten and lock out until 2025-09-02 17:00 CT"
R1_REASON = "equity $50,087.50 reached the MLL floor $50,000.00 plus the $100.00 buffer; flatten and lock out"


def _recorder() -> tuple[MessageBus, RiskOutcomes]:
    bus = MessageBus(timing=False)
    rec = RiskOutcomes(ACC)
    rec.subscribe(bus)
    return bus, rec


def _pub(bus: MessageBus, event: object) -> None:
    bus.publish(event.topic, event)  # type: ignore[attr-defined]


def _lockout(rule: str, reason: str, at: int, until: int | None) -> Lockout:
    return Lockout(account=ACC, rule_id=rule, reason=reason, set_at_ns=at, expires_at_ns=until, firm=True)


def _fill(ts: int, side: Side, price: str, tag: str) -> OrderFilled:
    return OrderFilled(
        client_order_id=ClientOrderId("pd-risk-1"),
        account_id=ACC,
        ts_event_ns=ts,
        symbol="ESZ5",
        side=side,
        qty=1,
        price=Price.of(price),
        fee=Money(0),
        trade_id=f"t{ts}",
        tag=tag,
    )


def test_rule_of_and_plain_reason() -> None:
    assert rule_of("lockout R11 until 2025-09-02T22:00:00Z: flat time") == "R11"
    assert rule_of("account HALTED (lockout R1 until x: equity)") == "R1"
    assert rule_of("no quote for ESZ5 for 6.0 s", "REDUCING") == "REDUCING"
    gate = "only propdesk's own flatten and cancels pass"  # the gate's HALTED denial (risk/gate.py)
    denial = f"account HALTED (lockout R1 until 2025-09-17T22:00:00Z: {R1_REASON}): {gate}"
    assert plain_reason(denial) == f"account HALTED: {R1_REASON}"
    assert plain_reason("account REDUCING (no quote): the order would open") == (
        "account REDUCING (no quote): the order would open"
    )


def test_timeline_names_the_rule_and_the_expired_lockout() -> None:
    bus, rec = _recorder()
    _pub(bus, LockoutSet(account_id=ACC, ts_ns=100 * S, lockout=_lockout("R11", R11_REASON, 100 * S, 200 * S)))
    _pub(
        bus,
        TradingStateChanged(
            account_id=ACC,
            ts_ns=100 * S,
            old=TradingState.ACTIVE,
            new=TradingState.HALTED,
            reasons=(f"lockout R11 until 2025-09-02T22:00:00Z: {R11_REASON}",),
        ),
    )
    _pub(bus, LockoutExpired(account_id=ACC, ts_ns=200 * S, lockout=_lockout("R11", R11_REASON, 100 * S, 200 * S)))
    _pub(
        bus,
        TradingStateChanged(account_id=ACC, ts_ns=200 * S, old=TradingState.HALTED, new=TradingState.ACTIVE),
    )
    _pub(
        bus,
        TradingStateChanged(
            account_id=AccountId(8), ts_ns=250 * S, old=TradingState.ACTIVE, new=TradingState.HALTED, reasons=("x",)
        ),
    )
    assert [(c.old, c.new, c.rule_id) for c in rec.timeline] == [
        ("ACTIVE", "HALTED", "R11"),
        ("HALTED", "ACTIVE", "R11"),
    ]
    assert rec.timeline[1].reason == "lockout R11 expired"
    assert rec.state == "ACTIVE"
    (halt,) = rec.halts()
    assert (halt.start_ns, halt.end_ns, halt.rule_id) == (100 * S, 200 * S, "R11")
    assert rec.final_halt() is None


def test_a_lockout_set_again_at_its_expiry_is_one_span_with_renewals() -> None:
    bus, rec = _recorder()
    for day in range(3):  # R1 set at each roll while the equity stays in the buffer
        at, until = (1000 + day * 86_400) * S, (1000 + (day + 1) * 86_400) * S
        _pub(bus, LockoutSet(account_id=ACC, ts_ns=at, lockout=_lockout("R1", R1_REASON, at, until)))
    _pub(
        bus,
        TradingStateChanged(
            account_id=ACC,
            ts_ns=1000 * S,
            old=TradingState.ACTIVE,
            new=TradingState.HALTED,
            reasons=(f"lockout R1 until 1970-01-02T00:00:00Z: {R1_REASON}",),
        ),
    )
    (span,) = rec.lockouts
    assert (span.rule_id, span.start_ns, span.expires_at_ns, span.count) == ("R1", 1000 * S, (1000 + 3 * 86_400) * S, 3)
    halt = rec.final_halt()
    assert halt is not None and halt.rule_id == "R1" and halt.end_ns is None


def test_denials_are_counted_by_the_rule_their_reason_names() -> None:
    bus, rec = _recorder()
    reasons = [
        f"account HALTED (lockout R1 until 2025-09-17T22:00:00Z: {R1_REASON}): only propdesk's own flatten pass",
        f"account HALTED (lockout R1 until 2025-09-18T22:00:00Z: {R1_REASON}): only propdesk's own flatten pass",
        "R5: 3 contracts would exceed the limit of 2",
        "account REDUCING (no quote for ESZ5 for 6.0 s): the order would open",
    ]
    for k, reason in enumerate(reasons):
        _pub(bus, OrderDenied(client_order_id=ClientOrderId(f"c{k}"), account_id=ACC, ts_event_ns=k * S, reason=reason))
    assert {r: t.count for r, t in rec.denials.items()} == {"R1": 2, "R5": 1, "REDUCING": 1}
    assert rec.denials["R1"].first_ns == 0 and rec.denials["R1"].last_ns == S
    assert rec.denied == 4
    assert rec.to_json_dict()["orders_denied"] == 4


def test_a_flatten_keeps_the_fills_between_its_start_and_its_verification() -> None:
    bus, rec = _recorder()
    _pub(bus, _fill(50 * S, Side.BUY, "6590.00", "trend_following"))  # the entry, before the flatten
    _pub(bus, _fill(100 * S, Side.SELL, "6594.75", "risk:R11"))
    _pub(
        bus,
        AccountFlattened(account_id=ACC, ts_ns=100 * S, reason=f"R11: {R11_REASON}", started_ns=100 * S, attempts=1),
    )
    _pub(
        bus,
        AccountFlattened(account_id=ACC, ts_ns=200 * S, reason=f"R11: {R11_REASON}", started_ns=200 * S, attempts=1),
    )
    first, second = rec.flattens
    assert first.rule_id == "R11"
    assert [(f.side, f.qty, f.price, f.tag) for f in first.fills] == [("SELL", 1, "6594.75", "risk:R11")]
    assert second.fills == ()
    assert rec.flattens_with_fills() == [first]
