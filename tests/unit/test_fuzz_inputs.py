"""Fuzz tests: whatever a user puts in a config file or a number option, propdesk answers with its own error.

Config loaders (settings, risk config, gateway config) get arbitrary bytes, arbitrary text and deeply nested
TOML/JSON; the CLI's number options (``--commission``, ``--balance``, ``--slippage-ticks``, ``--speed``,
``--session``, ``--start``/``--end``, ``--param``) get arbitrary text. Each either parses or raises a
:class:`~propdesk.core.errors.PropdeskError`; no other exception escapes.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from propdesk.backtest.cli_support import build_sim_config, parse_params, parse_usd, parse_window
from propdesk.brokers.sim.replay import parse_speed
from propdesk.config import load_settings
from propdesk.core.errors import PropdeskError
from propdesk.emulators.projectx.config import load_gateway_config
from propdesk.risk.presets import load_risk_config

FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)

_numberish = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="0123456789.eE+-_ xnaNIfity", max_size=30),
    st.floats().map(repr),
    st.integers().map(str),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
)

_nested = st.integers(min_value=1, max_value=20_000).map(lambda n: "[" * n + "]" * n)


def _config_texts() -> st.SearchStrategy[bytes]:
    toml_like = st.text(alphabet="[]{}=\"'.,:\n\\ abcdefgxyz_0123456789-", max_size=200).map(str.encode)
    deep_toml = _nested.map(lambda s: f"x = {s}\n".encode())
    deep_json = _nested.map(lambda s: f'{{"accounts": {s}}}'.encode())
    return st.one_of(st.binary(max_size=200), toml_like, deep_toml, deep_json)


@pytest.fixture
def config_file() -> Iterator[Callable[[str, bytes], Path]]:
    with tempfile.TemporaryDirectory() as tmp:

        def write(name: str, data: bytes) -> Path:
            path = Path(tmp) / name
            path.write_bytes(data)
            return path

        yield write


def _only_own_errors(fn: Callable[[], object]) -> None:
    try:
        fn()
    except PropdeskError as exc:
        assert "\n" not in str(exc), f"not one line: {exc}"


@FUZZ
@given(data=_config_texts())
def test_config_loaders_raise_only_propdesk_errors(config_file: Callable[[str, bytes], Path], data: bytes) -> None:
    for name in ("c.toml", "c.json"):
        path = config_file(name, data)
        _only_own_errors(lambda p=path: load_settings(p))  # type: ignore[misc]
        _only_own_errors(lambda p=path: load_risk_config(None, p))  # type: ignore[misc]
        _only_own_errors(lambda p=path: load_gateway_config(p))  # type: ignore[misc]


@FUZZ
@given(text=_numberish)
def test_money_options_raise_only_propdesk_errors(text: str) -> None:
    _only_own_errors(lambda: parse_usd(text, "--balance"))
    _only_own_errors(lambda: build_sim_config("next-open", text, 0))


@FUZZ
@given(ticks=st.integers(), speed=_numberish)
def test_slippage_and_speed_raise_only_propdesk_errors(ticks: int, speed: str) -> None:
    _only_own_errors(lambda: build_sim_config("bar-close", "0", ticks))
    _only_own_errors(lambda: parse_speed(speed))


@FUZZ
@given(start=st.none() | _numberish, end=st.none() | _numberish, session=st.none() | _numberish)
def test_window_options_raise_only_propdesk_errors(start: str | None, end: str | None, session: str | None) -> None:
    _only_own_errors(lambda: parse_window(start, end, session, "ESZ5"))


@FUZZ
@given(
    session=st.dates().map(lambda d: d.isoformat()) | st.tuples(st.dates(), st.dates()).map(lambda t: f"{t[0]}..{t[1]}")
)
def test_any_session_date_parses_or_is_refused_clearly(session: str) -> None:
    _only_own_errors(lambda: parse_window(None, None, session))


@FUZZ
@given(pairs=st.lists(st.text(max_size=20), max_size=4))
def test_params_raise_only_propdesk_errors(pairs: list[str]) -> None:
    from propdesk.strategies.registry import build_strategy  # noqa: PLC0415

    _only_own_errors(lambda: build_strategy("sma_cross", parse_params(pairs)))
