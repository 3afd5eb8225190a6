"""Tests for client order ids (propdesk.execution.ids) and bracket child ids (propdesk.execution.brackets)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from propdesk.core.errors import ConfigError
from propdesk.execution.brackets import child_id
from propdesk.execution.ids import (
    CLIENT_ORDER_ID_RE,
    MAX_CLIENT_ORDER_ID_LEN,
    ClientOrderIdGenerator,
    is_valid_client_order_id,
    new_run_token,
)
from propdesk.model.identifiers import ClientOrderId

# Conservative customTag alphabet propdesk promises (ids.py docstring): lowercase letters, digits, single dashes.
CUSTOM_TAG_OK = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")

prefixes = st.from_regex(r"[a-z][a-z0-9]{0,5}", fullmatch=True)
tokens = st.from_regex(r"[a-z0-9]{1,12}", fullmatch=True)


@settings(max_examples=15, deadline=None)
@given(prefix=prefixes, token=tokens)
def test_ten_thousand_ids_are_unique_and_valid_custom_tags(prefix: str, token: str) -> None:
    gen = ClientOrderIdGenerator(prefix, run_token=token)
    ids = [gen.next() for _ in range(10_000)]
    assert len(set(ids)) == 10_000
    assert gen.issued == 10_000
    for cid in (ids[0], ids[-1], child_id(ids[-1], "sl", 12)):
        assert CUSTOM_TAG_OK.match(cid), cid
        assert len(cid) <= MAX_CLIENT_ORDER_ID_LEN
        assert is_valid_client_order_id(cid)
    assert all(CUSTOM_TAG_OK.match(c) for c in ids)
    assert ids[0] == f"{prefix}-{token}-1"


def test_ids_of_different_runs_do_not_collide() -> None:
    # Two runs (restarts) of the same process family: different run tokens, counters restart at 1.
    a = ClientOrderIdGenerator("pd", run_token=new_run_token(now_s=1_700_000_000))
    b = ClientOrderIdGenerator("pd", run_token=new_run_token(now_s=1_700_000_001))
    ids_a = {a.next() for _ in range(5_000)}
    ids_b = {b.next() for _ in range(5_000)}
    assert not ids_a & ids_b
    assert a.owns(next(iter(ids_a))) and not a.owns(next(iter(ids_b)))


def test_run_token_encodes_the_second_then_random_digits() -> None:
    t0 = new_run_token(now_s=0)
    assert len(t0) == 9 and t0[:6] == "000000" and re.fullmatch(r"[a-z0-9]{9}", t0)
    t = new_run_token(now_s=36**2 + 35)  # base 36: "000"+"10"+"z" -> 00010z
    assert t[:6] == "00010z"
    # The default token is valid and the generator accepts it.
    gen = ClientOrderIdGenerator()
    assert gen.prefix == "pd" and re.fullmatch(r"[a-z0-9]{9}", gen.run_token)
    assert CLIENT_ORDER_ID_RE.match(gen.next())


@pytest.mark.parametrize("prefix", ["", "PD", "1pd", "pd-x", "toolongp", "p d"])
def test_bad_prefix_is_a_config_error(prefix: str) -> None:
    with pytest.raises(ConfigError, match="prefix"):
        ClientOrderIdGenerator(prefix)


@pytest.mark.parametrize("token", ["", "ABC", "a-b", "x" * 13])
def test_bad_run_token_is_a_config_error(token: str) -> None:
    with pytest.raises(ConfigError, match="run token"):
        ClientOrderIdGenerator("pd", run_token=token)


def test_child_ids_follow_the_bracket_convention() -> None:
    entry = ClientOrderId("pd-abc-7")
    assert child_id(entry, "sl") == "pd-abc-7-sl"
    assert child_id(entry, "tp") == "pd-abc-7-tp"
    assert child_id(entry, "tp", 2) == "pd-abc-7-tp2"
    with pytest.raises(ValueError, match="generation"):
        child_id(entry, "sl", 0)
    assert not is_valid_client_order_id("pd--1")
    assert not is_valid_client_order_id("a" * (MAX_CLIENT_ORDER_ID_LEN + 1))


def test_use_run_token_before_the_first_id_only() -> None:
    """A journaled replay takes its run's token, so a killed run continued from its first bar issues the same ids."""
    gen = ClientOrderIdGenerator("pd")
    gen.use_run_token("5b99b5256")
    assert (gen.next(), gen.next(), gen.run_token) == ("pd-5b99b5256-1", "pd-5b99b5256-2", "5b99b5256")
    gen.use_run_token("5b99b5256")  # the same token again: nothing changes
    with pytest.raises(ConfigError, match="already issued"):
        gen.use_run_token("other")
    with pytest.raises(ConfigError, match="run token"):
        ClientOrderIdGenerator("pd").use_run_token("Not-Valid")
