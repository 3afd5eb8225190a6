"""Positions: the net holding in one contract, with exact FIFO realized PnL, and the position events.

A :class:`Position` is the one mutable record of a net position in one contract (symbol) of one account (or, for
per-strategy attribution, of one strategy tag in that account). It changes only through :meth:`Position.apply_fill`.

Money is exact (ARCHITECTURE.md principle 5). Every fill price must lie on the contract's tick grid; the position
keeps its open lots as whole ticks, and realized PnL is matched **first in, first out**: each closed part of a lot
realizes ``(exit_ticks - entry_ticks) x qty x sign x tick_value`` -- whole ticks times the tick value, so exact
cents. FIFO is how CME clearing statements pair fills (and how ProjectX reports ``profitAndLoss`` per closing
fill). The total realized over a round trip that ends flat equals average-cost accounting (both equal
``sum over fills of -signed_qty x price_ticks x tick_value``); only the split of that total between intermediate
closing fills differs between the two methods.

The average price is exact to 1e-9 point (:class:`~propdesk.model.price.Price`; rounded half-even at the ninth
decimal) and may lie between ticks: long 1 at 6543.25 and 1 at 6543.50 averages 6543.375.

Events (past tense, ARCHITECTURE.md "Naming") carry a frozen :class:`PositionSnapshot`; topics are
``events.position.opened``, ``events.position.changed`` and ``events.position.closed``.

**Per-strategy attribution.** :func:`attribute_fill` says which strategy's position each contract of a fill changes:
a strategy's own fill is its own; a foreign fill (``manual``, ``risk:<RULE>``) first closes what the strategies hold.
Each change of a strategy's position is a :class:`StrategyPositionChange` with its :class:`PositionCause` (OWN_FILL,
BRACKET_CHILD, RISK_FLATTEN, MANUAL, RECONCILE), on ``events.strategy.position.<cause>``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

from propdesk.core import topics
from propdesk.core.errors import InvalidPriceError, InvalidQuantityError
from propdesk.model._fastinit import fast_frozen_init
from propdesk.model.identifiers import AccountId
from propdesk.model.orders import MANUAL_TAG, is_enforcement_tag, is_foreign_tag
from propdesk.model.price import Money, Price

if TYPE_CHECKING:
    from propdesk.model.events import OrderFilled

__all__ = [
    "POSITION_CHANGE",
    "POSITION_CODE",
    "POSITION_TOPICS",
    "STRATEGY_POSITION_TOPICS",
    "Position",
    "PositionCause",
    "PositionChanged",
    "PositionClosed",
    "PositionEvent",
    "PositionOpened",
    "PositionSnapshot",
    "StrategyPositionChange",
    "attribute_fill",
    "avg_price_raw_of",
    "fill_cause",
    "position_change_record",
]


def _div_round_half_even(num: int, den: int) -> int:
    """``num / den`` rounded half to even (``den > 0``)."""
    q, r = divmod(num, den)
    twice = 2 * r
    if twice > den or (twice == den and q % 2 == 1):
        q += 1
    return q


@fast_frozen_init
@dataclass(frozen=True, slots=True, kw_only=True)
class PositionSnapshot:
    """A frozen copy of a :class:`Position` at one moment.

    Attributes:
        symbol: the contract (``ESZ5``).
        account_id: the broker account.
        tag: the strategy tag for a per-strategy position (``manual`` for trades placed by hand); ``None`` for the
            account-level (authoritative) position.
        signed_qty: contracts, positive long, negative short, 0 flat.
        avg_price: the average entry price of the open contracts (exact, may lie between ticks); ``None`` when flat.
        realized_pnl: realized PnL gross of fees, USD, accumulated since the position record was created.
        fees: fees of every fill applied (opening and closing), USD.
        unrealized_pnl: open PnL at the mark when the snapshot was taken, USD; ``None`` when flat or unmarked.
        opened_ts_ns: when the current (or, once flat, the last) position was opened, UTC ns; 0 if never.
        last_ts_ns: the time of the last fill applied, UTC ns; 0 if none.
        fill_count: fills applied.
    """

    symbol: str
    account_id: AccountId
    tag: str | None
    signed_qty: int
    avg_price: Price | None
    realized_pnl: Money
    fees: Money
    unrealized_pnl: Money | None
    opened_ts_ns: int
    last_ts_ns: int
    fill_count: int

    @property
    def realized_net(self) -> Money:
        """Realized PnL net of fees, USD."""
        return self.realized_pnl - self.fees

    @property
    def is_flat(self) -> bool:
        """True when no contracts are held."""
        return self.signed_qty == 0


class Position:
    """The net position in one contract, with FIFO lots in whole ticks (see the module docstring).

    Args:
        symbol: the contract (``ESZ5``).
        account_id: the broker account.
        tick_size: the contract's tick size (points, > 0).
        tick_value: USD per tick per contract.
        tag: the strategy tag for a per-strategy position, ``None`` for the account-level position.

    Raises:
        InvalidPriceError: at construction when ``tick_size`` is not positive.
    """

    __slots__ = (
        "_fees_cents",
        "_lots",
        "_open_ticks",
        "_realized_cents",
        "_tick_raw",
        "_tv_cents",
        "account_id",
        "fill_count",
        "last_ts_ns",
        "opened_ts_ns",
        "signed_qty",
        "symbol",
        "tag",
        "tick_size",
        "tick_value",
    )

    def __init__(
        self, symbol: str, account_id: AccountId, tick_size: Price, tick_value: Money, tag: str | None = None
    ) -> None:
        if tick_size.raw <= 0:
            raise InvalidPriceError(f"{symbol}: tick size {tick_size} must be positive")
        self.symbol = symbol
        self.account_id = account_id
        self.tick_size = tick_size
        self.tick_value = tick_value
        self.tag = tag
        self.signed_qty = 0
        self.opened_ts_ns = 0
        self.last_ts_ns = 0
        self.fill_count = 0
        self._tick_raw = tick_size.raw
        self._tv_cents = tick_value.cents
        self._lots: deque[list[int]] = deque()  # [qty > 0, price in ticks], oldest first
        self._open_ticks = 0  # sum of qty x price_ticks over the open lots
        self._realized_cents = 0
        self._fees_cents = 0

    # ------------------------------------------------------------------ state

    @property
    def realized_pnl(self) -> Money:
        """Realized PnL gross of fees, USD (exact, whole ticks x tick value)."""
        return Money(self._realized_cents)

    @property
    def fees(self) -> Money:
        """Fees of every fill applied, USD."""
        return Money(self._fees_cents)

    @property
    def realized_net(self) -> Money:
        """Realized PnL net of fees, USD."""
        return Money(self._realized_cents - self._fees_cents)

    @property
    def realized_cents(self) -> int:
        """:attr:`realized_pnl` in cents (an int, for hot paths)."""
        return self._realized_cents

    @property
    def fees_cents(self) -> int:
        """:attr:`fees` in cents (an int, for hot paths)."""
        return self._fees_cents

    @property
    def is_flat(self) -> bool:
        """True when no contracts are held."""
        return self.signed_qty == 0

    @property
    def is_long(self) -> bool:
        """True when long (``signed_qty > 0``)."""
        return self.signed_qty > 0

    @property
    def is_short(self) -> bool:
        """True when short (``signed_qty < 0``)."""
        return self.signed_qty < 0

    @property
    def avg_price(self) -> Price | None:
        """The average entry price of the open contracts (exact to 1e-9 point, half-even); ``None`` when flat."""
        raw = avg_price_raw_of(self._open_ticks, self._tick_raw, self.signed_qty)
        return None if raw is None else Price(raw)

    @property
    def avg_price_raw(self) -> int | None:
        """:attr:`avg_price` as its fixed-point ``raw`` int (1e-9 point), ``None`` when flat (for hot paths)."""
        return avg_price_raw_of(self._open_ticks, self._tick_raw, self.signed_qty)

    def lots(self) -> list[tuple[int, Price]]:
        """The open lots, oldest first, as ``(qty contracts > 0, entry price)``; empty when flat."""
        return [(q, Price.from_ticks(t, self.tick_size)) for q, t in self._lots]

    # ------------------------------------------------------------------ PnL

    def unrealized_cents(self, mark_ticks: int) -> int:
        """Open PnL in cents at a mark of ``mark_ticks`` (the mark price in whole ticks); 0 when flat. O(1)."""
        q = self.signed_qty
        if q > 0:
            return (mark_ticks * q - self._open_ticks) * self._tv_cents
        if q < 0:
            return (self._open_ticks + mark_ticks * q) * self._tv_cents
        return 0

    def unrealized_pnl(self, mark: Price) -> Money:
        """Open PnL in USD if the position were closed at ``mark``: whole ticks x tick value.

        Raises:
            InvalidPriceError: ``mark`` is off the tick grid.
        """
        return Money(self.unrealized_cents(self._ticks_of(mark)))

    def _ticks_of(self, price: Price) -> int:
        q, r = divmod(price.raw, self._tick_raw)
        if r:
            raise InvalidPriceError(f"{self.symbol}: price {price} is not a multiple of the tick size {self.tick_size}")
        return q

    # ------------------------------------------------------------------ fills

    def apply_fill(self, signed_qty: int, price: Price, fee: Money, ts_ns: int) -> Money:
        """Apply one execution of ``signed_qty`` contracts (+ buy, - sell) at ``price``, charging ``fee``.

        Closing quantity is matched against the open lots first in, first out; a fill larger than the position
        reverses it (long 2, sell 5: 2 close, then short 3 at ``price``). Nothing changes when it raises.

        Returns:
            The realized PnL of this fill, gross of ``fee`` (USD; zero for an opening fill).

        Raises:
            InvalidQuantityError: ``signed_qty`` is zero or not an int.
            InvalidPriceError: ``price`` is off the tick grid.
        """
        if (type(signed_qty) is not int and (isinstance(signed_qty, bool) or not isinstance(signed_qty, int))) or (
            signed_qty == 0
        ):
            raise InvalidQuantityError(f"{self.symbol}: fill quantity {signed_qty!r} must be a non-zero int")
        ticks, off_grid = divmod(price.raw, self._tick_raw)  # _ticks_of, inlined (three positions per fill)
        if off_grid:
            self._ticks_of(price)  # raises InvalidPriceError
        self._fees_cents += fee.cents
        self.fill_count += 1
        self.last_ts_ns = ts_ns
        pos = self.signed_qty
        realized_ticks = 0  # sum of (exit - entry) x qty, signed by the closed side
        remaining = abs(signed_qty)
        if pos and (pos > 0) != (signed_qty > 0):
            sign = 1 if pos > 0 else -1
            lots = self._lots
            while remaining and lots:
                lot = lots[0]
                take = lot[0] if lot[0] <= remaining else remaining
                realized_ticks += (ticks - lot[1]) * take * sign
                self._open_ticks -= lot[1] * take
                remaining -= take
                if take == lot[0]:
                    lots.popleft()
                else:
                    lot[0] -= take
            closed = abs(signed_qty) - remaining
            pos += closed if signed_qty > 0 else -closed
        if remaining:
            if pos == 0:
                self.opened_ts_ns = ts_ns
            self._lots.append([remaining, ticks])
            self._open_ticks += remaining * ticks
            pos += remaining if signed_qty > 0 else -remaining
        self.signed_qty = pos
        cents = realized_ticks * self._tv_cents
        self._realized_cents += cents
        return Money(cents)

    def snapshot(self, unrealized: Money | None = None) -> PositionSnapshot:
        """A frozen copy of the position; ``unrealized`` is the open PnL at the caller's mark (``None``: unknown)."""
        return PositionSnapshot(
            symbol=self.symbol,
            account_id=self.account_id,
            tag=self.tag,
            signed_qty=self.signed_qty,
            avg_price=self.avg_price,
            realized_pnl=Money(self._realized_cents),
            fees=Money(self._fees_cents),
            unrealized_pnl=None if self.signed_qty == 0 else unrealized,
            opened_ts_ns=self.opened_ts_ns,
            last_ts_ns=self.last_ts_ns,
            fill_count=self.fill_count,
        )

    def __repr__(self) -> str:
        tag = "" if self.tag is None else f", tag={self.tag!r}"
        return (
            f"Position({self.symbol}, account={self.account_id}{tag}, qty={self.signed_qty}, avg={self.avg_price}, "
            f"realized={self.realized_pnl}, fees={self.fees})"
        )


