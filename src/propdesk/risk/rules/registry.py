"""The rule registry: rule classes by id (``R1`` ... ``R16``) and by configuration name, and :func:`build_rule`.

Rule ids and meanings: ``../shared/specs/risk-rules.md`` section 5.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from propdesk.core.errors import ConfigError
from propdesk.risk.rules.base import Rule
from propdesk.risk.rules.consistency import ConsistencyRule
from propdesk.risk.rules.cooldown import CooldownRule
from propdesk.risk.rules.daily_loss import FirmDailyLossRule, PersonalDailyLossRule
from propdesk.risk.rules.hedging import HedgeBook, NoHedgingRule
from propdesk.risk.rules.mll import MllRule
from propdesk.risk.rules.position_limits import MaxPositionRule, ScalingPlanRule, SymbolLimitsRule
from propdesk.risk.rules.position_loss import PositionLossRule
from propdesk.risk.rules.profit_target import ProfitTargetRule
from propdesk.risk.rules.sessions import FlatSchedule, FlatTimeRule, SessionWindowsRule
from propdesk.risk.rules.stop_required import StopRequiredRule
from propdesk.risk.rules.trade_limits import ExcessiveContractsRule, TradeLimitsRule

_NAMES: dict[str, type[Rule]] = {
    "mll": MllRule,
    "daily_loss_limit": FirmDailyLossRule,
    "firm_dll": FirmDailyLossRule,
    "personal_daily_loss": PersonalDailyLossRule,
    "profit_target": ProfitTargetRule,
    "personal_daily_profit_target": ProfitTargetRule,
    "max_position": MaxPositionRule,
    "scaling_plan": ScalingPlanRule,
    "symbol_limits": SymbolLimitsRule,
    "trade_limits": TradeLimitsRule,
    "cooldown": CooldownRule,
    "session_windows": SessionWindowsRule,
    "flat_time": FlatTimeRule,
    "max_position_loss": PositionLossRule,
    "stop_required": StopRequiredRule,
    "no_hedging": NoHedgingRule,
    "excessive_contracts": ExcessiveContractsRule,
    "consistency": ConsistencyRule,
}

RULES: dict[str, type[Rule]] = {**{cls.rule_id: cls for cls in _NAMES.values()}, **_NAMES}
"""Every rule class by id (``"R1"``) and by configuration name (``"mll"``, ``"personal_daily_loss"``, ...)."""


def rule_class(name_or_id: str) -> type[Rule]:
    """The rule class for an id (case-insensitive: ``R3``, ``r3``) or a configuration name.

    Raises:
        ConfigError: unknown name (the message lists the known ones).
    """
    key = name_or_id.strip()
    cls = RULES.get(key.upper()) or RULES.get(key.lower())
    if cls is None:
        raise ConfigError(f"unknown risk rule {name_or_id!r}; known: {', '.join(sorted(RULES))}")
    return cls


def build_rule(
    name_or_id: str,
    params: Mapping[str, Any],
    firm: bool,
    *,
    schedule: FlatSchedule | None = None,
    hedge_book: HedgeBook | None = None,
) -> Rule:
    """Validate ``params`` and build the rule.

    Args:
        name_or_id: ``R1`` ... ``R16`` or a configuration name (see :data:`RULES`).
        params: the rule's parameters (USD amounts as numbers or strings, times as ``"HH:MM"``).
        firm: True for a firm rule (a personal rule never weakens it).
        schedule: the calendar's flat/entry-cutoff times; required by R11 (``flat_time``).
        hedge_book: the trader's other accounts' positions; required by R14 (``no_hedging``).

    Raises:
        ConfigError: unknown rule, a bad or missing parameter (the message names the rule and every bad parameter),
            or a missing ``schedule`` / ``hedge_book``.
    """
    cls = rule_class(name_or_id)
    label = f"risk rule {name_or_id!r} ({cls.rule_id})"
    if not isinstance(params, Mapping):
        raise ConfigError(f"{label}: parameters must be a table, not {type(params).__name__}")
    try:
        p = cls.params_cls.model_validate(dict(params))
    except ValidationError as exc:
        bad = "; ".join(f"parameter {'.'.join(str(x) for x in e['loc']) or '(all)'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{label}: {bad}") from None
    if cls is FlatTimeRule:
        if schedule is None:
            raise ConfigError(f"{label}: needs the trading calendar's flat-time schedule")
        return FlatTimeRule(p, schedule=schedule, firm=firm)  # type: ignore[arg-type]
    if cls is NoHedgingRule:
        if hedge_book is None:
            raise ConfigError(f"{label}: needs the book of the trader's other accounts")
        return NoHedgingRule(p, book=hedge_book, firm=firm)  # type: ignore[arg-type]
    return cls(p, firm=firm)
