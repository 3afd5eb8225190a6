"""The import table of ARCHITECTURE.md ("Packages"), enforced for the lower layers.

Every module of ``core``, ``model``, ``data``, ``execution``, ``risk``, ``brokers``, ``strategies`` and ``storage``
is parsed (``ast``) and each ``propdesk`` import in it, wherever it sits (module level, inside a function, under
``TYPE_CHECKING``), must name its own package or one the table allows. A new upward import fails here with its
file and line. ``emulators/projectx`` is a lower layer too (brokers, data, model, core). ``api`` may import
everything but the other interfaces (``bridge``, ``notify``, ``console``, ``cli``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import propdesk

SRC = Path(propdesk.__file__).parent

ALLOWED: dict[str, frozenset[str]] = {
    "core": frozenset(),
    "model": frozenset({"core"}),
    "data": frozenset({"core", "model"}),
    "execution": frozenset({"core", "model"}),
    "risk": frozenset({"core", "model", "execution"}),
    "brokers": frozenset({"core", "model", "data"}),
    "strategies": frozenset({"core", "model", "data"}),
    "storage": frozenset({"core", "model"}),
    "emulators": frozenset({"brokers", "data", "model", "core"}),
    "api": frozenset(
        {"core", "model", "data", "execution", "risk", "brokers", "emulators", "strategies", "storage", "node"}
        | {"backtest", "research", "sessions", "config"}
    ),
}
"""Package -> the propdesk packages it may import besides itself (ARCHITECTURE.md, "Packages")."""


def _imported_packages(tree: ast.AST) -> list[tuple[int, str, str]]:
    """``(line, imported module, top package under propdesk)`` of every propdesk import in ``tree``.

    ``from propdesk import x`` counts as importing package ``x``; relative imports are inside their own package.
    """
    out: list[tuple[int, str, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "propdesk":
                    out.append((node.lineno, alias.name, parts[1] if len(parts) > 1 else ""))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module is not None:
            parts = node.module.split(".")
            if parts[0] != "propdesk":
                continue
            if len(parts) > 1:
                out.append((node.lineno, node.module, parts[1]))
            else:
                out.extend((node.lineno, f"propdesk.{a.name}", a.name) for a in node.names)
    return out


def _violations(package: str) -> list[str]:
    allowed = ALLOWED[package] | {package}
    found: list[str] = []
    for path in sorted((SRC / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for line, module, top in _imported_packages(tree):
            if top not in allowed:
                found.append(f"{path.relative_to(SRC.parent)}:{line}: {package} imports {module}")
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_follow_the_table(package: str) -> None:
    assert (SRC / package).is_dir(), f"src/propdesk/{package} is missing"
    assert _violations(package) == []


def test_the_checker_sees_imports_inside_functions_and_type_checking_blocks() -> None:
    code = (
        "from typing import TYPE_CHECKING\n"
        "import propdesk.core.bus\n"
        "if TYPE_CHECKING:\n"
        "    from propdesk.risk.state import AccountState\n"
        "def f() -> None:\n"
        "    from propdesk import config\n"
        "    import propdesk.node.journaling as j\n"
    )
    found = sorted(_imported_packages(ast.parse(code)))
    assert found == [
        (2, "propdesk.core.bus", "core"),
        (4, "propdesk.risk.state", "risk"),
        (6, "propdesk.config", "config"),
        (7, "propdesk.node.journaling", "node"),
    ]
