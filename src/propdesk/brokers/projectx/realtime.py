"""ProjectX realtime: the user hub (accounts, orders, positions, trades) and the market hub (quotes, trades, depth)
over SignalR (pysignalr), with tolerant unwrapping, a fresh token on every (re)connect and a stale-feed watchdog.

Source: ``../shared/specs/projectx-gateway-api.md`` section 5 and pitfalls 1, 2, 4, 8, 9 of section 8.

* **Unwrapping.** User events arrive as ``[{action, data}]``, ``[{...}]``, ``[accountId, {action, data}]`` or
  ``[accountId, {...}]`` (5.4); :func:`unwrap_user_event` accepts all four (and lists of them) and keeps ``action``
  (2 = removal). Market events are ``[contractId, payload]`` where trades and depth are lists;
  :func:`unwrap_market_event` returns every item, so no trade volume or depth level is dropped.
* **Connection.** :class:`HubConnection` owns one hub. Every attempt builds a new pysignalr client whose URL carries
  the *current* token (``?access_token=``) and whose ``access_token_factory`` returns it too, negotiates again and
  reconnects with exponential backoff (pysignalr's own reconnect would reuse the first URL and its stale token,
  pitfall 4). After the WebSocket opens it resubscribes everything, then runs the reconcile callback, then reports
  connected (5.6). Sends on one connection are serialized (pitfall 9, concurrent ``send()``).
* **Watchdog.** :class:`StaleFeedWatchdog` reports a subscribed contract silent for ``stale_s`` seconds once
  (:class:`FeedStale`) and again when data resumes (:class:`FeedResumed`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from propdesk.core.backoff import Backoff

logger = logging.getLogger(__name__)

_TOKEN_IN_URL = re.compile(r"(access_token=)[^&\s`'\"]+")


class RedactTokens(logging.Filter):
    """Masks ``access_token=<jwt>`` in log records (pysignalr logs its negotiate URL, which carries the token)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message with the token masked; never drops a record."""
        msg = record.getMessage()
        if "access_token=" in msg:
            record.msg = _TOKEN_IN_URL.sub(r"\1***", msg)
            record.args = None
        return True


for _name in ("pysignalr", "pysignalr.transport", "pysignalr.client", "websockets", "websockets.client"):
    logging.getLogger(_name).addFilter(RedactTokens())

ACTION_REMOVE = 2
"""Realtime wrapper ``action`` meaning delete/remove (spec 4)."""

USER_EVENTS = ("GatewayUserAccount", "GatewayUserOrder", "GatewayUserPosition", "GatewayUserTrade")
MARKET_EVENTS = ("GatewayQuote", "GatewayTrade", "GatewayDepth")


# ------------------------------------------------------------------------------------------------ unwrapping


@dataclass(frozen=True, slots=True)
class UserEvent:
    """One unwrapped user-hub payload: ``data`` (the model's fields), ``action`` (0 create, 1 update, 2 remove;
    ``None`` when bare) and ``account_id`` when the shape carried one."""

    data: dict[str, Any]
    action: int | None = None
    account_id: int | None = None

    @property
    def is_removal(self) -> bool:
        """True for ``action == 2``."""
        return self.action == ACTION_REMOVE


def unwrap_user_event(args: object) -> list[UserEvent]:
    """Every payload of a user-hub invocation's ``arguments``, whatever the shape (module docstring).

    Ints set the account for the dicts that follow; a dict with a dict (or list) ``data`` is a wrapper; any other
    dict is a bare payload; lists are walked. Anything else is ignored (logged).
    """
    out: list[UserEvent] = []
    _walk_user(args, None, out)
    return out


def _walk_user(node: object, account_id: int | None, out: list[UserEvent]) -> int | None:
    if isinstance(node, dict):
        data = node.get("data")
        if isinstance(data, dict):
            action = node.get("action")
            out.append(UserEvent(data, action if isinstance(action, int) else None, account_id))
        elif isinstance(data, list) and "action" in node:
            action = node.get("action")
            for d in data:
                if isinstance(d, dict):
                    out.append(UserEvent(d, action if isinstance(action, int) else None, account_id))
        else:
            out.append(UserEvent(node, None, account_id))
        return account_id
    if isinstance(node, list | tuple):
        acct = account_id
        for item in node:
            if isinstance(item, int) and not isinstance(item, bool):
                acct = item
            else:
                _walk_user(item, acct, out)
        return acct
    if node is not None:
        logger.debug("user-hub argument %r ignored", node)
    return account_id


def unwrap_market_event(args: object) -> tuple[str | None, list[dict[str, Any]]]:
    """``(contractId, items)`` of a market-hub invocation: ``[contractId, {...}]`` gives one item,
    ``[contractId, [{...}, ...]]`` every item in order (none dropped)."""
    contract_id: str | None = None
    items: list[dict[str, Any]] = []

    def walk(node: object) -> None:
        nonlocal contract_id
        if isinstance(node, str):
            if contract_id is None:
                contract_id = node
        elif isinstance(node, dict):
            items.append(node)
        elif isinstance(node, list | tuple):
            for x in node:
                walk(x)

    walk(args)
    return contract_id, items


# ------------------------------------------------------------------------------------------------ watchdog


@dataclass(frozen=True, slots=True)
class FeedStale:
    """The market feed of ``contract_id`` (``symbol``) has been silent for ``silent_s`` seconds."""

    contract_id: str
    symbol: str
    silent_s: float


@dataclass(frozen=True, slots=True)
class FeedResumed:
    """Data for ``contract_id`` (``symbol``) arrived again after :class:`FeedStale`."""

    contract_id: str
    symbol: str


class StaleFeedWatchdog:
    """Tracks the last message time per subscribed contract (monotonic seconds).

    :meth:`check` returns the contracts that became stale (silent >= ``stale_s``) since the last check, once each;
    :meth:`touch` returns True when a stale contract came back.
    """

    def __init__(self, stale_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.stale_s = stale_s
        self._clock = clock
        self._last: dict[str, float] = {}
        self._stale: set[str] = set()

    def watch(self, contract_id: str) -> None:
        """Start watching (the silence counts from now)."""
        self._last.setdefault(contract_id, self._clock())

    def forget(self, contract_id: str) -> None:
        """Stop watching."""
        self._last.pop(contract_id, None)
        self._stale.discard(contract_id)

    def reset(self) -> None:
        """Restart every silence count from now (after a reconnect)."""
        now = self._clock()
        for c in self._last:
            self._last[c] = now

    def touch(self, contract_id: str) -> bool:
        """Record data for ``contract_id``; True when it was stale (it has resumed)."""
        if contract_id in self._last:
            self._last[contract_id] = self._clock()
        if contract_id in self._stale:
            self._stale.discard(contract_id)
            return True
        return False

    def check(self) -> list[tuple[str, float]]:
        """``(contract_id, silent_s)`` of each contract that turned stale since the last call."""
        now = self._clock()
        out = []
        for c, last in self._last.items():
            silent = now - last
            if silent >= self.stale_s and c not in self._stale:
                self._stale.add(c)
                out.append((c, silent))
        return out

    @property
    def all_stale(self) -> bool:
        """True when something is watched and every watched contract is stale."""
        return bool(self._last) and len(self._stale) == len(self._last)


# ------------------------------------------------------------------------------------------------ connection


class SignalRClientLike(Protocol):
    """What :class:`HubConnection` needs from a SignalR client (pysignalr's ``SignalRClient`` fits)."""

    def on(self, event: str, callback: Callable[[Any], Awaitable[Any]]) -> None:
        """Register a handler for a hub method."""
        ...

    def on_open(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Register the open callback."""
        ...

    def on_close(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Register the close callback."""
        ...

    async def send(self, method: str, arguments: Any) -> None:
        """Invoke a hub method (fire and forget)."""
        ...

    async def run(self) -> None:
        """Run the connection until it fails."""
        ...


ClientFactory = Callable[[str, Callable[[], str]], SignalRClientLike]
"""``(url with access_token, token factory) -> client``."""


def url_with_token(url: str, token: str) -> str:
    """``url`` with ``access_token=<token>`` in its query (replacing any previous one and any ``id``)."""
    scheme, netloc, path, query, frag = urlsplit(url)
    q = [(k, v) for k, v in parse_qsl(query) if k not in ("access_token", "id")]
    q.append(("access_token", token))
    return urlunsplit((scheme, netloc, path, urlencode(q), frag))


def pysignalr_factory(max_frame_bytes: int = 2**20, connect_timeout_s: float = 10.0) -> ClientFactory:
    """A factory of pysignalr clients that never reconnect on their own (:class:`HubConnection` does)."""

    def make(url: str, token_factory: Callable[[], str]) -> SignalRClientLike:
        from pysignalr.client import SignalRClient  # noqa: PLC0415  (imported lazily: aiohttp + websockets)

        client: SignalRClientLike = SignalRClient(
            url,
            access_token_factory=token_factory,
            max_size=max_frame_bytes,
            connection_timeout=max(1, int(connect_timeout_s)),
            retry_count=1,
        )
        return client

    return make


Handler = Callable[[Any], Awaitable[None] | None]


class HubConnection:
    """One SignalR hub, kept connected (see the module docstring).

    Args:
        name: ``user`` or ``market`` (logs, reasons).
        url: the hub URL (``http(s)://.../hubs/user``).
        token: async, returns the current (fresh) token; ``token(True)`` forces a renewal (after a 401).
        handlers: hub method name -> handler of its ``arguments``.
        on_open: awaited after every (re)connect, before the hub counts as connected: resubscribe and reconcile.
        on_state: called with ``(connected, reason)`` when the hub's state changes.
        reconnect_base_s, reconnect_max_s: backoff (exponential, full jitter).
        factory: builds the SignalR client (tests pass a stub).
    """

    def __init__(
        self,
        name: str,
        url: str,
        token: Callable[[bool], Awaitable[str]],
        *,
        handlers: dict[str, Handler],
        on_open: Callable[[], Awaitable[None]],
        on_state: Callable[[bool, str], None],
        reconnect_base_s: float = 1.0,
        reconnect_max_s: float = 60.0,
        factory: ClientFactory | None = None,
        rng: Callable[[], float] = random.random,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.name = name
        self.url = url
        self._token = token
        self._handlers = handlers
        self._on_open = on_open
        self._on_state = on_state
        self._backoff = Backoff(reconnect_base_s, 2.0, reconnect_max_s, full_jitter=True)
        self._factory = factory or pysignalr_factory()
        self._rng = rng
        self._sleep = sleep
        self._client: SignalRClientLike | None = None
        self._send_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._run_task: asyncio.Task[None] | None = None
        self._closed: asyncio.Event | None = None
        self._stopping = False
        self._connected = False
        self._current_token = ""
        self.connects = 0

    @property
    def connected(self) -> bool:
        """True after ``on_open`` completed on the current connection, until it drops."""
        return self._connected

    def start(self) -> None:
        """Start the supervisor task (idempotent)."""
        if self._task is None or self._task.done():
            self._stopping = False
            self._task = asyncio.get_running_loop().create_task(self._supervise(), name=f"projectx-{self.name}-hub")

    async def stop(self) -> None:
        """Close the connection and stop reconnecting."""
        self._stopping = True
        if self._closed is not None:
            self._closed.set()
        for task in (self._task, self._run_task):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._set_connected(False, "stopped")

    def force_reconnect(self, reason: str) -> None:
        """Drop the current connection; the supervisor reconnects with a fresh token."""
        logger.warning("ProjectX %s hub: reconnecting (%s)", self.name, reason)
        if self._closed is not None:
            self._closed.set()

    async def send(self, method: str, arguments: Sequence[Any]) -> bool:
        """Invoke ``method`` on the hub (serialized). False when not connected or the send failed."""
        client = self._client
        if client is None:
            return False
        async with self._send_lock:
            try:
                await client.send(method, list(arguments))
            except Exception as exc:
                logger.warning("ProjectX %s hub: %s%s not sent: %s", self.name, method, list(arguments), exc)
                return False
        return True

    def _set_connected(self, value: bool, reason: str) -> None:
        if value != self._connected:
            self._connected = value
            self._on_state(value, reason)

    async def _supervise(self) -> None:
        attempt = 0
        force_token = False
        while not self._stopping:
            reason = "connection closed"
            try:
                token = await self._token(force_token)
                force_token = False
                self._current_token = token
                closed = self._closed = asyncio.Event()
                client = self._factory(url_with_token(self.url, token), lambda: self._current_token)
                for method, handler in self._handlers.items():
                    client.on(method, self._wrap(handler))
                opened = asyncio.Event()

                async def on_open(opened: asyncio.Event = opened) -> None:
                    opened.set()

                async def on_close(closed: asyncio.Event = closed) -> None:
                    closed.set()

                client.on_open(on_open)
                client.on_close(on_close)
                self._client = client
                run = asyncio.get_running_loop().create_task(client.run(), name=f"projectx-{self.name}-run")
                self._run_task = run
                open_wait = asyncio.get_running_loop().create_task(opened.wait())
                await asyncio.wait({run, open_wait}, return_when=asyncio.FIRST_COMPLETED)
                if opened.is_set() and not run.done() and not closed.is_set():
                    self.connects += 1
                    try:
                        await self._on_open()
                    except Exception as exc:
                        logger.exception("ProjectX %s hub: resubscribe/reconcile failed", self.name)
                        reason = f"resubscribe/reconcile failed: {exc}"
                        closed.set()
                    if not closed.is_set() and not run.done():
                        attempt = 0
                        self._set_connected(True, "connected")
                    close_wait = asyncio.get_running_loop().create_task(closed.wait())
                    await asyncio.wait({run, close_wait}, return_when=asyncio.FIRST_COMPLETED)
                    close_wait.cancel()
                open_wait.cancel()
                failed = None if not run.done() or run.cancelled() else run.exception()
                if failed is not None:
                    reason = f"{type(failed).__name__}: {failed}"
                    if "Authorization" in type(failed).__name__ or "401" in str(failed):
                        force_token = True
                run.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await run
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}"
                logger.warning("ProjectX %s hub connect failed: %s", self.name, reason)
            self._client = None
            self._set_connected(False, reason)
            if self._stopping:
                break
            attempt += 1
            delay = self._backoff.delay(attempt, self._rng)
            logger.info("ProjectX %s hub: %s; reconnecting in %.1f s", self.name, reason, delay)
            await self._sleep(delay)

    def _wrap(self, handler: Handler) -> Callable[[Any], Awaitable[None]]:
        async def run(args: Any) -> None:
            try:
                res = handler(args)
                if res is not None:
                    await res
            except Exception:
                logger.exception("ProjectX %s hub handler failed", self.name)

        return run


# ------------------------------------------------------------------------------------------------ the two hubs


class UserHub:
    """The user hub: subscribes ``SubscribeAccounts`` (no arguments) and ``SubscribeOrders``/``Positions``/``Trades``
    per account (spec 5.3) on every (re)connect, then runs ``reconcile``; payloads go to ``on_event(target, event)``.
    """

    def __init__(
        self,
        url: str,
        token: Callable[[bool], Awaitable[str]],
        account_ids: Iterable[int],
        *,
        on_event: Callable[[str, UserEvent], None],
        reconcile: Callable[[], Awaitable[None]],
        on_state: Callable[[bool, str], None],
        reconnect_base_s: float = 1.0,
        reconnect_max_s: float = 60.0,
        factory: ClientFactory | None = None,
    ) -> None:
        self.account_ids = list(account_ids)
        self._on_event = on_event
        self._reconcile = reconcile
        handlers: dict[str, Handler] = {t: self._handler(t) for t in USER_EVENTS}
        handlers["GatewayLogout"] = self._logout
        self.conn = HubConnection(
            "user",
            url,
            token,
            handlers=handlers,
            on_open=self._opened,
            on_state=on_state,
            reconnect_base_s=reconnect_base_s,
            reconnect_max_s=reconnect_max_s,
            factory=factory,
        )

    def _handler(self, target: str) -> Handler:
        def handle(args: Any) -> None:
            for ev in unwrap_user_event(args):
                self._on_event(target, ev)

        return handle

    def _logout(self, args: Any) -> None:
        logger.warning("ProjectX user hub: GatewayLogout %r", args)

    async def _opened(self) -> None:
        await self.conn.send("SubscribeAccounts", [])
        for acct in self.account_ids:
            for target in ("SubscribeOrders", "SubscribePositions", "SubscribeTrades"):
                await self.conn.send(target, [acct])
        await self._reconcile()


@dataclass(slots=True)
class MarketSubscription:
    """What is streamed for one contract."""

    quotes: bool = True
    trades: bool = True
    depth: bool = False


MARKET_SUBSCRIBE = {
    "quotes": ("SubscribeContractQuotes", "UnsubscribeContractQuotes"),
    "trades": ("SubscribeContractTrades", "UnsubscribeContractTrades"),
    "depth": ("SubscribeContractMarketDepth", "UnsubscribeContractMarketDepth"),
}


class MarketHub:
    """The market hub: per-contract subscriptions (resent after every reconnect), raw payloads to the callbacks
    ``on_quote(contract_id, item)``, ``on_trades(contract_id, items)``, ``on_depth(contract_id, items)``, and a
    stale-feed watchdog (``on_stale(contract_id, silent_s)`` / ``on_resumed(contract_id)``)."""

    def __init__(
        self,
        url: str,
        token: Callable[[bool], Awaitable[str]],
        *,
        on_quote: Callable[[str, dict[str, Any]], None],
        on_trades: Callable[[str, list[dict[str, Any]]], None],
        on_depth: Callable[[str, list[dict[str, Any]]], None],
        on_state: Callable[[bool, str], None],
        on_stale: Callable[[str, float], None],
        on_resumed: Callable[[str], None],
        stale_s: float = 30.0,
        stale_check_interval_s: float = 5.0,
        reconnect_on_stale: bool = True,
        reconnect_base_s: float = 1.0,
        reconnect_max_s: float = 60.0,
        factory: ClientFactory | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.subscriptions: dict[str, MarketSubscription] = {}
        self._on_quote = on_quote
        self._on_trades = on_trades
        self._on_depth = on_depth
        self._on_stale = on_stale
        self._on_resumed = on_resumed
        self.watchdog = StaleFeedWatchdog(stale_s, clock=clock)
        self._check_s = stale_check_interval_s
        self._reconnect_on_stale = reconnect_on_stale
        self._watch_task: asyncio.Task[None] | None = None
        self.conn = HubConnection(
            "market",
            url,
            token,
            handlers={
                "GatewayQuote": self._quote,
                "GatewayTrade": self._trade,
                "GatewayDepth": self._depth,
                "GatewayLogout": lambda a: logger.warning("ProjectX market hub: GatewayLogout %r", a),
            },
            on_open=self._opened,
            on_state=on_state,
            reconnect_base_s=reconnect_base_s,
            reconnect_max_s=reconnect_max_s,
            factory=factory,
        )

    def start(self) -> None:
        """Start the connection and the watchdog."""
        self.conn.start()
        if self._watch_task is None or self._watch_task.done():
            self._watch_task = asyncio.get_running_loop().create_task(self._watch(), name="projectx-market-watchdog")

    async def stop(self) -> None:
        """Stop the watchdog and the connection."""
        if self._watch_task is not None:
            self._watch_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch_task
        await self.conn.stop()

    async def subscribe(self, contract_id: str, sub: MarketSubscription) -> None:
        """Add (or change) a contract's subscription and send it when connected."""
        old = self.subscriptions.get(contract_id)
        self.subscriptions[contract_id] = sub
        self.watchdog.watch(contract_id)
        if self.conn.connected:
            for kind, (on, off) in MARKET_SUBSCRIBE.items():
                want, had = getattr(sub, kind), bool(old and getattr(old, kind))
                if want and not had:
                    await self.conn.send(on, [contract_id])
                elif had and not want:
                    await self.conn.send(off, [contract_id])

    async def unsubscribe(self, contract_id: str) -> None:
        """Drop a contract's subscription."""
        sub = self.subscriptions.pop(contract_id, None)
        self.watchdog.forget(contract_id)
        if sub is not None and self.conn.connected:
            for kind, (_on, off) in MARKET_SUBSCRIBE.items():
                if getattr(sub, kind):
                    await self.conn.send(off, [contract_id])

    async def _opened(self) -> None:
        for contract_id, sub in self.subscriptions.items():
            for kind, (on, _off) in MARKET_SUBSCRIBE.items():
                if getattr(sub, kind):
                    await self.conn.send(on, [contract_id])
        self.watchdog.reset()

    def _seen(self, contract_id: str) -> None:
        if self.watchdog.touch(contract_id):
            self._on_resumed(contract_id)

    def _quote(self, args: Any) -> None:
        contract_id, items = unwrap_market_event(args)
        if contract_id is None:
            return
        self._seen(contract_id)
        for item in items:
            self._on_quote(contract_id, item)

    def _trade(self, args: Any) -> None:
        contract_id, items = unwrap_market_event(args)
        if contract_id is None:
            return
        self._seen(contract_id)
        self._on_trades(contract_id, items)

    def _depth(self, args: Any) -> None:
        contract_id, items = unwrap_market_event(args)
        if contract_id is None:
            return
        self._seen(contract_id)
        self._on_depth(contract_id, items)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._check_s)
            if not self.conn.connected:
                continue
            for contract_id, silent in self.watchdog.check():
                self._on_stale(contract_id, silent)
            if self._reconnect_on_stale and self.watchdog.all_stale:
                self.conn.force_reconnect("every subscribed contract is stale")
                self.watchdog.reset()
