"""Risk configuration: firm account-type presets plus the trader's personal rules, validated into a :class:`RiskConfig`.

"No firm number in code" (``../shared/specs/risk-rules.md`` sections 1 and 4.3): the Topstep presets live in
``propdesk/risk/resources/presets.toml`` (``topstep-50k-combine``, ``topstep-100k-xfa``, ``topstep-150k-lfa``, ...),
each number with its source ``{url, status, checked}``. Loading fails on a preset field without a source; a field
whose status is UNVERIFIED, CONFLICT or UNKNOWN logs a warning at every load.

The trader's risk configuration file (``--risk-config FILE``, TOML) may hold::

    preset = "topstep-50k-combine"          # or given on the command line

    [account]
    start_balance = 50000                   # overrides the preset's (XFA: 0 or the account size)
    mll_floor = 48500                       # the current MLL floor from TopstepX ("Distance To MLL"); without
                                            # it a live account's floor comes from the journal or the broker's
                                            # trade history (propdesk.node.bootstrap)
    exit_fees = {ES = "1.40", MES = "0.37"}  # estimated exit fee per contract, subtracted from unrealized PnL

    [defaults]                              # propdesk settings applied to every rule with the field
    trigger_buffer_usd = 150

    [rules.personal_daily_loss]             # a personal rule (registry name or id, e.g. "R3")
    amount = 500
    mode = "trailing"

    [rules.max_position]                    # a firm rule of the preset: may only TIGHTEN its values
    limit = 3

Rule names and parameters are those of :mod:`propdesk.risk.rules.registry`. A personal value looser than the firm
value is a :class:`~propdesk.core.errors.ConfigError` (risk-rules.md section 4.3); errors name the file, the table
and the key. Loosening applies only by editing the presets (section 6: never intraday through the daemon).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from propdesk.core.errors import ConfigError, ContractError
from propdesk.core.textfiles import parse_toml, read_utf8
from propdesk.execution.positions import PositionManager
from propdesk.model.contracts import spec
from propdesk.model.identifiers import AccountId, ClientOrderId
from propdesk.model.orders import Order
from propdesk.model.price import Money
from propdesk.risk.rules.base import Rule, RuleSet
from propdesk.risk.rules.hedging import HedgeBook
from propdesk.risk.rules.registry import build_rule, rule_class
from propdesk.risk.rules.sessions import FlatSchedule
from propdesk.risk.state import AccountState, MllConfig, MllMode, TradingDayCalendar

__all__ = [
    "PRESETS_RESOURCE",
    "RiskConfig",
    "RuleConfig",
    "Source",
    "SourceStatus",
    "load_presets",
    "load_risk_config",
    "preset_defaults",
    "preset_names",
    "preset_sources",
]

log = logging.getLogger("propdesk.risk.presets")

PRESETS_RESOURCE: Final[str] = "resources/presets.toml"
"""The presets file inside the ``propdesk.risk`` package."""

_DESCRIPTIVE: Final[frozenset[str]] = frozenset({"firm", "platform", "account_type", "title"})
_PRESET_KEYS: Final[frozenset[str]] = _DESCRIPTIVE | {
    "start_balance",
    "account_profit_target",
    "winning_day_usd",
    "rules",
    "sources",
}
_USER_KEYS: Final[frozenset[str]] = frozenset({"preset", "account", "defaults", "rules"})
_ACCOUNT_KEYS: Final[frozenset[str]] = frozenset({"start_balance", "mll_floor", "exit_fees"})
_STATE_ONLY: Final[dict[str, frozenset[str]]] = {"R1": frozenset({"mode", "lock_at_start"})}
"""Keys of a rule table that configure the account state rather than the rule."""
_SHARED_R5: Final[tuple[str, ...]] = ("micro_ratio", "weights", "count_working_orders", "on_oversize")
_MLL_ORDER: Final[tuple[str, ...]] = tuple(m.value for m in MllMode)
"""MLL modes from the loosest to the tightest (the floor trails more in the later ones)."""

# How a personal value of a firm rule's parameter compares with the firm's (risk-rules.md section 4.3):
#   "max": personal <= firm; "min": personal >= firm; "false": only false may replace true; "mll_mode": later in
#   _MLL_ORDER; "weights": per-root weight >= firm's; "ladder": lots <= firm's at every profit; "same": unchanged.
_TIGHTEN: Final[dict[tuple[str, str], str]] = {
    ("R1", "amount"): "max",
    ("R1", "mode"): "mll_mode",
    ("R1", "lock_at_start"): "false",
    ("R2", "amount"): "max",
    ("R5", "limit"): "max",
    ("R5", "micro_ratio"): "max",
    ("R5", "weights"): "weights",
    ("R6", "ladder"): "ladder",
    ("R6", "micro_ratio"): "max",
    ("R6", "weights"): "weights",
    ("R11", "reference_product"): "same",
    ("R15", "block"): "max",
    ("R15", "warn"): "max",
    ("R16", "max_best_day_pct"): "max",
}


class SourceStatus(StrEnum):
    """How sure a preset value is (risk-rules.md markers)."""

    OFFICIAL = "OFFICIAL"
    THIRD_PARTY = "3P"
    UNVERIFIED = "UNVERIFIED"
    CONFLICT = "CONFLICT"
    UNKNOWN = "UNKNOWN"

    @property
    def warns(self) -> bool:
        """True for the statuses that log a warning at load (UNVERIFIED, CONFLICT, UNKNOWN)."""
        return self in (SourceStatus.UNVERIFIED, SourceStatus.CONFLICT, SourceStatus.UNKNOWN)


@dataclass(frozen=True, slots=True)
class Source:
    """Where a preset value comes from: ``urls``, ``status``, the date a human last ``checked`` it, a ``note``."""

    urls: tuple[str, ...]
    status: SourceStatus
    checked: date
    note: str = ""


@dataclass(frozen=True, slots=True)
class RuleConfig:
    """One configured rule: registry ``name``, validated-later ``params``, ``firm`` flag and ``origin`` (file and
    table, for error messages)."""

    name: str
    rule_id: str
    params: Mapping[str, Any]
    firm: bool
    origin: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskConfig:
    """A validated risk configuration for one account.

    Attributes:
        preset: the preset name (``None``: personal rules only).
        firm, platform, account_type, title: from the preset (empty without one).
        start_balance: USD; the MLL floor locks here.
        mll: the account state's MLL configuration (``None`` without an MLL rule).
        mll_floor: the floor the trader entered (seeds :class:`~propdesk.risk.state.AccountState`), USD.
        micro_ratio, weights: mini-equivalent weighting of R5 (``None`` / empty without R5).
        exit_fees: estimated exit fee per contract by root, USD.
        account_profit_target, winning_day_usd: informational preset values, USD.
        rules: every configured rule, firm ones first.
        sources: the preset's sources by field path.
        warnings: the load warnings (also logged).
    """

    preset: str | None
    firm: str = ""
    platform: str = ""
    account_type: str = ""
    title: str = ""
    start_balance: Money
    mll: MllConfig | None
    mll_floor: Money | None = None
    micro_ratio: int | None = None
    weights: Mapping[str, Decimal] = field(default_factory=dict)
    exit_fees: Mapping[str, Money] = field(default_factory=dict)
    account_profit_target: Money | None = None
    winning_day_usd: Money | None = None
    rules: tuple[RuleConfig, ...] = ()
    sources: Mapping[str, Source] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def rule(self, name_or_id: str) -> RuleConfig | None:
        """The configured rule with this registry name or id (``"max_position"``, ``"R5"``), or ``None``.

        Raises:
            ConfigError: unknown rule name.
        """
        rid = rule_class(name_or_id).rule_id
        return next((r for r in self.rules if r.rule_id == rid), None)

    def build_rules(self, *, schedule: FlatSchedule | None = None, hedge_book: HedgeBook | None = None) -> RuleSet:
        """Build every configured rule into a :class:`~propdesk.risk.rules.base.RuleSet`.

        Args:
            schedule: the calendar's flat-time schedule (required by ``flat_time``, R11).
            hedge_book: the trader's other accounts (required by ``no_hedging``, R14).

        Raises:
            ConfigError: a rule that cannot be built (the message names the rule and where it was configured).
        """
        built: list[Rule] = []
        for rc in self.rules:
            try:
                built.append(build_rule(rc.name, rc.params, rc.firm, schedule=schedule, hedge_book=hedge_book))
            except ConfigError as exc:
                raise ConfigError(f"{rc.origin}: {exc}") from None
        return RuleSet(built)

    def make_state(
        self,
        account_id: AccountId,
        *,
        positions: PositionManager,
        working_orders: Callable[[], Sequence[Order]],
        calendar: TradingDayCalendar,
        clock: Callable[[], int],
        new_account: bool = False,
        balance: Money | None = None,
        bracket_stop_ticks: Callable[[ClientOrderId], int | None] | None = None,
    ) -> AccountState:
        """An :class:`~propdesk.risk.state.AccountState` with this configuration's start balance, MLL, weights and
        exit fees, seeded with :attr:`mll_floor` when the trader entered one.

        Raises:
            ConfigError: as :class:`AccountState` and :meth:`AccountState.seed`.
        """
        state = AccountState(
            account_id,
            start_balance=self.start_balance,
            positions=positions,
            working_orders=working_orders,
            calendar=calendar,
            clock=clock,
            mll=self.mll,
            new_account=new_account,
            balance=balance,
            weights=self.weights,
            micro_ratio=self.micro_ratio,
            bracket_stop_ticks=bracket_stop_ticks,
            exit_fees=self.exit_fees,
        )
        if self.mll_floor is not None:
            state.seed(mll_floor=self.mll_floor)
        return state


# --------------------------------------------------------------------------------------------------------- loading


def _read_toml(path: Path | None, what: str) -> dict[str, Any]:
    where = f"{what} {path or PRESETS_RESOURCE}"
    if path is None:
        text = resources.files("propdesk.risk").joinpath(PRESETS_RESOURCE).read_text(encoding="utf-8")
    else:
        text = read_utf8(path, where)
    return parse_toml(text, where)


def load_presets(path: Path | None = None) -> dict[str, dict[str, Any]]:
    """The raw preset tables by name (``[presets.<name>]``), in file order.

    Args:
        path: a presets file (default: the shipped ``propdesk/risk/resources/presets.toml``).

    Raises:
        ConfigError: unreadable file, invalid TOML, or no ``[presets]`` table.
    """
    return _presets_of(_read_toml(path, "presets"), str(path or PRESETS_RESOURCE))


def _presets_of(data: Mapping[str, Any], where: str) -> dict[str, dict[str, Any]]:
    presets = data.get("presets")
    if not isinstance(presets, dict) or not presets:
        raise ConfigError(f"presets {where}: no [presets] table")
    bad = [str(k) for k, v in presets.items() if not isinstance(v, dict)]
    if bad:
        raise ConfigError(f"presets {where}: [presets.{bad[0]}] must be a table")
    return {str(k): v for k, v in presets.items()}


def preset_names(path: Path | None = None) -> list[str]:
    """The preset names of the presets file, in file order.

    Raises:
        ConfigError: as :func:`load_presets`.
    """
    return list(load_presets(path))


def preset_sources(name: str, path: Path | None = None) -> dict[str, Source]:
    """The sources of preset ``name`` by field path (``"rules.mll.amount"``), validated as at load (no warning is
    logged; :func:`load_risk_config` logs them).

    Raises:
        ConfigError: unknown preset, or as :func:`load_presets` and the source checks of :func:`load_risk_config`.
    """
    presets = load_presets(path)
    if name not in presets:
        raise ConfigError(f"unknown risk preset {name!r}; known: {', '.join(presets)}")
    return _preset_sources(name, presets[name], f"presets {path or PRESETS_RESOURCE}")


def preset_defaults(path: Path | None = None) -> dict[str, Any]:
    """The presets file's ``[defaults]``: propdesk's own settings applied to every rule with the field (not firm
    numbers, so without sources); a sub-table applies to one rule.

    Raises:
        ConfigError: as :func:`load_presets`, or ``[defaults]`` not a table.
    """
    return dict(_defaults_of(_read_toml(path, "presets"), f"presets {path or PRESETS_RESOURCE}"))


def _defaults_of(data: Mapping[str, Any], where: str) -> dict[str, Any]:
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise ConfigError(f"{where}: [defaults] must be a table")
    return defaults


def _leaves(table: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted paths of every value under ``table`` (a list of tables, like a ladder, is one value)."""
    out: list[str] = []
    for key, value in table.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.extend(_leaves(value, path + "."))
        else:
            out.append(path)
    return out


