"""The gateway's two SignalR hubs: the user hub (accounts, orders, positions, trades) and the market hub.

User hub (``../shared/specs/projectx-gateway-api.md`` sections 5.3-5.5): ``SubscribeAccounts`` (no arguments: an
argument is refused, as the real hub errors on ``SubscribeAccounts(accountId)``), ``SubscribeOrders``,
``SubscribePositions``, ``SubscribeTrades`` (``[accountId:int]``, one of the token user's accounts; repeatable per
account) and their ``Unsubscribe*``. Events ``GatewayUserAccount``, ``GatewayUserOrder``, ``GatewayUserPosition``,
``GatewayUserTrade`` carry the full model in the configured ``user_event_shape``: ``wrapped`` ``[{action, data}]``,
``bare`` ``[data]``, ``acct_wrapped`` ``[accountId, {action, data}]``, ``acct_bare`` ``[accountId, data]``. No
snapshot is sent on subscribe (clients reconcile through REST).

Market hub: ``SubscribeContractQuotes`` / ``Trades`` / ``MarketDepth`` (``[contractId:str]``) and their
``Unsubscribe*``. ``GatewayQuote`` is ``[contractId, {...}]``: one full quote right after the subscribe, then full
quotes, or with ``partial_quotes`` only the changed fields plus ``symbol`` and ``timestamp`` (per connection); the
last quote is re-sent after ``market_keepalive_s`` of silence per contract. ``GatewayTrade`` and ``GatewayDepth``
are ``[contractId, [items...]]`` (lists); a depth subscribe first gets Reset (type 6) plus the whole book. Lists are
split so no frame exceeds ``max_frame_bytes``; nothing is coalesced or dropped (spec section 8, pitfalls 1-2).

Both hubs accept ``Heartbeat`` (project-x-py's, not part of the API) and tolerate unknown methods: a completion with
``error`` when the call had an ``invocationId``, nothing otherwise; the connection stays open.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from propdesk.emulators.projectx.config import UserEventShape
from propdesk.emulators.projectx.signalr import HubConnection, HubError

HEARTBEAT = "Heartbeat"
_FRAME_OVERHEAD = 200


class MarketView(Protocol):
    """What the market hub reads (implemented by :class:`propdesk.emulators.projectx.market.MarketReplay`)."""

    def quote(self, contract_id: str) -> dict[str, Any] | None:
        """The full current quote of a contract, ``None`` before any price."""
        ...

    def depth_snapshot(self, contract_id: str) -> list[dict[str, Any]]:
        """Reset plus every level of the contract's book."""
        ...


def chunk(items: list[dict[str, Any]], max_bytes: int) -> list[list[dict[str, Any]]]:
    """Split ``items`` into consecutive lists whose JSON stays under ``max_bytes`` (minus framing overhead)."""
    out: list[list[dict[str, Any]]] = []
    cur: list[dict[str, Any]] = []
    size = 0
    budget = max(1, max_bytes - _FRAME_OVERHEAD)
    for it in items:
        n = len(json.dumps(it, separators=(",", ":"))) + 1
        if cur and size + n > budget:
            out.append(cur)
            cur, size = [], 0
        cur.append(it)
        size += n
    if cur:
        out.append(cur)
    return out


def _int_arg(args: list[Any], method: str) -> int:
    if len(args) != 1 or not isinstance(args[0], int) or isinstance(args[0], bool):
        raise HubError(f"{method} expects one integer accountId argument")
    return int(args[0])


def _str_arg(args: list[Any], method: str) -> str:
    if len(args) != 1 or not isinstance(args[0], str):
        raise HubError(f"{method} expects one contractId string argument")
    return str(args[0])


@dataclass
class UserSubs:
    """One user-hub connection's subscriptions."""

    accounts: bool = False
    orders: set[int] = field(default_factory=set)
    positions: set[int] = field(default_factory=set)
    trades: set[int] = field(default_factory=set)


_USER_TARGETS = {
    "GatewayUserOrder": "orders",
    "GatewayUserPosition": "positions",
    "GatewayUserTrade": "trades",
}


