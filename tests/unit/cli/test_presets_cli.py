"""``propdesk presets list|show`` (in-process, Typer's runner) against the shipped presets file."""

from __future__ import annotations

import json
from importlib import resources

from typer.testing import CliRunner

from propdesk.cli import app
from propdesk.core.textfiles import parse_toml

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def shipped() -> dict[str, dict[str, object]]:
    text = resources.files("propdesk.risk").joinpath("resources/presets.toml").read_text(encoding="utf-8")
    presets = parse_toml(text, "presets")["presets"]
    assert isinstance(presets, dict)
    return presets


def test_list_json_names_every_shipped_preset() -> None:
    code, out, err = invoke("presets", "list", "--json")
    assert code == 0, err
    entries = json.loads(out)
    assert [e["name"] for e in entries] == list(shipped())
    combine = entries[0]
    assert combine == {
        "name": "topstep-50k-combine",
        "title": "Topstep 50K Trading Combine (TopstepX)",
        "firm": "topstep",
        "platform": "topstepx",
        "account_type": "combine",
        "start_balance_usd": 50000,
        "rules": ["mll (R1)", "max_position (R5)", "consistency (R16)", "excessive_contracts (R15)", "flat_time (R11)"],
        # account_profit_target UNVERIFIED; rules.mll.mode, rules.firm_dll, consistency CONFLICT
        "unconfirmed": 4,
    }


def test_list_text() -> None:
    code, out, err = invoke("presets", "list")
    assert code == 0, err
    assert "topstep-50k-combine   Topstep 50K Trading Combine (TopstepX); start balance 50000 USD; 4 unconfirmed" in out
    assert "rules: mll (R1), firm_dll (R2), max_position (R5)" in out  # an LFA


def test_show_json_carries_every_number_with_unit_and_source() -> None:
    code, out, err = invoke("presets", "show", "topstep-50k-xfa", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert (d["name"], d["account_type"]) == ("topstep-50k-xfa", "xfa")
    account = {r["key"]: r for r in d["account"]}
    assert account["start_balance"]["value"] == 0 and account["start_balance"]["unit"] == "USD"
    assert account["start_balance"]["status"] == "UNVERIFIED"
    assert (account["winning_day_usd"]["value"], account["winning_day_usd"]["status"]) == (200, "CONFLICT")
    rules = {r["name"]: r for r in d["rules"]}
    assert [r["id"] for r in d["rules"]] == ["R1", "R5", "R6", "R16", "R15", "R11"]
    mll = {p["key"]: p for p in rules["mll"]["params"]}
    assert mll["amount"] == {
        "key": "amount",
        "path": "rules.mll.amount",
        "value": 2000,
        "unit": "USD",
        "status": "OFFICIAL",
        "urls": ["https://help.topstep.com/en/articles/8284204"],
        "checked": "2026-11-22",
        "note": "",
    }
    limit = rules["max_position"]["params"][0]
    assert (limit["key"], limit["value"], limit["unit"]) == ("limit", 5, "mini-equivalent contracts")
    ladder = rules["scaling_plan"]["params"][0]
    assert ladder["value"] == [
        {"max_lots": 2},
        {"eod_profit_gt": 1500, "max_lots": 3},
        {"eod_profit_gt": 2000, "max_lots": 5},
    ]
    assert ladder["status"] == "UNVERIFIED"
    consistency = rules["consistency"]["params"][0]
    assert (consistency["value"], consistency["unit"], consistency["status"]) == (
        0.4,
        "fraction of total profit",
        "CONFLICT",
    )
    # every value of the preset appears once, with its source from the file
    table = shipped()["topstep-50k-xfa"]
    assert isinstance(table, dict)
    rows = d["account"] + [p for r in d["rules"] for p in r["params"]]
    rules_table = table["rules"]
    assert isinstance(rules_table, dict)
    assert len(rows) == 2 + sum(len(p) for p in rules_table.values())
    assert all(r["status"] in {"OFFICIAL", "3P", "UNVERIFIED", "CONFLICT", "UNKNOWN"} and r["urls"] for r in rows)
    assert [a["path"] for a in d["absent"]] == ["rules.firm_dll"]
    assert d["absent"][0]["status"] == "CONFLICT"
    assert d["defaults"]["trigger_buffer_usd"] == 100
    assert d["unconfirmed"] == 6


def test_show_text() -> None:
    code, out, err = invoke("presets", "show", "topstep-50k-lfa")
    assert code == 0, err
    lines = out.splitlines()
    assert (
        lines[0] == "topstep-50k-lfa: Topstep 50K Live Funded Account (TopstepX) (firm topstep, platform topstepx, lfa)"
    )
    i = next(k for k, line in enumerate(lines) if line.startswith("  rule firm_dll (R2): R2: "))
    assert lines[i + 1].split() == ["amount", "2000", "USD", "[OFFICIAL]"]
    assert lines[i + 2].strip().startswith("https://help.topstep.com/en/articles/11748475 (checked 2026-11-22; ")
    assert "    trigger_buffer_usd = 100" in lines


def test_show_unknown_preset_is_one_line() -> None:
    code, out, err = invoke("presets", "show", "topstep-25k")
    assert code == 2 and out == ""
    assert err.startswith("error: unknown risk preset 'topstep-25k'; known: topstep-50k-combine, ")
    assert err.count("\n") == 1
