"""Bar history for ``History/retrieveBars`` (spec section 3.4), built from the same data the replay streams.

Sources: second bars are aggregated from the feed's prints (for bar files: the synthetic intrabar prints the replay
streams, see :mod:`propdesk.emulators.projectx.market`); minute and longer bars from the feed's complete one-minute bars
plus the forming minute built from prints. Only data at or before the presented ``now`` is used (no look-ahead).

Buckets: units 1-3 (second, minute, hour) are multiples of ``unitNumber`` units from the epoch. Units 4-6 (day, week,
month) follow the CME Globex session: a session starts 17:00 America/Chicago and is dated by the day it ends; a week
starts with Sunday's 17:00 session open; a month with the first session dated in it (propdesk's choice: the real
daily-bar anchor is an open question, spec section 10 item 10). ``unitNumber`` > 1 groups that many consecutive
buckets. Bar ``t`` is the bucket's start (UTC). The reply is newest first and keeps the most recent ``limit`` bars
whose start lies in ``[startTime, endTime]``; a bucket still forming at ``now`` is included only with
``includePartialBar``. Unit 7 (Tick) is not supported (errorCode 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from propdesk.emulators.projectx.wire import iso
from propdesk.model.calendar import EXCHANGE_TZ, SESSION_OPEN

NS: Final[int] = 1_000_000_000
UNIT_SECONDS: Final[dict[int, int]] = {1: 1, 2: 60, 3: 3600}
MAX_LIMIT: Final[int] = 20_000
MAX_BAR_SPAN_S: Final[int] = 100 * 366 * 86_400
"""Longest bar ``check_request`` accepts (``unitNumber`` x the unit; a month counted as 31 days): 100 years."""
UNIT_SPAN_S: Final[dict[int, int]] = {1: 1, 2: 60, 3: 3600, 4: 86_400, 5: 7 * 86_400, 6: 31 * 86_400}
I64_MIN, I64_MAX = -(2**63), 2**63 - 1
_CT = EXCHANGE_TZ
_ROLL_SHIFT: Final = pd.Timedelta(days=1) - pd.Timedelta(hours=SESSION_OPEN.hour, minutes=SESSION_OPEN.minute)
"""Added to a CT wall time, moves the session roll (17:00 CT) to midnight: the date is then the session's day."""

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


