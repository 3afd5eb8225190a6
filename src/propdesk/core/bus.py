"""The message bus: hierarchical topics, wildcard subscriptions, synchronous dispatch, handler isolation.

Topics are dot-separated segments, e.g. ``data.bars.ES.1m`` or ``events.order.filled``. A message is published to
one concrete topic; handlers subscribe with a *pattern*:

* a plain segment matches that exact segment (case-sensitive);
* ``*`` matches exactly one segment: ``events.order.*`` matches ``events.order.filled`` but neither
  ``events.order`` nor ``events.order.filled.partial``;
* ``**``, allowed only as the last segment, matches **one or more** remaining segments: ``data.**`` matches
  ``data.bars`` and ``data.bars.ES.1m`` but not ``data`` itself; ``**`` alone matches every topic.

There are no partial-segment wildcards (``ES*`` is rejected). Segments may not be empty.

Dispatch is synchronous, on the caller's thread, in order of decreasing ``priority`` and then of registration.
The resolved handler list is cached per concrete topic (the cache is cleared on every subscribe or unsubscribe),
so a publish is a dict lookup and a loop over the handlers. The list is fixed when a publish starts: a handler
that subscribes or unsubscribes during dispatch affects the next publish, not the current one.

A handler that raises is isolated: the exception is logged (``logging``, logger ``propdesk.core.bus``) and a
:class:`HandlerFailed` event is published on :data:`HANDLER_ERROR_TOPIC`; the remaining handlers still run. If a
handler raises while the bus is delivering a :class:`HandlerFailed` event (including in any publish made from
inside that delivery), the failure is only logged (no further error event), so an error handler that itself fails
cannot recurse.

Per-handler statistics (calls, failures, cumulative time in ns) are kept on each :class:`Subscription`.
Timing uses :func:`time.perf_counter_ns` around every call (two calls, ~100 ns per handler call); pass
``MessageBus(timing=False)`` in backtests to skip it (calls and failures are still counted).

Design after NautilusTrader's ``MessageBus`` (https://nautilustrader.io/docs/latest/concepts/message_bus),
written anew. Not thread-safe: publish and (un)subscribe from one thread (the node's event-loop thread).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from propdesk.core import topics
from propdesk.core.errors import PropdeskError

__all__ = [
    "HANDLER_ERROR_TOPIC",
    "BusError",
    "HandlerFailed",
    "HandlerStats",
    "InvalidTopicError",
    "MessageBus",
    "Subscription",
    "topic_matches",
]

logger = logging.getLogger(__name__)

HANDLER_ERROR_TOPIC: Final = topics.HANDLER_ERROR
"""The topic on which :class:`HandlerFailed` events are published."""

_ONE: Final = "*"
_MANY: Final = "**"

Handler = Callable[[Any], object]
"""A message handler: called with the message; any return value is ignored."""


class BusError(PropdeskError):
    """A message-bus operation was invalid (e.g. a conflicting duplicate subscription)."""


class InvalidTopicError(BusError, ValueError):
    """A topic or topic pattern is malformed (empty segment, misplaced or partial wildcard)."""


@dataclass(frozen=True, slots=True)
class HandlerFailed:
    """Published on :data:`HANDLER_ERROR_TOPIC` when a handler raises.

    Attributes:
        topic: the concrete topic of the message being delivered.
        pattern: the subscription pattern of the failing handler.
        handler: the failing handler's name (``module.qualname``).
        exception: ``repr()`` of the exception.
        ts_ns: when the failure was caught, UTC nanoseconds from the bus's time source.
    """

    topic: str
    pattern: str
    handler: str
    exception: str
    ts_ns: int


@dataclass(frozen=True, slots=True)
class HandlerStats:
    """A snapshot of one subscription's statistics (see :meth:`MessageBus.stats`).

    Attributes:
        pattern: the subscription pattern.
        handler: the handler's name (``module.qualname``).
        priority: the subscription priority.
        calls: number of times the handler was called (including calls that raised).
        failures: number of calls that raised.
        total_ns: cumulative time spent in the handler, ns (0 when the bus runs with ``timing=False``).
    """

    pattern: str
    handler: str
    priority: int
    calls: int
    failures: int
    total_ns: int


def _handler_name(handler: Handler) -> str:
    qualname = getattr(handler, "__qualname__", None)
    if qualname is None:
        qualname = type(handler).__qualname__
    module = getattr(handler, "__module__", None)
    return f"{module}.{qualname}" if module else str(qualname)


def _split_pattern(pattern: str) -> tuple[str, ...]:
    if not isinstance(pattern, str) or not pattern:
        raise InvalidTopicError(f"topic pattern must be a non-empty string, got {pattern!r}")
    segments = tuple(pattern.split("."))
    last = len(segments) - 1
    for i, seg in enumerate(segments):
        if not seg:
            raise InvalidTopicError(f"topic pattern {pattern!r} has an empty segment")
        if seg == _MANY:
            if i != last:
                raise InvalidTopicError(f"topic pattern {pattern!r}: '**' is allowed only as the last segment")
        elif seg != _ONE and "*" in seg:
            raise InvalidTopicError(
                f"topic pattern {pattern!r}: segment {seg!r} mixes '*' with text (wildcards are whole segments)"
            )
    return segments


def _split_topic(topic: str) -> tuple[str, ...]:
    if not isinstance(topic, str) or not topic:
        raise InvalidTopicError(f"topic must be a non-empty string, got {topic!r}")
    segments = tuple(topic.split("."))
    for seg in segments:
        if not seg:
            raise InvalidTopicError(f"topic {topic!r} has an empty segment")
        if "*" in seg:
            raise InvalidTopicError(f"topic {topic!r}: a published topic may not contain wildcards")
    return segments


def _match(pattern: tuple[str, ...], topic: tuple[str, ...]) -> bool:
    if pattern[-1] == _MANY:
        prefix = pattern[:-1]
        if len(topic) <= len(prefix):
            return False
    else:
        prefix = pattern
        if len(topic) != len(prefix):
            return False
    return all(p in (_ONE, t) for p, t in zip(prefix, topic, strict=False))


def topic_matches(pattern: str, topic: str) -> bool:
    """Whether the concrete ``topic`` matches the subscription ``pattern`` (rules in the module docstring).

    Raises:
        InvalidTopicError: ``pattern`` or ``topic`` is malformed.
    """
    return _match(_split_pattern(pattern), _split_topic(topic))


class Subscription:
    """One handler subscribed to one pattern, with its live statistics. Returned by :meth:`MessageBus.subscribe`.

    Attributes:
        pattern: the topic pattern.
        handler: the callable, called with the message.
        priority: higher runs first.
        name: the handler's name (``module.qualname``).
        calls, failures, total_ns: statistics (see :class:`HandlerStats`).
    """

    __slots__ = ("_segments", "_seq", "calls", "failures", "handler", "name", "pattern", "priority", "total_ns")

    def __init__(self, pattern: str, segments: tuple[str, ...], handler: Handler, priority: int, seq: int) -> None:
        self.pattern = pattern
        self._segments = segments
        self.handler = handler
        self.priority = priority
        self._seq = seq
        self.name = _handler_name(handler)
        self.calls = 0
        self.failures = 0
        self.total_ns = 0

    def __repr__(self) -> str:
        return f"Subscription({self.pattern!r}, {self.name}, priority={self.priority})"


class MessageBus:
    """A synchronous publish/subscribe bus with hierarchical topics (see the module docstring for the rules).

    Args:
        timing: measure time spent in each handler (:func:`time.perf_counter_ns`, ~100 ns per call). Turn off
            for backtests that publish millions of messages.
        ts_source: returns the current UTC time in ns, used to stamp :class:`HandlerFailed` events. Pass
            ``clock.timestamp_ns`` of the node's clock (so backtests stamp simulated time); defaults to
            :func:`time.time_ns`.
    """

    def __init__(self, *, timing: bool = True, ts_source: Callable[[], int] = time.time_ns) -> None:
        self._timing = timing
        self._ts_source = ts_source
        self._subs: list[Subscription] = []
        self._cache: dict[str, tuple[Subscription, ...]] = {}
        self._seq = 0
        self._error_depth = 0

    @property
    def timing(self) -> bool:
        """Whether handler time is measured."""
        return self._timing

    # ------------------------------------------------------------------ subscriptions

    def subscribe(self, topic_pattern: str, handler: Handler, priority: int = 0) -> Subscription:
        """Subscribe ``handler`` to every topic matching ``topic_pattern``.

        Subscribing the same handler (by ``==``, so the same bound method of the same object counts) to the same
        pattern again with the same priority returns the existing subscription; the handler is still called once
        per message.

        Returns:
            The :class:`Subscription` (pass it to :meth:`unsubscribe`; it also carries the statistics).

        Raises:
            InvalidTopicError: the pattern is malformed.
            BusError: the handler is already subscribed to this pattern with a different priority, or is not
                callable.
        """
        segments = _split_pattern(topic_pattern)
        if not callable(handler):
            raise BusError(f"handler for {topic_pattern!r} is not callable: {handler!r}")
        for sub in self._subs:
            if sub.pattern == topic_pattern and sub.handler == handler:
                if sub.priority != priority:
                    raise BusError(
                        f"{sub.name} is already subscribed to {topic_pattern!r} with priority {sub.priority}; "
                        f"unsubscribe it before subscribing with priority {priority}"
                    )
                return sub
        sub = Subscription(topic_pattern, segments, handler, int(priority), self._seq)
        self._seq += 1
        self._subs.append(sub)
        self._invalidate(segments)
        return sub

    def unsubscribe(self, subscription: Subscription) -> bool:
        """Remove a subscription. Returns ``False`` if it was not (or no longer) subscribed on this bus."""
        for i, sub in enumerate(self._subs):
            if sub is subscription:
                del self._subs[i]
                self._invalidate(sub._segments)
                return True
        return False

    def _invalidate(self, segments: tuple[str, ...]) -> None:
        """Forget the resolved handler lists of the cached topics ``segments`` (a pattern) matches: only those can
        change, so the hot topics of a backtest keep their lists while positions subscribe and unsubscribe."""
        stale = [t for t in self._cache if _match(segments, tuple(t.split(".")))]
        for topic in stale:
            del self._cache[topic]

    def unsubscribe_handler(self, topic_pattern: str, handler: Handler) -> bool:
        """Remove the subscription of ``handler`` (compared with ``==``) to exactly ``topic_pattern``.

        Returns ``False`` if there was none.
        """
        for sub in self._subs:
            if sub.pattern == topic_pattern and sub.handler == handler:
                return self.unsubscribe(sub)
        return False

    def subscriptions(self) -> list[Subscription]:
        """All live subscriptions, in registration order."""
        return list(self._subs)

    def handlers_for(self, topic: str) -> tuple[Subscription, ...]:
        """The subscriptions a publish to ``topic`` would call, in call order.

        Raises:
            InvalidTopicError: ``topic`` is malformed or contains a wildcard.
        """
        subs = self._cache.get(topic)
        if subs is None:
            subs = self._resolve(topic)
        return subs

    def has_subscribers(self, topic: str) -> bool:
        """Whether a publish to ``topic`` would call at least one handler."""
        return bool(self.handlers_for(topic))

    def _resolve(self, topic: str) -> tuple[Subscription, ...]:
        segments = _split_topic(topic)
        matched = [s for s in self._subs if _match(s._segments, segments)]
        matched.sort(key=lambda s: (-s.priority, s._seq))
        subs = tuple(matched)
        self._cache[topic] = subs
        return subs

    # ------------------------------------------------------------------ dispatch

    def publish(self, topic: str, message: object) -> int:
        """Deliver ``message`` synchronously to every handler whose pattern matches ``topic``.

        Handlers run by decreasing priority, then registration order. A handler that raises is isolated (logged,
        :class:`HandlerFailed` published on :data:`HANDLER_ERROR_TOPIC`); the others still run.

        Returns:
            The number of handlers called (including any that raised).

        Raises:
            InvalidTopicError: ``topic`` is malformed or contains a wildcard (checked the first time a topic is
                published after a (un)subscribe).
        """
        subs = self._cache.get(topic)
        if subs is None:
            subs = self._resolve(topic)
        if self._timing:
            clock = time.perf_counter_ns
            for sub in subs:
                sub.calls += 1
                t0 = clock()
                try:
                    sub.handler(message)
                except Exception as exc:
                    sub.total_ns += clock() - t0
                    self._handler_failed(topic, sub, exc)
                else:
                    sub.total_ns += clock() - t0
        else:
            for sub in subs:
                sub.calls += 1
                try:
                    sub.handler(message)
                except Exception as exc:
                    self._handler_failed(topic, sub, exc)
        return len(subs)

    def _handler_failed(self, topic: str, sub: Subscription, exc: Exception) -> None:
        sub.failures += 1
        if self._error_depth:
            logger.error(
                "handler %s raised while delivering an error event on %r (not re-published): %r",
                sub.name,
                topic,
                exc,
                exc_info=exc,
            )
            return
        logger.error("handler %s raised on topic %r: %r", sub.name, topic, exc, exc_info=exc)
        event = HandlerFailed(
            topic=topic, pattern=sub.pattern, handler=sub.name, exception=repr(exc), ts_ns=self._ts_source()
        )
        self._error_depth += 1
        try:
            self.publish(HANDLER_ERROR_TOPIC, event)
        finally:
            self._error_depth -= 1

    # ------------------------------------------------------------------ statistics

    def stats(self) -> list[HandlerStats]:
        """A snapshot of every live subscription's statistics, in registration order."""
        return [HandlerStats(s.pattern, s.name, s.priority, s.calls, s.failures, s.total_ns) for s in self._subs]

    def reset_stats(self) -> None:
        """Zero the calls, failures and time of every live subscription."""
        for sub in self._subs:
            sub.calls = 0
            sub.failures = 0
            sub.total_ns = 0