def _parse_source(raw: object, where: str) -> Source:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: a source must be a table {{url, status, checked}}")
    unknown = set(raw) - {"url", "status", "checked", "note"}
    if unknown:
        raise ConfigError(f"{where}: unknown source key(s) {', '.join(sorted(unknown))}")
    url = raw.get("url")
    urls = (url,) if isinstance(url, str) else tuple(url) if isinstance(url, list) else ()
    if not urls or not all(isinstance(u, str) and u.strip() for u in urls):
        raise ConfigError(f"{where}: source url must be a non-empty string or list of strings")
    try:
        status = SourceStatus(str(raw.get("status")))
    except ValueError:
        allowed = ", ".join(s.value for s in SourceStatus)
        raise ConfigError(f"{where}: source status {raw.get('status')!r} is not one of {allowed}") from None
    checked = raw.get("checked")
    if not isinstance(checked, date):
        raise ConfigError(f"{where}: source checked must be a date (YYYY-MM-DD), got {checked!r}")
    note = raw.get("note", "")
    return Source(tuple(str(u) for u in urls), status, checked, str(note))


def _preset_sources(name: str, preset: Mapping[str, Any], where: str) -> dict[str, Source]:
    raw = preset.get("sources", {})
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: preset {name}: [presets.{name}.sources] must be a table")
    sources = {str(k): _parse_source(v, f"{where}: preset {name}: source {k!r}") for k, v in raw.items()}
    body = {k: v for k, v in preset.items() if k != "sources"}
    unknown = set(body) - _PRESET_KEYS
    if unknown:
        raise ConfigError(f"{where}: preset {name}: unknown field(s) {', '.join(sorted(unknown))}")
    for path in _leaves(body):
        if path in _DESCRIPTIVE:
            continue
        if path not in sources:
            raise ConfigError(f"{where}: preset {name}: field {path} has no source in [presets.{name}.sources]")
    return sources


