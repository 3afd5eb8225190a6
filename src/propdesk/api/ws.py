"""``/api/v1/ws``: one WebSocket, many topics, resumable without loss.

Every message either way is JSON. Every message of the server has the envelope
``{"seq", "ts_ns", "topic", "type", "account", "data"}`` (:class:`~propdesk.api.schemas.EventOut`).

1. **Hello.** The client's first message (within :data:`HELLO_TIMEOUT_S`):
   ``{"type": "hello", "ticket": "...", "topics": ["orders", "positions"], "resume_from": 1234}``. The ticket comes
   from ``POST /api/v1/auth/ws-ticket`` (single use: an API key never goes in a URL); ``topics`` are stream names
   (:mod:`propdesk.api.topics`; default the lossless ones); ``resume_from`` (optional) the last ``seq`` the client
   has. A bad ticket closes with :data:`CLOSE_UNAUTHORIZED`, a malformed hello with :data:`CLOSE_BAD_HELLO`.
2. **Welcome.** ``topic "system", type "welcome"``, ``seq`` = ``data.seq_head`` (the newest published event) and
   ``data.mode``: ``replay`` (every event after ``resume_from`` follows, in order, each exactly once) or ``snapshot``
   (one ``topic "snapshot"`` message per account with the desk's state at ``seq`` = ``as_of_seq``, then the events
   after it).
3. **Deltas.** Each journaled event once, ascending ``seq`` (``type`` the event's kind: ``filled``, ``opened`` ...).
   Quotes are conflated (latest per contract; their ``seq`` is the head when published, never replayed).
4. **Heartbeats.** After ``heartbeat_s`` without a message: ``topic "system", type "heartbeat"`` with ``seq`` =
   ``data.seq_head``: a client whose last ``seq`` is behind it while nothing arrives has lost events (reconnect with
   ``resume_from``).
5. **Slow consumers.** A client too far behind (the stream's queue full) is sent ``type "closing"`` with
   ``data.resume_seq`` and closed with :data:`CLOSE_RESUME` (reason ``resume_from=<seq>``): reconnect with that
   ``resume_from`` and nothing is lost. Lossless events are never dropped.
6. **Commands.** ``{"type": "command", "id": "c1", "command": "submit_order", "idempotency_key": "k1",
   "body": {...}}`` (commands ``submit_order`` (body as ``POST /orders``, plus ``dry_run``), ``cancel_order``
   (``client_order_id``), ``cancel_all`` (``account_id``, ``symbol``), ``close_position`` (``account_id``,
   ``symbol``, ``qty``), ``flatten`` (``account_id``)) need the ``trade`` scope and are answered with
   ``topic "command", type "result"``: ``data = {"id", "result"}`` (the verdict) or ``{"id", "problem"}`` (the
   denial or the error as a problem document).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any, Final

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from propdesk.api.auth import Principal, authenticator_of
from propdesk.api.keys import Scope
from propdesk.api.problems import ApiProblem, Problem, ProblemCode
from propdesk.api.rest import ApiContext, api_context, execute, idempotency_key, submit_order
from propdesk.api.schemas import (
    AccountOut,
    CancelAllIn,
    ClosePositionIn,
    CommandResultOut,
    EventOut,
    InstanceOut,
    OrderIn,
    OrderOut,
    PositionOut,
    RuleOut,
)
from propdesk.api.topics import DEFAULT_TOPICS, event_out, patterns_for
from propdesk.model.commands import CancelAllOrders, CancelOrder, ClosePosition, Command, FlattenAccount
from propdesk.model.identifiers import ClientOrderId
from propdesk.model.symbology import spec_for_symbol
from propdesk.node.desk_views import flat_orders
from propdesk.node.stream import EventStream, Subscription, SubscriptionClosedError

__all__ = [
    "CLOSE_BAD_HELLO",
    "CLOSE_RESUME",
    "CLOSE_UNAUTHORIZED",
    "CLOSE_UNAVAILABLE",
    "HELLO_TIMEOUT_S",
    "MESSAGE_MODELS",
    "CommandMessage",
    "Hello",
    "SnapshotData",
    "build_ws_router",
]

log = logging.getLogger("propdesk.api.ws")

CLOSE_UNAUTHORIZED: Final = 4401
"""Close code: the hello's ticket is unknown, used, expired or its key was revoked."""
CLOSE_BAD_HELLO: Final = 4400
"""Close code: the first message is not a valid hello (unknown topic, ``resume_from`` out of range ...)."""
CLOSE_RESUME: Final = 4409
"""Close code: the client fell too far behind; reconnect with ``resume_from`` = the reason's seq."""
CLOSE_UNAVAILABLE: Final = 4503
"""Close code: the desk runs without an event stream, or the stream stopped (resume from the reason's seq later)."""
HELLO_TIMEOUT_S: Final = 10.0
"""Seconds the server waits for the hello."""


