"""The gateway's trading state: one :class:`~propdesk.brokers.sim.SimBroker` per account, seen as ProjectX.

Every account of the configuration gets a sim broker (``native_brackets`` from its ``bracket_mode``) on one shared
:class:`~propdesk.core.clock.SimClock` that follows the presented replay time. The state translates between ProjectX
and the sim: order ids (ProjectX ``orderId``, int64, unique across accounts) <-> the sim's client order ids
(``px-<orderId>``; bracket children ``px-<id>-sl``/``-tp`` and close orders ``sim-close-<n>`` get their own
``orderId`` when the sim reports them), ``customTag`` uniqueness per account (for the account's lifetime: the spec's
newer GW text, "Must be unique across the account"; section 3.3), and the sim's events into ProjectX models pushed
on the user hub in the spec's fill order (``GatewayUserOrder`` -> ``GatewayUserTrade`` -> ``GatewayUserPosition`` ->
``GatewayUserAccount``; section 5.5).

Bracket modes (spec 3.3): ``position`` (Position Brackets, TopstepX default) rejects an order carrying
``stopLossBracket``/``takeProfitBracket`` with errorCode 2 "Brackets cannot be used with Position Brackets. You must
enable Auto OCO Brackets." and the rejection still carries the real ``orderId`` (the order shows up with status 5
Rejected); ``auto_oco`` creates the sim's native bracket children (status 8 Suspended until the entry fills, then 1
Open, priced from the entry's fill; one filling cancels the other).

Order/place error codes (spec 3.3, 3.5): unknown account 1; a missing price for the type, an off-tick price (more
than 9 decimals is off every tick), a price at or below zero, a duplicate ``customTag``, a bad type/side, a size
outside 1..``max_order_size``, bracket ``ticks`` outside 1..``MAX_BRACKET_TICKS``, a trailing distance over 1000
ticks, a bracket in Position Brackets mode: 2; ``canTrade`` false: 4; market closed (the sim's data-driven check):
5; unknown contract 8; a listed month that is not the active one: 9. Only the bracket rejection returns an ``orderId``.

Fees: ``Trade.fees`` is the sim's whole per-fill charge (commission + exchange fees) and ``commissions`` its
commission part (propdesk's choice; whether real ``fees`` include commissions is open, spec section 10 item 11).
Money is exact: realized PnL and fees come from the sim account in integer cents.

An account's configured ``history`` (:class:`~propdesk.emulators.projectx.config.PastTrade`) becomes its first ``Trade``
rows: an account with weeks of trading behind it (its balance already includes them; ``Trade/search`` without a start
returns them, the account being created at the first one).

Ids: order and trade ids start at ``GatewayConfig.id_base``, by default :func:`wall_clock_id_base` (the process's start
in microseconds since the Unix epoch), so they are unique and increasing across gateway restarts as the real API's are
(a client keys a fill by account and trade id); position ids (the spec's ``int``, kept within int32) start at
:func:`position_id_base` (by default the seconds from 2020-01-01 UTC to the start, plus one). Configured history fills
take trade and order ids 1, 2, ... in account order, oldest first: the same ids in every process, as a real account's
past trades keep theirs.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final, Protocol

from propdesk.brokers.sim import SimBroker
from propdesk.core.clock import SimClock
from propdesk.core.errors import ConfigError, InvalidPriceError
from propdesk.data.book.l2 import L2Book
from propdesk.emulators.projectx.config import AccountConfig, GatewayConfig
from propdesk.emulators.projectx.wire import ContractCatalog, ContractInfo, iso, num
from propdesk.model.data import QuoteTick, TradeTick
from propdesk.model.enums import Side
from propdesk.model.events import (
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderExpired,
    OrderFilled,
    OrderModifyRejected,
    OrderRejected,
    OrderSubmitted,
    OrderSuspended,
    OrderUpdated,
)
from propdesk.model.identifiers import AccountId, ClientOrderId
from propdesk.model.orders import BracketSpec, Order, OrderType, TimeInForce
from propdesk.model.price import Money, Price

# ProjectX enums (spec section 4)
ST_OPEN, ST_FILLED, ST_CANCELLED, ST_EXPIRED, ST_REJECTED, ST_PENDING, ST_PENDING_CANCEL, ST_SUSPENDED = (
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
)
WORKING_STATUSES: Final = frozenset({ST_OPEN, ST_PENDING, ST_PENDING_CANCEL, ST_SUSPENDED})
OPEN_SEARCH_STATUSES: Final = frozenset({ST_OPEN, ST_PENDING, ST_PENDING_CANCEL})
TYPE_LIMIT, TYPE_MARKET, TYPE_STOP_LIMIT, TYPE_STOP, TYPE_TRAILING, TYPE_JOIN_BID, TYPE_JOIN_ASK = 1, 2, 3, 4, 5, 6, 7
_TYPES: Final[dict[int, OrderType]] = {
    TYPE_LIMIT: OrderType.LIMIT,
    TYPE_MARKET: OrderType.MARKET,
    TYPE_STOP_LIMIT: OrderType.STOP_LIMIT,
    TYPE_STOP: OrderType.STOP,
    TYPE_TRAILING: OrderType.TRAILING_STOP,
    TYPE_JOIN_BID: OrderType.JOIN_BID,
    TYPE_JOIN_ASK: OrderType.JOIN_ASK,
}
MAX_TRAIL_TICKS: Final[int] = 1000
MAX_BRACKET_TICKS: Final[int] = 10_000
"""Largest ``ticks`` of a bracket object (propdesk's bound; the spec gives none): 2,500 points on ES."""
BRACKET_MESSAGE: Final[str] = "Brackets cannot be used with Position Brackets. You must enable Auto OCO Brackets."


def wall_clock_id_base() -> int:
    """The default first order/trade id of a gateway process: the wall clock now, in microseconds since the Unix
    epoch (about 1.8e15 in 2027: int64, and exact in a JSON double until the year 2255).

    A later process starts above every id an earlier one handed out unless that one handed out more ids than
    microseconds it ran (one order or fill per microsecond, on average).
    """
    return time.time_ns() // 1_000


POSITION_EPOCH_S: Final[int] = 1_577_836_800
"""2020-01-01 00:00 UTC in Unix seconds: position ids count seconds from here (int32 lasts until 2088)."""


def position_id_base(id_base: int) -> int:
    """The first position id for the order/trade ``id_base``: one more than the seconds from 2020-01-01 UTC to the
    time ``id_base`` stands for (microseconds since the Unix epoch), at least 1 (a small fixed base gives 1).

    Position ids are ``int`` in the spec (int32 here): a later gateway process starts above an earlier one's
    position ids unless that one opened more positions than seconds it ran.
    """
    return 1 + max(0, id_base // 1_000_000 - POSITION_EPOCH_S)


class UserSink(Protocol):
    """Receives user-hub events (implemented by :class:`propdesk.emulators.projectx.hubs.UserHub`)."""

    def publish_user(self, target: str, account_id: int, action: int, data: dict[str, Any]) -> None:
        """``target`` is ``GatewayUserAccount|Order|Position|Trade``; ``action`` 0 create, 1 update, 2 remove."""
        ...


class MarketDriver(Protocol):
    """What the state needs from the replay (implemented by
    :class:`propdesk.emulators.projectx.market.MarketReplay`)."""

    def now_ns(self) -> int:
        """The presented time."""
        ...

    def catch_up(self) -> int:
        """Stream every due event."""
        ...

    def touch(self, symbol: str) -> None:
        """Re-send the current top of book of ``symbol`` to the sims."""
        ...

    def last_price(self, symbol: str) -> float | None:
        """The last traded price of ``symbol``."""
        ...


@dataclass
class PxOrder:
    """A ProjectX order (spec 3.2) and the sim's client order id behind it."""

    id: int
    account_id: int
    contract: ContractInfo
    cid: str
    created_ns: int
    updated_ns: int
    type: int
    side: int
    size: int
    status: int = ST_PENDING
    limit_price: Price | None = None
    stop_price: Price | None = None
    trail_price: Price | None = None
    trail_ticks: int | None = None
    fill_volume: int = 0
    fill_notional: Decimal = Decimal(0)
    custom_tag: str | None = None
    parent_id: int | None = None
    linked_id: int | None = None
    emitted: bool = False
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        """The full Order model (newer vintage + SW fields; never a missing key)."""
        tick = self.contract.tick_size
        return {
            "id": self.id,
            "accountId": self.account_id,
            "contractId": self.contract.id,
            "symbolId": self.contract.symbol_id,
            "creationTimestamp": iso(self.created_ns),
            "updateTimestamp": iso(self.updated_ns),
            "status": self.status,
            "type": self.type,
            "side": self.side,
            "size": self.size,
            "limitPrice": num(self.limit_price),
            "stopPrice": num(self.stop_price),
            "fillVolume": self.fill_volume,
            "filledPrice": float(self.fill_notional / self.fill_volume) if self.fill_volume else None,
            "customTag": self.custom_tag,
            "trailPrice": num(self.trail_price),
            "trailDistance": None if self.trail_ticks is None else num(Price.from_ticks(self.trail_ticks, tick)),
            "parentOrderId": self.parent_id,
            "linkedOrderId": self.linked_id,
        }


@dataclass
class PxTrade:
    """A ProjectX trade (one fill, a half-turn; spec 3.2)."""

    id: int
    account_id: int
    contract: ContractInfo
    ts_ns: int
    price: Price
    pnl: Money | None
    fees: Money
    commissions: Money
    side: int
    size: int
    order_id: int
    voided: bool = False

    def to_json(self) -> dict[str, Any]:
        """The full Trade model."""
        return {
            "id": self.id,
            "accountId": self.account_id,
            "contractId": self.contract.id,
            "creationTimestamp": iso(self.ts_ns),
            "price": num(self.price),
            "profitAndLoss": num(self.pnl),
            "fees": num(self.fees),
            "commissions": num(self.commissions),
            "side": self.side,
            "size": self.size,
            "voided": self.voided,
            "orderId": self.order_id,
        }


@dataclass
class PxPosition:
    """A ProjectX position (spec 3.2); ``size`` 0 once closed (the last ``type`` and ``averagePrice`` kept)."""

    id: int
    account_id: int
    contract: ContractInfo
    created_ns: int
    type: int
    size: int
    average_price: Price

    def to_json(self) -> dict[str, Any]:
        """The full Position model."""
        return {
            "id": self.id,
            "accountId": self.account_id,
            "contractId": self.contract.id,
            "contractDisplayName": self.contract.name,
            "creationTimestamp": iso(self.created_ns),
            "type": self.type,
            "size": self.size,
            "averagePrice": num(self.average_price),
        }


@dataclass
class AccountState:
    """One account: its config, sim broker and ProjectX records."""

    cfg: AccountConfig
    sim: SimBroker
    created_ns: int
    can_trade: bool
    orders: dict[int, PxOrder] = field(default_factory=dict)
    by_cid: dict[str, PxOrder] = field(default_factory=dict)
    sim_orders: dict[int, Order] = field(default_factory=dict)
    tags: set[str] = field(default_factory=set)
    trades: list[PxTrade] = field(default_factory=list)
    positions: dict[str, PxPosition] = field(default_factory=dict)
    pending_close: deque[tuple[ContractInfo, int, int]] = field(default_factory=deque)
    realized_seen: int = 0
    last_reject: str = ""

    def to_json(self) -> dict[str, Any]:
        """The Account model (spec 3.2): ``simulated`` is always true here."""
        return {
            "id": self.cfg.id,
            "name": self.cfg.name,
            "balance": num(self.sim.account.balance),
            "canTrade": self.can_trade,
            "isVisible": self.cfg.is_visible,
            "simulated": True,
        }


@dataclass(frozen=True, slots=True)
class PlaceRequest:
    """A parsed ``Order/place`` body (prices already Decimal or ``None``)."""

    account_id: int
    contract_id: str
    type: int
    side: int
    size: int
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    trail_price: Decimal | None = None
    custom_tag: str | None = None
    linked_order_id: int | None = None
    stop_loss_ticks: int | None = None
    take_profit_ticks: int | None = None
    has_bracket: bool = False


Result = tuple[int, str | None, int | None]
"""(errorCode, errorMessage, orderId)."""


class GatewayState:
    """The accounts and their sim brokers (module docstring). Implements the replay's ``TradingSink``.

    Args:
        config: the gateway configuration (accounts, sim rules, ``emit_remove_action``).
        catalog: the contract catalog.
        start_ns: the presented start time (the sim clock's start).
    """

    def __init__(self, config: GatewayConfig, catalog: ContractCatalog, start_ns: int) -> None:
        self.config = config
        self.catalog = catalog
        self.clock = SimClock(start_ns)
        self.sink: UserSink | None = None
        self.market: MarketDriver | None = None
        self.accounts: dict[int, AccountState] = {}
        base = config.id_base if config.id_base is not None else wall_clock_id_base()
        self.id_base: Final[int] = base
        self._next_order = base
        self._next_trade = base
        self._next_position = position_id_base(base)
        self._next_past = 1
        for a in config.accounts:
            sim_cfg = config.sim.model_copy(
                update={"native_brackets": a.bracket_mode == "auto_oco", "account_name": a.name}
            )
            sim = SimBroker(
                self.clock, account_id=AccountId(a.id), config=sim_cfg, starting_balance=Money.of(a.balance_now)
            )
            acct = AccountState(cfg=a, sim=sim, created_ns=start_ns, can_trade=a.can_trade)
            sim.set_event_handler(self._handler(acct))
            self.accounts[a.id] = acct
            self._load_history(acct, start_ns)

    def _load_history(self, acct: AccountState, start_ns: int) -> None:
        """The account's configured past fills as ``Trade`` rows (oldest first; trade and order ids 1, 2, ...,
        below every live id); the
        account was created at the first one.

        Raises:
            ConfigError: a fill at or after the gateway's start, or on a contract of a root not configured.
        """
        past = sorted(acct.cfg.history, key=lambda t: t.time)
        for t in past:
            ts = int(t.time.timestamp()) * 1_000_000_000 + t.time.microsecond * 1_000
            if ts >= start_ns:
                raise ConfigError(f"account {acct.cfg.id}: past trade at {t.time.isoformat()} is not before the start")
            contract = self.catalog.by_id(t.contract_id)
            if contract is None:
                raise ConfigError(f"account {acct.cfg.id}: past trade on unknown contract {t.contract_id!r}")
            acct.trades.append(
                PxTrade(
                    id=self._next_past,
                    account_id=acct.cfg.id,
                    contract=contract,
                    ts_ns=ts,
                    price=Price.of(t.price),
                    pnl=None if t.pnl is None else Money.of(t.pnl),
                    fees=Money.of(t.fees),
                    commissions=Money(0),
                    side=0 if t.side == "buy" else 1,
                    size=t.size,
                    order_id=self._next_past,
                    voided=t.voided,
                )
            )
            self._next_past += 1
        if past:
            first = acct.trades[0].ts_ns
            acct.created_ns = min(acct.created_ns, first)

    # ------------------------------------------------------------------------------------------ time & data

    def now_ns(self) -> int:
        """The presented time (the replay's, else the sim clock's)."""
        return self.market.now_ns() if self.market is not None else self.clock.timestamp_ns()

    def sync(self) -> None:
        """Stream every due market event, then move the sim clock to now (before every command)."""
        if self.market is not None:
            self.market.catch_up()
        self.advance(self.now_ns())

    def advance(self, ts_ns: int) -> None:
        """Move the sim clock forward to ``ts_ns`` (ignored when it is not ahead)."""
        if ts_ns > self.clock.timestamp_ns():
            self.clock.advance_to(ts_ns)

    def on_trade(self, tick: TradeTick) -> None:
        """Match a print in every account."""
        for a in self.accounts.values():
            a.sim.process_trade(tick)

    def on_quote(self, quote: QuoteTick) -> None:
        """Match a quote in every account."""
        for a in self.accounts.values():
            a.sim.process_quote(quote)

    def on_book(self, symbol: str, book: L2Book, ts_ns: int) -> None:
        """Match an L2 book in every account."""
        for a in self.accounts.values():
            a.sim.process_book(symbol, book, ts_ns)

    # ------------------------------------------------------------------------------------------ publishing

    def _publish(self, target: str, account_id: int, action: int, data: dict[str, Any]) -> None:
        if self.sink is not None:
            self.sink.publish_user(target, account_id, action, data)

    def _emit_order(self, o: PxOrder) -> None:
        action = 1 if o.emitted else 0
        o.emitted = True
        self._publish("GatewayUserOrder", o.account_id, action, o.to_json())
        if self.config.emit_remove_action and o.status not in WORKING_STATUSES:
            self._publish("GatewayUserOrder", o.account_id, 2, o.to_json())

    # ------------------------------------------------------------------------------------------ sim events

    def _handler(self, acct: AccountState) -> Callable[[object], None]:
        def handle(ev: object) -> None:
            self._on_sim_event(acct, ev)

        return handle

    def _new_id(self) -> int:
        n = self._next_order
        self._next_order = n + 1
        return n

    def _derived_order(self, acct: AccountState, cid: str, ts: int) -> PxOrder | None:
        """A ProjectX record for an order the sim created itself (bracket child, close order)."""
        if cid.endswith(("-sl", "-tp")):
            parent = acct.by_cid.get(cid[:-3])
            if parent is None:
                return None
            is_sl = cid.endswith("-sl")
            return PxOrder(
                id=self._new_id(),
                account_id=acct.cfg.id,
                contract=parent.contract,
                cid=cid,
                created_ns=ts,
                updated_ns=ts,
                type=TYPE_STOP if is_sl else TYPE_LIMIT,
                side=1 - parent.side,
                size=parent.size,
                custom_tag=None,
                parent_id=parent.id,
            )
        if cid.startswith("sim-close-") and acct.pending_close:
            contract, side, size = acct.pending_close.popleft()
            return PxOrder(
                id=self._new_id(),
                account_id=acct.cfg.id,
                contract=contract,
                cid=cid,
                created_ns=ts,
                updated_ns=ts,
                type=TYPE_MARKET,
                side=side,
                size=size,
            )
        return None

    def _on_sim_event(self, acct: AccountState, ev: object) -> None:
        if isinstance(ev, (OrderModifyRejected, OrderCancelRejected)):
            acct.last_reject = ev.reason
            return
        cid = getattr(ev, "client_order_id", None)
        if cid is None:
            return
        ts = int(getattr(ev, "ts_event_ns", self.now_ns()))
        o = acct.by_cid.get(cid)
        if o is None:
            o = self._derived_order(acct, cid, ts)
            if o is None:
                return
            acct.by_cid[cid] = o
            acct.orders[o.id] = o
        o.updated_ns = max(o.updated_ns, ts)
        if isinstance(ev, OrderSubmitted):
            return
        if isinstance(ev, OrderAccepted):
            o.status = ST_OPEN
        elif isinstance(ev, OrderSuspended):
            o.status = ST_SUSPENDED
        elif isinstance(ev, OrderRejected):
            o.status = ST_REJECTED
            o.reason = ev.reason
        elif isinstance(ev, OrderCanceled):
            o.status = ST_CANCELLED
            o.reason = ev.reason
        elif isinstance(ev, OrderExpired):
            o.status = ST_EXPIRED
        elif isinstance(ev, OrderUpdated):
            if ev.qty is not None:
                o.size = ev.qty
            if ev.limit_price is not None:
                o.limit_price = ev.limit_price
            if ev.stop_price is not None:
                o.stop_price = ev.stop_price
            if ev.trail_ticks is not None:
                o.trail_ticks = ev.trail_ticks
        elif isinstance(ev, OrderFilled):
            self._on_fill(acct, o, ev)
            return
        else:
            return
        self._emit_order(o)

    def _on_fill(self, acct: AccountState, o: PxOrder, ev: OrderFilled) -> None:
        o.fill_volume += ev.qty
        o.fill_notional += ev.price.as_decimal() * ev.qty
        o.status = ST_FILLED if o.fill_volume >= o.size else ST_OPEN
        self._emit_order(o)
        sim = acct.sim
        realized = sim.account.realized_pnl.cents
        delta = realized - acct.realized_seen
        acct.realized_seen = realized
        symbol = o.contract.name
        after = sim.account.position(symbol)
        before = after - ev.qty * int(ev.side)
        closing = before != 0 and (before > 0) != (ev.side is Side.BUY)
        commission = Money.of(sim.config.commission_per_side_usd) * ev.qty
        t = PxTrade(
            id=self._next_trade,
            account_id=acct.cfg.id,
            contract=o.contract,
            ts_ns=ev.ts_event_ns,
            price=ev.price,
            pnl=Money(delta) if closing else None,
            fees=ev.fee,
            commissions=commission,
            side=0 if ev.side is Side.BUY else 1,
            size=ev.qty,
            order_id=o.id,
        )
        self._next_trade += 1
        acct.trades.append(t)
        self._publish("GatewayUserTrade", acct.cfg.id, 0, t.to_json())
        self._update_position(acct, o.contract, ev.ts_event_ns)
        self._publish("GatewayUserAccount", acct.cfg.id, 1, acct.to_json())

    def _update_position(self, acct: AccountState, contract: ContractInfo, ts: int) -> None:
        p = acct.sim.account.positions.get(contract.name)
        signed = 0 if p is None else p.signed_qty
        prev = acct.positions.get(contract.id)
        if signed == 0:
            if prev is not None and prev.size:
                prev.size = 0
                self._publish("GatewayUserPosition", acct.cfg.id, 1, prev.to_json())
            return
        assert p is not None
        avg = p.avg_price
        assert avg is not None
        typ = 1 if signed > 0 else 2
        if prev is None or prev.size == 0 or prev.type != typ:
            prev = PxPosition(self._next_position, acct.cfg.id, contract, ts, typ, abs(signed), avg)
            self._next_position += 1
            acct.positions[contract.id] = prev
            action = 0
        else:
            prev.size, prev.average_price, action = abs(signed), avg, 1
        self._publish("GatewayUserPosition", acct.cfg.id, action, prev.to_json())

    # ------------------------------------------------------------------------------------------ commands

    def place_order(self, r: PlaceRequest) -> Result:
        """``Order/place`` (module docstring for the codes)."""
        self.sync()
        acct = self.accounts.get(r.account_id)
        if acct is None:
            return 1, f"Account {r.account_id} not found", None
        if not acct.can_trade:
            return 4, "Account is not allowed to trade", None
        c = self.catalog.by_id(r.contract_id)
        if c is None:
            return 8, f"Contract {r.contract_id} not found", None
        if not self.catalog.is_active(c):
            return 9, f"Contract {r.contract_id} is not active", None
        otype = _TYPES.get(r.type)
        if otype is None:
            return 2, f"Invalid order type {r.type}", None
        if r.side not in (0, 1):
            return 2, f"Invalid order side {r.side}", None
        if not 1 <= r.size <= self.config.max_order_size:
            return 2, f"Invalid order size {r.size} (1..{self.config.max_order_size})", None
        for name, ticks in (("stopLossBracket", r.stop_loss_ticks), ("takeProfitBracket", r.take_profit_ticks)):
            if ticks is not None and not 1 <= ticks <= MAX_BRACKET_TICKS:
                return 2, f"Invalid {name}.ticks {ticks} (1..{MAX_BRACKET_TICKS})", None
        need_limit = r.type in (TYPE_LIMIT, TYPE_STOP_LIMIT)
        need_stop = r.type in (TYPE_STOP, TYPE_STOP_LIMIT)
        if need_limit and r.limit_price is None:
            return 2, "A limit price is required for this order type", None
        if need_stop and r.stop_price is None:
            return 2, "A stop price is required for this order type", None
        if r.type == TYPE_TRAILING and r.trail_price is None:
            return 2, "A trail price is required for a trailing stop", None
        prices: dict[str, Price | None] = {}
        for name, value, used in (
            ("limitPrice", r.limit_price, need_limit),
            ("stopPrice", r.stop_price, need_stop),
            ("trailPrice", r.trail_price, r.type == TYPE_TRAILING),
        ):
            if value is None or not used:
                prices[name] = None
                continue
            p, problem = _order_price(name, value, c.tick_size)
            if p is None:
                return 2, problem, None
            prices[name] = p
        if r.custom_tag is not None and r.custom_tag in acct.tags:
            return 2, f"customTag '{r.custom_tag}' must be unique across the account", None
        trail_ticks = None
        trail_price = prices["trailPrice"]
        if trail_price is not None:
            last = self.market.last_price(c.name) if self.market is not None else None
            if last is None:
                return 2, "No last traded price to measure the trail distance from", None
            trail_ticks = int(abs(Price.of(repr(last)).raw - trail_price.raw) // c.tick_size.raw)
            if trail_ticks > MAX_TRAIL_TICKS:
                return 2, f"Trail Distance exceeds maximum ({MAX_TRAIL_TICKS})", None
            if trail_ticks < 1:
                return 2, "Trail Distance must be at least one tick", None
        linked: tuple[ClientOrderId, ...] = ()
        if r.linked_order_id is not None:
            lo = acct.orders.get(r.linked_order_id)
            if lo is None or lo.status not in WORKING_STATUSES:
                return 2, f"Linked order {r.linked_order_id} is not working", None
            linked = (ClientOrderId(lo.cid),)
        oid = self._new_id()
        cid = f"px-{oid}"
        now = self.now_ns()
        order = Order(
            client_order_id=ClientOrderId(cid),
            account_id=AccountId(acct.cfg.id),
            symbol=c.name,
            side=Side.BUY if r.side == 0 else Side.SELL,
            qty=r.size,
            order_type=otype,
            limit_price=prices["limitPrice"],
            stop_price=prices["stopPrice"],
            trail_ticks=trail_ticks,
            tif=TimeInForce.GTC,
            tag=r.custom_tag or "",
            linked_ids=linked,
            ts_init_ns=now,
        )
        px = PxOrder(
            id=oid,
            account_id=acct.cfg.id,
            contract=c,
            cid=cid,
            created_ns=now,
            updated_ns=now,
            type=r.type,
            side=r.side,
            size=r.size,
            limit_price=prices["limitPrice"],
            stop_price=prices["stopPrice"],
            trail_price=trail_price,
            trail_ticks=trail_ticks,
            custom_tag=r.custom_tag,
            linked_id=r.linked_order_id,
        )
        acct.by_cid[cid] = px
        acct.orders[oid] = px
        acct.sim_orders[oid] = order
        if r.custom_tag is not None:
            acct.tags.add(r.custom_tag)
        bracket = None
        if r.has_bracket:
            bracket = BracketSpec(stop_loss_ticks=r.stop_loss_ticks, take_profit_ticks=r.take_profit_ticks)
        acct.sim.submit_order(order, bracket)
        if px.status == ST_REJECTED:
            if px.reason.startswith("Brackets cannot be used"):
                return 2, BRACKET_MESSAGE, oid
            code = 5 if px.reason.startswith("market closed") else 2
            return code, px.reason, None
        if self.market is not None:
            self.market.touch(c.name)
        return 0, None, oid

    def _order(self, account_id: int, order_id: int) -> tuple[AccountState | None, PxOrder | None]:
        acct = self.accounts.get(account_id)
        if acct is None:
            return None, None
        return acct, acct.orders.get(order_id)

    def modify_order(
        self,
        account_id: int,
        order_id: int,
        *,
        size: int | None,
        limit_price: Decimal | None,
        stop_price: Decimal | None,
        trail_price: Decimal | None,
    ) -> Result:
        """``Order/modify``: 0, 1 AccountNotFound, 2 OrderNotFound, 3 Rejected (the sim refused, a size outside
        1..``max_order_size``, a price at or below zero or off the tick); omitted fields stay (spec 3.3)."""
        self.sync()
        acct, o = self._order(account_id, order_id)
        if acct is None:
            return 1, f"Account {account_id} not found", None
        if o is None:
            return 2, f"Order {order_id} not found", None
        tick = o.contract.tick_size
        if size is not None and not 1 <= size <= self.config.max_order_size:
            return 3, f"Invalid order size {size} (1..{self.config.max_order_size})", None
        checked: dict[str, Price | None] = {}
        for name, value in (("limitPrice", limit_price), ("stopPrice", stop_price), ("trailPrice", trail_price)):
            p, problem = (None, "") if value is None else _order_price(name, value, tick)
            if value is not None and p is None:
                return 3, problem, None
            checked[name] = p
        lim, stp, trl = checked["limitPrice"], checked["stopPrice"], checked["trailPrice"]
        trail_ticks = None
        if trl is not None:
            last = self.market.last_price(o.contract.name) if self.market is not None else None
            if last is None:
                return 3, "No last traded price to measure the trail distance from", None
            trail_ticks = int(abs(Price.of(repr(last)).raw - trl.raw) // tick.raw)
        order = acct.sim_orders.get(order_id)
        stub = order if order is not None else _stub_order(acct, o)
        acct.last_reject = ""
        acct.sim.modify_order(stub, qty=size, limit_price=lim, stop_price=stp, trail_ticks=trail_ticks)
        if acct.last_reject:
            return 3, acct.last_reject, None
        if trl is not None:
            o.trail_price = trl
        if self.market is not None:
            self.market.touch(o.contract.name)
        return 0, None, None

    def cancel_order(self, account_id: int, order_id: int) -> Result:
        """``Order/cancel``: 0, 1 AccountNotFound, 2 OrderNotFound, 3 Rejected (not working)."""
        self.sync()
        acct, o = self._order(account_id, order_id)
        if acct is None:
            return 1, f"Account {account_id} not found", None
        if o is None:
            return 2, f"Order {order_id} not found", None
        acct.last_reject = ""
        acct.sim.cancel_order(_stub_order(acct, o))
        if acct.last_reject:
            return 3, acct.last_reject, None
        return 0, None, None

    def close_position(self, account_id: int, contract_id: str, size: int | None) -> Result:
        """``Position/closeContract`` (``size`` None) and ``partialCloseContract``, as market orders.

        Codes are the close enum's (1 account, 2 position, 3 contract, 4 not active); a bad partial size is
        reported as code -5, which the caller maps to the partial enum's 5 InvalidCloseSize.
        """
        self.sync()
        acct = self.accounts.get(account_id)
        if acct is None:
            return 1, f"Account {account_id} not found", None
        c = self.catalog.by_id(contract_id)
        if c is None:
            return 3, f"Contract {contract_id} not found", None
        if not self.catalog.is_active(c):
            return 4, f"Contract {contract_id} is not active", None
        pos = acct.sim.account.position(c.name)
        if pos == 0:
            return 2, f"No open position in {contract_id}", None
        if size is not None and not 1 <= size <= abs(pos):
            return -5, f"Invalid close size {size} (position {abs(pos)})", None
        n = abs(pos) if size is None else size
        acct.pending_close.append((c, 1 if pos > 0 else 0, n))
        before = set(acct.orders)
        acct.sim.close_position(c.name, size)
        created = [i for i in acct.orders if i not in before and acct.orders[i].cid.startswith("sim-close-")]
        acct.pending_close.clear()
        if self.market is not None:
            self.market.touch(c.name)
        return 0, None, created[-1] if created else None

    # ------------------------------------------------------------------------------------------ queries

    def account(self, account_id: object) -> AccountState | None:
        """The account with this id (``None`` for unknown or non-int ids)."""
        if not isinstance(account_id, int) or isinstance(account_id, bool):
            return None
        return self.accounts.get(account_id)


def _order_price(name: str, value: Decimal, tick: Price) -> tuple[Price | None, str]:
    """``(price, "")`` for a positive ``value`` on the tick grid, else ``(None, why)`` (more than 9 decimals is off
    every tick)."""
    if value <= 0:
        return None, f"Invalid {name} {value}: a price must be positive"
    try:
        p = Price.of(value)
    except InvalidPriceError:
        return None, f"Invalid {name} {value}: not on the tick size {tick}"
    if not p.is_aligned(tick):
        return None, f"Invalid {name} {value}: not on the tick size {tick}"
    return p, ""


def _stub_order(acct: AccountState, o: PxOrder) -> Order:
    """A sim ``Order`` carrying ``o``'s client order id (the sim looks orders up by it)."""
    return Order(
        client_order_id=ClientOrderId(o.cid),
        account_id=AccountId(acct.cfg.id),
        symbol=o.contract.name,
        side=Side.BUY if o.side == 0 else Side.SELL,
        qty=max(1, o.size),
        order_type=OrderType.MARKET,
    )
