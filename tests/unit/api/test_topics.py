"""Stream names, their bus patterns, and a stream event as the API's message."""

from __future__ import annotations

import pytest

from propdesk.api.topics import event_out, patterns_for, topic_name
from propdesk.node.stream import StreamEvent


def test_names_map_to_bus_patterns_and_back() -> None:
    assert patterns_for(["orders", "positions", "orders"]) == ("events.order.**", "events.position.**")
    assert topic_name("events.order.filled") == "orders"
    assert topic_name("events.risk.lockout_set") == "risk"
    assert topic_name("data.quotes.ESZ5") == "quotes"
    with pytest.raises(ValueError, match="unknown topic 'trades'"):
        patterns_for(["trades"])


def test_an_event_becomes_the_message_envelope() -> None:
    ev = StreamEvent(7, "events.position.opened", 12, 1_000, None, '{"symbol":"ESZ5","signed_qty":1}')
    out = event_out(ev).model_dump()
    assert out == {
        "seq": 7,
        "ts_ns": 1_000,
        "topic": "positions",
        "type": "opened",
        "account": 12,
        "data": {"symbol": "ESZ5", "signed_qty": 1},
    }
    quote = StreamEvent(7, "data.quotes.ESZ5", 0, 5, None, "{}", conflated=True)
    assert (event_out(quote).type, event_out(quote).account) == ("quote", None)
