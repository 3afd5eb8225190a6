"""Hook ids, passphrases (constant-time compare) and HMAC signatures with a timestamp window."""

from __future__ import annotations

import pytest

from propdesk.api.webhooks.security import (
    HOOK_ID_RE,
    new_hook_id,
    passphrase_matches,
    sign,
    verify_signature,
)
from propdesk.api.webhooks.signal import HookSettings
from propdesk.core.errors import ConfigError


def test_hook_ids_are_128_random_bits() -> None:
    ids = {new_hook_id() for _ in range(50)}
    assert len(ids) == 50 and all(HOOK_ID_RE.match(i) and len(i) * 4 == 128 for i in ids)


def test_passphrase_matches_only_the_exact_string() -> None:
    assert passphrase_matches("s3cret", "s3cret")
    assert not passphrase_matches("s3cret", "s3cret ")
    assert not passphrase_matches("s3cret", None)
    assert not passphrase_matches("s3cret", 12)
    assert not passphrase_matches("", "")


def test_signature_round_trip_and_window() -> None:
    body = b'{"ticker":"ES1!","action":"buy"}'
    header = sign("k3y", body, 1_700_000_000)
    assert verify_signature("k3y", header, body, now_s=1_700_000_100) is None
    late = verify_signature("k3y", header, body, now_s=1_700_000_301)
    assert late is not None and "window 300 s" in late
    tampered = verify_signature("k3y", header, body + b" ", now_s=1_700_000_000)
    assert tampered == "the signature does not match the body"
    assert verify_signature("other", header, body, now_s=1_700_000_000) == "the signature does not match the body"
    missing = verify_signature("k3y", None, body, now_s=0)
    assert missing is not None and "required" in missing
    malformed = verify_signature("k3y", "sha256=abc", body, now_s=0)
    assert malformed is not None and "t=<unix seconds>" in malformed and "k3y" not in malformed


def test_hook_settings_refuse_weak_or_malformed_values() -> None:
    with pytest.raises(ConfigError) as info:
        HookSettings(hook_id="abc", account_id=1, passphrase="short", allowed_roots=frozenset({"MES"}), burst=0)
    message = str(info.value)
    assert "32 lower-case hex" in message and "at least 12" in message and "burst (0)" in message
    assert "short" not in message.replace("at least", "")
