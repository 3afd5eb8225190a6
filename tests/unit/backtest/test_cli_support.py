"""Tests for the ``propdesk backtest`` helpers (propdesk.backtest.cli_support)."""

from __future__ import annotations

import calendar
import csv
import dataclasses
from decimal import Decimal
from pathlib import Path

import pytest

from propdesk.backtest.cli_support import (
    TRADES_CSV_COLUMNS,
    build_sim_config,
    iso_utc,
    parse_params,
    parse_time,
    parse_usd,
    parse_window,
    with_contract,
    write_trades_csv,
)
from propdesk.core.errors import ConfigError
from propdesk.data.loaders import load_bars
from propdesk.execution.round_trips import round_trips
from propdesk.model.contracts import spec
from propdesk.model.enums import Side
from propdesk.model.events import OrderFilled
from propdesk.model.identifiers import AccountId, ClientOrderId
from propdesk.model.price import Money, Price
from tests.conftest import ES_1MIN, resolve_shared

NS = 1_000_000_000


def utc_ns(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> int:
    return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) * NS


# --- --param -------------------------------------------------------------------------------------------------


def test_params_parse_pairs_keeping_values_as_text() -> None:
    assert parse_params(["fast=10", "slow=30", " tag =a=b", "note="]) == {
        "fast": "10",
        "slow": "30",
        "tag": "a=b",
        "note": "",
    }
    assert parse_params(None) == {}
    assert parse_params([]) == {}


@pytest.mark.parametrize(
    ("pair", "words"),
    [
        ("fast10", ["fast10", "key=value"]),
        ("=10", ["=10", "not a valid parameter name"]),
        ("1fast=10", ["1fast", "not a valid parameter name"]),
        ("fa st=10", ["fa st", "not a valid parameter name"]),
    ],
)
def test_malformed_param_names_the_pair(pair: str, words: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        parse_params(["slow=30", pair])
    msg = str(info.value)
    assert "--param" in msg
    for w in words:
        assert w in msg


def test_duplicate_param_is_rejected() -> None:
    with pytest.raises(ConfigError, match="'fast' is given twice"):
        parse_params(["fast=10", "fast=12"])


# --- --start / --end -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-09-15", utc_ns(2025, 9, 15)),  # a bare date is 00:00 UTC
        ("2025-09-15T13:30", utc_ns(2025, 9, 15, 13, 30)),  # naive = UTC
        ("2025-09-15 13:30:05", utc_ns(2025, 9, 15, 13, 30, 5)),
        ("2025-09-15T13:30:00Z", utc_ns(2025, 9, 15, 13, 30)),
        ("2025-09-15T08:30:00-05:00", utc_ns(2025, 9, 15, 13, 30)),  # CDT offset
        ("2025-09-15T15:30:00+02:00", utc_ns(2025, 9, 15, 13, 30)),
        (" 2025-09-15T13:30:00.000250 ", utc_ns(2025, 9, 15, 13, 30) + 250_000),
    ],
)
def test_parse_time(text: str, expected: int) -> None:
    assert parse_time(text) == expected


