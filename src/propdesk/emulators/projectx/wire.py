"""Wire helpers of the gateway: ProjectX timestamps and numbers, and the contract catalog.

Timestamps (spec section 1.2): the server emits UTC ISO-8601 with ``+00:00`` and microseconds
(``2025-07-18T21:00:01.268009+00:00``), accepts any offset or ``Z`` and any number of fractional digits, and treats
naive input as UTC. Prices are emitted as JSON numbers exactly on the tick (shortest float repr of the decimal).

Contracts (spec sections 1.2, 3.2, 6): ids ``CON.F.US.<ProjectX root>.<month code><yy>`` with the real roots (``EP`` for
ES, ``ENQ`` for NQ), ``name`` the listed symbol with a one-digit year (``ESZ6``), ``symbolId`` ``F.US.<root>``;
tick size and tick value from propdesk's contract table (``propdesk/model/resources/contracts.toml``).
``Contract/search`` lists only the active (front) month of each configured root.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from propdesk.brokers.projectx.contract_ids import contract_id, parse_contract_id, symbol_id
from propdesk.core.errors import ContractError
from propdesk.model.price import Money, Price
from propdesk.model.symbology import Contract, front_month

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FRACTION = re.compile(r"(\.\d+)")
_MONTHS = (
    "January February March April May June July August September October November December".split()  # noqa: SIM905
)


def iso(ts_ns: int) -> str:
    """UTC ISO-8601 with microseconds and ``+00:00`` for ``ts_ns`` (UTC ns)."""
    return (_EPOCH + timedelta(microseconds=ts_ns // 1000)).isoformat(timespec="microseconds")


def parse_ts(value: object) -> int:
    """UTC ns of an ISO-8601 timestamp (any offset, ``Z``, any fraction digits; naive = UTC).

    Raises:
        ValueError: not a string or not ISO-8601.
    """
    if not isinstance(value, str) or not value:
        raise ValueError(f"{value!r} is not an ISO-8601 timestamp")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    m = _FRACTION.search(text)
    extra_ns = 0
    if m is not None:
        digits = m.group(1)[1:]
        extra_ns = int((digits + "000000000")[6:9]) if len(digits) > 6 else 0
        text = text[: m.start()] + "." + (digits + "000000")[:6] + text[m.end() :]
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    delta = dt - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000 + extra_ns


def num(value: Price | Money | Decimal | float | None) -> float | None:
    """A JSON number for a price or amount (``None`` stays ``None``); exact decimals print as themselves."""
    if value is None:
        return None
    if isinstance(value, (Price, Money)):
        return float(value.as_decimal())
    return float(value)


@dataclass(frozen=True, slots=True)
class ContractInfo:
    """One contract month as the gateway shows it.

    Attributes:
        contract: propdesk's contract (root, year, month).
        id: ProjectX contract id (``CON.F.US.EP.Z26``).
        name: listed symbol, one-digit year (``ESZ6``); also the sim broker's symbol.
        description: product name and month (``E-mini S&P 500: December 2026``).
        tick_size: price increment (points); ``tick_value``: USD per tick per contract.
        symbol_id: ``F.US.EP``.
        decimals: fractional digits of the tick size (for rounding prices on the wire).
    """

    contract: Contract
    id: str
    name: str
    description: str
    tick_size: Price
    tick_value: Money
    symbol_id: str
    decimals: int

    @property
    def root(self) -> str:
        """propdesk's root (``ES``)."""
        return self.contract.root

    def to_json(self, *, active: bool) -> dict[str, Any]:
        """The ProjectX ``Contract`` model (spec 3.2 and 6: every key present)."""
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "tickSize": num(self.tick_size),
            "tickValue": num(self.tick_value),
            "activeContract": active,
            "symbolId": self.symbol_id,
        }

    def price(self, points: float) -> float:
        """``points`` rounded to this contract's tick, as a JSON number."""
        tick = float(self.tick_size.as_decimal())
        return round(round(points / tick) * tick, self.decimals)


def contract_info(c: Contract) -> ContractInfo:
    """The :class:`ContractInfo` of ``c`` (from its product spec)."""
    s = c.spec
    exp = s.tick_size.as_decimal().normalize().as_tuple().exponent
    decimals = -exp if isinstance(exp, int) and exp < 0 else 0
    return ContractInfo(
        contract=c,
        id=contract_id(c),
        name=c.symbol,
        description=f"{s.name}: {_MONTHS[c.month - 1]} {c.year}",
        tick_size=s.tick_size,
        tick_value=s.tick_value,
        symbol_id=symbol_id(c.root),
        decimals=decimals,
    )


class ContractCatalog:
    """The contracts of the configured roots: the active month of each (fixed at construction) and lookups.

    Args:
        roots: propdesk roots (``ES``, ``MNQ`` ...).
        now_ns: the presented time deciding the front month (UTC ns).

    Raises:
        ContractError: an unknown root.
    """

    def __init__(self, roots: list[str], now_ns: int) -> None:
        self.active: dict[str, ContractInfo] = {}
        for root in roots:
            self.active[root] = contract_info(front_month(root, now_ns))
        self._by_id = {c.id: c for c in self.active.values()}
        self._by_name = {c.name: c for c in self.active.values()}

    def by_id(self, contract_id: object) -> ContractInfo | None:
        """The contract of a ProjectX id of a configured root (any listed month), else ``None``."""
        if not isinstance(contract_id, str):
            return None
        hit = self._by_id.get(contract_id)
        if hit is not None:
            return hit
        try:
            c = parse_contract_id(contract_id)
        except ContractError:
            return None
        if c.root not in self.active:
            return None
        return contract_info(c)

    def by_symbol(self, symbol: str) -> ContractInfo | None:
        """The active contract whose symbol is ``symbol`` (``ESZ6``)."""
        return self._by_name.get(symbol)

    def is_active(self, info: ContractInfo) -> bool:
        """True for the active month of its root."""
        return self.active.get(info.root) == info

    def search(self, text: str) -> list[ContractInfo]:
        """Active contracts whose root, symbol, symbol id or description contains ``text`` (case-insensitive),
        exact root matches first, at most 20 (spec 3.1)."""
        t = text.strip().upper()
        hits = [
            c
            for c in self.active.values()
            if not t or t in c.root or t in c.name or t in c.symbol_id or t in c.description.upper()
        ]
        hits.sort(key=lambda c: (c.root != t, c.name))
        return hits[:20]