# --- events -----------------------------------------------------------------------------------------------------


def avg_price_raw_of(open_ticks: int, tick_raw: int, signed_qty: int) -> int | None:
    """The average entry price (fixed-point ``raw``, 1e-9 point, half-even) of ``|signed_qty|`` open contracts whose
    lot prices sum to ``open_ticks`` ticks of ``tick_raw``; ``None`` when flat (:attr:`Position.avg_price_raw`)."""
    qty = abs(signed_qty)
    if not qty:
        return None
    return _div_round_half_even(open_ticks * tick_raw, qty)


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionEvent:
    """Base of the position events: what one fill did to the account-level position in one contract.

    Attributes:
        position: the position after the fill (for a reversal, :class:`PositionClosed` shows it flat and the
            following :class:`PositionOpened` shows the new side).
        trade_id: the broker's execution id of the fill.
        tag: the strategy tag of the fill (``manual`` for trades placed by hand).
        fill_signed_qty: the part of the fill this event covers, contracts (+ buy, - sell).
        fill_price: the fill price.
        fill_fee: the fee charged to this part of the fill, USD.
        fill_realized_pnl: realized PnL of this part of the fill, gross of fees, USD.
        ts_event_ns: the fill time, UTC ns.
        reconciled: True when the fill was synthesized by reconciliation.
    """

    position: PositionSnapshot
    trade_id: str
    tag: str
    fill_signed_qty: int
    fill_price: Price
    fill_fee: Money
    fill_realized_pnl: Money
    ts_event_ns: int
    reconciled: bool = False

    @property
    def topic(self) -> str:
        """The bus topic: ``events.position.<opened|changed|closed>``."""
        return POSITION_TOPICS[type(self)]


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionOpened(PositionEvent):
    """A flat contract became long or short (also the second half of a reversal through zero)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionChanged(PositionEvent):
    """An open position grew or was partly closed, staying on the same side."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionClosed(PositionEvent):
    """A position went flat (also the first half of a reversal through zero)."""


