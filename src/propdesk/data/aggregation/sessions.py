"""CME Globex session boundaries used to align bars: the 17:00 America/Chicago session open and the daily halt.

Rules (CME Group, "Trading hours" for equity index futures, https://www.cmegroup.com/trading-hours.html):

* Trading runs Sunday 17:00 CT to Friday 16:00 CT with a daily maintenance halt 16:00-17:00 CT Monday-Thursday.
* The *trade date* of a print is the next trading day after 17:00 CT: a print at Tuesday 17:30 CT belongs to
  Wednesday's session. The weekend folds forward: Friday 17:00 CT to Monday 17:00 CT belongs to Monday's session
  (the Sunday-evening trading is Monday's).
* Exchange holidays (e.g. Thanksgiving) are not trade dates; their trading belongs to the next trading day. CME does
  this for equity futures (the Thanksgiving-Thursday morning trades carry Friday's trade date); the FirstRateData
  NQ daily file does the same (see ``shared/data/README.md``). Holidays are passed in by the caller (from a real
  exchange calendar); the default is weekends only. Early halts on holidays (12:00 CT) are not modelled as cuts.

All times are computed with :mod:`zoneinfo` in America/Chicago, so DST changes are handled by the tz database.
Instants are UTC nanoseconds (``int``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Final
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from propdesk.core.timefmt import CT, ct_datetime, datetime_to_ns
from propdesk.model.calendar import DAILY_HALT, SESSION_OPEN

if TYPE_CHECKING:
    from propdesk.model.calendar import TradingCalendar

CHICAGO: Final[ZoneInfo] = CT
SESSION_OPEN_CT: Final[time] = SESSION_OPEN
"""The Globex session open (and nominal daily-bar close), America/Chicago
(:data:`propdesk.model.calendar.SESSION_OPEN`)."""
DAILY_HALT_CT: Final[time] = DAILY_HALT
"""Start of the daily maintenance halt (and Friday's close), America/Chicago
(:data:`propdesk.model.calendar.DAILY_HALT`)."""

_ONE_DAY: Final[timedelta] = timedelta(days=1)
_FRIDAY: Final[int] = 4
_SATURDAY: Final[int] = 5
_SUNDAY: Final[int] = 6


def chicago_ns(day: date, at: time) -> int:
    """UTC nanoseconds of the wall-clock time ``at`` on ``day`` in America/Chicago (DST-correct)."""
    return datetime_to_ns(datetime.combine(day, at, tzinfo=CHICAGO))


chicago_datetime = ct_datetime
"""The America/Chicago wall-clock datetime of UTC nanoseconds ``ts_ns`` (microsecond resolution)."""


class CmeSessions:
    """CME Globex sessions for bar alignment: trade dates, session opens/closes and intraday cut points.

    Args:
        holidays: dates (America/Chicago calendar dates) that are not trade dates although they are weekdays;
            trading on them belongs to the next trading day. Take them from an exchange calendar.

    A session for trade date ``D`` *contains* every instant in ``[close(P), close(D))`` where ``P`` is the previous
    trade date and ``close(X)`` is 17:00 CT on ``X`` (the halt hour 16:00-17:00 is inside the session it ends, so the
    sessions tile time and no print is outside every session). Its *nominal open*, :meth:`session_open_ns`, is
    Sunday 17:00 CT when a weekend lies between ``P`` and ``D`` (Monday's session), else ``close(P)``. Prints between
    ``close(P)`` and the nominal open (the weekend, when Globex is closed) still belong to ``D``.

    Intraday cut points (:meth:`cuts_between`) are 16:00 CT Monday-Friday (halt / Friday close) and 17:00 CT
    Sunday-Thursday (session open), regardless of holidays.
    """

    __slots__ = ("_holidays",)

    def __init__(self, holidays: Iterable[date] = ()) -> None:
        self._holidays: frozenset[date] = frozenset(holidays)

    @classmethod
    def from_calendar(cls, calendar: TradingCalendar | None = None) -> CmeSessions:
        """Sessions whose holidays are those of a :class:`~propdesk.model.calendar.TradingCalendar`.

        ``calendar`` defaults to :func:`propdesk.model.calendar.default_calendar` (CMES plus propdesk's calendar
        data). Its holidays are the weekdays that are not trading dates: full closures (Christmas, Good Friday) and
        holiday sessions whose trades carry the next trade date (Thanksgiving, MLK day), the same folding rule as
        here. Dates outside the calendar's coverage fall back to weekends only.

        Raises:
            propdesk.model.calendar.CalendarError: the shipped calendar data cannot be loaded.
        """
        if calendar is None:
            from propdesk.model.calendar import default_calendar  # noqa: PLC0415 - loads exchange_calendars (~1 s)

            calendar = default_calendar()
        return cls(calendar.holidays)

    @property
    def holidays(self) -> frozenset[date]:
        """The weekday dates that are not trade dates."""
        return self._holidays

    def is_trade_date(self, day: date) -> bool:
        """True for a weekday that is not a holiday."""
        return day.weekday() < _SATURDAY and day not in self._holidays

    def next_trade_date(self, day: date) -> date:
        """The first trade date strictly after ``day``."""
        day += _ONE_DAY
        while not self.is_trade_date(day):
            day += _ONE_DAY
        return day

    def previous_trade_date(self, day: date) -> date:
        """The last trade date strictly before ``day``."""
        day -= _ONE_DAY
        while not self.is_trade_date(day):
            day -= _ONE_DAY
        return day

    def trade_date(self, ts_ns: int) -> date:
        """The trade date whose session contains ``ts_ns`` (17:00 CT boundary; weekends/holidays fold forward)."""
        local = chicago_datetime(ts_ns)
        day = local.date()
        if local.time() >= SESSION_OPEN_CT:
            day += _ONE_DAY
        while not self.is_trade_date(day):
            day += _ONE_DAY
        return day

    def session_close_ns(self, day: date) -> int:
        """The nominal close of trade date ``day``'s session: 17:00 CT on ``day`` (UTC ns)."""
        return chicago_ns(day, SESSION_OPEN_CT)

    def session_open_ns(self, day: date) -> int:
        """The nominal open of trade date ``day``'s session (UTC ns).

        17:00 CT on the last Sunday between the previous trade date and ``day`` when a weekend lies between them
        (Monday's session opens Sunday 17:00 CT), else the previous trade date's 17:00 CT close. Holiday-specific
        reopen times (e.g. Christmas Monday reopening at 17:00 CT) are not modelled; prints before the nominal open
        still belong to the session.
        """
        prev = self.previous_trade_date(day)
        d = day - _ONE_DAY
        while d > prev:
            if d.weekday() == _SUNDAY:
                return chicago_ns(d, SESSION_OPEN_CT)
            d -= _ONE_DAY
        return chicago_ns(prev, SESSION_OPEN_CT)

    def sessions_between(
        self, start_ns: int, end_ns: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Every session that contains an instant of ``[start_ns, end_ns]``, in order.

        Returns:
            ``(contains_from, open, close)`` int64 arrays (UTC ns): ``contains_from`` is the previous session's close
            (the first instant the session contains), ``open`` the nominal open, ``close`` the 17:00 CT close.
        """
        first = self.trade_date(start_ns)
        last = self.trade_date(end_ns)
        froms: list[int] = []
        opens: list[int] = []
        closes: list[int] = []
        day = first
        while day <= last:
            froms.append(self.session_close_ns(self.previous_trade_date(day)))
            opens.append(self.session_open_ns(day))
            closes.append(self.session_close_ns(day))
            day = self.next_trade_date(day)
        return (
            np.asarray(froms, dtype=np.int64),
            np.asarray(opens, dtype=np.int64),
            np.asarray(closes, dtype=np.int64),
        )

    def cuts_between(self, start_ns: int, end_ns: int) -> npt.NDArray[np.int64]:
        """Sorted intraday cut points (UTC ns) covering ``[start_ns, end_ns]``.

        The result includes the last cut at or before ``start_ns`` and the first cut after ``end_ns``, so every
        instant of the range lies in some ``[cuts[i], cuts[i + 1])``.
        """
        day = chicago_datetime(start_ns).date() - timedelta(days=4)
        stop = chicago_datetime(end_ns).date() + timedelta(days=4)
        cuts: list[int] = []
        while day <= stop:
            wd = day.weekday()
            if wd <= _FRIDAY:
                cuts.append(chicago_ns(day, DAILY_HALT_CT))
            if wd < _FRIDAY or wd == _SUNDAY:
                cuts.append(chicago_ns(day, SESSION_OPEN_CT))
            day += _ONE_DAY
        arr = np.asarray(cuts, dtype=np.int64)
        lo = max(int(np.searchsorted(arr, start_ns, side="right")) - 1, 0)
        hi = min(int(np.searchsorted(arr, end_ns, side="right")) + 1, len(arr))
        return arr[lo:hi]
