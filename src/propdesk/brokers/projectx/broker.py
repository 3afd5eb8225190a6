"""``ProjectXBroker``: the ``Broker`` protocol over the ProjectX Gateway API (TopstepX).

Commands (:meth:`~ProjectXBroker.submit_order`, ``modify_order``, ``cancel_order``, ``cancel_all_orders``,
``close_position``, ``flatten``, ``subscribe``) schedule an asyncio task and return at once; outcomes arrive as
propdesk events through the handler (``../../brokers/base.py``). Sources: ``../shared/specs/projectx-gateway-api.md``
sections 2-9.

**Order events** come from the user hub's ``GatewayUserOrder`` (status 1 -> ``OrderAccepted``, 8 -> ``OrderSuspended``,
3 -> ``OrderCanceled``, 4 -> ``OrderExpired``, 5 -> ``OrderRejected``; a changed size or price -> ``OrderUpdated``) and
from the REST replies (``Order/place`` success -> ``OrderAccepted``, failure -> ``OrderRejected`` with the code's
meaning; modify/cancel failures -> ``OrderModifyRejected`` / ``OrderCancelRejected``). Each event is emitted once.
**Fills** come from ``GatewayUserTrade`` rows (one half-turn each), deduplicated by trade id, never from order
updates (spec 5.5: order fill events were seen missing); when an order reports more ``fillVolume`` than its trades,
``Trade/search`` fetches the missing rows. A terminal status waits for the order's fills so it never precedes them.

**Client order ids.** Every order carries its client order id as ``customTag``. Native bracket children (Auto OCO
mode, ``parentOrderId`` set) are ``<entry cid>-sl`` (stop types) / ``<entry cid>-tp`` (limit); the market orders
behind ``Position/closeContract`` are ``px-close-<orderId>`` (tag ``close``); any other order is foreign:
``ext-<orderId>``. While a place or close request is in flight, events of orders not yet known are held until it
answers, so a fast fill is never mistaken for a foreign one.

**Uncertain outcomes.** A place whose result is unknown (timeout, 5xx, disconnect, 401, 429) is looked up by its
``customTag`` (``Order/searchOpen``, then ``Order/search``); found -> it goes on as placed; absent -> ``OrderRejected``
(and should it still appear later it is canceled at once). It is never sent again. Modify and cancel are verified by
reading the order back; a close by reading the positions back (a close is only repeated when the position is
confirmed still open).

**Capabilities.** ``native_brackets`` only for an account configured ``auto_oco`` (the API cannot read the mode;
spec 7); a Position-Brackets rejection turns it off for the rest of the session. ``native_oco`` is off (ProjectX has
no OCO for unrelated orders), so the order manager synthesizes OCO and, in Position Brackets mode, brackets.

**Connection.** ``connect()`` logs in, checks the account, starts both hubs and returns once both are connected and
the first reconciliation ran. On every (re)connect of the user hub: resubscribe, reconcile (trades since the last
fill, open and suspended orders, orders that left the open set, positions, the account), then ``BrokerConnected``.
A drop emits ``BrokerDisconnected``. Position and account updates are passed on as ``PositionReport`` /
``AccountReport``; a stale market feed as :class:`~propdesk.brokers.projectx.realtime.FeedStale`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from typing import Any, Final

from pydantic import ValidationError

from propdesk.brokers.base import BrokerCapabilities
from propdesk.brokers.base import BrokerEventHandler as EventHandler
from propdesk.brokers.projectx.config import ProjectXSettings
from propdesk.brokers.projectx.errors import (
    ApiError,
    BracketModeError,
    OrderNotFoundError,
    PositionNotFoundError,
    ProjectXError,
    UncertainOutcomeError,
)
from propdesk.brokers.projectx.history import ProjectXBarSource
from propdesk.brokers.projectx.mapping import (
    ContractCache,
    QuoteMerger,
    account_to_report,
    depth_update,
    guess_contract_id,
    order_to_report,
    position_signed_qty,
    position_to_report,
    price_of,
    px_order_type,
    px_side,
    quote_tick,
    trade_tick,
    trade_to_fill,
    trade_to_fill_report,
    wire_price,
)
from propdesk.brokers.projectx.models import (
    Account,
    BracketSpecWire,
    Contract,
    DepthData,
    MarketTradeData,
    ModifyOrderRequest,
    OrderQueryFilter,
    OrderQueryRequest,
    OrderRow,
    PlaceOrderRequest,
    PositionRow,
    QuoteData,
    TradeRow,
)
from propdesk.brokers.projectx.realtime import (
    ClientFactory,
    FeedResumed,
    FeedStale,
    MarketHub,
    MarketSubscription,
    UserEvent,
    UserHub,
)
from propdesk.brokers.projectx.rest import ProjectXRest
from propdesk.core.backoff import Backoff
from propdesk.core.clock import Clock
from propdesk.core.errors import ConfigError, ContractError, PropdeskError
from propdesk.model.data import BarSeries, DepthUpdate, Timeframe
from propdesk.model.enums import Side
from propdesk.model.events import (
    BrokerConnected,
    BrokerDisconnected,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderEvent,
    OrderExpired,
    OrderModifyRejected,
    OrderRejected,
    OrderSuspended,
    OrderUpdated,
)
from propdesk.model.identifiers import AccountId, BrokerOrderId, ClientOrderId
from propdesk.model.orders import BracketSpec, Order, OrderType
from propdesk.model.price import Price
from propdesk.model.reports import AccountReport, FillReport, OrderReport, PositionReport

logger = logging.getLogger(__name__)

EXT_PREFIX: Final[str] = "ext-"
CLOSE_PREFIX: Final[str] = "px-close-"
CLOSE_TAG: Final[str] = "close"
_STOP_TYPES: Final[frozenset[int]] = frozenset({3, 4, 5})
_DAY_NS: Final[int] = 86_400 * 1_000_000_000


def _place_lookup_backoff(retry_after_s: float) -> Backoff:
    """The waits before each lookup of a place whose outcome is unknown: 4 lookups, the first after the reply's
    ``Retry-After`` (at least 0.2 s), doubling, at most 30 s (this caller's own numbers)."""
    return Backoff(max(retry_after_s, 0.2), 2.0, 30.0, max_attempts=4)


SL_BRACKET_TYPE: Final[int] = 4
"""Stop-loss bracket child type (Stop), as PXPY sends (spec 3.3)."""
TP_BRACKET_TYPE: Final[int] = 1
"""Take-profit bracket child type (Limit)."""


@dataclass(frozen=True, slots=True)
class BrokerCommandFailed:
    """A command without an order of its own (close, cancel-all, flatten, subscribe) failed: ``reason`` says why."""

    account_id: AccountId
    command: str
    symbol: str | None
    reason: str
    ts_ns: int


@dataclass(slots=True)
class _OrderState:
    """What the broker knows of one ProjectX order."""

    order_id: int
    cid: ClientOrderId
    contract_id: str
    symbol: str
    tag: str = ""
    px_status: int | None = None
    size: int = 0
    limit: Price | None = None
    stop: Price | None = None
    accepted: bool = False
    suspended: bool = False
    terminal: bool = False
    fill_volume: int = 0
    filled_by_trades: int = 0
    pending_terminal: OrderEvent | None = None
    updates: int = 0
    created_ns: int = 0


@dataclass(slots=True)
class _Held:
    kind: str  # "order" or "trade"
    row: OrderRow | TradeRow
    reconciled: bool
    seq: int = field(default=0)


class ProjectXBroker:
    """The ProjectX broker for one account (see the module docstring).

    Args:
        settings: hosts, credentials, budgets and the account's bracket mode.
        account_id: the ProjectX ``accountId`` to trade (list them with :func:`discover_accounts`).
        clock: stamps events the broker itself creates (default: wall clock).
        rest: a REST client (default: built from ``settings``).
        hub_factory: builds the SignalR clients (default: pysignalr).
        last_fill_ns: returns the time of the last journaled fill (UTC ns), where reconciliation starts; default:
            the last fill this broker saw, else 24 h back.

    Raises:
        ConfigError: from :meth:`connect` when credentials are missing or the account is not found.
    """

    def __init__(
        self,
        settings: ProjectXSettings,
        *,
        account_id: int,
        clock: Clock | None = None,
        rest: ProjectXRest | None = None,
        hub_factory: ClientFactory | None = None,
        last_fill_ns: Callable[[], int | None] | None = None,
    ) -> None:
        self.settings = settings
        self._account_id = AccountId(account_id)
        self._clock = clock
        self.rest = rest if rest is not None else ProjectXRest(settings)
        self._hub_factory = hub_factory
        self._last_fill_fn = last_fill_ns
        self._handler: EventHandler = _drop
        native = settings.bracket_mode(account_id) == "auto_oco" and settings.order_place_style == "brackets"
        self._caps = _caps(native)
        self.contracts = ContractCache()
        self.quotes = QuoteMerger()
        self._last_trade_px: dict[str, Price] = {}
        self._orders: dict[int, _OrderState] = {}
        self._cid_to_id: dict[str, int] = {}
        self._known_cids: set[str] = set()
        self._absent: set[str] = set()
        self._place_tasks: dict[str, asyncio.Task[None]] = {}
        self._inflight = 0
        self._held: list[_Held] = []
        self._trade_ids: set[str] = set()
        self._last_fill_ns: int | None = None
        self._positions: dict[str, PositionRow] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._user: UserHub | None = None
        self._market: MarketHub | None = None
        self._user_up = False
        self._market_up = False
        self._connected = False
        self._connected_event: asyncio.Event | None = None
        self._token_task: asyncio.Task[None] | None = None
        self._stopping = False
        self.bars = ProjectXBarSource(self.rest, self._contract_id_of)

    # ------------------------------------------------------------------------------------------------ protocol

    @property
    def name(self) -> str:
        """``projectx``."""
        return "projectx"

    @property
    def account_id(self) -> AccountId:
        """The ProjectX account id."""
        return self._account_id

    @property
    def capabilities(self) -> BrokerCapabilities:
        """See the module docstring."""
        return self._caps

    @property
    def is_connected(self) -> bool:
        """True while both hubs are connected and reconciled."""
        return self._connected

    def set_event_handler(self, handler: EventHandler) -> None:
        """Register the one callable receiving every event."""
        self._handler = handler

    def _now(self) -> int:
        return self._clock.timestamp_ns() if self._clock is not None else time.time_ns()

    def _emit(self, event: object) -> None:
        try:
            self._handler(event)
        except Exception:
            logger.exception("event handler failed on %s", type(event).__name__)

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=f"projectx-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("ProjectX task %s failed", task.get_name(), exc_info=task.exception())

    async def wait_idle(self, timeout_s: float = 10.0) -> None:
        """Wait until every command task has finished (tests, orderly shutdown)."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while self._tasks and asyncio.get_running_loop().time() < deadline:
            await asyncio.wait(set(self._tasks), timeout=max(0.0, deadline - asyncio.get_running_loop().time()))

    # ------------------------------------------------------------------------------------------------ connection

    async def connect(self) -> None:
        """Log in, check the account, connect both hubs and reconcile; emits ``BrokerConnected``.

        Raises:
            ConfigError: missing credentials, or the account is not among the user's accounts.
            ProjectXError: login refused, or the hubs did not connect within ``hub_connect_timeout_s``.
        """
        self._stopping = False
        await self.rest.tokens.get()
        accounts = await self.rest.search_accounts(only_active=False)
        if not any(a.id == self._account_id for a in accounts):
            known = ", ".join(f"{a.id} ({a.name})" for a in accounts) or "none"
            raise ConfigError(f"ProjectX account {self._account_id} not found; the user's accounts: {known}")
        self._connected_event = asyncio.Event()
        s = self.settings
        self._user = UserHub(
            s.user_hub_url,
            self._hub_token,
            [self._account_id],
            on_event=self._on_user_event,
            reconcile=self._reconcile,
            on_state=self._on_user_state,
            reconnect_base_s=s.reconnect_base_s,
            reconnect_max_s=s.reconnect_max_s,
            factory=self._hub_factory,
        )
        self._market = MarketHub(
            s.market_hub_url,
            self._hub_token,
            on_quote=self._on_quote,
            on_trades=self._on_trades,
            on_depth=self._on_depth,
            on_state=self._on_market_state,
            on_stale=self._on_stale,
            on_resumed=self._on_resumed,
            stale_s=s.stale_feed_s,
            stale_check_interval_s=s.stale_check_interval_s,
            reconnect_on_stale=s.reconnect_on_stale,
            reconnect_base_s=s.reconnect_base_s,
            reconnect_max_s=s.reconnect_max_s,
            factory=self._hub_factory,
        )
        self._user.conn.start()
        self._market.start()
        if self._token_task is None or self._token_task.done():
            self._token_task = asyncio.get_running_loop().create_task(self._token_upkeep(), name="projectx-token")
        try:
            await asyncio.wait_for(self._connected_event.wait(), s.hub_connect_timeout_s)
        except TimeoutError:
            await self.disconnect()
            raise ProjectXError(f"ProjectX hubs did not connect within {s.hub_connect_timeout_s:g} s") from None

    async def disconnect(self) -> None:
        """Stop both hubs and the background tasks; working orders stay at the broker."""
        self._stopping = True
        if self._token_task is not None:
            self._token_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._token_task
        if self._user is not None:
            await self._user.conn.stop()
        if self._market is not None:
            await self._market.stop()
        was = self._connected
        self._connected = False
        if was:
            self._emit(BrokerDisconnected(self._account_id, self._now(), "disconnect requested"))

    async def aclose(self) -> None:
        """Disconnect and close the HTTP client."""
        await self.disconnect()
        for t in list(self._tasks):
            t.cancel()
        await self.rest.aclose()

    async def _hub_token(self, force: bool) -> str:
        if force:
            return await self.rest.tokens.refresh(stale=self.rest.tokens.token)
        return await self.rest.tokens.get()

    async def _token_upkeep(self) -> None:
        while True:
            await asyncio.sleep(self.settings.token_check_interval_s)
            try:
                await self.rest.tokens.get()
            except PropdeskError as exc:
                logger.error("ProjectX token renewal failed: %s", exc)

    def _on_user_state(self, up: bool, reason: str) -> None:
        self._user_up = up
        self._update_connected(reason)

    def _on_market_state(self, up: bool, reason: str) -> None:
        self._market_up = up
        self._update_connected(reason)

    def _update_connected(self, reason: str) -> None:
        up = self._user_up and self._market_up
        if up == self._connected:
            return
        self._connected = up
        if up:
            self._emit(BrokerConnected(self._account_id, self._now()))
            if self._connected_event is not None:
                self._connected_event.set()
        elif not self._stopping:
            self._emit(BrokerDisconnected(self._account_id, self._now(), reason))

    def force_reconnect(self, reason: str = "requested") -> None:
        """Drop both hub connections; they reconnect with a fresh token, resubscribe and reconcile."""
        if self._user is not None:
            self._user.conn.force_reconnect(reason)
        if self._market is not None:
            self._market.conn.force_reconnect(reason)

    # ------------------------------------------------------------------------------------------------ contracts

    async def contract(self, symbol: str) -> Contract:
        """The ProjectX contract of ``symbol`` (``ESZ5``), resolved through the API and cached: ``Contract/search``
        for an exact name, else ``Contract/searchById`` of the id propdesk's grammar gives (confirmed by the server).

        Raises:
            ContractError: ProjectX has no such contract.
        """
        c = self.contracts.by_symbol(symbol)
        if c is not None:
            return c
        try:
            for item in await self.rest.search_contracts(symbol, live=False):
                if item.name == symbol:
                    self.contracts.add(item)
                    return item
        except ApiError as exc:
            logger.debug("Contract/search %s: %s", symbol, exc)
        try:
            guess = guess_contract_id(symbol)
            item = await self.rest.contract_by_id(guess)
        except (ContractError, ApiError) as exc:
            raise ContractError(f"ProjectX has no contract {symbol!r}: {exc}") from None
        self.contracts.add(item)
        if self.contracts.by_symbol(symbol) is None:
            self.contracts._by_symbol[symbol] = item  # the server names it differently; keep the caller's name too
        return item

    async def _contract_id_of(self, symbol: str) -> str:
        return (await self.contract(symbol)).id

    # ------------------------------------------------------------------------------------------------ order states

    def _state_for(self, oid: int, cid: ClientOrderId, contract_id: str, tag: str = "") -> _OrderState:
        st = self._orders.get(oid)
        if st is None:
            st = _OrderState(oid, cid, contract_id, self.contracts.symbol_of(contract_id) if contract_id else "", tag)
            self._orders[oid] = st
            self._cid_to_id[cid] = oid
        return st

    def _resolve_cid(self, row: OrderRow) -> ClientOrderId | None:
        """The client order id of an order not seen before, or None to hold its events (a request in flight)."""
        if row.custom_tag:
            return ClientOrderId(row.custom_tag)
        if row.parent_order_id is not None:
            parent = self._orders.get(row.parent_order_id)
            if parent is not None:
                kind = "sl" if row.type in _STOP_TYPES else "tp"
                return ClientOrderId(f"{parent.cid}-{kind}")
        if self._inflight > 0:
            return None
        return ClientOrderId(f"{EXT_PREFIX}{row.id}")

    def _on_user_event(self, target: str, ev: UserEvent) -> None:
        try:
            if target == "GatewayUserOrder":
                self._on_order_row(OrderRow.model_validate(ev.data), reconciled=False)
            elif target == "GatewayUserTrade":
                self._on_trade_row(TradeRow.model_validate(ev.data), reconciled=False)
            elif target == "GatewayUserPosition":
                self._on_position_row(PositionRow.model_validate(ev.data))
            elif target == "GatewayUserAccount":
                acct = Account.model_validate(ev.data)
                if acct.id == self._account_id:
                    self._emit(account_to_report(acct, ts_ns=self._now()))
        except ValidationError as exc:
            logger.error("ProjectX %s payload not understood: %s (%r)", target, exc, ev.data)

    def _hold(self, kind: str, row: OrderRow | TradeRow, reconciled: bool) -> None:
        self._held.append(_Held(kind, row, reconciled))

    def _drain_held(self) -> None:
        if not self._held:
            return
        held, self._held = self._held, []
        for h in held:
            if isinstance(h.row, OrderRow):
                self._on_order_row(h.row, reconciled=h.reconciled)
            else:
                self._on_trade_row(h.row, reconciled=h.reconciled)

    def _on_order_row(self, row: OrderRow, *, reconciled: bool) -> None:
        if row.account_id and row.account_id != self._account_id:
            return
        st = self._orders.get(row.id)
        if st is None:
            cid = self._resolve_cid(row)
            if cid is None:
                self._hold("order", row, reconciled)
                return
            st = self._state_for(row.id, cid, row.contract_id)
            st.created_ns = row.creation_timestamp or 0
            if cid in self._absent:
                logger.error("order %s was reported not placed, yet ProjectX has it (%s): canceling it", cid, row.id)
                self._absent.discard(cid)
                self._spawn(self._cancel_by_id(row.id, cid), f"cancel-late-{row.id}")
            self._apply_order_row(st, row, reconciled)
            self._drain_held()
            return
        self._apply_order_row(st, row, reconciled)

    def _order_changes(self, st: _OrderState, row: OrderRow) -> tuple[int | None, Price | None, Price | None]:
        qty = row.size if row.size and row.size != st.size else None
        lim = price_of(row.limit_price) if row.limit_price is not None else None
        stp = price_of(row.stop_price) if row.stop_price is not None else None
        lim = lim if lim is not None and lim != st.limit else None
        stp = stp if stp is not None and stp != st.stop else None
        return qty, lim, stp

    def _apply_order_row(self, st: _OrderState, row: OrderRow, reconciled: bool) -> None:
        if st.terminal:
            return
        ts = row.update_timestamp or row.creation_timestamp or self._now()
        acct = self._account_id
        cid = st.cid
        bid = BrokerOrderId(row.id)
        status = row.status
        first = st.px_status is None
        st.px_status = status
        st.fill_volume = max(st.fill_volume, row.fill_volume)
        qty, lim, stp = self._order_changes(st, row)
        if first:
            st.size = row.size
            st.limit = price_of(row.limit_price) if row.limit_price is not None else None
            st.stop = price_of(row.stop_price) if row.stop_price is not None else None
            qty = lim = stp = None
        if status == 1:
            if not st.accepted:
                st.accepted = True
                self._emit(
                    OrderAccepted(
                        client_order_id=cid, account_id=acct, ts_event_ns=ts, broker_order_id=bid, reconciled=reconciled
                    )
                )
                if st.suspended:  # a bracket child activated: its size and price are set now
                    qty = row.size or None
                    lim = price_of(row.limit_price) if row.limit_price is not None else None
                    stp = price_of(row.stop_price) if row.stop_price is not None else None
            self._emit_update(st, row, qty, lim, stp, ts, reconciled)
        elif status == 8:
            if not st.suspended and not st.accepted:
                st.suspended = True
                self._emit(
                    OrderSuspended(
                        client_order_id=cid, account_id=acct, ts_event_ns=ts, broker_order_id=bid, reconciled=reconciled
                    )
                )
            else:
                self._emit_update(st, row, qty, lim, stp, ts, reconciled)
        elif status in (2, 3, 4, 5):
            st.terminal = True
            event: OrderEvent | None = None
            if status == 3:
                event = OrderCanceled(
                    client_order_id=cid, account_id=acct, ts_event_ns=ts, reason="canceled", reconciled=reconciled
                )
            elif status == 4:
                event = OrderExpired(client_order_id=cid, account_id=acct, ts_event_ns=ts, reconciled=reconciled)
            elif status == 5:
                if cid in self._place_tasks:  # the place reply (in flight) carries the reason: let it report
                    st.terminal = False
                    return
                event = OrderRejected(
                    client_order_id=cid,
                    account_id=acct,
                    ts_event_ns=ts,
                    reason="rejected by ProjectX (order status 5)",
                    reconciled=reconciled,
                )
            if st.fill_volume > st.filled_by_trades:
                st.pending_terminal = event
                self._spawn(self._fetch_missing_trades(st), f"trades-{st.order_id}")
            elif event is not None:
                self._emit(event)
        if status == 1 and st.fill_volume > st.filled_by_trades:
            self._spawn(self._fetch_missing_trades(st), f"trades-{st.order_id}")

    def _emit_update(  # noqa: PLR0917
        self,
        st: _OrderState,
        row: OrderRow,
        qty: int | None,
        lim: Price | None,
        stp: Price | None,
        ts: int,
        reconciled: bool,
    ) -> None:
        if qty is None and lim is None and stp is None:
            return
        if qty is not None:
            st.size = qty
        if lim is not None:
            st.limit = lim
        if stp is not None:
            st.stop = stp
        st.updates += 1
        self._emit(
            OrderUpdated(
                client_order_id=st.cid,
                account_id=self._account_id,
                ts_event_ns=ts,
                qty=qty,
                limit_price=lim,
                stop_price=stp,
                reconciled=reconciled,
            )
        )

    async def _fetch_missing_trades(self, st: _OrderState) -> None:
        await asyncio.sleep(self.settings.confirm_timeout_s)
        if st.filled_by_trades >= st.fill_volume:
            self._flush_terminal(st)
            return
        since = (st.created_ns or self._now() - _DAY_NS) - 60 * 1_000_000_000
        try:
            trades = await self.rest.search_trades(self._account_id, since)
        except ProjectXError as exc:
            logger.error("order %s: fills missing and Trade/search failed: %s", st.cid, exc)
            return
        for t in trades:
            if t.order_id == st.order_id:
                self._on_trade_row(t, reconciled=True)
        self._flush_terminal(st)

    def _flush_terminal(self, st: _OrderState) -> None:
        ev = st.pending_terminal
        if ev is not None:
            st.pending_terminal = None
            if st.filled_by_trades < st.fill_volume:
                logger.error(
                    "order %s: ProjectX reports %s filled but only %s in trades",
                    st.cid,
                    st.fill_volume,
                    st.filled_by_trades,
                )
            self._emit(ev)

    def _on_trade_row(self, row: TradeRow, *, reconciled: bool) -> None:
        if row.account_id and row.account_id != self._account_id:
            return
        tid = str(row.id)
        if tid in self._trade_ids:
            return
        if row.voided:
            self._trade_ids.add(tid)
            logger.warning("ProjectX trade %s (order %s) is voided; not booked", tid, row.order_id)
            return
        st = self._orders.get(row.order_id)
        if st is None:
            if self._inflight > 0:
                self._hold("trade", row, reconciled)
                return
            st = self._state_for(row.order_id, ClientOrderId(f"{EXT_PREFIX}{row.order_id}"), row.contract_id)
        self._trade_ids.add(tid)
        st.filled_by_trades += row.size
        st.fill_volume = max(st.fill_volume, st.filled_by_trades)
        fill = trade_to_fill(
            row, client_order_id=st.cid, symbol=st.symbol or self.contracts.symbol_of(row.contract_id), tag=st.tag
        )
        if reconciled:
            fill = replace(fill, reconciled=True)
        if self._last_fill_ns is None or row.creation_timestamp > self._last_fill_ns:
            self._last_fill_ns = row.creation_timestamp
        self._emit(fill)
        if st.pending_terminal is not None and st.filled_by_trades >= st.fill_volume:
            self._flush_terminal(st)

    def _on_position_row(self, row: PositionRow) -> None:
        if row.account_id and row.account_id != self._account_id:
            return
        if row.size == 0:
            self._positions.pop(row.contract_id, None)
        else:
            self._positions[row.contract_id] = row
        self._emit(position_to_report(row, symbol=self.contracts.symbol_of(row.contract_id)))

    # ------------------------------------------------------------------------------------------------ reconcile

    async def _reconcile(self) -> None:
        """After every user-hub (re)connect: trades, orders, positions and the account from REST (module docstring)."""
        acct = self._account_id
        now = self._now()
        since = self._last_fill_fn() if self._last_fill_fn is not None else None
        if since is None:
            since = self._last_fill_ns if self._last_fill_ns is not None else now - _DAY_NS
        for t in await self.rest.search_trades(acct, since):
            self._on_trade_row(t, reconciled=True)
        rows = await self._working_rows(priority=False)
        seen = {r.id for r in rows}
        for r in rows:
            self._on_order_row(r, reconciled=True)
        gone = [st for st in self._orders.values() if not st.terminal and st.order_id not in seen]
        if gone:
            start = min((st.created_ns or now) for st in gone) - 60 * 1_000_000_000
            by_id = {r.id: r for r in await self.rest.search_orders(acct, start)}
            for st in gone:
                found = by_id.get(st.order_id)
                if found is not None:
                    self._on_order_row(found, reconciled=True)
        positions = await self.rest.search_open_positions(acct)
        current = {p.contract_id for p in positions}
        for cid in [c for c in self._positions if c not in current]:
            old = self._positions.pop(cid)
            self._emit(position_to_report(old.model_copy(update={"size": 0}), symbol=self.contracts.symbol_of(cid)))
        for p in positions:
            self._on_position_row(p)
        for a in await self.rest.search_accounts(only_active=False):
            if a.id == acct:
                self._emit(account_to_report(a, ts_ns=now))

    async def _working_rows(self, *, priority: bool) -> list[OrderRow]:
        """Open orders including Suspended bracket children: ``Order/searchOpen`` plus ``Order/v2/query`` for status 8
        (``searchOpen`` misses them, spec 3.3); without v2, ``Order/search`` of the last day filtered to status 8."""
        acct = self._account_id
        rows = {r.id: r for r in await self.rest.search_open_orders(acct, priority=priority)}
        try:
            q = OrderQueryRequest(filter=OrderQueryFilter(account_id=acct, statuses=[1, 8]), page_size=500)
            extra, _total = await self.rest.query_orders(q, priority=priority)
        except ProjectXError as exc:
            logger.debug("Order/v2/query unavailable (%s); using Order/search for suspended orders", exc)
            extra = [
                r
                for r in await self.rest.search_orders(acct, self._now() - _DAY_NS, priority=priority)
                if r.status == 8
            ]
        for r in extra:
            if r.status in (1, 6, 7, 8):
                rows.setdefault(r.id, r)
        return sorted(rows.values(), key=lambda r: r.id)

    # ------------------------------------------------------------------------------------------------ commands

    def submit_order(self, order: Order, bracket: BracketSpec | None = None) -> None:
        """Place ``order`` (``customTag`` = its client order id); native bracket objects when ``bracket`` is given
        and the account has them. Outcome: ``OrderAccepted`` / ``OrderSuspended`` / ``OrderRejected`` ..."""
        cid = order.client_order_id
        self._known_cids.add(cid)
        self._inflight += 1
        self._place_tasks[cid] = self._spawn(self._place(order, bracket), f"place-{cid}")

    def _reject(self, cid: ClientOrderId, reason: str) -> None:
        oid = self._cid_to_id.get(cid)
        st = None if oid is None else self._orders.get(oid)
        if st is not None:
            if st.terminal:
                return
            st.terminal = True
        self._emit(
            OrderRejected(client_order_id=cid, account_id=self._account_id, ts_event_ns=self._now(), reason=reason)
        )

    def _build_place(self, order: Order, contract: Contract, bracket: BracketSpec | None) -> PlaceOrderRequest:
        tick = price_of(contract.tick_size)
        t = order.order_type
        lim = stop = trail = None
        if order.limit_price is not None and t in (OrderType.LIMIT, OrderType.STOP_LIMIT):
            lim = wire_price(order.limit_price, tick)
        if order.stop_price is not None and t in (OrderType.STOP, OrderType.STOP_LIMIT):
            stop = wire_price(order.stop_price, tick)
        if t is OrderType.TRAILING_STOP:
            trail = self._trail_price(contract.id, order.side, order.trail_ticks or 0, tick)
        sl = tp = None
        linked = None
        if bracket is not None:
            if not self._caps.native_brackets:
                raise BracketModeError(
                    endpoint="Order/place",
                    error_code=2,
                    name="OrderRejected",
                    meaning="native brackets are off for this account (Position Brackets mode)",
                    server_message=None,
                )
            if bracket.stop_loss_ticks is not None:
                sl = BracketSpecWire(ticks=bracket.stop_loss_ticks, type=SL_BRACKET_TYPE)
            if bracket.take_profit_ticks is not None:
                tp = BracketSpecWire(ticks=bracket.take_profit_ticks, type=TP_BRACKET_TYPE)
        if self.settings.order_place_style == "linked" and order.linked_ids:
            for other in order.linked_ids:
                if other in self._cid_to_id:
                    linked = self._cid_to_id[other]
                    break
        return PlaceOrderRequest(
            account_id=self._account_id,
            contract_id=contract.id,
            type=px_order_type(t),
            side=px_side(order.side),
            size=order.qty,
            limit_price=lim,
            stop_price=stop,
            trail_price=trail,
            custom_tag=order.client_order_id,
            linked_order_id=linked,
            stop_loss_bracket=sl,
            take_profit_bracket=tp,
        )

    def _trail_price(self, contract_id: str, side: Side, ticks: int, tick: Price) -> Any:
        """``trailPrice`` is an absolute level (spec 3.3, UNVERIFIED): ``ticks`` from the last trade (or quote), below
        it for a sell stop, above for a buy stop."""
        last = self._last_trade_px.get(contract_id)
        if last is None:
            q = self.quotes.get(contract_id)
            if q is not None and q.last_price is not None:
                last = price_of(q.last_price)
        if last is None:
            raise ContractError("a trailing stop needs the last price: subscribe to the contract first")
        level = Price(last.raw - int(side) * ticks * tick.raw)
        return wire_price(level.round_to_tick(tick), tick)

    async def _place(self, order: Order, bracket: BracketSpec | None) -> None:
        cid = order.client_order_id
        try:
            try:
                contract = await self.contract(order.symbol)
                req = self._build_place(order, contract, bracket)
            except PropdeskError as exc:
                self._reject(cid, f"not sent: {exc}")
                return
            t0 = self._now()
            try:
                oid = await self.rest.place_order(req)
            except BracketModeError as exc:
                if self._caps.native_brackets:
                    logger.warning("account %s is in Position Brackets mode; native brackets off", self._account_id)
                    self._caps = _caps(False)
                self._note_rejected_id(exc, cid, contract.id, order.tag)
                self._reject(cid, exc.reason)
                return
            except ApiError as exc:
                self._note_rejected_id(exc, cid, contract.id, order.tag)
                self._reject(cid, exc.reason)
                return
            except UncertainOutcomeError as exc:
                logger.warning("place %s: %s; looking it up by customTag", cid, exc)
                await self._resolve_place(order, contract.id, t0, exc)
                return
            except ProjectXError as exc:  # CircuitOpenError: nothing was sent
                self._reject(cid, f"not sent: {exc}")
                return
            self._on_place_ok(cid, oid, contract.id, order.tag)
        finally:
            self._inflight -= 1
            self._place_tasks.pop(cid, None)
            self._drain_held()

    def _note_rejected_id(self, exc: ApiError, cid: ClientOrderId, contract_id: str, tag: str) -> None:
        if exc.order_id is not None:  # a rejected order can still carry an id (spec 3.3): map its events to cid
            st = self._state_for(exc.order_id, cid, contract_id, tag)
            st.tag = tag

    def _on_place_ok(self, cid: ClientOrderId, oid: int, contract_id: str, tag: str) -> None:
        st = self._state_for(oid, cid, contract_id, tag)
        st.tag = tag
        if not st.created_ns:
            st.created_ns = self._now()
        if st.px_status == 5 and not st.terminal:
            self._reject(cid, "rejected by ProjectX (order status 5)")
            return
        if not (st.accepted or st.suspended or st.terminal or st.filled_by_trades):
            st.accepted = True
            self._emit(
                OrderAccepted(
                    client_order_id=cid,
                    account_id=self._account_id,
                    ts_event_ns=self._now(),
                    broker_order_id=BrokerOrderId(oid),
                )
            )

    async def _resolve_place(self, order: Order, contract_id: str, t0: int, exc: UncertainOutcomeError) -> None:
        cid = order.client_order_id
        for delay in _place_lookup_backoff(exc.retry_after_s).delays():
            await asyncio.sleep(delay)
            try:
                row = await self._find_by_tag(cid, t0)
            except ProjectXError as err:
                logger.warning("place %s: lookup by customTag failed (%s); retrying", cid, err)
                continue
            if row is not None:
                logger.info("place %s: found at ProjectX as order %s", cid, row.id)
                self._on_place_ok(cid, row.id, contract_id, order.tag)
                self._on_order_row(row, reconciled=True)
                return
            self._absent.add(cid)
            self._reject(
                cid, f"not placed: the outcome was uncertain ({exc.cause}) and no order carries customTag {cid}"
            )
            return
        logger.error("place %s: outcome still unknown; it stays SUBMITTED until the next reconciliation", cid)

    async def _find_by_tag(self, cid: str, since_ns: int) -> OrderRow | None:
        for r in await self.rest.search_open_orders(self._account_id, priority=True):
            if r.custom_tag == cid:
                return r
        for r in await self.rest.search_orders(self._account_id, since_ns - 300 * 1_000_000_000, priority=True):
            if r.custom_tag == cid:
                return r
        return None

    async def _broker_id(self, order: Order) -> int | None:
        cid = order.client_order_id
        oid = self._cid_to_id.get(cid)
        if oid is None:
            task = self._place_tasks.get(cid)
            if task is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(task)
                oid = self._cid_to_id.get(cid)
        if oid is None and order.broker_order_id is not None:
            oid = int(order.broker_order_id)
        return oid

    def modify_order(
        self,
        order: Order,
        *,
        qty: int | None = None,
        limit_price: Price | None = None,
        stop_price: Price | None = None,
        trail_ticks: int | None = None,
    ) -> None:
        """``Order/modify`` (only the given fields). Outcome: ``OrderUpdated`` or ``OrderModifyRejected``."""
        self._spawn(self._modify(order, qty, limit_price, stop_price, trail_ticks), f"modify-{order.client_order_id}")

    def _modify_rejected(self, cid: ClientOrderId, reason: str) -> None:
        self._emit(
            OrderModifyRejected(
                client_order_id=cid, account_id=self._account_id, ts_event_ns=self._now(), reason=reason
            )
        )

    async def _modify(
        self, order: Order, qty: int | None, lim: Price | None, stp: Price | None, trail_ticks: int | None
    ) -> None:
        cid = order.client_order_id
        oid = await self._broker_id(order)
        if oid is None:
            self._modify_rejected(cid, "the order is not known at ProjectX")
            return
        st = self._orders.get(oid)
        try:
            contract = await self.contract(order.symbol)
            tick = price_of(contract.tick_size)
            req = ModifyOrderRequest(
                account_id=self._account_id,
                order_id=oid,
                size=qty,
                limit_price=None if lim is None else wire_price(lim, tick),
                stop_price=None if stp is None else wire_price(stp, tick),
                trail_price=None
                if trail_ticks is None
                else self._trail_price(contract.id, order.side, trail_ticks, tick),
            )
        except PropdeskError as exc:
            self._modify_rejected(cid, f"not sent: {exc}")
            return
        before = st.updates if st is not None else 0
        try:
            await self.rest.modify_order(req)
        except ApiError as exc:
            self._modify_rejected(cid, exc.reason)
            return
        except UncertainOutcomeError as exc:
            logger.warning("modify %s: %s; reading the order back", cid, exc)
            row = await self._read_order(oid, getattr(st, "created_ns", 0))
            if row is None or not _matches(row, qty, lim, stp):
                if row is not None:
                    self._on_order_row(row, reconciled=True)
                self._modify_rejected(cid, f"outcome uncertain ({exc.cause}); the order is unchanged at ProjectX")
                return
        except ProjectXError as exc:
            self._modify_rejected(cid, f"not sent: {exc}")
            return
        if st is None:
            st = self._orders.get(oid)
        if st is not None and st.updates != before:
            return  # the hub already reported the change
        if st is not None:
            if qty is not None:
                st.size = qty
            if lim is not None:
                st.limit = lim
            if stp is not None:
                st.stop = stp
            st.updates += 1
        self._emit(
            OrderUpdated(
                client_order_id=cid,
                account_id=self._account_id,
                ts_event_ns=self._now(),
                qty=qty,
                limit_price=lim,
                stop_price=stp,
                trail_ticks=trail_ticks,
            )
        )

    async def _read_order(self, oid: int, created_ns: int) -> OrderRow | None:
        try:
            for r in await self.rest.search_open_orders(self._account_id, priority=True):
                if r.id == oid:
                    return r
            start = (created_ns or self._now() - _DAY_NS) - 60 * 1_000_000_000
            for r in await self.rest.search_orders(self._account_id, start, priority=True):
                if r.id == oid:
                    return r
        except ProjectXError as exc:
            logger.error("reading order %s back failed: %s", oid, exc)
        return None

    def cancel_order(self, order: Order) -> None:
        """``Order/cancel``. Outcome: ``OrderCanceled`` (from the hub, verified through REST when it stays silent)
        or ``OrderCancelRejected``."""
        self._spawn(self._cancel(order), f"cancel-{order.client_order_id}")

    def _cancel_rejected(self, cid: ClientOrderId, reason: str) -> None:
        self._emit(
            OrderCancelRejected(
                client_order_id=cid, account_id=self._account_id, ts_event_ns=self._now(), reason=reason
            )
        )

    async def _cancel(self, order: Order) -> None:
        cid = order.client_order_id
        oid = await self._broker_id(order)
        if oid is None:
            self._cancel_rejected(cid, "the order is not known at ProjectX")
            return
        await self._cancel_by_id(oid, cid)

    async def _cancel_by_id(self, oid: int, cid: ClientOrderId, *, resend: bool = True) -> None:
        st = self._orders.get(oid)
        try:
            await self.rest.cancel_order(self._account_id, oid)
        except OrderNotFoundError as exc:
            row = await self._read_order(oid, getattr(st, "created_ns", 0))
            if row is not None:
                self._on_order_row(row, reconciled=True)
            if st is None or not st.terminal:
                self._cancel_rejected(cid, exc.reason)
            return
        except ApiError as exc:
            self._cancel_rejected(cid, exc.reason)
            return
        except UncertainOutcomeError as exc:
            logger.warning("cancel %s: %s; reading the order back", cid, exc)
            await asyncio.sleep(max(exc.retry_after_s, 0.2))
            row = await self._read_order(oid, getattr(st, "created_ns", 0))
            if row is not None:
                self._on_order_row(row, reconciled=True)
                if row.status in (1, 6, 8) and resend:
                    await self._cancel_by_id(oid, cid, resend=False)  # confirmed still working: ask once more
                    return
            if st is not None and not st.terminal and row is None:
                self._cancel_rejected(cid, f"outcome uncertain ({exc.cause})")
            return
        except ProjectXError as exc:
            self._cancel_rejected(cid, f"not sent: {exc}")
            return
        self._spawn(self._verify_terminal(oid), f"verify-{oid}")

    async def _verify_terminal(self, oid: int) -> None:
        await asyncio.sleep(self.settings.confirm_timeout_s)
        st = self._orders.get(oid)
        if st is not None and st.terminal:
            return
        row = await self._read_order(oid, getattr(st, "created_ns", 0))
        if row is not None:
            self._on_order_row(row, reconciled=True)

    def cancel_all_orders(self, symbol: str | None = None) -> None:
        """Cancel every working order (suspended bracket children included), of ``symbol`` only when given."""
        self._spawn(self._cancel_all(symbol), "cancel-all")

    async def _cancel_all(self, symbol: str | None) -> None:
        try:
            rows = await self._working_rows(priority=True)
        except ProjectXError as exc:
            self._emit(BrokerCommandFailed(self._account_id, "cancel_all_orders", symbol, str(exc), self._now()))
            rows = []
        ids = {r.id for r in rows}
        for r in rows:
            self._on_order_row(r, reconciled=True)
        for st in self._orders.values():  # working orders the searches did not list
            if not st.terminal and st.px_status is not None and st.order_id not in ids:
                ids.add(st.order_id)
        jobs = []
        for oid in sorted(ids):
            target = self._orders.get(oid)
            if target is None or target.terminal:
                continue
            if symbol is not None and target.symbol != symbol:
                continue
            jobs.append(self._cancel_by_id(oid, target.cid))
        if jobs:
            await asyncio.gather(*jobs)

    def close_position(self, symbol: str, qty: int | None = None) -> None:
        """``Position/closeContract`` (all) or ``partialCloseContract`` (``qty``): a market order ``px-close-<id>``."""
        self._inflight += 1
        self._spawn(self._close(symbol, qty), f"close-{symbol}")

    async def _close(self, symbol: str, qty: int | None, *, resend: bool = True, counted: bool = True) -> None:
        acct = self._account_id
        try:
            try:
                contract_id = await self._contract_id_of(symbol)
            except PropdeskError as exc:
                self._emit(BrokerCommandFailed(acct, "close_position", symbol, str(exc), self._now()))
                return
            before = self._positions.get(contract_id)
            try:
                if qty is None:
                    oid = await self.rest.close_position(acct, contract_id)
                else:
                    oid = await self.rest.partial_close_position(acct, contract_id, qty)
            except PositionNotFoundError:
                logger.info("close %s: already flat", symbol)
                return
            except ApiError as exc:
                self._emit(BrokerCommandFailed(acct, "close_position", symbol, exc.reason, self._now()))
                return
            except UncertainOutcomeError as exc:
                logger.warning("close %s: %s; reading the positions back", symbol, exc)
                await asyncio.sleep(max(exc.retry_after_s, 0.2))
                try:
                    rows = await self.rest.search_open_positions(acct, priority=True)
                except ProjectXError as err:
                    self._emit(BrokerCommandFailed(acct, "close_position", symbol, str(err), self._now()))
                    return
                now = next((p for p in rows if p.contract_id == contract_id), None)
                still = now is not None and (
                    qty is None or before is None or abs(position_signed_qty(now)) > before.size - qty
                )
                if still and resend:
                    await self._close(symbol, qty, resend=False, counted=False)
                elif still:
                    self._emit(BrokerCommandFailed(acct, "close_position", symbol, str(exc), self._now()))
                return
            except ProjectXError as exc:
                self._emit(BrokerCommandFailed(acct, "close_position", symbol, str(exc), self._now()))
                return
            if oid is not None:
                st = self._state_for(oid, ClientOrderId(f"{CLOSE_PREFIX}{oid}"), contract_id, CLOSE_TAG)
                st.created_ns = st.created_ns or self._now()
        finally:
            if counted:
                self._inflight -= 1
                self._drain_held()

    def flatten(self) -> None:
        """Cancel every working order, then close every open position at market (priority budget)."""
        self._spawn(self._flatten(), "flatten")

    async def _flatten(self) -> None:
        await self._cancel_all(None)
        try:
            rows = await self.rest.search_open_positions(self._account_id, priority=True)
        except ProjectXError as exc:
            self._emit(BrokerCommandFailed(self._account_id, "flatten", None, str(exc), self._now()))
            rows = list(self._positions.values())
        jobs = []
        for p in rows:
            if p.size:
                symbol = self.contracts.symbol_of(p.contract_id)
                self._inflight += 1
                jobs.append(self._close(symbol, None))
        if jobs:
            await asyncio.gather(*jobs)

    # ------------------------------------------------------------------------------------------------ reports

    def _cid_of_row(self, row: OrderRow) -> ClientOrderId | None:
        st = self._orders.get(row.id)
        if st is not None:
            return None if st.cid.startswith(EXT_PREFIX) else st.cid
        if row.custom_tag:
            return ClientOrderId(row.custom_tag)
        if row.parent_order_id is not None and row.parent_order_id in self._orders:
            parent = self._orders[row.parent_order_id]
            return ClientOrderId(f"{parent.cid}-{'sl' if row.type in _STOP_TYPES else 'tp'}")
        return None

    async def order_reports(self) -> list[OrderReport]:
        """Every working order, Suspended bracket children included (``client_order_id`` None for foreign ones)."""
        rows = await self._working_rows(priority=False)
        return [
            order_to_report(r, symbol=self.contracts.symbol_of(r.contract_id), client_order_id=self._cid_of_row(r))
            for r in rows
        ]

    async def fill_reports(self, since_ns: int) -> list[FillReport]:
        """Every non-voided fill (``Trade/search``) at or after ``since_ns``, oldest first."""
        trades = [t for t in await self.rest.search_trades(self._account_id, since_ns) if not t.voided]
        unknown = {t.order_id for t in trades if t.order_id not in self._orders}
        tags: dict[int, ClientOrderId | None] = {}
        if unknown:
            for r in await self.rest.search_orders(self._account_id, since_ns - _DAY_NS):
                if r.id in unknown:
                    tags[r.id] = self._cid_of_row(r)
        out = []
        for t in trades:
            st = self._orders.get(t.order_id)
            cid = (None if st.cid.startswith(EXT_PREFIX) else st.cid) if st is not None else tags.get(t.order_id)
            out.append(trade_to_fill_report(t, client_order_id=cid, symbol=self.contracts.symbol_of(t.contract_id)))
        return [f for f in out if f.ts_ns >= since_ns]

    async def trade_history(self, start_ns: int, end_ns: int) -> list[FillReport]:
        """The account's non-voided fills (``Trade/search``) in ``[start_ns, end_ns]`` (UTC ns), oldest first, one
        request: ``realized_pnl`` is the row's ``profitAndLoss`` (``None`` on an opening half-turn), ``fee`` its
        ``fees``; no client order id (the history bootstrap reads money and times only)."""
        rows = await self.rest.search_trades(self._account_id, start_ns, end_ns)
        return [
            trade_to_fill_report(t, client_order_id=None, symbol=self.contracts.symbol_of(t.contract_id))
            for t in rows
            if not t.voided and start_ns <= t.creation_timestamp <= end_ns
        ]

    async def position_reports(self) -> list[PositionReport]:
        """Every open position (``Position/searchOpen``)."""
        rows = await self.rest.search_open_positions(self._account_id)
        return [position_to_report(p, symbol=self.contracts.symbol_of(p.contract_id)) for p in rows if p.size]

    async def account_report(self) -> AccountReport:
        """The account (``Account/search``).

        Raises:
            ConfigError: the account is no longer listed.
        """
        for a in await self.rest.search_accounts(only_active=False):
            if a.id == self._account_id:
                return account_to_report(a, ts_ns=self._now())
        raise ConfigError(f"ProjectX account {self._account_id} not found")

    # ------------------------------------------------------------------------------------------------ market data

    def subscribe(self, symbol: str, *, quotes: bool = True, trades: bool = True, depth: bool = False) -> None:
        """Stream ``symbol`` from the market hub (sent again after every reconnect)."""
        self._spawn(self._subscribe(symbol, MarketSubscription(quotes, trades, depth)), f"subscribe-{symbol}")

    async def _subscribe(self, symbol: str, sub: MarketSubscription) -> None:
        try:
            contract = await self.contract(symbol)
        except PropdeskError as exc:
            self._emit(BrokerCommandFailed(self._account_id, "subscribe", symbol, str(exc), self._now()))
            return
        if self._market is not None:
            await self._market.subscribe(contract.id, sub)

    def unsubscribe(self, symbol: str) -> None:
        """Stop streaming ``symbol``."""
        c = self.contracts.by_symbol(symbol)
        if c is not None and self._market is not None:
            self._spawn(self._market.unsubscribe(c.id), f"unsubscribe-{symbol}")

    async def request_bars(self, symbol: str, timeframe: Timeframe, start_ns: int, end_ns: int) -> BarSeries:
        """Historical bars through ``History/retrieveBars`` (paged; see :mod:`propdesk.brokers.projectx.history`)."""
        return await self.bars.request_bars(symbol, timeframe, start_ns, end_ns)

    def _on_quote(self, contract_id: str, item: dict[str, Any]) -> None:
        try:
            data = QuoteData.model_validate(item)
        except ValidationError as exc:
            logger.error("GatewayQuote not understood: %s", exc)
            return
        recv = time.time_ns()
        q = self.quotes.merge(contract_id, data, recv)
        tick = quote_tick(self.contracts.symbol_of(contract_id), q, recv)
        if tick is not None:
            self._emit(tick)

    def _on_trades(self, contract_id: str, items: list[dict[str, Any]]) -> None:
        symbol = self.contracts.symbol_of(contract_id)
        recv = time.time_ns()
        for item in items:
            try:
                data = MarketTradeData.model_validate(item)
            except ValidationError as exc:
                logger.error("GatewayTrade item not understood: %s", exc)
                continue
            self._last_trade_px[contract_id] = price_of(data.price)
            self._emit(trade_tick(symbol, data, recv))

    def _on_depth(self, contract_id: str, items: list[dict[str, Any]]) -> None:
        symbol = self.contracts.symbol_of(contract_id)
        recv = time.time_ns()
        updates: list[DepthUpdate] = []
        for item in items:
            try:
                data = DepthData.model_validate(item)
            except ValidationError as exc:
                logger.error("GatewayDepth item not understood: %s", exc)
                continue
            u = depth_update(symbol, data, recv, is_last=False)
            if u is not None:
                updates.append(u)
        if updates:
            updates[-1].is_last = True
        for u in updates:
            self._emit(u)

    def _on_stale(self, contract_id: str, silent_s: float) -> None:
        self._emit(FeedStale(contract_id, self.contracts.symbol_of(contract_id), silent_s))

    def _on_resumed(self, contract_id: str) -> None:
        self._emit(FeedResumed(contract_id, self.contracts.symbol_of(contract_id)))


def create_broker(
    settings: ProjectXSettings,
    *,
    account_id: AccountId,
    clock: Clock,
    rest: ProjectXRest | None = None,
    hub_factory: ClientFactory | None = None,
    last_fill_ns: Callable[[], int | None] | None = None,
) -> ProjectXBroker:
    """The registry's factory for ``projectx`` (:mod:`propdesk.brokers.registry`): a :class:`ProjectXBroker` for
    ``account_id`` on ``clock`` with ``settings`` as given (credentials included: see
    :meth:`ProjectXSettings.with_env_credentials`)."""
    return ProjectXBroker(
        settings, account_id=int(account_id), clock=clock, rest=rest, hub_factory=hub_factory, last_fill_ns=last_fill_ns
    )


def _caps(native_brackets: bool) -> BrokerCapabilities:
    return BrokerCapabilities(
        native_brackets=native_brackets,
        native_oco=False,
        trailing_stops=True,
        stop_limit_orders=True,
        join_bid_ask=True,
        partial_close=True,
        modify_orders=True,
        client_order_ids=True,
    )


def _matches(row: OrderRow, qty: int | None, lim: Price | None, stp: Price | None) -> bool:
    if qty is not None and row.size != qty:
        return False
    if lim is not None and (row.limit_price is None or price_of(row.limit_price) != lim):
        return False
    return not (stp is not None and (row.stop_price is None or price_of(row.stop_price) != stp))


def _drop(_event: object) -> None:
    """The default handler: drops events until one is set."""


async def discover_accounts(settings: ProjectXSettings, *, only_active: bool = True) -> list[AccountReport]:
    """Log in and list the user's accounts (to pick ``account_id`` for :class:`ProjectXBroker`).

    Raises:
        ConfigError: missing credentials. ProjectXError: login refused or the API unreachable.
    """
    rest = ProjectXRest(settings)
    try:
        return [account_to_report(a) for a in await rest.search_accounts(only_active=only_active)]
    finally:
        await rest.aclose()
