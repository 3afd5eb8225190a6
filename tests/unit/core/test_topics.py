"""Bus topic names and priorities: the builders, the event classes' topics, the dispatch order."""

from __future__ import annotations

import re
from pathlib import Path

from propdesk.core import topics
from propdesk.core.bus import MessageBus
from propdesk.core.topics import Priority
from propdesk.model.positions import POSITION_TOPICS, STRATEGY_POSITION_TOPICS, PositionCause, PositionClosed
from propdesk.risk.events import RISK_TOPICS

SRC = Path(__file__).resolve().parents[3] / "src" / "propdesk"


def test_builders_give_the_documented_topics() -> None:
    assert topics.bars("ESZ5", "5m") == "data.bars.ESZ5.5m"
    assert topics.bars_all_timeframes("ESZ5") == "data.bars.ESZ5.*"
    assert topics.quotes("NQH6") == "data.quotes.NQH6"
    assert topics.trades("NQH6") == "data.trades.NQH6"
    assert topics.depth("NQH6") == "data.depth.NQH6"
    assert topics.broker_event("AccountUpdate") == "events.broker.AccountUpdate"
    assert topics.strategy_position("own_fill") == "events.strategy.position.own_fill"


def test_event_classes_publish_on_the_constants() -> None:
    assert POSITION_TOPICS[PositionClosed] == topics.POSITION_CLOSED == "events.position.closed"
    assert STRATEGY_POSITION_TOPICS[PositionCause.OWN_FILL] == "events.strategy.position.own_fill"
    assert topics.RISK_RULE_BREACHED in RISK_TOPICS
    assert all(t.startswith(topics.RISK_PREFIX + ".") for t in RISK_TOPICS)


def test_priorities_dispatch_in_the_documented_order() -> None:
    bus = MessageBus(timing=False)
    seen: list[str] = []
    for p in reversed(Priority):  # subscribed lowest first: dispatch must still follow the priorities
        bus.subscribe(topics.ORDER_FILLED, lambda _m, name=p.name: seen.append(name), p)
    bus.publish(topics.ORDER_FILLED, object())
    assert seen == [
        "JOURNAL",
        "SESSION_EVENTS",
        "DAEMON_RECORD",
        "POSITIONS",
        "RISK_VIEW",
        "DEFAULT",
        "AGGREGATOR",
        "DISPLAY_TRADES",
        "LATE",
        "RISK_TALLY",
        "RISK_OUTCOMES",
        "SESSION_STATE",
        "DAEMON_RECONCILE",
        "SNAPSHOT",
    ]
    assert Priority.POSITIONS == 100 and Priority.DEFAULT == 0


def test_no_topic_literal_outside_core_topics() -> None:
    literal = re.compile(r"""f?["'](data|events)\.[a-z*]""")
    offenders = [
        f"{path.relative_to(SRC)}:{n}"
        for path in SRC.rglob("*.py")
        if path != SRC / "core" / "topics.py"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if literal.search(line) and not line.lstrip().startswith("#")
    ]
    assert offenders == []
