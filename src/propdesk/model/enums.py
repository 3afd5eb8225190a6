"""Enumerations shared across propdesk: order side, aggressor side, book side and depth actions."""

from __future__ import annotations

from enum import IntEnum


class Side(IntEnum):
    """The side of an order or fill: BUY (+1) or SELL (-1). ``int(side)`` is the sign of the position change."""

    BUY = 1
    SELL = -1

    @property
    def opposite(self) -> Side:
        """The other side (the side that closes a position opened on this one)."""
        return Side.SELL if self is Side.BUY else Side.BUY


class AggressorSide(IntEnum):
    """Which side of a trade took liquidity. NONE when the venue does not say (auctions, some vendor files)."""

    NONE = 0
    BUYER = 1
    SELLER = 2


class BookSide(IntEnum):
    """The side of the order book a depth entry rests on."""

    BID = 1
    ASK = 2


class BookAction(IntEnum):
    """What a depth update does to the book.

    ADD and UPDATE set the size at a price (or of an order, for L3), DELETE removes it, CLEAR empties the side (or
    the whole book when the update's side is ``None``). Values follow Databento's action letters A/M/C/R.
    """

    ADD = 1
    UPDATE = 2
    DELETE = 3
    CLEAR = 4
