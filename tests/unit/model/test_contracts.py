"""Tests for propdesk.model.contracts: the shipped spec table and exact tick arithmetic."""

from __future__ import annotations

import tomllib
from decimal import Decimal
from importlib import resources

import exchange_calendars as xc
import pytest

from propdesk.core.errors import ContractError, InvalidPriceError
from propdesk.model.contracts import ContractRegistry, default_registry, known_roots, spec
from propdesk.model.price import Money, Price

# Published CME numbers (contract-spec pages cited in contracts.toml): root -> (tick size, tick value USD, point value).
CME_PUBLISHED = {
    "ES": ("0.25", "12.50", "50"),
    "MES": ("0.25", "1.25", "5"),
    "NQ": ("0.25", "5.00", "20"),
    "MNQ": ("0.25", "0.50", "2"),
    "RTY": ("0.10", "5.00", "50"),
    "M2K": ("0.10", "0.50", "5"),
    "YM": ("1", "5.00", "5"),
    "MYM": ("1", "0.50", "0.5"),
    "CL": ("0.01", "10.00", "1000"),
    "MCL": ("0.01", "1.00", "100"),
    "GC": ("0.10", "10.00", "100"),
    "MGC": ("0.10", "1.00", "10"),
    "6E": ("0.00005", "6.25", "125000"),
}

MICROS = {"MES": "ES", "MNQ": "NQ", "M2K": "RTY", "MYM": "YM", "MCL": "CL", "MGC": "GC"}

EXCHANGES = {
    "ES": "CME",
    "MES": "CME",
    "NQ": "CME",
    "MNQ": "CME",
    "RTY": "CME",
    "M2K": "CME",
    "YM": "CBOT",
    "MYM": "CBOT",
    "CL": "NYMEX",
    "MCL": "NYMEX",
    "GC": "COMEX",
    "MGC": "COMEX",
    "6E": "CME",
}


def _shipped_toml() -> str:
    return resources.files("propdesk.model").joinpath("resources", "contracts.toml").read_text(encoding="utf-8")


def test_the_shipped_table_lists_every_required_root() -> None:
    assert set(known_roots()) == set(CME_PUBLISHED)
    assert len(default_registry()) == len(CME_PUBLISHED)


@pytest.mark.parametrize("root", sorted(CME_PUBLISHED))
def test_tick_size_tick_value_and_point_value_match_cme(root: str) -> None:
    tick_size, tick_value, point_value = CME_PUBLISHED[root]
    s = spec(root)
    assert s.root == root
    assert s.tick_size == Price.of(tick_size)
    assert s.tick_value == Money.of(tick_value)
    assert s.point_value == Decimal(point_value)
    assert s.tick_size.as_decimal() * s.point_value == s.tick_value.as_decimal()
    assert s.currency == "USD"
    assert s.exchange == EXCHANGES[root]


@pytest.mark.parametrize("root", sorted(CME_PUBLISHED))
def test_topstepx_weight_is_ten_micros_to_one_mini(root: str) -> None:
    s = spec(root)
    if root in MICROS:
        assert s.micro_of == MICROS[root]
        assert s.is_micro
        assert s.topstepx_mini_weight == Decimal("0.1")
        mini = spec(MICROS[root])
        # A micro is one tenth of its mini: same tick, a tenth of the tick value.
        assert s.tick_size == mini.tick_size
        assert s.tick_value.cents * 10 == mini.tick_value.cents
    else:
        assert s.micro_of is None
        assert not s.is_micro
        assert s.topstepx_mini_weight == Decimal("1.0")


@pytest.mark.parametrize(
    ("root", "months"),
    [("ES", "HMUZ"), ("NQ", "HMUZ"), ("6E", "HMUZ"), ("CL", "FGHJKMNQUVXZ"), ("MCL", "FGHJKMNQUVXZ"), ("GC", "GJMQVZ")],
)
def test_listing_cycles(root: str, months: str) -> None:
    assert spec(root).months == months


