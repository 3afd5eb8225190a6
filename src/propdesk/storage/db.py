"""Database URLs and engines: where the journal lives and how to reach it.

Resolution (:func:`resolve_url`, highest first): an explicit URL (a CLI option), the configured URL the caller
read from its settings (``database.url`` of :class:`propdesk.config.Settings`: ``$PROPDESK_DATABASE__URL`` or
``$PROPDESK_DATABASE_URL``, else the config file's ``[database] url``; the password from
``$PROPDESK_DATABASE__PASSWORD`` / ``_FILE`` is set in it; :func:`propdesk.node.journaling.journal_url` does this),
else a SQLite file ``journal.sqlite3`` under ``platformdirs.user_data_dir("propdesk")``. This module reads no
settings itself (storage imports only ``core`` and ``model``). Plain URLs get the async driver:
``postgresql://`` / ``postgres://`` become ``postgresql+asyncpg://`` and ``sqlite:///`` becomes
``sqlite+aiosqlite:///``. Only SQLite and PostgreSQL are supported.

A URL shown to a person or written to a log always goes through :func:`redact_url` (the password becomes
``***``); secrets never enter the database itself.

SQLite runs in WAL mode with ``synchronous=FULL`` (a committed batch survives a power cut, so a journaled fill is
durable before it is acknowledged: ARCHITECTURE.md principle 7), ``foreign_keys=ON`` and a 5 s busy timeout
(https://www.sqlite.org/pragma.html).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Final

import platformdirs
from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from propdesk.core.errors import ConfigError

__all__ = [
    "DATABASE_URL_ENV",
    "DEFAULT_DB_FILENAME",
    "create_engine_for",
    "create_sync_engine_for",
    "default_sqlite_url",
    "describe_error",
    "dialect_of",
    "is_memory_sqlite",
    "normalize_url",
    "redact_url",
    "resolve_url",
    "sync_url",
    "verify_connection",
]

DATABASE_URL_ENV: Final = "PROPDESK_DATABASE_URL"
"""The environment variable naming the database (highest precedence after an explicit URL)."""

DEFAULT_DB_FILENAME: Final = "journal.sqlite3"
"""The SQLite file under the user's data directory used when nothing else is configured."""

_PASSWORD_IN_URL = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)(?P<pw>[^@\s]*)(?P<at>@)")

_ASYNC_DRIVERS: Final = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
_SYNC_DRIVERS: Final = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg"}


def _mask(m: re.Match[str]) -> str:
    return f"{m['head']}***{m['at']}"


def redact_url(url: str | URL) -> str:
    """``url`` with its password replaced by ``***`` (safe to print or log). Works on malformed URLs too."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return _PASSWORD_IN_URL.sub(_mask, str(url))


def default_sqlite_url() -> str:
    """``sqlite+aiosqlite:///<user data dir>/propdesk/journal.sqlite3`` (the directory is created on first use)."""
    path = Path(platformdirs.user_data_dir("propdesk")) / DEFAULT_DB_FILENAME
    return f"sqlite+aiosqlite:///{path}"


def _with_password(url: str, password: str | None) -> str:
    """``url`` with ``password`` set in it (``url`` unchanged when ``password`` is ``None``).

    Raises:
        ConfigError: ``url`` is malformed (the message shows it redacted).
    """
    if password is None:
        return url
    try:
        return make_url(url).set(password=password).render_as_string(hide_password=False)
    except ArgumentError:
        raise ConfigError(f"malformed database URL {redact_url(url)!r}") from None


def normalize_url(url: str | URL) -> URL:
    """Parse ``url`` and give it the async driver of its backend.

    Raises:
        ConfigError: the URL is malformed or names a backend other than SQLite or PostgreSQL (the message shows the
            URL with its password redacted).
    """
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except ArgumentError:
        raise ConfigError(f"malformed database URL {redact_url(str(url))!r}") from None
    backend = parsed.get_backend_name()
    if backend == "postgres":
        backend = "postgresql"
    if backend not in _ASYNC_DRIVERS:
        raise ConfigError(f"unsupported database URL {redact_url(parsed)!r}: propdesk supports sqlite and postgresql")
    driver = parsed.drivername.partition("+")[2] or ("pysqlite" if backend == "sqlite" else "psycopg2")
    if backend == "sqlite" and driver not in ("pysqlite", "aiosqlite"):
        raise ConfigError(f"unsupported SQLite driver in {redact_url(parsed)!r}: use sqlite:// or sqlite+aiosqlite://")
    if backend == "postgresql" and driver not in ("psycopg2", "asyncpg", "psycopg"):
        raise ConfigError(f"unsupported PostgreSQL driver in {redact_url(parsed)!r}: use postgresql:// or +asyncpg")
    if backend == "postgresql" and not parsed.database:
        raise ConfigError(f"database URL {redact_url(parsed)!r} names no database")
    return parsed.set(drivername=_ASYNC_DRIVERS[backend])


