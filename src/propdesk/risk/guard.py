"""The account guard: evaluates every rule after the fact -- on each fill from any source, each quote and a clock
timer -- keeps the account's trading state, and has the enforcer act on breaches.

Trading state (``../shared/specs/risk-rules.md`` section 7.1) is the most restrictive of

* the **rules**: each rule's latest post-trade decision (a rule keeps its last word until it is evaluated again;
  REDUCE_ONLY and FLATTEN mean REDUCING, LOCKOUT means HALTED; CLOSE_POSITION does not change the state);
* the **lockouts**: persisted records (:mod:`propdesk.risk.lockouts`) loaded at :meth:`AccountGuard.start` (a
  restart keeps them) and lifted only by their expiry (a clock alert at ``expires_at_ns``, normally the next
  ``day_start``); never by a config change or a rule that stops complaining;
* the **fail-closed conditions** (section 7.6), which never mean "allow":

  ====================================  =========  ==============================================================
  condition                             state      lifted by
  ====================================  =========  ==============================================================
  a contract with a position and no     REDUCING   the next quote of that contract (or the position closing)
  quote for ``quote_stale_s`` (5 s)
  broker disconnected                   REDUCING   :meth:`AccountGuard.reconciled` (after reconnect + reconcile)
  rule evaluation raised                REDUCING   the next evaluation that succeeds (a single rule that raises
                                                   is turned into REDUCE_ONLY by the rule set itself)
  unknown inputs (the view's            REDUCING   the inputs becoming known (checked every tick)
  ``missing_inputs()``: MLL floor,
  a mark)
  lockout store unreadable              HALTED     :meth:`AccountGuard.reload_lockouts` succeeding
  ====================================  =========  ==============================================================

What the guard does on each evaluation, in this order (the close order must leave within microseconds):

1. evaluate the rules of the point (FILL, QUOTE or CLOCK) and remember each rule's decision;
2. set the new state in memory (from here the pre-trade gate denies) and create lockouts for new LOCKOUT decisions;
3. have the enforcer act: persist new lockouts, then FLATTEN (a new FLATTEN/LOCKOUT decision, or "stay flat"
   while HALTED or while a FLATTEN condition holds), CLOSE_POSITION, or, on entering REDUCING, cancel the working
   opening orders;
4. publish ``RuleBreached`` / ``RuleWarned`` / ``LockoutSet`` / ``TradingStateChanged`` and write the audit entry
   (inputs snapshotted before step 3).

A fill that opens or adds to a position while the account was already REDUCING (a trade placed by hand at the
broker, or an order that slipped through) is closed again (section 7.3: "new opening orders or positions from any
source are cancelled or closed"); while HALTED the account is flattened. A fill the broker reports in a reconcile
(``reconciled=True``) while the connection condition holds happened while propdesk was not connected: the account
state counts it, and the guard judges it with every rule once the reconcile is done (:meth:`AccountGuard.reconciled`),
on the whole reconciled state, not fill by fill as a trade opened while REDUCING (a HALTED account is flattened then).

Audit policy: every FILL evaluation is recorded; QUOTE and CLOCK evaluations (many per second) are recorded when
something changed (a new or cleared decision, a warning, a lockout, a state change). Every state change, condition
and lockout change is recorded.

Topics subscribed (``priority`` default 0, so the position manager at 100 has applied the fill first; marks must
likewise be updated before the guard sees a quote, and the account view must roll its day before the guard sees
``events.session.rolled``): ``events.order.filled``, ``data.quotes.**``, ``events.broker.connected``,
``events.broker.disconnected``, ``events.session.rolled``; a clock timer every ``check_interval_s`` (stale quotes,
unknown inputs, CLOCK rules, and a refresh of any FILL/QUOTE rule decision still held, so a REDUCING or HALTED
state never outlives its cause for want of a fill).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final

from propdesk.core import topics
from propdesk.core.bus import MessageBus, Subscription
from propdesk.core.timefmt import iso_utc_seconds
from propdesk.core.topics import Priority
from propdesk.model.data import QuoteTick
from propdesk.model.events import BrokerConnected, BrokerDisconnected, OrderFilled
from propdesk.model.identifiers import AccountId
from propdesk.model.records import AuditEntry, Lockout, stricter
from propdesk.risk.audit import AuditLog, capture_view, render_view_inputs, safe_record
from propdesk.risk.decisions import Action, Decision, EvalPoint, TradingState, Verdict
from propdesk.risk.events import (
    LockoutExpired,
    LockoutSet,
    RiskEvent,
    RuleBreached,
    RuleWarned,
    TradingStateChanged,
)
from propdesk.risk.lockouts import LockoutStore
from propdesk.risk.rules.stop_required import StopRequiredRule

if TYPE_CHECKING:
    from propdesk.core.clock import Clock
    from propdesk.core.timers import TimeEvent
    from propdesk.risk.enforcer import Enforcer
    from propdesk.risk.gate import RiskGate
    from propdesk.risk.rules.base import AccountView, RuleSet

__all__ = [
    "BROKER_CONNECTED_TOPIC",
    "BROKER_DISCONNECTED_TOPIC",
    "FILL_TOPIC",
    "QUOTE_TOPICS",
    "SESSION_ROLLED_TOPIC",
    "AccountGuard",
]

log = logging.getLogger("propdesk.risk.guard")

FILL_TOPIC: Final = topics.ORDER_FILLED
QUOTE_TOPICS: Final = topics.ALL_QUOTES
BROKER_CONNECTED_TOPIC: Final = topics.BROKER_CONNECTED
BROKER_DISCONNECTED_TOPIC: Final = topics.BROKER_DISCONNECTED
SESSION_ROLLED_TOPIC: Final = topics.SESSION_ROLLED

_POST_TRADE: Final = (EvalPoint.FILL, EvalPoint.QUOTE, EvalPoint.CLOCK)
_STORE: Final = "store"
_CONNECTION: Final = "connection"
_EVALUATION: Final = "evaluation"
_INPUTS: Final = "inputs"
_STALE: Final = "stale:"
_OWN_CONDITIONS: Final = frozenset({_STORE, _CONNECTION, _EVALUATION, _INPUTS})
"""The condition keys the guard sets and lifts itself (outside conditions use other keys)."""
_RECONCILED_FILL: Final = "reconciled fill: counted, judged with every rule once the reconcile is done"
"""The audit reason of a fill reported in a reconcile while the connection condition holds."""


def _iso(ts_ns: int | None) -> str:
    if ts_ns is None:
        return "no expiry"
    return iso_utc_seconds(ts_ns)


@lru_cache(maxsize=256)
def _lockout_text(lo: Lockout) -> str:
    return f"lockout {lo.rule_id} until {_iso(lo.expires_at_ns)}: {lo.reason}"


_Cause = str | Lockout | Decision
"""What puts the account in a state: a condition's text, a lockout, or a rule's decision."""


def _severity(item: tuple[TradingState, _Cause]) -> int:
    return -item[0]


def _render(items: list[tuple[TradingState, _Cause]]) -> tuple[str, ...]:
    """The state reasons' text: a lockout as ``lockout R9 until ...: reason``, a decision as ``R3: reason``."""
    out: list[str] = []
    for _s, cause in items:
        if isinstance(cause, str):
            out.append(cause)
        elif isinstance(cause, Lockout):
            out.append(_lockout_text(cause))
        else:
            out.append(f"{cause.rule_id}: {cause.reason}")
    return tuple(out)


