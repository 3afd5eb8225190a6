"""R5 max position (mini-equivalents), R6 scaling plan (XFA) and R7 per-symbol limits / symbol blocks.

Source: ``../shared/specs/risk-rules.md`` section 5 (R5, R6, R7) and section 6 (micros, working orders worst case per
side, bracket children not counted). R5: https://help.topstep.com/en/articles/8284209 ("long 2 E-mini S&P and short
3 Crude Oil" = 5), micro ratio https://help.topstep.com/en/articles/9221977. R6:
https://help.futures.topstep.com/hc/en-us/articles/360000140787 (the limit does not increase during the day). R7:
https://help.projectx.com/settings/risk-settings/symbol-block (per side; positions + working orders; brackets do not
count).

Exposure per contract with signed position ``p`` and counted working orders ``B`` (buy) / ``S`` (sell) is
``max(|p + B|, |p - S|)``; R5 weights it (micro = 1 / ``micro_ratio``) and sums across contracts. Weights are exact
fractions, so 3 MNQ + 1 NQ is exactly 1.3 minis.
"""

from __future__ import annotations

import dataclasses
import math
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from propdesk.model.contracts import spec
from propdesk.model.orders import Order
from propdesk.risk.decisions import ALLOW, Action, Decision, EvalPoint
from propdesk.risk.rules.base import AccountView, OpenPosition, Rule, RuleParams
from propdesk.risk.rules.common import USD, fmt_qty, fmt_usd, is_bracket_child, is_opening, side_loads


class OnOversize(StrEnum):
    """R5 PRE behaviour for an order that would exceed the limit: ``deny``, or ``size_down`` (DENY naming the largest
    quantity that fits; the gate resubmits with :meth:`MaxPositionRule.fitting_qty`)."""

    DENY = "deny"
    SIZE_DOWN = "size_down"


class _WeightedParams(RuleParams):
    """Fields shared by R5 and R6.

    Attributes:
        micro_ratio: micros per mini (10 on TopstepX, 1 elsewhere); a micro weighs 1 / ``micro_ratio``.
        weights: per-root mini-equivalent weight overrides (``{"SIL": "0.2"}``).
        count_working_orders: count working orders worst case per side (bracket children never count).
        on_oversize: ``deny`` or ``size_down``.
    """

    micro_ratio: int = Field(ge=1)
    weights: dict[str, Decimal] = Field(default_factory=dict)
    count_working_orders: bool = True
    on_oversize: OnOversize = OnOversize.DENY


class MaxPositionParams(_WeightedParams):
    """R5 parameters: ``limit`` in mini-equivalents (Topstep 50K Combine: 5), plus the shared fields."""

    limit: Decimal = Field(gt=0)


