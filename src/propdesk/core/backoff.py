"""One retry schedule: exponential backoff with an optional cap, full jitter and attempt limit.

A :class:`Backoff` is a frozen description (initial wait, factor, longest wait, jitter, attempts); it yields waits in
seconds and holds no state, so one instance serves any number of retry loops. The same schedule drives

* asyncio code: ``for delay in schedule.delays(): await asyncio.sleep(delay)``;
* blocking code: ``time.sleep(next(waits))``;
* the simulated clock's timers: ``clock.set_time_alert(name, now_ns + schedule.delay_ns(attempt), ...)`` (nothing
  sleeps; the wait of the n-th retry is a pure function of ``n``).

Wait ``n`` (1-based) is ``min(max_s, initial_s * factor**(n - 1) + step_s * (n - 1))`` (``step_s`` 0 and ``factor``
1 give a linear schedule); with ``full_jitter`` it is that times a uniform
draw in ``[0, 1)`` ("full jitter", https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/).

The callers and their numbers (each keeps its own):

=====================================  =========  ======  =====  ======  ========  ==========================
caller                                 initial_s  factor  max_s  jitter  attempts  source
=====================================  =========  ======  =====  ======  ========  ==========================
ProjectX REST reads (``rest.py``)      0.5        2       8      full    3         ``RetrySettings`` defaults
ProjectX hubs reconnect                1          2       60     full    none      ``ProjectXSettings`` defaults
ProjectX place, outcome unknown        >= 0.2     2       30     none    4         ``broker._resolve_place``
Flatten enforcer (simulated clock)     1          2       60     none    none      risk-rules.md section 7.4
Journal writer retries and restarts    0.2        2       5      none    none      ``Journal`` defaults
Live reconcile on connect (linear)     0.2        1       none   none    5         ``LiveOptions`` defaults
=====================================  =========  ======  =====  ======  ========  ==========================

The live reconcile adds ``step_s`` 0.2 (waits 0.2 s, 0.4 s, 0.6 s ...; ``reconcile_attempts`` of them).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

__all__ = ["Backoff"]


@dataclass(frozen=True, slots=True)
class Backoff:
    """An exponential backoff schedule (seconds).

    Attributes:
        initial_s: the first wait (seconds, >= 0).
        factor: each wait is the previous one times ``factor`` (>= 1) until ``max_s``.
        max_s: the longest wait (seconds, >= 0; below ``initial_s`` every wait is ``max_s``); ``math.inf`` for no cap.
        full_jitter: each wait is drawn uniformly in ``[0, wait)`` (``rng() * wait``).
        max_attempts: how many waits :meth:`delays` yields (``None``: no end).
        step_s: added to each wait per retry (seconds, >= 0): ``step_s * (attempt - 1)``; 0 for a pure exponential.

    Raises:
        ValueError: a negative ``initial_s``, ``max_s``, ``step_s`` or ``max_attempts``, or a ``factor`` below 1.
    """

    initial_s: float
    factor: float = 2.0
    max_s: float = math.inf
    full_jitter: bool = False
    max_attempts: int | None = None
    step_s: float = 0.0

    def __post_init__(self) -> None:
        if not self.initial_s >= 0:
            raise ValueError(f"backoff initial_s must be >= 0, got {self.initial_s!r}")
        if not self.factor >= 1:
            raise ValueError(f"backoff factor must be >= 1, got {self.factor!r}")
        if not self.max_s >= 0:
            raise ValueError(f"backoff max_s must be >= 0, got {self.max_s!r}")
        if not self.step_s >= 0:
            raise ValueError(f"backoff step_s must be >= 0, got {self.step_s!r}")
        if self.max_attempts is not None and self.max_attempts < 0:
            raise ValueError(f"backoff max_attempts must be >= 0, got {self.max_attempts!r}")

    def ceiling(self, attempt: int) -> float:
        """The un-jittered wait before retry ``attempt`` (1-based):
        ``min(max_s, initial_s * factor**(attempt-1) + step_s * (attempt-1))``.

        Raises:
            ValueError: ``attempt`` < 1.
        """
        if attempt < 1:
            raise ValueError(f"backoff attempt is 1-based, got {attempt!r}")
        try:
            grown = self.initial_s * self.factor ** (attempt - 1)
        except OverflowError:
            return self.max_s
        if self.step_s:
            grown += self.step_s * (attempt - 1)
        return min(self.max_s, grown)

    def delay(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        """The wait before retry ``attempt`` (1-based), seconds; jittered by ``rng()`` (in ``[0, 1)``) when
        ``full_jitter``. Raises ValueError when ``attempt`` < 1."""
        ceiling = self.ceiling(attempt)
        return float(rng() * ceiling) if self.full_jitter else ceiling

    def delay_ns(self, attempt: int, rng: Callable[[], float] = random.random) -> int:
        """:meth:`delay` in integer nanoseconds, for clock timers. Raises ValueError when ``attempt`` < 1."""
        return int(self.delay(attempt, rng) * 1_000_000_000)

    def delays(self, rng: Callable[[], float] = random.random) -> Iterator[float]:
        """The waits in order (seconds): ``max_attempts`` of them, or without end when it is ``None``."""
        attempt = 1
        while self.max_attempts is None or attempt <= self.max_attempts:
            yield self.delay(attempt, rng)
            attempt += 1
