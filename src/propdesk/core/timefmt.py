"""Time conversions and formats: UTC nanoseconds <-> datetime, and the text forms propdesk prints.

Time inside propdesk is UTC nanoseconds (int). Conversions here are exact integer arithmetic (no float seconds):
a datetime keeps the microseconds of the time (the nanoseconds below are truncated), and text forms that show whole
seconds or minutes truncate, never round. CME times are shown in Chicago wall time (:data:`CT`, the exchange's
zone; DST from the IANA tz database via :mod:`zoneinfo`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Final
from zoneinfo import ZoneInfo

__all__ = [
    "CT",
    "NS_PER_S",
    "UTC",
    "ct_date",
    "ct_datetime",
    "datetime_to_ns",
    "fmt_ct_minutes",
    "fmt_ct_seconds",
    "iso_utc",
    "iso_utc_seconds",
    "ns_to_datetime",
]

CT: Final = ZoneInfo("America/Chicago")
"""America/Chicago: CME Globex's zone (trading dates, session hours, flat times)."""

NS_PER_S: Final = 1_000_000_000
"""Nanoseconds per second."""

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US: Final = timedelta(microseconds=1)


def ns_to_datetime(ts_ns: int, tz: tzinfo = UTC) -> datetime:
    """UTC nanoseconds to an aware datetime in ``tz`` (default UTC), truncated to microseconds."""
    d = _EPOCH + timedelta(microseconds=ts_ns // 1000)
    return d if tz is UTC else d.astimezone(tz)


def datetime_to_ns(dt: datetime) -> int:
    """An aware datetime to UTC nanoseconds (exact: microseconds x 1000). Raises TypeError for a naive datetime."""
    return ((dt - _EPOCH) // _ONE_US) * 1000


def ct_datetime(ts_ns: int) -> datetime:
    """UTC nanoseconds as an aware Chicago wall-clock datetime (microseconds kept). Called per bar by the session
    calendar, so it does the arithmetic itself rather than call :func:`ns_to_datetime`."""
    return (_EPOCH + timedelta(microseconds=ts_ns // 1000)).astimezone(CT)


def ct_date(ts_ns: int) -> date:
    """The Chicago calendar date of a UTC nanosecond time (not the CME trading date, which starts at 17:00 CT)."""
    return ns_to_datetime(ts_ns, CT).date()


def iso_utc(ts_ns: int) -> str:
    """UTC nanoseconds as ISO 8601 with ``Z``, exact: ``2025-09-15T13:30:00Z``, ``...:00.000000250Z``."""
    sec, frac = divmod(int(ts_ns), NS_PER_S)
    text = (_EPOCH + timedelta(seconds=sec)).strftime("%Y-%m-%dT%H:%M:%S")
    if frac:
        text += "." + f"{frac:09d}".rstrip("0")
    return text + "Z"


def iso_utc_seconds(ts_ns: int) -> str:
    """UTC nanoseconds as ISO 8601 in whole seconds with ``Z``: ``2025-09-15T13:30:00Z``."""
    return ns_to_datetime(ts_ns).strftime("%Y-%m-%dT%H:%M:%SZ")


def fmt_ct_minutes(ts_ns: int) -> str:
    """UTC nanoseconds as Chicago wall time to the minute: ``2025-03-07 15:05 CT``."""
    return ns_to_datetime(ts_ns, CT).strftime("%Y-%m-%d %H:%M CT")


def fmt_ct_seconds(ts_ns: int) -> str:
    """UTC nanoseconds as Chicago wall time to the second: ``2025-03-07 15:05:09 CT``."""
    return ns_to_datetime(ts_ns, CT).strftime("%Y-%m-%d %H:%M:%S CT")
