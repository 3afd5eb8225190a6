"""``propdesk strategies``: list the strategies ``--strategy`` accepts, show one's parameter schema, write a new one.

* ``list [--json]``: every bundled and installed strategy (entry points of ``propdesk.strategies``) with its source,
  one-line description and parameters (type, default, description with its unit, live-changeable or not).
* ``show SPEC [--json]``: one strategy (any spec of :mod:`propdesk.strategies.registry`, e.g. ``my.py:MyStrategy``)
  with its full parameter JSON Schema (:func:`propdesk.strategies.base.config_schema`).
* ``new NAME [--dir DIR]``: a documented skeleton ``NAME.py`` and its test ``test_NAME.py``
  (:mod:`propdesk.strategies.skeleton`); never overwrites.

:func:`register` adds the group to the main Typer app with the app's error handling (a
:class:`~propdesk.core.errors.PropdeskError` is one line on stderr, exit code 2).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from propdesk.strategies.registry import StrategyInfo

ErrorWrapper = Callable[[Callable[..., None]], Callable[..., None]]
"""The app's decorator that turns a PropdeskError into one line on stderr and exit code 2."""

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]


def parameters(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The parameters of a config JSON Schema (:func:`~propdesk.strategies.base.config_schema`), in field order.

    Each is ``{"name", "type", "default", "description", "live", "required"}``; ``type`` is the schema's type in
    words (``integer >= 1``, ``vwap | ticks``, ``string (time)``), ``default`` as in the schema (``None``: none).
    """
    required = set(schema.get("required", ()))
    out: list[dict[str, Any]] = []
    for name, prop in schema.get("properties", {}).items():
        out.append(
            {
                "name": name,
                "type": _type_words(prop),
                "default": prop.get("default"),
                "description": prop.get("description", ""),
                "live": bool(prop.get("live", False)),
                "required": name in required,
            }
        )
    return out


def _type_words(prop: dict[str, Any]) -> str:
    if "enum" in prop:
        return " | ".join(str(v) for v in prop["enum"])
    if "anyOf" in prop:
        return " or ".join(_type_words(p) for p in prop["anyOf"])
    words = str(prop.get("type", "any"))
    if "format" in prop:
        words += f" ({prop['format']})"
    bounds = [
        f"{op} {prop[key]}"
        for key, op in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="), ("exclusiveMaximum", "<"))
        if key in prop
    ]
    return f"{words} {', '.join(bounds)}" if bounds else words


def _info_dict(info: StrategyInfo, *, schema: bool) -> dict[str, Any]:
    from propdesk.strategies.base import config_schema

    full = config_schema(info.cls.config_cls)
    out: dict[str, Any] = {
        "spec": info.spec,
        "name": info.cls.name,
        "class": f"{info.cls.__module__}:{info.cls.__qualname__}",
        "source": info.source,
        "origin": info.origin,
        "description": info.description,
        "parameters": parameters(full),
    }
    if schema:
        out["schema"] = full
    return out


def _text_lines(entry: dict[str, Any]) -> list[str]:
    """One strategy as text: a header, its description and a table of its parameters."""
    head = f"{entry['spec']}  [{entry['source']}: {entry['origin']}]"
    if entry["name"] != entry["spec"]:
        head += f"  name {entry['name']}"
    lines = [head]
    if entry["description"]:
        lines.append(f"  {entry['description']}")
    params = entry["parameters"]
    rows = [("parameter", "type", "default", "live", "description")] + [
        (
            p["name"],
            p["type"],
            "(required)" if p["required"] else json.dumps(p["default"]),
            "live" if p["live"] else "-",
            p["description"],
        )
        for p in params
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        lines.append("    " + "  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4])
    return lines


def strategies_list(as_json: JsonOption = False) -> None:
    """List the strategies --strategy accepts by name (bundled, and installed through the propdesk.strategies entry
    point group) with their parameters: type, default, live-changeable, description. Any class is also accepted as
    module.path:ClassName or path/to/file.py:ClassName."""
    from propdesk.strategies.registry import available_strategies

    broken: list[str] = []
    entries = [_info_dict(info, schema=as_json) for info in available_strategies(broken)]
    for message in broken:  # an installed strategy that cannot be loaded does not hide the others
        typer.echo(f"warning: {message}", err=True)
    if as_json:
        typer.echo(json.dumps(entries, default=str))
        return
    for i, entry in enumerate(entries):
        if i:
            typer.echo("")
        typer.echo("\n".join(_text_lines(entry)))
    typer.echo("")
    typer.echo(
        "live: the parameter may be changed while the strategy runs. Also accepted: --strategy module.path:ClassName"
        " or --strategy path/to/file.py:ClassName; propdesk strategies show SPEC prints the JSON Schema."
    )


def strategies_show(
    spec: Annotated[
        str, typer.Argument(help="A name (sma_cross), module.path:ClassName or path/to/file.py:ClassName.")
    ],
    as_json: JsonOption = False,
) -> None:
    """Show one strategy: where it comes from, its parameters and their full JSON Schema ("live": true marks a
    live-changeable parameter)."""
    from propdesk.strategies.registry import resolve_strategy_info

    entry = _info_dict(resolve_strategy_info(spec), schema=True)
    if as_json:
        typer.echo(json.dumps(entry, default=str))
        return
    typer.echo("\n".join(_text_lines(entry)))
    typer.echo("")
    typer.echo("JSON Schema:")
    typer.echo(json.dumps(entry["schema"], indent=2, default=str))


def strategies_new(
    name: Annotated[str, typer.Argument(help="The strategy's name (snake_case): writes NAME.py and test_NAME.py.")],
    directory: Annotated[Path, typer.Option("--dir", help="The directory to write into (created if missing).")] = Path(
        "."
    ),
) -> None:
    """Write a documented skeleton strategy NAME.py (config, on_start, on_bar, on_position_changed, a bracketed
    entry, a higher-timeframe subscription) and its test test_NAME.py (a backtest on synthetic bars). Never
    overwrites a file."""
    from propdesk.strategies.skeleton import class_name, write_skeleton

    strategy_path, test_path = write_skeleton(name, directory)
    typer.echo(f"wrote {strategy_path} and {test_path}")
    typer.echo(f"run its test:  python -m pytest {test_path}")
    typer.echo(f"backtest it:   propdesk backtest --data BARS.csv --strategy {strategy_path}:{class_name(name)}")


def register(app: typer.Typer, clear_errors: ErrorWrapper) -> None:
    """Add the ``strategies`` group to ``app``; every command goes through ``clear_errors``."""
    group = typer.Typer(
        help="The strategies --strategy accepts: list them, show one's parameters, write a new one.",
        no_args_is_help=True,
        rich_markup_mode=None,
    )
    group.command("list")(clear_errors(strategies_list))
    group.command("show")(clear_errors(strategies_show))
    group.command("new")(clear_errors(strategies_new))
    app.add_typer(group, name="strategies")
