"""Typer options shared by several ``propdesk`` commands (``backtest``, ``run``, ``risk``).

Each name is an ``Annotated`` type carrying the option's flag and help text; a command gives the default itself,
e.g. ``param: ParamOption = None``. Typer copies the option's info for every command that uses it, so sharing one
alias between commands is safe. The parsing of the values lives in :mod:`propdesk.backtest.cli_support`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Final, TypeAlias

import typer

__all__ = [
    "JOURNAL_URL_HELP",
    "BalanceOption",
    "CommissionOption",
    "EndOption",
    "FillModelOption",
    "JournalUrlOption",
    "ParamOption",
    "RiskConfigOption",
    "RiskOption",
    "SessionOption",
    "SlippageTicksOption",
    "StartOption",
    "StrategyOption",
    "SymbolOption",
]

JOURNAL_URL_HELP: Final = (
    "The journal's database (default: $PROPDESK_DATABASE_URL, the config file's database.url, or the SQLite file "
    "under the user's data directory)."
)
"""Help text of ``--journal-url``."""

StrategyOption: TypeAlias = Annotated[
    str,
    typer.Option(
        "--strategy",
        help="The strategy: a bundled or installed name (sma_cross; see strategies list), module.path:ClassName or "
        "path/to/file.py:ClassName.",
    ),
]
"""``--strategy SPEC`` (required): a strategy spec of :mod:`propdesk.strategies.registry`."""

ParamOption: TypeAlias = Annotated[
    list[str] | None, typer.Option("--param", help="A strategy parameter as key=value (repeatable).")
]
"""``--param key=value`` (repeatable); parsed by :func:`propdesk.backtest.cli_support.parse_params`."""

StartOption: TypeAlias = Annotated[
    str | None,
    typer.Option(help="First bar (inclusive, by open time): ISO 8601; naive = UTC; a date = 00:00 UTC."),
]
"""``--start`` of a replay window; parsed by :func:`propdesk.backtest.cli_support.parse_window`."""

EndOption: TypeAlias = Annotated[
    str | None, typer.Option(help="End of the window (exclusive, by bar open time), as --start.")
]
"""``--end`` of a replay window (exclusive); parsed by :func:`propdesk.backtest.cli_support.parse_window`."""

SessionOption: TypeAlias = Annotated[
    str | None,
    typer.Option(
        "--session",
        help="A CME trading date (2025-10-01 = 17:00 CT on 2025-09-30 to 16:00 CT on 2025-10-01) or a range "
        "2025-10-01..2025-10-03; instead of --start/--end.",
    ),
]
"""``--session``: trading dates as a window; parsed by :func:`propdesk.backtest.cli_support.parse_session`."""

SymbolOption: TypeAlias = Annotated[
    str | None, typer.Option(help="The contract (ESZ5) or root (ES) of the data (default: the file's preset).")
]
"""``--symbol``: the contract or root of a bar file (overrides the file's preset)."""

BalanceOption: TypeAlias = Annotated[
    str | None, typer.Option(help="Starting balance, USD (default: the risk preset's, else 50000).")
]
"""``--balance`` in USD; parsed by :func:`propdesk.backtest.cli_support.parse_usd`."""

RiskOption: TypeAlias = Annotated[
    str | None, typer.Option("--risk", help="A risk preset, e.g. topstep-50k-combine (firm rules, enforced).")
]
"""``--risk PRESET``: a preset of :mod:`propdesk.risk.presets`."""

RiskConfigOption: TypeAlias = Annotated[
    Path | None,
    typer.Option("--risk-config", help="A risk configuration file (TOML): preset, [account], personal [rules.*]."),
]
"""``--risk-config FILE``: a risk configuration file loaded by :func:`propdesk.risk.presets.load_risk_config`."""

FillModelOption: TypeAlias = Annotated[
    str, typer.Option("--fill-model", help="next-open (fill at the next bar's open) or bar-close.")
]
"""``--fill-model`` of the simulated exchange; checked by :func:`propdesk.backtest.cli_support.build_sim_config`."""

CommissionOption: TypeAlias = Annotated[
    str, typer.Option(help="Commission plus fees per contract per side, USD (e.g. 2.00).")
]
"""``--commission`` in USD per contract per side; checked by :func:`propdesk.backtest.cli_support.build_sim_config`."""

SlippageTicksOption: TypeAlias = Annotated[
    int, typer.Option("--slippage-ticks", help="Ticks of slippage on every market fill.", min=0)
]
"""``--slippage-ticks`` (ticks, >= 0) on every market fill of the simulated exchange."""

JournalUrlOption: TypeAlias = Annotated[str | None, typer.Option("--journal-url", help=JOURNAL_URL_HELP)]
"""``--journal-url``: the journal's database URL (see :data:`JOURNAL_URL_HELP`)."""
