"""A minimal ASP.NET Core SignalR server: the JSON hub protocol v1 over Starlette WebSockets.

Hand-written on purpose: no maintained Python library implements the SignalR *server* side (pysignalr and
signalrcore are clients only), and the gateway needs only a small part of the protocol. Kept to that part
(``../shared/specs/projectx-gateway-api.md`` section 5; protocol text:
https://github.com/dotnet/aspnetcore/blob/main/src/SignalR/docs/specs/HubProtocol.md and TransportProtocols.md):

* **Negotiate** ``POST /hubs/<hub>/negotiate[?negotiateVersion=1]``: token from ``access_token`` or
  ``Authorization: Bearer``; a bad or expired token gets HTTP 401. Version 0 (pysignalr sends no version) answers
  ``{"connectionId", "negotiateVersion": 0, "availableTransports": [WebSockets, Text+Binary]}``; version 1 adds
  ``connectionToken``.
* **WebSocket** ``GET /hubs/<hub>?access_token=<jwt>[&id=<connectionId>]``: with or without negotiation (a missing,
  reused, stale or unknown ``id`` starts a new connection); a bad token is refused with 401 before the upgrade.
* **Framing**: JSON text messages each terminated by the record separator ``0x1E``; one frame may carry several.
  Incoming messages are parsed within :class:`~propdesk.emulators.projectx.limits.JsonLimits` (size, nesting,
  numbers); one over them is logged and skipped, a handshake over them closes the connection.
  Handshake ``{"protocol":"json","version":1}`` -> ``{}``; any other protocol gets ``{"error": ...}`` and a close.
* **Messages**: 1 Invocation (dispatched to the hub; with an ``invocationId`` the server answers 3 Completion, with
  ``error`` on failure), 6 Ping (ignored; the server sends its own every ``ping_interval_s``), 7 Close (both ways:
  the server sends ``{"type":7}`` before it closes). Streaming (4, 5) is refused with a completion error. Unknown
  hub methods never close the connection.
* **Sends** go through one queue and one writer task per connection, so frames never interleave (project-x-py
  issue #126), and every frame stays within ``max_frame_bytes`` (callers split list payloads; an oversize message is
  dropped and logged).

Not implemented: MessagePack, long polling / server-sent events, stateful reconnect, client timeouts, streaming.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any, Final, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from propdesk.emulators.projectx.limits import JsonLimitError, JsonLimits, loads

log = logging.getLogger(__name__)

RS: Final[str] = "\x1e"
INVOCATION: Final[int] = 1
COMPLETION: Final[int] = 3
STREAM_INVOCATION: Final[int] = 4
CANCEL_INVOCATION: Final[int] = 5
PING: Final[int] = 6
CLOSE: Final[int] = 7
HANDSHAKE_TIMEOUT_S: Final[float] = 15.0


class HubError(Exception):
    """An invocation failed; the message goes into the completion's ``error``."""


class HubHandler(Protocol):
    """The hub's methods and connection lifecycle (implemented in :mod:`propdesk.emulators.projectx.hubs`)."""

    async def on_connected(self, conn: HubConnection) -> None:
        """A connection finished its handshake."""
        ...

    async def invoke(self, conn: HubConnection, target: str, args: list[Any]) -> Any:
        """Run hub method ``target``; return its result or raise :class:`HubError`."""
        ...

    def on_disconnected(self, conn: HubConnection) -> None:
        """The connection is gone."""
        ...


class OutgoingPolicy(Protocol):
    """Fault injection hooks (implemented by :class:`propdesk.emulators.projectx.faults.Faults`)."""

    def should_drop(self, hub: str, target: str | None) -> bool:
        """Drop this outgoing message."""
        ...

    def delay_s(self, hub: str) -> float:
        """Delay each outgoing message by this much (s)."""
        ...

    def refusing(self, hub: str) -> bool:
        """New connections to ``hub`` are refused (a restart in progress)."""
        ...


def encode(message: dict[str, Any]) -> str:
    """One hub-protocol message as text with its record separator."""
    return json.dumps(message, separators=(",", ":"), allow_nan=False) + RS


def _token_of(headers: Any, query: Any) -> str | None:
    token = query.get("access_token")
    if token:
        return str(token)
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return str(auth[7:].strip())
    return None


