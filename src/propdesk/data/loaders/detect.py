"""Which kind of market-data file a path holds: the one decision ``backtest --data``, ``run --replay`` and
``data inspect`` share (through :func:`propdesk.data.loaders.presets.load_bars`).

Rules, first match wins:

* ``dbn``: a Databento DBN file: the name ends in ``.dbn`` or ``.dbn.zst``, or the content starts with the DBN magic
  ``b"DBN"`` (raw, or as the first bytes of a zstd frame, magic ``28 b5 2f fd``);
* ``parquet``: the content starts with the Parquet magic ``b"PAR1"`` (a :mod:`propdesk.data.catalog` year file);
* ``trades-csv``: a CSV whose header names a time column and ``price`` but no ``open`` column (trade prints, e.g.
  shared/data's ``ts_utc,price`` ES file);
* ``bars-csv``: any other file (OHLCV bars, read through the bar-file presets).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final, Literal

from propdesk.core.errors import DataError

DataFormat = Literal["dbn", "parquet", "trades-csv", "bars-csv"]

DBN_MAGIC: Final = b"DBN"
ZSTD_MAGIC: Final = b"\x28\xb5\x2f\xfd"
PARQUET_MAGIC: Final = b"PAR1"
TRADE_TIME_COLUMNS: Final[tuple[str, ...]] = (
    "ts_utc",
    "timestamp",
    "timestamp_utc",
    "ts_event",
    "time",
    "datetime",
    "ts",
)
"""Header names of a trade file's time column (as :func:`propdesk.data.loaders.trades_csv.load_trades_csv`)."""


def _zstd_starts_with_dbn(head: bytes) -> bool:
    import zstandard  # noqa: PLC0415 - only for zstd files without a .dbn name

    try:
        with zstandard.ZstdDecompressor().stream_reader(head) as reader:
            return reader.read(len(DBN_MAGIC)) == DBN_MAGIC
    except zstandard.ZstdError:
        return False


def _csv_header(path: Path) -> list[str]:
    import pandas as pd  # noqa: PLC0415

    try:
        cols = pd.read_csv(path, nrows=0, dtype=str).columns
    except (OSError, ValueError, EOFError, UnicodeDecodeError, pd.errors.ParserError):
        return []  # the bar loader reads the file again and names the problem
    return [str(c).strip().lower() for c in cols]


def detect_format(path: str | Path) -> DataFormat:
    """The kind of market-data file at ``path`` (see the module docstring for the rules).

    Raises:
        DataError: the path does not exist or is not a file.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError("file not found" if not p.exists() else "not a file", path=p)
    if p.name.lower().endswith((".dbn", ".dbn.zst")):
        return "dbn"
    try:
        with p.open("rb") as fh:
            head = fh.read(4096)
    except OSError as exc:
        raise DataError(f"cannot read: {exc.strerror or exc}", path=p) from None
    if head.startswith(DBN_MAGIC) or (head.startswith(ZSTD_MAGIC) and _zstd_starts_with_dbn(head)):
        return "dbn"
    if head.startswith(PARQUET_MAGIC):
        return "parquet"
    cols = _csv_header(p)
    if "price" in cols and "open" not in cols and any(c in cols for c in TRADE_TIME_COLUMNS):
        return "trades-csv"
    return "bars-csv"
