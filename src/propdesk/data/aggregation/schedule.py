"""Bar schedules: which bar an instant belongs to, as scalar (streaming) and numpy (history) functions.

A schedule tiles time into bars. For an instant ``ts`` (UTC ns) it gives ``(start, end, open)``: the bar *contains*
``[start, end)``; ``open`` is the bar's reported ``ts_open_ns`` (equal to ``start`` except for a daily bar after a
weekend, whose nominal open is Sunday 17:00 CT while it contains everything since Friday's 17:00 CT close).

Kinds (built by :func:`make_schedule`):

* ``EpochGrid``: ``s``/``m``/``h`` bars on a grid ``origin_ns + k * step`` (UTC epoch by default, ``origin_ns=0``).
  1m, 5m, 15m, 30m, 1h bars line up with every wall clock whose UTC offset is a whole number of hours.
* ``CutGrid``: the grid, additionally cut at CME session boundaries (16:00 CT halt/close, 17:00 CT open) so no bar
  spans a halt. With ``anchor="epoch"`` the grid is the UTC one above (cut short at a boundary); with
  ``anchor="session"`` the grid restarts at every segment start (17:00 CT open, 16:00 CT halt), e.g. 4h bars at
  17:00, 21:00, 01:00 ... CT. For steps that divide one hour (1s..1h) both anchors give the same bars,
  because session boundaries fall on whole UTC hours.
* ``SessionDays``: one bar per CME trade date (``1d``), see :class:`~propdesk.data.aggregation.sessions.CmeSessions`.

The scalar and array functions of each schedule use the same integer formulas, so streaming and vectorized
aggregation give identical bars.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from propdesk.data.aggregation.sessions import CmeSessions
from propdesk.model.data import NS_PER_DAY, Timeframe

Anchor = Literal["epoch", "session"]
I64 = npt.NDArray[np.int64]
Bounds = tuple[int, int, int]
BoundsArray = tuple[I64, I64, I64]

_WINDOW_NS: Final[int] = 14 * NS_PER_DAY


class BarSchedule:
    """Base class: maps instants to bars. Subclasses implement :meth:`bounds`, :meth:`bounds_array`, :meth:`starts`."""

    __slots__ = ()

    def bounds(self, ts_ns: int) -> Bounds:
        """``(start, end, open)`` of the bar containing ``ts_ns`` (UTC ns)."""
        raise NotImplementedError

    def bounds_array(self, ts_ns: I64) -> BoundsArray:
        """:meth:`bounds` for every element of an int64 array (any order)."""
        raise NotImplementedError

    def starts(self, lo_ns: int, hi_ns: int) -> I64:
        """Sorted ``start`` of every bar whose start lies in ``[lo_ns, hi_ns)``; ``lo_ns`` must be a bar start."""
        raise NotImplementedError


class EpochGrid(BarSchedule):
    """Bars ``[origin_ns + k * step_ns, origin_ns + (k + 1) * step_ns)``."""

    __slots__ = ("origin_ns", "step_ns")

    def __init__(self, step_ns: int, origin_ns: int = 0) -> None:
        self.step_ns = step_ns
        self.origin_ns = origin_ns

    def bounds(self, ts_ns: int) -> Bounds:
        s = ts_ns - (ts_ns - self.origin_ns) % self.step_ns
        return s, s + self.step_ns, s

    def bounds_array(self, ts_ns: I64) -> BoundsArray:
        s = ts_ns - (ts_ns - self.origin_ns) % self.step_ns
        return s, s + self.step_ns, s

    def starts(self, lo_ns: int, hi_ns: int) -> I64:
        return np.arange(lo_ns, hi_ns, self.step_ns, dtype=np.int64)


class CutGrid(BarSchedule):
    """A grid cut at CME session boundaries (see module docstring); cut points are cached in 14-day windows."""

    __slots__ = ("_cuts", "_hi", "_lo", "anchor", "origin_ns", "sessions", "step_ns")

    def __init__(self, step_ns: int, sessions: CmeSessions, anchor: Anchor = "epoch", origin_ns: int = 0) -> None:
        self.step_ns = step_ns
        self.sessions = sessions
        self.anchor = anchor
        self.origin_ns = origin_ns
        self._cuts: list[int] = []
        self._lo = 1
        self._hi = 0

    def _segment(self, ts_ns: int) -> tuple[int, int]:
        if not self._lo <= ts_ns < self._hi:
            arr = self.sessions.cuts_between(ts_ns - _WINDOW_NS, ts_ns + _WINDOW_NS)
            self._cuts = arr.tolist()
            self._lo = self._cuts[0]
            self._hi = self._cuts[-1]
        i = bisect_right(self._cuts, ts_ns) - 1
        return self._cuts[i], self._cuts[i + 1]

    def bounds(self, ts_ns: int) -> Bounds:
        seg_start, seg_end = self._segment(ts_ns)
        step = self.step_ns
        if self.anchor == "session":
            g = seg_start + (ts_ns - seg_start) // step * step
        else:
            g = ts_ns - (ts_ns - self.origin_ns) % step
        s = max(g, seg_start)
        e = min(g + step, seg_end)
        return s, e, s

    def _segments_array(self, ts_ns: I64) -> tuple[I64, I64]:
        cuts = self.sessions.cuts_between(int(ts_ns.min()), int(ts_ns.max()))
        i = np.searchsorted(cuts, ts_ns, side="right") - 1
        return cuts[i], cuts[i + 1]

    def bounds_array(self, ts_ns: I64) -> BoundsArray:
        if len(ts_ns) == 0:
            return ts_ns.copy(), ts_ns.copy(), ts_ns.copy()
        seg_start, seg_end = self._segments_array(ts_ns)
        step = self.step_ns
        if self.anchor == "session":
            g = seg_start + (ts_ns - seg_start) // step * step
        else:
            g = ts_ns - (ts_ns - self.origin_ns) % step
        s = np.maximum(g, seg_start)
        e = np.minimum(g + step, seg_end)
        return s, e, s

    def starts(self, lo_ns: int, hi_ns: int) -> I64:
        if hi_ns <= lo_ns:
            return np.empty(0, dtype=np.int64)
        cuts = self.sessions.cuts_between(lo_ns, hi_ns)
        inner = cuts[(cuts >= lo_ns) & (cuts < hi_ns)]
        step = self.step_ns
        if self.anchor == "session":
            seg_starts = np.concatenate(([lo_ns], inner))
            seg_ends = np.concatenate((inner, [hi_ns]))
            parts = [np.arange(a, b, step, dtype=np.int64) for a, b in zip(seg_starts, seg_ends, strict=True)]
            return np.unique(np.concatenate(parts))
        first = lo_ns - (lo_ns - self.origin_ns) % step
        grid = np.arange(first, hi_ns, step, dtype=np.int64)
        grid = grid[grid >= lo_ns]
        return np.unique(np.concatenate((grid, inner, np.asarray([lo_ns], dtype=np.int64))))


class SessionDays(BarSchedule):
    """One bar per CME trade date: contains ``[previous close, close)``, reported open = the session's nominal open."""

    __slots__ = ("_closes", "_froms", "_hi", "_lo", "_opens", "sessions")

    def __init__(self, sessions: CmeSessions) -> None:
        self.sessions = sessions
        self._froms: list[int] = []
        self._opens: list[int] = []
        self._closes: list[int] = []
        self._lo = 1
        self._hi = 0

    def bounds(self, ts_ns: int) -> Bounds:
        if not self._lo <= ts_ns < self._hi:
            f, o, c = self.sessions.sessions_between(ts_ns - _WINDOW_NS, ts_ns + _WINDOW_NS)
            self._froms, self._opens, self._closes = f.tolist(), o.tolist(), c.tolist()
            self._lo = self._froms[0]
            self._hi = self._closes[-1]
        i = bisect_right(self._closes, ts_ns)
        return self._froms[i], self._closes[i], self._opens[i]

    def bounds_array(self, ts_ns: I64) -> BoundsArray:
        if len(ts_ns) == 0:
            return ts_ns.copy(), ts_ns.copy(), ts_ns.copy()
        f, o, c = self.sessions.sessions_between(int(ts_ns.min()), int(ts_ns.max()))
        i = np.searchsorted(c, ts_ns, side="right")
        return f[i], c[i], o[i]

    def starts(self, lo_ns: int, hi_ns: int) -> I64:
        if hi_ns <= lo_ns:
            return np.empty(0, dtype=np.int64)
        f, _, _ = self.sessions.sessions_between(lo_ns, hi_ns - 1)
        return f[(f >= lo_ns) & (f < hi_ns)]


def make_schedule(
    timeframe: Timeframe,
    *,
    session_aligned: bool = True,
    anchor: Anchor = "epoch",
    origin_ns: int = 0,
    sessions: CmeSessions | None = None,
) -> BarSchedule:
    """Build the schedule for ``timeframe`` (see module docstring).

    Raises:
        ValueError: for a ``d`` timeframe with ``step != 1`` (one bar per session only), for ``anchor="session"``
            without ``session_aligned=True``, or for an unknown anchor.
    """
    if anchor not in ("epoch", "session"):
        raise ValueError(f"anchor {anchor!r} must be 'epoch' or 'session'")
    if anchor == "session" and not session_aligned:
        raise ValueError("anchor='session' needs session_aligned=True (the grid restarts at session boundaries)")
    cal = sessions if sessions is not None else CmeSessions()
    if timeframe.unit == "d":
        if timeframe.step != 1:
            raise ValueError(f"timeframe {timeframe}: daily bars are one per CME session; use 1d")
        return SessionDays(cal)
    if session_aligned:
        return CutGrid(timeframe.ns, cal, anchor, origin_ns)
    return EpochGrid(timeframe.ns, origin_ns)
