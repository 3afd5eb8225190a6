"""A local bar catalog in Parquet files, partitioned by symbol, timeframe and year.

Layout: ``<root>/<symbol>/<timeframe>/<year>.parquet`` (e.g. ``bars/ESZ5/1m/2025.parquet``); the year is the UTC
year of each bar's open. Columns: ``ts_open_ns``, ``ts_close_ns`` (int64 UTC ns), ``open``, ``high``, ``low``,
``close`` (float64 points), ``volume`` (int64 contracts), stored losslessly, so a read returns exactly what was
written. The symbol and timeframe are also stored in the file's key-value metadata.

Writes merge with what is stored: bars with the same open time are replaced by the new ones (no duplicates), and each
year file is written to a temporary file in the same directory and then moved into place with ``os.replace``, so a
reader never sees a half-written file.

A single bar file of the same format (:func:`write_bar_file`, :func:`read_bar_file`: ``propdesk data resample``
writes one, ``backtest --data`` and ``run --replay`` read one) holds any span; its symbol and timeframe come from its
metadata.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from propdesk.core.errors import DataError
from propdesk.model.data import BarSeries, Timeframe

_COLUMNS: Final[tuple[str, ...]] = ("ts_open_ns", "ts_close_ns", "open", "high", "low", "close", "volume")
_SCHEMA: Final[pa.Schema] = pa.schema(
    [
        ("ts_open_ns", pa.int64()),
        ("ts_close_ns", pa.int64()),
        ("open", pa.float64()),
        ("high", pa.float64()),
        ("low", pa.float64()),
        ("close", pa.float64()),
        ("volume", pa.int64()),
    ]
)
_META_SYMBOL: Final[str] = "propdesk.symbol"
_META_TIMEFRAME: Final[str] = "propdesk.timeframe"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class CatalogEntry:
    """One symbol/timeframe in the catalog: bar count and first/last bar open (UTC ns)."""

    symbol: str
    timeframe: Timeframe
    rows: int
    first_ts_ns: int
    last_ts_ns: int
    years: tuple[int, ...]


def _year_of(ts_ns: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    years = ts_ns.astype("datetime64[ns]").astype("datetime64[Y]").astype(np.int64) + 1970
    return np.asarray(years, dtype=np.int64)


def _series(symbol: str, tf: Timeframe, cols: dict[str, npt.NDArray[np.generic]], source: str) -> BarSeries:
    """Build (and so validate: sorted, unique, OHLC-consistent) a BarSeries from catalog columns."""
    i64, f64 = np.int64, np.float64
    return BarSeries(
        symbol,
        tf,
        np.asarray(cols["ts_open_ns"], dtype=i64),
        np.asarray(cols["ts_close_ns"], dtype=i64),
        np.asarray(cols["open"], dtype=f64),
        np.asarray(cols["high"], dtype=f64),
        np.asarray(cols["low"], dtype=f64),
        np.asarray(cols["close"], dtype=f64),
        np.asarray(cols["volume"], dtype=i64),
        source=source,
    )


def _write_parquet(path: Path, cols: dict[str, npt.NDArray[np.generic]], symbol: str, tf: Timeframe) -> None:
    """Write the bar columns with their symbol and timeframe as metadata, atomically (temporary file, then
    ``os.replace``)."""
    table = pa.table({c: cols[c] for c in _COLUMNS}, schema=_SCHEMA)
    table = table.replace_schema_metadata({_META_SYMBOL: symbol, _META_TIMEFRAME: str(tf)})
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bar_file(series: BarSeries, path: str | Path) -> Path:
    """Write ``series`` to one Parquet bar file (the catalog's columns, symbol and timeframe in its metadata),
    atomically: a reader never sees a half-written file. Returns the path.

    Raises:
        OSError: the file cannot be written.
    """
    p = Path(path)
    _write_parquet(p, {c: np.asarray(getattr(series, c)) for c in _COLUMNS}, series.symbol, series.timeframe)
    return p


def read_bar_file(path: str | Path, *, symbol: str | None = None) -> BarSeries:
    """Read a Parquet bar file written by :func:`write_bar_file` (or a catalog year file).

    Args:
        path: the file.
        symbol: label the bars with this symbol instead of the one in the file's metadata.

    Raises:
        DataError: unreadable, not a bar file, no symbol or timeframe in its metadata (and none given), or bars
            that are unsorted, duplicated or OHLC-inconsistent.
    """
    p = Path(path)
    try:
        table = pq.read_table(p)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"cannot read Parquet file: {exc}", path=p) from None
    if not set(_COLUMNS) <= set(table.column_names):
        raise DataError(f"not a bar file: columns {', '.join(table.column_names)}", path=p)
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    sym = symbol or meta.get(_META_SYMBOL)
    tf_text = meta.get(_META_TIMEFRAME)
    if not sym or not tf_text:
        raise DataError(f"not a propdesk bar file: no {_META_SYMBOL} / {_META_TIMEFRAME} metadata", path=p)
    try:
        tf = Timeframe.parse(tf_text)
    except ValueError as exc:
        raise DataError(f"bad {_META_TIMEFRAME} metadata: {exc}", path=p) from None
    return _series(sym, tf, {c: table.column(c).to_numpy() for c in _COLUMNS}, str(p))


class BarCatalog:
    """Parquet bar storage under ``root`` (created on first write).

    Raises:
        DataError: an unsafe symbol (path separators, ``..``), an unreadable or foreign Parquet file.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _dir(self, symbol: str, timeframe: Timeframe) -> Path:
        if not _SAFE_NAME.match(symbol) or ".." in symbol:
            raise DataError(f"symbol {symbol!r} cannot name a catalog directory (letters, digits, . _ - only)")
        return self.root / symbol / str(timeframe)

    def _read_file(self, path: Path) -> dict[str, npt.NDArray[np.generic]]:
        try:
            table = pq.read_table(path)
        except (OSError, pa.ArrowException) as exc:
            raise DataError(f"cannot read Parquet file: {exc}", path=path) from None
        if not set(_COLUMNS) <= set(table.column_names):
            raise DataError(f"not a bar file: columns {', '.join(table.column_names)}", path=path)
        return {c: table.column(c).to_numpy() for c in _COLUMNS}

    def _write_file(self, path: Path, cols: dict[str, npt.NDArray[np.generic]], symbol: str, tf: Timeframe) -> None:
        _write_parquet(path, cols, symbol, tf)

    def write(self, series: BarSeries) -> int:
        """Merge ``series`` into the catalog; returns the number of bars stored for its symbol/timeframe after.

        Bars whose open time is already stored are replaced by the ones in ``series``.
        """
        d = self._dir(series.symbol, series.timeframe)
        if len(series) == 0:
            return self._count(d)
        new: dict[str, npt.NDArray[np.generic]] = {c: np.asarray(getattr(series, c)) for c in _COLUMNS}
        years = _year_of(series.ts_open_ns)
        for year in np.unique(years).tolist():
            mask = years == year
            part = {c: a[mask] for c, a in new.items()}
            path = d / f"{year}.parquet"
            if path.exists():
                old = self._read_file(path)
                keep = ~np.isin(old["ts_open_ns"], part["ts_open_ns"])
                merged = {c: np.concatenate([old[c][keep], part[c]]) for c in _COLUMNS}
                order = np.argsort(merged["ts_open_ns"], kind="stable")
                part = {c: a[order] for c, a in merged.items()}
            # Validate before anything replaces the stored file.
            _series(series.symbol, series.timeframe, part, str(path))
            self._write_file(path, part, series.symbol, series.timeframe)
        return self._count(d)

    def _files(self, d: Path) -> list[tuple[int, Path]]:
        if not d.is_dir():
            return []
        out = [(int(p.stem), p) for p in d.glob("*.parquet") if p.stem.isdigit()]
        return sorted(out)

    def _count(self, d: Path) -> int:
        return sum(len(self._read_file(p)["ts_open_ns"]) for _, p in self._files(d))

    def read(
        self, symbol: str, timeframe: str | Timeframe, start_ns: int | None = None, end_ns: int | None = None
    ) -> BarSeries:
        """The stored bars of ``symbol``/``timeframe`` whose open time is in ``[start_ns, end_ns)``.

        Raises:
            DataError: nothing stored for ``symbol``/``timeframe``; an unreadable file.
        """
        tf = timeframe if isinstance(timeframe, Timeframe) else Timeframe.parse(timeframe)
        d = self._dir(symbol, tf)
        files = self._files(d)
        if not files:
            raise DataError(f"no bars stored for {symbol} {tf}", path=d)
        lo_year = None if start_ns is None else int(_year_of(np.array([start_ns], dtype=np.int64))[0])
        hi_year = None if end_ns is None else int(_year_of(np.array([end_ns], dtype=np.int64))[0])
        parts = [
            self._read_file(p)
            for y, p in files
            if (lo_year is None or y >= lo_year) and (hi_year is None or y <= hi_year)
        ]
        if parts:
            cols = {c: np.concatenate([p[c] for p in parts]) for c in _COLUMNS}
        else:
            cols = {c: np.zeros(0) for c in _COLUMNS}
        series = _series(symbol, tf, cols, str(d))
        return series.between(start_ns, end_ns)

    def list(self) -> list[CatalogEntry]:
        """Every symbol/timeframe stored, sorted by symbol then timeframe.

        Raises:
            DataError: an unreadable file in the catalog.
        """
        out: list[CatalogEntry] = []
        if not self.root.is_dir():
            return out
        for sym_dir in sorted(p for p in self.root.iterdir() if p.is_dir()):
            for tf_dir in sorted(p for p in sym_dir.iterdir() if p.is_dir()):
                files = self._files(tf_dir)
                if not files:
                    continue
                try:
                    tf = Timeframe.parse(tf_dir.name)
                except ValueError:
                    continue
                rows, first, last = 0, None, None
                for _, p in files:
                    t = self._read_file(p)["ts_open_ns"]
                    rows += len(t)
                    if len(t):
                        first = int(t[0]) if first is None else min(first, int(t[0]))
                        last = int(t[-1]) if last is None else max(last, int(t[-1]))
                out.append(CatalogEntry(sym_dir.name, tf, rows, first or 0, last or 0, tuple(y for y, _ in files)))
        return out


def load_parquet_bars(path: str | Path, *, symbol: str | None = None, timeframe: str | None = None) -> BarSeries:
    """One Parquet bar file of the catalog's layout (columns as the module docstring) as a :class:`BarSeries`.

    Args:
        path: the file.
        symbol: overrides the file's ``propdesk.symbol`` metadata (default: that, else the file name's stem).
        timeframe: overrides the file's ``propdesk.timeframe`` metadata (default: that, else ``1m``).

    Raises:
        DataError: an unreadable file, missing columns, or bars that are out of order or inconsistent.
    """
    p = Path(path)
    try:
        meta = pq.read_schema(p).metadata or {}
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"cannot read Parquet file: {exc}", path=p) from None
    sym = symbol or meta.get(b"propdesk.symbol", p.stem.encode()).decode()
    tf_text = timeframe or meta.get(b"propdesk.timeframe", b"1m").decode()
    try:
        tf = Timeframe.parse(tf_text)
    except ValueError as exc:
        raise DataError(str(exc), path=p) from None
    cols = BarCatalog(p.parent)._read_file(p)
    return _series(sym, tf, cols, str(p))
