"""R14: no hedging across the trader's accounts.

Source: ``../shared/specs/risk-rules.md`` section 5 (R14); https://help.topstep.com/en/articles/13747047 (long in one
account and short the same or a correlated instrument in another is prohibited). Correlated instruments are given as
root groups (ES/MES, NQ/MNQ, ...); a root in no group is its own group. The other accounts' positions come from a
:class:`HedgeBook` given at construction (the node fills it from every account it watches, at every firm).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from pydantic import Field, field_validator

from propdesk.model.orders import Order
from propdesk.risk.decisions import ALLOW, Action, Decision, EvalPoint
from propdesk.risk.rules.base import AccountView, Rule, RuleParams
from propdesk.risk.rules.common import is_opening, sign


@dataclass(frozen=True, slots=True)
class HedgeLeg:
    """A position held by another of the trader's accounts: ``signed_qty`` contracts of ``symbol`` (root ``root``),
    opened at ``opened_ts_ns`` (UTC ns)."""

    account: str
    symbol: str
    root: str
    signed_qty: int
    opened_ts_ns: int


class HedgeBook(Protocol):
    """Positions of the trader's *other* accounts (never the account the rule guards)."""

    def other_legs(self, roots: frozenset[str]) -> Sequence[HedgeLeg]:
        """The other accounts' open positions in any of ``roots``."""
        ...


class NoHedgingParams(RuleParams):
    """R14 parameters: ``groups`` of correlated roots (``[["ES", "MES"], ["NQ", "MNQ"]]``); a root may be in one group
    only."""

    groups: tuple[frozenset[str], ...] = Field(default=())

    @field_validator("groups")
    @classmethod
    def _disjoint(cls, groups: tuple[frozenset[str], ...]) -> tuple[frozenset[str], ...]:
        seen: set[str] = set()
        for g in groups:
            dup = seen & g
            if dup:
                raise ValueError(f"root {sorted(dup)[0]} is in more than one group")
            seen |= g
        return groups


class NoHedgingRule(Rule):
    """R14: PRE DENY an opening order opposite to a position another account holds in the same root group. FILL: a
    position opposite to another account's in the same group ⇒ CLOSE_POSITION when this account's leg is the newer
    (opened at or after the other), else WARN (the other account's guard closes its newer leg).

    Args:
        params: :class:`NoHedgingParams`.
        book: the :class:`HedgeBook` of the trader's other accounts (required).
    """

    rule_id = "R14"
    params_cls = NoHedgingParams
    points = frozenset({EvalPoint.PRE, EvalPoint.FILL})

    def __init__(self, params: NoHedgingParams, *, book: HedgeBook, firm: bool = True) -> None:
        super().__init__(params, firm=firm)
        self.p = params
        self.book = book
        self._groups: dict[str, frozenset[str]] = {}  # root -> its group (the parameters are frozen)

    def group_of(self, root: str) -> frozenset[str]:
        """The roots correlated with ``root`` (itself included)."""
        g = self._groups.get(root)
        if g is None:
            g = self._groups[root] = next((grp for grp in self.p.groups if root in grp), frozenset({root}))
        return g

    def _opposite(self, root: str, direction: int) -> list[HedgeLeg]:
        return [leg for leg in self.book.other_legs(self.group_of(root)) if sign(leg.signed_qty) == -direction]

    def check_order(self, view: AccountView, order: Order) -> Decision:
        """DENY an opening order that would hedge another account's position."""
        if not is_opening(view, order):
            return ALLOW
        legs = self._opposite(view.root_of(order.symbol), int(order.side))
        if not legs:
            return ALLOW
        leg = legs[0]
        return self.decision(
            Action.DENY,
            f"{order.side.name.lower()} {order.symbol} would hedge account {leg.account}'s {leg.signed_qty:+d} "
            f"{leg.symbol} position (hedging across accounts is prohibited)",
            symbol=order.symbol,
        )

    def evaluate(self, view: AccountView, point: EvalPoint) -> Decision:
        """Close this account's leg of a cross-account hedge when it is the newer one; else warn."""
        warn: Decision | None = None
        for p in view.positions:
            if not p.signed_qty:
                continue
            legs = self._opposite(view.root_of(p.symbol), sign(p.signed_qty))
            if not legs:
                continue
            older = [leg for leg in legs if leg.opened_ts_ns <= p.opened_ts_ns]
            leg = older[0] if older else legs[0]
            text = (
                f"{p.symbol} {p.signed_qty:+d} hedges account {leg.account}'s {leg.signed_qty:+d} {leg.symbol} "
                "position (prohibited)"
            )
            if older:
                return self.decision(Action.CLOSE_POSITION, f"{text}; close the newer leg here", symbol=p.symbol)
            if warn is None:
                warn = self.decision(Action.WARN, f"{text}; the newer leg is in account {leg.account}", symbol=p.symbol)
        return warn or ALLOW

    def describe(self) -> str:
        """One line: the groups."""
        groups = "; ".join("/".join(sorted(g)) for g in self.p.groups) or "same root only"
        return f"R14 no hedging across accounts ({groups})"
