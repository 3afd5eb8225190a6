"""The rule plugin interface and the read-only account view rules evaluate.

A rule is a small object with typed parameters (a frozen pydantic model) that looks at an :class:`AccountView` and
returns a :class:`~propdesk.risk.decisions.Decision`. It never acts: the account guard and the enforcer act on the
combined verdict. Rules are evaluated at the points of ``../shared/specs/risk-rules.md`` section 5 (PRE, FILL, QUOTE,
CLOCK); a rule declares the points it cares about in ``points``. Learned from Freqtrade's protections (small plugins
that return a lock with a reason and an expiry); written for propdesk.

An exception inside a rule is never "allow": :class:`RuleSet` turns it into a REDUCE_ONLY decision naming the rule
(risk-rules.md section 7.6, fail closed).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import ClassVar, Protocol

from pydantic import BaseModel, ConfigDict

from propdesk.model.orders import Order
from propdesk.model.price import Money, Price
from propdesk.risk.decisions import ALLOW, Action, Decision, EvalPoint, Verdict, combine

log = logging.getLogger("propdesk.risk")


class RuleParams(BaseModel):
    """Base of every rule's parameters: frozen, unknown keys rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


@dataclass(frozen=True, slots=True)
class OpenPosition:
    """A net position as rules see it: ``signed_qty`` contracts, ``unrealized`` USD at the liquidation mark
    (``None`` when the contract has no mark yet), ``weight`` its mini-equivalent weight (TopstepX: 0.1 for a micro)."""

    symbol: str
    root: str
    signed_qty: int
    avg_price: Price
    unrealized: Money | None
    weight: float
    opened_ts_ns: int


class AccountView(Protocol):
    """What rules may read about one account at the time of evaluation. Money in USD (exact), times UTC ns.

    Definitions follow risk-rules.md section 3: ``day_realized_net`` = realized PnL since ``day_start`` net of
    every fee; ``unrealized`` at the liquidation mark (bid for longs, ask for shorts, last trade as fallback);
    ``day_net`` = both; ``equity`` = ``balance`` + ``unrealized``; ``mll_floor`` from the end-of-day balance high
    (section 3.4), ``None`` while unknown.
    """

    @property
    def now_ns(self) -> int: ...
    @property
    def trading_date(self) -> date: ...
    @property
    def day_start_ns(self) -> int: ...
    @property
    def next_day_start_ns(self) -> int: ...
    @property
    def start_balance(self) -> Money: ...
    @property
    def balance(self) -> Money: ...
    @property
    def sod_balance(self) -> Money: ...
    @property
    def day_realized_net(self) -> Money: ...
    @property
    def unrealized(self) -> Money: ...
    @property
    def day_net(self) -> Money: ...
    @property
    def equity(self) -> Money: ...
    @property
    def day_peak_realized(self) -> Money: ...
    @property
    def day_peak_equity(self) -> Money: ...
    @property
    def mll_floor(self) -> Money | None: ...
    @property
    def trades_today(self) -> int: ...
    @property
    def trades_week(self) -> int: ...
    @property
    def contracts_today(self) -> int: ...
    @property
    def consecutive_losses(self) -> int: ...
    @property
    def last_loss_ts_ns(self) -> int | None: ...
    @property
    def daily_net_history(self) -> Sequence[tuple[date, Money]]: ...
    @property
    def positions(self) -> Sequence[OpenPosition]: ...
    @property
    def working_orders(self) -> Sequence[Order]: ...
    def position_qty(self, symbol: str) -> int: ...
    def weight(self, symbol: str) -> float: ...
    def root_of(self, symbol: str) -> str: ...
    def stop_risk(self, order: Order) -> Money: ...


