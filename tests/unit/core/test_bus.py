"""Tests for propdesk.core.bus: topic matching, dispatch order, handler isolation and statistics."""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from propdesk.core.bus import (
    HANDLER_ERROR_TOPIC,
    BusError,
    HandlerFailed,
    InvalidTopicError,
    MessageBus,
    topic_matches,
)
from propdesk.core.errors import PropdeskError


class Recorder:
    """A stub handler that records what it receives, optionally into a shared log under a label."""

    def __init__(self, label: str = "", log: list[str] | None = None) -> None:
        self.label = label
        self.log = log
        self.messages: list[Any] = []

    def __call__(self, message: Any) -> None:
        self.messages.append(message)
        if self.log is not None:
            self.log.append(self.label)


class Boom:
    """A stub handler that always raises."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, message: Any) -> None:
        self.calls += 1
        raise RuntimeError(f"boom on {message!r}")


# ---------------------------------------------------------------------------------------------- matching

MATCH_TABLE = [
    # pattern, topic, expected
    ("data.bars.ES.1m", "data.bars.ES.1m", True),
    ("data.bars.ES.1m", "data.bars.ES.5m", False),
    ("data.bars.ES.1m", "data.bars.ES", False),
    ("data.bars.ES.1m", "data.bars.ES.1m.x", False),
    ("events.order.*", "events.order.filled", True),
    ("events.order.*", "events.order.accepted", True),
    ("events.order.*", "events.order", False),
    ("events.order.*", "events.order.filled.partial", False),
    ("events.order.*", "events.position.changed", False),
    ("data.bars.*.1m", "data.bars.NQ.1m", True),
    ("data.bars.*.1m", "data.bars.NQ.5m", False),
    ("*.*", "a.b", True),
    ("*.*", "a", False),
    ("*", "data", True),
    ("*", "data.bars", False),
    ("data.**", "data.bars", True),
    ("data.**", "data.bars.ES.1m", True),
    ("data.**", "data", False),
    ("data.**", "events.order.filled", False),
    ("**", "data", True),
    ("**", "events.error.handler", True),
    ("data.*.ES.**", "data.bars.ES.1m", True),
    ("data.*.ES.**", "data.quotes.ES.front.x", True),
    ("data.*.ES.**", "data.bars.NQ.1m", False),
    ("data.*.ES.**", "data.bars.ES", False),
    ("Data.bars", "data.bars", False),  # case-sensitive
]


@pytest.mark.parametrize(("pattern", "topic", "expected"), MATCH_TABLE)
def test_topic_matches_table(pattern: str, topic: str, expected: bool) -> None:
    assert topic_matches(pattern, topic) is expected


@pytest.mark.parametrize(("pattern", "topic", "expected"), MATCH_TABLE)
def test_publish_follows_match_table(pattern: str, topic: str, expected: bool) -> None:
    bus = MessageBus()
    rec = Recorder()
    bus.subscribe(pattern, rec)
    assert bus.publish(topic, "m") == int(expected)
    assert rec.messages == (["m"] if expected else [])


@pytest.mark.parametrize(
    "pattern", ["", "data..bars", ".data", "data.", "data.**.bars", "data.ES*", "data.*x", "**.data", "a.***"]
)
def test_invalid_patterns_are_rejected(pattern: str) -> None:
    bus = MessageBus()
    with pytest.raises(InvalidTopicError) as info:
        bus.subscribe(pattern, Recorder())
    assert repr(pattern) in str(info.value)
    assert isinstance(info.value, PropdeskError)
    assert bus.subscriptions() == []


@pytest.mark.parametrize("topic", ["", "data..bars", "data.*", "data.**", "data.ES*"])
def test_invalid_published_topics_are_rejected(topic: str) -> None:
    bus = MessageBus()
    bus.subscribe("**", Recorder())
    with pytest.raises(InvalidTopicError):
        bus.publish(topic, "m")


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """An independent reference implementation of the matching rules, as a regular expression."""
    segs = pattern.split(".")
    parts: list[str] = []
    for seg in segs:
        if seg == "*":
            parts.append(r"[^.]+")
        elif seg == "**":
            parts.append(r"[^.]+(?:\.[^.]+)*")
        else:
            parts.append(re.escape(seg))
    return re.compile(r"\.".join(parts))


_segment = st.sampled_from(["a", "b", "c"])


@st.composite
def _pattern_strategy(draw: st.DrawFn) -> str:
    segs = draw(st.lists(st.one_of(_segment, st.just("*")), min_size=1, max_size=4))
    if draw(st.booleans()):
        segs.append("**")
    return ".".join(segs)


@given(pattern=_pattern_strategy(), topic=st.lists(_segment, min_size=1, max_size=6).map(".".join))
def test_topic_matches_agrees_with_regex_reference(pattern: str, topic: str) -> None:
    assert topic_matches(pattern, topic) is (_pattern_regex(pattern).fullmatch(topic) is not None)


# ---------------------------------------------------------------------------------------------- dispatch order


def test_priority_then_registration_order() -> None:
    bus = MessageBus()
    log: list[str] = []
    bus.subscribe("events.order.*", Recorder("low-1", log), priority=-5)
    bus.subscribe("events.order.filled", Recorder("mid-1", log))
    bus.subscribe("events.**", Recorder("high", log), priority=10)
    bus.subscribe("events.order.filled", Recorder("mid-2", log))
    bus.subscribe("events.*.filled", Recorder("mid-3", log), priority=0)
    bus.subscribe("events.order.*", Recorder("low-2", log), priority=-5)

    assert bus.publish("events.order.filled", 1) == 6
    assert log == ["high", "mid-1", "mid-2", "mid-3", "low-1", "low-2"]
    assert [s.name.rsplit(".", 1)[-1] for s in bus.handlers_for("events.order.filled")] == ["Recorder"] * 6


def test_publish_without_subscribers_returns_zero() -> None:
    bus = MessageBus()
    bus.subscribe("data.bars.ES.1m", Recorder())
    assert bus.publish("data.bars.NQ.1m", "x") == 0
    assert not bus.has_subscribers("data.bars.NQ.1m")
    assert bus.has_subscribers("data.bars.ES.1m")


def test_cache_is_invalidated_on_subscribe_and_unsubscribe() -> None:
    bus = MessageBus()
    first, second = Recorder(), Recorder()
    sub1 = bus.subscribe("data.*", first)
    assert bus.publish("data.bars", 1) == 1  # resolves and caches data.bars
    sub2 = bus.subscribe("data.bars", second)
    assert bus.publish("data.bars", 2) == 2
    assert bus.unsubscribe(sub1) is True
    assert bus.publish("data.bars", 3) == 1
    assert bus.unsubscribe(sub1) is False  # already gone
    assert bus.unsubscribe_handler("data.bars", second) is True
    assert bus.publish("data.bars", 4) == 0
    assert first.messages == [1, 2]
    assert second.messages == [2, 3]
    assert bus.unsubscribe(sub2) is False
    assert bus.subscriptions() == []


def test_same_handler_same_pattern_is_subscribed_once() -> None:
    bus = MessageBus()
    rec = Recorder()
    sub_a = bus.subscribe("data.bars", rec.__call__)
    sub_b = bus.subscribe("data.bars", rec.__call__)  # a fresh but equal bound method
    assert sub_a is sub_b
    assert bus.publish("data.bars", "m") == 1
    assert rec.messages == ["m"]
    with pytest.raises(BusError, match="priority"):
        bus.subscribe("data.bars", rec.__call__, priority=3)
    # The same handler under another pattern is a separate subscription: it is called once per match.
    bus.subscribe("data.*", rec)
    assert bus.publish("data.bars", "n") == 2


def test_non_callable_handler_is_rejected() -> None:
    bus = MessageBus()
    with pytest.raises(BusError, match="not callable"):
        bus.subscribe("data.bars", "not a handler")  # type: ignore[arg-type]


def test_unsubscribe_during_dispatch_takes_effect_on_next_publish() -> None:
    bus = MessageBus()
    later = Recorder()
    later_sub = bus.subscribe("t.x", later, priority=-1)

    def remover(_: object) -> None:
        bus.unsubscribe(later_sub)

    bus.subscribe("t.x", remover, priority=1)
    assert bus.publish("t.x", 1) == 2
    assert later.messages == [1]
    assert bus.publish("t.x", 2) == 1
    assert later.messages == [1]


def test_handler_may_publish_recursively() -> None:
    bus = MessageBus()
    inner = Recorder()
    bus.subscribe("a.inner", inner)
    bus.subscribe("a.outer", lambda m: bus.publish("a.inner", m * 10))
    assert bus.publish("a.outer", 4) == 1
    assert inner.messages == [40]


# ---------------------------------------------------------------------------------------------- isolation


def test_raising_handler_is_isolated(caplog: pytest.LogCaptureFixture) -> None:
    bus = MessageBus(ts_source=lambda: 1_700_000_000_000_000_000)
    log: list[str] = []
    errors = Recorder()
    bus.subscribe(HANDLER_ERROR_TOPIC, errors)
    bus.subscribe("events.order.*", Recorder("before", log), priority=1)
    boom = Boom()
    boom_sub = bus.subscribe("events.order.filled", boom)
    bus.subscribe("events.order.*", Recorder("after", log), priority=-1)

    with caplog.at_level(logging.ERROR, logger="propdesk.core.bus"):
        assert bus.publish("events.order.filled", "fill-1") == 3

    assert log == ["before", "after"]
    assert boom.calls == 1
    assert errors.messages == [
        HandlerFailed(
            topic="events.order.filled",
            pattern="events.order.filled",
            handler=boom_sub.name,
            exception=repr(RuntimeError("boom on 'fill-1'")),
            ts_ns=1_700_000_000_000_000_000,
        )
    ]
    assert "Boom" in boom_sub.name
    assert any("boom on 'fill-1'" in r.getMessage() and r.exc_info for r in caplog.records)
    assert boom_sub.calls == 1
    assert boom_sub.failures == 1


def test_failing_error_handler_does_not_recurse(caplog: pytest.LogCaptureFixture) -> None:
    bus = MessageBus()
    error_boom = Boom()
    catch_all_boom = Boom()  # also receives the HandlerFailed events
    error_sub = bus.subscribe(HANDLER_ERROR_TOPIC, error_boom)
    bus.subscribe("**", catch_all_boom, priority=-1)
    tail = Recorder()
    bus.subscribe("events.error.*", tail, priority=-2)

    with caplog.at_level(logging.ERROR, logger="propdesk.core.bus"):
        assert bus.publish("data.bars.ES.1m", "bar") == 1

    # catch_all raised on the bar -> one HandlerFailed -> both boomers raise on it, but no further events.
    assert catch_all_boom.calls == 2
    assert error_boom.calls == 1
    assert error_sub.failures == 1
    assert len(tail.messages) == 1
    assert isinstance(tail.messages[0], HandlerFailed)
    assert tail.messages[0].topic == "data.bars.ES.1m"
    assert sum("not re-published" in r.getMessage() for r in caplog.records) == 2


def test_error_handler_publishing_to_failing_topic_terminates() -> None:
    bus = MessageBus()
    boom = Boom()
    bus.subscribe("data.x", boom)
    # A (badly written) error handler that republishes to the topic whose handler failed.
    bus.subscribe(HANDLER_ERROR_TOPIC, lambda ev: bus.publish(ev.topic, "again"))
    assert bus.publish("data.x", "first") == 1
    assert boom.calls == 2  # the original and the one republish; the second failure is only logged


def test_base_exceptions_are_not_swallowed() -> None:
    bus = MessageBus()

    def interrupt(_: object) -> None:
        raise KeyboardInterrupt

    bus.subscribe("t", interrupt)
    with pytest.raises(KeyboardInterrupt):
        bus.publish("t", 1)


# ---------------------------------------------------------------------------------------------- statistics


def test_stats_count_calls_failures_and_time(monkeypatch: pytest.MonkeyPatch) -> None:
    ticks = iter(range(0, 10_000_000, 100))  # a fake perf counter advancing 100 ns per reading
    monkeypatch.setattr(time, "perf_counter_ns", lambda: next(ticks))
    bus = MessageBus()
    ok = Recorder()
    bus.subscribe("data.bars.*.1m", ok, priority=2)
    bus.subscribe("data.bars.ES.1m", Boom())
    for _ in range(3):
        bus.publish("data.bars.ES.1m", "b")
    bus.publish("data.bars.NQ.1m", "b")

    stats = bus.stats()
    assert [(s.pattern, s.priority, s.calls, s.failures, s.total_ns) for s in stats] == [
        ("data.bars.*.1m", 2, 4, 0, 400),
        ("data.bars.ES.1m", 0, 3, 3, 300),
    ]
    assert stats[0].handler.endswith("Recorder")
    assert stats[1].handler.endswith("Boom")

    bus.reset_stats()
    assert [(s.calls, s.failures, s.total_ns) for s in bus.stats()] == [(0, 0, 0), (0, 0, 0)]


def test_timing_off_still_counts_calls() -> None:
    bus = MessageBus(timing=False)
    assert bus.timing is False
    sub = bus.subscribe("a.b", Recorder())
    boom_sub = bus.subscribe("a.*", Boom())
    for _ in range(5):
        bus.publish("a.b", None)
    assert (sub.calls, sub.failures, sub.total_ns) == (5, 0, 0)
    assert (boom_sub.calls, boom_sub.failures, boom_sub.total_ns) == (5, 5, 0)


def test_handler_names_are_qualified() -> None:
    class Strategy:
        def on_bar(self, bar: object) -> None:
            pass

    def on_fill(fill: object) -> None:
        pass

    bus = MessageBus()
    s1 = bus.subscribe("data.bars.ES.1m", Strategy().on_bar)
    s2 = bus.subscribe("events.order.filled", on_fill)
    assert s1.name == f"{__name__}.test_handler_names_are_qualified.<locals>.Strategy.on_bar"
    assert s2.name == f"{__name__}.test_handler_names_are_qualified.<locals>.on_fill"
