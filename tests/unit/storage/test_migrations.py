"""Migrations: upgrade creates every table on both backends, is repeatable, and matches the models."""

from __future__ import annotations

import asyncio

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from propdesk.storage.db import create_engine_for
from propdesk.storage.migrate import current_revision, head_revision, upgrade, upgrade_async
from propdesk.storage.models import Base

EXPECTED = {
    "accounts",
    "orders",
    "order_events",
    "fills",
    "events",
    "position_snapshots",
    "account_snapshots",
    "eod_balances",
    "risk_events",
    "lockouts",
    "strategy_runs",
    "backtest_results",
    "bars",
    "bar_coverage",
    "command_results",
    "strategy_instances",
    "strategy_param_versions",
    "api_keys",
}


def _diff(conn: Connection) -> list[object]:
    ctx = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(ctx, Base.metadata))


@pytest.mark.asyncio
async def test_upgrade_creates_schema_matching_models(empty_db_url: str) -> None:
    engine = create_engine_for(empty_db_url)
    try:
        assert await current_revision(engine) is None
        await upgrade_async(empty_db_url)
        await upgrade_async(empty_db_url)  # a second upgrade is a no-op
        assert await current_revision(engine) == head_revision() == "0005"
        async with engine.connect() as conn:
            tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
            assert tables >= EXPECTED
            assert set(Base.metadata.tables) == EXPECTED
            assert await conn.run_sync(_diff) == []
    finally:
        await engine.dispose()


def test_sync_upgrade_entry_point(empty_db_url: str) -> None:
    upgrade(empty_db_url)

    async def rev() -> str | None:
        engine = create_engine_for(empty_db_url)
        try:
            return await current_revision(engine)
        finally:
            await engine.dispose()

    assert asyncio.run(rev()) == head_revision()


def test_concurrent_migrations_of_a_fresh_database_all_succeed(empty_db_url: str) -> None:
    """The node and its journal writer process both migrate at start-up; on a fresh database they must not both
    create the tables ("table ... already exists"). Three migrators start together: two as the node does (async
    engine), one as the writer process does (sync engine); all succeed and the schema is at head once."""
    import threading  # noqa: PLC0415

    from propdesk.storage.db import create_sync_engine_for  # noqa: PLC0415
    from propdesk.storage.writer import _migrate  # noqa: PLC0415

    start = threading.Barrier(3)
    errors: list[BaseException] = []

    def node_side() -> None:
        start.wait()
        try:
            upgrade(empty_db_url)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    def writer_side() -> None:
        engine = create_sync_engine_for(empty_db_url)
        start.wait()
        try:
            _migrate(engine)
        except BaseException as exc:
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=f) for f in (node_side, node_side, writer_side)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a migrator is still waiting after 60 s"
    assert errors == []

    async def check() -> None:
        engine = create_engine_for(empty_db_url)
        try:
            assert await current_revision(engine) == head_revision()
        finally:
            await engine.dispose()

    asyncio.run(check())


_V1_FILL = (
    "INSERT INTO fills (account_id, trade_id, client_order_id, broker_order_id, symbol, side, qty, price_raw, "
    "fee_cents, tag, ts_event_ns, reconciled) VALUES (7, :t, 'pd-1', NULL, 'ESZ5', 1, 1, 6500250000000, 140, "
    "'sma', :ts, false)"
)
_V1_POSITION = (
    "INSERT INTO position_snapshots (account_id, symbol, position_tag, kind, trade_id, tag, signed_qty, "
    "avg_price_raw, realized_pnl_cents, fees_cents, unrealized_pnl_cents, opened_ts_ns, last_ts_ns, fill_count, "
    "fill_signed_qty, fill_price_raw, fill_fee_cents, fill_realized_pnl_cents, ts_event_ns, reconciled) VALUES "
    "(7, 'ESZ5', '', 'opened', :t, 'sma', 1, 6500250000000, 0, 140, NULL, 1, 1, 1, 1, 6500250000000, 140, 0, 1, false)"
)
_V1_RUN = (
    "INSERT INTO strategy_runs (id, kind, strategy, symbol, timeframe, account_id, params, status, started_ns, "
    "ended_ns) VALUES (:id, 'replay', 'sma_cross', 'ESZ5', '1m', 1, '{}', :status, 1, NULL)"
)


def test_upgrade_from_0001_keeps_existing_rows(empty_db_url: str) -> None:
    """A journal written by revision 0001 is upgraded with its rows: they keep their data, belong to no run, have the
    empty venue session (their trade ids were unique in the account) and still dedupe; the run statuses are renamed;
    a fill with the same trade id in another venue session (another simulated run) is now kept."""
    from alembic import command  # noqa: PLC0415
    from sqlalchemy import text  # noqa: PLC0415

    from propdesk.storage.db import create_sync_engine_for  # noqa: PLC0415
    from propdesk.storage.migrate import alembic_config  # noqa: PLC0415
    from propdesk.storage.repositories import TABLES, insert_ignore  # noqa: PLC0415

    upgrade(empty_db_url, "0001")
    engine = create_sync_engine_for(empty_db_url)
    try:
        with engine.begin() as conn:
            for t in ("1-1", "1-2"):
                conn.execute(text(_V1_FILL), {"t": t, "ts": 5})
                conn.execute(text(_V1_POSITION), {"t": t})
            for rid, status in (("r-done", "done"), ("r-int", "interrupted"), ("r-run", "running")):
                conn.execute(text(_V1_RUN), {"id": rid, "status": status})
        upgrade(empty_db_url)
        with engine.begin() as conn:
            fills = conn.execute(text("SELECT trade_id, run_id, venue_session, price_raw FROM fills ORDER BY id")).all()
            assert [tuple(r) for r in fills] == [("1-1", None, "", 6500250000000), ("1-2", None, "", 6500250000000)]
            snaps = conn.execute(text("SELECT trade_id, venue_session FROM position_snapshots ORDER BY id")).all()
            assert [tuple(r) for r in snaps] == [("1-1", ""), ("1-2", "")]
            statuses = conn.execute(text("SELECT id, status, attempts, host FROM strategy_runs ORDER BY id")).all()
            assert [tuple(r) for r in statuses] == [
                ("r-done", "completed", 1, ""),
                ("r-int", "stopped", 1, ""),
                ("r-run", "running", 1, ""),  # no owner recorded: the next start marks it aborted
            ]
            dialect = conn.dialect.name
            base = dict(conn.execute(text("SELECT * FROM fills WHERE trade_id = '1-1'")).one()._mapping)
            del base["id"]
            again = {**base, "run_id": "r2"}  # the same fill again: ignored
            other = {**base, "run_id": "r2", "venue_session": "r2"}  # trade id 1-1 of another simulated run: kept
            conn.execute(insert_ignore(dialect, TABLES["fills"]), [again, other])
            rows = conn.execute(text("SELECT run_id, venue_session FROM fills WHERE trade_id = '1-1' ORDER BY id"))
            assert [tuple(r) for r in rows] == [(None, ""), ("r2", "r2")]
        with engine.begin() as conn:  # down again: the oldest row of each old key stays
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0001")
        with engine.begin() as conn:
            rows = conn.execute(text("SELECT trade_id FROM fills ORDER BY id")).all()
            assert [r[0] for r in rows] == ["1-1", "1-2"]
            assert conn.execute(text("SELECT status FROM strategy_runs WHERE id = 'r-done'")).scalar() == "done"
    finally:
        engine.dispose()
