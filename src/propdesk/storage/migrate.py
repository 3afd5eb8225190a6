"""Run the journal's Alembic migrations from code (no ``alembic.ini`` needed).

``await upgrade_async(url)`` (or ``upgrade(url)`` outside an event loop) brings the database to the newest
revision; ``await current_revision(url)`` reads where it is. The Alembic configuration is built here, pointing at
this package's ``migrations`` directory; the connection is opened by propdesk (async engine) and handed to Alembic
inside ``connection.run_sync`` (https://alembic.sqlalchemy.org/en/latest/cookbook.html, "Using Asyncio with
Alembic").
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Final

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import URL
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from propdesk.core.errors import ConfigError
from propdesk.storage.db import create_engine_for, redact_url, verify_connection

__all__ = ["MIGRATIONS_DIR", "alembic_config", "current_revision", "head_revision", "upgrade", "upgrade_async"]

MIGRATIONS_DIR: Final = Path(__file__).resolve().parent / "migrations"
"""The Alembic script directory shipped in the package."""


def alembic_config() -> Config:
    """An Alembic :class:`Config` pointing at :data:`MIGRATIONS_DIR` (no ini file)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def head_revision() -> str:
    """The newest revision id shipped with this version of propdesk."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def _upgrade(connection: Connection, cfg: Config, target: str) -> None:
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, target)


async def upgrade_engine(engine: AsyncEngine, target: str = "head") -> None:
    """Upgrade the database behind ``engine`` to ``target`` (default: the newest revision).

    Raises:
        ConfigError: the database cannot be reached or a migration fails (the message names the URL, password
            redacted).
    """
    await verify_connection(engine)
    cfg = alembic_config()
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade, cfg, target)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(
            f"migrating {redact_url(engine.url)!r} to {target} failed: {type(exc).__name__}: {exc}"
        ) from exc


async def upgrade_async(url: str | URL, target: str = "head") -> None:
    """Upgrade the database at ``url`` to ``target``. Raises :class:`ConfigError` as :func:`upgrade_engine`."""
    engine = create_engine_for(url)
    try:
        await upgrade_engine(engine, target)
    finally:
        await engine.dispose()


def upgrade(url: str | URL, target: str = "head") -> None:
    """Synchronous :func:`upgrade_async` (must not be called from inside a running event loop)."""
    asyncio.run(upgrade_async(url, target))


def _revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def current_revision(engine: AsyncEngine) -> str | None:
    """The database's current revision (``None`` for a database never migrated).

    Raises:
        ConfigError: the database cannot be reached.
    """
    await verify_connection(engine)
    async with engine.connect() as conn:
        return await conn.run_sync(_revision)
