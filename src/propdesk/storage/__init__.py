"""propdesk's journal: SQLAlchemy models, Alembic migrations, repositories, the async journal writer, the durable
lockout store and the CSV export. SQLite (aiosqlite) by default, PostgreSQL (asyncpg) by URL.

Modules: :mod:`.db` (URLs, engines, redaction), :mod:`.models` (tables), :mod:`.migrate` (``upgrade``),
:mod:`.rows` (records <-> rows), :mod:`.repositories` (reads and insert-or-ignore writes), :mod:`.journal` (the bus
subscriber and batched writer), :mod:`.lockouts` (``SqlLockoutStore``), :mod:`.export` (CSV).
"""

from __future__ import annotations

from propdesk.storage.db import create_engine_for, redact_url, resolve_url
from propdesk.storage.journal import BackpressureLevel, Journal
from propdesk.storage.migrate import upgrade, upgrade_async, upgrade_engine
from propdesk.storage.repositories import Repository

__all__ = [
    "BackpressureLevel",
    "Journal",
    "Repository",
    "create_engine_for",
    "redact_url",
    "resolve_url",
    "upgrade",
    "upgrade_async",
    "upgrade_engine",
]
