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
    assert "row 2" in result.output and "high" in result.output


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
