"""Load FirstRateData futures bars (CSV, US/Eastern wall clock, bars stamped at their start).

Format (FirstRateData's ``_readme_documentation.txt``, shipped with shared/data/nq_1min_firstratedata_sample):
intraday ``DateTime (yyyy-MM-dd HH:mm:ss), Open, High, Low, Close, Volume``; daily adds ``Open Interest``. Times are
US Eastern, stamped at the start of the period; minutes without trades are omitted. Purchased files have no header,
the free samples do; both are accepted.

Daily bars are CME sessions: the bar dated D runs from 18:00 ET of the day before to 17:00 ET on D. When the day
before D is a weekday missing from the file (a holiday whose session the vendor merged into D, e.g. Thanksgiving
2023, see shared/data/README.md) the bar opens at 18:00 ET of the previous row's date instead.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from propdesk.core.errors import DataError
from propdesk.data.loaders.csv_bars import (
    as_timeframe,
    check_increasing,
    file_lines,
    localize_wall_clock,
    read_raw_bars,
)
from propdesk.model.data import NS_PER_DAY, NS_PER_HOUR, BarSeries, Timeframe

FIRSTRATE_TZ: Final[str] = "America/New_York"
_NAME_TF_RE = re.compile(r"_(\d+)(min|hour|day|sec)(?:_|\.|$)", re.IGNORECASE)
_UNIT: Final[dict[str, str]] = {"min": "m", "hour": "h", "day": "d", "sec": "s"}


def timeframe_from_name(path: str | Path) -> Timeframe | None:
    """The timeframe encoded in a FirstRateData file name (``NQ_1min_sample.csv`` -> 1m), or None."""
    m = _NAME_TF_RE.search(Path(path).name)
    if m is None:
        return None
    return Timeframe(int(m.group(1)), _UNIT[m.group(2).lower()])


def _daily_bounds(day_ns: npt.NDArray[np.int64], path: Path) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Wall-clock (naive ns) session open/close for daily rows dated ``day_ns`` (midnight)."""
    if bool(np.any(day_ns % NS_PER_DAY != 0)):
        i = int(np.argmax(day_ns % NS_PER_DAY != 0))
        raise DataError("daily bar timestamp has a time of day; expected a date", path=path, row=i + 1)
    open_day = day_ns - NS_PER_DAY
    weekday = ((open_day // NS_PER_DAY) + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    prev = np.concatenate(([np.iinfo(np.int64).min], day_ns[:-1]))
    merged = (weekday < 5) & (open_day > prev) & (prev != np.iinfo(np.int64).min)
    open_day = np.where(merged, prev, open_day)
    return open_day + 18 * NS_PER_HOUR, day_ns + 17 * NS_PER_HOUR


def load_firstrate_csv(
    path: str | Path,
    *,
    symbol: str,
    timeframe: str | Timeframe | None = None,
    tick_size: float | str | None = None,
) -> BarSeries:
    """Load a FirstRateData bar file into a :class:`BarSeries` (UTC ns, points, contracts).

    ``timeframe`` defaults to the one in the file name (``_1min``, ``_5min``, ``_30min``, ``_1hour``, ``_1day``).
    The open-interest column of daily files is ignored. Errors name the file's line (``DataError.line``; header =
    line 1).

    Raises:
        DataError: no timeframe given or derivable, or any malformed row (see
            :func:`propdesk.data.loaders.csv_bars.load_bars_csv`); nothing is returned on error.
    """
    p = Path(path)
    if timeframe is None:
        tf = timeframe_from_name(p)
        if tf is None:
            raise DataError("cannot infer the timeframe from the file name; pass timeframe=", path=p)
    else:
        tf = as_timeframe(timeframe)
    raw = read_raw_bars(p, tick_size=tick_size)
    if raw.aware:
        raise DataError("FirstRateData timestamps are US/Eastern wall-clock times, not UTC-offset times", path=p)
    with file_lines(raw.header_lines):
        ts_open, ts_close = _utc_bounds(raw.wall_ns, tf, p)
    return BarSeries(symbol, tf, ts_open, ts_close, raw.open, raw.high, raw.low, raw.close, raw.volume, source=str(p))


def _utc_bounds(
    wall_ns: npt.NDArray[np.int64], tf: Timeframe, p: Path
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Each bar's open and close (UTC ns) from its FirstRateData wall-clock stamp. Raises DataError with the row."""
    if tf.unit == "d":
        if tf.step != 1:
            raise DataError(f"daily FirstRateData bars must be 1d, not {tf}", path=p)
        wall_open, wall_close = _daily_bounds(wall_ns, p)
        check_increasing(wall_ns, p)
        return localize_wall_clock(wall_open, FIRSTRATE_TZ, p), localize_wall_clock(wall_close, FIRSTRATE_TZ, p)
    ts_open = localize_wall_clock(wall_ns, FIRSTRATE_TZ, p)
    check_increasing(ts_open, p)
    return ts_open, ts_open + tf.ns
