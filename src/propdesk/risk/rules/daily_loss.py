"""R2 firm daily loss limit and R3 personal daily loss limit (fixed or trailing).

Source: ``../shared/specs/risk-rules.md`` section 5 (R2, R3) and section 6 (basis, equality with
``trigger_buffer_usd``). R2: https://help.futures.topstep.com/hc/en-us/articles/8808125387923 ("hit or exceed ... soft
breach ... until the start of the next trading day"). R3 mirrors the TopstepX Personal Daily Loss Limit:
https://help.topstep.com/en/articles/10490293 (trailing), https://help.topstep.com/en/articles/9772296 (actions).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from propdesk.model.orders import Order
from propdesk.model.price import Money
from propdesk.risk.decisions import ALLOW, Action, Decision, EvalPoint
from propdesk.risk.rules.base import AccountView, Rule, RuleParams
from propdesk.risk.rules.common import (
    LimitAction,
    NonNegUSD,
    PosUSD,
    WarnPct,
    fmt_usd,
    is_opening,
    money_fraction,
    order_risk,
)


def _warn_hit(used: Money, limit: Money, warn_pct: tuple[int, ...]) -> int | None:
    """The highest warning percentage reached by ``used`` of ``limit`` (exact), or None."""
    hit = [w for w in warn_pct if used.cents * 100 >= w * limit.cents]
    return max(hit) if hit else None


class FirmDailyLossParams(RuleParams):
    """R2 parameters.

    Attributes:
        amount: the firm daily loss limit in USD; ``None`` = off (TopstepX Combine/XFA since 2024-08-25).
        trigger_buffer_usd: act this many USD before the limit.
        warn_pct: percentages of the limit used at which to warn (optional).
        default_risk_ticks: ticks of risk assumed for an opening order with no stop attached.
    """

    amount: PosUSD | None
    trigger_buffer_usd: NonNegUSD = Money(0)
    warn_pct: WarnPct = ()
    default_risk_ticks: int = Field(gt=0)


class FirmDailyLossRule(Rule):
    """R2: on ``day_net <= -amount + buffer`` FLATTEN + LOCKOUT until the next day start; PRE DENY an opening order
    when ``day_net - order_risk <= -amount + buffer``. Basis: ``day_net`` (realized net of fees + unrealized)."""

    rule_id = "R2"
    params_cls = FirmDailyLossParams
    points = frozenset({EvalPoint.PRE, EvalPoint.QUOTE, EvalPoint.FILL})

    def __init__(self, params: FirmDailyLossParams, *, firm: bool = True) -> None:
        super().__init__(params, firm=firm)
        self.p = params
        self._min_warn = min(params.warn_pct) if params.warn_pct else None

    def _level(self, amount: Money) -> Money:
        return -amount + self.p.trigger_buffer_usd

    def evaluate(self, view: AccountView, point: EvalPoint) -> Decision:
        """The day's net PnL against the limit."""
        amount = self.p.amount
        if amount is None:
            return ALLOW
        net = view.day_net
        n_c, a_c = net.cents, amount.cents
        if n_c > -a_c + self.p.trigger_buffer_usd.cents and (
            self._min_warn is None or -n_c * 100 < self._min_warn * a_c
        ):
            return ALLOW  # fast path (integer cents)
        if net <= self._level(amount):
            return self.decision(
                Action.LOCKOUT,
                f"day net {fmt_usd(net)} reached the {fmt_usd(amount)} daily loss limit "
                f"(buffer {fmt_usd(self.p.trigger_buffer_usd)}); flatten and lock out until the next trading day",
                until_ns=view.next_day_start_ns,
            )
        used = -net
        pct = _warn_hit(used, amount, self.p.warn_pct)
        if pct is not None:
            return self.decision(
                Action.WARN,
                f"day net {fmt_usd(net)}: {pct}% of the {fmt_usd(amount)} daily loss limit used",
                used_fraction=money_fraction(used, amount),
            )
        return ALLOW

    def check_order(self, view: AccountView, order: Order) -> Decision:
        """DENY an opening order whose risk would reach the limit (minus the buffer)."""
        amount = self.p.amount
        if amount is None or not is_opening(view, order):
            return ALLOW
        risk = order_risk(view, order, self.p.default_risk_ticks)
        if view.day_net - risk <= self._level(amount):
            return self.decision(
                Action.DENY,
                f"order risk {fmt_usd(risk)} with day net {fmt_usd(view.day_net)} would reach the "
                f"{fmt_usd(amount)} daily loss limit (buffer {fmt_usd(self.p.trigger_buffer_usd)})",
            )
        return ALLOW

    def describe(self) -> str:
        """One line: the limit or "off"."""
        if self.p.amount is None:
            return "R2 firm daily loss limit: off"
        return f"R2 firm daily loss limit {fmt_usd(self.p.amount)} (buffer {fmt_usd(self.p.trigger_buffer_usd)})"


class DailyLossMode(StrEnum):
    """R3 mode: ``fixed`` from the start of day, or ``trailing`` from the day's high."""

    FIXED = "fixed"
    TRAILING = "trailing"


class TrailingBasis(StrEnum):
    """R3 trailing basis: the realized balance or the equity (realized + unrealized)."""

    REALIZED = "realized"
    UNREALIZED = "unrealized"


