"""ProjectX <-> propdesk: enums, contract ids, prices, fills, positions, orders, market data.

Everything ProjectX-specific stops here (ARCHITECTURE.md, "the broker is a translation layer"). Sources:
``../shared/specs/projectx-gateway-api.md`` section 4 (enums), 3.2 (models), 5.4/5.5 (hub payloads).

* OrderType 1 Limit, 2 Market, 3 StopLimit, 4 Stop, 5 TrailingStop, 6 JoinBid, 7 JoinAsk <-> :class:`OrderType`.
* Side 0 Bid (buy) / 1 Ask (sell) <-> :class:`Side`.
* OrderStatus 0 None, 1 Open, 2 Filled, 3 Cancelled, 4 Expired, 5 Rejected, 6 Pending, 7 PendingCancellation,
  8 Suspended -> :class:`OrderStatus` (Open with fills is PARTIALLY_FILLED).
* Contract ids through :mod:`propdesk.brokers.projectx.contract_ids` (``CON.F.US.EP.Z25`` <-> ``ESZ5``), with the
  API's own contract ``name`` as the fallback for roots propdesk does not list (:class:`ContractCache`).
* Prices: wire Decimal <-> :class:`Price`; an order price must be on the contract's tick before it is sent.
* Money: fees and P&L to whole cents (half-up; the API may send sub-cent fees).
* Timestamps: :func:`~propdesk.brokers.projectx.models.parse_ts_ns` (any offset -> UTC ns).
* A ``Trade`` row is one fill (a half-turn) -> :class:`OrderFilled` / :class:`FillReport`; a ``Position`` ->
  :class:`PositionReport` (``type`` 1 long / 2 short times ``size``); an ``Order`` -> :class:`OrderReport`.
* Market data: partial quotes are merged per contract (:class:`QuoteMerger`); every ``GatewayTrade`` item becomes one
  :class:`TradeTick` and every ``GatewayDepth`` book item one :class:`DepthUpdate` (nothing coalesced or dropped,
  pitfalls 1 and 2 of section 8).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Final

from propdesk.brokers.projectx.contract_ids import contract_id_to_symbol, parse_contract_id, symbol_to_contract_id
from propdesk.brokers.projectx.models import (
    Account,
    Contract,
    DepthData,
    MarketTradeData,
    OrderRow,
    PositionRow,
    QuoteData,
    TradeRow,
)
from propdesk.core.errors import ContractError, InvalidPriceError
from propdesk.model.data import DepthUpdate, QuoteTick, Timeframe, TradeTick
from propdesk.model.enums import AggressorSide, BookAction, BookSide, Side
from propdesk.model.events import OrderFilled
from propdesk.model.identifiers import AccountId, BrokerOrderId, ClientOrderId, ContractId
from propdesk.model.orders import OrderStatus, OrderType
from propdesk.model.price import Money, Price
from propdesk.model.reports import AccountReport, FillReport, OrderReport, PositionReport

logger = logging.getLogger(__name__)

# ------------------------------------------------------------------------------------------------ enums

ORDER_TYPE_TO_PX: Final[dict[OrderType, int]] = {
    OrderType.LIMIT: 1,
    OrderType.MARKET: 2,
    OrderType.STOP_LIMIT: 3,
    OrderType.STOP: 4,
    OrderType.TRAILING_STOP: 5,
    OrderType.JOIN_BID: 6,
    OrderType.JOIN_ASK: 7,
}
PX_TO_ORDER_TYPE: Final[dict[int, OrderType]] = {v: k for k, v in ORDER_TYPE_TO_PX.items()}

PX_STATUS_TO_STATUS: Final[dict[int, OrderStatus]] = {
    0: OrderStatus.SUBMITTED,
    1: OrderStatus.ACCEPTED,
    2: OrderStatus.FILLED,
    3: OrderStatus.CANCELED,
    4: OrderStatus.EXPIRED,
    5: OrderStatus.REJECTED,
    6: OrderStatus.SUBMITTED,
    7: OrderStatus.PENDING_CANCEL,
    8: OrderStatus.SUSPENDED,
}
"""ProjectX OrderStatus -> propdesk (0 None and 6 Pending: sent, not yet working)."""

PX_WORKING: Final[frozenset[int]] = frozenset({1, 6, 7, 8})
PX_TERMINAL: Final[frozenset[int]] = frozenset({2, 3, 4, 5})

BAR_UNITS: Final[dict[str, int]] = {"s": 1, "m": 2, "h": 3, "d": 4}
"""propdesk timeframe unit -> AggregateBarUnit (1 Second, 2 Minute, 3 Hour, 4 Day; spec 4)."""


def px_order_type(order_type: OrderType) -> int:
    """The ProjectX OrderType of ``order_type``."""
    return ORDER_TYPE_TO_PX[order_type]


def order_type_of(px_type: int) -> OrderType:
    """The propdesk type of a ProjectX OrderType (0 Unknown and anything else -> MARKET, logged)."""
    t = PX_TO_ORDER_TYPE.get(px_type)
    if t is None:
        logger.warning("ProjectX order type %s unknown; treated as market", px_type)
        return OrderType.MARKET
    return t


def px_side(side: Side) -> int:
    """0 (Bid, buy) or 1 (Ask, sell)."""
    return 0 if side is Side.BUY else 1


def side_of(px: int) -> Side:
    """BUY for 0, SELL for 1."""
    return Side.BUY if px == 0 else Side.SELL


def order_status_of(px_status: int, fill_volume: int = 0) -> OrderStatus:
    """The propdesk status of a ProjectX status; Open with ``fill_volume`` > 0 is PARTIALLY_FILLED."""
    st = PX_STATUS_TO_STATUS.get(px_status, OrderStatus.SUBMITTED)
    if st is OrderStatus.ACCEPTED and fill_volume > 0:
        return OrderStatus.PARTIALLY_FILLED
    return st


def bar_unit(timeframe: Timeframe) -> tuple[int, int]:
    """``(unit, unitNumber)`` of ``History/retrieveBars`` for a timeframe (``5m`` -> ``(2, 5)``)."""
    return BAR_UNITS[timeframe.unit], timeframe.step


# ------------------------------------------------------------------------------------------------ prices, money


def price_of(value: Decimal | float | int) -> Price:
    """A wire price as an exact :class:`Price`."""
    return Price.of(value if isinstance(value, Decimal | int) else Decimal(str(value)))


def wire_price(price: Price, tick_size: Price) -> Decimal:
    """``price`` as the Decimal sent to ProjectX.

    Raises:
        InvalidPriceError: ``price`` is not on the tick (propdesk never rounds an order's price silently).
    """
    if not price.is_aligned(tick_size):
        raise InvalidPriceError(f"price {price} is not a multiple of the tick size {tick_size}")
    return price.as_decimal()


def money_of(value: Decimal | float | int | None) -> Money:
    """USD as whole cents (half-up); ``None`` is zero."""
    if value is None:
        return Money.zero()
    dec = value if isinstance(value, Decimal) else Decimal(str(value))
    cents = dec.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    if cents != dec:
        logger.debug("ProjectX amount %s rounded to %s", dec, cents)
    return Money.of(cents)


# ------------------------------------------------------------------------------------------------ contracts


class ContractCache:
    """Contracts seen through the API, by id and by symbol; ``symbol_of`` parses ids it has not seen.

    The API's contract ``name`` (``ESZ5``, spec 1.2) is the symbol; for an id not seen yet the grammar of
    :mod:`propdesk.brokers.projectx.contract_ids` is used.
    """

    def __init__(self) -> None:
        self._by_id: dict[str, Contract] = {}
        self._by_symbol: dict[str, Contract] = {}
        self._symbol_of: dict[str, str] = {}

    def add(self, contract: Contract) -> str:
        """Remember ``contract``; returns its propdesk symbol."""
        symbol = contract.name or self._parse(contract.id)
        self._by_id[contract.id] = contract
        self._by_symbol[symbol] = contract
        self._symbol_of[contract.id] = symbol
        return symbol

    def get(self, contract_id: str) -> Contract | None:
        """The contract with this id, if seen."""
        return self._by_id.get(contract_id)

    def by_symbol(self, symbol: str) -> Contract | None:
        """The contract whose symbol is ``symbol``, if seen."""
        return self._by_symbol.get(symbol)

    def symbol_of(self, contract_id: str) -> str:
        """The propdesk symbol of a contract id (``CON.F.US.EP.Z25`` -> ``ESZ5``); the id itself as a last resort."""
        s = self._symbol_of.get(contract_id)
        if s is None:
            s = self._symbol_of[contract_id] = self._parse(contract_id)
        return s

    @staticmethod
    def _parse(contract_id: str) -> str:
        try:
            return contract_id_to_symbol(contract_id)
        except ContractError:
            logger.warning("ProjectX contract id %s is not in propdesk's contract table", contract_id)
            return contract_id

    def tick_size(self, contract_id: str) -> Price | None:
        """The contract's tick size from the API (or the shipped spec when the id parses), else ``None``."""
        c = self._by_id.get(contract_id)
        if c is not None:
            return price_of(c.tick_size)
        try:
            return parse_contract_id(contract_id).spec.tick_size
        except ContractError:
            return None


def guess_contract_id(symbol: str) -> ContractId:
    """The id propdesk's grammar gives ``symbol`` (``ESZ5`` -> ``CON.F.US.EP.Z25``), to be confirmed by the API.

    Raises:
        ContractError: unknown root or malformed symbol.
    """
    return symbol_to_contract_id(symbol)


# -------------------------------------------------------------------------------------- trades, positions, orders


def trade_to_fill(trade: TradeRow, *, client_order_id: ClientOrderId, symbol: str, tag: str = "") -> OrderFilled:
    """A ``Trade`` row (one half-turn) as :class:`OrderFilled`: ``trade_id`` is the row's ``id``; ``fee`` its
    ``fees`` (whether ``fees`` includes ``commissions`` is unknown, spec 10.11)."""
    return OrderFilled(
        client_order_id=client_order_id,
        account_id=AccountId(trade.account_id),
        ts_event_ns=trade.creation_timestamp,
        symbol=symbol,
        side=side_of(trade.side),
        qty=trade.size,
        price=price_of(trade.price),
        fee=money_of(trade.fees),
        trade_id=str(trade.id),
        tag=tag,
    )


def trade_to_fill_report(trade: TradeRow, *, client_order_id: ClientOrderId | None, symbol: str) -> FillReport:
    """A ``Trade`` row as :class:`FillReport` (``realized_pnl`` = ``profitAndLoss``, ``None`` on an opening fill)."""
    return FillReport(
        account_id=AccountId(trade.account_id),
        trade_id=str(trade.id),
        broker_order_id=BrokerOrderId(trade.order_id),
        client_order_id=client_order_id,
        symbol=symbol,
        side=side_of(trade.side),
        qty=trade.size,
        price=price_of(trade.price),
        fee=money_of(trade.fees),
        ts_ns=trade.creation_timestamp,
        realized_pnl=None if trade.profit_and_loss is None else money_of(trade.profit_and_loss),
    )


def position_signed_qty(row: PositionRow) -> int:
    """``+size`` for type 1 (long), ``-size`` for type 2 (short), 0 when ``size`` is 0 (closed)."""
    if row.size == 0:
        return 0
    if row.type == 2:
        return -row.size
    if row.type != 1:
        logger.warning("ProjectX position %s on %s has type %s; taken as long", row.id, row.contract_id, row.type)
    return row.size


def position_to_report(row: PositionRow, *, symbol: str) -> PositionReport:
    """A ``Position`` as :class:`PositionReport` (signed quantity; ``averagePrice`` may lie between ticks)."""
    return PositionReport(
        account_id=AccountId(row.account_id),
        symbol=symbol,
        signed_qty=position_signed_qty(row),
        avg_price=price_of(row.average_price),
        ts_ns=row.creation_timestamp or 0,
    )


def order_to_report(row: OrderRow, *, symbol: str, client_order_id: ClientOrderId | None) -> OrderReport:
    """An ``Order`` as :class:`OrderReport`."""
    return OrderReport(
        account_id=AccountId(row.account_id),
        broker_order_id=BrokerOrderId(row.id),
        client_order_id=client_order_id,
        symbol=symbol,
        side=side_of(row.side),
        qty=row.size,
        order_type=order_type_of(row.type),
        status=order_status_of(row.status, row.fill_volume),
        filled_qty=row.fill_volume,
        avg_fill_price=None if row.filled_price is None or not row.fill_volume else price_of(row.filled_price),
        limit_price=None if row.limit_price is None else price_of(row.limit_price),
        stop_price=None if row.stop_price is None else price_of(row.stop_price),
        ts_ns=row.update_timestamp or row.creation_timestamp or 0,
    )


def account_to_report(acct: Account, *, ts_ns: int = 0) -> AccountReport:
    """An ``Account`` as :class:`AccountReport` (``simulated`` unknown on older servers -> False)."""
    return AccountReport(
        account_id=AccountId(acct.id),
        name=acct.name,
        balance=money_of(acct.balance),
        can_trade=acct.can_trade,
        simulated=bool(acct.simulated),
        ts_ns=ts_ns,
    )


# ------------------------------------------------------------------------------------------------ market data


@dataclass(slots=True)
class MergedQuote:
    """The cached full quote of one contract: every field the feed has sent so far (points; ``None`` = not yet)."""

    last_price: Decimal | None = None
    best_bid: Decimal | None = None
    best_ask: Decimal | None = None
    volume: int | None = None
    ts_ns: int = 0


class QuoteMerger:
    """Merges partial ``GatewayQuote`` payloads per contract (spec 5.5: the real feed sends only changed fields)."""

    def __init__(self) -> None:
        self._quotes: dict[str, MergedQuote] = {}

    def merge(self, contract_id: str, data: QuoteData, recv_ns: int) -> MergedQuote:
        """Apply the fields ``data`` carries to the contract's cached quote and return it."""
        q = self._quotes.get(contract_id)
        if q is None:
            q = self._quotes[contract_id] = MergedQuote()
        if data.last_price is not None:
            q.last_price = data.last_price
        if data.best_bid is not None:
            q.best_bid = data.best_bid
        if data.best_ask is not None:
            q.best_ask = data.best_ask
        if data.volume is not None:
            q.volume = data.volume
        ts = data.timestamp or data.last_updated
        q.ts_ns = ts if ts is not None else recv_ns
        return q

    def get(self, contract_id: str) -> MergedQuote | None:
        """The merged quote of ``contract_id`` (``None`` before the first one)."""
        return self._quotes.get(contract_id)

    def clear(self, contract_id: str | None = None) -> None:
        """Forget one contract's quote, or all."""
        if contract_id is None:
            self._quotes.clear()
        else:
            self._quotes.pop(contract_id, None)


def quote_tick(symbol: str, q: MergedQuote, recv_ns: int) -> QuoteTick | None:
    """The merged quote as a :class:`QuoteTick` (sizes 0: the feed has none), or ``None`` until both sides are known."""
    if q.best_bid is None or q.best_ask is None:
        return None
    return QuoteTick(symbol, float(q.best_bid), float(q.best_ask), 0, 0, q.ts_ns, recv_ns)


_AGGRESSOR: Final[dict[int | None, AggressorSide]] = {0: AggressorSide.BUYER, 1: AggressorSide.SELLER}


def trade_tick(symbol: str, item: MarketTradeData, recv_ns: int) -> TradeTick:
    """One ``GatewayTrade`` item as a :class:`TradeTick` (``type`` 0 buy / 1 sell aggressor)."""
    ts = item.timestamp if item.timestamp is not None else recv_ns
    return TradeTick(symbol, float(item.price), item.volume, _AGGRESSOR.get(item.type, AggressorSide.NONE), ts, recv_ns)


_ASK_TYPES: Final[frozenset[int]] = frozenset({1, 3, 10})
_BID_TYPES: Final[frozenset[int]] = frozenset({2, 4, 9})
DEPTH_RESET: Final[int] = 6


def depth_update(symbol: str, item: DepthData, recv_ns: int, *, is_last: bool) -> DepthUpdate | None:
    """One ``GatewayDepth`` item as a :class:`DepthUpdate`: Ask/BestAsk/NewBestAsk (1, 3, 10) and Bid/BestBid/NewBestBid
    (2, 4, 9) set the level's size (``volume`` 0 deletes it); Reset (6) clears the book. Trade (5), Fill (11),
    Low/High (7/8) and Unknown (0) are not book levels: ``None`` (trades come from ``GatewayTrade``)."""
    ts = item.timestamp if item.timestamp is not None else recv_ns
    t = item.type
    if t == DEPTH_RESET:
        return DepthUpdate(symbol, BookAction.CLEAR, None, 0.0, 0, ts, is_last=is_last, ts_recv_ns=recv_ns)
    if t in _ASK_TYPES:
        side = BookSide.ASK
    elif t in _BID_TYPES:
        side = BookSide.BID
    else:
        return None
    action = BookAction.DELETE if item.volume <= 0 else BookAction.UPDATE
    return DepthUpdate(
        symbol, action, side, float(item.price), max(item.volume, 0), ts, is_last=is_last, ts_recv_ns=recv_ns
    )
