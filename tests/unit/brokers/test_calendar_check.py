"""The text summary of the simulated exchange's data warnings (fold_closed_periods): one line per contract and kind
of closed period."""

from __future__ import annotations

from datetime import UTC, datetime

from propdesk.brokers.sim.calendar_check import ClosedPeriod, fold_closed_periods


def _ns(y: int, mo: int, d: int, h: int) -> int:
    return int(datetime(y, mo, d, h, tzinfo=UTC).timestamp()) * 1_000_000_000


def _weekend(d: int, records: int = 1) -> ClosedPeriod:
    # Friday 16:00 CDT (21:00 UTC) to Sunday 17:00 CDT (22:00 UTC)
    start = _ns(2025, 9, d, 21)
    return ClosedPeriod("ESZ5", start, _ns(2025, 9, d + 2, 22), "weekend", start, records)


LABOR = ClosedPeriod("ESZ5", _ns(2025, 9, 1, 17), _ns(2025, 9, 1, 22), "early close", _ns(2025, 9, 1, 17), 240)


def test_a_kind_seen_once_keeps_its_own_line() -> None:
    assert fold_closed_periods([LABOR, _weekend(5)]) == [LABOR.describe(), _weekend(5).describe()]


def test_several_periods_of_a_kind_fold_into_one_line() -> None:
    lines = fold_closed_periods([LABOR, _weekend(5), _weekend(12, records=2), _weekend(19)])
    assert lines == [
        LABOR.describe(),
        "ESZ5: 3 weekends held market data that was not traded (4 records; the first 2025-09-05 16:00 CT, the last "
        "2025-09-19 16:00 CT)",
    ]


def test_no_period_no_line() -> None:
    assert fold_closed_periods([]) == []
