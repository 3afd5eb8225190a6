"""ProjectX settings: TopstepX defaults, credentials from the environment, never in repr."""

from __future__ import annotations

import pytest

from propdesk.brokers.projectx.config import ENV_API_KEY, ENV_USERNAME, ProjectXSettings
from propdesk.core.errors import ConfigError


def test_topstepx_defaults_and_budgets() -> None:
    s = ProjectXSettings()
    assert s.api_base == "https://api.topstepx.com"
    assert s.user_hub_url == "https://rtc.topstepx.com/hubs/user"
    assert s.market_hub_url == "https://rtc.topstepx.com/hubs/market"
    assert (s.general_budget.count, s.general_budget.window_s, s.general_budget.routine_limit) == (200, 60.0, 150)
    assert (s.history_budget.count, s.history_budget.window_s) == (30, 30.0)
    assert s.bracket_mode(123) == "position"


def test_credentials_from_env_never_shown() -> None:
    s = ProjectXSettings().with_env_credentials({ENV_USERNAME: "trader", ENV_API_KEY: "k3y-very-secret"})
    assert s.require_credentials() == ("trader", "k3y-very-secret")
    assert "k3y-very-secret" not in repr(s) and "k3y-very-secret" not in str(s)
    with pytest.raises(ConfigError, match=ENV_API_KEY):
        ProjectXSettings().with_env_credentials({ENV_USERNAME: "trader"})


def test_hosts_must_be_http() -> None:
    with pytest.raises(ValueError, match="http"):
        ProjectXSettings(api_base="ws://127.0.0.1:1")
