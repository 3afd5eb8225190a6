"""Lockouts: the record of an account being HALTED by a rule, and where lockouts are persisted.

A :class:`Lockout` says which rule locked which account, why, since when and until when (``expires_at_ns``; ``None``
means no expiry: the account FAILED and stays HALTED until an operator records a reset). Lockouts are written
**before** the flatten starts and loaded **before** connecting at start-up, so a restart keeps every lockout; there
is no in-app unlock (``../shared/specs/risk-rules.md`` section 7.5, mirroring TopstepX,
https://help.topstep.com/en/articles/9078173). An unreadable store means HALTED (section 7.6): :meth:`load_active`
raises :class:`LockoutStoreError` and the account guard turns that into HALTED.

Stores (the :class:`LockoutStore` protocol; the journal in ``storage/`` will provide the durable one):

* :class:`MemoryLockoutStore`: in process, for tests and backtests;
* :class:`JsonFileLockoutStore`: one JSON file, replaced atomically (write a temp file, fsync, ``os.replace``), so
  a crash mid-write leaves the old file or the new one, never half of one.

A store keeps at most one lockout per ``(account, rule_id)``: saving another keeps the more restrictive expiry (no
expiry beats any expiry; a later expiry beats an earlier one), so a lockout is never weakened by a newer record.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Protocol, runtime_checkable

from propdesk.model.identifiers import AccountId
from propdesk.model.records import Lockout, LockoutStoreError, stricter

__all__ = [
    "JsonFileLockoutStore",
    "LockoutStore",
    "MemoryLockoutStore",
]

_FORMAT_VERSION = 1


@runtime_checkable
class LockoutStore(Protocol):
    """Where lockouts are persisted (the journal provides the durable implementation).

    ``save`` must be durable when it returns (the flatten starts right after). ``load_active`` returns the
    lockouts of ``account`` still active at ``now_ns`` and may drop the expired ones.
    """

    def load_active(self, account: AccountId, now_ns: int) -> list[Lockout]:
        """Lockouts of ``account`` active at ``now_ns`` (UTC ns). Raises :class:`LockoutStoreError` if unreadable."""
        ...

    def save(self, lockout: Lockout) -> None:
        """Persist ``lockout`` (the stricter of it and a stored one of the same key is kept).

        Raises :class:`LockoutStoreError` on failure."""
        ...

    def clear(self, lockout: Lockout) -> None:
        """Remove the stored lockout of ``lockout.key`` if it is this one (an expired lockout); else do nothing."""
        ...


class MemoryLockoutStore:
    """An in-process :class:`LockoutStore` (tests, backtests). Survives a guard restart within one process."""

    def __init__(self, lockouts: list[Lockout] | None = None) -> None:
        self._items: dict[tuple[AccountId, str], Lockout] = {}
        self.saves = 0
        """Number of :meth:`save` calls (tests check that a lockout was persisted before the flatten)."""
        for lo in lockouts or ():
            self.save(lo)

    def load_active(self, account: AccountId, now_ns: int) -> list[Lockout]:
        """Lockouts of ``account`` active at ``now_ns``, oldest first; expired ones are dropped."""
        for key, lo in list(self._items.items()):
            if not lo.active_at(now_ns):
                del self._items[key]
        return sorted((lo for lo in self._items.values() if lo.account == account), key=lambda lo: lo.set_at_ns)

    def save(self, lockout: Lockout) -> None:
        """Store ``lockout`` (keeping the stricter one of its key)."""
        self.saves += 1
        old = self._items.get(lockout.key)
        self._items[lockout.key] = lockout if old is None else stricter(old, lockout)

    def clear(self, lockout: Lockout) -> None:
        """Remove the lockout of ``lockout.key`` if it is equal to ``lockout``."""
        if self._items.get(lockout.key) == lockout:
            del self._items[lockout.key]

    def all(self) -> list[Lockout]:
        """Every stored lockout (any account, active or not), oldest first."""
        return sorted(self._items.values(), key=lambda lo: lo.set_at_ns)


class JsonFileLockoutStore:
    """A :class:`LockoutStore` in one JSON file: ``{"version": 1, "lockouts": [<Lockout.to_dict()>, ...]}``.

    Every :meth:`save` and :meth:`clear` rewrites the whole file atomically (temp file in the same directory,
    ``fsync``, ``os.replace``, then ``fsync`` of the directory where the platform allows it). A missing file is an
    empty store; a file that cannot be read or parsed raises :class:`LockoutStoreError` (the guard goes HALTED,
    risk-rules.md section 7.5), and a later :meth:`save` refuses to overwrite it, so nothing is silently lost.

    Args:
        path: the JSON file; its directory is created on the first write.
        fsync: flush to disk on every write (default True; tests may turn it off for speed).
    """

    def __init__(self, path: str | Path, *, fsync: bool = True) -> None:
        self.path = Path(path)
        self._fsync = fsync

    def _read(self) -> dict[tuple[AccountId, str], Lockout]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise LockoutStoreError(f"cannot read the lockout file: {exc}", path=self.path) from exc
        try:
            doc = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise LockoutStoreError(f"the lockout file is not valid JSON: {exc}", path=self.path) from exc
        if (
            not isinstance(doc, dict)
            or doc.get("version") != _FORMAT_VERSION
            or not isinstance(doc.get("lockouts"), list)
        ):
            raise LockoutStoreError(
                f'the lockout file must be {{"version": {_FORMAT_VERSION}, "lockouts": [...]}}', path=self.path
            )
        out: dict[tuple[AccountId, str], Lockout] = {}
        for i, item in enumerate(doc["lockouts"]):
            try:
                lo = Lockout.from_dict(item)
            except ValueError as exc:
                raise LockoutStoreError(f"lockout #{i}: {exc}", path=self.path) from exc
            old = out.get(lo.key)
            out[lo.key] = lo if old is None else stricter(old, lo)
        return out

    def _write(self, items: dict[tuple[AccountId, str], Lockout]) -> None:
        doc = {
            "version": _FORMAT_VERSION,
            "lockouts": [lo.to_dict() for lo in sorted(items.values(), key=lambda lo: (lo.set_at_ns, lo.rule_id))],
        }
        data = json.dumps(doc, indent=1, sort_keys=True).encode("utf-8")
        directory = self.path.parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=directory)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    if self._fsync:
                        os.fsync(fh.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            if self._fsync and hasattr(os, "O_DIRECTORY"):
                dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
                try:
                    os.fsync(dfd)
                finally:
                    os.close(dfd)
        except OSError as exc:
            raise LockoutStoreError(f"cannot write the lockout file: {exc}", path=self.path) from exc

    def load_active(self, account: AccountId, now_ns: int) -> list[Lockout]:
        """Lockouts of ``account`` active at ``now_ns``, oldest first. Expired lockouts stay in the file until the
        next write (they are history; reading never writes).

        Raises:
            LockoutStoreError: the file cannot be read or parsed.
        """
        items = self._read()
        active = [lo for lo in items.values() if lo.account == account and lo.active_at(now_ns)]
        return sorted(active, key=lambda lo: lo.set_at_ns)

    def save(self, lockout: Lockout) -> None:
        """Add ``lockout`` (keeping the stricter one of its key) and rewrite the file atomically.

        Raises:
            LockoutStoreError: the existing file is unreadable (it is not overwritten) or the write failed.
        """
        items = self._read()
        old = items.get(lockout.key)
        items[lockout.key] = lockout if old is None else stricter(old, lockout)
        self._write(items)

    def clear(self, lockout: Lockout) -> None:
        """Remove the stored lockout of ``lockout.key`` if it equals ``lockout``, and drop every lockout that has
        expired by ``lockout.expires_at_ns``.

        Raises:
            LockoutStoreError: as :meth:`save`.
        """
        items = self._read()
        changed = False
        if items.get(lockout.key) == lockout:
            del items[lockout.key]
            changed = True
        if lockout.expires_at_ns is not None:
            for key, lo in list(items.items()):
                if not lo.active_at(lockout.expires_at_ns):
                    del items[key]
                    changed = True
        if changed:
            self._write(items)
