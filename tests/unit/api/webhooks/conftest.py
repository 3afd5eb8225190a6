"""Webhook fixtures: a hook trading MES (ES alerts remapped to MES) and instants around the ESZ5 roll."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from propdesk.api.webhooks.security import new_hook_id
from propdesk.api.webhooks.signal import HookSettings


def utc_ns(*args: int) -> int:
    """UTC ns of ``datetime(*args, tzinfo=UTC)``."""
    return int(datetime(*args, tzinfo=UTC).timestamp()) * 1_000_000_000


MONDAY_NOV_3_2025 = utc_ns(2025, 11, 3, 15, 0)
"""A Monday 09:00 CT: CME equity index futures trade; ESZ5 is the front contract."""
SATURDAY_NOV_8_2025 = utc_ns(2025, 11, 8, 15, 0)
"""A Saturday: the market is closed."""


@pytest.fixture
def hook() -> HookSettings:
    return HookSettings(
        hook_id=new_hook_id(),
        account_id=7,
        passphrase="correct horse battery staple",
        allowed_roots=frozenset({"MES", "NQ"}),
        remap=(("ES", "MES"),),
        max_age_s=30,
        max_drift_ticks=8,
        rate_per_minute=60,
        burst=3,
    )
