"""The rule registry (propdesk.risk.rules.registry)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import pytest

from propdesk.core.errors import ConfigError
from propdesk.risk.rules.hedging import HedgeLeg
from propdesk.risk.rules.mll import MllRule
from propdesk.risk.rules.registry import RULES, build_rule, rule_class

MINIMAL: dict[str, dict[str, Any]] = {
    "R1": {"amount": 2000, "trigger_buffer_usd": 100, "warn_pct": [70, 85, 95], "default_risk_ticks": 20},
    "R2": {"amount": None, "default_risk_ticks": 20},
    "R3": {"amount": "500", "mode": "trailing", "basis": "unrealized", "default_risk_ticks": 20},
    "R4": {"target": 200, "action": "liquidate"},
    "R5": {"limit": 5, "micro_ratio": 10},
    "R6": {"micro_ratio": 10, "ladder": [{"max_lots": 2}, {"eod_profit_gt": 1500, "max_lots": 3}]},
    "R7": {"symbols": {"CL": {"blocked": True}}},
    "R8": {"max_per_day": 10},
    "R9": {"cooldown_min": 15},
    "R10": {"windows": ["new_york", {"start": "18:00", "end": "20:00"}]},
    "R11": {},
    "R12": {"max_loss_ticks": 16},
    "R13": {"grace_s": 60, "default_stop_ticks": 12},
    "R14": {"groups": [["ES", "MES"]]},
    "R15": {"warn": 150, "block": 200},
    "R16": {"max_best_day_pct": "0.40"},
}


class Sched:
    def flat_time_ns(self, d: date, product: str) -> int:
        return 0

    def entry_cutoff_ns(self, d: date, product: str) -> int:
        return 0


class Book:
    def other_legs(self, roots: frozenset[str]) -> Sequence[HedgeLeg]:
        return []


def test_every_rule_by_id_and_name() -> None:
    ids = {f"R{i}" for i in range(1, 17)}
    assert ids <= set(RULES)
    for rid in ids:
        assert RULES[rid].rule_id == rid
    assert RULES["mll"] is RULES["R1"] and RULES["daily_loss_limit"] is RULES["R2"]
    assert RULES["personal_daily_loss"] is RULES["R3"] and RULES["flat_time"] is RULES["R11"]
    assert rule_class("r3") is RULES["R3"] and rule_class(" MLL ") is MllRule


@pytest.mark.parametrize("rid", sorted(MINIMAL))
def test_build_each_rule(rid: str) -> None:
    rule = build_rule(rid, MINIMAL[rid], rid in {"R1", "R2"}, schedule=Sched(), hedge_book=Book())
    assert rule.rule_id == rid and rule.describe().startswith(rid)
    assert rule.firm is (rid in {"R1", "R2"})
    assert rule.points, "every rule is evaluated somewhere"


def test_unknown_rule() -> None:
    with pytest.raises(ConfigError, match=r"unknown risk rule 'max_fun'.*mll"):
        build_rule("max_fun", {}, False)


def test_bad_parameters_are_named() -> None:
    with pytest.raises(ConfigError) as e:
        build_rule("personal_daily_loss", {"amount": "abc", "default_risk_ticks": 20, "colour": 1}, False)
    msg = str(e.value)
    assert "'personal_daily_loss' (R3)" in msg and "parameter amount" in msg and "parameter colour" in msg
    with pytest.raises(ConfigError, match="parameter default_risk_ticks: Field required"):
        build_rule("R1", {"amount": 2000}, True)
    with pytest.raises(ConfigError, match=r"parameter amount: .*must be positive"):
        build_rule("R3", {"amount": -5, "default_risk_ticks": 1}, False)
    with pytest.raises(ConfigError, match=r"parameter amount: .*whole number of cents"):
        build_rule("R2", {"amount": "10.005", "default_risk_ticks": 1}, True)
    with pytest.raises(ConfigError, match="must be a table"):
        build_rule("R8", [1, 2], False)  # type: ignore[arg-type]


def test_dependencies_required() -> None:
    with pytest.raises(ConfigError, match=r"R11.*calendar"):
        build_rule("flat_time", {}, True)
    with pytest.raises(ConfigError, match=r"R14.*other accounts"):
        build_rule("no_hedging", {}, True)
