"""R10 session windows (personal) and R11 hard flat time (firm).

Source: ``../shared/specs/risk-rules.md`` section 5 (R10, R11) and section 2 (trading day, flat time, entry cutoff).
R10 presets are the ProjectX lockout sessions in CT (https://intercom.help/tradeify-test; ProjectX platform help).
R11: https://help.topstep.com/en/articles/8284206 (flat before 15:10 CT, courtesy flatten from 15:08 CT).

Times: the view's ``now_ns`` (UTC ns) is read as America/Chicago wall time with tzdata (DST-correct). R11 reads the
flat time and entry cutoff from a :class:`FlatSchedule` given at construction (the calendar's
``propdesk.risk.calendar.FirmSchedule``), which already applies ``flat_buffer`` and ``entry_cutoff_min``.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Annotated, Protocol

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from propdesk.core.timefmt import CT, ct_datetime, datetime_to_ns
from propdesk.model.orders import Order
from propdesk.risk.decisions import ALLOW, Action, Decision, EvalPoint
from propdesk.risk.rules.base import AccountView, Rule, RuleParams
from propdesk.risk.rules.common import counted_orders_memo, fmt_ct, is_opening

SESSION_PRESETS: dict[str, tuple[time, time]] = {
    "new_york": (time(7), time(16)),
    "london": (time(2), time(11)),
    "tokyo": (time(18), time(3)),
    "sydney": (time(16), time(1)),
}
"""ProjectX lockout sessions, CT wall times (start, end); source: risk-rules.md section 5, R10."""


class Window(BaseModel):
    """An allowed trading window in CT wall time: ``start`` <= t < ``end``; it crosses midnight when end <= start."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: time
    end: time

    def contains(self, t: time) -> bool:
        """True when wall time ``t`` is inside the window."""
        if self.start < self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M} CT"


def _window(value: object) -> object:
    if isinstance(value, str):
        if value not in SESSION_PRESETS:
            raise ValueError(f"unknown session preset {value!r}; known: {', '.join(SESSION_PRESETS)}")
        start, end = SESSION_PRESETS[value]
        return {"start": start, "end": end}
    return value


class WindowEnd(StrEnum):
    """R10 action outside the windows: ``reduce_only`` (default) or ``flatten``."""

    REDUCE_ONLY = "reduce_only"
    FLATTEN = "flatten"


class SessionWindowsParams(RuleParams):
    """R10 parameters: ``windows`` (each ``{start, end}`` in CT, or a preset name: new_york, london, tokyo, sydney)
    and ``on_window_end``."""

    windows: tuple[Annotated[Window, BeforeValidator(_window)], ...] = Field(min_length=1)
    on_window_end: WindowEnd = WindowEnd.REDUCE_ONLY


def _ct(ts_ns: int) -> datetime:
    return ct_datetime(ts_ns).replace(microsecond=0)


_ns = datetime_to_ns


class SessionWindowsRule(Rule):
    """R10: PRE DENY opening orders outside every window; CLOCK outside every window ⇒ ``on_window_end``
    (REDUCE_ONLY or FLATTEN) until the next window start."""

    rule_id = "R10"
    params_cls = SessionWindowsParams
    points = frozenset({EvalPoint.PRE, EvalPoint.CLOCK})

    def __init__(self, params: SessionWindowsParams, *, firm: bool = False) -> None:
        super().__init__(params, firm=firm)
        self.p = params

    def inside(self, now_ns: int) -> bool:
        """True when ``now_ns`` falls in one of the windows (CT wall time)."""
        t = _ct(now_ns).time()
        return any(w.contains(t) for w in self.p.windows)

    def next_start_ns(self, now_ns: int) -> int:
        """The next window start after ``now_ns`` (UTC ns)."""
        local = _ct(now_ns)
        best: int | None = None
        for w in self.p.windows:
            for days in (0, 1, 2):
                d = local.date() + timedelta(days=days)
                ns = _ns(datetime.combine(d, w.start, tzinfo=CT))
                if ns > now_ns:
                    best = ns if best is None else min(best, ns)
                    break
        assert best is not None  # a start within two days always exists
        return best

    def _windows_text(self) -> str:
        return ", ".join(str(w) for w in self.p.windows)

    def evaluate(self, view: AccountView, point: EvalPoint) -> Decision:
        """Outside every window: reduce-only or flatten until the next window opens."""
        now = view.now_ns
        if self.inside(now):
            return ALLOW
        nxt = self.next_start_ns(now)
        flatten = self.p.on_window_end is WindowEnd.FLATTEN
        return self.decision(
            Action.FLATTEN if flatten else Action.REDUCE_ONLY,
            f"outside the session windows ({self._windows_text()}); "
            f"{'flatten' if flatten else 'reduce-only'} until {fmt_ct(nxt)}",
            until_ns=nxt,
        )

    def check_order(self, view: AccountView, order: Order) -> Decision:
        """DENY an opening order outside every window."""
        now = view.now_ns
        if self.inside(now) or not is_opening(view, order):
            return ALLOW
        return self.decision(
            Action.DENY,
            f"outside the session windows ({self._windows_text()}); next opens {fmt_ct(self.next_start_ns(now))}",
            symbol=order.symbol,
        )

    def describe(self) -> str:
        """One line: the windows."""
        return f"R10 session windows: {self._windows_text()} ({self.p.on_window_end.value} at the end)"


