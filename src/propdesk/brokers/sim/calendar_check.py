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
the order's acceptance. Early closes (e.g. 12:00 CT on US holidays) are not applied to DAY expiry: no fill happens
after an early close (below), so such orders expire at the first price event after 16:00 (or the timer).

**Closed periods** (:func:`market_span`, :class:`ClosedPeriod`). Whether the simulated exchange may fill at all is
decided by propdesk's trading calendar (:func:`propdesk.model.calendar.default_calendar`: ``calendar.toml`` over
CMES, with the daily halt, weekends, holidays, holiday halts and early closes of the contract's product). The
:class:`MarketHours` check above only judges a *new* order (and only with ``calendar_check="calendar"``), so before
the closed-period rule a working order filled on any bar the data held: on Labor Day 2025-09-01 the ES file has
bars after CME's 12:00 CT halt and orders filled there until the 17:00 CT reopen. Now market data inside a closed
period is not traded (``SimBroker``); each closed period that holds data is reported once as a data warning.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from propdesk.core.errors import ConfigError
from propdesk.core.timefmt import ns_to_datetime
from propdesk.model.calendar import CalendarCoverageError, CalendarError, chicago_local, default_calendar
from propdesk.model.contracts import ContractSpec

FOREVER_NS = 2**63 - 1
"""The end of a span that never ends (UTC ns)."""


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
    return ns_to_datetime(ts_ns).strftime("%Y-%m-%d %H:%M:%S UTC")


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
            local = ns_to_datetime(ts_ns, self._tz).time()
            if self._spec.session_close <= local < self._spec.session_open:
                return (
                    f"market closed: {self._spec.root} is in its daily halt "
                    f"({self._spec.session_close:%H:%M}-{self._spec.session_open:%H:%M} {self._spec.timezone})"
                )
        return None

    def session_end_ns(self, ts_ns: int) -> int:
        """The first ``session_close`` (local time in the spec's zone) strictly after ``ts_ns``, as UTC ns."""
        local = ns_to_datetime(ts_ns, self._tz)
        end = datetime.combine(local.date(), self._spec.session_close, tzinfo=self._tz)
        if end <= local:
            end = datetime.combine(local.date() + timedelta(days=1), self._spec.session_close, tzinfo=self._tz)
        return int(end.timestamp()) * 1_000_000_000 + end.microsecond * 1000


def market_span(spec: ContractSpec, ts_ns: int) -> tuple[bool, int, int]:
    """Whether ``spec``'s product trades at ``ts_ns`` (UTC ns) by propdesk's trading calendar, and the span
    ``[start_ns, end_ns)`` around ``ts_ns`` in which that stays so
    (:meth:`propdesk.model.calendar.TradingCalendar.open_span`).

    A time outside the calendar's coverage, or a product the calendar has no hours for, counts as open (nothing is
    known that says it is closed): before the coverage until its first trading date starts, after it forever.

    Raises:
        CalendarError: the shipped calendar data is invalid (from :func:`default_calendar`).
    """
    cal = default_calendar()
    try:
        return cal.open_span(ts_ns, spec.root)
    except CalendarCoverageError:
        first = cal.day_start_ns(cal.first_date)
        return (True, -(2**63), first) if ts_ns < first else (True, ts_ns, FOREVER_NS)
    except CalendarError:
        return True, -(2**63), FOREVER_NS


def ct_text(ts_ns: int) -> str:
    """``2025-09-01 17:00 CT`` for a time (UTC ns); ``the end of the calendar`` for :data:`FOREVER_NS`."""
    if ts_ns >= FOREVER_NS:
        return "the end of the calendar"
    return chicago_local(ts_ns).strftime("%Y-%m-%d %H:%M CT")


