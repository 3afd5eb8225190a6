"""The CME trading calendar: trading dates, session opens and closes, holidays, early closes and product hours.

Built on ``exchange_calendars`` (its ``CMES`` calendar, https://github.com/gerrymanoim/exchange_calendars), not on
``pandas_market_calendars``: exchange_calendars is actively maintained, is already a propdesk dependency (contract
expiry counting in :mod:`propdesk.model.symbology` uses it, so expiry and sessions share one source of holidays),
has a CME Globex calendar whose sessions open at 17:00 CT on the previous calendar day with CME's closures and
12:00 CT holiday closes, and answers schedule questions from rules, without a network or data download.
pandas_market_calendars has per-product CME calendars with their own holiday rules, but would be a second dependency
and a second set of rules to keep consistent; the per-product hours it would add are a small data table here.

What CMES contains and where propdesk deviates is listed, with sources, in ``model/resources/calendar.toml`` (the
versioned data file this module reads). In short:

* A CMES session whose date is a regular holiday of the clearing calendar (``XNYS``; CME Clearing observes the NYSE
  holidays), e.g. Thanksgiving or MLK day, is a *holiday session*: Globex trades in the morning, halts (12:00 CT),
  and the trades carry the next trade date, as CME does. Holiday sessions are not trading dates; they are folded
  into the next trading date, whose :meth:`TradingCalendar.day_start_ns` is then the holiday session's open.
* Early closes of real trading dates come from CMES's special closes (the sessions CMES lists in ``early_closes``:
  12:00 CT, every product) and from ``early_close_rules`` (equity index 12:15 CT on the NYSE early-close days,
  including 2025-07-03 which CMES lacks).
* Any other CMES close is a regular close and ends the session at the 17:00 CT ``session_boundary``: CMES closes
  regular sessions at 16:00 CT from exchange_calendars 4.13.3 and at 17:00 CT before, and both give the same
  calendar. The daily 16:00-17:00 CT halt comes from product hours (``session_open``/``session_close`` of
  ``model/resources/contracts.toml`` for the listed products, ``[products]`` of calendar.toml for grains and
  livestock).
* Juneteenth is a holiday session with a 12:00 CT halt (``holiday_sessions``); CMES has that halt from
  exchange_calendars 4.13.3 and a full session before.

Definitions (risk-rules.md section 2; all instants are UTC nanoseconds, all local times America/Chicago):

* A trading date ``d`` *ends* at the session boundary, 17:00 CT on ``d``. :meth:`TradingCalendar.trading_date` of an
  instant is the first trading date whose end is after it: Sunday 18:00 CT -> Monday, Thursday 17:30 CT -> Friday,
  Saturday -> Monday, Thanksgiving Thursday 10:00 CT -> Friday. This is the same rule as
  :meth:`propdesk.data.aggregation.sessions.CmeSessions.trade_date` given this calendar's holidays.
* :meth:`TradingCalendar.day_start_ns` of ``d`` is the open of the first exchange session of ``d``: 17:00 CT the day
  before, Sunday 17:00 CT for Monday, the holiday session's open or the reopen after a closure otherwise.
* :meth:`TradingCalendar.session_close_ns` of ``d`` is when the product stops trading on ``d``: its daily close
  (16:00 CT for CME equity index, energy, metals, FX), or the early close.

A date or instant outside ``[first_date, last_date]`` of the data file raises :class:`CalendarCoverageError`
(risk turns it into REDUCING, risk-rules.md section 7.6).
"""

from __future__ import annotations

import bisect
import tomllib
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from importlib import resources
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from propdesk.core.errors import PropdeskError
from propdesk.core.timefmt import CT

__all__ = [
    "ALL_PRODUCTS",
    "DAILY_HALT",
    "EXCHANGE_TZ",
    "SESSION_OPEN",
    "CalendarCoverageError",
    "CalendarError",
    "CalendarSession",
    "ProductHours",
    "TradingCalendar",
    "chicago_local",
    "default_calendar",
    "load_calendar",
    "local_ns",
]

