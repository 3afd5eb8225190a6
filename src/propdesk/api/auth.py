"""Who is calling, and may they: the FastAPI dependencies that authenticate a request by API key and require a scope.

A route declares what it needs with :func:`require`::

    @router.get("/accounts", dependencies=[Depends(require(Scope.READ))])
    @router.post("/accounts/{id}/flatten")
    async def flatten(principal: Annotated[Principal, Depends(require(Scope.TRADE))]) -> ...

after the app was given an :class:`Authenticator` with :func:`install_auth`. For every request the dependency

1. refuses a client address whose failed authentications emptied its bucket (``RATE_LIMITED``), then reads the
   key from ``Authorization: Bearer <key>`` or ``X-API-Key: <key>`` (never from the URL; both headers
   with different keys are refused) and verifies it (:meth:`~propdesk.api.keys.ApiKeyStore.verify`, constant-time):
   missing, malformed, unknown, revoked or wrong keys all get ``UNAUTHORIZED`` (401, ``WWW-Authenticate: Bearer``)
   with the same sentence;
2. takes a token from the key's bucket (:mod:`propdesk.api.ratelimit`): empty -> ``RATE_LIMITED`` (429,
   ``Retry-After`` in whole seconds);
3. requires the scope: the route's, raised to ``trade`` for any mutating method (anything but GET, HEAD, OPTIONS);
   missing -> ``FORBIDDEN`` (403);
4. for ``trade`` or ``admin`` from a client that is not on the loopback interface, requires the key's
   ``allow_trade_remote``: prop firms require trades to originate from the trader's own machine, so a remote client
   is read-only unless the key was explicitly granted remote trading -> ``FORBIDDEN`` (403).

The client address is the TCP peer (``request.client``); ``X-Forwarded-For`` is never trusted, so behind a reverse
proxy every client counts as the proxy's address. A WebSocket hello carries a single-use ticket instead of the key
(:meth:`Authenticator.issue_ticket`, :meth:`Authenticator.redeem_ticket`). A key's ``last_used_ns`` is written at
most once per ``touch_interval_ns`` (default 60 s) per key, not on every request.
"""

from __future__ import annotations

import hmac
import ipaddress
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from fastapi import FastAPI, Request

from propdesk.api.keys import ApiKey, ApiKeyStore, Scope
from propdesk.api.problems import ApiProblem, ProblemCode
from propdesk.api.ratelimit import RateLimiter
from propdesk.api.tickets import TicketBook

__all__ = [
    "SAFE_METHODS",
    "Authenticator",
    "Principal",
    "authenticator_of",
    "install_auth",
    "is_loopback",
    "presented_key",
    "require",
]

SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
"""Methods that change nothing; every other method needs ``trade`` or ``admin``."""

_UNAUTHORIZED_DETAIL: Final = "a valid API key is required (Authorization: Bearer <key> or X-API-Key: <key>)"
_STATE_ATTR: Final = "propdesk_authenticator"


