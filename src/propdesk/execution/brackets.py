"""Brackets and OCO groups: the records the order manager keeps for them, child ids and child prices.

A *bracket* is an entry order with a stop-loss (a stop-market order ``stop_loss_ticks`` against the position) and a
take-profit (a limit order ``take_profit_ticks`` in its favor) that protect whatever the entry filled. An *OCO
group* is two or more working orders where a fill of one cancels (or, for a partial fill, shrinks) the others.

Guarantees, whether the broker does it natively or the order manager synthesizes it (see
:mod:`propdesk.execution.order_manager`):

* the children's open quantity equals the open position of the bracket (entry filled quantity minus what the
  children filled), after every entry fill and every child fill;
* when one child fills completely the other is canceled; when one partially fills the other shrinks to match;
* an entry canceled after a partial fill keeps its children for the filled quantity; an entry canceled or
  rejected before any fill never gets children.

Conventions every broker follows (the StubBroker in tests, the simulated broker, the ProjectX broker):

* children's client order ids are ``<entry id>-sl`` and ``<entry id>-tp`` (:func:`child_id`); a later pair of the
  same synthesized bracket (placed after the first pair finished or was replaced) is ``-sl2``/``-tp2``, and so on;
* children are priced from the entry's **first** fill price: stop-loss ``stop_loss_ticks`` ticks against the entry
  side, take-profit ``take_profit_ticks`` ticks in its favor (:func:`child_prices`); ProjectX prices its native
  children "at entry fill +/- ticks x tickSize" (``../shared/specs/projectx-gateway-api.md`` section 3.3);
* a broker with native OCO links legs through :attr:`Order.linked_ids` (either leg naming the other links them) and
  cancels the other legs when one fills **completely**; partial-fill resizing is always the order manager's job
  unless the broker does brackets natively.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

from propdesk.model.enums import Side
from propdesk.model.identifiers import ClientOrderId
from propdesk.model.price import Price

LegKind = Literal["sl", "tp"]
"""Which child of a bracket: ``sl`` (stop-loss) or ``tp`` (take-profit)."""

STOP_LOSS: Final[LegKind] = "sl"
TAKE_PROFIT: Final[LegKind] = "tp"


def child_id(entry_id: ClientOrderId, kind: LegKind, generation: int = 1) -> ClientOrderId:
    """The client order id of a bracket child: ``<entry>-sl`` / ``<entry>-tp``, ``<entry>-sl<n>`` for pair n > 1.

    Raises:
        ValueError: ``generation`` < 1.
    """
    if generation < 1:
        raise ValueError(f"bracket child generation must be >= 1, got {generation}")
    suffix = kind if generation == 1 else f"{kind}{generation}"
    return ClientOrderId(f"{entry_id}-{suffix}")


def child_prices(
    entry_side: Side,
    reference: Price,
    tick_size: Price,
    stop_loss_ticks: int | None,
    take_profit_ticks: int | None,
) -> tuple[Price | None, Price | None]:
    """The (stop-loss stop price, take-profit limit price) of a bracket whose entry is on ``entry_side``.

    For a buy entry the stop-loss is ``reference - stop_loss_ticks x tick_size`` and the take-profit
    ``reference + take_profit_ticks x tick_size``; mirrored for a sell. ``None`` ticks give ``None``.
    ``reference`` is the entry's first fill price, which is on the tick, so the children are too.
    """
    sign = int(entry_side)
    sl = None if stop_loss_ticks is None else Price(reference.raw - sign * stop_loss_ticks * tick_size.raw)
    tp = None if take_profit_ticks is None else Price(reference.raw + sign * take_profit_ticks * tick_size.raw)
    return sl, tp


@dataclass(slots=True)
class Bracket:
    """The order manager's record of one bracket (read it; the manager updates it).

    Attributes:
        entry_id: the entry's client order id.
        symbol: the contract symbol (``ESZ5``).
        entry_side: the entry's side; the children are on the opposite side.
        stop_loss_ticks, take_profit_ticks: child distances in ticks (``None`` omits that child).
        tag: the strategy tag on the children.
        native: True when the broker runs the bracket (entry sent with a ``BracketSpec``).
        tick_size: the contract's tick size (points).
        stop_loss_id, take_profit_id: the current children's client order ids (``None`` before they exist or when
            that leg is omitted). For a native bracket they are known from the start.
        leg_ids: every child id ever placed for this bracket, oldest first (synthesized brackets may replace pairs).
        stop_loss_price, take_profit_price: child prices, fixed at the entry's first fill.
        exit_filled_qty: contracts the children have filled in total (synthesized brackets).
        outside_closed_qty: contracts of the bracket's position closed by fills that were not its children's (a
            risk close, a manual trade: :meth:`~propdesk.execution.order_manager.OrderManager.cap_bracket_exits`);
            the children cover ``entry filled - exit_filled_qty - outside_closed_qty``.
        generation: how many child pairs have been placed (synthesized brackets).
    """

    entry_id: ClientOrderId
    symbol: str
    entry_side: Side
    stop_loss_ticks: int | None
    take_profit_ticks: int | None
    tag: str
    native: bool
    tick_size: Price
    stop_loss_id: ClientOrderId | None = None
    take_profit_id: ClientOrderId | None = None
    leg_ids: list[ClientOrderId] = field(default_factory=list)
    stop_loss_price: Price | None = None
    take_profit_price: Price | None = None
    exit_filled_qty: int = 0
    outside_closed_qty: int = 0
    generation: int = 0
    syncing: bool = False
    dirty: bool = False

    @property
    def current_leg_ids(self) -> tuple[ClientOrderId, ...]:
        """The ids of the current children (stop-loss first), omitting legs that do not exist."""
        return tuple(c for c in (self.stop_loss_id, self.take_profit_id) if c is not None)


@dataclass(slots=True)
class OcoGroup:
    """The order manager's record of one OCO group created by ``submit_oco``.

    Attributes:
        leg_ids: the current legs' client order ids (a leg resized by cancel/replace is swapped for its
            replacement).
        native: True when the broker cancels the other legs itself (``native_oco``).
        replaced_ids: legs that were canceled and replaced, oldest first.
    """

    leg_ids: list[ClientOrderId]
    native: bool
    replaced_ids: list[ClientOrderId] = field(default_factory=list)

    def others(self, client_order_id: ClientOrderId) -> list[ClientOrderId]:
        """The current legs other than ``client_order_id``."""
        return [c for c in self.leg_ids if c != client_order_id]
