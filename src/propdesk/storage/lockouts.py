"""The durable :class:`~propdesk.risk.lockouts.LockoutStore`: lockouts in the journal database.

The protocol is synchronous (the account guard saves a lockout and starts the flatten right after, inside the
synchronous core), so :class:`SqlLockoutStore` uses its own **synchronous engine** on the same database
(``sqlite`` / ``postgresql+psycopg``, see :func:`propdesk.storage.db.sync_url`) rather than running async calls
from sync code: ``save`` returns only after the transaction is committed (durable, as the protocol requires), and it
works whether or not an event loop is running. Lockouts are rare, so the few milliseconds of a synchronous commit
are acceptable on that path. Every failure is a :class:`~propdesk.model.records.LockoutStoreError` naming the
database (password redacted), which the guard turns into HALTED (risk-rules.md section 7.6).

One row per ``(account, rule_id)``; saving another lockout of the same key keeps the stricter one
(:func:`propdesk.model.records.stricter`), so a lockout is never weakened. Expired lockouts stay in the table as
history until :meth:`SqlLockoutStore.clear` removes them; the journal's ``risk_events`` keep every
``lockout_set``/``lockout_expired`` event besides.
"""

from __future__ import annotations

from sqlalchemy import URL, Engine, delete, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from propdesk.model.identifiers import AccountId
from propdesk.model.records import Lockout, LockoutStoreError, stricter
from propdesk.storage import rows as rw
from propdesk.storage.db import create_sync_engine_for, describe_error, redact_url
from propdesk.storage.repositories import TABLES, lockout_match

__all__ = ["SqlLockoutStore"]

_T = TABLES["lockouts"]


class SqlLockoutStore:
    """A :class:`~propdesk.risk.lockouts.LockoutStore` in the ``lockouts`` table (see the module docstring).

    Args:
        url: the journal's database URL (async or plain form; the synchronous driver is chosen here). The schema
            must be migrated.
        engine: an existing synchronous engine instead of ``url`` (tests).

    Raises:
        ConfigError: a malformed or unsupported URL.
    """

    def __init__(self, url: str | URL | None = None, *, engine: Engine | None = None) -> None:
        if engine is None:
            if url is None:
                raise ValueError("SqlLockoutStore needs a url or an engine")
            engine = create_sync_engine_for(url)
        self.engine = engine
        self._where = redact_url(engine.url)

    def close(self) -> None:
        """Release the engine's connections."""
        self.engine.dispose()

    def _fail(self, what: str, exc: Exception) -> LockoutStoreError:
        return LockoutStoreError(f"lockout store {self._where}: cannot {what}: {describe_error(exc, self.engine.url)}")

    def load_active(self, account: AccountId, now_ns: int) -> list[Lockout]:
        """Lockouts of ``account`` active at ``now_ns`` (UTC ns), oldest first. Expired rows stay (history).

        Raises:
            LockoutStoreError: the database cannot be read.
        """
        q = (
            select(_T)
            .where(_T.c.account_id == int(account), or_(_T.c.expires_at_ns.is_(None), _T.c.expires_at_ns > now_ns))
            .order_by(_T.c.set_at_ns, _T.c.id)
        )
        try:
            with self.engine.connect() as conn:
                return [rw.lockout_from_row(r) for r in conn.execute(q)]
        except Exception as exc:
            raise self._fail("read lockouts", exc) from exc

    def all(self) -> list[Lockout]:
        """Every stored lockout (any account, active or not), oldest first.

        Raises:
            LockoutStoreError: the database cannot be read.
        """
        try:
            with self.engine.connect() as conn:
                return [rw.lockout_from_row(r) for r in conn.execute(select(_T).order_by(_T.c.set_at_ns, _T.c.id))]
        except Exception as exc:
            raise self._fail("read lockouts", exc) from exc

    def save(self, lockout: Lockout) -> None:
        """Store ``lockout``, keeping the stricter of it and a stored lockout of the same key; committed (durable)
        when it returns.

        Raises:
            LockoutStoreError: the write failed (nothing changed).
        """
        dialect = self.engine.dialect.name
        try:
            with self.engine.begin() as conn:
                q = select(_T).where(_T.c.account_id == int(lockout.account), _T.c.rule_id == lockout.rule_id)
                if dialect == "postgresql":
                    q = q.with_for_update()
                old = conn.execute(q).first()
                keep = lockout if old is None else stricter(rw.lockout_from_row(old), lockout)
                row = rw.lockout_row(keep)
                ins = postgresql.insert(_T) if dialect == "postgresql" else sqlite.insert(_T)
                stmt = ins.on_conflict_do_update(
                    index_elements=["account_id", "rule_id"],
                    set_={k: ins.excluded[k] for k in row if k not in ("account_id", "rule_id")},
                )
                conn.execute(stmt, [row])
        except Exception as exc:
            raise self._fail(f"save the {lockout.rule_id} lockout of account {lockout.account}", exc) from exc

    def clear(self, lockout: Lockout) -> None:
        """Remove the stored lockout of ``lockout.key`` if it equals ``lockout``; otherwise do nothing.

        Raises:
            LockoutStoreError: the write failed.
        """
        try:
            with self.engine.begin() as conn:
                conn.execute(delete(_T).where(*lockout_match(_T, lockout)))
        except Exception as exc:
            raise self._fail(f"clear the {lockout.rule_id} lockout of account {lockout.account}", exc) from exc