class HubConnection:
    """One client connection: its id, token, hub-specific ``subs`` and an ordered outgoing queue."""

    def __init__(self, server: HubServer, ws: WebSocket, connection_id: str, token: str) -> None:
        self.server = server
        self.ws = ws
        self.id = connection_id
        self.token = token
        self.subs: Any = None
        self.last_sent_mono = time.monotonic()
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.closed = False

    def send_invocation(self, target: str, arguments: list[Any]) -> bool:
        """Queue an Invocation (type 1) of ``target``; False when dropped (fault, oversize or closed)."""
        return self.send_message({"type": INVOCATION, "target": target, "arguments": arguments}, target=target)

    def send_message(self, message: dict[str, Any], *, target: str | None = None) -> bool:
        """Queue any message; see :meth:`send_invocation`."""
        if self.closed:
            return False
        if (
            target is not None
            and self.server.policy is not None
            and self.server.policy.should_drop(self.server.name, target)
        ):
            return False
        text = encode(message)
        if len(text.encode()) > self.server.max_frame_bytes:
            log.error("dropping %s message of %d bytes over max_frame_bytes", target, len(text.encode()))
            return False
        self.last_sent_mono = time.monotonic()
        self._queue.put_nowait(text)
        return True

    def close(self, error: str | None = None) -> None:
        """Send Close (type 7, ``allowReconnect``) after what is queued, then close the socket."""
        if self.closed:
            return
        msg: dict[str, Any] = {"type": CLOSE, "allowReconnect": True}
        if error:
            msg["error"] = error
        self._queue.put_nowait(encode(msg))
        self._queue.put_nowait(None)
        self.closed = True

    async def abort(self) -> None:
        """Drop the connection at once, without a Close message (fault injection)."""
        self.closed = True
        self._queue.put_nowait(None)
        with contextlib.suppress(Exception):
            await self.ws.close(code=1011)

    async def writer(self) -> None:
        """Send queued frames in order until the close sentinel."""
        policy = self.server.policy
        while True:
            text = await self._queue.get()
            if text is None:
                with contextlib.suppress(Exception):
                    await self.ws.close(code=1000)
                return
            delay = policy.delay_s(self.server.name) if policy is not None else 0.0
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                await self.ws.send_text(text)
            except Exception:  # the socket is gone; the reader loop notices and cleans up
                self.closed = True
                return


