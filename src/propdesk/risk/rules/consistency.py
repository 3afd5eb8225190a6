"""R16: the consistency tracker (best day / total profit).

Source: ``../shared/specs/risk-rules.md`` section 5 (R16) and section 4.1 (CONFLICT 40% old official vs 50% 3P; the
preset ships 40%); https://help.futures.topstep.com/hc/en-us/articles/4405772379155 ($900 / $2,800 = 32%). Not a breach:
trading continues until the ratio passes; the rule only warns when today would break it. Realized day nets only
(section 6): the history holds closed days, today's figure is ``view.day_net``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from pydantic import Field

from propdesk.model.price import Money
from propdesk.risk.decisions import ALLOW, Action, Decision, EvalPoint
from propdesk.risk.rules.base import AccountView, Rule, RuleParams
from propdesk.risk.rules.common import fmt_usd, mul_money


def prior_days(view: AccountView) -> list[Money]:
    """Net PnL of every closed trading day before ``view.trading_date`` (today's entry, if present, is dropped)."""
    return [m for d, m in view.daily_net_history if d != view.trading_date]


def consistency_cap(prior: Sequence[Money], p: Decimal) -> Money | None:
    """The most today may make without breaking ``best day / total < p``: ``p x prior_total / (1 - p)``, rounded
    down to the cent; ``None`` when the prior total is not positive (no cap can help then).

    Source: risk-rules.md section 5, R16 ``cap_r4``.
    """
    total = Money(sum(m.cents for m in prior))
    if total.cents <= 0:
        return None
    return mul_money(total, p / (1 - p))


def best_day_share(days: Sequence[tuple[date, Money]]) -> tuple[Money, tuple[date, Money] | None, Decimal | None]:
    """The consistency figures of ``days`` (``(trading date, net PnL)``, oldest first): the total profit, the best
    day (the first of equal bests; ``None`` without days) and best day / total profit (exact; ``None`` when the total
    is not positive). Source: risk-rules.md section 5, R16 ($900 / $2,800 = 32%)."""
    total = Money(sum(m.cents for _, m in days))
    if not days:
        return total, None, None
    best = max(days, key=lambda d: d[1].cents)
    share = Decimal(best[1].cents) / Decimal(total.cents) if total.cents > 0 else None
    return total, best, share


def _ratio(days: Sequence[Money]) -> tuple[Money, Money, Decimal] | None:
    total = Money(sum(m.cents for m in days))
    if total.cents <= 0 or not days:
        return None
    best = max(days)
    return best, total, Decimal(best.cents) / Decimal(total.cents)


class ConsistencyParams(RuleParams):
    """R16 parameters.

    Attributes:
        max_best_day_pct: the largest share of total profit one day may hold, as a fraction (0.40 ships;
            CONFLICT 0.40 / 0.50). The ratio must stay strictly below it.
        cap_r4: also cap the R4 profit target at ``p x prior_total / (1 - p)``; set on the R4 rule's
            ``max_best_day_pct`` by the configuration (kept here so the R16 configuration says so).
    """

    max_best_day_pct: Decimal = Field(gt=0, lt=1)
    cap_r4: bool = False


class ConsistencyRule(Rule):
    """R16: WARN when today's ``day_net`` is the best day and best / total >= ``max_best_day_pct``.

    ``used_fraction`` = ratio / ``max_best_day_pct`` (>= 1.0 when the ratio is broken).
    """

    rule_id = "R16"
    params_cls = ConsistencyParams
    points = frozenset({EvalPoint.FILL, EvalPoint.CLOCK})

    def __init__(self, params: ConsistencyParams, *, firm: bool = True) -> None:
        super().__init__(params, firm=firm)
        self.p = params
        self._p_num, self._p_den = params.max_best_day_pct.as_integer_ratio()
        self._last: tuple[tuple[int, int], Decision] | None = None  # (today, total) cents -> the warning given

    def evaluate(self, view: AccountView, point: EvalPoint) -> Decision:
        """Today's day net against the consistency ratio."""
        today = view.day_net
        if today.cents <= 0:  # fast path: a day that is not a profit cannot be the best day
            return ALLOW
        prior = prior_days(view)
        t = today.cents
        total_c = t + sum(m.cents for m in prior)
        if total_c <= 0 or any(m.cents > t for m in prior):
            return ALLOW
        # ratio = today / total >= p, exactly, in integers
        if t * self._p_den < self._p_num * total_c:
            return ALLOW
        key = (t, total_c)
        if self._last is not None and self._last[0] == key:
            return self._last[1]  # the same figures as the last evaluation: the same warning
        r = _ratio([*prior, today])
        assert r is not None
        _best, total, ratio = r
        cap = consistency_cap(prior, self.p.max_best_day_pct)
        cap_text = f"; keep today under {fmt_usd(cap)}" if cap is not None else ""
        decision = self.decision(
            Action.WARN,
            f"today's {fmt_usd(today)} would be {ratio * 100:.1f}% of the {fmt_usd(total)} total profit, at or above "
            f"the {self.p.max_best_day_pct * 100:.0f}% consistency limit{cap_text}",
            used_fraction=float(ratio / self.p.max_best_day_pct),
        )
        self._last = (key, decision)
        return decision

    def describe(self) -> str:
        """One line: the ratio limit."""
        return f"R16 consistency: best day < {self.p.max_best_day_pct * 100:.0f}% of total profit"
