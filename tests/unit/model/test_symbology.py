"""Tests for propdesk.model.symbology: month codes, listed symbols, years, expiry, roll, front month."""

from __future__ import annotations

import inspect
from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from propdesk.core.bus import MessageBus
from propdesk.core.errors import ContractError
from propdesk.execution import positions
from propdesk.execution.order_manager import tick_size_of_symbol
from propdesk.model.contracts import default_registry, known_roots, spec
from propdesk.model.symbology import (
    Contract,
    business_days_before,
    contract,
    expiry_date,
    expiry_ns,
    first_notice_date,
    front_month,
    is_business_day,
    month_code,
    month_of_code,
    next_contract,
    parse_symbol,
    previous_contract,
    resolve_contract,
    resolve_year,
    roll_date,
    roll_ns,
    roll_trading_date,
    spec_for_symbol,
)


def ns(iso: str) -> int:
    """UTC ns of an ISO timestamp with offset."""
    dt = datetime.fromisoformat(iso)
    assert dt.tzinfo is not None
    return int(dt.timestamp()) * 1_000_000_000


REF_2025 = ns("2025-06-01T00:00:00+00:00")


def test_month_code_table() -> None:
    assert [month_code(m) for m in range(1, 13)] == list("FGHJKMNQUVXZ")
    assert [month_of_code(c) for c in "FGHJKMNQUVXZ"] == list(range(1, 13))
    for bad in (0, 13, True):
        with pytest.raises(ContractError, match=r"is not 1\.\.12"):
            month_code(bad)
    for code in ("A", "ZZ", "", "z"):
        with pytest.raises(ContractError, match="is not one of F G H"):
            month_of_code(code)


def test_two_digit_year_symbols() -> None:
    assert parse_symbol("ESZ25") == contract("ES", "Z", 2025)
    assert parse_symbol("6EH30") == contract("6E", "H", 2030)
    assert parse_symbol("ESZ25").symbol_2digit == "ESZ25"


@pytest.mark.parametrize(
    ("ref", "digits", "year"),
    [
        ("2025-06-01T00:00:00+00:00", "5", 2025),
        ("2025-06-01T00:00:00+00:00", "6", 2026),
        ("2025-06-01T00:00:00+00:00", "3", 2023),  # two years back is still recent history
        ("2025-06-01T00:00:00+00:00", "2", 2032),  # three years back is taken as the next decade
        ("2025-12-31T23:59:59+00:00", "4", 2024),
        ("2029-01-01T00:00:00+00:00", "5", 2035),
        ("2029-01-01T00:00:00+00:00", "7", 2027),
        ("2031-03-01T00:00:00+00:00", "0", 2030),
        ("2031-03-01T00:00:00+00:00", "8", 2038),
        ("2025-06-01T00:00:00+00:00", "25", 2025),
        ("2025-06-01T00:00:00+00:00", "07", 2007),
    ],
)
def test_year_disambiguation(ref: str, digits: str, year: int) -> None:
    assert resolve_year(digits, ns(ref)) == year


def test_year_disambiguation_defaults_to_now() -> None:
    this_year = datetime.now(UTC).year
    assert resolve_year(str(this_year % 10)) == this_year


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("con.f.us.ep.z25", "malformed symbol"),
        ("CON.F.US.EP.Z25", "malformed symbol"),
        ("ESX5", "symbol 'ESX5': ES: month X \\(11\\) is not in the ES listing cycle HMUZ"),
        ("GCH6", "not in the GC listing cycle GJMQVZ"),
        ("FOOZ5", "unknown root 'FOO'; known roots: 6E, CL, ES"),
        ("ESZ", "malformed symbol 'ESZ'"),
        ("ES", "malformed symbol"),
        ("", "malformed symbol"),
        ("ESZ123", "malformed symbol"),
        ("esz5", "malformed symbol"),
        ("ES Z5", "malformed symbol"),
        ("ESZ5 ", "malformed symbol"),
    ],
)
def test_malformed_or_unknown_symbols_raise_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(ContractError, match=message):
        parse_symbol(text, ref_ns=REF_2025)


