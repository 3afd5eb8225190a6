"""SqlLockoutStore: the durable LockoutStore on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from propdesk.model.identifiers import AccountId
from propdesk.model.records import Lockout, LockoutStoreError
from propdesk.risk.lockouts import LockoutStore
from propdesk.storage.lockouts import SqlLockoutStore

A = AccountId(7)
B = AccountId(8)
T0 = 1_763_000_000_000_000_000
DAY = 86_400 * 10**9


def lo(rule: str = "R3", expires: int | None = T0 + DAY, *, account: AccountId = A, set_at: int = T0) -> Lockout:
    return Lockout(
        account=account, rule_id=rule, reason=f"{rule} breached", set_at_ns=set_at, expires_at_ns=expires, firm=True
    )


def test_save_load_survives_a_new_store(db_url: str) -> None:
    store = SqlLockoutStore(db_url)
    assert isinstance(store, LockoutStore)
    store.save(lo("R3"))
    store.save(lo("R9", None, set_at=T0 + 1))
    store.save(lo("R3", account=B))
    store.close()
    again = SqlLockoutStore(db_url)  # a restart: a new engine sees what was committed
    try:
        assert again.load_active(A, T0 + 10) == [lo("R3"), lo("R9", None, set_at=T0 + 1)]
        assert again.load_active(A, T0 + DAY) == [lo("R9", None, set_at=T0 + 1)]  # R3 expired at its expiry
        assert again.load_active(B, T0) == [lo("R3", account=B)]
    finally:
        again.close()


def test_save_keeps_the_stricter_lockout(db_url: str) -> None:
    store = SqlLockoutStore(db_url)
    try:
        store.save(lo("R3", T0 + 2 * DAY))
        store.save(lo("R3", T0 + DAY, set_at=T0 + 5))  # earlier expiry: must not weaken
        assert store.load_active(A, T0)[0].expires_at_ns == T0 + 2 * DAY
        store.save(lo("R3", None, set_at=T0 + 6))  # no expiry beats any
        [only] = store.all()
        assert only.expires_at_ns is None and only.set_at_ns == T0 + 6
    finally:
        store.close()


def test_clear_only_removes_the_same_lockout(db_url: str) -> None:
    store = SqlLockoutStore(db_url)
    try:
        store.save(lo("R3"))
        store.clear(lo("R3", T0 + 3 * DAY))  # a different lockout of the key: nothing happens
        assert store.all() == [lo("R3")]
        store.clear(lo("R3"))
        assert store.all() == []
    finally:
        store.close()


def test_unreadable_store_raises_lockout_store_error(tmp_path: object) -> None:
    store = SqlLockoutStore("postgresql://bob:hunter22@127.0.0.1:1/pd")
    with pytest.raises(LockoutStoreError) as err:
        store.load_active(A, T0)
    assert "bob:***@127.0.0.1:1/pd" in str(err.value) and "hunter22" not in str(err.value)
    with pytest.raises(LockoutStoreError):
        store.save(lo())
    store.close()


def test_unmigrated_database_is_a_store_error(empty_db_url: str) -> None:
    store = SqlLockoutStore(empty_db_url)
    try:
        with pytest.raises(LockoutStoreError, match="cannot read lockouts"):
            store.load_active(A, T0)
    finally:
        store.close()
