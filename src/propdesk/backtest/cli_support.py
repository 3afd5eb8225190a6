"""Helpers of the ``propdesk backtest`` command: option parsing, the simulator's config and the trades CSV.

Kept apart from :mod:`propdesk.cli` so each piece is a plain function that can be tested without a terminal.

Times on the command line (``--start`` / ``--end``) are ISO 8601 (:func:`parse_time`):

* with an offset (``2025-09-15T08:30:00-05:00``, ``2025-09-15T13:30Z``): that instant;
* a naive date and time (``2025-09-15T13:30`` or ``2025-09-15 13:30:00``): **UTC**, like every time inside
  propdesk (ARCHITECTURE.md, principle 6);
* a bare date (``2025-09-15``): 00:00 UTC of that date.

``--start`` is inclusive and ``--end`` exclusive, both on the bar's *open* time
(:meth:`propdesk.model.data.BarSeries.between`), so ``--start 2025-09-15 --end 2025-09-16`` is the bars that open
on 15 September (UTC). ``--session 2025-09-15`` is the CME trading date instead: 17:00 CT on 14 September to
16:00 CT on 15 September (:func:`parse_session`).
"""

from __future__ import annotations

import csv
import dataclasses
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Final, get_args

from pydantic import ValidationError

if TYPE_CHECKING:
    from propdesk.backtest.engine import BacktestResult

from propdesk.brokers.sim.config import FillModel, SimConfig
from propdesk.core.errors import ConfigError, PropdeskError
from propdesk.core.timefmt import datetime_to_ns, iso_utc
from propdesk.execution.round_trips import RoundTrip
from propdesk.model.data import BarSeries
from propdesk.model.price import Money

_KEY_RE: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

TRADES_CSV_COLUMNS: Final[tuple[str, ...]] = (
    "symbol",
    "tag",
    "direction",
    "qty",
    "entry_time_utc",
    "entry_price",
    "exit_time_utc",
    "exit_price",
    "gross_pnl_usd",
    "fees_usd",
    "net_pnl_usd",
)
"""Header of the trades CSV written by :func:`write_trades_csv`."""


def parse_params(pairs: Sequence[str] | None, option: str = "--param") -> dict[str, str]:
    """Parse ``--param k=v`` pairs into ``{k: v}`` (values stay strings; the strategy's config coerces them).

    The key is a Python identifier; the value is everything after the first ``=`` (it may contain ``=``, may be
    empty only if written explicitly as ``k=``). Surrounding whitespace of the key is ignored.

    Raises:
        ConfigError: a pair without ``=``, an empty or malformed key, or the same key twice; the message quotes the
            offending pair and names ``option``.
    """
    out: dict[str, str] = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep:
            raise ConfigError(f"{option} {pair!r} is not of the form key=value")
        if not _KEY_RE.match(key):
            raise ConfigError(f"{option} {pair!r}: {key!r} is not a valid parameter name")
        if key in out:
            raise ConfigError(f"{option} {pair!r}: parameter {key!r} is given twice")
        out[key] = value
    return out


def parse_time(text: str, option: str = "--start") -> int:
    """Parse an ISO 8601 date or date-time into UTC nanoseconds (see the module docstring for the rules).

    Accepted: ``YYYY-MM-DD``, ``YYYY-MM-DDTHH:MM[:SS[.ffffff]]`` with ``T`` or a space, optionally followed by
    ``Z`` or ``+HH:MM``/``-HH:MM``. Precision is the microsecond (Python's ``datetime``).

    Raises:
        ConfigError: the text is not such a date or time; the message names ``option`` and quotes the text.
    """
    s = text.strip()
    try:
        dt = datetime.fromisoformat(s)  # a bare date is its midnight
    except ValueError:
        raise ConfigError(
            f"{option} {text!r} is not an ISO 8601 date or time (e.g. 2025-09-15, 2025-09-15T13:30, "
            "2025-09-15T08:30-05:00)"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return datetime_to_ns(dt)


def parse_window(
    start: str | None, end: str | None, session: str | None = None, product: str | None = None
) -> tuple[int | None, int | None]:
    """``--start``/``--end``, or ``--session`` (:func:`parse_session`, hours of root ``product``), as UTC ns
    (``None`` when not given); start inclusive, end exclusive.

    Raises:
        ConfigError: either is malformed (:func:`parse_time`), start is not before end, a bad session, or a session
            together with a start or end.
    """
    if session is not None:
        if start is not None or end is not None:
            raise ConfigError("--session cannot be combined with --start or --end")
        return parse_session(session, product)
    start_ns = None if start is None else parse_time(start, "--start")
    end_ns = None if end is None else parse_time(end, "--end")
    if start_ns is not None and end_ns is not None and start_ns >= end_ns:
        raise ConfigError(f"--start {start!r} must be before --end {end!r}")
    return start_ns, end_ns


MAX_USD: Final = Decimal(1_000_000_000)
"""The largest amount (USD) a command-line option accepts: far above any prop-firm account or fee, and small enough
that sums of cents stay exact integers in every 64-bit field that holds money."""


_SESSION_RE: Final = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:\.\.(\d{4}-\d{2}-\d{2}))?$")


