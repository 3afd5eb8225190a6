"""Single-use WebSocket tickets: bound to a key and its scopes, consumed once, expire, revoked with the key."""

from __future__ import annotations

import pytest

from propdesk.api.keys import Scope
from propdesk.api.tickets import MAX_OPEN_TICKETS, TicketBook
from tests.unit.api.conftest import FakeClock


def test_ticket_is_consumed_once() -> None:
    book = TicketBook(ttl_s=30, clock=FakeClock())
    ticket = book.issue("abc123abc123", frozenset({Scope.READ}))
    assert len(ticket) >= 43
    grant = book.consume(ticket)
    assert grant is not None and grant.key_id == "abc123abc123" and grant.scopes == {Scope.READ}
    assert book.consume(ticket) is None
    assert book.consume("made-up") is None


def test_ticket_expires() -> None:
    clock = FakeClock()
    book = TicketBook(ttl_s=30, clock=clock)
    late = book.issue("k1", frozenset({Scope.TRADE}))
    clock.now += 30.0
    assert book.consume(late) is None
    assert len(book) == 0


def test_revoking_a_key_drops_its_tickets_and_the_book_is_bounded() -> None:
    book = TicketBook(ttl_s=30, clock=FakeClock())
    mine = book.issue("k1", frozenset({Scope.READ}))
    other = book.issue("k2", frozenset({Scope.READ}))
    assert book.revoke_key("k1") == 1
    assert book.consume(mine) is None and book.consume(other) is not None
    for _ in range(MAX_OPEN_TICKETS + 5):
        book.issue("k3", frozenset({Scope.READ}))
    assert len(book) == MAX_OPEN_TICKETS


def test_ttl_must_be_positive() -> None:
    with pytest.raises(ValueError, match="ttl_s"):
        TicketBook(ttl_s=0)
