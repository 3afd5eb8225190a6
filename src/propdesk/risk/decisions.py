"""Risk decisions, trading states and how decisions combine.

Every rule returns a :class:`Decision`; the account acts on the most restrictive one (``../shared/specs/
risk-rules.md`` section 7.1: HALTED > REDUCING > ACTIVE, and the latest lockout expiry among active lockouts).
Actions follow the spec's section 5 table: WARN, DENY, REDUCE_ONLY, CLOSE_POSITION, FLATTEN, LOCKOUT.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum, IntEnum


class TradingState(IntEnum):
    """An account's trading state, ordered by restrictiveness (a larger value is more restrictive).

    ACTIVE: every order subject to the pre-trade rules. REDUCING: only orders that reduce exposure, and cancels;
    working opening orders are canceled. HALTED: flat and locked; only propdesk's own flatten and cancels.
    Source: risk-rules.md section 7.1; the names follow NautilusTrader's TradingState.
    """

    ACTIVE = 0
    REDUCING = 1
    HALTED = 2


class Action(IntEnum):
    """What a rule asks for, ordered by severity (a larger value is more severe)."""

    ALLOW = 0
    WARN = 1
    DENY = 2
    """Refuse the order under evaluation (pre-trade only); nothing else changes."""
    REDUCE_ONLY = 3
    """Account to REDUCING: only reducing orders pass; working opening orders are canceled."""
    CLOSE_POSITION = 4
    """Cancel the working orders of ``symbol`` and close that one position at market."""
    FLATTEN = 5
    """Cancel every working order and close every position; the account stays REDUCING for the day."""
    LOCKOUT = 6
    """FLATTEN, then HALTED until ``until_ns`` (``None``: until an operator resets the account: FAILED)."""


class EvalPoint(Enum):
    """Where in the flow a rule is evaluated (risk-rules.md section 5)."""

    PRE = "pre"
    FILL = "fill"
    QUOTE = "quote"
    CLOCK = "clock"


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """One rule's verdict.

    Attributes:
        rule_id: the rule (``R1`` ... ``R16``, or a personal rule's id).
        action: what the rule asks for.
        reason: a sentence a trader understands, with the numbers (USD, contracts, times).
        symbol: the contract concerned (CLOSE_POSITION, per-symbol DENY), else ``None``.
        qty: with CLOSE_POSITION, the contracts of ``symbol`` to close (an excess over a limit, R5/R7: only the
            contract's opening orders are canceled and the rest of the position stays); ``None`` closes the whole
            position and cancels every working order of the contract.
        until_ns: lockout or reduce-only expiry (UTC ns); ``None`` with LOCKOUT means no expiry (FAILED).
        used_fraction: for WARN, the fraction of the limit used (0.0-1.0+), else ``None``.
        firm: True for a firm rule (a personal rule never weakens a firm lockout).
    """

    rule_id: str
    action: Action
    reason: str = ""
    symbol: str | None = None
    qty: int | None = None
    until_ns: int | None = None
    used_fraction: float | None = None
    firm: bool = False

    @property
    def state(self) -> TradingState:
        """The trading state this decision implies for the account."""
        if self.action is Action.LOCKOUT:
            return TradingState.HALTED
        if self.action in (Action.REDUCE_ONLY, Action.FLATTEN):
            return TradingState.REDUCING
        return TradingState.ACTIVE


ALLOW = Decision(rule_id="", action=Action.ALLOW)
"""The decision of a rule with nothing to say."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """Decisions combined: the most restrictive action, the resulting state and every decision that matters.

    ``until_ns`` is the latest expiry among the LOCKOUT decisions (``None`` if any has no expiry, or if there is no
    lockout). ``decisions`` holds every non-ALLOW decision, most severe first.
    """

    action: Action
    state: TradingState
    until_ns: int | None
    decisions: tuple[Decision, ...] = field(default=())

    @property
    def allowed(self) -> bool:
        """True when nothing above WARN was decided."""
        return self.action <= Action.WARN

    @property
    def reasons(self) -> str:
        """Every rule id and reason, most severe first, joined with ``; ``."""
        return "; ".join(f"{d.rule_id}: {d.reason}" for d in self.decisions if d.action > Action.ALLOW)


def combine(decisions: Iterable[Decision]) -> Verdict:
    """The most restrictive of ``decisions`` (risk-rules.md section 7.1)."""
    kept = sorted((d for d in decisions if d.action > Action.ALLOW), key=lambda d: -d.action)
    if not kept:
        return Verdict(Action.ALLOW, TradingState.ACTIVE, None, ())
    action = kept[0].action
    state = max(d.state for d in kept)
    lockouts = [d for d in kept if d.action is Action.LOCKOUT]
    until: int | None = None
    if lockouts and all(d.until_ns is not None for d in lockouts):
        until = max(d.until_ns for d in lockouts if d.until_ns is not None)
    return Verdict(action, state, until, tuple(kept))
