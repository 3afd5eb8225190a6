"""The ``propdesk`` command line (Typer + Rich).

Commands are thin: they parse options, build the objects that do the work and render the result. Every error that
propdesk raises on purpose (:class:`~propdesk.core.errors.PropdeskError`) is printed as one clear line on stderr with
exit code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console

from propdesk import __version__
from propdesk.core.errors import PropdeskError

app = typer.Typer(
    name="propdesk",
    help="Trade CME futures on prop-firm accounts with a risk manager that protects the account.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Inspect and convert market data.", no_args_is_help=True)
app.add_typer(data_app, name="data")

console = Console()
err_console = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")


def _clear_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn a :class:`PropdeskError` into one red line on stderr and exit code 2."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except PropdeskError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True)
            raise typer.Exit(code=2) from None

    return wrapper


@app.command()
def version() -> None:
    """Print propdesk's version."""
    console.print(f"propdesk {__version__} (Python {sys.version.split()[0]})")


@data_app.command("inspect")
@_clear_errors
def data_inspect(
    path: Annotated[Path, typer.Argument(help="A bar, trade or Databento DBN file.", exists=False)],
    symbol: Annotated[
        str | None, typer.Option(help="Symbol to label the data with (default: from the file name).")
    ] = None,
    tz: Annotated[
        str | None, typer.Option(help="Time zone of the file's timestamps (default: the file's preset).")
    ] = None,
    clock_offset: Annotated[
        str | None, typer.Option(help="How far the file's clock runs ahead of that zone's wall clock, e.g. 5h.")
    ] = None,
    stamp: Annotated[str | None, typer.Option(help="Bar timestamps mark the bar's 'start' or 'end'.")] = None,
    tick_size: Annotated[
        str | None, typer.Option(help="Tick size to check prices against (default: inferred).")
    ] = None,
    input_format: Annotated[
        str | None, typer.Option("--input-format", help="Input format: csv or firstrate (default: the preset).")
    ] = None,
    top_gaps: Annotated[int, typer.Option(help="How many of the largest gaps to list.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON object.")] = False,
) -> None:
    """Report rows, span, gaps, sessions, tick alignment and volume per day of a market-data file."""
    from propdesk.data.inspect import inspect_file, render_report

    options: dict[str, object] = {}
    for key, value in (
        ("symbol", symbol),
        ("tz", tz),
        ("clock_offset", clock_offset),
        ("stamp", stamp),
        ("tick_size", tick_size),
        ("format", input_format),
    ):
        if value is not None:
            options[key] = value
    report = inspect_file(path, top_gaps=top_gaps, **options)  # type: ignore[arg-type]
    if as_json:
        typer.echo(json.dumps(report.to_dict(), default=str))
    else:
        render_report(report, console)


def main() -> None:
    """Entry point for ``python -m propdesk``."""
    app()
