"""Contract months and their broker-neutral names: CME month codes, listed symbols, expiry, roll and the front month.

A :class:`Contract` is one listed month of a product (root ``ES``, December 2025). Its name is the listed symbol with
a one-digit year, ``ESZ5`` (also accepted with two digits, ``ESZ25``). A broker's own ids (ProjectX's
``CON.F.US.EP.Z25``) are mapped to and from a :class:`Contract` inside that broker's package
(:mod:`propdesk.brokers.projectx.contract_ids`).

**Year disambiguation.** A one-digit year names a decade-ambiguous year. It resolves to the year ending in that
digit inside the ten-year window ``[ref_year - YEAR_WINDOW_BACK, ref_year - YEAR_WINDOW_BACK + 9]``, where
``ref_year`` is the UTC year of ``ref_ns`` (default: now). With ``YEAR_WINDOW_BACK = 2`` and a reference in 2025,
``ESZ3`` is 2023, ``ESZ5`` 2025 and ``ESZ2`` 2032. Two-digit years are 2000 + yy. Supported years: 2000-2099.

**Expiry.** The last trading day follows the spec's expiry rule (CME's "termination of trading", see contracts.toml),
counting business days on the spec's ``business_calendar`` (weekdays that are not exchange holidays, taken from
exchange_calendars). :func:`expiry_ns` is the termination time on that day.

**Roll.** The roll date is a trading day before the anchor (expiry or first notice day) by the spec's roll rule,
moved to the preceding business day if it falls on a holiday. The front contract changes at the *session open* of
the roll date (17:00 America/Chicago on the calendar day before it): ESZ5 expires on 2025-12-19, its roll date is
2025-12-11, so the front ES is ESZ5 until 2025-12-10 17:00 CT and ESH6 from then on.

**The contract lookup.** :func:`spec_for_symbol` is the one function that turns a symbol or a root into its
:class:`~propdesk.model.contracts.ContractSpec`, from the one registry
(:func:`propdesk.model.contracts.default_registry`): the position manager, the simulated exchange, the order manager's
tick sizes and the sessions call it; code that already holds a root asks the registry
(:func:`propdesk.model.contracts.spec`). :func:`resolve_contract` turns a root into the contract that is front at a
time (a data file's contract).
"""

from __future__ import annotations

import re
import time as _time
import warnings
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Final

from propdesk.core.errors import ContractError
from propdesk.model.contracts import MONTH_CODES, ContractSpec, default_registry
from propdesk.model.identifiers import Root, Symbol

YEAR_WINDOW_BACK: Final[int] = 2
"""How many years before the reference year a one-digit year may still resolve to (see the module docstring)."""

MIN_YEAR: Final[int] = 2000
MAX_YEAR: Final[int] = 2099

_SYMBOL_RE: Final[re.Pattern[str]] = re.compile(r"^([A-Z0-9]+?)([FGHJKMNQUVXZ])(\d{1,2})$")
_NS: Final[int] = 1_000_000_000
_EPOCH: Final[datetime] = datetime(1970, 1, 1, tzinfo=UTC)


def month_code(month: int) -> str:
    """The CME month code of ``month`` (1 -> ``F`` ... 12 -> ``Z``).

    Raises:
        ContractError: ``month`` is not 1..12.
    """
    if isinstance(month, bool) or not isinstance(month, int) or not 1 <= month <= 12:
        raise ContractError(f"month {month!r} is not 1..12")
    return MONTH_CODES[month - 1]


def month_of_code(code: str) -> int:
    """The month number (1..12) of a CME month code (``Z`` -> 12).

    Raises:
        ContractError: not one of ``F G H J K M N Q U V X Z``.
    """
    if len(code) != 1 or code not in MONTH_CODES:
        raise ContractError(f"month code {code!r} is not one of {' '.join(MONTH_CODES)}")
    return MONTH_CODES.index(code) + 1


