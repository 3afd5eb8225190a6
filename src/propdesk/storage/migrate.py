"""Run the journal's Alembic migrations from code (no ``alembic.ini`` needed).

``await upgrade_async(url)`` (or ``upgrade(url)`` outside an event loop) brings the database to the newest
revision; ``await current_revision(url)`` reads where it is. The Alembic configuration is built here, pointing at
this package's ``migrations`` directory; the connection is opened by propdesk (async engine) and handed to Alembic
inside ``connection.run_sync`` (https://alembic.sqlalchemy.org/en/latest/cookbook.html, "Using Asyncio with
Alembic").

Migrations are serialized across processes: the node and its journal writer process both upgrade at start-up, and
two migrators on a fresh database would both try to create the tables ("table ... already exists"). On
PostgreSQL the migration's transaction first takes a transaction-level advisory lock
(``pg_advisory_xact_lock``, https://www.postgresql.org/docs/current/functions-admin.html#FUNCTIONS-ADVISORY-LOCKS);
DDL is transactional there, so the second migrator finds the schema at head once the first commits. SQLite runs
DDL outside transactions through the Python driver, so for a SQLite file an exclusive OS lock on
``<database>.migrate.lock`` (``fcntl.flock``) is held around the migration instead.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Final

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import URL
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from propdesk.core.errors import ConfigError
from propdesk.storage.db import create_engine_for, is_memory_sqlite, redact_url, verify_connection

__all__ = [
    "MIGRATIONS_DIR",
    "alembic_config",
    "current_revision",
    "head_revision",
    "migration_lock",
    "upgrade",
    "upgrade_async",
    "upgrade_engine",
]

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


_PG_LOCK_KEY: Final = 0x70726F7064657368  # "propdesh": the advisory lock key of propdesk's migrations


def _upgrade(connection: Connection, cfg: Config, target: str) -> None:
    if connection.dialect.name == "postgresql":  # serialize with other migrators (module docstring)
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, target)


def _lock_path(url: URL) -> Path | None:
    """The migration lock file of a SQLite file database, else ``None``."""
    if url.get_backend_name() != "sqlite" or is_memory_sqlite(url):
        return None
    db = url.database or ""
    return Path(db.removeprefix("file:").split("?", 1)[0] + ".migrate.lock")


def _acquire(path: Path) -> IO[bytes] | None:
    """Open and exclusively lock ``path`` (blocks until free); ``None`` where ``fcntl`` does not exist."""
    try:
        import fcntl  # noqa: PLC0415 - POSIX only
    except ImportError:  # pragma: no cover - Windows: no cross-process lock (a single migrator is the norm there)
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("ab")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
    except BaseException:
        handle.close()
        raise
    return handle


def _release(handle: IO[bytes] | None) -> None:
    if handle is not None:
        handle.close()  # closing the descriptor releases the flock


@contextlib.contextmanager
def migration_lock(url: URL) -> Iterator[None]:
    """Hold the cross-process migration lock of a SQLite file database (a no-op for other databases, which lock in
    the migration's transaction; see the module docstring)."""
    path = _lock_path(url)
    handle = None if path is None else _acquire(path)
    try:
        yield
    finally:
        _release(handle)


async def upgrade_engine(engine: AsyncEngine, target: str = "head") -> None:
    """Upgrade the database behind ``engine`` to ``target`` (default: the newest revision).

    Raises:
        ConfigError: the database cannot be reached or a migration fails (the message names the URL, password
            redacted).
    """
    await verify_connection(engine)
    cfg = alembic_config()
    path = _lock_path(engine.url)
    handle = None if path is None else await asyncio.to_thread(_acquire, path)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade, cfg, target)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(
            f"migrating {redact_url(engine.url)!r} to {target} failed: {type(exc).__name__}: {exc}"
        ) from exc
    finally:
        _release(handle)


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
