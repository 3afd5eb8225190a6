"""Market hours for the simulated broker: is a contract's market open at a time, and when does its trading day end.

:class:`MarketHours` combines two sources:

* the contract's exchange calendar (``ContractSpec.calendar``, ``CMES`` for every CME product; exchange_calendars,
  https://github.com/gerrymanoim/exchange_calendars) for sessions, weekends, holidays and early closes. Its CMES
  sessions run 17:00 to 17:00 America/Chicago with no daily break;
* the daily maintenance halt from the spec's ``session_close``/``session_open`` (16:00-17:00 CT for CME equity
  index futures, ``model/resources/contracts.toml``), which the calendar does not model.

The calendar's schedule is loaded once per calendar name into two sorted int64 arrays (UTC ns), so each check is a
binary search, not a pandas call.

DAY orders expire at :meth:`MarketHours.session_end_ns`: the first local ``session_close`` (16:00 CT) strictly after
the order's acceptance. Early closes (e.g. 12:00 CT on US holidays) are not applied to DAY expiry: no data arrives
after an early close, so such orders expire at the first price event after 16:00 (or the timer).
"""

from __future__ import annotations

import warnings
from datetime import datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from propdesk.core.errors import ConfigError
from propdesk.model.contracts import ContractSpec


@cache
def _schedule(calendar: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    import exchange_calendars as xcals  # noqa: PLC0415 - heavy import, only when the calendar check is used

    try:
        with warnings.catch_warnings():  # exchange_calendars 4.x trips pandas 3 deprecation warnings internally
            warnings.simplefilter("ignore", DeprecationWarning)
            cal = xcals.get_calendar(calendar)
    except Exception as exc:  # exchange_calendars raises its own InvalidCalendarName
        raise ConfigError(f"unknown exchange calendar {calendar!r}: {exc}") from None
    sched = cal.schedule
    opens = sched["open"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[ns]").astype(np.int64)
    closes = sched["close"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[ns]").astype(np.int64)
    return opens, closes


def _utc_iso(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / 1e9, tz=ZoneInfo("UTC")).strftime("%Y-%m-%d %H:%M:%S UTC")


class MarketHours:
    """Trading hours of one contract spec (see the module docstring for the rules and sources).

    Raises:
        ConfigError: at the first :meth:`closed_reason` call if the spec names an unknown calendar.
    """

    __slots__ = ("_closes", "_halt", "_opens", "_spec", "_tz")

    def __init__(self, spec: ContractSpec) -> None:
        self._spec = spec
        self._tz = ZoneInfo(spec.timezone)
        self._halt = spec.session_close < spec.session_open
        self._opens: npt.NDArray[np.int64] | None = None
        self._closes: npt.NDArray[np.int64] | None = None

    def closed_reason(self, ts_ns: int) -> str | None:
        """``None`` when the market is open at ``ts_ns`` (UTC ns), else why it is closed (for ``OrderRejected``)."""
        if self._opens is None or self._closes is None:
            self._opens, self._closes = _schedule(self._spec.calendar)
        opens, closes = self._opens, self._closes
        if len(opens) == 0 or ts_ns < int(opens[0]) or ts_ns >= int(closes[-1]):
            return f"market closed: {_utc_iso(ts_ns)} is outside the {self._spec.calendar} calendar's range"
        i = int(np.searchsorted(opens, ts_ns, side="right")) - 1
        if i < 0 or ts_ns >= int(closes[i]):
            return f"market closed: {self._spec.root} has no {self._spec.calendar} session at {_utc_iso(ts_ns)}"
        if self._halt:
            local = datetime.fromtimestamp(ts_ns / 1e9, tz=self._tz).time()
            if self._spec.session_close <= local < self._spec.session_open:
                return (
                    f"market closed: {self._spec.root} is in its daily halt "
                    f"({self._spec.session_close:%H:%M}-{self._spec.session_open:%H:%M} {self._spec.timezone})"
                )
        return None

    def session_end_ns(self, ts_ns: int) -> int:
        """The first ``session_close`` (local time in the spec's zone) strictly after ``ts_ns``, as UTC ns."""
        local = datetime.fromtimestamp(ts_ns / 1e9, tz=self._tz)
        end = datetime.combine(local.date(), self._spec.session_close, tzinfo=self._tz)
        if end <= local:
            end = datetime.combine(local.date() + timedelta(days=1), self._spec.session_close, tzinfo=self._tz)
        return int(end.timestamp()) * 1_000_000_000 + end.microsecond * 1000
