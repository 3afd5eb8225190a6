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
    "position_snapshots",
    "account_snapshots",
    "eod_balances",
    "risk_events",
    "lockouts",
    "strategy_runs",
    "backtest_results",
    "bars",
    "bar_coverage",
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
        assert await current_revision(engine) == head_revision() == "0002"
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
