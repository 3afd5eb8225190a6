"""API keys: format, scopes, hashing, and the store on SQLite and PostgreSQL (the secret is never stored)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from propdesk.api.keys import ApiKeyStore, Scope, hash_secret, new_key, parse_key, parse_scopes
from propdesk.core.errors import ConfigError
from propdesk.storage.db import create_engine_for
from tests.unit.api.conftest import ApiHarness


def test_new_key_format_and_hash() -> None:
    created, digest = new_key("bot", {Scope.TRADE}, now_ns=5)
    parsed = parse_key(created.token)
    assert parsed is not None
    key_id, secret = parsed
    assert key_id == created.key.key_id and len(secret) == 43  # 256 bits in URL-safe base64
    assert digest == hash_secret(key_id, secret) and secret not in digest
    assert "***" in repr(created) and secret not in repr(created)
    other, _ = new_key("bot", {Scope.TRADE}, now_ns=5)
    assert other.token != created.token


def test_parse_key_refuses_other_shapes() -> None:
    created, _ = new_key("x", {Scope.READ}, now_ns=0)
    assert parse_key(created.token[:-1]) is None
    assert parse_key("Bearer " + created.token) is None
    assert parse_key("") is None


def test_scopes_imply_lower_ones() -> None:
    admin, _ = new_key("a", {Scope.ADMIN}, now_ns=0)
    reader, _ = new_key("r", {Scope.READ}, now_ns=0)
    assert admin.key.has(Scope.READ) and admin.key.has(Scope.TRADE)
    assert reader.key.has(Scope.READ) and not reader.key.has(Scope.TRADE)
    assert parse_scopes(["read,trade", "ADMIN"]) == {Scope.READ, Scope.TRADE, Scope.ADMIN}
    with pytest.raises(ConfigError, match="unknown API key scope 'root'"):
        parse_scopes(["root"])
    with pytest.raises(ConfigError, match="at least one scope"):
        parse_scopes([" , "])


def test_new_key_refuses_bad_settings() -> None:
    with pytest.raises(ConfigError, match="name"):
        new_key("  ", {Scope.READ}, now_ns=0)
    with pytest.raises(ConfigError, match="burst"):
        new_key("x", {Scope.READ}, now_ns=0, burst=0)


@pytest.mark.asyncio
async def test_store_create_verify_revoke(harness: ApiHarness) -> None:
    store = harness.store
    created = await store.create("dashboard", {Scope.READ, Scope.TRADE}, now_ns=1_000, rate_per_minute=30, burst=5)
    key = await store.verify(created.token)
    assert key == created.key and key.scopes == {Scope.READ, Scope.TRADE}
    assert (key.rate_per_minute, key.burst, key.allow_trade_remote) == (30, 5, False)

    _, secret = parse_key(created.token) or ("", "")
    assert await store.verify(created.token.replace(secret, "A" * 43)) is None
    assert await store.verify("pdk_000000000000_" + "A" * 43) is None

    await store.touch(key.key_id, now_ns=2_000)
    assert [(k.key_id, k.last_used_ns) for k in await store.list()] == [(key.key_id, 2_000)]

    assert await store.revoke(key.key_id, now_ns=3_000) is True
    assert await store.revoke(key.key_id, now_ns=4_000) is False
    assert await store.verify(created.token) is None
    got = await store.get(key.key_id)
    assert got is not None and got.revoked_ns == 3_000
    assert await store.list(include_revoked=False) == []
    with pytest.raises(ConfigError, match="no API key has the id 'nope'"):
        await store.revoke("nope", now_ns=5_000)


@pytest.mark.asyncio
async def test_secret_is_not_in_the_database(db_url: str) -> None:
    engine = create_engine_for(db_url)
    try:
        created = await ApiKeyStore(engine).create("bot", {Scope.ADMIN}, now_ns=1)
        _, secret = parse_key(created.token) or ("", "")
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT * FROM api_keys"))).all()
        assert len(rows) == 1
        assert all(secret not in str(value) for value in rows[0])
    finally:
        await engine.dispose()
