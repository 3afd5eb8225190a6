"""Tests for risk presets and the trader's risk configuration (propdesk.risk.presets; risk-rules.md section 4)."""

from __future__ import annotations

import logging
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from propdesk.core.bus import MessageBus
from propdesk.core.errors import ConfigError
from propdesk.execution.positions import PositionManager
from propdesk.model.identifiers import AccountId
from propdesk.model.orders import Order
from propdesk.model.price import Money
from propdesk.risk.presets import RiskConfig, SourceStatus, load_risk_config, preset_names
from propdesk.risk.state import MllMode

SIZES = {
    "50k": ("50000", "2000", 5, "3000"),
    "100k": ("100000", "3000", 10, "6000"),
    "150k": ("150000", "4500", 15, "9000"),
}
LFA_DLL = {"50k": "2000", "100k": "3000", "150k": "4500"}


class Schedule:
    """A flat-time schedule stub (R11 needs one to be built)."""

    def flat_time_ns(self, d: date, product: str) -> int:
        return 0

    def entry_cutoff_ns(self, d: date, product: str) -> int:
        return 0


class Calendar:
    def trading_date(self, ts_ns: int) -> date:
        return date(2026, 11, 17) if ts_ns < 10**9 else date(2026, 11, 18)

    def day_start_ns(self, d: date) -> int:
        return 0 if d == date(2026, 11, 17) else 2 * 10**9


