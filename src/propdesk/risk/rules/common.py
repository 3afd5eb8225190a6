"""Helpers shared by the risk rules: money parameters, formatting, reducing orders, order risk and exposure.

Definitions follow ``../shared/specs/risk-rules.md``: section 6 (reduce-only orders, working orders counted worst case
per side, bracket children not counted, equality "trigger at >= the limit minus ``trigger_buffer_usd``") and section
5 (R1 ``order_risk``, R5 exposure).
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal
from enum import StrEnum
from fractions import Fraction
from typing import Annotated, NamedTuple

from pydantic import Field, PlainValidator

from propdesk.core.timefmt import fmt_ct_minutes
from propdesk.model.contracts import spec
from propdesk.model.enums import Side
from propdesk.model.orders import Order
from propdesk.model.price import Money
from propdesk.risk.decisions import Action
from propdesk.risk.rules.base import EVAL_MEMO, AccountView

"""The trading day's time zone (risk-rules.md section 2)."""


def to_money(value: object) -> Money:
    """A USD amount from configuration: ``Money``, ``int``, ``Decimal``, ``str`` (``"1000.50"``) or ``float``.

    Raises:
        ValueError: anything else, a malformed amount or fractions of a cent (pydantic reports it on the field).
    """
    if isinstance(value, Money):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise ValueError(f"expected a USD amount, got {value!r}")
    return Money.of(str(value) if isinstance(value, float) else value)


def _non_negative(value: object) -> Money:
    m = to_money(value)
    if m.cents < 0:
        raise ValueError(f"amount {fmt_usd(m)} must not be negative")
    return m


def _positive(value: object) -> Money:
    m = to_money(value)
    if m.cents <= 0:
        raise ValueError(f"amount {fmt_usd(m)} must be positive")
    return m


USD = Annotated[Money, PlainValidator(to_money)]
"""A parameter holding a USD amount (any sign), given as a number or a string."""
NonNegUSD = Annotated[Money, PlainValidator(_non_negative)]
"""A parameter holding a USD amount >= 0 (a buffer)."""
PosUSD = Annotated[Money, PlainValidator(_positive)]
"""A parameter holding a USD amount > 0 (a limit)."""
WarnPct = tuple[Annotated[int, Field(gt=0, le=100)], ...]
"""Warning levels in percent of a limit used (each 1-100)."""


def fmt_usd(m: Money) -> str:
    """``Money`` as a trader reads it: ``-$1,012.50``, ``$0.00``."""
    sign = "-" if m.cents < 0 else ""
    return f"{sign}${abs(m.cents) // 100:,}.{abs(m.cents) % 100:02d}"


fmt_ct = fmt_ct_minutes
"""A UTC ns time as Chicago wall time, e.g. ``2025-03-07 15:05 CT`` (:func:`propdesk.core.timefmt.fmt_ct_minutes`)."""


def fmt_qty(x: Fraction) -> str:
    """A mini-equivalent quantity for reasons: ``1.3``, ``5``."""
    d = Decimal(x.numerator) / Decimal(x.denominator)
    return format(d.quantize(Decimal("0.01")).normalize(), "f")


def money_fraction(used: Money, limit: Money) -> float:
    """``used / limit`` as a float for ``Decision.used_fraction`` (display only; never compared for money)."""
    return used.cents / limit.cents if limit.cents else 1.0


def mul_money(m: Money, factor: Decimal) -> Money:
    """``m x factor`` rounded down to a cent (toward negative infinity: the restrictive side for a cap)."""
    return Money(int((Decimal(m.cents) * factor).to_integral_value(rounding=ROUND_FLOOR)))


def sign(x: int) -> int:
    """-1, 0 or +1."""
    return (x > 0) - (x < 0)


def is_bracket_child(order: Order) -> bool:
    """True for a TP/SL child of a bracket (``parent_id`` set): never counted toward limits (section 6)."""
    return order.parent_id is not None


def counted_orders(view: AccountView, *, exclude: Order | None = None) -> list[Order]:
    """The view's open orders that count toward limits: not done, not bracket children, not ``exclude``."""
    if exclude is None:
        return list(counted_orders_memo(view))
    ex = exclude.client_order_id
    return [
        o
        for o in view.working_orders
        if o.is_open and o.parent_id is None and o.client_order_id != ex and o.leaves_qty > 0
    ]


def counted_orders_memo(view: AccountView) -> list[Order]:
    """:func:`counted_orders` without an exclusion, computed once per rule-set evaluation
    (:class:`~propdesk.risk.rules.base.EvalMemo`): the list is shared, so callers must not mutate it."""
    memo = EVAL_MEMO.get(view)
    if memo is not None:
        cached = memo.get("counted")
        if cached is not None:
            return cached  # type: ignore[return-value]
    out = [o for o in view.working_orders if o.is_open and o.parent_id is None and o.leaves_qty > 0]
    if memo is not None:
        memo["counted"] = out
    return out


