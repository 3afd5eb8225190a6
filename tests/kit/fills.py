"""Fills for tests of round trips and what is built on them (metrics, the desk's round trips)."""

from __future__ import annotations

from propdesk.model.contracts import ContractSpec, spec
from propdesk.model.enums import Side
from propdesk.model.events import OrderFilled
from propdesk.model.identifiers import AccountId, ClientOrderId
from propdesk.model.price import Money, Price


def spec_of(symbol: str) -> ContractSpec:
    """The contract spec of a two-character-suffixed symbol (``ESZ5`` -> ES)."""
    return spec(symbol[:-2])


def fill(
    side: Side, qty: int, price: str, ts: int, fee: str = "0", tag: str = "s", symbol: str = "ESZ5"
) -> OrderFilled:
    """A fill of account 1 (client order ``c<ts>``, trade ``t<ts>``; price in points, fee in USD, ``ts`` UTC ns)."""
    return OrderFilled(
        client_order_id=ClientOrderId(f"c{ts}"),
        account_id=AccountId(1),
        ts_event_ns=ts,
        symbol=symbol,
        side=side,
        qty=qty,
        price=Price.of(price),
        fee=Money.of(fee),
        trade_id=f"t{ts}",
        tag=tag,
    )
