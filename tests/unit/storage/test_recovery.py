"""Recovery: the journal's state read back and applied to a fresh node (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from propdesk.brokers.sim.broker import SimBroker
from propdesk.core.clock import SimClock
from propdesk.model.enums import Side
from propdesk.model.events import OrderFilled
from propdesk.model.identifiers import ClientOrderId
from propdesk.model.orders import Fill, OrderStatus
from propdesk.model.price import Money, Price
from propdesk.model.records import Lockout
from propdesk.node import NodeConfig, TradingNode
from propdesk.risk.lockouts import MemoryLockoutStore
from propdesk.storage import rows as rw
from propdesk.storage.db import create_engine_for
from propdesk.storage.recovery import RecoveredState, apply_recovery, load_recovery
from propdesk.storage.repositories import Repository

from .factories import ACCOUNT, T0, account_snapshot, fill, order

SEC = 1_000_000_000


@pytest_asyncio.fixture
async def repo(db_url: str) -> AsyncIterator[Repository]:
    engine = create_engine_for(db_url)
    try:
        yield Repository(engine)
    finally:
        await engine.dispose()


def _node() -> TradingNode:
    clock = SimClock(T0 + 3600 * SEC)
    broker = SimBroker(clock, account_id=ACCOUNT)
    return TradingNode(clock=clock, broker=broker, config=NodeConfig(account_id=int(ACCOUNT), bus_timing=False))


async def _journal_round_trip(repo: Repository) -> tuple[OrderFilled, OrderFilled, OrderFilled]:
    """A closed round trip (buy 1 @ 6500.25, sell 1 @ 6502.25) and a working order that filled 1 of 2."""
    buy = fill("t1", cid="pd-a", ts=T0 + 1 * SEC, price="6500.25")
    sell = fill("t2", cid="pd-b", side=Side.SELL, ts=T0 + 2 * SEC, price="6502.25")
    part = fill("t3", cid="pd-w", ts=T0 + 3 * SEC, price="6501.00")
    w = order("pd-w", qty=2, ts=T0 + 3 * SEC)
    w.status = OrderStatus.ACCEPTED
    w.add_fill(Fill(1, Price.of("6501.00"), Money.of("1.40"), "t3", T0 + 3 * SEC))
    rows: list[tuple[str, rw.Row]] = [("fills", rw.fill_row(f)) for f in (buy, sell, part)]
    rows.append(("orders", rw.order_row(w)))
    await repo.write(rows)
    return buy, sell, part


@pytest.mark.asyncio
async def test_positions_are_rebuilt_from_fills_and_open_orders_restored(repo: Repository) -> None:
    _buy, _sell, part = await _journal_round_trip(repo)
    state = await load_recovery(repo, ACCOUNT, T0 + 3600 * SEC)
    assert [f.trade_id for f in state.fills] == ["t1", "t2", "t3"]
    assert [str(o.client_order_id) for o in state.open_orders] == ["pd-w"]
    assert state.last_fill_ts_ns == T0 + 3 * SEC

    node = _node()
    report = apply_recovery(node, state)
    assert report.ok and report.orders_restored == 1 and report.fills_replayed == 3
    pos = node.positions.position(ACCOUNT, "ESZ5")
    assert pos is not None and pos.signed_qty == 1 and pos.avg_price == Price.of("6501.00")
    # 2 points on ES = 8 ticks x $12.50 = $100 gross; fees 3 x $1.40
    assert node.portfolio.realized_pnl() == Money.of("100")
    assert node.portfolio.fees() == Money.of("4.20")
    w = node.orders.order("pd-w")
    assert w is not None and w.status is OrderStatus.PARTIALLY_FILLED and w.filled_qty == 1
    assert [o.client_order_id for o in node.orders.open_orders()] == [ClientOrderId("pd-w")]

    # the broker repeats a journaled fill: dropped; the rest of the working order fills: applied
    node.on_broker_event(part)
    assert node.positions.position(ACCOUNT, "ESZ5").signed_qty == 1  # type: ignore[union-attr]
    node.on_broker_event(fill("t4", cid="pd-w", ts=T0 + 4 * SEC, price="6501.00"))
    assert w.status is OrderStatus.FILLED
    assert node.positions.position(ACCOUNT, "ESZ5").signed_qty == 2  # type: ignore[union-attr]


@pytest.mark.asyncio
async def test_a_row_older_than_its_fills_is_brought_forward(repo: Repository) -> None:
    w = order("pd-w", qty=2, ts=T0)
    w.status = OrderStatus.ACCEPTED  # the row was journaled before its fill
    await repo.write([("orders", rw.order_row(w)), ("fills", rw.fill_row(fill("t1", cid="pd-w", ts=T0 + SEC)))])
    state = await load_recovery(repo, ACCOUNT, T0 + 10 * SEC)
    node = _node()
    report = apply_recovery(node, state)
    restored = node.orders.order("pd-w")
    assert restored is not None and restored.filled_qty == 1 and restored.status is OrderStatus.PARTIALLY_FILLED
    assert any("pd-w" in n for n in report.notes)


@pytest.mark.asyncio
async def test_position_snapshot_cross_check(repo: Repository) -> None:
    buy = fill("t1", cid="pd-a", ts=T0 + SEC, price="6500.25")
    await repo.write([("fills", rw.fill_row(buy))])
    good = {
        "account_id": int(ACCOUNT),
        "symbol": "ESZ5",
        "position_tag": "",
        "kind": "opened",
        "trade_id": "t1",
        "tag": "sma",
        "signed_qty": 1,
        "avg_price_raw": Price.of("6500.25").raw,
        "realized_pnl_cents": 0,
        "fees_cents": 140,
        "unrealized_pnl_cents": None,
        "opened_ts_ns": T0 + SEC,
        "last_ts_ns": T0 + SEC,
        "fill_count": 1,
        "fill_signed_qty": 1,
        "fill_price_raw": Price.of("6500.25").raw,
        "fill_fee_cents": 140,
        "fill_realized_pnl_cents": 0,
        "ts_event_ns": T0 + SEC,
        "reconciled": False,
    }
    await repo.write([("position_snapshots", good)])
    report = apply_recovery(_node(), await load_recovery(repo, ACCOUNT, T0 + 10 * SEC))
    assert report.ok and not report.notes

    bad = dict(good, kind="changed", signed_qty=3)  # a later row that disagrees with the fills
    await repo.write([("position_snapshots", bad)])
    report = apply_recovery(_node(), await load_recovery(repo, ACCOUNT, T0 + 10 * SEC))
    assert len(report.discrepancies) == 1 and "ESZ5" in report.discrepancies[0]

    await repo.write([("fills", rw.fill_row(fill("t2", cid="pd-c", ts=T0 + 2 * SEC)))])
    report = apply_recovery(_node(), await load_recovery(repo, ACCOUNT, T0 + 10 * SEC))
    assert report.ok and any("predates" in n for n in report.notes)  # the snapshot lags: fills win


@pytest.mark.asyncio
async def test_lockouts_and_eod_history_are_loaded(repo: Repository) -> None:
    active = Lockout(account=ACCOUNT, rule_id="R1", reason="daily loss", set_at_ns=T0, expires_at_ns=T0 + 7200 * SEC)
    expired = Lockout(account=ACCOUNT, rule_id="R9", reason="cooldown", set_at_ns=T0, expires_at_ns=T0 + 60 * SEC)
    snap = account_snapshot()
    await repo.write(
        [
            ("lockouts", rw.lockout_row(active)),
            ("lockouts", rw.lockout_row(expired)),
            ("account_snapshots", rw.account_snapshot_row(ACCOUNT, snap, T0, "eod", "2025-11-12")),
            *(("eod_balances", r) for r in rw.eod_rows(ACCOUNT, snap.eod_balances, T0)),
        ]
    )
    state = await load_recovery(repo, ACCOUNT, T0 + 3600 * SEC)
    assert state.lockouts == [active]
    assert state.account_snapshot == snap and state.snapshot_kind == "eod"
    assert state.eod_balances == list(snap.eod_balances)
    store = MemoryLockoutStore()
    report = apply_recovery(_node(), state, lockout_store=store)
    assert report.lockouts == [active]
    assert store.load_active(ACCOUNT, T0 + 3600 * SEC) == [active]


@pytest.mark.asyncio
async def test_done_orders_since_the_last_fill_are_listed(repo: Repository) -> None:
    old = order("pd-old", ts=T0)
    old.status = OrderStatus.CANCELED
    new = order("pd-new", ts=T0 + 5 * SEC)
    new.status = OrderStatus.CANCELED
    new.ts_last_ns = T0 + 5 * SEC
    await repo.write(
        [
            ("orders", rw.order_row(old)),
            ("orders", rw.order_row(new)),
            ("fills", rw.fill_row(fill("t1", cid="pd-x", ts=T0 + 2 * SEC))),
        ]
    )
    state = await load_recovery(repo, ACCOUNT, T0 + 10 * SEC)
    assert state.done_order_ids == frozenset({"pd-new"})


def test_split_at_snapshot() -> None:
    fills = [fill(f"t{i}", ts=T0 + i * SEC) for i in range(1, 5)]
    base = {"account_id": ACCOUNT, "now_ns": T0, "open_orders": [], "fills": fills, "positions": []}
    none = RecoveredState(**base)  # type: ignore[arg-type]
    assert none.split_at_snapshot() == ([], fills)
    by_ref = RecoveredState(  # type: ignore[arg-type]
        **base,
        account_snapshot=account_snapshot(),
        snapshot_ts_ns=T0 + 2 * SEC,
        snapshot_kind="fill",
        snapshot_ref="t2",
    )
    assert by_ref.split_at_snapshot() == (fills[:2], fills[2:])
    by_time = RecoveredState(  # type: ignore[arg-type]
        **base, account_snapshot=account_snapshot(), snapshot_ts_ns=T0 + 3 * SEC, snapshot_kind="eod"
    )
    assert by_time.split_at_snapshot() == (fills[:2], fills[2:])


@pytest.mark.asyncio
async def test_day_baseline(repo: Repository) -> None:
    await _journal_round_trip(repo)
    node = _node()
    apply_recovery(node, await load_recovery(repo, ACCOUNT, T0 + 3600 * SEC), day_start_ns=T0 + 2 * SEC)
    assert node.portfolio.realized_pnl() == Money.of("100")
    assert node.portfolio.day_realized_pnl() == Money.of("100")  # the closing fill is on the new day
    assert node.portfolio.day_fees() == Money.of("2.80")
    assert node.portfolio.day_fill_count() == 2
