"""What the risk engine did in a run, collected once for every view (the backtest and ``run`` summaries, their
``--json`` output, the HTML report and the live console).

:class:`RiskOutcomes` subscribes to the risk events on the bus (``events.risk.*``, :mod:`propdesk.risk.events`) and to
``events.order.denied`` / ``events.order.filled``, and keeps a structured record:

* **trading state timeline**: every ``TradingStateChanged`` as a :class:`StateChange` (UTC ns, from -> to, the rule
  that caused it, the reason in the rule's words); a return to ACTIVE names the lockout whose expiry lifted it;
* **lockouts**: every ``LockoutSet`` as a :class:`LockoutSpan`; a lockout of the same rule and reason set again at
  (or before) the previous one's expiry extends that span (``renewals`` counts it: R1's buffer lockout is set again
  at every session roll while the equity stays in the buffer);
* **denied orders** by rule (:class:`DenialTally`: count, the first and last times, up to three example reasons);
* **flattens and risk closes** (:class:`FlattenRecord`: when, the rule, the reason, and the fills that closed
  positions between the start of the flatten and its verification, with the fill tags as given);
* **halts** (:meth:`RiskOutcomes.halts`): each stretch of HALTED, its rule and reason and whether it was lifted.

The rule of an event is the first rule id (``R1`` .. ``R16``) its reason names (reasons list the most restrictive
first, e.g. ``lockout R1 until ...``); a reason that names none (a fail-closed condition: a stale feed, the journal's
back-pressure, the guard not running) is attributed to the trading state (``HALTED``, ``REDUCING``) or ``gate``.

Cost: nothing per bar; one append per fill (a bounded ring of the last fills, read when a flatten is verified); a
few dictionary updates per denial and per risk event (rare).
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Final

from propdesk.core import topics
from propdesk.core.bus import MessageBus, Subscription
from propdesk.core.topics import Priority
from propdesk.model.events import OrderDenied, OrderFilled
from propdesk.risk.events import (
    AccountFlattened,
    LockoutExpired,
    LockoutSet,
    PositionClosedByRisk,
    RiskEvent,
    TradingStateChanged,
)

__all__ = [
    "DenialTally",
    "FlattenFill",
    "FlattenRecord",
    "Halt",
    "LockoutSpan",
    "RiskOutcomes",
    "StateChange",
    "plain_reason",
    "rule_of",
]

_RULE_RE: Final = re.compile(r"\b(R1[0-6]|R[1-9])\b")
_RECENT_FILLS: Final[int] = 64
"""Fills kept for attributing them to a flatten (a flatten closes one position per contract, plus retries)."""
_EXAMPLES: Final[int] = 3
"""Example reasons kept per denying rule."""
PRIORITY: Final[int] = Priority.RISK_OUTCOMES
"""Bus priority of the recorder: after every other handler (the engine's own tallies run at -200)."""


def rule_of(reason: str, default: str | None = None) -> str | None:
    """The first rule id (``R1`` .. ``R16``) named in ``reason``, else ``default``."""
    m = _RULE_RE.search(reason)
    return m.group(1) if m else default


@dataclass(frozen=True, slots=True, kw_only=True)
class StateChange:
    """One change of the account's trading state: at ``ts_ns`` (UTC ns) from ``old`` to ``new`` (``ACTIVE``,
    ``REDUCING``, ``HALTED``), caused by ``rule_id`` (``None`` when no rule is named), ``reason`` in words."""

    ts_ns: int
    old: str
    new: str
    rule_id: str | None
    reason: str

    def to_json_dict(self) -> dict[str, Any]:
        """``ts_ns``, ``from``, ``to``, ``rule_id``, ``reason``."""
        return {"ts_ns": self.ts_ns, "from": self.old, "to": self.new, "rule_id": self.rule_id, "reason": self.reason}


@dataclass(slots=True, kw_only=True)
class LockoutSpan:
    """A lockout: ``rule_id``, ``reason``, set at ``start_ns``, lifted at ``expires_at_ns`` (UTC ns; ``None``: no
    expiry, the account failed). ``renewals`` counts the times the same lockout was set again before it lapsed
    (the span then runs to the last one's expiry); ``count`` = ``renewals + 1``."""

    rule_id: str
    reason: str
    start_ns: int
    expires_at_ns: int | None
    renewals: int = 0

    @property
    def count(self) -> int:
        """Times the lockout was set (``renewals + 1``)."""
        return self.renewals + 1

    def to_json_dict(self) -> dict[str, Any]:
        """``rule_id``, ``reason``, ``start_ns``, ``expires_at_ns``, ``renewals``."""
        return {
            "rule_id": self.rule_id,
            "reason": self.reason,
            "start_ns": self.start_ns,
            "expires_at_ns": self.expires_at_ns,
            "renewals": self.renewals,
        }


@dataclass(slots=True, kw_only=True)
class DenialTally:
    """Orders the pre-trade gate denied because of ``rule_id``: ``count``, the first and last times (UTC ns) and up to
    three ``examples`` ``(ts_ns, reason)`` (the first ones)."""

    rule_id: str
    count: int = 0
    first_ns: int = 0
    last_ns: int = 0
    examples: list[tuple[int, str]] = field(default_factory=list)

    def to_json_dict(self) -> dict[str, Any]:
        """``rule_id``, ``count``, ``first_ns``, ``last_ns``, ``examples`` (``ts_ns``, ``reason`` each)."""
        return {
            "rule_id": self.rule_id,
            "count": self.count,
            "first_ns": self.first_ns,
            "last_ns": self.last_ns,
            "examples": [{"ts_ns": ts, "reason": r} for ts, r in self.examples],
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class FlattenFill:
    """A fill that closed (part of) a position during a flatten: ``symbol``, ``side`` (``BUY``/``SELL``), ``qty``
    (contracts), ``price`` (points, exact decimal text), ``tag`` (the order's tag as given, e.g. ``risk:R11``)."""

    ts_ns: int
    symbol: str
    side: str
    qty: int
    price: str
    tag: str

    def to_json_dict(self) -> dict[str, Any]:
        """``ts_ns``, ``symbol``, ``side``, ``qty``, ``price``, ``tag``."""
        return {
            "ts_ns": self.ts_ns,
            "symbol": self.symbol,
            "side": self.side,
            "qty": self.qty,
            "price": self.price,
            "tag": self.tag,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class FlattenRecord:
    """A verified flatten (``symbol`` ``None``) or risk close of one contract: started at ``started_ns``, verified at
    ``ts_ns`` (UTC ns), because of ``rule_id`` / ``reason``, after ``attempts`` command rounds; ``fills`` closed the
    positions (empty when the account was already flat)."""

    ts_ns: int
    started_ns: int
    rule_id: str | None
    reason: str
    symbol: str | None
    attempts: int
    fills: tuple[FlattenFill, ...]

    def to_json_dict(self) -> dict[str, Any]:
        """``ts_ns``, ``started_ns``, ``rule_id``, ``reason``, ``symbol``, ``attempts``, ``fills``."""
        return {
            "ts_ns": self.ts_ns,
            "started_ns": self.started_ns,
            "rule_id": self.rule_id,
            "reason": self.reason,
            "symbol": self.symbol,
            "attempts": self.attempts,
            "fills": [f.to_json_dict() for f in self.fills],
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Halt:
    """A stretch of HALTED (or REDUCING): from ``start_ns`` to ``end_ns`` (UTC ns; ``None``: still in force at the end
    of the record), ``rule_id`` and ``reason`` of the change that started it."""

    state: str
    start_ns: int
    end_ns: int | None
    rule_id: str | None
    reason: str


class RiskOutcomes:
    """The recorder (see the module docstring). Build it, then :meth:`subscribe` it to the node's bus before trading.

    Args:
        account_id: record only this account's events (``None``: every account on the bus).
    """

    def __init__(self, account_id: int | None = None) -> None:
        self.account_id = account_id
        self.timeline: list[StateChange] = []
        """Every trading-state change, in order."""
        self.lockouts: list[LockoutSpan] = []
        """Every lockout, renewals merged, in order of start."""
        self.denials: dict[str, DenialTally] = {}
        """Denied orders by rule id, in order of the first denial."""
        self.flattens: list[FlattenRecord] = []
        """Every verified flatten and risk close, in order."""
        self.state = "ACTIVE"
        """The trading state after the last recorded change."""
        self._fills: deque[OrderFilled] = deque(maxlen=_RECENT_FILLS)
        self._open: dict[str, LockoutSpan] = {}
        self._expired: LockoutExpired | None = None
        self._subs: list[Subscription] = []

    # ------------------------------------------------------------------------------------------------ wiring

    def subscribe(self, bus: MessageBus) -> None:
        """Subscribe to the risk events, denials and fills on ``bus`` (priority :data:`PRIORITY`). Idempotent."""
        if self._subs:
            return
        self._subs = [
            bus.subscribe(TradingStateChanged.TOPIC, self.on_state_changed, PRIORITY),
            bus.subscribe(LockoutSet.TOPIC, self.on_lockout_set, PRIORITY),
            bus.subscribe(LockoutExpired.TOPIC, self.on_lockout_expired, PRIORITY),
            bus.subscribe(AccountFlattened.TOPIC, self.on_flattened, PRIORITY),
            bus.subscribe(PositionClosedByRisk.TOPIC, self.on_flattened, PRIORITY),
            bus.subscribe(topics.ORDER_DENIED, self.on_denied, PRIORITY),
            bus.subscribe(topics.ORDER_FILLED, self.on_fill, PRIORITY),
        ]

    def unsubscribe(self, bus: MessageBus) -> None:
        """Stop recording (the record is kept)."""
        for sub in self._subs:
            bus.unsubscribe(sub)
        self._subs = []

    def _mine(self, account_id: int) -> bool:
        return self.account_id is None or int(account_id) == int(self.account_id)

    # ------------------------------------------------------------------------------------------------ handlers

    def on_state_changed(self, event: TradingStateChanged) -> None:
        """A trading-state change: appended to the timeline (a return to ACTIVE names the lockout that expired)."""
        if not self._mine(event.account_id):
            return
        reason = "; ".join(event.reasons)
        rule = rule_of(reason)
        if not reason:
            lifted = self._expired
            if lifted is not None and lifted.ts_ns == event.ts_ns:
                rule = lifted.lockout.rule_id
                reason = f"lockout {rule} expired"
            else:
                reason = "no rule or condition holds"
        self.timeline.append(
            StateChange(ts_ns=event.ts_ns, old=event.old.name, new=event.new.name, rule_id=rule, reason=reason)
        )
        self.state = event.new.name

    def on_lockout_set(self, event: LockoutSet) -> None:
        """A lockout: a new span, or a renewal of the open span of the same rule and reason."""
        if not self._mine(event.account_id):
            return
        lo = event.lockout
        cur = self._open.get(lo.rule_id)
        if (
            cur is not None
            and cur.reason == lo.reason
            and cur.expires_at_ns is not None
            and lo.set_at_ns <= cur.expires_at_ns
        ):
            cur.renewals += 1
            if lo.expires_at_ns is None or lo.expires_at_ns > cur.expires_at_ns:
                cur.expires_at_ns = lo.expires_at_ns
            return
        span = LockoutSpan(rule_id=lo.rule_id, reason=lo.reason, start_ns=lo.set_at_ns, expires_at_ns=lo.expires_at_ns)
        self.lockouts.append(span)
        self._open[lo.rule_id] = span

    def on_lockout_expired(self, event: LockoutExpired) -> None:
        """A lockout lapsed: remembered to name it in the next return to ACTIVE."""
        if self._mine(event.account_id):
            self._expired = event

    def on_denied(self, event: OrderDenied) -> None:
        """An order the gate denied: counted under the rule its reason names."""
        if not self._mine(event.account_id):
            return
        reason = event.reason
        if reason.startswith("account HALTED"):
            default = "HALTED"
        elif reason.startswith("account REDUCING"):
            default = "REDUCING"
        else:
            default = "gate"
        rule = rule_of(reason, default) or default
        tally = self.denials.get(rule)
        ts = event.ts_event_ns
        if tally is None:
            tally = self.denials[rule] = DenialTally(rule_id=rule, first_ns=ts)
        tally.count += 1
        tally.last_ns = ts
        if len(tally.examples) < _EXAMPLES:
            tally.examples.append((ts, reason))

    def on_fill(self, fill: OrderFilled) -> None:
        """A fill: kept in a short ring, read when a flatten is verified."""
        self._fills.append(fill)

    def on_flattened(self, event: RiskEvent) -> None:
        """A verified flatten or risk close: recorded with the fills between its start and now."""
        if not isinstance(event, AccountFlattened | PositionClosedByRisk) or not self._mine(event.account_id):
            return
        symbol = event.symbol if isinstance(event, PositionClosedByRisk) else None
        fills = tuple(
            FlattenFill(
                ts_ns=f.ts_event_ns,
                symbol=f.symbol,
                side=f.side.name,
                qty=f.qty,
                price=str(f.price),
                tag=f.tag,
            )
            for f in self._fills
            if event.started_ns <= f.ts_event_ns <= event.ts_ns
            and (symbol is None or f.symbol == symbol)
            and self._mine(f.account_id)
        )
        self.flattens.append(
            FlattenRecord(
                ts_ns=event.ts_ns,
                started_ns=event.started_ns,
                rule_id=rule_of(event.reason),
                reason=event.reason,
                symbol=symbol,
                attempts=event.attempts,
                fills=fills,
            )
        )

    # ------------------------------------------------------------------------------------------------ reading

    @property
    def denied(self) -> int:
        """Orders denied in all."""
        return sum(t.count for t in self.denials.values())

    def halts(self, states: tuple[str, ...] = ("HALTED",)) -> list[Halt]:
        """Each stretch the account spent in one of ``states`` (HALTED by default), in order; a stretch still in force
        at the end has ``end_ns`` ``None``. A change between two of ``states`` (HALTED -> REDUCING) starts a new
        stretch."""
        out: list[Halt] = []
        cur: StateChange | None = None
        for ch in self.timeline:
            if cur is not None:
                out.append(
                    Halt(state=cur.new, start_ns=cur.ts_ns, end_ns=ch.ts_ns, rule_id=cur.rule_id, reason=cur.reason)
                )
                cur = None
            if ch.new in states:
                cur = ch
        if cur is not None:
            out.append(Halt(state=cur.new, start_ns=cur.ts_ns, end_ns=None, rule_id=cur.rule_id, reason=cur.reason))
        return out

    def final_halt(self) -> Halt | None:
        """The HALTED stretch in force at the end of the record, or ``None`` when the account is not HALTED."""
        halts = self.halts()
        return halts[-1] if halts and halts[-1].end_ns is None else None

    def flattens_with_fills(self) -> list[FlattenRecord]:
        """The flattens that closed a position (the others found the account already flat)."""
        return [f for f in self.flattens if f.fills]

    def to_json_dict(self) -> dict[str, Any]:
        """The record, JSON-ready: ``state``, ``timeline``, ``lockouts``, ``orders_denied`` (count),
        ``denials`` (one per rule), ``flattens`` (every one), ``halts`` (``state``, ``start_ns``, ``end_ns``,
        ``rule_id``, ``reason``)."""
        return {
            "state": self.state,
            "timeline": [c.to_json_dict() for c in self.timeline],
            "lockouts": [s.to_json_dict() for s in self.lockouts],
            "orders_denied": self.denied,
            "denials": [t.to_json_dict() for t in self.denials.values()],
            "flattens": [f.to_json_dict() for f in self.flattens],
            "halts": [
                {"state": h.state, "start_ns": h.start_ns, "end_ns": h.end_ns, "rule_id": h.rule_id, "reason": h.reason}
                for h in self.halts()
            ],
        }


_LOCKOUT_PREFIX: Final = re.compile(r"lockout (R\d+) until \S+Z: ")
_HALTED_DENIAL: Final = re.compile(r"^account HALTED \((.*)\): only propdesk's own flatten and cancels pass$", re.S)


def plain_reason(reason: str) -> str:
    """A reason for display: the guard's ``lockout R11 until 2025-09-02T22:00:00Z: `` prefixes dropped wherever they
    stand (the rule is named in the rest or in its own column, and its expiry in CT), and the gate's HALTED denial
    ``account HALTED (<why>): only propdesk's own flatten and cancels pass`` shortened to ``account HALTED: <why>``."""
    text = _LOCKOUT_PREFIX.sub("", reason)
    m = _HALTED_DENIAL.match(text)
    return f"account HALTED: {m.group(1)}" if m else text
