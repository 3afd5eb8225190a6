"""The bundled strategies by name, and building one from ``--param k=v`` pairs.

``propdesk backtest --strategy sma_cross --param fast=10 --param slow=30`` resolves ``sma_cross`` here and builds it
with :func:`build_strategy`.
"""

from __future__ import annotations

from typing import Final

from propdesk.core.errors import ConfigError
from propdesk.strategies.base import Strategy
from propdesk.strategies.mean_reversion import MeanReversion
from propdesk.strategies.overnight_range import OvernightRange
from propdesk.strategies.sma_cross import SmaCross
from propdesk.strategies.trend_following import TrendFollowing

STRATEGIES: Final[dict[str, type[Strategy]]] = {
    cls.name: cls for cls in (SmaCross, OvernightRange, MeanReversion, TrendFollowing)
}
"""Strategy classes by their ``name``."""


def get_strategy(name: str) -> type[Strategy]:
    """The strategy class called ``name``.

    Raises:
        ConfigError: no such strategy; the message lists the known names.
    """
    try:
        return STRATEGIES[name]
    except KeyError:
        known = ", ".join(sorted(STRATEGIES))
        raise ConfigError(f"unknown strategy {name!r}; known strategies: {known}") from None


def build_strategy(name: str, params: dict[str, str]) -> Strategy:
    """Build the strategy ``name`` from string parameters (coerced and validated by its config model).

    Raises:
        ConfigError: an unknown strategy, or an unknown or invalid parameter (the message names it).
    """
    return get_strategy(name).from_params(params)