def _money(value: object, where: str) -> Money:
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise ConfigError(f"{where}: expected a USD amount, got {value!r}")
    try:
        return Money.of(str(value) if isinstance(value, float) else value)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _dec(value: object, where: str) -> Decimal:
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ConfigError(f"{where}: expected a number, got {value!r}") from None


def _ladder_lots(ladder: Sequence[Mapping[str, Any]], profit: Decimal, where: str) -> int:
    """R6's limit at an end-of-day ``profit``: the largest ``max_lots`` whose ``eod_profit_gt`` is below it, else
    the smallest rung (as :class:`~propdesk.risk.rules.position_limits.ScalingPlanRule`)."""
    best: int | None = None
    smallest: int | None = None
    for step in ladder:
        lots = int(step["max_lots"])
        smallest = lots if smallest is None else min(smallest, lots)
        gt = step.get("eod_profit_gt")
        if gt is None or _dec(gt, where) < profit:
            best = lots if best is None else max(best, lots)
    if best is not None:
        return best
    if smallest is None:
        raise ConfigError(f"{where}: empty ladder")
    return smallest


def _check_tighter(kind: str, key: str, firm: object, mine: object, *, where: str, preset: str) -> None:
    loose = f"{where} {key} = {mine!r} is looser than the preset {preset}'s {firm!r} (personal rules may only tighten)"
    if kind == "max":
        if _dec(mine, f"{where} {key}") > _dec(firm, f"{where} {key}"):
            raise ConfigError(loose)
    elif kind == "min":
        if _dec(mine, f"{where} {key}") < _dec(firm, f"{where} {key}"):
            raise ConfigError(loose)
    elif kind == "false":
        if mine is not False and firm is False:
            raise ConfigError(loose)
        if not isinstance(mine, bool):
            raise ConfigError(f"{where} {key}: expected true or false, got {mine!r}")
    elif kind == "mll_mode":
        if mine not in _MLL_ORDER:
            raise ConfigError(f"{where} {key}: {mine!r} is not one of {', '.join(_MLL_ORDER)}")
        if _MLL_ORDER.index(str(mine)) < _MLL_ORDER.index(str(firm)):
            raise ConfigError(loose)
    elif kind == "weights":
        if not isinstance(mine, dict) or not isinstance(firm, dict):
            raise ConfigError(f"{where} {key}: expected a table root -> weight")
        for root, w in firm.items():
            if root in mine and _dec(mine[root], f"{where} {key}.{root}") < _dec(w, f"{where} {key}.{root}"):
                raise ConfigError(f"{where} {key}.{root} = {mine[root]!r} is looser than the preset {preset}'s {w!r}")
    elif kind == "ladder":
        if not isinstance(mine, list) or not mine or not all(isinstance(s, dict) and "max_lots" in s for s in mine):
            raise ConfigError(f"{where} {key}: expected a list of {{eod_profit_gt, max_lots}} tables")
        assert isinstance(firm, list)
        points = {Decimal(-(10**12))}
        for step in (*firm, *mine):
            gt = step.get("eod_profit_gt")
            if gt is not None:
                d = _dec(gt, f"{where} {key}")
                points.update({d, d + Decimal("0.01")})
        for p in sorted(points):
            if _ladder_lots(mine, p, where) > _ladder_lots(firm, p, where):
                raise ConfigError(
                    f"{where} {key}: allows more lots than the preset {preset}'s ladder at EOD profit {p}"
                )
    elif kind == "same" and mine != firm:
        raise ConfigError(f"{where} {key} = {mine!r} cannot differ from the preset {preset}'s {firm!r}")


