"""Exact prices and money.

Prices are fixed-point numbers with 9 decimal places (``raw`` is the price times 10**9, an ``int``), which represents
every CME tick size exactly (ES 0.25, 6E 0.00005, ...). A price is *tick-aligned* when ``raw`` is a whole multiple
of the contract's tick size. Money is a whole number of US cents: PnL is computed as whole ticks times the tick value
(which is itself a whole number of cents for every product propdesk lists), never by accumulating floats.

Source for the representation: ARCHITECTURE.md, principle 5 ("Money is exact").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation, localcontext
from typing import Final

from propdesk.core.errors import InvalidAmountError, InvalidPriceError, InvalidQuantityError
from propdesk.model._fastinit import fast_frozen_init

PRICE_SCALE: Final[int] = 10**9
"""Fixed-point scale of :class:`Price` (9 decimal places)."""


_EXACT_PREC: Final[int] = 80
"""Decimal precision for parsing: large enough that no price or amount is rounded by the context."""


def _decimal_to_raw(value: Decimal) -> int:
    if not value.is_finite():
        raise InvalidPriceError(f"price {value} is not a finite number")
    with localcontext(prec=_EXACT_PREC):
        scaled = value.scaleb(9)
        raw = int(scaled.to_integral_value(rounding=ROUND_HALF_EVEN))
        if scaled != raw:
            raise InvalidPriceError(f"price {value} has more than 9 decimal places")
    return raw


def _raw_to_decimal(raw: int, places: int) -> Decimal:
    """``raw`` x 10**-places as a Decimal in plain notation (no exponent), trailing zeros removed."""
    with localcontext(prec=_EXACT_PREC):
        dec = Decimal(raw).scaleb(-places).normalize()
        if dec.as_tuple().exponent > 0:  # type: ignore[operator]
            dec = dec.quantize(Decimal(1))
    return dec


@fast_frozen_init
@dataclass(frozen=True, slots=True, order=True)
class Price:
    """A price in points, held exactly as ``raw`` = price x 10**9.

    Build one with :meth:`of` (str, int, Decimal or float; a float is rounded to 9 decimals) and check it against a
    tick with :meth:`ticks`. Arithmetic between prices is exact.

    Raises:
        InvalidPriceError: from :meth:`of` for NaN, infinity, a malformed string or more than 9 decimals.
    """

    raw: int

    @classmethod
    def of(cls, value: str | int | float | Decimal) -> Price:
        """Parse ``value`` (points). Floats are rounded half-even to 9 decimals, which is exact for tick prices."""
        if isinstance(value, bool):
            raise InvalidPriceError(f"price {value!r} is a boolean, not a number")
        if isinstance(value, float):
            scaled = value * PRICE_SCALE
            if not math.isfinite(scaled):
                raise InvalidPriceError(f"price {value!r} is not a finite number within range")
            return cls(round(scaled))
        if isinstance(value, int):
            return cls(value * PRICE_SCALE)
        try:
            dec = value if isinstance(value, Decimal) else Decimal(str(value).strip())
        except InvalidOperation:
            raise InvalidPriceError(f"price {value!r} is not a number") from None
        return cls(_decimal_to_raw(dec))

    @classmethod
    def from_ticks(cls, ticks: int, tick_size: Price) -> Price:
        """The price ``ticks`` x ``tick_size``."""
        return cls(ticks * tick_size.raw)

    def ticks(self, tick_size: Price) -> int:
        """This price as a whole number of ticks of ``tick_size``.

        Raises:
            InvalidPriceError: if the price is not on the tick grid.
        """
        q, r = divmod(self.raw, tick_size.raw)
        if r:
            raise InvalidPriceError(f"price {self} is not a multiple of the tick size {tick_size}")
        return q

    def is_aligned(self, tick_size: Price) -> bool:
        """True when the price is a whole multiple of ``tick_size``."""
        return self.raw % tick_size.raw == 0

    def round_to_tick(self, tick_size: Price) -> Price:
        """The nearest price on the tick grid (ties to the even tick)."""
        q, r = divmod(self.raw, tick_size.raw)
        twice = 2 * r
        if twice > tick_size.raw or (twice == tick_size.raw and q % 2 == 1):
            q += 1
        return Price(q * tick_size.raw)

    def as_decimal(self) -> Decimal:
        """The exact price as a Decimal in plain notation: ``Decimal('6543.25')``, ``Decimal('6500')``."""
        return _raw_to_decimal(self.raw, 9)

    def __float__(self) -> float:
        return self.raw / PRICE_SCALE

    def __add__(self, other: Price) -> Price:
        return Price(self.raw + other.raw)

    def __sub__(self, other: Price) -> Price:
        return Price(self.raw - other.raw)

    def __neg__(self) -> Price:
        return Price(-self.raw)

    def __str__(self) -> str:
        return format(self.as_decimal(), "f")


@fast_frozen_init
@dataclass(frozen=True, slots=True, order=True)
class Money:
    """An exact amount of US dollars, held as whole ``cents`` (an int).

    ``Money.of("12.50")`` is 1250 cents. Sub-cent amounts are rejected, because every CME tick value propdesk lists
    is a whole number of cents (see ``model/resources/contracts.toml``).
    """

    cents: int

    @classmethod
    def of(cls, usd: str | int | Decimal) -> Money:
        """Parse a USD amount.

        Raises:
            InvalidAmountError: (a ``ValueError``) for a malformed or non-finite amount, or fractions of a cent.
        """
        if isinstance(usd, bool):
            raise InvalidAmountError(f"amount {usd!r} is a boolean, not a number")
        try:
            dec = usd if isinstance(usd, Decimal) else Decimal(str(usd).strip())
        except InvalidOperation:
            raise InvalidAmountError(f"amount {usd!r} is not a number") from None
        if not dec.is_finite():
            raise InvalidAmountError(f"amount {usd!r} is not a finite number")
        with localcontext(prec=_EXACT_PREC):
            cents = dec.scaleb(2)
            if cents != cents.to_integral_value():
                raise InvalidAmountError(f"amount {usd!r} is not a whole number of cents")
            return cls(int(cents))

    @classmethod
    def zero(cls) -> Money:
        """Zero dollars."""
        return cls(0)

    def as_decimal(self) -> Decimal:
        """The amount in USD as a Decimal with two places."""
        return (Decimal(self.cents) / 100).quantize(Decimal("0.01"))

    def __add__(self, other: Money) -> Money:
        return Money(self.cents + other.cents)

    def __sub__(self, other: Money) -> Money:
        return Money(self.cents - other.cents)

    def __neg__(self) -> Money:
        return Money(-self.cents)

    def __mul__(self, n: int) -> Money:
        if not isinstance(n, int):
            return NotImplemented
        return Money(self.cents * n)

    __rmul__ = __mul__

    def __str__(self) -> str:
        return f"{self.as_decimal()} USD"


def check_qty(qty: object, what: str = "quantity") -> int:
    """Return ``qty`` as an int if it is a positive whole number of contracts.

    Raises:
        InvalidQuantityError: for zero, negative, non-integral or non-numeric input (``bool`` is rejected too).
    """
    if isinstance(qty, bool) or not isinstance(qty, int):
        if isinstance(qty, float) and qty.is_integer():
            qty = int(qty)
        else:
            raise InvalidQuantityError(f"{what} {qty!r} is not a whole number of contracts")
    if qty <= 0:
        raise InvalidQuantityError(f"{what} {qty} must be a positive number of contracts")
    return qty
