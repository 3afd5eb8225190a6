"""Bar-file presets: load a known bar file without typing its clock flags.

A preset is matched by the file *name* (a regular expression on the base name) and, when the preset names one, by the
CSV header line. It supplies the format (``"csv"`` generic bars or ``"firstrate"``), time zone, clock offset, stamp
convention, timeframe, tick size and a default symbol. Every field can be overridden by the caller
(``load_bars(path, symbol="ESZ5", clock_offset="0h")``). A file that matches no preset loads as a generic CSV with
UTC start-stamped 1-minute bars unless overridden; :func:`describe_load` says which rule applied.

Presets (sources: shared/data/README.md, which documents how each clock was checked):

* ``ES_1min[_YYYYMMDD_YYYYMMDD].csv`` with header ``timestamp,open,high,low,close,volume``: the TopstepX/ProjectX
  ES export. File time = US/Eastern wall clock + 5 h, bars stamped at their start, tick 0.25. The symbol defaults to
  the root ``ES`` because the contract (ESZ5 for the shared file) is not in the file: pass ``symbol=``.
* ``<SYMBOL>.XCME_<n>min_bars_*.csv[.gz]`` with a ``timestamp_utc`` header: nautilus_trader's XCME test bars. UTC,
  stamped at the bar's *end* (each session's first bar is 23:01 and its last 22:00 UTC). Symbol from the name.
* FirstRateData (``<ROOT>_<n>min|hour|day_sample.csv`` and the ``_full_``/``_continuous`` names the vendor uses):
  US/Eastern wall clock, start-stamped, timeframe from the name (see :mod:`propdesk.data.loaders.firstrate`).

A ``.parquet`` file is a propdesk bar file (:func:`propdesk.data.catalog.read_bar_file`: UTC ns, symbol and
timeframe in its metadata); of the overrides only ``symbol`` applies to it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final, Literal

import pandas as pd

from propdesk.core.errors import DataError
from propdesk.data.loaders.csv_bars import Ambiguous, Stamp, as_timeframe, load_bars_csv
from propdesk.data.loaders.dbn import dbn_schema, load_dbn_bars
from propdesk.data.loaders.detect import detect_format
from propdesk.data.loaders.firstrate import load_firstrate_csv, timeframe_from_name
from propdesk.data.loaders.trades_csv import load_trades_csv
from propdesk.model.data import BarSeries, Timeframe

BarFormat = Literal["csv", "firstrate"]


@dataclass(frozen=True)
class BarPreset:
    """How to load one kind of bar file; ``None`` fields mean "derive" (symbol, timeframe) or "not checked"."""

    name: str
    pattern: str
    format: BarFormat = "csv"
    header: str | None = None
    symbol: str | None = None
    timeframe: str | None = None
    tz: str = "UTC"
    clock_offset: str | None = None
    stamp: Stamp = "start"
    tick_size: str | None = None
    note: str = ""

    def matches(self, path: Path) -> bool:
        """True when the file name matches and (if set) the header line equals :attr:`header`."""
        if re.search(self.pattern, path.name, re.IGNORECASE) is None:
            return False
        if self.header is None:
            return True
        try:
            cols = pd.read_csv(path, nrows=0).columns
        except (OSError, ValueError, EOFError, pd.errors.ParserError):
            return False
        return ",".join(str(c).strip().lower() for c in cols) == self.header


PRESETS: Final[tuple[BarPreset, ...]] = (
    BarPreset(
        name="topstepx-es-export",
        pattern=r"^ES_1min(?:_\d{8}_\d{8})?\.csv$",
        header="timestamp,open,high,low,close,volume",
        symbol="ES",
        timeframe="1m",
        tz="America/New_York",
        clock_offset="5h",
        stamp="start",
        tick_size="0.25",
        note="TopstepX ES export: file time = US/Eastern + 5 h, start-stamped (shared/data/README.md)",
    ),
    BarPreset(
        name="nautilus-xcme-bars",
        pattern=r"^[A-Z0-9]+\.XCME_\d+min_bars_.*\.csv(?:\.gz)?$",
        header="timestamp_utc,open,high,low,close,volume",
        tz="UTC",
        stamp="end",
        note="nautilus_trader XCME bars: UTC, end-stamped",
    ),
    BarPreset(
        name="firstratedata",
        pattern=r"^[A-Z0-9]+_(?:full_|continuous_)?\d+(?:min|hour|day)(?:_sample|_continuous|_[A-Za-z]+)*\.(?:csv|txt)$",
        format="firstrate",
        tz="America/New_York",
        note="FirstRateData: US/Eastern wall clock, start-stamped, timeframe from the file name",
    ),
)

_SYMBOL_RE = re.compile(r"^([A-Za-z0-9]+)")


def find_preset(path: str | Path) -> BarPreset | None:
    """The first preset in :data:`PRESETS` that matches ``path``, or None."""
    p = Path(path)
    for preset in PRESETS:
        if preset.matches(p):
            return preset
    return None


def _symbol_from_name(path: Path) -> str:
    m = _SYMBOL_RE.match(path.name)
    return m.group(1) if m else path.stem


def resolve_preset(path: str | Path, **overrides: Any) -> BarPreset:
    """The preset for ``path`` with ``overrides`` applied (keys: format, symbol, timeframe, tz, clock_offset, stamp,
    tick_size); a generic UTC start-stamped CSV preset when none matches.

    Raises:
        DataError: an unknown override key.
    """
    p = Path(path)
    allowed = {"format", "symbol", "timeframe", "tz", "clock_offset", "stamp", "tick_size"}
    unknown = set(overrides) - allowed
    if unknown:
        raise DataError(f"unknown bar-loading option(s): {', '.join(sorted(unknown))}", path=p)
    preset = find_preset(p) or BarPreset(name="generic-csv", pattern=".*", note="no preset matched: UTC, start")
    given: dict[str, Any] = {
        k: (str(v) if isinstance(v, Timeframe) else v) for k, v in overrides.items() if v is not None
    }
    if given.get("format", "csv") not in ("csv", "firstrate"):
        raise DataError(f"format must be 'csv' or 'firstrate', not {given['format']!r}", path=p)
    if given.get("stamp", "start") not in ("start", "end"):
        raise DataError(f"stamp must be 'start' or 'end', not {given['stamp']!r}", path=p)
    if "tick_size" in given:
        given["tick_size"] = str(given["tick_size"])
    preset = replace(preset, **given)
    if preset.symbol is None:
        preset = replace(preset, symbol=_symbol_from_name(p))
    return preset


def load_bars(path: str | Path, *, ambiguous: Ambiguous = "infer", **overrides: Any) -> BarSeries:
    """Load a market-data file as bars: the format comes from :func:`~propdesk.data.loaders.detect.detect_format`
    (DBN ``ohlcv-*``, a Parquet bar file, trade prints aggregated to ``timeframe`` bars (default 1m; a print without
    a size counts as 1 contract), or a bar CSV through its preset, see the module docstring), with any field
    overridden by keyword.

    Keywords: ``format`` ("csv" | "firstrate"), ``symbol``, ``timeframe``, ``tz``, ``clock_offset``, ``stamp``,
    ``tick_size``; a ``None`` value means "keep the preset's". Returns a :class:`BarSeries` (UTC ns, points).

    Raises:
        DataError: unknown option, or anything the underlying loader raises (row-numbered, nothing half-loaded).
    """
    p = Path(path)
    if p.suffix.lower() == ".parquet":
        return _load_parquet(p, overrides)
    preset = resolve_preset(p, **overrides)
    symbol = preset.symbol or _symbol_from_name(p)
    kind = detect_format(p)
    if kind == "dbn":
        schema = dbn_schema(p)
        if not schema.startswith("ohlcv-"):
            raise DataError(f"DBN schema {schema!r} is not one of the bar files' (ohlcv-1s, -1m, -1h, -1d)", path=p)
        return load_dbn_bars(p, symbol=overrides.get("symbol"))
    if kind == "parquet":
        from propdesk.data.catalog import load_parquet_bars  # noqa: PLC0415 - pyarrow only for Parquet files

        return load_parquet_bars(p, symbol=overrides.get("symbol"), timeframe=overrides.get("timeframe"))
    if kind == "trades-csv":
        from propdesk.data.aggregation.vectorized import aggregate_trades  # noqa: PLC0415

        trades = load_trades_csv(
            p,
            symbol=symbol,
            tz=preset.tz,
            clock_offset=preset.clock_offset,
            tick_size=preset.tick_size,
            default_size=1,
            ambiguous=ambiguous,
        )
        return aggregate_trades(trades.series, as_timeframe(preset.timeframe or "1m"))
    if preset.format == "firstrate":
        return load_firstrate_csv(p, symbol=symbol, timeframe=preset.timeframe, tick_size=preset.tick_size)
    timeframe = preset.timeframe or (str(timeframe_from_name(p) or "") or "1m")
    return load_bars_csv(
        p,
        symbol=symbol,
        timeframe=timeframe,
        tz=preset.tz,
        clock_offset=preset.clock_offset,
        stamp=preset.stamp,
        tick_size=preset.tick_size,
        ambiguous=ambiguous,
    )


def _load_parquet(path: Path, overrides: dict[str, Any]) -> BarSeries:
    """A propdesk Parquet bar file; only the ``symbol`` override applies (the file states its clock and timeframe).

    Raises:
        DataError: another override given, or anything :func:`read_bar_file` raises.
    """
    from propdesk.data.catalog import read_bar_file  # noqa: PLC0415 - pyarrow only for Parquet input

    other = sorted(k for k, v in overrides.items() if v is not None and k != "symbol")
    if other:
        raise DataError(f"a Parquet bar file states its own clock and timeframe: drop {', '.join(other)}", path=path)
    symbol = overrides.get("symbol")
    return read_bar_file(path, symbol=None if symbol is None else str(symbol))


def describe_load(path: str | Path, **overrides: Any) -> str:
    """One line saying which format, preset and settings :func:`load_bars` would use for ``path``.

    Raises:
        DataError: an unknown option, a missing file, an unreadable DBN file.
    """
    pr = resolve_preset(path, **overrides)
    kind = detect_format(path)
    if kind == "dbn":
        return f"Databento DBN {dbn_schema(path)} (ts_event = bar open)"
    if kind == "parquet":
        return "Parquet bar file (propdesk catalog layout)"
    if kind == "trades-csv":
        return (
            f"trade prints aggregated to {pr.timeframe or '1m'} bars: symbol={pr.symbol} tz={pr.tz} "
            f"clock_offset={pr.clock_offset or '0'}; without a size column every print counts as 1 contract"
        )
    return (
        f"preset {pr.name}: format={pr.format} symbol={pr.symbol} timeframe={pr.timeframe or 'from name/1m'} "
        f"tz={pr.tz} clock_offset={pr.clock_offset or '0'} stamp={pr.stamp} tick_size={pr.tick_size or '-'}"
        + (f" ({pr.note})" if pr.note else "")
    )