@dataclass(frozen=True, slots=True, order=True)
class Contract:
    """One listed contract month of a product: ``Contract(Root("ES"), 2025, 12)`` is ESZ5.

    Ordered by (root, year, month). Build one with :func:`contract` or :func:`parse_symbol`.

    Raises:
        ContractError: unknown root, a month not in the product's listing cycle, or a year outside 2000-2099.
    """

    root: Root
    year: int
    month: int

    def __post_init__(self) -> None:
        s = default_registry().spec(self.root)
        if isinstance(self.year, bool) or not isinstance(self.year, int) or not MIN_YEAR <= self.year <= MAX_YEAR:
            raise ContractError(f"{self.root}: year {self.year!r} is outside {MIN_YEAR}-{MAX_YEAR}")
        code = month_code(self.month)
        if code not in s.months:
            raise ContractError(
                f"{self.root}: month {code} ({self.month}) is not in the {self.root} listing cycle {s.months}"
            )

    @property
    def spec(self) -> ContractSpec:
        """The product spec of this contract."""
        return default_registry().spec(self.root)

    @property
    def month_code(self) -> str:
        """The CME month code (``Z``)."""
        return MONTH_CODES[self.month - 1]

    @property
    def symbol(self) -> Symbol:
        """The listed symbol with a one-digit year (``ESZ5``), as TopstepX names contracts."""
        return Symbol(f"{self.root}{self.month_code}{self.year % 10}")

    @property
    def symbol_2digit(self) -> str:
        """The symbol with a two-digit year (``ESZ25``), unambiguous across decades."""
        return f"{self.root}{self.month_code}{self.year % 100:02d}"

    def __str__(self) -> str:
        return self.symbol


def contract(root: str, month: int | str, year: int) -> Contract:
    """The contract of ``root`` in ``month`` (1..12 or a month code) of ``year`` (four digits, or two: 25 -> 2025).

    Raises:
        ContractError: unknown root, bad month, month outside the listing cycle, or a bad year.
    """
    m = month_of_code(month) if isinstance(month, str) else month
    if isinstance(year, bool) or not isinstance(year, int):
        raise ContractError(f"year {year!r} is not an int")
    y = MIN_YEAR + year if 0 <= year < 100 else year
    return Contract(Root(root), y, m)