def _opened(before: int, after: int) -> int:
    """Contracts a change from ``before`` to ``after`` opened (0 when it only reduced)."""
    if before == 0 or (before > 0) == (after > 0):
        return max(0, abs(after) - abs(before))
    return abs(after)  # reversed through zero: the whole new side is new


class AccountGuard:
    """Post-trade rule evaluation, trading state and enforcement for one account (see the module docstring).

    Args:
        bus: the node's bus (subscriptions above; risk events published on it).
        clock: the node's clock (timer, lockout expiry alerts, timestamps).
        rules: the account's rule set.
        view: the account view rules read.
        enforcer: carries out flattens, closes and cancels.
        account_id: the account; fills and broker events of other accounts are ignored.
        store: the lockout store (loaded at :meth:`start`; the enforcer writes it).
        audit: where decisions are recorded (``None``: nowhere).
        gate: the pre-trade gate to bind to this guard's state (optional).
        quote_stale_s: a contract with a position and no quote for longer puts the account in REDUCING (5 s).
        check_interval_s: the CLOCK evaluation and stale-quote check period (1 s).
        in_session: ``f(ts_ns) -> bool``; stale quotes count only while it is true (default: always).
        priority: bus priority of the subscriptions (default 0: after the position manager's 100).

    Raises:
        ValueError: a non-positive ``quote_stale_s`` or ``check_interval_s``.
    """

    def __init__(
        self,
        bus: MessageBus,
        clock: Clock,
        rules: RuleSet,
        view: AccountView,
        enforcer: Enforcer,
        *,
        account_id: AccountId,
        store: LockoutStore,
        audit: AuditLog | None = None,
        gate: RiskGate | None = None,
        quote_stale_s: float = 5.0,
        check_interval_s: float = 1.0,
        in_session: Callable[[int], bool] | None = None,
        priority: int = Priority.DEFAULT,
    ) -> None:
        if quote_stale_s <= 0 or check_interval_s <= 0:
            raise ValueError(f"quote_stale_s ({quote_stale_s}) and check_interval_s ({check_interval_s}) must be > 0")
        self._bus = bus
        self._clock = clock
        self.rules = rules
        self.view = view
        self.enforcer = enforcer
        self.account_id = account_id
        self._store = store
        self._audit = audit
        self._stale_ns = int(quote_stale_s * 1e9)
        self._interval_ns = int(check_interval_s * 1e9)
        self._in_session = in_session
        self._priority = priority
        self._rules_at: dict[EvalPoint, tuple[str, ...]] = {
            p: tuple(r.rule_id for r in rules.rules if p in r.points) for p in _POST_TRADE
        }
        self._decisions: dict[str, Decision] = {}
        self._warned: dict[str, Decision] = {}
        # R13 attach_stop: the rules that may ask for a stop, and the stops attached per uncovered position
        # ((symbol, opened_ts_ns) -> client order id, "" when sending failed): one attempt per position
        self._stop_rules = [r for r in rules.rules if isinstance(r, StopRequiredRule)]
        self._stops_attached: dict[tuple[str, int], str] = {}
        self._lockouts: dict[str, Lockout] = {}
        self._expiry_timers: dict[str, str] = {}
        self._conditions: dict[str, tuple[TradingState, str]] = {}
        self._state = TradingState.ACTIVE
        # The state's causes, most restrictive first: (state, text) of a condition, or (state, Lockout / Decision)
        # rendered to text only when the reasons are read (not on the enforcement path).
        self._reason_items: list[tuple[TradingState, _Cause]] = []
        self._reasons_text: tuple[str, ...] | None = ()
        self._last_quote_ns: dict[str, int] = {}
        self._since_ns: dict[str, int] = {}
        self._subs: list[Subscription] = []
        self._timer_name = f"risk.guard.{account_id}"
        self._running = False
        self._depth = 0
        self._outbox: list[RiskEvent] = []
        self._audit_box: list[Callable[[], AuditEntry]] = []
        if gate is not None:
            gate.bind_state(self)
        enforcer.bind_state(self, publish=self._emit, record=self._sink, record_later=self._sink_later)

    # ------------------------------------------------------------------------------------------------ state

    @property
    def state(self) -> TradingState:
        """The account's trading state now."""
        return self._state

    @property
    def state_reasons(self) -> tuple[str, ...]:
        """Why the account is in its state: lockouts, rule decisions, conditions; most restrictive first."""
        return self._reasons

    @property
    def _reasons(self) -> tuple[str, ...]:
        text = self._reasons_text
        if text is None:
            text = self._reasons_text = _render(self._reason_items)
        return text

    @property
    def lockouts(self) -> tuple[Lockout, ...]:
        """Active lockouts, oldest first."""
        return tuple(sorted(self._lockouts.values(), key=lambda lo: lo.set_at_ns))

    @property
    def conditions(self) -> dict[str, str]:
        """Active fail-closed conditions: key (``store``, ``connection``, ``evaluation``, ``stale:<symbol>``) ->
        reason."""
        return {k: text for k, (_s, text) in self._conditions.items()}

    @property
    def decisions(self) -> dict[str, Decision]:
        """Each rule's latest post-trade decision at REDUCE_ONLY or above, by rule id."""
        return dict(self._decisions)

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._running

    # ------------------------------------------------------------------------------------------------ life cycle

    def start(self) -> None:
        """Load the lockouts (an unreadable store means HALTED), subscribe, start the timer, set the state; if the
        account must be flat (HALTED) and is not, flatten. Call before connecting the broker."""
        if self._running:
            return
        self._enter()
        try:
            self._load_lockouts()
            now = self._clock.timestamp_ns()
            for p in self.view.positions:
                if p.signed_qty:
                    self._since_ns.setdefault(p.symbol, now)
            bus, prio = self._bus, self._priority
            self._subs = [
                bus.subscribe(FILL_TOPIC, self.on_fill, prio),
                bus.subscribe(QUOTE_TOPICS, self.on_quote, prio),
                bus.subscribe(BROKER_CONNECTED_TOPIC, self.on_connected, prio),
                bus.subscribe(BROKER_DISCONNECTED_TOPIC, self.on_disconnected, prio),
                bus.subscribe(SESSION_ROLLED_TOPIC, self.on_session_rolled, prio),
            ]
            self._clock.set_timer(self._timer_name, self._interval_ns, self.on_timer)
            self._running = True
            self._check_inputs()
            self._refresh("start")
        finally:
            self._exit()

    def stop(self) -> None:
        """Unsubscribe and cancel the guard's timers (pending enforcer jobs are left to the enforcer)."""
        for sub in self._subs:
            self._bus.unsubscribe(sub)
        self._subs = []
        self._clock.cancel_timer(self._timer_name)
        for name in list(self._expiry_timers):
            self._clock.cancel_timer(name)
        self._expiry_timers.clear()
        self._running = False

    def reload_lockouts(self) -> bool:
        """Read the store again (after an operator repaired it). Returns True when it was readable; the HALTED
        condition of an unreadable store is lifted then."""
        self._enter()
        try:
            ok = self._load_lockouts()
            self._refresh("lockouts reloaded")
            return ok
        finally:
            self._exit()

    def _load_lockouts(self) -> bool:
        now = self._clock.timestamp_ns()
        try:
            loaded = self._store.load_active(self.account_id, now)
        except Exception as exc:
            text = f"lockout store unreadable ({type(exc).__name__}: {exc}): HALTED until it is repaired"
            log.critical("risk: account %s: %s", self.account_id, text)
            self._conditions[_STORE] = (TradingState.HALTED, text)
            self._record("store", "LOAD", (text,), {})
            return False
        self._conditions.pop(_STORE, None)
        for lo in loaded:
            cur = self._lockouts.get(lo.rule_id)
            self._lockouts[lo.rule_id] = lo if cur is None else stricter(cur, lo)
            self._arm_expiry(self._lockouts[lo.rule_id])
        self._record("store", "LOAD", tuple(f"{lo.rule_id} until {_iso(lo.expires_at_ns)}" for lo in loaded), {})
        return True

    # ------------------------------------------------------------------------------------------------ handlers

    def on_fill(self, fill: OrderFilled) -> None:
        """A fill from any source (``events.order.filled``): evaluate the FILL rules and act."""
        if fill.account_id != self.account_id:
            return
        self._enter()
        try:
            before_state = self._state
            symbol = fill.symbol
            pos = self.view.position_qty(symbol)
            opened = _opened(pos - fill.signed_qty, pos)
            if pos:
                self._since_ns.setdefault(symbol, self._clock.timestamp_ns())
            else:
                self._since_ns.pop(symbol, None)
                self._conditions.pop(_STALE + symbol, None)
            if fill.reconciled and _CONNECTION in self._conditions:  # judged by reconciled() (module docstring)
                self._record("fill", "RECONCILED", (_RECONCILED_FILL,), {"fill": _fill_inputs(fill)})
                return
            self._evaluate(EvalPoint.FILL, None, fill)
            if opened and before_state is TradingState.REDUCING and self._state is TradingState.REDUCING:
                reason = f"{fill.side.name} {opened} {symbol} opened while REDUCING ({'; '.join(self._reasons)})"
                self.enforcer.close_position(symbol, reason, qty=opened, rule=self._cause_rule())
        finally:
            self._exit()

    def on_quote(self, quote: QuoteTick) -> None:
        """A quote (``data.quotes.<symbol>``): note it for the stale-feed watchdog; evaluate the QUOTE rules when the
        account holds that contract."""
        symbol = quote.symbol
        self._last_quote_ns[symbol] = self._clock.timestamp_ns()
        stale = _STALE + symbol in self._conditions
        if not stale and symbol not in self._since_ns:
            return
        self._enter()
        try:
            if stale:
                del self._conditions[_STALE + symbol]
                self._record("quote", "FRESH", (f"quote for {symbol} received",), {"symbol": symbol})
                self._refresh(f"quote for {symbol}")
            if symbol in self._since_ns:
                self.evaluate(EvalPoint.QUOTE)
        finally:
            self._exit()

    def on_timer(self, _event: TimeEvent) -> None:
        """The periodic check: the stale-quote watchdog, then the CLOCK rules."""
        self._enter()
        try:
            now = self._clock.timestamp_ns()
            if self._in_session is None or self._in_session(now):
                changed = []
                for symbol, since in self._since_ns.items():
                    key = _STALE + symbol
                    ref = max(since, self._last_quote_ns.get(symbol, since))
                    if now - ref > self._stale_ns and key not in self._conditions:
                        text = (
                            f"no quote for {symbol} for {(now - ref) / 1e9:.1f} s (limit {self._stale_ns / 1e9:g} s): "
                            "reduce-only until a quote arrives"
                        )
                        self._conditions[key] = (TradingState.REDUCING, text)
                        changed.append(text)
                if changed:
                    log.warning("risk: account %s: %s", self.account_id, "; ".join(changed))
                    self._record("quote", "STALE", tuple(changed), {"last_quote_ns": dict(self._last_quote_ns)})
                    self._refresh("stale quotes")
            if self._check_inputs():
                self._refresh("account inputs")
            clock_rules = self._rules_at[EvalPoint.CLOCK]
            if any(rule_id not in clock_rules for rule_id in self._decisions):
                # A held decision of a FILL/QUOTE rule is refreshed here, or it could outlive its cause (a REDUCING
                # account sees no fills, a flat one no quote evaluations).
                self.evaluate(EvalPoint.FILL)
                self.evaluate(EvalPoint.QUOTE)
            self.evaluate(EvalPoint.CLOCK)
        finally:
            self._exit()

    def set_condition(self, key: str, state: TradingState, reason: str) -> None:
        """Hold an outside fail-closed condition (e.g. the journal's back-pressure, :mod:`propdesk.node.journaling`):
        the account stays at least in ``state`` until :meth:`clear_condition`; the guard acts at once (REDUCING cancels
        the opening orders, HALTED flattens). Setting the same condition again changes nothing.

        Raises:
            ValueError: ``key`` is empty or one of the guard's own (``store``, ``connection``, ``evaluation``,
                ``inputs``, ``stale:...``), or ``state`` is ACTIVE (a condition never allows).
        """
        if not key or key in _OWN_CONDITIONS or key.startswith(_STALE):
            raise ValueError(f"condition key {key!r} is empty or reserved by the account guard")
        if state is TradingState.ACTIVE:
            raise ValueError(f"condition {key!r}: a fail-closed condition must be REDUCING or HALTED, not ACTIVE")
        if self._conditions.get(key) == (state, reason):
            return
        self._enter()
        try:
            self._conditions[key] = (state, reason)
            self._record("condition", f"SET {state.name}", (reason,), {"key": key})
            self._refresh(f"condition {key}")
        finally:
            self._exit()

    def clear_condition(self, key: str) -> bool:
        """Lift a condition set with :meth:`set_condition`; ``False`` if it was not set (or is one of the guard's own,
        which only the guard lifts)."""
        if key in _OWN_CONDITIONS or key.startswith(_STALE) or key not in self._conditions:
            return False
        self._enter()
        try:
            _state, reason = self._conditions.pop(key)
            self._record("condition", "CLEARED", (reason,), {"key": key})
            self._refresh(f"condition {key} cleared")
        finally:
            self._exit()
        return True

    def on_disconnected(self, event: BrokerDisconnected) -> None:
        """The broker connection was lost: REDUCING until reconnected and :meth:`reconciled`."""
        if event.account_id != self.account_id:
            return
        self._enter()
        try:
            text = f"broker disconnected at {_iso(event.ts_ns)} ({event.reason or 'no reason given'}): reduce-only"
            self._conditions[_CONNECTION] = (TradingState.REDUCING, text + " until reconnected and reconciled")
            self._record("connection", "DISCONNECTED", (text,), {})
            self._refresh("broker disconnected")
        finally:
            self._exit()

    def on_connected(self, event: BrokerConnected) -> None:
        """The broker is connected again: still REDUCING until the reconciler calls :meth:`reconciled`."""
        if event.account_id != self.account_id:
            return
        self._enter()
        try:
            if _CONNECTION in self._conditions:
                text = f"broker reconnected at {_iso(event.ts_ns)}: reduce-only until reconciled"
                self._conditions[_CONNECTION] = (TradingState.REDUCING, text)
                self._record("connection", "CONNECTED", (text,), {})
                self._refresh("broker reconnected")
        finally:
            self._exit()

    def on_session_rolled(self, _event: object) -> None:
        """A new trading day started (``events.session.rolled``; the account view has reset its day counters at a
        higher bus priority): re-evaluate every rule."""
        self._enter()
        try:
            self._check_inputs()
            self.reevaluate_all()
            self._refresh("session rolled")
        finally:
            self._exit()

    def _check_inputs(self) -> bool:
        """REDUCING while the view reports unknown inputs (``missing_inputs()``, e.g. the MLL floor or a mark;
        risk-rules.md section 7.6). Views without that method are taken as complete. Returns True on a change."""
        probe = getattr(self.view, "missing_inputs", None)
        if probe is None:
            return False
        try:
            missing = list(probe())
        except Exception as exc:
            missing = [f"<missing_inputs failed: {type(exc).__name__}: {exc}>"]
        old = self._conditions.get(_INPUTS)
        if missing:
            text = f"unknown account inputs ({', '.join(missing)}): reduce-only until known"
            self._conditions[_INPUTS] = (TradingState.REDUCING, text)
        else:
            self._conditions.pop(_INPUTS, None)
        new = self._conditions.get(_INPUTS)
        if new != old:
            self._record("clock", "INPUTS", (new[1] if new else "account inputs known",), {"missing": missing})
            return True
        return False

    def reconciled(self) -> None:
        """The reconciler has brought local state in line with the broker: lift the connection condition and
        re-evaluate every rule (FILL, QUOTE, CLOCK)."""
        self._enter()
        try:
            if self._conditions.pop(_CONNECTION, None) is not None:
                self._record("connection", "RECONCILED", ("local state reconciled with the broker",), {})
            self._check_inputs()
            self.reevaluate_all()
            self._refresh("reconciled")
        finally:
            self._exit()

    def reevaluate_all(self) -> None:
        """Evaluate the rules at every post-trade point (after a reconcile, a lockout expiry, a session roll)."""
        self._enter()
        try:
            for point in _POST_TRADE:
                self.evaluate(point)
        finally:
            self._exit()

    # ------------------------------------------------------------------------------------------------ evaluation

    def evaluate(self, point: EvalPoint, *, trigger: dict[str, Any] | None = None) -> Verdict:
        """Evaluate the rules of ``point`` (FILL, QUOTE or CLOCK), update the state and act (module docstring).

        ``trigger`` is added to the audit inputs (e.g. the fill). Returns the rule set's verdict (for a failed
        evaluation: REDUCE_ONLY with no decisions). Never raises for a rule failure.
        """
        self._enter()
        try:
            return self._evaluate(point, trigger)
        finally:
            self._exit()

    def _evaluate(self, point: EvalPoint, trigger: dict[str, Any] | None, fill: OrderFilled | None = None) -> Verdict:
        now = self._clock.timestamp_ns()
        try:
            verdict = self.rules.evaluate(self.view, point)
        except Exception as exc:  # fail closed: an evaluation that cannot run never means "allow"
            log.exception("risk: rule evaluation failed at %s for account %s", point.value, self.account_id)
            text = f"rule evaluation failed at {point.value} ({type(exc).__name__}: {exc}): reduce-only until it runs"
            self._conditions[_EVALUATION] = (TradingState.REDUCING, text)
            failed_inputs = dict(trigger or {})
            if fill is not None:
                failed_inputs["fill"] = _fill_inputs(fill)
            self._record(point.value, Action.REDUCE_ONLY.name, (text,), failed_inputs)
            self._refresh("evaluation failed")
            return Verdict(Action.REDUCE_ONLY, TradingState.REDUCING, None, ())
        evaluation_recovered = self._conditions.pop(_EVALUATION, None) is not None

        new, warns, cleared = self._remember(point, verdict)
        new_lockouts = self._new_lockouts(now)
        changed = bool(new or warns or cleared or new_lockouts or evaluation_recovered)
        for lo in new_lockouts:
            self._lockouts[lo.rule_id] = lo
        old = self._state
        self._apply_state()
        # The commands leave first: the events and audit entries of this evaluation are built after ``_act`` from
        # values taken now (the inputs as they were before acting) and queued ahead of whatever acting queued, so
        # the order published and recorded is as if they had been queued before acting.
        state, reason_items = self._state, self._reason_items  # a new list at each _apply_state: safe to keep
        audit = self._audit is not None and (point is EvalPoint.FILL or changed)
        raw = capture_view(self.view) if audit else None  # rendered to strings after the commands left
        ts_pre = self._clock.timestamp_ns()
        out_at, audit_at = len(self._outbox), len(self._audit_box)
        outbox, audit_box = self._outbox, self._audit_box
        try:
            self._act(old, new, new_lockouts)  # the commands leave here
            for lo in new_lockouts:
                self._arm_expiry(lo)
        finally:
            self._queue_first(
                outbox=outbox,
                audit_box=audit_box,
                out_at=out_at,
                audit_at=audit_at,
                events=self._evaluation_events(
                    now=now, point=point, new_lockouts=new_lockouts, new=new, warns=warns, state=state
                ),
                records=self._evaluation_records(
                    ts=ts_pre,
                    point=point,
                    verdict=verdict,
                    cleared=cleared,
                    raw=raw,
                    fill=fill,
                    trigger=trigger,
                    old=old,
                    state=state,
                    reason_items=reason_items,
                ),
            )
        if self._stop_rules and point is not EvalPoint.QUOTE and self._state is not TradingState.HALTED:
            self._attach_stops()
        return verdict

    def _attach_stops(self) -> None:
        """R13 ``attach_stop``: attach a protective stop to each position the rule reports uncovered past its grace
        period (once per position; a rejected stop leaves it uncovered and the rule closes it after a second grace
        period). Only while the rule warns, so the fill path pays nothing otherwise."""
        view = self.view
        for rule in self._stop_rules:
            if rule.rule_id not in self._warned:
                continue
            for m in rule.stops_to_attach(view):
                key = (m.symbol, m.since_ns)
                if key in self._stops_attached:
                    continue
                price = rule.attach_price(view, m)
                if price is None:
                    continue
                reason = f"{rule.rule_id}: {m.qty} {m.symbol} without a stop after the grace period"
                self._stops_attached[key] = (
                    self.enforcer.attach_stop(m.symbol, m.side, m.qty, price, reason, rule=rule.rule_id) or ""
                )

    def _evaluation_events(
        self,
        *,
        now: int,
        point: EvalPoint,
        new_lockouts: list[Lockout],
        new: list[Decision],
        warns: list[Decision],
        state: TradingState,
    ) -> list[RiskEvent]:
        """The LockoutSet, RuleBreached and RuleWarned events of an evaluation (``state``: the state it set)."""
        account = self.account_id
        events: list[RiskEvent] = []
        for lo in new_lockouts:
            events.append(LockoutSet(account_id=account, ts_ns=now, lockout=lo))
        for d in new:
            events.append(RuleBreached(account_id=account, ts_ns=now, point=point, decision=d, state=state))
        for d in warns:
            events.append(RuleWarned(account_id=account, ts_ns=now, point=point, decision=d))
        return events

    def _evaluation_records(
        self,
        *,
        ts: int,
        point: EvalPoint,
        verdict: Verdict,
        cleared: list[Decision],
        raw: dict[str, Any] | None,
        fill: OrderFilled | None,
        trigger: dict[str, Any] | None,
        old: TradingState,
        state: TradingState,
        reason_items: list[tuple[TradingState, _Cause]],
    ) -> tuple[list[RiskEvent], list[Callable[[], AuditEntry]]]:
        """The audit entries of an evaluation (``raw``: the view captured before acting, ``None`` when the
        evaluation is not recorded) and its TradingStateChanged event (from ``old`` to ``state``), if any."""
        events: list[RiskEvent] = []
        builders: list[Callable[[], AuditEntry]] = []
        if raw is not None:
            view = self.view
            captured = raw

            def inputs() -> dict[str, Any]:
                out = render_view_inputs(captured, view)
                if fill is not None:
                    out["fill"] = _fill_inputs(fill)
                if trigger:
                    out.update(trigger)
                return out

            reasons = tuple(f"{d.rule_id}: {d.reason}" for d in verdict.decisions)
            reasons += tuple(f"{d.rule_id}: cleared" for d in cleared)
            builders.append(
                self._builder(
                    ts=ts, state=state, point=point.value, action=verdict.action.name, reasons=reasons, inputs=inputs
                )
            )
        if state is not old:
            reasons_now = self._reasons if reason_items is self._reason_items else _render(reason_items)
            events.append(
                TradingStateChanged(account_id=self.account_id, ts_ns=ts, old=old, new=state, reasons=reasons_now)
            )
            if self._audit is not None:
                cause = {"cause": f"{point.value} evaluation"}
                builders.append(
                    self._builder(
                        ts=ts,
                        state=state,
                        point="state",
                        action=f"{old.name}->{state.name}",
                        reasons=reasons_now,
                        inputs=cause,
                        step="state",
                    )
                )
        return events, builders

    def _queue_first(
        self,
        *,
        outbox: list[RiskEvent],
        audit_box: list[Callable[[], AuditEntry]],
        out_at: int,
        audit_at: int,
        events: list[RiskEvent],
        records: tuple[list[RiskEvent], list[Callable[[], AuditEntry]]],
    ) -> None:
        """Queue ``events`` then ``records``' events at ``out_at`` of the outbox, and its audit entries at
        ``audit_at`` of the audit queue (where they would have been, had they been queued before acting)."""
        more, builders = records
        events.extend(more)
        if self._depth and outbox is self._outbox and audit_box is self._audit_box:
            outbox[out_at:out_at] = events
            audit_box[audit_at:audit_at] = builders
            return
        for event in events:  # not handling an event (evaluate and on_fill always are): publish and write now
            self._emit(event)
        for build in builders:
            safe_record(self._audit, build())

    def _remember(self, point: EvalPoint, verdict: Verdict) -> tuple[list[Decision], list[Decision], list[Decision]]:
        """Store each evaluated rule's decision; return (new breaches, new warnings, cleared breaches)."""
        by_id: dict[str, Decision] = {}
        for dec in verdict.decisions:  # most severe first: keep the first of each rule
            by_id.setdefault(dec.rule_id, dec)
        new: list[Decision] = []
        warns: list[Decision] = []
        cleared: list[Decision] = []
        for rule_id in (*self._rules_at[point], *(r for r in by_id if r not in self._rules_at[point])):
            d = by_id.get(rule_id)
            prev = self._decisions.get(rule_id)
            if d is None or d.action <= Action.DENY:  # DENY is for orders only; nothing to enforce after the fact
                if prev is not None:
                    del self._decisions[rule_id]
                    cleared.append(prev)
                if d is not None and d.action is Action.WARN:
                    if rule_id not in self._warned:
                        warns.append(d)
                    self._warned[rule_id] = d
                else:
                    self._warned.pop(rule_id, None)
                continue
            self._warned.pop(rule_id, None)
            self._decisions[rule_id] = d
            if prev is None or prev.action is not d.action or prev.symbol != d.symbol:
                new.append(d)
        return new, warns, cleared

    def _new_lockouts(self, now: int) -> list[Lockout]:
        out: list[Lockout] = []
        for d in self._decisions.values():
            if d.action is not Action.LOCKOUT or (d.until_ns is not None and d.until_ns <= now):
                continue
            lo = Lockout(
                account=self.account_id,
                rule_id=d.rule_id,
                reason=d.reason,
                set_at_ns=now,
                expires_at_ns=d.until_ns,
                firm=d.firm,
            )
            cur = self._lockouts.get(d.rule_id)
            if cur is None or (stricter(cur, lo) is lo and lo.expires_at_ns != cur.expires_at_ns):
                out.append(lo)
        return out

    def _apply_state(self) -> None:
        now = self._clock.timestamp_ns()
        items: list[tuple[TradingState, _Cause]] = []
        halted = TradingState.HALTED
        for lo in self._lockouts.values():
            items.append((halted, lo))
        for rule_id, d in self._decisions.items():
            state = d.state
            if d.action is Action.LOCKOUT:
                if rule_id in self._lockouts:
                    continue  # its lockout says it
                if d.until_ns is not None and d.until_ns <= now:
                    state = TradingState.REDUCING  # the lockout period is over but the rule still objects
            if state is not TradingState.ACTIVE:
                items.append((state, d))
        items.extend(self._conditions.values())
        if len(items) > 1:
            items.sort(key=_severity)
        self._state = items[0][0] if items else TradingState.ACTIVE
        self._reason_items = items
        self._reasons_text = None

    def _act(self, old: TradingState, new: list[Decision], new_lockouts: list[Lockout]) -> None:
        """Have the enforcer do what the state and the decisions ask (synchronously)."""
        new_ids = {d.rule_id for d in new}
        flat = [
            d
            for d in self._decisions.values()
            if d.action >= Action.FLATTEN or (d.action is Action.CLOSE_POSITION and d.symbol is None)
        ]
        if flat or new_lockouts or self._state is TradingState.HALTED:
            reason = "; ".join(f"{d.rule_id}: {d.reason}" for d in flat) or "; ".join(self._reasons)
            force = bool(new_lockouts) or any(d.rule_id in new_ids for d in flat)
            rule = flat[0].rule_id if flat else new_lockouts[0].rule_id if new_lockouts else self._cause_rule()
            self.enforcer.flatten(reason, lockouts=new_lockouts, force=force, rule=rule)
            return
        for d in list(self._decisions.values()):
            if d.action is Action.CLOSE_POSITION and d.symbol is not None:
                self.enforcer.close_position(
                    d.symbol, f"{d.rule_id}: {d.reason}", qty=d.qty, force=d.rule_id in new_ids, rule=d.rule_id
                )
        if self._state is TradingState.REDUCING and (
            old is TradingState.ACTIVE or any(d.action is Action.REDUCE_ONLY for d in new)
        ):
            self.enforcer.cancel_opening_orders("; ".join(self._reasons))

    def _cause_rule(self) -> str | None:
        """The id of the rule behind the most severe cause of the current state (a lockout or a decision), for the
        enforcement tag ``risk:<RULE>``; ``None`` when that cause is a condition (stale feed, lost connection ...)."""
        if not self._reason_items:
            return None
        cause = self._reason_items[0][1]
        return None if isinstance(cause, str) else cause.rule_id

    def _refresh(self, cause: str) -> None:
        """Recompute the state after a condition or lockout change, act on it, publish the change."""
        old = self._state
        self._apply_state()
        self._state_changed(old, cause)
        self._act(old, [], [])

    def _state_changed(self, old: TradingState, cause: str) -> None:
        if self._state is old:
            return
        new = self._state
        self._emit(
            TradingStateChanged(
                account_id=self.account_id, ts_ns=self._clock.timestamp_ns(), old=old, new=new, reasons=self._reasons
            )
        )
        self._record("state", f"{old.name}->{new.name}", self._reasons, {"cause": cause}, step="state")

    # ------------------------------------------------------------------------------------------------ lockouts

    def _arm_expiry(self, lo: Lockout) -> None:
        if lo.expires_at_ns is None:
            return
        name = f"risk.lockout.{self.account_id}.{lo.rule_id}"
        self._clock.cancel_timer(name)
        self._clock.set_time_alert(name, lo.expires_at_ns, self._on_lockout_due, allow_past=True)
        self._expiry_timers[name] = lo.rule_id

    def _on_lockout_due(self, event: TimeEvent) -> None:
        rule_id = self._expiry_timers.pop(event.name, None)
        lo = None if rule_id is None else self._lockouts.get(rule_id)
        now = self._clock.timestamp_ns()
        if lo is None or lo.active_at(now):
            return
        self._enter()
        try:
            del self._lockouts[lo.rule_id]
            try:
                self._store.clear(lo)
            except Exception as exc:  # the expiry still holds; a stale record is lifted again at the next load
                log.error("risk: could not clear expired lockout %s of account %s: %s", lo.rule_id, lo.account, exc)
            self._emit(LockoutExpired(account_id=self.account_id, ts_ns=now, lockout=lo))
            self._record("lockout", "EXPIRED", (f"{lo.rule_id}: {lo.reason}",), lo.to_dict(), step="expired")
            self.reevaluate_all()
            self._refresh(f"lockout {lo.rule_id} expired")
        finally:
            self._exit()

    # ------------------------------------------------------------------------------------------------ output

    def _enter(self) -> None:
        self._depth += 1

    def _exit(self) -> None:
        self._depth -= 1
        if self._depth:
            return
        while self._outbox or self._audit_box:
            events, self._outbox = self._outbox, []
            entries, self._audit_box = self._audit_box, []
            for build in entries:
                try:
                    entry = build()
                except Exception:  # rendering the inputs must never break the guard
                    log.exception("risk: could not build an audit entry for account %s", self.account_id)
                    continue
                safe_record(self._audit, entry)
            for event in events:
                # INFO, not WARNING: the views render these events from the bus (propdesk.risk.outcomes: the summary
                # tables, the report, the console's risk panel); a backtest sets dozens of them
                if isinstance(event, TradingStateChanged):
                    log.info(
                        "risk: account %s %s -> %s: %s",
                        self.account_id,
                        event.old.name,
                        event.new.name,
                        "; ".join(event.reasons) or "no rule or condition holds",
                    )
                elif isinstance(event, RuleBreached):
                    d = event.decision
                    log.info("risk: account %s: %s %s: %s", self.account_id, d.rule_id, d.action.name, d.reason)
                self._bus.publish(event.topic, event)

    def _emit(self, event: RiskEvent) -> None:
        """Queue ``event`` while handling (published once the outermost handler is done), else publish it."""
        if self._depth:
            self._outbox.append(event)
        else:
            self._bus.publish(event.topic, event)

    def _sink(self, entry: AuditEntry) -> None:
        """Queue an audit entry while handling (written after the commands left), else write it."""
        if self._depth:
            self._audit_box.append(lambda: entry)
        else:
            safe_record(self._audit, entry)

    def _sink_later(self, build: Callable[[], AuditEntry]) -> None:
        """Queue a function building an audit entry while handling (called after the commands left), else write
        it now."""
        if self._depth:
            self._audit_box.append(build)
        else:
            safe_record(self._audit, build())

    def _record(
        self,
        point: str,
        action: str,
        reasons: tuple[str, ...],
        inputs: dict[str, Any] | Callable[[], dict[str, Any]],
        *,
        step: str = "",
    ) -> None:
        """Record an audit entry; ``inputs`` may be a function, called when the entry is written (after acting)."""
        if self._audit is None:
            return
        build = self._builder(
            ts=self._clock.timestamp_ns(),
            state=self._state,
            point=point,
            action=action,
            reasons=reasons,
            inputs=inputs,
            step=step,
        )
        if self._depth:
            self._audit_box.append(build)
        else:
            safe_record(self._audit, build())

    def _builder(
        self,
        *,
        ts: int,
        state: TradingState,
        point: str,
        action: str,
        reasons: tuple[str, ...],
        inputs: dict[str, Any] | Callable[[], dict[str, Any]],
        step: str = "",
    ) -> Callable[[], AuditEntry]:
        """A function building the audit entry (``inputs`` may be a function, called then)."""
        account, state_name = self.account_id, state.name

        def build() -> AuditEntry:
            return AuditEntry(
                ts_ns=ts,
                account=account,
                point=point,
                action=action,
                state=state_name,
                reasons=reasons,
                inputs=inputs() if callable(inputs) else inputs,
                step=step,
            )

        return build


def _fill_inputs(fill: OrderFilled) -> dict[str, Any]:
    return {
        "trade_id": fill.trade_id,
        "client_order_id": str(fill.client_order_id),
        "symbol": fill.symbol,
        "side": fill.side.name,
        "qty": fill.qty,
        "price": str(fill.price),
        "fee": str(fill.fee.as_decimal()),
        "tag": fill.tag,
        "reconciled": fill.reconciled,
    }
