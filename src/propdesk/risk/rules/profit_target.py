"""R4: the personal daily profit target (mirrors the TopstepX Personal Daily Profit Target).

Source: ``../shared/specs/risk-rules.md`` section 5 (R4; R16 ``cap_r4``); https://help.topstep.com/en/articles/9823693
(net PnL, "updated in real-time"); actions as R3 (https://help.topstep.com/en/articles/9772296). Example: a $200
target is hit at a $205 day net.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field

from propdesk.model.price import Money
from propdesk.risk.decisions import ALLOW, Action, Decision, EvalPoint
from propdesk.risk.rules.base import AccountView, Rule, RuleParams
from propdesk.risk.rules.common import LimitAction, NonNegUSD, PosUSD, WarnPct, fmt_usd, money_fraction
from propdesk.risk.rules.consistency import consistency_cap, prior_days


class ProfitTargetParams(RuleParams):
    """R4 parameters.

    Attributes:
        target: the day's profit target in USD (net of fees, realized + unrealized).
        action: do_nothing (WARN), liquidate (FLATTEN), liquidate_and_block (FLATTEN + LOCKOUT).
        trigger_buffer_usd: act this many USD before the target.
        warn_pct: percentages of the target reached at which to warn.
        max_best_day_pct: R16 ``cap_r4``: when set, the target is min(target, p x prior_total / (1 - p)).
    """

    target: PosUSD
    action: LimitAction = LimitAction.LIQUIDATE_AND_BLOCK
    trigger_buffer_usd: NonNegUSD = Money(0)
    warn_pct: WarnPct = ()
    max_best_day_pct: Decimal | None = Field(default=None, gt=0, lt=1)


class ProfitTargetRule(Rule):
    """R4: at ``day_net >= target - buffer`` apply ``action``; WARN at each ``warn_pct`` of the target reached.

    The effective target is capped by the consistency limit when ``max_best_day_pct`` is set (and the prior days'
    total is positive).
    """

    rule_id = "R4"
    params_cls = ProfitTargetParams
    points = frozenset({EvalPoint.QUOTE, EvalPoint.FILL})

    def __init__(self, params: ProfitTargetParams, *, firm: bool = False) -> None:
        super().__init__(params, firm=firm)
        self.p = params
        self._min_warn = min(params.warn_pct) if params.warn_pct else None

    def target(self, view: AccountView) -> tuple[Money, bool]:
        """The effective target in USD and whether the consistency cap set it."""
        if self.p.max_best_day_pct is not None:
            cap = consistency_cap(prior_days(view), self.p.max_best_day_pct)
            if cap is not None and cap < self.p.target:
                return cap, True
        return self.p.target, False

    def evaluate(self, view: AccountView, point: EvalPoint) -> Decision:
        """The day's net PnL against the target."""
        if self.p.max_best_day_pct is None:  # fast path (integer cents): uncapped target not reached, no warning
            n_c, t_c = view.day_net.cents, self.p.target.cents
            if n_c < t_c - self.p.trigger_buffer_usd.cents and (
                self._min_warn is None or n_c * 100 < self._min_warn * t_c
            ):
                return ALLOW
        target, capped = self.target(view)
        net = view.day_net
        what = f"the {fmt_usd(target)} daily profit target" + (" (capped by the consistency rule)" if capped else "")
        frac = money_fraction(net, target)
        if net >= target - self.p.trigger_buffer_usd:
            act = self.p.action
            tail = {
                LimitAction.DO_NOTHING: "notify only",
                LimitAction.LIQUIDATE: "flatten; reduce-only for the rest of the day",
                LimitAction.LIQUIDATE_AND_BLOCK: "flatten and lock out until the next trading day",
            }[act]
            return self.decision(
                act.action,
                f"day net {fmt_usd(net)} reached {what} (buffer {fmt_usd(self.p.trigger_buffer_usd)}); {tail}",
                until_ns=view.next_day_start_ns if act is LimitAction.LIQUIDATE_AND_BLOCK else None,
                used_fraction=frac if act is LimitAction.DO_NOTHING else None,
            )
        hit = [w for w in self.p.warn_pct if net.cents * 100 >= w * target.cents]
        if hit:
            return self.decision(
                Action.WARN, f"day net {fmt_usd(net)}: {max(hit)}% of {what} reached", used_fraction=frac
            )
        return ALLOW

    def describe(self) -> str:
        """One line: target and action."""
        return f"R4 daily profit target {fmt_usd(self.p.target)} ({self.p.action.value})"