class Hello(BaseModel):
    """The client's first message."""

    model_config = ConfigDict(extra="forbid")
    type: str = Field(pattern="^hello$")
    ticket: str = Field(min_length=1, max_length=200)
    topics: list[str] = Field(default_factory=lambda: list(DEFAULT_TOPICS), max_length=16)
    resume_from: int | None = Field(default=None, ge=0)


class SnapshotData(BaseModel):
    """One account's state at ``as_of_seq`` (the ``data`` of a ``snapshot`` message)."""

    as_of_seq: int
    account: AccountOut
    positions: list[PositionOut]
    working_orders: list[OrderOut]
    instances: list[InstanceOut]
    risk: list[RuleOut]


class CommandMessage(BaseModel):
    """A command sent on the socket (module docstring, point 6)."""

    model_config = ConfigDict(extra="forbid")
    type: str = Field(pattern="^command$")
    id: str = Field(default="", max_length=100)
    command: str = Field(pattern="^(submit_order|cancel_order|cancel_all|close_position|flatten)$")
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=128)
    body: dict[str, Any] = Field(default_factory=dict)


def _system(kind: str, seq: int, ts_ns: int, data: Any) -> EventOut:
    return EventOut(seq=seq, ts_ns=ts_ns, topic="system", type=kind, account=None, data=data)


class _Connection:
    """One client's socket: the hello, the stream's deltas and the client's commands."""

    def __init__(self, ws: WebSocket, ctx: ApiContext, stream: EventStream) -> None:
        self.ws = ws
        self.ctx = ctx
        self.stream = stream
        self._send_lock = asyncio.Lock()
        self.principal: Principal | None = None

    def _now(self) -> int:
        aid = self.ctx.service.account_ids[0] if self.ctx.service.account_ids else None
        return 0 if aid is None else self.ctx.service.desk(aid).node.clock.timestamp_ns()

    async def send(self, message: EventOut) -> None:
        async with self._send_lock:
            await self.ws.send_text(message.model_dump_json())

    async def run(self) -> None:
        hello = await self._hello()
        if hello is None:
            return
        try:
            patterns = patterns_for(hello.topics)
            start = self._start(hello, patterns)
        except ValueError as exc:
            await self.ws.close(CLOSE_BAD_HELLO, str(exc)[:120])
            return
        sub, snapshots = start
        try:
            mode = "snapshot" if hello.resume_from is None else "replay"
            head = self.stream.head_seq
            welcome = {"seq_head": head, "mode": mode, "topics": hello.topics, "after_seq": sub.after_seq}
            await self.send(_system("welcome", head, self._now(), welcome))
            for snap in snapshots:
                await self.send(snap)
            reader = asyncio.create_task(self._read(), name="propdesk-ws-read")
            writer = asyncio.create_task(self._write(sub), name="propdesk-ws-write")
            done, pending = await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                    await task
            for task in done:
                with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                    task.result()
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            sub.close()

    async def _hello(self) -> Hello | None:
        try:
            raw = await asyncio.wait_for(self.ws.receive_json(), HELLO_TIMEOUT_S)
            hello = Hello.model_validate(raw)
        except TimeoutError:
            await self.ws.close(CLOSE_BAD_HELLO, "no hello")
            return None
        except (ValidationError, ValueError) as exc:
            await self.ws.close(CLOSE_BAD_HELLO, f"malformed hello: {type(exc).__name__}")
            return None
        client = self.ws.client.host if self.ws.client else None
        self.principal = await authenticator_of(self.ws.app).redeem_ticket(hello.ticket, client)
        if self.principal is None:
            await self.ws.close(CLOSE_UNAUTHORIZED, "unknown, used or expired ticket")
            return None
        return hello

    def _start(self, hello: Hello, patterns: tuple[str, ...]) -> tuple[Subscription, list[EventOut]]:
        """The subscription and the snapshot messages, taken in one synchronous step (no event in between).

        Raises:
            ValueError: ``resume_from`` beyond the stream's head.
        """
        if hello.resume_from is not None:
            return self.stream.subscribe(patterns, after_seq=hello.resume_from), []
        as_of = self.stream.sequence_point()
        messages = [self._snapshot(aid, as_of) for aid in self.ctx.service.account_ids]
        return self.stream.subscribe(patterns, after_seq=as_of), messages

    def _snapshot(self, account_id: int, as_of: int) -> EventOut:
        service = self.ctx.service
        desk = service.desk(account_id)
        snap = desk.snapshot()
        orders = []
        for o in flat_orders(snap.working_orders):
            try:
                tick = spec_for_symbol(o.symbol).tick_size
            except (ValueError, KeyError, LookupError):
                tick = None
            orders.append(OrderOut.of(account_id, o, tick))
        data = SnapshotData(
            as_of_seq=as_of,
            account=AccountOut.of(snap.accounts[0]),
            positions=[PositionOut.of(p) for p in snap.positions],
            working_orders=orders,
            instances=[InstanceOut.of(i) for i in service.instances() if i.account_id == account_id],
            risk=[RuleOut.of(r) for r in snap.risk],
        )
        return EventOut(
            seq=as_of, ts_ns=snap.ts_ns, topic="snapshot", type="snapshot", account=account_id, data=data.model_dump()
        )

    async def _write(self, sub: Subscription) -> None:
        while True:
            try:
                event = await sub.next(timeout_s=self.ctx.heartbeat_s)
            except TimeoutError:
                head = self.stream.head_seq
                await self.send(_system("heartbeat", head, self._now(), {"seq_head": head}))
                continue
            except SubscriptionClosedError as exc:
                slow = exc.reason.startswith("slow consumer")
                data = {"resume_seq": exc.resume_seq, "reason": exc.reason}
                await self.send(_system("closing", exc.resume_seq, self._now(), data))
                code = CLOSE_RESUME if slow else CLOSE_UNAVAILABLE
                await self.ws.close(code, f"resume_from={exc.resume_seq}")
                return
            except StopAsyncIteration:
                return
            await self.send(event_out(event))

    async def _read(self) -> None:
        while True:
            text = await self.ws.receive_text()
            ident = ""
            try:
                raw = json.loads(text)
                ident = str(raw.get("id", ""))[:100] if isinstance(raw, dict) else ""
                data = {"id": ident, "result": self._command(raw).model_dump(mode="json")}
            except ValueError:
                problem = Problem.of(ProblemCode.VALIDATION_FAILED, "a message must be one JSON object")
                data = {"id": ident, "problem": problem.model_dump(mode="json", exclude_none=True)}
            except ApiProblem as exc:
                data = {"id": ident, "problem": exc.problem.model_dump(mode="json", exclude_none=True)}
            reply = EventOut(
                seq=self.stream.head_seq, ts_ns=self._now(), topic="command", type="result", account=None, data=data
            )
            await self.send(reply)

    def _command(self, raw: object) -> CommandResultOut:
        try:
            msg = CommandMessage.model_validate(raw)
        except ValidationError as exc:
            raise ApiProblem.of(ProblemCode.VALIDATION_FAILED, _errors(exc)) from exc
        if self.principal is None or not self.principal.may(Scope.TRADE):
            raise ApiProblem.of(ProblemCode.FORBIDDEN, "commands on the socket need the 'trade' scope")
        key = idempotency_key(msg.idempotency_key)
        try:
            command = _build(msg.command, msg.body, key)
        except ValidationError as exc:
            raise ApiProblem.of(ProblemCode.VALIDATION_FAILED, _errors(exc)) from exc
        if isinstance(command, tuple):
            return CommandResultOut.of(self.ctx.service.dry_run(command[0]))
        return execute(self.ctx, command)


