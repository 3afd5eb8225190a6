"""``propdesk data inspect FILE``: what is in a bar file, and what looks wrong with it.

:func:`inspect_file` loads a market-data file as ``backtest --data`` does (:func:`propdesk.data.loaders.load_bars`:
the format from :func:`propdesk.data.loaders.detect.detect_format`; a bar CSV through its preset, FirstRateData, a
Databento ``ohlcv-*`` DBN file, a Parquet bar file, or trade prints aggregated to 1-minute bars) and computes an
:class:`InspectReport`; :func:`render_report` prints it with Rich.

What is reported, and the rules used (CME equity-index futures hours, America/Chicago: Sunday-Friday 17:00-16:00
with a daily halt 16:00-17:00; https://www.cmegroup.com/trading-hours.html):

* rows, first/last bar open in UTC and America/Chicago, span (first open to last close);
* CME trading days (sessions): a bar belongs to the trading day of ``(Chicago time + 7 h).date()``, i.e. the day
  rolls at 17:00 CT (ARCHITECTURE.md, "The trading day");
* gaps (time between a bar's close and the next bar's open), classified:
  ``weekend`` (touches Saturday, at most 49 h 15 min), ``daily halt`` (covers 16:00-17:00 CT, at most 75 min),
  ``holiday`` (covers the halt or a weekend but is longer: holiday closures, early closes, long weekends),
  ``no trades`` (inside a session, at most 30 min: minutes without trades, which some vendors omit) and
  ``unexpected`` (anything else);
* bars opening outside CME hours (in the daily halt or the weekend), grouped by weekday and time: this is how the
  TopstepX ES export's extra Friday 16:00 CT (17:00 ET, file 22:00) bar shows up;
* isolated bars (a gap of more than 30 min on both sides);
* tick alignment (bars with a price off the tick grid; the tick size is given or inferred as the smallest step
  between distinct prices), flat bars (O=H=L=C) and volume-1 bars;
* volume and bar count per trading day.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
from rich.console import Console
from rich.table import Table
from rich.text import Text

from propdesk.core.errors import DataError
from propdesk.data.indicators.vwap import session_ids
from propdesk.data.loaders.presets import describe_load, load_bars
from propdesk.model.calendar import EXCHANGE_TZ
from propdesk.model.data import NS_PER_HOUR, NS_PER_MINUTE, BarSeries
from propdesk.model.price import Price

CHICAGO: Final[str] = EXCHANGE_TZ
WEEKEND_MAX_NS: Final[int] = 49 * NS_PER_HOUR + 15 * NS_PER_MINUTE
HALT_MAX_NS: Final[int] = 75 * NS_PER_MINUTE
NO_TRADES_MAX_NS: Final[int] = 30 * NS_PER_MINUTE
ISOLATION_NS: Final[int] = 30 * NS_PER_MINUTE
GAP_CLASSES: Final[tuple[str, ...]] = ("weekend", "daily halt", "holiday", "no trades", "unexpected")
_WEEKDAYS: Final[tuple[str, ...]] = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True)
class Gap:
    """No bars from ``start_ns`` (the previous bar's close) to ``end_ns`` (the next bar's open), UTC ns."""

    start_ns: int
    end_ns: int
    kind: str

    @property
    def duration_ns(self) -> int:
        """Length of the gap in ns."""
        return self.end_ns - self.start_ns


@dataclass(frozen=True)
class DayVolume:
    """One CME trading day: its date (ISO), bar count, volume (contracts), first/last bar open (UTC ns)."""

    day: str
    bars: int
    volume: int
    first_ns: int
    last_ns: int


@dataclass(frozen=True)
class InspectReport:
    """The result of :func:`inspect_file`. Times are UTC ns; volumes contracts; tick size points."""

    path: str
    loaded_as: str
    symbol: str
    timeframe: str
    rows: int
    first_ns: int
    last_ns: int
    span_ns: int
    sessions: int
    gap_counts: dict[str, int]
    largest_gap: Gap | None
    top_gaps: list[Gap]
    off_hours: dict[str, int]
    off_hours_examples: list[int]
    isolated_bars: list[int]
    tick_size: float | None
    tick_inferred: bool
    off_tick_bars: int
    first_off_tick_ns: int | None
    flat_bars: int
    volume_one_bars: int
    duplicate_timestamps: int
    total_volume: int
    days: list[DayVolume] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (times stay UTC ns; ISO strings added for first/last)."""
        d = asdict(self)
        d["first_utc"] = _fmt(self.first_ns, "UTC")
        d["last_utc"] = _fmt(self.last_ns, "UTC")
        return d


