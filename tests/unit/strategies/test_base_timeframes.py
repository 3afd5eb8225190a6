"""The strategy base's timeframes: the configured one (empty = the data's), extra ones registered with
``subscribe_bars`` and delivered through the node to ``on_bar`` or a handler, indicators per timeframe."""

from __future__ import annotations

import pytest

from propdesk.core.clock import SimClock
from propdesk.core.errors import ConfigError
from propdesk.data.indicators.moving_averages import SMA
from propdesk.model.data import NS_PER_MINUTE, Bar, Timeframe
from propdesk.node import DEFAULT_TIMEFRAME, TradingNode
from propdesk.strategies.base import Strategy, StrategyConfig
from tests.stubs.broker import StubBroker

M1, M5 = Timeframe(1, "m"), Timeframe(5, "m")
T0 = 1_759_327_200_000_000_000  # 2025-10-01 14:00:00 UTC


class Multi(Strategy):
    name = "multi"

    def __init__(self, config: StrategyConfig | None = None, extra: str = "5m", handler: bool = False) -> None:
        super().__init__(config)
        self.extra, self.use_handler = extra, handler
        self.on_bar_seen: list[tuple[str, float]] = []
        self.handled: list[Bar] = []
        self.sma5 = SMA(2)

    def on_start(self) -> None:
        self.register_indicator(self.sma5, self.extra)
        self.subscribe_bars(self.extra, self.handled.append if self.use_handler else None)

    def on_bar(self, bar: Bar) -> None:
        self.on_bar_seen.append((str(bar.timeframe), bar.close))


def _node(data_tf: Timeframe | None = M1) -> TradingNode:
    node = TradingNode(clock=SimClock(T0), broker=StubBroker())
    if data_tf is not None:
        node.bar_feeds.set_source("ESZ5", data_tf)
    return node


def _play(node: TradingNode, n: int) -> None:
    for i in range(n):
        p = 6700.0 + i
        node.publish_bar(Bar("ESZ5", M1, p, p, p, p, 1, T0 + i * NS_PER_MINUTE, T0 + (i + 1) * NS_PER_MINUTE))


def test_config_timeframe_is_validated_and_defaults_to_the_data() -> None:
    assert StrategyConfig().timeframe == "" and StrategyConfig(timeframe=" 5m ").timeframe == "5m"
    with pytest.raises(ConfigError, match=r"strategy multi: timeframe: .*'7y'"):
        Multi.from_params({"timeframe": "7y"})
    node = _node(M5)
    s = Multi(StrategyConfig(symbol="ESZ5"), extra="15m")
    node.add_strategy(s)
    assert s.timeframe == M5  # the data's
    bare = Multi(StrategyConfig(symbol="ESZ5", tag="b"), extra="15m")
    _node(None).add_strategy(bare)
    assert bare.timeframe == DEFAULT_TIMEFRAME


def test_extra_timeframe_goes_to_on_bar_after_its_indicators() -> None:
    node = _node()
    s = Multi(StrategyConfig(symbol="ESZ5"))
    node.add_strategy(s)
    node.start()
    _play(node, 10)
    fives = [c for tf, c in s.on_bar_seen if tf == "5m"]
    assert fives == [6704.0, 6709.0]
    assert len([1 for tf, _ in s.on_bar_seen if tf == "1m"]) == 10
    assert s.sma5.value == (6704.0 + 6709.0) / 2  # updated by the 5m bars only


def test_extra_timeframe_with_a_handler_bypasses_on_bar() -> None:
    node = _node()
    s = Multi(StrategyConfig(symbol="ESZ5"), handler=True)
    node.add_strategy(s)
    node.start()
    _play(node, 5)
    assert [b.close for b in s.handled] == [6704.0]
    assert {tf for tf, _ in s.on_bar_seen} == {"1m"}


def test_registering_a_timeframe_finer_than_the_data_or_its_own_fails_at_start() -> None:
    node = _node(M5)
    node.add_strategy(Multi(StrategyConfig(symbol="ESZ5"), extra="1m"))
    with pytest.raises(ConfigError, match=r"^strategy multi: ESZ5: 1m bars cannot be built from 5m data"):
        node.start()
    node = _node()
    node.add_strategy(Multi(StrategyConfig(symbol="ESZ5", timeframe="5m"), extra="5m"))
    with pytest.raises(ConfigError, match=r"subscribe_bars\(5m\) is already its own timeframe"):
        node.start()
    with pytest.raises(ConfigError, match=r"^strategy multi: ESZ5: 1m bars cannot be built from 5m data"):
        _node(M5).add_strategy(Multi(StrategyConfig(symbol="ESZ5", timeframe="1m")))
