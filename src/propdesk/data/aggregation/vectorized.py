"""Vectorized (numpy) time-bar aggregation of history: a whole :class:`TradeSeries` or :class:`BarSeries` at once.

Same schedules, options and results as :class:`~propdesk.data.aggregation.streaming.TimeBarAggregator` fed the same
rows in order and flushed at the end (tested bar for bar). Each bar's open is its first row's open, its close its
last row's close, high/low the max/min, volume the sum, grouped with ``np.maximum.reduceat`` and friends.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from propdesk.core.errors import DataError
from propdesk.data.aggregation.schedule import Anchor, BarSchedule, make_schedule
from propdesk.data.aggregation.sessions import CmeSessions
from propdesk.model.data import BarSeries, Timeframe, TradeSeries

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


def aggregate_trades(
    trades: TradeSeries,
    timeframe: Timeframe,
    *,
    emit_empty: bool = False,
    skip_first_partial: bool = False,
    session_aligned: bool = True,
    anchor: Anchor = "epoch",
    origin_ns: int = 0,
    sessions: CmeSessions | None = None,
) -> BarSeries:
    """Aggregate trade prints into time bars by exchange time (``ts_event_ns``).

    Args:
        trades: prints of one symbol, sorted by time (a :class:`TradeSeries` guarantees it).
        timeframe: ``s``/``m``/``h`` of any step, or ``1d`` (CME sessions).
        emit_empty, skip_first_partial, session_aligned, anchor, origin_ns, sessions: as for
            :class:`~propdesk.data.aggregation.streaming.TimeBarAggregator`.

    Returns:
        A :class:`BarSeries` (``symbol`` from ``trades``), the last bar included even if the data ends inside it.
        Without ``skip_first_partial``, ``volume.sum() == trades.size.sum()``; with it, the first bar (withheld when
        the first print came after its start) is the only difference.

    Raises:
        ValueError: for an invalid option combination (see :func:`make_schedule`).
    """
    schedule = make_schedule(
        timeframe, session_aligned=session_aligned, anchor=anchor, origin_ns=origin_ns, sessions=sessions
    )
    ts = trades.ts_event_ns
    px = trades.price
    return _group(
        trades.symbol,
        timeframe,
        schedule,
        ts=ts,
        o=px,
        h=px,
        lo=px,
        c=px,
        v=trades.size,
        clock_end_ns=int(ts[-1]) if len(ts) else 0,
        emit_empty=emit_empty,
        skip_first_partial=skip_first_partial,
        source=trades.source,
    )


def aggregate_bars(
    series: BarSeries,
    timeframe: Timeframe,
    *,
    emit_empty: bool = False,
    skip_first_partial: bool = False,
    session_aligned: bool = True,
    anchor: Anchor = "epoch",
    origin_ns: int = 0,
    sessions: CmeSessions | None = None,
) -> BarSeries:
    """Aggregate finer bars (e.g. 1-minute) into a coarser timeframe; volume summed.

    Each input bar is placed by its ``ts_open_ns``. Volume-0 input bars carry no trades and are not merged (with
    ``emit_empty`` they still extend the run of empty bars up to their close, as in streaming).

    Args:
        series: the finer bars.
        timeframe: the target; coarser than ``series.timeframe`` (``1d`` from any intraday timeframe).
        emit_empty, skip_first_partial, session_aligned, anchor, origin_ns, sessions: as for
            :class:`~propdesk.data.aggregation.streaming.TimeBarAggregator`.

    Raises:
        DataError: if ``timeframe`` is not coarser than the input, or an input bar ends after the target bar its
            open falls in (e.g. 2-minute bars into 3-minute bars).
        ValueError: for an invalid option combination.
    """
    src = series.timeframe
    if (timeframe.unit == "d" and src.unit == "d") or (timeframe.unit != "d" and src.ns > timeframe.ns):
        raise DataError(f"cannot build {timeframe} bars from {src} bars (the input must be finer)", path=series.source)
    schedule = make_schedule(
        timeframe, session_aligned=session_aligned, anchor=anchor, origin_ns=origin_ns, sessions=sessions
    )
    keep = series.volume > 0
    ts = series.ts_open_ns[keep]
    if len(ts):
        _, end, _ = schedule.bounds_array(ts)
        bad = series.ts_close_ns[keep] > end
        if bool(np.any(bad)):
            i = int(np.flatnonzero(keep)[int(np.argmax(bad))])
            raise DataError(
                f"{src} bar {i} [{int(series.ts_open_ns[i])}, {int(series.ts_close_ns[i])}) ends after the end of"
                f" the {timeframe} bar it falls in",
                path=series.source or None,
            )
    clock_end = int(series.ts_close_ns.max()) if len(series) else 0
    return _group(
        series.symbol,
        timeframe,
        schedule,
        ts=ts,
        o=series.open[keep],
        h=series.high[keep],
        lo=series.low[keep],
        c=series.close[keep],
        v=series.volume[keep],
        clock_end_ns=clock_end,
        emit_empty=emit_empty,
        skip_first_partial=skip_first_partial,
        source=series.source,
    )


def _group(
    symbol: str,
    timeframe: Timeframe,
    schedule: BarSchedule,
    *,
    ts: I64,
    o: F64,
    h: F64,
    lo: F64,
    c: F64,
    v: I64,
    clock_end_ns: int,
    emit_empty: bool,
    skip_first_partial: bool,
    source: str,
) -> BarSeries:
    """Group sorted rows into bars. ``clock_end_ns``: the latest time the data has seen (for trailing empty bars)."""
    n = len(ts)
    if n == 0:
        e = np.empty(0, dtype=np.int64)
        f = np.empty(0, dtype=np.float64)
        return BarSeries(symbol, timeframe, e, e, f, f, f, f, e, source=source)
    start, end, bar_open = schedule.bounds_array(ts)
    if n > 1 and bool(np.any(np.diff(start) < 0)):
        raise DataError("rows are not sorted by time", path=source or None)
    first = np.flatnonzero(np.concatenate(([True], start[1:] != start[:-1])))
    last = np.concatenate((first[1:] - 1, [n - 1]))
    b_start = start[first]
    b_end = end[first]
    b_open_ts = bar_open[first]
    b_o = o[first]
    b_h = np.maximum.reduceat(h, first)
    b_l = np.minimum.reduceat(lo, first)
    b_c = c[last]
    b_v = np.add.reduceat(v, first)
    first_partial = bool(ts[0] > b_open_ts[0])

    if emit_empty:
        last_start = int(b_start[-1])
        tiles = schedule.starts(int(b_start[0]), max(last_start + 1, clock_end_ns))
        t_start, t_end, t_open = schedule.bounds_array(tiles)
        keep = (t_start <= last_start) | (t_end <= clock_end_ns)
        t_start, t_end, t_open = t_start[keep], t_end[keep], t_open[keep]
        pos = np.searchsorted(t_start, b_start)
        has = np.zeros(len(t_start), dtype=bool)
        has[pos] = True
        src_idx = np.cumsum(has) - 1  # for every tile: the last real bar at or before it
        fill_c = b_c[src_idx]
        full_o, full_h, full_l, full_c = fill_c.copy(), fill_c.copy(), fill_c.copy(), fill_c.copy()
        full_v = np.zeros(len(t_start), dtype=np.int64)
        full_o[pos], full_h[pos], full_l[pos], full_c[pos], full_v[pos] = b_o, b_h, b_l, b_c, b_v
        b_end, b_open_ts, b_o, b_h, b_l, b_c, b_v = t_end, t_open, full_o, full_h, full_l, full_c, full_v

    cut = 1 if (skip_first_partial and first_partial) else 0
    return BarSeries(
        symbol,
        timeframe,
        b_open_ts[cut:],
        b_end[cut:],
        b_o[cut:],
        b_h[cut:],
        b_l[cut:],
        b_c[cut:],
        b_v[cut:],
        source=source,
    )
