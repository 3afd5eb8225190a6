"""The internal signal every alert format maps to, the settings of one hook, and the outcome every signal gets."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Final

from propdesk.api.webhooks.security import HOOK_ID_RE
from propdesk.core.errors import ConfigError
from propdesk.model.commands import Verdict
from propdesk.model.orders import OrderType
from propdesk.model.price import Price

__all__ = [
    "DEDUPE_WINDOW_NS",
    "MIN_PASSPHRASE_CHARS",
    "HookSettings",
    "Judgement",
    "Outcome",
    "Signal",
    "SignalAction",
    "SignalRejectedError",
]

DEDUPE_WINDOW_NS: Final = 24 * 3600 * 1_000_000_000
"""How long a dedupe key is remembered: 24 h in ns (issue 14)."""
MIN_PASSPHRASE_CHARS: Final = 12
"""The shortest passphrase a hook accepts."""


class SignalAction(StrEnum):
    """What the alert asks for: ``buy``/``sell`` (contracts, or towards ``target_position``), ``exit`` (close the
    position in the contract and cancel its working orders), ``cancel`` (cancel its working orders only)."""

    BUY = "buy"
    SELL = "sell"
    EXIT = "exit"
    CANCEL = "cancel"


class Outcome(StrEnum):
    """The named outcome of a signal, stored and pushed with it.

    ``executed``: the Desk accepted its commands. ``duplicate``: its dedupe key was seen in the last 24 h.
    ``stale``: ``sent_at`` is older than the hook's window (or that far in the future). ``price_drift``: the alert's
    price is more than the hook's ``max_drift_ticks`` from the market. ``symbol_not_allowed``: the ticker names no
    known contract, one the hook does not allow, or one the remap cannot reach in whole contracts.
    ``outside_session``: the market is closed and the signal would open or add (exits and cancels still pass).
    ``denied``: a risk rule or the trading state refused it (``rule_id`` says which). ``rate_limited``: the hook's
    token bucket is empty. ``invalid``: the body is not a known alert format, or asks for something propdesk refuses
    rather than ignores (a percent stop, a risk-percentage size).
    """

    EXECUTED = "executed"
    DUPLICATE = "duplicate"
    STALE = "stale"
    PRICE_DRIFT = "price_drift"
    SYMBOL_NOT_ALLOWED = "symbol_not_allowed"
    OUTSIDE_SESSION = "outside_session"
    DENIED = "denied"
    RATE_LIMITED = "rate_limited"
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class Judgement:
    """A signal's outcome with a sentence for a person (never a secret) and, for ``denied``, the rule id."""

    outcome: Outcome
    reason: str = ""
    rule_id: str = ""

    @classmethod
    def of_verdict(cls, verdict: Verdict) -> Judgement:
        """``executed`` for an accepted verdict, else ``denied`` with the verdict's rule id and reason."""
        if verdict.accepted:
            return cls(Outcome.EXECUTED)
        return cls(Outcome.DENIED, verdict.reason, verdict.rule_id)


class SignalRejectedError(Exception):
    """Raised while parsing or resolving an alert: the judgement it ends with (``invalid``, ``symbol_not_allowed``)."""

    def __init__(self, judgement: Judgement) -> None:
        super().__init__(judgement.reason)
        self.judgement = judgement


