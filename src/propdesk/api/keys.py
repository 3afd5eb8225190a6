"""API keys: scopes, the key format, hashing, and the store in the journal database (table ``api_keys``).

**Format.** A key is ``pdk_<key id>_<secret>``: ``key id`` is 12 lower-case hex digits (48 random bits, unique
in the table, shown in listings and logs), ``secret`` is 32 random bytes (256 bits) from :mod:`secrets` in
URL-safe base64 (43 characters). The whole key is shown once, by ``propdesk api-key create``; only the hash is kept.

**Hashing.** ``secret_hash`` is SHA-256 over ``propdesk-api-key-v1``, the key id and the secret
(:func:`hash_secret`), compared with :func:`hmac.compare_digest` (constant time). A deliberately slow password hash
(scrypt, argon2) protects *low-entropy* secrets chosen by people against guessing after a database leak; a
256-bit random secret cannot be guessed at any hashing speed (2**256 candidates), so a slow hash would add only
latency to every request (scrypt at its recommended cost takes tens of milliseconds per call) and a CPU
denial-of-service lever. This is the approach of GitHub's and Stripe's API tokens and of NIST SP 800-63B section
5.1.1.2, which requires salting and key stretching only for memorized secrets. The key id in the hashed input binds a
hash to its row, and the version prefix separates this use of SHA-256 from any other.

**Scopes.** ``read`` (every GET), ``trade`` (orders, positions, flatten, strategies), ``admin`` (everything,
including less restrictive trading states and key management). ``admin`` implies ``trade`` and ``read``; ``trade``
implies ``read`` (:meth:`ApiKey.has`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from sqlalchemy import RowMapping, Table, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from propdesk.core.errors import ConfigError
from propdesk.storage.models import ApiKeyRow

__all__ = [
    "DEFAULT_BURST",
    "DEFAULT_RATE_PER_MINUTE",
    "KEY_PREFIX",
    "ApiKey",
    "ApiKeyStore",
    "NewApiKey",
    "Scope",
    "hash_secret",
    "new_key",
    "parse_key",
    "parse_scopes",
]

KEY_PREFIX: Final = "pdk"
"""The first part of every key (recognisable by secret scanners and people)."""
DEFAULT_RATE_PER_MINUTE: Final = 120
"""A new key's sustained rate: requests per minute."""
DEFAULT_BURST: Final = 20
"""A new key's bucket size: requests allowed at once after an idle time."""

