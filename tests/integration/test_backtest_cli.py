"""``propdesk backtest`` end to end (Typer's runner, in process) on the real ES file and on a small generated file.

The reference figure (sma_cross fast=10 slow=30, next-open fills, no costs, the whole ES file: 1,492 round trips,
net -2,250.00 USD) is backtrader's result on the same bars, measured by the lead (see the sma_cross module docstring
for why the two agree trade for trade).
"""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from propdesk.backtest.report import FIGURE_DIV_ID
from propdesk.cli import app
from tests.conftest import ES_1MIN, resolve_shared

runner = CliRunner()

REQUIRED_KEYS = {
    "bars",
    "trades",
    "net_pnl_usd",
    "gross_pnl_usd",
    "fees_usd",
    "win_rate",
    "profit_factor",
    "max_drawdown_usd",
    "sharpe",
    "open_qty",
    "unrealized_pnl_usd",
    "run_s",
    "bars_per_s",
}


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["backtest", *args])
    return result.exit_code, result.stdout, result.stderr


def test_whole_es_file_with_csv_report_and_closed_period_warnings(tmp_path: Path) -> None:
    # Trade by trade parity with backtrader (1492 round trips, -2,250.00 USD) is checked with the closed-period check
    # off in test_backtest_reference.py: backtrader has no exchange calendar. With the default check the bars the
    # data README flags are not traded: Labor Day 2025-09-01 12:00-15:59 CT (after CME's 12:00 CT halt) and the extra
    # bar of every Friday at 16:00 CT (17:00 ET), so the run has 1483 round trips (a regression figure).
    data = resolve_shared(ES_1MIN)
    csv_path = tmp_path / "trades.csv"
    html_path = tmp_path / "report.html"
    code, out, err = invoke(
        "--data", str(data), "--strategy", "sma_cross", "--param", "fast=10", "--param", "slow=30",
        "--fill-model", "next-open", "--json", "--trades-csv", str(csv_path), "--report", str(html_path),
    )  # fmt: skip
    assert code == 0, err
    res = json.loads(out)  # stdout is exactly one JSON object: progress went to stderr
    assert set(res) >= REQUIRED_KEYS
    assert res["bars"] == 75_791
    assert res["symbol"] == "ESZ5"
    assert res["trades"] == 1483
    assert res["net_pnl_usd"] == "-1212.50"
    assert res["gross_pnl_usd"] == "-1212.50" and res["fees_usd"] == "0.00"
    warnings = res["data_warnings"]
    assert len(warnings) == 12  # Labor Day afternoon + the 11 Fridays 2025-09-05 .. 2025-11-14
    assert warnings[0].startswith("ESZ5: 240 market-data records inside a closed period (early close, 2025-09-01")
    assert all("1 market-data record inside a closed period (weekend" in w for w in warnings[1:])
    assert res["open_qty"] == 0 and res["unrealized_pnl_usd"] == "0.00"
    assert 0 < res["win_rate"] < 1 and res["profit_factor"] > 0
    assert Decimal(res["max_drawdown_usd"]) > 0
    assert res["trades_csv"] == str(csv_path) and res["report"] == str(html_path)

    with csv_path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 1483
    assert sum(Decimal(r["net_pnl_usd"]) for r in rows) == Decimal("-1212.50")
    for r in rows:
        assert r["symbol"] == "ESZ5" and r["direction"] == "long" and r["qty"] == "1"  # sma_cross is long-only
        assert r["entry_time_utc"] < r["exit_time_utc"]
        entry, exit_ = Decimal(r["entry_price"]), Decimal(r["exit_price"])
        assert entry % Decimal("0.25") == 0 and exit_ % Decimal("0.25") == 0
        # one contract: gross = points x 50 USD
        assert Decimal(r["gross_pnl_usd"]) == (exit_ - entry) * 50
        assert Decimal(r["net_pnl_usd"]) == Decimal(r["gross_pnl_usd"]) - Decimal(r["fees_usd"])

    html = html_path.read_text(encoding="utf-8")
    assert f'id="{FIGURE_DIV_ID}"' in html and "plotly-graph-div" in html
    assert "-1,212.50 USD" in html and "1,483" in html


