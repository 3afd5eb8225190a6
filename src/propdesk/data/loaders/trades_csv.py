"""Load trade prints from a CSV file into a :class:`TradeSeries`.

Columns (header required, case-insensitive, extra columns ignored): a time column (``ts_utc``, ``timestamp``,
``ts_event``, ``time``, ``datetime``, ``ts``), ``price``, and optionally ``size`` (or ``qty``/``quantity``/``volume``)
and ``side`` (or ``aggressor``: ``B``/``BUY``/``BUYER`` = buyer aggressed, ``S``/``A``/``SELL``/``SELLER`` = seller,
``N``/empty = unknown).

Files without a size column, like the ESM8 prints in shared/data/es_trades_esm8_rtrawl (``ts_utc,price``: the
source xts object has neither size nor aggressor side), are refused unless the caller passes ``default_size``:
``load_trades_csv(path, symbol="ESM8", default_size=1)`` then counts every print as ``default_size`` contracts and
the returned :class:`TradesCsv` says ``size_known=False`` so a report can flag volume-based results. Aggressor side
is NONE when the file has no side column.

Errors name the file's line (``DataError.line``; header = line 1) and keep the data row (``DataError.row``, header =
row 0); nothing is returned when any row is bad.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from propdesk.core.errors import DataError
from propdesk.data.loaders.csv_bars import (
    Ambiguous,
    file_lines,
    header_line_count,
    localize_wall_clock,
    parse_clock_offset,
    parse_numbers,
    parse_timestamps,
    read_csv_strings,
)
from propdesk.model.data import TradeSeries
from propdesk.model.enums import AggressorSide
from propdesk.model.price import Price

_TIME: Final[tuple[str, ...]] = ("ts_utc", "timestamp", "timestamp_utc", "ts_event", "time", "datetime", "ts")
_SIZE: Final[tuple[str, ...]] = ("size", "qty", "quantity", "volume")
_SIDE: Final[tuple[str, ...]] = ("side", "aggressor", "aggressor_side")
_SIDE_CODES: Final[dict[str, AggressorSide]] = {
    "": AggressorSide.NONE,
    "N": AggressorSide.NONE,
    "NONE": AggressorSide.NONE,
    "B": AggressorSide.BUYER,
    "BUY": AggressorSide.BUYER,
    "BUYER": AggressorSide.BUYER,
    "S": AggressorSide.SELLER,
    "A": AggressorSide.SELLER,
    "SELL": AggressorSide.SELLER,
    "SELLER": AggressorSide.SELLER,
}


@dataclass(frozen=True)
class TradesCsv:
    """A loaded trade file: the series plus what the file did not say.

    ``size_known`` is False when sizes were filled with ``default_size``; ``aggressor_known`` False when the file
    has no side column. ``notes`` lists these facts in words (for reports and ``data inspect``).
    """

    series: TradeSeries
    size_known: bool
    aggressor_known: bool
    notes: tuple[str, ...]


def _pick(columns: list[str], names: tuple[str, ...]) -> str | None:
    return next((n for n in names if n in columns), None)


def load_trades_csv(
    path: str | Path,
    *,
    symbol: str,
    tz: str = "UTC",
    clock_offset: str | None = None,
    tick_size: float | str | None = None,
    default_size: int | None = None,
    ambiguous: Ambiguous = "infer",
) -> TradesCsv:
    """Load trade prints (UTC ns, points, contracts). Times must not decrease; equal times keep file order.

    Args:
        path: the CSV (may be ``.gz``).
        symbol: the contract symbol, e.g. ``"ESM8"``.
        tz: zone of naive timestamps (timestamps with ``Z``/offsets are absolute).
        clock_offset: how far the file's clock runs ahead of ``tz``'s wall clock (see ``load_bars_csv``).
        tick_size: when given (points), every price must be a multiple of it.
        default_size: contracts per print when the file has no size column; required in that case.

    Raises:
        DataError: missing column, no size column and no ``default_size``, any malformed row (row and column
            named), a non-positive or fractional size, an unknown side code, or times going backwards.
    """
    p = Path(path)
    with file_lines(header_line_count(p)):
        return _load_trades(
            p,
            symbol=symbol,
            tz=tz,
            clock_offset=clock_offset,
            tick_size=tick_size,
            default_size=default_size,
            ambiguous=ambiguous,
        )


def _load_trades(
    p: Path,
    *,
    symbol: str,
    tz: str,
    clock_offset: str | None,
    tick_size: float | str | None,
    default_size: int | None,
    ambiguous: Ambiguous,
) -> TradesCsv:
    df = read_csv_strings(p, ("ts_utc", "price"))
    cols = list(df.columns)
    tcol = _pick(cols, _TIME)
    if tcol is None or "price" not in cols:
        raise DataError(f"header needs a time column and 'price' (found {', '.join(cols)})", path=p, row=0)
    if len(df) == 0:
        raise DataError("file has no data rows", path=p)
    notes: list[str] = []
    errors: list[DataError] = []
    ts: npt.NDArray[np.int64] | None = None
    aware = False
    price: npt.NDArray[np.float64] | None = None
    size_f: npt.NDArray[np.float64] | None = None
    try:
        ts, aware = parse_timestamps(df[tcol], p, tcol)
    except DataError as exc:
        errors.append(exc)
    try:
        price = parse_numbers(df["price"], p, "price")
    except DataError as exc:
        errors.append(exc)
    scol = _pick(cols, _SIZE)
    if scol is not None:
        try:
            size_f = parse_numbers(df[scol], p, scol)
        except DataError as exc:
            errors.append(exc)
    if errors:
        raise min(errors, key=lambda e: e.row if e.row is not None else 0)
    assert ts is not None and price is not None
    n = len(price)
    if size_f is None:
        if default_size is None:
            raise DataError(
                "file has no size column; pass default_size=1 to count each print as one contract", path=p, row=0
            )
        if default_size <= 0:
            raise DataError(f"default_size must be positive, not {default_size}", path=p)
        size = np.full(n, default_size, dtype=np.int64)
        notes.append(f"no size column: every print counted as {default_size} contract(s); volumes are print counts")
    else:
        bad = (size_f <= 0) | (size_f != np.floor(size_f))
        if bool(bad.any()):
            i = int(np.argmax(bad))
            raise DataError(f"column {scol!r}: size {size_f[i]!r} is not a positive whole number", path=p, row=i + 1)
        size = size_f.astype(np.int64)
    sidecol = _pick(cols, _SIDE)
    if sidecol is None:
        aggressor = np.zeros(n, dtype=np.int8)
        notes.append("no side column: aggressor side unknown (NONE) for every print")
    else:
        codes = df[sidecol].str.strip().str.upper()
        mapped = codes.map(lambda c: int(_SIDE_CODES.get(c, -1)))
        arr = mapped.to_numpy(dtype=np.int64)
        if bool((arr < 0).any()):
            i = int(np.argmax(arr < 0))
            raise DataError(f"column {sidecol!r}: unknown side {codes.iloc[i]!r}", path=p, row=i + 1)
        aggressor = arr.astype(np.int8)
    if tick_size is not None:
        tick = float(Price.of(tick_size))
        ticks = price / tick
        off = np.abs(ticks - np.round(ticks)) > 1e-6
        if bool(off.any()):
            i = int(np.argmax(off))
            raise DataError(f"column 'price': {price[i]!r} is not a multiple of tick {tick}", path=p, row=i + 1)
    ts = ts - parse_clock_offset(clock_offset)
    utc = ts if aware else localize_wall_clock(ts, tz, p, ambiguous)
    if n > 1 and bool(np.any(np.diff(utc) < 0)):
        i = int(np.argmax(np.diff(utc) < 0))
        raise DataError(f"column {tcol!r}: time goes backwards (earlier than the line before)", path=p, row=i + 2)
    series = TradeSeries(symbol, utc, price, size, aggressor, source=str(p))
    return TradesCsv(series, size_known=size_f is not None, aggressor_known=sidecol is not None, notes=tuple(notes))