def _micro_weights_check(firm_params: Mapping[str, Any], mine: Mapping[str, Any], where: str, preset: str) -> None:
    """A personal per-root weight below the firm's default weight (1 / micro_ratio for micros, 1 for minis)."""
    weights = mine.get("weights")
    if not isinstance(weights, dict):
        return
    ratio = _dec(firm_params.get("micro_ratio", 1), f"{where} micro_ratio")
    firm_w = firm_params.get("weights", {}) if isinstance(firm_params.get("weights"), dict) else {}
    for root, w in weights.items():
        if root in firm_w:
            continue
        try:
            base = Decimal(1) / ratio if spec(root).is_micro else Decimal(1)
        except ContractError as exc:
            raise ConfigError(f"{where} weights.{root}: {exc}") from None
        if _dec(w, f"{where} weights.{root}") < base:
            raise ConfigError(f"{where} weights.{root} = {w!r} is looser than the preset {preset}'s weight {base}")


def load_risk_config(preset: str | None, config_path: Path | None, *, presets_path: Path | None = None) -> RiskConfig:
    """Load a preset and the trader's risk configuration file into a validated :class:`RiskConfig`.

    Args:
        preset: a preset name (``topstep-50k-combine``, ...); ``None`` uses the file's ``preset`` key, or none.
        config_path: the trader's TOML file (``--risk-config``), or ``None``.
        presets_path: a presets file instead of the shipped one (tests, a firm not shipped).

    Raises:
        ConfigError: unknown preset; a preset field without a source; a preset given twice differently; an unknown
            table or key; a bad value; a personal value looser than the firm's; a rule whose parameters do not
            validate; no start balance. Messages name the file, the table and the key.
    """
    shipped = _read_toml(presets_path, "presets")
    ppath = str(presets_path or PRESETS_RESOURCE)
    presets = _presets_of(shipped, ppath)
    defaults: dict[str, Any] = dict(_defaults_of(shipped, f"presets {ppath}"))
    user: dict[str, Any] = {} if config_path is None else _read_toml(config_path, "risk config")
    upath = str(config_path)
    unknown = set(user) - _USER_KEYS
    if unknown:
        raise ConfigError(f"risk config {upath}: unknown key(s) {', '.join(sorted(unknown))}")
    file_preset = user.get("preset")
    if file_preset is not None and not isinstance(file_preset, str):
        raise ConfigError(f"risk config {upath}: preset must be a string")
    if preset is not None and file_preset is not None and preset != file_preset:
        raise ConfigError(f"risk config {upath}: preset {file_preset!r} differs from the preset given ({preset!r})")
    name = preset or file_preset

    warnings: list[str] = []
    sources: dict[str, Source] = {}
    table: dict[str, Any] = {}
    if name is not None:
        if name not in presets:
            raise ConfigError(f"unknown risk preset {name!r}; known: {', '.join(presets)}")
        table = presets[name]
        sources = _preset_sources(name, table, f"presets {ppath}")
        for path, src in sources.items():
            if src.status.warns:
                msg = f"preset {name}: {path} is {src.status.value}" + (f" ({src.note})" if src.note else "")
                warnings.append(msg)
                log.warning("%s", msg)

    # defaults: the shipped ones, then the trader's
    udefaults = _defaults_of(user, f"risk config {upath}")
    for key, value in udefaults.items():
        if isinstance(value, dict) and isinstance(defaults.get(key), dict):
            defaults[key] = {**defaults[key], **value}
        else:
            defaults[key] = value

    # firm rules from the preset
    firm_rules: dict[str, tuple[str, dict[str, Any], str]] = {}  # rule_id -> (name, params, origin)
    prules = table.get("rules", {})
    if not isinstance(prules, dict):
        raise ConfigError(f"presets {ppath}: preset {name}: rules must be a table")
    for rname, params in prules.items():
        where = f"presets {ppath}: [presets.{name}.rules.{rname}]"
        if not isinstance(params, dict):
            raise ConfigError(f"{where}: must be a table")
        rid = _rule_id(rname, where)
        firm_rules[rid] = (rname, dict(params), where)

    # the trader's rules: overrides of firm rules (tighten only) or personal rules
    personal: dict[str, tuple[str, dict[str, Any], str]] = {}
    urules = user.get("rules", {})
    if not isinstance(urules, dict):
        raise ConfigError(f"risk config {upath}: rules must be a table of [rules.<name>] tables")
    for rname, params in urules.items():
        where = f"risk config {upath}: [rules.{rname}]"
        if not isinstance(params, dict):
            raise ConfigError(f"{where}: must be a table")
        rid = _rule_id(rname, where)
        if rid in firm_rules:
            fname, fparams, _fw = firm_rules[rid]
            for key, value in params.items():
                if key in fparams:
                    kind = _TIGHTEN.get((rid, key))
                    if kind is None:
                        raise ConfigError(f"{where} {key}: the preset {name}'s firm value cannot be changed")
                    _check_tighter(kind, key, fparams[key], value, where=where, preset=str(name))
            if rid in ("R5", "R6"):
                _micro_weights_check(fparams, params, where, str(name))
            firm_rules[rid] = (fname, {**fparams, **params}, f"{_fw} + {where}")
        elif rid in personal:
            raise ConfigError(f"{where}: rule {rid} is configured twice")
        else:
            personal[rid] = (rname, dict(params), where)
    if "R11" not in firm_rules and "R11" not in personal:
        firm_rules["R11"] = ("flat_time", {}, "R11 flat time (always on: a firm requirement, risk-rules.md R11)")

    # scaling plan shares R5's weighting
    if "R6" in firm_rules and "R5" in firm_rules:
        n6, p6, w6 = firm_rules["R6"]
        p5 = firm_rules["R5"][1]
        firm_rules["R6"] = (n6, {**{k: p5[k] for k in _SHARED_R5 if k in p5}, **p6}, w6)

    # account
    account = user.get("account", {})
    if not isinstance(account, dict):
        raise ConfigError(f"risk config {upath}: [account] must be a table")
    bad = set(account) - _ACCOUNT_KEYS
    if bad:
        raise ConfigError(f"risk config {upath}: [account] unknown key(s) {', '.join(sorted(bad))}")
    if "start_balance" in account:
        start = _money(account["start_balance"], f"risk config {upath}: [account] start_balance")
    elif "start_balance" in table:
        start = _money(table["start_balance"], f"presets {ppath}: preset {name} start_balance")
    else:
        raise ConfigError(f"risk config {upath}: [account] start_balance is required without a preset")
    mll_floor = None
    if "mll_floor" in account:
        mll_floor = _money(account["mll_floor"], f"risk config {upath}: [account] mll_floor")
    exit_fees: dict[str, Money] = {}
    raw_fees = account.get("exit_fees", {})
    if not isinstance(raw_fees, dict):
        raise ConfigError(f"risk config {upath}: [account] exit_fees must be a table root -> USD")
    for root, fee in raw_fees.items():
        exit_fees[str(root)] = _money(fee, f"risk config {upath}: [account] exit_fees.{root}")
        if exit_fees[str(root)].cents < 0:
            raise ConfigError(f"risk config {upath}: [account] exit_fees.{root} must not be negative")

    # final parameters: defaults, state-only keys out, R4 capped by R16 when asked
    configs: list[RuleConfig] = []
    mll: MllConfig | None = None
    for firm, group in ((True, firm_rules), (False, personal)):
        for rid, (rname, params, where) in group.items():
            cls = rule_class(rname)
            fields = cls.params_cls.model_fields
            merged = dict(params)
            for key, value in defaults.items():
                if not isinstance(value, dict) and key in fields and key not in merged:
                    merged[key] = value
            specific = defaults.get(rname) or defaults.get(rid)
            if isinstance(specific, dict):
                for key, value in specific.items():
                    if key in fields and key not in merged:
                        merged[key] = value
            if rid == "R1":
                mll = _mll_config(merged, where)
            for key in _STATE_ONLY.get(rid, frozenset()):
                merged.pop(key, None)
            configs.append(RuleConfig(rname, rid, merged, firm, where))
    configs = _cap_profit_target(configs)
    for rc in configs:
        try:
            rule_class(rc.name).params_cls.model_validate(dict(rc.params))
        except Exception as exc:  # pydantic ValidationError: name the file, table and every bad key
            errs = getattr(exc, "errors", None)
            detail = (
                "; ".join(f"{'.'.join(str(x) for x in e['loc']) or '(all)'}: {e['msg']}" for e in errs())
                if callable(errs)
                else str(exc)
            )
            raise ConfigError(f"{rc.origin}: {detail}") from None

    r5 = next((rc for rc in configs if rc.rule_id in ("R5", "R6")), None)
    micro_ratio = None
    weights: dict[str, Decimal] = {}
    if r5 is not None:
        if "micro_ratio" in r5.params:
            micro_ratio = int(r5.params["micro_ratio"])
        raw_w = r5.params.get("weights", {})
        if isinstance(raw_w, dict):
            weights = {str(k): _dec(v, f"{r5.origin} weights.{k}") for k, v in raw_w.items()}
    return RiskConfig(
        preset=name,
        firm=str(table.get("firm", "")),
        platform=str(table.get("platform", "")),
        account_type=str(table.get("account_type", "")),
        title=str(table.get("title", "")),
        start_balance=start,
        mll=mll,
        mll_floor=mll_floor,
        micro_ratio=micro_ratio,
        weights=MappingProxyType(weights),
        exit_fees=MappingProxyType(exit_fees),
        account_profit_target=(
            _money(table["account_profit_target"], f"preset {name}") if "account_profit_target" in table else None
        ),
        winning_day_usd=_money(table["winning_day_usd"], f"preset {name}") if "winning_day_usd" in table else None,
        rules=tuple(configs),
        sources=MappingProxyType(sources),
        warnings=tuple(warnings),
    )