_KEY_RE: Final = re.compile(r"^pdk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_HASH_DOMAIN: Final = b"propdesk-api-key-v1"


class Scope(StrEnum):
    """What a key may do (module docstring)."""

    READ = "read"
    TRADE = "trade"
    ADMIN = "admin"


_IMPLIED: Final[dict[Scope, frozenset[Scope]]] = {
    Scope.READ: frozenset({Scope.READ}),
    Scope.TRADE: frozenset({Scope.TRADE, Scope.READ}),
    Scope.ADMIN: frozenset({Scope.ADMIN, Scope.TRADE, Scope.READ}),
}


def parse_scopes(names: Iterable[str]) -> frozenset[Scope]:
    """The scopes named in ``names`` (each may itself be comma-separated: ``read,trade``).

    Raises:
        ConfigError: an unknown scope name, or none at all.
    """
    out: set[Scope] = set()
    for name in names:
        for part in name.split(","):
            word = part.strip().lower()
            if not word:
                continue
            try:
                out.add(Scope(word))
            except ValueError:
                known = ", ".join(s.value for s in Scope)
                raise ConfigError(f"unknown API key scope {word!r} (known: {known})") from None
    if not out:
        raise ConfigError("an API key needs at least one scope (read, trade, admin)")
    return frozenset(out)


def hash_secret(key_id: str, secret: str) -> str:
    """SHA-256 hex of the version tag, ``key_id`` and ``secret`` (module docstring, "Hashing")."""
    h = hashlib.sha256(_HASH_DOMAIN)
    for part in (key_id, secret):
        h.update(b"\0")
        h.update(part.encode())
    return h.hexdigest()


def parse_key(presented: str) -> tuple[str, str] | None:
    """``(key id, secret)`` of a presented key, or ``None`` when it does not have the key format."""
    m = _KEY_RE.match(presented.strip())
    return (m.group(1), m.group(2)) if m else None


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored API key (without its secret).

    Attributes:
        key_id: the public id. name: the owner's label. scopes: as granted.
        allow_trade_remote: may trade (``trade``/``admin`` calls) from a non-loopback client.
        rate_per_minute / burst: its token bucket. created_ns / last_used_ns / revoked_ns: UTC ns or ``None``.
    """

    key_id: str
    name: str
    scopes: frozenset[Scope]
    allow_trade_remote: bool
    rate_per_minute: int
    burst: int
    created_ns: int
    last_used_ns: int | None = None
    revoked_ns: int | None = None

    @property
    def revoked(self) -> bool:
        """True once revoked."""
        return self.revoked_ns is not None

    def has(self, scope: Scope) -> bool:
        """True when one of the key's scopes grants ``scope`` (admin grants trade and read; trade grants read)."""
        return any(scope in _IMPLIED[s] for s in self.scopes)


@dataclass(frozen=True, slots=True)
class NewApiKey:
    """A key just created: the stored record and the full key to show once (``token``, never stored or logged)."""

    key: ApiKey
    token: str

    def __repr__(self) -> str:
        return f"NewApiKey(key={self.key!r}, token='***')"


def new_key(
    name: str,
    scopes: Iterable[Scope],
    *,
    now_ns: int,
    allow_trade_remote: bool = False,
    rate_per_minute: int = DEFAULT_RATE_PER_MINUTE,
    burst: int = DEFAULT_BURST,
) -> tuple[NewApiKey, str]:
    """A new random key and the hash to store: ``(NewApiKey, secret_hash)``.

    Raises:
        ConfigError: an empty or too long name (1-128 characters), no scope, a rate or burst below 1.
    """
    label = name.strip()
    if not 1 <= len(label) <= 128:
        raise ConfigError(f"an API key name has 1 to 128 characters, not {len(label)}")
    granted = frozenset(scopes)
    if not granted:
        raise ConfigError("an API key needs at least one scope (read, trade, admin)")
    if rate_per_minute < 1 or burst < 1:
        raise ConfigError(f"an API key's rate ({rate_per_minute}/min) and burst ({burst}) must be at least 1")
    key_id = secrets.token_hex(6)
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    key = ApiKey(
        key_id=key_id,
        name=label,
        scopes=granted,
        allow_trade_remote=allow_trade_remote,
        rate_per_minute=rate_per_minute,
        burst=burst,
        created_ns=now_ns,
    )
    return NewApiKey(key=key, token=f"{KEY_PREFIX}_{key_id}_{secret}"), hash_secret(key_id, secret)


_T: Table = ApiKeyRow.__table__  # type: ignore[assignment]


def _from_row(row: RowMapping) -> ApiKey:
    return ApiKey(
        key_id=row["key_id"],
        name=row["name"],
        scopes=frozenset(Scope(s) for s in str(row["scopes"]).split(",") if s),
        allow_trade_remote=bool(row["allow_trade_remote"]),
        rate_per_minute=int(row["rate_per_minute"]),
        burst=int(row["burst"]),
        created_ns=int(row["created_ns"]),
        last_used_ns=row["last_used_ns"],
        revoked_ns=row["revoked_ns"],
    )


class ApiKeyStore:
    """The ``api_keys`` table of a migrated journal database (revision 0005 or newer).

    Args:
        engine: the database's async engine (the caller owns and disposes it).
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create(
        self,
        name: str,
        scopes: Iterable[Scope],
        *,
        now_ns: int,
        allow_trade_remote: bool = False,
        rate_per_minute: int = DEFAULT_RATE_PER_MINUTE,
        burst: int = DEFAULT_BURST,
    ) -> NewApiKey:
        """Create and store a key; the returned ``token`` is the only copy of its secret.

        Raises:
            ConfigError: as :func:`new_key`.
        """
        created, digest = new_key(
            name,
            scopes,
            now_ns=now_ns,
            allow_trade_remote=allow_trade_remote,
            rate_per_minute=rate_per_minute,
            burst=burst,
        )
        k = created.key
        row = {
            "key_id": k.key_id,
            "name": k.name,
            "secret_hash": digest,
            "scopes": ",".join(sorted(s.value for s in k.scopes)),
            "allow_trade_remote": k.allow_trade_remote,
            "rate_per_minute": k.rate_per_minute,
            "burst": k.burst,
            "created_ns": k.created_ns,
            "last_used_ns": None,
            "revoked_ns": None,
        }
        async with self._engine.begin() as conn:
            await conn.execute(_T.insert().values(**row))
        return created

    async def list(self, *, include_revoked: bool = True) -> list[ApiKey]:
        """Every key, oldest first (revoked ones too unless ``include_revoked=False``)."""
        stmt = select(_T).order_by(_T.c.created_ns, _T.c.key_id)
        if not include_revoked:
            stmt = stmt.where(_T.c.revoked_ns.is_(None))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [_from_row(r._mapping) for r in rows]

    async def get(self, key_id: str) -> ApiKey | None:
        """The key with id ``key_id``, or ``None``."""
        found = await self._row(key_id)
        return _from_row(found) if found is not None else None

    async def verify(self, presented: str) -> ApiKey | None:
        """The live key a presented ``pdk_...`` string authenticates, or ``None`` (malformed, unknown, revoked, or a
        wrong secret: the caller answers all four alike). The hash comparison is constant-time."""
        parsed = parse_key(presented)
        if parsed is None:
            return None
        key_id, secret = parsed
        digest = hash_secret(key_id, secret)  # hashed before the lookup: unknown ids cost the same work
        row = await self._row(key_id)
        if row is None or row["revoked_ns"] is not None:
            return None
        if not hmac.compare_digest(str(row["secret_hash"]).encode(), digest.encode()):
            return None
        return _from_row(row)

    async def revoke(self, key_id: str, *, now_ns: int) -> bool:
        """Revoke the key; ``True`` when it was live, ``False`` when it was already revoked.

        Raises:
            ConfigError: no key has this id.
        """
        async with self._engine.begin() as conn:
            res = await conn.execute(
                update(_T).where(_T.c.key_id == key_id, _T.c.revoked_ns.is_(None)).values(revoked_ns=now_ns)
            )
        if res.rowcount:
            return True
        if await self._row(key_id) is None:
            raise ConfigError(f"no API key has the id {key_id!r} (propdesk api-key list shows them)")
        return False

    async def touch(self, key_id: str, *, now_ns: int) -> None:
        """Record that the key was used at ``now_ns`` (UTC ns)."""
        async with self._engine.begin() as conn:
            await conn.execute(update(_T).where(_T.c.key_id == key_id).values(last_used_ns=now_ns))

    async def _row(self, key_id: str) -> RowMapping | None:
        async with self._engine.connect() as conn:
            r = (await conn.execute(select(_T).where(_T.c.key_id == key_id))).first()
        return r._mapping if r is not None else None
