"""``propdesk presets``: the firm account-type presets shipped in ``propdesk/risk/resources/presets.toml``.

* ``list [--json]``: each preset with its title, firm, account type, start balance, rules, and how many of its
  values are not confirmed (status UNVERIFIED, CONFLICT or UNKNOWN: they warn at every load).
* ``show NAME [--json]``: every value of the preset (account fields and each rule's parameters) with its unit and its
  source (status, URLs, date checked, note), the documented absences (a source without a value, e.g. no firm daily
  loss limit), and propdesk's own ``[defaults]`` that apply to the rules.

The values, sources and statuses are the presets file's (:mod:`propdesk.risk.presets`); the units follow the rules'
parameter models (:mod:`propdesk.risk.rules`): a USD amount is a ``Money`` field.
"""

from __future__ import annotations

import inspect
import json
from typing import Annotated, Any, Final, get_args

import typer

from propdesk.cli.strategies import ErrorWrapper, JsonOption

_ACCOUNT_UNITS: Final[dict[str, str]] = {
    "start_balance": "USD",
    "account_profit_target": "USD",
    "winning_day_usd": "USD",
}
"""Units of a preset's account fields (the presets file's layout comment)."""

_PARAM_UNITS: Final[dict[str, str]] = {
    "limit": "mini-equivalent contracts",
    "micro_ratio": "micros per mini",
    "weights": "mini-equivalents per contract, by root",
    "block": "contracts per day",
    "warn": "contracts per day",
    "max_best_day_pct": "fraction of total profit",
    "warn_pct": "% of the limit used",
    "default_risk_ticks": "ticks",
    "ladder": "max_lots contracts once the EOD profit > eod_profit_gt USD",
    "reference_product": "root",
}
"""Units of rule parameters that are not USD amounts (from the rules' parameter docstrings)."""

_DESCRIPTIVE: Final[tuple[str, ...]] = ("firm", "platform", "account_type", "title")


def _unit(rule: str | None, key: str) -> str:
    if rule is None:
        return _ACCOUNT_UNITS.get(key, "")
    from propdesk.model.price import Money
    from propdesk.risk.rules.registry import rule_class

    field = rule_class(rule).params_cls.model_fields.get(key)
    if field is not None and _holds(field.annotation, Money):
        return "USD"
    return _PARAM_UNITS.get(key, "")


def _holds(annotation: object, cls: type) -> bool:
    """True when ``annotation`` is ``cls``, or an ``Annotated`` / union (``X | None``) of it."""
    return annotation is cls or any(_holds(arg, cls) for arg in get_args(annotation))


def _source_dict(src: Any) -> dict[str, Any]:
    if src is None:
        return {"status": "NO SOURCE", "urls": [], "checked": None, "note": ""}
    return {"status": src.status.value, "urls": list(src.urls), "checked": src.checked.isoformat(), "note": src.note}


def preset_detail(name: str) -> dict[str, Any]:
    """Everything ``presets show NAME`` prints, as a JSON-ready dict.

    Shape: ``{"name", "title", "firm", "platform", "account_type", "account": [row], "rules": [{"name", "id",
    "description", "params": [row]}], "absent": [{"path", source...}], "defaults": {...}, "unconfirmed": int}`` where a
    row is ``{"key", "path", "value", "unit", "status", "urls", "checked", "note"}``.

    Raises:
        ConfigError: unknown preset or a broken presets file.
    """
    from propdesk.risk.presets import load_presets, preset_defaults, preset_sources
    from propdesk.risk.rules.registry import rule_class

    sources = preset_sources(name)  # checks the name and every source first
    table = load_presets()[name]
    used: set[str] = set()

    def row(rule: str | None, key: str, path: str, value: object) -> dict[str, Any]:
        used.add(path)
        return {"key": key, "path": path, "value": value, "unit": _unit(rule, key), **_source_dict(sources.get(path))}

    account = [
        row(None, key, key, value) for key, value in table.items() if key not in (*_DESCRIPTIVE, "rules", "sources")
    ]
    rules = []
    for rname, params in table.get("rules", {}).items():
        cls = rule_class(rname)
        doc = (inspect.getdoc(cls) or "").replace("``", "").strip().splitlines()
        rules.append(
            {
                "name": rname,
                "id": cls.rule_id,
                "description": doc[0] if doc else "",
                "params": [row(rname, key, f"rules.{rname}.{key}", value) for key, value in params.items()],
            }
        )
    absent = [{"path": path, **_source_dict(src)} for path, src in sources.items() if path not in used]
    unconfirmed = sum(1 for src in sources.values() if src.status.warns)
    return {
        "name": name,
        **{key: str(table.get(key, "")) for key in _DESCRIPTIVE},
        "account": account,
        "rules": rules,
        "absent": absent,
        "defaults": preset_defaults(),
        "unconfirmed": unconfirmed,
    }


