"""Tests of the bundled strategies; ``make_bar``/``ct_ns`` build hand-made bars at given wall-clock times."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from propdesk.model.data import NS_PER_MINUTE, Bar, Timeframe

CT = ZoneInfo("America/Chicago")
ONE_MINUTE = Timeframe(1, "m")


def ct_ns(year: int, month: int, day: int, hour: int, minute: int = 0) -> int:
    """UTC ns of a wall-clock time in America/Chicago."""
    return int(datetime(year, month, day, hour, minute, tzinfo=CT).timestamp()) * 1_000_000_000


def make_bar(ts_open_ns: int, o: float, h: float, lo: float, c: float, volume: int = 100, symbol: str = "ESZ5") -> Bar:
    """A 1-minute bar opening at ``ts_open_ns``."""
    return Bar(symbol, ONE_MINUTE, o, h, lo, c, volume, ts_open_ns, ts_open_ns + NS_PER_MINUTE)


def closes_to_bars(closes: list[float], start_ns: int = 1_700_000_000 * 1_000_000_000) -> list[Bar]:
    """One bar per close, a minute apart; open = previous close, high/low bound open and close."""
    out: list[Bar] = []
    prev = closes[0]
    for i, c in enumerate(closes):
        out.append(make_bar(start_ns + i * NS_PER_MINUTE, prev, max(prev, c), min(prev, c), c))
        prev = c
    return out