class UserHub:
    """The user hub's methods and its event publisher (module docstring).

    Args:
        account_ids: the token user's accounts (subscriptions are limited to them).
        shape: the ``user_event_shape``.
    """

    def __init__(self, account_ids: set[int], shape: UserEventShape) -> None:
        self.account_ids = account_ids
        self.shape = shape
        self.connections: dict[int, HubConnection] = {}

    async def on_connected(self, conn: HubConnection) -> None:
        """Start with no subscriptions."""
        conn.subs = UserSubs()
        self.connections[id(conn)] = conn

    def on_disconnected(self, conn: HubConnection) -> None:
        """Forget the connection."""
        self.connections.pop(id(conn), None)

    async def invoke(self, conn: HubConnection, target: str, args: list[Any]) -> Any:
        """Subscribe/Unsubscribe methods and ``Heartbeat``; raises :class:`HubError` for the rest."""
        subs: UserSubs = conn.subs
        if target == HEARTBEAT:
            return None
        if target in ("SubscribeAccounts", "UnsubscribeAccounts"):
            if args:
                raise HubError(f"{target} takes no arguments")
            subs.accounts = target == "SubscribeAccounts"
            return None
        for name in ("Orders", "Positions", "Trades"):
            if target in (f"Subscribe{name}", f"Unsubscribe{name}"):
                acct = _int_arg(args, target)
                if acct not in self.account_ids:
                    raise HubError(f"Account {acct} not found")
                group: set[int] = getattr(subs, name.lower())
                if target.startswith("Subscribe"):
                    group.add(acct)
                else:
                    group.discard(acct)
                return None
        raise HubError(f"Unknown hub method '{target}'")

    def payload(self, account_id: int, action: int, data: dict[str, Any]) -> list[Any]:
        """The ``arguments`` of a user event in the configured shape."""
        wrapped = {"action": action, "data": data}
        if self.shape == "wrapped":
            return [wrapped]
        if self.shape == "bare":
            return [data]
        if self.shape == "acct_wrapped":
            return [account_id, wrapped]
        return [account_id, data]

    def publish_user(self, target: str, account_id: int, action: int, data: dict[str, Any]) -> None:
        """Send a user event to every connection subscribed to it."""
        group = _USER_TARGETS.get(target)
        args = self.payload(account_id, action, data)
        for conn in list(self.connections.values()):
            subs: UserSubs = conn.subs
            if (group is None and subs.accounts) or (group is not None and account_id in getattr(subs, group)):
                conn.send_invocation(target, args)


@dataclass
class MarketSubs:
    """One market-hub connection's subscriptions and what it was last sent per contract."""

    quotes: set[str] = field(default_factory=set)
    trades: set[str] = field(default_factory=set)
    depth: set[str] = field(default_factory=set)
    last_quote: dict[str, dict[str, Any]] = field(default_factory=dict)
    last_sent: dict[str, float] = field(default_factory=dict)