class PersonalDailyLossParams(RuleParams):
    """R3 parameters.

    Attributes:
        amount: the personal daily loss limit in USD.
        mode: fixed (``day_net <= -amount``) or trailing (``current <= day high - amount``).
        basis: trailing only: ``realized`` (balance vs ``day_peak_realized``) or ``unrealized`` (equity vs
            ``day_peak_equity``).
        action: do_nothing (WARN), liquidate (FLATTEN), liquidate_and_block (FLATTEN + LOCKOUT).
        trigger_buffer_usd: act this many USD before the limit.
        warn_pct: percentages of the limit used at which to warn.
        default_risk_ticks: ticks of risk assumed for an opening order with no stop attached.
    """

    amount: PosUSD
    mode: DailyLossMode = DailyLossMode.FIXED
    basis: TrailingBasis = TrailingBasis.REALIZED
    action: LimitAction = LimitAction.LIQUIDATE_AND_BLOCK
    trigger_buffer_usd: NonNegUSD = Money(0)
    warn_pct: WarnPct = ()
    default_risk_ticks: int = Field(gt=0)


class PersonalDailyLossRule(Rule):
    """R3: personal daily loss, fixed or trailing (mirrors the TopstepX PDLL).

    Fixed: current = ``day_net``, reference 0, threshold ``-amount``. Trailing: current = ``balance`` (realized) or
    ``equity`` (unrealized), reference = the day's high = max(``day_peak_realized`` / ``day_peak_equity``,
    ``sod_balance``, current), threshold = reference - amount ($500 on $50,000 -> $49,500; high $51,200 -> $50,700).
    Trigger at ``current <= threshold + buffer`` with ``action``. PRE: DENY an opening order whose ``order_risk``
    reaches the headroom ``current - (threshold + buffer)`` (with ``do_nothing``: WARN instead, as that setting only
    notifies).
    """

    rule_id = "R3"
    params_cls = PersonalDailyLossParams
    points = frozenset({EvalPoint.PRE, EvalPoint.QUOTE, EvalPoint.FILL})

    def __init__(self, params: PersonalDailyLossParams, *, firm: bool = False) -> None:
        super().__init__(params, firm=firm)
        self.p = params
        self._min_warn = min(params.warn_pct) if params.warn_pct else None
        self._fixed = params.mode is DailyLossMode.FIXED

    def levels(self, view: AccountView) -> tuple[str, Money, Money, Money]:
        """``(label, current, reference, threshold)`` in USD for the configured mode and basis."""
        if self.p.mode is DailyLossMode.FIXED:
            return "day net", view.day_net, Money(0), -self.p.amount
        if self.p.basis is TrailingBasis.REALIZED:
            label, current, peak = "balance", view.balance, view.day_peak_realized
        else:
            label, current, peak = "equity", view.equity, view.day_peak_equity
        ref = max(peak, view.sod_balance, current)
        return label, current, ref, ref - self.p.amount

    def _what(self, ref: Money, threshold: Money) -> str:
        if self.p.mode is DailyLossMode.FIXED:
            return f"the {fmt_usd(self.p.amount)} personal daily loss limit"
        return (
            f"the trailing personal loss threshold {fmt_usd(threshold)} ({fmt_usd(self.p.amount)} below the day's "
            f"high {fmt_usd(ref)})"
        )

    def evaluate(self, view: AccountView, point: EvalPoint) -> Decision:
        """The account against the personal daily loss limit."""
        if self._fixed:  # fast path (integer cents): fixed mode, no breach, no warning level reached
            n_c, a_c = view.day_net.cents, self.p.amount.cents
            if n_c > -a_c + self.p.trigger_buffer_usd.cents and (
                self._min_warn is None or -n_c * 100 < self._min_warn * a_c
            ):
                return ALLOW
        label, cur, ref, thr = self.levels(view)
        buf = self.p.trigger_buffer_usd
        used = ref - cur
        frac = money_fraction(used, self.p.amount)
        if cur <= thr + buf:
            act = self.p.action
            tail = {
                LimitAction.DO_NOTHING: "notify only",
                LimitAction.LIQUIDATE: "flatten; reduce-only for the rest of the day",
                LimitAction.LIQUIDATE_AND_BLOCK: "flatten and lock out until the next trading day",
            }[act]
            return self.decision(
                act.action,
                f"{label} {fmt_usd(cur)} reached {self._what(ref, thr)} (buffer {fmt_usd(buf)}); {tail}",
                until_ns=view.next_day_start_ns if act is LimitAction.LIQUIDATE_AND_BLOCK else None,
                used_fraction=frac if act is LimitAction.DO_NOTHING else None,
            )
        pct = _warn_hit(used, self.p.amount, self.p.warn_pct)
        if pct is not None:
            return self.decision(
                Action.WARN,
                f"{label} {fmt_usd(cur)}: {pct}% of the {fmt_usd(self.p.amount)} personal daily loss limit used",
                used_fraction=frac,
            )
        return ALLOW

    def check_order(self, view: AccountView, order: Order) -> Decision:
        """DENY (WARN with do_nothing) an opening order whose risk reaches the remaining headroom."""
        if not is_opening(view, order):
            return ALLOW
        label, cur, ref, thr = self.levels(view)
        headroom = cur - (thr + self.p.trigger_buffer_usd)
        risk = order_risk(view, order, self.p.default_risk_ticks)
        if risk >= headroom:
            action = Action.WARN if self.p.action is LimitAction.DO_NOTHING else Action.DENY
            return self.decision(
                action,
                f"order risk {fmt_usd(risk)} reaches the {fmt_usd(headroom)} left before {self._what(ref, thr)} "
                f"({label} {fmt_usd(cur)}, buffer {fmt_usd(self.p.trigger_buffer_usd)})",
                used_fraction=money_fraction(ref - cur + risk, self.p.amount) if action is Action.WARN else None,
            )
        return ALLOW

    def describe(self) -> str:
        """One line: amount, mode and action."""
        mode = self.p.mode.value if self.p.mode is DailyLossMode.FIXED else f"trailing on {self.p.basis.value}"
        return f"R3 personal daily loss {fmt_usd(self.p.amount)} ({mode}, {self.p.action.value})"
