"""The one backoff schedule: waits, cap, jitter, attempt limit, and each caller's numbers."""

from __future__ import annotations

import itertools
import math

import pytest

from propdesk.brokers.projectx.config import RetrySettings
from propdesk.core.backoff import Backoff
from propdesk.risk.enforcer import DEFAULT_BACKOFF, DEFAULT_BACKOFF_S


def test_waits_double_up_to_the_cap_and_go_on() -> None:
    waits = list(itertools.islice(Backoff(0.2, 2.0, 5.0).delays(), 7))
    assert waits == pytest.approx([0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0])


def test_max_attempts_ends_the_iterator() -> None:
    assert list(Backoff(1.0, 3.0, max_attempts=3).delays()) == [1.0, 3.0, 9.0]
    assert list(Backoff(1.0, max_attempts=0).delays()) == []


def test_full_jitter_scales_the_ceiling_by_the_draw() -> None:
    b = Backoff(0.5, 2.0, 8.0, full_jitter=True)
    assert b.delay(3, rng=lambda: 0.25) == pytest.approx(0.5)  # 0.25 * min(8, 0.5 * 4)
    assert b.delay(10, rng=lambda: 0.5) == pytest.approx(4.0)  # 0.5 * the 8 s cap


def test_delay_ns_for_clock_timers() -> None:
    assert Backoff(1.0, 2.0, 60.0).delay_ns(3) == 4_000_000_000


def test_huge_attempts_stay_at_the_cap() -> None:
    assert Backoff(1.0, 2.0, 60.0).delay(5000) == 60.0
    assert Backoff(1.0, 2.0).delay(5000) == math.inf


def test_bad_numbers_are_refused() -> None:
    with pytest.raises(ValueError, match="factor"):
        Backoff(1.0, 0.5)
    with pytest.raises(ValueError, match="initial_s"):
        Backoff(-1.0)
    with pytest.raises(ValueError, match="1-based"):
        Backoff(1.0).delay(0)


def test_flatten_enforcer_keeps_the_spec_table() -> None:
    # risk-rules.md section 7.4: 1 s, 2 s, 4 s ... capped at 60 s
    assert DEFAULT_BACKOFF_S == (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0)
    assert [DEFAULT_BACKOFF.delay_ns(k) for k in (1, 7, 8)] == [1_000_000_000, 60_000_000_000, 60_000_000_000]


def test_projectx_read_retries_keep_their_defaults() -> None:
    schedule = RetrySettings().schedule()
    assert list(schedule.delays(rng=lambda: 1.0)) == [0.5, 1.0, 2.0]  # 3 retries, 0.5 s doubling, full jitter
    assert schedule.full_jitter


def test_step_gives_the_live_reconcile_its_linear_waits() -> None:
    waits = list(Backoff(0.2, 1.0, step_s=0.2, max_attempts=5).delays())
    assert waits == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
