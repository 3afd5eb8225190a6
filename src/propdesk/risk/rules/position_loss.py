"""R12: max unrealized loss per position (Apex-style MAE).

Source: ``../shared/specs/risk-rules.md`` section 5 (R12); basis: the unrealized PnL of one position at the
liquidation mark (section 6).
"""

from __future__ import annotations

from pydantic import Field, model_validator

from propdesk.model.contracts import spec
from propdesk.model.orders import Order
from propdesk.model.price import Money
from propdesk.risk.decisions import ALLOW, Action, Decision, EvalPoint
from propdesk.risk.rules.base import AccountView, OpenPosition, Rule, RuleParams
from propdesk.risk.rules.common import NonNegUSD, PosUSD, fmt_usd


class PositionLossParams(RuleParams):
    """R12 parameters: exactly one of ``max_loss_usd`` (per position) or ``max_loss_ticks`` (per contract, times the
    tick value and the position size), plus ``trigger_buffer_usd``."""

    max_loss_usd: PosUSD | None = None
    max_loss_ticks: int | None = Field(default=None, gt=0)
    trigger_buffer_usd: NonNegUSD = Money(0)

    @model_validator(mode="after")
    def _exactly_one(self) -> PositionLossParams:
        if (self.max_loss_usd is None) == (self.max_loss_ticks is None):
            raise ValueError("set exactly one of max_loss_usd and max_loss_ticks")
        return self


class PositionLossRule(Rule):
    """R12: QUOTE: a position whose unrealized PnL is <= -(limit - buffer) ⇒ CLOSE_POSITION (the worst one first);
    PRE: DENY an order whose attached stop risk (``view.stop_risk``) exceeds the limit minus the buffer. A position
    without a mark is skipped (stale quotes are handled by the fail-closed checks, section 7.6)."""

    rule_id = "R12"
    params_cls = PositionLossParams
    points = frozenset({EvalPoint.PRE, EvalPoint.QUOTE})

    def __init__(self, params: PositionLossParams, *, firm: bool = False) -> None:
        super().__init__(params, firm=firm)
        self.p = params

    def limit_for(self, view: AccountView, symbol: str, qty: int) -> Money:
        """The loss limit in USD for ``qty`` contracts of ``symbol``.

        Raises:
            ContractError: ``max_loss_ticks`` is used and the root is not in the contract table.
        """
        if self.p.max_loss_usd is not None:
            return self.p.max_loss_usd
        assert self.p.max_loss_ticks is not None
        return spec(view.root_of(symbol)).tick_value * (self.p.max_loss_ticks * abs(qty))

    def evaluate(self, view: AccountView, point: EvalPoint) -> Decision:
        """Close the position that breached its loss limit by the most."""
        worst: tuple[int, OpenPosition, Money] | None = None
        for p in view.positions:
            if not p.signed_qty or p.unrealized is None:
                continue
            limit = self.limit_for(view, p.symbol, p.signed_qty)
            over = -(p.unrealized + limit - self.p.trigger_buffer_usd).cents
            if over >= 0 and (worst is None or over > worst[0]):
                worst = (over, p, limit)
        if worst is None:
            return ALLOW
        _, p, limit = worst
        assert p.unrealized is not None
        return self.decision(
            Action.CLOSE_POSITION,
            f"{p.symbol} {p.signed_qty:+d} unrealized {fmt_usd(p.unrealized)} reached the {fmt_usd(limit)} "
            f"max loss per position (buffer {fmt_usd(self.p.trigger_buffer_usd)}); close it",
            symbol=p.symbol,
        )

    def check_order(self, view: AccountView, order: Order) -> Decision:
        """DENY an order whose attached stop risks more than the limit."""
        risk = view.stop_risk(order)
        if risk.cents <= 0:
            return ALLOW
        limit = self.limit_for(view, order.symbol, order.qty)
        if risk > limit - self.p.trigger_buffer_usd:
            return self.decision(
                Action.DENY,
                f"the stop on {order.qty} {order.symbol} risks {fmt_usd(risk)}, more than the {fmt_usd(limit)} "
                f"max loss per position (buffer {fmt_usd(self.p.trigger_buffer_usd)})",
                symbol=order.symbol,
            )
        return ALLOW

    def describe(self) -> str:
        """One line: the limit."""
        lim = fmt_usd(self.p.max_loss_usd) if self.p.max_loss_usd is not None else f"{self.p.max_loss_ticks} ticks"
        return f"R12 max loss per position {lim}"
