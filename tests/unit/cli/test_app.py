"""Tests for the propdesk command line (in-process with Typer's runner)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from propdesk.cli import app
from tests.conftest import ES_1MIN, NQ_5MIN, resolve_shared

runner = CliRunner()


def test_version() -> None:
    result = runner.invoke(app, ["version"])
    assert result.exit_code == 0
    assert result.output.startswith("propdesk ")


def test_inspect_es_file_json() -> None:
    path = resolve_shared(ES_1MIN)
    result = runner.invoke(app, ["data", "inspect", str(path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["rows"] == 75_791
    assert report["off_tick_bars"] == 0
    assert report["duplicate_timestamps"] == 0
    # the README's clock fix: the first bar (file 2025-08-31 23:00, EDT + 5 h) is 22:00 UTC
    assert report["first_ns"] == 1_756_677_600 * 10**9


def test_inspect_table_output_names_the_preset() -> None:
    path = resolve_shared(NQ_5MIN)
    result = runner.invoke(app, ["data", "inspect", str(path)])
    assert result.exit_code == 0, result.output
    assert "2,943" in result.output


def test_inspect_malformed_file_names_row_and_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bars.csv"
    bad.write_text(
        "timestamp,open,high,low,close,volume\n"
        "2025-01-02 10:00:00,1.0,2.0,0.5,1.5,10\n"
        "2025-01-02 10:01:00,1.0,oops,0.5,1.5,10\n"
    )
    result = runner.invoke(app, ["data", "inspect", str(bad), "--tz", "UTC"])
    assert result.exit_code == 2
    assert "line 3" in result.output and "high" in result.output


def test_inspect_missing_file_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "inspect", str(tmp_path / "absent.csv")])
    assert result.exit_code == 2
    assert "not found" in result.output


def test_an_error_naming_a_toml_table_is_printed_verbatim_on_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "risk.toml"
    cfg.write_text('preset = "topstep-50k-combine"\n[account]\nmll_floor = "about 48k"\n', encoding="utf-8")
    result = runner.invoke(app, ["risk", "--broker", "projectx", "--account", "1", "--risk-config", str(cfg)])
    assert result.exit_code == 2
    text = result.output.strip()
    assert text.startswith("error:") and "[account] mll_floor" in text  # not taken for Rich markup
    assert "\n" not in text, text


def _bars_csv(tmp_path: Path) -> Path:
    path = tmp_path / "bars.csv"
    path.write_text("timestamp,open,high,low,close,volume\n2025-01-02 10:00:00,1.0,2.0,0.5,1.5,10\n")
    return path


def _one_line_error(output: str) -> str:
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    assert "Traceback" not in output
    return lines[0]


def test_backtest_commission_too_large_is_one_clear_line(tmp_path: Path) -> None:
    args = ["backtest", "--data", str(_bars_csv(tmp_path)), "--strategy", "sma_cross", "--commission", "1e999"]
    args += ["--symbol", "ESZ5"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert _one_line_error(result.output) == (
        "error: --commission '1e999' is more than 1000000000 USD, the largest amount propdesk accepts"
    )


def test_run_balance_too_large_is_one_clear_line(tmp_path: Path) -> None:
    args = ["run", "--replay", str(_bars_csv(tmp_path)), "--strategy", "sma_cross", "--balance", "1e999"]
    args += ["--symbol", "ESZ5"]
    result = runner.invoke(app, [*args, "--no-journal", "--no-console", "--speed", "max"])
    assert result.exit_code == 2
    assert _one_line_error(result.output) == (
        "error: --balance '1e999' is more than 1000000000 USD, the largest amount propdesk accepts"
    )


def test_unknown_param_lists_the_valid_keys(tmp_path: Path) -> None:
    args = ["backtest", "--data", str(_bars_csv(tmp_path)), "--strategy", "sma_cross", "--param", "nope=1"]
    args += ["--symbol", "ESZ5"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert _one_line_error(result.output) == (
        "error: strategy sma_cross: unknown parameter 'nope' (valid: fast, qty, slow, symbol, tag, timeframe)"
    )


def test_error_text_in_brackets_is_printed_as_it_is(tmp_path: Path) -> None:
    cfg = tmp_path / "risk.toml"
    cfg.write_text("[account]\nstart_balance = 50000\n[rules.nope]\nx = 1\n")
    result = runner.invoke(app, ["risk", "--account", "1", "--risk-config", str(cfg), "--replay", str(cfg)])
    assert result.exit_code == 2
    assert "[rules.nope]" in _one_line_error(result.output)


def test_help_shows_bracketed_text() -> None:
    run_help = " ".join(runner.invoke(app, ["run", "--help"]).output.split())  # one space wherever it wrapped
    assert "[projectx] table" in run_help and "config file with [projectx] hosts" in run_help
    risk_help = " ".join(runner.invoke(app, ["risk", "--help"]).output.split())
    assert "preset, [account], personal [rules.*]" in risk_help


def test_backtest_reads_a_dbn_file_as_data_inspect_does() -> None:
    dbn = resolve_shared("databento_glbx_nautilus/futures_ohlcv-1m_2024-07-01T23-40_2024-07-02T00-10.dbn.zst")
    result = runner.invoke(app, ["backtest", "--data", str(dbn), "--strategy", "sma_cross"])
    assert result.exit_code == 2
    assert _one_line_error(result.output) == (
        f"error: {dbn}: file holds several instruments (ESU4, NQU4); choose one with --symbol"
    )
    result = runner.invoke(
        app, ["backtest", "--data", str(dbn), "--strategy", "sma_cross", "--symbol", "ESU4", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["bars"] == 30


def test_inspect_reads_the_es_trades_file() -> None:
    path = resolve_shared("es_trades_esm8_rtrawl/ESM8_trades_20180507.csv.gz")
    result = runner.invoke(app, ["data", "inspect", str(path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["symbol"] == "ESM8" and report["rows"] == 210 and report["total_volume"] == 74_907
    assert report["loaded_as"].startswith("trade prints aggregated to 1m bars")


def test_backtest_session_plays_the_trading_date_not_the_utc_day() -> None:
    path = resolve_shared(ES_1MIN)
    args = ["backtest", "--data", str(path), "--strategy", "sma_cross", "--symbol", "ESZ5", "--json"]
    result = runner.invoke(app, [*args, "--session", "2025-10-01"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    # 17:00 CT 2025-09-30 = 22:00 UTC; the last bar opens at 15:59 CT = 20:59 UTC; 23 h of 1-minute bars
    assert out["first_bar_ns"] == 1_759_269_600 * 10**9
    assert out["bars"] == 23 * 60


def test_session_and_start_together_are_refused(tmp_path: Path) -> None:
    args = ["backtest", "--data", str(_bars_csv(tmp_path)), "--strategy", "sma_cross", "--session", "2025-10-01"]
    result = runner.invoke(app, [*args, "--start", "2025-10-01"])
    assert result.exit_code == 2
    assert _one_line_error(result.output) == "error: --session cannot be combined with --start or --end"


def test_unknown_broker_is_one_line_listing_the_registry() -> None:
    for cmd in (
        ["run", "--broker", "ib", "--strategy", "sma_cross"],
        ["risk", "--broker", "ib", "--account", "1", "--risk", "topstep-50k-combine"],
    ):
        result = runner.invoke(app, cmd)
        assert result.exit_code == 2, result.output
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "unknown broker 'ib'; known brokers: sim, projectx" in lines[0], result.stderr
