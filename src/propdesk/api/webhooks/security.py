"""Webhook secrets: hook ids, the body's passphrase, and the optional HMAC signature header with a timestamp window.

* **Hook id**: 32 lower-case hex digits, 128 bits from :mod:`secrets` (:func:`new_hook_id`). It is part of the URL
  the trader pastes into TradingView, so it is a capability, not the only secret: the body also carries a
  passphrase (TradingView cannot set headers).
* **Passphrase**: compared with :func:`hmac.compare_digest` over UTF-8 bytes (:func:`passphrase_matches`), so the
  comparison time does not reveal how much of it matched.
* **Signature** (for senders that can set headers): ``X-Propdesk-Signature: t=<unix seconds>,v1=<hex>`` where
  ``<hex>`` is HMAC-SHA256 with the hook's ``hmac_secret`` over ``<t>.`` followed by the raw body bytes
  (:func:`sign`); :func:`verify_signature` accepts it when ``t`` is within ``window_s`` of now (a captured request
  cannot be replayed later) and the digest matches in constant time. The scheme is the one Stripe and Slack use for
  their webhooks (timestamp inside the signed bytes).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Final

__all__ = [
    "DEFAULT_SIGNATURE_WINDOW_S",
    "HOOK_ID_RE",
    "SIGNATURE_HEADER",
    "new_hook_id",
    "passphrase_matches",
    "sign",
    "verify_signature",
]

SIGNATURE_HEADER: Final = "X-Propdesk-Signature"
"""The signature header's name."""
DEFAULT_SIGNATURE_WINDOW_S: Final = 300
"""How far a signature's timestamp may be from now, seconds."""
HOOK_ID_RE: Final = re.compile(r"^[0-9a-f]{32}$")
"""The shape of a hook id."""

_SIG_RE: Final = re.compile(r"^t=(\d{1,12}),v1=([0-9a-f]{64})$")


def new_hook_id() -> str:
    """A new hook id: 128 random bits as 32 hex digits."""
    return secrets.token_hex(16)


def passphrase_matches(expected: str, given: object) -> bool:
    """True when ``given`` is a string equal to ``expected`` (constant-time; an empty ``expected`` never matches)."""
    if not expected or not isinstance(given, str):
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def sign(secret: str, body: bytes, ts_s: int) -> str:
    """The signature header value for ``body`` sent at ``ts_s`` (unix seconds)."""
    digest = hmac.new(secret.encode(), f"{ts_s}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={ts_s},v1={digest}"


def verify_signature(
    secret: str, header: str | None, body: bytes, *, now_s: float, window_s: float = DEFAULT_SIGNATURE_WINDOW_S
) -> str | None:
    """``None`` when ``header`` is a valid signature of ``body`` within the window, else why not (a sentence that
    never contains the secret or the expected digest)."""
    if not header:
        return f"the {SIGNATURE_HEADER} header is required for this hook"
    m = _SIG_RE.match(header.strip())
    if m is None:
        return f"the {SIGNATURE_HEADER} header is not t=<unix seconds>,v1=<64 hex digits>"
    ts_s = int(m.group(1))
    if abs(now_s - ts_s) > window_s:
        return f"the signature's timestamp is {abs(now_s - ts_s):.0f} s from now (window {window_s:.0f} s)"
    expected = sign(secret, body, ts_s).split("v1=", 1)[1]
    if not hmac.compare_digest(expected.encode(), m.group(2).encode()):
        return "the signature does not match the body"
    return None