class BarRequestError(ValueError):
    """A ``retrieveBars`` argument is invalid; ``code`` is the History error code (2 unit, 3 unitNumber, 4 limit)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class FeedHistory:
    """What a feed offers history from (presented UTC ns): prints and complete one-minute bars, both sorted."""

    print_ts: I64
    print_px: F64
    print_size: I64
    bar_ts: I64
    bar_open: F64
    bar_high: F64
    bar_low: F64
    bar_close: F64
    bar_volume: I64


def bars_from_prints(ts: I64, px: F64, size: I64, step_ns: int) -> tuple[I64, F64, F64, F64, F64, I64]:
    """Aggregate prints into bars of ``step_ns`` (bucket starts from the epoch): (t, o, h, l, c, v) arrays."""
    if len(ts) == 0:
        e = np.empty(0, dtype=np.float64)
        return np.empty(0, dtype=np.int64), e, e, e, e, np.empty(0, dtype=np.int64)
    keys = (ts // step_ns) * step_ns
    return _group(keys, px, px, px, px, size)


def _group(  # noqa: PLR0917 - one array per column
    keys: I64, o: F64, h: F64, lo: F64, c: F64, v: I64
) -> tuple[I64, F64, F64, F64, F64, I64]:
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    ends = np.r_[starts[1:], len(keys)] - 1
    return (
        keys[starts],
        o[starts],
        np.maximum.reduceat(h, starts),
        np.minimum.reduceat(lo, starts),
        c[ends],
        np.add.reduceat(v, starts),
    )


def _session_keys(ts: I64, unit: int) -> tuple[I64, I64]:
    """Bucket start and nominal end (UTC ns) of the session day/week/month containing each timestamp."""
    idx = pd.DatetimeIndex(pd.to_datetime(ts, unit="ns", utc=True)).tz_convert(_CT)
    shifted = idx + _ROLL_SHIFT
    day = shifted.tz_localize(None).normalize()
    if unit == 5:
        day = day - pd.to_timedelta((day.dayofweek + 1) % 7, unit="D")
        end = day + pd.Timedelta(days=7)
    elif unit == 6:
        day = day - pd.to_timedelta(day.day - 1, unit="D")
        end = day + pd.offsets.MonthBegin(1)
    else:
        end = day + pd.Timedelta(days=1)
    start_local = (day - _ROLL_SHIFT).tz_localize(_CT, ambiguous="NaT", nonexistent="shift_forward")
    end_local = (end - _ROLL_SHIFT).tz_localize(_CT, ambiguous="NaT", nonexistent="shift_forward")
    return (
        np.asarray(start_local.tz_convert("UTC").asi8, dtype=np.int64),
        np.asarray(end_local.tz_convert("UTC").asi8, dtype=np.int64),
    )


def check_request(unit: object, unit_number: object, limit: object) -> tuple[int, int, int]:
    """Validate ``unit`` (1-6), ``unitNumber`` (>= 1, a bar of at most ``MAX_BAR_SPAN_S``) and ``limit`` (1..20,000).

    Raises:
        BarRequestError: with History code 2, 3 or 4.
    """
    if not isinstance(unit, int) or isinstance(unit, bool) or unit not in (1, 2, 3, 4, 5, 6):
        raise BarRequestError(2, f"unit {unit!r} is not supported (1 Second .. 6 Month)")
    if not isinstance(unit_number, int) or isinstance(unit_number, bool) or unit_number < 1:
        raise BarRequestError(3, f"unitNumber {unit_number!r} must be a positive integer")
    if unit_number * UNIT_SPAN_S[unit] > MAX_BAR_SPAN_S:
        raise BarRequestError(3, f"unitNumber {unit_number} is too large: a bar may span at most 100 years")
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        raise BarRequestError(4, f"limit {limit!r} must be 1..{MAX_LIMIT}")
    return unit, unit_number, limit


def retrieve_bars(
    hist: FeedHistory,
    *,
    unit: int,
    unit_number: int,
    start_ns: int,
    end_ns: int,
    limit: int,
    include_partial: bool,
    now_ns: int,
    price: Any,
) -> list[dict[str, Any]]:
    """The ProjectX ``Bar`` list (``t``, ``o``, ``h``, ``l``, ``c``, ``v``), newest first (module docstring).

    ``price`` rounds a float to the contract's tick for the wire (:meth:`ContractInfo.price`). ``start_ns`` and
    ``end_ns`` may lie outside the int64 range (years 1 and 9999 of ISO-8601): they are clamped to it.
    """
    start_ns, end_ns = min(max(start_ns, I64_MIN), I64_MAX), min(max(end_ns, I64_MIN), I64_MAX)
    if unit == 1:
        m = hist.print_ts <= now_ns
        t, o, h, lo, c, v = bars_from_prints(hist.print_ts[m], hist.print_px[m], hist.print_size[m], NS)
    else:
        done = hist.bar_ts + 60 * NS <= now_ns
        t, o, h, lo, c, v = (
            hist.bar_ts[done],
            hist.bar_open[done],
            hist.bar_high[done],
            hist.bar_low[done],
            hist.bar_close[done],
            hist.bar_volume[done],
        )
        forming = (now_ns // (60 * NS)) * 60 * NS
        m = (hist.print_ts >= forming) & (hist.print_ts <= now_ns)
        if bool(m.any()) and (len(t) == 0 or t[-1] < forming):
            pt, po, ph, pl, pc, pv = bars_from_prints(hist.print_ts[m], hist.print_px[m], hist.print_size[m], 60 * NS)
            t, o, h, lo, c, v = (np.r_[t, pt], np.r_[o, po], np.r_[h, ph], np.r_[lo, pl], np.r_[c, pc], np.r_[v, pv])
    if len(t) == 0:
        return []
    if unit in UNIT_SECONDS:
        step = UNIT_SECONDS[unit] * unit_number * NS
        keys = (t // step) * step
        ends = keys + step
    else:
        keys, ends = _session_keys(t, unit)
        if unit_number > 1:
            firsts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
            group = np.repeat(np.arange(len(firsts)) // unit_number, np.diff(np.r_[firsts, len(keys)]))
            lead = firsts[::unit_number]
            keys = keys[lead][group]
            last_of = np.r_[firsts[unit_number::unit_number] - 1, len(keys) - 1]
            ends = ends[last_of][group]
    bt, bo, bh, bl, bc, bv = _group(keys, o, h, lo, c, v)
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    bend = ends[starts]
    keep = (bt >= start_ns) & (bt <= end_ns)
    if not include_partial:
        keep &= bend <= now_ns
    idx = np.flatnonzero(keep)[-limit:][::-1]
    return [
        {
            "t": iso(int(bt[i])),
            "o": price(float(bo[i])),
            "h": price(float(bh[i])),
            "l": price(float(bl[i])),
            "c": price(float(bc[i])),
            "v": int(bv[i]),
        }
        for i in idx.tolist()
    ]