def test_non_strings_and_bad_contracts_are_rejected() -> None:
    with pytest.raises(ContractError, match="is not a string"):
        parse_symbol(5)  # type: ignore[arg-type]
    with pytest.raises(ContractError, match="unknown root"):
        contract("FOO", 12, 2025)
    with pytest.raises(ContractError, match="outside 2000-2099"):
        contract("ES", 12, 1999)
    with pytest.raises(ContractError, match="outside 2000-2099"):
        Contract(default_registry().spec("ES").root, 2100, 3)
    with pytest.raises(ContractError, match="is not an int"):
        contract("ES", 12, "2025")  # type: ignore[arg-type]
    with pytest.raises(ContractError, match="must be one or two digits"):
        resolve_year("123")


def test_next_and_previous_contract_follow_the_cycle() -> None:
    assert next_contract(contract("ES", "Z", 2025)).symbol == "ESH6"
    assert previous_contract(contract("ES", "H", 2026)).symbol == "ESZ5"
    assert next_contract(contract("CL", "F", 2026)).symbol == "CLG6"
    assert next_contract(contract("GC", "Z", 2025)).symbol == "GCG6"
    assert previous_contract(contract("GC", "G", 2026)).symbol == "GCZ5"
    assert next_contract(contract("GC", "J", 2026)).symbol == "GCM6"


def test_contracts_order_by_root_then_date() -> None:
    a, b, c = contract("ES", "Z", 2025), contract("ES", "H", 2026), contract("NQ", "H", 2025)
    assert sorted([c, b, a]) == [a, b, c]


# -------------------------------------------------------------------------------------------------- business days


def test_business_days_use_the_nyse_holidays() -> None:
    assert not is_business_day(date(2025, 12, 25), "XNYS")  # Christmas
    assert not is_business_day(date(2026, 1, 19), "XNYS")  # MLK day: Globex trades, CME does not settle
    assert not is_business_day(date(2025, 12, 20), "XNYS")  # Saturday
    assert is_business_day(date(2025, 11, 28), "XNYS")  # day after Thanksgiving (early close)
    assert business_days_before(date(2025, 12, 25), 4, "XNYS") == date(2025, 12, 19)
    with pytest.raises(ValueError, match="n must be >= 1"):
        business_days_before(date(2025, 12, 25), 0, "XNYS")
    with pytest.raises(ContractError, match="unknown exchange calendar 'NOPE'"):
        is_business_day(date(2025, 12, 22), "NOPE")


# ------------------------------------------------------------------------------------------------------ expiry


# Last trading days published by CME (product calendars) for these contracts.
@pytest.mark.parametrize(
    ("symbol", "last_day"),
    [
        ("ESZ25", date(2025, 12, 19)),  # third Friday
        ("MESZ25", date(2025, 12, 19)),
        ("NQH26", date(2026, 3, 20)),
        ("ESU25", date(2025, 9, 19)),
        ("CLZ25", date(2025, 11, 20)),  # 25 Nov is a business day: 3 business days before
        ("CLF26", date(2025, 12, 19)),  # 25 Dec is a holiday: 4 business days before
        ("MCLF26", date(2025, 12, 18)),  # one business day before CL
        ("GCZ25", date(2025, 12, 29)),  # third last business day of December
        ("MGCG26", date(2026, 2, 25)),
        ("6EZ25", date(2025, 12, 15)),  # two business days before the third Wednesday (17 Dec)
        ("6EH26", date(2026, 3, 16)),
    ],
)
def test_expiry_dates(symbol: str, last_day: date) -> None:
    assert expiry_date(parse_symbol(symbol)) == last_day


