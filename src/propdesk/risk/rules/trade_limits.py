"""R8 max trades per day / week and R15 excessive contracts per day.

Source: ``../shared/specs/risk-rules.md`` section 5 (R8, R15) and section 3.5 (every fill row counts as a trade).
R8 mirrors the TopstepX Trade Limits: reduce-only at the limit, never liquidates
(https://help.topstep.com/en/articles/10470162; https://help.topstepx.com/settings/risk-settings/trade-limits).
R15: https://help.futures.topstep.com/hc/en-us/articles/4456230880147 (200 contracts/day reviewed; policy, not a rule).
"""

from __future__ import annotations

from pydantic import Field, model_validator

from propdesk.model.orders import Order
from propdesk.risk.decisions import ALLOW, Action, Decision, EvalPoint
from propdesk.risk.rules.base import AccountView, Rule, RuleParams
from propdesk.risk.rules.common import is_opening


class TradeLimitsParams(RuleParams):
    """R8 parameters: ``max_per_day`` / ``max_per_week`` fills (``None`` = no limit; at least one is set)."""

    max_per_day: int | None = Field(default=None, gt=0)
    max_per_week: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_set(self) -> TradeLimitsParams:
        if self.max_per_day is None and self.max_per_week is None:
            raise ValueError("set max_per_day, max_per_week or both")
        return self


class TradeLimitsRule(Rule):
    """R8: at ``trades_today >= max_per_day`` (or the week's count at ``max_per_week``) REDUCE_ONLY; PRE DENY opening
    orders. Never FLATTEN or LOCKOUT: open positions are kept (stops, targets and closes still pass).

    The daily reduce-only ends at ``view.next_day_start_ns``; the weekly one when the weekly count resets (no expiry
    on the decision, the count says when).
    """

    rule_id = "R8"
    params_cls = TradeLimitsParams
    points = frozenset({EvalPoint.PRE, EvalPoint.FILL})

    def __init__(self, params: TradeLimitsParams, *, firm: bool = False) -> None:
        super().__init__(params, firm=firm)
        self.p = params

    def _reached(self, view: AccountView) -> tuple[str, int | None] | None:
        if self.p.max_per_week is not None and view.trades_week >= self.p.max_per_week:
            return f"{view.trades_week} trades this week reached the weekly limit of {self.p.max_per_week}", None
        if self.p.max_per_day is not None and view.trades_today >= self.p.max_per_day:
            return (
                f"{view.trades_today} trades today reached the daily limit of {self.p.max_per_day}",
                view.next_day_start_ns,
            )
        return None

    def evaluate(self, view: AccountView, point: EvalPoint) -> Decision:
        """REDUCE_ONLY once a trade count reaches its limit."""
        hit = self._reached(view)
        if hit is None:
            return ALLOW
        text, until = hit
        return self.decision(Action.REDUCE_ONLY, f"{text}; reduce-only, open positions are kept", until_ns=until)

    def check_order(self, view: AccountView, order: Order) -> Decision:
        """DENY an opening order once a trade count reached its limit."""
        hit = self._reached(view)
        if hit is None or not is_opening(view, order):
            return ALLOW
        return self.decision(Action.DENY, f"{hit[0]}; only reducing orders", symbol=order.symbol)

    def describe(self) -> str:
        """One line: the limits."""
        return f"R8 max trades: {self.p.max_per_day}/day, {self.p.max_per_week}/week"


class ExcessiveContractsParams(RuleParams):
    """R15 parameters: ``warn`` (optional) and ``block`` contracts per day (spec 150 / 200), ``warn`` < ``block``."""

    warn: int | None = Field(default=None, gt=0)
    block: int = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> ExcessiveContractsParams:
        if self.warn is not None and self.warn >= self.block:
            raise ValueError(f"warn ({self.warn}) must be below block ({self.block})")
        return self


class ExcessiveContractsRule(Rule):
    """R15: ``contracts_today`` (raw contracts filled since day start) >= ``block`` ⇒ REDUCE_ONLY until the next day;
    >= ``warn`` (when set) ⇒ WARN (``used_fraction`` = contracts / block). PRE: DENY an opening order that would pass
    ``block``.
    """

    rule_id = "R15"
    params_cls = ExcessiveContractsParams
    points = frozenset({EvalPoint.PRE, EvalPoint.FILL})

    def __init__(self, params: ExcessiveContractsParams, *, firm: bool = True) -> None:
        super().__init__(params, firm=firm)
        self.p = params

    def evaluate(self, view: AccountView, point: EvalPoint) -> Decision:
        """WARN at ``warn``, REDUCE_ONLY at ``block``."""
        n = view.contracts_today
        frac = n / self.p.block
        if n >= self.p.block:
            return self.decision(
                Action.REDUCE_ONLY,
                f"{n} contracts traded today reached the {self.p.block}-contract daily block; reduce-only",
                until_ns=view.next_day_start_ns,
                used_fraction=frac,
            )
        if self.p.warn is not None and n >= self.p.warn:
            return self.decision(
                Action.WARN,
                f"{n} contracts traded today ({self.p.warn} warns, {self.p.block} blocks)",
                used_fraction=frac,
            )
        return ALLOW

    def check_order(self, view: AccountView, order: Order) -> Decision:
        """DENY an opening order that would take today's contracts past ``block``."""
        n = view.contracts_today
        if n + order.qty <= self.p.block or not is_opening(view, order):
            return ALLOW
        return self.decision(
            Action.DENY,
            f"{order.qty} more contracts would make {n + order.qty} today, past the {self.p.block}-contract block",
            symbol=order.symbol,
        )

    def describe(self) -> str:
        """One line: warn and block levels."""
        return f"R15 contracts per day: warn {self.p.warn}, block {self.p.block}"