def _fmt(ts_ns: int, tz: str) -> str:
    t = pd.Timestamp(ts_ns, unit="ns", tz="UTC").tz_convert(tz)
    return f"{t.strftime('%Y-%m-%d %a %H:%M:%S')} {t.tzname()}"


def _dur(ns: int) -> str:
    minutes = ns // NS_PER_MINUTE
    d, rem = divmod(minutes, 24 * 60)
    h, m = divmod(rem, 60)
    return (f"{d}d " if d else "") + f"{h}h{m:02d}m"


def _local_parts(ts_ns: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(weekday Mon=0, minute of day) in America/Chicago for each UTC ns."""
    idx = pd.DatetimeIndex(pd.to_datetime(ts_ns, unit="ns", utc=True)).tz_convert(CHICAGO)
    return np.asarray(idx.day_of_week, dtype=np.int64), np.asarray(idx.hour * 60 + idx.minute, dtype=np.int64)


def classify_gap(start_ns: int, end_ns: int) -> str:
    """Classify a gap by the rules in the module docstring (CME equity hours, America/Chicago).

    Lengths are measured on the Chicago wall clock, so a weekend that spans a DST change is still a weekend.
    """
    start = pd.Timestamp(start_ns, unit="ns", tz="UTC").tz_convert(CHICAGO)
    end = pd.Timestamp(end_ns, unit="ns", tz="UTC").tz_convert(CHICAGO)
    dur = int((end.tz_localize(None) - start.tz_localize(None)).value)
    days = pd.date_range(start.normalize(), end.normalize(), freq="D")
    if any(d.weekday() == 5 for d in days):
        return "weekend" if dur <= WEEKEND_MAX_NS else "holiday"
    covers_halt = False
    for d in days:
        halt_start, halt_end = d + pd.Timedelta(hours=16), d + pd.Timedelta(hours=17)
        if start <= halt_start and end >= halt_end:
            covers_halt = True
            break
    if covers_halt:
        return "daily halt" if dur <= HALT_MAX_NS else "holiday"
    return "no trades" if dur <= NO_TRADES_MAX_NS else "unexpected"


def _infer_tick(prices: npt.NDArray[np.float64]) -> float | None:
    u = np.unique(np.round(prices, 9))
    if len(u) < 2:
        return None
    steps = np.diff(u)
    step = float(steps[steps > 0].min())
    return float(Price.of(round(step, 9)))


def _load(path: Path, options: dict[str, Any]) -> tuple[BarSeries, str]:
    """The file's bars and how they were read: the format detection and loaders of ``backtest --data``."""
    loader_opts = {k: options[k] for k in ("format", "symbol", "timeframe", "tz", "clock_offset", "stamp", "tick_size")}
    return load_bars(path, **loader_opts), describe_load(path, **loader_opts)


def inspect_file(
    path: str | Path,
    *,
    tz: str | None = None,
    clock_offset: str | None = None,
    stamp: str | None = None,
    symbol: str | None = None,
    timeframe: str | None = None,
    format: str | None = None,  # mirrors the CLI option --format (input format)
    tick_size: float | str | None = None,
    top_gaps: int = 10,
) -> InspectReport:
    """Load a bar file and compute an :class:`InspectReport`.

    Options override the file's preset (see :func:`propdesk.data.loaders.load_bars`): ``tz``, ``clock_offset``,
    ``stamp`` ("start" | "end"), ``symbol``, ``timeframe`` (e.g. "1m"), ``format`` ("csv" | "firstrate" for a bar
    CSV; DBN, Parquet and trade prints are detected from the file), ``tick_size`` (points; inferred when None).
    ``top_gaps`` is how many of the longest gaps to list.

    Raises:
        DataError: the file cannot be loaded (row-numbered, see the loaders) or is not a bar file.
    """
    p = Path(path)
    opts = {
        "tz": tz,
        "clock_offset": clock_offset,
        "stamp": stamp,
        "symbol": symbol,
        "timeframe": timeframe,
        "format": format,
        "tick_size": tick_size,
    }
    bars, loaded_as = _load(p, opts)
    return report_for(bars, path=str(p), loaded_as=loaded_as, tick_size=tick_size, top_gaps=top_gaps)


def report_for(
    bars: BarSeries, *, path: str = "", loaded_as: str = "", tick_size: float | str | None = None, top_gaps: int = 10
) -> InspectReport:
    """Compute an :class:`InspectReport` for bars already loaded (see :func:`inspect_file`).

    Raises:
        DataError: no bars.
    """
    n = len(bars)
    if n == 0:
        raise DataError("no bars to inspect", path=path or None)
    to, tc = bars.ts_open_ns, bars.ts_close_ns
    notes: list[str] = []

    # Gaps.
    gap_idx = np.flatnonzero(to[1:] > tc[:-1])
    gaps = [Gap(int(tc[i]), int(to[i + 1]), classify_gap(int(tc[i]), int(to[i + 1]))) for i in gap_idx.tolist()]
    counts = Counter(g.kind for g in gaps)
    gap_counts = {k: counts.get(k, 0) for k in GAP_CLASSES}
    ranked = sorted(gaps, key=lambda g: g.duration_ns, reverse=True)

    # Bars outside CME hours (daily halt 16:00-17:00 CT, Friday 16:00 -> Sunday 17:00).
    wd, mod = _local_parts(to)
    off = (
        ((wd <= 3) & (mod >= 16 * 60) & (mod < 17 * 60))
        | ((wd == 4) & (mod >= 16 * 60))
        | (wd == 5)
        | ((wd == 6) & (mod < 17 * 60))
    )
    off_hours = dict(
        Counter(
            f"{_WEEKDAYS[w]} {m // 60:02d}:{m % 60:02d} CT"
            for w, m in zip(wd[off].tolist(), mod[off].tolist(), strict=True)
        )
    )
    off_examples = [int(t) for t in to[off][:5]]
    if bars.timeframe.unit == "d":
        off_hours, off_examples = {}, []  # daily bars open at the session start by construction

    # Isolated bars: long gaps on both sides.
    before = np.concatenate(([np.iinfo(np.int64).max], to[1:] - tc[:-1]))
    after = np.concatenate((to[1:] - tc[:-1], [np.iinfo(np.int64).max]))
    isolated = [int(t) for t in to[(before > ISOLATION_NS) & (after > ISOLATION_NS)]] if n > 1 else []

    # Tick alignment.
    prices = np.concatenate([bars.open, bars.high, bars.low, bars.close])
    inferred = tick_size is None
    tick = _infer_tick(prices) if inferred else float(Price.of(tick_size))  # type: ignore[arg-type]
    off_tick, first_off = 0, None
    if tick:
        ohlc = np.stack([bars.open, bars.high, bars.low, bars.close])
        ticks = ohlc / tick
        bad = (np.abs(ticks - np.round(ticks)) > 1e-6).any(axis=0)
        off_tick = int(bad.sum())
        first_off = int(to[np.argmax(bad)]) if off_tick else None
    if inferred and tick is not None:
        notes.append(f"tick size {tick:g} inferred from the smallest step between distinct prices")

    flat = int(((bars.open == bars.high) & (bars.high == bars.low) & (bars.low == bars.close)).sum())
    vol_one = int((bars.volume == 1).sum())

    # Trading days: the day after the CT date of the 17:00 CT session open each bar opens in.
    opens = pd.DatetimeIndex(pd.to_datetime(session_ids(to), unit="ns", utc=True)).tz_convert(CHICAGO)
    trade_day = opens.tz_localize(None).normalize() + pd.Timedelta(days=1)
    if bars.timeframe.unit == "d":
        trade_day = pd.DatetimeIndex(pd.to_datetime(tc, unit="ns", utc=True)).tz_convert(CHICAGO).tz_localize(None)
        trade_day = trade_day.normalize()
    frame = pd.DataFrame({"day": trade_day, "ts": to, "volume": bars.volume})
    grouped = frame.groupby("day", sort=True).agg(
        bars=("ts", "size"), volume=("volume", "sum"), first=("ts", "min"), last=("ts", "max")
    )
    days = [
        DayVolume(pd.Timestamp(d).strftime("%Y-%m-%d"), int(nb), int(v), int(f), int(la))
        for d, nb, v, f, la in zip(
            grouped.index,
            grouped["bars"].to_numpy(),
            grouped["volume"].to_numpy(),
            grouped["first"].to_numpy(),
            grouped["last"].to_numpy(),
            strict=True,
        )
    ]
    if off_hours:
        top = max(off_hours.items(), key=lambda kv: kv[1])
        notes.append(f"{sum(off_hours.values())} bar(s) open outside CME hours; most common: {top[1]} x {top[0]}")
    if gap_counts["unexpected"]:
        notes.append(f"{gap_counts['unexpected']} gap(s) inside a session longer than 30 min")

    return InspectReport(
        path=path,
        loaded_as=loaded_as,
        symbol=bars.symbol,
        timeframe=str(bars.timeframe),
        rows=n,
        first_ns=int(to[0]),
        last_ns=int(to[-1]),
        span_ns=int(tc[-1] - to[0]),
        sessions=len(days),
        gap_counts=gap_counts,
        largest_gap=ranked[0] if ranked else None,
        top_gaps=ranked[:top_gaps],
        off_hours=off_hours,
        off_hours_examples=off_examples,
        isolated_bars=isolated,
        tick_size=tick,
        tick_inferred=inferred,
        off_tick_bars=off_tick,
        first_off_tick_ns=first_off,
        flat_bars=flat,
        volume_one_bars=vol_one,
        duplicate_timestamps=int((np.diff(to) == 0).sum()),
        total_volume=int(bars.volume.sum()),
        days=days,
        notes=notes,
    )


def render_report(report: InspectReport, console: Console, *, max_days: int | None = None) -> None:
    """Print ``report`` as Rich tables: summary, gaps, out-of-hours bars, volume per trading day, notes.

    ``max_days`` limits the per-day table to the first and last ``max_days // 2`` days (None: all days).
    """
    r = report
    summary = Table(title=f"{r.symbol} {r.timeframe} - {Path(r.path).name}", show_header=False)
    summary.add_column("field", style="bold")
    summary.add_column("value")
    summary.add_row("loaded as", r.loaded_as)
    summary.add_row("rows", f"{r.rows:,}")
    summary.add_row("first bar", f"{_fmt(r.first_ns, 'UTC')}  |  {_fmt(r.first_ns, CHICAGO)}")
    summary.add_row("last bar", f"{_fmt(r.last_ns, 'UTC')}  |  {_fmt(r.last_ns, CHICAGO)}")
    summary.add_row("span", _dur(r.span_ns))
    summary.add_row("trading days (17:00 CT roll)", str(r.sessions))
    summary.add_row("total volume", f"{r.total_volume:,}")
    summary.add_row("gaps", ", ".join(f"{k}: {v}" for k, v in r.gap_counts.items()))
    if r.largest_gap is not None:
        summary.add_row("largest gap", f"{_dur(r.largest_gap.duration_ns)} ({r.largest_gap.kind})")
    tick = "-" if r.tick_size is None else f"{r.tick_size:g}" + (" (inferred)" if r.tick_inferred else "")
    summary.add_row("tick size", tick)
    summary.add_row("bars off the tick grid", str(r.off_tick_bars))
    summary.add_row("duplicate timestamps", str(r.duplicate_timestamps))
    summary.add_row("flat bars (O=H=L=C)", f"{r.flat_bars:,}")
    summary.add_row("volume-1 bars", f"{r.volume_one_bars:,}")
    summary.add_row("isolated bars (>30 min gap both sides)", str(len(r.isolated_bars)))
    console.print(summary)

    if r.top_gaps:
        gt = Table(title=f"Largest {len(r.top_gaps)} gaps")
        for col in ("from (CT)", "to (CT)", "length", "kind"):
            gt.add_column(col)
        for g in r.top_gaps:
            gt.add_row(_fmt(g.start_ns, CHICAGO), _fmt(g.end_ns, CHICAGO), _dur(g.duration_ns), g.kind)
        console.print(gt)

    if r.off_hours:
        ot = Table(title="Bars opening outside CME hours (halt 16:00-17:00 CT, weekend)")
        ot.add_column("weekday and time")
        ot.add_column("bars", justify="right")
        for k, v in sorted(r.off_hours.items(), key=lambda kv: -kv[1]):
            ot.add_row(k, str(v))
        console.print(ot)

    days = r.days
    if max_days is not None and len(days) > max_days:
        half = max(1, max_days // 2)
        days = [*days[:half], *days[-half:]]
    dt = Table(title="Volume per trading day")
    for col, just in (("trading day", "left"), ("bars", "right"), ("volume", "right"), ("first bar (CT)", "left")):
        dt.add_column(col, justify=just)  # type: ignore[arg-type]
    dt.add_column("last bar (CT)")
    for d in days:
        dt.add_row(d.day, f"{d.bars:,}", f"{d.volume:,}", _fmt(d.first_ns, CHICAGO), _fmt(d.last_ns, CHICAGO))
    console.print(dt)
    for note in r.notes:
        console.print(Text.assemble(("note:", "yellow"), f" {note}"), highlight=False)