def parse_session(text: str, product: str | None = None) -> tuple[int, int]:
    """``--session``: CME trading dates as a window ``(start_ns, end_ns)`` of UTC ns (start inclusive, end exclusive).

    ``2025-10-01`` is the trading date 2025-10-01: from its first session's open (17:00 CT on 2025-09-30) to the
    product's close on that date (16:00 CT for ES, earlier on an early close); ``2025-10-01..2025-10-03`` runs from
    the first date's open to the last date's close. Dates and hours come from the CME trading calendar
    (:mod:`propdesk.model.calendar`); ``product`` is the root whose hours apply (``None``: CME Globex's 17:00-16:00 CT).

    Raises:
        ConfigError: malformed text, a date that is not a trading date (a weekend or holiday) or outside the
            calendar, or a range whose first date is after its last; the message quotes the option.
    """
    from datetime import date  # noqa: PLC0415

    from propdesk.model.calendar import CalendarCoverageError, default_calendar  # noqa: PLC0415
    from propdesk.model.symbology import parse_symbol  # noqa: PLC0415

    m = _SESSION_RE.match(text.strip())
    try:
        first = date.fromisoformat(m.group(1)) if m else None
        last = date.fromisoformat(m.group(2) or m.group(1)) if m else None
    except ValueError:
        first = last = None
    if first is None or last is None:
        raise ConfigError(f"--session {text!r} is not a trading date like 2025-10-01 or a range 2025-10-01..2025-10-03")
    if first > last:
        raise ConfigError(f"--session {text!r}: the first date is after the last")
    cal = default_calendar()
    for d in (first, last):
        try:
            trading = cal.is_trading_date(d)
        except CalendarCoverageError as exc:
            raise ConfigError(f"--session {text!r}: {exc}") from None
        if not trading:
            raise ConfigError(f"--session {text!r}: {d} is not a CME trading date (a weekend or holiday)")
    if product is not None:
        try:
            product = parse_symbol(product).root
        except PropdeskError:
            product = product.upper()  # a root (ES), not a contract (ESZ5)
        try:
            cal.hours(product)
        except PropdeskError:
            product = None  # a root without its own hours trades CME Globex's
    return cal.day_start_ns(first), cal.session_close_ns(last, product)


MAX_SLIPPAGE_TICKS: Final = 10_000
"""The most ticks of slippage ``--slippage-ticks`` accepts (2,500 points on ES): beyond any real market order, and
small enough that a slipped price stays a 64-bit number of ticks."""


def parse_usd(text: str, option: str) -> Decimal:
    """A non-negative USD amount in whole cents (e.g. ``0.62``), at most :data:`MAX_USD`, exact.

    Raises:
        ConfigError: not a number, negative, above :data:`MAX_USD`, or fractions of a cent; the message names
            ``option``.
    """
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ConfigError(f"{option} {text!r} is not a number of USD") from None
    if not value.is_finite() or value < 0:
        raise ConfigError(f"{option} {text!r} must be a non-negative amount of USD")
    if value > MAX_USD:
        raise ConfigError(f"{option} {text!r} is more than {MAX_USD} USD, the largest amount propdesk accepts")
    if value * 100 != (value * 100).to_integral_value():
        raise ConfigError(f"{option} {text!r} is not a whole number of cents")
    return value


def build_sim_config(fill_model: str = "next-open", commission: str = "0", slippage_ticks: int = 0) -> SimConfig:
    """The simulated exchange's config from the command line.

    Args:
        fill_model: ``next-open`` (a market order sent on a bar's close fills at the next bar's open) or
            ``bar-close`` (fills at once at the bar's close); see :class:`~propdesk.brokers.sim.config.SimConfig`.
        commission: USD per contract per side (commission plus fees, whole cents), charged on every fill, so a
            one-contract round trip pays it twice.
        slippage_ticks: ticks (>= 0) against the order on every market-type fill.

    Raises:
        ConfigError: an unknown fill model, a bad amount, negative ticks or more than :data:`MAX_SLIPPAGE_TICKS`; the
            message names the option.
    """
    models = get_args(FillModel)
    if fill_model not in models:
        raise ConfigError(f"--fill-model {fill_model!r} is not one of: {', '.join(models)}")
    fee = parse_usd(commission, "--commission")
    if slippage_ticks < 0:
        raise ConfigError(f"--slippage-ticks {slippage_ticks} must be >= 0")
    if slippage_ticks > MAX_SLIPPAGE_TICKS:
        raise ConfigError(f"--slippage-ticks {slippage_ticks} is more than {MAX_SLIPPAGE_TICKS} ticks")
    try:
        return SimConfig.model_validate(
            {"fill_model": fill_model, "commission_per_side_usd": fee, "slippage_ticks": slippage_ticks}
        )
    except ValidationError as exc:  # pragma: no cover - the checks above cover SimConfig's rules
        raise ConfigError(f"invalid simulator options: {exc}") from None


