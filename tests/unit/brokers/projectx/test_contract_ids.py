"""Tests for propdesk.brokers.projectx.contract_ids: ProjectX contract ids and symbol ids both ways."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from propdesk.brokers.projectx.contract_ids import (
    SYMBOL_IDS,
    contract_id,
    contract_id_to_symbol,
    parse,
    parse_contract_id,
    projectx_root,
    root_of_symbol_id,
    symbol_id,
    symbol_to_contract_id,
    to_contract_id,
)
from propdesk.core.errors import ContractError
from propdesk.model.contracts import known_roots, spec
from propdesk.model.symbology import Contract, contract, month_code, parse_symbol

# The regex project-x-py 4.4.1 uses (src/project_x_py/client/contract_calendar.py), copied here on purpose.
CLIENT_RE = re.compile(r"^CON\.[A-Z]\.[A-Z]{2}\.(.+)\.([FGHJKMNQUVXZ])(\d{1,2})$")


def ns(iso: str) -> int:
    """UTC ns of an ISO timestamp with offset."""
    dt = datetime.fromisoformat(iso)
    assert dt.tzinfo is not None
    return int(dt.timestamp()) * 1_000_000_000


REF_2025 = ns("2025-06-01T00:00:00+00:00")


# ------------------------------------------------------------------------------------------------ ids both ways

KNOWN_IDS = [
    ("ES", 12, 2025, "ESZ5", "CON.F.US.EP.Z25"),
    ("MES", 3, 2026, "MESH6", "CON.F.US.MES.H26"),
    ("NQ", 3, 2025, "NQH5", "CON.F.US.ENQ.H25"),
    ("MNQ", 12, 2026, "MNQZ6", "CON.F.US.MNQ.Z26"),
    ("RTY", 6, 2026, "RTYM6", "CON.F.US.RTY.M26"),
    ("M2K", 6, 2026, "M2KM6", "CON.F.US.M2K.M26"),
    ("YM", 6, 2026, "YMM6", "CON.F.US.YM.M26"),
    ("MYM", 6, 2026, "MYMM6", "CON.F.US.MYM.M26"),
    ("CL", 5, 2026, "CLK6", "CON.F.US.CLE.K26"),
    ("MCL", 6, 2026, "MCLM6", "CON.F.US.MCLE.M26"),
    ("GC", 4, 2026, "GCJ6", "CON.F.US.GCE.J26"),
    ("MGC", 4, 2026, "MGCJ6", "CON.F.US.MGC.J26"),
    ("6E", 6, 2026, "6EM6", "CON.F.US.EU6.M26"),
]


def test_every_root_has_a_known_id_case() -> None:
    assert {r for r, *_ in KNOWN_IDS} == set(known_roots())


@pytest.mark.parametrize(("root", "month", "year", "symbol", "cid"), KNOWN_IDS)
def test_ids_both_ways(root: str, month: int, year: int, symbol: str, cid: str) -> None:
    c = contract(root, month, year)
    assert (c.root, c.year, c.month) == (root, year, month)
    assert c.symbol == symbol
    assert str(c) == symbol
    assert contract_id(c) == cid
    assert CLIENT_RE.match(contract_id(c))
    assert to_contract_id(root, month, year) == cid
    assert to_contract_id(root, month_code(month), year % 100) == cid
    assert parse_contract_id(cid) == c
    assert parse_symbol(symbol, ref_ns=REF_2025) == c
    assert parse_symbol(c.symbol_2digit) == c
    assert parse(cid) == c
    assert parse(symbol, ref_ns=REF_2025) == c
    assert symbol_to_contract_id(symbol, ref_ns=REF_2025) == cid
    assert contract_id_to_symbol(cid) == symbol
    assert c.spec is spec(root)


def test_one_digit_year_in_a_projectx_id_is_resolved_like_a_symbol() -> None:
    assert parse_contract_id("CON.F.US.EP.Z5", ref_ns=REF_2025) == contract("ES", 12, 2025)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("CON.F.US.EP.Z", "malformed ProjectX contract id 'CON.F.US.EP.Z'"),
        ("CON.F.US.EP.Z2025", "malformed ProjectX contract id"),
        ("CON.F.US..Z25", "malformed ProjectX contract id"),
        ("CON.F.US.EP.A25", "malformed ProjectX contract id"),
        ("con.f.us.ep.z25", "malformed symbol"),
        ("CON.F.US.ES.Z25", "unknown ProjectX symbol id 'F.US.ES'"),
        ("CON.F.EU.EP.Z25", "unknown ProjectX symbol id 'F.EU.EP'"),
        ("CON.F.US.EP.X25", "month X \\(11\\) is not in the ES listing cycle HMUZ"),
        # a symbol goes to the broker-neutral parser (every symbol case: tests/unit/model/test_symbology.py)
        ("ESX5", "symbol 'ESX5': ES: month X \\(11\\) is not in the ES listing cycle HMUZ"),
        ("ESZ", "malformed symbol 'ESZ'"),
    ],
)
def test_malformed_or_unknown_ids_raise_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(ContractError, match=message):
        parse(text, ref_ns=REF_2025)


def test_symbol_ids_both_ways() -> None:
    assert set(SYMBOL_IDS) == set(known_roots())
    assert symbol_id("ES") == "F.US.EP" and projectx_root("ES") == "EP"
    assert symbol_id("CL") == "F.US.CLE" and projectx_root("MNQ") == "MNQ"
    assert root_of_symbol_id("F.US.ENQ") == "NQ"
    assert len(set(SYMBOL_IDS.values())) == len(SYMBOL_IDS)
    with pytest.raises(ContractError, match="root 'FOO' has no ProjectX symbol id"):
        symbol_id("FOO")
    with pytest.raises(ContractError, match=r"unknown ProjectX symbol id 'F\.US\.ES'"):
        root_of_symbol_id("F.US.ES")
    with pytest.raises(ContractError, match="is not a string"):
        parse_contract_id(None)  # type: ignore[arg-type]


ROOTS = sorted(str(r) for r in known_roots())


@st.composite
def contracts(draw: st.DrawFn) -> Contract:
    root = draw(st.sampled_from(ROOTS))
    code = draw(st.sampled_from(spec(root).months))
    year = draw(st.integers(min_value=2000, max_value=2099))
    return contract(root, code, year)


@given(contracts())
def test_round_trip_through_ids_and_symbols(c: Contract) -> None:
    assert CLIENT_RE.match(contract_id(c))
    assert parse_contract_id(contract_id(c)) == c
    assert contract_id_to_symbol(contract_id(c)) == c.symbol
