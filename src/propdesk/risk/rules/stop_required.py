"""R13: a stop-loss is required within ``grace_s`` seconds of a position opening.

Source: ``../shared/specs/risk-rules.md`` section 5 (R13). A position is covered when working stop orders (stop,
stop-limit, trailing stop; bracket children included, suspended ones too) on the opposite side of the same contract
add up to its full size. The timer starts at ``OpenPosition.opened_ts_ns`` (the account state should move it when a
fill grows the position, so a grown position gets its own grace period).

The decision set has no "attach a stop" action: with ``on_missing = attach_stop`` the rule WARNs (with ``symbol``)
once the grace period ends, and the guard attaches a reduce-only stop for the uncovered contracts
``default_stop_ticks`` beyond the average price (:meth:`StopRequiredRule.stops_to_attach`, sent by
:meth:`propdesk.risk.enforcer.Enforcer.attach_stop`, once per uncovered position); if the position is still uncovered
after a second grace period (the stop was rejected or canceled), the rule asks for CLOSE_POSITION.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pydantic import Field

from propdesk.model.contracts import spec
from propdesk.model.enums import Side
from propdesk.model.orders import OrderType
from propdesk.model.price import Price
from propdesk.risk.decisions import ALLOW, Action, Decision, EvalPoint
from propdesk.risk.rules.base import AccountView, Rule, RuleParams
from propdesk.risk.rules.common import sign

_STOP_TYPES = frozenset({OrderType.STOP, OrderType.STOP_LIMIT, OrderType.TRAILING_STOP})
_NS_PER_S = 1_000_000_000


class OnMissingStop(StrEnum):
    """What to do with an unprotected position: ``attach_stop`` (then close if that fails) or ``close``."""

    ATTACH_STOP = "attach_stop"
    CLOSE = "close"


class StopRequiredParams(RuleParams):
    """R13 parameters: ``grace_s`` seconds to get a stop in place, ``on_missing``, ``default_stop_ticks`` (distance of
    an attached stop from the average price, in ticks)."""

    grace_s: int = Field(gt=0)
    on_missing: OnMissingStop = OnMissingStop.ATTACH_STOP
    default_stop_ticks: int = Field(gt=0)


@dataclass(frozen=True, slots=True)
class MissingStop:
    """An unprotected part of a position: ``qty`` contracts of ``symbol`` need a ``side`` stop
    ``stop_ticks`` from the average price; uncovered since ``since_ns`` (UTC ns), grace ends at ``deadline_ns``."""

    symbol: str
    side: Side
    qty: int
    stop_ticks: int
    since_ns: int
    deadline_ns: int


class StopRequiredRule(Rule):
    """R13: FILL/CLOCK: an uncovered position past ``grace_s`` ⇒ WARN (attach a stop) or CLOSE_POSITION; with
    ``attach_stop``, CLOSE_POSITION after ``2 x grace_s``."""

    rule_id = "R13"
    params_cls = StopRequiredParams
    points = frozenset({EvalPoint.FILL, EvalPoint.CLOCK})

    def __init__(self, params: StopRequiredParams, *, firm: bool = False) -> None:
        super().__init__(params, firm=firm)
        self.p = params

    def missing_stops(self, view: AccountView) -> list[MissingStop]:
        """Every position not fully covered by working stops, whether or not its grace period has ended."""
        out: list[MissingStop] = []
        held = [p for p in view.positions if p.signed_qty]
        if not held:
            return out
        cover: dict[tuple[str, Side], int] = {}  # one pass over the working orders
        for o in view.working_orders:
            if o.order_type in _STOP_TYPES and o.is_open:
                key = (o.symbol, o.side)
                cover[key] = cover.get(key, 0) + o.leaves_qty
        for p in held:
            side = Side.SELL if p.signed_qty > 0 else Side.BUY
            covered = cover.get((p.symbol, side), 0)
            gap = abs(p.signed_qty) - covered
            if gap > 0:
                deadline = p.opened_ts_ns + self.p.grace_s * _NS_PER_S
                out.append(MissingStop(p.symbol, side, gap, self.p.default_stop_ticks, p.opened_ts_ns, deadline))
        return out

    def stops_to_attach(self, view: AccountView) -> list[MissingStop]:
        """With ``on_missing = attach_stop``: the uncovered positions whose grace period has ended and whose close
        deadline (a second grace period) has not, oldest first; empty otherwise. The guard attaches a stop for each
        (see the module docstring)."""
        if self.p.on_missing is not OnMissingStop.ATTACH_STOP:
            return []
        now = view.now_ns
        grace_ns = self.p.grace_s * _NS_PER_S
        due = [m for m in self.missing_stops(view) if m.deadline_ns <= now < m.deadline_ns + grace_ns]
        return sorted(due, key=lambda m: m.since_ns)

    def attach_price(self, view: AccountView, missing: MissingStop) -> Price | None:
        """The stop price for ``missing``: ``default_stop_ticks`` ticks beyond the position's average price (below
        for a long, above for a short), on the contract's tick grid (rounded away from the average price, so the
        risk is never less than the distance asked for). ``None`` when the position is gone.

        Raises:
            ContractError: the root is not in the contract table.
        """
        pos = next((p for p in view.positions if p.symbol == missing.symbol and p.signed_qty), None)
        if pos is None:
            return None
        tick = spec(view.root_of(missing.symbol)).tick_size.raw
        away = missing.stop_ticks * tick
        if missing.side is Side.SELL:  # protects a long: below
            raw = pos.avg_price.raw - away
            raw -= raw % tick
        else:  # protects a short: above
            raw = pos.avg_price.raw + away
            raw += -raw % tick
        return Price(raw)

    def next_check_ns(self, view: AccountView) -> int | None:
        """The earliest grace deadline still ahead (for the CLOCK timer), or ``None``."""
        ahead = [m.deadline_ns for m in self.missing_stops(view) if m.deadline_ns > view.now_ns]
        return min(ahead) if ahead else None

    def evaluate(self, view: AccountView, point: EvalPoint) -> Decision:
        """The most urgent uncovered position past its grace period."""
        now = view.now_ns
        grace_ns = self.p.grace_s * _NS_PER_S
        if not any(p.signed_qty and now >= p.opened_ts_ns + grace_ns for p in view.positions):
            return ALLOW  # fast path: every position is still inside its grace period (or there is none)
        warn: Decision | None = None
        for m in sorted(self.missing_stops(view), key=lambda m: m.since_ns):
            if now < m.deadline_ns:
                continue
            pos = view.position_qty(m.symbol)
            what = f"{m.symbol} {pos:+d}: {m.qty} of {abs(pos)} contracts have no stop after {self.p.grace_s} s"
            if self.p.on_missing is OnMissingStop.CLOSE or now >= m.deadline_ns + grace_ns:
                tail = "close the position" if self.p.on_missing is OnMissingStop.CLOSE else "attach failed; close it"
                return self.decision(Action.CLOSE_POSITION, f"{what}; {tail}", symbol=m.symbol)
            if warn is None:
                warn = self.decision(
                    Action.WARN,
                    f"{what}; attach a {m.side.name.lower()} stop {m.stop_ticks} ticks away "
                    f"({'below' if sign(pos) > 0 else 'above'} the average price)",
                    symbol=m.symbol,
                )
        return warn or ALLOW

    def describe(self) -> str:
        """One line: grace and action."""
        return f"R13 stop required within {self.p.grace_s} s ({self.p.on_missing.value})"
