"""Tests for propdesk.model.price: exact Price and Money, tick alignment, rounding, check_qty.

The overflow, long-decimal, plain-notation and signalling-NaN cases pin defects found in an earlier price.py.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from propdesk.core.errors import InvalidPriceError, InvalidQuantityError, PropdeskError
from propdesk.model.price import PRICE_SCALE, Money, Price, check_qty

TICK_ES = Price.of("0.25")
TICK_6E = Price.of("0.00005")

# ----------------------------------------------------------------------------------------------------- Price.of


@pytest.mark.parametrize(
    ("value", "raw"),
    [
        ("6543.25", 6_543_250_000_000),
        (" 6543.25 ", 6_543_250_000_000),
        ("1.10785", 1_107_850_000),
        ("0.00005", 50_000),
        ("-37.63", -37_630_000_000),
        ("0.000000001", 1),
        ("1E+2", 100_000_000_000),
        (Decimal("6543.250000000"), 6_543_250_000_000),
        (6543, 6_543_000_000_000),
        (0, 0),
        (6543.25, 6_543_250_000_000),
        (1.10785, 1_107_850_000),
        (0.1, 100_000_000),
        (-0.0, 0),
    ],
)
def test_of_is_exact(value: str | int | float | Decimal, raw: int) -> None:
    assert Price.of(value).raw == raw


def test_of_rounds_floats_to_nine_decimals() -> None:
    assert Price.of(0.1 + 0.2).raw == 300_000_000  # 0.30000000000000004 -> 0.3
    assert Price.of(1.0000000004).raw == 1_000_000_000
    assert Price.of(1.0000000006).raw == 1_000_000_001


@pytest.mark.parametrize("value", ["abc", "", "1.2.3", "NaN", "inf", "-Infinity", "sNaN", "0.0000000001", "1e-10"])
def test_of_rejects_bad_strings(value: str) -> None:
    with pytest.raises(InvalidPriceError):
        Price.of(value)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), Decimal("NaN"), Decimal("Infinity")])
def test_of_rejects_non_finite_numbers(value: float | Decimal) -> None:
    with pytest.raises(InvalidPriceError, match="not a finite number"):
        Price.of(value)


def test_invalid_price_error_is_a_value_error_and_a_propdesk_error() -> None:
    with pytest.raises(ValueError, match="more than 9 decimal places"):
        Price.of("1.0000000001")
    assert issubclass(InvalidPriceError, PropdeskError)


def test_of_rejects_a_float_too_large_for_the_scale() -> None:
    with pytest.raises(InvalidPriceError):
        Price.of(1e300)


def test_of_does_not_round_long_decimals_silently() -> None:
    with pytest.raises(InvalidPriceError):
        Price.of("12345678901234567890.1234567891")  # 10 decimals, but the context precision hides it


# ---------------------------------------------------------------------------------------------- ticks and rounding


def test_ticks_and_from_ticks() -> None:
    p = Price.of("6543.25")
    assert p.ticks(TICK_ES) == 26173
    assert Price.from_ticks(26173, TICK_ES) == p
    assert Price.of("1.10785").ticks(TICK_6E) == 22157
    assert Price.of("-1.25").ticks(TICK_ES) == -5


def test_ticks_rejects_off_tick_prices() -> None:
    with pytest.raises(InvalidPriceError, match=r"6543\.1 is not a multiple of the tick size 0\.25"):
        Price.of("6543.1").ticks(TICK_ES)
    assert not Price.of("6543.1").is_aligned(TICK_ES)
    assert Price.of("6543.75").is_aligned(TICK_ES)
    assert not Price.of("1.10786").is_aligned(TICK_6E)


@pytest.mark.parametrize(
    ("price", "rounded"),
    [
        ("6543.10", "6543"),
        ("6543.13", "6543.25"),
        ("6543.125", "6543"),  # tie: 26172 ticks (even) kept
        ("6543.375", "6543.5"),  # tie: 26173.5 -> 26174 (even)
        ("6543.25", "6543.25"),
        ("-1.125", "-1"),  # tie: -4.5 ticks -> -4 (even)
        ("-1.375", "-1.5"),  # tie: -5.5 ticks -> -6 (even)
        ("-1.2", "-1.25"),
    ],
)
def test_round_to_tick_is_nearest_with_ties_to_even(price: str, rounded: str) -> None:
    assert Price.of(price).round_to_tick(TICK_ES) == Price.of(rounded)


def test_as_decimal_and_str() -> None:
    assert Price.of("6543.25").as_decimal() == Decimal("6543.25")
    assert str(Price.of("6543.250")) == "6543.25"
    assert str(Price.of("0.00005")) == "0.00005"
    assert str(Price.of(6500)) == "6500"
    assert str(Price.of(0)) == "0"
    assert Price.of(0).as_decimal() == 0
    assert float(Price.of("1.10785")) == 1.10785


def test_as_decimal_has_no_exponent_for_round_prices() -> None:
    assert str(Price.of(6500).as_decimal()) == "6500"


def test_arithmetic_and_order() -> None:
    a, b = Price.of("6543.25"), Price.of("0.75")
    assert a + b == Price.of("6544")
    assert a - b == Price.of("6542.5")
    assert -b == Price.of("-0.75")
    assert b < a
    assert sorted([a, b, -b]) == [-b, b, a]
    assert hash(Price.of("1.5")) == hash(Price.of(Decimal("1.50")))


@given(st.integers(min_value=-(10**12), max_value=10**12), st.sampled_from(["0.25", "0.1", "0.01", "1", "0.00005"]))
def test_ticks_round_trip(n: int, tick: str) -> None:
    t = Price.of(tick)
    p = Price.from_ticks(n, t)
    assert p.ticks(t) == n
    assert p.round_to_tick(t) == p
    assert Price.of(str(p)) == p
    assert Price.of(p.as_decimal()) == p


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_round_to_tick_lands_on_the_grid_within_half_a_tick(raw: int) -> None:
    p = Price(raw)
    r = p.round_to_tick(TICK_ES)
    assert r.is_aligned(TICK_ES)
    assert 2 * abs(r.raw - p.raw) <= TICK_ES.raw


def test_scale() -> None:
    assert PRICE_SCALE == 10**9


# --------------------------------------------------------------------------------------------------------- Money


@pytest.mark.parametrize(
    ("usd", "cents"),
    [("12.50", 1250), ("12.5", 1250), (" 6.25 ", 625), ("-0.01", -1), (7, 700), (Decimal("56.25"), 5625), ("0", 0)],
)
def test_money_of(usd: str | int | Decimal, cents: int) -> None:
    assert Money.of(usd).cents == cents


@pytest.mark.parametrize("usd", ["0.001", "1.005", "abc", "", "NaN", "inf"])
def test_money_rejects_sub_cent_and_malformed_amounts(usd: str) -> None:
    with pytest.raises(ValueError, match=r"not a (number|finite number|whole number of cents)"):
        Money.of(usd)


def test_money_rejects_signalling_nan_with_value_error() -> None:
    with pytest.raises(ValueError):
        Money.of("sNaN")


def test_money_arithmetic_is_exact() -> None:
    tick = Money.of("6.25")
    assert tick * 9 == Money.of("56.25")
    assert 9 * tick == Money.of("56.25")
    assert tick + tick - Money.of("12.50") == Money.zero()
    assert -tick == Money(-625)
    total = Money.zero()
    for _ in range(10):
        total += Money.of("0.10")
    assert total == Money.of("1.00")
    assert Money(5625).as_decimal() == Decimal("56.25")
    assert str(Money(5625)) == "56.25 USD"
    assert str(Money(-1)) == "-0.01 USD"
    assert str(Money.of(100)) == "100.00 USD"
    assert Money(1) < Money(2)


def test_money_times_a_non_int_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        Money(100) * 1.5  # type: ignore[operator]
    with pytest.raises(TypeError):
        Money(100) * Decimal(2)  # type: ignore[operator]


# ----------------------------------------------------------------------------------------------------- check_qty


@pytest.mark.parametrize(("qty", "expected"), [(1, 1), (50, 50), (3.0, 3)])
def test_check_qty_accepts_positive_whole_numbers(qty: object, expected: int) -> None:
    got = check_qty(qty)
    assert got == expected
    assert type(got) is int


@pytest.mark.parametrize("qty", [0, -1, -2.0])
def test_check_qty_rejects_zero_and_negatives(qty: object) -> None:
    with pytest.raises(InvalidQuantityError, match="must be a positive number of contracts"):
        check_qty(qty)


@pytest.mark.parametrize("qty", [1.5, float("nan"), float("inf"), "2", None, True, False, Decimal(2)])
def test_check_qty_rejects_non_integral_and_non_numeric(qty: object) -> None:
    with pytest.raises(InvalidQuantityError, match="is not a whole number of contracts"):
        check_qty(qty)


def test_check_qty_names_the_field() -> None:
    with pytest.raises(InvalidQuantityError, match=r"^size 0 must be"):
        check_qty(0, "size")
    assert issubclass(InvalidQuantityError, ValueError)
    assert issubclass(InvalidQuantityError, PropdeskError)