_RESOURCE: Final[str] = "calendar.toml"
_EPOCH: Final[datetime] = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_DAY: Final[timedelta] = timedelta(days=1)
_ONE_US: Final[timedelta] = timedelta(microseconds=1)
ALL_PRODUCTS: Final[str] = "*"
"""Key of an early close that applies to every product without an asset-class-specific entry."""
EXCHANGE_TZ: Final[str] = CT.key
"""CME's time zone (``America/Chicago``): every session time below is wall-clock time there."""
SESSION_OPEN: Final[time] = time(17, 0)
"""The CME Globex session open, where one trading date ends and the next starts (the daily session roll), CT."""
DAILY_HALT: Final[time] = time(16, 0)
"""The start of CME Globex's daily maintenance halt (16:00-17:00 CT) and Friday's close, CT."""


class CalendarError(PropdeskError):
    """The calendar data is invalid, or a date asked about is not a trading date."""


class CalendarCoverageError(CalendarError):
    """A date or instant outside the range the calendar data covers (risk treats this as REDUCING)."""


def _to_ns(dt: datetime) -> int:
    return ((dt - _EPOCH) // _ONE_US) * 1000


def _local_ns(day: date, at: time, zone: ZoneInfo) -> int:
    return _to_ns(datetime.combine(day, at.replace(fold=0), tzinfo=zone))


def _local_dt(ts_ns: int, zone: ZoneInfo) -> datetime:
    return (_EPOCH + timedelta(microseconds=ts_ns // 1000)).astimezone(zone)


@dataclass(frozen=True, slots=True)
class ProductHours:
    """A product's daily trading hours in the calendar's time zone.

    Attributes:
        root: the product root (``ES``, ``ZC``), or ``*`` for the default hours.
        asset_class: ``equity_index``, ``energy``, ``metals``, ``fx``, ``grains``, ``livestock``, ... (selects
            asset-class early closes).
        open: local open; when ``open >= close`` the product opens on the calendar day *before* the session date
            (CME Globex 17:00 for a 16:00 close), else on the session date (livestock 08:30 - 13:05).
        close: local daily close on the session date.
        breaks: local ``(start, end)`` intervals inside the session when the product does not trade (grains
            07:45-08:30). Breaks are not closes: no flattening happens at a break.
        source: where the hours come from.
    """

    root: str
    asset_class: str
    open: time
    close: time
    breaks: tuple[tuple[time, time], ...] = ()
    source: str = ""

    @property
    def opens_previous_day(self) -> bool:
        """True when the product opens on the calendar day before the session date."""
        return self.open >= self.close


@dataclass(frozen=True, slots=True)
class CalendarSession:
    """One exchange session (an interval when the exchange trades) and the trading date it belongs to.

    Attributes:
        label: the exchange's session date (the calendar date of its close).
        trading_date: the trading date its trades carry: ``label`` for a regular session, a later date for a
            holiday session.
        open_ns: session open, UTC ns.
        close_ns: session end, UTC ns: the 17:00 CT boundary of a regular session (early closes are separate, per
            product), the halt of a holiday session.
    """

    label: date
    trading_date: date
    open_ns: int
    close_ns: int

    @property
    def is_holiday_session(self) -> bool:
        """True when the session's trades carry a later trading date."""
        return self.trading_date != self.label


@dataclass(frozen=True, slots=True)
class _Day:
    start_ns: int
    end_ns: int
    sessions: tuple[int, ...]


class TradingCalendar:
    """Trading dates, sessions, early closes and product hours (see the module docstring for the rules).

    Build the shipped calendar with :func:`default_calendar` (cached) or :func:`load_calendar`. The constructor takes
    explicit sessions so tests can build a synthetic schedule.

    Args:
        sessions: every exchange session in time order, non-overlapping. The sessions of one trading date are
            consecutive and the last of them has ``label == trading_date``; the trading date ends at its close.
        early_closes: trading date -> {asset class or :data:`ALL_PRODUCTS`: local close}.
        products: root -> hours; products not listed use ``default_hours``.
        default_hours: hours used for ``product=None`` (17:00 previous day to 16:00 CT when omitted); a root
            missing from ``products`` is refused (see :meth:`hours`).
        tz: IANA time zone of every local time (``America/Chicago``).
        source: a description of the data (for error messages and reports).

    Raises:
        CalendarError: sessions out of order, overlapping, empty, or not grouped as described; unknown ``tz``.
    """

    __slots__ = (
        "_closes",
        "_dates",
        "_days",
        "_default_hours",
        "_early",
        "_ends",
        "_opens",
        "_products",
        "_sessions",
        "_source",
        "_spans",
        "_tz",
        "_zone",
    )

    def __init__(
        self,
        sessions: Sequence[CalendarSession],
        *,
        early_closes: Mapping[date, Mapping[str, time]] | None = None,
        products: Mapping[str, ProductHours] | None = None,
        default_hours: ProductHours | None = None,
        tz: str = EXCHANGE_TZ,
        source: str = "",
    ) -> None:
        try:
            self._zone = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise CalendarError(f"unknown time zone {tz!r}") from None
        self._tz = tz
        self._source = source or "synthetic calendar"
        if not sessions:
            raise CalendarError(f"{self._source}: no sessions")
        self._sessions: tuple[CalendarSession, ...] = tuple(sessions)
        days: dict[date, _Day] = {}
        pending: list[int] = []
        prev_close: int | None = None
        for i, s in enumerate(self._sessions):
            if s.open_ns >= s.close_ns:
                raise CalendarError(f"{self._source}: session {s.label} opens at or after its close")
            if prev_close is not None and s.open_ns < prev_close:
                raise CalendarError(f"{self._source}: session {s.label} overlaps the previous session")
            if s.trading_date < s.label:
                raise CalendarError(f"{self._source}: session {s.label} carries an earlier trading date")
            if pending and self._sessions[pending[0]].trading_date != s.trading_date:
                raise CalendarError(f"{self._source}: holiday session before {s.label} has no trading date of its own")
            prev_close = s.close_ns
            pending.append(i)
            if not s.is_holiday_session:
                if s.label in days:
                    raise CalendarError(f"{self._source}: two sessions for trading date {s.label}")
                days[s.label] = _Day(self._sessions[pending[0]].open_ns, s.close_ns, tuple(pending))
                pending = []
        if pending:
            raise CalendarError(f"{self._source}: the last sessions belong to no trading date")
        self._days = days
        self._dates: list[date] = sorted(days)
        self._ends: list[int] = [days[d].end_ns for d in self._dates]
        self._opens: list[int] = [s.open_ns for s in self._sessions]
        self._closes: list[int] = [s.close_ns for s in self._sessions]
        self._early: dict[date, dict[str, time]] = {d: dict(v) for d, v in (early_closes or {}).items()}
        self._products: dict[str, ProductHours] = dict(products or {})
        self._default_hours = default_hours or ProductHours(ALL_PRODUCTS, ALL_PRODUCTS, SESSION_OPEN, DAILY_HALT)
        self._spans: dict[str | None, tuple[list[int], list[int]]] = {}

    # ------------------------------------------------------------------ coverage and dates

    @property
    def tz(self) -> str:
        """The IANA time zone of local times (``America/Chicago``)."""
        return self._tz

    @property
    def first_date(self) -> date:
        """The first trading date covered."""
        return self._dates[0]

    @property
    def last_date(self) -> date:
        """The last trading date covered."""
        return self._dates[-1]

    @property
    def trading_dates(self) -> tuple[date, ...]:
        """Every trading date covered, in order."""
        return tuple(self._dates)

    @property
    def sessions(self) -> tuple[CalendarSession, ...]:
        """Every exchange session, in order (holiday sessions included)."""
        return self._sessions

    @property
    def holidays(self) -> frozenset[date]:
        """Weekdays in the covered range that are not trading dates (full closures and holiday sessions)."""
        out: set[date] = set()
        d = self.first_date
        while d <= self.last_date:
            if d.weekday() < 5 and d not in self._days:
                out.add(d)
            d += _ONE_DAY
        return frozenset(out)

    @property
    def holiday_sessions(self) -> tuple[CalendarSession, ...]:
        """The holiday sessions (trading on a holiday that carries the next trading date)."""
        return tuple(s for s in self._sessions if s.is_holiday_session)

    @property
    def early_closes(self) -> Mapping[date, Mapping[str, time]]:
        """Trading date -> {asset class or ``*``: local early close}."""
        return {d: dict(v) for d, v in self._early.items()}

    def _check_date(self, d: date) -> _Day:
        day = self._days.get(d)
        if day is not None:
            return day
        if d < self.first_date or d > self.last_date:
            raise CalendarCoverageError(
                f"{d} is outside the trading calendar ({self.first_date} to {self.last_date}, {self._source})"
            )
        raise CalendarError(f"{d} is not a trading date ({'weekend' if d.weekday() >= 5 else 'holiday'})")

    def _check_ts(self, ts_ns: int) -> None:
        if ts_ns < self._days[self._dates[0]].start_ns or ts_ns >= self._ends[-1]:
            raise CalendarCoverageError(
                f"{_local_dt(ts_ns, self._zone):%Y-%m-%d %H:%M:%S %Z} is outside the trading calendar "
                f"({self.first_date} to {self.last_date}, {self._source})"
            )

    def is_trading_date(self, d: date) -> bool:
        """True when ``d`` is a trading date (raises for a date outside the coverage).

        Raises:
            CalendarCoverageError: ``d`` is outside the covered range.
        """
        if d < self.first_date or d > self.last_date:
            raise CalendarCoverageError(f"{d} is outside the trading calendar ({self.first_date} to {self.last_date})")
        return d in self._days

    def trading_date(self, ts_ns: int) -> date:
        """The trading date of instant ``ts_ns`` (UTC ns): the first trading date whose end (17:00 CT) is after it.

        Raises:
            CalendarCoverageError: ``ts_ns`` is before the first trading date's start or at/after the last one's end.
        """
        self._check_ts(ts_ns)
        return self._dates[bisect.bisect_right(self._ends, ts_ns)]

    def next_trading_date(self, d: date) -> date:
        """The first trading date strictly after ``d`` (any date).

        Raises:
            CalendarCoverageError: no covered trading date follows ``d``.
        """
        i = bisect.bisect_right(self._dates, d)
        if i >= len(self._dates):
            raise CalendarCoverageError(f"no trading date after {d} in the trading calendar (ends {self.last_date})")
        return self._dates[i]

    def previous_trading_date(self, d: date) -> date:
        """The last trading date strictly before ``d`` (any date).

        Raises:
            CalendarCoverageError: no covered trading date precedes ``d``.
        """
        i = bisect.bisect_left(self._dates, d)
        if i == 0:
            raise CalendarCoverageError(
                f"no trading date before {d} in the trading calendar (starts {self.first_date})"
            )
        return self._dates[i - 1]

    def day_start_ns(self, d: date) -> int:
        """The start of trading date ``d``, UTC ns: the open of its first exchange session.

        Raises:
            CalendarCoverageError: ``d`` outside the coverage. CalendarError: ``d`` is not a trading date.
        """
        return self._check_date(d).start_ns

    def day_end_ns(self, d: date) -> int:
        """The end of trading date ``d`` (the 17:00 CT session boundary on ``d``), UTC ns.

        Raises:
            CalendarCoverageError: ``d`` outside the coverage. CalendarError: ``d`` is not a trading date.
        """
        return self._check_date(d).end_ns

    def week_start_ns(self, ts_ns: int) -> int:
        """The last Sunday 17:00 local (CT) at or before ``ts_ns``, UTC ns (weekly counters, risk-rules.md section 2).

        A wall-clock rule: it does not depend on holidays and never raises.
        """
        local = _local_dt(ts_ns, self._zone)
        day = local.date() - timedelta(days=(local.weekday() + 1) % 7)
        start = _local_ns(day, SESSION_OPEN, self._zone)
        if start > ts_ns:
            start = _local_ns(day - timedelta(days=7), SESSION_OPEN, self._zone)
        return start

    # ------------------------------------------------------------------ products and closes

    def hours(self, product: str | None = None) -> ProductHours:
        """The daily hours of root ``product`` (the default CME Globex hours for ``None``).

        Raises:
            CalendarError: an unknown root (the message lists the known ones).
        """
        if product is None:
            return self._default_hours
        try:
            return self._products[product]
        except KeyError:
            known = ", ".join(sorted(self._products))
            raise CalendarError(f"no trading hours for product {product!r}; known: {known}") from None

    def _session_product_close(self, s: CalendarSession, hours: ProductHours) -> int:
        close = min(s.close_ns, _local_ns(s.label, hours.close, self._zone))
        early = self._early.get(s.label) if not s.is_holiday_session else None
        if early:
            at = early.get(hours.asset_class, early.get(ALL_PRODUCTS))
            if at is not None:
                close = min(close, _local_ns(s.label, at, self._zone))
        return close

    def _session_product_open(self, s: CalendarSession, hours: ProductHours) -> int:
        day = s.label - _ONE_DAY if hours.opens_previous_day else s.label
        return max(s.open_ns, _local_ns(day, hours.open, self._zone))

    def session_close_ns(self, d: date, product: str | None = None) -> int:
        """When ``product`` stops trading on trading date ``d``, UTC ns: the earliest of its daily close (16:00 CT for
        CME equity index, energy, metals, FX; 13:20 CT grains; 13:05 CT livestock), the early close of ``d`` for its
        asset class (or for every product), and the session boundary.

        Raises:
            CalendarCoverageError / CalendarError: as :meth:`day_start_ns`; CalendarError for an unknown product.
        """
        day = self._check_date(d)
        return self._session_product_close(self._sessions[day.sessions[-1]], self.hours(product))

    def session_closes_ns(self, d: date, product: str | None = None) -> tuple[int, ...]:
        """Every close of ``product`` within trading date ``d``, in order, UTC ns: the halts of the holiday sessions
        folded into ``d`` (e.g. Thanksgiving Thursday 12:00 CT for Friday), then :meth:`session_close_ns`.
        Daily product breaks (grains 07:45-08:30) are not closes.

        Raises:
            as :meth:`session_close_ns`.
        """
        day = self._check_date(d)
        hours = self.hours(product)
        out: list[int] = []
        for i in day.sessions:
            s = self._sessions[i]
            if self._session_product_open(s, hours) < self._session_product_close(s, hours):
                out.append(self._session_product_close(s, hours))
        return tuple(out)

    def early_close_ns(self, d: date, product: str | None = None) -> int | None:
        """The early close of trading date ``d`` for ``product`` (UTC ns), or ``None`` on a regular day.

        Raises:
            as :meth:`session_close_ns`.
        """
        self._check_date(d)
        early = self._early.get(d)
        if not early:
            return None
        at = early.get(self.hours(product).asset_class, early.get(ALL_PRODUCTS))
        return None if at is None else _local_ns(d, at, self._zone)

    def is_open(self, ts_ns: int, product: str | None = None) -> bool:
        """True when ``product`` trades at ``ts_ns`` (UTC ns): inside an exchange session and the product's hours,
        before any early close, outside the daily halt (16:00-17:00 CT), product breaks, weekends and closures.

        Raises:
            CalendarCoverageError: ``ts_ns`` outside the coverage. CalendarError: unknown product.
        """
        self._check_ts(ts_ns)
        hours = self.hours(product)
        i = bisect.bisect_right(self._opens, ts_ns) - 1
        if i < 0 or ts_ns >= self._closes[i]:
            return False
        s = self._sessions[i]
        if not self._session_product_open(s, hours) <= ts_ns < self._session_product_close(s, hours):
            return False
        if hours.breaks:
            local = _local_dt(ts_ns, self._zone).time()
            if any(a <= local < b for a, b in hours.breaks):
                return False
        return True

    def _open_intervals(self, product: str | None) -> tuple[list[int], list[int]]:
        """The product's trading intervals ``[start, end)`` over the whole coverage as two sorted lists (UTC ns),
        built once per product: each session's product hours with early closes applied, minus the product's daily
        breaks, adjacent intervals merged."""
        cached = self._spans.get(product)
        if cached is not None:
            return cached
        hours = self.hours(product)
        starts: list[int] = []
        ends: list[int] = []
        for s in self._sessions:
            lo, hi = self._session_product_open(s, hours), self._session_product_close(s, hours)
            if lo >= hi:
                continue
            pieces = [(lo, hi)]
            if hours.breaks:
                day = _local_dt(lo, self._zone).date()
                last = _local_dt(hi, self._zone).date()
                while day <= last:
                    for a, b in hours.breaks:
                        cut_lo, cut_hi = _local_ns(day, a, self._zone), _local_ns(day, b, self._zone)
                        pieces = [
                            part
                            for x, y in pieces
                            for part in ((x, min(y, cut_lo)), (max(x, cut_hi), y))
                            if part[0] < part[1]
                        ]
                    day += _ONE_DAY
            for x, y in pieces:
                if ends and x <= ends[-1]:
                    ends[-1] = max(ends[-1], y)
                else:
                    starts.append(x)
                    ends.append(y)
        self._spans[product] = (starts, ends)
        return starts, ends

    def open_span(self, ts_ns: int, product: str | None = None) -> tuple[bool, int, int]:
        """Whether ``product`` trades at ``ts_ns`` (UTC ns), and the span ``[start_ns, end_ns)`` around it in which
        that stays so: the trading interval containing ``ts_ns``, or the closed period (daily halt, weekend,
        holiday halt, early close, closure, product break) containing it. The answer agrees with :meth:`is_open`;
        it lets a caller that sees time move forward ask again only once ``end_ns`` is reached (the simulated
        exchange checks each bar with one integer comparison).

        Before the first covered session the span starts at ``-2**63``; after the last one it ends at ``2**63 - 1``
        (the closed period then stands for "not covered").

        Raises:
            CalendarCoverageError: ``ts_ns`` outside the coverage. CalendarError: unknown product.
        """
        self._check_ts(ts_ns)
        starts, ends = self._open_intervals(product)
        i = bisect.bisect_right(starts, ts_ns) - 1
        if i >= 0 and ts_ns < ends[i]:
            return True, starts[i], ends[i]
        lo = ends[i] if i >= 0 else -(2**63)
        hi = starts[i + 1] if i + 1 < len(starts) else 2**63 - 1
        return False, lo, hi

    def next_session_open_ns(self, ts_ns: int) -> int:
        """The first exchange session open strictly after ``ts_ns``, UTC ns (Friday -> Sunday 17:00 CT; after a
        holiday halt or closure, the calendar's reopen).

        Raises:
            CalendarCoverageError: no covered session opens after ``ts_ns``.
        """
        i = bisect.bisect_right(self._opens, ts_ns)
        if i >= len(self._opens):
            raise CalendarCoverageError(f"no session opens after {ts_ns} ns in the trading calendar")
        return self._opens[i]


# ---------------------------------------------------------------------------------------------------- loading


def _req(table: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    value = table.get(key)
    if not isinstance(value, kind):
        raise CalendarError(f"{where}: field {key!r} missing or not a {kind.__name__}")
    return value


def _parse_time(raw: Any, where: str) -> time:
    if not isinstance(raw, str):
        raise CalendarError(f"{where}: expected a time 'HH:MM', got {raw!r}")
    try:
        return time.fromisoformat(raw)
    except ValueError:
        raise CalendarError(f"{where}: not a time 'HH:MM': {raw!r}") from None


def _parse_date(raw: Any, where: str) -> date:
    if isinstance(raw, date):
        return raw
    if not isinstance(raw, str):
        raise CalendarError(f"{where}: expected a date 'YYYY-MM-DD', got {raw!r}")
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise CalendarError(f"{where}: not a date 'YYYY-MM-DD': {raw!r}") from None


def _product_hours_from_table(root: str, t: Mapping[str, Any]) -> ProductHours:
    where = f"{_RESOURCE} [products.{root}]"
    breaks_raw = t.get("breaks", [])
    if not isinstance(breaks_raw, list):
        raise CalendarError(f"{where}: breaks must be a list of [start, end] pairs")
    breaks: list[tuple[time, time]] = []
    for pair in breaks_raw:
        if not isinstance(pair, list) or len(pair) != 2:
            raise CalendarError(f"{where}: a break must be [start, end], got {pair!r}")
        a, b = _parse_time(pair[0], where), _parse_time(pair[1], where)
        if a >= b:
            raise CalendarError(f"{where}: break {pair!r} ends before it starts")
        breaks.append((a, b))
    return ProductHours(
        root=root,
        asset_class=_req(t, "asset_class", str, where),
        open=_parse_time(t.get("open"), f"{where} open"),
        close=_parse_time(t.get("close"), f"{where} close"),
        breaks=tuple(breaks),
        source=_req(t, "source", str, where),
    )


def _contract_product_hours() -> dict[str, ProductHours]:
    from propdesk.model.contracts import default_registry  # noqa: PLC0415 - keeps import of this module light

    out: dict[str, ProductHours] = {}
    for s in default_registry():
        out[str(s.root)] = ProductHours(
            root=str(s.root),
            asset_class=s.asset_class,
            open=s.session_open,
            close=s.session_close,
            source=f"contracts.toml [products.{s.root}] ({s.sources.get('spec', '')})",
        )
    return out


def _xcal_sessions(name: str, start: date, end: date) -> list[tuple[date, int, int, bool]]:
    """The sessions of exchange_calendars calendar ``name``: ``(label, open_ns, close_ns, special_close)``.

    ``special_close`` is True when the calendar lists the session among its ``early_closes`` (its special closes,
    regular and ad hoc): only those closes are exchange-wide early closes or holiday halts. The close of any other
    session is the calendar's regular close, which :func:`load_calendar` replaces with ``session_boundary`` (CMES's
    regular close is 17:00 CT in exchange_calendars < 4.13.3 and 16:00 CT from 4.13.3; the 16:00-17:00 CT daily halt
    comes from product hours either way).

    Raises:
        CalendarError: the calendar is unknown or cannot be built for the range.
    """
    import exchange_calendars as xc  # noqa: PLC0415 - ~1 s import, only when a calendar is loaded

    with warnings.catch_warnings():
        # exchange_calendars 4.13 triggers a pandas 3 deprecation warning while building a calendar.
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            cal = xc.get_calendar(name, start=start.isoformat(), end=end.isoformat())
        except Exception as exc:  # exchange_calendars raises its own InvalidCalendarName / range errors
            raise CalendarError(f"{_RESOURCE}: cannot build exchange calendar {name!r}: {exc}") from None
        sched = cal.schedule
        opens = sched["open"].to_numpy(dtype="datetime64[ns]").astype("int64")
        closes = sched["close"].to_numpy(dtype="datetime64[ns]").astype("int64")
        labels = [ts.date() for ts in sched.index]
        special = {ts.date() for ts in cal.early_closes}
    return [(lab, int(o), int(c), lab in special) for lab, o, c in zip(labels, opens, closes, strict=True)]


def _xcal_holidays_and_early(name: str, start: date, end: date) -> tuple[set[date], set[date]]:
    import exchange_calendars as xc  # noqa: PLC0415

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            cal = xc.get_calendar(name, start=start.isoformat(), end=end.isoformat())
        except Exception as exc:
            raise CalendarError(f"{_RESOURCE}: cannot build exchange calendar {name!r}: {exc}") from None
        holidays: set[date] = set()
        if cal.regular_holidays is not None:
            holidays.update(ts.date() for ts in cal.regular_holidays.holidays(start.isoformat(), end.isoformat()))
        holidays.update(ts.date() for ts in cal.adhoc_holidays)
        early = {ts.date() for ts in cal.early_closes}
    return holidays, early


def load_calendar(text: str | None = None) -> TradingCalendar:
    """Build the trading calendar from a calendar.toml document (the shipped one when ``text`` is ``None``).

    Reads CMES sessions (exchange_calendars) for the covered range plus a month each side, folds clearing-holiday
    sessions into the next trading date, applies ``holiday_sessions`` halts and ``early_close_rules``, and takes
    product hours from contracts.toml and ``[products]``.

    Raises:
        CalendarError: invalid data, an unknown exchange calendar, or a clearing holiday on which the base calendar
            lists a full session and the file gives no ``holiday_sessions`` halt.
    """
    if text is None:
        text = resources.files("propdesk.model.resources").joinpath(_RESOURCE).read_text(encoding="utf-8")
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CalendarError(f"{_RESOURCE}: invalid TOML: {exc}") from None
    where = _RESOURCE
    tz = _req(doc, "timezone", str, where)
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise CalendarError(f"{where}: unknown timezone {tz!r}") from None
    first = _parse_date(doc.get("first_date"), f"{where} first_date")
    last = _parse_date(doc.get("last_date"), f"{where} last_date")
    if first > last:
        raise CalendarError(f"{where}: first_date {first} is after last_date {last}")
    boundary = _parse_time(doc.get("session_boundary"), f"{where} session_boundary")
    default_hours = ProductHours(
        ALL_PRODUCTS,
        ALL_PRODUCTS,
        _parse_time(doc.get("default_open"), f"{where} default_open"),
        _parse_time(doc.get("default_close"), f"{where} default_close"),
        source="calendar.toml default_open/default_close",
    )
    base = _req(doc, "base_calendar", str, where)
    clearing = _req(doc, "clearing_calendar", str, where)
    lo, hi = first - timedelta(days=31), last + timedelta(days=31)

    holiday_halts: dict[date, time] = {}
    for i, h in enumerate(doc.get("holiday_sessions", [])):
        hw = f"{where} holiday_sessions[{i}]"
        _req(h, "source", str, hw)
        holiday_halts[_parse_date(h.get("date"), f"{hw} date")] = _parse_time(h.get("close"), f"{hw} close")

    raw = _xcal_sessions(base, lo, hi)
    clearing_holidays, clearing_early = _xcal_holidays_and_early(clearing, lo, hi)

    # Label each base session as a trading date or a holiday session, and find the exchange-wide early closes.
    labelled: list[tuple[date, int, int, bool]] = []
    early: dict[date, dict[str, time]] = {}
    for label, open_ns, base_close_ns, special_close in raw:
        boundary_ns = _local_ns(label, boundary, zone)
        # A regular close (17:00 or 16:00 CT depending on the exchange_calendars release) is the session boundary.
        close_ns = min(base_close_ns, boundary_ns) if special_close else boundary_ns
        if label in holiday_halts:
            close_ns = min(close_ns, _local_ns(label, holiday_halts[label], zone))
        is_holiday = label in clearing_holidays or label in holiday_halts
        if is_holiday:
            if close_ns >= boundary_ns:
                raise CalendarError(
                    f"{where}: {base} lists a full session on clearing holiday {label}; add its halt to "
                    "holiday_sessions (with the CME source)"
                )
        else:
            if close_ns < boundary_ns:
                early[label] = {ALL_PRODUCTS: _local_dt(close_ns, zone).time()}
            close_ns = boundary_ns
        labelled.append((label, open_ns, close_ns, is_holiday))

    for i, rule in enumerate(doc.get("early_close_rules", [])):
        rw = f"{where} early_close_rules[{i}]"
        _req(rule, "source", str, rw)
        asset_class = _req(rule, "asset_class", str, rw)
        when = _req(rule, "when", str, rw)
        if when != "clearing_early_close":
            raise CalendarError(f"{rw}: unknown 'when' {when!r} (known: 'clearing_early_close')")
        at = _parse_time(rule.get("close"), f"{rw} close")
        for d in clearing_early:
            early.setdefault(d, {})[asset_class] = at

    # Fold holiday sessions into the next trading date; keep trading dates within [first, last].
    sessions: list[CalendarSession] = []
    pending: list[tuple[date, int, int]] = []
    for label, open_ns, close_ns, is_holiday in labelled:
        if is_holiday:
            pending.append((label, open_ns, close_ns))
            continue
        if first <= label <= last:
            sessions.extend(CalendarSession(lab, label, o, c) for lab, o, c in pending)
            sessions.append(CalendarSession(label, label, open_ns, close_ns))
        pending = []
    trading = {s.trading_date for s in sessions}
    early = {d: v for d, v in early.items() if d in trading}

    products = _contract_product_hours()
    extra = doc.get("products", {})
    if not isinstance(extra, dict):
        raise CalendarError(f"{where}: [products] must be a table")
    for root, t in extra.items():
        if root in products:
            raise CalendarError(f"{where}: [products.{root}] duplicates contracts.toml")
        if not isinstance(t, dict):
            raise CalendarError(f"{where}: products.{root} must be a table")
        products[root] = _product_hours_from_table(root, t)
    return TradingCalendar(
        sessions,
        early_closes=early,
        products=products,
        default_hours=default_hours,
        tz=tz,
        source=f"{_RESOURCE} over {base} {first}..{last}",
    )


@cache
def default_calendar() -> TradingCalendar:
    """The shipped trading calendar (``model/resources/calendar.toml`` over CMES), built once (about 1-2 s).

    Raises:
        CalendarError: as :func:`load_calendar`.
    """
    return load_calendar()


def chicago_local(ts_ns: int, tz: str = EXCHANGE_TZ) -> datetime:
    """The local wall-clock datetime of ``ts_ns`` (UTC ns) in ``tz`` (microsecond resolution); for messages."""
    return _local_dt(ts_ns, ZoneInfo(tz))


def local_ns(day: date, at: time, tz: str = EXCHANGE_TZ) -> int:
    """UTC ns of wall-clock ``at`` on ``day`` in ``tz`` (PEP 495 ``fold=0`` for gaps and overlaps)."""
    return _local_ns(day, at, ZoneInfo(tz))