def write(tmp_path: Path, text: str, name: str = "risk.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def params(cfg: RiskConfig, name: str) -> dict[str, object]:
    rc = cfg.rule(name)
    assert rc is not None, name
    return dict(rc.params)


# ------------------------------------------------------------------ shipped presets


def test_the_nine_topstep_presets_are_shipped() -> None:
    assert sorted(preset_names()) == sorted(
        f"topstep-{size}-{kind}" for size in SIZES for kind in ("combine", "xfa", "lfa")
    )


@pytest.mark.parametrize("size", list(SIZES))
def test_combine_presets_match_the_parameter_table(size: str) -> None:
    start, mll, limit, target = SIZES[size]
    cfg = load_risk_config(f"topstep-{size}-combine", None)
    assert cfg.start_balance == Money.of(start) and cfg.account_profit_target == Money.of(target)
    assert cfg.mll is not None and cfg.mll.amount == Money.of(mll) and cfg.mll.mode is MllMode.EOD
    assert cfg.mll.lock_at_start
    assert params(cfg, "max_position")["limit"] == limit and cfg.micro_ratio == 10
    assert cfg.rule("firm_dll") is None  # none on TopstepX Combine since 2024-08-25 (9772296)
    assert Decimal(str(params(cfg, "consistency")["max_best_day_pct"])) == Decimal("0.40")  # CONFLICT: restrictive
    assert params(cfg, "excessive_contracts") == {"block": 200, "warn": 150}
    r1 = params(cfg, "mll")
    assert "mode" not in r1 and "lock_at_start" not in r1  # account-state keys are not rule parameters
    assert r1["amount"] == int(mll) and r1["trigger_buffer_usd"] == 100 and r1["default_risk_ticks"] == 20
    rules = cfg.build_rules(schedule=Schedule())
    assert sorted(r.rule_id for r in rules.rules) == ["R1", "R11", "R15", "R16", "R5"]
    assert all(r.firm for r in rules.rules)


@pytest.mark.parametrize("size", list(SIZES))
def test_xfa_and_lfa_presets(size: str) -> None:
    xfa = load_risk_config(f"topstep-{size}-xfa", None)
    assert xfa.start_balance == Money(0) and xfa.winning_day_usd == Money.of("200")
    if size == "50k":
        ladder = params(xfa, "scaling_plan")["ladder"]
        assert ladder == [
            {"max_lots": 2},
            {"eod_profit_gt": 1500, "max_lots": 3},
            {"eod_profit_gt": 2000, "max_lots": 5},
        ]
    else:
        assert xfa.rule("scaling_plan") is None
        assert xfa.sources["rules.scaling_plan"].status is SourceStatus.UNKNOWN
    xfa.build_rules(schedule=Schedule())
    lfa = load_risk_config(f"topstep-{size}-lfa", None)
    assert params(lfa, "firm_dll")["amount"] == int(LFA_DLL[size])
    assert lfa.sources["rules.firm_dll.amount"].status is SourceStatus.OFFICIAL
    assert lfa.micro_ratio == 1  # micro-equivalent sizing not available on LFA: restrictive
    lfa.build_rules(schedule=Schedule())


def test_every_number_has_a_source_with_a_checked_date() -> None:
    for name in preset_names():
        cfg = load_risk_config(name, None)
        assert "rules.max_position.limit" in cfg.sources and "start_balance" in cfg.sources
        for src in cfg.sources.values():
            assert src.urls and all(u.startswith("https://") for u in src.urls)
            assert isinstance(src.checked, date)


def test_unverified_and_conflict_values_warn_at_load(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="propdesk.risk.presets"):
        cfg = load_risk_config("topstep-50k-combine", None)
    logged = [r.getMessage() for r in caplog.records]
    assert any("rules.consistency.max_best_day_pct is CONFLICT" in m for m in logged)
    assert any("account_profit_target is UNVERIFIED" in m for m in logged)
    assert not any("rules.max_position.limit" in m for m in logged)  # OFFICIAL: no warning
    assert list(cfg.warnings) == logged


# ------------------------------------------------------------------ preset file validation

PRESET = """
[defaults]
default_risk_ticks = 12

[presets.tiny]
firm = "acme"
start_balance = 25000

[presets.tiny.rules.max_position]
limit = 3
micro_ratio = 10

[presets.tiny.sources]
start_balance = {url = "https://example.com/a", status = "OFFICIAL", checked = 2026-01-02}
"rules.max_position.micro_ratio" = {url = "https://example.com/b", status = "3P", checked = 2026-01-02}
"""


def test_a_preset_field_without_a_source_fails(tmp_path: Path) -> None:
    presets = write(tmp_path, PRESET, "presets.toml")
    with pytest.raises(ConfigError, match=r"preset tiny: field rules\.max_position\.limit has no source"):
        load_risk_config("tiny", None, presets_path=presets)
    fixed = (
        PRESET
        + '"rules.max_position.limit" = {url = "https://example.com/c", status = "OFFICIAL", checked = 2026-01-02}\n'
    )
    cfg = load_risk_config("tiny", None, presets_path=write(tmp_path, fixed, "presets2.toml"))
    assert params(cfg, "max_position")["limit"] == 3 and cfg.start_balance == Money.of("25000")


def test_a_bad_source_fails(tmp_path: Path) -> None:
    text = (
        PRESET
        + '"rules.max_position.limit" = {url = "https://example.com/c", status = "MAYBE", checked = 2026-01-02}\n'
    )
    with pytest.raises(ConfigError, match=r"source 'rules\.max_position\.limit'.*status 'MAYBE'"):
        load_risk_config("tiny", None, presets_path=write(tmp_path, text, "p.toml"))
    text = (
        PRESET + '"rules.max_position.limit" = {url = "https://example.com/c", status = "OFFICIAL", checked = "soon"}\n'
    )
    with pytest.raises(ConfigError, match="checked must be a date"):
        load_risk_config("tiny", None, presets_path=write(tmp_path, text, "q.toml"))


def test_unknown_preset_fails() -> None:
    with pytest.raises(ConfigError, match="unknown risk preset 'topstep-25k-combine'"):
        load_risk_config("topstep-25k-combine", None)


# ------------------------------------------------------------------ personal rules and tightening


def test_personal_value_looser_than_firm_fails_naming_file_table_key(tmp_path: Path) -> None:
    path = write(tmp_path, "[rules.max_position]\nlimit = 8\n")
    with pytest.raises(ConfigError) as exc:
        load_risk_config("topstep-50k-combine", path)
    msg = str(exc.value)
    assert str(path) in msg and "[rules.max_position] limit = 8" in msg and "looser" in msg and "5" in msg


def test_personal_values_may_tighten(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[rules.max_position]
limit = 3
micro_ratio = 5

[rules.mll]
amount = 1500
mode = "INTRADAY_UNREALIZED"

[rules.consistency]
max_best_day_pct = 0.3
""",
    )
    cfg = load_risk_config("topstep-50k-combine", path)
    assert params(cfg, "max_position")["limit"] == 3 and cfg.micro_ratio == 5
    assert cfg.mll is not None and cfg.mll.amount == Money.of("1500") and cfg.mll.mode is MllMode.INTRADAY_UNREALIZED
    r5 = cfg.rule("R5")
    assert r5 is not None and r5.firm  # still a firm rule, with tighter values


@pytest.mark.parametrize(
    ("table", "match"),
    [
        ("[rules.mll]\namount = 2500\n", "amount = 2500 is looser"),
        ('[rules.mll]\nmode = "EOD"\nlock_at_start = true\n', None),
        ("[rules.excessive_contracts]\nblock = 250\n", "block = 250 is looser"),
        ("[rules.consistency]\nmax_best_day_pct = 0.5\n", "max_best_day_pct = 0.5 is looser"),
        ("[rules.max_position]\nmicro_ratio = 20\n", "micro_ratio = 20 is looser"),
        ("[rules.max_position]\nweights = {MES = 0.05}\n", r"weights\.MES = 0\.05 is looser"),
        ('[rules.flat_time]\nreference_product = "CL"\n', "cannot differ"),
    ],
)
def test_loosening_each_firm_value_fails(tmp_path: Path, table: str, match: str | None) -> None:
    path = write(tmp_path, table)
    if match is None:
        load_risk_config("topstep-50k-combine", path)  # the same values are not looser
        return
    with pytest.raises(ConfigError, match=match):
        load_risk_config("topstep-50k-combine", path)


def test_scaling_ladder_may_only_tighten(tmp_path: Path) -> None:
    looser = write(tmp_path, "[rules.scaling_plan]\nladder = [{max_lots = 3}, {eod_profit_gt = 1500, max_lots = 5}]\n")
    with pytest.raises(ConfigError, match="allows more lots"):
        load_risk_config("topstep-50k-xfa", looser)
    tighter = write(
        tmp_path, "[rules.scaling_plan]\nladder = [{max_lots = 1}, {eod_profit_gt = 3000, max_lots = 4}]\n", "t.toml"
    )
    cfg = load_risk_config("topstep-50k-xfa", tighter)
    assert params(cfg, "scaling_plan")["ladder"] == [{"max_lots": 1}, {"eod_profit_gt": 3000, "max_lots": 4}]
    assert params(cfg, "scaling_plan")["micro_ratio"] == 10  # shared with R5


def test_personal_rules_are_added_with_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
preset = "topstep-50k-combine"

[defaults]
trigger_buffer_usd = 50

[rules.personal_daily_loss]
amount = 500
mode = "trailing"

[rules.R8]
max_per_day = 10

[rules.cooldown]
cooldown_min = 15
max_consecutive_losses = 3

[rules.personal_daily_profit_target]
target = 600

[rules.consistency]
cap_r4 = true
""",
    )
    cfg = load_risk_config(None, path)
    assert cfg.preset == "topstep-50k-combine"
    pdl = params(cfg, "R3")
    assert pdl["amount"] == 500 and pdl["default_risk_ticks"] == 20 and pdl["trigger_buffer_usd"] == 50
    assert params(cfg, "R1")["trigger_buffer_usd"] == 50
    assert Decimal(str(params(cfg, "R4")["max_best_day_pct"])) == Decimal("0.40")  # capped by R16
    rules = cfg.build_rules(schedule=Schedule())
    by_id = {r.rule_id: r.firm for r in rules.rules}
    assert by_id == {"R1": True, "R5": True, "R16": True, "R15": True, "R11": True} | {
        "R3": False,
        "R8": False,
        "R9": False,
        "R4": False,
    }


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[rules.moon_phase]\nlimit = 1\n", r"\[rules\.moon_phase\].*unknown risk rule"),
        ("[rules.trade_limits]\nmax_per_dya = 3\n", r"\[rules\.trade_limits\].*max_per_dya"),
        ("[rules.personal_daily_loss]\namount = -5\n", r"\[rules\.personal_daily_loss\].*amount"),
        ("[acount]\nstart_balance = 1\n", "unknown key.*acount"),
        ("[account]\nbalance = 1\n", r"\[account\] unknown key.*balance"),
        ('preset = "topstep-100k-combine"\n', "differs from the preset given"),
        ("[rules.max_position]\non_oversize = 'size_down'\nlimit = 'five'\n", "limit"),
    ],
)
def test_bad_personal_config_names_file_table_and_key(tmp_path: Path, text: str, match: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=match) as exc:
        load_risk_config("topstep-50k-combine", path)
    assert str(path) in str(exc.value)


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[rules.max_position\nlimit = 3\n")
    with pytest.raises(ConfigError, match="invalid TOML") as exc:
        load_risk_config("topstep-50k-combine", path)
    assert str(path) in str(exc.value)


def test_without_a_preset_start_balance_is_required_and_flat_time_is_on(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="start_balance is required"):
        load_risk_config(None, write(tmp_path, "[rules.trade_limits]\nmax_per_day = 5\n"))
    cfg = load_risk_config(None, write(tmp_path, "[account]\nstart_balance = 10000\n", "b.toml"))
    assert cfg.start_balance == Money.of("10000") and cfg.mll is None
    flat = cfg.rule("flat_time")
    assert flat is not None and flat.firm


def test_account_settings_seed_the_state(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[account]\nstart_balance = 50000\nmll_floor = 48750\nexit_fees = {ES = "1.40"}\n',
    )
    cfg = load_risk_config("topstep-50k-xfa", path)
    assert cfg.start_balance == Money.of("50000") and cfg.exit_fees == {"ES": Money.of("1.40")}
    orders: list[Order] = []
    state = cfg.make_state(
        AccountId(1),
        positions=PositionManager(MessageBus(timing=False)),
        working_orders=lambda: orders,
        calendar=Calendar(),
        clock=lambda: 5,
    )
    assert state.mll_floor == Money.of("48750") and state.missing_inputs() == []
    assert state.start_balance == Money.of("50000")


def test_non_utf8_risk_config_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b"[account]\nname = '\xe9'\n")
    with pytest.raises(ConfigError) as exc:
        load_risk_config("topstep-50k-combine", path)
    assert str(exc.value) == f"risk config {path}: is not UTF-8 text (byte 0xe9 at offset 18)"


def test_directory_as_risk_config_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_risk_config("topstep-50k-combine", tmp_path)
    assert str(exc.value) == f"risk config {tmp_path}: is a directory, not a file"