def test_a_third_friday_holiday_moves_the_expiry_back() -> None:
    # Derived from the rule, not confirmed against a CME notice: 2026-06-19 (third Friday) is Juneteenth.
    assert expiry_date(parse_symbol("ESM26")) == date(2026, 6, 18)
    # CLN26: 25 June 2026 is a Thursday: 3 business days before, with Juneteenth (19 June) skipped.
    assert expiry_date(parse_symbol("CLN26")) == date(2026, 6, 22)


def test_expiry_ns_is_the_local_termination_time_in_utc() -> None:
    assert expiry_ns(parse_symbol("ESZ25")) == ns("2025-12-19T08:30:00-06:00")
    assert expiry_ns(parse_symbol("ESZ25")) == ns("2025-12-19T14:30:00+00:00")
    assert expiry_ns(parse_symbol("ESU25")) == ns("2025-09-19T13:30:00+00:00")  # CDT
    assert expiry_ns(parse_symbol("6EZ25")) == ns("2025-12-15T09:16:00-06:00")
    assert expiry_ns(parse_symbol("CLZ25")) == ns("2025-11-20T13:30:00-06:00")


def test_first_notice_day_only_for_metals() -> None:
    assert first_notice_date(parse_symbol("GCZ25")) == date(2025, 11, 28)
    assert first_notice_date(parse_symbol("GCG26")) == date(2026, 1, 30)
    assert first_notice_date(parse_symbol("ESZ25")) is None


# -------------------------------------------------------------------------------------------------------- roll


@pytest.mark.parametrize(
    ("symbol", "roll"),
    [
        ("ESZ25", date(2025, 12, 11)),  # CME roll date: 8 days before expiry (second Thursday)
        ("ESH26", date(2026, 3, 12)),
        ("NQU25", date(2025, 9, 11)),
        ("CLF26", date(2025, 12, 16)),  # 3 business days before 19 Dec
        ("MCLF26", date(2025, 12, 16)),  # same trading day as CL
        ("GCZ25", date(2025, 11, 25)),  # 2 business days before first notice (28 Nov), Thanksgiving skipped
        ("6EZ25", date(2025, 12, 8)),
    ],
)
def test_roll_dates(symbol: str, roll: date) -> None:
    assert roll_trading_date(parse_symbol(symbol)) == roll


def test_roll_ns_is_the_session_open_before_the_roll_date() -> None:
    assert roll_ns(parse_symbol("ESZ25")) == ns("2025-12-10T17:00:00-06:00")
    assert roll_ns(parse_symbol("ESU25")) == ns("2025-09-10T22:00:00+00:00")  # 17:00 CDT


@pytest.mark.parametrize(
    ("root", "when", "front"),
    [
        ("ES", "2025-11-14T15:00:00+00:00", "ESZ5"),
        ("ES", "2025-12-10T22:59:59+00:00", "ESZ5"),  # 16:59:59 CT, the day before the roll date
        ("ES", "2025-12-10T23:00:00+00:00", "ESH6"),  # 17:00 CT: the roll date's session opens
        ("ES", "2025-12-12T15:00:00+00:00", "ESH6"),
        ("ES", "2025-12-19T15:00:00+00:00", "ESH6"),
        ("ES", "2025-12-31T12:00:00+00:00", "ESH6"),
        ("ES", "2025-09-05T12:00:00+00:00", "ESU5"),
        ("ES", "2025-09-12T12:00:00+00:00", "ESZ5"),
        ("MNQ", "2026-01-02T12:00:00+00:00", "MNQH6"),
        ("CL", "2025-11-14T12:00:00+00:00", "CLZ5"),
        ("CL", "2025-11-18T12:00:00+00:00", "CLF6"),
        ("CL", "2025-12-20T12:00:00+00:00", "CLG6"),
        ("MCL", "2025-12-20T12:00:00+00:00", "MCLG6"),
        ("GC", "2025-11-14T12:00:00+00:00", "GCZ5"),
        ("GC", "2025-12-01T12:00:00+00:00", "GCG6"),
        ("6E", "2025-12-05T12:00:00+00:00", "6EZ5"),
        ("6E", "2025-12-09T12:00:00+00:00", "6EH6"),
    ],
)
def test_front_month(root: str, when: str, front: str) -> None:
    assert front_month(root, ns(when)).symbol == front


