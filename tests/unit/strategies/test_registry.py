"""The strategy registry: lookup by name, clear errors, building from string parameters."""

from __future__ import annotations

import pytest

from propdesk.core.errors import ConfigError
from propdesk.strategies.base import Strategy, StrategyConfig
from propdesk.strategies.mean_reversion import MeanReversion
from propdesk.strategies.overnight_range import OvernightRange
from propdesk.strategies.registry import STRATEGIES, build_strategy, get_strategy
from propdesk.strategies.sma_cross import SmaCross, SmaCrossConfig
from propdesk.strategies.trend_following import TrendFollowing


def test_bundled_strategies_are_registered_under_their_names() -> None:
    expected = {
        "sma_cross": SmaCross,
        "overnight_range": OvernightRange,
        "mean_reversion": MeanReversion,
        "trend_following": TrendFollowing,
    }
    assert expected == STRATEGIES
    for name, cls in STRATEGIES.items():
        assert get_strategy(name) is cls
        assert cls.name == name
        assert issubclass(cls.config_cls, StrategyConfig)
        assert cls.config_cls is not StrategyConfig  # each has its own documented parameters
        assert cls.__doc__ and cls.config_cls.__doc__


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as err:
        get_strategy("sma_crossover")
    msg = str(err.value)
    assert "sma_crossover" in msg
    for name in STRATEGIES:
        assert name in msg


def test_build_strategy_coerces_and_validates() -> None:
    strat = build_strategy("sma_cross", {"fast": "5", "slow": "15", "tag": "ref"})
    assert isinstance(strat, SmaCross)
    assert isinstance(strat.config, SmaCrossConfig)
    assert (strat.config.fast, strat.config.slow, strat.tag) == (5, 15, "ref")
    with pytest.raises(ConfigError, match="slow"):
        build_strategy("sma_cross", {"slow": "ten"})
    with pytest.raises(ConfigError, match="nope"):
        build_strategy("nope", {})


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_builds_with_defaults(name: str) -> None:
    strat = build_strategy(name, {})
    assert isinstance(strat, Strategy)
    assert strat.tag == name