def trade_rows(trips: Iterable[RoundTrip]) -> list[dict[str, str]]:
    """One row per closed round trip (keys :data:`TRADES_CSV_COLUMNS`), every number as an exact decimal string.

    ``direction`` is ``long`` or ``short``; prices are points (exact, quantity-weighted averages may lie between
    ticks); money is USD with two decimals; times are ISO 8601 UTC (:func:`iso_utc`).
    """
    return [
        {
            "symbol": t.symbol,
            "tag": t.tag,
            "direction": "long" if t.direction > 0 else "short",
            "qty": str(t.qty),
            "entry_time_utc": iso_utc(t.entry_ts_ns),
            "entry_price": str(t.entry_price),
            "exit_time_utc": iso_utc(t.exit_ts_ns),
            "exit_price": str(t.exit_price),
            "gross_pnl_usd": str(t.gross_pnl.as_decimal()),
            "fees_usd": str(t.fees.as_decimal()),
            "net_pnl_usd": str(t.net_pnl.as_decimal()),
        }
        for t in trips
    ]


def write_trades_csv(trips: Iterable[RoundTrip], path: str | Path) -> Path:
    """Write the closed round trips to ``path`` as CSV (header :data:`TRADES_CSV_COLUMNS`; see :func:`trade_rows`).

    A position still open at the end of the data is not a round trip and is not written. Parent directories are
    created. Returns the path written.

    Raises:
        ConfigError: the file cannot be written (the message names it).
    """
    p = Path(path)
    rows = trade_rows(trips)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        with p.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=TRADES_CSV_COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
    except OSError as exc:
        raise ConfigError(f"cannot write the trades CSV {p}: {exc.strerror or exc}") from None
    return p


def _usd(m: Money | None) -> str:
    return "-" if m is None else f"{m.as_decimal():,} USD"


def _ratio(x: float | None, fmt: str = ".2f") -> str:
    return "-" if x is None else format(x, fmt)


def _timeframes(result: BacktestResult) -> str:
    """The strategy's timeframe, and the data's when it differs: ``5m (built from 1m data)``."""
    data = str(result.bars.timeframe)
    tf = result.timeframe or data
    return tf if tf == data else f"{tf} (built from {data} data)"


def summary_rows(result: BacktestResult) -> list[tuple[str, str]]:
    """The backtest's headline figures as (label, value) text rows, for the terminal table and the HTML report.

    Money is exact USD with two decimals; the win rate is a percentage; times are ISO 8601 UTC.
    """
    m = result.metrics
    bars = result.bars
    params = " ".join(f"{k}={v}" for k, v in result.params.items() if k not in ("symbol", "tag") and v != "")
    equity = result.equity.equity_cents
    final = Money(int(equity[-1])) if len(equity) else result.starting_balance
    rows: list[tuple[str, str]] = [
        ("contract", result.symbol),
        ("strategy", f"{result.strategy} {params}".strip()),
    ]
    if len(bars):
        rows.append(("period (UTC)", f"{iso_utc(int(bars.ts_open_ns[0]))} to {iso_utc(int(bars.ts_close_ns[-1]))}"))
    rows += [
        ("bars", f"{len(bars):,}"),
        ("timeframe", _timeframes(result)),
        ("trades (closed round trips)", f"{m.trades:,}"),
        ("wins / losses", f"{m.wins:,} / {m.losses:,}"),
        ("win rate", "-" if m.win_rate is None else f"{m.win_rate * 100:.1f} %"),
        ("net PnL", _usd(m.net_pnl)),
        ("gross PnL", _usd(m.gross_pnl)),
        ("fees", _usd(m.fees)),
        ("profit factor", _ratio(m.profit_factor, ".3f")),
        ("average trade (net)", _usd(m.avg_trade)),
        ("largest win", _usd(m.largest_win)),
        ("largest loss", _usd(m.largest_loss)),
        ("max drawdown", _usd(m.max_drawdown)),
        ("Sharpe (daily, annualized)", _ratio(m.sharpe)),
        ("open position (contracts)", f"{result.open_qty:+d}" if result.open_qty else "0"),
        ("unrealized PnL (not in net)", _usd(result.unrealized)),
        ("starting balance", _usd(result.starting_balance)),
        ("final equity (marked)", _usd(final)),
        ("run time", f"{result.run_s:.3f} s ({result.bars_per_s:,.0f} bars/s)"),
        *(("data warning", w) for w in result.data_warning_summary),
    ]
    return rows


def with_contract(bars: BarSeries) -> BarSeries:
    """``bars`` labelled with the contract they are: a bare root (``ES``) resolves against the WHOLE file (the
    contract front at its last bar, see :func:`~propdesk.model.symbology.resolve_contract`), so a slice taken
    afterwards keeps the file's contract (a September slice of the ESZ5 export stays ESZ5, not ESU5).

    Raises:
        ContractError: the symbol is neither a known contract nor a known root, or a root without bars.
    """
    from propdesk.model.symbology import resolve_contract  # noqa: PLC0415 (loads the contract table)

    symbol = resolve_contract(bars.symbol, int(bars.ts_open_ns[-1]) if len(bars) else None)
    return bars if symbol == bars.symbol else dataclasses.replace(bars, symbol=symbol)