def _rule_id(name: str, where: str) -> str:
    try:
        return rule_class(name).rule_id
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _mll_config(params: Mapping[str, Any], where: str) -> MllConfig:
    if "amount" not in params:
        raise ConfigError(f"{where}: amount is required")
    amount = _money(params["amount"], f"{where} amount")
    mode_raw = params.get("mode", MllMode.EOD.value)
    try:
        mode = MllMode(mode_raw)
    except ValueError:
        raise ConfigError(f"{where} mode: {mode_raw!r} is not one of {', '.join(_MLL_ORDER)}") from None
    lock = params.get("lock_at_start", True)
    if not isinstance(lock, bool):
        raise ConfigError(f"{where} lock_at_start: expected true or false, got {lock!r}")
    return MllConfig(amount, mode, lock)


def _cap_profit_target(configs: list[RuleConfig]) -> list[RuleConfig]:
    """R16 ``cap_r4``: give the R4 rule R16's ``max_best_day_pct`` unless it sets its own (risk-rules.md R16)."""
    r16 = next((rc for rc in configs if rc.rule_id == "R16"), None)
    if r16 is None or not r16.params.get("cap_r4"):
        return configs
    out: list[RuleConfig] = []
    for one in configs:
        rc = one
        if rc.rule_id == "R4" and "max_best_day_pct" not in rc.params:
            rc = RuleConfig(
                rc.name,
                rc.rule_id,
                {**rc.params, "max_best_day_pct": r16.params["max_best_day_pct"]},
                rc.firm,
                rc.origin,
            )
        out.append(rc)
    return out
