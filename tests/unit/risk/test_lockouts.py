"""Tests for lockout records and stores (propdesk.risk.lockouts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from propdesk.model.identifiers import AccountId
from propdesk.model.records import Lockout, LockoutStoreError, stricter
from propdesk.risk.lockouts import JsonFileLockoutStore, LockoutStore, MemoryLockoutStore

A = AccountId(7)
B = AccountId(8)
SEC = 1_000_000_000


def lock(
    rule: str = "R3", *, account: AccountId = A, set_at: int = 100 * SEC, expires: int | None = 200 * SEC
) -> Lockout:
    return Lockout(account=account, rule_id=rule, reason=f"{rule} breached", set_at_ns=set_at, expires_at_ns=expires)


def test_active_at_is_strictly_before_expiry_and_forever_without_one() -> None:
    lo = lock(expires=200 * SEC)
    assert lo.active_at(199 * SEC) and not lo.active_at(200 * SEC)
    assert lock(expires=None).active_at(10**20)


def test_dict_round_trip_and_field_errors() -> None:
    lo = Lockout(account=A, rule_id="R1", reason="MLL", set_at_ns=5, expires_at_ns=None, firm=True)
    assert Lockout.from_dict(json.loads(json.dumps(lo.to_dict()))) == lo
    bad = lo.to_dict()
    del bad["rule_id"]
    with pytest.raises(ValueError, match="rule_id"):
        Lockout.from_dict(bad)
    with pytest.raises(ValueError, match="set_at_ns"):
        Lockout.from_dict({**lo.to_dict(), "set_at_ns": "5"})
    with pytest.raises(ValueError, match="expires_at_ns"):
        Lockout.from_dict({**lo.to_dict(), "expires_at_ns": 1.5})
    with pytest.raises(ValueError, match="object"):
        Lockout.from_dict([1, 2])


def test_stricter_prefers_no_expiry_then_later_expiry() -> None:
    early, late, never = lock(expires=100), lock(expires=300), lock(expires=None)
    assert stricter(early, late) is late and stricter(late, early) is late
    assert stricter(late, never) is never and stricter(never, late) is never


@pytest.mark.parametrize("make", [lambda p: MemoryLockoutStore(), lambda p: JsonFileLockoutStore(p / "lk.json")])
def test_store_contract(tmp_path: Path, make: object) -> None:
    store = make(tmp_path)  # type: ignore[operator]
    assert isinstance(store, LockoutStore)
    assert store.load_active(A, 0) == []
    store.save(lock("R3", expires=200 * SEC))
    store.save(lock("R1", expires=None, set_at=150 * SEC))
    store.save(lock("R3", account=B))
    # a weaker record of the same key never shortens the lockout
    store.save(lock("R3", expires=120 * SEC, set_at=160 * SEC))
    got = store.load_active(A, 150 * SEC)
    assert [(lo.rule_id, lo.expires_at_ns) for lo in got] == [("R3", 200 * SEC), ("R1", None)]
    assert [lo.account for lo in store.load_active(B, 150 * SEC)] == [B]
    assert [lo.rule_id for lo in store.load_active(A, 250 * SEC)] == ["R1"]
    store.clear(lock("R1", expires=None, set_at=150 * SEC))
    assert store.load_active(A, 250 * SEC) == []


def test_clear_of_a_different_record_keeps_the_stored_one() -> None:
    store = MemoryLockoutStore([lock("R3", expires=500)])
    store.clear(lock("R3", expires=400))
    assert [lo.expires_at_ns for lo in store.all()] == [500]


def test_json_file_survives_a_new_store_instance_and_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "state" / "lockouts.json"
    JsonFileLockoutStore(path, fsync=True).save(lock("R2", expires=900 * SEC))
    again = JsonFileLockoutStore(path)
    assert [lo.rule_id for lo in again.load_active(A, 0)] == ["R2"]
    assert sorted(p.name for p in path.parent.iterdir()) == ["lockouts.json"]
    doc = json.loads(path.read_text())
    assert doc["version"] == 1 and doc["lockouts"][0]["expires_at_ns"] == 900 * SEC


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{not json", "not valid JSON"),
        ('{"version": 2, "lockouts": []}', "version"),
        ('{"version": 1, "lockouts": [{"account": 7}]}', "lockout #0"),
        ("[]", "version"),
    ],
)
def test_unreadable_file_raises_and_is_never_overwritten(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "lockouts.json"
    path.write_text(text)
    store = JsonFileLockoutStore(path)
    with pytest.raises(LockoutStoreError, match=match) as info:
        store.load_active(A, 0)
    assert info.value.path == path
    with pytest.raises(LockoutStoreError):
        store.save(lock())
    assert path.read_text() == text


def test_clear_drops_records_expired_by_then(tmp_path: Path) -> None:
    store = JsonFileLockoutStore(tmp_path / "lk.json", fsync=False)
    first = lock("R3", expires=200)
    store.save(first)
    store.save(lock("R9", expires=150))
    store.save(lock("R1", expires=None))
    store.clear(first)
    ids = [d["rule_id"] for d in json.loads((tmp_path / "lk.json").read_text())["lockouts"]]
    assert ids == ["R1"]