def _errors(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'message'}: {e['msg']}" for e in exc.errors())


def _build(name: str, body: dict[str, Any], key: str) -> Command | tuple[Any]:
    """The command ``name`` of ``body`` (a dry-run submit as a 1-tuple).

    Raises:
        ValidationError: a malformed body. ApiProblem: ``VALIDATION_FAILED`` (an order without its price).
    """
    if name == "submit_order":
        dry = bool(body.get("dry_run", False))
        order = submit_order(
            OrderIn.model_validate({k: v for k, v in body.items() if k != "dry_run"}), key, dry_run=dry
        )
        return (order,) if dry else order
    if name == "cancel_order":
        coid = _CancelIn.model_validate(body)
        return CancelOrder(
            idempotency_key=key, account_id=coid.account_id, client_order_id=ClientOrderId(coid.client_order_id)
        )
    if name == "cancel_all":
        ca = CancelAllIn.model_validate(body)
        return CancelAllOrders(idempotency_key=key, account_id=ca.account_id, symbol=ca.symbol)
    if name == "close_position":
        cp = _CloseIn.model_validate(body)
        return ClosePosition(
            idempotency_key=key, account_id=cp.account_id, symbol=cp.symbol, qty=cp.qty, reason=cp.reason
        )
    fl = _FlattenIn.model_validate(body)
    return FlattenAccount(idempotency_key=key, account_id=fl.account_id, reason=fl.reason)


class _CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    client_order_id: str = Field(min_length=1, max_length=64)
    account_id: int | None = None


class _CloseIn(ClosePositionIn):
    account_id: int | None = None
    symbol: str = Field(pattern=r"^[A-Z0-9]{2,16}$")


class _FlattenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account_id: int | None = None
    reason: str = Field(default="", max_length=500)


MESSAGE_MODELS: Final[tuple[type[BaseModel], ...]] = (Hello, CommandMessage, EventOut, SnapshotData)
"""The socket's message shapes, added to the OpenAPI document's schemas (WebSocket routes have no operation)."""


def build_ws_router() -> APIRouter:
    """The ``/ws`` route (module docstring)."""
    router = APIRouter()

    @router.websocket("/ws")
    async def websocket(ws: WebSocket) -> None:
        ctx = api_context(ws)
        await ws.accept()
        if ctx.stream is None:
            await ws.close(CLOSE_UNAVAILABLE, "the desk runs without an event stream")
            return
        try:
            await _Connection(ws, ctx, ctx.stream).run()
        except WebSocketDisconnect:
            return

    return router