def test_roll_date_for_a_timestamp() -> None:
    assert roll_date("ES", ns("2025-11-14T15:00:00+00:00")) == date(2025, 12, 11)
    assert roll_date("ES", ns("2025-12-12T15:00:00+00:00")) == date(2026, 3, 12)
    with pytest.raises(ContractError, match="unknown root 'XX'"):
        roll_date("XX", ns("2025-11-14T15:00:00+00:00"))


# -------------------------------------------------------------------------------------------------- properties

ROOTS = sorted(str(r) for r in known_roots())


@st.composite
def contracts(draw: st.DrawFn) -> Contract:
    root = draw(st.sampled_from(ROOTS))
    code = draw(st.sampled_from(spec(root).months))
    year = draw(st.integers(min_value=2000, max_value=2099))
    return contract(root, code, year)


@given(contracts())
def test_round_trip_through_symbols(c: Contract) -> None:
    assert parse_symbol(c.symbol_2digit) == c
    ref = ns(f"{c.year}-01-01T00:00:00+00:00")
    assert parse_symbol(c.symbol, ref_ns=ref) == c
    if 2000 < c.year < 2099:  # the neighbours of the first and last supported years are out of range
        assert previous_contract(next_contract(c)) == c
        assert next_contract(previous_contract(c)) == c
        assert previous_contract(c) < c < next_contract(c)


@settings(max_examples=60)
@given(
    st.sampled_from(ROOTS),
    st.integers(min_value=ns("2001-01-01T00:00:00+00:00"), max_value=ns("2098-01-01T00:00:00+00:00")),
)
def test_front_month_is_the_first_contract_not_yet_rolled(root: str, ts: int) -> None:
    c = front_month(root, ts)
    assert roll_ns(c) > ts
    assert roll_ns(previous_contract(c)) <= ts
    assert roll_ns(c) < expiry_ns(c)


# ---------------------------------------------------------------------------------------------------------- lookup


def test_spec_for_symbol_takes_a_contract_or_a_root() -> None:
    assert spec_for_symbol("ESZ5") is spec("ES")
    assert spec_for_symbol("ESZ25") is spec("ES") and spec_for_symbol("6EZ25") is spec("6E")
    assert spec_for_symbol("MES") is spec("MES")  # a bare root
    with pytest.raises(ContractError, match="unknown root 'XX'"):
        spec_for_symbol("XXZ5")
    with pytest.raises(ContractError, match="malformed symbol"):
        spec_for_symbol("es z5")
    with pytest.raises(ContractError, match="cycle"):
        spec_for_symbol("ESF6")  # January is not in ES's quarterly cycle


def test_resolve_contract_keeps_a_contract_and_turns_a_root_into_the_front_month() -> None:
    at = ns("2025-12-10T17:30:00-06:00")  # after ES's roll to March (2025-12-10 17:00 CT)
    assert resolve_contract("ESZ5", at) == "ESZ5" and resolve_contract("ESZ5", None) == "ESZ5"
    assert resolve_contract("ES", ns("2025-12-10T16:30:00-06:00")) == "ESZ5"
    assert resolve_contract("ES", at) == front_month("ES", at).symbol == "ESH6"
    with pytest.raises(ContractError, match="unknown contract 'XXZ5'"):
        resolve_contract("XXZ5", at)
    with pytest.raises(ContractError, match="root ES without a time"):
        resolve_contract("ES", None)


def test_every_default_contract_lookup_is_the_one_function() -> None:
    default = inspect.signature(positions.PositionManager.__init__).parameters["contracts"].default
    assert default is spec_for_symbol
    pm = positions.PositionManager(MessageBus(timing=False))
    assert pm.spec_of("NQH6") is spec_for_symbol("NQH6")
    assert tick_size_of_symbol("MNQ") == spec_for_symbol("MNQ").tick_size