def test_every_product_names_its_sources_and_a_real_calendar() -> None:
    names = set(xc.get_calendar_names())
    for s in default_registry():
        assert s.sources["spec"].startswith("https://www.cmegroup.com/markets/"), s.root
        assert "roll" in s.sources, s.root
        assert s.calendar in names, s.root
        assert s.business_calendar in names, s.root
        assert s.timezone == "America/Chicago"
        assert (s.session_open.hour, s.session_close.hour) == (17, 16)


def test_every_number_in_the_file_has_a_source_field() -> None:
    doc = tomllib.loads(_shipped_toml())
    for key, table in doc["products"].items():
        assert {"spec", "weight", "roll"} <= set(table["source"]), key


def test_unknown_root_lists_the_known_roots() -> None:
    with pytest.raises(ContractError, match=r"unknown root 'FOO'.*ES.*MNQ"):
        spec("FOO")


# ----------------------------------------------------------------------------------------------------- tick arithmetic


def test_ticks_of_aligned_prices() -> None:
    es = spec("ES")
    assert es.ticks(Price.of("6500.25")) == 26001
    assert es.ticks(6500.25) == 26001
    assert es.ticks("6500") == 26000
    assert spec("6E").ticks(Price.of("1.10785")) == 22157
    assert spec("CL").ticks(Price.of("-37.63")) == -3763  # CL settled negative on 2020-04-20


@pytest.mark.parametrize(("root", "price"), [("ES", "6500.1"), ("6E", "1.10786"), ("YM", "44000.5"), ("CL", "70.005")])
def test_ticks_rejects_off_tick_prices(root: str, price: str) -> None:
    with pytest.raises(InvalidPriceError, match=f"{root}: price {price} is not a multiple of the tick size"):
        spec(root).ticks(Price.of(price))


def test_ticks_rejects_non_finite_floats() -> None:
    with pytest.raises(InvalidPriceError):
        spec("ES").ticks(float("nan"))


def test_price_of_ticks() -> None:
    assert spec("ES").price_of_ticks(26001) == Price.of("6500.25")
    assert spec("6E").price_of_ticks(3) == Price.of("0.00015")
    assert spec("NQ").price_of_ticks(-4) == Price.of("-1")


def test_pnl_6e_long_three_ticks_three_contracts() -> None:
    # 3 ticks x 3 contracts x 6.25 USD = 56.25 USD
    pnl = spec("6E").pnl(Price.of("1.10785"), Price.of("1.10800"), 3)
    assert pnl == Money(5625)
    assert str(pnl) == "56.25 USD"


def test_pnl_signs_for_longs_and_shorts() -> None:
    es = spec("ES")
    assert es.pnl(Price.of("6500"), Price.of("6498.75"), -2) == Money.of("125.00")  # short 2, 5 ticks down
    assert es.pnl(Price.of("6500"), Price.of("6498.75"), 2) == Money.of("-125.00")
    assert es.pnl(Price.of("6500"), Price.of("6500"), 7) == Money.zero()
    assert spec("MYM").pnl(Price.of("44000"), Price.of("44013"), 1) == Money.of("6.50")
    assert spec("MNQ").pnl(Price.of("21000.25"), Price.of("21010.75"), 4) == Money.of("84.00")


def test_pnl_is_exact_where_floats_are_not() -> None:
    cl = spec("CL")
    total = Money.zero()
    for _ in range(1000):
        total += cl.pnl(Price.of(0.1), Price.of(0.3), 1)  # 20 ticks x 10 USD each time
    assert total == Money.of("200000")
    assert sum([0.1] * 10) != 1.0  # the float trap this avoids


