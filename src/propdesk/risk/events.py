"""Risk events: what the account guard, the enforcer and the lockout book publish on the bus (``events.risk.*``).

Every event is a frozen, keyword-only dataclass with the account, a UTC ns timestamp (the node's clock) and a
``topic`` property. They are rare (a breach, a state change, a flatten), so building them is off the hot path; the
enforcer publishes them *after* the cancel and close commands have left for the broker (ARCHITECTURE.md, "A fill
that breaks a rule": the close order leaves well under a millisecond after the fill).

Topics:

========================================  =======================================================================
``events.risk.rule_breached``             :class:`RuleBreached`: a rule newly asks for REDUCE_ONLY or more
``events.risk.rule_warned``               :class:`RuleWarned`: a rule newly warns (WARN)
``events.risk.trading_state_changed``     :class:`TradingStateChanged`: ACTIVE / REDUCING / HALTED changed
``events.risk.account_flattened``         :class:`AccountFlattened`: verified flat after a flatten
``events.risk.position_closed``           :class:`PositionClosedByRisk`: one contract verified closed
``events.risk.flatten_retry``             :class:`FlattenRetry`: not flat yet; commands re-sent (an alert)
``events.risk.lockout_set``               :class:`LockoutSet`: a lockout recorded (persisted first)
``events.risk.lockout_expired``           :class:`LockoutExpired`: a lockout reached its expiry and was lifted
``events.risk.decision_logged``           :class:`RiskDecisionLogged`: an audit entry (see :mod:`.audit`)
========================================  =======================================================================

Source: ``../shared/specs/risk-rules.md`` sections 5 and 7; names follow ARCHITECTURE.md ("Naming").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Final

from propdesk.core import topics
from propdesk.model.identifiers import AccountId
from propdesk.risk.decisions import Action, Decision, EvalPoint, TradingState

if TYPE_CHECKING:
    from propdesk.model.records import AuditEntry, Lockout

__all__ = [
    "RISK_TOPICS",
    "AccountFlattened",
    "FlattenRetry",
    "LockoutExpired",
    "LockoutSet",
    "PositionClosedByRisk",
    "RiskDecisionLogged",
    "RiskEvent",
    "RuleBreached",
    "RuleWarned",
    "TradingStateChanged",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskEvent:
    """Base of every risk event: ``account_id`` and ``ts_ns`` (UTC ns, the node's clock)."""

    TOPIC: ClassVar[str] = topics.RISK_EVENT

    account_id: AccountId
    ts_ns: int

    @property
    def topic(self) -> str:
        """The bus topic of this event (``events.risk.<name>``)."""
        return self.TOPIC


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleBreached(RiskEvent):
    """A rule newly asks for REDUCE_ONLY, CLOSE_POSITION, FLATTEN or LOCKOUT.

    Attributes:
        point: where it was evaluated (FILL, QUOTE, CLOCK).
        decision: the rule's decision (rule id, action, reason with the numbers, symbol, lockout expiry).
        state: the account's trading state after the breach.
    """

    TOPIC: ClassVar[str] = topics.RISK_RULE_BREACHED

    point: EvalPoint
    decision: Decision
    state: TradingState

    @property
    def rule_id(self) -> str:
        """The breached rule's id."""
        return self.decision.rule_id

    @property
    def action(self) -> Action:
        """What the rule asked for."""
        return self.decision.action


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleWarned(RiskEvent):
    """A rule newly warns (notify only): ``decision.used_fraction`` says how much of the limit is used."""

    TOPIC: ClassVar[str] = topics.RISK_RULE_WARNED

    point: EvalPoint
    decision: Decision


@dataclass(frozen=True, slots=True, kw_only=True)
class TradingStateChanged(RiskEvent):
    """The account's trading state changed from ``old`` to ``new``; ``reasons`` says why (rule ids, fail-closed
    conditions, lockouts), most restrictive first."""

    TOPIC: ClassVar[str] = topics.RISK_TRADING_STATE_CHANGED

    old: TradingState
    new: TradingState
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountFlattened(RiskEvent):
    """The account was verified flat (no position, no open order) after a flatten.

    Attributes:
        reason: why the flatten was started.
        started_ns: when it was started (UTC ns).
        attempts: command rounds sent (1 = the first round was enough).
    """

    TOPIC: ClassVar[str] = topics.RISK_ACCOUNT_FLATTENED

    reason: str
    started_ns: int
    attempts: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionClosedByRisk(RiskEvent):
    """A CLOSE_POSITION (or a partial close of an excess) was verified done for ``symbol``."""

    TOPIC: ClassVar[str] = topics.RISK_POSITION_CLOSED

    symbol: str
    reason: str
    started_ns: int
    attempts: int


@dataclass(frozen=True, slots=True, kw_only=True)
class FlattenRetry(RiskEvent):
    """A flatten or close was not verified done; the commands were sent again (an alert: something is stuck).

    Attributes:
        symbol: the contract of a CLOSE_POSITION job, ``None`` for an account flatten.
        attempt: the command round just sent (2 = first retry).
        positions: signed contracts still open, by symbol.
        open_orders: client order ids still open.
        next_retry_ns: when the next check is due (UTC ns).
        fallback: True when opposite market orders were sent as well (risk-rules.md section 7.4 step 3).
    """

    TOPIC: ClassVar[str] = topics.RISK_FLATTEN_RETRY

    symbol: str | None
    reason: str
    attempt: int
    positions: tuple[tuple[str, int], ...]
    open_orders: tuple[str, ...]
    next_retry_ns: int
    fallback: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class LockoutSet(RiskEvent):
    """A lockout was recorded; the enforcer persisted it before the flatten started (risk-rules.md section 7.5; a
    failed write is logged critically and audited under step ``persist``)."""

    TOPIC: ClassVar[str] = topics.RISK_LOCKOUT_SET

    lockout: Lockout


@dataclass(frozen=True, slots=True, kw_only=True)
class LockoutExpired(RiskEvent):
    """A lockout reached ``expires_at_ns`` and was lifted (and cleared from the store)."""

    TOPIC: ClassVar[str] = topics.RISK_LOCKOUT_EXPIRED

    lockout: Lockout


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskDecisionLogged(RiskEvent):
    """An audit entry, as written to the audit log (published only when the audit log is given a bus)."""

    TOPIC: ClassVar[str] = topics.RISK_DECISION_LOGGED

    entry: AuditEntry


RISK_TOPICS: Final[tuple[str, ...]] = tuple(
    cls.TOPIC
    for cls in (
        RuleBreached,
        RuleWarned,
        TradingStateChanged,
        AccountFlattened,
        PositionClosedByRisk,
        FlattenRetry,
        LockoutSet,
        LockoutExpired,
        RiskDecisionLogged,
    )
)
"""Every topic a risk event is published on."""
