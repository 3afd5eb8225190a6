"""The stream names clients subscribe to (WebSocket ``topics``, REST ``events?topics=``) and the bus patterns each
stands for, and how one :class:`~propdesk.node.stream.StreamEvent` becomes the API's event message
(:class:`~propdesk.api.schemas.EventOut`: ``seq``, ``ts_ns``, ``topic``, ``type``, ``account``, ``data``).

========== ============================ ==========================================================================
name       bus patterns                 what
========== ============================ ==========================================================================
orders     ``events.order.**``          order life cycle (submitted, accepted, filled, canceled, denied ...)
positions  ``events.position.**``       account positions opened, changed, closed
account    ``events.account.**``        account reports, snapshots, end-of-day balances
risk       ``events.risk.**``           breaches, warnings, trading state, lockouts, flattens
strategies ``events.strategy.**``       strategy state and parameter changes, strategy positions
desk       ``events.desk.**``           command results
quotes     ``data.quotes.**``           quotes (conflated: latest per contract, never replayed)
========== ============================ ==========================================================================
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from propdesk.api.schemas import EventOut
from propdesk.core import topics as bus_topics
from propdesk.node.stream import StreamEvent

__all__ = ["DEFAULT_TOPICS", "TOPIC_PATTERNS", "event_out", "patterns_for", "topic_name"]

TOPIC_PATTERNS: Final[dict[str, tuple[str, ...]]] = {
    "orders": (bus_topics.ORDER_EVENTS,),
    "positions": (bus_topics.POSITION_EVENTS,),
    "account": (bus_topics.ACCOUNT_EVENTS,),
    "risk": (bus_topics.RISK_EVENTS,),
    "strategies": (bus_topics.STRATEGY_EVENTS,),
    "desk": (bus_topics.DESK_EVENTS,),
    "quotes": (bus_topics.ALL_QUOTES,),
}
"""Each stream name and the bus patterns it subscribes."""

DEFAULT_TOPICS: Final[tuple[str, ...]] = ("orders", "positions", "account", "risk", "strategies")
"""The lossless streams a client gets when it names none."""

_PREFIXES: Final[tuple[tuple[str, str], ...]] = tuple(
    (p.removesuffix(".**"), name) for name, pats in TOPIC_PATTERNS.items() for p in pats
)


def patterns_for(names: Iterable[str]) -> tuple[str, ...]:
    """The bus patterns of stream ``names``.

    Raises:
        ValueError: an unknown name (the message lists the known ones).
    """
    out: list[str] = []
    for name in names:
        pats = TOPIC_PATTERNS.get(name)
        if pats is None:
            raise ValueError(f"unknown topic {name!r} (known: {', '.join(TOPIC_PATTERNS)})")
        out.extend(p for p in pats if p not in out)
    return tuple(out)


def topic_name(bus_topic: str) -> str:
    """The stream name of a bus topic (``events.order.filled`` -> ``orders``); the bus topic itself when none."""
    for prefix, name in _PREFIXES:
        if bus_topic == prefix or bus_topic.startswith(prefix + "."):
            return name
    return bus_topic


def event_out(event: StreamEvent) -> EventOut:
    """The API's message for ``event``: ``type`` is the bus topic's last part, except for quotes (``quote``)."""
    name = topic_name(event.topic)
    kind = "quote" if name == "quotes" else event.topic.rsplit(".", 1)[-1]
    return EventOut(
        seq=event.seq,
        ts_ns=event.ts_ns,
        topic=name,
        type=kind,
        account=event.account_id or None,
        data=event.data(),
    )
