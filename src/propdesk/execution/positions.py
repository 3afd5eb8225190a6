"""The position manager: nets every fill into positions per account and contract, and per strategy.

:class:`PositionManager` subscribes to ``events.order.filled`` on the :class:`~propdesk.core.bus.MessageBus` and takes
fills from any source -- propdesk's strategies and foreign fills (a manual trade in the broker's own UI). For each
fill it updates

* the **account-level** position of ``(account, symbol)``: the authoritative netting used for exposure and risk; its
  changes are published as :class:`~propdesk.model.positions.PositionOpened` / ``PositionChanged`` /
  ``PositionClosed`` on ``events.position.<opened|changed|closed>``;
* the **per-strategy** position of ``(account, tag, symbol)`` (a fill tagged ``""`` counts as ``manual``): what each
  strategy holds, the one source of a strategy's position. A strategy's own fill is wholly its own. A foreign fill
  (``manual``, or ``risk:<RULE>`` from the risk engine's flatten and closes) first closes what the account holds,
  taken from the ``manual`` position, then from the strategies, most recently traded first
  (:func:`~propdesk.model.positions.attribute_fill`): after a flatten every strategy is flat, as the account is. Each
  change is published as a :class:`~propdesk.model.positions.StrategyPositionChange` carrying its
  :class:`~propdesk.model.positions.PositionCause`, on ``events.strategy.position.<cause>``, only when someone
  subscribes to that cause (the node routes them to the strategy of the tag).

Position events are built only when some handler subscribes to their topic (building a snapshot costs a few
microseconds, which matters in backtests). A **capture** (:meth:`PositionManager.add_capture`, used by the journal)
is told of every account-level change with the raw values instead (the position object at that moment, the open PnL
in cents, the fill and its part), so recording every position change costs no event objects. Handlers at the
default bus priority see the positions already updated (the manager subscribes with priority 100).

A fill whose ``trade_id`` was already applied for the account (a fill replayed after a reconnect) is ignored and
counted in :attr:`PositionManager.duplicate_fills`. Realized PnL is exact FIFO in whole ticks
(:mod:`propdesk.model.positions`). Summed over strategies, fees and realized + unrealized PnL at one common mark
equal the account's; realized PnL alone sums to the account's once every strategy is flat (strategies that hold
opposite positions realize at the account level what each of them still holds open).

**Marks.** Unrealized PnL uses the liquidation value (``mark_mode="liquidation"``, the default): the best bid for a
long, the best ask for a short, the last trade when that side is unknown (``../shared/specs/risk-rules.md`` §3.1).
``mark_mode="last"`` uses the last trade (falling back to the liquidation side). Marks come from
:meth:`~PositionManager.update_quote`, :meth:`~PositionManager.update_trade` and :meth:`~PositionManager.update_bar`
(the bar's close counts as a last trade); a fill's price also counts as a last trade. Market-data prices are floats
on the tick grid and are converted to whole ticks as ``round(price / tick_size)``, which recovers the exact tick for
any float within half a tick of the grid. By default the manager does not subscribe to market data (per-bar cost
matters in backtests): the node calls the update methods. With ``subscribe_marks=True`` it subscribes to
``data.quotes.<symbol>``, ``data.trades.<symbol>`` and ``data.bars.<symbol>.*`` from the first position in
``symbol`` on, and stays subscribed when the position closes: the marks stay fresh while flat, and trading in and
out does not churn the bus (subscriptions are per symbol, so per-bar cost is one cheap handler call).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from math import isfinite
from typing import Any, Final, Literal

from propdesk.core import topics
from propdesk.core.bus import MessageBus, Subscription
from propdesk.core.errors import InvalidQuantityError
from propdesk.core.topics import Priority
from propdesk.model.contracts import ContractSpec
from propdesk.model.data import Bar, QuoteTick, TradeTick
from propdesk.model.events import OrderFilled
from propdesk.model.identifiers import AccountId
from propdesk.model.orders import MANUAL_TAG, Order, is_foreign_tag
from propdesk.model.positions import (
    POSITION_TOPICS,
    STRATEGY_POSITION_TOPICS,
    Position,
    PositionCause,
    PositionChanged,
    PositionClosed,
    PositionEvent,
    PositionOpened,
    StrategyPositionChange,
    attribute_fill,
    fill_cause,
    position_change_record,
)
from propdesk.model.price import Money, Price
from propdesk.model.symbology import spec_for_symbol

PositionCapture = Callable[[tuple[Any, ...]], object]
"""A position capture (:meth:`PositionManager.add_capture`): called with the
:func:`~propdesk.model.positions.position_change_record` of every change of an account-level position (a reversal is
two calls: the close, then the open), a flat tuple of plain values built once per change for all captures (the
journal's capture is its buffer's ``list.append``)."""

__all__ = [
    "FILL_TOPIC",
    "MANUAL_TAG",
    "AccountTotals",
    "ContractLookup",
    "MarkMode",
    "PositionCapture",
    "PositionManager",
]

FILL_TOPIC: Final = topics.ORDER_FILLED
"""The topic the manager listens to (:class:`~propdesk.model.events.OrderFilled`)."""

_OWN_TOPIC: Final = STRATEGY_POSITION_TOPICS[PositionCause.OWN_FILL]
_CHILD_TOPIC: Final = STRATEGY_POSITION_TOPICS[PositionCause.BRACKET_CHILD]


MarkMode = Literal["liquidation", "last"]
"""How open positions are marked: ``liquidation`` (bid for longs, ask for shorts) or ``last`` (last trade)."""

ContractLookup = Callable[[str], ContractSpec]
"""Returns the :class:`ContractSpec` of a symbol (``ESZ5`` -> the ES spec); raises ContractError when unknown. The
default is the one contract lookup, :func:`propdesk.model.symbology.spec_for_symbol`."""


class _Mark:
    """The latest market prices of one contract, in whole ticks (``None`` = unknown)."""

    __slots__ = ("ask", "bid", "last", "tick_f", "ts_ns")

    def __init__(self, tick_f: float) -> None:
        self.tick_f = tick_f
        self.bid: int | None = None
        self.ask: int | None = None
        self.last: int | None = None
        self.ts_ns = 0


class AccountTotals:
    """Running totals of one account since the manager started (mutable; read, do not modify).

    Attributes:
        realized_cents: realized PnL gross of fees, cents.
        fees_cents: fees of every fill, cents.
        fill_count: fills applied (each fill row counts, risk-rules.md §3.5).
        contracts: contracts traded (sum of fill quantities).
    """

    __slots__ = ("contracts", "fees_cents", "fill_count", "realized_cents")

    def __init__(self) -> None:
        self.realized_cents = 0
        self.fees_cents = 0
        self.fill_count = 0
        self.contracts = 0


class PositionManager:
    """Nets fills into account-level and per-strategy positions and marks them (see the module docstring).

    Args:
        bus: the node's message bus; the manager subscribes :meth:`on_fill` to ``events.order.filled`` and
            publishes position events on it.
        contracts: symbol -> :class:`ContractSpec` (default :func:`spec_for_symbol`, the shipped table).
        mark_mode: ``liquidation`` (default, risk-rules.md §3.1) or ``last``.
        priority: the bus priority of the fill subscription (default 100, so that risk handlers at the default
            priority 0 see positions already updated).
        subscribe_marks: subscribe to market data of symbols with open positions (off by default; see the module
            docstring).

    Raises:
        ValueError: unknown ``mark_mode``.
    """

    def __init__(
        self,
        bus: MessageBus,
        contracts: ContractLookup = spec_for_symbol,
        *,
        mark_mode: MarkMode = "liquidation",
        priority: int = Priority.POSITIONS,
        subscribe_marks: bool = False,
    ) -> None:
        if mark_mode not in ("liquidation", "last"):
            raise ValueError(f"mark_mode must be 'liquidation' or 'last', got {mark_mode!r}")
        self._bus = bus
        self._contracts = contracts
        self._captures: list[PositionCapture] = []
        self._last_mode = mark_mode == "last"
        self._subscribe_marks = subscribe_marks
        self._specs: dict[str, ContractSpec] = {}
        self._marks: dict[str, _Mark] = {}
        self._positions: dict[tuple[AccountId, str], Position] = {}
        self._open: dict[AccountId, dict[str, Position]] = {}
        self._strategy: dict[tuple[AccountId, str, str], Position] = {}
        self._by_contract: dict[tuple[AccountId, str], dict[str, Position]] = {}
        self._order_lookup: Callable[[str], Order | None] | None = None
        self._trade_ids: dict[AccountId, set[str]] = {}
        self._totals: dict[AccountId, AccountTotals] = {}
        self._mark_subs: dict[str, list[Subscription]] = {}
        self.duplicate_fills = 0
        """Fills ignored because their trade id was already applied for the account."""
        self._fill_sub: Subscription | None = bus.subscribe(FILL_TOPIC, self.on_fill, priority)

    # ------------------------------------------------------------------ contracts

    def spec_of(self, symbol: str) -> ContractSpec:
        """The (cached) contract spec of ``symbol``.

        Raises:
            ContractError: unknown symbol (from the contract lookup).
        """
        spec = self._specs.get(symbol)
        if spec is None:
            spec = self._contracts(symbol)
            self._specs[symbol] = spec
        return spec

    # ------------------------------------------------------------------ fills

    def on_fill(self, fill: OrderFilled) -> bool:
        """Apply one fill to the account and strategy positions and publish the position events.

        Returns:
            ``True`` if applied, ``False`` if ignored as a duplicate ``trade_id``.

        Raises:
            ContractError: unknown symbol. InvalidPriceError: price off the tick grid. InvalidQuantityError: the
            quantity is not a positive int. In each case nothing changes and the trade id is not recorded.
        """
        seen = self._trade_ids.get(fill.account_id)
        if seen is None:
            seen = self._trade_ids[fill.account_id] = set()
        if fill.trade_id in seen:
            self.duplicate_fills += 1
            return False
        symbol = fill.symbol
        spec = self.spec_of(symbol)
        qty = fill.qty
        if isinstance(qty, bool) or not isinstance(qty, int) or qty <= 0:
            raise InvalidQuantityError(f"fill {fill.trade_id} of {symbol}: quantity {qty!r} must be a positive int")
        price = fill.price
        if type(price) is Price:  # spec.ticks(price), inlined for the usual case
            ticks, off_grid = divmod(price.raw, spec.tick_size.raw)
            if off_grid:
                spec.ticks(price)  # raises InvalidPriceError with the contract's message
        else:
            ticks = spec.ticks(price)  # validates the grid before anything changes
        signed = qty * int(fill.side)
        tag = fill.tag or MANUAL_TAG
        account = fill.account_id
        seen.add(fill.trade_id)

        key = (account, symbol)
        pos = self._positions.get(key)
        if pos is None:
            pos = self._positions[key] = Position(symbol, account, spec.tick_size, spec.tick_value)

        self._note_last(symbol, ticks, fill.ts_event_ns)
        before = pos.signed_qty
        events: list[PositionEvent | None] = []
        after = before + signed
        if before and after and (before > 0) != (after > 0):
            # reversal through zero: close the old side, then open the new one; the fee is split pro rata
            close_qty = -before
            close_fee = Money(fill.fee.cents * abs(before) // qty)
            r1 = pos.apply_fill(close_qty, fill.price, close_fee, fill.ts_event_ns)
            events.append(
                self._event(PositionClosed, pos=pos, fill=fill, signed_qty=close_qty, fee=close_fee, realized=r1)
            )
            open_fee = fill.fee - close_fee
            r2 = pos.apply_fill(signed - close_qty, fill.price, open_fee, fill.ts_event_ns)
            events.append(
                self._event(
                    PositionOpened, pos=pos, fill=fill, signed_qty=signed - close_qty, fee=open_fee, realized=r2
                )
            )
            realized = r1.cents + r2.cents
        else:
            r = pos.apply_fill(signed, fill.price, fill.fee, fill.ts_event_ns)
            realized = r.cents
            cls = PositionOpened if before == 0 else PositionClosed if after == 0 else PositionChanged
            events.append(self._event(cls, pos=pos, fill=fill, signed_qty=signed, fee=fill.fee, realized=r))
        own: Position | None = None
        prev = 0
        if (tag is MANUAL_TAG or tag.startswith(("manual", "risk"))) and is_foreign_tag(tag):
            changes = self._apply_foreign(fill, tag, signed, before)
        else:  # a strategy's own fill: all of it is the strategy's (the usual case, kept short)
            own = self._strategy.get((account, tag, symbol))
            if own is None:
                own = self._new_strategy_position(account, tag, symbol, spec)
            prev = own.signed_qty
            own.apply_fill(signed, fill.price, fill.fee, fill.ts_event_ns)

        totals = self._totals.get(account)
        if totals is None:
            totals = self._totals[account] = AccountTotals()
        totals.realized_cents += realized
        totals.fees_cents += fill.fee.cents
        totals.fill_count += 1
        totals.contracts += qty

        self._track_open(pos, before)
        bus = self._bus
        for event in events:
            if event is not None:
                bus.publish(event.topic, event)
        if own is None:
            for spos, before_qty in changes:
                self._strategy_changed(spos, before_qty, fill)
        elif fill.reconciled or self._own_listened():  # no event is built nobody listens to
            self._strategy_changed(own, prev, fill)
        return True

    def _own_listened(self) -> bool:
        """Whether someone listens to changes by a strategy's own fills (OWN_FILL or BRACKET_CHILD)."""
        handlers = self._bus.handlers_for  # has_subscribers without its extra call (this runs on every fill)
        return bool(handlers(_OWN_TOPIC) or handlers(_CHILD_TOPIC))

    def _new_strategy_position(self, account: AccountId, tag: str, symbol: str, spec: ContractSpec) -> Position:
        spos = self._strategy[(account, tag, symbol)] = Position(symbol, account, spec.tick_size, spec.tick_value, tag)
        self._by_contract.setdefault((account, symbol), {})[tag] = spos
        return spos

    def _apply_foreign(
        self, fill: OrderFilled, tag: str, signed: int, account_before: int
    ) -> list[tuple[Position, int]]:
        """Apply a foreign fill (``manual``, ``risk:<RULE>``) to the strategy positions it closes and to its own tag
        (:func:`~propdesk.model.positions.attribute_fill`); the fee is split pro rata (the remainder cent to the
        last part). Returns ``(position, qty before)`` of each position changed."""
        account, symbol = fill.account_id, fill.symbol
        held = self._by_contract.get((account, symbol), {})
        holders = sorted(
            ((t, p.signed_qty, p.last_ts_ns) for t, p in held.items() if p.signed_qty),
            key=lambda h: (-h[2], h[0]),  # the most recently traded first
        )
        parts = attribute_fill(tag, signed, account_before, holders)
        spec = self.spec_of(symbol)
        fee_cents = fill.fee.cents
        left = fee_cents
        out: list[tuple[Position, int]] = []
        for i, (ptag, part) in enumerate(parts):
            spos = held.get(ptag)
            if spos is None:
                spos = self._new_strategy_position(account, ptag, symbol, spec)
                held = self._by_contract[(account, symbol)]
            share = left if i == len(parts) - 1 else fee_cents * abs(part) // abs(signed)
            left -= share
            prev = spos.signed_qty
            spos.apply_fill(part, fill.price, Money(share), fill.ts_event_ns)
            out.append((spos, prev))
        return out

    def _strategy_changed(self, spos: Position, prev: int, fill: OrderFilled) -> None:
        """Publish a :class:`StrategyPositionChange` for ``spos`` (moved from ``prev``) when someone listens to its
        cause's topic (nobody, in a backtest of a strategy that does not ask: no event is built)."""
        bus = self._bus
        cause = fill_cause(fill)
        if cause is PositionCause.OWN_FILL:
            lookup = self._order_lookup
            order = None if lookup is None else lookup(fill.client_order_id)
            if order is not None and order.parent_id is not None:
                cause = PositionCause.BRACKET_CHILD
        topic = STRATEGY_POSITION_TOPICS[cause]
        if not bus.has_subscribers(topic):
            return
        avg = spos.avg_price_raw
        bus.publish(
            topic,
            StrategyPositionChange(
                account_id=spos.account_id,
                symbol=spos.symbol,
                tag=spos.tag or MANUAL_TAG,
                signed_qty=spos.signed_qty,
                previous_qty=prev,
                avg_price=None if avg is None else Price(avg),
                cause=cause,
                source_tag=fill.tag or MANUAL_TAG,
                client_order_id=fill.client_order_id,
                trade_id=fill.trade_id,
                price=fill.price,
                ts_event_ns=fill.ts_event_ns,
            ),
        )

    def set_order_lookup(self, lookup: Callable[[str], Order | None] | None) -> None:
        """Find the order of a fill by client order id (the node gives its order manager's ``order``), so that a
        fill of a bracket child is reported with the cause BRACKET_CHILD; without it, as OWN_FILL."""
        self._order_lookup = lookup

    def _event(
        self,
        cls: type[PositionEvent],
        *,
        pos: Position,
        fill: OrderFilled,
        signed_qty: int,
        fee: Money,
        realized: Money,
    ) -> PositionEvent | None:
        captures = self._captures
        if captures:  # one plain record for every capture (the journal's is its buffer's own append)
            record = position_change_record(
                cls, pos, self._unrealized_cents_of(pos), fill, signed_qty, fee.cents, realized.cents
            )
            for capture in captures:
                capture(record)
        if not self._bus.has_subscribers(POSITION_TOPICS[cls]):
            return None  # nobody listens: skip building the snapshot (~5 us per fill in backtests)
        return cls(
            position=pos.snapshot(self._unrealized_money(pos)),
            trade_id=fill.trade_id,
            tag=fill.tag or MANUAL_TAG,
            fill_signed_qty=signed_qty,
            fill_price=fill.price,
            fill_fee=fee,
            fill_realized_pnl=realized,
            ts_event_ns=fill.ts_event_ns,
            reconciled=fill.reconciled,
        )

    def _track_open(self, pos: Position, before: int) -> None:
        account_open = self._open.get(pos.account_id)
        if account_open is None:
            account_open = self._open[pos.account_id] = {}
        symbol = pos.symbol
        if pos.signed_qty:
            if not before:
                account_open[symbol] = pos
                if self._subscribe_marks and symbol not in self._mark_subs:
                    self._subscribe_symbol(symbol)
        elif before:
            account_open.pop(symbol, None)
            # The mark subscription stays: the symbol's marks keep fresh while flat, and a strategy that trades in
            # and out does not churn the bus's topic cache (a measured 2x on the sma_cross backtest).

    # ------------------------------------------------------------------ marks

    def _mark_of(self, symbol: str) -> _Mark:
        mark = self._marks.get(symbol)
        if mark is None:
            mark = self._marks[symbol] = _Mark(float(self.spec_of(symbol).tick_size))
        return mark

    def _note_last(self, symbol: str, ticks: int, ts_ns: int) -> None:
        mark = self._mark_of(symbol)
        if ts_ns >= mark.ts_ns:
            mark.last = ticks
            mark.ts_ns = ts_ns

    def update_quote(self, symbol: str, bid: float | None, ask: float | None, ts_ns: int) -> None:
        """Record the best bid and ask of ``symbol`` (points, floats on the tick grid) at ``ts_ns`` (UTC ns).

        A ``None``, NaN or infinite side keeps its previous value (quotes may be partial, risk-rules.md §3.1).

        Raises:
            ContractError: unknown symbol (first call for a symbol only).
        """
        mark = self._marks.get(symbol)
        if mark is None:
            mark = self._mark_of(symbol)
        if bid is not None and isfinite(bid):
            mark.bid = round(bid / mark.tick_f)
        if ask is not None and isfinite(ask):
            mark.ask = round(ask / mark.tick_f)
        if ts_ns > mark.ts_ns:
            mark.ts_ns = ts_ns

    def update_trade(self, symbol: str, price: float, ts_ns: int) -> None:
        """Record the last trade price of ``symbol`` (points, a float on the tick grid) at ``ts_ns`` (UTC ns).

        A NaN or infinite price is ignored.

        Raises:
            ContractError: unknown symbol (first call for a symbol only).
        """
        mark = self._marks.get(symbol)
        if mark is None:
            mark = self._mark_of(symbol)
        if isfinite(price):
            mark.last = round(price / mark.tick_f)
        if ts_ns > mark.ts_ns:
            mark.ts_ns = ts_ns

    def update_bar(self, symbol: str, close: float, ts_ns: int) -> None:
        """Record a bar's ``close`` (points) at ``ts_ns`` (its close time, UTC ns) as the last trade price.

        Raises:
            ContractError: unknown symbol (first call for a symbol only).
        """
        mark = self._marks.get(symbol)
        if mark is None:
            mark = self._mark_of(symbol)
        if isfinite(close):
            mark.last = round(close / mark.tick_f)
        if ts_ns > mark.ts_ns:
            mark.ts_ns = ts_ns

    def clear_marks(self, symbol: str | None = None) -> None:
        """Forget the marks of ``symbol`` (or of every symbol): open positions in it become unmarked."""
        if symbol is None:
            self._marks.clear()
        else:
            self._marks.pop(symbol, None)

    def mark_ticks(self, symbol: str, signed_qty: int) -> int | None:
        """The mark for a position of ``signed_qty`` in ``symbol``, in whole ticks, per the mark mode; ``None``
        when no usable price is known."""
        mark = self._marks.get(symbol)
        if mark is None:
            return None
        side = mark.bid if signed_qty > 0 else mark.ask
        if self._last_mode:
            return mark.last if mark.last is not None else side
        return side if side is not None else mark.last

    def mark_price(self, symbol: str, signed_qty: int) -> Price | None:
        """:meth:`mark_ticks` as a :class:`Price`; ``None`` when unknown."""
        t = self.mark_ticks(symbol, signed_qty)
        return None if t is None else self.spec_of(symbol).price_of_ticks(t)

    def _unrealized_cents_of(self, pos: Position) -> int | None:
        if not pos.signed_qty:
            return None
        t = self.mark_ticks(pos.symbol, pos.signed_qty)
        return None if t is None else pos.unrealized_cents(t)

    def add_capture(self, capture: PositionCapture) -> None:
        """Tell ``capture`` of every account-level position change from now on (see :data:`PositionCapture`), in
        the order the changes happen and before the position events are published. A capture must not raise."""
        if capture not in self._captures:
            self._captures.append(capture)

    def remove_capture(self, capture: PositionCapture) -> bool:
        """Stop telling ``capture``; ``False`` if it was not added."""
        if capture in self._captures:
            self._captures.remove(capture)
            return True
        return False

    def _unrealized_money(self, pos: Position) -> Money | None:
        cents = self._unrealized_cents_of(pos)
        return None if cents is None else Money(cents)

    def position_unrealized(self, pos: Position) -> Money | None:
        """Open PnL of ``pos`` (account-level or strategy) at the current mark, USD; ``None`` when flat or
        unmarked."""
        return self._unrealized_money(pos)

    def unrealized_cents(self, account_id: AccountId) -> int:
        """Open PnL of every account-level position of ``account_id``, cents; unmarked positions count 0.

        O(number of open positions): cheap enough to call on every quote.
        """
        account_open = self._open.get(account_id)
        if not account_open:
            return 0
        total = 0
        marks = self._marks
        last_mode = self._last_mode
        for symbol, pos in account_open.items():
            mark = marks.get(symbol)
            if mark is None:
                continue
            side = mark.bid if pos.signed_qty > 0 else mark.ask
            first, second = (mark.last, side) if last_mode else (side, mark.last)
            t = first if first is not None else second
            if t is not None:
                total += pos.unrealized_cents(t)
        return total

    def unmarked_symbols(self, account_id: AccountId) -> list[str]:
        """Symbols of open positions of ``account_id`` with no usable mark (their unrealized PnL is unknown)."""
        return [s for s, p in self._open.get(account_id, {}).items() if self.mark_ticks(s, p.signed_qty) is None]

    # ------------------------------------------------------------------ market-data subscriptions (opt-in)

    def _on_quote(self, quote: QuoteTick) -> None:
        self.update_quote(quote.symbol, quote.bid, quote.ask, quote.ts_event_ns)

    def _on_trade(self, trade: TradeTick) -> None:
        self.update_trade(trade.symbol, trade.price, trade.ts_event_ns)

    def _on_bar(self, bar: Bar) -> None:
        # update_bar(bar.symbol, bar.close, bar.ts_close_ns), inlined: this runs on every bar of a backtest
        mark = self._marks.get(bar.symbol)
        if mark is None:
            mark = self._mark_of(bar.symbol)
        close = bar.close
        if close - close == 0.0:  # isfinite(close) without the call: NaN and +-inf give NaN
            mark.last = round(close / mark.tick_f)
        ts_ns = bar.ts_close_ns
        if ts_ns > mark.ts_ns:
            mark.ts_ns = ts_ns

    def _subscribe_symbol(self, symbol: str) -> None:
        bus = self._bus
        self._mark_subs[symbol] = [
            bus.subscribe(topics.quotes(symbol), self._on_quote, Priority.POSITIONS),
            bus.subscribe(topics.trades(symbol), self._on_trade, Priority.POSITIONS),
            bus.subscribe(topics.bars_all_timeframes(symbol), self._on_bar, Priority.POSITIONS),
        ]

    def _unsubscribe_symbol(self, symbol: str) -> None:
        for sub in self._mark_subs.pop(symbol, []):
            self._bus.unsubscribe(sub)
        self._marks.pop(symbol, None)

    def subscribed_symbols(self) -> list[str]:
        """Symbols whose market data the manager currently subscribes to (``subscribe_marks=True`` only)."""
        return sorted(self._mark_subs)

    def close(self) -> None:
        """Unsubscribe everything from the bus (fills and market data). The positions stay readable."""
        if self._fill_sub is not None:
            self._bus.unsubscribe(self._fill_sub)
            self._fill_sub = None
        for symbol in list(self._mark_subs):
            for sub in self._mark_subs.pop(symbol):
                self._bus.unsubscribe(sub)

    # ------------------------------------------------------------------ queries

    def position(self, account_id: AccountId, symbol: str) -> Position | None:
        """The account-level position in ``symbol`` (``None`` if the account never traded it). Read only."""
        return self._positions.get((account_id, symbol))

    def positions(self, account_id: AccountId | None = None) -> list[Position]:
        """Every account-level position (flat ones included), of one account or all, by account then symbol."""
        return [p for (a, s), p in sorted(self._positions.items()) if account_id is None or a == account_id]

    def open_positions(self, account_id: AccountId | None = None) -> list[Position]:
        """The account-level positions that are not flat, of one account or all, by account then symbol."""
        return [p for p in self.positions(account_id) if p.signed_qty]

    def iter_open(self, account_id: AccountId) -> Iterator[Position]:
        """The open account-level positions of ``account_id``, unsorted (cheap)."""
        return iter(self._open.get(account_id, {}).values())

    def net_qty(self, account_id: AccountId, symbol: str) -> int:
        """Signed contracts held in ``symbol`` (0 when flat or never traded)."""
        pos = self._positions.get((account_id, symbol))
        return 0 if pos is None else pos.signed_qty

    def strategy_position(self, account_id: AccountId, tag: str, symbol: str) -> Position | None:
        """The position of strategy ``tag`` (``""`` means ``manual``) in ``symbol``, or ``None``. Read only."""
        return self._strategy.get((account_id, tag or MANUAL_TAG, symbol))

    def strategy_positions(self, account_id: AccountId | None = None, tag: str | None = None) -> list[Position]:
        """Per-strategy positions (flat ones included), filtered by account and/or tag, sorted by account, tag,
        symbol."""
        want = None if tag is None else (tag or MANUAL_TAG)
        return [
            p
            for (a, t, _s), p in sorted(self._strategy.items())
            if (account_id is None or a == account_id) and (want is None or t == want)
        ]

    def totals(self, account_id: AccountId) -> AccountTotals:
        """Running totals of ``account_id`` (zeros if it has no fills). Read only."""
        totals = self._totals.get(account_id)
        if totals is None:
            totals = self._totals[account_id] = AccountTotals()
        return totals

    def accounts(self) -> list[AccountId]:
        """Accounts that have had at least one fill, sorted."""
        return sorted(self._totals)

    def has_trade(self, account_id: AccountId, trade_id: str) -> bool:
        """Whether the fill ``trade_id`` was applied for ``account_id``."""
        return trade_id in self._trade_ids.get(account_id, ())