POSITION_TOPICS: dict[type[PositionEvent], str] = {
    PositionOpened: topics.POSITION_OPENED,
    PositionChanged: topics.POSITION_CHANGED,
    PositionClosed: topics.POSITION_CLOSED,
}
"""The bus topic of each position event class."""

POSITION_CODE: Final[dict[type[PositionEvent], int]] = {cls: i for i, cls in enumerate(POSITION_TOPICS)}
"""A small int per position event class (the order of :data:`POSITION_TOPICS`), for plain-value records."""

POSITION_CHANGE: Final = 9
"""The first field of a :func:`position_change_record` (``propdesk.storage.wire.K_POSITION_CHANGE``: the journal's
buffer tells the record from its own items by it)."""


def position_change_record(  # noqa: PLR0917 - positional: built once per position change, on the fill's path
    cls: type[PositionEvent],
    p: Position,
    unrealized_cents: int | None,
    fill: OrderFilled,
    signed_qty: int,
    fee_cents: int,
    realized_cents: int,
) -> tuple[Any, ...]:
    """One change of ``p`` (the live position just after it) as one flat tuple of plain values, a record that
    outlives the mutable position (the journal keeps it; the position manager builds it once per change for its
    captures, :meth:`propdesk.execution.positions.PositionManager.add_capture`). The fields, in order:

    ``(POSITION_CHANGE, account, POSITION_CODE[cls], unrealized cents at the mark or None, signed contracts of this
    part, fee cents of this part, realized cents of this part, fill trade id, fill tag, fill price raw, fill time
    (UTC ns), reconciled, account, symbol, position tag, signed qty after, open lots in ticks, tick size raw, realized
    cents total, fee cents total, opened ts, last ts, fill count)`` (the average price is
    ``avg_price_raw_of(open ticks, tick raw, signed qty)``).

    Plain attribute reads, which the interpreter specializes: in a busy loop this is several times cheaper than an
    ``operator.attrgetter``, whose generic lookups miss the type cache."""
    return (
        POSITION_CHANGE,
        p.account_id,
        POSITION_CODE[cls],
        unrealized_cents,
        signed_qty,
        fee_cents,
        realized_cents,
        fill.trade_id,
        fill.tag,
        fill.price.raw,
        fill.ts_event_ns,
        fill.reconciled,
        p.account_id,
        p.symbol,
        p.tag,
        p.signed_qty,
        p._open_ticks,
        p._tick_raw,
        p._realized_cents,
        p._fees_cents,
        p.opened_ts_ns,
        p.last_ts_ns,
        p.fill_count,
    )


