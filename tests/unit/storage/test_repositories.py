"""Repository writes (insert-or-ignore, projections) and reads, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date

import pytest
import pytest_asyncio
from sqlalchemy import text

from propdesk.model.data import Bar, Timeframe
from propdesk.model.orders import Fill, OrderStatus
from propdesk.model.price import Money, Price
from propdesk.model.reports import AccountReport
from propdesk.risk.decisions import Action, Decision, EvalPoint, TradingState
from propdesk.risk.events import RuleBreached
from propdesk.storage import rows as rw
from propdesk.storage.db import create_engine_for
from propdesk.storage.repositories import Repository

from .factories import ACCOUNT, T0, accepted, account_snapshot, fill, order, position_event, submitted


@pytest_asyncio.fixture
async def repo(db_url: str) -> AsyncIterator[Repository]:
    engine = create_engine_for(db_url)
    try:
        yield Repository(engine)
    finally:
        await engine.dispose()


@pytest.mark.asyncio
async def test_fill_written_once_and_read_back_exactly(repo: Repository) -> None:
    f = fill("T1", price="6500.25", fee="1.42")
    await repo.write([("fills", rw.fill_row(f, 991))])
    await repo.write([("fills", rw.fill_row(f, 991)), ("fills", rw.fill_row(f, 991))])  # replays
    assert (await repo.counts())["fills"] == 1
    [back] = await repo.fills(ACCOUNT)
    assert back == f
    assert back.price == Price.of("6500.25") and back.fee.cents == 142
    assert await repo.last_fill_ts_ns(ACCOUNT) == T0
    assert await repo.last_fill_ts_ns(999) is None


@pytest.mark.asyncio
async def test_fill_range_filters(repo: Repository) -> None:
    fills = [fill(f"T{i}", ts=T0 + i) for i in range(5)]
    await repo.write(("fills", rw.fill_row(f)) for f in fills)
    got = await repo.fills(ACCOUNT, since_ns=T0 + 1, until_ns=T0 + 4)
    assert [f.trade_id for f in got] == ["T1", "T2", "T3"]


@pytest.mark.asyncio
async def test_order_events_idempotent_by_content(repo: Repository) -> None:
    rows = [("order_events", rw.order_event_row(e)) for e in (submitted(), accepted(), submitted())]
    await repo.write(rows)
    await repo.write(rows)
    events = await repo.order_events(ACCOUNT, "pd-1")
    assert [e["kind"] for e in events] == ["submitted", "accepted"]
    assert events[1]["payload"]["broker_order_id"] == 991


@pytest.mark.asyncio
async def test_orders_projection_keeps_newest_state_and_restores_open_orders(repo: Repository) -> None:
    o = order("pd-9", qty=2)
    o.status = OrderStatus.ACCEPTED
    o.ts_last_ns = T0 + 10
    newer = rw.order_row(o)
    o2 = order("pd-9", qty=2)
    o2.status = OrderStatus.SUBMITTED
    o2.ts_last_ns = T0 + 5
    older = rw.order_row(o2)
    await repo.write([("orders", newer)])
    await repo.write([("orders", older)])  # a replayed older state must not regress the order
    [restored] = await repo.open_orders(ACCOUNT)
    assert restored.status is OrderStatus.ACCEPTED
    assert restored.limit_price == Price.of("6500.25") and restored.qty == 2 and restored.tag == "sma"

    # a partial fill: the fill is attached to the restored order and the average price comes back exactly
    o.add_fill(Fill(1, Price.of("6500.25"), Money.of("1.40"), "T7", T0 + 20))
    await repo.write([("orders", rw.order_row(o)), ("fills", rw.fill_row(fill("T7", cid="pd-9", ts=T0 + 20)))])
    got = await repo.order(ACCOUNT, "pd-9")
    assert got is not None
    assert got.status is OrderStatus.PARTIALLY_FILLED and got.filled_qty == 1
    assert got.avg_fill_price == Price.of("6500.25") and [f.trade_id for f in got.fills] == ["T7"]

    o.add_fill(Fill(1, Price.of("6500.50"), Money.of("1.40"), "T8", T0 + 30))
    await repo.write([("orders", rw.order_row(o))])
    assert await repo.open_orders(ACCOUNT) == []


@pytest.mark.asyncio
async def test_position_snapshots_latest_per_symbol(repo: Repository) -> None:
    evs = [position_event("opened", "T1", 1, ts=T0), position_event("changed", "T2", 2, ts=T0 + 1)]
    await repo.write(("position_snapshots", rw.position_event_row(e)) for e in evs + evs)
    assert (await repo.counts())["position_snapshots"] == 2
    [pos] = await repo.latest_positions(ACCOUNT)
    assert pos.signed_qty == 2 and pos.avg_price == Price.of("6500.25") and pos.realized_pnl.cents == 6250
    await repo.write([("position_snapshots", rw.position_event_row(position_event("closed", "T3", 0, ts=T0 + 2)))])
    assert await repo.latest_positions(ACCOUNT) == []
    assert [p.signed_qty for p in await repo.latest_positions(ACCOUNT, include_flat=True)] == [0]


@pytest.mark.asyncio
async def test_account_snapshot_and_eod_round_trip(repo: Repository) -> None:
    snap = account_snapshot()
    row = rw.account_snapshot_row(ACCOUNT, snap, T0, "fill", "T1")
    eods = rw.eod_rows(ACCOUNT, snap.eod_balances, T0)
    await repo.write([("account_snapshots", row), *(("eod_balances", r) for r in eods)])
    await repo.write([("account_snapshots", row), *(("eod_balances", r) for r in eods)])
    counts = await repo.counts()
    assert counts["account_snapshots"] == 1 and counts["eod_balances"] == 2
    assert await repo.latest_account_snapshot(ACCOUNT) == snap
    assert await repo.eod_balances(ACCOUNT) == [
        (date(2025, 11, 11), Money.of("49900")),
        (date(2025, 11, 12), Money.of("50000")),
    ]
    assert await repo.latest_account_snapshot(12345) is None


@pytest.mark.asyncio
async def test_risk_event_row_and_idempotency(repo: Repository) -> None:
    ev = RuleBreached(
        account_id=ACCOUNT,
        ts_ns=T0,
        point=EvalPoint.FILL,
        decision=Decision(rule_id="R3", action=Action.LOCKOUT, reason="day net -510.00 <= -500.00", until_ns=T0 + 5),
        state=TradingState.HALTED,
    )
    await repo.write([("risk_events", rw.risk_event_row(ev))] * 2)
    [row] = await repo.risk_events(ACCOUNT)
    assert (row["kind"], row["rule_id"], row["action"], row["state"], row["point"]) == (
        "rule_breached",
        "R3",
        "LOCKOUT",
        "HALTED",
        "fill",
    )
    assert row["payload"]["decision"]["reason"] == "day net -510.00 <= -500.00"


@pytest.mark.asyncio
async def test_strategy_run_and_backtest_result(repo: Repository) -> None:
    rid = await repo.start_run(kind="backtest", strategy="sma_cross", symbol="ESZ5", started_ns=T0, params={"fast": 10})
    report = {
        "bars": 100,
        "fills": 4,
        "trades": 2,
        "net_pnl_usd": "120.50",
        "gross_pnl_usd": "126.10",
        "fees_usd": "5.60",
        "max_drawdown_usd": "-40.00",
        "win_rate": 0.5,
        "profit_factor": None,
        "sharpe": 1.2,
    }
    await repo.save_backtest_result(rid, report)
    await repo.save_backtest_result(rid, report)
    await repo.finish_run(rid, ended_ns=T0 + 1)
    assert await repo.backtest_result(rid) == report
    counts = await repo.counts()
    assert counts["strategy_runs"] == 1 and counts["backtest_results"] == 1


@pytest.mark.asyncio
async def test_bar_cache_and_coverage(repo: Repository) -> None:
    tf = Timeframe.parse("1m")
    bars = [
        Bar("ESZ5", tf, 6500.25, 6501.0, 6499.75, 6500.5, 10 + i, T0 + i * 60 * 10**9, T0 + (i + 1) * 60 * 10**9)
        for i in range(3)
    ]
    await repo.save_bars(bars, coverage=(T0, T0 + 180 * 10**9), source="test")
    await repo.save_bars(bars[:1], coverage=(T0 + 180 * 10**9, T0 + 240 * 10**9))
    await repo.save_coverage("ESZ5", "1m", T0 + 600 * 10**9, T0 + 700 * 10**9)
    back = await repo.load_bars("ESZ5", "1m", T0, T0 + 10**12)
    assert [(b.open, b.low, b.volume, b.ts_open_ns) for b in back] == [
        (b.open, b.low, b.volume, b.ts_open_ns) for b in bars
    ]
    assert await repo.coverage("ESZ5", "1m") == [(T0, T0 + 240 * 10**9), (T0 + 600 * 10**9, T0 + 700 * 10**9)]
    with pytest.raises(ValueError, match="empty"):
        await repo.save_bars(bars, coverage=(T0, T0))


@pytest.mark.asyncio
async def test_accounts_first_sight_then_report(repo: Repository) -> None:
    await repo.write([("accounts", rw.account_row(ACCOUNT, T0))])
    rep = AccountReport(
        account_id=ACCOUNT,
        name="50K Combine",
        balance=Money.of("50062.50"),
        can_trade=True,
        simulated=True,
        ts_ns=T0 + 9,
    )
    await repo.write(
        [("accounts", rw.account_report_row(rep, "projectx")), ("accounts", rw.account_row(ACCOUNT, T0 + 20))]
    )
    async with repo.engine.connect() as conn:
        row = (await conn.execute(text("SELECT name, balance_cents, first_seen_ns, updated_ns FROM accounts"))).one()
    assert tuple(row) == ("50K Combine", 5006250, T0, T0 + 9)
