"""Driving ``propdesk serve`` in tests: a fake wall clock that lets paced replays play only while a test waits for
something (:class:`Pacer`), a window of the real ES file, and the settings of sim accounts on it."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from propdesk.config import ServeSettings
from propdesk.model.data import BarSeries
from propdesk.sessions.common import load_window_bars
from tests.conftest import ES_1MIN, resolve_shared

WINDOW_START = datetime(2025, 10, 15, 13, 30, tzinfo=UTC)
"""Wed 2025-10-15 08:30 CT: the window the serve tests replay starts here (inside the session, a weekday)."""


def ns(when: datetime) -> int:
    """UTC ns of ``when``."""
    return int(when.timestamp()) * 10**9


@functools.cache
def _es_bars() -> BarSeries:
    return load_window_bars(resolve_shared(ES_1MIN), symbol=None, start_ns=None, end_ns=None)


def es_window(minutes: int, start: datetime = WINDOW_START) -> BarSeries:
    """``minutes`` one-minute bars of the real ES file (ESZ5) from ``start`` (loaded once per test process)."""
    begin = ns(start)
    return _es_bars().between(begin, begin + minutes * 60 * 10**9)


def sim_settings(accounts: Sequence[dict[str, Any]], strategies: Sequence[dict[str, Any]] = ()) -> ServeSettings:
    """``[serve]`` settings of sim accounts on the ES file (each account a ``[[serve.accounts]]`` table)."""
    data = resolve_shared(ES_1MIN)
    return ServeSettings.model_validate(
        {
            "data_dir": str(data.parent),
            "speed": 60,
            "accounts": [{"data": data.name, **a} for a in accounts],
            "strategies": list(strategies),
        }
    )


class Pacer:
    """A fake wall clock (:meth:`monotonic`) and sleep (:meth:`sleep`) for paced replays: a feed's sleep returns (the
    clock moving by the time asked) only while a test awaits :meth:`until`, so between two calls nothing is played
    and the test issues commands between two records, as an interface on the loop would."""

    def __init__(self) -> None:
        self.t = 0.0
        self._open = asyncio.Event()

    def monotonic(self) -> float:
        """The fake wall clock (seconds)."""
        return self.t

    async def sleep(self, seconds: float) -> None:
        """Wait until the test lets the replays play, then move the clock by ``seconds``."""
        await self._open.wait()
        self.t += max(seconds, 0.0)
        await asyncio.sleep(0)

    async def until(self, condition: Callable[[], bool], *, timeout_s: float = 120.0, what: str = "") -> None:
        """Let the replays play until ``condition()`` holds (checked between two loop turns, with a short real pause
        now and then for I/O: the journal's writer), then hold them.

        Raises:
            AssertionError: it did not hold within ``timeout_s`` real seconds (a failure, not a timing).
        """
        self._open.set()
        deadline = time.monotonic() + timeout_s
        try:
            turns = 0
            while not condition():
                turns += 1
                await asyncio.sleep(0.001 if turns % 200 == 0 else 0)
                if time.monotonic() > deadline:
                    raise AssertionError(f"not reached: {what or condition}")
        finally:
            self._open.clear()

    async def hold_until(self, condition: Callable[[], bool], *, timeout_s: float = 120.0, what: str = "") -> None:
        """Wait (real time, the replays held) until ``condition()`` holds: for what the loop does besides playing
        (the journal's commits, a stream's consumers).

        Raises:
            AssertionError: it did not hold within ``timeout_s`` real seconds.
        """
        deadline = time.monotonic() + timeout_s
        while not condition():
            await asyncio.sleep(0.002)
            if time.monotonic() > deadline:
                raise AssertionError(f"not reached: {what or condition}")


__all__ = ["WINDOW_START", "Pacer", "es_window", "ns", "sim_settings"]