_HOT_EVENTS: tuple[type[PositionEvent], ...] = (PositionEvent, *POSITION_TOPICS)
for _cls in _HOT_EVENTS:  # built per fill when someone listens to position events
    fast_frozen_init(_cls)


# --- per-strategy attribution -----------------------------------------------------------------------------------


class PositionCause(StrEnum):
    """Why a strategy's attributed position changed (:class:`StrategyPositionChange`).

    Members:
        OWN_FILL: a fill of an order the strategy placed itself (an entry, an exit, its own stop).
        BRACKET_CHILD: a fill of a stop-loss or take-profit child of one of its brackets (the broker, or the order
            manager's synthesized bracket, triggered it).
        RISK_FLATTEN: the risk engine closed it, wholly or in part (a flatten, a close of an excess; the fill's tag
            is ``risk:<RULE>``).
        MANUAL: a trade placed by hand at the broker (tag ``manual``) closed it, wholly or in part.
        RECONCILE: a fill found in the broker's reports after a reconnect or restart (never seen live), whatever
            order it belongs to.
    """

    OWN_FILL = "own_fill"
    BRACKET_CHILD = "bracket_child"
    RISK_FLATTEN = "risk_flatten"
    MANUAL = "manual"
    RECONCILE = "reconcile"

    @property
    def outside(self) -> bool:
        """True when the strategy did not cause the change by an order of its own (risk, manual, reconcile): its
        protective orders may no longer match its position."""
        return self in _OUTSIDE_CAUSES

    @property
    def topic(self) -> str:
        """The bus topic of a change with this cause: ``events.strategy.position.<cause>``."""
        return STRATEGY_POSITION_TOPICS[self]


