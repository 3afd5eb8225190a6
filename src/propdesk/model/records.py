"""The records storage keeps and risk produces: lockouts, audit entries and account snapshots.

* :class:`Lockout`: which rule locked which account, why, since when and until when (risk-rules.md section 7.5);
  :func:`stricter` picks the one of two lockouts that holds longer; :class:`LockoutStoreError` is raised by a
  lockout store that cannot be read or written (the account guard goes HALTED, section 7.6).
* :class:`AuditEntry`: one risk decision or enforcement step with its inputs (risk-rules.md sections 7.2 and 7.4);
  :func:`scrub` drops credential-like keys from its inputs (section 8).
* :class:`AccountSnapshot`: what the journal persists of the risk engine's account state (section 3.3).

They are plain frozen dataclasses so the risk engine (``risk/``) and the journal (``storage/``) share them without
either importing the other. Money is exact (:class:`~propdesk.model.price.Money`, integer cents); times are UTC ns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from propdesk.core.errors import PropdeskError
from propdesk.model.identifiers import AccountId
from propdesk.model.price import Money

__all__ = ["AccountSnapshot", "AuditEntry", "Lockout", "LockoutStoreError", "scrub", "stricter"]

_SECRET_WORDS = ("token", "secret", "password", "passwd", "api_key", "apikey", "authorization", "jwt", "credential")


class LockoutStoreError(PropdeskError):
    """The lockout store cannot be read or written (the account guard goes HALTED on a read failure).

    Attributes:
        path: the file concerned, or ``None`` for a non-file store.
        reason: what went wrong.
    """

    def __init__(self, reason: str, *, path: str | Path | None = None) -> None:
        self.reason = reason
        self.path = None if path is None else Path(path)
        super().__init__(f"{self.path}: {reason}" if self.path is not None else reason)


@dataclass(frozen=True, slots=True, kw_only=True)
class Lockout:
    """One lockout of one account.

    Attributes:
        account: the broker account.
        rule_id: the rule that set it (``R1`` ... ``R16``, a personal rule's id, or ``broker_lockout``).
        reason: the rule's reason, with its numbers.
        set_at_ns: when it was set, UTC ns.
        expires_at_ns: when it lifts, UTC ns (normally the next ``day_start``, 17:00 CT); ``None``: never (FAILED).
        firm: True when a firm rule set it (a personal rule never weakens a firm lockout).
    """

    account: AccountId
    rule_id: str
    reason: str
    set_at_ns: int
    expires_at_ns: int | None
    firm: bool = False

    def active_at(self, ts_ns: int) -> bool:
        """True while the lockout holds at ``ts_ns`` (UTC ns): no expiry, or ``ts_ns`` before the expiry."""
        return self.expires_at_ns is None or ts_ns < self.expires_at_ns

    @property
    def key(self) -> tuple[AccountId, str]:
        """``(account, rule_id)``: a store keeps one lockout per key."""
        return (self.account, self.rule_id)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (ints and strings only)."""
        return {
            "account": int(self.account),
            "rule_id": self.rule_id,
            "reason": self.reason,
            "set_at_ns": self.set_at_ns,
            "expires_at_ns": self.expires_at_ns,
            "firm": self.firm,
        }

    @classmethod
    def from_dict(cls, d: object) -> Lockout:
        """Parse :meth:`to_dict` output.

        Raises:
            ValueError: a missing field or a field of the wrong type (the message names it).
        """
        if not isinstance(d, dict):
            raise ValueError(f"a lockout must be an object, got {type(d).__name__}")

        def need(name: str, kind: type | tuple[type, ...]) -> Any:
            if name not in d:
                raise ValueError(f"lockout field {name!r} is missing")
            v = d[name]
            if isinstance(v, bool) or not isinstance(v, kind):
                raise ValueError(f"lockout field {name!r} has the wrong type ({type(v).__name__})")
            return v

        expires = d.get("expires_at_ns")
        if expires is not None and (isinstance(expires, bool) or not isinstance(expires, int)):
            raise ValueError(f"lockout field 'expires_at_ns' has the wrong type ({type(expires).__name__})")
        firm = d.get("firm", False)
        if not isinstance(firm, bool):
            raise ValueError(f"lockout field 'firm' has the wrong type ({type(firm).__name__})")
        return cls(
            account=AccountId(need("account", int)),
            rule_id=need("rule_id", str),
            reason=need("reason", str),
            set_at_ns=need("set_at_ns", int),
            expires_at_ns=expires,
            firm=firm,
        )


def stricter(a: Lockout, b: Lockout) -> Lockout:
    """Of two lockouts of the same key, the one that holds longer (no expiry beats any; ties keep ``a``)."""
    if a.expires_at_ns is None:
        return a
    if b.expires_at_ns is None:
        return b
    return b if b.expires_at_ns > a.expires_at_ns else a


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    """One audit record (see the module docstring).

    Attributes:
        ts_ns: when, UTC ns (the node's clock).
        account: the broker account.
        point: ``pre``, ``fill``, ``quote``, ``clock``, ``enforce``, ``state``, ``lockout``, ``connection``, ``store``.
        action: the verdict's action name (``ALLOW``, ``DENY``, ``FLATTEN`` ...), or the enforcement command.
        state: the account's trading state name at the time (``ACTIVE``, ``REDUCING``, ``HALTED``).
        reasons: rule ids and reasons (``"R3: day net -510.00 <= -500.00"``), or the step's result.
        inputs: JSON-ready inputs (see :func:`view_inputs`), secrets removed.
        step: the enforcement step (``persist``, ``cancel_all``, ``close_position``, ``verify``, ``retry``,
            ``fallback_order``, ``cancel_opening``), empty for a decision.
    """

    ts_ns: int
    account: AccountId
    point: str
    action: str
    state: str
    reasons: tuple[str, ...] = ()
    inputs: Mapping[str, Any] = field(default_factory=dict)
    step: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ``{"ts_ns", "account", "point", "step", "verdict": {"action", "state", "reasons"},
        "inputs"}``."""
        return {
            "ts_ns": self.ts_ns,
            "account": int(self.account),
            "point": self.point,
            "step": self.step,
            "verdict": {"action": self.action, "state": self.state, "reasons": list(self.reasons)},
            "inputs": scrub(self.inputs),
        }


def scrub(value: Any) -> Any:
    """``value`` with every mapping key that looks like a credential (token, secret, password, api key, JWT ...)
    removed, recursively; other values are returned as they are."""
    if isinstance(value, Mapping):
        return {k: scrub(v) for k, v in value.items() if not any(w in str(k).lower() for w in _SECRET_WORDS)}
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountSnapshot:
    """What the journal persists of an :class:`AccountState` (risk-rules.md section 3.3), USD exact, times UTC ns.

    Attributes:
        trading_date: the trading day the figures belong to.
        balance: realized balance (start + realized PnL net of fees).
        sod_balance: the balance at the day's start.
        day_realized_gross, day_fees: today's realized PnL before fees, and today's fees.
        day_peak_realized, day_peak_equity: today's running highs of balance and equity.
        mll_peak: the balance high the MLL floor trails (``None``: floor unknown).
        eod_balances: ``(trading date, balance at rollover)`` per closed day, oldest first.
        daily_net_history: ``(trading date, realized day PnL net of fees)`` per closed day, oldest first.
        trades_today, trades_week, contracts_today: fill rows and contracts counted (section 3.5).
        week_start_ns: when the counted week started.
        consecutive_losses: losing round trips in a row today; last_loss_ts_ns: when the last one ended.
        open_round_trips: ``(symbol, result so far)`` of round trips not yet flat.
    """

    trading_date: date
    balance: Money
    sod_balance: Money
    day_realized_gross: Money
    day_fees: Money
    day_peak_realized: Money
    day_peak_equity: Money
    mll_peak: Money | None
    eod_balances: tuple[tuple[date, Money], ...] = ()
    daily_net_history: tuple[tuple[date, Money], ...] = ()
    trades_today: int = 0
    trades_week: int = 0
    contracts_today: int = 0
    week_start_ns: int = 0
    consecutive_losses: int = 0
    last_loss_ts_ns: int | None = None
    open_round_trips: tuple[tuple[str, Money], ...] = field(default=())
