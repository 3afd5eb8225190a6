"""Contract specifications: the product table shipped as data and exact tick arithmetic on it.

The table lives in ``propdesk/model/resources/contracts.toml`` (read with :mod:`tomllib` through
:mod:`importlib.resources`); every number in it names its source (CME contract-spec pages, the ProjectX spec,
Topstep's help centre). This module turns each product into a frozen :class:`ContractSpec` and keeps them in a
:class:`ContractRegistry`. Contract ids, months, expiry and roll live in :mod:`propdesk.model.symbology`.

Example::

    es = spec("ES")
    es.tick_size            # Price('0.25')
    es.pnl(Price.of("6500"), Price.of("6501.25"), 2)   # Money 125.00 USD (5 ticks x 2 x 12.50)
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import time
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib import resources
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from propdesk.core.errors import ContractError, InvalidPriceError
from propdesk.model.identifiers import Root
from propdesk.model.price import Money, Price

MONTH_CODES: Final[str] = "FGHJKMNQUVXZ"
"""CME month codes, January (F) to December (Z)."""

EXPIRY_RULES: Final[frozenset[str]] = frozenset(
    {"third_friday", "business_days_before_25th", "nth_last_business_day", "business_days_before_third_wednesday"}
)
"""Expiry rules :mod:`propdesk.model.symbology` knows how to compute (described in contracts.toml)."""

FIRST_NOTICE_RULES: Final[frozenset[str]] = frozenset({"last_business_day_of_prior_month"})
"""First-notice-day rules :mod:`propdesk.model.symbology` knows how to compute."""

_RESOURCE: Final[str] = "contracts.toml"


@dataclass(frozen=True, slots=True)
class ExpiryRule:
    """When a contract month stops trading.

    Attributes:
        rule: one of :data:`EXPIRY_RULES`.
        time: local time (the spec's timezone) at which trading terminates on the last trading day.
        business_days: for ``business_days_before_25th`` and ``business_days_before_third_wednesday``.
        business_days_if_holiday: for ``business_days_before_25th``, the count used when the 25th is not a
            business day.
        n: for ``nth_last_business_day`` (3 = the third last business day of the contract month).
    """

    rule: str
    time: time
    business_days: int = 0
    business_days_if_holiday: int = 0
    n: int = 0


@dataclass(frozen=True, slots=True)
class RollRule:
    """When propdesk moves from one contract month to the next.

    The roll date is ``calendar_days`` calendar days or ``business_days`` business days before the anchor date
    (``expiry``: the last trading day; ``first_notice``: the first notice day). The front contract changes at the
    session open of the roll date's trading day.
    """

    anchor: str
    calendar_days: int = 0
    business_days: int = 0


@dataclass(frozen=True, slots=True)
class ContractSpec:
    """The specification of one futures product (a root), as listed in contracts.toml.

    Attributes:
        root: the product root (``ES``).
        name: the exchange's product name.
        exchange: ``CME``, ``CBOT``, ``NYMEX`` or ``COMEX``.
        asset_class: ``equity_index``, ``energy``, ``metals`` or ``fx``.
        currency: the currency of ``tick_value`` (``USD`` for every listed product).
        tick_size: the minimum price increment, in points.
        tick_value: USD per tick per contract.
        point_value: USD per 1.0 point per contract (``tick_value == tick_size * point_value``).
        months: the contract months propdesk trades, as month codes in calendar order (``HMUZ``).
        micro_of: for a micro, the root of its mini; otherwise ``None``.
        topstepx_mini_weight: mini-equivalents per contract on TopstepX (1 for minis, 0.1 for micros; source
            https://help.topstep.com/en/articles/9221977).
        calendar: exchange_calendars name of the trading calendar (``CMES``).
        business_calendar: exchange_calendars name whose holidays define business days for expiry counting.
        timezone: the exchange's local time zone (``America/Chicago``).
        session_open, session_close: Globex trading-day boundaries in local time; the trading day named D opens at
            ``session_open`` on the calendar day before D.
        expiry: the last-trading-day rule.
        first_notice_rule: the first-notice-day rule for physically delivered products that need one, else ``None``.
        roll: the roll rule.
        sources: where each group of numbers comes from (key -> URL or document).
        note: free text from the data file.
    """

    root: Root
    name: str
    exchange: str
    asset_class: str
    currency: str
    tick_size: Price
    tick_value: Money
    point_value: Decimal
    months: str
    micro_of: Root | None
    topstepx_mini_weight: Decimal
    calendar: str
    business_calendar: str
    timezone: str
    session_open: time
    session_close: time
    expiry: ExpiryRule
    first_notice_rule: str | None
    roll: RollRule
    sources: Mapping[str, str]
    note: str

    @property
    def is_micro(self) -> bool:
        """True for a micro contract (one with ``micro_of``)."""
        return self.micro_of is not None

    @property
    def tz(self) -> ZoneInfo:
        """The exchange time zone as a :class:`zoneinfo.ZoneInfo`."""
        return ZoneInfo(self.timezone)

    def ticks(self, price: Price | float | str) -> int:
        """The price as a whole number of ticks (``6500.25`` on ES is 26001).

        Raises:
            InvalidPriceError: the price is not on this product's tick grid, or is not a finite number.
        """
        p = price if isinstance(price, Price) else Price.of(price)
        if not p.is_aligned(self.tick_size):
            raise InvalidPriceError(f"{self.root}: price {p} is not a multiple of the tick size {self.tick_size}")
        return p.ticks(self.tick_size)

    def price_of_ticks(self, n: int) -> Price:
        """The price ``n`` ticks from zero (also a price distance of ``n`` ticks)."""
        return Price.from_ticks(n, self.tick_size)

    def tick_distance(self, a: Price, b: Price) -> int:
        """``b - a`` in whole ticks (positive when ``b`` is higher).

        Raises:
            InvalidPriceError: either price is off the tick grid.
        """
        return self.ticks(b) - self.ticks(a)

    def pnl(self, entry: Price, exit: Price, qty_signed: int) -> Money:
        """Exact PnL in USD of ``qty_signed`` contracts (positive long, negative short) from ``entry`` to ``exit``.

        Computed as whole ticks x tick value x quantity, never through floats.

        Raises:
            InvalidPriceError: either price is off the tick grid.
        """
        if isinstance(qty_signed, bool) or not isinstance(qty_signed, int):
            raise TypeError(f"qty_signed must be an int, not {type(qty_signed).__name__}")
        return self.tick_value * (self.tick_distance(entry, exit) * qty_signed)

    def value_of_points(self, points: Price) -> Decimal:
        """USD value of a move of ``points`` for one contract (``points x point_value``), exact."""
        return points.as_decimal() * self.point_value


# --------------------------------------------------------------------------------------------------------- loading


def _req(table: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in table:
        raise ContractError(f"{where}: missing field {key!r}")
    value = table[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ContractError(f"{where}: field {key!r} must be {kind.__name__}, got {value!r}")
    return value


def _dec(table: Mapping[str, Any], key: str, where: str) -> Decimal:
    raw = _req(table, key, str, where)
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ContractError(f"{where}: field {key!r} is not a decimal number: {raw!r}") from None
    if not value.is_finite() or value <= 0:
        raise ContractError(f"{where}: field {key!r} must be a positive number, got {raw!r}")
    return value


def _int(table: Mapping[str, Any], key: str, where: str) -> int:
    value = table.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ContractError(f"{where}: field {key!r} must be a non-negative integer, got {value!r}")
    return value


def _time(table: Mapping[str, Any], key: str, where: str) -> time:
    raw = _req(table, key, str, where)
    try:
        return time.fromisoformat(raw)
    except ValueError:
        raise ContractError(f"{where}: field {key!r} is not a time HH:MM: {raw!r}") from None


def _spec_from_table(key: str, t: Mapping[str, Any]) -> ContractSpec:
    where = f"{_RESOURCE} [products.{key}]"
    root = _req(t, "root", str, where)
    if root != key:
        raise ContractError(f"{where}: root {root!r} differs from the table key")
    tick_size_d = _dec(t, "tick_size", where)
    tick_value_d = _dec(t, "tick_value", where)
    point_value = _dec(t, "point_value", where)
    if tick_size_d * point_value != tick_value_d:
        raise ContractError(
            f"{where}: tick_value {tick_value_d} != tick_size {tick_size_d} x point_value {point_value}"
        )
    try:
        tick_size = Price.of(tick_size_d)
        tick_value = Money.of(tick_value_d)
    except (InvalidPriceError, ValueError) as exc:
        raise ContractError(f"{where}: {exc}") from None
    months = _req(t, "months", str, where)
    if (
        not months
        or any(m not in MONTH_CODES for m in months)
        or "".join(sorted(months, key=MONTH_CODES.index)) != months
    ):
        raise ContractError(f"{where}: months {months!r} must be distinct month codes in calendar order")
    if len(set(months)) != len(months):
        raise ContractError(f"{where}: months {months!r} repeats a month")
    tz_name = _req(t, "timezone", str, where)
    try:
        ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ContractError(f"{where}: unknown timezone {tz_name!r}") from None

    ex = _req(t, "expiry", dict, where)
    ex_where = f"{where} expiry"
    rule = _req(ex, "rule", str, ex_where)
    if rule not in EXPIRY_RULES:
        raise ContractError(f"{ex_where}: unknown rule {rule!r}; known: {', '.join(sorted(EXPIRY_RULES))}")
    expiry = ExpiryRule(
        rule=rule,
        time=_time(ex, "time", ex_where),
        business_days=_int(ex, "business_days", ex_where),
        business_days_if_holiday=_int(ex, "business_days_if_holiday", ex_where),
        n=_int(ex, "n", ex_where),
    )
    if rule == "nth_last_business_day" and expiry.n < 1:
        raise ContractError(f"{ex_where}: rule {rule!r} needs n >= 1")
    if rule in {"business_days_before_25th", "business_days_before_third_wednesday"} and expiry.business_days < 1:
        raise ContractError(f"{ex_where}: rule {rule!r} needs business_days >= 1")
    if rule == "business_days_before_25th" and expiry.business_days_if_holiday < 1:
        raise ContractError(f"{ex_where}: rule {rule!r} needs business_days_if_holiday >= 1")

    fn = t.get("first_notice")
    first_notice_rule: str | None = None
    if fn is not None:
        first_notice_rule = _req(fn, "rule", str, f"{where} first_notice")
        if first_notice_rule not in FIRST_NOTICE_RULES:
            raise ContractError(f"{where} first_notice: unknown rule {first_notice_rule!r}")

    ro = _req(t, "roll", dict, where)
    ro_where = f"{where} roll"
    anchor = _req(ro, "anchor", str, ro_where)
    if anchor not in {"expiry", "first_notice"}:
        raise ContractError(f"{ro_where}: anchor must be 'expiry' or 'first_notice', got {anchor!r}")
    if anchor == "first_notice" and first_notice_rule is None:
        raise ContractError(f"{ro_where}: anchor 'first_notice' needs a [first_notice] rule")
    roll = RollRule(
        anchor=anchor,
        calendar_days=_int(ro, "calendar_days", ro_where),
        business_days=_int(ro, "business_days", ro_where),
    )
    if (roll.calendar_days > 0) == (roll.business_days > 0):
        raise ContractError(f"{ro_where}: give exactly one of calendar_days or business_days (positive)")

    micro_of = t.get("micro_of")
    if micro_of is not None and not isinstance(micro_of, str):
        raise ContractError(f"{where}: micro_of must be a root string")
    weight = _dec(t, "topstepx_mini_weight", where)
    sources = _req(t, "source", dict, where)
    if "spec" not in sources:
        raise ContractError(f"{where}: source.spec (the exchange contract-spec URL) is required")

    return ContractSpec(
        root=Root(root),
        name=_req(t, "name", str, where),
        exchange=_req(t, "exchange", str, where),
        asset_class=_req(t, "asset_class", str, where),
        currency=_req(t, "currency", str, where),
        tick_size=tick_size,
        tick_value=tick_value,
        point_value=point_value,
        months=months,
        micro_of=None if micro_of is None else Root(micro_of),
        topstepx_mini_weight=weight,
        calendar=_req(t, "calendar", str, where),
        business_calendar=_req(t, "business_calendar", str, where),
        timezone=tz_name,
        session_open=_time(t, "session_open", where),
        session_close=_time(t, "session_close", where),
        expiry=expiry,
        first_notice_rule=first_notice_rule,
        roll=roll,
        sources={str(k): str(v) for k, v in sources.items()},
        note=str(t.get("note", "")),
    )


class ContractRegistry:
    """All known products, looked up by root.

    Build one from parsed TOML with :meth:`from_toml_text` or use :func:`default_registry` (the shipped table).

    Raises:
        ContractError: from the constructors for an invalid table (naming the product and field), and from
            :meth:`spec` for an unknown root (listing the known ones).
    """

    def __init__(self, specs: Mapping[str, ContractSpec]) -> None:
        self._specs: dict[str, ContractSpec] = dict(specs)
        for s in self._specs.values():
            if s.micro_of is not None and s.micro_of not in self._specs:
                raise ContractError(f"{s.root}: micro_of {s.micro_of!r} is not a known root")

    @classmethod
    def from_toml_text(cls, text: str) -> ContractRegistry:
        """Parse a contracts.toml document (the format documented at the top of the shipped file)."""
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ContractError(f"{_RESOURCE}: invalid TOML: {exc}") from None
        products = doc.get("products")
        if not isinstance(products, dict) or not products:
            raise ContractError(f"{_RESOURCE}: no [products.<root>] tables")
        bad = [k for k, v in products.items() if not isinstance(v, dict)]
        if bad:
            raise ContractError(f"{_RESOURCE}: products.{bad[0]} must be a table")
        return cls({k: _spec_from_table(k, v) for k, v in products.items()})

    def spec(self, root: str) -> ContractSpec:
        """The spec of ``root`` (case-sensitive, e.g. ``ES``, ``6E``).

        Raises:
            ContractError: unknown root; the message lists the known roots.
        """
        try:
            return self._specs[root]
        except KeyError:
            raise ContractError(f"unknown root {root!r}; known roots: {', '.join(self.roots())}") from None

    def roots(self) -> list[Root]:
        """Every known root, sorted."""
        return sorted(Root(r) for r in self._specs)

    def __contains__(self, root: object) -> bool:
        return root in self._specs

    def __iter__(self) -> Iterator[ContractSpec]:
        return iter(self._specs[r] for r in sorted(self._specs))

    def __len__(self) -> int:
        return len(self._specs)


@cache
def default_registry() -> ContractRegistry:
    """The registry of the shipped ``model/resources/contracts.toml`` (parsed once)."""
    text = resources.files("propdesk.model").joinpath("resources", _RESOURCE).read_text(encoding="utf-8")
    return ContractRegistry.from_toml_text(text)


def spec(root: str) -> ContractSpec:
    """The shipped spec of ``root``.

    Raises:
        ContractError: unknown root (the message lists the known roots).
    """
    return default_registry().spec(root)


def known_roots() -> list[Root]:
    """Every root in the shipped table, sorted."""
    return default_registry().roots()
