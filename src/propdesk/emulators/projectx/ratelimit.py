"""Sliding-window request limits of the gateway (spec section 9: 200 requests / 60 s, bars 30 / 30 s, per token).

A request that would exceed the window is refused and not counted; the caller answers HTTP 429 with
``Retry-After`` = whole seconds until the oldest counted request leaves the window.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable


class SlidingWindowLimiter:
    """At most ``count`` requests per ``window_s`` seconds per key.

    Args:
        count: requests allowed per window.
        window_s: window length (s).
        now: monotonic clock in seconds (tests pass a stub).
    """

    def __init__(self, count: int, window_s: float, now: Callable[[], float] = time.monotonic) -> None:
        self.count = count
        self.window_s = window_s
        self._now = now
        self._hits: dict[str, deque[float]] = {}

    def hit(self, key: str) -> int | None:
        """Count one request of ``key``; ``None`` when allowed, else the ``Retry-After`` seconds (>= 1)."""
        now = self._now()
        q = self._hits.setdefault(key, deque())
        edge = now - self.window_s
        while q and q[0] <= edge:
            q.popleft()
        if len(q) >= self.count:
            return max(1, math.ceil(q[0] + self.window_s - now))
        q.append(now)
        return None

    def reset(self) -> None:
        """Forget every counted request."""
        self._hits.clear()
