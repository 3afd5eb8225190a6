"""Bar feeds on the bus: one aggregator per symbol x timeframe, fed by the declared finest bars, publishing each
completed bar on its timeframe's topic; what cannot be built is a clear error."""

from __future__ import annotations

import pytest

from propdesk.core.bus import MessageBus
from propdesk.core.errors import ConfigError
from propdesk.data.aggregation.feeds import NO_END_NS, BarFeeds, bars_topic, check_coarser
from propdesk.model.data import NS_PER_MINUTE, Bar, Timeframe

M1, M5, M15, D1 = Timeframe(1, "m"), Timeframe(5, "m"), Timeframe(15, "m"), Timeframe(1, "d")
T0 = 1_759_327_200_000_000_000  # 2025-10-01 14:00:00 UTC (09:00 CT)


def minute(i: int, price: float) -> Bar:
    return Bar("ESZ5", M1, price, price + 1.0, price - 0.5, price + 0.25, 10 + i, T0 + i * NS_PER_MINUTE,
               T0 + (i + 1) * NS_PER_MINUTE)  # fmt: skip


def test_check_coarser_accepts_multiples_and_the_session_day_only() -> None:
    for target in (M1, M5, M15, Timeframe(1, "h"), D1):
        check_coarser(target, M1, "x")
    check_coarser(M5, Timeframe(30, "s"), "x")
    with pytest.raises(ConfigError, match=r"^x: 1m bars cannot be built from 5m data \(finer than the data\)$"):
        check_coarser(M1, M5, "x")
    with pytest.raises(ConfigError, match="not a whole multiple"):
        check_coarser(M5, Timeframe(2, "m"), "x")
    with pytest.raises(ConfigError, match="finer than the data"):
        check_coarser(M5, D1, "x")


def test_one_shared_aggregator_per_timeframe_publishes_completed_bars() -> None:
    bus = MessageBus(timing=False)
    feeds = BarFeeds(bus)
    got: list[Bar] = []
    bus.subscribe("data.bars.ESZ5.5m", got.append)
    assert feeds.want("ESZ5", M5) == bars_topic("ESZ5", M5) == "data.bars.ESZ5.5m"
    assert not feeds.active  # the source is not declared yet
    feeds.set_source("ESZ5", M1)
    feeds.want("ESZ5", M5)  # a second subscriber shares the aggregator
    assert feeds.want("ESZ5", M1) == "data.bars.ESZ5.1m"  # the data itself: nothing to build
    assert list(feeds.aggregators) == [("ESZ5", M5)]
    for i in range(7):
        bus.publish("data.bars.ESZ5.1m", minute(i, 6700.0 + i))
    (bar,) = got  # 14:00-14:05, emitted by its last minute; 14:05-14:10 still open
    assert (bar.ts_open_ns, bar.ts_close_ns, bar.open, bar.high, bar.low, bar.close, bar.volume) == (
        T0, T0 + 5 * NS_PER_MINUTE, 6700.0, 6705.0, 6699.5, 6704.25, 10 + 11 + 12 + 13 + 14
    )  # fmt: skip
    assert feeds.next_end_ns() == T0 + 10 * NS_PER_MINUTE


def test_close_due_completes_a_bar_missing_its_last_minute_at_its_end() -> None:
    bus = MessageBus(timing=False)
    feeds = BarFeeds(bus)
    feeds.set_source("ESZ5", M1)
    feeds.want("ESZ5", M5)
    got: list[Bar] = []
    bus.subscribe("data.bars.ESZ5.5m", got.append)
    for i in range(4):  # 14:04 has no trades
        bus.publish("data.bars.ESZ5.1m", minute(i, 6700.0))
    clock: list[int] = []
    feeds.close_due(T0 + 4 * NS_PER_MINUTE + 1, clock.append)  # not yet past 14:05
    assert got == [] and clock == []
    feeds.close_due(T0 + 6 * NS_PER_MINUTE, clock.append)  # the next minute opens at 14:06
    assert clock == [T0 + 5 * NS_PER_MINUTE]
    assert [b.ts_close_ns for b in got] == [T0 + 5 * NS_PER_MINUTE]
    assert feeds.next_end_ns() == NO_END_NS


def test_a_pending_timeframe_finer_than_the_declared_data_fails_at_declaration() -> None:
    feeds = BarFeeds(MessageBus(timing=False))
    feeds.want("ESZ5", M1)
    with pytest.raises(ConfigError, match=r"^ESZ5: 1m bars cannot be built from 5m data"):
        feeds.set_source("ESZ5", M5)
    assert feeds.source("ESZ5") is None
    feeds2 = BarFeeds(MessageBus(timing=False))
    feeds2.set_source("ESZ5", M1)
    with pytest.raises(ConfigError, match="already 1m bars"):
        feeds2.set_source("ESZ5", M5)