class MaxPositionRule(Rule):
    """R5: the absolute position across contracts, in mini-equivalents, must stay <= the limit.

    PRE: DENY an order (not a bracket child) that raises the projected exposure above the limit (orders that do not
    raise it, e.g. reducing orders, always pass). FILL: positions alone above the limit ⇒ CLOSE_POSITION of the newest
    position (see :meth:`excess_closes` for the exact newest-first quantities); working orders could exceed it ⇒
    REDUCE_ONLY (cancel opening orders).
    """

    rule_id = "R5"
    params_cls: ClassVar[type[RuleParams]] = MaxPositionParams
    points = frozenset({EvalPoint.PRE, EvalPoint.FILL})

    def __init__(self, params: _WeightedParams, *, firm: bool = True) -> None:
        super().__init__(params, firm=firm)
        self.wp = params
        self._weights = {k: Fraction(v) for k, v in params.weights.items()}
        self._symbol_weights: dict[str, Fraction] = {}  # a symbol's root and weight never change
        self._ratios: dict[str, tuple[int, int]] = {}  # symbol -> weight as (numerator, denominator)
        self._limit = Fraction(params.limit) if isinstance(params, MaxPositionParams) else Fraction(0)

    def limit_for(self, view: AccountView) -> Fraction:
        """The limit in mini-equivalents for the current trading day."""
        return self._limit

    def weight_of(self, view: AccountView, symbol: str) -> Fraction:
        """Mini-equivalents per contract of ``symbol``: a root override, else 1 / ``micro_ratio`` for a micro, else 1.

        Raises:
            ContractError: the root is not in the contract table (the RuleSet fails closed).
        """
        w = self._symbol_weights.get(symbol)
        if w is None:
            root = view.root_of(symbol)
            if root in self._weights:
                w = self._weights[root]
            else:
                w = Fraction(1, self.wp.micro_ratio) if spec(root).is_micro else Fraction(1)
            self._symbol_weights[symbol] = w
        return w

    def _weighted(self, view: AccountView, qtys: list[tuple[str, int]]) -> Fraction:
        """Σ qty x weight, exact (see :meth:`_weighted_nd`)."""
        num, den = self._weighted_nd(view, qtys)
        return Fraction(num, den)

    def _weighted_nd(self, view: AccountView, qtys: list[tuple[str, int]]) -> tuple[int, int]:
        """Σ qty x weight as ``(numerator, denominator)`` in integers over the common denominator."""
        num = 0
        den = 1
        ratios = self._ratios
        for s, q in qtys:
            if not q:
                continue
            nd = ratios.get(s)
            if nd is None:
                w = self.weight_of(view, s)
                nd = ratios[s] = (w.numerator, w.denominator)
            n, d = nd
            if d != den and den % d:
                m = math.lcm(den, d)
                num *= m // den
                den = m
            num += q * n * (den // d)
        return num, den

    def exposure(self, view: AccountView, extra: Order | None = None, *, with_orders: bool | None = None) -> Fraction:
        """Σ over contracts of ``max(|p + B|, |p - S|) x weight``; ``extra`` is projected as a working order."""
        w = self.wp.count_working_orders if with_orders is None else with_orders
        loads = side_loads(view, with_orders=w, extra=extra)
        return self._weighted(view, [(s, ld.worst) for s, ld in loads.items()])

    def fitting_qty(self, view: AccountView, order: Order) -> int:
        """The largest quantity (0 ... ``order.qty``) of ``order`` that keeps the projected exposure within the limit
        (or not above the current exposure, when that is already over)."""
        bound = max(self.limit_for(view), self.exposure(view))
        for q in range(order.qty, 0, -1):
            if self.exposure(view, dataclasses.replace(order, qty=q)) <= bound:
                return q
        return 0

    def check_order(self, view: AccountView, order: Order) -> Decision:
        """DENY an order that raises the projected exposure above the limit."""
        if is_bracket_child(order):
            return ALLOW
        limit = self.limit_for(view)
        cur = self.exposure(view)
        proj = self.exposure(view, order)
        if proj <= limit or proj <= cur:
            return ALLOW
        reason = (
            f"{order.side.name.lower()} {order.qty} {order.symbol} would bring the position to {fmt_qty(proj)} "
            f"mini-equivalents (working orders counted), above the {fmt_qty(limit)} limit"
        )
        if self.wp.on_oversize is OnOversize.SIZE_DOWN:
            reason += f"; at most {self.fitting_qty(view, order)} would fit"
        return self.decision(Action.DENY, reason, symbol=order.symbol)

    def excess_closes(self, view: AccountView) -> list[tuple[str, int]]:
        """``(symbol, qty)`` to close, newest position first, to bring positions within the limit (empty if within)."""
        limit = self.limit_for(view)
        excess = self.exposure(view, with_orders=False) - limit
        out: list[tuple[str, int]] = []
        for p in sorted((p for p in view.positions if p.signed_qty), key=lambda p: -p.opened_ts_ns):
            if excess <= 0:
                break
            w = self.weight_of(view, p.symbol)
            n = min(abs(p.signed_qty), math.ceil(excess / w))
            out.append((p.symbol, n))
            excess -= n * w
        return out

    def evaluate(self, view: AccountView, point: EvalPoint) -> Decision:
        """Positions above the limit: close the newest; working orders that could exceed it: reduce-only."""
        limit = self.limit_for(view)
        # one pass: held = Σ |p| x w (orders do not count), potential = Σ worst x w; compared in integers
        with_orders = self.wp.count_working_orders
        loads = side_loads(view, with_orders=with_orders)
        ln, ld_ = limit.numerator, limit.denominator
        # Σ |p| x w (held) and Σ worst x w (potential) in one pass, as integers over a common denominator
        hn = pn = 0
        den = 1
        ratios = self._ratios
        for s, ld in loads.items():
            nd = ratios.get(s)
            if nd is None:
                w = self.weight_of(view, s)
                nd = ratios[s] = (w.numerator, w.denominator)
            n, d = nd
            if d != den and den % d:
                m = math.lcm(den, d)
                hn *= m // den
                pn *= m // den
                den = m
            f = n * (den // d)
            p = ld.p
            hn += (p if p >= 0 else -p) * f
            if with_orders:
                pn += ld.worst * f
        hd = pd = den
        if hn * ld_ > ln * hd:
            held = Fraction(hn, hd)
            closes = self.excess_closes(view)
            sym, n = closes[0]
            plan = ", ".join(f"{q} {s}" for s, q in closes)
            return self.decision(
                Action.CLOSE_POSITION,
                f"position {fmt_qty(held)} mini-equivalents exceeds the {fmt_qty(limit)} limit; "
                f"cancel opening orders and close the excess newest first ({plan})",
                symbol=sym,
                qty=_excess_qty(n, view.position_qty(sym)),
            )
        if with_orders and pn * ld_ > ln * pd:
            pot = Fraction(pn, pd)
            return self.decision(
                Action.REDUCE_ONLY,
                f"working orders could bring the position to {fmt_qty(pot)} mini-equivalents, above the "
                f"{fmt_qty(limit)} limit; cancel opening orders",
            )
        return ALLOW

    def describe(self) -> str:
        """One line: the limit."""
        assert isinstance(self.wp, MaxPositionParams)
        return f"R5 max position {fmt_qty(Fraction(self.wp.limit))} minis (micro ratio {self.wp.micro_ratio})"


class ScalingStep(BaseModel):
    """One rung of the scaling ladder: ``max_lots`` once the end-of-day profit exceeds ``eod_profit_gt`` (USD);
    ``eod_profit_gt`` ``None`` is the base rung."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    eod_profit_gt: USD | None = None
    max_lots: int = Field(gt=0)


class ScalingPlanParams(_WeightedParams):
    """R6 parameters: ``ladder`` of :class:`ScalingStep` (XFA 50K, 3P UNVERIFIED: 2 -> 3 (> $1,500) -> 5 (> $2,000)),
    plus the shared weighting fields."""

    ladder: tuple[ScalingStep, ...] = Field(min_length=1)


class ScalingPlanRule(MaxPositionRule):
    """R6: the R5 check with the day's limit from the scaling ladder.

    The limit is the largest ``max_lots`` whose ``eod_profit_gt`` is below the end-of-day profit ``sod_balance -
    start_balance`` (the balance at the day's start is the last end-of-day balance), else the smallest rung. It is
    fixed for the whole trading day because ``sod_balance`` is.
    """

    rule_id = "R6"
    params_cls = ScalingPlanParams
    points = frozenset({EvalPoint.PRE, EvalPoint.FILL, EvalPoint.CLOCK})

    def __init__(self, params: _WeightedParams, *, firm: bool = True) -> None:
        super().__init__(params, firm=firm)
        self._ladder_cache: tuple[int, Fraction] | None = None  # (EOD profit in cents, the day's limit)

    def limit_for(self, view: AccountView) -> Fraction:
        """The day's limit in mini-equivalents from the ladder."""
        assert isinstance(self.wp, ScalingPlanParams)
        profit = view.sod_balance - view.start_balance
        cached = self._ladder_cache
        if cached is not None and cached[0] == profit.cents:
            return cached[1]
        ok = [s.max_lots for s in self.wp.ladder if s.eod_profit_gt is None or profit > s.eod_profit_gt]
        lim = Fraction(max(ok) if ok else min(s.max_lots for s in self.wp.ladder))
        self._ladder_cache = (profit.cents, lim)
        return lim

    def describe(self) -> str:
        """One line: the ladder."""
        assert isinstance(self.wp, ScalingPlanParams)
        rungs = ", ".join(
            f"{s.max_lots}" + (f" (> {fmt_usd(s.eod_profit_gt)})" if s.eod_profit_gt is not None else "")
            for s in self.wp.ladder
        )
        return f"R6 scaling plan: {rungs}"


class SymbolLimit(BaseModel):
    """R7 limits of one root: ``long_max`` / ``short_max`` contracts (``None`` = no limit), or ``blocked``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    long_max: int | None = Field(default=None, ge=0)
    short_max: int | None = Field(default=None, ge=0)
    blocked: bool = False


class SymbolLimitsParams(RuleParams):
    """R7 parameters: ``symbols`` maps a root (``"NQ"``) to its :class:`SymbolLimit`."""

    symbols: dict[str, SymbolLimit]


class SymbolLimitsRule(Rule):
    """R7: per-root, per-side contract limits and symbol blocks, counting positions + working orders (raw contracts,
    worst case per side, bracket children excluded).

    PRE: DENY an opening order on a blocked root, or one that raises that side's potential above its max. FILL: a
    position on a blocked root ⇒ CLOSE_POSITION of the whole position (newest contract of the root first); a side
    above its max ⇒ CLOSE_POSITION of the excess (``qty``) in that side's newest contract; working orders that could
    exceed ⇒ REDUCE_ONLY.
    """

    rule_id = "R7"
    params_cls = SymbolLimitsParams
    points = frozenset({EvalPoint.PRE, EvalPoint.FILL})

    def __init__(self, params: SymbolLimitsParams, *, firm: bool = False) -> None:
        super().__init__(params, firm=firm)
        self.p = params

    def _potential(self, view: AccountView, root: str, extra: Order | None, with_orders: bool) -> tuple[int, int]:
        long_ = short = 0
        for s, ld in side_loads(view, with_orders=with_orders, extra=extra).items():
            if view.root_of(s) == root:
                long_ += ld.long_potential
                short += ld.short_potential
        return long_, short

    def check_order(self, view: AccountView, order: Order) -> Decision:
        """DENY an opening order on a blocked root or above a side's limit."""
        if is_bracket_child(order):
            return ALLOW
        root = view.root_of(order.symbol)
        lim = self.p.symbols.get(root)
        if lim is None:
            return ALLOW
        if lim.blocked:
            if is_opening(view, order):
                return self.decision(Action.DENY, f"{root} is blocked; only reducing orders", symbol=order.symbol)
            return ALLOW
        cur = self._potential(view, root, None, True)
        proj = self._potential(view, root, order, True)
        for i, (name, mx) in enumerate((("long", lim.long_max), ("short", lim.short_max))):
            if mx is not None and proj[i] > mx and proj[i] > cur[i]:
                return self.decision(
                    Action.DENY,
                    f"{order.side.name.lower()} {order.qty} {order.symbol} would bring {root} to {proj[i]} {name} "
                    f"contracts (positions + working orders), above the {name} limit of {mx}",
                    symbol=order.symbol,
                )
        return ALLOW

    def _newest(self, view: AccountView, root: str) -> OpenPosition | None:
        held = [p for p in view.positions if p.signed_qty and view.root_of(p.symbol) == root]
        return max(held, key=lambda p: p.opened_ts_ns) if held else None

    def evaluate(self, view: AccountView, point: EvalPoint) -> Decision:
        """Close positions on blocked roots or above a side's limit; reduce-only when orders could exceed one."""
        found: list[Decision] = []
        # one pass over positions and orders: per configured root, (long, short) held and potential
        held_by: dict[str, list[int]] = {}
        pot_by: dict[str, list[int]] = {}
        newest_by: dict[str, OpenPosition] = {}
        symbols = self.p.symbols
        for s, ld in side_loads(view, with_orders=True).items():
            root = view.root_of(s)
            if root not in symbols:
                continue
            h = held_by.setdefault(root, [0, 0])
            h[0] += max(0, ld.p)
            h[1] += max(0, -ld.p)
            pt = pot_by.setdefault(root, [0, 0])
            pt[0] += ld.long_potential
            pt[1] += ld.short_potential
        if not held_by:
            return ALLOW  # no position and no counted order on a configured root: no limit can be exceeded
        newest_side: dict[tuple[str, int], OpenPosition] = {}  # (root, 0 long / 1 short) -> newest position
        for p in view.positions:
            if p.signed_qty:
                r = view.root_of(p.symbol)
                if r in held_by:
                    if r not in newest_by or p.opened_ts_ns > newest_by[r].opened_ts_ns:
                        newest_by[r] = p
                    key = (r, 0 if p.signed_qty > 0 else 1)
                    cur = newest_side.get(key)
                    if cur is None or p.opened_ts_ns > cur.opened_ts_ns:
                        newest_side[key] = p
        for root, lim in symbols.items():
            newest = newest_by.get(root)
            held = tuple(held_by.get(root, (0, 0)))
            pot = tuple(pot_by.get(root, (0, 0)))
            if lim.blocked:
                if newest is not None:
                    found.append(
                        self.decision(
                            Action.CLOSE_POSITION,
                            f"{root} is blocked: close the {newest.signed_qty:+d} {newest.symbol} position",
                            symbol=newest.symbol,
                        )
                    )
                elif pot != (0, 0):
                    found.append(self.decision(Action.REDUCE_ONLY, f"{root} is blocked: cancel its working orders"))
                continue
            for i, (name, mx) in enumerate((("long", lim.long_max), ("short", lim.short_max))):
                if mx is None:
                    continue
                side_newest = newest_side.get((root, i))
                if held[i] > mx and side_newest is not None:
                    found.append(
                        self.decision(
                            Action.CLOSE_POSITION,
                            f"{root} {name} position {held[i]} contracts exceeds the {name} limit of {mx}; "
                            f"close the excess ({held[i] - mx}) newest first",
                            symbol=side_newest.symbol,
                            qty=_excess_qty(held[i] - mx, side_newest.signed_qty),
                        )
                    )
                elif pot[i] > mx:
                    found.append(
                        self.decision(
                            Action.REDUCE_ONLY,
                            f"{root} working orders could bring {pot[i]} {name} contracts, above the {name} limit of "
                            f"{mx}; cancel opening orders",
                        )
                    )
        return max(found, key=lambda d: d.action) if found else ALLOW

    def describe(self) -> str:
        """One line: the roots and their limits."""
        parts = [
            f"{r} blocked" if lim.blocked else f"{r} long<={lim.long_max} short<={lim.short_max}"
            for r, lim in self.p.symbols.items()
        ]
        return "R7 symbol limits: " + (", ".join(parts) or "none")


def _excess_qty(excess: int, position: int) -> int | None:
    """The ``qty`` of an excess close: ``excess`` contracts of a ``position`` (signed contracts), or ``None`` (the
    whole position, which also cancels the contract's stops and targets) when the excess covers all of it."""
    return excess if 0 < excess < abs(position) else None