class FlatSchedule(Protocol):
    """The calendar's flat and entry-cutoff times for a trading date and product (UTC ns).

    ``flat_time_ns(d, product)`` = ``flat_deadline - flat_buffer``, ``entry_cutoff_ns(d, product)`` =
    ``flat_deadline - entry_cutoff_min`` (risk-rules.md section 2); ``propdesk.risk.calendar.FirmSchedule`` implements
    it. Either may raise for a date the calendar does not cover (the RuleSet then fails closed).
    """

    def flat_time_ns(self, d: date, product: str) -> int: ...
    def entry_cutoff_ns(self, d: date, product: str) -> int: ...


class FlatTimeParams(RuleParams):
    """R11 parameters: ``reference_product``, the root whose flat time is the account's (ES: 15:05 CT on a normal day).

    The buffers (``flat_buffer``, ``entry_cutoff_min``) belong to the schedule's configuration, not to this rule.
    """

    reference_product: str = "ES"


class FlatTimeRule(Rule):
    """R11 hard flat time (firm; cannot be disabled).

    - Between sessions (``now < view.day_start_ns``): LOCKOUT until the day start; PRE DENY opening orders.
    - At or after the reference product's flat time: FLATTEN + LOCKOUT until ``view.next_day_start_ns`` (the next
      session open: Sunday 17:00 CT after a Friday, the calendar's reopen after a holiday).
    - Before that, a product past its own flat time (early-close products) with a position or working orders:
      CLOSE_POSITION of that contract. A position past its product's entry cutoff: WARN.
    - PRE: DENY an opening order at or after its product's entry cutoff.

    Args:
        params: :class:`FlatTimeParams`.
        schedule: the :class:`FlatSchedule` (required).
    """

    rule_id = "R11"
    params_cls = FlatTimeParams
    points = frozenset({EvalPoint.PRE, EvalPoint.FILL, EvalPoint.CLOCK})

    def __init__(self, params: FlatTimeParams, *, schedule: FlatSchedule, firm: bool = True) -> None:
        super().__init__(params, firm=firm)
        self.p = params
        self.schedule = schedule
        # The schedule's answers for the current trading date, by product (a schedule is a pure function of the
        # date and product); emptied when the trading date changes, so it holds one day's products at most.
        self._day: date | None = None
        self._flat: dict[str, int] = {}
        self._cutoff: dict[str, int] = {}
        self._products: dict[str, str] = {}  # symbol -> product root (never changes)

    def _flat_ns(self, d: date, product: str) -> int:
        if d != self._day:
            self._day = d
            self._flat = {}
            self._cutoff = {}
        at = self._flat.get(product)
        if at is None:
            at = self._flat[product] = self.schedule.flat_time_ns(d, product)
        return at

    def _cutoff_ns(self, d: date, product: str) -> int:
        if d != self._day:
            self._day = d
            self._flat = {}
            self._cutoff = {}
        at = self._cutoff.get(product)
        if at is None:
            at = self._cutoff[product] = self.schedule.entry_cutoff_ns(d, product)
        return at

    def evaluate(self, view: AccountView, point: EvalPoint) -> Decision:
        """Lock out between sessions and after the flat time; close early-close products at theirs."""
        now = view.now_ns
        if now < view.day_start_ns:
            return self.decision(
                Action.LOCKOUT,
                f"between sessions: flat and locked until the session opens at {fmt_ct(view.day_start_ns)}",
                until_ns=view.day_start_ns,
            )
        d = view.trading_date
        flat = self._flat_ns(d, self.p.reference_product)
        if now >= flat:
            return self.decision(
                Action.LOCKOUT,
                f"flat time {fmt_ct(flat)} reached: flatten and lock out until {fmt_ct(view.next_day_start_ns)}",
                until_ns=view.next_day_start_ns,
            )
        symbols = {p.symbol for p in view.positions if p.signed_qty}
        orders = counted_orders_memo(view)
        if orders:
            symbols.update(o.symbol for o in orders)
        warn: Decision | None = None
        for s in sorted(symbols) if len(symbols) > 1 else symbols:
            product = self._products.get(s)
            if product is None:
                product = self._products[s] = view.root_of(s)
            pflat = self._flat_ns(d, product)
            if now >= pflat:
                return self.decision(
                    Action.CLOSE_POSITION,
                    f"{product} flat time {fmt_ct(pflat)} reached: cancel {s} orders and close the position",
                    symbol=s,
                )
            if warn is None and view.position_qty(s) and now >= self._cutoff_ns(d, product):
                warn = self.decision(
                    Action.WARN, f"{s} entries are closed; the position will be flattened at {fmt_ct(pflat)}", symbol=s
                )
        return warn or ALLOW

    def check_order(self, view: AccountView, order: Order) -> Decision:
        """DENY an opening order between sessions or at or after its product's entry cutoff."""
        if not is_opening(view, order):
            return ALLOW
        now = view.now_ns
        if now < view.day_start_ns:
            return self.decision(
                Action.DENY, f"between sessions; entries open at {fmt_ct(view.day_start_ns)}", symbol=order.symbol
            )
        product = view.root_of(order.symbol)
        cutoff = self.schedule.entry_cutoff_ns(view.trading_date, product)
        if now >= cutoff:
            flat = self.schedule.flat_time_ns(view.trading_date, product)
            return self.decision(
                Action.DENY,
                f"{product} entries stop at {fmt_ct(cutoff)} (flat at {fmt_ct(flat)})",
                symbol=order.symbol,
            )
        return ALLOW

    def describe(self) -> str:
        """One line."""
        return f"R11 hard flat time (calendar; account flat time of {self.p.reference_product})"
