"""Bar aggregation: trade prints to time bars, finer bars to coarser ones, daily bars per CME session.

* :class:`TimeBarAggregator`: streaming (live or replay), one print or bar at a time, bars out through a callback.
* :func:`aggregate_trades`, :func:`aggregate_bars`: vectorized (numpy) over history; identical bars to streaming.
* :class:`CmeSessions`: the 17:00 America/Chicago session boundaries and trade dates used by both.

Everything is placed by exchange time (``ts_event_ns``, or a bar's ``ts_open_ns``), never by receive time.
"""

from propdesk.data.aggregation.schedule import Anchor, BarSchedule, make_schedule
from propdesk.data.aggregation.sessions import CHICAGO, CmeSessions
from propdesk.data.aggregation.streaming import TimeBarAggregator
from propdesk.data.aggregation.vectorized import aggregate_bars, aggregate_trades

__all__ = [
    "CHICAGO",
    "Anchor",
    "BarSchedule",
    "CmeSessions",
    "TimeBarAggregator",
    "aggregate_bars",
    "aggregate_trades",
    "make_schedule",
]
