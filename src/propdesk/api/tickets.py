"""Single-use WebSocket tickets: how a client opens ``/api/v1/ws`` without putting its API key in a URL.

``POST /api/v1/auth/ws-ticket`` (authenticated by key) gets a ticket: 32 random bytes in URL-safe base64, valid for
``ttl_s`` seconds (default 30), bound to the key id and its scopes at issue time. The WebSocket hello presents it;
:meth:`TicketBook.consume` returns the binding once and forgets the ticket, so a ticket seen in a log or a proxy
cannot be replayed. Tickets live in memory only (a restart voids them: the client asks for a new one). The lookup is
by the SHA-256 of the ticket, so the book itself holds no usable ticket and a dict lookup compares digests, not the
secret.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from propdesk.api.keys import Scope

__all__ = ["DEFAULT_TICKET_TTL_S", "MAX_OPEN_TICKETS", "Ticket", "TicketBook"]

DEFAULT_TICKET_TTL_S: Final = 30.0
"""How long a ticket is valid, seconds."""
MAX_OPEN_TICKETS: Final = 10_000
"""Tickets kept at most; past this the oldest are dropped (a client flooding the endpoint cannot exhaust memory)."""


@dataclass(frozen=True, slots=True)
class Ticket:
    """What a consumed ticket grants: the key it was issued to, that key's scopes, and its expiry (monotonic s)."""

    key_id: str
    scopes: frozenset[Scope]
    expires_s: float


class TicketBook:
    """Issues and consumes single-use tickets.

    Args:
        ttl_s: validity in seconds (> 0). clock: monotonic seconds (default :func:`time.monotonic`).

    Raises:
        ValueError: a ``ttl_s`` that is not positive.
    """

    def __init__(self, ttl_s: float = DEFAULT_TICKET_TTL_S, clock: Callable[[], float] = time.monotonic) -> None:
        if not ttl_s > 0:
            raise ValueError(f"a ticket's ttl_s must be positive, not {ttl_s}")
        self._ttl_s = ttl_s
        self._clock = clock
        self._open: dict[str, Ticket] = {}

    @property
    def ttl_s(self) -> float:
        """How long a ticket is valid, seconds."""
        return self._ttl_s

    def issue(self, key_id: str, scopes: frozenset[Scope]) -> str:
        """A new ticket for ``key_id`` with ``scopes`` (the string to give the client once)."""
        now = self._clock()
        self._expire(now)
        while len(self._open) >= MAX_OPEN_TICKETS:
            self._open.pop(next(iter(self._open)))
        ticket = secrets.token_urlsafe(32)
        self._open[_digest(ticket)] = Ticket(key_id=key_id, scopes=scopes, expires_s=now + self._ttl_s)
        return ticket

    def consume(self, ticket: str) -> Ticket | None:
        """The grant of ``ticket``, once; ``None`` for an unknown, used or expired ticket."""
        now = self._clock()
        grant = self._open.pop(_digest(ticket), None)
        self._expire(now)
        if grant is None or grant.expires_s <= now:
            return None
        return grant

    def revoke_key(self, key_id: str) -> int:
        """Drop every open ticket of ``key_id`` (a revoked key); returns how many."""
        gone = [d for d, t in self._open.items() if t.key_id == key_id]
        for d in gone:
            del self._open[d]
        return len(gone)

    def __len__(self) -> int:
        return len(self._open)

    def _expire(self, now: float) -> None:
        # Insertion order is expiry order (one ttl), so expired tickets are at the front.
        while self._open:
            first = next(iter(self._open))
            if self._open[first].expires_s > now:
                break
            del self._open[first]


def _digest(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()
