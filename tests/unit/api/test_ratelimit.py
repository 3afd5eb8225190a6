"""Token buckets: burst, refill at the rate, wait time, independent keys, new bucket on a changed rate."""

from __future__ import annotations

import pytest

from propdesk.api.ratelimit import RateLimiter, TokenBucket
from tests.unit.api.conftest import FakeClock


def test_bucket_allows_burst_then_refills_at_rate() -> None:
    bucket = TokenBucket(rate_per_s=2.0, burst=3)
    assert [bucket.take(10.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(10.0) == pytest.approx(0.5)  # one token is back after 1 / rate seconds
    assert bucket.take(10.5) == 0.0
    assert bucket.take(100.0) == 0.0  # refilled, but never above the burst
    assert bucket.tokens == pytest.approx(2.0)


def test_bucket_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError, match="positive"):
        TokenBucket(rate_per_s=0.0, burst=1)
    with pytest.raises(ValueError, match="positive"):
        TokenBucket(rate_per_s=1.0, burst=0)


def test_limiter_keeps_one_bucket_per_key() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    assert limiter.check("a", rate_per_minute=60, burst=1) == 0.0
    assert limiter.check("a", rate_per_minute=60, burst=1) == pytest.approx(1.0)
    assert limiter.check("b", rate_per_minute=60, burst=1) == 0.0
    clock.now += 1.0
    assert limiter.check("a", rate_per_minute=60, burst=1) == 0.0
    assert limiter.check("a", rate_per_minute=60, burst=5) == 0.0  # edited key: a new, full bucket
    limiter.forget("a")
    assert limiter.check("a", rate_per_minute=60, burst=1) == 0.0


def test_wait_takes_nothing() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    assert limiter.wait("a") == 0.0
    limiter.check("a", rate_per_minute=60, burst=1)
    assert limiter.wait("a") == pytest.approx(1.0) and limiter.wait("a") == pytest.approx(1.0)
    clock.now += 1.0
    assert limiter.wait("a") == 0.0


def test_limiter_keeps_at_most_max_keys() -> None:
    limiter = RateLimiter(clock=FakeClock(), max_keys=2)
    for key in ("a", "b", "a", "c"):  # "b" is the least recently used when "c" arrives
        limiter.check(key, rate_per_minute=60, burst=1)
    assert len(limiter) == 2
    assert limiter.wait("a") > 0 and limiter.wait("b") == 0.0 and limiter.wait("c") > 0