_OUTSIDE_CAUSES: Final = frozenset({PositionCause.RISK_FLATTEN, PositionCause.MANUAL, PositionCause.RECONCILE})

STRATEGY_POSITION_TOPICS: Final[dict[PositionCause, str]] = {
    c: topics.strategy_position(c.value) for c in PositionCause
}
"""The bus topic of :class:`StrategyPositionChange` by cause (``events.strategy.position.risk_flatten`` ...): a
listener subscribes only to the causes it needs, and the position manager builds no event nobody listens to."""


def fill_cause(fill: OrderFilled, *, bracket_child: bool = False) -> PositionCause:
    """The :class:`PositionCause` of ``fill`` for the strategy positions it changes: RECONCILE for a fill found by
    reconciliation, RISK_FLATTEN for an enforcement tag (``risk``, ``risk:<RULE>``), MANUAL for ``manual`` or an
    empty tag, else BRACKET_CHILD when ``bracket_child`` (the order has a parent), else OWN_FILL."""
    if fill.reconciled:
        return PositionCause.RECONCILE
    tag = fill.tag
    if is_enforcement_tag(tag):
        return PositionCause.RISK_FLATTEN
    if not tag or tag == MANUAL_TAG:
        return PositionCause.MANUAL
    return PositionCause.BRACKET_CHILD if bracket_child else PositionCause.OWN_FILL