@pytest.mark.parametrize("text", ["yesterday", "2025-13-01", "2025-09-15T25:00", "15/09/2025", ""])
def test_bad_time_names_option_and_text(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_time(text, "--end")
    assert "--end" in str(info.value) and repr(text) in str(info.value)


def test_window() -> None:
    assert parse_window(None, None) == (None, None)
    assert parse_window("2025-09-15", None) == (utc_ns(2025, 9, 15), None)
    assert parse_window(None, "2025-09-16") == (None, utc_ns(2025, 9, 16))
    with pytest.raises(ConfigError, match="must be before --end"):
        parse_window("2025-09-16", "2025-09-15T23:59")
    with pytest.raises(ConfigError, match="must be before --end"):
        parse_window("2025-09-16", "2025-09-16")


# --- simulator options -----------------------------------------------------------------------------------------


def test_build_sim_config() -> None:
    cfg = build_sim_config("bar-close", "2.14", 2)
    assert cfg.fill_model == "bar-close"
    assert cfg.commission_per_side_usd == Decimal("2.14")
    assert cfg.slippage_ticks == 2
    assert cfg.fee_per_contract("ES") == Money(214)
    default = build_sim_config()
    assert default.fill_model == "next-open" and default.slippage_ticks == 0
    assert default.fee_per_contract("ES") == Money(0)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("next-close", "0", 0), ["--fill-model", "next-close", "next-open", "bar-close"]),
        (("next-open", "abc", 0), ["--commission", "abc"]),
        (("next-open", "-1", 0), ["--commission", "non-negative"]),
        (("next-open", "0.005", 0), ["--commission", "cents"]),
        (("next-open", "0", -1), ["--slippage-ticks", "-1"]),
    ],
)
def test_bad_sim_options_name_the_option(args: tuple[str, str, int], words: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        build_sim_config(*args)
    for w in words:
        assert w in str(info.value)


def test_parse_usd_exact() -> None:
    assert parse_usd("50000", "--balance") == Decimal(50000)
    assert parse_usd("0.10", "--balance") == Decimal("0.10")
    with pytest.raises(ConfigError, match="--balance"):
        parse_usd("nan", "--balance")


# --- trades CSV ------------------------------------------------------------------------------------------------


def test_iso_utc_is_exact() -> None:
    assert iso_utc(utc_ns(2025, 9, 15, 13, 30)) == "2025-09-15T13:30:00Z"
    assert iso_utc(utc_ns(2025, 9, 15, 13, 30) + 250) == "2025-09-15T13:30:00.00000025Z"
    assert iso_utc(0) == "1970-01-01T00:00:00Z"


def fill(side: Side, qty: int, price: str, ts: int, fee: str, tag: str = "sma") -> OrderFilled:
    return OrderFilled(
        client_order_id=ClientOrderId(f"c{ts}"),
        account_id=AccountId(1),
        ts_event_ns=ts,
        symbol="ESZ5",
        side=side,
        qty=qty,
        price=Price.of(price),
        fee=Money.of(fee),
        trade_id=f"t{ts}",
        tag=tag,
    )


def test_trades_csv_one_exact_row_per_round_trip(tmp_path: Path) -> None:
    t0 = utc_ns(2025, 10, 6, 14, 30)
    fills = [
        fill(Side.BUY, 1, "6500.25", t0, "2.00"),
        fill(Side.SELL, 1, "6503.50", t0 + 60 * NS, "2.00"),  # +13 ticks = 162.50
        fill(Side.SELL, 2, "6504", t0 + 120 * NS, "4.00"),
        fill(Side.BUY, 2, "6505.75", t0 + 180 * NS + 5, "4.00"),  # -7 ticks x 2 = -175.00
        fill(Side.BUY, 1, "6500", t0 + 240 * NS, "2.00"),  # still open: not written
    ]
    trips = round_trips(fills, lambda s: spec(s[:-2]))
    out = write_trades_csv(trips, tmp_path / "sub" / "trades.csv")
    assert out == tmp_path / "sub" / "trades.csv"
    with out.open(newline="") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames or ()) == TRADES_CSV_COLUMNS
        rows = list(reader)
    assert rows == [
        {
            "symbol": "ESZ5",
            "tag": "sma",
            "direction": "long",
            "qty": "1",
            "entry_time_utc": "2025-10-06T14:30:00Z",
            "entry_price": "6500.25",
            "exit_time_utc": "2025-10-06T14:31:00Z",
            "exit_price": "6503.5",
            "gross_pnl_usd": "162.50",
            "fees_usd": "4.00",
            "net_pnl_usd": "158.50",
        },
        {
            "symbol": "ESZ5",
            "tag": "sma",
            "direction": "short",
            "qty": "2",
            "entry_time_utc": "2025-10-06T14:32:00Z",
            "entry_price": "6504",
            "exit_time_utc": "2025-10-06T14:33:00.000000005Z",
            "exit_price": "6505.75",
            "gross_pnl_usd": "-175.00",
            "fees_usd": "8.00",
            "net_pnl_usd": "-183.00",
        },
    ]


def test_trades_csv_empty_has_header_only(tmp_path: Path) -> None:
    out = write_trades_csv([], tmp_path / "t.csv")
    assert out.read_text().splitlines() == [",".join(TRADES_CSV_COLUMNS)]


def test_trades_csv_unwritable_path_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="cannot write the trades CSV"):
        write_trades_csv([], blocker / "t.csv")


def test_with_contract_resolves_the_root_on_the_whole_file() -> None:
    bars = load_bars(resolve_shared(ES_1MIN))
    assert bars.symbol == "ES"
    labelled = with_contract(bars)
    assert labelled.symbol == "ESZ5" and len(labelled) == len(bars)
    # a slice ending before the September roll keeps the file's contract once labelled first
    early = labelled.between(None, int(bars.ts_open_ns[100]))
    assert early.symbol == "ESZ5"
    # labelling the slice alone would have picked the September contract
    assert with_contract(dataclasses.replace(early, symbol="ES")).symbol == "ESU5"


def test_session_is_the_cme_trading_date() -> None:
    from propdesk.backtest.cli_support import parse_session  # noqa: PLC0415 - the function under test

    # trading date 2025-10-01: 17:00 CT (CDT, UTC-5) on 2025-09-30 to 16:00 CT on 2025-10-01
    assert parse_session("2025-10-01") == (1_759_269_600 * 10**9, 1_759_352_400 * 10**9)
    # a range: the first date's start to the last date's close (Friday 2025-10-03 16:00 CDT = 21:00 UTC)
    assert parse_session("2025-10-01..2025-10-03") == (1_759_269_600 * 10**9, 1_759_525_200 * 10**9)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2025-10-04", "--session '2025-10-04': 2025-10-04 is not a CME trading date (a weekend or holiday)"),
        ("20251001", "--session '20251001' is not a trading date like 2025-10-01 or a range 2025-10-01..2025-10-03"),
        ("2025-10-03..2025-10-01", "--session '2025-10-03..2025-10-01': the first date is after the last"),
    ],
)
def test_bad_session_is_one_clear_error(text: str, message: str) -> None:
    from propdesk.backtest.cli_support import parse_session  # noqa: PLC0415 - the function under test

    with pytest.raises(ConfigError) as exc:
        parse_session(text)
    assert str(exc.value) == message


def test_slippage_beyond_any_market_is_refused() -> None:
    with pytest.raises(ConfigError) as exc:
        build_sim_config("next-open", "0", 10**21)
    assert str(exc.value) == "--slippage-ticks 1000000000000000000000 is more than 10000 ticks"
    assert build_sim_config("next-open", "0", 10_000).slippage_ticks == 10_000
