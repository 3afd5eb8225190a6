"""The ProjectX token lifecycle: log in with the API key, refresh before expiry, hand the current token out.

Spec ``../shared/specs/projectx-gateway-api.md`` section 2: one JWT serves every REST call and both hubs; tokens
live 24 h. :class:`TokenManager` reads ``exp`` from the JWT (an unreadable one is assumed to live one hour, as PXPY
does), calls ``Auth/validate`` when the token is older than ``validate_interval_s`` (12 h) or has less than
``refresh_before_expiry_s`` (1 h) left, falls back to a fresh ``Auth/loginKey`` when validate fails or the token
already expired, and tells every listener (the REST client reads :attr:`TokenManager.token` per call; the hubs ask
for it on every (re)connect, so a reconnect never uses a stale token: pitfall 4 of section 8).

The token is a credential: it is never logged (only its expiry).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import time
from collections.abc import Awaitable, Callable

from propdesk.brokers.projectx.errors import ProjectXError

logger = logging.getLogger(__name__)

ASSUMED_TTL_S = 3600.0
"""Lifetime assumed for a token whose ``exp`` cannot be read (PXPY ``client/auth.py``)."""


def jwt_exp(token: str) -> float | None:
    """The ``exp`` claim (epoch seconds) of a JWT, or ``None`` when the token is not a readable JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        return None
    return float(exp)


LoginFn = Callable[[], Awaitable[str]]
"""Logs in (``Auth/loginKey``) and returns the token; raises a ``ProjectXError`` on failure."""
ValidateFn = Callable[[str], Awaitable[str | None]]
"""Validates a token (``Auth/validate``) and returns the fresh one, or ``None`` when refused."""


class TokenManager:
    """Holds the current token and renews it (see the module docstring).

    Args:
        login: performs ``Auth/loginKey``.
        validate: performs ``Auth/validate`` with the given token.
        validate_interval_s: renew a token at least this often (seconds).
        refresh_before_expiry_s: renew when less lifetime than this is left (seconds).
        now: wall clock in epoch seconds (injectable for tests).
    """

    def __init__(
        self,
        login: LoginFn,
        validate: ValidateFn,
        *,
        validate_interval_s: float = 12 * 3600.0,
        refresh_before_expiry_s: float = 3600.0,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._login = login
        self._validate = validate
        self._validate_interval_s = validate_interval_s
        self._refresh_before_s = refresh_before_expiry_s
        self._now = now
        self._token: str | None = None
        self._exp: float | None = None
        self._issued: float = 0.0
        self._lock = asyncio.Lock()
        self._listeners: list[Callable[[str], None]] = []
        self.logins = 0
        self.validations = 0

    @property
    def token(self) -> str | None:
        """The current token (``None`` before the first login)."""
        return self._token

    @property
    def expires_at(self) -> float | None:
        """Epoch seconds when the current token expires (``None`` before the first login)."""
        return self._exp

    def add_listener(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(token)`` whenever a new token is obtained."""
        self._listeners.append(callback)

    def needs_refresh(self) -> bool:
        """True when there is no token, it expires within ``refresh_before_expiry_s``, or it is older than
        ``validate_interval_s``."""
        if self._token is None or self._exp is None:
            return True
        now = self._now()
        return self._exp - now <= self._refresh_before_s or now - self._issued >= self._validate_interval_s

    async def get(self) -> str:
        """The current token, renewed first when :meth:`needs_refresh`.

        Raises:
            ProjectXError: login failed (``AuthenticationError`` for refused credentials).
        """
        token = self._token
        if token is not None and not self.needs_refresh():
            return token
        return await self.refresh()

    async def refresh(self, *, stale: str | None = None) -> str:
        """Renew the token: ``Auth/validate`` while it is still alive, else (or when validate fails) log in again.

        ``stale``: the token a caller saw refused (HTTP 401); when another task already replaced it, the current
        token is returned without a new request.

        Raises:
            ProjectXError: the fallback login failed.
        """
        async with self._lock:
            if stale is not None and self._token is not None and self._token != stale:
                return self._token
            if stale is None and self._token is not None and not self.needs_refresh():
                return self._token  # another task renewed it while we waited for the lock
            token = self._token
            if token is not None and stale is None and self._exp is not None and self._exp > self._now():
                self.validations += 1
                try:
                    fresh = await self._validate(token)
                except ProjectXError as exc:
                    logger.warning("ProjectX token validate failed (%s); logging in again", exc)
                    fresh = None
                if fresh:
                    self._set(fresh)
                    return fresh
            self.logins += 1
            fresh = await self._login()
            self._set(fresh)
            return fresh

    def _set(self, token: str) -> None:
        now = self._now()
        exp = jwt_exp(token)
        self._token = token
        self._exp = exp if exp is not None else now + ASSUMED_TTL_S
        self._issued = now
        logger.info("ProjectX token renewed; expires in %.0f s", self._exp - now)
        for cb in list(self._listeners):
            try:
                cb(token)
            except Exception:
                logger.exception("token listener failed")
