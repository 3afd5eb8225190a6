"""Round trips from fills: the closed ones and the ones still open.

A round trip (a "trade" in backtest reports) runs from the fill that takes a position away from flat to the fill
that brings it back to flat, per strategy tag and contract. A fill that reverses the position (long 2, sell 5)
closes the round trip with its first 2 contracts and opens the next with the other 3; its fee is split between the
two in proportion to the contracts, to the cent (the remainder cent goes to the closing part), so fees add up.

A fill no strategy placed (``manual``, or ``risk:<RULE>`` from the risk engine's flatten) is attributed as the
position manager attributes it (:func:`propdesk.model.positions.attribute_fill`): the part that reduces the
account's position closes the strategies' round trips (the ``manual`` one first, then the most recently traded), the
rest opens a round trip of its own tag. Its fee is split over the parts in proportion to the contracts. So a round
trip the risk engine closed at the flat time ends there, in the strategy's name.

PnL is exact: a round trip's gross PnL is the sum over its fills of ``-signed_qty x price_ticks x tick_value``,
which for a round trip that ends flat equals the FIFO realized PnL the position manager books
(:mod:`propdesk.model.positions`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from propdesk.model.contracts import ContractSpec
from propdesk.model.enums import Side
from propdesk.model.events import OrderFilled
from propdesk.model.orders import is_foreign_tag
from propdesk.model.positions import attribute_fill
from propdesk.model.price import Money, Price

__all__ = ["OpenRoundTrip", "RoundTrip", "RoundTripBuilder", "round_trips"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RoundTrip:
    """One closed round trip.

    Attributes:
        symbol: the contract.
        tag: the strategy tag.
        direction: +1 long, -1 short.
        qty: the largest absolute position held (contracts).
        entry_ts_ns / exit_ts_ns: time of the first and of the last fill (UTC ns).
        entry_price / exit_price: quantity-weighted average price of the opening and of the closing fills (exact to
            1e-9 point; may lie between ticks).
        gross_pnl: PnL before fees (USD, exact); fees: fees of its fills (USD); net_pnl = gross - fees.
        fills: how many fills (or parts of fills) it took.
    """

    symbol: str
    tag: str
    direction: int
    qty: int
    entry_ts_ns: int
    exit_ts_ns: int
    entry_price: Price
    exit_price: Price
    gross_pnl: Money
    fees: Money
    fills: int

    @property
    def net_pnl(self) -> Money:
        """Gross PnL less fees (USD)."""
        return self.gross_pnl - self.fees


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenRoundTrip:
    """A round trip not closed yet (the position is not back to flat).

    Attributes:
        symbol: the contract. tag: the strategy tag. direction: +1 long, -1 short.
        qty: the signed position now (contracts). max_qty: the largest absolute position held so far.
        entry_ts_ns / last_ts_ns: time of its first and of its latest fill (UTC ns).
        entry_price: quantity-weighted average price of the opening fills (exact to 1e-9 point).
        fees: fees of its fills so far (USD). fills: how many fills (or parts of fills) it took so far.
    """

    symbol: str
    tag: str
    direction: int
    qty: int
    max_qty: int
    entry_ts_ns: int
    last_ts_ns: int
    entry_price: Price
    fees: Money
    fills: int


@dataclass(slots=True)
class _Open:
    direction: int
    pos: int = 0
    max_abs: int = 0
    entry_ts_ns: int = 0
    entry_notional_raw: int = 0
    entry_qty: int = 0
    exit_notional_raw: int = 0
    exit_qty: int = 0
    cash_ticks: int = 0
    fee_cents: int = 0
    fills: int = 0
    last_ts_ns: int = 0


@dataclass(slots=True)
class RoundTripBuilder:
    """Builds :class:`RoundTrip` records from a stream of fills (``OrderFilled``), per (tag, symbol).

    Args:
        spec_of: the contract specification of a symbol (tick size and tick value).

    Raises:
        InvalidPriceError: from :meth:`add` when a fill price is off the contract's tick grid.
    """

    spec_of: Callable[[str], ContractSpec]
    closed: list[RoundTrip] = field(default_factory=list)
    _open: dict[tuple[str, str], _Open] = field(default_factory=dict)

    def add(self, fill: OrderFilled) -> RoundTrip | None:
        """Apply one fill (a foreign one split as the module docstring says); returns the (last) round trip it
        closed, if any."""
        if not is_foreign_tag(fill.tag):
            return self._add(fill)
        symbol = fill.symbol
        held = [(t, trip.pos, trip.last_ts_ns) for (t, sym), trip in self._open.items() if sym == symbol and trip.pos]
        held.sort(key=lambda h: (-h[2], h[0]))
        parts = attribute_fill(fill.tag, fill.signed_qty, sum(h[1] for h in held), held)
        if len(parts) == 1 and parts[0][0] == fill.tag:
            return self._add(fill)
        done: RoundTrip | None = None
        fee_left = fill.fee.cents
        for i, (tag, part) in enumerate(parts):
            share = fee_left if i == len(parts) - 1 else fill.fee.cents * abs(part) // fill.qty
            fee_left -= share
            side = Side.BUY if part > 0 else Side.SELL
            closed = self._add(replace(fill, tag=tag, qty=abs(part), side=side, fee=Money(share)))
            done = closed or done
        return done

    def _add(self, fill: OrderFilled) -> RoundTrip | None:
        key = (fill.tag, fill.symbol)
        spec = self.spec_of(fill.symbol)
        ticks = fill.price.ticks(spec.tick_size)
        signed = fill.signed_qty
        trip = self._open.get(key)
        done: RoundTrip | None = None
        if trip is None:
            trip = self._open[key] = _Open(direction=1 if signed > 0 else -1, entry_ts_ns=fill.ts_event_ns)
        remaining = signed
        fee_left = fill.fee.cents
        while remaining:
            if trip.pos == 0 or (trip.pos > 0) == (remaining > 0):
                # opening or adding: all of the rest goes into this trip
                self._part(trip, remaining, fill, ticks, fee_left, opening=True)
                remaining = 0
            else:
                closing = -trip.pos if abs(remaining) > abs(trip.pos) else remaining
                if closing == remaining:
                    share = fee_left
                else:  # a reversal: the closing part's share, rounded up to the cent
                    share = min(fee_left, -(-fill.fee.cents * abs(closing) // abs(signed)))
                self._part(trip, closing, fill, ticks, share, opening=False)
                fee_left -= share
                remaining -= closing
                if trip.pos == 0:
                    done = self._close(key, trip, spec)
                    if remaining:
                        trip = self._open[key] = _Open(
                            direction=1 if remaining > 0 else -1, entry_ts_ns=fill.ts_event_ns
                        )
        return done

    @staticmethod
    def _part(trip: _Open, qty: int, fill: OrderFilled, ticks: int, fee_cents: int, *, opening: bool) -> None:
        trip.pos += qty
        trip.max_abs = max(trip.max_abs, abs(trip.pos))
        trip.cash_ticks -= qty * ticks
        trip.fee_cents += fee_cents
        trip.fills += 1
        trip.last_ts_ns = fill.ts_event_ns
        if opening:
            trip.entry_notional_raw += abs(qty) * fill.price.raw
            trip.entry_qty += abs(qty)
        else:
            trip.exit_notional_raw += abs(qty) * fill.price.raw
            trip.exit_qty += abs(qty)

    def _close(self, key: tuple[str, str], trip: _Open, spec: ContractSpec) -> RoundTrip:
        del self._open[key]
        rt = RoundTrip(
            symbol=key[1],
            tag=key[0],
            direction=trip.direction,
            qty=trip.max_abs,
            entry_ts_ns=trip.entry_ts_ns,
            exit_ts_ns=trip.last_ts_ns,
            entry_price=Price(trip.entry_notional_raw // trip.entry_qty),
            exit_price=Price(trip.exit_notional_raw // trip.exit_qty),
            gross_pnl=spec.tick_value * trip.cash_ticks,
            fees=Money(trip.fee_cents),
            fills=trip.fills,
        )
        self.closed.append(rt)
        return rt

    def open_qty(self) -> dict[tuple[str, str], int]:
        """Signed open quantity of every round trip not yet closed, by (tag, symbol)."""
        return {k: t.pos for k, t in self._open.items() if t.pos}

    def open_trips(self) -> list[OpenRoundTrip]:
        """The round trips not yet closed, in the order they opened."""
        return [
            OpenRoundTrip(
                symbol=symbol,
                tag=tag,
                direction=t.direction,
                qty=t.pos,
                max_qty=t.max_abs,
                entry_ts_ns=t.entry_ts_ns,
                last_ts_ns=t.last_ts_ns,
                entry_price=Price(t.entry_notional_raw // t.entry_qty),
                fees=Money(t.fee_cents),
                fills=t.fills,
            )
            for (tag, symbol), t in self._open.items()
            if t.pos
        ]


def round_trips(fills: Iterable[OrderFilled], spec_of: Callable[[str], ContractSpec]) -> list[RoundTrip]:
    """The closed round trips of ``fills`` (in order)."""
    builder = RoundTripBuilder(spec_of)
    for fill in fills:
        builder.add(fill)
    return builder.closed
