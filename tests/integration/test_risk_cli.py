"""``propdesk risk --broker sim`` on the real ES replay: a manual script (orders placed by hand at the simulated
broker, not through propdesk) breaches a personal daily loss of $500 on topstep-50k-combine; the daemon flattens
the manual position, the account is HALTED with a lockout until 17:00 CT, later manual trades while HALTED are closed
again right after they fill, the lockout lifts at the reset, and the audit file holds the decisions and the
enforcement with their inputs and no secrets."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from propdesk.cli import app
from propdesk.risk.audit import JsonLinesAuditLog
from tests.conftest import ES_1MIN, resolve_shared

CT = ZoneInfo("America/Chicago")
# Thursday 2025-10-16, 08:00 -> 20:00 CT (13:00 -> 01:00 UTC): ES falls from ~6733 after 09:30 CT
START, END = "2025-10-16T13:00", "2025-10-17T01:00"
MANUAL = [
    {"ts": "2025-10-16T09:30:00-05:00", "symbol": "ES", "side": "buy", "qty": 2, "type": "market"},
    {"ts": "2025-10-16T12:00:00-05:00", "symbol": "ESZ5", "side": "buy", "qty": 1, "type": "market"},
    {"ts": "2025-10-16T12:40:00-05:00", "symbol": "ES", "side": "buy", "qty": 1, "type": "limit", "price": 6660.0},
    {"ts": "2025-10-16T18:00:00-05:00", "symbol": "ES", "side": "buy", "qty": 1, "type": "market"},
]
SECRET = "sk-not-a-real-key-0123456789"


def ct_ns(d: int, h: int, mi: int = 0) -> int:
    return int(datetime(2025, 10, d, h, mi, tzinfo=CT).timestamp()) * 1_000_000_000


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], list[dict[str, Any]], str]:
    es = resolve_shared(ES_1MIN)
    tmp = tmp_path_factory.mktemp("risk")
    cfg = tmp / "risk.toml"
    cfg.write_text("[rules.personal_daily_loss]\namount = 500\n", encoding="utf-8")
    manual = tmp / "manual.jsonl"
    manual.write_text("".join(json.dumps(m) + "\n" for m in MANUAL), encoding="utf-8")
    audit = tmp / "audit.jsonl"
    args = [
        "risk",
        "--broker",
        "sim",
        "--account",
        "7",
        "--risk",
        "topstep-50k-combine",
        "--risk-config",
        str(cfg),
        "--replay",
        str(es),
        "--speed",
        "max",
        "--start",
        START,
        "--end",
        END,
        "--manual",
        str(manual),
        "--audit",
        str(audit),
        "--no-console",
        "--json-status",
    ]
    # a ProjectX key in the environment must never reach the audit log
    result = CliRunner().invoke(app, args, env={"PROPDESK_PROJECTX_API_KEY": SECRET})
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), JsonLinesAuditLog.read(audit), result.stderr


def test_the_manual_breach_is_flattened_and_locked_out_until_17_ct(run: tuple[dict[str, Any], Any, str]) -> None:
    status, _audit, log = run
    fills = status["recent_fills"]
    first, enforce = fills[0], fills[1]
    assert (first["client_order_id"], first["source"], first["position_after"]) == ("ext-manual-1", "manual", 2)
    assert first["time_ct"] == "2025-10-16 09:30:00 CT"
    # the enforcement fill: the daemon closed the manual position through the broker
    assert enforce["source"] == "risk" and enforce["client_order_id"].startswith("sim-close-")
    assert enforce["tag"] == enforce["label"] == "risk:R3"  # the rule that caused it (the personal daily loss)
    assert (enforce["side"], enforce["qty"], enforce["position_after"]) == ("SELL", 2, 0)
    loss_cents = round((float(enforce["price"]) - float(first["price"])) * 50 * 2 * 100)
    assert loss_cents <= -40_000  # $500 limit, $100 trigger buffer (the preset's default): acts at -$400 or worse
    # the log says it: breach, HALTED, lockout until the next 17:00 CT
    assert "BREACH R3 LOCKOUT" in log and "STATE ACTIVE -> HALTED" in log
    assert "LOCKOUT R3 until 2025-10-16 17:00:00 CT" in log
    assert "LOCKOUT EXPIRED R3" in log and "STATE HALTED -> ACTIVE" in log


def test_manual_trades_while_halted_are_closed_right_after_they_fill(run: tuple[dict[str, Any], Any, str]) -> None:
    status, _audit, _log = run
    fills = status["recent_fills"]
    lockout_end = ct_ns(16, 17)
    halted = [f for f in fills[2:] if f["ts_ns"] < lockout_end]
    manual = [f for f in halted if f["source"] == "manual"]
    assert [f["client_order_id"] for f in manual] == ["ext-manual-2", "ext-manual-3"]
    for m in manual:
        assert m["state"] == "HALTED" and m["position_after"] == 1
        nxt = halted[halted.index(m) + 1]
        assert nxt["source"] == "risk" and nxt["side"] == "SELL" and nxt["position_after"] == 0
        assert 0 <= nxt["ts_ns"] - m["ts_ns"] <= 60_000_000_000  # within the bar it filled in
    # after the 17:00 CT reset the account is ACTIVE again: a manual trade stays open
    after = [f for f in fills if f["ts_ns"] >= lockout_end]
    assert [(f["client_order_id"], f["source"]) for f in after] == [("ext-manual-4", "manual")]
    assert status["state"] == "ACTIVE" and status["lockouts"] == []
    assert status["positions"][0]["qty"] == 1
    assert status["fills"] == {"manual": 4, "risk": 3, "propdesk": 0}
    assert status["manual"]["pending"] == [] and len(status["manual"]["placed"]) == 4


def test_final_status_json_has_the_account_rules_and_reset(run: tuple[dict[str, Any], Any, str]) -> None:
    status, _audit, _log = run
    assert status["account"] == 7 and status["preset"] == "topstep-50k-combine" and status["broker"] == "sim"
    assert status["replay"]["completed"] is True and status["replay"]["symbol"] == "ESZ5"
    assert status["trading_date"] == "2025-10-17"
    assert status["next_reset_ct"] == "2025-10-19 17:00:00 CT"  # Friday's session: the next open is Sunday
    assert status["next_flat_ct"] == "2025-10-17 15:05:00 CT"
    assert status["mll_floor_usd"] == "48000.00"
    ids = {r["rule_id"] for r in status["rules"]}
    assert {"R1", "R3", "R5", "R11"} <= ids
    assert 0 < len(status["audit"]) <= 15


def test_audit_file_has_decisions_and_enforcement_with_inputs_and_no_secrets(
    run: tuple[dict[str, Any], list[dict[str, Any]], str],
) -> None:
    _status, audit, _log = run
    breach = next(e for e in audit if e["verdict"]["action"] == "LOCKOUT" and e["point"] in ("quote", "fill"))
    assert breach["verdict"]["state"] == "HALTED"
    assert any(r.startswith("R3:") for r in breach["verdict"]["reasons"])
    inputs = breach["inputs"]
    assert inputs["day_net"].startswith("-") and inputs["mll_floor"] == "48000.00"
    assert inputs["positions"][0][0] == "ESZ5" and inputs["positions"][0][1] == 2
    steps = [e["step"] for e in audit if e["point"] == "enforce"]
    assert {"persist", "cancel_all", "close_position", "verify"} <= set(steps)
    persist = next(e for e in audit if e["step"] == "persist")
    assert persist["inputs"]["rule_id"] == "R3" and persist["inputs"]["expires_at_ns"] == ct_ns(16, 17)
    # every manual fill was judged, with the fill in the inputs
    judged = {e["inputs"]["fill"]["client_order_id"] for e in audit if "fill" in e["inputs"]}
    assert {"ext-manual-1", "ext-manual-2", "ext-manual-3", "ext-manual-4"} <= judged
    text = json.dumps(audit)
    assert SECRET not in text
    assert not any(w in text.lower() for w in ("api_key", "password", "token"))


def test_cli_errors_are_clear() -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["risk", "--broker", "sim", "--account", "1", "--risk", "topstep-50k-combine"])
    assert res.exit_code == 2 and "--replay" in res.stderr
    res = runner.invoke(app, ["risk", "--broker", "ib", "--account", "1", "--risk", "topstep-50k-combine"])
    assert res.exit_code == 2 and "sim, projectx" in res.stderr
    res = runner.invoke(app, ["risk", "--broker", "sim", "--account", "1"])
    assert res.exit_code == 2 and "--risk" in res.stderr
    res = runner.invoke(
        app,
        ["risk", "--broker", "projectx", "--account", "1", "--risk", "topstep-50k-combine"],
        env={"PROPDESK_PROJECTX_USERNAME": "", "PROPDESK_PROJECTX_API_KEY": ""},
    )
    assert res.exit_code == 2 and "PROPDESK_PROJECTX_API_KEY" in res.stderr
    # a simulated account's lockouts are kept in memory: a journal is for a live account only
    res = runner.invoke(
        app,
        [
            *("risk", "--broker", "sim", "--account", "1", "--risk", "topstep-50k-combine", "--replay", "x.csv"),
            *("--journal-url", "sqlite:///x.db"),
        ],
    )
    assert res.exit_code == 2 and "--broker projectx" in res.stderr