def resolve_url(
    url: str | None = None,
    *,
    configured: str | None = None,
    password: str | None = None,
) -> URL:
    """The journal's database URL, with the async driver: ``url`` (explicit, e.g. a CLI option) if given, else
    ``configured`` (the settings' ``database.url``) with ``password`` set in it, else :func:`default_sqlite_url`.

    Raises:
        ConfigError: the chosen URL is malformed or unsupported (the message shows it redacted).
    """
    chosen = url or (_with_password(configured, password) if configured else None) or default_sqlite_url()
    return normalize_url(chosen)


def dialect_of(url: str | URL) -> str:
    """``"sqlite"`` or ``"postgresql"``.

    Raises:
        ConfigError: as :func:`normalize_url`.
    """
    return normalize_url(url).get_backend_name()


def sync_url(url: str | URL) -> URL:
    """The same database with a synchronous driver (``sqlite`` / ``postgresql+psycopg``), for the lockout store.

    Raises:
        ConfigError: as :func:`normalize_url`.
    """
    parsed = normalize_url(url)
    return parsed.set(drivername=_SYNC_DRIVERS[parsed.get_backend_name()])


def is_memory_sqlite(url: URL) -> bool:
    """True for an in-memory SQLite database (no file: ``sqlite://``, ``:memory:``, a ``mode=memory`` URI)."""
    db = url.database or ""
    return url.get_backend_name() == "sqlite" and (not db or db == ":memory:" or "mode=memory" in db)


def _sqlite_file(url: URL) -> Path | None:
    db = url.database
    if not db or db == ":memory:" or db.startswith("file:"):
        return None
    return Path(db)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    try:
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=5000")
    finally:
        cur.close()


def _prepare(url: URL) -> None:
    if url.get_backend_name() == "sqlite":
        path = _sqlite_file(url)
        if path is not None:
            try:
                path.expanduser().parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(f"cannot create the directory of {redact_url(url)!r}: {exc}") from None


def create_engine_for(url: str | URL, **kwargs: Any) -> AsyncEngine:
    """An :class:`AsyncEngine` for ``url`` (normalized; SQLite's directory created and pragmas set on connect).

    Nothing connects yet: use :func:`verify_connection` to fail early with a clear message.

    Raises:
        ConfigError: as :func:`normalize_url`, or the SQLite directory cannot be created.
    """
    parsed = normalize_url(url)
    _prepare(parsed)
    engine = create_async_engine(parsed, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def create_sync_engine_for(url: str | URL, **kwargs: Any) -> Engine:
    """A synchronous :class:`Engine` for the same database (``sqlite`` / ``postgresql+psycopg``).

    Raises:
        ConfigError: as :func:`normalize_url`.
    """
    parsed = sync_url(url)
    _prepare(parsed)
    engine = create_engine(parsed, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


async def verify_connection(engine: AsyncEngine) -> None:
    """Open and close one connection.

    Raises:
        ConfigError: the server is unreachable, the database missing, or the credentials refused; the message
            names the URL with its password redacted.
    """
    try:
        async with engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")
    except Exception as exc:
        raise ConfigError(
            f"cannot connect to the database {redact_url(engine.url)!r}: {describe_error(exc, engine.url)}"
        ) from None


def describe_error(exc: BaseException, url: URL | None = None) -> str:
    """``"<ExceptionType>: <first line>"`` with ``url``'s password and any password inside a URL in the text
    replaced by ``***`` (safe for logs and error messages)."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if url is not None and url.password:
        text = text.replace(str(url.password), "***")
    return f"{type(exc).__name__}: {_PASSWORD_IN_URL.sub(_mask, text)}"
