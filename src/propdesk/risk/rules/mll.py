"""R1: the Maximum Loss Limit (MLL) floor.

Source: ``../shared/specs/risk-rules.md`` section 5 (R1) and section 3.4; Topstep https://help.topstep.com/en/articles/
8284204. The floor itself (end-of-day trailing, locked at the start balance) is computed by the account state and read
from ``view.mll_floor``; this rule compares equity (realized balance + unrealized, net of fees) with it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from propdesk.model.orders import Order
from propdesk.model.price import Money
from propdesk.risk.decisions import ALLOW, Action, Decision, EvalPoint
from propdesk.risk.rules.base import AccountView, Rule, RuleParams
from propdesk.risk.rules.common import (
    NonNegUSD,
    PosUSD,
    WarnPct,
    fmt_usd,
    is_opening,
    money_fraction,
    order_risk,
)


class MllParams(RuleParams):
    """R1 parameters.

    Attributes:
        amount: the MLL amount in USD (Topstep 50K: $2,000); the distance the warnings measure.
        trigger_buffer_usd: act this many USD before the floor (preset: $100).
        warn_pct: percentages of ``amount`` used at which to warn (preset: 70, 85, 95).
        default_risk_ticks: ticks of risk assumed for an opening order with no stop attached.
        mode, lock_at_start: how the account state trails the floor (section 3.4: ``EOD``, ``INTRADAY_REALIZED``,
            ``INTRADAY_UNREALIZED``; lock at the start balance). Accepted here so the preset's ``mll`` table validates
            as one; this rule reads the resulting floor from ``view.mll_floor`` and shows the mode in
            :meth:`MllRule.describe`.
    """

    amount: PosUSD
    mode: Literal["EOD", "INTRADAY_REALIZED", "INTRADAY_UNREALIZED"] = "EOD"
    lock_at_start: bool = True
    trigger_buffer_usd: NonNegUSD = Money(0)
    warn_pct: WarnPct = ()
    default_risk_ticks: int = Field(gt=0)


class MllRule(Rule):
    """R1 MLL floor: PRE DENY; WARN at ``warn_pct``; FLATTEN + LOCKOUT at the buffer; FAILED at the floor.

    - ``mll_floor`` unknown: REDUCE_ONLY (and PRE DENY of opening orders) until the floor is seeded (section 3.4).
    - ``equity <= floor``: real breach, LOCKOUT with ``until_ns=None`` (FAILED: no expiry).
    - ``equity <= floor + buffer``: LOCKOUT until ``view.next_day_start_ns`` (flatten first).
    - used fraction ``(amount - (equity - floor)) / amount`` >= a ``warn_pct``: WARN.
    - PRE: DENY an opening order if ``equity - order_risk <= floor + buffer``.
    """

    rule_id = "R1"
    params_cls = MllParams
    points = frozenset({EvalPoint.PRE, EvalPoint.QUOTE, EvalPoint.FILL, EvalPoint.CLOCK})

    def __init__(self, params: MllParams, *, firm: bool = True) -> None:
        super().__init__(params, firm=firm)
        self.p = params
        self._min_warn = min(params.warn_pct) if params.warn_pct else None

    def evaluate(self, view: AccountView, point: EvalPoint) -> Decision:
        """The account against the floor now."""
        floor = view.mll_floor
        if floor is None:
            return self.decision(Action.REDUCE_ONLY, "the MLL floor is unknown; reduce-only until it is entered")
        equity, buf = view.equity, self.p.trigger_buffer_usd
        e_c, f_c, amount_c = equity.cents, floor.cents, self.p.amount.cents
        if e_c > f_c + buf.cents and (
            self._min_warn is None or (amount_c - (e_c - f_c)) * 100 < self._min_warn * amount_c
        ):
            return ALLOW  # fast path (integer cents): no breach, no warning level reached
        if equity <= floor:
            return self.decision(
                Action.LOCKOUT,
                f"equity {fmt_usd(equity)} reached the MLL floor {fmt_usd(floor)}: the account has failed",
                until_ns=None,
            )
        if equity <= floor + buf:
            return self.decision(
                Action.LOCKOUT,
                f"equity {fmt_usd(equity)} reached the MLL floor {fmt_usd(floor)} plus the "
                f"{fmt_usd(buf)} buffer; flatten and lock out",
                until_ns=view.next_day_start_ns,
            )
        used = self.p.amount - (equity - floor)
        frac = money_fraction(used, self.p.amount)
        hit = [w for w in self.p.warn_pct if used.cents * 100 >= w * self.p.amount.cents]
        if hit:
            return self.decision(
                Action.WARN,
                f"equity {fmt_usd(equity)} is {fmt_usd(equity - floor)} above the MLL floor {fmt_usd(floor)}: "
                f"{max(hit)}% of the {fmt_usd(self.p.amount)} MLL used",
                used_fraction=frac,
            )
        return ALLOW

    def check_order(self, view: AccountView, order: Order) -> Decision:
        """DENY an opening order whose risk would bring equity to the floor plus the buffer."""
        if not is_opening(view, order):
            return ALLOW
        floor = view.mll_floor
        if floor is None:
            return self.decision(Action.DENY, "the MLL floor is unknown; only reducing orders are allowed")
        risk = order_risk(view, order, self.p.default_risk_ticks)
        level = floor + self.p.trigger_buffer_usd
        if view.equity - risk <= level:
            return self.decision(
                Action.DENY,
                f"order risk {fmt_usd(risk)} on equity {fmt_usd(view.equity)} would reach the MLL floor "
                f"{fmt_usd(floor)} plus the {fmt_usd(self.p.trigger_buffer_usd)} buffer",
            )
        return ALLOW

    def describe(self) -> str:
        """One line: the MLL amount and buffer."""
        buf = fmt_usd(self.p.trigger_buffer_usd)
        return f"R1 MLL {fmt_usd(self.p.amount)} {self.p.mode} (buffer {buf}, warn {self.p.warn_pct}%)"
