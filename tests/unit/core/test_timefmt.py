"""Time conversions and formats: exact ns <-> datetime, ISO UTC, Chicago wall time across DST."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from propdesk.core.timefmt import (
    CT,
    ct_date,
    ct_datetime,
    datetime_to_ns,
    fmt_ct_minutes,
    fmt_ct_seconds,
    iso_utc,
    iso_utc_seconds,
    ns_to_datetime,
)

# 2025-09-15 13:30:00 UTC = 08:30 CDT (UTC-5)
T0 = 1_757_943_000 * 1_000_000_000


def test_ns_and_datetime_round_trip_exactly_to_the_microsecond() -> None:
    ts = T0 + 123_456_789
    d = ns_to_datetime(ts)
    assert d == datetime(2025, 9, 15, 13, 30, 0, 123_456, tzinfo=UTC)
    assert datetime_to_ns(d) == T0 + 123_456_000


def test_whole_second_formats_truncate_never_round() -> None:
    just_before = T0 - 1  # 13:29:59.999999999: a float division would round it up to 13:30:00
    assert iso_utc_seconds(just_before) == "2025-09-15T13:29:59Z"
    assert fmt_ct_minutes(just_before) == "2025-09-15 08:29 CT"


def test_iso_utc_is_exact() -> None:
    assert iso_utc(T0) == "2025-09-15T13:30:00Z"
    assert iso_utc(T0 + 250) == "2025-09-15T13:30:00.00000025Z"


@pytest.mark.parametrize(
    ("ts_ns", "text"),
    [
        (T0, "2025-09-15 08:30:00 CT"),  # CDT, UTC-5
        (1_765_805_400 * 1_000_000_000, "2025-12-15 07:30:00 CT"),  # 13:30 UTC in CST, UTC-6
    ],
)
def test_chicago_wall_time_follows_dst(ts_ns: int, text: str) -> None:
    assert fmt_ct_seconds(ts_ns) == text
    assert ct_datetime(ts_ns).tzinfo is CT


def test_ct_date_is_the_chicago_calendar_date() -> None:
    # 2025-09-16 03:00 UTC is still 2025-09-15 22:00 in Chicago
    assert ct_date(T0 + 13 * 3600 * 1_000_000_000 + 30 * 60 * 1_000_000_000) == date(2025, 9, 15)