@dataclass(frozen=True, slots=True, kw_only=True)
class HookSettings:
    """One webhook: where its signals go and what it accepts.

    Attributes:
        hook_id: 32 hex digits (128 random bits, :func:`~propdesk.api.webhooks.security.new_hook_id`).
        account_id: the account its commands are for.
        passphrase: compared in constant time with the body's ``passphrase`` (``token`` for PickMyTrade alerts).
        hmac_secret: when set, the signature header is required (:mod:`~propdesk.api.webhooks.security`).
        allowed_roots: the roots its signals may trade (after remapping), e.g. ``{"MES"}``.
        remap: root -> root the alert's contract is traded as (``{"ES": "MES"}``), quantity scaled by the ratio of
            point values (whole contracts only).
        max_age_s: a signal whose ``sent_at`` is older (or this far ahead) is ``stale``; seconds.
        max_drift_ticks: the alert's price may be at most this many ticks from the market (``None``: unchecked).
        rate_per_minute / burst: its token bucket.
        tag: the attribution tag of its orders.

    Raises:
        ConfigError: a malformed hook id, a passphrase under :data:`MIN_PASSPHRASE_CHARS` characters, a window, drift,
            rate or burst out of range (all problems named at once).
    """

    hook_id: str
    account_id: int
    passphrase: str = field(repr=False)
    hmac_secret: str | None = field(default=None, repr=False)
    allowed_roots: frozenset[str]
    remap: tuple[tuple[str, str], ...] = ()
    max_age_s: float = 30.0
    max_drift_ticks: int | None = 20
    rate_per_minute: int = 30
    burst: int = 5
    tag: str = "webhook"

    def __post_init__(self) -> None:
        problems = []
        if not HOOK_ID_RE.match(self.hook_id):
            problems.append("hook_id must be 32 lower-case hex digits (128 random bits)")
        if len(self.passphrase) < MIN_PASSPHRASE_CHARS:
            problems.append(f"passphrase must have at least {MIN_PASSPHRASE_CHARS} characters")
        if not self.max_age_s > 0:
            problems.append(f"max_age_s must be positive, not {self.max_age_s}")
        if self.max_drift_ticks is not None and self.max_drift_ticks < 0:
            problems.append(f"max_drift_ticks must be 0 or more, not {self.max_drift_ticks}")
        if self.rate_per_minute < 1 or self.burst < 1:
            problems.append(f"rate_per_minute ({self.rate_per_minute}) and burst ({self.burst}) must be at least 1")
        if problems:
            raise ConfigError(f"webhook {self.hook_id[:8]}...: " + "; ".join(problems))

    def remap_of(self, root: str) -> str:
        """The root ``root`` is traded as (itself when not remapped)."""
        return dict(self.remap).get(root, root)


@dataclass(frozen=True, slots=True, kw_only=True)
class Signal:
    """One alert in propdesk's terms, resolved to a listed contract.

    Attributes:
        hook_id: the hook it came through. source: the alert format (``propdesk``, ``traderspost``,
            ``pickmytrade``). ticker: as sent (``ES1!``).
        symbol: the listed contract traded (``MESZ5``). root: its root (``MES``).
        action: :class:`SignalAction`.
        qty: contracts to buy or sell (> 0), or to close for a partial exit; ``None``: all (exit) or not given.
        target_position: the signed position (contracts, + long, - short) the account should end with in
            ``symbol``, or ``None``. When set, a repeated or missed alert converges instead of compounding.
        order_type: MARKET or LIMIT. limit_price: points, for LIMIT.
        price: the price the alert saw (points, on the contract's tick or not), for the drift check.
        stop_loss_ticks / take_profit_ticks: the bracket around the entry, ticks from its fill.
        sent_at_ns: when the sender says it sent the alert (UTC ns), or ``None``.
        received_ns: when propdesk received it (UTC ns).
        dedupe_key: the sender's id or a digest of the body (hex), remembered 24 h.
        tag: the attribution tag of its orders: the hook's, or ``<hook tag>:<alert tag>`` (a sender never chooses
            a tag of its own, such as the risk enforcer's ``risk``).
    """

    hook_id: str
    source: str
    ticker: str
    symbol: str
    root: str
    action: SignalAction
    qty: int | None
    target_position: int | None = None
    order_type: OrderType = OrderType.MARKET
    limit_price: Price | None = None
    price: Decimal | None = None
    stop_loss_ticks: int | None = None
    take_profit_ticks: int | None = None
    sent_at_ns: int | None = None
    received_ns: int
    dedupe_key: str
    tag: str = "webhook"

    def reduces_only(self, position: int) -> bool:
        """True when the signal can only reduce exposure from ``position`` (signed contracts): a cancel, an exit, a
        target nearer to zero on the same side, or a buy/sell of at most the opposite position."""
        if self.action in (SignalAction.EXIT, SignalAction.CANCEL):
            return True
        if self.target_position is not None:
            t = self.target_position
            return t == 0 or (t * position > 0 and abs(t) <= abs(position))
        qty = self.qty or 0
        if self.action is SignalAction.BUY:
            return position < 0 and qty <= -position
        return position > 0 and qty <= position
