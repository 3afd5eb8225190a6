"""Per-key rate limits: a token bucket for each API key (and each webhook).

A bucket holds at most ``burst`` tokens and refills continuously at ``rate_per_minute / 60`` tokens per second;
a request takes one token or is refused with the seconds until one is back (the ``Retry-After`` of an HTTP 429).
Time comes from a monotonic clock in seconds (``time.monotonic`` unless given), so a wall-clock change neither
refills nor drains a bucket, and tests drive it with their own clock.

Written here rather than taken from a library: the maintained Python rate limiters (``limits``, ``slowapi``,
``pyrate-limiter``) bring storage back ends and fixed/sliding windows for multi-process deployments; propdesk serves
from one process, needs one per-key bucket whose size and rate come from the key's row, and needs an injectable
clock. The bucket is a dozen lines of arithmetic.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["RateLimiter", "TokenBucket"]


@dataclass(slots=True)
class TokenBucket:
    """One token bucket.

    Attributes:
        rate_per_s: tokens added per second (> 0). burst: the bucket size (>= 1 token).
        tokens: tokens now (starts full). updated_s: the clock reading of ``tokens`` (``None``: not used yet).

    Raises:
        ValueError: a rate or burst that is not positive.
    """

    rate_per_s: float
    burst: int
    tokens: float = field(default=-1.0)
    updated_s: float | None = None

    def __post_init__(self) -> None:
        if not (self.rate_per_s > 0 and math.isfinite(self.rate_per_s)) or self.burst < 1:
            raise ValueError(f"a token bucket needs a positive rate and burst, not {self.rate_per_s}/s, {self.burst}")
        if self.tokens < 0:
            self.tokens = float(self.burst)

    def wait(self, now_s: float) -> float:
        """Seconds until a token is available at ``now_s`` (``0.0``: one is), taking nothing."""
        tokens = self.tokens
        if self.updated_s is not None and now_s > self.updated_s:
            tokens = min(float(self.burst), tokens + (now_s - self.updated_s) * self.rate_per_s)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate_per_s

    def take(self, now_s: float) -> float:
        """Take one token at ``now_s`` (seconds, monotonic): ``0.0`` when taken, else the seconds until one is back
        (nothing is taken then)."""
        if self.updated_s is not None and now_s > self.updated_s:
            self.tokens = min(float(self.burst), self.tokens + (now_s - self.updated_s) * self.rate_per_s)
        if self.updated_s is None or now_s > self.updated_s:
            self.updated_s = now_s
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate_per_s


class RateLimiter:
    """Token buckets by key (an API key id, a webhook id), created on first use.

    Args:
        clock: monotonic seconds (default :func:`time.monotonic`).
        max_keys: buckets kept at most; past it the least recently used is dropped (a dropped key starts full
            again, so keep this well above the number of live keys and hooks).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_keys: int = 10_000) -> None:
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def check(self, key: str, *, rate_per_minute: int, burst: int) -> float:
        """Take a token from ``key``'s bucket: ``0.0`` when allowed, else the seconds to wait. A changed rate or
        burst (the key's row was edited) starts a new, full bucket.

        Raises:
            ValueError: a rate or burst that is not positive.
        """
        bucket = self._buckets.get(key)
        rate_per_s = rate_per_minute / 60.0
        if bucket is None or bucket.burst != burst or bucket.rate_per_s != rate_per_s:
            bucket = self._buckets[key] = TokenBucket(rate_per_s=rate_per_s, burst=burst)
            while len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        self._buckets.move_to_end(key)
        return bucket.take(self._clock())

    def wait(self, key: str) -> float:
        """Seconds until ``key``'s bucket has a token (``0.0``: it has one, or ``key`` has no bucket yet), taking
        nothing."""
        bucket = self._buckets.get(key)
        return 0.0 if bucket is None else bucket.wait(self._clock())

    def forget(self, key: str) -> None:
        """Drop ``key``'s bucket (a revoked key)."""
        self._buckets.pop(key, None)

    def __len__(self) -> int:
        return len(self._buckets)
