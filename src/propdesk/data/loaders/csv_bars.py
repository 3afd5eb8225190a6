"""Load OHLCV bars from a CSV file with a declared time zone, clock offset and bar-stamp convention.

The file needs a header naming a time column (``timestamp``, ``timestamp_utc``, ``datetime``, ``date``, ``time``,
``ts`` or ``ts_event``) and ``open``, ``high``, ``low``, ``close``, ``volume`` (case-insensitive, any order, extra
columns ignored). Files without a header are read as ``timestamp,open,high,low,close,volume[,...]`` when the first
line starts with a date. ``.gz``/``.zst``/``.bz2`` compression is inferred from the file name.

Errors name the file's line (``DataError.line``, what an editor shows: the header is line 1, the first bar line 2;
for a headerless file the first bar is line 1) and keep the 1-based *data* row in ``DataError.row`` (header = row 0).
Every row is validated before anything is returned, and the first problem raises
:class:`~propdesk.core.errors.DataError` naming the file, the line and the column; a load never returns part of a file.

Clock handling (see ``shared/data/README.md`` for why this exists): the file's clock may run a fixed ``clock_offset``
*ahead* of the declared zone's wall clock. Loading subtracts the offset, then localizes the wall-clock time in ``tz``
(DST-aware, via pandas/zoneinfo), then converts to UTC nanoseconds. Timestamps that carry their own UTC offset (e.g.
``...Z`` or ``+00:00``) are absolute; ``tz`` is then ignored but ``clock_offset`` still applies.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from propdesk.core.errors import DataError
from propdesk.model.data import NS_PER_HOUR, NS_PER_MINUTE, NS_PER_SECOND, BarSeries, Timeframe
from propdesk.model.price import Price

Stamp = Literal["start", "end"]
Ambiguous = Literal["infer", "earliest", "latest"]

TIME_COLUMNS: Final[tuple[str, ...]] = ("timestamp", "timestamp_utc", "datetime", "date", "time", "ts", "ts_event")
PRICE_COLUMNS: Final[tuple[str, ...]] = ("open", "high", "low", "close")
BAR_COLUMNS: Final[tuple[str, ...]] = (*PRICE_COLUMNS, "volume")

_OFFSET_UNIT_RE = re.compile(r"^\s*([+-]?)\s*(\d+(?:\.\d+)?)\s*(h|m|min|s)\s*$", re.IGNORECASE)
_OFFSET_HHMM_RE = re.compile(r"^\s*([+-]?)(\d{1,2}):(\d{2})(?::(\d{2}))?\s*$")
_PARSER_LINE_RE = re.compile(r"line (\d+)")
_DATE_START_RE = re.compile(r"^\s*\d{4}-\d{2}-\d{2}")


def parse_clock_offset(text: str | None) -> int:
    """Parse a clock offset into nanoseconds: ``"5h"``, ``"-30m"``, ``"90s"``, ``"+05:00"``, ``"-04:30"``, ``None``.

    The offset is how far the file's clock runs *ahead* of the declared zone's wall clock (positive = ahead).

    Raises:
        DataError: for any other text.
    """
    if text is None or not str(text).strip():
        return 0
    m = _OFFSET_UNIT_RE.match(str(text))
    if m is not None:
        sign = -1 if m.group(1) == "-" else 1
        unit = m.group(3).lower()
        scale = {"h": NS_PER_HOUR, "m": NS_PER_MINUTE, "min": NS_PER_MINUTE, "s": NS_PER_SECOND}[unit]
        return sign * round(float(m.group(2)) * scale)
    m = _OFFSET_HHMM_RE.match(str(text))
    if m is not None:
        sign = -1 if m.group(1) == "-" else 1
        secs = int(m.group(2)) * 3600 + int(m.group(3)) * 60 + int(m.group(4) or 0)
        return sign * secs * NS_PER_SECOND
    raise DataError(f"clock offset {text!r} is not like '5h', '-30m', '90s' or '+05:00'")


def as_timeframe(timeframe: str | Timeframe) -> Timeframe:
    """``Timeframe`` from a string like ``"1m"`` (or pass one through). Raises DataError if malformed."""
    if isinstance(timeframe, Timeframe):
        return timeframe
    try:
        return Timeframe.parse(timeframe)
    except ValueError as exc:
        raise DataError(str(exc)) from None


@dataclass(frozen=True)
class RawBars:
    """Validated bar columns before time conversion: row ``i`` of every array is data row ``i + 1`` of the file.

    ``wall_ns`` holds the parsed timestamps as naive nanoseconds (or UTC ns when ``aware`` is True).
    """

    path: Path
    wall_ns: npt.NDArray[np.int64]
    aware: bool
    open: npt.NDArray[np.float64]
    high: npt.NDArray[np.float64]
    low: npt.NDArray[np.float64]
    close: npt.NDArray[np.float64]
    volume: npt.NDArray[np.int64]
    extra: dict[str, pd.Series]
    header_lines: int = 1


@contextmanager
def file_lines(header_lines: int) -> Iterator[None]:
    """Re-raise a :class:`DataError` of the block with its file line (:meth:`DataError.at_line`)."""
    try:
        yield
    except DataError as exc:
        raise exc.at_line(header_lines) from None


def header_line_count(path: Path) -> int:
    """1 when ``path``'s first line is a header, 0 for a headerless CSV (its first line starts with a date).

    Raises:
        DataError: a missing or unreadable file.
    """
    headerless, _ = _read_header(path)
    return 0 if headerless else 1


def _first_true(mask: npt.NDArray[np.bool_]) -> int | None:
    if not bool(mask.any()):
        return None
    return int(np.argmax(mask))


def _read_header(path: Path) -> tuple[bool, list[str]]:
    """(headerless, raw column names of the first line)."""
    if not path.is_file():
        raise DataError("file not found", path=path)
    try:
        first = [str(c) for c in pd.read_csv(path, nrows=0, dtype=str).columns]
    except (OSError, ValueError, pd.errors.ParserError, EOFError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read CSV: {exc}", path=path) from None
    return bool(first) and bool(_DATE_START_RE.match(first[0])), first


def _names(headerless: bool, raw: list[str], ncols: int, default_names: tuple[str, ...]) -> list[str]:
    if headerless:
        names = [*default_names, *(f"extra_{i}" for i in range(max(0, ncols - len(default_names))))]
        return names[:ncols]
    return [c.strip().lower() for c in raw]


def read_csv_strings(path: Path, default_names: tuple[str, ...]) -> pd.DataFrame:
    """Read every field of ``path`` as a string (no NA conversion, blank lines kept as empty rows).

    Column names are lower-cased and stripped. A headerless file gets ``default_names`` (extra fields are named
    ``extra_<n>``). Raises DataError (with the data row) on a row with too many fields or an unreadable file.
    """
    headerless, raw = _read_header(path)
    try:
        df = pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            header=None if headerless else 0,
        )
    except pd.errors.ParserError as exc:
        m = _PARSER_LINE_RE.search(str(exc))
        row = None if m is None else int(m.group(1)) - (0 if headerless else 1)
        raise DataError(f"malformed CSV row: {exc}", path=path, row=row) from None
    except (OSError, ValueError, EOFError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read CSV: {exc}", path=path) from None
    df.columns = pd.Index(_names(headerless, raw, df.shape[1], default_names))
    return df


def _read_typed_fast(path: Path, default_names: tuple[str, ...]) -> pd.DataFrame | None:
    """Fast path: parse the bar columns as float64 directly; None when anything is off (the slow path then finds
    and names the bad row)."""
    headerless, raw = _read_header(path)
    names = _names(headerless, raw, len(raw), default_names)
    if not set(BAR_COLUMNS) <= set(names):
        return None
    if headerless:
        dtypes: dict[str | int, Any] = {i: np.float64 for i, n in enumerate(names) if n in BAR_COLUMNS}
    else:
        dtypes = {r: np.float64 for r, n in zip(raw, names, strict=True) if n in BAR_COLUMNS}
    try:
        df = pd.read_csv(path, dtype=dtypes, skip_blank_lines=False, header=None if headerless else 0)
    except (ValueError, TypeError, pd.errors.ParserError, OSError, EOFError, UnicodeDecodeError):
        return None
    if df.shape[1] != len(names):
        return None
    df.columns = pd.Index(names)
    vals = df[list(BAR_COLUMNS)].to_numpy(dtype=np.float64)
    if not bool(np.isfinite(vals).all()):
        return None
    return df


def _time_column(df: pd.DataFrame, path: Path) -> str:
    for name in TIME_COLUMNS:
        if name in df.columns:
            return name
    raise DataError(
        f"header has no time column (expected one of {', '.join(TIME_COLUMNS)}; found {', '.join(df.columns)})",
        path=path,
        row=0,
    )


def parse_timestamps(strings: pd.Series, path: Path, column: str) -> tuple[npt.NDArray[np.int64], bool]:
    """Parse ISO-8601-like timestamps; returns (ns, aware). Naive results are wall-clock ns; aware ones UTC ns.

    Raises DataError naming the first row (1-based) whose timestamp is empty or unparseable.
    """
    s = strings.str.strip()
    empty = (s == "").to_numpy()
    if (i := _first_true(empty)) is not None:
        raise DataError(f"column {column!r}: missing timestamp", path=path, row=i + 1)
    try:
        parsed = pd.to_datetime(s, format="ISO8601", errors="coerce")
    except (ValueError, TypeError) as exc:
        # Mixed naive/offset timestamps end up here; find the first row that disagrees with row 1.
        has_offset = s.str.contains(r"(?:Z|[+-]\d{2}:?\d{2})$", regex=True).to_numpy()
        bad = has_offset != has_offset[0]
        i = _first_true(bad)
        raise DataError(
            f"column {column!r}: timestamps mix local times and UTC offsets ({exc})",
            path=path,
            row=None if i is None else i + 1,
        ) from None
    nat = parsed.isna().to_numpy()
    if (i := _first_true(nat)) is not None:
        raise DataError(f"column {column!r}: not a timestamp: {s.iloc[i]!r}", path=path, row=i + 1)
    aware = isinstance(parsed.dtype, pd.DatetimeTZDtype)
    if aware:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    ns = parsed.to_numpy(dtype="datetime64[ns]").view(np.int64)
    return np.ascontiguousarray(ns, dtype=np.int64), aware


def parse_numbers(strings: pd.Series, path: Path, column: str) -> npt.NDArray[np.float64]:
    """Parse a numeric column; raises DataError at the first empty, non-numeric or non-finite field."""
    s = strings.str.strip()
    empty = (s == "").to_numpy()
    if (i := _first_true(empty)) is not None:
        raise DataError(f"column {column!r}: missing value", path=path, row=i + 1)
    vals = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(vals)
    if (i := _first_true(bad)) is not None:
        raise DataError(f"column {column!r}: not a finite number: {s.iloc[i]!r}", path=path, row=i + 1)
    return vals


def read_raw_bars(path: str | Path, tick_size: float | str | None = None) -> RawBars:
    """Read and validate the bar fields of a CSV file (no time-zone handling yet). See the module docstring.

    Checks, each reported at its first failing row: missing/non-numeric fields, negative or fractional volume,
    high < low, high/low not bounding open and close, and (when ``tick_size`` is given) prices off the tick grid.

    Raises:
        DataError: as above, naming the file, the 1-based data row and the column.
    """
    p = Path(path)
    header_lines = header_line_count(p)
    with file_lines(header_lines):
        return _read_raw_bars(p, tick_size, header_lines)


def _read_raw_bars(p: Path, tick_size: float | str | None, header_lines: int) -> RawBars:
    default_names = ("timestamp", *BAR_COLUMNS)
    df = _read_typed_fast(p, default_names)
    if df is not None:
        tcol = _time_column(df, p)
        if bool(df[tcol].isna().any()):
            df = None
    cols: dict[str, npt.NDArray[np.float64]] = {}
    wall: npt.NDArray[np.int64] | None = None
    aware = False
    if df is not None:
        wall, aware = parse_timestamps(df[tcol].astype(str), p, tcol)
        cols = {name: df[name].to_numpy(dtype=np.float64) for name in BAR_COLUMNS}
    else:
        # Slow path: every field as text, so the first bad row and column can be named exactly.
        df = read_csv_strings(p, default_names)
        tcol = _time_column(df, p)
        missing = [name for name in BAR_COLUMNS if name not in df.columns]
        if missing:
            found = ", ".join(df.columns)
            raise DataError(f"header lacks column(s) {', '.join(missing)} (found {found})", path=p, row=0)
        # Parse every column first and report the earliest failing row, so the message points at the first bad line.
        errors: list[DataError] = []
        try:
            wall, aware = parse_timestamps(df[tcol], p, tcol)
        except DataError as exc:
            errors.append(exc)
        for name in BAR_COLUMNS:
            try:
                cols[name] = parse_numbers(df[name], p, name)
            except DataError as exc:
                errors.append(exc)
        if errors:
            raise min(errors, key=lambda e: e.row if e.row is not None else 0)
    if len(df) == 0:
        raise DataError("file has no data rows", path=p)
    assert wall is not None
    o, h, lo, c, v = (cols[k] for k in BAR_COLUMNS)
    checks: list[tuple[npt.NDArray[np.bool_], str, str]] = [
        (v < 0, "volume", "negative volume"),
        (v != np.floor(v), "volume", "volume is not a whole number of contracts"),
        (h < lo, "high", "high is below low"),
        ((h < o) | (h < c), "high", "high is below open or close"),
        ((lo > o) | (lo > c), "low", "low is above open or close"),
    ]
    if tick_size is not None:
        tick = float(Price.of(tick_size))
        if tick <= 0:
            raise DataError(f"tick size {tick_size!r} must be positive", path=p)
        for name, arr in zip(PRICE_COLUMNS, (o, h, lo, c), strict=True):
            ticks = arr / tick
            checks.append((np.abs(ticks - np.round(ticks)) > 1e-6, name, f"price is not a multiple of tick {tick}"))
    first: tuple[int, str, str] | None = None
    for mask, col, reason in checks:
        i = _first_true(mask)
        if i is not None and (first is None or i < first[0]):
            first = (i, col, reason)
    if first is not None:
        i, col, reason = first
        raise DataError(f"column {col!r}: {reason} (value {cols[col][i]!r})", path=p, row=i + 1)
    extra = {k: df[k] for k in df.columns if k != tcol and k not in BAR_COLUMNS}
    return RawBars(p, wall, aware, o, h, lo, c, v.astype(np.int64), extra, header_lines)


def localize_wall_clock(
    wall_ns: npt.NDArray[np.int64], tz: str, path: Path | None = None, ambiguous: Ambiguous = "infer"
) -> npt.NDArray[np.int64]:
    """Convert naive wall-clock nanoseconds in zone ``tz`` to UTC nanoseconds, DST-aware.

    A wall time that does not exist (spring-forward gap) raises DataError naming its row. A wall time that exists
    twice (fall-back hour) is resolved by ``ambiguous``: ``"infer"`` uses file order (within one fall-back night,
    times are daylight time until the wall clock steps backwards, standard time after; a night whose repeated hour
    never steps back cannot be told apart and raises DataError), ``"earliest"`` takes daylight time, ``"latest"``
    standard time.

    Raises:
        DataError: unknown zone, nonexistent time, or an ambiguous time that file order cannot resolve.
    """
    if tz.upper() == "UTC":
        return wall_ns.copy()
    idx = pd.DatetimeIndex(wall_ns.view("datetime64[ns]"))
    n = len(idx)
    try:
        as_dst = idx.tz_localize(tz, ambiguous=np.ones(n, dtype=bool), nonexistent="NaT")
        as_std = idx.tz_localize(tz, ambiguous=np.zeros(n, dtype=bool), nonexistent="NaT")
    except (KeyError, ValueError) as exc:
        raise DataError(f"cannot localize to time zone {tz!r}: {exc}", path=path) from None
    dst_ns = as_dst.asi8
    std_ns = as_std.asi8
    nat = np.iinfo(np.int64).min
    if (i := _first_true(dst_ns == nat)) is not None:
        stamp = idx[i].strftime("%Y-%m-%d %H:%M:%S")
        raise DataError(f"local time {stamp} does not exist in {tz} (DST spring-forward gap)", path=path, row=i + 1)
    amb = dst_ns != std_ns
    if not bool(amb.any()):
        return np.ascontiguousarray(dst_ns, dtype=np.int64)
    use_dst = np.ones(n, dtype=bool)
    if ambiguous == "latest":
        use_dst[amb] = False
    elif ambiguous == "infer":
        pos = np.flatnonzero(amb)
        day = wall_ns[pos] // (24 * NS_PER_HOUR)
        for d in np.unique(day):
            group = pos[day == d]
            steps_back = np.flatnonzero(np.diff(wall_ns[group]) <= 0)
            if len(steps_back) == 0:
                i = int(group[0])
                stamp = idx[i].strftime("%Y-%m-%d %H:%M:%S")
                raise DataError(
                    f"local time {stamp} is ambiguous in {tz} (DST fall-back) and the file never repeats the hour, "
                    "so file order cannot tell daylight from standard time; pass ambiguous='earliest' or 'latest'",
                    path=path,
                    row=i + 1,
                )
            use_dst[group[steps_back[0] + 1 :]] = False
    return np.ascontiguousarray(np.where(use_dst, dst_ns, std_ns), dtype=np.int64)


def check_increasing(ts_ns: npt.NDArray[np.int64], path: Path | None, column: str = "timestamp") -> None:
    """Raise DataError at the first row whose UTC time equals (duplicate) or precedes the row before it."""
    if len(ts_ns) < 2:
        return
    d = np.diff(ts_ns)
    if (i := _first_true(d <= 0)) is not None:
        kind = "duplicate timestamp (same as" if d[i] == 0 else "timestamp goes backwards (earlier than"
        raise DataError(f"column {column!r}: {kind} the line before)", path=path, row=i + 2)


def load_bars_csv(
    path: str | Path,
    *,
    symbol: str,
    timeframe: str | Timeframe = "1m",
    tz: str = "UTC",
    clock_offset: str | None = None,
    stamp: Stamp = "start",
    tick_size: float | str | None = None,
    ambiguous: Ambiguous = "infer",
) -> BarSeries:
    """Load a CSV of OHLCV bars into a :class:`BarSeries` (UTC ns, points, contracts).

    Args:
        path: the CSV file (may be compressed).
        symbol: the contract symbol to label the bars with (e.g. ``"ESZ5"``).
        timeframe: the bar interval, e.g. ``"1m"``; used to derive the other end of each bar.
        tz: the IANA zone of the file's wall clock (``"America/New_York"``); ignored for timestamps with offsets.
        clock_offset: how far the file's clock runs AHEAD of ``tz``'s wall clock, e.g. ``"5h"`` or ``"+05:00"``.
            The TopstepX ES export in shared/data needs ``tz="America/New_York", clock_offset="5h"`` (file time =
            US/Eastern wall clock + 5 h; see shared/data/README.md).
        stamp: ``"start"`` if a row's time is the bar's open, ``"end"`` if it is the bar's close.
        tick_size: if given (points), every price must be a whole multiple of it.
        ambiguous: how to resolve wall times repeated at a DST fall-back (see :func:`localize_wall_clock`).

    Errors name the file's line (``DataError.line``) and keep the data row (``DataError.row``, header = row 0).

    Raises:
        DataError: unreadable file, missing column, any malformed row (file, row and column named), nonexistent or
            unresolvable local times, duplicate or decreasing timestamps. Nothing is returned on error.
    """
    tf = as_timeframe(timeframe)
    if stamp not in ("start", "end"):
        raise DataError(f"stamp must be 'start' or 'end', not {stamp!r}", path=path)
    raw = read_raw_bars(path, tick_size=tick_size)
    wall = raw.wall_ns - parse_clock_offset(clock_offset)
    with file_lines(raw.header_lines):
        utc = wall if raw.aware else localize_wall_clock(wall, tz, raw.path, ambiguous)
        check_increasing(utc, raw.path)
    if stamp == "start":
        ts_open, ts_close = utc, utc + tf.ns
    else:
        ts_open, ts_close = utc - tf.ns, utc
    return BarSeries(
        symbol, tf, ts_open, ts_close, raw.open, raw.high, raw.low, raw.close, raw.volume, source=str(raw.path)
    )
