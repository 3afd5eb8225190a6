"""Tokens of the local gateway: HS256 JWTs with ``exp``, login with ``userName``/``apiKey``, validate and logout.

Rules (``../shared/specs/projectx-gateway-api.md`` section 2): ``Auth/loginKey`` returns a JWT (three base64url
segments) with an ``exp`` claim; one token serves every REST call and both hubs; logging in again does not
invalidate earlier tokens; ``Auth/validate`` renews a token that has not expired (or expired less than
``validate_grace_s`` ago) and answers errorCode 3 (ExpiredToken) otherwise; ``Auth/logout`` revokes only the presented
token. Every other endpoint answers HTTP 401 to a missing, invalid, revoked or expired token.

The fault injector can expire every token issued so far (:meth:`TokenService.expire_all`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import jwt


class TokenState(Enum):
    """What :meth:`TokenService.check` found."""

    VALID = "valid"
    EXPIRED = "expired"
    REVOKED = "revoked"
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class TokenCheck:
    """The outcome of a check: ``state``, the user name (``sub``) and the expiry (epoch s) when decodable."""

    state: TokenState
    user: str = ""
    exp: float = 0.0


class LoginCode:
    """``Auth/loginKey`` error codes used here (spec section 3.5, Login enum)."""

    SUCCESS = 0
    USER_NOT_FOUND = 1
    INVALID_CREDENTIALS = 3


class TokenService:
    """Issues and checks the gateway's tokens.

    Args:
        secret: HS256 key.
        ttl_s: token lifetime (s), from ``GatewayConfig.token_ttl_s``.
        grace_s: ``validate`` still renews a token this long after expiry (``validate_grace_s``).
        user_name, api_key: the accepted credentials.
        now: wall-clock source in epoch seconds (tests pass a stub).
    """

    def __init__(
        self,
        secret: str,
        *,
        ttl_s: int,
        grace_s: int,
        user_name: str,
        api_key: str,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._secret = secret
        self.ttl_s = ttl_s
        self.grace_s = grace_s
        self._user = user_name
        self._key = api_key
        self._now = now
        self._revoked: set[str] = set()
        self._expired_before = 0.0

    def login(self, user_name: str, api_key: str) -> tuple[int, str | None]:
        """Check the credentials: ``(0, token)`` or ``(errorCode, None)`` (1 UserNotFound, 3 InvalidCredentials)."""
        if user_name != self._user:
            return LoginCode.USER_NOT_FOUND, None
        if api_key != self._key:
            return LoginCode.INVALID_CREDENTIALS, None
        return LoginCode.SUCCESS, self.issue(user_name)

    def issue(self, user: str) -> str:
        """A new token for ``user`` valid for ``ttl_s`` seconds from now."""
        now = self._now()
        claims = {
            "sub": user,
            "name": user,
            "iat": int(now),
            "pd_iat": now,
            "exp": int(now) + self.ttl_s,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def check(self, token: str | None) -> TokenCheck:
        """Decode and classify ``token`` (signature, revocation, expiry and the ``expire_all`` fault)."""
        if not token:
            return TokenCheck(TokenState.INVALID)
        try:
            claims = jwt.decode(token, self._secret, algorithms=["HS256"], options={"verify_exp": False})
        except jwt.PyJWTError:
            return TokenCheck(TokenState.INVALID)
        user = str(claims.get("sub", ""))
        exp = float(claims.get("exp", 0))
        if claims.get("jti") in self._revoked:
            return TokenCheck(TokenState.REVOKED, user, exp)
        if float(claims.get("pd_iat", 0)) < self._expired_before:
            exp = min(exp, self._expired_before)
        if self._now() >= exp:
            return TokenCheck(TokenState.EXPIRED, user, exp)
        return TokenCheck(TokenState.VALID, user, exp)

    def is_valid(self, token: str | None) -> bool:
        """True for a token every endpoint accepts."""
        return self.check(token).state is TokenState.VALID

    def validate(self, token: str | None) -> tuple[int, str | None]:
        """``Auth/validate``: ``(0, new token)``, or ``(3, None)`` expired beyond the grace, ``(2, None)`` revoked
        (SessionNotFound), ``(1, None)`` undecodable (InvalidSession)."""
        c = self.check(token)
        if c.state is TokenState.VALID or (c.state is TokenState.EXPIRED and self._now() < c.exp + self.grace_s):
            return 0, self.issue(c.user)
        if c.state is TokenState.EXPIRED:
            return 3, None
        if c.state is TokenState.REVOKED:
            return 2, None
        return 1, None

    def revoke(self, token: str) -> bool:
        """``Auth/logout``: revoke this token only; False when it cannot be decoded."""
        try:
            claims = jwt.decode(token, self._secret, algorithms=["HS256"], options={"verify_exp": False})
        except jwt.PyJWTError:
            return False
        self._revoked.add(str(claims.get("jti", "")))
        return True

    def expire_all(self) -> None:
        """Fault injection: every token issued before now counts as expired from now on."""
        self._expired_before = self._now()