def resolve_year(digits: str, ref_ns: int | None = None) -> int:
    """The four-digit year named by one or two year digits (see the module docstring for the one-digit window).

    Raises:
        ContractError: ``digits`` is not one or two decimal digits.
    """
    if not digits.isdigit() or not 1 <= len(digits) <= 2 or not digits.isascii():
        raise ContractError(f"year {digits!r} must be one or two digits")
    if len(digits) == 2:
        return MIN_YEAR + int(digits)
    ref = _time.time_ns() if ref_ns is None else ref_ns
    ref_year = (_EPOCH + timedelta(microseconds=ref // 1000)).year
    lo = ref_year - YEAR_WINDOW_BACK
    return lo + (int(digits) - lo) % 10


def parse_symbol(symbol: str, ref_ns: int | None = None) -> Contract:
    """Parse a listed symbol: ``ESZ5``, ``ESZ25``, ``MNQH6``, ``6EM26``, ``M2KU5``.

    ``ref_ns`` (UTC ns, default now) resolves a one-digit year (module docstring). Symbols are upper case.

    Raises:
        ContractError: malformed symbol, unknown root, month not in the root's cycle, or a year out of range.
    """
    if not isinstance(symbol, str):
        raise ContractError(f"symbol {symbol!r} is not a string")
    m = _SYMBOL_RE.match(symbol)
    if m is None:
        raise ContractError(f"malformed symbol {symbol!r}: expected <root><month code><1- or 2-digit year>, e.g. ESZ5")
    root, code, digits = m.groups()
    reg = default_registry()
    if root not in reg:
        raise ContractError(f"symbol {symbol!r}: unknown root {root!r}; known roots: {', '.join(reg.roots())}")
    try:
        return Contract(Root(root), resolve_year(digits, ref_ns), month_of_code(code))
    except ContractError as exc:
        raise ContractError(f"symbol {symbol!r}: {exc}") from None


def next_contract(c: Contract) -> Contract:
    """The next month of ``c``'s listing cycle (ESZ5 -> ESH6)."""
    months = c.spec.months
    later = [m for m in months if MONTH_CODES.index(m) + 1 > c.month]
    if later:
        return Contract(c.root, c.year, month_of_code(later[0]))
    return Contract(c.root, c.year + 1, month_of_code(months[0]))


def previous_contract(c: Contract) -> Contract:
    """The previous month of ``c``'s listing cycle (ESH6 -> ESZ5)."""
    months = c.spec.months
    earlier = [m for m in months if MONTH_CODES.index(m) + 1 < c.month]
    if earlier:
        return Contract(c.root, c.year, month_of_code(earlier[-1]))
    return Contract(c.root, c.year - 1, month_of_code(months[-1]))


# ---------------------------------------------------------------------------------------------------- business days


@cache
def holidays(calendar: str) -> frozenset[date]:
    """The holidays (weekdays without a settlement) of an exchange_calendars calendar, 1990-2100.

    Regular and ad-hoc holidays, from exchange_calendars (imported lazily: it is slow to load).

    Raises:
        ContractError: unknown calendar name.
    """
    import exchange_calendars as xc  # noqa: PLC0415  (lazy: ~1 s import)

    with warnings.catch_warnings():
        # exchange_calendars 4.13 triggers a pandas 3 deprecation warning (Pandas4Warning) while building a calendar.
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            cal = xc.get_calendar(calendar)
        except Exception as exc:  # exchange_calendars raises its own InvalidCalendarName
            raise ContractError(f"unknown exchange calendar {calendar!r}: {exc}") from None
        days: set[date] = set()
        regular = cal.regular_holidays
        if regular is not None:
            days.update(ts.date() for ts in regular.holidays("1990-01-01", "2100-12-31"))
        days.update(ts.date() for ts in cal.adhoc_holidays)
    return frozenset(d for d in days if d.weekday() < 5)


def is_business_day(d: date, calendar: str) -> bool:
    """True when ``d`` is a weekday and not a holiday of ``calendar``."""
    return d.weekday() < 5 and d not in holidays(calendar)


def business_days_before(d: date, n: int, calendar: str) -> date:
    """The ``n``-th business day strictly before ``d`` (``n`` >= 1)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    cur = d
    while n:
        cur -= timedelta(days=1)
        if is_business_day(cur, calendar):
            n -= 1
    return cur


def _on_or_before_business_day(d: date, calendar: str) -> date:
    while not is_business_day(d, calendar):
        d -= timedelta(days=1)
    return d


def _last_day(year: int, month: int) -> date:
    first_next = date(year + month // 12, month % 12 + 1, 1)
    return first_next - timedelta(days=1)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def _prior_month(year: int, month: int) -> tuple[int, int]:
    return (year - 1, 12) if month == 1 else (year, month - 1)


# ---------------------------------------------------------------------------------------------------- expiry and roll


def expiry_date(c: Contract) -> date:
    """The last trading day of ``c`` (exchange-local date), by the spec's expiry rule.

    Sources: the CME contract-spec page of each product (``c.spec.sources["spec"]``); rules in contracts.toml.
    """
    s = c.spec
    rule = s.expiry
    cal = s.business_calendar
    if rule.rule == "third_friday":
        return _on_or_before_business_day(_nth_weekday(c.year, c.month, 4, 3), cal)
    if rule.rule == "business_days_before_25th":
        py, pm = _prior_month(c.year, c.month)
        d25 = date(py, pm, 25)
        n = rule.business_days if is_business_day(d25, cal) else rule.business_days_if_holiday
        return business_days_before(d25, n, cal)
    if rule.rule == "nth_last_business_day":
        d = _on_or_before_business_day(_last_day(c.year, c.month), cal)
        return business_days_before(d, rule.n - 1, cal) if rule.n > 1 else d
    if rule.rule == "business_days_before_third_wednesday":
        return business_days_before(_nth_weekday(c.year, c.month, 2, 3), rule.business_days, cal)
    raise ContractError(f"{c.root}: unknown expiry rule {rule.rule!r}")  # pragma: no cover  (validated on load)


def first_notice_date(c: Contract) -> date | None:
    """The first notice day of ``c`` for products with a first-notice rule (GC, MGC), else ``None``."""
    s = c.spec
    if s.first_notice_rule is None:
        return None
    py, pm = _prior_month(c.year, c.month)
    return _on_or_before_business_day(_last_day(py, pm), s.business_calendar)


def _local_ns(d: date, tod: time, s: ContractSpec) -> int:
    local = datetime.combine(d, tod, tzinfo=s.tz)
    return (local.astimezone(UTC) - _EPOCH) // timedelta(microseconds=1) * 1000


def expiry_ns(c: Contract) -> int:
    """The instant trading in ``c`` terminates, UTC ns (ESZ5: 2025-12-19 08:30 CT = 14:30 UTC)."""
    return _local_ns(expiry_date(c), c.spec.expiry.time, c.spec)


def roll_trading_date(c: Contract) -> date:
    """The roll date of ``c``: the trading day from whose session open the next contract is the front one."""
    s = c.spec
    cal = s.business_calendar
    if s.roll.anchor == "first_notice":
        anchor = first_notice_date(c)
        if anchor is None:  # pragma: no cover  (validated on load)
            raise ContractError(f"{c.root}: roll anchor first_notice without a first-notice rule")
    else:
        anchor = expiry_date(c)
    if s.roll.calendar_days:
        return _on_or_before_business_day(anchor - timedelta(days=s.roll.calendar_days), cal)
    return business_days_before(anchor, s.roll.business_days, cal)


def roll_ns(c: Contract) -> int:
    """The instant ``c`` stops being the front contract: the session open (17:00 CT) before its roll date, UTC ns."""
    return _local_ns(roll_trading_date(c) - timedelta(days=1), c.spec.session_open, c.spec)


def front_month(root: str, ts_ns: int) -> Contract:
    """The front contract of ``root`` at ``ts_ns`` (UTC ns): the earliest one in the cycle not yet rolled.

    Raises:
        ContractError: unknown root, or a time outside the supported years.
    """
    s = default_registry().spec(root)
    local = (_EPOCH + timedelta(microseconds=ts_ns // 1000)).astimezone(s.tz)
    y, m = local.year, local.month
    for _ in range(2):
        y, m = _prior_month(y, m)
    code = next((c for c in s.months if MONTH_CODES.index(c) + 1 >= m), None)
    c = Contract(s.root, y, month_of_code(code)) if code else Contract(s.root, y + 1, month_of_code(s.months[0]))
    while roll_ns(c) <= ts_ns:
        c = next_contract(c)
    return c


def roll_date(root: str, ts_ns: int) -> date:
    """The roll date of the contract that is front for ``root`` at ``ts_ns``: when the next contract takes over.

    Raises:
        ContractError: as :func:`front_month`.
    """
    return roll_trading_date(front_month(root, ts_ns))


def spec_for_symbol(symbol: str) -> ContractSpec:
    """The shipped spec of a contract symbol (``ESZ5``, ``MNQH6``, ``6EZ25``, parsed with :func:`parse_symbol`) or of
    a bare root (``ES``): the one contract lookup (see the module docstring).

    Raises:
        ContractError: the symbol is malformed, its root unknown or its month outside the root's cycle.
    """
    registry = default_registry()
    if symbol in registry:
        return registry.spec(symbol)
    return parse_symbol(symbol).spec


def resolve_contract(symbol: str, ts_ns: int | None) -> str:
    """The contract symbol to trade for ``symbol``: ``symbol`` itself when it is a contract, or for a bare root
    (``ES``) the contract that is front at ``ts_ns`` (UTC ns; a data file's last bar: a single-contract export that
    spans a roll is the later contract, a continuous series the front month at its end).

    Raises:
        ContractError: ``symbol`` is neither a known contract nor a known root (the message names it), or it is a
            root and ``ts_ns`` is ``None``.
    """
    if symbol in default_registry():
        if ts_ns is None:
            raise ContractError(f"cannot resolve the contract of root {symbol} without a time")
        return front_month(symbol, ts_ns).symbol
    try:
        spec_for_symbol(symbol)
    except ContractError as exc:
        raise ContractError(f"unknown contract {symbol!r}: {exc}") from None
    return symbol
