"""Risk outcomes wherever results are shown: ``propdesk backtest --risk topstep-50k-combine`` with ``trend_following``
on the real ES file. Its long is flattened by R11 (flat time) three times, tagged ``risk:R11``; the Combine's
consistency rule keeps it from passing (best day $2,850.00 is 877 % of a total profit of $325.00) and from
2025-10-02 R1 denies its entries (each one's $250 of stop risk would reach the locked $50,000 MLL floor plus the $100
buffer). The text summary, the ``--json`` object, the HTML report and the ``run`` dashboard state it, with the trading
state timeline, the lockouts, the orders denied by rule and the flattens; stderr carries one line per preset note,
not a line per lockout. (The permanent R1 halt sentence is tested in ``tests/unit/backtest/test_evaluation.py``.)"""

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
from propdesk.console.replay import render_dashboard, render_summary
from propdesk.risk.presets import load_risk_config
from propdesk.sessions.replay import RunOptions, RunSession
from tests.conftest import ES_1MIN, resolve_shared

runner = CliRunner()
ARGS = ("--strategy", "trend_following", "--risk", "topstep-50k-combine")
CONSISTENCY = (
    "consistency (the target was reached on 2025-09-03): best day 2025-09-03 $2,850.00 is 877 % of total profit "
    "$325.00; the rule allows 40 %"
)
R1_DENIAL = "R1: order risk $250.00 on equity $50,325.00 would reach the MLL floor $50,000.00 plus the $100.00 buffer"
FLATTEN = "2025-09-10 15:05 R11 SELL 1 ESZ5 @ 6594.75 [risk:R11]"


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


def test_text_summary_states_the_flattens_denials_and_the_consistency_reason(text_run: tuple[str, str, str]) -> None:
    out, _err, _html = text_run
    flat = _flat(out)
    assert "evaluation (topstep-50k-combine): in progress; days traded 23" in flat
    assert CONSISTENCY in flat
    assert "risk: orders denied (849) by rule" in flat
    assert "R1 797 2025-10-02 14:19 2025-11-14 14:18 " + R1_DENIAL in flat
    assert "risk: flattens (54; 51 found the account flat)" in flat and FLATTEN in flat
    assert "trading state" in flat and "lockouts" in flat


def test_json_carries_the_same_record(json_run: dict[str, object]) -> None:
    ev = json_run["evaluation"]
    assert isinstance(ev, dict)
    assert ev["status"] == "in_progress"
    assert ev["reasons"] == [CONSISTENCY]  # the routine R11 halt at the end of the data is no reason
    halted = ev["halted"]
    assert halted["rule_id"] == "R11" and halted["permanent"] is False
    assert halted["mll_floor_usd"] == "50000.00" and halted["floor_locked"] is True
    risk = json_run["risk"]
    assert isinstance(risk, dict)
    outcomes = risk["outcomes"]
    denials = {d["rule_id"]: d for d in outcomes["denials"]}
    assert denials["R1"]["count"] == 797 and denials["R1"]["examples"][0]["reason"] == R1_DENIAL
    assert denials["R1"]["first_ns"] == 1_759_432_740_000_000_000  # 2025-10-02 19:19 UTC = 14:19 CT
    closing = [f for f in outcomes["flattens"] if f["fills"]]
    assert [f["fills"][0]["tag"] for f in closing] == ["risk:R11"] * 3
    assert closing[0]["fills"][0]["price"] == "6594.75" and closing[0]["ts_ns"] == 1_757_534_700_000_000_000
    assert outcomes["state"] == "HALTED"
    assert outcomes["orders_denied"] == risk["orders_denied"] == 849


def test_report_has_trades_table_markers_halt_region_and_reason(text_run: tuple[str, str, str]) -> None:
    _out, _err, html = text_run
    assert "propdesk-trades" in html
    assert html.count('<tr class="trade ') == 577
    assert "877 %" in html
    for name in ("lockout", "flatten", "halted", "order denied"):
        assert '"name":"' + name.replace(" ", "") in html.replace(" ", "")


def test_run_summary_and_dashboard_show_the_risk_at_80_columns() -> None:
    """``propdesk run --replay`` of the same strategy and preset: the summary states the same consistency reason and
    denials, and the dashboard's risk panel (80 columns) the state, the MLL floor and the distance to it."""
    risk = load_risk_config("topstep-50k-combine", None)
    session = RunSession(RunOptions(replay=resolve_shared(ES_1MIN), strategy="trend_following", speed=None, risk=risk))
    summary = asyncio.run(session.run(handle_sigint=False))
    assert summary.evaluation is not None and summary.evaluation.reasons == (CONSISTENCY,)
    out = summary.to_json_dict()
    assert out["risk"]["state"] == "HALTED"  # type: ignore[index]
    console = Console(width=80, record=True, color_system=None)
    console.print(render_summary(summary))
    text = _flat(console.export_text())
    assert CONSISTENCY in text and "R1: order risk $250.00 on equity $50,325.00" in text
    console = Console(width=80, record=True, color_system=None)
    console.print(render_dashboard(session))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    flat = _flat(text)
    assert "risk" in flat and "state HALTED" in flat
    assert "MLL floor $50,000.00 (equity $50,325.00, $325.00 above)" in flat
    assert "next reset 2025-11-16 17:00 CT" in flat
