"""A Desk on a backtest-style node built by NodeBuilder on the simulated broker, driven bar by bar.

Bars are synthetic ES minutes (Wed 2025-10-15 from 09:00 CT, inside the session); the simulated exchange fills a
market order at the next bar's open. ES: tick 0.25 points = $12.50.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from propdesk.backtest.evaluation import backtest_risk_setup
from propdesk.brokers.sim.broker import SimBroker
from propdesk.core.clock import SimClock
from propdesk.model.commands import SubmitOrder
from propdesk.model.data import Bar, Timeframe
from propdesk.model.enums import Side
from propdesk.model.price import Money
from propdesk.node.builder import BuiltNode, NodeBuilder, SessionKind
from propdesk.node.desk import STRATEGY_PARAMS_TOPIC, STRATEGY_STATE_TOPIC, Desk
from propdesk.node.journaling import NodeJournal
from propdesk.node.stream import EventStream
from propdesk.node.trading_node import bar_topic
from propdesk.risk.presets import load_risk_config
from propdesk.storage.db import create_engine_for
from propdesk.strategies.base import Strategy

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

SYM = "ESZ5"
M = 60 * 10**9
T0 = int(datetime(2025, 10, 15, 14, 0, tzinfo=UTC).timestamp()) * 10**9  # Wed 09:00 CT
TF = Timeframe.parse("1m")


class Env:
    """A built node, its simulated broker and clock, and a :class:`Desk` on it; ``events``: the fills and strategy
    events published on the bus."""

    def __init__(self, built: BuiltNode, clock: SimClock, sim: SimBroker) -> None:
        self.built, self.clock, self.sim = built, clock, sim
        self.node = built.node
        self.om = built.node.orders
        self.desk = Desk(built)
        self.i = 0
        self.events: list[object] = []
        for topic in ("events.order.filled", STRATEGY_STATE_TOPIC, STRATEGY_PARAMS_TOPIC):
            built.bus.subscribe(topic, self.events.append)

    def bar(self, close: float = 6700.0) -> None:
        """The next minute bar (open = close = ``close`` points, high/low half a point away)."""
        b = Bar(SYM, TF, close, close + 0.5, close - 0.5, close, 100, T0 + self.i * M, T0 + (self.i + 1) * M)
        self.i += 1
        self.clock.advance_to(b.ts_close_ns)
        self.sim.process_bar(b)
        self.built.bus.publish(bar_topic(SYM, TF), b)

    def net(self) -> int:
        """The account's net position in :data:`SYM` (contracts)."""
        return self.node.positions.net_qty(self.node.account_id, SYM)


def make_env(
    strategies: tuple[Strategy, ...] = (),
    risk_toml: Path | None = None,
    *,
    journal: NodeJournal | None = None,
    first_bar: bool = True,
) -> Env:
    """A started 50K Combine node with ``strategies`` (and ``journal``, bound to its bus, not opened), one bar in
    unless ``first_bar`` is false (open the journal first, then call ``env.bar()``)."""
    clock = SimClock(T0)
    sim = SimBroker(clock, account_id=1, starting_balance=Money.of(50000))
    cfg = load_risk_config("topstep-50k-combine", risk_toml)
    built = NodeBuilder(
        kind=SessionKind.BACKTEST,
        clock=clock,
        broker=sim,
        strategies=strategies,
        symbol=SYM,
        bar_timeframe=TF,
        risk=backtest_risk_setup(cfg, root="ES", bar_ns=M, balance=Money.of(50000)),
        journal=journal,
    ).build()
    sim.prepare(SYM)
    built.start_risk()
    built.node.start()
    env = Env(built, clock, sim)
    if first_bar:
        env.bar()  # a first price
    return env


def buy(key: str, qty: int = 1, **kw: Any) -> SubmitOrder:
    """A buy of ``qty`` contracts of :data:`SYM` (market unless ``kw`` says otherwise)."""
    return SubmitOrder(idempotency_key=key, symbol=SYM, side=Side.BUY, qty=qty, **kw)


@dataclass
class Desked:
    """A started desk with its journal, the journal's database and the event stream."""

    env: Env
    journal: NodeJournal
    engine: AsyncEngine
    stream: EventStream


@asynccontextmanager
async def desk_on(url: str) -> AsyncIterator[Desked]:
    """A started desk on a node whose journal (writer process) is open on ``url``, with its event stream."""
    journal = NodeJournal(url, max_delay_s=0.002)
    env = make_env(journal=journal, first_bar=False)
    await env.built.open_journal(strategy="desk", symbol=SYM)
    engine = create_engine_for(url)
    stream = EventStream(journal.journal, engine)
    env.desk.attach_stream(stream)
    await env.desk.start()
    try:
        yield Desked(env, journal, engine, stream)
    finally:
        stream.close()
        await env.desk.close()
        await journal.close()
        await engine.dispose()
