"""Risk outcomes wherever results are shown: ``propdesk backtest --risk topstep-50k-combine`` with ``trend_following``
on the real ES file halts on 2025-09-17 for good (equity $50,087.50 inside the $100 buffer above the locked $50,000
MLL floor). The text summary, the ``--json`` object and the HTML report state it, with the trading state timeline,
the lockouts, the orders denied by rule and the flattens; stderr carries one line per preset note, not a line per
lockout."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

import propdesk
from propdesk.cli import app
from propdesk.console import render_dashboard, render_summary
from propdesk.risk.presets import load_risk_config
from propdesk.runner import RunOptions, RunSession
from tests.conftest import ES_1MIN, resolve_shared

runner = CliRunner()
ARGS = ("--strategy", "trend_following", "--risk", "topstep-50k-combine")
HALT = (
    "halted since 2025-09-17 13:33 CT: equity $50,087.50 is within the $100.00 buffer above the locked MLL floor "
    "$50,000.00; no new trade can pass"
)
CONSISTENCY = "best day 2025-09-03 $2,850.00 is 3,257 % of total profit $87.50; the rule allows 40 %"


@pytest.fixture(scope="module")
def text_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, str]:
    """(stdout, stderr, report HTML) of the text-mode run with ``--report``, in a child process (its stderr is what a
    trader sees: Python's last-resort log handler writes there, which pytest's log capture would hide)."""
    html = tmp_path_factory.mktemp("report") / "report.html"
    data = resolve_shared(ES_1MIN)
    src = str(Path(propdesk.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": src, "COLUMNS": "100"}
    cmd = [sys.executable, "-m", "propdesk", "backtest", "--data", str(data), *ARGS, "--report", str(html)]
    proc = subprocess.run([*cmd, "--report-js", "cdn"], capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout, proc.stderr, html.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def json_run() -> dict[str, object]:
    data = resolve_shared(ES_1MIN)
    result = runner.invoke(app, ["backtest", "--data", str(data), *ARGS, "--json"])
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert isinstance(out, dict)
    return out


def _flat(text: str) -> str:
    """The text with table borders and line breaks folded to single spaces (Rich wraps long cells)."""
    return re.sub(r"[\s│┃|]+", " ", text)


def test_stderr_has_no_line_per_lockout_and_no_tuple_reprs(text_run: tuple[str, str, str]) -> None:
    _out, err, _html = text_run
    assert "('" not in err and "()" not in err
    assert "R11 LOCKOUT" not in err and "-> HALTED" not in err
    assert len([ln for ln in err.splitlines() if ln.startswith("risk: account")]) == 0


def test_text_summary_states_the_halt_and_the_consistency_reason(text_run: tuple[str, str, str]) -> None:
    out, _err, _html = text_run
    flat = _flat(out)
    assert HALT in flat
    assert CONSISTENCY in flat
    assert "trading state" in flat and "lockouts" in flat and "orders denied" in flat and "flattens" in flat


def test_json_carries_the_same_record(json_run: dict[str, object]) -> None:
    ev = json_run["evaluation"]
    assert isinstance(ev, dict)
    assert ev["status"] == "in_progress"
    assert ev["reasons"][0] == HALT
    assert CONSISTENCY in ev["reasons"][1]
    halted = ev["halted"]
    assert halted["equity_usd"] == "50087.50" and halted["mll_floor_usd"] == "50000.00"
    assert halted["buffer_usd"] == "100.00" and halted["permanent"] is True
    risk = json_run["risk"]
    assert isinstance(risk, dict)
    outcomes = risk["outcomes"]
    last = outcomes["timeline"][-1]
    assert (last["from"], last["to"], last["rule_id"]) == ("ACTIVE", "HALTED", "R1")
    assert last["ts_ns"] == 1_758_133_980_000_000_000  # 2025-09-17 18:33 UTC = 13:33 CT
    assert outcomes["state"] == "HALTED"
    assert outcomes["halts"][-1]["end_ns"] is None
    assert outcomes["orders_denied"] == risk["orders_denied"]


def test_report_has_trades_table_markers_halt_region_and_reason(text_run: tuple[str, str, str]) -> None:
    _out, _err, html = text_run
    assert "propdesk-trades" in html
    assert html.count('<tr class="trade ') == 306
    assert "halted since 2025-09-17 13:33 CT" in html
    assert "3,257 %" in html
    for name in ("lockout", "flatten", "halted"):
        assert f'"name":"{name}' in html.replace(" ", "") or f'"name": "{name}' in html


def test_run_summary_and_dashboard_show_the_halt_at_80_columns() -> None:
    """``propdesk run --replay`` of the same strategy and preset: the summary states the same halt and consistency,
    and the dashboard's risk panel (80 columns) the state, the MLL floor and the distance to it."""
    risk = load_risk_config("topstep-50k-combine", None)
    session = RunSession(RunOptions(replay=resolve_shared(ES_1MIN), strategy="trend_following", speed=None, risk=risk))
    summary = asyncio.run(session.run(handle_sigint=False))
    assert summary.evaluation is not None and summary.evaluation.reasons[0] == HALT
    out = summary.to_json_dict()
    assert out["risk"]["state"] == "HALTED"  # type: ignore[index]
    console = Console(width=80, record=True, color_system=None)
    console.print(render_summary(summary))
    assert HALT in _flat(console.export_text())
    console = Console(width=80, record=True, color_system=None)
    console.print(render_dashboard(session))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    flat = _flat(text)
    assert "risk" in flat and "state HALTED" in flat
    assert "MLL floor $50,000.00 (equity $50,087.50, $87.50 above)" in flat
    assert "next reset 2025-11-16 17:00 CT" in flat