def closed_kind(spec: ContractSpec, start_ns: int, end_ns: int) -> str:
    """What a closed period of ``spec``'s product is, for messages: ``daily halt`` (at the product's daily close,
    at most an hour), ``weekend``, ``early close`` (it starts before the daily close: a holiday halt or an early
    close), or ``closure`` (a full-day closure)."""
    start, end = chicago_local(start_ns), chicago_local(end_ns)
    if start.weekday() == 4 and end.weekday() == 6 and start.time() == spec.session_close:
        return "weekend"
    if start.time() == spec.session_close and end_ns - start_ns <= 3_600_000_000_000:
        return "daily halt"
    if start.time() < spec.session_close and end.date() == start.date():
        return "early close"
    return "closure"


@dataclass(slots=True)
class ClosedPeriod:
    """A closed period of a contract's market in which the data held records (bars, prints, quotes), which the
    simulated exchange did not trade: a data warning, reported once per period.

    Attributes:
        symbol: the contract (``ESZ5``).
        start_ns / end_ns: the closed period ``[start, end)`` by the trading calendar, UTC ns.
        kind: ``daily halt``, ``weekend``, ``early close`` or ``closure`` (:func:`closed_kind`).
        first_ns: the time of the first record inside it (a bar's open time), UTC ns.
        records: how many records fell inside it so far.
    """

    symbol: str
    start_ns: int
    end_ns: int
    kind: str
    first_ns: int
    records: int = 1

    def describe(self) -> str:
        """One line: ``ESZ5: 300 market-data records inside a closed period (early close, 2025-09-01 12:00 CT to
        2025-09-01 17:00 CT by the trading calendar) were not traded``."""
        n = self.records
        return (
            f"{self.symbol}: {n} market-data record{'s' if n != 1 else ''} inside a closed period ({self.kind}, "
            f"{ct_text(self.start_ns)} to {ct_text(self.end_ns)} by the trading calendar) "
            f"{'were' if n != 1 else 'was'} not traded"
        )

    def notice(self) -> str:
        """The log line at the period's first record: ``ESZ5: market data inside a closed period (early close,
        2025-09-01 12:00 CT to 2025-09-01 17:00 CT by the trading calendar): not traded``."""
        return (
            f"{self.symbol}: market data inside a closed period ({self.kind}, {ct_text(self.start_ns)} to "
            f"{ct_text(self.end_ns)} by the trading calendar): not traded"
        )

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: ``symbol``, ``kind``, ``start_ns``, ``end_ns``, ``start_ct``, ``end_ct``, ``records``,
        ``message``."""
        return {
            "symbol": self.symbol,
            "kind": self.kind,
            "start_ns": self.start_ns,
            "end_ns": self.end_ns,
            "start_ct": ct_text(self.start_ns),
            "end_ct": ct_text(self.end_ns),
            "records": self.records,
            "message": self.describe(),
        }


_PLURAL = {"daily halt": "daily halts", "weekend": "weekends", "early close": "early closes", "closure": "closures"}


def fold_closed_periods(periods: Sequence[ClosedPeriod]) -> list[str]:
    """The data warnings of ``periods`` for a text summary: one line per symbol and kind of closed period, in order of
    first appearance. A kind seen once keeps its :meth:`ClosedPeriod.describe` line; several are folded into
    ``ESZ5: 11 weekends held market data that was not traded (11 records; the first 2025-09-05 16:00 CT, the last
    2025-11-14 16:00 CT)``. The JSON summaries keep one line per period."""
    groups: dict[tuple[str, str], list[ClosedPeriod]] = {}
    for p in periods:
        groups.setdefault((p.symbol, p.kind), []).append(p)
    out: list[str] = []
    for (symbol, kind), group in groups.items():
        if len(group) == 1:
            out.append(group[0].describe())
            continue
        records = sum(p.records for p in group)
        out.append(
            f"{symbol}: {len(group)} {_PLURAL.get(kind, kind + 's')} held market data that was not traded "
            f"({records:,} record{'s' if records != 1 else ''}; the first {ct_text(group[0].start_ns)}, the last "
            f"{ct_text(group[-1].start_ns)})"
        )
    return out
