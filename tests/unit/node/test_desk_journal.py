"""The Desk with a journal (SQLite and PostgreSQL: the storage package's database fixtures): a snapshot merged with
the event stream after its ``as_of_seq`` equals the final state; idempotency keys survive a restart; bars from the
journal's bar cache."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from propdesk.core.errors import ConfigError
from propdesk.model.commands import (
    IDEMPOTENCY_CONFLICT,
    INVALID,
    CancelOrder,
    ClosePosition,
    ModifyOrder,
    SubmitOrder,
)
from propdesk.model.data import Bar, BarSeries, Timeframe
from propdesk.model.enums import Side
from propdesk.model.orders import OrderType
from propdesk.model.price import Price
from propdesk.node.desk import Desk, DeskSnapshot, OrderView
from propdesk.node.journaling import NodeJournal
from propdesk.node.stream import LOSSLESS_TOPICS, StreamEvent
from propdesk.storage.cache import SeriesSource
from propdesk.storage.repositories import Repository
from tests.kit.desk import SYM, T0, M, buy, desk_on, make_env
from tests.unit.storage.conftest import db_url, empty_db_url, pg_database  # noqa: F401

TERMINAL = {"canceled", "rejected", "expired", "denied"}
WORKING_AGAIN = {"updated", "modify_rejected", "cancel_rejected"}


def limit(key: str, side: Side, price: str, **kw: Any) -> SubmitOrder:
    return SubmitOrder(
        idempotency_key=key, symbol=SYM, side=side, qty=1, order_type=OrderType.LIMIT, limit_price=Price.of(price), **kw
    )


# ------------------------------------------------------------------------------------------------ snapshot + stream


def flat_orders(views: tuple[OrderView, ...] | list[OrderView]) -> dict[str, dict[str, Any]]:
    """``client order id -> status, qty, filled, limit and stop raw`` of every working order and bracket child."""
    out: dict[str, dict[str, Any]] = {}
    for v in views:
        for o in (v, *v.children):
            out[o.client_order_id] = {
                "status": o.status,
                "qty": o.qty,
                "filled": o.filled_qty,
                "limit": None if o.limit_price is None else o.limit_price.raw,
                "stop": None if o.stop_price is None else o.stop_price.raw,
            }
    return out


def positions_of(snapshot_positions: Any) -> dict[str, tuple[int, int, int, int]]:
    return {
        p.symbol: (p.signed_qty, p.avg_price.raw, p.realized_pnl.cents, p.fees.cents)
        for p in snapshot_positions
        if p.signed_qty
    }


async def merge(snap: DeskSnapshot, events: list[StreamEvent], repo: Repository) -> tuple[dict[str, Any], ...]:
    """What a consumer does: the snapshot's orders and positions, then each stream event after ``as_of_seq`` applied
    in order. An order first seen in the stream is looked up once in the journal's ``orders`` table (the event
    carries no order details); its quantity and prices are then kept up to date from the events."""
    orders = flat_orders(snap.working_orders)
    positions = positions_of(snap.positions)
    for e in events:
        data = e.data()
        kind = e.topic.rsplit(".", 1)[-1]
        if e.topic.startswith("events.position."):
            if kind == "closed":
                positions.pop(data["symbol"], None)
            else:
                positions[data["symbol"]] = (
                    data["signed_qty"],
                    data["avg_price_raw"],
                    data["realized_pnl_cents"],
                    data["fees_cents"],
                )
            continue
        if not e.topic.startswith("events.order."):
            continue
        cid = data["client_order_id"]
        order = orders.get(cid)
        if order is None:
            stored = await repo.order(e.account_id, cid)
            assert stored is not None
            order = orders[cid] = {"status": kind, "qty": stored.qty, "filled": 0}
            order["limit"] = None if stored.limit_price is None else stored.limit_price.raw
            order["stop"] = None if stored.stop_price is None else stored.stop_price.raw
        if kind in TERMINAL:
            del orders[cid]
        elif kind == "filled":
            order["filled"] += data["qty"]
            if order["filled"] >= order["qty"]:
                del orders[cid]
            else:
                order["status"] = "partially_filled"
        elif kind in WORKING_AGAIN:
            for field in ("qty", "limit", "stop"):
                key = {"limit": "limit_price", "stop": "stop_price"}.get(field, field)
                if data.get(key) is not None:
                    order[field] = data[key]
            order["status"] = "partially_filled" if order["filled"] else "accepted"
        else:
            order["status"] = kind
    return orders, positions


async def drain(sub: Any) -> list[StreamEvent]:
    out: list[StreamEvent] = []
    while True:
        try:
            out.append(await sub.next(0.3))
        except TimeoutError:
            return out


@pytest.mark.asyncio
async def test_a_snapshot_merged_with_the_stream_after_its_as_of_seq_equals_the_final_state(db_url: str) -> None:  # noqa: F811
    async with desk_on(db_url) as d:
        env, desk = d.env, d.env.desk
        env.bar(6700.0)
        desk.execute(buy("a1", 2))
        desk.execute(limit("l1", Side.BUY, "6690"))
        env.bar(6700.0)  # long 2 at 6700; the limit works
        desk.execute(limit("b1", Side.BUY, "6695", stop_loss_ticks=8, take_profit_ticks=16))
        env.bar(6701.0)
        await d.journal.journal.flush()
        desk.execute(buy("a2", 1))  # captured, not committed, when the snapshot is taken
        env.bar(6699.0)
        snap = desk.snapshot()
        assert snap.as_of_seq is not None and snap.as_of_seq > d.stream.head_seq  # ahead of what is committed
        sub = d.stream.subscribe(LOSSLESS_TOPICS, after_seq=snap.as_of_seq)
        [l1] = [o for o in snap.working_orders if o.limit_price == Price.of("6690")]
        desk.execute(ModifyOrder(idempotency_key="m1", client_order_id=l1.client_order_id, qty=3))
        env.bar(6698.0)
        desk.execute(ClosePosition(idempotency_key="c1", symbol=SYM, qty=2))
        desk.execute(limit("l2", Side.SELL, "6720"))
        env.bar(6694.0)  # the bracket entry at 6695 fills: its children work
        desk.execute(CancelOrder(idempotency_key="x1", client_order_id=l1.client_order_id))
        env.bar(6696.0)
        await d.journal.journal.flush()
        events = await drain(sub)
        assert events and events[0].seq > snap.as_of_seq
        orders, positions = await merge(snap, events, Repository(d.engine))
        assert orders == flat_orders(desk.working_orders())
        assert positions == positions_of(desk.positions())
        assert len(orders) >= 3 and positions  # the test exercised working orders, children and a position
        assert flat_orders(snap.working_orders) != orders  # and the state moved after the snapshot


def test_without_a_stream_the_snapshot_has_no_as_of_seq() -> None:
    env = make_env()
    env.desk.execute(buy("a1", 1))
    env.bar()
    snap = env.desk.snapshot()
    assert snap.as_of_seq is None
    assert [p.signed_qty for p in snap.positions] == [1] and snap.accounts[0].account_id == 1
    assert snap.ts_ns == env.clock.timestamp_ns() and {r.rule_id for r in snap.risk} >= {"R1", "R5"}
    assert [t.qty for t in snap.open_round_trips] == [1]


# ------------------------------------------------------------------------------------------------ idempotency


@pytest.mark.asyncio
async def test_command_results_survive_a_restart(db_url: str) -> None:  # noqa: F811
    async with desk_on(db_url) as d:
        d.env.bar()
        first = d.env.desk.execute(buy("k1", 2))
        denied = d.env.desk.execute(buy("k2", 9))  # R5: a denial is a result like any other
        dry = d.env.desk.execute(buy("k3", 2, stop_loss_ticks=8, dry_run=True))
        assert first.accepted and not denied.accepted and dry.risk is not None
    async with desk_on(db_url) as d:  # a new node and desk on the same journal
        desk = d.env.desk
        d.env.bar()
        again = desk.execute(buy("k1", 2, ts_ns=T0 + 7))
        assert again == replace(first, replayed=True)  # exactly the first result, Money and Decimal included
        assert desk.execute(buy("k2", 9)) == replace(denied, replayed=True)
        assert desk.execute(buy("k3", 2, stop_loss_ticks=8, dry_run=True)) == replace(dry, replayed=True)
        assert d.env.om.orders() == []  # nothing was sent again
        conflict = desk.execute(buy("k1", 3))
        assert not conflict.accepted and conflict.verdict.rule_id == IDEMPOTENCY_CONFLICT
        assert desk.execute(buy("k4", 1)).accepted


@pytest.mark.asyncio
async def test_a_desk_with_a_journal_takes_no_command_before_it_starts(db_url: str) -> None:  # noqa: F811
    journal = NodeJournal(db_url, max_delay_s=0.002)
    env = make_env(journal=journal, first_bar=False)
    await env.built.open_journal(strategy="desk", symbol=SYM)
    try:
        env.bar()
        early = env.desk.execute(buy("k1"))
        assert not early.accepted and early.verdict.rule_id == INVALID and "not started" in early.verdict.reason
        assert await env.desk.start() == 0
        assert env.desk.execute(buy("k1")).accepted  # the early denial was not remembered
        long_key = env.desk.execute(buy("k" * 129))
        assert long_key.verdict.rule_id == INVALID and "129 characters" in long_key.verdict.reason
    finally:
        await env.desk.close()
        await journal.close()


# ------------------------------------------------------------------------------------------------ bars


def minute_bars(n: int) -> list[Bar]:
    tf = Timeframe.parse("1m")
    return [
        Bar(SYM, tf, 6700 + i, 6701 + i, 6699 + i, 6700.25 + i, 10 + i, T0 + i * M, T0 + (i + 1) * M) for i in range(n)
    ]


@pytest.mark.asyncio
async def test_bars_come_from_the_journals_bar_cache(db_url: str) -> None:  # noqa: F811
    async with desk_on(db_url) as d:
        await Repository(d.engine).save_bars(minute_bars(5), coverage=(T0, T0 + 5 * M), source="test")
        bars = await d.env.desk.bars(SYM, "1m", T0, T0 + 10 * M)
        assert bars == minute_bars(5)
        assert await d.env.desk.bars(SYM, "1m", T0, T0 + 10 * M, limit=2) == minute_bars(5)[-2:]
        assert await d.env.desk.bars(SYM, "5m", T0, T0 + 10 * M) == []
        with pytest.raises(ValueError, match="empty"):
            await d.env.desk.bars(SYM, "1m", T0, T0)


def series_of(bars: list[Bar]) -> BarSeries:
    def col(name: str, dtype: Any) -> np.ndarray[Any, Any]:
        return np.array([getattr(b, name) for b in bars], dtype=dtype)

    return BarSeries(
        SYM,
        Timeframe.parse("1m"),
        col("ts_open_ns", np.int64),
        col("ts_close_ns", np.int64),
        col("open", np.float64),
        col("high", np.float64),
        col("low", np.float64),
        col("close", np.float64),
        col("volume", np.int64),
    )


@pytest.mark.asyncio
async def test_bars_fetch_what_the_cache_lacks_from_the_desks_bar_source(db_url: str) -> None:  # noqa: F811
    journal = NodeJournal(db_url, max_delay_s=0.002)
    env = make_env(journal=journal, first_bar=False)
    await env.built.open_journal(strategy="desk", symbol=SYM)
    desk = Desk(env.built, bar_source=SeriesSource(series_of(minute_bars(8))))
    try:
        await desk.start()
        assert await desk.bars(SYM, "1m", T0 + 2 * M, T0 + 6 * M) == minute_bars(8)[2:6]
        assert await env.desk.bars(SYM, "1m", T0, T0 + 8 * M) == minute_bars(8)[2:6]  # cached: the other desk reads it
    finally:
        await desk.close()
        await env.desk.close()
        await journal.close()


def test_bars_without_a_journal_is_a_clear_error() -> None:
    env = make_env()
    with pytest.raises(ConfigError, match="no journal"):
        asyncio.run(env.desk.bars(SYM, "1m", T0, T0 + M))
