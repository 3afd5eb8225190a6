"""Storage fixtures: every storage test runs against SQLite (a temp file) and the real PostgreSQL on 127.0.0.1.

PostgreSQL: a fresh database ``propdesk_test_<random>`` per test, dropped afterwards. The server is taken from
``$PROPDESK_TEST_PG`` (a libpq URL of a maintenance database; default ``postgresql://postgres@127.0.0.1:5432/postgres``).
When it is unreachable the PostgreSQL variant is skipped, or fails under ``CI=true``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import make_url

from propdesk.storage.migrate import upgrade

PG_ADMIN = os.environ.get("PROPDESK_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _pg_admin_conn() -> object:
    try:
        return psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
    except Exception as exc:
        msg = f"PostgreSQL at {PG_ADMIN} is not reachable: {exc}"
        if _ci():
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database; yields its async URL (``postgresql+asyncpg://...``)."""
    conn = _pg_admin_conn()
    assert isinstance(conn, psycopg.Connection)
    name = f"propdesk_test_{secrets.token_hex(6)}"
    with conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        try:
            url = make_url(PG_ADMIN).set(drivername="postgresql+asyncpg", database=name)
            yield url.render_as_string(hide_password=False)
        finally:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each backend (not migrated)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'journal.sqlite3'}"
    else:
        yield request.getfixturevalue("pg_database")


@pytest.fixture
def db_url(empty_db_url: str) -> str:
    """A migrated database of each backend."""
    upgrade(empty_db_url)
    return empty_db_url