class MarketHub:
    """The market hub's methods, publisher and keepalive (module docstring).

    Args:
        market: the replay (current quote and book).
        known: contract id -> subscribable.
        partial_quotes, keepalive_s, max_frame_bytes: from the configuration.
    """

    def __init__(
        self,
        market: MarketView,
        known: Any,
        *,
        partial_quotes: bool,
        keepalive_s: float,
        max_frame_bytes: int,
    ) -> None:
        self.market = market
        self.known = known
        self.partial_quotes = partial_quotes
        self.keepalive_s = keepalive_s
        self.max_frame_bytes = max_frame_bytes
        self.connections: dict[int, HubConnection] = {}
        self._task: asyncio.Task[None] | None = None

    async def on_connected(self, conn: HubConnection) -> None:
        """Start with no subscriptions."""
        conn.subs = MarketSubs()
        self.connections[id(conn)] = conn

    def on_disconnected(self, conn: HubConnection) -> None:
        """Forget the connection."""
        self.connections.pop(id(conn), None)

    async def invoke(self, conn: HubConnection, target: str, args: list[Any]) -> Any:
        """Subscribe/Unsubscribe methods and ``Heartbeat``; raises :class:`HubError` for the rest."""
        subs: MarketSubs = conn.subs
        if target == HEARTBEAT:
            return None
        for name, attr in (("Quotes", "quotes"), ("Trades", "trades"), ("MarketDepth", "depth")):
            if target in (f"SubscribeContract{name}", f"UnsubscribeContract{name}"):
                cid = _str_arg(args, target)
                if not self.known(cid):
                    raise HubError(f"Contract {cid} not found")
                group: set[str] = getattr(subs, attr)
                if target.startswith("Unsubscribe"):
                    group.discard(cid)
                    if attr == "quotes":
                        subs.last_quote.pop(cid, None)
                    return None
                group.add(cid)
                if attr == "quotes":
                    q = self.market.quote(cid)
                    if q is not None:
                        self._send_quote(conn, cid, q, full=True)
                elif attr == "depth":
                    self._send_list(conn, "GatewayDepth", cid, self.market.depth_snapshot(cid))
                return None
        raise HubError(f"Unknown hub method '{target}'")

    def _send_list(self, conn: HubConnection, target: str, cid: str, items: list[dict[str, Any]]) -> None:
        for part in chunk(items, self.max_frame_bytes):
            conn.send_invocation(target, [cid, part])
        conn.subs.last_sent[cid] = time.monotonic()

    def _send_quote(self, conn: HubConnection, cid: str, quote: dict[str, Any], *, full: bool) -> None:
        subs: MarketSubs = conn.subs
        prev = subs.last_quote.get(cid)
        body = quote
        if self.partial_quotes and not full and prev is not None:
            body = {k: v for k, v in quote.items() if prev.get(k) != v}
            body["symbol"] = quote["symbol"]
            body["timestamp"] = quote["timestamp"]
        subs.last_quote[cid] = quote
        subs.last_sent[cid] = time.monotonic()
        conn.send_invocation("GatewayQuote", [cid, body])

    def publish_quote(self, contract_id: str, quote: dict[str, Any]) -> None:
        """Send ``quote`` to every connection subscribed to the contract's quotes."""
        for conn in list(self.connections.values()):
            if contract_id in conn.subs.quotes:
                self._send_quote(conn, contract_id, quote, full=False)

    def publish_trades(self, contract_id: str, items: list[dict[str, Any]]) -> None:
        """Send ``GatewayTrade`` lists to the contract's trade subscribers."""
        for conn in list(self.connections.values()):
            if contract_id in conn.subs.trades:
                self._send_list(conn, "GatewayTrade", contract_id, items)

    def publish_depth(self, contract_id: str, items: list[dict[str, Any]]) -> None:
        """Send ``GatewayDepth`` lists to the contract's depth subscribers."""
        for conn in list(self.connections.values()):
            if contract_id in conn.subs.depth:
                self._send_list(conn, "GatewayDepth", contract_id, items)

    def keepalive(self, now_mono: float | None = None) -> int:
        """Re-send the last quote of every subscribed contract quiet for ``keepalive_s``; return how many."""
        now = time.monotonic() if now_mono is None else now_mono
        n = 0
        for conn in list(self.connections.values()):
            subs: MarketSubs = conn.subs
            for cid in list(subs.quotes):
                if now - subs.last_sent.get(cid, 0.0) >= self.keepalive_s:
                    q = self.market.quote(cid)
                    if q is not None:
                        self._send_quote(conn, cid, q, full=True)
                        n += 1
        return n

    async def run_keepalive(self) -> None:
        """Check the keepalive every second until cancelled."""
        while True:
            await asyncio.sleep(min(1.0, self.keepalive_s / 2))
            self.keepalive()

    def start(self) -> None:
        """Start the keepalive task on the running loop."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self.run_keepalive(), name="gateway-keepalive")

    async def stop(self) -> None:
        """Cancel the keepalive task."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