def is_loopback(host: str | None) -> bool:
    """True when ``host`` (a client address) is on the loopback interface (``127.0.0.0/8``, ``::1``); a name or
    ``None`` (unknown peer) is not."""
    if not host:
        return False
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def presented_key(request: Request) -> str | None:
    """The key the request presents, or ``None`` (absent, or two different keys in the two headers)."""
    auth = request.headers.get("authorization", "")
    bearer = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    header = request.headers.get("x-api-key", "").strip()
    if bearer and header and not hmac.compare_digest(bearer.encode(), header.encode()):
        return None
    return bearer or header or None


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: its key and whether it connects from the loopback interface."""

    key: ApiKey
    loopback: bool

    def may(self, scope: Scope) -> bool:
        """True when the key grants ``scope`` here (``trade``/``admin`` from a remote client need
        ``allow_trade_remote``)."""
        if not self.key.has(scope):
            return False
        return scope is Scope.READ or self.loopback or self.key.allow_trade_remote


class Authenticator:
    """Authenticates requests against an :class:`~propdesk.api.keys.ApiKeyStore` and rate-limits each key.

    Args:
        store: the keys. limiter: the buckets (a new :class:`RateLimiter` by default).
        tickets: the WebSocket tickets (a new :class:`~propdesk.api.tickets.TicketBook` by default).
        clock_ns: UTC ns for ``last_used_ns`` (default :func:`time.time_ns`).
        touch_interval_ns: the least time between two ``last_used_ns`` writes of one key (UTC ns).
        failures_per_minute / failure_burst: the bucket of failed authentications per client address; once it is
            empty the client gets ``RATE_LIMITED`` before any key lookup (guessing keys costs the server nothing).
    """

    def __init__(
        self,
        store: ApiKeyStore,
        limiter: RateLimiter | None = None,
        tickets: TicketBook | None = None,
        *,
        clock_ns: Callable[[], int] = time.time_ns,
        touch_interval_ns: int = 60_000_000_000,
        failures_per_minute: int = 30,
        failure_burst: int = 10,
    ) -> None:
        self.store = store
        self.limiter = limiter if limiter is not None else RateLimiter()
        self.tickets = tickets if tickets is not None else TicketBook()
        self._clock_ns = clock_ns
        self._touch_interval_ns = touch_interval_ns
        self._touched: dict[str, int] = {}
        self._failures_per_minute = failures_per_minute
        self._failure_burst = failure_burst

    async def authenticate(self, request: Request, scope: Scope = Scope.READ, *, safe: bool = False) -> Principal:
        """The caller of ``request``, checked for ``scope`` (raised to ``trade`` for a mutating method unless
        ``safe``: a POST that changes no trading state, such as issuing a WebSocket ticket).

        Raises:
            ApiProblem: ``UNAUTHORIZED``, ``RATE_LIMITED`` or ``FORBIDDEN`` (module docstring, steps 1-4).
        """
        client_host = request.client.host if request.client else None
        failures = f"auth-failures:{client_host}"
        blocked_s = self.limiter.wait(failures)
        if blocked_s > 0:
            raise ApiProblem.of(
                ProblemCode.RATE_LIMITED,
                "too many failed authentications from this client",
                headers={"Retry-After": str(max(1, math.ceil(blocked_s)))},
            )
        presented = presented_key(request)
        key = await self.store.verify(presented) if presented else None
        if key is None:
            self.limiter.check(failures, rate_per_minute=self._failures_per_minute, burst=self._failure_burst)
            raise ApiProblem.of(
                ProblemCode.UNAUTHORIZED, _UNAUTHORIZED_DETAIL, headers={"WWW-Authenticate": 'Bearer realm="propdesk"'}
            )
        wait_s = self.limiter.check(key.key_id, rate_per_minute=key.rate_per_minute, burst=key.burst)
        if wait_s > 0:
            raise ApiProblem.of(
                ProblemCode.RATE_LIMITED,
                f"key {key.key_id} is over its limit of {key.rate_per_minute} requests per minute",
                headers={"Retry-After": str(max(1, math.ceil(wait_s)))},
            )
        await self._touch(key.key_id)
        principal = Principal(key=key, loopback=is_loopback(client_host))
        mutating = request.method.upper() not in SAFE_METHODS and not safe
        needed = Scope.TRADE if mutating and scope is Scope.READ else scope
        if not principal.key.has(needed):
            raise ApiProblem.of(ProblemCode.FORBIDDEN, f"key {key.key_id} lacks the {needed.value!r} scope")
        if not principal.may(needed):
            raise ApiProblem.of(
                ProblemCode.FORBIDDEN,
                f"key {key.key_id} may not {needed.value} from a non-loopback client (trades originate from the "
                "trader's own machine; grant the key allow_trade_remote to allow it)",
            )
        return principal

    def issue_ticket(self, principal: Principal) -> str:
        """A single-use WebSocket ticket for ``principal``'s key and scopes (:mod:`propdesk.api.tickets`)."""
        return self.tickets.issue(principal.key.key_id, principal.key.scopes)

    async def redeem_ticket(self, ticket: str, client_host: str | None) -> Principal | None:
        """The :class:`Principal` a WebSocket hello's ticket grants, once; ``None`` for an unknown, used or expired
        ticket, or one whose key was revoked (or changed scopes) since it was issued."""
        grant = self.tickets.consume(ticket)
        if grant is None:
            return None
        key = await self.store.get(grant.key_id)
        if key is None or key.revoked or key.scopes != grant.scopes:
            return None
        return Principal(key=key, loopback=is_loopback(client_host))

    async def _touch(self, key_id: str) -> None:
        now = self._clock_ns()
        last = self._touched.get(key_id)
        if last is None or now - last >= self._touch_interval_ns:
            self._touched[key_id] = now
            await self.store.touch(key_id, now_ns=now)


def install_auth(app: FastAPI, authenticator: Authenticator) -> None:
    """Give ``app`` the authenticator :func:`require` uses."""
    setattr(app.state, _STATE_ATTR, authenticator)


def authenticator_of(app: object) -> Authenticator:
    """The authenticator :func:`install_auth` gave ``app`` (a FastAPI or Starlette app).

    Raises:
        RuntimeError: none was installed (a wiring error).
    """
    authenticator = getattr(getattr(app, "state", None), _STATE_ATTR, None)
    if not isinstance(authenticator, Authenticator):
        raise RuntimeError("propdesk.api.auth.install_auth was not called on this app")
    return authenticator


def require(scope: Scope = Scope.READ, *, safe: bool = False) -> Callable[[Request], Awaitable[Principal]]:
    """A FastAPI dependency: the request's :class:`Principal`, with ``scope`` (module docstring; ``safe``: the route
    changes no trading state, so a POST needs only ``scope``).

    Raises (from the dependency):
        ApiProblem: as :meth:`Authenticator.authenticate`.
        RuntimeError: the app has no authenticator (:func:`install_auth` was not called): a wiring error.
    """

    async def dependency(request: Request) -> Principal:
        return await authenticator_of(request.app).authenticate(request, scope, safe=safe)

    return dependency
