"""R9: cooldown after a losing round trip, and the loss-streak lockout.

Source: ``../shared/specs/risk-rules.md`` section 5 (R9). A round trip ends when a contract's position returns to 0;
its result is Σ profitAndLoss - Σ fees of its fills (realized only, section 6). The account state counts them:
``view.consecutive_losses`` (reset by a winning round trip and at 17:00 CT) and ``view.last_loss_ts_ns``.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from propdesk.model.orders import Order
from propdesk.risk.decisions import ALLOW, Action, Decision, EvalPoint
from propdesk.risk.rules.base import AccountView, Rule, RuleParams
from propdesk.risk.rules.common import fmt_ct, is_opening

_NS_PER_MIN = 60_000_000_000


class CooldownParams(RuleParams):
    """R9 parameters: ``cooldown_min`` minutes of reduce-only after a losing round trip, ``max_consecutive_losses``
    losing round trips in a row before a lockout until the next trading day (either may be ``None``, not both)."""

    cooldown_min: int | None = Field(default=None, gt=0)
    max_consecutive_losses: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_set(self) -> CooldownParams:
        if self.cooldown_min is None and self.max_consecutive_losses is None:
            raise ValueError("set cooldown_min, max_consecutive_losses or both")
        return self


class CooldownRule(Rule):
    """R9: LOCKOUT until ``view.next_day_start_ns`` at ``max_consecutive_losses`` losses in a row; REDUCE_ONLY until
    ``last_loss_ts_ns + cooldown_min`` after a losing round trip (a CLOCK evaluation at or after that time ends it).
    PRE: DENY opening orders in either case.
    """

    rule_id = "R9"
    params_cls = CooldownParams
    points = frozenset({EvalPoint.PRE, EvalPoint.FILL, EvalPoint.CLOCK})

    def __init__(self, params: CooldownParams, *, firm: bool = False) -> None:
        super().__init__(params, firm=firm)
        self.p = params

    def cooldown_end_ns(self, view: AccountView) -> int | None:
        """When the current cooldown ends (UTC ns), or ``None`` if none is running at ``view.now_ns``."""
        if self.p.cooldown_min is None or view.last_loss_ts_ns is None:
            return None
        end = view.last_loss_ts_ns + self.p.cooldown_min * _NS_PER_MIN
        return end if view.now_ns < end else None

    def evaluate(self, view: AccountView, point: EvalPoint) -> Decision:
        """Lockout on the streak; reduce-only during the cooldown."""
        mx = self.p.max_consecutive_losses
        if mx is not None and view.consecutive_losses >= mx:
            return self.decision(
                Action.LOCKOUT,
                f"{view.consecutive_losses} losing round trips in a row reached the limit of {mx}; "
                "flatten and lock out until the next trading day",
                until_ns=view.next_day_start_ns,
            )
        end = self.cooldown_end_ns(view)
        if end is not None:
            return self.decision(
                Action.REDUCE_ONLY,
                f"cooldown of {self.p.cooldown_min} min after a losing round trip; reduce-only until {fmt_ct(end)}",
                until_ns=end,
            )
        return ALLOW

    def check_order(self, view: AccountView, order: Order) -> Decision:
        """DENY an opening order during the cooldown or after the loss streak."""
        d = self.evaluate(view, EvalPoint.PRE)
        if d.action is Action.ALLOW or not is_opening(view, order):
            return ALLOW
        return self.decision(Action.DENY, d.reason, symbol=order.symbol)

    def describe(self) -> str:
        """One line: cooldown and streak limit."""
        return (
            f"R9 cooldown {self.p.cooldown_min} min after a loss; lockout after {self.p.max_consecutive_losses} losses"
        )