class Rule(ABC):
    """Base of every rule.

    Subclasses set ``rule_id``, ``params_cls`` and ``points``, and implement :meth:`evaluate` (post-trade: FILL,
    QUOTE, CLOCK) and/or :meth:`check_order` (PRE). ``firm`` marks a firm rule (a personal rule never weakens it).
    """

    rule_id: ClassVar[str] = ""
    params_cls: ClassVar[type[RuleParams]] = RuleParams
    points: ClassVar[frozenset[EvalPoint]] = frozenset()

    def __init__(self, params: RuleParams, *, firm: bool = False) -> None:
        self.params = params
        self.firm = firm

    def evaluate(self, view: AccountView, point: EvalPoint) -> Decision:
        """The rule's verdict on the account now (FILL, QUOTE or CLOCK)."""
        return ALLOW

    def check_order(self, view: AccountView, order: Order) -> Decision:
        """The rule's verdict on sending ``order`` (PRE), given the account and its working orders."""
        return ALLOW

    def decision(self, action: Action, reason: str, **kw: object) -> Decision:
        """A decision of this rule (fills in ``rule_id`` and ``firm``)."""
        return Decision(rule_id=self.rule_id, action=action, reason=reason, firm=self.firm, **kw)  # type: ignore[arg-type]

    @abstractmethod
    def describe(self) -> str:
        """One line for the status display: the rule and its limits."""


class EvalMemo:
    """Values derived from the view that several rules of one evaluation need (e.g. the per-contract side loads of
    R5 and R7), computed once per :meth:`RuleSet.evaluate` / :meth:`RuleSet.check_order` call.

    Nothing changes the view while a rule set evaluates (rules only read), so a value computed for ``view`` stays
    right until the call returns; the memo is emptied at the start and the end of each call. Rules called directly
    (outside a rule set) find no memo for their view and compute as before. One module-level instance,
    :data:`EVAL_MEMO` (the core is single-threaded).
    """

    __slots__ = ("values", "view")

    def __init__(self) -> None:
        self.view: object | None = None
        self.values: dict[str, object] = {}

    def get(self, view: object) -> dict[str, object] | None:
        """The memo of ``view`` while a rule set evaluates it, else ``None``."""
        return self.values if self.view is view else None


EVAL_MEMO = EvalMemo()
"""The memo of the evaluation in progress (see :class:`EvalMemo`)."""


class RuleSet:
    """The rules active on one account; evaluates them all and combines the decisions (most restrictive wins).

    A rule that raises yields a REDUCE_ONLY decision naming it (fail closed) and is logged with its traceback.
    """

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = list(rules)
        self._by_point = {p: [r for r in self.rules if p in r.points] for p in EvalPoint}
        self._last_single: tuple[Decision, Verdict] | None = None  # verdicts are immutable: reused by identity

    def evaluate(self, view: AccountView, point: EvalPoint) -> Verdict:
        """All rules that care about ``point``, combined."""
        out: list[Decision] = []
        memo = EVAL_MEMO
        prev_view, prev_values = memo.view, memo.values
        memo.view, memo.values = view, {}
        try:
            for rule in self._by_point[point]:
                try:
                    d = rule.evaluate(view, point)
                except Exception as exc:  # fail closed: a broken rule never allows
                    log.exception("risk rule %s failed at %s", rule.rule_id, point.value)
                    d = _failed(rule, exc)
                if d.action:  # ALLOW (0) is dropped by combine anyway
                    out.append(d)
        finally:
            memo.view, memo.values = prev_view, prev_values
        if not out:
            return _ALLOW_VERDICT
        if len(out) == 1:  # one rule spoke (often the same decision object as last time, e.g. a held warning)
            d = out[0]
            last = self._last_single
            if last is not None and last[0] is d:
                return last[1]
            verdict = combine(out)
            self._last_single = (d, verdict)
            return verdict
        return combine(out)

    def check_order(self, view: AccountView, order: Order) -> Verdict:
        """All PRE rules on ``order``, combined; a rule that raises denies."""
        out: list[Decision] = []
        memo = EVAL_MEMO
        prev_view, prev_values = memo.view, memo.values
        memo.view, memo.values = view, {}
        try:
            for rule in self._by_point[EvalPoint.PRE]:
                try:
                    out.append(rule.check_order(view, order))
                except Exception as exc:
                    log.exception("risk rule %s failed on order %s", rule.rule_id, order.client_order_id)
                    out.append(_failed(rule, exc))
        finally:
            memo.view, memo.values = prev_view, prev_values
        return combine(out)


_ALLOW_VERDICT = combine(())
"""The verdict of an evaluation where every rule allowed (immutable, shared: the common case costs no allocation)."""


def _failed(rule: Rule, exc: Exception) -> Decision:
    return Decision(
        rule_id=rule.rule_id,
        action=Action.REDUCE_ONLY,
        reason=f"rule failed ({type(exc).__name__}: {exc}); reduce-only until resolved",
        firm=rule.firm,
    )