def test_pnl_rejects_off_tick_prices_and_non_int_quantities() -> None:
    with pytest.raises(InvalidPriceError):
        spec("ES").pnl(Price.of("6500.1"), Price.of("6501"), 1)
    with pytest.raises(TypeError):
        spec("ES").pnl(Price.of("6500"), Price.of("6501"), 1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        spec("ES").pnl(Price.of("6500"), Price.of("6501"), True)


def test_value_of_points() -> None:
    assert spec("ES").value_of_points(Price.of("1.5")) == Decimal("75")
    assert spec("6E").value_of_points(Price.of("0.0001")) == Decimal("12.5")


# ------------------------------------------------------------------------------------------------- loading errors


def _one_product(**overrides: str) -> str:
    fields = {
        "root": '"ES"',
        "name": '"E-mini S&P 500"',
        "exchange": '"CME"',
        "asset_class": '"equity_index"',
        "currency": '"USD"',
        "tick_size": '"0.25"',
        "tick_value": '"12.50"',
        "point_value": '"50"',
        "months": '"HMUZ"',
        "topstepx_mini_weight": '"1.0"',
        "calendar": '"CMES"',
        "business_calendar": '"XNYS"',
        "timezone": '"America/Chicago"',
        "session_open": '"17:00"',
        "session_close": '"16:00"',
        "expiry": '{ rule = "third_friday", time = "08:30" }',
        "roll": '{ anchor = "expiry", calendar_days = 8 }',
        "source": '{ spec = "https://www.cmegroup.com/x" }',
    }
    fields.update(overrides)
    body = "\n".join(f"{k} = {v}" for k, v in fields.items() if v)
    return f"[products.ES]\n{body}\n"


def test_a_minimal_table_loads() -> None:
    reg = ContractRegistry.from_toml_text(_one_product())
    assert reg.roots() == ["ES"]
    assert reg.spec("ES").tick_value == Money(1250)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"tick_size": ""}, "missing field 'tick_size'"),
        ({"tick_value": '"12.00"'}, "tick_value 12.00 != tick_size 0.25 x point_value 50"),
        ({"tick_size": '"abc"'}, "'tick_size' is not a decimal number"),
        ({"tick_size": '"-0.25"', "tick_value": '"-12.50"'}, "must be a positive number"),
        ({"point_value": "50"}, "'point_value' must be str"),
        ({"months": '"ZH"'}, "calendar order"),
        ({"months": '"HMUA"'}, "calendar order"),
        ({"timezone": '"Mars/Olympus"'}, "unknown timezone"),
        ({"expiry": '{ rule = "full_moon", time = "08:30" }'}, "unknown rule 'full_moon'"),
        ({"expiry": '{ rule = "third_friday", time = "8h30" }'}, "not a time"),
        ({"expiry": '{ rule = "nth_last_business_day", time = "08:30" }'}, "needs n >= 1"),
        ({"roll": '{ anchor = "expiry" }'}, "exactly one of calendar_days or business_days"),
        ({"roll": '{ anchor = "expiry", calendar_days = 8, business_days = 2 }'}, "exactly one"),
        ({"roll": '{ anchor = "first_notice", business_days = 2 }'}, "needs a \\[first_notice\\] rule"),
        ({"roll": '{ anchor = "expiry", business_days = -1 }'}, "non-negative integer"),
        ({"source": '{ url = "x" }'}, "source.spec"),
        ({"root": '"SP"'}, "differs from the table key"),
        ({"micro_of": '"XX"'}, "micro_of 'XX' is not a known root"),
    ],
)
def test_invalid_tables_raise_a_clear_error(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(ContractError, match=message):
        ContractRegistry.from_toml_text(_one_product(**overrides))


def test_invalid_toml_and_empty_tables() -> None:
    with pytest.raises(ContractError, match="invalid TOML"):
        ContractRegistry.from_toml_text("[products.ES\n")
    with pytest.raises(ContractError, match="no \\[products"):
        ContractRegistry.from_toml_text("schema_version = 1\n")
    with pytest.raises(ContractError, match=r"products\.ES must be a table"):
        ContractRegistry.from_toml_text("products = { ES = 1 }\n")