def test_start_end_window_with_costs() -> None:
    data = resolve_shared(ES_1MIN)
    code, out, err = invoke(
        "--data", str(data), "--strategy", "sma_cross", "--symbol", "ESZ5",
        "--start", "2025-10-06", "--end", "2025-10-07T18:00:00Z", "--commission", "2.00", "--json",
    )  # fmt: skip
    assert code == 0, err
    res = json.loads(out)
    # oracle: the README's clock fix applied with pandas, then the window [start, end) on the bar open time
    df = pd.read_csv(data, usecols=["timestamp"])
    ts = pd.to_datetime(df["timestamp"]) - pd.Timedelta(hours=5)
    utc = ts.dt.tz_localize("America/New_York").dt.tz_convert("UTC")
    inside = (utc >= pd.Timestamp("2025-10-06", tz="UTC")) & (utc < pd.Timestamp("2025-10-07T18:00", tz="UTC"))
    assert res["bars"] == int(inside.sum()) > 2000
    assert res["first_bar_ns"] == utc[inside].iloc[0].value
    assert res["last_bar_ns"] == utc[inside].iloc[-1].value
    assert res["symbol"] == "ESZ5"
    assert res["trades"] > 10
    # 2.00 USD per contract per side, one contract: 4.00 USD a round trip
    assert Decimal(res["fees_usd"]) == 4 * res["trades"]
    assert Decimal(res["net_pnl_usd"]) == Decimal(res["gross_pnl_usd"]) - Decimal(res["fees_usd"])


def test_malformed_param_exits_2_naming_it() -> None:
    code, out, err = invoke("--data", "unused.csv", "--strategy", "sma_cross", "--param", "fast10")
    assert code == 2 and out == ""
    assert "fast10" in err and "--param" in err


def test_unknown_param_exits_2_naming_it() -> None:
    code, _, err = invoke("--data", "unused.csv", "--strategy", "sma_cross", "--param", "fats=3")
    assert code == 2 and "fats" in err


def test_bad_start_exits_2_naming_it() -> None:
    code, _, err = invoke("--data", "unused.csv", "--strategy", "sma_cross", "--start", "last tuesday")
    assert code == 2 and "--start" in err and "last tuesday" in err


def test_window_outside_the_data_is_a_clear_error() -> None:
    data = resolve_shared(ES_1MIN)
    code, _, err = invoke("--data", str(data), "--strategy", "sma_cross", "--start", "2030-01-01")
    assert code == 2 and "no bars" in err


def small_csv(tmp_path: Path) -> Path:
    """A generic UTC CSV of 1-minute bars (no preset matches the name): a zigzag on the 0.25 tick."""
    path = tmp_path / "bars.csv"
    lines = ["timestamp,open,high,low,close,volume"]
    t0 = pd.Timestamp("2025-10-06T13:00:00")
    prev = 6500.0
    for i in range(600):
        close = 6500.0 + (i % 40 if (i // 40) % 2 == 0 else 40 - i % 40) * 0.5
        hi, lo = max(prev, close) + 0.25, min(prev, close) - 0.25
        lines.append(f"{(t0 + pd.Timedelta(minutes=i)).isoformat(sep=' ')},{prev},{hi},{lo},{close},10")
        prev = close
    path.write_text("\n".join(lines) + "\n")
    return path


def test_slippage_costs_exactly_one_tick_per_side(tmp_path: Path) -> None:
    data = small_csv(tmp_path)
    base = ["--data", str(data), "--symbol", "ESZ5", "--strategy", "sma_cross", "--param", "fast=3", "--json"]
    code0, out0, err0 = invoke(*base)
    code1, out1, err1 = invoke(*base, "--slippage-ticks", "1", "--balance", "25000")
    assert code0 == 0, err0
    assert code1 == 0, err1
    r0, r1 = json.loads(out0), json.loads(out1)
    assert r0["trades"] == r1["trades"] > 0 and r0["open_qty"] == r1["open_qty"]
    assert r1["starting_balance_usd"] == "25000.00"
    # 1 tick (12.50 USD) against each of the two fills of every one-contract round trip
    assert Decimal(r0["gross_pnl_usd"]) - Decimal(r1["gross_pnl_usd"]) == Decimal("25.00") * r0["trades"]
    # the still-open position's entry slipped one tick too; it is not in net PnL
    diff = Decimal(r0["unrealized_pnl_usd"]) - Decimal(r1["unrealized_pnl_usd"])
    assert diff == Decimal("12.50") * abs(r0["open_qty"])


def test_table_output_without_json(tmp_path: Path) -> None:
    data = small_csv(tmp_path)
    code, out, err = invoke("--data", str(data), "--symbol", "ESZ5", "--strategy", "sma_cross", "--param", "fast=3")
    assert code == 0, err
    assert "net PnL" in out and "max drawdown" in out and "ESZ5" in out