@dataclass(frozen=True, slots=True, kw_only=True)
class StrategyPositionChange:
    """One change of a strategy's attributed position in one contract, with its cause; published by the position
    manager on :attr:`PositionCause.topic` and delivered by the node to the strategy's ``on_position_changed``.

    Attributes:
        account_id: the broker account.
        symbol: the contract (``ESZ5``).
        tag: the strategy whose position changed.
        signed_qty: its position after the change, contracts (+ long, - short, 0 flat).
        previous_qty: its position before the change, contracts.
        avg_price: the average entry price of its open contracts after the change (exact, may lie between ticks);
            ``None`` when flat.
        cause: why it changed (:class:`PositionCause`).
        source_tag: the tag of the fill that changed it: the strategy's own, ``manual`` or ``risk:<RULE>``.
        client_order_id: the order of that fill.
        trade_id: the broker's execution id of that fill.
        price: the fill price.
        ts_event_ns: the fill time, UTC ns.
    """

    account_id: AccountId
    symbol: str
    tag: str
    signed_qty: int
    previous_qty: int
    avg_price: Price | None
    cause: PositionCause
    source_tag: str
    client_order_id: str
    trade_id: str
    price: Price
    ts_event_ns: int

    @property
    def delta(self) -> int:
        """The signed contracts this change moved (``signed_qty - previous_qty``)."""
        return self.signed_qty - self.previous_qty

    @property
    def is_flat(self) -> bool:
        """True when the strategy holds nothing after the change."""
        return self.signed_qty == 0


def attribute_fill(
    tag: str, signed_qty: int, account_qty: int, holders: Iterable[tuple[str, int, int]]
) -> list[tuple[str, int]]:
    """Split one fill among the per-strategy positions of one contract: which tag's position each contract changes.

    A fill of a strategy's own order (any tag that is not foreign, :func:`propdesk.model.orders.is_foreign_tag`)
    belongs wholly to that strategy. A foreign fill (``manual``, ``risk``, ``risk:<RULE>``) first closes what the
    account holds: the part that reduces the account-level position ``account_qty`` (contracts before the fill) is
    taken from the tags holding that side, the ``manual`` position first, then the others in the order of
    ``holders``; what is left (the part that opens or adds) is the fill's own tag's. So a flatten by the risk engine
    or a close typed into the broker's UI leaves the strategies flat, as the account is, and a foreign order never
    reverses a strategy's position.

    Args:
        tag: the fill's tag (``""`` counts as ``manual``).
        signed_qty: the fill's contracts (+ buy, - sell; not 0).
        account_qty: the account's signed position in the contract before the fill (the sum over ``holders``).
        holders: ``(tag, signed qty, last fill ts)`` of each tag's open position in the contract, in the order to
            draw from after ``manual`` (the position manager passes the most recently traded first).

    Returns:
        ``(tag, signed part)`` pairs in application order; the parts sum to ``signed_qty``.
    """
    if not is_foreign_tag(tag):
        return [(tag, signed_qty)]
    own = tag or MANUAL_TAG
    if not account_qty or (account_qty > 0) == (signed_qty > 0):
        return [(own, signed_qty)]
    reducing = min(abs(signed_qty), abs(account_qty))
    sign = 1 if signed_qty > 0 else -1
    side = 1 if account_qty > 0 else -1
    candidates = sorted(
        (h for h in holders if h[1] * side > 0), key=lambda h: 0 if h[0] == MANUAL_TAG else 1
    )  # stable: manual first, then the caller's order
    parts: list[tuple[str, int]] = []
    left = reducing
    for htag, hqty, _ts in candidates:
        if not left:
            break
        take = min(left, abs(hqty))
        parts.append((htag, sign * take))
        left -= take
    rest = signed_qty - sign * (reducing - left)
    if rest:
        parts.append((own, rest))
    return parts
