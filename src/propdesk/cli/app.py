"""The ``propdesk`` command line (Typer + Rich).

Commands are thin: they parse options, build the objects that do the work and render the result. Every error that
propdesk raises on purpose (:class:`~propdesk.core.errors.PropdeskError`) is printed as one clear line on stderr with
exit code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from decimal import Decimal
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from propdesk import __version__
from propdesk.cli import api_keys as api_keys_cli
from propdesk.cli import presets as presets_cli
from propdesk.cli import serve as serve_cli
from propdesk.cli import strategies as strategies_cli
from propdesk.cli.options import (
    BalanceOption,
    CommissionOption,
    EndOption,
    FillModelOption,
    JournalUrlOption,
    ParamOption,
    RiskConfigOption,
    RiskOption,
    SessionOption,
    SlippageTicksOption,
    StartOption,
    StrategyOption,
    SymbolOption,
)
from propdesk.core.errors import ConfigError, PropdeskError

if TYPE_CHECKING:
    from propdesk.brokers.registry import BrokerEntry
    from propdesk.config import Settings
    from propdesk.node.journaling import NodeJournal
    from propdesk.risk.presets import RiskConfig

app = typer.Typer(
    name="propdesk",
    help="Trade CME futures on prop-firm accounts with a risk manager that protects the account.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help text is plain: "[projectx]" or "[rules.*]" is printed, not read as markup
)
data_app = typer.Typer(help="Inspect and convert market data.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(data_app, name="data")
db_app = typer.Typer(
    help="The journal database: migrate, inspect, export.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(db_app, name="db")

console = Console()
err_console = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")


def _clear_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn a :class:`PropdeskError` into one line on stderr (its text as it is, never read as markup), exit code 2."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except PropdeskError as exc:
            err_console.print(Text.assemble(("error:", "bold red"), f" {exc}"), highlight=False, soft_wrap=True)
            raise typer.Exit(code=2) from None

    return wrapper


@app.callback()
def _root(
    config: Annotated[
        Path | None,
        typer.Option("--config", help="The config file (default: $PROPDESK_CONFIG, ./propdesk.toml, user config dir)."),
    ] = None,
) -> None:
    """Trade CME futures on prop-firm accounts with a risk manager that protects the account."""
    from propdesk.config import configure

    configure(config)  # loaded once, on first use (propdesk.config.get_settings)


def _settings(config: Path | None = None) -> Settings:
    """The process's settings (:func:`propdesk.config.get_settings`); a command's own ``--config`` replaces the
    file first. Raises ConfigError."""
    from propdesk.config import configure, get_settings

    if config is not None:
        configure(config)
    return get_settings()


@app.command()
@_clear_errors
def init(
    path: Annotated[Path, typer.Argument(help="The file to write.")] = Path("propdesk.toml"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented propdesk.toml with every setting, its unit and its default (credentials: env only)."""
    from propdesk.config import render_toml

    if path.exists() and not force:
        raise ConfigError(f"{path} exists: use --force to overwrite it")
    try:
        path.write_text(render_toml(), encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write {path} ({exc.strerror or exc})") from None
    console.print(f"wrote {path}", highlight=False, soft_wrap=True)


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


@data_app.command("resample")
@_clear_errors
def data_resample(
    path: Annotated[Path, typer.Argument(help="A bar file (CSV with a preset, or a propdesk Parquet bar file).")],
    timeframe: Annotated[
        str, typer.Option("--timeframe", help="The bars to build: <n><s|m|h|d>, e.g. 5m, 1h, 1d (the CME session).")
    ],
    out: Annotated[Path, typer.Option("--out", help="The Parquet bar file to write (replaced atomically).")],
    symbol: SymbolOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as one JSON object.")] = False,
) -> None:
    """Aggregate a bar file into a coarser timeframe (exchange time, CME-session aware: intraday bars never straddle
    the daily halt, 1d bars close at 17:00 CT) and write a Parquet bar file that backtest --data and run --replay
    read."""
    from propdesk.core.errors import DataError
    from propdesk.core.timefmt import iso_utc
    from propdesk.data.aggregation import aggregate_bars
    from propdesk.data.aggregation.feeds import check_coarser
    from propdesk.data.catalog import write_bar_file
    from propdesk.data.loaders.presets import load_bars
    from propdesk.model.data import Timeframe

    try:
        tf = Timeframe.parse(timeframe)
    except ValueError as exc:
        raise ConfigError(f"--timeframe: {exc}") from None
    if out.suffix.lower() != ".parquet":
        raise ConfigError(f"--out {out}: the output is a Parquet bar file; name it *.parquet")
    with err_console.status(f"loading {path.name}"):
        bars = load_bars(path, symbol=symbol)
    check_coarser(tf, bars.timeframe, f"--timeframe {tf}")
    if not len(bars):
        raise DataError("no bars to resample", path=path)
    resampled = aggregate_bars(bars, tf)
    try:
        write_bar_file(resampled, out)
    except OSError as exc:
        raise DataError(f"cannot write the bar file: {exc.strerror or exc}", path=out) from None
    info: dict[str, object] = {
        "input": str(path),
        "output": str(out),
        "symbol": resampled.symbol,
        "input_timeframe": str(bars.timeframe),
        "timeframe": str(tf),
        "input_bars": len(bars),
        "bars": len(resampled),
        "volume": int(resampled.volume.sum()),
        "first_bar_utc": iso_utc(int(resampled.ts_open_ns[0])),
        "last_bar_utc": iso_utc(int(resampled.ts_open_ns[-1])),
    }
    if as_json:
        typer.echo(json.dumps(info))
        return
    console.print(
        f"{info['bars']:,} {tf} bars of {info['symbol']} from {info['input_bars']:,} {bars.timeframe} bars "
        f"({info['first_bar_utc']} to {info['last_bar_utc']}, {info['volume']:,} contracts) -> {out}",
        highlight=False,
        soft_wrap=True,
    )


def _risk_config(preset: str | None, path: Path | None) -> RiskConfig | None:
    """The risk configuration of ``--risk`` / ``--risk-config`` (``None`` without either). Raises ConfigError."""
    if preset is None and path is None:
        preset, path = _settings().risk.preset, _settings().risk.config_file
    if preset is None and path is None:
        return None
    from propdesk.risk.presets import load_risk_config

    return load_risk_config(preset, path)


def _node_journal(on: bool | None, url: str | None) -> NodeJournal | None:
    """The node's journal for ``--journal`` / ``--journal-url`` (``None`` when off; ``on`` unset = the settings'
    ``journal.enabled``). Raises ConfigError for a bad URL."""
    if not (_settings().journal.enabled if on is None else on):
        return None
    from propdesk.node.journaling import NodeJournal

    return NodeJournal(url, prestart=True)  # the writer starts while the bars load


def _starting_balance(balance: str | None, risk: RiskConfig | None) -> Decimal:
    """``--balance``, else the risk configuration's start balance, else 50,000 USD. Raises ConfigError."""
    from propdesk.backtest.cli_support import parse_usd

    if balance is not None:
        return parse_usd(balance, "--balance")
    return risk.start_balance.as_decimal() if risk is not None else Decimal("50000")


@app.command()
@_clear_errors
def backtest(
    data: Annotated[
        Path,
        typer.Option("--data", help="The bar file to replay (CSV, presets fix known clocks; or a Parquet bar file)."),
    ],
    strategy: StrategyOption,
    param: ParamOption = None,
    start: StartOption = None,
    end: EndOption = None,
    trading_session: SessionOption = None,
    symbol: SymbolOption = None,
    fill_model: FillModelOption = "next-open",
    commission: CommissionOption = "0",
    slippage_ticks: SlippageTicksOption = 0,
    balance: BalanceOption = None,
    risk: RiskOption = None,
    risk_config: RiskConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as one JSON object on stdout.")] = False,
    trades_csv: Annotated[
        Path | None, typer.Option("--trades-csv", help="Write the closed round trips to this CSV file.")
    ] = None,
    report: Annotated[Path | None, typer.Option("--report", help="Write an HTML report (plotly) to this file.")] = None,
    report_js: Annotated[
        str, typer.Option("--report-js", help="plotly.js in the report: inline (works offline) or cdn.")
    ] = "inline",
    journal: Annotated[
        bool, typer.Option("--journal", help="Journal the run's orders, fills, positions and result (off by default).")
    ] = False,
    journal_url: JournalUrlOption = None,
) -> None:
    """Replay a bar file through a strategy on the simulated exchange and report the result.

    Net PnL counts closed round trips only; a position still open at the end of the data is reported as open_qty
    and unrealized_pnl_usd. Progress goes to stderr, so --json output on stdout stays clean.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.table import Table

    from propdesk.backtest.cli_support import (
        build_sim_config,
        parse_params,
        parse_window,
        summary_rows,
        with_contract,
        write_trades_csv,
    )
    from propdesk.backtest.engine import BacktestConfig, run_backtest
    from propdesk.core.errors import ConfigError
    from propdesk.data.loaders.presets import load_bars
    from propdesk.strategies.registry import build_strategy

    # every option is checked before the (slow) load
    params = parse_params(param)
    start_ns, end_ns = parse_window(start, end, trading_session, symbol)
    sim = build_sim_config(fill_model, commission, slippage_ticks)
    risk_cfg = _risk_config(risk, risk_config)
    starting = _starting_balance(balance, risk_cfg)
    if report_js not in ("inline", "cdn"):
        raise ConfigError(f"--report-js {report_js!r} is not one of: inline, cdn")
    strat = build_strategy(strategy, params)

    node_journal = _node_journal(journal or journal_url is not None, journal_url)
    try:
        with err_console.status(f"loading {escape(data.name)}"):
            bars = with_contract(load_bars(data, symbol=symbol))
    except BaseException as exc:  # run_backtest closes the journal from here on
        if node_journal is not None:
            node_journal.close_after(exc)
        raise
    if start_ns is not None or end_ns is not None:
        bars = bars.between(start_ns, end_ns)
    config = BacktestConfig(starting_balance_usd=starting, sim=sim, risk=risk_cfg)
    with Progress(
        TextColumn("[bold]backtest[/] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task(f"{strat.name} on {bars.symbol}", total=len(bars))
        result = run_backtest(
            bars,
            strat,
            config,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
            journal=node_journal,
        )

    out = result.to_json_dict()
    if trades_csv is not None:
        out["trades_csv"] = str(write_trades_csv(result.trips, trades_csv))
    if report is not None:
        from propdesk.backtest.report import write_report

        with err_console.status("writing the report"):
            out["report"] = str(write_report(result, report, plotly_js="cdn" if report_js == "cdn" else "inline"))
    if as_json:
        typer.echo(json.dumps(out, default=str))
        return
    table = Table(title=f"backtest: {result.strategy} on {result.symbol}", show_header=False, title_justify="left")
    table.add_column("metric", style="bold")
    table.add_column("value", justify="right")
    for label, value in summary_rows(result):
        table.add_row(label, value)
    console.print(table)
    if result.outcomes is not None or result.evaluation is not None:
        from propdesk.console.risk import risk_outcome_tables

        end_ns = int(result.bars.ts_close_ns[-1]) if len(result.bars) else None
        console.print(risk_outcome_tables(result.outcomes, result.evaluation, end_ns=end_ns), highlight=False)
    for key in ("trades_csv", "report"):
        if key in out:
            console.print(f"{key.replace('_', ' ')}: {out[key]}", highlight=False, markup=False)


@app.command()
@_clear_errors
def run(
    strategy: StrategyOption,
    replay: Annotated[
        Path | None,
        typer.Option("--replay", help="sim: the bar file to replay in paced time (CSV; presets fix known clocks)."),
    ] = None,
    param: ParamOption = None,
    speed: Annotated[
        str,
        typer.Option(
            help="Replay speed as a multiple of real time (1 = real time, 3600 = an hour of data per second); "
            "0 or 'max' = as fast as possible."
        ),
    ] = "3600",
    start: StartOption = None,
    end: EndOption = None,
    trading_session: SessionOption = None,
    symbol: SymbolOption = None,
    balance: BalanceOption = None,
    risk: RiskOption = None,
    risk_config: RiskConfigOption = None,
    fill_model: FillModelOption = "next-open",
    commission: CommissionOption = "0",
    slippage_ticks: SlippageTicksOption = 0,
    no_console: Annotated[
        bool, typer.Option("--no-console", help="Plain log lines instead of the live console (CI, pipes).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object on stdout.")] = False,
    journal: Annotated[
        bool | None,
        typer.Option(
            "--journal/--no-journal", help="Journal every order, fill and position event (default: journal.enabled)."
        ),
    ] = None,
    journal_url: JournalUrlOption = None,
    broker: Annotated[
        str, typer.Option("--broker", help="sim (a paced replay, the default) or projectx (live, TopstepX).")
    ] = "sim",
    account: Annotated[
        str | None, typer.Option("--account", help="projectx: the account id or name (default: the only active one).")
    ] = None,
    api_base: Annotated[str | None, typer.Option("--api-base", help="projectx: REST host (default: TopstepX).")] = None,
    user_hub: Annotated[str | None, typer.Option("--user-hub", help="projectx: user hub URL.")] = None,
    market_hub: Annotated[str | None, typer.Option("--market-hub", help="projectx: market hub URL.")] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="The config file with [projectx] hosts and the rest (as propdesk --config)."),
    ] = None,
    duration: Annotated[
        float | None, typer.Option("--duration", help="projectx: stop after this many seconds.")
    ] = None,
    bars: Annotated[int | None, typer.Option("--bars", help="projectx: stop after this many live bars.")] = None,
    bar_cache: Annotated[
        bool | None,
        typer.Option("--bar-cache/--no-bar-cache", help="projectx: history bars through the journal's cache."),
    ] = None,
) -> None:
    """Run the trading node on a paced replay of real bars, with a live console; stop with Ctrl-C.

    With --broker projectx it trades live on a ProjectX (TopstepX) account: credentials from
    PROPDESK_PROJECTX_USERNAME / PROPDESK_PROJECTX_API_KEY, hosts from --api-base/--user-hub/--market-hub or the
    config file's [projectx] table; it runs until Ctrl-C, --duration or --bars (see propdesk.sessions.live).

    The node, strategy and simulated exchange are the backtest's, so the fills equal a backtest over the same bars.
    The run ends at the end of the data (exit code 0) or on Ctrl-C (the summary is still printed; exit code 130).
    An open position is left open and reported with its unrealized PnL. Without a terminal, or with --no-console,
    events are printed as plain lines (on stderr with --json, so stdout holds only the JSON).
    """
    import asyncio

    from propdesk.backtest.cli_support import build_sim_config, parse_params, parse_window
    from propdesk.brokers.sim.replay import parse_speed
    from propdesk.console.replay import render_summary, run_plain, run_with_console
    from propdesk.sessions.replay import EXIT_INTERRUPTED, RunOptions, RunSession

    cfg = _settings(config)
    _broker_entry(broker)
    if broker == "projectx":
        _run_live(
            strategy, param, symbol, risk, risk_config, account or cfg.accounts.default, api_base, user_hub,
            market_hub, config, duration, bars, cfg.journal.bar_cache if bar_cache is None else bar_cache,
            no_console, as_json, _node_journal(journal, journal_url),
        )  # fmt: skip
        return
    if broker != "sim":
        raise ConfigError(f"propdesk run has no session for --broker {broker!r}; it runs sim and projectx")
    if replay is None:
        raise ConfigError("--broker sim needs --replay FILE (the bars to play)")
    start_ns, end_ns = parse_window(start, end, trading_session, symbol)
    risk_cfg = _risk_config(risk, risk_config)
    options = RunOptions(
        replay=replay,
        strategy=strategy,
        params=parse_params(param),
        speed=parse_speed(speed),
        start_ns=start_ns,
        end_ns=end_ns,
        symbol=symbol,
        balance_usd=_starting_balance(balance, risk_cfg),
        sim=build_sim_config(fill_model, commission, slippage_ticks),
        risk=risk_cfg,
    )
    out = err_console if as_json else console
    with err_console.status(f"loading {escape(replay.name)}"):
        session = RunSession(options, journal=_node_journal(journal, journal_url))
    if no_console or not out.is_terminal:
        from propdesk.console.display import plain_writer

        summary = asyncio.run(run_plain(session, plain_writer(out)))
    else:
        summary = asyncio.run(run_with_console(session, out))
    if as_json:
        typer.echo(json.dumps(summary.to_json_dict(), default=str))
    else:
        console.print(render_summary(summary))
    if summary.interrupted:
        raise typer.Exit(code=EXIT_INTERRUPTED)


def _broker_entry(name: str) -> BrokerEntry:
    """The registry entry of ``--broker NAME`` (:mod:`propdesk.brokers.registry`).

    Raises:
        ConfigError: unknown name (one line listing the known brokers).
    """
    from propdesk.brokers import registry

    return registry.get(name)


def _run_live(
    strategy: str,
    param: list[str] | None,
    symbol: str | None,
    risk: str | None,
    risk_config: Path | None,
    account: str | None,
    api_base: str | None,
    user_hub: str | None,
    market_hub: str | None,
    config: Path | None,
    duration: float | None,
    bars: int | None,
    bar_cache: bool,
    no_console: bool,
    as_json: bool,
    node_journal: NodeJournal | None = None,
) -> None:
    """``propdesk run --broker projectx`` (see :func:`propdesk.console.live.run_live_command`); with a journal the
    node is restored from it and reconciled with ProjectX before it trades (:mod:`propdesk.node.recovery`)."""
    from propdesk.backtest.cli_support import parse_params
    from propdesk.console.live import render_live_summary, run_live_command
    from propdesk.sessions.live import LiveOptions
    from propdesk.sessions.replay import EXIT_INTERRUPTED

    options = LiveOptions(
        strategy=strategy,
        params=parse_params(param),
        symbol=symbol,
        duration_s=duration,
        max_bars=bars,
        risk=_risk_config(risk, risk_config),
    )
    out = err_console if as_json else console
    summary = run_live_command(
        options=options,
        account=account,
        api_base=api_base,
        user_hub=user_hub,
        market_hub=market_hub,
        config_path=config,
        bar_cache=bar_cache,
        out=out,
        plain=no_console or not out.is_terminal,
        journal=node_journal,
    )
    if as_json:
        typer.echo(json.dumps(summary.to_json_dict(), default=str))
    else:
        console.print(render_live_summary(summary))
    if summary.interrupted:
        raise typer.Exit(code=EXIT_INTERRUPTED)


@app.command("risk")
@_clear_errors
def risk_daemon(
    account: Annotated[int, typer.Option("--account", help="The broker account id to guard.")],
    broker: Annotated[str, typer.Option("--broker", help="sim (a simulated account on a replay) or projectx.")] = "sim",
    risk: RiskOption = None,
    risk_config: RiskConfigOption = None,
    journal: Annotated[
        bool | None,
        typer.Option(
            "--journal/--no-journal",
            help="projectx: journal the account's events and keep the lockouts in the journal (a restart keeps them; "
            "default: journal.enabled). A simulated account's lockouts are kept in memory.",
        ),
    ] = None,
    journal_url: JournalUrlOption = None,
    audit: Annotated[
        Path | None, typer.Option("--audit", help="Append every decision and enforcement step to this JSON-lines file.")
    ] = None,
    replay: Annotated[
        Path | None, typer.Option("--replay", help="sim: the bar file played into the simulated account.")
    ] = None,
    speed: Annotated[
        str, typer.Option(help="sim: replay speed as a multiple of real time; 0 or 'max' = as fast as possible.")
    ] = "60",
    start: Annotated[
        str | None, typer.Option(help="sim: first bar (inclusive, by open time): ISO 8601; naive = UTC.")
    ] = None,
    end: Annotated[str | None, typer.Option(help="sim: end of the window (exclusive), as --start.")] = None,
    manual: Annotated[
        Path | None,
        typer.Option(
            "--manual", help="sim: a JSON-lines script of orders placed by hand at the broker (not through propdesk)."
        ),
    ] = None,
    balance: Annotated[
        str | None, typer.Option(help="sim: starting balance, USD (default: the risk preset's).")
    ] = None,
    no_console: Annotated[
        bool, typer.Option("--no-console", help="Plain log lines instead of the live status (CI, pipes).")
    ] = False,
    json_status: Annotated[
        bool, typer.Option("--json-status", help="Print the final status as one JSON object on stdout.")
    ] = False,
    api_base: Annotated[
        str | None, typer.Option("--api-base", help="projectx: REST base URL (default: config, else TopstepX).")
    ] = None,
    user_hub: Annotated[str | None, typer.Option("--user-hub", help="projectx: user hub URL.")] = None,
    market_hub: Annotated[str | None, typer.Option("--market-hub", help="projectx: market hub URL.")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="The config file (as propdesk --config).")] = None,
) -> None:
    """Run the account guard on its own, attached to a broker account: every fill from any source (manual trades
    at the broker included) is checked; a breach flattens the account and locks it out. Live status until the end
    of the replay (sim) or Ctrl-C.

    With --broker sim, --replay plays real bars into a simulated account and --manual places scripted orders
    straight at the simulated broker, standing in for the TopstepX UI. With --broker projectx the credentials come
    from PROPDESK_PROJECTX_USERNAME / PROPDESK_PROJECTX_API_KEY.
    """
    import asyncio

    from propdesk.sessions.replay import EXIT_INTERRUPTED

    _settings(config)
    risk_cfg = _risk_config(risk, risk_config)
    if risk_cfg is None:
        raise ConfigError("propdesk risk needs --risk PRESET and/or --risk-config FILE")
    session: Any
    _broker_entry(broker)
    if broker == "sim":
        from propdesk.backtest.cli_support import parse_usd, parse_window
        from propdesk.brokers.sim.replay import parse_speed
        from propdesk.sessions.risk_daemon.manual import load_manual_script
        from propdesk.sessions.risk_daemon.session import SimRiskOptions, SimRiskSession

        if replay is None:
            raise ConfigError("--broker sim needs --replay FILE (the bars played into the simulated account)")
        if journal or journal_url is not None:
            raise ConfigError(
                "--journal and --journal-url are for --broker projectx "
                "(a simulated account's lockouts are kept in memory)"
            )
        start_ns, end_ns = parse_window(start, end)
        options = SimRiskOptions(
            replay=replay,
            config=risk_cfg,
            account_id=account,
            speed=parse_speed(speed),
            start_ns=start_ns,
            end_ns=end_ns,
            balance_usd=None if balance is None else parse_usd(balance, "--balance"),
            manual=tuple(load_manual_script(manual)) if manual is not None else (),
            audit_path=audit,
        )
        with err_console.status(f"loading {escape(replay.name)}"):
            session = SimRiskSession(options)
    elif broker == "projectx":
        from propdesk.sessions.risk_daemon.session import ProjectXRiskOptions, ProjectXRiskSession

        for flag, value in (("--replay", replay), ("--manual", manual), ("--start", start), ("--end", end)):
            if value is not None:
                raise ConfigError(f"{flag} is for --broker sim only")
        node_journal = _node_journal(journal if journal_url is None else True, journal_url)
        from propdesk.sessions.live import projectx_settings

        px_settings = projectx_settings(api_base=api_base, user_hub=user_hub, market_hub=market_hub, config_path=config)
        session = ProjectXRiskSession(
            ProjectXRiskOptions(
                account_id=account,
                config=risk_cfg,
                audit_path=audit,
                settings=px_settings,
            ),
            journal=node_journal,
        )
    else:
        raise ConfigError(f"propdesk risk has no session for --broker {broker!r}; it runs sim and projectx")

    out = err_console if json_status else console
    if no_console or not out.is_terminal:
        from propdesk.console.display import plain_writer
        from propdesk.console.risk_daemon import run_plain

        final = asyncio.run(run_plain(session, plain_writer(out)))
    else:
        from propdesk.console.risk_daemon import run_with_status

        final = asyncio.run(run_with_status(session, out))
    if json_status:
        typer.echo(json.dumps(final, default=str))
    if final.get("interrupted") or (final.get("replay") or {}).get("interrupted"):
        raise typer.Exit(code=EXIT_INTERRUPTED)


_DB_URL_HELP = "Database URL (default: $PROPDESK_DATABASE_URL, the config file's database.url, or the SQLite file)."


@db_app.command("upgrade")
@_clear_errors
def db_upgrade(
    url: Annotated[str | None, typer.Option(help=_DB_URL_HELP)] = None,
    config: Annotated[Path | None, typer.Option(help="The config file (as propdesk --config).")] = None,
) -> None:
    """Create or migrate the journal's tables to the newest revision."""
    import asyncio

    from propdesk.node.journaling import journal_url
    from propdesk.storage.db import redact_url
    from propdesk.storage.migrate import head_revision, upgrade_async

    resolved = journal_url(url, config_path=config)
    asyncio.run(upgrade_async(resolved))
    console.print(f"database {redact_url(resolved)} is at revision {head_revision()}", highlight=False, soft_wrap=True)


@db_app.command("info")
@_clear_errors
def db_info(
    url: Annotated[str | None, typer.Option(help=_DB_URL_HELP)] = None,
    config: Annotated[Path | None, typer.Option(help="The config file (as propdesk --config).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show the database URL (password hidden), its revision, the row count of every table and the strategy runs
    (id, kind, status, start and end, strategy, fills, orders, starts), with what the run statuses and a fill's
    identity mean (propdesk.storage.runs)."""
    import asyncio

    from propdesk.node.journaling import journal_url
    from propdesk.storage.db import create_engine_for, redact_url
    from propdesk.storage.migrate import current_revision, head_revision
    from propdesk.storage.repositories import Repository
    from propdesk.storage.runs import RUN_SEMANTICS, RunInfo

    resolved = journal_url(url, config_path=config)
    head = head_revision()

    async def _info() -> tuple[str | None, dict[str, int], list[RunInfo]]:
        engine = create_engine_for(resolved)
        try:
            rev = await current_revision(engine)
            repo = Repository(engine)
            counts = await repo.counts() if rev is not None else {}
            runs = await repo.runs() if rev == head else []
            return rev, counts, runs
        finally:
            await engine.dispose()

    rev, counts, runs = asyncio.run(_info())
    info = {
        "url": redact_url(resolved),
        "revision": rev,
        "head": head,
        "rows": counts,
        "runs": [r.to_dict() for r in runs],
        "run_semantics": RUN_SEMANTICS,
    }
    if as_json:
        typer.echo(json.dumps(info))
        return
    console.print(f"url:      {info['url']}", highlight=False, soft_wrap=True)
    state = "not migrated (run propdesk db upgrade)" if rev is None else rev
    if rev is not None and rev != head:
        state += f" (newest is {head}: run propdesk db upgrade)"
    console.print(f"revision: {state}", highlight=False, soft_wrap=True)
    for name, n in counts.items():
        console.print(f"  {name:<20} {n:>10}", highlight=False, soft_wrap=True)
    if rev == head:
        for line in _run_lines(runs):
            console.print(line, highlight=False, soft_wrap=True, markup=False)


def _utc(ts_ns: int | None) -> str:
    """``YYYY-MM-DD HH:MM:SS`` (UTC) of ``ts_ns``, or ``-``."""
    from propdesk.core.timefmt import ns_to_datetime

    return "-" if ts_ns is None else ns_to_datetime(ts_ns).strftime("%Y-%m-%d %H:%M:%S")


def _run_lines(runs: list[Any]) -> list[str]:
    """``propdesk db info``'s runs section: the semantics, then one line per run (``RunInfo``), oldest first."""
    import textwrap

    from propdesk.storage.runs import RUN_SEMANTICS

    out = [f"runs: {len(runs)}"]
    out += textwrap.wrap(RUN_SEMANTICS, width=116, initial_indent="  ", subsequent_indent="  ")
    if not runs:
        return out
    out.append(
        f"  {'id':<36}  {'kind':<8} {'status':<10} {'started (UTC)':<19}  {'ended (UTC)':<19}  "
        f"{'strategy':<16} {'fills':>7} {'orders':>7} {'starts':>6}"
    )
    gone = False
    for r in runs:
        status = r.status + ("*" if r.owner_gone else "")
        gone = gone or r.owner_gone
        out.append(
            f"  {r.run_id:<36}  {r.kind:<8} {status:<10} {_utc(r.started_ns):<19}  {_utc(r.ended_ns):<19}  "
            f"{r.strategy:<16} {r.fills:>7} {r.orders:>7} {r.attempts:>6}"
        )
    if gone:
        out.append("  * its process is gone: it is marked aborted at the next start")
    return out


@db_app.command("export")
@_clear_errors
def db_export(
    out: Annotated[Path, typer.Argument(help="Directory to write fills.csv and trades.csv into.")],
    url: Annotated[str | None, typer.Option(help=_DB_URL_HELP)] = None,
    config: Annotated[Path | None, typer.Option(help="The config file (as propdesk --config).")] = None,
    account: Annotated[int | None, typer.Option(help="Only this account id.")] = None,
    run_id: Annotated[
        str | None, typer.Option("--run", help="Only this run (its id, or a unique start of it: see db info).")
    ] = None,
) -> None:
    """Export journaled fills and closed round trips (trades) to CSV: of every run, or of one with --run."""
    import asyncio

    from propdesk.execution.round_trips import round_trips
    from propdesk.model.symbology import spec_for_symbol
    from propdesk.node.journaling import journal_url
    from propdesk.storage.db import create_engine_for
    from propdesk.storage.export import ExportResult, export_csv
    from propdesk.storage.migrate import current_revision

    resolved = journal_url(url, config_path=config)

    async def _export() -> ExportResult:
        engine = create_engine_for(resolved)
        try:
            if await current_revision(engine) is None:
                raise ConfigError("the database has no journal tables yet: run propdesk db upgrade")
            return await export_csv(
                engine,
                out,
                account_id=account,
                run_id=run_id,
                trips_of=lambda fills: round_trips(fills, spec_for_symbol),
            )
        finally:
            await engine.dispose()

    res = asyncio.run(_export())
    if res.run_id is not None:
        console.print(f"run {res.run_id}", highlight=False, soft_wrap=True)
    console.print(f"{res.fills} fills -> {res.fills_path}", highlight=False, soft_wrap=True)
    console.print(f"{res.trades} trades -> {res.trades_path}", highlight=False, soft_wrap=True)


@app.command()
@_clear_errors
def gateway(
    port: Annotated[int | None, typer.Option(help="Port on 127.0.0.1 (default 8900, or the config's bind).")] = None,
    config: Annotated[
        Path | None, typer.Option(help="Gateway configuration file (TOML or JSON; default: emulator.config_file).")
    ] = None,
    data: Annotated[Path | None, typer.Option(help="Folder the feeds' files are read from (../shared/data).")] = None,
    speed: Annotated[float | None, typer.Option(help="Replay speed: 1 = real time, 10 = ten times faster.")] = None,
) -> None:
    """Serve the ProjectX Gateway API (REST + SignalR hubs) on 127.0.0.1 over the simulated broker.

    The start banner prints the --api-base URL for propdesk run, the login credentials, the admin API token and the
    OpenAPI document's URL.
    """
    import uvicorn

    from propdesk.emulators.projectx import GatewayConfig, create_app, load_gateway_config
    from propdesk.emulators.projectx.serve import log_config, start_banner

    emu = _settings().emulator
    config, port, data, speed = config or emu.config_file, port or emu.port, data or emu.data_dir, speed or emu.speed
    cfg = load_gateway_config(config) if config is not None else GatewayConfig()
    changes: dict[str, object] = {}
    if port is not None:
        changes["bind"] = f"127.0.0.1:{port}"
    if data is not None:
        changes["data_dir"] = data
    if speed is not None:
        changes["speed"] = speed
    if changes:
        cfg = cfg.with_updates(**changes)
    server_app = create_app(cfg)
    console.print(start_banner(cfg), highlight=False, soft_wrap=True, markup=False)
    uvicorn.run(
        server_app, host=cfg.host, port=cfg.port, log_level="info", ws="websockets-sansio", log_config=log_config()
    )


strategies_cli.register(app, _clear_errors)
presets_cli.register(app, _clear_errors)
api_keys_cli.register(app, _clear_errors)
serve_cli.register(app, _clear_errors, _settings)


def main() -> None:
    """Entry point for ``python -m propdesk``."""
    app()