def is_reducing(view: AccountView, order: Order) -> bool:
    """True when ``order`` is a reduce-only order by risk-rules.md section 6.

    Opposite side to the current net position in the same contract, and ``qty`` <= |position| minus the other
    working reducing orders of that contract. Bracket children and OCO legs (``linked_ids``) are protective orders
    canceled with the position, so they are not counted as "other reducing orders"; a bracket child itself counts
    as reducing (it is not an opening order).
    """
    if is_bracket_child(order):
        return True
    pos = view.position_qty(order.symbol)
    if pos == 0 or int(order.side) == sign(pos):
        return False
    others = sum(
        o.leaves_qty
        for o in counted_orders(view, exclude=order)
        if o.symbol == order.symbol and o.side is order.side and not o.linked_ids
    )
    return order.qty <= abs(pos) - others


def is_opening(view: AccountView, order: Order) -> bool:
    """True when ``order`` may open or grow exposure (anything that is not reducing, see :func:`is_reducing`)."""
    return not is_reducing(view, order)


def order_risk(view: AccountView, order: Order, default_risk_ticks: int) -> Money:
    """The USD an opening order puts at risk (risk-rules.md section 5, R1).

    ``view.stop_risk(order)`` when a stop or bracket is attached (a positive amount), else ``default_risk_ticks`` x the
    contract's tick value x ``order.qty``.

    Raises:
        ContractError: the order's root is not in the contract table (the RuleSet then fails closed).
    """
    risk = view.stop_risk(order)
    if risk.cents > 0:
        return risk
    return spec(view.root_of(order.symbol)).tick_value * (default_risk_ticks * order.qty)


class SideLoad(NamedTuple):
    """One contract's position ``p`` and counted working orders ``buy`` / ``sell`` (contracts, leaves quantity).

    A named tuple (immutable, and several times cheaper to build than a frozen dataclass: R5 and R7 build one per
    contract on every FILL evaluation)."""

    symbol: str
    p: int
    buy: int
    sell: int

    @property
    def worst(self) -> int:
        """``max(|p + B|, |p - S|)``: the largest absolute position if every order on one side fills."""
        return max(abs(self.p + self.buy), abs(self.p - self.sell))

    @property
    def long_potential(self) -> int:
        """Long contracts if every buy order fills (0 if that is still short)."""
        return max(0, self.p + self.buy)

    @property
    def short_potential(self) -> int:
        """Short contracts (positive) if every sell order fills (0 if that is still long)."""
        return max(0, self.sell - self.p)


def side_loads(view: AccountView, *, with_orders: bool = True, extra: Order | None = None) -> dict[str, SideLoad]:
    """Per contract: position and counted working orders (worst case per side, bracket children excluded).

    ``extra`` is a new order to project (PRE); it is added (even with ``with_orders=False``) unless it is a bracket
    child. One pass over the positions and one over the orders (this runs on every FILL evaluation of R5 and R7).
    Without ``extra`` the result is computed once per rule-set evaluation and shared (do not mutate it).
    """
    memo = EVAL_MEMO.get(view) if extra is None else None
    if memo is not None:
        key = "loads" if with_orders else "loads-no-orders"
        cached = memo.get(key)
        if cached is None:
            cached = memo[key] = _side_loads(view, with_orders, None)
        return cached  # type: ignore[return-value]
    return _side_loads(view, with_orders, extra)


def _side_loads(view: AccountView, with_orders: bool, extra: Order | None) -> dict[str, SideLoad]:
    syms: dict[str, list[int]] = {}  # symbol -> [buy, sell], positions first (insertion order as before)
    for p in view.positions:
        if p.signed_qty:
            syms.setdefault(p.symbol, [0, 0])
    orders: list[Order]
    if extra is None:
        orders = counted_orders_memo(view) if with_orders else []
    else:
        orders = counted_orders(view, exclude=extra) if with_orders else []
        if not is_bracket_child(extra):
            orders.append(extra)
    buy_side = Side.BUY
    for o in orders:
        acc = syms.get(o.symbol)
        if acc is None:
            acc = syms[o.symbol] = [0, 0]
        if o.side is buy_side:
            acc[0] += o.leaves_qty
        elif o.side is Side.SELL:
            acc[1] += o.leaves_qty
    position_qty = view.position_qty
    return {s: SideLoad(s, position_qty(s), bs[0], bs[1]) for s, bs in syms.items()}


class LimitAction(StrEnum):
    """What a personal limit does when hit (TopstepX PDLL/PDPT, https://help.topstep.com/en/articles/9772296).

    DO_NOTHING: WARN only. LIQUIDATE: FLATTEN, then REDUCING for the rest of the day (the condition still holds).
    LIQUIDATE_AND_BLOCK: FLATTEN + LOCKOUT until the next trading day (``view.next_day_start_ns``).
    """

    DO_NOTHING = "do_nothing"
    LIQUIDATE = "liquidate"
    LIQUIDATE_AND_BLOCK = "liquidate_and_block"

    @property
    def action(self) -> Action:
        """The decision's action for this setting."""
        return {
            LimitAction.DO_NOTHING: Action.WARN,
            LimitAction.LIQUIDATE: Action.FLATTEN,
            LimitAction.LIQUIDATE_AND_BLOCK: Action.LOCKOUT,
        }[self]
