"""One contract lookup and one calendar (issue 13): the source holds the CME session times and time zone in one
place (``model/calendar.py``'s ``SESSION_OPEN``, ``DAILY_HALT``, ``EXCHANGE_TZ``; the zone object is
``core/timefmt.CT``) and resolves a symbol to its spec in one place (``model/symbology.spec_for_symbol``). A new copy
(a ``time(17, 0)``, an ``"America/Chicago"`` literal, a ``parse_symbol(...).spec`` lookup) fails here with its file and
line."""

from __future__ import annotations

import ast
from pathlib import Path

import propdesk

SRC = Path(propdesk.__file__).parent

SESSION_TIMES = {(17, 0), (16, 0)}
"""The Globex open/roll and the daily halt (hour, minute)."""
HOMES = {"model/calendar.py", "core/timefmt.py"}
"""Where the session times and the zone are defined."""
LOOKUP_HOME = "model/symbology.py"


def _sources() -> list[tuple[str, ast.AST]]:
    return [
        (p.relative_to(SRC).as_posix(), ast.parse(p.read_text(encoding="utf-8"))) for p in sorted(SRC.rglob("*.py"))
    ]


def _name(func: ast.expr) -> str | None:
    return getattr(func, "id", getattr(func, "attr", None))


def _int_args(call: ast.Call) -> tuple[int, ...]:
    return tuple(a.value for a in call.args if isinstance(a, ast.Constant) and isinstance(a.value, int))


def test_session_times_and_the_exchange_zone_are_defined_once() -> None:
    found: list[str] = []
    for rel, tree in _sources():
        if rel in HOMES:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value == "America/Chicago":
                found.append(f"{rel}:{node.lineno}: 'America/Chicago'")
            if (
                isinstance(node, ast.Call)
                and _name(node.func) in ("time", "dt_time")
                and _int_args(node) in SESSION_TIMES
            ):
                found.append(f"{rel}:{node.lineno}: time{_int_args(node)}")
    assert found == []


def test_symbols_become_specs_only_through_the_lookup() -> None:
    found: list[str] = []
    for rel, tree in _sources():
        if rel == LOOKUP_HOME:
            continue
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr == "spec"
                and isinstance(node.value, ast.Call)
                and _name(node.value.func) == "parse_symbol"
            ):
                found.append(f"{rel}:{node.lineno}: parse_symbol(...).spec")
    assert found == []