def _value_text(value: object, unit: str) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return f"{text} {unit}" if unit and unit != "root" and not unit.startswith("max_lots") else text


def _source_text(r: dict[str, Any]) -> str:
    urls = ", ".join(r["urls"])
    extra = "; ".join(x for x in (f"checked {r['checked']}" if r["checked"] else "", r["note"]) if x)
    return urls + (f" ({extra})" if extra else "")


def presets_list(as_json: JsonOption = False) -> None:
    """List the risk presets (--risk NAME): title, account type, start balance, rules, unconfirmed values."""
    entries = []
    from propdesk.risk.presets import preset_names

    for name in preset_names():
        d = preset_detail(name)
        start = next((r["value"] for r in d["account"] if r["key"] == "start_balance"), None)
        entries.append(
            {
                "name": name,
                "title": d["title"],
                "firm": d["firm"],
                "platform": d["platform"],
                "account_type": d["account_type"],
                "start_balance_usd": start,
                "rules": [f"{r['name']} ({r['id']})" for r in d["rules"]],
                "unconfirmed": d["unconfirmed"],
            }
        )
    if as_json:
        typer.echo(json.dumps(entries, default=str))
        return
    width = max(len(e["name"]) for e in entries)
    for e in entries:
        typer.echo(
            f"{e['name']:<{width}}  {e['title']}; start balance {e['start_balance_usd']} USD; "
            f"{e['unconfirmed']} unconfirmed value(s)"
        )
        typer.echo(f"{'':<{width}}  rules: {', '.join(e['rules'])}")
    typer.echo("")
    typer.echo(
        "unconfirmed: values whose source is UNVERIFIED, CONFLICT or UNKNOWN (they warn at every load); "
        "propdesk presets show NAME lists every value with its source."
    )


def presets_show(
    name: Annotated[str, typer.Argument(help="A preset name, e.g. topstep-50k-combine (see presets list).")],
    as_json: JsonOption = False,
) -> None:
    """Show a risk preset: every rule with its numbers, units, source and status, the documented absences, and
    propdesk's defaults applied to the rules."""
    d = preset_detail(name)
    if as_json:
        typer.echo(json.dumps(d, default=str))
        return
    typer.echo(f"{d['name']}: {d['title']} (firm {d['firm']}, platform {d['platform']}, {d['account_type']})")
    rows: list[tuple[str, dict[str, Any]]] = [("account", r) for r in d["account"]]
    for rule in d["rules"]:
        rows += [(f"rule {rule['name']} ({rule['id']}): {rule['description']}", r) for r in rule["params"]]
    kw = max((len(r["key"]) for _, r in rows), default=0)
    section = None
    for title, r in rows:
        if title != section:
            section = title
            typer.echo(f"  {title}")
        typer.echo(f"    {r['key']:<{kw}}  {_value_text(r['value'], r['unit'])}  [{r['status']}]")
        if r["unit"].startswith("max_lots"):
            typer.echo(f"    {'':<{kw}}  ({r['unit']})")
        typer.echo(f"    {'':<{kw}}  {_source_text(r)}")
    if d["absent"]:
        typer.echo("  not set by the preset (documented absence)")
        for a in d["absent"]:
            typer.echo(f"    {a['path']}  [{a['status']}]")
            typer.echo(f"    {'':<{len(a['path'])}}  {_source_text(a)}")
    typer.echo("  propdesk defaults (not firm numbers; a rule's own value wins)")
    for key, value in d["defaults"].items():
        typer.echo(f"    {key} = {json.dumps(value, default=str)}")
    typer.echo(
        f"{d['unconfirmed']} value(s) UNVERIFIED, CONFLICT or UNKNOWN: re-check them before trading an account "
        "(risk-rules.md section 9)."
    )


def register(app: typer.Typer, clear_errors: ErrorWrapper) -> None:
    """Add the ``presets`` group to ``app``; every command goes through ``clear_errors``."""
    group = typer.Typer(
        help="The firm account-type risk presets (--risk NAME): list them, show one's rules and sources.",
        no_args_is_help=True,
        rich_markup_mode=None,
    )
    group.command("list")(clear_errors(presets_list))
    group.command("show")(clear_errors(presets_show))
    app.add_typer(group, name="presets")
