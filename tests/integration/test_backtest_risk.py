"""``propdesk backtest --risk / --risk-config`` end to end on the real ES file: the Combine evaluation object, the
risk summary, lockouts of a tight personal rule, and the MLL floor in the HTML report."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from propdesk.cli import app
from tests.conftest import ES_1MIN, resolve_shared

runner = CliRunner()
WINDOW = ("--start", "2025-09-15", "--end", "2025-10-04")  # three weeks of the clean segment


def backtest(*args: str) -> dict[str, object]:
    data = resolve_shared(ES_1MIN)
    result = runner.invoke(app, ["backtest", "--data", str(data), "--strategy", "sma_cross", *WINDOW, "--json", *args])
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert isinstance(out, dict)
    return out


def test_combine_preset_adds_the_evaluation_object_and_the_report_shows_the_floor(tmp_path: Path) -> None:
    html = tmp_path / "report.html"
    out = backtest("--risk", "topstep-50k-combine", "--report", str(html))
    ev = out["evaluation"]
    assert isinstance(ev, dict)
    assert ev["status"] in ("passed", "failed", "in_progress")
    assert ev["preset"] == "topstep-50k-combine"
    assert ev["start_balance_usd"] == "50000.00" and ev["profit_target_usd"] == "3000.00"
    assert out["starting_balance_usd"] == "50000.00"  # the preset's start balance without --balance
    for key in ("failure", "days_traded", "target_reached_on", "best_day_share", "consistency_ok"):
        assert key in ev
    days = ev["days"]
    assert isinstance(days, list) and len(days) >= 14  # one entry per trading day of three weeks
    assert days[0]["mll_floor_usd"] == "48000.00"  # a new 50K account: start - 2,000
    assert all(d["mll_floor_usd"] is not None for d in days)
    # day PnL series add up to the account's realized result
    total = sum(float(d["pnl_usd"]) for d in days)
    assert abs(float(days[-1]["balance_usd"]) - 50_000 - total) < 0.005
    risk = out["risk"]
    assert isinstance(risk, dict)
    assert risk["session_rolls"] >= 14
    assert "R11" in risk["breach_rules"]  # the flat time at 15:05 CT, every session with a position
    assert out["open_qty"] == 0 or risk["state"] != "ACTIVE"
    text = html.read_text(encoding="utf-8")
    assert "MLL floor" in text and "evaluation" in text


def test_tight_personal_daily_loss_locks_out_and_trades_less(tmp_path: Path) -> None:
    cfg = tmp_path / "risk.toml"
    cfg.write_text("[account]\nstart_balance = 50000\n\n[rules.personal_daily_loss]\namount = 600\n", encoding="utf-8")
    free = backtest()
    tight = backtest("--risk-config", str(cfg))
    assert "evaluation" not in free and "risk" not in free
    risk = tight["risk"]
    assert isinstance(risk, dict)
    rules = [lo["rule_id"] for lo in risk["lockouts"]]
    assert "R3" in rules
    assert all(lo["expires_at_ns"] is not None for lo in risk["lockouts"])
    assert risk["orders_denied"] > 0
    assert isinstance(tight["trades"], int) and isinstance(free["trades"], int)
    assert tight["trades"] < free["trades"]
    assert tight["evaluation"]["status"] == "in_progress"  # type: ignore[index]  # no target without a preset