class HubServer:
    """One SignalR hub served at ``/hubs/<name>`` (module docstring).

    Args:
        name: ``user`` or ``market``.
        handler: the hub's methods.
        authorize: token -> accepted (valid and not expired).
        ping_interval_s: server ping period.
        max_frame_bytes: frame size cap.
        policy: fault-injection hooks, or ``None``.
        limits: size, nesting and number limits of incoming messages (a message over them is logged and skipped;
            :mod:`propdesk.emulators.projectx.limits`).
    """

    def __init__(
        self,
        name: str,
        handler: HubHandler,
        authorize: Callable[[str | None], bool],
        *,
        ping_interval_s: float,
        max_frame_bytes: int,
        policy: OutgoingPolicy | None = None,
        limits: JsonLimits | None = None,
    ) -> None:
        self.limits = JsonLimits() if limits is None else limits
        self.name = name
        self.handler = handler
        self.authorize = authorize
        self.ping_interval_s = ping_interval_s
        self.max_frame_bytes = max_frame_bytes
        self.policy = policy
        self.connections: dict[str, HubConnection] = {}

    def routes(self) -> list[BaseRoute]:
        """The negotiate and WebSocket routes of this hub."""
        return [
            Route(f"/hubs/{self.name}/negotiate", self.negotiate, methods=["POST"]),
            WebSocketRoute(f"/hubs/{self.name}", self.websocket),
        ]

    async def negotiate(self, request: Request) -> Response:
        """``POST /hubs/<name>/negotiate`` (module docstring)."""
        if not self.authorize(_token_of(request.headers, request.query_params)):
            return Response(status_code=401)
        if self.policy is not None and self.policy.refusing(self.name):
            return Response(status_code=503)
        version = 1 if request.query_params.get("negotiateVersion") == "1" else 0
        cid = uuid.uuid4().hex
        body: dict[str, Any] = {
            "connectionId": cid,
            "negotiateVersion": version,
            "availableTransports": [{"transport": "WebSockets", "transferFormats": ["Text", "Binary"]}],
        }
        if version == 1:
            body["connectionToken"] = uuid.uuid4().hex
        return JSONResponse(body)

    async def _deny(self, ws: WebSocket, status: int) -> None:
        if "websocket.http.response" in ws.scope.get("extensions", {}):
            await ws.send_denial_response(Response(status_code=status))
        else:
            await ws.close(code=1008)

    async def websocket(self, ws: WebSocket) -> None:
        """The WebSocket transport: handshake, then invocations until either side closes."""
        token = _token_of(ws.headers, ws.query_params)
        if not self.authorize(token):
            await self._deny(ws, 401)
            return
        if self.policy is not None and self.policy.refusing(self.name):
            await self._deny(ws, 503)
            return
        assert token is not None
        await ws.accept()
        try:
            rest = await asyncio.wait_for(self._handshake(ws), HANDSHAKE_TIMEOUT_S)
        except (TimeoutError, WebSocketDisconnect, ValueError) as exc:
            log.info("hub %s: handshake failed: %s", self.name, exc)
            with contextlib.suppress(Exception):
                await ws.close(code=1002)
            return
        conn = HubConnection(self, ws, ws.query_params.get("id") or uuid.uuid4().hex, token)
        key = f"{conn.id}:{uuid.uuid4().hex[:8]}"
        self.connections[key] = conn
        writer = asyncio.create_task(conn.writer())
        pinger = asyncio.create_task(self._ping(conn))
        try:
            await self.handler.on_connected(conn)
            await self._dispatch(conn, rest)
            while not conn.closed:
                msg = await ws.receive()
                if msg["type"] == "websocket.disconnect":
                    break
                data = msg.get("text")
                if data is None and msg.get("bytes") is not None:
                    data = msg["bytes"].decode("utf-8", "replace")
                if data:
                    await self._dispatch(conn, data)
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            conn.closed = True
            self.connections.pop(key, None)
            pinger.cancel()
            if not writer.done():
                conn._queue.put_nowait(None)
                with contextlib.suppress(asyncio.TimeoutError, TimeoutError, Exception):
                    await asyncio.wait_for(writer, 2.0)
            self.handler.on_disconnected(conn)

    async def _handshake(self, ws: WebSocket) -> str:
        buf = ""
        while RS not in buf:
            msg = await ws.receive()
            if msg["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(msg.get("code", 1000))
            buf += msg.get("text") or (msg.get("bytes") or b"").decode("utf-8", "replace")
            if len(buf) > self.limits.max_bytes:
                raise ValueError(f"handshake longer than {self.limits.max_bytes} characters")
        head, _, rest = buf.partition(RS)
        try:
            hs = loads(head, self.limits, exact=False)
        except JsonLimitError as exc:
            raise ValueError(f"handshake refused: {exc.message}") from exc
        if not isinstance(hs, dict) or hs.get("protocol") != "json" or hs.get("version") != 1:
            await ws.send_text(encode({"error": f"Requested protocol {hs!r} is not available; use json version 1."}))
            raise ValueError(f"unsupported protocol {hs!r}")
        await ws.send_text("{}" + RS)
        return rest

    async def _ping(self, conn: HubConnection) -> None:
        while not conn.closed:
            await asyncio.sleep(self.ping_interval_s)
            conn.send_message({"type": PING})

    async def _dispatch(self, conn: HubConnection, data: str) -> None:
        for part in data.split(RS):
            if not part.strip():
                continue
            try:
                msg = loads(part, self.limits, exact=False)
            except JsonLimitError as exc:
                log.warning("hub %s: ignoring a message: %s", self.name, exc.message)
                continue
            if not isinstance(msg, dict):
                continue
            kind = msg.get("type")
            inv_id = msg.get("invocationId")
            if kind == INVOCATION:
                target = msg.get("target")
                args = msg.get("arguments")
                try:
                    if not isinstance(target, str):
                        raise HubError("Invocation has no target")
                    result = await self.handler.invoke(conn, target, args if isinstance(args, list) else [])
                except HubError as exc:
                    log.info("hub %s: %s failed: %s", self.name, target, exc)
                    if inv_id is not None:
                        conn.send_message({"type": COMPLETION, "invocationId": str(inv_id), "error": str(exc)})
                    continue
                if inv_id is not None:
                    done: dict[str, Any] = {"type": COMPLETION, "invocationId": str(inv_id)}
                    if result is not None:
                        done["result"] = result
                    conn.send_message(done)
            elif kind in (STREAM_INVOCATION, CANCEL_INVOCATION):
                if inv_id is not None and kind == STREAM_INVOCATION:
                    conn.send_message(
                        {"type": COMPLETION, "invocationId": str(inv_id), "error": "Streaming is not supported."}
                    )
            elif kind == CLOSE:
                conn.closed = True
                conn._queue.put_nowait(None)

    async def drop_all(self, *, graceful: bool, error: str | None = None) -> int:
        """Close every connection (with a Close message when ``graceful``, else abruptly); return how many."""
        conns = list(self.connections.values())
        for c in conns:
            if graceful:
                c.close(error)
            else:
                await c.abort()
        return len(conns)

    def close_token(self, token: str, error: str) -> int:
        """Close (gracefully) every connection opened with ``token`` (logout); return how many."""
        conns = [c for c in self.connections.values() if c.token == token]
        for c in conns:
            c.close(error)
        return len(conns)
