"""Alembic environment for propdesk's journal.

Used programmatically (:func:`propdesk.storage.migrate.upgrade_async`): the caller opens an async connection and
runs Alembic inside ``connection.run_sync``, passing the sync-facing connection as ``config.attributes["connection"]``
(Alembic's "Programmatic API use (connection sharing) with asyncio" recipe). When run without one (the ``alembic``
command line with ``-x url=...``, else ``$PROPDESK_DATABASE_URL``, else the default SQLite file), it builds an
async engine itself and does the same.
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection

from propdesk.storage.db import DATABASE_URL_ENV, create_engine_for, resolve_url
from propdesk.storage.models import Base

target_metadata = Base.metadata
config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str) -> None:
    engine = create_engine_for(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_run)
    finally:
        await engine.dispose()


def _main() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        url = resolve_url(configured=os.environ.get(DATABASE_URL_ENV)).render_as_string(hide_password=False)
    asyncio.run(_run_async(url))


if context.is_offline_mode():
    raise RuntimeError("propdesk's migrations run online only (against a database)")
_main()
